// Package openflow holds vpcflow's OpenFlow 1.3 side: the flow model that the
// pipeline produces (Flow, Match, Action), its text form (exactly what
// `ovs-ofctl -O OpenFlow13 dump-flows` prints for the installed flow, and
// valid ovs-ofctl add-flow syntax, so a desired table can be fed to
// `ovs-ofctl add-flows` or compared with `ovs-ofctl diff-flows`), its wire
// encoding, the decoder for flow-stats replies, meters, and the connection
// layer for switches, which also delivers packet-ins (PacketInHandler, with
// NXT_PACKET_IN2's controller userdata) and sends packet-outs
// (Switch.PacketOut) and resumes paused packets (Switch.Resume).
//
// The model covers conntrack (ConnTrack with nat and exec, CTClear, and
// matches on ct_state, ct_zone, ct_mark, ct_label), conjunctive matches
// (Conjunction, conj_id), registers reg0..reg7 (masked matches, Load of
// bit ranges, MoveBits, OutputReg), tcp/udp ports and icmp type/code,
// controller actions with userdata, pause and meters (ControllerWith), and
// the meter instruction (Meter). Every field and action round-trips
// through a real OVS: build, encode, install, dump, decode and compare,
// as value and as ovs-ofctl text (TestOVSEveryFieldAndAction).
//
// New Nicira actions are encoded with github.com/contiv/libOpenflow's
// openflow13 encoders (NXActionConnTrack, NXActionCTNAT,
// NXActionConjunction, NXActionRegLoad, NXActionOutputReg, InstrMeter,
// MeterMod) where their bytes are what OVS 3.1 produces; vpcflow's own code
// remains where libOpenflow is wrong or silent, each place saying why.
package openflow

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Field names one match or action field. The declaration order is the
// canonical order in which a Match is kept and printed: the order in which
// ovs-ofctl prints the fields, so that a Match prints exactly as
// `ovs-ofctl dump-flows` shows it (see Match.String for the two fields
// whose place depends on their value).
type Field uint8

// Fields used by the vpcflow pipeline.
const (
	// FieldPktMark is OVS's pkt_mark: packet metadata that is never on
	// the wire (only flows and packet-outs set it); vpcflow's live trace
	// tags its injected packets with it.
	FieldPktMark Field = iota + 1
	FieldConjID        // conj_id: set by a conjunctive match (see Conjunction)
	FieldCTState       // ct_state: connection-tracking state flags (CTNew, CTEst…), printed as +est+trk
	FieldCTZone        // ct_zone: the zone of the last ct action (16 bits; exact matches only)
	FieldCTMark        // ct_mark: 32-bit mark of the connection
	// FieldCTLabel is the 128-bit ct_label. vpcflow models only its low 64
	// bits: an exact match or SetField means "the high 64 bits are zero",
	// a masked match leaves them unmatched, and a switch's value with any
	// high bit set (or a mask that covers some of them) decodes as an
	// unknown field, never as one of ours.
	FieldCTLabel
	FieldEthType // printed as the protocol shorthand (arp, ip, tcp, udp, icmp) when there is one
	FieldReg0
	FieldReg1
	FieldReg2
	FieldReg3
	FieldReg4
	FieldReg5
	FieldReg6
	FieldReg7
	FieldTunID
	FieldTunSrc
	FieldTunDst
	FieldMetadata
	FieldInPort
	FieldEthSrc
	FieldEthDst
	FieldIPv4Src
	FieldIPv4Dst
	FieldArpSpa
	FieldArpTpa
	FieldIPProto // nw_proto; folded into the tcp/udp/icmp shorthand when it matches one
	FieldArpOp
	FieldIPTTL // nw_ttl
	FieldICMPType
	FieldICMPCode
	FieldTCPSrc // printed as tp_src (after "tcp"); set_field name tcp_src
	FieldTCPDst // printed as tp_dst
	FieldUDPSrc // printed as tp_src (after "udp"); set_field name udp_src
	FieldUDPDst // printed as tp_dst
	FieldArpSha
	FieldArpTha
	fieldEnd
)

// Ether types and IP protocols with an ovs-ofctl shorthand.
const (
	EthTypeIPv4 = 0x0800
	EthTypeARP  = 0x0806

	IPProtoICMP = 1
	IPProtoTCP  = 6
	IPProtoUDP  = 17

	// Only for printing what a switch may hold: vpcflow's fields are IPv4.
	ethTypeIPv6   = 0x86dd
	ethTypeRARP   = 0x8035
	ipProtoICMPv6 = 58
)

// Connection-tracking state bits (ct_state), in the order ovs-ofctl prints
// them.
const (
	CTNew      uint32 = 1 << iota // new: the start of a new connection
	CTEst                         // est: part of an established connection
	CTRel                         // rel: related to an established connection (e.g. ICMP errors)
	CTRpl                         // rpl: in the reply direction
	CTInv                         // inv: invalid (conntrack could not make sense of it)
	CTTrk                         // trk: has gone through a ct action
	CTSNAT                        // snat: source-NATed
	CTDNAT                        // dnat: destination-NATed
	ctStateAll = 0xff
)

