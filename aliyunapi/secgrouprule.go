package aliyunapi

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/vpcflow/vpcflow/topology"
)

// Security group rules (ECS API): AuthorizeSecurityGroup[Egress],
// RevokeSecurityGroup[Egress], ModifySecurityGroup[Egress]Rule. A rule is
// a topology.SecurityGroupRule; its Aliyun ID ("sgr-vf…") is derived from
// its store ID like every other kind's.

// AliyunRulePrefix is the prefix of security group rules' Aliyun IDs.
const AliyunRulePrefix = "sgr"

// maxPermissions is how many Permissions.N one request may carry.
const maxPermissions = 100

// ruleAliyunID is a rule's Aliyun ID.
func ruleAliyunID(r topology.SecurityGroupRule) string {
	return topology.AliyunID(AliyunRulePrefix, r.ID)
}

func secGroupByAliyunID(st *topology.State, id string) (topology.SecurityGroup, bool) {
	n, ok := topology.ParseAliyunID(topology.AliyunSecurityGroupPrefix, id)
	if !ok {
		return topology.SecurityGroup{}, false
	}
	return st.SecurityGroupByID(n)
}

func errSecGroupNotFound(id string) *Error {
	return newError(http.StatusNotFound, "InvalidSecurityGroupId.NotFound", "The specified SecurityGroupId %q does not exist.", id)
}

// dirNames are the parameter names and codes of a direction: the peer is
// the source of an inbound rule and the destination of an outbound one.
type dirNames struct {
	dir                 string // topology direction
	peerCidr, peerGroup string // SourceCidrIp/SourceGroupId or DestCidrIp/DestGroupId
	localCidr           string // the member's own side: DestCidrIp (ingress), SourceCidrIp (egress)
	groupCode           string // "InvalidSourceGroupId" / "InvalidDestGroupId"
	missing             string // MissingParameter.Source / .Dest
}

var (
	ingressNames = dirNames{dir: topology.DirectionIngress, peerCidr: "SourceCidrIp", peerGroup: "SourceGroupId", localCidr: "DestCidrIp",
		groupCode: "InvalidSourceGroupId", missing: "MissingParameter.Source"}
	egressNames = dirNames{dir: topology.DirectionEgress, peerCidr: "DestCidrIp", peerGroup: "DestGroupId", localCidr: "SourceCidrIp",
		groupCode: "InvalidDestGroupId", missing: "MissingParameter.Dest"}
)

// ruleParams are the parameters that describe one rule, at the top level
// of a request or under Permissions.N.
var ruleParams = []string{"IpProtocol", "PortRange", "SourcePortRange", "NicType", "Policy", "Priority", "Description",
	"SourceCidrIp", "SourceGroupId", "DestCidrIp", "DestGroupId", "Ipv6SourceCidrIp", "Ipv6DestCidrIp",
	"SourcePrefixListId", "DestPrefixListId", "PortRangeListId", "SourceGroupOwnerAccount", "SourceGroupOwnerId",
	"DestGroupOwnerAccount", "DestGroupOwnerId"}

// ruleSpec is one rule as a request describes it.
type ruleSpec struct {
	rule          topology.SecurityGroupRule // VPC, Group, Direction, Policy, Priority, Protocol, PortRange, peer, Description
	priorityGiven bool
	descGiven     bool
}

// sameRule says whether an existing rule is the one spec names: same
// direction, policy, protocol, ports and peer, and the same priority
// unless the spec leaves it out (withPriority false).
func (s ruleSpec) sameRule(r topology.SecurityGroupRule, withPriority bool) bool {
	w := s.rule
	return r.Direction == w.Direction && r.Policy == w.Policy && r.Protocol == w.Protocol && r.PortRange == w.PortRange &&
		r.CIDR == w.CIDR && r.SecurityGroup == w.SecurityGroup && (!withPriority || r.Priority == w.Priority)
}

