package controller

import (
	"net/netip"
	"testing"

	"github.com/vpcflow/vpcflow/controller/controllertest"
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/ovsdb"
	"github.com/vpcflow/vpcflow/topology"
)

// flowSet is a switch's table by flow key.
func flowSet(dp *controllertest.Datapath) map[openflow.Key]openflow.Flow {
	out := map[openflow.Key]openflow.Flow{}
	for _, f := range dp.Flows() {
		out[f.Key()] = f
	}
	return out
}

// minimalMods is the fewest flow-mods that turn table a into table b: a
// delete per key only in a, an add per key only in b or with other
// content.
func minimalMods(a, b map[openflow.Key]openflow.Flow) int {
	n := 0
	for k := range a {
		if _, ok := b[k]; !ok {
			n++
		}
	}
	for k, fb := range b {
		if fa, ok := a[k]; !ok || !fa.SameContent(&fb) {
			n++
		}
	}
	return n
}

// TestRestoreChangesOnlyWhatDiffers: an online restore of a backup taken
// before some changes puts the switch back to the backup's table with the
// fewest flow-mods there are — none for the flows of objects that did not
// change, whose packet counters live on — in one batch; the same restore
// again sends nothing.
func TestRestoreChangesOnlyWhatDiffers(t *testing.T) {
	r := newRig(t, Options{OVSDBEndpoints: []string{"unix:/test/db.sock"}})
	bs := seedBridges()
	bs[0].Ports["vnet5"] = ovsdb.Port{Name: "vnet5", OFPort: 3}
	r.c.BridgesChanged("unix:/test/db.sock", bs)
	dp := controllertest.NewDatapath(1)
	r.connect(dp)
	r.apply(seedOps()...)
	backup, err := r.store.Backend().Load(r.ctx)
	if err != nil {
		t.Fatal(err)
	}
	atBackup := flowSet(dp)

	// After the backup: test2 gets another MAC, a third host comes with a
	// route entry, test1's route entry goes.
	r.apply(
		topology.Update(&topology.Host{VPC: "vpc-seed", Name: "test2", VSwitch: "vsw-a", IP: netip.MustParseAddr("10.10.10.12"),
			MAC: mac("52:58:00:98:c0:99"), Bridge: "br-test", Interface: "vnet3"}),
		topology.Create(&topology.Host{VPC: "vpc-seed", Name: "test3", VSwitch: "vsw-a", IP: netip.MustParseAddr("10.10.10.13"),
			MAC: mac("52:58:00:98:c0:a3"), Bridge: "br-test", Interface: "vnet5"}),
		topology.Create(&topology.Subnet{VPC: "vpc-seed", CIDR: netip.MustParsePrefix("172.18.5.0/24"), Host: "test3"}),
		topology.Delete(&topology.Subnet{VPC: "vpc-seed", Name: "172.18.1.0-24"}, false),
	)
	now := flowSet(dp)
	want := minimalMods(now, atBackup)
	if want == 0 {
		t.Fatal("the changes after the backup changed no flow")
	}
	// Traffic on every flow: a flow re-added would lose its count.
	for _, f := range now {
		dp.Count(f, 7)
	}

	dry, err := r.c.Restore(r.ctx, backup, true)
	if err != nil {
		t.Fatal(err)
	}
	if dry.FlowMods != 0 || len(dry.Ops) != 4 || minimalMods(flowSet(dp), now) != 0 {
		t.Fatalf("dry run: %+v, or it changed the switch", dry)
	}
	mods, batches := dp.Mods(), dp.Batches()
	res, err := r.c.Restore(r.ctx, backup, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range res.Ops {
		t.Logf("%s %s %s", op.Kind, topology.KindOf(op.Obj), op.Obj.Key())
	}
	// test2 updated, test3 and its route entry deleted, 172.18.1.0/24
	// created; the VPC, the vSwitch, test1 and test2's route entry as they were.
	if len(res.Ops) != 4 || res.Unchanged != 4 {
		t.Errorf("restore: %d ops, %d unchanged; want 4 and 4", len(res.Ops), res.Unchanged)
	}
	if n := dp.Mods() - mods; n != want || res.FlowMods != want || res.Switches != 1 {
		t.Errorf("restore sent %d flow-mods (reported %d on %d switches), want %d: the difference alone", n, res.FlowMods, res.Switches, want)
	}
	if n := dp.Batches() - batches; n != 1 {
		t.Errorf("restore sent %d batches, want 1", n)
	}
	after := flowSet(dp)
	if minimalMods(after, atBackup) != 0 || len(after) != len(atBackup) {
		t.Errorf("after the restore the switch holds\n%s\nwant the table at the backup", dp.Text())
	}
	r.exact()
	kept := 0
	stats, err := dp.DumpFlows(r.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stats {
		f := s.Flow
		if was, ok := now[f.Key()]; ok && was.SameContent(&f) {
			kept++
			if s.Packets != 7 {
				t.Errorf("flow untouched by the restore lost its counters: %s", f.String())
			}
		}
	}
	if kept == 0 || kept != len(after)-countChanged(now, after) {
		t.Errorf("%d flows kept their counters", kept)
	}

	// Again: nothing to do.
	mods = dp.Mods()
	res, err = r.c.Restore(r.ctx, backup, false)
	if err != nil || len(res.Ops) != 0 || res.FlowMods != 0 || dp.Mods() != mods {
		t.Errorf("second restore: %+v %v, %d flow-mods", res, err, dp.Mods()-mods)
	}
}

// countChanged counts the flows of b that are not in a as they are.
func countChanged(a, b map[openflow.Key]openflow.Flow) int {
	n := 0
	for k, fb := range b {
		if fa, ok := a[k]; !ok || !fa.SameContent(&fb) {
			n++
		}
	}
	return n
}
