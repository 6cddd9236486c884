package api

import (
	"context"
	"net/http"

	"github.com/vpcflow/vpcflow/topology"
)

// VPCRequest is the body of POST /v1/vpcs.
type VPCRequest struct {
	Name   string `json:"name"`
	CIDR   string `json:"cidr,omitempty"`
	DecTTL bool   `json:"dec_ttl,omitempty"`
}

// vpcResource: /v1/vpcs, /v1/vpcs/{vpc}.
func vpcResource() resource {
	return resource{
		path: "/v1/vpcs", item: "vpc",
		list: func(st *topology.State, _ map[string]string) any { return nonNil(st.VPCs()) },
		get: func(st *topology.State, v map[string]string) (any, bool) {
			x, ok := st.VPC(v["vpc"])
			return x, ok
		},
		what: func(v map[string]string) string { return "VPC " + quote(v["vpc"]) + " does not exist" },
		create: func(s *server, data []byte, _ map[string]string) (topology.Object, *requestError) {
			var req VPCRequest
			if err := s.decodeObject(data, &req); err != nil {
				return nil, err
			}
			p, err := parsePrefix("cidr", req.CIDR)
			if err != nil {
				return nil, err
			}
			return &topology.VPC{Name: req.Name, CIDR: p, DecTTL: req.DecTTL}, nil
		},
		ref:      func(v map[string]string) topology.Object { return &topology.VPC{Name: v["vpc"]} },
		location: func(o topology.Object) string { return location("vpcs", o.(*topology.VPC).Name) },
	}
}

// CreateVPC creates a VPC.
func (c *Client) CreateVPC(ctx context.Context, req VPCRequest) (topology.VPC, error) {
	var v topology.VPC
	err := c.do(ctx, http.MethodPost, path("vpcs"), req, &v)
	return v, err
}

// ListVPCs lists every VPC.
func (c *Client) ListVPCs(ctx context.Context) ([]topology.VPC, error) {
	out, _, err := c.ListVPCsPage(ctx, Page{})
	return out, err
}

// ListVPCsPage lists one page of the VPCs, by name, and the page's
// PageInfo (the next page's token and how many items match).
func (c *Client) ListVPCsPage(ctx context.Context, pg Page) ([]topology.VPC, PageInfo, error) {
	var out []topology.VPC
	info, err := c.listPage(ctx, path("vpcs"), pg, &out)
	return out, info, err
}

// GetVPC returns one VPC.
func (c *Client) GetVPC(ctx context.Context, name string) (topology.VPC, error) {
	var v topology.VPC
	err := c.do(ctx, http.MethodGet, path("vpcs", name), nil, &v)
	return v, err
}

// DeleteVPC deletes an empty VPC, or with Cascade(true) everything in it.
func (c *Client) DeleteVPC(ctx context.Context, name string, opts ...DeleteOption) error {
	return c.do(ctx, http.MethodDelete, withQuery(path("vpcs", name), opts), nil, nil)
}
