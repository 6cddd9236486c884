package openflow

import (
	"net/netip"
	"testing"
)

// catalogCookie marks the catalog's flows.
const catalogCookie = 0x7670090000000000

// catalogMeters are the meters the catalog's flows use; they must exist on
// the switch before the flows are installed.
var catalogMeters = []uint32{1, 3, 7}

// catalog returns flows that together use every Field (exact, and masked
// where OVS takes a mask) and every Action vpcflow can encode, each in a
// flow OVS 3.1 accepts (prerequisites met: ct needs ip, tp_src needs tcp or
// udp…). The OVS tests install it, dump it and compare it as text
// (ovs-ofctl) and by decoding; the unit tests run it through ovs-ofctl's
// own parser and printer.
func catalog() []Flow {
	a := netip.MustParseAddr
	p := netip.MustParsePrefix
	var flows []Flow
	prio := uint16(1000)
	table := uint8(0)
	add := func(m Match, acts ...Action) {
		flows = append(flows, Flow{Table: table, Priority: prio, Cookie: catalogCookie | uint64(prio), Match: m, Actions: acts})
		prio++
	}
	ip := NewMatch().EthType(EthTypeIPv4)
	arp := NewMatch().EthType(EthTypeARP)

	// Matches, table 0.
	add(NewMatch().With(FieldConjID, 7), Output(1))
	add(NewMatch().With(FieldPktMark, 0x76740001), Output(1))
	add(NewMatch().WithMasked(FieldPktMark, 0x76740000, 0xffff0000).With(FieldConjID, 3).Reg(2, 5, 0xffffffff), Output(1))
	add(NewMatch().CTState(CTTrk|CTEst, CTNew), Output(1))
	add(NewMatch().CTState(CTTrk, CTInv|CTRpl|CTRel), Output(1))
	add(NewMatch().CTState(CTTrk|CTNew|CTSNAT|CTDNAT, CTEst|CTRel|CTRpl|CTInv), Output(1)) // exact: new|trk|snat|dnat
	add(NewMatch().CTState(0, 0xff), Output(1))                                            // exact 0
	add(NewMatch().With(FieldCTZone, 5), Output(1))
	add(NewMatch().With(FieldCTZone, 0).With(FieldCTMark, 0xffffffff), Output(1))
	add(NewMatch().WithMasked(FieldCTMark, 0x4, 0xf), Output(1))
	add(NewMatch().With(FieldCTLabel, 0x8), Output(1))
	add(NewMatch().WithMasked(FieldCTLabel, 0x100, 0xff00), Output(1))
	add(NewMatch().WithMasked(FieldCTLabel, 0x5, ^uint64(0)), Output(1))
	add(NewMatch().WithMasked(FieldCTLabel, 0x8000000000000000, 0x8000000000000000), Output(1))
	for r := 0; r < 8; r++ {
		add(NewMatch().Reg(r, uint32(r+1), 0xffffffff), Output(1))
		add(NewMatch().Reg(r, 0x10<<r, 0xf0<<r), Output(1))
	}
	add(NewMatch().Reg(0, 0, 1).Reg(7, 0, 0xffffffff), Output(1))
	add(NewMatch().With(FieldTunID, 0x1234).Addr(FieldTunSrc, a("192.0.2.1")).Addr(FieldTunDst, a("192.0.2.2")).InPort(5), Output(1))
	add(NewMatch().WithMasked(FieldTunID, 0x100, 0xff00).Prefix(FieldTunSrc, p("192.0.2.0/24")).Prefix(FieldTunDst, p("198.51.0.0/16")), Output(1))
	add(NewMatch().With(FieldTunID, 0), Output(1))
	add(NewMatch().Metadata(1, ^uint64(0)), Output(1))
	add(NewMatch().Metadata(0, 0xffff), Output(1))
	add(NewMatch().Metadata(0x100000000, 0xffffffff00000000).InPort(3), Output(1))
	add(NewMatch().EthSrc(macVM1).With(FieldEthDst, MACToUint64(macVM2)), Output(1))
	add(NewMatch().WithMasked(FieldEthSrc, 0x010000000000, 0x010000000000).WithMasked(FieldEthDst, 0x525800000000, 0xffffff000000), Output(1))
	add(NewMatch().EthType(0x88cc), Output(1))
	add(NewMatch().EthType(0x88cc).InPort(2).With(FieldEthDst, MACToUint64(macVM2)), Output(1))
	add(ip.Addr(FieldIPv4Src, a("10.0.0.1")).Addr(FieldIPv4Dst, a("10.0.0.2")), Output(1))
	add(ip.Prefix(FieldIPv4Src, p("10.0.0.0/8")).Prefix(FieldIPv4Dst, p("172.18.3.0/24")), Output(1))
	add(ip.WithMasked(FieldIPv4Src, 0x0a000000, 0xff00ff00), Output(1))
	add(ip.With(FieldIPProto, 47).With(FieldIPTTL, 3), Output(1))
	add(ip.With(FieldIPTTL, 64).Addr(FieldIPv4Src, a("10.1.1.1")), Output(1))
	add(NewMatch().ICMP(), Output(1))
	add(NewMatch().ICMP().With(FieldICMPType, 8).With(FieldICMPCode, 0).Metadata(5, ^uint64(0)).InPort(3), Output(1))
	add(NewMatch().ICMP().With(FieldICMPType, 3).With(FieldICMPCode, 4), Output(1))
	add(NewMatch().TCP(), Output(1))
	add(NewMatch().TCP().With(FieldTCPSrc, 80).With(FieldTCPDst, 443), Output(1))
	add(NewMatch().TCP().WithMasked(FieldTCPSrc, 0x400, 0xff00).WithMasked(FieldTCPDst, 0x100, 0xff00), Output(1))
	add(NewMatch().UDP(), Output(1))
	add(NewMatch().UDP().With(FieldUDPSrc, 68).With(FieldUDPDst, 67), Output(1))
	add(NewMatch().UDP().WithMasked(FieldUDPDst, 0x1000, 0xf000).WithMasked(FieldUDPSrc, 0x8000, 0x8000), Output(1))
	add(arp.With(FieldArpOp, 1).Addr(FieldArpSpa, a("10.0.0.1")).Prefix(FieldArpTpa, p("10.0.0.0/24")).InPort(1), Output(1))
	add(arp.With(FieldArpSha, MACToUint64(macVM1)).With(FieldArpTha, 0), Output(1))
	add(arp.Prefix(FieldArpSpa, p("10.0.0.0/16")).Addr(FieldArpTpa, a("10.0.0.9")), Output(1))
	add(arp.WithMasked(FieldArpSha, 0x525800000000, 0xffffff000000).WithMasked(FieldArpTha, 1, 1), Output(1))
	add(NewMatch().With(FieldConjID, 9).CTState(CTTrk|CTEst, CTNew).With(FieldCTZone, 4).WithMasked(FieldCTMark, 4, 0xf).
		With(FieldCTLabel, 8).TCP().Reg(0, 1, 0xffffffff).Reg(2, 3, 0xff).With(FieldTunID, 5).Metadata(5, ^uint64(0)).InPort(3).
		EthSrc(macVM1).Prefix(FieldIPv4Src, p("10.0.0.0/8")).Addr(FieldIPv4Dst, a("10.1.1.1")).With(FieldTCPSrc, 80).WithMasked(FieldTCPDst, 0x100, 0xff00),
		Output(1))

	// Actions, table 10.
	table = 10
	add(NewMatch(), Output(1), OutputInPort(), ToController())
	add(ip, DecTTL(), Output(65000))
	add(NewMatch(), SetMAC(FieldEthSrc, macGW), SetMAC(FieldEthDst, macVM2), Resubmit(0))
	add(NewMatch(), SetField(FieldReg0, 0), SetField(FieldReg1, 1), SetField(FieldReg2, 2), SetField(FieldReg3, 3),
		SetField(FieldReg4, 4), SetField(FieldReg5, 5), SetField(FieldReg6, 6), SetField(FieldReg7, 0xffffffff))
	add(NewMatch(), SetField(FieldTunID, 0x1234), SetAddr(FieldTunSrc, a("192.0.2.1")), SetAddr(FieldTunDst, a("192.0.2.9")), Output(5))
	add(NewMatch(), SetField(FieldMetadata, 0x55), SetField(FieldTunID, 0))
	add(NewMatch(), SetField(FieldPktMark, 0x76740002), Load(FieldPktMark, 0, 16, 3), Output(2))
	add(ip, SetAddr(FieldIPv4Src, a("10.0.0.1")), SetAddr(FieldIPv4Dst, a("10.0.0.2")), SetField(FieldIPTTL, 9), DecTTL())
	add(NewMatch().ICMP(), SetField(FieldICMPType, 3), SetField(FieldICMPCode, 4), OutputInPort())
	add(NewMatch().TCP(), SetField(FieldTCPSrc, 81), SetField(FieldTCPDst, 80))
	add(NewMatch().UDP(), SetField(FieldUDPSrc, 67), SetField(FieldUDPDst, 68))
	add(arp, SetField(FieldArpOp, 2), SetAddr(FieldArpSpa, a("10.0.0.1")), SetAddr(FieldArpTpa, a("10.0.0.2")),
		SetMAC(FieldArpSha, macGW), SetMAC(FieldArpTha, macVM1))
	add(NewMatch(), Load(FieldReg0, 3, 1, 1), Load(FieldReg1, 0, 4, 5), Load(FieldReg2, 0, 32, 0xdeadbeef), Load(FieldReg7, 31, 1, 0))
	add(NewMatch(), Load(FieldTunID, 0, 8, 5), Load(FieldTunID, 0, 64, 1<<63), Load(FieldEthDst, 0, 8, 0xff))
	add(ip, Load(FieldIPv4Dst, 0, 8, 7), Load(FieldIPTTL, 0, 8, 1))
	add(NewMatch().TCP(), Load(FieldTCPDst, 0, 16, 8080), Load(FieldTCPSrc, 8, 8, 1))
	add(arp, Move(FieldEthSrc, FieldEthDst), Move(FieldArpSha, FieldArpTha), Move(FieldArpTpa, FieldReg0),
		Move(FieldArpSpa, FieldArpTpa), Move(FieldReg0, FieldArpSpa), OutputInPort())
	add(ip, Move(FieldIPv4Src, FieldReg0), MoveBits(FieldReg0, 0, FieldReg1, 8, 8), Move(FieldMetadata, FieldTunID),
		Move(FieldInPort, FieldReg2), MoveBits(FieldReg3, 16, FieldReg4, 0, 16), MoveBits(FieldReg5, 31, FieldReg6, 0, 1))
	add(NewMatch().TCP(), MoveBits(FieldTCPSrc, 0, FieldReg3, 0, 16), MoveBits(FieldReg3, 0, FieldTCPDst, 0, 16))
	add(NewMatch(), OutputReg(FieldReg5, 0, 32))
	add(NewMatch(), OutputReg(FieldReg5, 0, 16), OutputReg(FieldReg6, 16, 16), OutputReg(FieldReg0, 3, 1))
	add(ip, CheckPktLarger(1464, FieldReg1, 0), Resubmit(45))
	add(NewMatch(), ControllerWith(Controller{Userdata: []byte{1, 2, 3}}))
	add(NewMatch(), ControllerWith(Controller{Userdata: []byte("dhcp"), Pause: true}))
	add(NewMatch(), ControllerWith(Controller{MeterID: 3}))
	add(NewMatch(), ControllerWith(Controller{Reason: ControllerReasonNoMatch, Userdata: []byte{0}}))
	add(NewMatch(), ControllerWith(Controller{Reason: ControllerReasonInvalidTTL, Userdata: make([]byte, 40), Pause: true, MeterID: 7}))
	add(NewMatch(), ControllerWith(Controller{}), CTClear()) // CONTROLLER:65535
	add(ip, CTClear(), Output(2))

	// Conntrack, table 20.
	table = 20
	add(ip, ConnTrack(CT{}))
	add(ip, ConnTrack(CT{Commit: true}))
	add(ip, ConnTrack(CT{Commit: true, Force: true, Zone: 3}))
	add(ip, ConnTrack(CT{Recirc: true, Table: 21, Zone: 7}))
	add(ip, ConnTrack(CT{Recirc: true, Table: 0}))
	add(ip, ConnTrack(CT{ZoneField: FieldReg3, ZoneOfs: 0, Recirc: true, Table: 22}))
	add(ip, ConnTrack(CT{Commit: true, ZoneField: FieldReg4, ZoneOfs: 16}), Output(2))
	add(ip, ConnTrack(CT{NAT: &NAT{}, Recirc: true, Table: 23, Zone: 1}))
	add(ip, ConnTrack(CT{Commit: true, NAT: &NAT{Kind: NATSrc, Min: a("10.0.0.1")}}))
	add(ip, ConnTrack(CT{Commit: true, NAT: &NAT{Kind: NATSrc, Min: a("10.0.0.1"), Max: a("10.0.0.9")}}))
	add(ip, ConnTrack(CT{Commit: true, Zone: 5, Recirc: true, Table: 3,
		NAT: &NAT{Kind: NATSrc, Min: a("10.0.0.1"), Max: a("10.0.0.5"), MinPort: 1000, MaxPort: 2000}}))
	add(ip, ConnTrack(CT{Commit: true, NAT: &NAT{Kind: NATDst, Min: a("10.0.0.1"), MinPort: 80}}))
	add(ip, ConnTrack(CT{Commit: true, NAT: &NAT{Kind: NATDst, Min: a("10.0.0.1"), Max: a("10.0.0.1"), MinPort: 80, MaxPort: 80}})) // = the previous one
	add(ip, ConnTrack(CT{Commit: true, NAT: &NAT{Kind: NATSrc, Min: a("10.0.0.1"), Persistent: true, Random: true}}))
	add(ip, ConnTrack(CT{Commit: true, NAT: &NAT{Kind: NATSrc}}))
	add(ip, ConnTrack(CT{Commit: true, NAT: &NAT{Kind: NATDst}}))
	add(ip, ConnTrack(CT{Commit: true, Exec: []Action{SetField(FieldCTMark, 5), SetField(FieldCTLabel, 7)}}))
	add(ip, ConnTrack(CT{Commit: true, Zone: 9, Exec: []Action{Load(FieldCTMark, 0, 8, 1), Load(FieldCTLabel, 8, 8, 0), Load(FieldCTLabel, 0, 64, 0xffffffffffffffff)}}))
	add(ip, ConnTrack(CT{Commit: true, Force: true, Zone: 65535, Recirc: true, Table: 254,
		NAT:  &NAT{Kind: NATDst, Min: a("192.0.2.10"), Max: a("192.0.2.20"), MinPort: 1, MaxPort: 65535, Hash: true},
		Exec: []Action{Load(FieldCTMark, 31, 1, 1), SetField(FieldCTLabel, 0x8000000000000000)}}), CTClear(), Output(3))
	add(ip, ConnTrack(CT{Zone: 2}), ConnTrack(CT{Commit: true, Zone: 2}), Resubmit(30))

	// Conjunctions, meters and instructions, table 30.
	table = 30
	add(ip.Prefix(FieldIPv4Src, p("10.0.0.0/24")), Conjunction(7, 1, 2))
	add(NewMatch().TCP().With(FieldTCPDst, 22), Conjunction(7, 2, 2), Conjunction(8, 2, 3), Conjunction(0xffffffff, 64, 64))
	add(ip.With(FieldConjID, 7), Output(1))
	add(NewMatch(), Meter(1), Output(2))
	add(NewMatch().InPort(1), Meter(3), WriteMetadata(1, 0xffffffff), GotoTable(31))
	add(NewMatch().InPort(2), Meter(7))
	add(NewMatch().InPort(3), WriteMetadata(0x1234, ^uint64(0)), GotoTable(40))
	add(NewMatch().InPort(4), WriteMetadata(0, 0xff))
	add(NewMatch().InPort(5), SetField(FieldReg0, 1), GotoTable(200))
	add(NewMatch().InPort(6)) // drop
	return flows
}

