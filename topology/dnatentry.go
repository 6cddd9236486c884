package topology

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// DNATEntry maps a public address of a NAT gateway to a private address
// of its VPC, as Alibaba Cloud's DNAT (forward) entry: connections to
// ExternalIP with Protocol (tcp or udp) to ExternalPort — one port "80" or
// a range "8000/8010" — are sent to InternalIP at InternalPort (a range
// of the same size, port for port). Protocol "any" with ports "any" maps
// the whole address (an IP mapping): then the target also sends its own
// connections from ExternalIP. As on Aliyun, the public side (address,
// protocol, ports) and the private side (protocol, address, ports) are
// each unique, and a NAT gateway holds at most MaxDNATEntries.
type DNATEntry struct {
	ID           uint32     `json:"id"`
	VPC          string     `json:"vpc"`
	Name         string     `json:"name"`
	NATGateway   string     `json:"nat_gateway"`
	ExternalIP   netip.Addr `json:"external_ip"`
	Protocol     string     `json:"protocol"`
	ExternalPort string     `json:"external_port"`
	InternalIP   netip.Addr `json:"internal_ip"`
	InternalPort string     `json:"internal_port"`
}

// DNAT limits.
const (
	// MaxDNATEntries is how many DNAT entries a NAT gateway holds (Aliyun's
	// default quota).
	MaxDNATEntries = 100
	// MaxDNATShiftedPorts is the largest port range mapped to other
	// ports (8000/8099 → 80/179): each port is a flow of its own. A range
	// mapped to the same ports may be as large as 1/65535.
	MaxDNATShiftedPorts = 256
	// ProtocolAny is a DNAT entry's protocol for an IP mapping.
	ProtocolAny = "any"
	// AnyPorts is the port of an IP mapping.
	AnyPorts = "any"
)

// Key is "VPC/NAME".
func (d *DNATEntry) Key() string      { return vpcKey(d.VPC, d.Name) }
func (d *DNATEntry) ObjectID() uint32 { return d.ID }
func (d *DNATEntry) kind() kind       { return dnatEntryKind{} }
func (d *DNATEntry) setID(id uint32)  { d.ID = id }
func (d *DNATEntry) clone() Object    { c := *d; return &c }

// DNATEntry is the op's object when it is a DNAT entry, else nil.
func (op Op) DNATEntry() *DNATEntry { d, _ := op.Obj.(*DNATEntry); return d }

// AliyunDNATEntryPrefix is the prefix of DNAT entries' Alibaba Cloud IDs
// (Aliyun calls them forward entries).
const AliyunDNATEntryPrefix = "fwd"

// AliyunID is the DNAT entry's Aliyun ID.
func (d DNATEntry) AliyunID() string { return AliyunID(AliyunDNATEntryPrefix, d.ID) }

type dnatEntryJSON DNATEntry

// MarshalJSON writes the entry with aliyun_id (once it has an ID).
func (d DNATEntry) MarshalJSON() ([]byte, error) {
	out := struct {
		dnatEntryJSON
		AliyunID string `json:"aliyun_id,omitempty"`
	}{dnatEntryJSON: dnatEntryJSON(d)}
	if d.ID != 0 {
		out.AliyunID = d.AliyunID()
	}
	return json.Marshal(out)
}

// IPMapping reports whether the entry maps the whole address (protocol any).
func (d *DNATEntry) IPMapping() bool { return d.Protocol == ProtocolAny }

// ExternalPorts is the public port range (0, 0 for an IP mapping).
func (d *DNATEntry) ExternalPorts() (lo, hi uint16) {
	lo, hi, _ = parsePortRange(d.ExternalPort)
	return
}

// InternalPorts is the private port range (0, 0 for an IP mapping).
func (d *DNATEntry) InternalPorts() (lo, hi uint16) {
	lo, hi, _ = parsePortRange(d.InternalPort)
	return
}

// parsePortRange reads "80", "8000/8010" (or "8000-8010"); "any" is 0, 0.
func parsePortRange(s string) (lo, hi uint16, err error) {
	if s == AnyPorts {
		return 0, 0, nil
	}
	a, b, isRange := strings.Cut(s, "/")
	if !isRange {
		a, b, isRange = strings.Cut(s, "-")
	}
	if !isRange {
		b = a
	}
	x, err1 := strconv.ParseUint(a, 10, 16)
	y, err2 := strconv.ParseUint(b, 10, 16)
	if err1 != nil || err2 != nil || x == 0 || y == 0 {
		return 0, 0, fmt.Errorf("%s is not a port or port range: want 1..65535, or START/END", quote(s))
	}
	if y < x {
		return 0, 0, fmt.Errorf("%s ends before it starts", quote(s))
	}
	return uint16(x), uint16(y), nil
}