// ruleSpecs reads the rules a request describes: Permissions.N (1 to 100,
// not together with top-level rule parameters) or the top-level ones.
// g is the group they belong to; peer groups are looked up in st.
func (c *call) ruleSpecs(st *topology.State, g topology.SecurityGroup, dn dirNames) ([]ruleSpec, *Error) {
	var idx []int
	seen := map[int]bool{}
	for k := range c.p {
		rest, ok := strings.CutPrefix(k, "Permissions.")
		if !ok {
			continue
		}
		num, _, ok := strings.Cut(rest, ".")
		n, err := strconv.Atoi(num)
		if !ok || err != nil || n < 1 || n > maxPermissions || strconv.Itoa(n) != num {
			return nil, errInvalid(k, "Permissions.N takes N from 1 to %d", maxPermissions)
		}
		if !seen[n] {
			seen[n] = true
			idx = append(idx, n)
		}
	}
	if len(idx) == 0 {
		s, aerr := parseRuleSpec(st, g, dn, func(name string) string { return c.p[name] }, "")
		if aerr != nil {
			return nil, aerr
		}
		return []ruleSpec{s}, nil
	}
	for _, name := range ruleParams {
		if c.p[name] != "" {
			return nil, newError(http.StatusBadRequest, "InvalidParam.Permissions", "The specified parameter Permissions cannot coexist with other parameters (%s).", name)
		}
	}
	sort.Ints(idx)
	specs := make([]ruleSpec, 0, len(idx))
	for _, n := range idx {
		prefix := fmt.Sprintf("Permissions.%d.", n)
		s, aerr := parseRuleSpec(st, g, dn, func(name string) string { return c.p[prefix+name] }, prefix)
		if aerr != nil {
			return nil, aerr
		}
		for _, o := range specs {
			if o.sameRule(s.rule, true) {
				return nil, newError(http.StatusBadRequest, "InvalidParam.DuplicatePermissions", "There are duplicate permissions in the specified parameter Permissions (%s).", prefix[:len(prefix)-1])
			}
		}
		specs = append(specs, s)
	}
	return specs, nil
}

