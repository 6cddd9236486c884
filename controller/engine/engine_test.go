package engine

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

func changesText(cs []FlowChange) string {
	var b strings.Builder
	for _, c := range cs {
		if c.Delete {
			b.WriteString("delete ")
		} else {
			b.WriteString("install ")
		}
		b.WriteString(c.Flow.String())
		b.WriteByte('\n')
	}
	return b.String()
}

type ports map[string]pipeline.Attachment

func (p ports) Attachment(h topology.Host) (pipeline.Attachment, bool) {
	a, ok := p[h.Name]
	return a, ok
}

func mac(s string) topology.MAC {
	m, err := topology.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// world is a store with one VPC and vSwitch on one switch (dpid 1).
type world struct {
	t     *testing.T
	store *topology.Store
	ports ports
	e     *Engine
}

func newWorld(t *testing.T) *world {
	st, err := topology.NewStore(context.Background(), topology.NewMemory(), nil)
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, store: st, ports: ports{}, e: New(pipeline.Default())}
	w.apply(topology.Create(&topology.VPC{Name: "v"}),
		topology.Create(&topology.VSwitch{VPC: "v", Name: "w", CIDR: netip.MustParsePrefix("10.0.0.0/24")}))
	return w
}

// apply stores ops and feeds the engine what they affect, as the runtime
// does; it returns the changes for dpid 1.
func (w *world) apply(ops ...topology.Op) []FlowChange {
	w.t.Helper()
	var changes map[uint64][]FlowChange
	w.applyWith(ops, func(snap *pipeline.Snapshot, owners []pipeline.Owner) { changes = w.e.Update(snap, owners) })
	return changes[1]
}

// applyWith stores ops and calls update with the snapshot after them and
// the owners they affect, as the runtime does.
func (w *world) applyWith(ops []topology.Op, update func(snap *pipeline.Snapshot, owners []pipeline.Owner)) {
	w.t.Helper()
	w.applyOps(ops, func(snap *pipeline.Snapshot, owners []pipeline.Owner, _ []topology.Op) { update(snap, owners) })
}

// applyOps is applyWith that also hands update the applied ops.
func (w *world) applyOps(ops []topology.Op, update func(snap *pipeline.Snapshot, owners []pipeline.Owner, applied []topology.Op)) {
	w.t.Helper()
	out, err := w.store.Apply(context.Background(), ops)
	if err != nil {
		w.t.Fatal(err)
	}
	w.store.Read(func(st *topology.State) {
		snap := &pipeline.Snapshot{Topo: st, Ports: w.ports, Chassis: map[string]pipeline.ChassisPlace{}, UnderlayMTU: 1500}
		update(snap, w.e.Pipeline().Affected(st, out), out)
	})
}

func (w *world) addHost(name, ip, m string, port uint32) []FlowChange {
	w.ports[name] = pipeline.Attachment{DPID: 1, OFPort: port}
	return w.apply(topology.Create(&topology.Host{VPC: "v", Name: name, VSwitch: "w", IP: netip.MustParseAddr(ip), MAC: mac(m), Bridge: "br", Interface: name}))
}

// arpAnswer is the vSwitch's shared ARP reply flow in a change set.
func arpAnswer(cs []FlowChange) (FlowChange, int) {
	n := 0
	var found FlowChange
	for _, c := range cs {
		if c.Flow.Table == 20 && c.Flow.Priority == 100 {
			found = c
			n++
		}
	}
	return found, n
}

