package api

import (
	"context"
	"net/http"

	"github.com/vpcflow/vpcflow/topology"
)

// SecurityGroupRequest is the body of POST /v1/vpcs/{vpc}/security-groups
// and of PUT …/security-groups/{name} (which changes the description
// only).
type SecurityGroupRequest struct {
	VPC         string `json:"vpc,omitempty"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// securityGroupResource: /v1/vpcs/{vpc}/security-groups[/{name}], and the
// group's rules under …/{name}/rules (secgroup_rules.go). Hosts join
// groups through their security_groups (PUT …/hosts/{name}).
func securityGroupResource() resource {
	return resource{
		path: "/v1/vpcs/{vpc}/security-groups", item: "name", inVPC: true,
		list: func(st *topology.State, v map[string]string) any { return nonNil(st.SecurityGroups(v["vpc"])) },
		get: func(st *topology.State, v map[string]string) (any, bool) {
			x, ok := st.SecurityGroup(v["vpc"], v["name"])
			return x, ok
		},
		what: inVPCWhat("security group"),
		create: func(s *server, data []byte, v map[string]string) (topology.Object, *requestError) {
			var req SecurityGroupRequest
			if err := s.decodeObject(data, &req); err != nil {
				return nil, err
			}
			if err := checkVPC(v["vpc"], req.VPC); err != nil {
				return nil, err
			}
			return &topology.SecurityGroup{VPC: v["vpc"], Name: req.Name, Description: req.Description}, nil
		},
		update: func(s *server, data []byte, v map[string]string) (topology.Object, *requestError) {
			var req SecurityGroupRequest
			if err := s.decodeObject(data, &req); err != nil {
				return nil, err
			}
			if err := checkVPC(v["vpc"], req.VPC); err != nil {
				return nil, err
			}
			if req.Name != "" && req.Name != v["name"] {
				return nil, badRequest("name", "a security group cannot be renamed (the body says %q but the URL says %q)", req.Name, v["name"])
			}
			return &topology.SecurityGroup{VPC: v["vpc"], Name: v["name"], Description: req.Description}, nil
		},
		ref: func(v map[string]string) topology.Object {
			return &topology.SecurityGroup{VPC: v["vpc"], Name: v["name"]}
		},
		location: func(o topology.Object) string {
			g := o.(*topology.SecurityGroup)
			return location("vpcs", g.VPC, "security-groups", g.Name)
		},
		extra: ruleRoutes,
	}
}

// CreateSecurityGroup creates a security group in a VPC.
func (c *Client) CreateSecurityGroup(ctx context.Context, vpc string, req SecurityGroupRequest) (topology.SecurityGroup, error) {
	var g topology.SecurityGroup
	err := c.do(ctx, http.MethodPost, path("vpcs", vpc, "security-groups"), req, &g)
	return g, err
}

// ListSecurityGroups lists a VPC's security groups.
func (c *Client) ListSecurityGroups(ctx context.Context, vpc string) ([]topology.SecurityGroup, error) {
	out, _, err := c.ListSecurityGroupsPage(ctx, vpc, Page{})
	return out, err
}

// ListSecurityGroupsPage lists one page of a VPC's security groups, by
// name, and the page's PageInfo (the next page's token and how many items
// match).
func (c *Client) ListSecurityGroupsPage(ctx context.Context, vpc string, pg Page) ([]topology.SecurityGroup, PageInfo, error) {
	var out []topology.SecurityGroup
	info, err := c.listPage(ctx, path("vpcs", vpc, "security-groups"), pg, &out)
	return out, info, err
}

// GetSecurityGroup returns one security group.
func (c *Client) GetSecurityGroup(ctx context.Context, vpc, name string) (topology.SecurityGroup, error) {
	var g topology.SecurityGroup
	err := c.do(ctx, http.MethodGet, path("vpcs", vpc, "security-groups", name), nil, &g)
	return g, err
}

// UpdateSecurityGroup changes a security group's description.
func (c *Client) UpdateSecurityGroup(ctx context.Context, vpc, name, description string) (topology.SecurityGroup, error) {
	var g topology.SecurityGroup
	err := c.do(ctx, http.MethodPut, path("vpcs", vpc, "security-groups", name), SecurityGroupRequest{Description: description}, &g)
	return g, err
}

// DeleteSecurityGroup deletes a security group nothing uses, or with
// Cascade(true) its rules and the rules naming it as their peer too (never
// its member hosts: a group with members is not deleted).
func (c *Client) DeleteSecurityGroup(ctx context.Context, vpc, name string, opts ...DeleteOption) error {
	return c.do(ctx, http.MethodDelete, withQuery(path("vpcs", vpc, "security-groups", name), opts), nil, nil)
}

// SetHostSecurityGroups puts a host in exactly the given groups (none
// takes it out of every group), leaving the rest of the host as it is.
func (c *Client) SetHostSecurityGroups(ctx context.Context, vpc, host string, groups []string) (topology.Host, error) {
	var h topology.Host
	body := struct {
		SecurityGroups []string `json:"security_groups"`
	}{nonNil(groups)}
	err := c.do(ctx, http.MethodPut, path("vpcs", vpc, "hosts", host), body, &h)
	return h, err
}
