package api

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/vpcflow/vpcflow/topology"
)

// EIPRequest is the body of POST /v1/vpcs/{vpc}/eips: an elastic IP (an
// address of the uplink's prefix) held by the VPC, bound to Host (or to
// none yet). PUT …/eips/{name} binds, rebinds or unbinds it: "host" given
// binds to that host, "" unbinds; left out, the binding stays.
type EIPRequest struct {
	VPC    string  `json:"vpc,omitempty"`
	Name   string  `json:"name,omitempty"`
	IP     string  `json:"ip,omitempty"`
	Uplink string  `json:"uplink,omitempty"`
	Host   *string `json:"host,omitempty"`
}

// eipBody is EIPRequest as the server reads it.
type eipBody struct {
	VPC    string          `json:"vpc"`
	Name   string          `json:"name"`
	IP     string          `json:"ip"`
	Uplink string          `json:"uplink"`
	Host   json.RawMessage `json:"host"`
}

func (req *eipBody) toEIP(vpc, name string, keep func() string) (*topology.EIP, *requestError) {
	if err := checkVPC(vpc, req.VPC); err != nil {
		return nil, err
	}
	a, err := parseAddrAs("ip", req.IP, "203.0.113.20")
	if err != nil {
		return nil, err
	}
	e := &topology.EIP{VPC: vpc, Name: name, IP: a, Uplink: req.Uplink}
	switch {
	case req.Host == nil || string(req.Host) == "null":
		if keep != nil {
			e.Host = keep()
		}
	default:
		if jerr := json.Unmarshal(req.Host, &e.Host); jerr != nil {
			return nil, badRequest("host", "want a host name (a string), or \"\" to unbind")
		}
	}
	return e, nil
}

// eipResource: /v1/vpcs/{vpc}/eips[/{name}].
func eipResource() resource {
	return resource{
		path: "/v1/vpcs/{vpc}/eips", item: "name", inVPC: true,
		list: func(st *topology.State, v map[string]string) any { return nonNil(st.EIPs(v["vpc"])) },
		get: func(st *topology.State, v map[string]string) (any, bool) {
			x, ok := st.EIP(v["vpc"], v["name"])
			return x, ok
		},
		what: inVPCWhat("EIP"),
		create: func(s *server, data []byte, v map[string]string) (topology.Object, *requestError) {
			var req eipBody
			if err := s.decodeObject(data, &req); err != nil {
				return nil, err
			}
			return req.toEIP(v["vpc"], req.Name, nil)
		},
		update: func(s *server, data []byte, v map[string]string) (topology.Object, *requestError) {
			var req eipBody
			if err := s.decodeObject(data, &req); err != nil {
				return nil, err
			}
			if req.Name != "" && req.Name != v["name"] {
				return nil, badRequest("name", "an EIP cannot be renamed (the body says %q but the URL says %q)", req.Name, v["name"])
			}
			return req.toEIP(v["vpc"], v["name"], func() string {
				var host string
				s.b.Read(func(st *topology.State) {
					if e, ok := st.EIP(v["vpc"], v["name"]); ok {
						host = e.Host
					}
				})
				return host
			})
		},
		ref: func(v map[string]string) topology.Object { return &topology.EIP{VPC: v["vpc"], Name: v["name"]} },
		location: func(o topology.Object) string {
			e := o.(*topology.EIP)
			return location("vpcs", e.VPC, "eips", e.Name)
		},
	}
}

// CreateEIP allocates an EIP to a VPC (bound to req.Host if given).
func (c *Client) CreateEIP(ctx context.Context, vpc string, req EIPRequest) (topology.EIP, error) {
	var e topology.EIP
	err := c.do(ctx, http.MethodPost, path("vpcs", vpc, "eips"), req, &e)
	return e, err
}

// BindEIP binds an EIP to host ("" unbinds it).
func (c *Client) BindEIP(ctx context.Context, vpc, name, host string) (topology.EIP, error) {
	var e topology.EIP
	err := c.do(ctx, http.MethodPut, path("vpcs", vpc, "eips", name), EIPRequest{Host: &host}, &e)
	return e, err
}

// ListEIPs lists a VPC's EIPs.
func (c *Client) ListEIPs(ctx context.Context, vpc string) ([]topology.EIP, error) {
	out, _, err := c.ListEIPsPage(ctx, vpc, Page{})
	return out, err
}

// ListEIPsPage lists one page of a VPC's EIPs, by name, and the page's
// PageInfo (the next page's token and how many items match).
func (c *Client) ListEIPsPage(ctx context.Context, vpc string, pg Page) ([]topology.EIP, PageInfo, error) {
	var out []topology.EIP
	info, err := c.listPage(ctx, path("vpcs", vpc, "eips"), pg, &out)
	return out, info, err
}

// GetEIP returns one EIP.
func (c *Client) GetEIP(ctx context.Context, vpc, name string) (topology.EIP, error) {
	var e topology.EIP
	err := c.do(ctx, http.MethodGet, path("vpcs", vpc, "eips", name), nil, &e)
	return e, err
}

// DeleteEIP releases an EIP.
func (c *Client) DeleteEIP(ctx context.Context, vpc, name string) error {
	return c.do(ctx, http.MethodDelete, path("vpcs", vpc, "eips", name), nil, nil)
}
