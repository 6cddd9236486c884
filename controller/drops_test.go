package controller

import (
	"net/netip"
	"testing"

	"github.com/vpcflow/vpcflow/controller/controllertest"
	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/topology"
)

// TestSpoofedByRouteEntryChargedToItsHost: with 10.10.0.0/16 → test1,
// test1's packets from another VM's address are dropped by a flow of the
// route entry (its cookie); GET /v1/drops charges them to test1, as it
// does its other spoofed packets.
func TestSpoofedByRouteEntryChargedToItsHost(t *testing.T) {
	r := newRig(t, Options{OVSDBEndpoints: []string{"unix:/test/db.sock"}})
	r.c.BridgesChanged("unix:/test/db.sock", seedBridges())
	dp := controllertest.NewDatapath(1)
	r.connect(dp)
	r.apply(seedOps()...)
	out := r.apply(topology.Create(&topology.Subnet{VPC: "vpc-seed", Name: "cover", CIDR: netip.MustParsePrefix("10.10.0.0/16"), Host: "test1"}))
	id := out[0].Obj.ObjectID()
	n := 0
	for _, f := range dp.Flows() {
		if f.Cookie == pipeline.SubnetCookie(id, pipeline.DropSpoofed) {
			dp.Count(f, 5)
			n++
		}
	}
	if n == 0 {
		t.Fatalf("no spoofed drop flow of the route entry:\n%s", dp.Text())
	}
	rep, err := r.c.Drops(r.ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got uint64
	for _, h := range rep.Hosts {
		if h.Name == "test1" {
			got = h.Drops["spoofed"]
		}
	}
	if got != uint64(5*n) || rep.Switches[0].Drops["spoofed"] != uint64(5*n) {
		t.Errorf("test1 spoofed %d, switch %d; want %d each: %+v", got, rep.Switches[0].Drops["spoofed"], 5*n, rep)
	}
}
