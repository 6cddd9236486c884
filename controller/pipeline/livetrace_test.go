package pipeline

import (
	"strings"
	"testing"

	"github.com/vpcflow/vpcflow/openflow"
)

// A probe's points become tagged copies one priority higher that keep
// the rewrites, leave out outputs and jumps, and end in the metered trace
// punt, with the trace's cookie; nothing for other owners or a probe that
// is gone.
func TestLiveTraceProbeFlows(t *testing.T) {
	p := Default()
	outT := p.OutputTable()
	if outT == nil || outT.Name != "Output" {
		t.Fatalf("OutputTable: %v", outT)
	}
	arp := openflow.Flow{Table: 20, Priority: 100, Match: openflow.NewMatch().EthType(openflow.EthTypeARP),
		Actions: []openflow.Action{openflow.Move(openflow.FieldEthSrc, openflow.FieldEthDst), openflow.SetField(openflow.FieldArpOp, 2), openflow.OutputInPort()}}
	top := openflow.Flow{Table: 30, Priority: 0xffff, Actions: []openflow.Action{openflow.GotoTable(45)}}
	s := &Snapshot{Probes: map[uint32]Probe{7: {DPID: 9, ID: 7, Points: []openflow.Flow{arp, top, {Table: outT.ID, Priority: 0xfffe}}}}}
	flows := p.Flows(s, ProbeOwner(7))
	var text []string
	for _, f := range flows {
		if f.DPID != 9 || f.Flow.Cookie != TraceCookie(7) {
			t.Errorf("flow on %d with cookie %#x", f.DPID, f.Flow.Cookie)
		}
		if _, err := openflow.EncodeFlowMod(1, openflow.FlowMod{Command: openflow.FlowAdd, Flow: f.Flow}); err != nil {
			t.Errorf("%s: %v", f.Flow.String(), err)
		}
		text = append(text, f.Flow.String())
	}
	want := []string{
		"table=20, priority=101, cookie=0x76700f0000000007, pkt_mark=0x76740007,arp actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:2->arp_op,controller(userdata=76.04,meter_id=4)",
		"table=30, priority=65535, cookie=0x76700f0000000007, pkt_mark=0x76740007 actions=controller(userdata=76.04,meter_id=4)",
		"table=70, priority=65535, cookie=0x76700f0000000007, pkt_mark=0x76740007 actions=controller(userdata=76.04,meter_id=4)",
	}
	if strings.Join(text, "\n") != strings.Join(want, "\n") {
		t.Errorf("probe flows:\n%s\nwant:\n%s", strings.Join(text, "\n"), strings.Join(want, "\n"))
	}
	if f := p.Flows(s, ProbeOwner(8)); len(f) != 0 {
		t.Errorf("flows for a trace that is not running: %v", f)
	}
	if m, ok := p.MeterOf(ServiceTrace); !ok || m.ID != MeterTrace {
		t.Errorf("trace meter: %v %v", m, ok)
	}
	if svc, ok := ServiceOf(ServiceTrace.Userdata()); !ok || svc != ServiceTrace || svc.String() != "trace" {
		t.Errorf("trace service: %v %v", svc, ok)
	}
}
