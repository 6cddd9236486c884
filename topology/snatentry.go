package topology

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// SNATEntry lets hosts of a VPC reach the outside world through its NAT
// gateway, as Alibaba Cloud's SNAT entry: connections from its scope leave
// from one of SNATIPs (a run of consecutive addresses of the gateway; with
// several, each connection's address is chosen by hash). The scope is one
// of: a vSwitch (its CIDR), a host (its address), or a CIDR (0.0.0.0/0 for
// the whole VPC). The most specific scope covering a source wins; hosts
// with an EIP, or the target of a DNAT entry of protocol "any" (an IP
// mapping), send from that address instead, as on Aliyun.
type SNATEntry struct {
	ID         uint32       `json:"id"`
	VPC        string       `json:"vpc"`
	Name       string       `json:"name"`
	NATGateway string       `json:"nat_gateway"`
	VSwitch    string       `json:"vswitch,omitempty"`
	Host       string       `json:"host,omitempty"`
	SourceCIDR netip.Prefix `json:"source_cidr,omitzero"`
	SNATIPs    []netip.Addr `json:"snat_ips"`
}

// MaxSNATEntries is how many SNAT entries a NAT gateway holds.
const MaxSNATEntries = 100

// Key is "VPC/NAME".
func (s *SNATEntry) Key() string      { return vpcKey(s.VPC, s.Name) }
func (s *SNATEntry) ObjectID() uint32 { return s.ID }
func (s *SNATEntry) kind() kind       { return snatEntryKind{} }
func (s *SNATEntry) setID(id uint32)  { s.ID = id }
func (s *SNATEntry) clone() Object {
	c := *s
	c.SNATIPs = slices.Clone(s.SNATIPs)
	return &c
}

// SNATEntry is the op's object when it is an SNAT entry, else nil.
func (op Op) SNATEntry() *SNATEntry { s, _ := op.Obj.(*SNATEntry); return s }

// AliyunSNATEntryPrefix is the prefix of SNAT entries' Alibaba Cloud IDs.
const AliyunSNATEntryPrefix = "snat"

// AliyunID is the SNAT entry's Aliyun ID.
func (s SNATEntry) AliyunID() string { return AliyunID(AliyunSNATEntryPrefix, s.ID) }

type snatEntryJSON SNATEntry

// MarshalJSON writes the entry with aliyun_id (once it has an ID).
func (s SNATEntry) MarshalJSON() ([]byte, error) {
	out := struct {
		snatEntryJSON
		AliyunID string `json:"aliyun_id,omitempty"`
	}{snatEntryJSON: snatEntryJSON(s)}
	if s.ID != 0 {
		out.AliyunID = s.AliyunID()
	}
	return json.Marshal(out)
}

// SNATRange is the entry's addresses as the range OVS NATs to.
func (s *SNATEntry) SNATRange() (lo, hi netip.Addr) {
	if len(s.SNATIPs) == 0 {
		return netip.Addr{}, netip.Addr{}
	}
	return s.SNATIPs[0], s.SNATIPs[len(s.SNATIPs)-1]
}

// Source is the prefix the entry covers in st: its vSwitch's CIDR, its
// host's address, or its CIDR; false when the vSwitch or host is gone.
func (st *State) SNATSource(s SNATEntry) (netip.Prefix, bool) {
	switch {
	case s.VSwitch != "":
		w, ok := st.VSwitch(s.VPC, s.VSwitch)
		return w.CIDR, ok
	case s.Host != "":
		h, ok := st.Host(s.VPC, s.Host)
		return netip.PrefixFrom(h.IP, 32), ok
	}
	return s.SourceCIDR, s.SourceCIDR.IsValid()
}

// snatEntryKind declares SNAT entries: in a VPC, of its NAT gateway,
// scoped to one of its vSwitches or hosts or a CIDR; no two entries of a
// VPC cover the same prefix. An update may change the addresses.
type snatEntryKind struct{}

func (snatEntryKind) name() string                    { return "snatentry" }
func (snatEntryKind) title() string                   { return "SNAT entry" }
func (snatEntryKind) plural() string                  { return "SNAT entries" }
func (snatEntryKind) vpcOf(o Object) string           { return o.(*SNATEntry).VPC }
func (snatEntryKind) decode(b []byte) (Object, error) { return decodeJSON[SNATEntry](b) }

