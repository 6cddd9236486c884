package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/vpcflow/vpcflow/controller"
	"github.com/vpcflow/vpcflow/topology"
)

// Client talks to a vpcflow API server.
type Client struct {
	base  string // scheme://host[:port][/prefix], no trailing slash
	hc    *http.Client
	token string // bearer token, if any
}

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithToken makes the client send "Authorization: Bearer TOKEN" with every
// request, for a server started with a token (Options.Token). Surrounding
// whitespace is ignored; an empty token sends nothing.
func WithToken(token string) ClientOption {
	return func(c *Client) { c.token = strings.TrimSpace(token) }
}

// NewClient returns a client for the server at baseURL
// (e.g. "http://127.0.0.1:8080"). hc nil means http.DefaultClient.
func NewClient(baseURL string, hc *http.Client, opts ...ClientOption) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("API URL %q: %w", baseURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("API URL %q: want http://HOST:PORT or https://HOST:PORT", baseURL)
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	c := &Client{base: strings.TrimRight(u.String(), "/"), hc: hc}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Error is an error response from the server.
type Error struct {
	Status int    // HTTP status code
	Field  string // the JSON field at fault, if any
	Msg    string
}

func (e *Error) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

// path joins escaped path segments under /v1.
func path(segs ...string) string {
	var b strings.Builder
	b.WriteString("/v1")
	for _, s := range segs {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

// do sends a request with an optional JSON body and decodes a JSON reply
// into out (if not nil). Non-2xx replies become *Error.
func (c *Client) do(ctx context.Context, method, p string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s %s: encode request: %w", method, p, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+p, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, p, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		// *url.Error repeats method and URL in a different form; keep its
		// cause only.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%s %s%s: %w", method, c.base, p, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: read reply: %w", method, p, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var eb ErrorBody
		if json.Unmarshal(data, &eb) != nil || eb.Error == "" {
			eb.Error = strings.TrimSpace(string(data))
			if eb.Error == "" {
				eb.Error = resp.Status
			}
		}
		return &Error{Status: resp.StatusCode, Field: eb.Field, Msg: eb.Error}
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode reply: %w", method, p, err)
	}
	return nil
}

// Health checks GET /healthz.
func (c *Client) Health(ctx context.Context) error {
	var h HealthBody
	if err := c.do(ctx, http.MethodGet, "/healthz", nil, &h); err != nil {
		return err
	}
	if h.Status != "ok" {
		return fmt.Errorf("health: status %q", h.Status)
	}
	return nil
}

// ---- VPCs ----

// CreateVPC creates a VPC.
func (c *Client) CreateVPC(ctx context.Context, req VPCRequest) (topology.VPC, error) {
	var v topology.VPC
	err := c.do(ctx, http.MethodPost, path("vpcs"), req, &v)
	return v, err
}

// ListVPCs lists the VPCs.
func (c *Client) ListVPCs(ctx context.Context) ([]topology.VPC, error) {
	var out []topology.VPC
	err := c.do(ctx, http.MethodGet, path("vpcs"), nil, &out)
	return out, err
}

// GetVPC returns one VPC.
func (c *Client) GetVPC(ctx context.Context, name string) (topology.VPC, error) {
	var v topology.VPC
	err := c.do(ctx, http.MethodGet, path("vpcs", name), nil, &v)
	return v, err
}

// DeleteOption modifies a delete.
type DeleteOption func(q url.Values)

// Cascade(true) also deletes what the object holds (?cascade=true): a
// VPC's subnets, hosts and vSwitches; a vSwitch's hosts and their subnets;
// a host's subnets; a chassis's hosts and their subnets. Without it such a
// delete fails with 409.
func Cascade(on bool) DeleteOption {
	return func(q url.Values) {
		if on {
			q.Set("cascade", "true")
		}
	}
}

// withQuery appends the query that opts set to p.
func withQuery(p string, opts []DeleteOption) string {
	q := url.Values{}
	for _, o := range opts {
		o(q)
	}
	if len(q) == 0 {
		return p
	}
	return p + "?" + q.Encode()
}

// DeleteVPC deletes a VPC: an empty one, or with Cascade(true) everything
// in it too.
func (c *Client) DeleteVPC(ctx context.Context, name string, opts ...DeleteOption) error {
	return c.do(ctx, http.MethodDelete, withQuery(path("vpcs", name), opts), nil, nil)
}

// ---- vSwitches ----

// CreateVSwitch creates a vSwitch in vpc.
func (c *Client) CreateVSwitch(ctx context.Context, vpc string, req VSwitchRequest) (topology.VSwitch, error) {
	var v topology.VSwitch
	err := c.do(ctx, http.MethodPost, path("vpcs", vpc, "vswitches"), req, &v)
	return v, err
}

// ListVSwitches lists a VPC's vSwitches.
func (c *Client) ListVSwitches(ctx context.Context, vpc string) ([]topology.VSwitch, error) {
	var out []topology.VSwitch
	err := c.do(ctx, http.MethodGet, path("vpcs", vpc, "vswitches"), nil, &out)
	return out, err
}

// GetVSwitch returns one vSwitch.
func (c *Client) GetVSwitch(ctx context.Context, vpc, name string) (topology.VSwitch, error) {
	var v topology.VSwitch
	err := c.do(ctx, http.MethodGet, path("vpcs", vpc, "vswitches", name), nil, &v)
	return v, err
}

// DeleteVSwitch deletes a vSwitch without hosts, or with Cascade(true) its
// hosts and their subnets too.
func (c *Client) DeleteVSwitch(ctx context.Context, vpc, name string, opts ...DeleteOption) error {
	return c.do(ctx, http.MethodDelete, withQuery(path("vpcs", vpc, "vswitches", name), opts), nil, nil)
}

// ---- hosts ----

// CreateHost registers one host.
func (c *Client) CreateHost(ctx context.Context, vpc string, req HostRequest) (topology.Host, error) {
	var h topology.Host
	err := c.do(ctx, http.MethodPost, path("vpcs", vpc, "hosts"), req, &h)
	return h, err
}

// CreateHosts registers several hosts, all or none.
func (c *Client) CreateHosts(ctx context.Context, vpc string, reqs []HostRequest) ([]topology.Host, error) {
	var out []topology.Host
	err := c.do(ctx, http.MethodPost, path("vpcs", vpc, "hosts"), nonNil(reqs), &out)
	return out, err
}

// ListHosts lists a VPC's hosts.
func (c *Client) ListHosts(ctx context.Context, vpc string) ([]topology.Host, error) {
	var out []topology.Host
	err := c.do(ctx, http.MethodGet, path("vpcs", vpc, "hosts"), nil, &out)
	return out, err
}

// GetHost returns one host.
func (c *Client) GetHost(ctx context.Context, vpc, name string) (topology.Host, error) {
	var h topology.Host
	err := c.do(ctx, http.MethodGet, path("vpcs", vpc, "hosts", name), nil, &h)
	return h, err
}

// DeleteHost deletes a host that is no subnet's next hop, or with
// Cascade(true) the subnets it is the next hop of too.
func (c *Client) DeleteHost(ctx context.Context, vpc, name string, opts ...DeleteOption) error {
	return c.do(ctx, http.MethodDelete, withQuery(path("vpcs", vpc, "hosts", name), opts), nil, nil)
}

// ---- subnets ----

// CreateSubnet adds one route entry.
func (c *Client) CreateSubnet(ctx context.Context, vpc string, req SubnetRequest) (topology.Subnet, error) {
	var s topology.Subnet
	err := c.do(ctx, http.MethodPost, path("vpcs", vpc, "subnets"), req, &s)
	return s, err
}

// CreateSubnets adds several route entries, all or none.
func (c *Client) CreateSubnets(ctx context.Context, vpc string, reqs []SubnetRequest) ([]topology.Subnet, error) {
	var out []topology.Subnet
	err := c.do(ctx, http.MethodPost, path("vpcs", vpc, "subnets"), nonNil(reqs), &out)
	return out, err
}

// MoveSubnet points a route entry at another host.
func (c *Client) MoveSubnet(ctx context.Context, vpc, name, host string) (topology.Subnet, error) {
	var s topology.Subnet
	err := c.do(ctx, http.MethodPut, path("vpcs", vpc, "subnets", name), SubnetUpdateRequest{Host: host}, &s)
	return s, err
}

// ListSubnets lists a VPC's route entries.
func (c *Client) ListSubnets(ctx context.Context, vpc string) ([]topology.Subnet, error) {
	var out []topology.Subnet
	err := c.do(ctx, http.MethodGet, path("vpcs", vpc, "subnets"), nil, &out)
	return out, err
}

// GetSubnet returns one route entry.
func (c *Client) GetSubnet(ctx context.Context, vpc, name string) (topology.Subnet, error) {
	var s topology.Subnet
	err := c.do(ctx, http.MethodGet, path("vpcs", vpc, "subnets", name), nil, &s)
	return s, err
}

// DeleteSubnet deletes a route entry.
func (c *Client) DeleteSubnet(ctx context.Context, vpc, name string) error {
	return c.do(ctx, http.MethodDelete, path("vpcs", vpc, "subnets", name), nil, nil)
}

// ---- chassis ----

// CreateChassis registers a chassis. The server configures its bridge
// (controller, VXLAN port) before storing it.
func (c *Client) CreateChassis(ctx context.Context, req ChassisRequest) (topology.Chassis, error) {
	var ch topology.Chassis
	err := c.do(ctx, http.MethodPost, path("chassis"), req, &ch)
	return ch, err
}

// ListChassis lists every chassis.
func (c *Client) ListChassis(ctx context.Context) ([]topology.Chassis, error) {
	var out []topology.Chassis
	err := c.do(ctx, http.MethodGet, path("chassis"), nil, &out)
	return out, err
}

// Chassis returns one chassis.
func (c *Client) Chassis(ctx context.Context, name string) (topology.Chassis, error) {
	var ch topology.Chassis
	err := c.do(ctx, http.MethodGet, path("chassis", name), nil, &ch)
	return ch, err
}

// DeleteChassis deletes a chassis no host is attached to, or with
// Cascade(true) the hosts attached to it and their subnets too.
func (c *Client) DeleteChassis(ctx context.Context, name string, opts ...DeleteOption) error {
	return c.do(ctx, http.MethodDelete, withQuery(path("chassis", name), opts), nil, nil)
}

// ---- switches ----

// Switches lists the connected switches.
func (c *Client) Switches(ctx context.Context) ([]controller.SwitchInfo, error) {
	var out []controller.SwitchInfo
	err := c.do(ctx, http.MethodGet, path("switches"), nil, &out)
	return out, err
}

// Flows dumps the flows installed on a switch.
func (c *Client) Flows(ctx context.Context, dpid topology.DPID) ([]controller.FlowEntry, error) {
	var out []controller.FlowEntry
	err := c.do(ctx, http.MethodGet, path("switches", dpid.String(), "flows"), nil, &out)
	return out, err
}

// Drops sums the pipeline's drop counters by reason, per connected switch
// and per host.
func (c *Client) Drops(ctx context.Context) (controller.DropReport, error) {
	var out controller.DropReport
	err := c.do(ctx, http.MethodGet, path("drops"), nil, &out)
	return out, err
}
