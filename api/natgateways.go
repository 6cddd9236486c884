package api

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"

	"github.com/vpcflow/vpcflow/topology"
)

// NATGatewayRequest is the body of POST /v1/vpcs/{vpc}/nat-gateways: the
// VPC's NAT gateway (one per VPC) on an uplink, with its public addresses
// (from the uplink's prefix). PUT …/nat-gateways/{name} changes the
// addresses (an address an entry uses stays).
type NATGatewayRequest struct {
	VPC    string   `json:"vpc,omitempty"`
	Name   string   `json:"name,omitempty"`
	Uplink string   `json:"uplink,omitempty"`
	IPs    []string `json:"ips,omitempty"`
}

// parseAddrs parses a list of addresses, naming the one at fault.
func parseAddrs(field string, ss []string) ([]netip.Addr, *requestError) {
	if ss == nil {
		return nil, nil
	}
	out := make([]netip.Addr, 0, len(ss))
	for i, s := range ss {
		a, err := parseAddrAs(fmt.Sprintf("%s[%d]", field, i), s, "203.0.113.10")
		if err != nil {
			return nil, err
		}
		if !a.IsValid() {
			return nil, badRequest(fmt.Sprintf("%s[%d]", field, i), "empty: want an IPv4 address like 203.0.113.10")
		}
		out = append(out, a)
	}
	return out, nil
}

func (req *NATGatewayRequest) toGateway(vpc, name string) (*topology.NATGateway, *requestError) {
	if err := checkVPC(vpc, req.VPC); err != nil {
		return nil, err
	}
	ips, err := parseAddrs("ips", req.IPs)
	if err != nil {
		return nil, err
	}
	return &topology.NATGateway{VPC: vpc, Name: name, Uplink: req.Uplink, IPs: ips}, nil
}

// natGatewayResource: /v1/vpcs/{vpc}/nat-gateways[/{name}].
func natGatewayResource() resource {
	return resource{
		path: "/v1/vpcs/{vpc}/nat-gateways", item: "name", inVPC: true,
		list: func(st *topology.State, v map[string]string) any { return nonNil(st.NATGateways(v["vpc"])) },
		get: func(st *topology.State, v map[string]string) (any, bool) {
			x, ok := st.NATGateway(v["vpc"], v["name"])
			return x, ok
		},
		what: inVPCWhat("NAT gateway"),
		create: func(s *server, data []byte, v map[string]string) (topology.Object, *requestError) {
			var req NATGatewayRequest
			if err := s.decodeObject(data, &req); err != nil {
				return nil, err
			}
			return req.toGateway(v["vpc"], req.Name)
		},
		update: func(s *server, data []byte, v map[string]string) (topology.Object, *requestError) {
			var req NATGatewayRequest
			if err := s.decodeObject(data, &req); err != nil {
				return nil, err
			}
			if req.Name != "" && req.Name != v["name"] {
				return nil, badRequest("name", "a NAT gateway cannot be renamed (the body says %q but the URL says %q)", req.Name, v["name"])
			}
			return req.toGateway(v["vpc"], v["name"])
		},
		ref: func(v map[string]string) topology.Object { return &topology.NATGateway{VPC: v["vpc"], Name: v["name"]} },
		location: func(o topology.Object) string {
			g := o.(*topology.NATGateway)
			return location("vpcs", g.VPC, "nat-gateways", g.Name)
		},
	}
}

// CreateNATGateway creates a VPC's NAT gateway.
func (c *Client) CreateNATGateway(ctx context.Context, vpc string, req NATGatewayRequest) (topology.NATGateway, error) {
	var g topology.NATGateway
	err := c.do(ctx, http.MethodPost, path("vpcs", vpc, "nat-gateways"), req, &g)
	return g, err
}

// UpdateNATGateway changes a NAT gateway's addresses.
func (c *Client) UpdateNATGateway(ctx context.Context, vpc, name string, ips []string) (topology.NATGateway, error) {
	var g topology.NATGateway
	err := c.do(ctx, http.MethodPut, path("vpcs", vpc, "nat-gateways", name), NATGatewayRequest{IPs: nonNil(ips)}, &g)
	return g, err
}

// ListNATGateways lists a VPC's NAT gateways (at most one).
func (c *Client) ListNATGateways(ctx context.Context, vpc string) ([]topology.NATGateway, error) {
	out, _, err := c.ListNATGatewaysPage(ctx, vpc, Page{})
	return out, err
}

// ListNATGatewaysPage lists one page of a VPC's NAT gateways, by name, and
// the page's PageInfo (the next page's token and how many items match).
func (c *Client) ListNATGatewaysPage(ctx context.Context, vpc string, pg Page) ([]topology.NATGateway, PageInfo, error) {
	var out []topology.NATGateway
	info, err := c.listPage(ctx, path("vpcs", vpc, "nat-gateways"), pg, &out)
	return out, info, err
}

// GetNATGateway returns one NAT gateway.
func (c *Client) GetNATGateway(ctx context.Context, vpc, name string) (topology.NATGateway, error) {
	var g topology.NATGateway
	err := c.do(ctx, http.MethodGet, path("vpcs", vpc, "nat-gateways", name), nil, &g)
	return g, err
}

// DeleteNATGateway deletes a NAT gateway without entries, or with
// Cascade(true) its SNAT and DNAT entries too.
func (c *Client) DeleteNATGateway(ctx context.Context, vpc, name string, opts ...DeleteOption) error {
	return c.do(ctx, http.MethodDelete, withQuery(path("vpcs", vpc, "nat-gateways", name), opts), nil, nil)
}

// vpcNATGateway is the name of a VPC's NAT gateway, "" when it has none:
// what an entry that names no gateway belongs to.
func (s *server) vpcNATGateway(vpc string) string {
	var name string
	s.b.Read(func(st *topology.State) {
		if g, ok := st.NATGatewayOf(vpc); ok {
			name = g.Name
		}
	})
	return name
}