var ctStateNames = [8]string{"new", "est", "rel", "rpl", "inv", "trk", "snat", "dnat"}

// fieldInfo describes how a field is printed and how wide it is.
type fieldInfo struct {
	name     string // ovs-ofctl match name
	setName  string // ovs-ofctl set_field name (OVS's mf->name); "" when OVS cannot set the field
	nxm      string // NXM/OXM name used by move:, load:, output: (e.g. NXM_OF_ETH_SRC)
	bits     uint   // width in bits in vpcflow's model
	kind     fieldKind
	maskable bool // OVS accepts a mask on the field
}

type fieldKind uint8

const (
	kindHex fieldKind = iota
	kindDec
	kindMAC
	kindIPv4
	kindCTState
)

var fieldInfos = [fieldEnd]fieldInfo{
	FieldPktMark:  {name: "pkt_mark", setName: "pkt_mark", nxm: "NXM_NX_PKT_MARK", bits: 32, kind: kindHex, maskable: true},
	FieldConjID:   {name: "conj_id", nxm: "NXM_NX_CONJ_ID", bits: 32, kind: kindDec},
	FieldCTState:  {name: "ct_state", nxm: "NXM_NX_CT_STATE", bits: 8, kind: kindCTState, maskable: true},
	FieldCTZone:   {name: "ct_zone", nxm: "NXM_NX_CT_ZONE", bits: 16, kind: kindDec},
	FieldCTMark:   {name: "ct_mark", setName: "ct_mark", nxm: "NXM_NX_CT_MARK", bits: 32, kind: kindHex, maskable: true},
	FieldCTLabel:  {name: "ct_label", setName: "ct_label", nxm: "NXM_NX_CT_LABEL", bits: 128, kind: kindHex, maskable: true},
	FieldEthType:  {name: "dl_type", nxm: "NXM_OF_ETH_TYPE", bits: 16, kind: kindHex},
	FieldReg0:     {name: "reg0", setName: "reg0", nxm: "NXM_NX_REG0", bits: 32, kind: kindHex, maskable: true},
	FieldReg1:     {name: "reg1", setName: "reg1", nxm: "NXM_NX_REG1", bits: 32, kind: kindHex, maskable: true},
	FieldReg2:     {name: "reg2", setName: "reg2", nxm: "NXM_NX_REG2", bits: 32, kind: kindHex, maskable: true},
	FieldReg3:     {name: "reg3", setName: "reg3", nxm: "NXM_NX_REG3", bits: 32, kind: kindHex, maskable: true},
	FieldReg4:     {name: "reg4", setName: "reg4", nxm: "NXM_NX_REG4", bits: 32, kind: kindHex, maskable: true},
	FieldReg5:     {name: "reg5", setName: "reg5", nxm: "NXM_NX_REG5", bits: 32, kind: kindHex, maskable: true},
	FieldReg6:     {name: "reg6", setName: "reg6", nxm: "NXM_NX_REG6", bits: 32, kind: kindHex, maskable: true},
	FieldReg7:     {name: "reg7", setName: "reg7", nxm: "NXM_NX_REG7", bits: 32, kind: kindHex, maskable: true},
	FieldTunID:    {name: "tun_id", setName: "tun_id", nxm: "NXM_NX_TUN_ID", bits: 64, kind: kindHex, maskable: true},
	FieldTunSrc:   {name: "tun_src", setName: "tun_src", nxm: "NXM_NX_TUN_IPV4_SRC", bits: 32, kind: kindIPv4, maskable: true},
	FieldTunDst:   {name: "tun_dst", setName: "tun_dst", nxm: "NXM_NX_TUN_IPV4_DST", bits: 32, kind: kindIPv4, maskable: true},
	FieldMetadata: {name: "metadata", setName: "metadata", nxm: "OXM_OF_METADATA", bits: 64, kind: kindHex, maskable: true},
	FieldInPort:   {name: "in_port", nxm: "OXM_OF_IN_PORT", bits: 32, kind: kindDec},
	FieldEthSrc:   {name: "dl_src", setName: "eth_src", nxm: "NXM_OF_ETH_SRC", bits: 48, kind: kindMAC, maskable: true},
	FieldEthDst:   {name: "dl_dst", setName: "eth_dst", nxm: "NXM_OF_ETH_DST", bits: 48, kind: kindMAC, maskable: true},
	FieldIPv4Src:  {name: "nw_src", setName: "ip_src", nxm: "NXM_OF_IP_SRC", bits: 32, kind: kindIPv4, maskable: true},
	FieldIPv4Dst:  {name: "nw_dst", setName: "ip_dst", nxm: "NXM_OF_IP_DST", bits: 32, kind: kindIPv4, maskable: true},
	FieldArpSpa:   {name: "arp_spa", setName: "arp_spa", nxm: "NXM_OF_ARP_SPA", bits: 32, kind: kindIPv4, maskable: true},
	FieldArpTpa:   {name: "arp_tpa", setName: "arp_tpa", nxm: "NXM_OF_ARP_TPA", bits: 32, kind: kindIPv4, maskable: true},
	FieldIPProto:  {name: "nw_proto", nxm: "NXM_OF_IP_PROTO", bits: 8, kind: kindDec},
	FieldArpOp:    {name: "arp_op", setName: "arp_op", nxm: "NXM_OF_ARP_OP", bits: 16, kind: kindDec},
	FieldIPTTL:    {name: "nw_ttl", setName: "nw_ttl", nxm: "NXM_NX_IP_TTL", bits: 8, kind: kindDec},
	FieldICMPType: {name: "icmp_type", setName: "icmp_type", nxm: "NXM_OF_ICMP_TYPE", bits: 8, kind: kindDec},
	FieldICMPCode: {name: "icmp_code", setName: "icmp_code", nxm: "NXM_OF_ICMP_CODE", bits: 8, kind: kindDec},
	FieldTCPSrc:   {name: "tp_src", setName: "tcp_src", nxm: "NXM_OF_TCP_SRC", bits: 16, kind: kindDec, maskable: true},
	FieldTCPDst:   {name: "tp_dst", setName: "tcp_dst", nxm: "NXM_OF_TCP_DST", bits: 16, kind: kindDec, maskable: true},
	FieldUDPSrc:   {name: "tp_src", setName: "udp_src", nxm: "NXM_OF_UDP_SRC", bits: 16, kind: kindDec, maskable: true},
	FieldUDPDst:   {name: "tp_dst", setName: "udp_dst", nxm: "NXM_OF_UDP_DST", bits: 16, kind: kindDec, maskable: true},
	FieldArpSha:   {name: "arp_sha", setName: "arp_sha", nxm: "NXM_NX_ARP_SHA", bits: 48, kind: kindMAC, maskable: true},
	FieldArpTha:   {name: "arp_tha", setName: "arp_tha", nxm: "NXM_NX_ARP_THA", bits: 48, kind: kindMAC, maskable: true},
}