func (snatEntryKind) keyOf(o Object) (string, *Error) {
	s := o.(*SNATEntry)
	return keyInVPC(s.VPC, s.Name)
}

func (snatEntryKind) refs(o Object) []ref {
	s := o.(*SNATEntry)
	out := []ref{vpcRef(s.VPC), {field: "nat_gateway", to: natGatewayKind{}, key: vpcKey(s.VPC, s.NATGateway),
		what: func() string { return fmt.Sprintf("NAT gateway %q in VPC %q", s.NATGateway, s.VPC) }}}
	switch {
	case s.VSwitch != "":
		out = append(out, ref{field: "vswitch", to: vswitchKind{}, key: vpcKey(s.VPC, s.VSwitch), what: func() string { return fmt.Sprintf("vSwitch %q in VPC %q", s.VSwitch, s.VPC) }})
	case s.Host != "":
		out = append(out, ref{field: "host", to: hostKind{}, key: vpcKey(s.VPC, s.Host), what: func() string { return fmt.Sprintf("host %q in VPC %q", s.Host, s.VPC) }})
	}
	return out
}

// scope is the entry's scope as text ("vswitch a", "host h", "cidr
// 10.0.0.0/8"), for its default name and the uniqueness of scopes.
func (s *SNATEntry) scope() string {
	switch {
	case s.VSwitch != "":
		return "vswitch:" + s.VSwitch
	case s.Host != "":
		return "host:" + s.Host
	}
	return "cidr:" + s.SourceCIDR.String()
}

func (snatEntryKind) uniques(o Object) []unique {
	s := o.(*SNATEntry)
	return []unique{{index: "scope", field: scopeField(s), value: s.VPC + "\x00" + s.scope(), taken: func(h Object) string {
		return fmt.Sprintf("SNAT entry %q already covers %s", h.(*SNATEntry).Name, strings.Replace(s.scope(), ":", " ", 1))
	}}}
}

func scopeField(s *SNATEntry) string {
	switch {
	case s.VSwitch != "":
		return "vswitch"
	case s.Host != "":
		return "host"
	}
	return "source_cidr"
}

func (snatEntryKind) check(o, old Object) *Error {
	s := o.(*SNATEntry)
	if err := ValidateName("vpc", s.VPC); err != nil {
		return err
	}
	if old != nil {
		was := old.(*SNATEntry)
		if s.NATGateway == "" {
			s.NATGateway = was.NATGateway
		}
		if s.VSwitch == "" && s.Host == "" && !s.SourceCIDR.IsValid() {
			s.VSwitch, s.Host, s.SourceCIDR = was.VSwitch, was.Host, was.SourceCIDR
		}
		if s.NATGateway != was.NATGateway || s.scope() != was.scope() {
			return Invalid(scopeField(s), "the NAT gateway and scope of SNAT entry %q cannot be changed; delete and re-create it", s.Name)
		}
		if s.SNATIPs == nil {
			s.SNATIPs = slices.Clone(was.SNATIPs)
		}
	}
	if err := ValidateName("nat_gateway", s.NATGateway); err != nil {
		return err
	}
	n := 0
	if s.VSwitch != "" {
		n++
		if err := ValidateName("vswitch", s.VSwitch); err != nil {
			return err
		}
	}
	if s.Host != "" {
		n++
		if err := ValidateName("host", s.Host); err != nil {
			return err
		}
	}
	if s.SourceCIDR.IsValid() {
		n++
		if err := ValidateRoute("source_cidr", s.SourceCIDR); err != nil {
			return err
		}
	}
	if n != 1 {
		return Invalid("source_cidr", "give exactly one scope: vswitch, host or source_cidr (0.0.0.0/0 for the whole VPC)")
	}
	if s.Name == "" {
		s.Name = "snat-" + strings.NewReplacer(":", "-", "/", "-").Replace(s.scope())
	}
	if err := ValidateName("name", s.Name); err != nil {
		return err
	}
	if len(s.SNATIPs) == 0 {
		return Invalid("snat_ips", "required: one or more consecutive addresses of the NAT gateway")
	}
	for i, a := range s.SNATIPs {
		if err := validateIPv4(fmt.Sprintf("snat_ips[%d]", i), a); err != nil {
			return err
		}
		if slices.Contains(s.SNATIPs[:i], a) {
			return Invalid(fmt.Sprintf("snat_ips[%d]", i), "%s is given twice", a)
		}
	}
	slices.SortFunc(s.SNATIPs, func(a, b netip.Addr) int { return a.Compare(b) })
	for i := 1; i < len(s.SNATIPs); i++ {
		if s.SNATIPs[i] != s.SNATIPs[i-1].Next() {
			return Invalid("snat_ips", "%s and %s are not consecutive: OVS NATs to one range of addresses, so give consecutive addresses (or another entry)", s.SNATIPs[i-1], s.SNATIPs[i])
		}
	}
	return nil
}

