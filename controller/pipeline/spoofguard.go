package pipeline

import (
	"net/netip"

	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// SpoofGuard lets a VM send IPv4 only from its own address or a route
// entry whose next hop it is, and ARP only with its own MAC as sha and
// such an address as spa. Checks are longest-prefix by priority: a
// vSwitch's addresses belong to the vSwitch, so a route entry that
// contains a vSwitch CIDR (10.10.0.0/16, 0.0.0.0/0) does not let its next
// hop send from that vSwitch's addresses; the VM's own /32 still wins.
type SpoofGuard struct {
	table *Table
}

// NewSpoofGuard declares the SpoofGuard.
func NewSpoofGuard() *SpoofGuard {
	return &SpoofGuard{table: &Table{ID: 10, Name: "SpoofGuard", Handles: Any,
		Why:  "a VM may send IPv4 only from its own IP or a route entry routed to it (but never from another vSwitch's addresses), and ARP only with its own sha and such a spa",
		Miss: Miss{Drop: DropOther}}}
}

// Drop reasons the SpoofGuard declares.
const (
	// DropSpoofed: source MAC, IPv4 source or ARP sha/spa not the VM's.
	DropSpoofed DropReason = 1
	// DropOther: neither IPv4 nor ARP (IPv6, LLDP…).
	DropOther DropReason = 5
)

// Priorities in the SpoofGuard: 100 + prefix length, so the longest
// prefix (own /32, then a vSwitch CIDR, then the route entry) decides;
// the catch-all drops below.
const (
	prioritySourceBase = 100
	prioritySpoofed    = 10
)

func (g *SpoofGuard) Name() string          { return "spoofguard" }
func (g *SpoofGuard) Tables() []*Table      { return []*Table{g.table} }
func (g *SpoofGuard) Registers() []Register { return nil }
func (g *SpoofGuard) Cookies() []OwnerKind {
	return []OwnerKind{OwnerPipeline, OwnerHost, OwnerSubnet}
}
func (g *SpoofGuard) Drops() []DropReasonInfo {
	return []DropReasonInfo{
		{DropSpoofed, "spoofed", "source MAC, IPv4 source or ARP sha/spa not the VM's own"},
		{DropOther, "other", "neither IPv4 nor ARP (IPv6, LLDP…)"},
	}
}

// Flows for a host: its own address; for a route entry: the entry's
// addresses, minus every vSwitch CIDR the entry contains.
func (g *SpoofGuard) Flows(s *Snapshot, o Owner, out *FlowSet) {
	switch o.Kind {
	case OwnerHost:
		v, ok := s.host(o.ID)
		if !ok {
			return
		}
		ck, spoof := HostCookie(v.h.ID, DropNone), HostCookie(v.h.ID, DropSpoofed)
		g.allow(out, v, netip.PrefixFrom(v.h.IP, 32), ck)
		port := openflow.NewMatch().InPort(v.at.OFPort)
		out.On(v.at.DPID, g.table).Priority(prioritySpoofed).Cookie(spoof).Match(port.EthType(openflow.EthTypeARP)).Drop()
		out.On(v.at.DPID, g.table).Priority(prioritySpoofed).Cookie(spoof).Match(port.EthType(openflow.EthTypeIPv4)).Drop()
	case OwnerSubnet:
		sub, v, ok := s.subnet(o.ID)
		if !ok {
			return
		}
		g.allow(out, v, sub.CIDR, SubnetCookie(sub.ID, DropNone))
		for _, w := range s.Topo.VSwitches(sub.VPC) {
			if !sub.CIDR.Overlaps(w.CIDR) || w.CIDR.Bits() < sub.CIDR.Bits() {
				continue
			}
			g.deny(out, v, w.CIDR, SubnetCookie(sub.ID, DropSpoofed))
		}
	}
}

// allow lets v's port send IPv4 from p, and ARP with v's MAC and a spa in p.
func (g *SpoofGuard) allow(out *FlowSet, v hostView, p netip.Prefix, cookie uint64) {
	port := openflow.NewMatch().InPort(v.at.OFPort)
	prio := uint16(prioritySourceBase + p.Bits())
	out.On(v.at.DPID, g.table).Priority(prio).Cookie(cookie).
		Match(port.EthType(openflow.EthTypeARP).Prefix(openflow.FieldArpSpa, p).
			With(openflow.FieldArpSha, openflow.MACToUint64(v.h.MAC.HW()))).
		Next(ARP)
	out.On(v.at.DPID, g.table).Priority(prio).Cookie(cookie).
		Match(port.EthType(openflow.EthTypeIPv4).Prefix(openflow.FieldIPv4Src, p)).
		Next(IPv4)
}

// deny drops IPv4 and ARP from v's port with a source in p.
func (g *SpoofGuard) deny(out *FlowSet, v hostView, p netip.Prefix, cookie uint64) {
	port := openflow.NewMatch().InPort(v.at.OFPort)
	prio := uint16(prioritySourceBase + p.Bits())
	out.On(v.at.DPID, g.table).Priority(prio).Cookie(cookie).
		Match(port.EthType(openflow.EthTypeARP).Prefix(openflow.FieldArpSpa, p)).Drop()
	out.On(v.at.DPID, g.table).Priority(prio).Cookie(cookie).
		Match(port.EthType(openflow.EthTypeIPv4).Prefix(openflow.FieldIPv4Src, p)).Drop()
}

// Affected: a vSwitch that comes or goes changes the denials of every
// route entry of its VPC.
func (g *SpoofGuard) Affected(st *topology.State, op topology.Op) []Owner {
	w := op.VSwitch()
	if w == nil {
		return nil
	}
	var out []Owner
	for _, s := range st.Subnets(w.VPC) {
		out = append(out, Owner{OwnerSubnet, s.ID})
	}
	return out
}
