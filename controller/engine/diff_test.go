package engine

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

func seedDesired(t *testing.T) DesiredTable {
	w := newWorld(t)
	w.addHost("a", "10.0.0.5", "02:00:00:00:00:05", 1)
	w.addHost("b", "10.0.0.6", "02:00:00:00:00:06", 2)
	w.store.Read(func(*topology.State) {})
	return w.e.Desired(1)
}

func TestDiffTableNothingToDoWhenEqual(t *testing.T) {
	d := seedDesired(t)
	if cs := DiffTable(pipeline.Default(), d, Sorted(d)); len(cs) != 0 {
		t.Fatalf("equal tables gave changes:\n%s", changesText(cs))
	}
}

func TestDiffTableRepairsDrift(t *testing.T) {
	p := pipeline.Default()
	desired := seedDesired(t)
	installed := Sorted(desired)
	// 1: a flow deleted by hand.
	missing := installed[3]
	installed = append(installed[:3], installed[4:]...)
	// 2: a flow whose actions were changed by hand.
	var changedKey openflow.Key
	for i := range installed {
		if installed[i].Table == 30 && len(installed[i].Actions) > 0 && installed[i].Priority > 0 {
			installed[i].Actions = []openflow.Action{openflow.Output(9)}
			changedKey = installed[i].Key()
			break
		}
	}
	// 3: a foreign flow in a vpcflow table, 4: a stale vpcflow flow in a
	// table vpcflow no longer uses, 5: an operator's flow elsewhere.
	foreign := openflow.Flow{Table: 30, Priority: 500, Cookie: 0x1, Match: openflow.NewMatch().EthType(openflow.EthTypeIPv4)}
	stale := openflow.Flow{Table: 99, Priority: 5, Cookie: pipeline.HostCookie(42, pipeline.DropNone)}
	operator := openflow.Flow{Table: 200, Priority: 1, Cookie: 0xbeef}
	installed = append(installed, foreign, stale, operator)

	cs := DiffTable(p, desired, installed)
	changed := desired[changedKey]
	want := map[string]bool{
		"add " + missing.String(): true,
		"add " + changed.String(): true,
		"del " + foreign.String(): true,
		"del " + stale.String():   true,
	}
	if len(cs) != len(want) {
		t.Errorf("got %d changes, want %d:\n%s", len(cs), len(want), changesText(cs))
	}
	for _, c := range cs {
		id := "add " + c.Flow.String()
		if c.Delete {
			id = "del " + c.Flow.String()
		}
		if !want[id] {
			t.Errorf("unexpected change %s", id)
		}
	}
	if !cs[0].Delete {
		t.Errorf("deletes must come first:\n%s", changesText(cs))
	}
}

// streamDiff is what a reconciliation computes: the engine's Table of
// dpid 1 (or one table of it) diffed, flow by flow, against installed.
func streamDiff(e *Engine, only int, installed []openflow.Flow) []FlowChange {
	t := e.Table(1)
	if only >= 0 {
		t = e.TableIn(1, uint8(only))
	}
	d := t.Diff()
	for i := range installed {
		f := openflow.CloneFlow(&installed[i])
		d.Installed(&f)
		if len(f.Actions) > 0 {
			f.Actions[0] = openflow.Output(77) // Installed must not keep f
		}
	}
	return d.Changes()
}