// Reg returns the register field regN, N in 0..7 (FieldReg0 + N).
func Reg(n int) Field {
	if n < 0 || n > 7 {
		return 0
	}
	return FieldReg0 + Field(n)
}

// Name is the ovs-ofctl match name of the field.
func (f Field) Name() string {
	if !validField(f) {
		return fmt.Sprintf("field%d", uint8(f))
	}
	return fieldInfos[f].name
}

// SetFieldName is the name ovs-ofctl prints in set_field:…->NAME (OVS's
// own field name, which differs from the match name for some fields:
// eth_src for dl_src, ip_src for nw_src, tcp_src for tp_src…).
func (f Field) SetFieldName() string {
	if !validField(f) || fieldInfos[f].setName == "" {
		return f.Name()
	}
	return fieldInfos[f].setName
}

// NXMName is the name ovs-ofctl uses for the field in move:, load: and
// output: actions.
func (f Field) NXMName() string {
	if !validField(f) {
		return fmt.Sprintf("FIELD%d", uint8(f))
	}
	return fieldInfos[f].nxm
}

// Bits is the width of the field in vpcflow's model (128 for ct_label, of
// which only the low 64 bits can be given a value).
func (f Field) Bits() uint {
	if !validField(f) {
		return 0
	}
	return fieldInfos[f].bits
}

// valueBits is how many bits of the field a uint64 can hold.
func (f Field) valueBits() uint { return min(f.Bits(), 64) }

// fullMask is the all-ones mask for the part of the field a value holds.
func (f Field) fullMask() uint64 {
	b := f.valueBits()
	if b >= 64 {
		return ^uint64(0)
	}
	return (uint64(1) << b) - 1
}

// exactMask reports whether mask covers the whole field, so that a match
// under it is an exact match (never for the 128-bit ct_label, whose high
// half a uint64 mask cannot cover).
func (f Field) exactMask(mask uint64) bool {
	return f.Bits() <= 64 && mask == f.fullMask()
}

// FormatValue prints a value of the field as ovs-ofctl does.
func (f Field) FormatValue(v uint64) string {
	if !validField(f) {
		return "0x" + strconv.FormatUint(v, 16)
	}
	switch fieldInfos[f].kind {
	case kindDec:
		return strconv.FormatUint(v, 10)
	case kindMAC:
		return Uint64ToMAC(v).String()
	case kindIPv4:
		return Uint32ToAddr(uint32(v)).String()
	case kindCTState:
		return formatCTStateFlags(uint32(v))
	default:
		return formatHex(v)
	}
}

// formatHex prints v as OVS prints hexadecimal fields: 0x-prefixed, and 0
// as "0".
func formatHex(v uint64) string {
	if v == 0 {
		return "0"
	}
	return "0x" + strconv.FormatUint(v, 16)
}

// formatCTStateFlags prints ct_state bits as ovs-ofctl does for an exact
// match: "new|trk", or "0".
func formatCTStateFlags(v uint32) string {
	if v == 0 {
		return "0"
	}
	var b strings.Builder
	for i, n := range ctStateNames {
		if v&(1<<i) != 0 {
			if b.Len() > 0 {
				b.WriteByte('|')
			}
			b.WriteString(n)
		}
	}
	if rest := v &^ ctStateAll; rest != 0 {
		if b.Len() > 0 {
			b.WriteByte('|')
		}
		fmt.Fprintf(&b, "0x%x", rest)
	}
	return b.String()
}

