package api

import (
	"context"
	"fmt"
	"net/http"

	"github.com/vpcflow/vpcflow/topology"
)

// DHCPOptionsRequest is the body of POST /v1/vpcs/{vpc}/dhcp-options and
// of PUT /v1/vpcs/{vpc}/dhcp-options/{name} (which replaces the set: a
// field left out is cleared). A VPC has at most one DHCP options set.
type DHCPOptionsRequest struct {
	VPC          string               `json:"vpc,omitempty"`
	Name         string               `json:"name"`
	DomainName   string               `json:"domain_name,omitempty"`
	DNSServers   []string             `json:"dns_servers,omitempty"`
	LeaseTime    uint32               `json:"lease_time,omitempty"` // seconds
	StaticRoutes []StaticRouteRequest `json:"static_routes,omitempty"`
}

// StaticRouteRequest is one classless static route (DHCP option 121).
type StaticRouteRequest struct {
	CIDR    string `json:"cidr"`
	NextHop string `json:"next_hop"`
}

// dhcpOptionsResource: /v1/vpcs/{vpc}/dhcp-options[/{name}], the VPC's
// DHCP options set (Aliyun's DhcpOptionsSet: domain name, up to 4 DNS
// servers; and the lease time and classless static routes).
func dhcpOptionsResource() resource {
	return resource{
		path: "/v1/vpcs/{vpc}/dhcp-options", item: "name", inVPC: true,
		list: func(st *topology.State, v map[string]string) any { return nonNil(st.DHCPOptionsSets(v["vpc"])) },
		get: func(st *topology.State, v map[string]string) (any, bool) {
			x, ok := st.DHCPOptionsSet(v["vpc"], v["name"])
			return x, ok
		},
		what: inVPCWhat("DHCP options set"),
		create: func(s *server, data []byte, v map[string]string) (topology.Object, *requestError) {
			return decodeDHCPOptions(s, data, v, "")
		},
		update: func(s *server, data []byte, v map[string]string) (topology.Object, *requestError) {
			return decodeDHCPOptions(s, data, v, v["name"])
		},
		ref: func(v map[string]string) topology.Object {
			return &topology.DHCPOptions{VPC: v["vpc"], Name: v["name"]}
		},
		location: func(o topology.Object) string {
			d := o.(*topology.DHCPOptions)
			return location("vpcs", d.VPC, "dhcp-options", d.Name)
		},
	}
}

// decodeDHCPOptions reads a request; urlName is the name an update's URL
// gives ("" for a create).
func decodeDHCPOptions(s *server, data []byte, v map[string]string, urlName string) (topology.Object, *requestError) {
	var req DHCPOptionsRequest
	if err := s.decodeObject(data, &req); err != nil {
		return nil, err
	}
	if err := checkVPC(v["vpc"], req.VPC); err != nil {
		return nil, err
	}
	name := req.Name
	if urlName != "" {
		if name != "" && name != urlName {
			return nil, badRequest("name", "a DHCP options set cannot be renamed (the body says %q but the URL says %q)", name, urlName)
		}
		name = urlName
	}
	d := &topology.DHCPOptions{VPC: v["vpc"], Name: name, DomainName: req.DomainName, LeaseTime: req.LeaseTime}
	for i, s := range req.DNSServers {
		a, err := parseAddrAs(fmt.Sprintf("dns_servers[%d]", i), s, "100.100.2.136")
		if err != nil {
			return nil, err
		}
		if !a.IsValid() {
			return nil, badRequest(fmt.Sprintf("dns_servers[%d]", i), "empty address")
		}
		d.DNSServers = append(d.DNSServers, a)
	}
	for i, r := range req.StaticRoutes {
		p, err := parsePrefix(fmt.Sprintf("static_routes[%d].cidr", i), r.CIDR)
		if err != nil {
			return nil, err
		}
		nh, err := parseAddr(fmt.Sprintf("static_routes[%d].next_hop", i), r.NextHop)
		if err != nil {
			return nil, err
		}
		d.StaticRoutes = append(d.StaticRoutes, topology.StaticRoute{CIDR: p, NextHop: nh})
	}
	return d, nil
}

// CreateDHCPOptions creates a VPC's DHCP options set.
func (c *Client) CreateDHCPOptions(ctx context.Context, vpc string, req DHCPOptionsRequest) (topology.DHCPOptions, error) {
	var d topology.DHCPOptions
	err := c.do(ctx, http.MethodPost, path("vpcs", vpc, "dhcp-options"), req, &d)
	return d, err
}

// UpdateDHCPOptions replaces a DHCP options set's values.
func (c *Client) UpdateDHCPOptions(ctx context.Context, vpc, name string, req DHCPOptionsRequest) (topology.DHCPOptions, error) {
	var d topology.DHCPOptions
	err := c.do(ctx, http.MethodPut, path("vpcs", vpc, "dhcp-options", name), req, &d)
	return d, err
}

// ListDHCPOptions lists a VPC's DHCP options sets (at most one).
func (c *Client) ListDHCPOptions(ctx context.Context, vpc string) ([]topology.DHCPOptions, error) {
	var out []topology.DHCPOptions
	err := c.do(ctx, http.MethodGet, path("vpcs", vpc, "dhcp-options"), nil, &out)
	return out, err
}

// ListDHCPOptionsPage lists one page of a VPC's DHCP options sets, by
// name, and the page's PageInfo (the next page's token and how many items
// match).
func (c *Client) ListDHCPOptionsPage(ctx context.Context, vpc string, pg Page) ([]topology.DHCPOptions, PageInfo, error) {
	var out []topology.DHCPOptions
	info, err := c.listPage(ctx, path("vpcs", vpc, "dhcp-options"), pg, &out)
	return out, info, err
}

// GetDHCPOptions returns one DHCP options set.
func (c *Client) GetDHCPOptions(ctx context.Context, vpc, name string) (topology.DHCPOptions, error) {
	var d topology.DHCPOptions
	err := c.do(ctx, http.MethodGet, path("vpcs", vpc, "dhcp-options", name), nil, &d)
	return d, err
}

// DeleteDHCPOptions deletes a DHCP options set.
func (c *Client) DeleteDHCPOptions(ctx context.Context, vpc, name string) error {
	return c.do(ctx, http.MethodDelete, path("vpcs", vpc, "dhcp-options", name), nil, nil)
}
