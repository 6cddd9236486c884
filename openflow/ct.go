package openflow

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	ofp13 "github.com/contiv/libOpenflow/openflow13"
)

// Connection tracking (Nicira ct, nat, ct_clear) and the controller action
// with options (NXAST_CONTROLLER2).
//
// An ActCT or ActController2 keeps its whole canonical wire encoding in
// Action.ext (see Action): ConnTrack and ControllerWith build it once, the
// flow-mod encoder copies it, the flow-stats decoder parses a switch's bytes
// into a CT (or Controller) and builds the canonical bytes again with the
// same function, so two equal actions always hold equal strings.

// CT describes a conntrack action, ct(...). The zero value is ct(): send
// the packet through conntrack in zone 0 and carry on with its ct_state
// set.
type CT struct {
	// Commit commits the connection to conntrack (ct(commit)); required
	// for Exec and for a NAT with Src or Dst.
	Commit bool
	// Force (with Commit) first ends a committed connection that goes the
	// other way (ct(commit,force)).
	Force bool
	// Recirc makes the packet continue in Table once conntrack has run
	// (ct(table=N)), with its ct fields set; without it the actions after
	// the ct action see the packet as it was.
	Recirc bool
	Table  uint8
	// Zone is the conntrack zone (ct(zone=N)) unless ZoneField is set.
	Zone uint16
	// ZoneField, when set, takes the zone from bits ZoneOfs..ZoneOfs+15 of
	// that field (ct(zone=NXM_NX_REG3[0..15])).
	ZoneField Field
	ZoneOfs   uint8
	// NAT, when set, NATs the connection (nat, nat(src=…), nat(dst=…)).
	NAT *NAT
	// Exec runs on the committed connection: SetField or Load of ct_mark
	// and ct_label only (exec(set_field:0x1->ct_mark,
	// load:0x1->NXM_NX_CT_LABEL[0..7])).
	Exec []Action
}

// NATKind is what a NAT rewrites.
type NATKind uint8

// NAT kinds.
const (
	// NATReverse (bare "nat") applies the NAT that an existing connection
	// was committed with, in whichever direction the packet goes.
	NATReverse NATKind = iota
	NATSrc             // nat(src=…): source NAT
	NATDst             // nat(dst=…): destination NAT
)

// NAT is the nat(...) of a ct action: IPv4 addresses Min..Max (Max unset or
// equal to Min for a single address) and ports MinPort..MaxPort (0: keep
// the port), with OVS's persistent, hash and random flags. NATReverse takes
// none of these.
type NAT struct {
	Kind       NATKind
	Min, Max   netip.Addr
	MinPort    uint16
	MaxPort    uint16
	Persistent bool
	Hash       bool
	Random     bool
}

// ConnTrack builds the ct action described by c, e.g.
//
//	ConnTrack(CT{Commit: true, Zone: 5, Recirc: true, Table: 3,
//		NAT: &NAT{Kind: NATSrc, Min: a, Max: b, MinPort: 1000, MaxPort: 2000},
//		Exec: []Action{SetField(FieldCTMark, 1)}})
//
// is ct(commit,table=3,zone=5,nat(src=A-B:1000-2000),exec(set_field:0x1->ct_mark)).
// A spec OVS would refuse gives an action that fails to encode with the
// reason (EncodeFlowMod, Switch.Apply).
func ConnTrack(c CT) Action {
	b, err := buildCT(c)
	if err != nil {
		return invalidAction("ct: %v", err)
	}
	return Action{Type: ActCT, ext: string(b)}
}

// CT returns the ct action's description; ok is false for other actions.
func (a Action) CT() (c CT, ok bool) {
	if a.Type != ActCT {
		return CT{}, false
	}
	c, err := parseCT([]byte(a.ext))
	return c, err == nil
}

// normalize puts a NAT into canonical form: a Max or MaxPort equal to the
// minimum is dropped (OVS prints a single address or port then).
func (n NAT) normalize() NAT {
	if n.Max == n.Min {
		n.Max = netip.Addr{}
	}
	if n.MaxPort == n.MinPort {
		n.MaxPort = 0
	}
	return n
}

