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

// ---- deletes ----

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
