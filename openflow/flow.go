// Package openflow holds vpcflow's OpenFlow 1.3 side: the flow model that the
// pipeline produces (Flow, Match, Action), its text form (valid ovs-ofctl
// add-flow syntax, so a desired table can be fed to `ovs-ofctl add-flows`
// or compared with `ovs-ofctl diff-flows`), its wire encoding, the decoder
// for flow-stats replies, and the connection layer for switches, which
// also delivers packet-ins (PacketInHandler) and sends packet-outs
// (Switch.PacketOut).
package openflow

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// Field names one match or action field. The declaration order is the
// canonical order in which a Match is kept and printed, so two equal matches
// always have equal text.
type Field uint8

// Fields used by the vpcflow pipeline.
const (
	FieldEthType Field = iota + 1 // printed as the protocol shorthand (arp, ip) when known
	FieldMetadata
	FieldReg0
	FieldReg1
	FieldReg2
	FieldInPort
	FieldTunID
	FieldTunSrc
	FieldTunDst
	FieldEthSrc
	FieldEthDst
	FieldArpOp
	FieldArpSpa
	FieldArpTpa
	FieldArpSha
	FieldArpTha
	FieldIPProto
	FieldIPv4Src
	FieldIPv4Dst
	fieldEnd
)

// Ether types with an ovs-ofctl shorthand.
const (
	EthTypeIPv4 = 0x0800
	EthTypeARP  = 0x0806
)

// fieldInfo describes how a field is printed and how wide it is.
type fieldInfo struct {
	name  string // ovs-ofctl match/set_field name
	nxm   string // NXM name used by move: (e.g. NXM_OF_ETH_SRC)
	bits  uint   // width in bits
	kind  fieldKind
	width int // bytes on the wire
}

type fieldKind uint8

const (
	kindHex fieldKind = iota
	kindDec
	kindMAC
	kindIPv4
)

var fieldInfos = [fieldEnd]fieldInfo{
	FieldEthType:  {name: "dl_type", nxm: "NXM_OF_ETH_TYPE", bits: 16, kind: kindHex, width: 2},
	FieldMetadata: {name: "metadata", nxm: "OXM_OF_METADATA", bits: 64, kind: kindHex, width: 8},
	FieldReg0:     {name: "reg0", nxm: "NXM_NX_REG0", bits: 32, kind: kindHex, width: 4},
	FieldReg1:     {name: "reg1", nxm: "NXM_NX_REG1", bits: 32, kind: kindHex, width: 4},
	FieldReg2:     {name: "reg2", nxm: "NXM_NX_REG2", bits: 32, kind: kindHex, width: 4},
	FieldInPort:   {name: "in_port", nxm: "OXM_OF_IN_PORT", bits: 32, kind: kindDec, width: 4},
	FieldTunID:    {name: "tun_id", nxm: "NXM_NX_TUN_ID", bits: 64, kind: kindHex, width: 8},
	FieldTunSrc:   {name: "tun_src", nxm: "NXM_NX_TUN_IPV4_SRC", bits: 32, kind: kindIPv4, width: 4},
	FieldTunDst:   {name: "tun_dst", nxm: "NXM_NX_TUN_IPV4_DST", bits: 32, kind: kindIPv4, width: 4},
	FieldEthSrc:   {name: "dl_src", nxm: "NXM_OF_ETH_SRC", bits: 48, kind: kindMAC, width: 6},
	FieldEthDst:   {name: "dl_dst", nxm: "NXM_OF_ETH_DST", bits: 48, kind: kindMAC, width: 6},
	FieldArpOp:    {name: "arp_op", nxm: "NXM_OF_ARP_OP", bits: 16, kind: kindDec, width: 2},
	FieldArpSpa:   {name: "arp_spa", nxm: "NXM_OF_ARP_SPA", bits: 32, kind: kindIPv4, width: 4},
	FieldArpTpa:   {name: "arp_tpa", nxm: "NXM_OF_ARP_TPA", bits: 32, kind: kindIPv4, width: 4},
	FieldArpSha:   {name: "arp_sha", nxm: "NXM_NX_ARP_SHA", bits: 48, kind: kindMAC, width: 6},
	FieldArpTha:   {name: "arp_tha", nxm: "NXM_NX_ARP_THA", bits: 48, kind: kindMAC, width: 6},
	FieldIPProto:  {name: "nw_proto", nxm: "NXM_OF_IP_PROTO", bits: 8, kind: kindDec, width: 1},
	FieldIPv4Src:  {name: "nw_src", nxm: "NXM_OF_IP_SRC", bits: 32, kind: kindIPv4, width: 4},
	FieldIPv4Dst:  {name: "nw_dst", nxm: "NXM_OF_IP_DST", bits: 32, kind: kindIPv4, width: 4},
}

