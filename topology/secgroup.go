package topology

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Security groups, as Alibaba Cloud defines them: a group belongs to a VPC
// and holds up to MaxRulesPerGroup rules; a host joins up to
// MaxGroupsPerHost groups (Host.SecurityGroups). A host in no group is not
// filtered at all. Rules are their own kind (secgrouprule.go).

// Security group limits.
const (
	// MaxGroupsPerHost is how many security groups a host may join.
	MaxGroupsPerHost = 5
	// MaxRulesPerGroup is how many rules a security group may hold.
	MaxRulesPerGroup = 200
	// MaxGroupsPerVPC is how many security groups a VPC may hold: the
	// datapath keeps a host's groups (and a peer's) as a 32-bit mask, one
	// bit per group of the VPC (SecurityGroup.Index).
	MaxGroupsPerVPC = 32
	// MaxDescriptionLen is the longest group or rule description.
	MaxDescriptionLen = 512
)

// Conntrack zones of filtered hosts. Every host in a security group gets a
// zone of its own from the store (Host.CTZone), kept for as long as it is
// in a group, so that a controller restart never renumbers a zone (which
// would turn its live connections invalid). Zones above MaxHostZone are
// left for other features (NAT).
const (
	MinHostZone = 1
	MaxHostZone = 0xbfff
)

