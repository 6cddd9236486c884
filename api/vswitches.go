package api

import (
	"context"
	"net/http"

	"github.com/vpcflow/vpcflow/topology"
)

// VSwitchRequest is the body of POST /v1/vpcs/{vpc}/vswitches. VPC is
// optional; the URL's VPC wins and a different one here is an error.
type VSwitchRequest struct {
	VPC     string `json:"vpc,omitempty"`
	Name    string `json:"name"`
	CIDR    string `json:"cidr"`
	Gateway string `json:"gateway,omitempty"`
}

// vswitchResource: /v1/vpcs/{vpc}/vswitches[/{name}].
func vswitchResource() resource {
	return resource{
		path: "/v1/vpcs/{vpc}/vswitches", item: "name", inVPC: true,
		list: func(st *topology.State, v map[string]string) any { return nonNil(st.VSwitches(v["vpc"])) },
		get: func(st *topology.State, v map[string]string) (any, bool) {
			x, ok := st.VSwitch(v["vpc"], v["name"])
			return x, ok
		},
		what: inVPCWhat("vSwitch"),
		view: func(s *server, v any) any {
			s.b.Read(func(st *topology.State) {
				count := func(w topology.VSwitch) VSwitchView {
					return VSwitchView{VSwitch: w, HostCount: st.HostCountOfVSwitch(w.VPC, w.Name)}
				}
				switch x := v.(type) {
				case topology.VSwitch:
					v = count(x)
				case []topology.VSwitch:
					out := make([]VSwitchView, len(x))
					for i, w := range x {
						out[i] = count(w)
					}
					v = out
				}
			})
			return v
		},
		create: func(s *server, data []byte, v map[string]string) (topology.Object, *requestError) {
			var req VSwitchRequest
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
			gw, err := parseAddr("gateway", req.Gateway)
			if err != nil {
				return nil, err
			}
			return &topology.VSwitch{VPC: v["vpc"], Name: req.Name, CIDR: p, Gateway: gw}, nil
		},
		ref: func(v map[string]string) topology.Object { return &topology.VSwitch{VPC: v["vpc"], Name: v["name"]} },
		location: func(o topology.Object) string {
			w := o.(*topology.VSwitch)
			return location("vpcs", w.VPC, "vswitches", w.Name)
		},
	}
}

// CreateVSwitch creates a vSwitch in vpc.
func (c *Client) CreateVSwitch(ctx context.Context, vpc string, req VSwitchRequest) (topology.VSwitch, error) {
	var v topology.VSwitch
	err := c.do(ctx, http.MethodPost, path("vpcs", vpc, "vswitches"), req, &v)
	return v, err
}

// ListVSwitches lists a VPC's vSwitches, with their host counts.
func (c *Client) ListVSwitches(ctx context.Context, vpc string) ([]VSwitchView, error) {
	out, _, err := c.ListVSwitchesPage(ctx, vpc, Page{})
	return out, err
}

// ListVSwitchesPage lists one page of a VPC's vSwitches, by name, and the
// page's PageInfo (the next page's token and how many items match).
func (c *Client) ListVSwitchesPage(ctx context.Context, vpc string, pg Page) ([]VSwitchView, PageInfo, error) {
	var out []VSwitchView
	info, err := c.listPage(ctx, path("vpcs", vpc, "vswitches"), pg, &out)
	return out, info, err
}

// GetVSwitch returns one vSwitch, with its host count.
func (c *Client) GetVSwitch(ctx context.Context, vpc, name string) (VSwitchView, error) {
	var v VSwitchView
	err := c.do(ctx, http.MethodGet, path("vpcs", vpc, "vswitches", name), nil, &v)
	return v, err
}

// DeleteVSwitch deletes a vSwitch without hosts, or with Cascade(true) its
// hosts and their subnets too.
func (c *Client) DeleteVSwitch(ctx context.Context, vpc, name string, opts ...DeleteOption) error {
	return c.do(ctx, http.MethodDelete, withQuery(path("vpcs", vpc, "vswitches", name), opts), nil, nil)
}