// TestTableDiffIsDiffTable: diffing a Table flow by flow gives exactly
// what DiffTable gives against Desired (and DesiredIn for one table):
// nothing for an equal switch, every flow for an empty one, and each kind
// of drift repaired.
func TestTableDiffIsDiffTable(t *testing.T) {
	p := pipeline.Default()
	w := newWorld(t)
	w.addHost("a", "10.0.0.5", "02:00:00:00:00:05", 1)
	w.addHost("b", "10.0.0.6", "02:00:00:00:00:06", 2)
	w.apply(topology.Create(&topology.Subnet{VPC: "v", CIDR: netip.MustParsePrefix("172.18.1.0/24"), Host: "a"}))
	desired := w.e.Desired(1)
	equal := Sorted(desired)
	drifted := Sorted(desired)
	drifted = append(drifted[:3], drifted[4:]...) // one missing
	for i := range drifted {
		if drifted[i].Table == 30 && len(drifted[i].Actions) > 0 && drifted[i].Priority > 0 {
			drifted[i].Actions = []openflow.Action{openflow.Output(9)} // one changed
			break
		}
	}
	drifted = append(drifted,
		openflow.Flow{Table: 30, Priority: 500, Cookie: 0x1, Match: openflow.NewMatch().EthType(openflow.EthTypeIPv4)}, // foreign
		openflow.Flow{Table: 99, Priority: 5, Cookie: pipeline.HostCookie(42, pipeline.DropNone)},                      // stale
		openflow.Flow{Table: 200, Priority: 1, Cookie: 0xbeef})                                                         // an operator's
	for name, installed := range map[string][]openflow.Flow{"equal": equal, "empty": nil, "drifted": drifted} {
		want := changesText(DiffTable(p, desired, installed))
		if got := changesText(streamDiff(w.e, -1, installed)); got != want {
			t.Errorf("%s: Table diff:\n%s\nDiffTable:\n%s", name, got, want)
		}
		for _, tb := range []uint8{0, 10, 20, 30, 99} {
			want := changesText(DiffTable(p, w.e.DesiredIn(1, tb), installedIn(installed, tb)))
			if got := changesText(streamDiff(w.e, int(tb), installed)); got != want {
				t.Errorf("%s, table %d: TableIn diff:\n%s\nDiffTable of DesiredIn:\n%s", name, tb, got, want)
			}
		}
	}
	if changesText(DiffTable(p, desired, drifted)) == "" {
		t.Fatal("the drifted table needs no change: the test proves nothing")
	}
}

func installedIn(fs []openflow.Flow, table uint8) []openflow.Flow {
	var out []openflow.Flow
	for _, f := range fs {
		if f.Table == table {
			out = append(out, f)
		}
	}
	return out
}

// TestTableEachIsDesired: a Table's flows, kept by key as they come
// (later ones replacing earlier ones), are Desired, also for a key two
// owners contest with different content (Desired holds the first owner's;
// each record carries its owner's copy), and a switch diffed against the
// Table gets that same flow.
func TestTableEachIsDesired(t *testing.T) {
	w := newWorld(t)
	w.addHost("a", "10.0.0.5", "02:00:00:00:00:05", 1)
	w.addHost("b", "10.0.0.6", "02:00:00:00:00:06", 2)
	w.apply(topology.Create(&topology.Subnet{VPC: "v", CIDR: netip.MustParsePrefix("172.18.1.0/24"), Host: "a"}))
	// The contest: owners 901 and 902 want one shared key, 901 first.
	f1 := openflow.Flow{Table: 30, Priority: 200, Cookie: 1, Actions: []openflow.Action{openflow.Output(1)}}
	f2 := f1
	f2.Actions = []openflow.Action{openflow.Output(2)}
	out := &changeSet{lists: map[uint64][]FlowChange{}}
	before := map[slot]*openflow.Flow{}
	for _, c := range []struct {
		id uint32
		f  openflow.Flow
	}{{901, f1}, {902, f2}} {
		o := pipeline.Owner{Kind: pipeline.OwnerHost, ID: c.id}
		w.e.take(o, 1, &c.f, out, before)
		w.e.recs.set(o, string(w.e.pack(nil, []pipeline.PlacedFlow{{DPID: 1, Flow: c.f}})))
	}
	desired := w.e.Desired(1)
	if got := desired[f1.Key()]; got.ActionsString() != "output:1" {
		t.Fatalf("Desired holds %s for the contested key, want the first owner's", got.ActionsString())
	}
	kept := DesiredTable{}
	w.e.Table(1).Each(func(f *openflow.Flow) { kept[f.Key()] = openflow.CloneFlow(f) })
	// Each table written out as the installs an empty switch needs.
	p := w.e.Pipeline()
	if got, want := changesText(DiffTable(p, kept, nil)), changesText(DiffTable(p, desired, nil)); got != want {
		t.Errorf("Table.Each kept by key:\n%s\nDesired:\n%s", got, want)
	}
	if got, want := changesText(streamDiff(w.e, -1, nil)), changesText(DiffTable(p, desired, nil)); got != want {
		t.Errorf("Table diff against an empty switch:\n%s\nDiffTable:\n%s", got, want)
	}
}

