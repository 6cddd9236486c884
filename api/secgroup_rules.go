package api

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"github.com/vpcflow/vpcflow/controller"
	"github.com/vpcflow/vpcflow/topology"
)

// SecurityGroupRuleRequest is the body (or an array element) of
// POST /v1/vpcs/{vpc}/security-groups/{sg}/rules, and of PUT …/rules/{id},
// where what is left out stays as it is (the direction cannot change).
//
// Direction is ingress or egress; Policy accept (default) or drop;
// Priority 1–100 (default 1; 1 is evaluated first, and at equal priority
// drop wins); Protocol tcp, udp, icmp or all; PortRange "start/end" of
// destination ports for tcp and udp, "-1/-1" (the default) for icmp and
// all; and one peer: CIDR (an IPv4 prefix or address; 0.0.0.0/0 for
// anywhere) or SecurityGroup (a group of the same VPC: its members'
// addresses, as members come and go).
type SecurityGroupRuleRequest struct {
	Direction     string `json:"direction,omitempty"`
	Policy        string `json:"policy,omitempty"`
	Priority      int    `json:"priority,omitempty"`
	Protocol      string `json:"protocol,omitempty"`
	PortRange     string `json:"port_range,omitempty"`
	CIDR          string `json:"cidr,omitempty"`
	SecurityGroup string `json:"security_group,omitempty"`
	Description   string `json:"description,omitempty"`
}

// ruleBody is SecurityGroupRuleRequest as the server reads it: a given
// priority of 0 is an error, not "default".
type ruleBody struct {
	Direction     string `json:"direction"`
	Policy        string `json:"policy"`
	Priority      *int   `json:"priority"`
	Protocol      string `json:"protocol"`
	PortRange     string `json:"port_range"`
	CIDR          string `json:"cidr"`
	SecurityGroup string `json:"security_group"`
	Description   string `json:"description"`
}

// SecurityGroupRule is a rule as GET …/rules shows it: with the packets
// and bytes it matched on every connected switch (left out when the
// switches cannot be asked).
type SecurityGroupRule struct {
	topology.SecurityGroupRule
	Hits *controller.RuleHits `json:"hits,omitempty"`
}

// ruleHitsReader is the part of the backend that reads rule counters (the
// controller has it).
type ruleHitsReader interface {
	RuleHits(ctx context.Context, ids []uint32) (map[uint32]controller.RuleHits, error)
}

const rulesPath = "/v1/vpcs/{vpc}/security-groups/{sg}/rules"

// ruleRoutes are a security group's rules: list (with hits), add (one or
// an array, all or none), get, change, delete.
func ruleRoutes(s *server) []route {
	return []route{
		{rulesPath, http.MethodGet, s.listRules},
		{rulesPath, http.MethodPost, s.createRules},
		{rulesPath + "/{id}", http.MethodGet, s.getRule},
		{rulesPath + "/{id}", http.MethodPut, s.updateRule},
		{rulesPath + "/{id}", http.MethodDelete, s.deleteRule},
	}
}

// findGroup checks that the URL's VPC and group exist.
func findGroup(st *topology.State, v map[string]string) error {
	if _, ok := st.VPC(v["vpc"]); !ok {
		return notFound("vpc", "VPC %s does not exist", quote(v["vpc"]))
	}
	if _, ok := st.SecurityGroup(v["vpc"], v["sg"]); !ok {
		return notFound("group", "security group %s does not exist in VPC %q", quote(v["sg"]), v["vpc"])
	}
	return nil
}

// ruleID reads the URL's rule id.
func ruleID(v map[string]string) (uint32, *requestError) {
	id, err := strconv.ParseUint(v["id"], 10, 32)
	if err != nil || id == 0 {
		return 0, badRequest("id", "%s is not a rule id: want a number from 1", quote(v["id"]))
	}
	return uint32(id), nil
}

// hits reads the counters of rules, if the backend can.
func (s *server) hits(r *http.Request, rules []topology.SecurityGroupRule) (map[uint32]controller.RuleHits, error) {
	hr, ok := s.b.(ruleHitsReader)
	if !ok {
		return nil, nil
	}
	ids := make([]uint32, len(rules))
	for i, x := range rules {
		ids[i] = x.ID
	}
	return hr.RuleHits(r.Context(), ids)
}

func withHits(rules []topology.SecurityGroupRule, hits map[uint32]controller.RuleHits) []SecurityGroupRule {
	out := make([]SecurityGroupRule, len(rules))
	for i, r := range rules {
		out[i].SecurityGroupRule = r
		if hits != nil {
			h := hits[r.ID]
			out[i].Hits = &h
		}
	}
	return out
}

