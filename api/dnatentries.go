package api

import (
	"context"
	"net/http"

	"github.com/vpcflow/vpcflow/topology"
)

// DNATEntryRequest is the body (or an array element) of POST
// /v1/vpcs/{vpc}/dnat-entries: connections to ExternalIP (an address of
// the NAT gateway) with Protocol tcp or udp to ExternalPort ("80", or a
// range "8000/8010") go to InternalIP at InternalPort (a range of the
// same size, port for port); Protocol "any" maps the whole address (and
// then the target sends from it too). The public side and the private
// side are each unique; a NAT gateway holds at most 100 entries. Name
// defaults to dnat-PROTOCOL-IP-PORT. PUT …/dnat-entries/{name} changes
// the private side.
type DNATEntryRequest struct {
	VPC          string `json:"vpc,omitempty"`
	Name         string `json:"name,omitempty"`
	NATGateway   string `json:"nat_gateway,omitempty"`
	ExternalIP   string `json:"external_ip,omitempty"`
	Protocol     string `json:"protocol,omitempty"`
	ExternalPort string `json:"external_port,omitempty"`
	InternalIP   string `json:"internal_ip,omitempty"`
	InternalPort string `json:"internal_port,omitempty"`
}

func (req *DNATEntryRequest) toEntry(vpc, name string) (*topology.DNATEntry, *requestError) {
	if err := checkVPC(vpc, req.VPC); err != nil {
		return nil, err
	}
	ext, err := parseAddrAs("external_ip", req.ExternalIP, "203.0.113.10")
	if err != nil {
		return nil, err
	}
	in, err := parseAddr("internal_ip", req.InternalIP)
	if err != nil {
		return nil, err
	}
	return &topology.DNATEntry{VPC: vpc, Name: name, NATGateway: req.NATGateway, ExternalIP: ext, Protocol: req.Protocol,
		ExternalPort: req.ExternalPort, InternalIP: in, InternalPort: req.InternalPort}, nil
}

// dnatEntryResource: /v1/vpcs/{vpc}/dnat-entries[/{name}].
func dnatEntryResource() resource {
	create, update := natEntryWrites[DNATEntryRequest, *DNATEntryRequest, *topology.DNATEntry]("a DNAT entry")
	return resource{
		create: create, update: update,
		path: "/v1/vpcs/{vpc}/dnat-entries", item: "name", inVPC: true, batch: true,
		list: func(st *topology.State, v map[string]string) any { return nonNil(st.DNATEntries(v["vpc"])) },
		get: func(st *topology.State, v map[string]string) (any, bool) {
			x, ok := st.DNATEntry(v["vpc"], v["name"])
			return x, ok
		},
		what: inVPCWhat("DNAT entry"),
		ref:  func(v map[string]string) topology.Object { return &topology.DNATEntry{VPC: v["vpc"], Name: v["name"]} },
		location: func(o topology.Object) string {
			e := o.(*topology.DNATEntry)
			return location("vpcs", e.VPC, "dnat-entries", e.Name)
		},
	}
}

// CreateDNATEntry adds a DNAT entry.
func (c *Client) CreateDNATEntry(ctx context.Context, vpc string, req DNATEntryRequest) (topology.DNATEntry, error) {
	var e topology.DNATEntry
	err := c.do(ctx, http.MethodPost, path("vpcs", vpc, "dnat-entries"), req, &e)
	return e, err
}

// ListDNATEntries lists a VPC's DNAT entries.
func (c *Client) ListDNATEntries(ctx context.Context, vpc string) ([]topology.DNATEntry, error) {
	out, _, err := c.ListDNATEntriesPage(ctx, vpc, Page{})
	return out, err
}

// ListDNATEntriesPage lists one page of a VPC's DNAT entries, by name, and
// the page's PageInfo (the next page's token and how many items match).
func (c *Client) ListDNATEntriesPage(ctx context.Context, vpc string, pg Page) ([]topology.DNATEntry, PageInfo, error) {
	var out []topology.DNATEntry
	info, err := c.listPage(ctx, path("vpcs", vpc, "dnat-entries"), pg, &out)
	return out, info, err
}

// DeleteDNATEntry deletes a DNAT entry.
func (c *Client) DeleteDNATEntry(ctx context.Context, vpc, name string) error {
	return c.do(ctx, http.MethodDelete, path("vpcs", vpc, "dnat-entries", name), nil, nil)
}