// TestSharedFlowStaysUntilLastOwner: the ARP answer of a vSwitch is
// produced by each of its hosts on a switch. It is installed with the
// first, kept (and not re-sent) while any remains, and deleted with the
// last.
func TestSharedFlowStaysUntilLastOwner(t *testing.T) {
	w := newWorld(t)
	cs := w.addHost("a", "10.0.0.5", "02:00:00:00:00:05", 1)
	if c, n := arpAnswer(cs); n != 1 || c.Delete {
		t.Fatalf("first host: shared flow not installed once:\n%s", changesText(cs))
	}
	shared, _ := arpAnswer(cs)
	cs = w.addHost("b", "10.0.0.6", "02:00:00:00:00:06", 2)
	if _, n := arpAnswer(cs); n != 0 {
		t.Fatalf("second host re-sent the shared flow:\n%s", changesText(cs))
	}
	w.store.Read(func(*topology.State) {})
	if owners := w.e.OwnersOf(1, shared.Flow.Key()); len(owners) != 2 {
		t.Fatalf("shared flow has owners %v, want both hosts", owners)
	}
	cs = w.apply(topology.Delete(&topology.Host{VPC: "v", Name: "a"}, false))
	if _, n := arpAnswer(cs); n != 0 {
		t.Fatalf("deleting one of two owners touched the shared flow:\n%s", changesText(cs))
	}
	if _, ok := w.e.Desired(1)[shared.Flow.Key()]; !ok {
		t.Fatal("shared flow gone while host b still wants it")
	}
	cs = w.apply(topology.Delete(&topology.Host{VPC: "v", Name: "b"}, false))
	if c, n := arpAnswer(cs); n != 1 || !c.Delete {
		t.Fatalf("last owner gone, shared flow not deleted:\n%s", changesText(cs))
	}
	if len(w.e.Desired(1)) != len(w.e.Pipeline().Defaults()) || w.e.Size() != 0 {
		t.Fatalf("after deleting everything the engine still wants %d flows", w.e.Size())
	}
}

// TestUpdateIsTheNetDifference: moving a host to another port changes its
// port flows and nothing else; recomputing with nothing changed sends
// nothing.
func TestUpdateIsTheNetDifference(t *testing.T) {
	w := newWorld(t)
	w.addHost("a", "10.0.0.5", "02:00:00:00:00:05", 1)
	w.addHost("b", "10.0.0.6", "02:00:00:00:00:06", 2)
	var all []pipeline.Owner
	w.store.Read(func(st *topology.State) { all = pipeline.AllOwners(st) })
	w.store.Read(func(st *topology.State) {
		snap := &pipeline.Snapshot{Topo: st, Ports: w.ports, Chassis: map[string]pipeline.ChassisPlace{}, UnderlayMTU: 1500}
		if cs := w.e.Update(snap, all); len(cs) != 0 {
			t.Fatalf("recompute with nothing changed: %v", cs)
		}
		w.ports["a"] = pipeline.Attachment{DPID: 1, OFPort: 7}
		cs := w.e.Update(snap, all)[1]
		for _, c := range cs {
			txt := c.Flow.Match.String() + " " + c.Flow.ActionsString()
			if !strings.Contains(txt, "in_port=1") && !strings.Contains(txt, "in_port=7") && !strings.Contains(txt, "reg2") {
				t.Errorf("unrelated change: %s", changesText([]FlowChange{c}))
			}
		}
		if len(cs) == 0 || !cs[0].Delete {
			t.Fatalf("want deletes first:\n%s", changesText(cs))
		}
	})
}

// TestConflictingOwnersFirstWins: when two owners want one shared key
// with different content, the first stays installed until it lets go,
// then the other's content is installed.
func TestConflictingOwnersFirstWins(t *testing.T) {
	e := New(pipeline.Default())
	f1 := openflow.Flow{Table: 30, Priority: 200, Cookie: 1, Actions: []openflow.Action{openflow.Output(1)}}
	f2 := f1
	f2.Actions = []openflow.Action{openflow.Output(2)}
	a, b := pipeline.Owner{Kind: pipeline.OwnerHost, ID: 1}, pipeline.Owner{Kind: pipeline.OwnerHost, ID: 2}
	out := &changeSet{lists: map[uint64][]FlowChange{}}
	before := map[slot]*openflow.Flow{}
	e.take(a, 1, &f1, out, before)
	e.take(b, 1, &f2, out, before)
	if got := e.Desired(1)[f1.Key()]; got.ActionsString() != "output:1" {
		t.Fatalf("installed %s, want the first owner's", got.ActionsString())
	}
	e.drop(a, 1, &f1, out, before)
	if got := e.Desired(1)[f1.Key()]; got.ActionsString() != "output:2" {
		t.Fatalf("after the first let go: %s", got.ActionsString())
	}
}

