package pipeline

import (
	"cmp"
	"net/netip"
	"slices"
	"sort"

	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// Security groups, stateful in conntrack, with Aliyun's semantics, in two
// stages: SGEgress after the SpoofGuard and the fabric's own services
// (gateway ping and metadata are answered before it, as on Aliyun, where
// security groups do not filter them), right before L3Forwarding: what a
// VM sends, checked on its own chassis; and SGIngress right before Output:
// what is delivered to a VM, locally or from VXLAN, checked on the
// receiver's chassis. A host
// in no group has no flows here and passes both stages untouched.
//
// Each filtered host has a conntrack zone of its own (topology.Host.CTZone,
// kept in the store, so a restart never renumbers one); both directions of
// every connection of the host go through its zone on its chassis. Per
// stage, for a packet of a filtered host:
//
//	entry    write the host's group mask (reg3) and zone (reg5[0..15]),
//	         ct(zone, table=peer)
//	peer     the other end's group mask into reg4 (by address: its
//	         groups, kept current as hosts join and leave)
//	rules    +inv → drop; replies (+est+rpl) and +rel of connections not
//	         marked blocked pass without rules; otherwise (+new, and
//	         +est in the original direction, re-evaluated so that a rule
//	         change cuts a connection no longer allowed) the rules as
//	         conjunctions, highest priority first, drop before accept at
//	         equal priority; no match: the default (egress accept;
//	         ingress drop, except between members of a common group)
//	verdict  accepted: +new committed, blocked connections unblocked;
//	         denied: an established connection is marked blocked
//	         (ct_mark[0]), so its replies are dropped too
//	drop     counted per host (reason security_group)
//
// A group's mask bit is its Index (unique in its VPC): rules match the
// host's mask (reg3) and a peer group's bit in reg4, so the flows grow
// with rules + members, never with their product. Each rule is one
// conjunction (its id is the rule's id): clause 1 the peer, clause 2 the
// protocol and ports; its conj_id flow counts the rule's hits.

// Tables of the two stages.
const (
	tableSGEgress        = 21
	tableSGEgressPeer    = 22
	tableSGEgressRules   = 23
	tableSGEgressVerdict = 24
	tableSGEgressDrop    = 25

	tableSGIngress        = 50
	tableSGIngressPeer    = 51
	tableSGIngressRules   = 52
	tableSGIngressVerdict = 53
	tableSGIngressDrop    = 54
)

// Registers and conntrack bits.
const (
	// sgMaskReg holds the filtered host's group mask.
	sgMaskReg = openflow.FieldReg3
	// sgPeerReg holds the other end's group mask.
	sgPeerReg = openflow.FieldReg4
	// sgZoneReg[0..15] holds the filtered host's zone, bit 16 the verdict.
	sgZoneReg  = openflow.FieldReg5
	sgDenyBit  = 16
	sgZoneBits = 16
	// sgBlocked is the ct_mark bit of a connection a rule change cut.
	sgBlocked = 1
)

// DropSecurityGroup: refused by a security group (a rule, the ingress
// default, an invalid or cut connection).
const DropSecurityGroup DropReason = 9

// Priorities in the rules tables: connection state first, then the rules
// (ruleLevel), then the members-of-a-common-group default.
const (
	prioSGInvalid        = 2000
	prioSGReply          = 1900
	prioSGRelated        = 1890
	prioSGBlockedReply   = 1800
	prioSGBlockedRelated = 1790
	prioSGRuleBase       = 1000
	prioSGSameGroup      = 500
	prioSGEntry          = 100
)

// ruleLevel is the OpenFlow priority of a rule: priority 1 highest, and at
// equal priority drop above accept.
func ruleLevel(r *topology.SecurityGroupRule) uint16 {
	l := prioSGRuleBase + (topology.MaxRulePriority-r.Priority)*2
	if r.Drops() {
		l++
	}
	return uint16(l)
}

// sgStage is one of the two stages.
type sgStage struct {
	name                                string
	egress                              bool
	entry, peer, rules, verdict, drop   *Table
	peerField                           openflow.Field // the other end's address: nw_dst (egress), nw_src (ingress)
	direction                           string
	declareRegs, declareDrop, affecting bool
}

// NewSGEgress declares the egress stage (after the ARPResponder, before L3Forwarding).
func NewSGEgress() Feature {
	return &sgStage{name: "sg-egress", egress: true, peerField: openflow.FieldIPv4Dst, direction: topology.DirectionEgress,
		declareRegs: true, declareDrop: true, affecting: true,
		entry: &Table{ID: tableSGEgress, Name: "SGEgress", Handles: IPv4,
			Why:  "IPv4 from a VM in a security group: its group mask into reg3, its zone into reg5, ct(zone) into SGEgressPeer; VMs in no group go on",
			Miss: Miss{Continue: true}},
		peer: &Table{ID: tableSGEgressPeer, Name: "SGEgressPeer", Handles: IPv4, Entry: true,
			Why:  "the destination's group mask into reg4 (0 for an address in no group)",
			Miss: Miss{Actions: []openflow.Action{openflow.GotoTable(tableSGEgressRules)}}},
		rules: &Table{ID: tableSGEgressRules, Name: "SGEgressRules", Handles: IPv4, Entry: true,
			Why:  "+inv dropped; replies and related of unblocked connections go on; new and established traffic meets the egress rules (conjunctions, priority 1 first, drop first at equal priority); none matching: accepted",
			Miss: Miss{Actions: []openflow.Action{openflow.Load(sgZoneReg, sgDenyBit, 1, 0), openflow.GotoTable(tableSGEgressVerdict)}}},
		verdict: &Table{ID: tableSGEgressVerdict, Name: "SGEgressVerdict", Handles: IPv4, Entry: true,
			Why:  "accepted: new connections committed (blocked ones unblocked), go on; denied: an established connection is marked blocked, then dropped",
			Miss: Miss{Drop: DropSecurityGroup}},
		drop: &Table{ID: tableSGEgressDrop, Name: "SGEgressDrop", Handles: IPv4, Entry: true,
			Why:  "drops refused by a security group, counted per sending host (by zone)",
			Miss: Miss{Drop: DropSecurityGroup}},
	}
}

// NewSGIngress declares the ingress stage (before Output).
func NewSGIngress() Feature {
	return &sgStage{name: "sg-ingress", peerField: openflow.FieldIPv4Src, direction: topology.DirectionIngress,
		entry: &Table{ID: tableSGIngress, Name: "SGIngress", Handles: IPv4,
			Why:  "IPv4 about to be delivered (reg2) to a VM in a security group, local or from VXLAN: ct_clear, VPC into metadata, the VM's group mask into reg3, its zone into reg5, ct(zone) into SGIngressPeer; the rest go on",
			Miss: Miss{Continue: true}},
		peer: &Table{ID: tableSGIngressPeer, Name: "SGIngressPeer", Handles: IPv4, Entry: true,
			Why:  "the source's group mask into reg4 (0 for an address in no group)",
			Miss: Miss{Actions: []openflow.Action{openflow.GotoTable(tableSGIngressRules)}}},
		rules: &Table{ID: tableSGIngressRules, Name: "SGIngressRules", Handles: IPv4, Entry: true,
			Why:  "+inv dropped; replies and related of unblocked connections go on; new and established traffic meets the ingress rules; none matching: accepted from members of a common group, else denied",
			Miss: Miss{Actions: []openflow.Action{openflow.Load(sgZoneReg, sgDenyBit, 1, 1), openflow.GotoTable(tableSGIngressVerdict)}}},
		verdict: &Table{ID: tableSGIngressVerdict, Name: "SGIngressVerdict", Handles: IPv4, Entry: true,
			Why:  "accepted: new connections committed (blocked ones unblocked), go on to Output; denied: an established connection is marked blocked, then dropped",
			Miss: Miss{Drop: DropSecurityGroup}},
		drop: &Table{ID: tableSGIngressDrop, Name: "SGIngressDrop", Handles: IPv4, Entry: true,
			Why:  "drops refused by a security group, counted per receiving host (by zone)",
			Miss: Miss{Drop: DropSecurityGroup}},
	}
}

func (g *sgStage) Name() string { return g.name }
func (g *sgStage) Tables() []*Table {
	return []*Table{g.entry, g.peer, g.rules, g.verdict, g.drop}
}

// Registers: declared once, by the egress stage; the ingress stage uses
// the same ones.
func (g *sgStage) Registers() []Register {
	if !g.declareRegs {
		return nil
	}
	return []Register{
		{Field: sgMaskReg, Lo: 0, Hi: 31, Name: "group mask", Why: "the filtered VM's security groups, one bit per group of its VPC (both stages)"},
		{Field: sgPeerReg, Lo: 0, Hi: 31, Name: "peer group mask", Why: "the other end's security groups: the destination's on egress, the source's on ingress"},
		{Field: sgZoneReg, Lo: 0, Hi: sgZoneBits - 1, Name: "conntrack zone", Why: "the filtered VM's zone, for ct(commit) in the verdict tables"},
		{Field: sgZoneReg, Lo: sgDenyBit, Hi: sgDenyBit, Name: "denied", Why: "the rules' verdict: 1 denied, 0 accepted"},
		{Field: openflow.FieldCTMark, Lo: 0, Hi: 0, Name: "blocked", Why: "a connection a rule change no longer allows: its packets are dropped both ways until a rule allows it again"},
	}
}

func (g *sgStage) Cookies() []OwnerKind {
	return []OwnerKind{OwnerPipeline, OwnerHost, OwnerSecurityGroup, OwnerSGRule}
}

func (g *sgStage) Drops() []DropReasonInfo {
	if !g.declareDrop {
		return nil
	}
	return []DropReasonInfo{{DropSecurityGroup, "security_group", "refused by a security group: by a rule, by the ingress default, as invalid (+inv), or as a connection a rule change cut"}}
}

// Flows: for a host in a group, its entry, peer address and drop counter
// flows, and (shared by the filtered hosts of a switch) the connection
// state and verdict flows; for a group, its rules on every switch where it
// has members.
func (g *sgStage) Flows(s *Snapshot, o Owner, out *FlowSet) {
	switch o.Kind {
	case OwnerHost:
		v, ok := s.host(o.ID)
		if !ok || v.h.CTZone == 0 || len(v.h.SecurityGroups) == 0 {
			return
		}
		g.hostFlows(s, v, out)
	case OwnerSecurityGroup:
		grp, ok := s.Topo.SecurityGroupByID(o.ID)
		if !ok {
			return
		}
		vpc, ok := s.Topo.VPC(grp.VPC)
		if !ok {
			return
		}
		if dps := memberDPIDs(s, grp); len(dps) > 0 {
			g.groupFlows(s, vpc, grp, dps, out)
		}
	}
}

var ipv4 = openflow.NewMatch().EthType(openflow.EthTypeIPv4)

func (g *sgStage) hostFlows(s *Snapshot, v hostView, out *FlowSet) {
	dp := v.at.DPID
	mask := s.Topo.GroupMask(&v.h)
	zone := uint64(v.h.CTZone)
	ck := HostCookie(v.h.ID, DropNone)
	// Entry.
	var entry openflow.Match
	var acts []openflow.Action
	if g.egress {
		entry = ipv4.InPort(v.at.OFPort)
	} else {
		entry = ipv4.With(outPort, uint64(v.at.OFPort))
		acts = append(acts, openflow.CTClear(), openflow.SetField(openflow.FieldMetadata, vpcMetadata(v.vpc.ID)),
			openflow.SetField(sgPeerReg, 0))
	}
	acts = append(acts, openflow.SetField(sgMaskReg, uint64(mask)), openflow.Load(sgZoneReg, 0, sgZoneBits+1, zone),
		openflow.ConnTrack(openflow.CT{Zone: v.h.CTZone, Recirc: true, Table: g.peer.ID}))
	out.On(dp, g.entry).Priority(prioSGEntry).Cookie(ck).Match(entry).Actions(acts...).Do()
	// The host's own address in the peer table, wherever its traffic is
	// filtered: on its switch and, through VXLAN, on every other chassis.
	peer := ipv4.Metadata(vpcMetadata(v.vpc.ID), metadataVPCMask).Addr(g.peerField, v.h.IP)
	places := []uint64{dp}
	for _, r := range s.remotes(v) {
		places = append(places, r.dpid)
	}
	for _, d := range places {
		out.On(d, g.peer).Priority(prioSGEntry).Cookie(ck).Match(peer).
			Actions(openflow.SetField(sgPeerReg, uint64(mask))).Jump(g.rules)
	}
	// Drops charged to the host.
	out.On(dp, g.drop).Priority(prioSGEntry).Cookie(HostCookie(v.h.ID, DropSecurityGroup)).
		Match(ipv4.WithMasked(sgZoneReg, zone, 1<<sgZoneBits-1)).Drop()
	g.stateFlows(dp, out)
}

// stateFlows are the same on every switch with a filtered host: the
// connection-state checks before the rules, and the verdicts.
func (g *sgStage) stateFlows(dp uint64, out *FlowSet) {
	ck := PipelineCookie(DropNone)
	st := func(set, clear uint32) openflow.Match { return ipv4.CTState(set|openflow.CTTrk, clear) }
	notBlocked := func(m openflow.Match) openflow.Match { return m.WithMasked(openflow.FieldCTMark, 0, sgBlocked) }
	out.On(dp, g.rules).Priority(prioSGInvalid).Cookie(ck).Match(st(openflow.CTInv, 0)).Jump(g.drop)
	out.On(dp, g.rules).Priority(prioSGReply).Cookie(ck).Match(notBlocked(st(openflow.CTEst|openflow.CTRpl, 0))).Next(IPv4)
	out.On(dp, g.rules).Priority(prioSGRelated).Cookie(ck).Match(notBlocked(st(openflow.CTRel, 0))).Next(IPv4)
	out.On(dp, g.rules).Priority(prioSGBlockedReply).Cookie(ck).Match(st(openflow.CTRpl, 0)).Jump(g.drop)
	out.On(dp, g.rules).Priority(prioSGBlockedRelated).Cookie(ck).Match(st(openflow.CTRel, 0)).Jump(g.drop)

	// Commits are in the host's zone (reg5), after the lookup in that zone
	// that brought the packet here.
	commit := openflow.ConnTrack(openflow.CT{Commit: true, ZoneField: sgZoneReg})
	mark := func(blocked uint64) openflow.Action {
		return openflow.ConnTrack(openflow.CT{Commit: true, ZoneField: sgZoneReg,
			Exec: []openflow.Action{openflow.Load(openflow.FieldCTMark, 0, 1, blocked)}})
	}
	accepted := ipv4.WithMasked(sgZoneReg, 0, 1<<sgDenyBit)
	denied := ipv4.WithMasked(sgZoneReg, 1<<sgDenyBit, 1<<sgDenyBit)
	established := func(m openflow.Match, blocked uint64) openflow.Match {
		return m.CTState(openflow.CTTrk, openflow.CTNew).WithMasked(openflow.FieldCTMark, blocked, sgBlocked)
	}
	out.On(dp, g.verdict).Priority(100).Cookie(ck).Match(accepted.CTState(openflow.CTNew|openflow.CTTrk, 0)).
		Actions(commit).Next(IPv4)
	out.On(dp, g.verdict).Priority(100).Cookie(ck).Match(established(accepted, sgBlocked)).
		Actions(mark(0)).Next(IPv4)
	out.On(dp, g.verdict).Priority(90).Cookie(ck).Match(accepted).Next(IPv4)
	out.On(dp, g.verdict).Priority(100).Cookie(ck).Match(established(denied, 0)).
		Actions(mark(sgBlocked)).Jump(g.drop)
	out.On(dp, g.verdict).Priority(90).Cookie(ck).Match(denied).Jump(g.drop)
}

// memberDPIDs lists, sorted, the switches where a group has attached
// members.
func memberDPIDs(s *Snapshot, grp topology.SecurityGroup) []uint64 {
	seen := map[uint64]bool{}
	var out []uint64
	s.Topo.EachMember(grp.VPC, grp.Name, func(h *topology.Host) bool {
		if at, ok := s.Ports.Attachment(*h); ok && !seen[at.DPID] {
			seen[at.DPID] = true
			out = append(out, at.DPID)
		}
		return true
	})
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// ruleFlow is one flow of a group's rules table, the same on every switch
// where the group has members.
type ruleFlow struct {
	prio    uint16
	cookie  uint64
	match   openflow.Match
	actions []openflow.Action
}

// groupFlows are a group's rules of this stage's direction, computed once
// and put on each of dps: per rule its clauses (merged with the group's
// other rules' where they are the same flow) and its conj_id flow; on
// ingress, the members of the group accept each other by default.
func (g *sgStage) groupFlows(s *Snapshot, vpc topology.VPC, grp topology.SecurityGroup, dps []uint64, out *FlowSet) {
	bit := uint64(1) << grp.Index
	base := ipv4.Metadata(vpcMetadata(vpc.ID), metadataVPCMask).WithMasked(sgMaskReg, bit, bit)
	gck := SecurityGroupCookie(grp.ID)
	// Sized for the usual rule (two clauses and a conj_id flow): growing
	// them was a fifth of a rule change's allocations (BenchmarkRuleChange).
	n := 0
	s.Topo.EachRule(grp.VPC, grp.Name, func(r *topology.SecurityGroupRule) bool {
		if r.Direction == g.direction {
			n++
		}
		return true
	})
	flows := make([]ruleFlow, 0, 3*n+1)
	clauses := make(map[openflow.Key]int, 2*n) // → index in flows
	add := func(prio uint16, m openflow.Match, a openflow.Action) {
		f := openflow.Flow{Table: g.rules.ID, Priority: prio, Match: m}
		k := f.Key()
		i, ok := clauses[k]
		if !ok {
			i = len(flows)
			clauses[k] = i
			flows = append(flows, ruleFlow{prio: prio, cookie: gck, match: m})
		}
		flows[i].actions = append(flows[i].actions, a)
	}
	s.Topo.EachRule(grp.VPC, grp.Name, func(r *topology.SecurityGroupRule) bool {
		if r.Direction == g.direction {
			if conjID, ok := g.ruleFlows(s, r, base, add); ok {
				flows = append(flows, conjID)
			}
		}
		return true
	})
	for i := range flows {
		if flows[i].cookie == gck {
			slices.SortFunc(flows[i].actions, func(a, b openflow.Action) int {
				if a.Value != b.Value {
					return cmp.Compare(a.Value, b.Value)
				}
				return cmp.Compare(a.Ofs, b.Ofs)
			})
		}
	}
	if !g.egress {
		flows = append(flows, ruleFlow{prio: prioSGSameGroup, cookie: gck, match: base.WithMasked(sgPeerReg, bit, bit),
			actions: []openflow.Action{openflow.Load(sgZoneReg, sgDenyBit, 1, 0), openflow.GotoTable(g.verdict.ID)}})
	}
	for _, dp := range dps {
		for _, f := range flows {
			out.On(dp, g.rules).Priority(f.prio).Cookie(f.cookie).Match(f.match).Actions(f.actions...).Do()
		}
	}
}

// PortMask is one value/mask pair of a port range.
type PortMask struct{ Value, Mask uint16 }

// PortMasks covers the ports lo..hi with the fewest value/mask pairs
// (aligned power-of-two blocks), as OVS matches port ranges.
func PortMasks(lo, hi uint16) []PortMask {
	var out []PortMask
	for l, h := uint32(lo), uint32(hi); l <= h; {
		size := uint32(1)
		for l%(size*2) == 0 && l+size*2-1 <= h && size < 1<<16 {
			size *= 2
		}
		out = append(out, PortMask{Value: uint16(l), Mask: uint16(^(size - 1))})
		l += size
	}
	return out
}

// Affected: a rule changes its group's flows; a host joining or leaving
// (or moving, or going) changes the switches of its groups, old and new.
// (The ingress stage answers nothing: the two stages share their owners.)
func (g *sgStage) Affected(st *topology.State, op topology.Op) []Owner {
	if !g.affecting {
		return nil
	}
	var out []Owner
	group := func(vpc, name string) {
		if grp, ok := st.SecurityGroup(vpc, name); ok {
			out = append(out, Owner{OwnerSecurityGroup, grp.ID})
		}
	}
	if r := op.SecurityGroupRule(); r != nil {
		group(r.VPC, r.Group)
	}
	if h := op.Host(); h != nil {
		for _, name := range h.SecurityGroups {
			group(h.VPC, name)
		}
		if old, ok := op.Old.(*topology.Host); ok {
			for _, name := range old.SecurityGroups {
				group(old.VPC, name)
			}
		}
	}
	return out
}

// Dependents: where a host is attached decides where its groups' rules
// go; when a port event moves it, they move too.
func (g *sgStage) Dependents(st *topology.State, o Owner) []Owner {
	if !g.affecting || o.Kind != OwnerHost {
		return nil
	}
	h, ok := st.HostByID(o.ID)
	if !ok {
		return nil
	}
	var out []Owner
	for _, name := range h.SecurityGroups {
		if grp, ok := st.SecurityGroup(h.VPC, name); ok {
			out = append(out, Owner{OwnerSecurityGroup, grp.ID})
		}
	}
	return out
}

// secGroupOwners lists every security group as an owner.
func secGroupOwners(st *topology.State) []Owner {
	var out []Owner
	for _, g := range st.AllSecurityGroups() {
		out = append(out, Owner{OwnerSecurityGroup, g.ID})
	}
	return out
}

// ruleFlows adds rule r's clauses through add (which merges them with the
// group's other rules') and returns its conj_id flow; false when its peer
// group is gone.
func (g *sgStage) ruleFlows(s *Snapshot, r *topology.SecurityGroupRule, base openflow.Match,
	add func(prio uint16, m openflow.Match, a openflow.Action)) (ruleFlow, bool) {
	level := ruleLevel(r)
	proto := base
	switch r.Protocol {
	case topology.ProtocolTCP:
		proto = proto.TCP()
	case topology.ProtocolUDP:
		proto = proto.UDP()
	case topology.ProtocolICMP:
		proto = proto.ICMP()
	}
	// Clause 1: the peer. A CIDR of /0 is written as its two halves,
	// so that it never is the same flow as a clause 2 (which matches
	// no address).
	var peers []openflow.Match
	switch {
	case r.SecurityGroup != "":
		pg, ok := s.Topo.SecurityGroup(r.VPC, r.SecurityGroup)
		if !ok {
			return ruleFlow{}, false
		}
		pbit := uint64(1) << pg.Index
		peers = append(peers, proto.WithMasked(sgPeerReg, pbit, pbit))
	case r.CIDR.Bits() == 0:
		peers = append(peers, proto.Prefix(g.peerField, netip.MustParsePrefix("0.0.0.0/1")),
			proto.Prefix(g.peerField, netip.MustParsePrefix("128.0.0.0/1")))
	default:
		peers = append(peers, proto.Prefix(g.peerField, r.CIDR))
	}
	for _, m := range peers {
		add(level, m, openflow.Conjunction(r.ID, 1, 2))
	}
	// Clause 2: protocol and destination ports.
	ports := []openflow.Match{proto}
	if lo, hi := r.Ports(); lo != 0 {
		f := openflow.FieldTCPDst
		if r.Protocol == topology.ProtocolUDP {
			f = openflow.FieldUDPDst
		}
		ports = ports[:0]
		for _, pm := range PortMasks(lo, hi) {
			ports = append(ports, proto.WithMasked(f, uint64(pm.Value), uint64(pm.Mask)))
		}
	}
	for _, m := range ports {
		add(level, m, openflow.Conjunction(r.ID, 2, 2))
	}
	deny := uint64(0)
	if r.Drops() {
		deny = 1
	}
	return ruleFlow{prio: level, cookie: RuleCookie(r.ID), match: ipv4.With(openflow.FieldConjID, uint64(r.ID)),
		actions: []openflow.Action{openflow.Load(sgZoneReg, sgDenyBit, 1, deny), openflow.GotoTable(g.verdict.ID)}}, true
}