// formatCTStateMasked prints a masked ct_state as ovs-ofctl does: each bit
// of the mask, lowest first, as +name when set and -name when clear.
func formatCTStateMasked(v, mask uint32) string {
	var b strings.Builder
	for i, n := range ctStateNames {
		if mask&(1<<i) == 0 {
			continue
		}
		if v&(1<<i) != 0 {
			b.WriteByte('+')
		} else {
			b.WriteByte('-')
		}
		b.WriteString(n)
	}
	return b.String()
}

// FieldMatch is one field of a match: the field equals Value, or, when
// HasMask is set, Value under Mask.
type FieldMatch struct {
	Value   uint64
	Mask    uint64
	Field   Field
	HasMask bool
}

// String prints the match field in ovs-ofctl syntax (without the protocol
// shorthands, which only Match.String knows about).
func (m FieldMatch) String() string {
	name := m.Field.Name()
	if !m.HasMask {
		return name + "=" + m.Field.FormatValue(m.Value)
	}
	if !validField(m.Field) {
		return fmt.Sprintf("%s=0x%x/0x%x", name, m.Value, m.Mask)
	}
	switch fieldInfos[m.Field].kind {
	case kindIPv4:
		if l, ok := prefixLen(uint32(m.Mask)); ok {
			return fmt.Sprintf("%s=%s/%d", name, m.Field.FormatValue(m.Value), l)
		}
	case kindDec:
		return fmt.Sprintf("%s=0x%x/0x%x", name, m.Value, m.Mask)
	case kindCTState:
		return name + "=" + formatCTStateMasked(uint32(m.Value), uint32(m.Mask))
	case kindHex:
		// The masked-out value bits are 0 in a canonical match, as OVS
		// prints them ("0/0xff").
		return name + "=" + formatHex(m.Value) + "/" + formatHex(m.Mask)
	}
	return name + "=" + m.Field.FormatValue(m.Value) + "/" + m.Field.FormatValue(m.Mask)
}

func prefixLen(mask uint32) (int, bool) {
	l := 0
	for l < 32 && mask&(1<<(31-l)) != 0 {
		l++
	}
	if uint32(uint64(mask)<<l) != 0 {
		return 0, false
	}
	return l, true
}

// Match is a set of field matches, kept sorted by Field and without
// duplicates. Build it with NewMatch and the With… methods, or with Normalize
// after decoding.
type Match []FieldMatch

// NewMatch returns an empty match (matches every packet).
func NewMatch() Match { return nil }

// With returns the match with f set to exactly v (replacing any earlier value).
func (m Match) With(f Field, v uint64) Match {
	return m.set(FieldMatch{Field: f, Value: v & f.fullMask()})
}

// WithMasked returns the match with f set to v under mask. A full mask is
// written as an exact match and a zero mask removes the field, as OVS does
// (for ct_label a mask of the low 64 bits stays a mask: the high 64 bits
// are then not matched).
func (m Match) WithMasked(f Field, v, mask uint64) Match {
	mask &= f.fullMask()
	switch {
	case mask == 0:
		return m.without(f)
	case f.exactMask(mask):
		return m.With(f, v)
	}
	return m.set(FieldMatch{Field: f, Value: v & mask, Mask: mask, HasMask: true})
}

// Get returns the match on f, if any.
func (m Match) Get(f Field) (FieldMatch, bool) {
	for _, fm := range m {
		if fm.Field == f {
			return fm, true
		}
	}
	return FieldMatch{}, false
}

func (m Match) without(f Field) Match {
	out := make(Match, 0, len(m))
	for _, fm := range m {
		if fm.Field != f {
			out = append(out, fm)
		}
	}
	return out
}

func (m Match) set(fm FieldMatch) Match {
	out := make(Match, 0, len(m)+1)
	if !m.sorted() {
		for _, old := range m {
			if old.Field != fm.Field {
				out = append(out, old)
			}
		}
		out = append(out, fm)
		out.Normalize()
		return out
	}
	placed := false
	for _, old := range m {
		if old.Field == fm.Field {
			continue
		}
		if !placed && old.Field > fm.Field {
			out = append(out, fm)
			placed = true
		}
		out = append(out, old)
	}
	if !placed {
		out = append(out, fm)
	}
	return out
}

func (m Match) sorted() bool {
	for i := 1; i < len(m); i++ {
		if m[i].Field < m[i-1].Field {
			return false
		}
	}
	return true
}

// Normalize sorts the match into canonical order (stable: an insertion
// sort, matches being short).
func (m Match) Normalize() {
	for i := 1; i < len(m); i++ {
		for j := i; j > 0 && m[j].Field < m[j-1].Field; j-- {
			m[j], m[j-1] = m[j-1], m[j]
		}
	}
}

