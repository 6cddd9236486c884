package topology

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// Rule directions, policies and protocols, as Alibaba Cloud names them.
const (
	DirectionIngress = "ingress"
	DirectionEgress  = "egress"

	PolicyAccept = "accept"
	PolicyDrop   = "drop"

	ProtocolTCP  = "tcp"
	ProtocolUDP  = "udp"
	ProtocolICMP = "icmp"
	ProtocolAll  = "all"

	// AnyPort is the port range of icmp and all rules.
	AnyPort = "-1/-1"

	MinRulePriority = 1
	MaxRulePriority = 100
)

// SecurityGroupRule is one rule of a security group (Group) with Aliyun's
// semantics: Direction ingress or egress; Policy accept or drop; Priority
// 1–100, 1 first, and at equal priority drop wins; Protocol tcp, udp, icmp
// or all; PortRange "start/end" (destination ports; "-1/-1" for icmp and
// all); and one peer: CIDR, or SecurityGroup (a group of the same VPC,
// meaning its members' addresses as they come and go). Its ID, handed out
// by the store, names it in the API and is its conjunction id in the
// datapath.
type SecurityGroupRule struct {
	ID            uint32       `json:"id"`
	VPC           string       `json:"vpc"`
	Group         string       `json:"group"`
	Direction     string       `json:"direction"`
	Policy        string       `json:"policy"`
	Priority      int          `json:"priority"`
	Protocol      string       `json:"protocol"`
	PortRange     string       `json:"port_range"`
	CIDR          netip.Prefix `json:"cidr,omitzero"`
	SecurityGroup string       `json:"security_group,omitempty"`
	Description   string       `json:"description,omitempty"`
}

// Key is "VPC/GROUP/ID".
func (r *SecurityGroupRule) Key() string      { return ruleKey(r.VPC, r.Group, r.ID) }
func (r *SecurityGroupRule) ObjectID() uint32 { return r.ID }
func (r *SecurityGroupRule) kind() kind       { return secGroupRuleKind{} }
func (r *SecurityGroupRule) setID(id uint32)  { r.ID = id }
func (r *SecurityGroupRule) clone() Object    { c := *r; return &c }

func ruleKey(vpc, group string, id uint32) string {
	return vpcKey(vpc, group) + "/" + strconv.FormatUint(uint64(id), 10)
}

// SecurityGroupRule is the op's object when it is a rule, else nil.
func (op Op) SecurityGroupRule() *SecurityGroupRule {
	r, _ := op.Obj.(*SecurityGroupRule)
	return r
}

// Ports returns the port range; 0, 0 for icmp and all rules.
func (r *SecurityGroupRule) Ports() (lo, hi uint16) {
	a, b, ok := strings.Cut(r.PortRange, "/")
	if !ok || r.PortRange == AnyPort {
		return 0, 0
	}
	x, err1 := strconv.ParseUint(a, 10, 16)
	y, err2 := strconv.ParseUint(b, 10, 16)
	if err1 != nil || err2 != nil {
		return 0, 0
	}
	return uint16(x), uint16(y)
}

// Drops says whether the rule's policy is drop.
func (r *SecurityGroupRule) Drops() bool { return r.Policy == PolicyDrop }

// secGroupRuleKind declares rules: in a group (and its VPC), optionally
// naming a peer group of the same VPC. A group holds at most
// MaxRulesPerGroup rules, and no two identical ones. An update may change
// anything but the direction and the group.
type secGroupRuleKind struct{}

func (secGroupRuleKind) name() string                    { return "secgrouprule" }
func (secGroupRuleKind) title() string                   { return "security group rule" }
func (secGroupRuleKind) plural() string                  { return "security group rules" }
func (secGroupRuleKind) vpcOf(o Object) string           { return o.(*SecurityGroupRule).VPC }
func (secGroupRuleKind) decode(b []byte) (Object, error) { return decodeJSON[SecurityGroupRule](b) }

func (secGroupRuleKind) keyOf(o Object) (string, *Error) {
	r := o.(*SecurityGroupRule)
	if err := ValidateName("vpc", r.VPC); err != nil {
		return "", err
	}
	if err := ValidateName("group", r.Group); err != nil {
		return "", err
	}
	if r.ID == 0 {
		return "", Invalid("id", "required")
	}
	return r.Key(), nil
}

