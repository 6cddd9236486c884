package api

import (
	"context"
	"net/http"

	"github.com/vpcflow/vpcflow/topology"
)

// SubnetRequest is the body (or an array element) of
// POST /v1/vpcs/{vpc}/subnets. Name defaults to the CIDR with "/" as "-".
type SubnetRequest struct {
	VPC  string `json:"vpc,omitempty"`
	Name string `json:"name,omitempty"`
	CIDR string `json:"cidr"`
	Host string `json:"host"`
}

// SubnetUpdateRequest is the body of PUT /v1/vpcs/{vpc}/subnets/{name}:
// it moves the route entry to another next-hop host. Name, VPC and CIDR
// are optional and must match the subnet if given.
type SubnetUpdateRequest struct {
	VPC  string `json:"vpc,omitempty"`
	Name string `json:"name,omitempty"`
	CIDR string `json:"cidr,omitempty"`
	Host string `json:"host"`
}

// subnetResource: /v1/vpcs/{vpc}/subnets[/{name}], route entries; POST
// takes an object or an array, PUT moves one to another next hop.
func subnetResource() resource {
	return resource{
		path: "/v1/vpcs/{vpc}/subnets", item: "name", inVPC: true, batch: true,
		// ?host: the route entries whose next hop it is (the host's own
		// index); ?q: in the name, destination CIDR or next hop.
		filters: []string{"q", "host"},
		page: func(st *topology.State, v map[string]string, f listFilter, p pageQuery) (any, int, string, error) {
			if f.host != "" {
				if _, ok := st.Host(v["vpc"], f.host); !ok {
					return nil, 0, "", notFound("host", "host %s does not exist in VPC %q", quote(f.host), v["vpc"])
				}
			}
			pg := selectPage(p, func(yield func(*topology.Subnet) bool) { st.EachSubnet(v["vpc"], f.host, yield) },
				matcher(f, func(m *textMatch, s *topology.Subnet) bool {
					return m.in(s.Name) || m.inBytes(s.CIDR.AppendTo(m.buf)) || m.in(s.Host)
				}),
				func(s *topology.Subnet) string { return s.Name })
			return copyPage(pg, nil), pg.total, pg.last, nil
		},
		get: func(st *topology.State, v map[string]string) (any, bool) {
			x, ok := st.Subnet(v["vpc"], v["name"])
			return x, ok
		},
		what: inVPCWhat("subnet"),
		create: func(s *server, data []byte, v map[string]string) (topology.Object, *requestError) {
			var req SubnetRequest
			if err := s.decodeObject(data, &req); err != nil {
				return nil, err
			}
			if err := checkVPC(v["vpc"], req.VPC); err != nil {
				return nil, err
			}
			p, err := parsePrefix("cidr", req.CIDR)
			if err != nil {
				return nil, err
			}
			return &topology.Subnet{VPC: v["vpc"], Name: req.Name, CIDR: p, Host: req.Host}, nil
		},
		update: func(s *server, data []byte, v map[string]string) (topology.Object, *requestError) {
			var req SubnetUpdateRequest
			if err := s.decodeObject(data, &req); err != nil {
				return nil, err
			}
			if err := checkVPC(v["vpc"], req.VPC); err != nil {
				return nil, err
			}
			if req.Name != "" && req.Name != v["name"] {
				return nil, badRequest("name", "a subnet cannot be renamed (the body says %q but the URL says %q)", req.Name, v["name"])
			}
			p, err := parsePrefix("cidr", req.CIDR)
			if err != nil {
				return nil, err
			}
			return &topology.Subnet{VPC: v["vpc"], Name: v["name"], CIDR: p, Host: req.Host}, nil
		},
		ref: func(v map[string]string) topology.Object { return &topology.Subnet{VPC: v["vpc"], Name: v["name"]} },
		location: func(o topology.Object) string {
			s := o.(*topology.Subnet)
			return location("vpcs", s.VPC, "subnets", s.Name)
		},
	}
}

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
	out, _, err := c.ListSubnetsPage(ctx, vpc, Page{})
	return out, err
}

// ListSubnetsPage lists one page of a VPC's route entries, by name, and
// the page's PageInfo (the next page's token and how many items match).
func (c *Client) ListSubnetsPage(ctx context.Context, vpc string, pg Page) ([]topology.Subnet, PageInfo, error) {
	var out []topology.Subnet
	info, err := c.listPage(ctx, path("vpcs", vpc, "subnets"), pg, &out)
	return out, info, err
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