// TestCatalogCoversEverything keeps the catalog complete: every Field is
// matched exactly, and masked where OVS takes a mask, and every Action
// type vpcflow encodes appears, so the OVS round-trip tests cover them.
func TestCatalogCoversEverything(t *testing.T) {
	exact, masked := map[Field]bool{}, map[Field]bool{}
	types := map[ActionType]bool{}
	var note func(a Action)
	note = func(a Action) {
		types[a.Type] = true
		if c, ok := a.CT(); ok {
			if c.NAT != nil {
				types[actNATSeen] = true
			}
			for _, e := range c.Exec {
				note(e)
			}
		}
	}
	for _, f := range catalog() {
		for _, fm := range f.Match {
			if fm.HasMask {
				masked[fm.Field] = true
			} else {
				exact[fm.Field] = true
			}
		}
		for _, a := range f.Actions {
			note(a)
		}
	}
	for f := Field(1); f < fieldEnd; f++ {
		if !exact[f] {
			t.Errorf("the catalog never matches %s exactly", f.Name())
		}
		if fieldInfos[f].maskable && !masked[f] {
			t.Errorf("the catalog never matches %s under a mask", f.Name())
		}
	}
	for ty := ActOutput; ty < ActUnknown; ty++ {
		if !types[ty] {
			t.Errorf("the catalog has no action of type %d", ty)
		}
	}
	if !types[actNATSeen] {
		t.Error("the catalog has no nat")
	}
}

// actNATSeen marks, in TestCatalogCoversEverything, that a nat was seen.
const actNATSeen = ActionType(200)