// protoShorthand is the ovs-ofctl shorthand for the match's ether type (and
// IP protocol): "ip", "arp", "tcp", "udp", "icmp", or "" when there is
// none. proto reports that the shorthand includes nw_proto.
func (m Match) protoShorthand() (short string, proto bool) {
	et, ok := m.Get(FieldEthType)
	if !ok || et.HasMask {
		return "", false
	}
	switch et.Value {
	case EthTypeARP:
		return "arp", false
	case ethTypeRARP:
		return "rarp", false
	case ethTypeIPv6:
		if p, ok := m.Get(FieldIPProto); ok && !p.HasMask {
			switch p.Value {
			case IPProtoTCP:
				return "tcp6", true
			case IPProtoUDP:
				return "udp6", true
			case ipProtoICMPv6:
				return "icmp6", true
			}
		}
		return "ipv6", false
	case EthTypeIPv4:
		if p, ok := m.Get(FieldIPProto); ok && !p.HasMask {
			switch p.Value {
			case IPProtoICMP:
				return "icmp", true
			case IPProtoTCP:
				return "tcp", true
			case IPProtoUDP:
				return "udp", true
			}
		}
		return "ip", false
	}
	return "", false
}

// String prints the match exactly as ovs-ofctl dump-flows does: the fields
// in canonical order, with the ether type (and nw_proto) folded into a
// shorthand (ip, arp, tcp, udp, icmp) where one exists; an ether type
// without a shorthand is printed as dl_type after dl_dst, where OVS puts
// it.
func (m Match) String() string {
	short, proto := m.protoShorthand()
	var b strings.Builder
	put := func(s string) {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s)
	}
	var deferredType *FieldMatch
	for i := range m {
		fm := &m[i]
		switch {
		case fm.Field == FieldEthType && short != "":
			put(short)
			continue
		case fm.Field == FieldEthType:
			deferredType = fm
			continue
		case fm.Field == FieldIPProto && proto:
			continue
		}
		if deferredType != nil && fm.Field > FieldEthDst {
			put(deferredType.String())
			deferredType = nil
		}
		put(fm.String())
	}
	if deferredType != nil {
		put(deferredType.String())
	}
	return b.String()
}

// Convenience builders for the common fields.

// InPort matches the ingress OpenFlow port.
func (m Match) InPort(p uint32) Match { return m.With(FieldInPort, uint64(p)) }

// EthType matches the ether type.
func (m Match) EthType(t uint16) Match { return m.With(FieldEthType, uint64(t)) }

// EthSrc matches the source MAC.
func (m Match) EthSrc(mac net.HardwareAddr) Match { return m.With(FieldEthSrc, MACToUint64(mac)) }

// Metadata matches metadata under mask.
func (m Match) Metadata(v, mask uint64) Match { return m.WithMasked(FieldMetadata, v, mask) }

// IPProto matches IPv4 with the given protocol (ether type included):
// IPProto(IPProtoTCP) prints as "tcp", IPProto(47) as "ip,nw_proto=47".
func (m Match) IPProto(p uint8) Match {
	return m.EthType(EthTypeIPv4).With(FieldIPProto, uint64(p))
}

// TCP matches IPv4 TCP ("tcp").
func (m Match) TCP() Match { return m.IPProto(IPProtoTCP) }

// UDP matches IPv4 UDP ("udp").
func (m Match) UDP() Match { return m.IPProto(IPProtoUDP) }

// ICMP matches ICMPv4 ("icmp").
func (m Match) ICMP() Match { return m.IPProto(IPProtoICMP) }

// CTState matches connection-tracking state: the bits in set must be set
// and those in clear must be clear; the others are not matched.
// CTState(CTTrk|CTEst, CTNew) prints as "ct_state=-new+est+trk". When set
// and clear together cover all eight bits the match is exact and prints
// as "ct_state=est|trk".
func (m Match) CTState(set, clear uint32) Match {
	return m.WithMasked(FieldCTState, uint64(set), uint64(set|clear))
}

// Reg matches register regN (0..7) under mask (a full mask is an exact
// match): Reg(3, 0x10, 0xf0) prints as "reg3=0x10/0xf0".
func (m Match) Reg(n int, v, mask uint32) Match {
	return m.WithMasked(Reg(n), uint64(v), uint64(mask))
}

// Prefix matches an IPv4 field (nw_src, nw_dst, arp_spa, arp_tpa, tun_dst…)
// against a prefix; a /32 is an exact match and a /0 matches anything.
func (m Match) Prefix(f Field, p netip.Prefix) Match {
	bits := p.Bits()
	mask := uint64(0)
	if bits > 0 {
		mask = uint64(^uint32(0) << (32 - bits))
	}
	return m.WithMasked(f, uint64(AddrToUint32(p.Addr())), mask)
}

// Addr matches an IPv4 field exactly.
func (m Match) Addr(f Field, a netip.Addr) Match {
	return m.With(f, uint64(AddrToUint32(a)))
}

// ActionType is the kind of an action or instruction.
type ActionType uint8