// parseRuleSpec reads one rule with Aliyun's parameters, defaults and
// error codes: IpProtocol (tcp, udp, icmp, all; case-insensitive),
// PortRange (required: start/end within 1..65535 for tcp and udp, -1/-1
// for icmp and all), Policy (accept), Priority (1), NicType (intranet; a
// VPC's groups are always intranet), and the peer: a CIDR (an address is
// a /32), which prevails, or a group of the same VPC.
func parseRuleSpec(st *topology.State, g topology.SecurityGroup, dn dirNames, get func(string) string, prefix string) (ruleSpec, *Error) {
	name := func(n string) string { return prefix + n }
	s := ruleSpec{rule: topology.SecurityGroupRule{VPC: g.VPC, Group: g.Name, Direction: dn.dir, Policy: topology.PolicyAccept, Priority: 1}}
	r := &s.rule
	for _, n := range []string{"Ipv6SourceCidrIp", "Ipv6DestCidrIp", "SourcePrefixListId", "DestPrefixListId", "PortRangeListId"} {
		if get(n) != "" {
			return s, errInvalid(name(n), "vpcflow does not support %s (IPv4 CIDR blocks and security groups only)", n)
		}
	}
	if v := get("SourcePortRange"); v != "" && v != topology.AnyPort && v != "1/65535" {
		return s, errInvalid(name("SourcePortRange"), "%q: vpcflow's rules match destination ports only (leave SourcePortRange out)", v)
	}
	if v := get(dn.localCidr); v != "" && v != "0.0.0.0/0" {
		return s, errInvalid(name(dn.localCidr), "%q: vpcflow's %s rules do not match the member's own address (leave %s out)", v, dn.dir, dn.localCidr)
	}
	proto := strings.ToLower(get("IpProtocol"))
	switch proto {
	case topology.ProtocolTCP, topology.ProtocolUDP, topology.ProtocolICMP, topology.ProtocolAll:
	case "":
		return s, errMissing(name("IpProtocol"))
	case "gre", "icmpv6":
		return s, newError(http.StatusBadRequest, "InvalidIpProtocol.ValueNotSupported", "The specified IpProtocol %q is not supported by vpcflow: use TCP, UDP, ICMP or ALL.", get("IpProtocol"))
	default:
		return s, newError(http.StatusBadRequest, "InvalidIpProtocol.ValueNotSupported", "The parameter IpProtocol %q must be specified with case insensitive TCP, UDP, ICMP or ALL.", get("IpProtocol"))
	}
	r.Protocol = proto
	ports := get("PortRange")
	if ports == "" {
		return s, newError(http.StatusBadRequest, "InvalidPortRange.Malformed", "The specified parameter %s must be set: start/end, e.g. 22/22 for TCP and UDP, -1/-1 for ICMP and ALL.", name("PortRange"))
	}
	a, b, ok := strings.Cut(ports, "/")
	lo, err1 := strconv.Atoi(a)
	hi, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil {
		return s, newError(http.StatusBadRequest, "InvalidPortRange.Malformed", "The specified parameter %s %q is not valid: two integers as start/end.", name("PortRange"), ports)
	}
	anyPort := lo == -1 && hi == -1
	switch {
	case (proto == topology.ProtocolTCP || proto == topology.ProtocolUDP) && anyPort,
		(proto == topology.ProtocolICMP || proto == topology.ProtocolAll) && !anyPort:
		return s, newError(http.StatusBadRequest, "OperationDenied", "The specified IpProtocol does not exist or IpProtocol and PortRange do not match: %s with %s (TCP and UDP take 1..65535, ICMP and ALL -1/-1).", strings.ToUpper(proto), ports)
	case !anyPort && (lo < 1 || hi > 65535 || lo > hi):
		return s, newError(http.StatusBadRequest, "InvalidPortRange.Malformed", "The specified parameter %s %q is not valid: start/end within 1..65535, start not after end.", name("PortRange"), ports)
	}
	r.PortRange = fmt.Sprintf("%d/%d", lo, hi)
	if v := get("Policy"); v != "" {
		switch p := strings.ToLower(v); p {
		case topology.PolicyAccept, topology.PolicyDrop:
			r.Policy = p
		default:
			return s, newError(http.StatusBadRequest, "InvalidPolicy.Malformed", "The specified parameter %s %q is not valid: accept or drop.", name("Policy"), v)
		}
	}
	if v := get("Priority"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < topology.MinRulePriority || n > topology.MaxRulePriority {
			return s, newError(http.StatusBadRequest, "InvalidPriority.Malformed", "The parameter %s %q is invalid: an integer from %d to %d.", name("Priority"), v, topology.MinRulePriority, topology.MaxRulePriority)
		}
		r.Priority, s.priorityGiven = n, true
	}
	switch v := get("NicType"); strings.ToLower(v) {
	case "", "intranet", "internet": // a VPC's groups are intranet whatever is asked, as on Aliyun
	default:
		return s, newError(http.StatusBadRequest, "InvalidNicType.ValueNotSupported", "The specified NicType %q does not exist: intranet or internet.", v)
	}
	if v := get("Description"); v != "" {
		if len(v) > topology.MaxDescriptionLen || strings.IndexFunc(v, func(r rune) bool { return r < ' ' || r == 0x7f }) >= 0 {
			return s, newError(http.StatusBadRequest, "InvalidSecurityGroupDiscription.Malformed", "The specified security group rule description is not valid: at most %d characters, no control characters.", topology.MaxDescriptionLen)
		}
		r.Description, s.descGiven = v, true
	}
	cidr, peer := get(dn.peerCidr), get(dn.peerGroup)
	switch {
	case cidr != "":
		p, aerr := parseCIDR("Invalid"+dn.peerCidr+".Malformed", name(dn.peerCidr), cidr, true)
		if aerr != nil {
			return s, aerr
		}
		r.CIDR = p
	case peer != "":
		pg, ok := secGroupByAliyunID(st, peer)
		if !ok {
			return s, newError(http.StatusNotFound, dn.groupCode+".NotFound", "The %s %q provided does not exist in our records.", name(dn.peerGroup), peer)
		}
		if pg.VPC != g.VPC {
			return s, newError(http.StatusBadRequest, dn.groupCode+".Mismatch", "Specified security group and %s are not in the same VPC.", name(dn.peerGroup))
		}
		r.SecurityGroup = pg.Name
	default:
		return s, newError(http.StatusBadRequest, dn.missing, "One of the parameters %s or %s must be specified.", name(dn.peerCidr), name(dn.peerGroup))
	}
	return s, nil
}