func (n NAT) validate() error {
	if n.Kind == NATReverse {
		if n != (NAT{}) {
			return errors.New("bare nat takes no addresses, ports or flags")
		}
		return nil
	}
	if n.Kind != NATSrc && n.Kind != NATDst {
		return fmt.Errorf("unknown nat kind %d", n.Kind)
	}
	if n.Min.IsValid() && !n.Min.Is4() || n.Max.IsValid() && !n.Max.Is4() {
		return errors.New("nat addresses must be IPv4")
	}
	if n.Max.IsValid() && (!n.Min.IsValid() || n.Max.Less(n.Min)) {
		return fmt.Errorf("nat address range %v-%v", n.Min, n.Max)
	}
	if n.MinPort == 0 && n.MaxPort != 0 || n.MaxPort != 0 && n.MaxPort < n.MinPort {
		return fmt.Errorf("nat port range %d-%d", n.MinPort, n.MaxPort)
	}
	if n.MinPort != 0 && !n.Min.IsValid() {
		return errors.New("nat ports need an address")
	}
	if (n.Persistent || n.Hash || n.Random) && !n.Min.IsValid() {
		return errors.New("nat persistent, hash and random need an address (OVS drops them otherwise)")
	}
	if n.Hash && n.Random {
		return errors.New("nat hash and random exclude each other")
	}
	return nil
}

// ctExecAllowed reports whether a may run in a ct action's exec.
func ctExecAllowed(a Action) bool {
	return (a.Type == ActSetField || a.Type == ActLoad) && (a.Field == FieldCTMark || a.Field == FieldCTLabel)
}

func (c *CT) validate() error {
	if c.Force && !c.Commit {
		return errors.New("force needs commit")
	}
	if c.Recirc && c.Table == TableAll {
		return fmt.Errorf("table %d", c.Table)
	}
	if c.ZoneField != 0 {
		if c.Zone != 0 {
			return errors.New("both an immediate zone and a zone field")
		}
		if err := checkSubfield(c.ZoneField, c.ZoneOfs, 16); err != nil {
			return fmt.Errorf("zone: %w", err)
		}
	}
	if c.NAT != nil {
		if err := c.NAT.validate(); err != nil {
			return err
		}
		if c.NAT.Kind != NATReverse && !c.Commit {
			// OVS: "CT action requires commit flag if actions other than
			// NAT without arguments are specified".
			return errors.New("nat(src|dst) needs commit")
		}
	}
	if len(c.Exec) > 0 && !c.Commit {
		return errors.New("exec needs commit")
	}
	for _, a := range c.Exec {
		if !ctExecAllowed(a) {
			return fmt.Errorf("exec may only set ct_mark or ct_label, not %s", a)
		}
		if err := validateOne(a); err != nil {
			return fmt.Errorf("exec: %w", err)
		}
	}
	return nil
}

// buildCT validates c and returns its canonical NXAST_CT encoding, made by
// libOpenflow's NXActionConnTrack and NXActionCTNAT (whose bytes are what
// OVS 3.1 produces for the same text: see TestEncodingAgainstOVSOfctl).
func buildCT(c CT) ([]byte, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	ct := ofp13.NewNXActionConnTrack()
	if c.Commit {
		ct.Commit()
	}
	if c.Force {
		ct.Force()
	}
	if c.Recirc {
		ct.Table(c.Table)
	}
	if c.ZoneField != 0 {
		ct.ZoneRange(nxHeader(c.ZoneField), ofp13.NewNXRangeByOfsNBits(int(c.ZoneOfs), 16))
	} else {
		ct.ZoneImm(c.Zone)
	}
	if c.NAT != nil {
		ct.AddAction(buildNAT(c.NAT.normalize()))
	}
	for i := range c.Exec {
		ct.AddAction(rawAction(appendAction(nil, &c.Exec[i])))
	}
	return ct.MarshalBinary()
}

// buildNAT encodes a validated, normalized NAT with libOpenflow.
//
// libOpenflow bug worked around here: NXActionCTNAT.MarshalBinary writes
// the PROTO_MAX range under `if a.rangeProtoMin != nil` and dereferences
// rangeProtoMax, so a NAT with a minimum port and no maximum panics (nil
// pointer) instead of encoding. A single port is therefore given as
// min = max, which OVS treats (and prints) as that one port.
func buildNAT(n NAT) *ofp13.NXActionCTNAT {
	a := ofp13.NewNXActionCTNAT()
	switch n.Kind {
	case NATSrc:
		_ = a.SetSNAT()
	case NATDst:
		_ = a.SetDNAT()
	}
	if n.Persistent {
		_ = a.SetPersistent()
	}
	if n.Hash {
		_ = a.SetProtoHash()
	}
	if n.Random {
		_ = a.SetRandom()
	}
	if n.Min.IsValid() {
		a.SetRangeIPv4Min(net.IP(n.Min.AsSlice()))
	}
	if n.Max.IsValid() {
		a.SetRangeIPv4Max(net.IP(n.Max.AsSlice()))
	}
	if n.MinPort != 0 {
		lo, hi := n.MinPort, n.MaxPort
		if hi == 0 {
			hi = lo
		}
		a.SetRangeProtoMin(&lo)
		a.SetRangeProtoMax(&hi)
	}
	return a
}

// rawAction is an action we encoded ourselves, in the shape libOpenflow's
// NXActionConnTrack.AddAction takes.
type rawAction []byte

