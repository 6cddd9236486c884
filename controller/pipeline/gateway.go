package pipeline

import (
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// GatewayPing answers ICMP echo requests to a vSwitch's gateway address
// from the VMs of that vSwitch, in the datapath (no packet-in), as the
// Aliyun gateway does: the request is turned into the reply in place —
// MACs and IPs swapped, the gateway MAC and address as the source, TTL
// 64, ICMP type 0 (OVS fixes the IP and ICMP checksums) — and sent back
// out of the port it came in by. It sits after the SpoofGuard, so only a
// VM's own address is answered. Any other address of the fabric that no
// VM holds gets nothing (L3Forwarding drops it as no_route). The reply is
// shared by the vSwitch's hosts on a switch, like the ARP answer.
type GatewayPing struct {
	table *Table
}

// NewGatewayPing declares GatewayPing.
func NewGatewayPing() *GatewayPing {
	return &GatewayPing{table: &Table{ID: 15, Name: "GatewayPing", Handles: IPv4,
		Why:  "answer ICMP echo requests to the sender's vSwitch gateway in the datapath (reply built in place, back out of IN_PORT); everything else goes on",
		Miss: Miss{Continue: true}}}
}

// priorityGatewayPing is the priority of the echo answers.
const priorityGatewayPing = 100

// gatewayTTL is the TTL of the gateway's echo replies.
const gatewayTTL = 64

func (g *GatewayPing) Name() string                                  { return "gateway" }
func (g *GatewayPing) Tables() []*Table                              { return []*Table{g.table} }
func (g *GatewayPing) Registers() []Register                         { return nil }
func (g *GatewayPing) Cookies() []OwnerKind                          { return []OwnerKind{OwnerPipeline, OwnerVSwitch} }
func (g *GatewayPing) Drops() []DropReasonInfo                       { return nil }
func (g *GatewayPing) Affected(*topology.State, topology.Op) []Owner { return nil }

// Flows for a host: the echo answer of its vSwitch's gateway, shared with
// the vSwitch's other hosts on the switch.
func (g *GatewayPing) Flows(s *Snapshot, o Owner, out *FlowSet) {
	if o.Kind != OwnerHost {
		return
	}
	v, ok := s.host(o.ID)
	if !ok {
		return
	}
	out.On(v.at.DPID, g.table).Priority(priorityGatewayPing).Cookie(VSwitchCookie(v.vsw.ID, DropNone)).
		Match(openflow.NewMatch().EthType(openflow.EthTypeIPv4).With(openflow.FieldIPProto, openflow.IPProtoICMP).
			Metadata(hostMetadata(v.vpc.ID, v.vsw.ID), metadataAll).Addr(openflow.FieldIPv4Dst, v.vsw.Gateway).
			With(openflow.FieldICMPType, 8).With(openflow.FieldICMPCode, 0)).
		Actions(EchoReplyActions(v.vsw)...).Do()
}

// EchoReplyActions turn an ICMP echo request to vSwitch w's gateway into
// the gateway's reply, sent back out of the port it came in by.
func EchoReplyActions(w topology.VSwitch) []openflow.Action {
	return []openflow.Action{
		openflow.Move(openflow.FieldEthSrc, openflow.FieldEthDst),
		openflow.SetMAC(openflow.FieldEthSrc, topology.GatewayMAC),
		openflow.Move(openflow.FieldIPv4Src, openflow.FieldIPv4Dst),
		openflow.SetAddr(openflow.FieldIPv4Src, w.Gateway),
		openflow.SetField(openflow.FieldIPTTL, gatewayTTL),
		openflow.SetField(openflow.FieldICMPType, 0),
		openflow.OutputInPort(),
	}
}