// mapRuleError turns a topology refusal of a rule into Aliyun's code.
func mapRuleError(dn dirNames) func(te *topology.Error) *Error {
	return func(te *topology.Error) *Error {
		field := te.Field
		if i := strings.LastIndex(field, "."); i >= 0 {
			field = field[i+1:]
		}
		switch {
		case field == "group" && te.Kind == topology.ErrConflict:
			return newError(http.StatusForbidden, "AuthorizationLimitExceed", "The limit of authorization records in the security group reaches: %s", te.Msg)
		case field == "group" && te.Kind == topology.ErrNotFound:
			return newError(http.StatusNotFound, "InvalidSecurityGroupId.NotFound", "The specified SecurityGroupId does not exist: %s", te.Msg)
		case field == "security_group" && te.Kind == topology.ErrNotFound:
			return newError(http.StatusNotFound, dn.groupCode+".NotFound", "The %s provided does not exist in our records: %s", dn.peerGroup, te.Msg)
		case field == "port_range":
			return newError(http.StatusBadRequest, "InvalidPortRange.Malformed", "The specified parameter PortRange is not valid: %s", te.Msg)
		case field == "protocol":
			return newError(http.StatusBadRequest, "InvalidIpProtocol.ValueNotSupported", "The specified IpProtocol is not valid: %s", te.Msg)
		case field == "priority":
			return newError(http.StatusBadRequest, "InvalidPriority.Malformed", "The parameter Priority is invalid: %s", te.Msg)
		case field == "policy":
			return newError(http.StatusBadRequest, "InvalidPolicy.Malformed", "The specified parameter Policy is not valid: %s", te.Msg)
		case field == "cidr":
			return newError(http.StatusBadRequest, "Invalid"+dn.peerCidr+".Malformed", "The specified parameter %s is not valid: %s", dn.peerCidr, te.Msg)
		case field == "description":
			return newError(http.StatusBadRequest, "InvalidSecurityGroupDiscription.Malformed", "The specified security group rule description is not valid: %s", te.Msg)
		case field == "" && te.Kind == topology.ErrConflict:
			return newError(http.StatusBadRequest, "InvalidOperation.RuleDuplicate", "The rule would duplicate an existing rule: %s.", te.Msg)
		}
		return nil
	}
}

// ---- AuthorizeSecurityGroup, AuthorizeSecurityGroupEgress ----

func (c *call) authorizeSecurityGroup() (any, *Error)       { return c.authorize(ingressNames) }
func (c *call) authorizeSecurityGroupEgress() (any, *Error) { return c.authorize(egressNames) }

// authorize adds the rules a request describes, all or none. A rule that
// exists already (same direction, policy, priority, protocol, ports and
// peer) is left as it is, its description updated if one is given: the
// call succeeds, as Aliyun's does.
func (c *call) authorize(dn dirNames) (any, *Error) {
	return c.idempotent(func() (any, *Error) {
		id, aerr := c.p.required("SecurityGroupId")
		if aerr != nil {
			return nil, aerr
		}
		c.s.sgMu.Lock()
		defer c.s.sgMu.Unlock()
		var ops []topology.Op
		c.read(func(st *topology.State) {
			g, ok := secGroupByAliyunID(st, id)
			if !ok {
				aerr = errSecGroupNotFound(id)
				return
			}
			var specs []ruleSpec
			if specs, aerr = c.ruleSpecs(st, g, dn); aerr != nil {
				return
			}
			existing := st.RulesOf(g.VPC, g.Name)
			for _, s := range specs {
				found := false
				for _, r := range existing {
					if s.sameRule(r, true) {
						found = true
						if s.descGiven && r.Description != s.rule.Description {
							u := r
							u.Description = s.rule.Description
							ops = append(ops, topology.Update(&u))
						}
						break
					}
				}
				if !found {
					nr := s.rule
					ops = append(ops, topology.Create(&nr))
				}
			}
		})
		if aerr != nil {
			return nil, aerr
		}
		if len(ops) > 0 {
			if _, aerr := c.apply(ops, mapRuleError(dn)); aerr != nil {
				return nil, aerr
			}
		}
		return requestOnly{RequestId: c.requestID}, nil
	})
}

// ---- RevokeSecurityGroup, RevokeSecurityGroupEgress ----

func (c *call) revokeSecurityGroup() (any, *Error)       { return c.revoke(ingressNames) }
func (c *call) revokeSecurityGroupEgress() (any, *Error) { return c.revoke(egressNames) }