// Action types. Instructions are modelled as actions in the order
// ovs-ofctl prints them: meter first, then the apply-actions, then
// write_metadata and goto_table last.
const (
	ActOutput         ActionType = iota + 1 // output:Port
	ActInPort                               // IN_PORT (send back out of the ingress port)
	ActSetField                             // set_field:Value->Field
	ActMove                                 // move:Src[SrcOfs..]->Field[Ofs..] (NBits bits)
	ActDecTTL                               // dec_ttl
	ActController                           // CONTROLLER:65535 (output to OFPP_CONTROLLER, max_len OFPCML_NO_BUFFER)
	ActCheckPktLarger                       // check_pkt_larger(Value)->Field[Bit]
	ActResubmit                             // resubmit(,Table)
	ActLoad                                 // load:Value->Field[Ofs..Ofs+NBits-1] (NXAST_REG_LOAD)
	ActOutputReg                            // output:Field[Ofs..Ofs+NBits-1] (NXAST_OUTPUT_REG)
	ActCT                                   // ct(…) (see ConnTrack)
	ActCTClear                              // ct_clear
	ActConjunction                          // conjunction(Value,Ofs/NBits)
	ActController2                          // controller(userdata=…,pause,meter_id=…) (see ControllerWith)
	ActMeter                                // meter:Value (instruction, first)
	ActWriteMetadata                        // write_metadata:Value/Mask (instruction)
	ActGotoTable                            // goto_table:Table (instruction)
	ActUnknown                              // something the decoder did not understand; never equal to a desired action
	actInvalid                              // a builder's refusal (bad CT or Controller spec): never encodes
)

// Action is one action or instruction. It is a small comparable value:
// two actions are the same exactly when they are == (Equal says so too).
// Only the fields its Type uses are set. The actions with nested or
// variable-length parts — ct with its nat and exec, and controller with
// its userdata — keep them as one immutable string holding their
// canonical wire encoding, built once by ConnTrack or ControllerWith (and
// rebuilt the same way from a switch's bytes by the decoder), so they
// still compare with == (one length check and a memcmp) and cost no
// pointer chasing; CT and Controller read them back. An Action is 48
// bytes.
type Action struct {
	Value uint64 // ActSetField, ActLoad, ActWriteMetadata, ActCheckPktLarger (packet length), ActConjunction (id), ActMeter (meter id), ActUnknown (a hash of the raw bytes)
	Mask  uint64 // ActWriteMetadata
	// ext is the canonical encoding of an ActCT or ActController2, the hex
	// of an ActUnknown, or the reason an actInvalid was refused.
	ext    string
	Port   uint32     // ActOutput
	Type   ActionType //
	Field  Field      // ActSetField, ActLoad, ActMove (destination), ActCheckPktLarger (destination), ActOutputReg (source)
	Src    Field      // ActMove
	Bit    uint8      // ActCheckPktLarger: the destination bit
	Table  uint8      // ActGotoTable, ActResubmit
	Ofs    uint8      // ActLoad, ActMove (destination), ActOutputReg: first bit; ActConjunction: the clause k (1-based)
	SrcOfs uint8      // ActMove: first bit of Src
	NBits  uint8      // ActLoad, ActMove, ActOutputReg: number of bits (0 stands for 256, never valid); ActConjunction: the number of clauses n
}

// Equal reports whether a and b are the same action. It is a == b; it
// exists so callers need not know that.
func (a Action) Equal(b Action) bool { return a == b }

// Output sends the packet out of port p.
func Output(p uint32) Action { return Action{Type: ActOutput, Port: p} }

// OutputInPort sends the packet back out of the port it came in on.
func OutputInPort() Action { return Action{Type: ActInPort} }

// ToController sends the whole packet to the controller as a packet-in
// (OFPAT_OUTPUT to OFPP_CONTROLLER with max_len OFPCML_NO_BUFFER, so the
// switch buffers nothing). ovs-ofctl prints it as CONTROLLER:65535.
func ToController() Action { return Action{Type: ActController} }

// SetField writes v into f (the whole field; for ct_label the high 64 bits
// become 0). ovs-ofctl prints it with OVS's own field name:
// set_field:ee:ff:ff:ff:ff:ff->eth_src, set_field:10.0.0.1->ip_src,
// set_field:80->tcp_dst. ct_mark and ct_label can be set only inside a
// ct action's Exec.
func SetField(f Field, v uint64) Action {
	return Action{Type: ActSetField, Field: f, Value: v & f.fullMask()}
}

// SetMAC writes a MAC into an Ethernet or ARP hardware-address field.
func SetMAC(f Field, mac net.HardwareAddr) Action { return SetField(f, MACToUint64(mac)) }

// SetAddr writes an IPv4 address into f.
func SetAddr(f Field, a netip.Addr) Action { return SetField(f, uint64(AddrToUint32(a))) }

// Load writes v into nbits bits of f starting at bit ofs, leaving the other
// bits alone (NXAST_REG_LOAD: a masked set_field, as OVS 3.1 prints it
// back): Load(FieldReg0, 3, 1, 1) is load:0x1->NXM_NX_REG0[3],
// Load(FieldCTMark, 0, 8, 5) is load:0x5->NXM_NX_CT_MARK[0..7]. v must
// fit in nbits; the bits must lie in the field (in its low 64 bits for
// ct_label). metadata, which has no NXM name, cannot be loaded: use
// WriteMetadata.
func Load(f Field, ofs, nbits uint8, v uint64) Action {
	return Action{Type: ActLoad, Field: f, Ofs: ofs, NBits: nbits, Value: v}
}