func (r rawAction) Header() *ofp13.ActionHeader {
	return &ofp13.ActionHeader{Type: be.Uint16(r), Length: be.Uint16(r[2:])}
}
func (r rawAction) Len() uint16                       { return uint16(len(r)) }
func (r rawAction) MarshalBinary() ([]byte, error)    { return r, nil }
func (r rawAction) UnmarshalBinary(data []byte) error { return errors.New("rawAction is encode-only") }

// nxHeader is f's field header inside Nicira actions (see nxActionFields)
// as libOpenflow wants it.
func nxHeader(f Field) *ofp13.MatchField {
	w := nxActionFields[f]
	return &ofp13.MatchField{Class: w.id.class, Field: w.id.field, Length: uint8(w.width)}
}

// NXAST_CT and NXAST_NAT layout.
const (
	nxastCT        = 35
	nxastNAT       = 36
	nxCTLen        = 24 // nx_action_conntrack without nested actions
	nxNATLen       = 16 // nx_action_nat without ranges
	ctFlagCommit   = 1
	ctFlagForce    = 2
	natFlagSrc     = 1
	natFlagDst     = 2
	natFlagPersist = 4
	natFlagHash    = 8
	natFlagRandom  = 16
	natRangeV4Min  = 1
	natRangeV4Max  = 2
	natRangeV6Min  = 4
	natRangeV6Max  = 8
	natRangePMin   = 16
	natRangePMax   = 32
)

var errUnsupported = errors.New("form vpcflow does not install")

// parseCT parses a whole NXAST_CT action (header included) into a CT. It
// fails for anything vpcflow cannot express: an ALG, unknown flags, nested
// actions other than one leading NAT and set_field/load of ct_mark and
// ct_label.
func parseCT(a []byte) (CT, error) {
	if len(a) < nxCTLen || be.Uint16(a) != actTypeExperimenter || int(be.Uint16(a[2:])) != len(a) ||
		be.Uint32(a[4:]) != nxExperimenter || be.Uint16(a[8:]) != nxastCT {
		return CT{}, errUnsupported
	}
	var c CT
	flags := be.Uint16(a[10:])
	if flags&^(ctFlagCommit|ctFlagForce) != 0 {
		return CT{}, errUnsupported
	}
	c.Commit, c.Force = flags&ctFlagCommit != 0, flags&ctFlagForce != 0
	zoneSrc, zoneOfsNbits := be.Uint32(a[12:]), be.Uint16(a[16:])
	if zoneSrc == 0 {
		c.Zone = zoneOfsNbits
	} else {
		var hdr [4]byte
		be.PutUint32(hdr[:], zoneSrc)
		e, _, ok := parseOXMHeader(hdr[:])
		if !ok {
			return CT{}, errUnsupported
		}
		f, w, ok := headerField(e)
		ofs, nbits := zoneOfsNbits>>6, zoneOfsNbits&0x3f+1
		if !ok || nbits != 16 || int(ofs)+16 > 8*w || checkSubfield(f, uint8(ofs), 16) != nil || ofs > 0xff {
			return CT{}, errUnsupported
		}
		c.ZoneField, c.ZoneOfs = f, uint8(ofs)
	}
	if t := a[18]; t != TableAll {
		c.Recirc, c.Table = true, t
	}
	if be.Uint16(a[22:]) != 0 { // alg
		return CT{}, errUnsupported
	}
	for rest, first := a[nxCTLen:], true; len(rest) > 0; first = false {
		if len(rest) < 4 {
			return CT{}, errUnsupported
		}
		l := int(be.Uint16(rest[2:]))
		if l < 4 || l > len(rest) {
			return CT{}, errUnsupported
		}
		na := rest[:l]
		rest = rest[l:]
		if first && l >= 10 && be.Uint16(na) == actTypeExperimenter && be.Uint32(na[4:]) == nxExperimenter && be.Uint16(na[8:]) == nxastNAT {
			n, err := parseNAT(na)
			if err != nil {
				return CT{}, err
			}
			c.NAT = &n
			continue
		}
		act := decodeAction(be.Uint16(na), na)
		if !ctExecAllowed(act) || validateOne(act) != nil {
			return CT{}, errUnsupported
		}
		c.Exec = append(c.Exec, act)
	}
	if c.validate() != nil {
		return CT{}, errUnsupported
	}
	return c, nil
}