func (s *server) listRules(w http.ResponseWriter, r *http.Request) {
	v := mux.Vars(r)
	p, rerr := parsePage(r)
	if rerr != nil {
		s.writeError(w, r, rerr)
		return
	}
	var rules []topology.SecurityGroupRule
	var err error
	s.b.Read(func(st *topology.State) {
		if err = findGroup(st, v); err == nil {
			rules = st.RulesOf(v["vpc"], v["sg"])
		}
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// Pages by rule id.
	rules = paginate(w, r, p, rules, func(x *topology.SecurityGroupRule) string { return fmt.Sprintf("%010d", x.ID) })
	hits, err := s.hits(r, rules)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, withHits(rules, hits))
}

func (s *server) getRule(w http.ResponseWriter, r *http.Request) {
	v := mux.Vars(r)
	id, rerr := ruleID(v)
	if rerr != nil {
		s.writeError(w, r, rerr)
		return
	}
	var rule topology.SecurityGroupRule
	var err error
	s.b.Read(func(st *topology.State) {
		if err = findGroup(st, v); err != nil {
			return
		}
		var ok bool
		if rule, ok = st.SecurityGroupRule(v["vpc"], v["sg"], id); !ok {
			err = notFound("id", "security group %q has no rule %d", v["sg"], id)
		}
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	hits, err := s.hits(r, []topology.SecurityGroupRule{rule})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, withHits([]topology.SecurityGroupRule{rule}, hits)[0])
}

// toRule converts a rule body of the URL's group; update says a PUT is
// being read (a left-out priority is then 0: "keep").
func (req *ruleBody) toRule(v map[string]string, update bool) (*topology.SecurityGroupRule, *requestError) {
	r := &topology.SecurityGroupRule{VPC: v["vpc"], Group: v["sg"], Direction: req.Direction, Policy: req.Policy,
		Protocol: req.Protocol, PortRange: req.PortRange, SecurityGroup: req.SecurityGroup, Description: req.Description}
	switch {
	case req.Priority != nil && *req.Priority == 0:
		return nil, badRequest("priority", "0 is out of range: use %d..%d (%d is evaluated first)", topology.MinRulePriority, topology.MaxRulePriority, topology.MinRulePriority)
	case req.Priority != nil:
		r.Priority = *req.Priority
	case !update:
		r.Priority = topology.MinRulePriority
	}
	if req.CIDR != "" {
		p, err := parseRuleCIDR(req.CIDR)
		if err != nil {
			return nil, err
		}
		r.CIDR = p
	}
	return r, nil
}

// parseRuleCIDR reads a peer CIDR; a bare address is its /32, as Aliyun
// takes it.
func parseRuleCIDR(s string) (netip.Prefix, *requestError) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err == nil && a.Is4() {
			return netip.PrefixFrom(a, 32), nil
		}
	}
	return parsePrefix("cidr", s)
}

func (s *server) createRules(w http.ResponseWriter, r *http.Request) {
	v := mux.Vars(r)
	body, rerr := readBody(w, r, s.opts.MaxBodyBytes)
	if rerr != nil {
		s.writeError(w, r, rerr)
		return
	}
	var err error
	s.b.Read(func(st *topology.State) { err = findGroup(st, v) })
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	decode := func(data []byte) (topology.Object, *requestError) {
		var req ruleBody
		if err := s.decodeObject(data, &req); err != nil {
			return nil, err
		}
		rule, rerr := req.toRule(v, false)
		if rerr != nil {
			return nil, rerr
		}
		return rule, nil
	}
	s.createFromBody(w, r, body, true, decode, func(o topology.Object) string {
		return ruleLocation(o.(*topology.SecurityGroupRule))
	})
}

func (s *server) updateRule(w http.ResponseWriter, r *http.Request) {
	v := mux.Vars(r)
	id, rerr := ruleID(v)
	if rerr != nil {
		s.writeError(w, r, rerr)
		return
	}
	body, rerr := readBody(w, r, s.opts.MaxBodyBytes)
	if rerr != nil {
		s.writeError(w, r, rerr)
		return
	}
	var req ruleBody
	if rerr := s.decodeObject(body, &req); rerr != nil {
		s.writeError(w, r, rerr)
		return
	}
	rule, rerr := req.toRule(v, true)
	if rerr != nil {
		s.writeError(w, r, rerr)
		return
	}
	rule.ID = id
	if err := s.ruleExists(v, id); err != nil {
		s.writeError(w, r, err)
		return
	}
	out, err := s.apply(r, []topology.Op{topology.Update(rule)})
	if out == nil {
		s.writeError(w, r, err)
		return
	}
	if s.stored(w, r, err, out[0].Obj, nil) {
		return
	}
	writeJSON(w, http.StatusOK, out[0].Obj)
}