// TestTableSizesFollowDesired: the per-table counts kept as flows come and
// go always equal what Desired holds in each table, and DesiredIn is
// Desired restricted to one table.
func TestTableSizesFollowDesired(t *testing.T) {
	w := newWorld(t)
	check := func(when string) {
		t.Helper()
		want := map[uint8]int{}
		for k := range w.e.Desired(1) {
			want[k.Table]++
		}
		got := w.e.TableSizes(1)
		for tb := range want {
			if got[tb] != want[tb] {
				t.Errorf("%s: table %d: TableSizes %d, Desired holds %d", when, tb, got[tb], want[tb])
			}
			in := w.e.DesiredIn(1, tb)
			if len(in) != want[tb] {
				t.Errorf("%s: DesiredIn(%d) has %d flows, want %d", when, tb, len(in), want[tb])
			}
			for k := range in {
				if k.Table != tb {
					t.Errorf("%s: DesiredIn(%d) holds a flow of table %d", when, tb, k.Table)
				}
			}
		}
		for tb, n := range got {
			if want[tb] != n {
				t.Errorf("%s: table %d: TableSizes %d, Desired holds %d", when, tb, n, want[tb])
			}
		}
	}
	check("defaults only")
	w.addHost("a", "10.0.0.5", "02:00:00:00:00:05", 1)
	w.addHost("b", "10.0.0.6", "02:00:00:00:00:06", 2)
	w.apply(topology.Create(&topology.Subnet{VPC: "v", CIDR: netip.MustParsePrefix("172.18.1.0/24"), Host: "a"}))
	check("two hosts and a route entry")
	w.ports["b"] = pipeline.Attachment{DPID: 1, OFPort: 7}
	w.apply(topology.Update(&topology.Host{VPC: "v", Name: "b", Bridge: "br", Interface: "b"}))
	check("host b moved")
	w.apply(topology.Delete(&topology.Host{VPC: "v", Name: "a"}, true))
	check("host a deleted with its route entry")
	w.apply(topology.Delete(&topology.Host{VPC: "v", Name: "b"}, true))
	check("every host deleted")
	if len(w.e.counts) != 0 {
		t.Errorf("counts left for %d datapaths with nothing desired", len(w.e.counts))
	}
}

// TestLoadDesiresWhatUpdateDoes: Load (the start-up path, no changes
// produced) leaves the engine desiring exactly what Update from nothing
// does, and a later Update of the same owners finds nothing to change.
func TestLoadDesiresWhatUpdateDoes(t *testing.T) {
	w := newWorld(t)
	w.addHost("a", "10.0.0.5", "02:00:00:00:00:05", 1)
	w.addHost("b", "10.0.0.6", "02:00:00:00:00:06", 2)
	loaded := New(pipeline.Default())
	w.store.Read(func(st *topology.State) {
		all := pipeline.AllOwners(st)
		snap := &pipeline.Snapshot{Topo: st, Ports: w.ports, Chassis: map[string]pipeline.ChassisPlace{}, UnderlayMTU: 1500}
		loaded.Load(snap, all)
		want, got := Sorted(w.e.Desired(1)), Sorted(loaded.Desired(1))
		if len(want) == 0 || len(got) != len(want) {
			t.Fatalf("Load desires %d flows, Update %d", len(got), len(want))
		}
		for i := range want {
			if want[i].String() != got[i].String() {
				t.Errorf("flow %d: Load %s, Update %s", i, got[i].String(), want[i].String())
			}
		}
		if cs := loaded.Update(snap, all); len(cs) != 0 {
			t.Errorf("Update after Load changed %d switches' flows", len(cs))
		}
	})
}
