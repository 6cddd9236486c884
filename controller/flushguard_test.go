package controller

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/vpcflow/vpcflow/controller/controllertest"
	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/ovsdb"
	"github.com/vpcflow/vpcflow/topology"
)

// sixHosts is the seed's VPC with six hosts on br-test (dpid 1, ports
// 1..6), each with a route entry, installed on a connected switch.
func sixHosts(t *testing.T) (*rig, *controllertest.Datapath) {
	r := newRig(t, Options{OVSDBEndpoints: []string{"unix:/test/db.sock"}})
	r.c.BridgesChanged("unix:/test/db.sock", sixBridges())
	dp := controllertest.NewDatapath(1)
	r.connect(dp)
	r.apply(topology.Create(&topology.VPC{Name: "v"}),
		topology.Create(&topology.VSwitch{VPC: "v", Name: "w", CIDR: netip.MustParsePrefix("10.0.0.0/24")}))
	for i := 1; i <= 6; i++ {
		r.apply(topology.Create(&topology.Host{VPC: "v", Name: fmt.Sprintf("h%d", i), VSwitch: "w",
			IP: netip.AddrFrom4([4]byte{10, 0, 0, byte(10 + i)}), MAC: mac(fmt.Sprintf("02:00:00:00:00:%02x", i)),
			Bridge: "br-test", Interface: fmt.Sprintf("vnet%d", i)}),
			topology.Create(&topology.Subnet{VPC: "v", CIDR: netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 18, byte(i), 0}), 24), Host: fmt.Sprintf("h%d", i)}))
	}
	r.exact()
	return r, dp
}

func sixBridges() []ovsdb.Bridge {
	bs := []ovsdb.Bridge{{Name: "br-test", DPID: 1, Ports: map[string]ovsdb.Port{}}}
	for i := 1; i <= 6; i++ {
		name := fmt.Sprintf("vnet%d", i)
		bs[0].Ports[name] = ovsdb.Port{Name: name, OFPort: int32(i)}
	}
	return bs
}

// ownerFlows counts the flows of objects (not the pipeline's defaults).
func ownerFlows(dp *controllertest.Datapath) int {
	n := 0
	for _, f := range dp.Flows() {
		if ck := pipeline.ParseCookie(f.Cookie); ck.Ours && ck.Owner != pipeline.OwnerPipeline {
			n++
		}
	}
	return n
}

// TestEmptyStoreDoesNotWipeSwitch (issue 10.3): vpcflow restarted on an
// empty store (a new --data-dir, a lost file) finds a switch full of its
// flows: it keeps them and says why; POST …/flush (Controller.Flush)
// deletes them on request.
func TestEmptyStoreDoesNotWipeSwitch(t *testing.T) {
	a, dp := sixHosts(t)
	before, n := dp.Text(), ownerFlows(dp)
	a.disconnect(1)

	b := newRig(t, Options{OVSDBEndpoints: []string{"unix:/test/db.sock"}})
	b.c.BridgesChanged("unix:/test/db.sock", sixBridges())
	mods := dp.Mods()
	b.connect(dp)
	if dp.Text() != before || dp.Mods() != mods {
		t.Fatalf("an empty store changed the switch (%d flow-mods):\n%s", dp.Mods()-mods, dp.Text())
	}
	res, err := b.c.Flush(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if res.Deleted != n || res.KeptGuarded != 0 || ownerFlows(dp) != 0 {
		t.Errorf("flush: %+v, %d object flows left; want %d deleted", res, ownerFlows(dp), n)
	}
	b.exact()
	if _, err := b.c.Flush(context.Background(), 7); err == nil {
		t.Error("flushing a switch that is not connected succeeded")
	}
}

// TestAllowFlush: with --allow-flush the empty store wins at once.
func TestAllowFlush(t *testing.T) {
	a, dp := sixHosts(t)
	a.disconnect(1)
	b := newRig(t, Options{OVSDBEndpoints: []string{"unix:/test/db.sock"}, AllowFlush: true})
	b.c.BridgesChanged("unix:/test/db.sock", sixBridges())
	b.connect(dp)
	b.exact()
	if n := ownerFlows(dp); n != 0 {
		t.Errorf("%d object flows left with AllowFlush", n)
	}
}

// TestMuchSmallerStoreDoesNotWipeSwitch: a store that lost most objects
// (a truncated or old file) keeps the switch's flows of the objects it
// lost; one that lost one object while the switch was away (an ordinary
// delete) has it deleted.
func TestMuchSmallerStoreDoesNotWipeSwitch(t *testing.T) {
	for _, tc := range []struct {
		name    string
		lost    int
		guarded bool
	}{{"one host deleted while the switch was away", 1, false}, {"five of six hosts lost", 5, true}} {
		t.Run(tc.name, func(t *testing.T) {
			a, dp := sixHosts(t)
			before := dp.Text()
			a.disconnect(1)
			for i := 1; i <= tc.lost; i++ {
				if _, err := a.store.Apply(context.Background(), []topology.Op{topology.Delete(&topology.Host{VPC: "v", Name: fmt.Sprintf("h%d", i)}, true)}); err != nil {
					t.Fatal(err)
				}
			}
			b := newRigOn(t, a.store, Options{OVSDBEndpoints: []string{"unix:/test/db.sock"}})
			b.c.BridgesChanged("unix:/test/db.sock", sixBridges())
			b.connect(dp)
			if tc.guarded {
				if got := dp.Text(); got != before {
					t.Fatalf("a store that lost most objects changed the switch:\n%s", got)
				}
				return
			}
			b.exact()
			if strings.Contains(dp.Text(), "10.0.0.11") {
				t.Errorf("the deleted host's flows stayed:\n%s", dp.Text())
			}
		})
	}
}