// Move copies the whole of src into dst (both must be of equal width):
// move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[].
func Move(src, dst Field) Action {
	if src.Bits() != dst.Bits() {
		return invalidAction("move:%s[]->%s[]: fields differ in width", src.NXMName(), dst.NXMName())
	}
	return Action{Type: ActMove, Src: src, Field: dst, NBits: uint8(dst.Bits())}
}

// MoveBits copies nbits bits of src, starting at bit srcOfs, into dst
// starting at bit dstOfs: MoveBits(FieldReg0, 0, FieldReg1, 8, 8) is
// move:NXM_NX_REG0[0..7]->NXM_NX_REG1[8..15].
func MoveBits(src Field, srcOfs uint8, dst Field, dstOfs, nbits uint8) Action {
	return Action{Type: ActMove, Src: src, SrcOfs: srcOfs, Field: dst, Ofs: dstOfs, NBits: nbits}
}

// OutputReg sends the packet to the port number held in nbits bits of f
// starting at bit ofs (NXAST_OUTPUT_REG): an output stage sends to the
// port an earlier table wrote into a register. OutputReg(FieldReg5, 0, 32)
// is output:NXM_NX_REG5[], OutputReg(FieldReg5, 0, 16) is
// output:NXM_NX_REG5[0..15].
func OutputReg(f Field, ofs, nbits uint8) Action {
	return Action{Type: ActOutputReg, Field: f, Ofs: ofs, NBits: nbits}
}

// DecTTL decrements the IPv4 TTL (packets whose TTL would reach 0 are dropped).
func DecTTL() Action { return Action{Type: ActDecTTL} }

// CheckPktLarger sets bit `bit` of dst to 1 when the packet is longer than
// length bytes and to 0 otherwise (Nicira check_pkt_larger). OVS measures
// the whole frame, Ethernet header included. The bit is usually matched in
// a later table reached with Resubmit, e.g.
// check_pkt_larger(1464)->NXM_NX_REG1[0],resubmit(,45) and reg1=0x1/0x1 there.
func CheckPktLarger(length uint16, dst Field, bit uint8) Action {
	return Action{Type: ActCheckPktLarger, Value: uint64(length), Field: dst, Bit: bit}
}

// Resubmit looks the packet up in table t (keeping its in_port) and runs
// the actions of the matching flow, then carries on with the actions after
// it (Nicira resubmit(,t)). Unlike goto_table it may go to any table,
// including an earlier one, and may be followed by further actions.
func Resubmit(t uint8) Action { return Action{Type: ActResubmit, Table: t} }

// CTClear clears the packet's connection-tracking state (ct_clear).
func CTClear() Action { return Action{Type: ActCTClear} }

// Conjunction makes the flow clause k (1-based) of n (2..64) of the
// conjunctive match id: conjunction(id,k/n). A packet that matches a flow
// of every clause then matches the flows with conj_id=id. OVS allows no
// other action in a flow with conjunction actions.
func Conjunction(id uint32, k, n uint8) Action {
	return Action{Type: ActConjunction, Value: uint64(id), Ofs: k, NBits: n}
}

// Meter is the OpenFlow 1.3 meter instruction: the packet goes through
// meter id (see Switch.ModifyMeter) before the actions; ovs-ofctl prints
// meter:id first in the list, and it must come first in Flow.Actions.
func Meter(id uint32) Action { return Action{Type: ActMeter, Value: uint64(id)} }

// WriteMetadata is the write_metadata instruction.
func WriteMetadata(v, mask uint64) Action {
	return Action{Type: ActWriteMetadata, Value: v & mask, Mask: mask}
}

// GotoTable is the goto_table instruction.
func GotoTable(t uint8) Action { return Action{Type: ActGotoTable, Table: t} }

// invalidAction records why a builder refused its input; encoding a flow
// holding it fails with that reason.
func invalidAction(format string, args ...any) Action {
	return Action{Type: actInvalid, ext: fmt.Sprintf(format, args...)}
}

// formatSubfield prints bits ofs..ofs+nbits-1 of f as ovs-ofctl does:
// NXM_NX_REG0[] for the whole field, [3] for one bit, [0..7] for a range.
func formatSubfield(f Field, ofs, nbits uint8) string {
	name := f.NXMName()
	switch {
	case ofs == 0 && uint(nbits) == f.Bits():
		return name + "[]"
	case nbits == 1:
		return name + "[" + strconv.Itoa(int(ofs)) + "]"
	default:
		return name + "[" + strconv.Itoa(int(ofs)) + ".." + strconv.Itoa(int(ofs)+int(nbits)-1) + "]"
	}
}