// formatPortRange writes a range as Aliyun does: "80" or "8000/8010".
func formatPortRange(lo, hi uint16) string {
	if lo == hi {
		return strconv.Itoa(int(lo))
	}
	return fmt.Sprintf("%d/%d", lo, hi)
}

// dnatEntryKind declares DNAT entries: in a VPC, of its NAT gateway, on
// one of the gateway's addresses. An update may change the private side
// (address and ports); the public side stays.
type dnatEntryKind struct{}

func (dnatEntryKind) name() string                    { return "dnatentry" }
func (dnatEntryKind) title() string                   { return "DNAT entry" }
func (dnatEntryKind) plural() string                  { return "DNAT entries" }
func (dnatEntryKind) vpcOf(o Object) string           { return o.(*DNATEntry).VPC }
func (dnatEntryKind) decode(b []byte) (Object, error) { return decodeJSON[DNATEntry](b) }
func (dnatEntryKind) uniques(Object) []unique         { return nil } // ranges: checked in validate

func (dnatEntryKind) keyOf(o Object) (string, *Error) {
	d := o.(*DNATEntry)
	return keyInVPC(d.VPC, d.Name)
}

func (dnatEntryKind) refs(o Object) []ref {
	d := o.(*DNATEntry)
	return []ref{vpcRef(d.VPC), {field: "nat_gateway", to: natGatewayKind{}, key: vpcKey(d.VPC, d.NATGateway),
		what: func() string { return fmt.Sprintf("NAT gateway %q in VPC %q", d.NATGateway, d.VPC) }}}
}

func (dnatEntryKind) check(o, old Object) *Error {
	d := o.(*DNATEntry)
	if err := ValidateName("vpc", d.VPC); err != nil {
		return err
	}
	d.Protocol = strings.ToLower(d.Protocol)
	d.ExternalPort = strings.ToLower(d.ExternalPort)
	d.InternalPort = strings.ToLower(d.InternalPort)
	if old != nil {
		was := old.(*DNATEntry)
		if d.NATGateway == "" {
			d.NATGateway = was.NATGateway
		}
		if !d.ExternalIP.IsValid() {
			d.ExternalIP = was.ExternalIP
		}
		if d.Protocol == "" {
			d.Protocol = was.Protocol
		}
		if d.ExternalPort == "" {
			d.ExternalPort = was.ExternalPort
		}
		if !d.InternalIP.IsValid() {
			d.InternalIP = was.InternalIP
		}
		if d.InternalPort == "" {
			d.InternalPort = was.InternalPort
		}
		if d.NATGateway != was.NATGateway || d.ExternalIP != was.ExternalIP || d.Protocol != was.Protocol || d.ExternalPort != was.ExternalPort {
			return Invalid("external_ip", "the public side of DNAT entry %q (gateway, address, protocol, port) cannot be changed; delete and re-create it", d.Name)
		}
	}
	if err := ValidateName("nat_gateway", d.NATGateway); err != nil {
		return err
	}
	if err := validateIPv4("external_ip", d.ExternalIP); err != nil {
		return err
	}
	if err := validateIPv4("internal_ip", d.InternalIP); err != nil {
		return err
	}
	if err := checkReserved("internal_ip", netip.PrefixFrom(d.InternalIP, 32)); err != nil {
		return err
	}
	switch d.Protocol {
	case ProtocolTCP, ProtocolUDP:
		if err := checkDNATPorts(d); err != nil {
			return err
		}
	case ProtocolAny:
		for _, f := range []struct{ field, v string }{{"external_port", d.ExternalPort}, {"internal_port", d.InternalPort}} {
			if f.v == "" {
				continue
			}
			if f.v != AnyPorts {
				return Invalid(f.field, "%s: an IP mapping (protocol any) maps every port: leave it out or give \"any\"", quote(f.v))
			}
		}
		d.ExternalPort, d.InternalPort = AnyPorts, AnyPorts
	case "":
		return Invalid("protocol", "required: tcp, udp or any (an IP mapping)")
	default:
		return Invalid("protocol", "%s is not a protocol: use tcp, udp or any", quote(d.Protocol))
	}
	if d.Name == "" {
		d.Name = fmt.Sprintf("dnat-%s-%s-%s", d.Protocol, d.ExternalIP, strings.ReplaceAll(d.ExternalPort, "/", "-"))
	}
	return ValidateName("name", d.Name)
}