// Name is the ovs-ofctl name of the field.
func (f Field) Name() string {
	if f == 0 || f >= fieldEnd {
		return fmt.Sprintf("field%d", uint8(f))
	}
	return fieldInfos[f].name
}

// NXMName is the name ovs-ofctl uses for the field in move: actions.
func (f Field) NXMName() string {
	if f == 0 || f >= fieldEnd {
		return fmt.Sprintf("FIELD%d", uint8(f))
	}
	return fieldInfos[f].nxm
}

// Bits is the width of the field.
func (f Field) Bits() uint {
	if f == 0 || f >= fieldEnd {
		return 0
	}
	return fieldInfos[f].bits
}

// fullMask is the all-ones mask for the field's width.
func (f Field) fullMask() uint64 {
	b := f.Bits()
	if b >= 64 {
		return ^uint64(0)
	}
	return (uint64(1) << b) - 1
}

// FormatValue prints a value of the field as ovs-ofctl does.
func (f Field) FormatValue(v uint64) string {
	if f == 0 || f >= fieldEnd {
		return "0x" + strconv.FormatUint(v, 16)
	}
	switch fieldInfos[f].kind {
	case kindDec:
		return strconv.FormatUint(v, 10)
	case kindMAC:
		return Uint64ToMAC(v).String()
	case kindIPv4:
		return Uint32ToAddr(uint32(v)).String()
	default:
		return "0x" + strconv.FormatUint(v, 16)
	}
}

// FieldMatch is one field of a match: the field equals Value, or, when
// HasMask is set, Value under Mask.
type FieldMatch struct {
	Value   uint64
	Mask    uint64
	Field   Field
	HasMask bool
}

