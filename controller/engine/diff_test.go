package engine

import (
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