// checkDNATPorts checks a tcp or udp entry's ports and writes them in
// canonical form.
func checkDNATPorts(d *DNATEntry) *Error {
	var lo, hi [2]uint16
	for i, f := range []struct {
		field string
		v     *string
	}{{"external_port", &d.ExternalPort}, {"internal_port", &d.InternalPort}} {
		if *f.v == "" {
			return Invalid(f.field, "required with protocol %s: a port (80) or a range (8000/8010)", d.Protocol)
		}
		if *f.v == AnyPorts {
			return Invalid(f.field, "\"any\" is only for protocol any (an IP mapping)")
		}
		l, h, err := parsePortRange(*f.v)
		if err != nil {
			return Invalid(f.field, "%v", err)
		}
		lo[i], hi[i] = l, h
		*f.v = formatPortRange(l, h)
	}
	if hi[0]-lo[0] != hi[1]-lo[1] {
		return Invalid("internal_port", "%s has %d ports but external_port %s has %d: a range maps port for port, so both must be the same size",
			d.InternalPort, hi[1]-lo[1]+1, d.ExternalPort, hi[0]-lo[0]+1)
	}
	if lo[0] != lo[1] && int(hi[0]-lo[0])+1 > MaxDNATShiftedPorts {
		return Invalid("external_port", "%s maps %d ports to other ports (%s); at most %d can be shifted (a range mapped to the same ports may be any size)",
			d.ExternalPort, hi[0]-lo[0]+1, d.InternalPort, MaxDNATShiftedPorts)
	}
	return nil
}

// overlaps reports whether two entries' protocols and port ranges (as
// chosen by ext) overlap: "any" overlaps everything.
func dnatOverlap(a, b *DNATEntry, ext bool) bool {
	if a.IPMapping() || b.IPMapping() {
		return true
	}
	if a.Protocol != b.Protocol {
		return false
	}
	alo, ahi := a.InternalPorts()
	blo, bhi := b.InternalPorts()
	if ext {
		alo, ahi = a.ExternalPorts()
		blo, bhi = b.ExternalPorts()
	}
	return alo <= bhi && blo <= ahi
}

// validate: the public address is the gateway's; the public side and the
// private side are each unique among the gateway's entries (Aliyun's
// rule); the target has no EIP; the gateway has room.
func (dnatEntryKind) validate(st *State, o, old Object) *Error {
	d := o.(*DNATEntry)
	g, _ := st.NATGateway(d.VPC, d.NATGateway)
	if !g.HasIP(d.ExternalIP) {
		return Invalid("external_ip", "%s is not an address of NAT gateway %q (%s)", d.ExternalIP, g.Name, addrList(g.IPs))
	}
	entries := st.DNATEntriesOf(d.VPC, d.NATGateway)
	if old == nil && len(entries) >= MaxDNATEntries {
		return Conflict("nat_gateway", "NAT gateway %q already has %d DNAT entries, the most it may hold", g.Name, MaxDNATEntries)
	}
	for i := range entries {
		x := &entries[i]
		if old != nil && x.Name == d.Name {
			continue // itself, being updated
		}
		if x.ExternalIP == d.ExternalIP && dnatOverlap(d, x, true) {
			return Conflict("external_port", "%s %s port %s overlaps DNAT entry %q (%s %s port %s): the public side must be unique",
				d.Protocol, d.ExternalIP, d.ExternalPort, x.Name, x.Protocol, x.ExternalIP, x.ExternalPort)
		}
		if x.InternalIP == d.InternalIP && dnatOverlap(d, x, false) {
			return Conflict("internal_port", "%s %s port %s overlaps DNAT entry %q (%s %s port %s): the private side must be unique",
				d.Protocol, d.InternalIP, d.InternalPort, x.Name, x.Protocol, x.InternalIP, x.InternalPort)
		}
	}
	if h, ok := st.HostByIP(d.VPC, d.InternalIP); ok {
		if e, ok := st.EIPOfHost(d.VPC, h.Name); ok {
			return Conflict("internal_ip", "%s is host %q, which has EIP %q (%s); a host with an EIP cannot be a DNAT target", d.InternalIP, h.Name, e.Name, e.IP)
		}
	}
	return nil
}

// ---- accessors ----

// DNATEntries lists a VPC's DNAT entries, sorted by name.
func (st *State) DNATEntries(vpc string) []DNATEntry {
	return childrenAs[DNATEntry](st, vpcKind{}, vpc, dnatEntryKind{})
}

// DNATEntriesOf lists a NAT gateway's DNAT entries, sorted by name.
func (st *State) DNATEntriesOf(vpc, gateway string) []DNATEntry {
	return childrenAs[DNATEntry](st, natGatewayKind{}, vpcKey(vpc, gateway), dnatEntryKind{})
}

// DNATEntry returns one DNAT entry.
func (st *State) DNATEntry(vpc, name string) (DNATEntry, bool) {
	return getAs[DNATEntry](st, dnatEntryKind{}, vpcKey(vpc, name))
}

// DNATEntryByID returns the DNAT entry with an ID.
func (st *State) DNATEntryByID(id uint32) (DNATEntry, bool) {
	return getAsByID[DNATEntry](st, dnatEntryKind{}, id)
}

func (d *DNATEntry) keyParts() (vpc, name string) { return d.VPC, d.Name }
