package controller

import (
	"net/netip"

	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// Table is one stage of the pipeline, declared once here. docs/pipeline.md
// describes the same tables; TestPipelineDocListsEveryTable keeps them in step.
type Table struct {
	ID    uint8
	Name  string
	Stage string
	Why   string
}

// The pipeline's tables, in the order a packet walks them.
var (
	TableClassifier = Table{ID: 0, Name: "Classifier", Stage: "ingress",
		Why: "admit only registered (in_port, eth_src) pairs and tag the packet with its VPC id in metadata"}
	TableSpoofGuard = Table{ID: 10, Name: "SpoofGuard", Stage: "ingress",
		Why: "a VM may send IPv4 only from its own IP or a subnet routed to it, and ARP only with its own sha/spa"}
	TableARPResponder = Table{ID: 20, Name: "ARPResponder", Stage: "arp",
		Why: "answer every ARP request for the vSwitch CIDR with the gateway MAC in the datapath; the fabric never floods"}
	TableL3Forwarding = Table{ID: 30, Name: "L3Forwarding", Stage: "routing",
		Why: "route by destination prefix within the VPC (longest prefix wins) and rewrite MACs as the Aliyun fabric does; destinations on another chassis leave through the VXLAN port with the VPC's VNI"}
	TableTunnelDelivery = Table{ID: 40, Name: "TunnelDelivery", Stage: "tunnel",
		Why: "packets from another chassis were routed and rewritten there: deliver them by VNI and destination MAC to the local VM, nothing else"}
	TableTunnelEgress = Table{ID: 45, Name: "TunnelEgress", Stage: "tunnel",
		Why: "VXLAN adds 50 bytes: a frame that would not fit the underlay goes to vpcflow, which answers ICMP fragmentation-needed from the gateway so path-MTU discovery works; the rest leave through the VXLAN port"}
)

// Tables lists every pipeline table in packet order.
func Tables() []Table {
	return []Table{TableClassifier, TableSpoofGuard, TableARPResponder, TableL3Forwarding, TableTunnelDelivery, TableTunnelEgress}
}

// ownsTable reports whether vpcflow owns flow table id: flows found there
// that vpcflow does not want are deleted on reconciliation.
func ownsTable(id uint8) bool {
	for _, t := range Tables() {
		if t.ID == id {
			return true
		}
	}
	return false
}

// Priorities. L3 routes use priorityRouteBase + prefix length, so the
// longest prefix wins by OpenFlow priority alone.
const (
	priorityDefault   = 0
	priorityCatchAll  = 10
	priorityAllow     = 100
	priorityOwnARP    = 110
	priorityRouteBase = 100
)

// metadataVPCMask is the part of metadata that carries the VPC id.
const metadataVPCMask = 0xffffffff

// Attachment is where a host's NIC is on the datapath, resolved from the
// host's bridge+interface through OVSDB, or given directly as dpid+ofport.
type Attachment struct {
	DPID   uint64
	OFPort uint32
}

// PlacedFlow is a flow together with the datapath it belongs on.
type PlacedFlow struct {
	DPID uint64
	Flow openflow.Flow
}

// PipelineFlows are the per-datapath defaults: every table ends in a drop
// whose cookie names the reason, so the drop counters come from flow stats.
func PipelineFlows() []openflow.Flow {
	drop := func(t Table, m openflow.Match, prio uint16, r DropReason) openflow.Flow {
		return openflow.Flow{Table: t.ID, Priority: prio, Cookie: PipelineCookie(r), Match: m}
	}
	return []openflow.Flow{
		drop(TableClassifier, nil, priorityDefault, DropUnknownSource),
		drop(TableSpoofGuard, nil, priorityDefault, DropOther),
		drop(TableARPResponder, nil, priorityDefault, DropARPNotAnswered),
		drop(TableL3Forwarding, nil, priorityDefault, DropNoRoute),
		drop(TableTunnelDelivery, nil, priorityDefault, DropNoRoute),
	}
}

// Peer is another chassis as seen from the local one: where to send VXLAN
// for it.
type Peer struct {
	TunnelIP netip.Addr
}

// VXLAN over IPv4 adds 50 bytes (outer Ethernet 14, IPv4 20, UDP 8,
// VXLAN 8) to the inner frame.
const vxlanOverhead = 50

// TunnelMTU is the largest inner IPv4 packet that fits an underlay MTU.
func TunnelMTU(underlayMTU int) int { return underlayMTU - vxlanOverhead }

// maxInnerFrame is the largest inner Ethernet frame (IP MTU + 14) that
// fits the underlay; check_pkt_larger compares whole frames.
func maxInnerFrame(underlayMTU int) uint16 { return uint16(TunnelMTU(underlayMTU) + 14) }

// reg1 bit 0 holds check_pkt_larger's verdict for TunnelEgress.
const tooBigBit = 0

// TunnelIngressFlows admit VXLAN from the registered peer chassis on the
// local chassis's tunnel port; anything else arriving there (an address
// that is not a registered chassis) falls to the Classifier's default drop.
// The chassis also owns its TunnelEgress table: too-big frames to the
// controller (which answers ICMP), the rest out of the VXLAN port.
func TunnelIngressFlows(chassisID uint32, tunnelPort uint32, peers []Peer) []openflow.Flow {
	out := []openflow.Flow{
		{Table: TableTunnelEgress.ID, Priority: priorityAllow, Cookie: makeCookie(OwnerChassis, DropTooBig, chassisID),
			Match:   openflow.NewMatch().WithMasked(openflow.FieldReg1, 1<<tooBigBit, 1<<tooBigBit),
			Actions: []openflow.Action{openflow.ToController()}},
		{Table: TableTunnelEgress.ID, Priority: priorityDefault, Cookie: ChassisCookie(chassisID),
			Actions: []openflow.Action{openflow.Output(tunnelPort)}},
	}
	for _, p := range peers {
		out = append(out, openflow.Flow{
			Table: TableClassifier.ID, Priority: priorityAllow, Cookie: ChassisCookie(chassisID),
			Match:   openflow.NewMatch().InPort(tunnelPort).Addr(openflow.FieldTunSrc, p.TunnelIP),
			Actions: []openflow.Action{openflow.GotoTable(TableTunnelDelivery.ID)},
		})
	}
	return out
}

// TunnelDeliveryFlow hands a packet that arrived from another chassis with
// the host's VPC as VNI and the host's MAC as destination to the host. The
// sending chassis already applied anti-spoofing, routing and the MAC rewrite.
func TunnelDeliveryFlow(vpc topology.VPC, h topology.Host, at Attachment) openflow.Flow {
	return openflow.Flow{
		Table: TableTunnelDelivery.ID, Priority: priorityAllow, Cookie: HostCookie(h.ID, DropNone),
		Match: openflow.NewMatch().With(openflow.FieldTunID, uint64(vpc.ID)).
			With(openflow.FieldEthDst, openflow.MACToUint64(h.MAC.HW())),
		Actions: []openflow.Action{openflow.Output(at.OFPort)},
	}
}

// RemoteRouteFlow is a route, installed on one chassis, to a destination
// whose VM is on another chassis: the same MAC rewrite as local delivery,
// then VXLAN with the VPC id as VNI to that chassis's tunnel IP, through
// TunnelEgress, which stops frames too big for an underlay of underlayMTU.
func RemoteRouteFlow(vpc topology.VPC, dst netip.Prefix, cookie uint64, mac []byte, remote netip.Addr, underlayMTU int) openflow.Flow {
	f := routeFlow(vpc, dst, cookie, mac, 0)
	f.Actions = append(f.Actions[:len(f.Actions)-1:len(f.Actions)-1],
		openflow.SetField(openflow.FieldTunID, uint64(vpc.ID)),
		openflow.SetAddr(openflow.FieldTunDst, remote),
		openflow.CheckPktLarger(maxInnerFrame(underlayMTU), openflow.FieldReg1, tooBigBit),
		openflow.Resubmit(TableTunnelEgress.ID))
	return f
}

// HostFlows are the flows that exist because host h is attached at at.
// They all live on the host's datapath.
func HostFlows(vpc topology.VPC, vsw topology.VSwitch, h topology.Host, at Attachment) []openflow.Flow {
	mac := h.MAC.HW()
	macV := openflow.MACToUint64(mac)
	port := openflow.NewMatch().InPort(at.OFPort)
	ck := HostCookie(h.ID, DropNone)
	spoof := HostCookie(h.ID, DropSpoofed)
	ip32 := netip.PrefixFrom(h.IP, 32)
	return []openflow.Flow{
		// Classifier: the registered MAC on the registered port enters the VPC.
		{Table: TableClassifier.ID, Priority: priorityAllow, Cookie: ck,
			Match: port.With(openflow.FieldEthSrc, macV),
			Actions: []openflow.Action{
				openflow.WriteMetadata(uint64(vpc.ID), metadataVPCMask),
				openflow.GotoTable(TableSpoofGuard.ID)}},
		// Any other source MAC on this port is spoofed.
		{Table: TableClassifier.ID, Priority: priorityCatchAll, Cookie: spoof, Match: port},

		// SpoofGuard: ARP must carry the VM's own sha and spa.
		{Table: TableSpoofGuard.ID, Priority: priorityAllow, Cookie: ck,
			Match: port.EthType(openflow.EthTypeARP).
				Addr(openflow.FieldArpSpa, h.IP).
				With(openflow.FieldArpSha, macV),
			Actions: []openflow.Action{openflow.GotoTable(TableARPResponder.ID)}},
		// IPv4 from the VM's own address.
		{Table: TableSpoofGuard.ID, Priority: priorityAllow, Cookie: ck,
			Match:   port.EthType(openflow.EthTypeIPv4).Prefix(openflow.FieldIPv4Src, ip32),
			Actions: []openflow.Action{openflow.GotoTable(TableL3Forwarding.ID)}},
		// Other ARP or IPv4 from this port is spoofed.
		{Table: TableSpoofGuard.ID, Priority: priorityCatchAll, Cookie: spoof,
			Match: port.EthType(openflow.EthTypeARP)},
		{Table: TableSpoofGuard.ID, Priority: priorityCatchAll, Cookie: spoof,
			Match: port.EthType(openflow.EthTypeIPv4)},

		// ARPResponder: never answer for the VM's own address (this also
		// drops gratuitous ARP, whose tpa is the sender's own spa).
		{Table: TableARPResponder.ID, Priority: priorityOwnARP, Cookie: HostCookie(h.ID, DropARPNotAnswered),
			Match: port.EthType(openflow.EthTypeARP).
				With(openflow.FieldArpOp, 1).
				Addr(openflow.FieldArpTpa, h.IP)},
		// Every other address of the vSwitch CIDR is at the gateway MAC.
		{Table: TableARPResponder.ID, Priority: priorityAllow, Cookie: ck,
			Match: port.EthType(openflow.EthTypeARP).
				With(openflow.FieldArpOp, 1).
				Prefix(openflow.FieldArpTpa, vsw.CIDR),
			Actions: ARPReplyActions()},

		// L3Forwarding: the host's own /32.
		routeFlow(vpc, ip32, ck, mac, at.OFPort),
	}
}

// SubnetFlows are the flows of a route entry whose next hop is host h at at:
// a route in L3Forwarding and the source allowances in SpoofGuard. Containers
// behind the VM send from their own addresses, and the VM itself may ARP
// from an address of the entry (Linux's default arp_announce=0 picks the
// packet's source, e.g. its Docker bridge IP, as the ARP sender).
func SubnetFlows(vpc topology.VPC, s topology.Subnet, h topology.Host, at Attachment) []openflow.Flow {
	ck := SubnetCookie(s.ID)
	return []openflow.Flow{
		{Table: TableSpoofGuard.ID, Priority: priorityAllow, Cookie: ck,
			Match: openflow.NewMatch().InPort(at.OFPort).
				EthType(openflow.EthTypeARP).
				Prefix(openflow.FieldArpSpa, s.CIDR).
				With(openflow.FieldArpSha, openflow.MACToUint64(h.MAC.HW())),
			Actions: []openflow.Action{openflow.GotoTable(TableARPResponder.ID)}},
		{Table: TableSpoofGuard.ID, Priority: priorityAllow, Cookie: ck,
			Match: openflow.NewMatch().InPort(at.OFPort).
				EthType(openflow.EthTypeIPv4).
				Prefix(openflow.FieldIPv4Src, s.CIDR),
			Actions: []openflow.Action{openflow.GotoTable(TableL3Forwarding.ID)}},
		routeFlow(vpc, s.CIDR, ck, h.MAC.HW(), at.OFPort),
	}
}

// routeFlow sends IPv4 for dst inside the VPC to a VM: eth_src becomes the
// gateway MAC, eth_dst the VM's MAC, as the Aliyun fabric rewrites them.
func routeFlow(vpc topology.VPC, dst netip.Prefix, cookie uint64, mac []byte, port uint32) openflow.Flow {
	actions := []openflow.Action{
		openflow.SetMAC(openflow.FieldEthSrc, topology.GatewayMAC),
		openflow.SetMAC(openflow.FieldEthDst, mac),
	}
	if vpc.DecTTL {
		actions = append(actions, openflow.DecTTL())
	}
	actions = append(actions, openflow.Output(port))
	return openflow.Flow{
		Table:    TableL3Forwarding.ID,
		Priority: uint16(priorityRouteBase + dst.Bits()),
		Cookie:   cookie,
		Match: openflow.NewMatch().EthType(openflow.EthTypeIPv4).
			Metadata(uint64(vpc.ID), metadataVPCMask).
			Prefix(openflow.FieldIPv4Dst, dst),
		Actions: actions,
	}
}

// ARPReplyActions turn an ARP request into the reply "tpa is at
// ee:ff:ff:ff:ff:ff" and send it back out of the port it came in on.
// reg0 holds the requested address while spa and tpa are swapped.
func ARPReplyActions() []openflow.Action {
	return []openflow.Action{
		openflow.Move(openflow.FieldEthSrc, openflow.FieldEthDst),
		openflow.SetMAC(openflow.FieldEthSrc, topology.GatewayMAC),
		openflow.SetField(openflow.FieldArpOp, 2),
		openflow.Move(openflow.FieldArpSha, openflow.FieldArpTha),
		openflow.SetMAC(openflow.FieldArpSha, topology.GatewayMAC),
		openflow.Move(openflow.FieldArpTpa, openflow.FieldReg0),
		openflow.Move(openflow.FieldArpSpa, openflow.FieldArpTpa),
		openflow.Move(openflow.FieldReg0, openflow.FieldArpSpa),
		openflow.OutputInPort(),
	}
}