// SecurityGroup is a stateful firewall that hosts of its VPC join. Index
// is the group's bit in the datapath's group masks, unique in its VPC and
// kept for the group's life; the store assigns it.
type SecurityGroup struct {
	ID          uint32 `json:"id"`
	VPC         string `json:"vpc"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Index       uint8  `json:"index"`
}

// Key is "VPC/NAME".
func (g *SecurityGroup) Key() string      { return vpcKey(g.VPC, g.Name) }
func (g *SecurityGroup) ObjectID() uint32 { return g.ID }
func (g *SecurityGroup) kind() kind       { return secGroupKind{} }
func (g *SecurityGroup) setID(id uint32)  { g.ID = id }
func (g *SecurityGroup) clone() Object    { c := *g; return &c }

// AliyunSecurityGroupPrefix is the prefix of security groups' Alibaba
// Cloud IDs ("sg-vf00000000000000003", see aliyunid.go).
const AliyunSecurityGroupPrefix = "sg"

// AliyunID is the group's Aliyun ID.
func (g SecurityGroup) AliyunID() string { return AliyunID(AliyunSecurityGroupPrefix, g.ID) }

type secGroupJSON SecurityGroup

// MarshalJSON writes the group with aliyun_id (once it has an ID).
func (g SecurityGroup) MarshalJSON() ([]byte, error) {
	out := struct {
		secGroupJSON
		AliyunID string `json:"aliyun_id,omitempty"`
	}{secGroupJSON: secGroupJSON(g)}
	if g.ID != 0 {
		out.AliyunID = g.AliyunID()
	}
	return json.Marshal(out)
}

// SecurityGroup is the op's object when it is a security group, else nil.
func (op Op) SecurityGroup() *SecurityGroup { g, _ := op.Obj.(*SecurityGroup); return g }

// secGroupKind declares security groups: in a VPC; their rules and member
// hosts refer to them. Only the description can be updated. A group with
// members cannot be deleted, not even with cascade (take the hosts out
// first); cascade takes its rules, and the rules of other groups that name
// it as their peer.
type secGroupKind struct{}

func (secGroupKind) name() string                    { return "secgroup" }
func (secGroupKind) title() string                   { return "security group" }
func (secGroupKind) plural() string                  { return "security groups" }
func (secGroupKind) vpcOf(o Object) string           { return o.(*SecurityGroup).VPC }
func (secGroupKind) decode(b []byte) (Object, error) { return decodeJSON[SecurityGroup](b) }

func (secGroupKind) keyOf(o Object) (string, *Error) {
	g := o.(*SecurityGroup)
	return keyInVPC(g.VPC, g.Name)
}

func (secGroupKind) refs(o Object) []ref { return []ref{vpcRef(o.(*SecurityGroup).VPC)} }

func (secGroupKind) uniques(o Object) []unique {
	g := o.(*SecurityGroup)
	return []unique{{index: "index", field: "index", value: fmt.Sprintf("%s\x00%d", g.VPC, g.Index),
		taken: func(h Object) string {
			return fmt.Sprintf("index %d is already security group %q's", g.Index, h.(*SecurityGroup).Name)
		}}}
}

func (secGroupKind) check(o, old Object) *Error {
	g := o.(*SecurityGroup)
	if err := ValidateName("vpc", g.VPC); err != nil {
		return err
	}
	if err := ValidateName("name", g.Name); err != nil {
		return err
	}
	if old != nil {
		g.Index = old.(*SecurityGroup).Index
	}
	if g.Index >= MaxGroupsPerVPC {
		return Invalid("index", "%d is out of range 0..%d", g.Index, MaxGroupsPerVPC-1)
	}
	return validateDescription(g.Description)
}

// validate gives a new group the lowest index its VPC has free.
func (secGroupKind) validate(st *State, o, old Object) *Error {
	g := o.(*SecurityGroup)
	if old != nil {
		return nil
	}
	for i := 0; i < MaxGroupsPerVPC; i++ {
		if _, taken := st.holder(secGroupKind{}, "index", fmt.Sprintf("%s\x00%d", g.VPC, i)); !taken {
			g.Index = uint8(i)
			return nil
		}
	}
	return Conflict("vpc", "VPC %q already has %d security groups, the most a VPC may hold", g.VPC, MaxGroupsPerVPC)
}

// guardDelete refuses to delete a group that still has members, even with
// cascade: a cascade would delete the hosts.
func (secGroupKind) guardDelete(st *State, o Object, cascade bool) *Error {
	if !cascade {
		return nil // the usual "still used by" refusal names the members
	}
	g := o.(*SecurityGroup)
	members := st.referrersOf(secGroupKind{}, g.Key(), hostKind{})
	if len(members) == 0 {
		return nil
	}
	names := make([]string, len(members))
	for i, k := range members {
		names[i] = strings.TrimPrefix(k, g.VPC+"/")
	}
	return Conflict("name", "security group %q still has %d member hosts (%s): take them out of it first (PUT their security_groups); a cascade deletes rules, never hosts",
		g.Name, len(members), describeNames(names, 3))
}

func validateDescription(d string) *Error {
	if len(d) > MaxDescriptionLen {
		return Invalid("description", "is too long: at most %d characters", MaxDescriptionLen)
	}
	for _, r := range d {
		if r < ' ' || r == 0x7f {
			return Invalid("description", "must not contain control characters")
		}
	}
	return nil
}

// ---- membership on hosts ----

// secGroupRef is a host's reference to one of its groups.
func secGroupRef(vpc, name string) ref {
	return ref{field: "security_groups", to: secGroupKind{}, key: vpcKey(vpc, name),
		what: func() string { return fmt.Sprintf("security group %q in VPC %q", name, vpc) }}
}

// checkHostSecurityGroups checks a host's groups on their own: at most
// MaxGroupsPerHost, valid names, no repeats. On an update (was != nil) nil
// keeps the groups the host had; an empty list takes it out of all.
func checkHostSecurityGroups(h, was *Host) *Error {
	if was != nil && h.SecurityGroups == nil {
		h.SecurityGroups = slices.Clone(was.SecurityGroups)
	}
	if len(h.SecurityGroups) == 0 {
		h.SecurityGroups = nil
		h.CTZone = 0
	}
	if len(h.SecurityGroups) > MaxGroupsPerHost {
		return Invalid("security_groups", "a host may join at most %d security groups, not %d", MaxGroupsPerHost, len(h.SecurityGroups))
	}
	seen := map[string]bool{}
	for i, g := range h.SecurityGroups {
		if err := ValidateName(fmt.Sprintf("security_groups[%d]", i), g); err != nil {
			return err
		}
		if seen[g] {
			return Invalid(fmt.Sprintf("security_groups[%d]", i), "%q is given twice", g)
		}
		seen[g] = true
	}
	if h.CTZone != 0 && (h.CTZone < MinHostZone || h.CTZone > MaxHostZone) {
		return Invalid("ct_zone", "%d is out of range %d..%d", h.CTZone, MinHostZone, MaxHostZone)
	}
	return nil
}

// assignHostZone gives a host that is in a group a conntrack zone: the one
// it had, or a free one (nextID is the ID the host has or will get, which
// picks where the search starts, so zones usually follow host IDs). A host
// in no group has none.
func assignHostZone(st *State, h *Host, old Object) *Error {
	if len(h.SecurityGroups) == 0 {
		h.CTZone = 0
		return nil
	}
	id := st.lastID[hostKind{}.name()] + 1
	if old != nil {
		was := old.(*Host)
		if was.CTZone != 0 {
			h.CTZone = was.CTZone
			return nil
		}
		id = was.ID
	}
	const span = MaxHostZone - MinHostZone + 1
	start := (id - 1) % span
	for i := uint32(0); i < span; i++ {
		z := uint16(MinHostZone + (start+i)%span)
		if _, taken := st.holder(hostKind{}, "ct_zone", zoneValue(z)); !taken {
			h.CTZone = z
			return nil
		}
	}
	return Conflict("security_groups", "no conntrack zone left: %d hosts are already in security groups", span)
}

func zoneValue(z uint16) string { return fmt.Sprint(z) }

// hostSecurityGroupUniques is the zone a filtered host holds.
func hostSecurityGroupUniques(h *Host) []unique {
	if h.CTZone == 0 {
		return nil
	}
	return []unique{{index: "ct_zone", field: "ct_zone", value: zoneValue(h.CTZone), taken: func(o Object) string {
		return fmt.Sprintf("conntrack zone %d is already host %q's (VPC %q)", h.CTZone, o.(*Host).Name, o.(*Host).VPC)
	}}}
}

// ---- accessors ----

// SecurityGroups lists a VPC's security groups, sorted by name.
func (st *State) SecurityGroups(vpc string) []SecurityGroup {
	return childrenAs[SecurityGroup](st, vpcKind{}, vpc, secGroupKind{})
}

// SecurityGroup returns one security group.
func (st *State) SecurityGroup(vpc, name string) (SecurityGroup, bool) {
	return getAs[SecurityGroup](st, secGroupKind{}, vpcKey(vpc, name))
}

// SecurityGroupByID returns the security group with an ID.
func (st *State) SecurityGroupByID(id uint32) (SecurityGroup, bool) {
	return getAsByID[SecurityGroup](st, secGroupKind{}, id)
}

// AllSecurityGroups lists the security groups of every VPC, sorted by VPC
// then name.
func (st *State) AllSecurityGroups() []SecurityGroup {
	return allAs(st, secGroupKind{}, func(a, b *SecurityGroup) bool {
		if a.VPC != b.VPC {
			return a.VPC < b.VPC
		}
		return a.Name < b.Name
	})
}

// MembersOf lists the hosts in a security group, sorted by name.
func (st *State) MembersOf(vpc, group string) []Host {
	return childrenAs[Host](st, secGroupKind{}, vpcKey(vpc, group), hostKind{})
}

// EachMember calls fn with each host in a security group (no copies, in no
// order) until it returns false; fn must not keep or change the host.
func (st *State) EachMember(vpc, group string, fn func(h *Host) bool) {
	st.eachReferrer(secGroupKind{}, vpcKey(vpc, group), hostKind{}, func(o Object) bool { return fn(o.(*Host)) })
}

// GroupMask is the datapath mask of a host's groups: bit Index of each.
func (st *State) GroupMask(h *Host) uint32 {
	var m uint32
	for _, name := range h.SecurityGroups {
		if o, ok := st.get(secGroupKind{}, vpcKey(h.VPC, name)); ok {
			m |= 1 << o.(*SecurityGroup).Index
		}
	}
	return m
}

func (g *SecurityGroup) keyParts() (vpc, name string) { return g.VPC, g.Name }