func (s *server) deleteRule(w http.ResponseWriter, r *http.Request) {
	v := mux.Vars(r)
	id, rerr := ruleID(v)
	if rerr != nil {
		s.writeError(w, r, rerr)
		return
	}
	if err := s.ruleExists(v, id); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.deleteOp(w, r, topology.Delete(&topology.SecurityGroupRule{VPC: v["vpc"], Group: v["sg"], ID: id}, false))
}

// ruleExists answers 404 naming the VPC, the group or the rule id.
func (s *server) ruleExists(v map[string]string, id uint32) error {
	var err error
	s.b.Read(func(st *topology.State) {
		if err = findGroup(st, v); err != nil {
			return
		}
		if _, ok := st.SecurityGroupRule(v["vpc"], v["sg"], id); !ok {
			err = notFound("id", "security group %q has no rule %d", v["sg"], id)
		}
	})
	return err
}

func ruleLocation(r *topology.SecurityGroupRule) string {
	return location("vpcs", r.VPC, "security-groups", r.Group, "rules", strconv.FormatUint(uint64(r.ID), 10))
}

// CreateSecurityGroupRule adds one rule to a group.
func (c *Client) CreateSecurityGroupRule(ctx context.Context, vpc, group string, req SecurityGroupRuleRequest) (topology.SecurityGroupRule, error) {
	var r topology.SecurityGroupRule
	err := c.do(ctx, http.MethodPost, path("vpcs", vpc, "security-groups", group, "rules"), req, &r)
	return r, err
}

// CreateSecurityGroupRules adds several rules to a group, all or none.
func (c *Client) CreateSecurityGroupRules(ctx context.Context, vpc, group string, reqs []SecurityGroupRuleRequest) ([]topology.SecurityGroupRule, error) {
	var out []topology.SecurityGroupRule
	err := c.do(ctx, http.MethodPost, path("vpcs", vpc, "security-groups", group, "rules"), nonNil(reqs), &out)
	return out, err
}

// ListSecurityGroupRules lists a group's rules with their hits.
func (c *Client) ListSecurityGroupRules(ctx context.Context, vpc, group string) ([]SecurityGroupRule, error) {
	out, _, err := c.ListSecurityGroupRulesPage(ctx, vpc, group, Page{})
	return out, err
}

// ListSecurityGroupRulesPage lists one page of a group's rules (by id)
// with their hits, and the page's PageInfo (the next page's token and how
// many items match).
func (c *Client) ListSecurityGroupRulesPage(ctx context.Context, vpc, group string, pg Page) ([]SecurityGroupRule, PageInfo, error) {
	var out []SecurityGroupRule
	info, err := c.listPage(ctx, path("vpcs", vpc, "security-groups", group, "rules"), pg, &out)
	return out, info, err
}

// GetSecurityGroupRule returns one rule with its hits.
func (c *Client) GetSecurityGroupRule(ctx context.Context, vpc, group string, id uint32) (SecurityGroupRule, error) {
	var r SecurityGroupRule
	err := c.do(ctx, http.MethodGet, path("vpcs", vpc, "security-groups", group, "rules", strconv.FormatUint(uint64(id), 10)), nil, &r)
	return r, err
}

// UpdateSecurityGroupRule changes a rule; what req leaves out stays.
func (c *Client) UpdateSecurityGroupRule(ctx context.Context, vpc, group string, id uint32, req SecurityGroupRuleRequest) (topology.SecurityGroupRule, error) {
	var r topology.SecurityGroupRule
	err := c.do(ctx, http.MethodPut, path("vpcs", vpc, "security-groups", group, "rules", strconv.FormatUint(uint64(id), 10)), req, &r)
	return r, err
}

// DeleteSecurityGroupRule deletes a rule.
func (c *Client) DeleteSecurityGroupRule(ctx context.Context, vpc, group string, id uint32) error {
	return c.do(ctx, http.MethodDelete, path("vpcs", vpc, "security-groups", group, "rules", strconv.FormatUint(uint64(id), 10)), nil, nil)
}