// revoke deletes rules, by SecurityGroupRuleId.N (each must be a rule of
// the group in this direction) or by description (top-level or
// Permissions.N; Priority, when given, must match too). A description
// that matches no rule changes nothing and succeeds, as on Aliyun.
func (c *call) revoke(dn dirNames) (any, *Error) {
	id, aerr := c.p.required("SecurityGroupId")
	if aerr != nil {
		return nil, aerr
	}
	ruleIDs, aerr := c.repeated("SecurityGroupRuleId", maxPermissions)
	if aerr != nil {
		return nil, aerr
	}
	c.s.sgMu.Lock()
	defer c.s.sgMu.Unlock()
	var ops []topology.Op
	c.read(func(st *topology.State) {
		g, ok := secGroupByAliyunID(st, id)
		if !ok {
			aerr = errSecGroupNotFound(id)
			return
		}
		rules := st.RulesOf(g.VPC, g.Name)
		del := map[uint32]bool{}
		if len(ruleIDs) > 0 {
			for _, rid := range ruleIDs {
				n, ok := topology.ParseAliyunID(AliyunRulePrefix, rid)
				if !ok {
					aerr = newError(http.StatusBadRequest, "InvalidParam.SecurityGroupRuleId", "The specified parameter SecurityGroupRuleId %q is not valid.", rid)
					return
				}
				r, ok := st.SecurityGroupRuleByID(n)
				if !ok || r.VPC != g.VPC || r.Group != g.Name || r.Direction != dn.dir {
					aerr = newError(http.StatusNotFound, "InvalidSecurityGroupRuleId.NotFound", "The specified SecurityGroupRuleId %q is not a %s rule of security group %s.", rid, dn.dir, id)
					return
				}
				del[n] = true
			}
		} else {
			var specs []ruleSpec
			if specs, aerr = c.ruleSpecs(st, g, dn); aerr != nil {
				return
			}
			for _, s := range specs {
				for _, r := range rules {
					if s.sameRule(r, s.priorityGiven) {
						del[r.ID] = true
					}
				}
			}
		}
		for _, r := range rules {
			if del[r.ID] {
				ops = append(ops, topology.Delete(&topology.SecurityGroupRule{VPC: r.VPC, Group: r.Group, ID: r.ID}, false))
			}
		}
	})
	if aerr != nil {
		return nil, aerr
	}
	if len(ops) > 0 {
		if _, aerr := c.apply(ops, mapRuleError(dn)); aerr != nil {
			return nil, aerr
		}
	}
	return requestOnly{RequestId: c.requestID}, nil
}