// TestTableSliceIsTheSwitchsAnswer: a table's slices by cookie are what a
// switch holding exactly the desired flows answers to a flow stats
// request with that cookie and mask (every flow of the table whose cookie
// matches, and no other), they add up to the whole table, and a slice
// diffed against that answer needs nothing. Owners are skipped by ID
// without reading their records, so this fails if an owner's record held
// a flow whose cookie is not in the owner's slice.
func TestTableSliceIsTheSwitchsAnswer(t *testing.T) {
	w := newWorld(t)
	for i := range 9 {
		w.addHost(fmt.Sprintf("h%d", i), fmt.Sprintf("10.0.0.%d", 10+i), fmt.Sprintf("02:00:00:00:00:%02x", i), uint32(1+i))
		w.apply(topology.Create(&topology.Subnet{VPC: "v", CIDR: netip.MustParsePrefix(fmt.Sprintf("172.18.%d.0/24", i)), Host: fmt.Sprintf("h%d", i)}))
	}
	const mask = 3
	for _, tb := range w.e.Pipeline().Tables() {
		whole := w.e.DesiredIn(1, tb.ID)
		seen := 0
		for k := uint64(0); k <= mask; k++ {
			var answer []openflow.Flow
			for _, f := range whole {
				if f.Cookie&mask == k {
					answer = append(answer, f)
				}
			}
			got := map[openflow.Key]openflow.Flow{}
			w.e.TableSlice(1, tb.ID, k, mask).Each(func(f *openflow.Flow) { got[f.Key()] = openflow.CloneFlow(f) })
			if len(got) != len(answer) {
				t.Errorf("table %d slice %d: %d flows, the switch answers %d", tb.ID, k, len(got), len(answer))
			}
			for _, f := range answer {
				if g, ok := got[f.Key()]; !ok || !g.SameContent(&f) || g.Cookie != f.Cookie {
					t.Errorf("table %d slice %d: %s missing or different (%v)", tb.ID, k, f.String(), ok)
				}
			}
			d := w.e.TableSlice(1, tb.ID, k, mask).Diff()
			for i := range answer {
				d.Installed(&answer[i])
			}
			if cs := d.Changes(); len(cs) != 0 {
				t.Errorf("table %d slice %d against the switch's answer:\n%s", tb.ID, k, changesText(cs))
			}
			seen += len(got)
		}
		if seen != len(whole) {
			t.Errorf("table %d: slices hold %d flows, the table %d", tb.ID, seen, len(whole))
		}
	}
	// A flow of another slice's owner on the switch is not this slice's.
	d := w.e.TableSlice(1, 30, 0, mask).Diff()
	for _, f := range w.e.DesiredIn(1, 30) {
		d.Installed(&f)
	}
	if cs := d.Changes(); len(cs) != 0 {
		t.Errorf("slice 0 given the whole table 30:\n%s", changesText(cs))
	}
}

// TestSortedIsInTextOrder: Sorted gives every flow of the table once, in
// LessText's order (the order of ovs-ofctl files and goldens).
func TestSortedIsInTextOrder(t *testing.T) {
	w := newWorld(t)
	for i := range 40 {
		w.addHost(fmt.Sprintf("h%d", i), fmt.Sprintf("10.0.0.%d", 10+i), fmt.Sprintf("02:00:00:00:02:%02x", i), uint32(1+i))
	}
	d := w.e.Desired(1)
	got := Sorted(d)
	if len(got) != len(d) {
		t.Fatalf("%d flows sorted, the table has %d", len(got), len(d))
	}
	for i := 1; i < len(got); i++ {
		if !LessText(&got[i-1], &got[i]) {
			t.Fatalf("flow %d is not before flow %d in text order:\n%s\n%s", i-1, i, got[i-1].String(), got[i].String())
		}
	}
}