func (secGroupRuleKind) refs(o Object) []ref {
	r := o.(*SecurityGroupRule)
	out := []ref{vpcRef(r.VPC), {field: "group", to: secGroupKind{}, key: vpcKey(r.VPC, r.Group),
		what: func() string { return fmt.Sprintf("security group %q in VPC %q", r.Group, r.VPC) }}}
	if r.SecurityGroup != "" {
		out = append(out, ref{field: "security_group", to: secGroupKind{}, key: vpcKey(r.VPC, r.SecurityGroup),
			what: func() string { return fmt.Sprintf("peer security group %q in VPC %q", r.SecurityGroup, r.VPC) }})
	}
	return out
}

// uniques: no two identical rules in a group (Aliyun's
// InvalidPermission.Duplicate).
func (secGroupRuleKind) uniques(o Object) []unique {
	r := o.(*SecurityGroupRule)
	peer := "sg:" + r.SecurityGroup
	if r.CIDR.IsValid() {
		peer = r.CIDR.String()
	}
	v := strings.Join([]string{r.VPC, r.Group, r.Direction, r.Policy, strconv.Itoa(r.Priority), r.Protocol, r.PortRange, peer}, "\x00")
	return []unique{{index: "rule", field: "", value: v, taken: func(h Object) string {
		return fmt.Sprintf("security group %q already has this rule: rule %d", r.Group, h.ObjectID())
	}}}
}

func (secGroupRuleKind) check(o, old Object) *Error {
	r := o.(*SecurityGroupRule)
	if err := ValidateName("vpc", r.VPC); err != nil {
		return err
	}
	if err := ValidateName("group", r.Group); err != nil {
		return err
	}
	if old != nil {
		mergeRuleUpdate(r, old.(*SecurityGroupRule))
	}
	r.Direction = strings.ToLower(r.Direction)
	r.Policy = strings.ToLower(r.Policy)
	r.Protocol = strings.ToLower(r.Protocol)
	switch r.Direction {
	case DirectionIngress, DirectionEgress:
	case "":
		return Invalid("direction", "required: ingress or egress")
	default:
		return Invalid("direction", "%s is not a direction: use ingress or egress", quote(r.Direction))
	}
	if r.Policy == "" {
		r.Policy = PolicyAccept
	}
	if r.Policy != PolicyAccept && r.Policy != PolicyDrop {
		return Invalid("policy", "%s is not a policy: use accept or drop", quote(r.Policy))
	}
	if r.Priority < MinRulePriority || r.Priority > MaxRulePriority {
		return Invalid("priority", "%d is out of range: use %d..%d (%d is evaluated first)", r.Priority, MinRulePriority, MaxRulePriority, MinRulePriority)
	}
	if err := checkRulePorts(r); err != nil {
		return err
	}
	if err := checkRulePeer(r); err != nil {
		return err
	}
	return validateDescription(r.Description)
}

// mergeRuleUpdate fills in what an update leaves out from the rule as it
// was: empty strings, priority 0 and no peer keep the old values; a new
// protocol without a port range takes -1/-1 for icmp and all, and the old
// range for tcp and udp when the old rule had ports.
func mergeRuleUpdate(r, was *SecurityGroupRule) {
	if r.Direction == "" {
		r.Direction = was.Direction
	}
	if r.Policy == "" {
		r.Policy = was.Policy
	}
	if r.Priority == 0 {
		r.Priority = was.Priority
	}
	if r.PortRange == "" {
		switch p := strings.ToLower(r.Protocol); {
		case p == "":
			r.PortRange = was.PortRange
		case p == ProtocolICMP || p == ProtocolAll:
			r.PortRange = AnyPort
		case was.PortRange != AnyPort:
			r.PortRange = was.PortRange
		}
	}
	if r.Protocol == "" {
		r.Protocol = was.Protocol
	}
	if !r.CIDR.IsValid() && r.SecurityGroup == "" {
		r.CIDR, r.SecurityGroup = was.CIDR, was.SecurityGroup
	}
	if r.Description == "" {
		r.Description = was.Description
	}
}