// parseNAT parses a whole NXAST_NAT action into a normalized NAT.
func parseNAT(a []byte) (NAT, error) {
	if len(a) < nxNATLen || int(be.Uint16(a[2:])) != len(a) {
		return NAT{}, errUnsupported
	}
	flags, present := be.Uint16(a[12:]), be.Uint16(a[14:])
	if flags&^(natFlagSrc|natFlagDst|natFlagPersist|natFlagHash|natFlagRandom) != 0 ||
		present&(natRangeV6Min|natRangeV6Max) != 0 || present&^(natRangeV4Min|natRangeV4Max|natRangePMin|natRangePMax) != 0 {
		return NAT{}, errUnsupported
	}
	var n NAT
	switch flags & (natFlagSrc | natFlagDst) {
	case 0:
		n.Kind = NATReverse
	case natFlagSrc:
		n.Kind = NATSrc
	case natFlagDst:
		n.Kind = NATDst
	default:
		return NAT{}, errUnsupported
	}
	n.Persistent, n.Hash, n.Random = flags&natFlagPersist != 0, flags&natFlagHash != 0, flags&natFlagRandom != 0
	p := a[nxNATLen:]
	take := func(k int) ([]byte, bool) {
		if len(p) < k {
			return nil, false
		}
		v := p[:k]
		p = p[k:]
		return v, true
	}
	if present&natRangeV4Min != 0 {
		v, ok := take(4)
		if !ok {
			return NAT{}, errUnsupported
		}
		n.Min = netip.AddrFrom4([4]byte(v))
	}
	if present&natRangeV4Max != 0 {
		v, ok := take(4)
		if !ok {
			return NAT{}, errUnsupported
		}
		n.Max = netip.AddrFrom4([4]byte(v))
	}
	if present&natRangePMin != 0 {
		v, ok := take(2)
		if !ok {
			return NAT{}, errUnsupported
		}
		n.MinPort = be.Uint16(v)
	}
	if present&natRangePMax != 0 {
		v, ok := take(2)
		if !ok {
			return NAT{}, errUnsupported
		}
		n.MaxPort = be.Uint16(v)
	}
	if len(p) >= 8 || !allZero(p) { // only the padding to 8 bytes may follow
		return NAT{}, errUnsupported
	}
	// OVS ignores a zero address or port as "not present".
	if n.Min == netip.AddrFrom4([4]byte{}) {
		n.Min = netip.Addr{}
	}
	if n.Max == netip.AddrFrom4([4]byte{}) {
		n.Max = netip.Addr{}
	}
	n = n.normalize()
	if n.validate() != nil {
		return NAT{}, errUnsupported
	}
	return n, nil
}

// decodeCT turns a switch's NXAST_CT bytes into an ActCT with canonical
// bytes, or fails.
func decodeCT(a []byte) (Action, bool) {
	c, err := parseCT(a)
	if err != nil {
		return Action{}, false
	}
	b, err := buildCT(c)
	if err != nil {
		return Action{}, false
	}
	return Action{Type: ActCT, ext: string(b)}, true
}

// formatCT prints canonical ct bytes as ovs-ofctl does.
func formatCT(ext string) string {
	c, err := parseCT([]byte(ext))
	if err != nil {
		return "ct(?)"
	}
	var parts []string
	if c.Commit {
		parts = append(parts, "commit")
	}
	if c.Force {
		parts = append(parts, "force")
	}
	if c.Recirc {
		parts = append(parts, "table="+strconv.Itoa(int(c.Table)))
	}
	if c.ZoneField != 0 {
		parts = append(parts, "zone="+formatSubfield(c.ZoneField, c.ZoneOfs, 16))
	} else if c.Zone != 0 {
		parts = append(parts, "zone="+strconv.Itoa(int(c.Zone)))
	}
	if c.NAT != nil {
		parts = append(parts, c.NAT.String())
	}
	if len(c.Exec) > 0 {
		ex := make([]string, len(c.Exec))
		for i, a := range c.Exec {
			ex[i] = a.String()
		}
		parts = append(parts, "exec("+strings.Join(ex, ",")+")")
	}
	return "ct(" + strings.Join(parts, ",") + ")"
}

// String prints the NAT as ovs-ofctl does inside ct(...).
func (n NAT) String() string {
	if n.Kind == NATReverse {
		return "nat"
	}
	n = n.normalize()
	var b strings.Builder
	b.WriteString("nat(")
	if n.Kind == NATSrc {
		b.WriteString("src")
	} else {
		b.WriteString("dst")
	}
	if n.Min.IsValid() {
		b.WriteString("=" + n.Min.String())
		if n.Max.IsValid() {
			b.WriteString("-" + n.Max.String())
		}
		if n.MinPort != 0 {
			b.WriteString(":" + strconv.Itoa(int(n.MinPort)))
			if n.MaxPort != 0 {
				b.WriteString("-" + strconv.Itoa(int(n.MaxPort)))
			}
		}
	}
	if n.Persistent {
		b.WriteString(",persistent")
	}
	if n.Hash {
		b.WriteString(",hash")
	}
	if n.Random {
		b.WriteString(",random")
	}
	b.WriteString(")")
	return b.String()
}
