package controller

import (
	"errors"
	"strings"
	"testing"

	"github.com/vpcflow/vpcflow/controller/controllertest"
	"github.com/vpcflow/vpcflow/trace"
)

// A live trace installs its observation flows through the engine (so a
// reconciliation or drift check meanwhile keeps them) and removes them
// however it ends: here on a switch connection that cannot send packets.
// A live trace needs a host to send from.
func TestLiveTraceProbesComeAndGo(t *testing.T) {
	r := newRig(t, Options{OVSDBEndpoints: []string{"unix:/test/db.sock"}})
	r.c.BridgesChanged("unix:/test/db.sock", seedBridges())
	dp := controllertest.NewDatapath(1)
	r.connect(dp)
	r.apply(seedOps()...)
	before, mods := dp.Text(), dp.Mods()
	_, err := r.c.Trace(r.ctx, trace.Request{VPC: "vpc-seed", From: "test1", Dst: "10.10.10.99", Live: true})
	if err == nil || !strings.Contains(err.Error(), "cannot send packets") {
		t.Fatalf("live trace on a switch without packet-out: %v", err)
	}
	// Two points (the no_route flow of L3, the Output stage), installed
	// then removed.
	if n := dp.Mods() - mods; n != 4 {
		t.Errorf("%d flow-mods, want 4 (two observation flows in, then out)", n)
	}
	if dp.Text() != before {
		t.Errorf("the observation flows stayed:\n%s", dp.Text())
	}
	r.c.mu.Lock()
	n := len(r.c.live.probes)
	r.c.mu.Unlock()
	if n != 0 {
		t.Errorf("%d probes left", n)
	}
	r.exact()
	if _, err := r.c.Trace(r.ctx, trace.Request{VPC: "vpc-seed", FromChassis: "node1", Src: "10.10.10.11", Dst: "10.10.10.12", Live: true}); err == nil {
		t.Error("a live trace from a chassis uplink was accepted")
	}
	var te *trace.Error
	if _, err := r.c.Trace(r.ctx, trace.Request{VPC: "vpc-seed", From: "nobody", Dst: "10.10.10.12", Live: true}); err == nil || !errors.As(err, &te) || te.Field != "from" {
		t.Errorf("a live trace from an unknown host: %v", err)
	}
}
