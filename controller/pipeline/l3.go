package pipeline

import (
	"net/netip"

	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// L3Forwarding routes IPv4 by destination prefix within the VPC, longest
// prefix first (priority 100 + prefix length), and rewrites MACs as the
// Aliyun fabric does: eth_src becomes the gateway MAC, eth_dst the next
// hop VM's. It writes the port to leave by into reg2 — the VM's port, or
// the VXLAN port with tun_id (the VPC) and tun_dst (the VM's chassis) set
// when the VM is on another chassis — and goes on; the Output stage sends.
// A vSwitch's own CIDR is a system route that beats any route entry
// containing it: addresses of a vSwitch that no host has are dropped,
// never sent to the route entry's next hop.
type L3Forwarding struct {
	table *Table
}

// NewL3Forwarding declares L3Forwarding.
func NewL3Forwarding() *L3Forwarding {
	return &L3Forwarding{table: &Table{ID: 30, Name: "L3Forwarding", Handles: IPv4,
		Why:  "route by destination prefix within the VPC (longest prefix wins; a vSwitch's CIDR beats any route entry containing it) and rewrite MACs as the Aliyun fabric does; the output port goes into reg2 (the VXLAN port, with VNI and remote chassis, for a VM on another chassis); no route: on to NATRoute with reg2 0 (a way out, or no_route)",
		Miss: Miss{Continue: true}}}
}

// DropNoRoute: no host or route entry in the VPC covers the destination.
const DropNoRoute DropReason = 2

// priorityRouteBase + prefix length is a route's priority.
const priorityRouteBase = 100

func (l *L3Forwarding) Name() string          { return "l3" }
func (l *L3Forwarding) Tables() []*Table      { return []*Table{l.table} }
func (l *L3Forwarding) Registers() []Register { return nil }
func (l *L3Forwarding) Cookies() []OwnerKind {
	return []OwnerKind{OwnerPipeline, OwnerHost, OwnerSubnet, OwnerVSwitch}
}
func (l *L3Forwarding) Drops() []DropReasonInfo {
	return []DropReasonInfo{{DropNoRoute, "no_route", "no host or route entry in the VPC covers the destination (or an address of a vSwitch that no host has)"}}
}

// Flows: a host's /32 and each route entry's CIDR to the VM, on the VM's
// switch and, through VXLAN, on every other chassis; and, shared by the
// VPC's hosts on a switch, every vSwitch CIDR of the VPC as a system route.
func (l *L3Forwarding) Flows(s *Snapshot, o Owner, out *FlowSet) {
	switch o.Kind {
	case OwnerHost:
		v, ok := s.host(o.ID)
		if !ok {
			return
		}
		l.routes(s, out, v, netip.PrefixFrom(v.h.IP, 32), HostCookie(v.h.ID, DropNone))
		for _, w := range s.Topo.VSwitches(v.h.VPC) {
			out.On(v.at.DPID, l.table).Priority(uint16(priorityRouteBase + w.CIDR.Bits())).
				Cookie(VSwitchCookie(w.ID, DropNoRoute)).Match(l.dst(v.vpc, w.CIDR)).Drop()
		}
	case OwnerSubnet:
		sub, v, ok := s.subnet(o.ID)
		if !ok {
			return
		}
		l.routes(s, out, v, sub.CIDR, SubnetCookie(sub.ID, DropNone))
	}
}

// dst matches IPv4 of a VPC to p.
func (l *L3Forwarding) dst(vpc topology.VPC, p netip.Prefix) openflow.Match {
	return openflow.NewMatch().EthType(openflow.EthTypeIPv4).
		Metadata(vpcMetadata(vpc.ID), metadataVPCMask).Prefix(openflow.FieldIPv4Dst, p)
}

// routes sends p to VM v: locally on v's switch, through VXLAN elsewhere.
func (l *L3Forwarding) routes(s *Snapshot, out *FlowSet, v hostView, p netip.Prefix, cookie uint64) {
	prio := uint16(priorityRouteBase + p.Bits())
	rewrite := []openflow.Action{
		openflow.SetMAC(openflow.FieldEthSrc, topology.GatewayMAC),
		openflow.SetMAC(openflow.FieldEthDst, v.h.MAC.HW()),
	}
	if v.vpc.DecTTL {
		rewrite = append(rewrite, openflow.DecTTL())
	}
	out.On(v.at.DPID, l.table).Priority(prio).Cookie(cookie).Match(l.dst(v.vpc, p)).
		Actions(rewrite...).Actions(setOutPort(v.at.OFPort)).Next(IPv4)
	for _, r := range s.remotes(v) {
		out.On(r.dpid, l.table).Priority(prio).Cookie(cookie).Match(l.dst(v.vpc, p)).
			Actions(rewrite...).
			Actions(openflow.SetField(openflow.FieldTunID, uint64(v.vpc.ID)),
				openflow.SetAddr(openflow.FieldTunDst, r.dst),
				setOutPort(r.tunnelPort)).
			Next(IPv4)
	}
}

// Affected: a vSwitch that comes or goes is a system route on every
// switch where its VPC has hosts.
func (l *L3Forwarding) Affected(st *topology.State, op topology.Op) []Owner {
	w := op.VSwitch()
	if w == nil {
		return nil
	}
	var out []Owner
	for _, h := range st.Hosts(w.VPC) {
		out = append(out, Owner{OwnerHost, h.ID})
	}
	return out
}
