package pipeline

import (
	"net/netip"
	"sort"

	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// NAT: the way out of the fabric and back in, with Alibaba Cloud's NAT
// gateway, SNAT and DNAT entries and EIPs, stateful in conntrack. It
// happens on the gateway chassis G, the chassis (or bridge) of the uplink
// the NAT gateway or EIP is on; VMs on other chassis reach it through
// VXLAN (destination MAC topology.NATTunnelMAC, VNI = VPC). Every NAT
// gateway and EIP has two zones of its own (natzones.go): SNAT in Zs,
// DNAT in Zs+1 — one ct action cannot do both.
//
// Egress (security → routing → SNAT/EIP → uplink): SGEgress checks the
// private addresses on the VM's chassis; L3Forwarding routes inside the
// VPC; what it has no route for (reg2 still 0) NATRoute sends to G. On G:
//
//	32 NATUnDNAT     replies of DNATed connections (from a DNAT target or
//	                 an EIP's host): ct(Zd, nat) gives the public source
//	33 NATSNAT       replies go on to the uplink; otherwise the source's
//	                 scope (EIP, IP mapping, SNAT entries by prefix length)
//	                 picks the zone: ct(Zs, nat)
//	34 NATSNATCommit new connections committed with nat(src=…); one
//	                 committed but not answered yet (a retransmitted SYN)
//	                 is +new again, already SNATed by 33 (+snat): on
//	35 NATUplink     by its public source to its uplink, to the router's MAC
//
// Ingress (un-NAT → routing → security): the first table takes the
// uplink's IPv4 for an owned public address into the VPC (metadata) and
// on:
//
//	27 NATUnSNAT     ct(Zs, nat): replies of SNATed connections (and ICMP
//	                 errors about them, inner headers too) get their
//	                 private destination
//	28 NATDNAT       such replies go on to L3Forwarding; new and
//	                 established traffic to an EIP or a DNAT entry's
//	                 address and port: ct(Zd, nat)
//	29 NATDNATCommit new connections committed with nat(dst=…) (not
//	                 those the lookup already DNATed, +dnat), then
//	                 L3Forwarding (ct(table=30)) and, on the receiving VM's
//	                 chassis, SGIngress see the private destination
//
// Hairpin (a VM to its own VPC's EIP or DNAT address): NATHairpin (26,
// after SGEgress, on G) marks it (reg6[0], reg7 = the address) and sends
// it through the ingress tables: DNAT, routing to the target, then
// (NATRoute sees reg6[1]) forced SNAT in 33/34 — to the client's own EIP or
// SNAT address, else to the address it asked for — so that the target's
// reply comes back through G, where it is un-SNATed (27) and un-DNATed
// (28, by its private source) into the client's connection.

// Tables of the two NAT stages.
const (
	tableNATHairpin    = 26
	tableNATUnSNAT     = 27
	tableNATDNAT       = 28
	tableNATDNATCommit = 29

	tableNATRoute      = 31
	tableNATUnDNAT     = 32
	tableNATSNAT       = 33
	tableNATSNATCommit = 34
	tableNATUplink     = 35
)

// Registers of the NAT stages.
const (
	// natFlags: bit 0 "from inside" (a VM's packet to a public address of
	// its VPC), bit 1 "hairpin" (DNATed from inside: to be SNATed after
	// routing).
	natFlags      = openflow.FieldReg6
	natInsideBit  = 0
	natHairpinBit = 1
	// natAsked holds the public address a hairpinning VM asked for.
	natAsked = openflow.FieldReg7
)

// Drop reasons of the NAT stages.
const (
	// DropNATNoEntry: nothing maps the packet: a host no SNAT entry, EIP
	// or IP mapping covers sending out, or a packet from outside to a
	// public address (and port) no DNAT entry or EIP maps.
	DropNATNoEntry DropReason = 20
	// DropNATInvalid: conntrack found the packet invalid in its NAT zone.
	DropNATInvalid DropReason = 21
	// DropNATExhausted: a new connection conntrack could not NAT (no free
	// source port left toward its destination, or the zone's limit).
	DropNATExhausted DropReason = 22
	// DropUplinkUnresolved: the uplink's router MAC is not known yet.
	DropUplinkUnresolved DropReason = 23
)

// Owner kinds of the NAT objects.
const (
	OwnerUplink     OwnerKind = 10
	OwnerNATGateway OwnerKind = 11
	OwnerSNATEntry  OwnerKind = 12
	OwnerDNATEntry  OwnerKind = 13
	OwnerEIP        OwnerKind = 14
)

// ServiceUplinkARP: an ARP packet from an uplink's router (reply or
// gratuitous), for vpcflow to learn its MAC.
const ServiceUplinkARP Service = 3

// MeterUplinkARP is the meter of the router ARP punt.
const MeterUplinkARP uint32 = 3

// Priorities of the NAT stages.
const (
	prioNATState      = 200 // connection-state flows
	prioNATStateInv   = 210
	prioNATHairpinRpl = 150 // un-DNAT of a hairpin's reply
	prioNATDNATPorts  = 130
	prioNATDNATAddr   = 120
	prioNATDNATICMP   = 50
	prioNATEIP        = 160 // an EIP's source scope
	prioNATMapping    = 150 // an IP mapping's target's source scope
	prioNATScopeBase  = 100 // + prefix length: SNAT entries
	prioNATFallback   = 10  // hairpin with no scope of its own
	prioNATRouteHost  = 200 // an EIP host's own way out
	prioNATRouteVPC   = 100 // the VPC's NAT gateway
	prioNATRouteHairp = 300
	prioUplinkARP     = 110
	prioUplinkLearn   = 105
	prioUplinkIn      = 100
	prioNATTunnel     = 110 // above the tunnel's admission (100)
)

// natIn is the ingress stage (26–29) and the uplink's flows in the first
// table; natOut the egress stage (31–35). Both compute flows for the same
// owners; natIn declares what they share.
type natIn struct {
	hairpin, unSNAT, dnat, dnatCommit *Table
	arpMeter                          *Meter
}

type natOut struct {
	route, unDNAT, snat, snatCommit, uplink *Table
}

// NewNATIn declares the ingress NAT stage (after SGEgress, before L3).
func NewNATIn() Feature {
	return &natIn{
		hairpin: &Table{ID: tableNATHairpin, Name: "NATHairpin", Handles: IPv4,
			Why:  "on a gateway chassis, a VM's packet to a public address of its own VPC (EIP, NAT gateway address) is marked as hairpin (reg6[0], the address in reg7) and taken through the ingress NAT tables; the rest go on",
			Miss: Miss{Continue: true}},
		unSNAT: &Table{ID: tableNATUnSNAT, Name: "NATUnSNAT", Handles: IPv4, Entry: true,
			Why:  "packets to a public address (from the uplink, or hairpin): ct(nat) in its owner's SNAT zone, so replies of SNATed connections (and ICMP errors about them, inner headers included) get their private destination",
			Miss: Miss{Drop: DropNATNoEntry}},
		dnat: &Table{ID: tableNATDNAT, Name: "NATDNAT", Handles: IPv4, Entry: true,
			Why:  "replies un-SNATed go on to routing (a hairpin's reply first ct(nat) in the DNAT zone of its private source); new and established traffic to an EIP, or to a DNAT entry's address, protocol and ports: ct(nat) in the DNAT zone",
			Miss: Miss{Drop: DropNATNoEntry}},
		dnatCommit: &Table{ID: tableNATDNATCommit, Name: "NATDNATCommit", Handles: IPv4, Entry: true,
			Why:  "new connections committed with nat(dst=the private address and port), then routed (ct(table=30)); established ones, replies and related go on; +inv dropped",
			Miss: Miss{Drop: DropNATNoEntry}},
		arpMeter: &Meter{ID: MeterUplinkARP, Name: "uplink_arp", Service: ServiceUplinkARP, Rate: 10, Burst: 20,
			Why: "ARP from an uplink's router (replies to vpcflow's requests, gratuitous ARP) sent to vpcflow, which learns the router's MAC"},
	}
}

// NewNATOut declares the egress NAT stage (after L3, before the tunnel).
func NewNATOut() Feature {
	return &natOut{
		route: &Table{ID: tableNATRoute, Name: "NATRoute", Handles: IPv4,
			Why:  "what L3Forwarding found no route for (reg2 still 0) leaves by the VPC's NAT gateway or the sender's EIP: to the NAT tables on the gateway chassis, through VXLAN from other chassis; no way out: dropped (no_route); a routed hairpin (reg6[1]) is SNATed; the rest go on",
			Miss: Miss{Continue: true}},
		unDNAT: &Table{ID: tableNATUnDNAT, Name: "NATUnDNAT", Handles: IPv4, Entry: true,
			Why:  "from an EIP's host or a DNAT target (its private address and ports, and its ICMP): ct(nat) in the DNAT zone, so replies of DNATed connections, and ICMP errors about them, get their public source; the rest go on with no conntrack state",
			Miss: Miss{Actions: []openflow.Action{openflow.CTClear(), openflow.GotoTable(tableNATSNAT)}}},
		snat: &Table{ID: tableNATSNAT, Name: "NATSNAT", Handles: IPv4, Entry: true,
			Why:  "replies and related of DNATed connections go to the uplink; the source's scope (EIP, IP mapping, SNAT entries, longest prefix first) chooses the SNAT zone: ct(nat)",
			Miss: Miss{Drop: DropNATNoEntry}},
		snatCommit: &Table{ID: tableNATSNATCommit, Name: "NATSNATCommit", Handles: IPv4, Entry: true,
			Why:  "new connections committed with nat(src=the scope's public addresses); established and related go to the uplink; +inv dropped",
			Miss: Miss{Drop: DropNATNoEntry}},
		uplink: &Table{ID: tableNATUplink, Name: "NATUplink", Handles: IPv4, Entry: true,
			Why:  "by its public source to its uplink: eth_src the uplink's MAC, eth_dst the router's, reg2 the uplink port; a routed hairpin goes on to its VM; a private source here is a connection conntrack could not NAT (nat_exhausted)",
			Miss: Miss{Drop: DropNATExhausted}},
	}
}

func (n *natIn) Name() string { return "nat-in" }
func (n *natIn) Tables() []*Table {
	return []*Table{n.hairpin, n.unSNAT, n.dnat, n.dnatCommit}
}
func (n *natIn) Registers() []Register {
	return []Register{
		{Field: natFlags, Lo: natInsideBit, Hi: natInsideBit, Name: "from inside", Why: "a VM's packet to a public address of its own VPC (hairpin candidate)"},
		{Field: natFlags, Lo: natHairpinBit, Hi: natHairpinBit, Name: "hairpin", Why: "DNATed from inside: SNATed after routing, so the target's reply comes back through the gateway"},
		{Field: natAsked, Lo: 0, Hi: 31, Name: "hairpin address", Why: "the public address a hairpinning VM asked for (its SNAT address when it has none of its own)"},
	}
}
func (n *natIn) Cookies() []OwnerKind {
	return []OwnerKind{OwnerPipeline, OwnerUplink, OwnerNATGateway, OwnerDNATEntry, OwnerEIP}
}
func (n *natIn) Drops() []DropReasonInfo {
	return []DropReasonInfo{
		{DropNATNoEntry, "nat_no_entry", "nothing maps it: sent out by a host no SNAT entry, EIP or IP mapping covers, or from outside to a public address or port no DNAT entry or EIP maps"},
		{DropNATInvalid, "nat_invalid", "conntrack found the packet invalid in its NAT zone (e.g. TCP out of window)"},
		{DropNATExhausted, "nat_exhausted", "a new connection conntrack could not NAT: no free source port left toward its destination (or the zone's connection limit); dropped, the sender retries"},
		{DropUplinkUnresolved, "uplink_unresolved", "the uplink's router MAC is not learned yet (vpcflow asks it by ARP)"},
	}
}

// Meters: the router ARP punt's.
func (n *natIn) Meters() []*Meter { return []*Meter{n.arpMeter} }

func (n *natOut) Name() string { return "nat-out" }
func (n *natOut) Tables() []*Table {
	return []*Table{n.route, n.unDNAT, n.snat, n.snatCommit, n.uplink}
}
func (n *natOut) Registers() []Register { return nil }
func (n *natOut) Cookies() []OwnerKind {
	return []OwnerKind{OwnerPipeline, OwnerHost, OwnerUplink, OwnerNATGateway, OwnerSNATEntry, OwnerDNATEntry, OwnerEIP}
}
func (n *natOut) Drops() []DropReasonInfo { return nil }

// DatapathFlows: a packet no route and no way out was found for is
// dropped (L3Forwarding's miss goes on to NATRoute).
func (n *natOut) DatapathFlows(out *FlowSet) {
	out.On(0, n.route).Priority(1).Cookie(PipelineCookie(DropNoRoute)).
		Match(ipv4.With(outPort, 0)).Drop()
}

// ---- where the NAT happens ----

// gateway is an uplink as far as the snapshot knows it: its port on its
// switch G and, when it is on a chassis, G's chassis place.
type gateway struct {
	u         topology.Uplink
	at        Attachment
	ch        ChassisPlace
	onChassis bool
}

// gateway resolves uplink name; false while its port is unknown.
func (s *Snapshot) gateway(name string) (gateway, bool) {
	u, ok := s.Topo.Uplink(name)
	if !ok {
		return gateway{}, false
	}
	at, ok := s.Ports.Attachment(u.AsHost())
	if !ok {
		return gateway{}, false
	}
	g := gateway{u: u, at: at}
	if u.Chassis != "" {
		g.ch, g.onChassis = s.Chassis[u.Chassis]
		g.onChassis = g.onChassis && g.ch.DPID == at.DPID
	}
	return g, true
}

// natOwner is what a NAT gateway's or EIP's flows need: its VPC, uplink,
// zones and public addresses.
type natOwner struct {
	vpc   topology.VPC
	gw    gateway
	zone  uint16 // SNAT zone; DNAT is zone+1
	addrs []netip.Addr
	own   Owner
}

func (o natOwner) cookie(r DropReason) uint64 { return MakeCookie(o.own.Kind, r, o.own.ID) }
func (o natOwner) zd() uint16                 { return topology.DNATZone(o.zone) }

// natGatewayOwner resolves a NAT gateway.
func (s *Snapshot) natGatewayOwner(g topology.NATGateway) (natOwner, bool) {
	vpc, ok := s.Topo.VPC(g.VPC)
	if !ok || g.CTZone == 0 {
		return natOwner{}, false
	}
	gw, ok := s.gateway(g.Uplink)
	if !ok {
		return natOwner{}, false
	}
	return natOwner{vpc: vpc, gw: gw, zone: g.CTZone, addrs: g.IPs, own: Owner{OwnerNATGateway, g.ID}}, true
}

// natGatewayNamed resolves NAT gateway name of vpc (an entry's).
func (s *Snapshot) natGatewayNamed(vpc, name string) (natOwner, bool) {
	g, ok := s.Topo.NATGateway(vpc, name)
	if !ok {
		return natOwner{}, false
	}
	return s.natGatewayOwner(g)
}

// eipOwner resolves a bound EIP and its host.
func (s *Snapshot) eipOwner(e topology.EIP) (natOwner, topology.Host, bool) {
	if e.Host == "" || e.CTZone == 0 {
		return natOwner{}, topology.Host{}, false
	}
	vpc, ok := s.Topo.VPC(e.VPC)
	h, ok2 := s.Topo.Host(e.VPC, e.Host)
	if !ok || !ok2 {
		return natOwner{}, topology.Host{}, false
	}
	gw, ok := s.gateway(e.Uplink)
	if !ok {
		return natOwner{}, topology.Host{}, false
	}
	return natOwner{vpc: vpc, gw: gw, zone: e.CTZone, addrs: []netip.Addr{e.IP}, own: Owner{OwnerEIP, e.ID}}, h, true
}

// ownerOf resolves the NAT gateway or EIP owner o names.
func (s *Snapshot) natOwnerOf(o Owner) (natOwner, bool) {
	switch o.Kind {
	case OwnerNATGateway:
		g, ok := s.Topo.NATGatewayByID(o.ID)
		if !ok {
			return natOwner{}, false
		}
		return s.natGatewayOwner(g)
	case OwnerEIP:
		e, ok := s.Topo.EIPByID(o.ID)
		if !ok {
			return natOwner{}, false
		}
		no, _, ok := s.eipOwner(e)
		return no, ok
	}
	return natOwner{}, false
}

var (
	natVXLANMAC = openflow.MACToUint64(topology.NATTunnelMAC.HW())
	ctTracked   = func(set, clear uint32) openflow.Match { return ipv4.CTState(openflow.CTTrk|set, clear) }
)

func vpcIPv4(vpc uint32) openflow.Match {
	return ipv4.Metadata(vpcMetadata(vpc), metadataVPCMask)
}

// lookup is ct_clear, ct(zone, nat, table=t): the packet continues in t
// with the connection's NAT applied (either direction) and its state.
func lookup(zone uint16, t *Table) []openflow.Action {
	return []openflow.Action{openflow.CTClear(),
		openflow.ConnTrack(openflow.CT{Zone: zone, NAT: &openflow.NAT{}, Recirc: true, Table: t.ID})}
}

func natBit(bit uint8) uint64 { return 1 << bit }

// ---- nat-in ----

// Flows: for a NAT gateway or EIP, its public addresses on the uplink
// (ARP, admission, hairpin, un-SNAT), its DNAT (an EIP's, and ICMP errors
// to a NAT gateway's addresses), the VXLAN admission of its VPC on G and
// the shared state flows; for a DNAT entry, its DNAT; for an uplink, the
// punt of its router's ARP.
func (n *natIn) Flows(s *Snapshot, o Owner, out *FlowSet) {
	switch o.Kind {
	case OwnerUplink:
		u, ok := s.Topo.UplinkByID(o.ID)
		if !ok {
			return
		}
		g, ok := s.gateway(u.Name)
		if !ok {
			return
		}
		out.On(g.at.DPID, out.First()).Priority(prioUplinkLearn).Cookie(MakeCookie(OwnerUplink, DropNone, u.ID)).
			Match(openflow.NewMatch().InPort(g.at.OFPort).EthType(openflow.EthTypeARP).Addr(openflow.FieldArpSpa, u.Gateway)).
			Punt(n.arpMeter)
	case OwnerNATGateway, OwnerEIP:
		no, ok := s.natOwnerOf(o)
		if !ok {
			return
		}
		n.publicFlows(s, no, out)
		if o.Kind == OwnerEIP {
			e, _ := s.Topo.EIPByID(o.ID)
			_, h, _ := s.eipOwner(e)
			n.mappingFlows(out, no, e.IP, h.IP)
		} else {
			// ICMP errors to the gateway's addresses may be about a DNATed
			// connection's replies: un-DNAT them in the DNAT zone.
			for _, a := range no.addrs {
				out.On(no.gw.at.DPID, n.dnat).Priority(prioNATDNATICMP).Cookie(no.cookie(DropNone)).
					Match(vpcIPv4(no.vpc.ID).ICMP().Addr(openflow.FieldIPv4Dst, a)).
					Actions(lookup(no.zd(), n.dnatCommit)...).Do()
			}
		}
	case OwnerDNATEntry:
		d, ok := s.Topo.DNATEntryByID(o.ID)
		if !ok {
			return
		}
		no, ok := s.natGatewayNamed(d.VPC, d.NATGateway)
		if !ok {
			return
		}
		no.own = o
		if d.IPMapping() {
			n.mappingFlows(out, no, d.ExternalIP, d.InternalIP)
			return
		}
		n.portFlows(out, no, d)
	}
}

// publicFlows are a NAT gateway's or EIP's addresses on the uplink: ARP
// answered, IPv4 taken into the VPC, hairpin from inside, un-SNAT; its
// VPC admitted from VXLAN on G; the state flows of G.
func (n *natIn) publicFlows(s *Snapshot, no natOwner, out *FlowSet) {
	dp, up := no.gw.at.DPID, no.gw.at.OFPort
	ck := no.cookie(DropNone)
	mac := openflow.MACToUint64(no.gw.u.MAC.HW())
	for _, a := range no.addrs {
		// ARP for the address, answered in place from the uplink's MAC.
		out.On(dp, out.First()).Priority(prioUplinkARP).Cookie(ck).
			Match(openflow.NewMatch().InPort(up).EthType(openflow.EthTypeARP).With(openflow.FieldArpOp, 1).Addr(openflow.FieldArpTpa, a)).
			Actions(openflow.Move(openflow.FieldEthSrc, openflow.FieldEthDst),
				openflow.SetField(openflow.FieldEthSrc, mac),
				openflow.SetField(openflow.FieldArpOp, 2),
				openflow.Move(openflow.FieldArpSha, openflow.FieldArpTha),
				openflow.SetField(openflow.FieldArpSha, mac),
				openflow.Move(openflow.FieldArpSpa, openflow.FieldArpTpa),
				openflow.SetAddr(openflow.FieldArpSpa, a),
				openflow.OutputInPort()).Do()
		// IPv4 to it from outside: into the VPC, to un-SNAT.
		out.On(dp, out.First()).Priority(prioUplinkIn).Cookie(ck).
			Match(openflow.NewMatch().InPort(up).EthType(openflow.EthTypeIPv4).Addr(openflow.FieldIPv4Dst, a)).
			Actions(openflow.WriteMetadata(vpcMetadata(no.vpc.ID), metadataAll)).Jump(n.unSNAT)
		// From inside: hairpin.
		out.On(dp, n.hairpin).Priority(100).Cookie(ck).
			Match(vpcIPv4(no.vpc.ID).Addr(openflow.FieldIPv4Dst, a)).
			Actions(openflow.Load(natFlags, natInsideBit, 1, 1), openflow.SetAddr(natAsked, a)).Jump(n.unSNAT)
		out.On(dp, n.unSNAT).Priority(100).Cookie(ck).
			Match(vpcIPv4(no.vpc.ID).Addr(openflow.FieldIPv4Dst, a)).
			Actions(lookup(no.zone, n.dnat)...).Do()
	}
	// The VPC's packets for the NAT, from every other chassis.
	if no.gw.onChassis {
		for _, peer := range s.Topo.AllChassis() {
			if peer.Name == no.gw.u.Chassis {
				continue
			}
			// The same flow whether the VPC's NAT gateway or an EIP of it wants it.
			out.On(dp, out.First()).Priority(prioNATTunnel).Cookie(PipelineCookie(DropNone)).
				Match(openflow.NewMatch().InPort(no.gw.ch.TunnelPort).Addr(openflow.FieldTunSrc, peer.TunnelIP).
					With(openflow.FieldTunID, uint64(no.vpc.ID)).With(openflow.FieldEthDst, natVXLANMAC)).
				Actions(openflow.WriteMetadata(vpcMetadata(no.vpc.ID), metadataAll)).Jump(n.hairpin)
		}
	}
	n.stateFlows(dp, out)
}

// stateFlows are the same on every gateway chassis.
func (n *natIn) stateFlows(dp uint64, out *FlowSet) {
	ck := PipelineCookie(DropNone)
	outside := func(m openflow.Match) openflow.Match { return m.WithMasked(natFlags, 0, natBit(natInsideBit)) }
	// Un-SNATed replies from outside (and ICMP errors about them) go on
	// to routing.
	out.On(dp, n.dnat).Priority(prioNATState).Cookie(ck).Match(outside(ctTracked(openflow.CTRpl, 0))).Next(IPv4)
	out.On(dp, n.dnat).Priority(prioNATState).Cookie(ck).Match(outside(ctTracked(openflow.CTRel, 0))).Next(IPv4)
	// After the DNAT zone: +inv dropped, new connections committed by the
	// entries' flows, the rest on to routing.
	out.On(dp, n.dnatCommit).Priority(prioNATStateInv).Cookie(PipelineCookie(DropNATInvalid)).Match(ctTracked(openflow.CTInv, 0)).Drop()
	out.On(dp, n.dnatCommit).Priority(prioNATState).Cookie(ck).Match(ctTracked(0, openflow.CTNew|openflow.CTInv)).Next(IPv4)
	// A connection committed but not answered yet (a retransmitted SYN,
	// one-way UDP) is +new again, and the lookup already DNATed it.
	out.On(dp, n.dnatCommit).Priority(prioNATState).Cookie(ck).Match(ctTracked(openflow.CTNew|openflow.CTDNAT, 0)).Next(IPv4)
}

// mappingFlows DNAT a whole public address to a private one (an EIP, a
// DNAT entry of protocol any), and un-DNAT the replies of hairpins to it.
func (n *natIn) mappingFlows(out *FlowSet, no natOwner, pub, priv netip.Addr) {
	dp, ck := no.gw.at.DPID, no.cookie(DropNone)
	m := vpcIPv4(no.vpc.ID)
	out.On(dp, n.dnat).Priority(prioNATDNATAddr).Cookie(ck).Match(m.Addr(openflow.FieldIPv4Dst, pub)).
		Actions(openflow.MoveBits(natFlags, natInsideBit, natFlags, natHairpinBit, 1)).
		Actions(lookup(no.zd(), n.dnatCommit)...).Do()
	n.hairpinReplies(out, no, m.Addr(openflow.FieldIPv4Src, priv))
	out.On(dp, n.dnatCommit).Priority(100).Cookie(ck).Match(m.CTState(openflow.CTTrk|openflow.CTNew, 0).Addr(openflow.FieldIPv4Dst, pub)).
		CTNext(openflow.CT{Commit: true, Zone: no.zd(), NAT: &openflow.NAT{Kind: openflow.NATDst, Min: priv}}, IPv4)
}

// hairpinReplies un-DNAT the (un-SNATed) replies of hairpins, by the
// target's private source.
func (n *natIn) hairpinReplies(out *FlowSet, no natOwner, src openflow.Match) {
	inside := src.WithMasked(natFlags, natBit(natInsideBit), natBit(natInsideBit))
	for _, st := range []uint32{openflow.CTRpl, openflow.CTRel} {
		out.On(no.gw.at.DPID, n.dnat).Priority(prioNATHairpinRpl).Cookie(no.cookie(DropNone)).
			Match(inside.CTState(openflow.CTTrk|st, 0)).Actions(lookup(no.zd(), n.dnatCommit)...).Do()
	}
}

// portFlows are a tcp or udp DNAT entry's: its public address, protocol
// and ports to the private ones, port for port.
func (n *natIn) portFlows(out *FlowSet, no natOwner, d topology.DNATEntry) {
	dp, ck := no.gw.at.DPID, no.cookie(DropNone)
	m, dstPort, srcPort := vpcIPv4(no.vpc.ID).TCP(), openflow.FieldTCPDst, openflow.FieldTCPSrc
	if d.Protocol == topology.ProtocolUDP {
		m, dstPort, srcPort = vpcIPv4(no.vpc.ID).UDP(), openflow.FieldUDPDst, openflow.FieldUDPSrc
	}
	elo, ehi := d.ExternalPorts()
	ilo, ihi := d.InternalPorts()
	pub := m.Addr(openflow.FieldIPv4Dst, d.ExternalIP)
	for _, pm := range PortMasks(elo, ehi) {
		out.On(dp, n.dnat).Priority(prioNATDNATPorts).Cookie(ck).Match(pub.WithMasked(dstPort, uint64(pm.Value), uint64(pm.Mask))).
			Actions(openflow.MoveBits(natFlags, natInsideBit, natFlags, natHairpinBit, 1)).
			Actions(lookup(no.zd(), n.dnatCommit)...).Do()
	}
	for _, pm := range PortMasks(ilo, ihi) {
		n.hairpinReplies(out, no, m.Addr(openflow.FieldIPv4Src, d.InternalIP).WithMasked(srcPort, uint64(pm.Value), uint64(pm.Mask)))
	}
	fresh := pub.CTState(openflow.CTTrk|openflow.CTNew, 0)
	if elo == ilo {
		// The same ports: one commit per mask, the port kept.
		for _, pm := range PortMasks(elo, ehi) {
			out.On(dp, n.dnatCommit).Priority(100).Cookie(ck).Match(fresh.WithMasked(dstPort, uint64(pm.Value), uint64(pm.Mask))).
				CTNext(openflow.CT{Commit: true, Zone: no.zd(), NAT: &openflow.NAT{Kind: openflow.NATDst, Min: d.InternalIP}}, IPv4)
		}
		return
	}
	// Shifted ports: one commit per port (at most MaxDNATShiftedPorts).
	for p := uint32(elo); p <= uint32(ehi); p++ {
		to := uint16(p - uint32(elo) + uint32(ilo))
		out.On(dp, n.dnatCommit).Priority(100).Cookie(ck).Match(fresh.With(dstPort, uint64(p))).
			CTNext(openflow.CT{Commit: true, Zone: no.zd(), NAT: &openflow.NAT{Kind: openflow.NATDst, Min: d.InternalIP, MinPort: to}}, IPv4)
	}
}

// Affected: see natAffected.
func (n *natIn) Affected(st *topology.State, op topology.Op) []Owner { return natAffected(st, op) }

// Dependents: where a host is attached decides where its VPC's NAT
// gateway and its EIP route it; where an uplink is decides where every
// NAT flow of its gateways, entries and EIPs goes.
func (n *natIn) Dependents(st *topology.State, o Owner) []Owner {
	switch o.Kind {
	case OwnerHost:
		h, ok := st.HostByID(o.ID)
		if !ok {
			return nil
		}
		return hostNATOwners(st, h)
	case OwnerUplink:
		u, ok := st.UplinkByID(o.ID)
		if !ok {
			return nil
		}
		return uplinkDependents(st, u.Name)
	}
	return nil
}

// ---- nat-out ----

// Flows: for a NAT gateway or EIP, the way out of its VPC (or host) on
// every switch the VPC (host) is on, and its un-DNAT and SNAT; for an
// SNAT entry, its scope; for a DNAT entry, the un-DNAT of its target (and
// an IP mapping's SNAT); for an uplink, the way to its router.
func (n *natOut) Flows(s *Snapshot, o Owner, out *FlowSet) {
	switch o.Kind {
	case OwnerUplink:
		u, ok := s.Topo.UplinkByID(o.ID)
		if !ok {
			return
		}
		g, ok := s.gateway(u.Name)
		if !ok {
			return
		}
		b := out.On(g.at.DPID, n.uplink).Priority(100).Match(ipv4.Prefix(openflow.FieldIPv4Src, u.CIDR))
		if len(u.RouterMAC) == 0 {
			b.Cookie(MakeCookie(OwnerUplink, DropUplinkUnresolved, u.ID)).Drop()
			return
		}
		b.Cookie(MakeCookie(OwnerUplink, DropNone, u.ID)).
			Actions(openflow.SetMAC(openflow.FieldEthSrc, u.MAC.HW()), openflow.SetMAC(openflow.FieldEthDst, u.RouterMAC.HW()),
				setOutPort(g.at.OFPort)).Next(IPv4)
	case OwnerNATGateway:
		g, ok := s.Topo.NATGatewayByID(o.ID)
		if !ok {
			return
		}
		no, ok := s.natGatewayOwner(g)
		if !ok {
			return
		}
		var dps []uint64
		for _, h := range s.Topo.Hosts(g.VPC) {
			dps = append(dps, n.hostDPIDs(s, h)...)
		}
		n.routes(s, out, no, vpcIPv4(no.vpc.ID).With(outPort, 0), prioNATRouteVPC, dps)
		n.fallback(out, no)
		n.tunnelHairpin(out, no)
		n.stateFlows(no.gw.at.DPID, out)
	case OwnerEIP:
		e, ok := s.Topo.EIPByID(o.ID)
		if !ok {
			return
		}
		no, h, ok := s.eipOwner(e)
		if !ok {
			return
		}
		src := vpcIPv4(no.vpc.ID).Addr(openflow.FieldIPv4Src, h.IP)
		n.routes(s, out, no, src.With(outPort, 0), prioNATRouteHost, n.hostDPIDs(s, h))
		n.mapping(out, no, e.IP, h.IP, prioNATEIP)
		n.selfHairpin(s, out, no, h)
		n.fallback(out, no)
		n.tunnelHairpin(out, no)
		n.stateFlows(no.gw.at.DPID, out)
	case OwnerSNATEntry:
		e, ok := s.Topo.SNATEntryByID(o.ID)
		if !ok {
			return
		}
		no, ok := s.natGatewayNamed(e.VPC, e.NATGateway)
		if !ok {
			return
		}
		src, ok := s.Topo.SNATSource(e)
		if !ok {
			return
		}
		lo, hi := e.SNATRange()
		n.scope(out, no, vpcIPv4(no.vpc.ID).Prefix(openflow.FieldIPv4Src, src), uint16(prioNATScopeBase+src.Bits()),
			MakeCookie(OwnerSNATEntry, DropNone, e.ID), &openflow.NAT{Kind: openflow.NATSrc, Min: lo, Max: hi})
	case OwnerDNATEntry:
		d, ok := s.Topo.DNATEntryByID(o.ID)
		if !ok {
			return
		}
		no, ok := s.natGatewayNamed(d.VPC, d.NATGateway)
		if !ok {
			return
		}
		gateway := no.own // the flows all its entries share are its
		no.own = o
		if h, ok := s.Topo.HostByIP(d.VPC, d.InternalIP); ok {
			n.selfHairpin(s, out, no, h)
		}
		if d.IPMapping() {
			n.mapping(out, no, d.ExternalIP, d.InternalIP, prioNATMapping)
			return
		}
		m, srcPort := vpcIPv4(no.vpc.ID).TCP(), openflow.FieldTCPSrc
		if d.Protocol == topology.ProtocolUDP {
			m, srcPort = vpcIPv4(no.vpc.ID).UDP(), openflow.FieldUDPSrc
		}
		ilo, ihi := d.InternalPorts()
		for _, pm := range PortMasks(ilo, ihi) {
			out.On(no.gw.at.DPID, n.unDNAT).Priority(100).Cookie(no.cookie(DropNone)).
				Match(m.Addr(openflow.FieldIPv4Src, d.InternalIP).WithMasked(srcPort, uint64(pm.Value), uint64(pm.Mask))).
				Actions(lookup(no.zd(), n.snat)...).Do()
		}
		// ICMP errors the target sends about a DNATed connection (port
		// unreachable, fragmentation needed) are related to it in the
		// DNAT zone: un-DNATed there, inner header too. The same flow for
		// every entry of the gateway to that target; an unrelated ICMP
		// packet (a ping) goes on to its SNAT scope.
		out.On(no.gw.at.DPID, n.unDNAT).Priority(100).Cookie(MakeCookie(gateway.Kind, DropNone, gateway.ID)).
			Match(vpcIPv4(no.vpc.ID).ICMP().Addr(openflow.FieldIPv4Src, d.InternalIP)).
			Actions(lookup(no.zd(), n.snat)...).Do()
	}
}

// hostDPIDs is where host h is attached, if it is.
func (n *natOut) hostDPIDs(s *Snapshot, h topology.Host) []uint64 {
	if at, ok := s.Ports.Attachment(h); ok {
		return []uint64{at.DPID}
	}
	return nil
}

// routes sends what matches m out through owner no: on G to its NAT
// tables, from the chassis in dps through VXLAN to G (switches that are
// not chassis, other than G, have no way there).
func (n *natOut) routes(s *Snapshot, out *FlowSet, no natOwner, m openflow.Match, prio uint16, dps []uint64) {
	dp, ck := no.gw.at.DPID, no.cookie(DropNone)
	out.On(dp, n.route).Priority(prio).Cookie(ck).Match(m).Jump(n.unDNAT)
	if !no.gw.onChassis {
		return
	}
	seen := map[uint64]bool{dp: true}
	places := map[uint64]ChassisPlace{}
	for _, p := range s.Chassis {
		places[p.DPID] = p
	}
	sort.Slice(dps, func(i, j int) bool { return dps[i] < dps[j] })
	for _, d := range dps {
		p, ok := places[d]
		if seen[d] || !ok {
			continue
		}
		seen[d] = true
		out.On(d, n.route).Priority(prio).Cookie(ck).Match(m).
			Actions(openflow.SetMAC(openflow.FieldEthSrc, topology.GatewayMAC),
				openflow.SetField(openflow.FieldEthDst, natVXLANMAC),
				openflow.SetField(openflow.FieldTunID, uint64(no.vpc.ID)),
				openflow.SetAddr(openflow.FieldTunDst, no.gw.ch.Chassis.TunnelIP),
				setOutPort(p.TunnelPort)).Next(IPv4)
	}
}

// portInPort is OFPP_IN_PORT as output:reg2 reads it (16 bits): the
// packet goes back out of the port it came in by, which a plain output
// to that port would not do.
const portInPort = 0xfff8

// selfHairpin: a VM on the gateway chassis reaching its own public
// address (its EIP, a DNAT entry to it) is DNATed back to itself; OVS
// never outputs a packet to the port it came in by unless told so, so
// both directions of such a hairpin leave by IN_PORT (reg2). They skip
// SGIngress (what a VM sends itself is not filtered).
func (n *natOut) selfHairpin(s *Snapshot, out *FlowSet, no natOwner, h topology.Host) {
	at, ok := s.Ports.Attachment(h)
	if !ok || at.DPID != no.gw.at.DPID {
		return
	}
	back := ipv4.InPort(at.OFPort).With(outPort, uint64(at.OFPort))
	ck := HostCookie(h.ID, DropNone) // the same flows whichever entry or EIP wants them
	out.On(at.DPID, n.route).Priority(prioNATRouteHairp+20).Cookie(ck).
		Match(back.WithMasked(natFlags, natBit(natHairpinBit), natBit(natHairpinBit))).
		Actions(openflow.SetField(outPort, portInPort), openflow.CTClear()).Jump(n.snat)
	out.On(at.DPID, n.route).Priority(prioNATRouteHairp + 20).Cookie(ck).
		Match(back.WithMasked(natFlags, natBit(natInsideBit), natBit(natInsideBit)|natBit(natHairpinBit))).
		Actions(openflow.SetField(outPort, portInPort)).Next(IPv4)
}

// tunnelHairpin: a hairpin that came to the gateway chassis G through
// VXLAN and is routed back through VXLAN (its target, or, for the reply,
// its client, is on another chassis) leaves by the tunnel port it came in
// by: by IN_PORT, as in selfHairpin. The same flows for every owner on G.
func (n *natOut) tunnelHairpin(out *FlowSet, no natOwner) {
	if !no.gw.onChassis {
		return
	}
	tp := no.gw.ch.TunnelPort
	back := ipv4.InPort(tp).With(outPort, uint64(tp))
	ck := PipelineCookie(DropNone)
	out.On(no.gw.at.DPID, n.route).Priority(prioNATRouteHairp+20).Cookie(ck).
		Match(back.WithMasked(natFlags, natBit(natHairpinBit), natBit(natHairpinBit))).
		Actions(openflow.SetField(outPort, portInPort), openflow.CTClear()).Jump(n.snat)
	out.On(no.gw.at.DPID, n.route).Priority(prioNATRouteHairp + 20).Cookie(ck).
		Match(back.WithMasked(natFlags, natBit(natInsideBit), natBit(natInsideBit)|natBit(natHairpinBit))).
		Actions(openflow.SetField(outPort, portInPort)).Next(IPv4)
}

// mapping un-DNATs a 1:1 mapping's replies and SNATs its target's own
// connections to its public address.
func (n *natOut) mapping(out *FlowSet, no natOwner, pub, priv netip.Addr, prio uint16) {
	src := vpcIPv4(no.vpc.ID).Addr(openflow.FieldIPv4Src, priv)
	out.On(no.gw.at.DPID, n.unDNAT).Priority(100).Cookie(no.cookie(DropNone)).Match(src).
		Actions(lookup(no.zd(), n.snat)...).Do()
	n.scope(out, no, src, prio, no.cookie(DropNone), &openflow.NAT{Kind: openflow.NATSrc, Min: pub})
}

// scope SNATs what matches m (a source scope) in owner no's SNAT zone.
func (n *natOut) scope(out *FlowSet, no natOwner, m openflow.Match, prio uint16, ck uint64, nat *openflow.NAT) {
	dp := no.gw.at.DPID
	out.On(dp, n.snat).Priority(prio).Cookie(ck).Match(m).Actions(lookup(no.zone, n.snatCommit)...).Do()
	out.On(dp, n.snatCommit).Priority(prio).Cookie(ck).Match(m.CTState(openflow.CTTrk|openflow.CTNew, 0)).
		Actions(openflow.ConnTrack(openflow.CT{Commit: true, Zone: no.zone, NAT: nat, Recirc: true, Table: n.uplink.ID})).Do()
}

// fallback SNATs a hairpin whose client has no public address of its own
// to the address it asked for (reg7), when that is one of no's.
func (n *natOut) fallback(out *FlowSet, no natOwner) {
	for _, a := range no.addrs {
		m := vpcIPv4(no.vpc.ID).WithMasked(natFlags, natBit(natHairpinBit), natBit(natHairpinBit)).Addr(natAsked, a)
		n.scope(out, no, m, prioNATFallback, no.cookie(DropNone), &openflow.NAT{Kind: openflow.NATSrc, Min: a})
	}
}

// stateFlows are the same on every gateway chassis.
func (n *natOut) stateFlows(dp uint64, out *FlowSet) {
	ck := PipelineCookie(DropNone)
	hairpin := ipv4.WithMasked(natFlags, natBit(natHairpinBit), natBit(natHairpinBit))
	// A hairpin DNATed and routed to its target: SNATed, then on to it.
	out.On(dp, n.route).Priority(prioNATRouteHairp + 10).Cookie(PipelineCookie(DropNoRoute)).Match(hairpin.With(outPort, 0)).Drop()
	out.On(dp, n.route).Priority(prioNATRouteHairp).Cookie(ck).Match(hairpin).Actions(openflow.CTClear()).Jump(n.snat)
	// Replies (and related) of DNATed connections, un-DNATed: out.
	out.On(dp, n.snat).Priority(prioNATState).Cookie(ck).Match(ctTracked(openflow.CTRpl, 0)).Jump(n.uplink)
	out.On(dp, n.snat).Priority(prioNATState).Cookie(ck).Match(ctTracked(openflow.CTRel, 0)).Jump(n.uplink)
	out.On(dp, n.snatCommit).Priority(prioNATStateInv).Cookie(PipelineCookie(DropNATInvalid)).Match(ctTracked(openflow.CTInv, 0)).Drop()
	out.On(dp, n.snatCommit).Priority(prioNATState).Cookie(ck).Match(ctTracked(0, openflow.CTNew|openflow.CTInv)).Jump(n.uplink)
	// Committed, not answered yet (+new again), and SNATed by the lookup.
	out.On(dp, n.snatCommit).Priority(prioNATState).Cookie(ck).Match(ctTracked(openflow.CTNew|openflow.CTSNAT, 0)).Jump(n.uplink)
	out.On(dp, n.uplink).Priority(prioNATState).Cookie(ck).Match(hairpin).Next(IPv4)
}

// Affected: see natAffected (the stages share their owners; nat-in
// answers).
func (n *natOut) Affected(*topology.State, topology.Op) []Owner { return nil }

// ---- owners ----

// natAffected lists the NAT owners an op changes besides its object: an
// uplink's (its MAC, its router) every gateway, entry and EIP on it; a NAT
// gateway's its entries; a host's its VPC's gateway and its EIP (where
// it is routed out from); a chassis's every NAT owner (the VXLAN ways).
func natAffected(st *topology.State, op topology.Op) []Owner {
	switch {
	case op.Uplink() != nil:
		return uplinkDependents(st, op.Uplink().Name)
	case op.NATGateway() != nil:
		g := op.NATGateway()
		var out []Owner
		for _, e := range st.SNATEntriesOf(g.VPC, g.Name) {
			out = append(out, Owner{OwnerSNATEntry, e.ID})
		}
		for _, e := range st.DNATEntriesOf(g.VPC, g.Name) {
			out = append(out, Owner{OwnerDNATEntry, e.ID})
		}
		return out
	case op.Host() != nil:
		return hostNATOwners(st, *op.Host())
	case op.Chassis() != nil:
		return natOwners(st)
	}
	return nil
}

// hostNATOwners are the owners routing host h out: its VPC's NAT gateway
// and its EIP.
func hostNATOwners(st *topology.State, h topology.Host) []Owner {
	var out []Owner
	if g, ok := st.NATGatewayOf(h.VPC); ok {
		out = append(out, Owner{OwnerNATGateway, g.ID})
	}
	if e, ok := st.EIPOfHost(h.VPC, h.Name); ok {
		out = append(out, Owner{OwnerEIP, e.ID})
	}
	return out
}

// uplinkDependents are the owners of flows on uplink name's gateway
// chassis: its NAT gateways with their entries, and its EIPs.
func uplinkDependents(st *topology.State, name string) []Owner {
	var out []Owner
	for _, g := range st.NATGatewaysOnUplink(name) {
		out = append(out, Owner{OwnerNATGateway, g.ID})
		for _, e := range st.SNATEntriesOf(g.VPC, g.Name) {
			out = append(out, Owner{OwnerSNATEntry, e.ID})
		}
		for _, e := range st.DNATEntriesOf(g.VPC, g.Name) {
			out = append(out, Owner{OwnerDNATEntry, e.ID})
		}
	}
	for _, e := range st.EIPsOnUplink(name) {
		out = append(out, Owner{OwnerEIP, e.ID})
	}
	return out
}

// natOwners lists every uplink and what depends on it.
func natOwners(st *topology.State) []Owner {
	var out []Owner
	for _, u := range st.AllUplinks() {
		out = append(out, Owner{OwnerUplink, u.ID})
		out = append(out, uplinkDependents(st, u.Name)...)
	}
	return out
}
