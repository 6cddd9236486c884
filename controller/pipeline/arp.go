package pipeline

import (
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// ARPResponder answers every ARP request for an address of the sender's
// vSwitch CIDR with the gateway MAC, in the datapath; the fabric never
// floods. The answer is shared by the vSwitch's hosts on a datapath (one
// flow per vSwitch and switch, kept while any of them is there).
type ARPResponder struct {
	table *Table
}

// NewARPResponder declares the ARPResponder.
func NewARPResponder() *ARPResponder {
	return &ARPResponder{table: &Table{ID: 20, Name: "ARPResponder", Handles: ARP,
		Why:  "answer every ARP request for the sender's vSwitch CIDR with the gateway MAC in the datapath; the fabric never floods",
		Miss: Miss{Drop: DropARPNotAnswered}}}
}

// DropARPNotAnswered: ARP the fabric does not answer (own address,
// gratuitous, replies, outside the vSwitch).
const DropARPNotAnswered DropReason = 3

// Priorities in the ARPResponder.
const (
	priorityOwnARP = 110
	priorityAnswer = 100
)

func (a *ARPResponder) Name() string     { return "arp" }
func (a *ARPResponder) Tables() []*Table { return []*Table{a.table} }
func (a *ARPResponder) Registers() []Register {
	return []Register{{Field: openflow.FieldReg0, Lo: 0, Hi: 31, Name: "ARP scratch",
		Why: "holds the requested address while the reply swaps arp_spa and arp_tpa"}}
}
func (a *ARPResponder) Cookies() []OwnerKind {
	return []OwnerKind{OwnerPipeline, OwnerHost, OwnerVSwitch}
}
func (a *ARPResponder) Drops() []DropReasonInfo {
	return []DropReasonInfo{{DropARPNotAnswered, "arp_not_answered", "ARP the fabric does not answer: for the VM's own address (gratuitous), replies, or outside its vSwitch"}}
}

// Flows for a host: never answer for its own address (this also drops
// gratuitous ARP, whose tpa is the sender's own spa); and, shared with
// the other hosts of its vSwitch on the switch, every address of the
// vSwitch CIDR is at the gateway MAC.
func (a *ARPResponder) Flows(s *Snapshot, o Owner, out *FlowSet) {
	if o.Kind != OwnerHost {
		return
	}
	v, ok := s.host(o.ID)
	if !ok {
		return
	}
	req := openflow.NewMatch().EthType(openflow.EthTypeARP).With(openflow.FieldArpOp, 1)
	out.On(v.at.DPID, a.table).Priority(priorityOwnARP).Cookie(HostCookie(v.h.ID, DropARPNotAnswered)).
		Match(req.InPort(v.at.OFPort).Addr(openflow.FieldArpTpa, v.h.IP)).Drop()
	out.On(v.at.DPID, a.table).Priority(priorityAnswer).Cookie(VSwitchCookie(v.vsw.ID, DropNone)).
		Match(req.Metadata(hostMetadata(v.vpc.ID, v.vsw.ID), metadataAll).Prefix(openflow.FieldArpTpa, v.vsw.CIDR)).
		Actions(ARPReplyActions()...).Do()
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

func (a *ARPResponder) Affected(*topology.State, topology.Op) []Owner { return nil }
