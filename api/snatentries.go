package api

import (
	"context"
	"net/http"

	"github.com/vpcflow/vpcflow/topology"
)

// SNATEntryRequest is the body (or an array element) of POST
// /v1/vpcs/{vpc}/snat-entries: connections from one scope — a vSwitch, a
// host, or a source CIDR (0.0.0.0/0: the whole VPC) — leave through the
// NAT gateway from SNATIPs (consecutive addresses of the gateway). The
// most specific scope wins; a host's EIP (or a DNAT IP mapping) wins over
// every entry. NATGateway defaults to the VPC's (it has one). Name defaults to the scope. PUT …/snat-entries/{name}
// changes the addresses.
type SNATEntryRequest struct {
	VPC        string   `json:"vpc,omitempty"`
	Name       string   `json:"name,omitempty"`
	NATGateway string   `json:"nat_gateway,omitempty"`
	VSwitch    string   `json:"vswitch,omitempty"`
	Host       string   `json:"host,omitempty"`
	SourceCIDR string   `json:"source_cidr,omitempty"`
	SNATIPs    []string `json:"snat_ips,omitempty"`
}

func (req *SNATEntryRequest) toEntry(vpc, name string) (*topology.SNATEntry, *requestError) {
	if err := checkVPC(vpc, req.VPC); err != nil {
		return nil, err
	}
	src, err := parsePrefix("source_cidr", req.SourceCIDR)
	if err != nil {
		return nil, err
	}
	ips, err := parseAddrs("snat_ips", req.SNATIPs)
	if err != nil {
		return nil, err
	}
	return &topology.SNATEntry{VPC: vpc, Name: name, NATGateway: req.NATGateway, VSwitch: req.VSwitch, Host: req.Host,
		SourceCIDR: src, SNATIPs: ips}, nil
}

// snatEntryResource: /v1/vpcs/{vpc}/snat-entries[/{name}].
func snatEntryResource() resource {
	create, update := natEntryWrites[SNATEntryRequest, *SNATEntryRequest, *topology.SNATEntry]("an SNAT entry")
	return resource{
		create: create, update: update,
		path: "/v1/vpcs/{vpc}/snat-entries", item: "name", inVPC: true, batch: true,
		list: func(st *topology.State, v map[string]string) any { return nonNil(st.SNATEntries(v["vpc"])) },
		get: func(st *topology.State, v map[string]string) (any, bool) {
			x, ok := st.SNATEntry(v["vpc"], v["name"])
			return x, ok
		},
		what: inVPCWhat("SNAT entry"),
		ref:  func(v map[string]string) topology.Object { return &topology.SNATEntry{VPC: v["vpc"], Name: v["name"]} },
		location: func(o topology.Object) string {
			e := o.(*topology.SNATEntry)
			return location("vpcs", e.VPC, "snat-entries", e.Name)
		},
	}
}

// CreateSNATEntry adds an SNAT entry.
func (c *Client) CreateSNATEntry(ctx context.Context, vpc string, req SNATEntryRequest) (topology.SNATEntry, error) {
	var e topology.SNATEntry
	err := c.do(ctx, http.MethodPost, path("vpcs", vpc, "snat-entries"), req, &e)
	return e, err
}

// ListSNATEntries lists a VPC's SNAT entries.
func (c *Client) ListSNATEntries(ctx context.Context, vpc string) ([]topology.SNATEntry, error) {
	out, _, err := c.ListSNATEntriesPage(ctx, vpc, Page{})
	return out, err
}

// ListSNATEntriesPage lists one page of a VPC's SNAT entries, by name, and
// the page's PageInfo (the next page's token and how many items match).
func (c *Client) ListSNATEntriesPage(ctx context.Context, vpc string, pg Page) ([]topology.SNATEntry, PageInfo, error) {
	var out []topology.SNATEntry
	info, err := c.listPage(ctx, path("vpcs", vpc, "snat-entries"), pg, &out)
	return out, info, err
}

// DeleteSNATEntry deletes an SNAT entry.
func (c *Client) DeleteSNATEntry(ctx context.Context, vpc, name string) error {
	return c.do(ctx, http.MethodDelete, path("vpcs", vpc, "snat-entries", name), nil, nil)
}
