package pipeline

import (
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// Tunnel carries a VPC between chassis in VXLAN (VNI = VPC id). Receiving:
// the first table admits VXLAN only from registered chassis and jumps to
// TunnelDelivery, which hands a packet to the local VM by VNI and MAC (the
// sending chassis already did anti-spoofing, routing and the MAC rewrite).
// Sending (L3Forwarding chose the VXLAN port): VXLAN adds 50 bytes, so
// TunnelMTU checks the inner frame against the underlay and TunnelTooBig
// sends a frame that would not fit to vpcflow, which answers ICMP
// fragmentation-needed from the gateway so path-MTU discovery works.
type Tunnel struct {
	delivery, mtu, tooBig *Table
	tooBigMeter           *Meter
}

// NewTunnel declares the Tunnel feature.
func NewTunnel() *Tunnel {
	return &Tunnel{
		delivery: &Table{ID: 40, Name: "TunnelDelivery", Handles: IPv4, Entry: true,
			Why:  "packets from another chassis were routed and rewritten there: deliver them by VNI and destination MAC to the local VM (its port into reg2), nothing else",
			Miss: Miss{Drop: DropNoRoute}},
		mtu: &Table{ID: 45, Name: "TunnelMTU", Handles: IPv4,
			Why:  "a packet leaving by the VXLAN port (reg2) is checked against the underlay MTU: check_pkt_larger sets reg1[0] for a frame that would not fit once encapsulated",
			Miss: Miss{Continue: true}},
		tooBig: &Table{ID: 46, Name: "TunnelTooBig", Handles: IPv4,
			Why:  "a frame too big for the underlay (reg1[0]) goes to vpcflow, which answers ICMP fragmentation-needed from the gateway and counts too_big; the rest go on",
			Miss: Miss{Continue: true}},
		tooBigMeter: &Meter{ID: MeterTooBig, Name: "too_big", Service: ServiceTooBig, Rate: 200, Burst: 200,
			Why: "frames too big for the underlay sent to vpcflow (each answered with ICMP, at most 100/s per switch)"},
	}
}

// MeterTooBig is the meter of the too-big punt.
const MeterTooBig uint32 = 1

// Meters: the too-big punt's.
func (t *Tunnel) Meters() []*Meter { return []*Meter{t.tooBigMeter} }

// DropTooBig: too big for the VXLAN underlay; answered with ICMP
// fragmentation-needed and counted by the controller (OVS's flow counters
// cannot tell: check_pkt_larger credits both branches).
const DropTooBig DropReason = 6

// tooBigBit is the bit of reg1 that holds check_pkt_larger's verdict.
const tooBigBit = 0

// VXLAN over IPv4 adds 50 bytes (outer Ethernet 14, IPv4 20, UDP 8,
// VXLAN 8) to the inner frame.
const vxlanOverhead = 50

// TunnelMTU is the largest inner IPv4 packet that fits an underlay MTU.
func TunnelMTU(underlayMTU int) int { return underlayMTU - vxlanOverhead }

// maxInnerFrame is the largest inner Ethernet frame (IP MTU + 14) that
// fits the underlay; check_pkt_larger compares whole frames.
func maxInnerFrame(underlayMTU int) uint16 { return uint16(TunnelMTU(underlayMTU) + 14) }

// priorityTunnel is the priority of the tunnel's flows.
const priorityTunnel = 100

func (t *Tunnel) Name() string     { return "tunnel" }
func (t *Tunnel) Tables() []*Table { return []*Table{t.delivery, t.mtu, t.tooBig} }
func (t *Tunnel) Registers() []Register {
	return []Register{{Field: openflow.FieldReg1, Lo: tooBigBit, Hi: tooBigBit, Name: "too big",
		Why: "check_pkt_larger's verdict for a frame leaving by VXLAN"}}
}
func (t *Tunnel) Cookies() []OwnerKind {
	return []OwnerKind{OwnerPipeline, OwnerHost, OwnerChassis}
}
func (t *Tunnel) Drops() []DropReasonInfo {
	return []DropReasonInfo{{DropTooBig, "too_big", "too big for the VXLAN underlay; answered with ICMP fragmentation-needed (counted by vpcflow)"}}
}

// Flows: for a chassis, VXLAN admitted from every other registered chassis
// and the MTU check of what leaves by its VXLAN port; for a host on a
// chassis, delivery by VNI and MAC.
func (t *Tunnel) Flows(s *Snapshot, o Owner, out *FlowSet) {
	switch o.Kind {
	case OwnerChassis:
		ch, ok := s.Topo.ChassisByID(o.ID)
		if !ok {
			return
		}
		me, ok := s.Chassis[ch.Name]
		if !ok {
			return
		}
		ck := ChassisCookie(ch.ID, DropNone)
		for _, peer := range s.Topo.AllChassis() {
			if peer.Name == ch.Name {
				continue
			}
			out.On(me.DPID, out.First()).Priority(priorityTunnel).Cookie(ck).
				Match(openflow.NewMatch().InPort(me.TunnelPort).Addr(openflow.FieldTunSrc, peer.TunnelIP)).
				Jump(t.delivery)
		}
		out.On(me.DPID, t.mtu).Priority(priorityTunnel).Cookie(ck).
			Match(openflow.NewMatch().EthType(openflow.EthTypeIPv4).With(outPort, uint64(me.TunnelPort))).
			Actions(openflow.CheckPktLarger(maxInnerFrame(s.UnderlayMTU), openflow.FieldReg1, tooBigBit)).
			Next(IPv4)
		out.On(me.DPID, t.tooBig).Priority(priorityTunnel).Cookie(ChassisCookie(ch.ID, DropTooBig)).
			Match(openflow.NewMatch().EthType(openflow.EthTypeIPv4).WithMasked(openflow.FieldReg1, 1<<tooBigBit, 1<<tooBigBit)).
			Punt(t.tooBigMeter)
	case OwnerHost:
		v, ok := s.host(o.ID)
		if !ok || v.h.Chassis == "" {
			return
		}
		out.On(v.at.DPID, t.delivery).Priority(priorityTunnel).Cookie(HostCookie(v.h.ID, DropNone)).
			Match(openflow.NewMatch().EthType(openflow.EthTypeIPv4).With(openflow.FieldTunID, uint64(v.vpc.ID)).
				With(openflow.FieldEthDst, openflow.MACToUint64(v.h.MAC.HW()))).
			Actions(setOutPort(v.at.OFPort)).Next(IPv4)
	}
}

// Affected: a chassis that comes or goes changes the tunnel flows of every
// chassis, host and route entry.
func (t *Tunnel) Affected(st *topology.State, op topology.Op) []Owner {
	if op.Chassis() == nil {
		return nil
	}
	return AllOwners(st)
}

// AllOwners lists every object of the topology that can own flows.
func AllOwners(st *topology.State) []Owner {
	var out []Owner
	for _, h := range st.AllHosts() {
		out = append(out, Owner{OwnerHost, h.ID})
		for _, s := range st.SubnetsOfHost(h.VPC, h.Name) {
			out = append(out, Owner{OwnerSubnet, s.ID})
		}
	}
	for _, ch := range st.AllChassis() {
		out = append(out, Owner{OwnerChassis, ch.ID})
	}
	out = append(out, secGroupOwners(st)...)
	return append(out, natOwners(st)...)
}