// String prints the action in ovs-ofctl syntax, as dump-flows shows it.
func (a Action) String() string {
	switch a.Type {
	case ActOutput:
		return "output:" + strconv.FormatUint(uint64(a.Port), 10)
	case ActInPort:
		return "IN_PORT"
	case ActSetField:
		return "set_field:" + a.Field.FormatValue(a.Value) + "->" + a.Field.SetFieldName()
	case ActLoad:
		return "load:" + formatHex(a.Value) + "->" + formatSubfield(a.Field, a.Ofs, a.NBits)
	case ActMove:
		return "move:" + formatSubfield(a.Src, a.SrcOfs, a.NBits) + "->" + formatSubfield(a.Field, a.Ofs, a.NBits)
	case ActOutputReg:
		return "output:" + formatSubfield(a.Field, a.Ofs, a.NBits)
	case ActDecTTL:
		return "dec_ttl"
	case ActController:
		// As ovs-ofctl prints it (it also accepts
		// controller(max_len=65535) and output:CONTROLLER).
		return "CONTROLLER:65535"
	case ActController2:
		return formatController2(a.ext)
	case ActCheckPktLarger:
		return "check_pkt_larger(" + strconv.FormatUint(a.Value, 10) + ")->" + a.Field.NXMName() + "[" + strconv.Itoa(int(a.Bit)) + "]"
	case ActResubmit:
		return "resubmit(," + strconv.Itoa(int(a.Table)) + ")"
	case ActCT:
		return formatCT(a.ext)
	case ActCTClear:
		return "ct_clear"
	case ActConjunction:
		return fmt.Sprintf("conjunction(%d,%d/%d)", a.Value, a.Ofs, a.NBits)
	case ActMeter:
		return "meter:" + strconv.FormatUint(a.Value, 10)
	case ActWriteMetadata:
		if a.Mask == ^uint64(0) {
			return "write_metadata:" + formatHex(a.Value)
		}
		return "write_metadata:" + formatHex(a.Value) + "/" + formatHex(a.Mask)
	case ActGotoTable:
		return "goto_table:" + strconv.Itoa(int(a.Table))
	case actInvalid:
		return "invalid(" + a.ext + ")"
	default:
		return "unknown(" + a.ext + ")"
	}
}

// Flow is one OpenFlow flow entry as vpcflow wants it installed.
// Actions holds apply-actions followed by at most one write_metadata and
// at most one goto_table; empty Actions means drop.
type Flow struct {
	Table    uint8
	Priority uint16
	Cookie   uint64
	Match    Match
	Actions  []Action
}

// Key identifies the flow entry in a switch: OpenFlow treats two entries
// with the same table, priority and match as the same entry.
type Key struct {
	Table    uint8
	Priority uint16
	// Match is a compact binary encoding of the (canonical) match, equal
	// exactly when the matches are equal; it is a map key, not text (use
	// Flow.Match.String() for ovs-ofctl syntax).
	Match string
}

// Key returns the identity of the flow entry.
func (f *Flow) Key() Key {
	return Key{Table: f.Table, Priority: f.Priority, Match: f.Match.keyString()}
}

// keyString is a compact binary form of the match, equal exactly when the
// matches are equal (matches are kept canonical): cheaper than String.
func (m Match) keyString() string {
	var arr [160]byte
	b := arr[:0]
	for _, fm := range m {
		b = append(b, byte(fm.Field))
		if fm.HasMask {
			b = append(b, 1)
			b = binary.BigEndian.AppendUint64(b, fm.Value)
			b = binary.BigEndian.AppendUint64(b, fm.Mask)
		} else {
			b = append(b, 0)
			b = binary.BigEndian.AppendUint64(b, fm.Value)
		}
	}
	return string(b)
}

// ActionsString prints the actions as ovs-ofctl does ("drop" when empty).
func (f *Flow) ActionsString() string {
	if len(f.Actions) == 0 {
		return "drop"
	}
	parts := make([]string, len(f.Actions))
	for i, a := range f.Actions {
		parts[i] = a.String()
	}
	return strings.Join(parts, ",")
}

// SameContent reports whether two flows with the same Key also have the same
// cookie and actions, so the installed one needs no change.
func (f *Flow) SameContent(o *Flow) bool {
	if f.Cookie != o.Cookie || len(f.Actions) != len(o.Actions) {
		return false
	}
	for i := range f.Actions {
		if f.Actions[i] != o.Actions[i] {
			return false
		}
	}
	return true
}

// String prints the flow in ovs-ofctl add-flow syntax, e.g.
// "table=30, priority=132, cookie=0x7670020000000003, ip,metadata=0x1,nw_dst=10.10.10.12 actions=…".
// The same text is accepted by `ovs-ofctl add-flows`.
func (f *Flow) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table=%d, priority=%d, cookie=0x%x", f.Table, f.Priority, f.Cookie)
	if len(f.Match) > 0 {
		b.WriteString(", ")
		b.WriteString(f.Match.String())
	}
	b.WriteString(" actions=")
	b.WriteString(f.ActionsString())
	return b.String()
}

// Address helpers.

// MACToUint64 packs a 6-byte MAC into the low 48 bits.
func MACToUint64(mac net.HardwareAddr) uint64 {
	var v uint64
	for _, b := range mac {
		v = v<<8 | uint64(b)
	}
	return v
}

// Uint64ToMAC unpacks the low 48 bits into a MAC.
func Uint64ToMAC(v uint64) net.HardwareAddr {
	mac := make(net.HardwareAddr, 6)
	for i := 5; i >= 0; i-- {
		mac[i] = byte(v)
		v >>= 8
	}
	return mac
}

// AddrToUint32 packs an IPv4 address.
func AddrToUint32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// Uint32ToAddr unpacks an IPv4 address.
func Uint32ToAddr(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