// checkRulePorts checks protocol and port range together, as Aliyun does:
// tcp and udp need start/end with 1 ≤ start ≤ end ≤ 65535; icmp and all
// take only -1/-1 (the default).
func checkRulePorts(r *SecurityGroupRule) *Error {
	switch r.Protocol {
	case ProtocolTCP, ProtocolUDP:
	case ProtocolICMP, ProtocolAll:
		if r.PortRange == "" {
			r.PortRange = AnyPort
		}
		if r.PortRange != AnyPort {
			return Invalid("port_range", "%s: protocol %s has no ports; use -1/-1", quote(r.PortRange), r.Protocol)
		}
		return nil
	case "":
		return Invalid("protocol", "required: tcp, udp, icmp or all")
	default:
		return Invalid("protocol", "%s is not supported: use tcp, udp, icmp or all", quote(r.Protocol))
	}
	if r.PortRange == "" {
		return Invalid("port_range", "required for protocol %s: start/end, e.g. 22/22 or 8000/8080", r.Protocol)
	}
	a, b, ok := strings.Cut(r.PortRange, "/")
	if !ok {
		return Invalid("port_range", "%s is not start/end (e.g. 22/22)", quote(r.PortRange))
	}
	lo, err1 := strconv.Atoi(a)
	hi, err2 := strconv.Atoi(b)
	switch {
	case err1 != nil || err2 != nil:
		return Invalid("port_range", "%s is not start/end with numbers (e.g. 22/22)", quote(r.PortRange))
	case lo == -1 && hi == -1:
		return Invalid("port_range", "-1/-1 is for icmp and all; protocol %s needs ports 1..65535 (1/65535 for all of them)", r.Protocol)
	case lo < 1 || lo > 65535 || hi < 1 || hi > 65535:
		return Invalid("port_range", "%s: ports must be within 1..65535", quote(r.PortRange))
	case lo > hi:
		return Invalid("port_range", "%s: the start is after the end", quote(r.PortRange))
	}
	r.PortRange = fmt.Sprintf("%d/%d", lo, hi)
	return nil
}

// checkRulePeer checks that exactly one peer is given: a canonical IPv4
// CIDR (0.0.0.0/0 for anywhere) or a security group name.
func checkRulePeer(r *SecurityGroupRule) *Error {
	switch {
	case r.CIDR.IsValid() && r.SecurityGroup != "":
		return Invalid("security_group", "give one peer, cidr or security_group, not both")
	case r.SecurityGroup != "":
		return ValidateName("security_group", r.SecurityGroup)
	case !r.CIDR.IsValid():
		if r.CIDR != (netip.Prefix{}) {
			return Invalid("cidr", "invalid CIDR")
		}
		return Invalid("cidr", "required: the peer, as cidr (0.0.0.0/0 for anywhere) or security_group")
	}
	return ValidatePrefix("cidr", r.CIDR, 0, 32)
}

// validate: a group holds at most MaxRulesPerGroup rules.
func (secGroupRuleKind) validate(st *State, o, old Object) *Error {
	r := o.(*SecurityGroupRule)
	if old != nil {
		if was := old.(*SecurityGroupRule); was.Direction != r.Direction {
			return Invalid("direction", "the direction of rule %d cannot be changed (%s → %s); delete it and add a new one", r.ID, was.Direction, r.Direction)
		}
		return nil
	}
	n := 0
	st.eachReferrer(secGroupKind{}, vpcKey(r.VPC, r.Group), secGroupRuleKind{}, func(x Object) bool {
		if x.(*SecurityGroupRule).Group == r.Group {
			n++
		}
		return true
	})
	if n >= MaxRulesPerGroup {
		return Conflict("group", "security group %q already has %d rules, the most a group may hold", r.Group, MaxRulesPerGroup)
	}
	return nil
}

// ---- accessors ----

// RulesOf lists a security group's rules, sorted by ID.
func (st *State) RulesOf(vpc, group string) []SecurityGroupRule {
	var out []SecurityGroupRule
	st.eachReferrer(secGroupKind{}, vpcKey(vpc, group), secGroupRuleKind{}, func(o Object) bool {
		if r := o.(*SecurityGroupRule); r.Group == group {
			out = append(out, *r)
		}
		return true
	})
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// EachRule calls fn with each rule of a security group (not copies, in no
// order) until it returns false; fn must not keep or change the rule.
func (st *State) EachRule(vpc, group string, fn func(r *SecurityGroupRule) bool) {
	st.eachReferrer(secGroupKind{}, vpcKey(vpc, group), secGroupRuleKind{}, func(o Object) bool {
		if r := o.(*SecurityGroupRule); r.Group == group {
			return fn(r)
		}
		return true
	})
}

// SecurityGroupRule returns one rule of a group.
func (st *State) SecurityGroupRule(vpc, group string, id uint32) (SecurityGroupRule, bool) {
	return getAs[SecurityGroupRule](st, secGroupRuleKind{}, ruleKey(vpc, group, id))
}

// SecurityGroupRuleByID returns the rule with an ID.
func (st *State) SecurityGroupRuleByID(id uint32) (SecurityGroupRule, bool) {
	return getAsByID[SecurityGroupRule](st, secGroupRuleKind{}, id)
}