// repeated reads a repeated parameter, NAME.1 … NAME.n (at most max).
func (c *call) repeated(name string, max int) ([]string, *Error) {
	var out []string
	for k, v := range c.p {
		rest, ok := strings.CutPrefix(k, name+".")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(rest)
		if err != nil || n < 1 || n > max || strconv.Itoa(n) != rest {
			return nil, errInvalid(k, "%s.N takes N from 1 to %d", name, max)
		}
		if v != "" {
			out = append(out, k+"\x00"+v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return repeatedIndex(out[i]) < repeatedIndex(out[j]) })
	for i, kv := range out {
		_, out[i], _ = strings.Cut(kv, "\x00")
	}
	return out, nil
}

func repeatedIndex(kv string) int {
	k, _, _ := strings.Cut(kv, "\x00")
	n, _ := strconv.Atoi(k[strings.LastIndex(k, ".")+1:])
	return n
}

// ---- ModifySecurityGroupRule, ModifySecurityGroupEgressRule ----

func (c *call) modifySecurityGroupRule() (any, *Error)       { return c.modifyRule(ingressNames) }
func (c *call) modifySecurityGroupEgressRule() (any, *Error) { return c.modifyRule(egressNames) }

// modifyRule changes a rule named by SecurityGroupRuleId: what the request
// gives replaces what the rule had; the peer may change within its type
// (a CIDR for a CIDR, a group for a group).
func (c *call) modifyRule(dn dirNames) (any, *Error) {
	return c.idempotent(func() (any, *Error) {
		id, aerr := c.p.required("SecurityGroupId")
		if aerr != nil {
			return nil, aerr
		}
		rid, aerr := c.p.required("SecurityGroupRuleId")
		if aerr != nil {
			return nil, aerr
		}
		c.s.sgMu.Lock()
		defer c.s.sgMu.Unlock()
		var op topology.Op
		c.read(func(st *topology.State) {
			g, ok := secGroupByAliyunID(st, id)
			if !ok {
				aerr = errSecGroupNotFound(id)
				return
			}
			n, ok := topology.ParseAliyunID(AliyunRulePrefix, rid)
			if !ok {
				aerr = newError(http.StatusBadRequest, "InvalidParam.SecurityGroupRuleId", "The specified parameter SecurityGroupRuleId %q is not valid.", rid)
				return
			}
			old, ok := st.SecurityGroupRuleByID(n)
			if !ok || old.VPC != g.VPC || old.Group != g.Name || old.Direction != dn.dir {
				aerr = newError(http.StatusNotFound, "InvalidSecurityGroupRuleId.NotFound", "The specified SecurityGroupRuleId %q is not a %s rule of security group %s.", rid, dn.dir, id)
				return
			}
			// The request's parameters over the rule's: the same parser
			// sees the merged set.
			merged := map[string]string{
				"IpProtocol": old.Protocol, "PortRange": old.PortRange, "Policy": old.Policy,
				"Priority": strconv.Itoa(old.Priority), "Description": old.Description,
			}
			if old.CIDR.IsValid() {
				merged[dn.peerCidr] = old.CIDR.String()
			} else {
				pg, _ := st.SecurityGroup(old.VPC, old.SecurityGroup)
				merged[dn.peerGroup] = pg.AliyunID()
			}
			if proto := strings.ToLower(c.p["IpProtocol"]); proto != "" && c.p["PortRange"] == "" && proto != old.Protocol {
				if proto == topology.ProtocolICMP || proto == topology.ProtocolAll {
					merged["PortRange"] = topology.AnyPort
				} else if old.PortRange == topology.AnyPort {
					aerr = newError(http.StatusBadRequest, "InvalidPortRange.Malformed", "The specified parameter PortRange must be set when IpProtocol changes to %s.", strings.ToUpper(proto))
					return
				}
			}
			for _, name := range ruleParams {
				v := c.p[name]
				if v == "" {
					continue
				}
				switch name {
				case dn.peerCidr:
					if !old.CIDR.IsValid() {
						aerr = newError(http.StatusBadRequest, "InvalidOperation.ModifySgRuleEntityType", "The source or destination type of the rules cannot be modified: rule %s names a security group.", rid)
						return
					}
				case dn.peerGroup:
					if old.CIDR.IsValid() {
						aerr = newError(http.StatusBadRequest, "InvalidOperation.ModifySgRuleEntityType", "The source or destination type of the rules cannot be modified: rule %s names a CIDR block.", rid)
						return
					}
				}
				merged[name] = v
			}
			var s ruleSpec
			if s, aerr = parseRuleSpec(st, g, dn, func(name string) string { return merged[name] }, ""); aerr != nil {
				return
			}
			nr := s.rule
			nr.ID = old.ID
			op = topology.Update(&nr)
		})
		if aerr != nil {
			return nil, aerr
		}
		if _, aerr := c.apply([]topology.Op{op}, mapRuleError(dn)); aerr != nil {
			return nil, aerr
		}
		return requestOnly{RequestId: c.requestID}, nil
	})
}

// ---- rules as DescribeSecurityGroupAttribute shows them ----

type permissionItem struct {
	SecurityGroupRuleId     string
	Direction               string
	IpProtocol              string
	PortRange               string
	SourcePortRange         string
	SourceCidrIp            string
	DestCidrIp              string
	SourceGroupId           string
	SourceGroupName         string
	SourceGroupOwnerAccount string
	DestGroupId             string
	DestGroupName           string
	DestGroupOwnerAccount   string
	Ipv6SourceCidrIp        string
	Ipv6DestCidrIp          string
	SourcePrefixListId      string
	SourcePrefixListName    string
	DestPrefixListId        string
	DestPrefixListName      string
	PortRangeListId         string
	PortRangeListName       string
	Policy                  string
	Priority                string
	NicType                 string
	Description             string
	CreateTime              string
}

// policyName is Aliyun's spelling of a policy in answers.
func policyName(p string) string {
	if p == topology.PolicyDrop {
		return "Drop"
	}
	return "Accept"
}

func (c *call) permissionItem(st *topology.State, r topology.SecurityGroupRule) permissionItem {
	it := permissionItem{
		SecurityGroupRuleId: ruleAliyunID(r), Direction: r.Direction, IpProtocol: strings.ToUpper(r.Protocol), PortRange: r.PortRange,
		Policy: policyName(r.Policy), Priority: strconv.Itoa(r.Priority), NicType: "intranet", Description: r.Description,
		CreateTime: c.creationTime(ruleAliyunID(r)),
	}
	var cidr, groupID, groupName string
	if r.CIDR.IsValid() {
		cidr = r.CIDR.String()
	} else if pg, ok := st.SecurityGroup(r.VPC, r.SecurityGroup); ok {
		groupID, groupName = pg.AliyunID(), pg.Name
	}
	if r.Direction == topology.DirectionIngress {
		it.SourceCidrIp, it.SourceGroupId, it.SourceGroupName = cidr, groupID, groupName
	} else {
		it.DestCidrIp, it.DestGroupId, it.DestGroupName = cidr, groupID, groupName
	}
	return it
}