// String prints the match field in ovs-ofctl syntax.
func (m FieldMatch) String() string {
	name := m.Field.Name()
	if m.Field == FieldEthType && !m.HasMask {
		switch m.Value {
		case EthTypeIPv4:
			return "ip"
		case EthTypeARP:
			return "arp"
		}
	}
	if !m.HasMask {
		return name + "=" + m.Field.FormatValue(m.Value)
	}
	if m.Field < fieldEnd && m.Field > 0 && fieldInfos[m.Field].kind == kindIPv4 {
		if l, ok := prefixLen(uint32(m.Mask)); ok {
			return fmt.Sprintf("%s=%s/%d", name, m.Field.FormatValue(m.Value), l)
		}
	}
	if m.Field < fieldEnd && m.Field > 0 && fieldInfos[m.Field].kind == kindDec {
		return fmt.Sprintf("%s=0x%x/0x%x", name, m.Value, m.Mask)
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
// written as an exact match and a zero mask removes the field, as OVS does.
func (m Match) WithMasked(f Field, v, mask uint64) Match {
	mask &= f.fullMask()
	switch mask {
	case 0:
		return m.without(f)
	case f.fullMask():
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
	for _, old := range m {
		if old.Field != fm.Field {
			out = append(out, old)
		}
	}
	out = append(out, fm)
	out.Normalize()
	return out
}

// Normalize sorts the match into canonical order.
func (m Match) Normalize() {
	sort.SliceStable(m, func(i, j int) bool { return m[i].Field < m[j].Field })
}

// String prints the match as ovs-ofctl would accept it.
func (m Match) String() string {
	parts := make([]string, len(m))
	for i, fm := range m {
		parts[i] = fm.String()
	}
	return strings.Join(parts, ",")
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

// Action types. Instructions (write_metadata, goto_table) are modelled as
// actions that must come last, in this order, as ovs-ofctl prints them.
const (
	ActOutput         ActionType = iota + 1 // output:Port
	ActInPort                               // IN_PORT (send back out of the ingress port)
	ActSetField                             // set_field:Value->Field
	ActMove                                 // move:Src[]->Field[]
	ActDecTTL                               // dec_ttl
	ActController                           // CONTROLLER:65535 (output to OFPP_CONTROLLER, max_len OFPCML_NO_BUFFER)
	ActCheckPktLarger                       // check_pkt_larger(Value)->Field[Bit]
	ActResubmit                             // resubmit(,Table)
	ActWriteMetadata                        // write_metadata:Value/Mask (instruction)
	ActOutputReg                            // output:NXM_NX_REGn[] (Nicira output_reg: the port number is in register Field)
	ActGotoTable                            // goto_table:Table (instruction)
	ActUnknown                              // something the decoder did not understand; never equal to a desired action
)

// Action is one action or instruction. Only the fields its Type uses are set,
// so Actions compare with ==.
type Action struct {
	Value uint64 // ActSetField, ActWriteMetadata, ActCheckPktLarger (packet length), ActUnknown (a hash of the raw bytes)
	Mask  uint64 // ActWriteMetadata
	Raw   string // ActUnknown: hex of the undecoded bytes, for logs
	Port  uint32 // ActOutput
	Type  ActionType
	Field Field // ActSetField, ActMove, ActCheckPktLarger (destination)
	Src   Field // ActMove
	Bit   uint8 // ActCheckPktLarger: the destination bit (offset into Field)
	Table uint8 // ActGotoTable, ActResubmit
}

// Output sends the packet out of port p.
func Output(p uint32) Action { return Action{Type: ActOutput, Port: p} }

// OutputInPort sends the packet back out of the port it came in on.
func OutputInPort() Action { return Action{Type: ActInPort} }

// ToController sends the whole packet to the controller as a packet-in
// (OFPAT_OUTPUT to OFPP_CONTROLLER with max_len OFPCML_NO_BUFFER, so the
// switch buffers nothing). ovs-ofctl prints it as CONTROLLER:65535.
func ToController() Action { return Action{Type: ActController} }

// SetField writes v into f.
func SetField(f Field, v uint64) Action {
	return Action{Type: ActSetField, Field: f, Value: v & f.fullMask()}
}

// SetMAC writes a MAC into an Ethernet or ARP hardware-address field.
func SetMAC(f Field, mac net.HardwareAddr) Action { return SetField(f, MACToUint64(mac)) }

// SetAddr writes an IPv4 address into f.
func SetAddr(f Field, a netip.Addr) Action { return SetField(f, uint64(AddrToUint32(a))) }

// Move copies the whole of src into dst (both must be of equal width).
func Move(src, dst Field) Action { return Action{Type: ActMove, Src: src, Field: dst} }

// OutputReg sends the packet out of the port whose number is in the
// 32-bit register f (Nicira output_reg), so one flow can output to
// whatever port an earlier table chose.
func OutputReg(f Field) Action { return Action{Type: ActOutputReg, Field: f} }

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

// WriteMetadata is the write_metadata instruction.
func WriteMetadata(v, mask uint64) Action {
	return Action{Type: ActWriteMetadata, Value: v & mask, Mask: mask}
}

// GotoTable is the goto_table instruction.
func GotoTable(t uint8) Action { return Action{Type: ActGotoTable, Table: t} }

// String prints the action in ovs-ofctl syntax.
func (a Action) String() string {
	switch a.Type {
	case ActOutput:
		return "output:" + strconv.FormatUint(uint64(a.Port), 10)
	case ActInPort:
		return "IN_PORT"
	case ActSetField:
		return "set_field:" + a.Field.FormatValue(a.Value) + "->" + a.Field.Name()
	case ActMove:
		return "move:" + a.Src.NXMName() + "[]->" + a.Field.NXMName() + "[]"
	case ActDecTTL:
		return "dec_ttl"
	case ActOutputReg:
		return "output:" + a.Field.NXMName() + "[]"
	case ActController:
		// As ovs-ofctl prints it (it also accepts
		// controller(max_len=65535) and output:CONTROLLER).
		return "CONTROLLER:65535"
	case ActCheckPktLarger:
		return "check_pkt_larger(" + strconv.FormatUint(a.Value, 10) + ")->" + a.Field.NXMName() + "[" + strconv.Itoa(int(a.Bit)) + "]"
	case ActResubmit:
		return "resubmit(," + strconv.Itoa(int(a.Table)) + ")"
	case ActWriteMetadata:
		return fmt.Sprintf("write_metadata:0x%x/0x%x", a.Value, a.Mask)
	case ActGotoTable:
		return "goto_table:" + strconv.Itoa(int(a.Table))
	default:
		return "unknown(" + a.Raw + ")"
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
