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
	"strconv"
	"strings"
	"time"

	"github.com/vpcflow/vpcflow/controller"
	"github.com/vpcflow/vpcflow/topology"
)

// Client talks to a vpcflow API server.
type Client struct {
	base  string // scheme://host[:port][/prefix], no trailing slash
	hc    *http.Client
	token string // bearer token, if any
	// serverTimeout, when set, is sent as X-Request-Timeout.
	serverTimeout time.Duration
}

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithToken makes the client send "Authorization: Bearer TOKEN" with every
// request, for a server started with a token (Options.Token). Surrounding
// whitespace is ignored; an empty token sends nothing.
func WithToken(token string) ClientOption {
	return func(c *Client) { c.token = strings.TrimSpace(token) }
}

// WithRequestTimeout asks the server to answer every request within d
// (the X-Request-Timeout header; the server's own limit still applies):
// a change not confirmed by every switch by then is answered 202
// (*UnconfirmedError) instead of the client giving up first. Use a little
// less than the http.Client's Timeout.
func WithRequestTimeout(d time.Duration) ClientOption {
	return func(c *Client) { c.serverTimeout = d }
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
	raw    []byte // the body
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

// UnconfirmedError is returned by a change the server stored but not
// every connected switch confirmed (202 Accepted, see AcceptedBody): the
// change stands and the object the method returns is filled in. Each
// switch listed gets the change when its queue catches up, or when it
// reconnects and is reconciled.
type UnconfirmedError struct {
	Msg      string
	Switches []controller.UnconfirmedSwitch
}

func (e *UnconfirmedError) Error() string { return e.Msg }

// Page asks a list for one page: at most Limit items (0: all of them),
// after the page whose next-page token is Token ("": from the start).
// The filters apply before paging, on the lists that take them (others
// refuse them): Query (text in the name, and a host's IP or MAC, a route
// entry's CIDR or next hop) on hosts and route entries, VSwitch on
// hosts, Host (the next hop) on route entries.
type Page struct {
	Limit int
	Token string

	Query, VSwitch, Host string
}

// query appends ?limit, ?page_token and the filters to p.
func (pg Page) query(p string) string {
	q := url.Values{}
	if pg.Limit > 0 {
		q.Set("limit", strconv.Itoa(pg.Limit))
	}
	if pg.Token != "" {
		q.Set("page_token", pg.Token)
	}
	for name, v := range map[string]string{"q": pg.Query, "vswitch": pg.VSwitch, "host": pg.Host} {
		if v != "" {
			q.Set(name, v)
		}
	}
	if len(q) == 0 {
		return p
	}
	return p + "?" + q.Encode()
}

// PageInfo is what a list's page says about the list besides its items.
type PageInfo struct {
	// Next is the next page's token, for Page.Token ("" on the last
	// page): the NextPageHeader of the answer.
	Next string
	// Total is how many items of the list match its filters, every page
	// together (with no filter, how many it holds): the TotalCountHeader
	// of the answer. It is -1 when the answer has no such header or not
	// a whole number of 0 or more in it (a server from before the header,
	// or a proxy that dropped it), and on an error. Items created or
	// deleted between two pages may change it from one page to the next.
	Total int
}

// pageInfo reads a list page's headers (nil: none).
func pageInfo(h http.Header) PageInfo {
	info := PageInfo{Next: h.Get(NextPageHeader), Total: -1}
	if n, err := strconv.Atoi(strings.TrimSpace(h.Get(TotalCountHeader))); err == nil && n >= 0 {
		info.Total = n
	}
	return info
}

// listPage GETs one page of a list into out and returns its PageInfo
// (Total -1 on an error).
func (c *Client) listPage(ctx context.Context, p string, pg Page, out any) (PageInfo, error) {
	h, err := c.send(ctx, http.MethodGet, pg.query(p), nil, out)
	if err != nil {
		return PageInfo{Total: -1}, err
	}
	return pageInfo(h), nil
}

// do sends a request with an optional JSON body and decodes a JSON reply
// into out (if not nil). Non-2xx replies become *Error; a 202 decodes its
// object into out and returns *UnconfirmedError.
func (c *Client) do(ctx context.Context, method, p string, body, out any) error {
	_, err := c.send(ctx, method, p, body, out)
	return err
}

// send is do, returning the reply's headers too.
func (c *Client) send(ctx context.Context, method, p string, body, out any) (http.Header, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("%s %s: encode request: %w", method, p, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+p, rd)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, p, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.serverTimeout > 0 {
		req.Header.Set(TimeoutHeader, c.serverTimeout.String())
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		// *url.Error repeats method and URL in a different form; keep its
		// cause only.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%s %s%s: %w", method, c.base, p, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: read reply: %w", method, p, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var eb ErrorBody
		if json.Unmarshal(data, &eb) != nil || eb.Error == "" {
			eb.Error = strings.TrimSpace(string(data))
			if eb.Error == "" {
				eb.Error = resp.Status
			}
		}
		return resp.Header, &Error{Status: resp.StatusCode, Field: eb.Field, Msg: eb.Error, raw: data}
	}
	if resp.StatusCode == http.StatusAccepted {
		var ab struct {
			Message     string                         `json:"message"`
			Object      json.RawMessage                `json:"object"`
			Objects     json.RawMessage                `json:"objects"`
			Unconfirmed []controller.UnconfirmedSwitch `json:"unconfirmed"`
		}
		if err := json.Unmarshal(data, &ab); err != nil {
			return resp.Header, fmt.Errorf("%s %s: decode reply: %w", method, p, err)
		}
		obj := ab.Object
		if len(ab.Objects) > 0 {
			obj = ab.Objects
		}
		if out != nil && len(obj) > 0 {
			if err := json.Unmarshal(obj, out); err != nil {
				return resp.Header, fmt.Errorf("%s %s: decode reply: %w", method, p, err)
			}
		}
		return resp.Header, &UnconfirmedError{Msg: ab.Message, Switches: ab.Unconfirmed}
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return resp.Header, nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return resp.Header, fmt.Errorf("%s %s: decode reply: %w", method, p, err)
	}
	return resp.Header, nil
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

// Ready reads GET /readyz. A server that is not ready answers 503 with
// its reasons: that is returned as the body, with a nil error.
func (c *Client) Ready(ctx context.Context) (ReadyBody, error) {
	var rb ReadyBody
	err := c.do(ctx, http.MethodGet, "/readyz", nil, &rb)
	var ae *Error
	if errors.As(err, &ae) && ae.Status == http.StatusServiceUnavailable {
		rb = ReadyBody{Status: "not ready"}
		if ae.raw != nil {
			_ = json.Unmarshal(ae.raw, &rb)
		}
		return rb, nil
	}
	return rb, err
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

// Switches lists the connected (and reconciled) switches.
func (c *Client) Switches(ctx context.Context) ([]SwitchView, error) {
	out, _, err := c.SwitchesPage(ctx, Page{})
	return out, err
}

// SwitchesPage lists one page of the connected switches, by dpid, and the
// page's PageInfo (the next page's token and how many items match).
func (c *Client) SwitchesPage(ctx context.Context, pg Page) ([]SwitchView, PageInfo, error) {
	var out []SwitchView
	info, err := c.listPage(ctx, path("switches"), pg, &out)
	return out, info, err
}

// Flows dumps the flows installed on a switch.
func (c *Client) Flows(ctx context.Context, dpid topology.DPID) ([]controller.FlowEntry, error) {
	out, _, err := c.FlowsPage(ctx, dpid, Page{})
	return out, err
}

// FlowsPage dumps one page of a switch's flows (by table, priority and
// match), and the page's PageInfo (the next page's token and how many
// items match).
func (c *Client) FlowsPage(ctx context.Context, dpid topology.DPID, pg Page) ([]controller.FlowEntry, PageInfo, error) {
	var out []controller.FlowEntry
	info, err := c.listPage(ctx, path("switches", dpid.String(), "flows"), pg, &out)
	return out, info, err
}

// Drops sums the pipeline's drop counters by reason, per connected switch
// and per host.
func (c *Client) Drops(ctx context.Context) (controller.DropReport, error) {
	var out controller.DropReport
	err := c.do(ctx, http.MethodGet, path("drops"), nil, &out)
	return out, err
}
