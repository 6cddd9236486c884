package pipeline

import (
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// LiveTrace observes the real packets of `vpcflow trace --live`. vpcflow
// injects such a packet at the sender's port by a packet-out (in_port the
// port, into the first table) carrying a tag in pkt_mark — packet
// metadata no VM can set, that no other flow matches — and, while the
// trace runs, wants a few observation flows on that switch (a Probe): at
// the points where the simulation says the packet's walk ends, a copy of
// the flow that ends it (its match and the tag; its rewrites kept; one
// priority higher) that sends the packet to vpcflow instead, and in the
// Output stage a flow that catches every tagged packet about to leave.
// The packet-in says where the real packet got to (the table, the
// rewritten frame, its output port in reg2); the punt goes through the
// trace meter. The tagged packet itself is never delivered.
type LiveTrace struct {
	meter *Meter
}

// NewLiveTrace declares the live trace feature.
func NewLiveTrace() *LiveTrace {
	return &LiveTrace{meter: &Meter{ID: MeterTrace, Name: "trace", Service: ServiceTrace, Rate: 10, Burst: 10,
		Why: "the packets of live traces (vpcflow trace --live): one per trace, caught where its walk ends"}}
}

// MeterTrace is the meter of the live trace punt.
const MeterTrace uint32 = 4

// ServiceTrace: a live trace's tagged packet, caught by its probe.
const ServiceTrace Service = 4

// TraceTag and TraceTagMask: a live trace's pkt_mark is TraceTag | its id
// (16 bits).
const (
	TraceTag     uint32 = 0x76740000 // "vt"
	TraceTagMask uint32 = 0xffff0000
)

// TraceMark is the pkt_mark of live trace id.
func TraceMark(id uint16) uint32 { return TraceTag | uint32(id) }

// TraceCookie marks the observation flows of live trace id.
func TraceCookie(id uint16) uint64 { return MakeCookie(OwnerTrace, DropNone, uint32(id)) }

// Probe is one live trace's observation flows on one switch.
type Probe struct {
	DPID uint64
	ID   uint16
	// Points are the flows that end the traced packet's walk as the
	// simulation sees it (table, priority, match, actions): each is
	// installed one priority higher, with the trace's tag added to its
	// match, its outputs and punts left out, and the trace punt last.
	Points []openflow.Flow
}

// ProbeOwner is the owner of live trace id's flows.
func ProbeOwner(id uint16) Owner { return Owner{Kind: OwnerTrace, ID: uint32(id)} }

func (l *LiveTrace) Name() string                                  { return "livetrace" }
func (l *LiveTrace) Tables() []*Table                              { return nil }
func (l *LiveTrace) Registers() []Register                         { return nil }
func (l *LiveTrace) Cookies() []OwnerKind                          { return []OwnerKind{OwnerTrace} }
func (l *LiveTrace) Drops() []DropReasonInfo                       { return nil }
func (l *LiveTrace) Meters() []*Meter                              { return []*Meter{l.meter} }
func (l *LiveTrace) Affected(*topology.State, topology.Op) []Owner { return nil }

// OutputTable is the Output stage's table, where every packet about to
// leave by a port passes; nil if the pipeline has none.
func (p *Pipeline) OutputTable() *Table {
	for _, f := range p.features {
		if o, ok := f.(*Output); ok {
			return o.table
		}
	}
	return nil
}

// Flows of a probe: its points, tagged, ending in the trace punt. They
// go into other features' tables, which only this feature may do.
func (l *LiveTrace) Flows(s *Snapshot, o Owner, out *FlowSet) {
	if o.Kind != OwnerTrace {
		return
	}
	pr, ok := s.Probes[o.ID]
	if !ok {
		return
	}
	punt := openflow.ControllerWith(openflow.Controller{Userdata: l.meter.Service.Userdata(), MeterID: l.meter.ID})
	for _, pt := range pr.Points {
		prio := pt.Priority
		if prio < 0xffff {
			prio++
		}
		var acts []openflow.Action
		for _, a := range pt.Actions {
			switch a.Type {
			case openflow.ActSetField, openflow.ActLoad, openflow.ActMove, openflow.ActWriteMetadata:
				acts = append(acts, a)
			}
		}
		m := append(openflow.Match{}, pt.Match...).With(openflow.FieldPktMark, uint64(TraceMark(pr.ID)))
		out.flows = append(out.flows, PlacedFlow{DPID: pr.DPID, Flow: openflow.Flow{
			Table: pt.Table, Priority: prio, Cookie: TraceCookie(pr.ID), Match: m, Actions: append(acts, punt)}})
	}
}