// validate: the addresses are the gateway's, the CIDR is inside the VPC
// (when it has one), no other entry covers the same prefix, and the
// gateway has room.
func (snatEntryKind) validate(st *State, o, old Object) *Error {
	s := o.(*SNATEntry)
	g, _ := st.NATGateway(s.VPC, s.NATGateway)
	for i, a := range s.SNATIPs {
		if !g.HasIP(a) {
			return Invalid(fmt.Sprintf("snat_ips[%d]", i), "%s is not an address of NAT gateway %q (%s)", a, g.Name, addrList(g.IPs))
		}
	}
	src, _ := st.SNATSource(*s)
	if vpc, _ := st.VPC(s.VPC); s.SourceCIDR.IsValid() && s.SourceCIDR.Bits() > 0 && vpc.CIDR.IsValid() &&
		(src.Bits() < vpc.CIDR.Bits() || !vpc.CIDR.Contains(src.Addr())) {
		return Invalid("source_cidr", "%s is not inside VPC %q (%s)", src, s.VPC, vpc.CIDR)
	}
	entries := st.SNATEntries(s.VPC)
	if old == nil && len(entries) >= MaxSNATEntries {
		return Conflict("nat_gateway", "NAT gateway %q already has %d SNAT entries, the most it may hold", g.Name, MaxSNATEntries)
	}
	for _, x := range entries {
		if old != nil && x.Name == s.Name {
			continue // itself, being updated
		}
		if p, ok := st.SNATSource(x); ok && p == src {
			return Conflict(scopeField(s), "%s is already covered by SNAT entry %q", src, x.Name)
		}
	}
	return nil
}

func addrList(as []netip.Addr) string {
	parts := make([]string, len(as))
	for i, a := range as {
		parts[i] = a.String()
	}
	return strings.Join(parts, ", ")
}

// ---- accessors ----

// SNATEntries lists a VPC's SNAT entries, sorted by name.
func (st *State) SNATEntries(vpc string) []SNATEntry {
	return childrenAs[SNATEntry](st, vpcKind{}, vpc, snatEntryKind{})
}

// SNATEntriesOf lists a NAT gateway's SNAT entries, sorted by name.
func (st *State) SNATEntriesOf(vpc, gateway string) []SNATEntry {
	return childrenAs[SNATEntry](st, natGatewayKind{}, vpcKey(vpc, gateway), snatEntryKind{})
}

// SNATEntry returns one SNAT entry.
func (st *State) SNATEntry(vpc, name string) (SNATEntry, bool) {
	return getAs[SNATEntry](st, snatEntryKind{}, vpcKey(vpc, name))
}

// SNATEntryByID returns the SNAT entry with an ID.
func (st *State) SNATEntryByID(id uint32) (SNATEntry, bool) {
	return getAsByID[SNATEntry](st, snatEntryKind{}, id)
}

// SNATEntriesOfHost lists the SNAT entries scoped to a host.
func (st *State) SNATEntriesOfHost(vpc, host string) []SNATEntry {
	return childrenAs[SNATEntry](st, hostKind{}, vpcKey(vpc, host), snatEntryKind{})
}

func (s *SNATEntry) keyParts() (vpc, name string) { return s.VPC, s.Name }
