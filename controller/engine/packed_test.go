package engine

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// modText is a flow-mod as a line: command and flow in ovs-ofctl syntax.
func modText(m *openflow.FlowMod) string { return m.String() }

// applyPacked stores ops and returns the packed changes for dpid 1, as
// the controller computes them.
func (w *world) applyPacked(ops ...topology.Op) *PackedChanges {
	w.t.Helper()
	var got map[uint64]*PackedChanges
	w.applyWith(ops, func(snap *pipeline.Snapshot, owners []pipeline.Owner) { got = w.e.UpdatePacked(snap, owners) })
	return got[1]
}

func hostOp(name, ip, m string) topology.Op {
	return topology.Create(&topology.Host{VPC: "v", Name: name, VSwitch: "w", IP: netip.MustParseAddr(ip), MAC: mac(m), Bridge: "br", Interface: name})
}

// TestPackedChangesReadBack: a packed batch reads back, in order and out
// of order (an error names a flow-mod the switch refused), as the same
// flow-mods each time, also after the engine went on (new shapes
// interned), and Changes does not move the reader.
func TestPackedChangesReadBack(t *testing.T) {
	w := newWorld(t)
	w.ports["a"] = pipeline.Attachment{DPID: 1, OFPort: 1}
	w.ports["b"] = pipeline.Attachment{DPID: 1, OFPort: 2}
	w.applyPacked(hostOp("a", "10.0.0.5", "02:00:00:00:00:05"))
	p := w.applyPacked(hostOp("b", "10.0.0.6", "02:00:00:00:00:06"),
		topology.Delete(&topology.Host{VPC: "v", Name: "a"}, false))
	adds, dels := p.Counts()
	if adds == 0 || dels == 0 || adds+dels != p.Len() {
		t.Fatalf("want installs and deletes, got %d and %d of %d", adds, dels, p.Len())
	}
	var m openflow.FlowMod
	read := func(i int) string {
		t.Helper()
		if err := p.At(i, &m); err != nil {
			t.Fatalf("At(%d): %v", i, err)
		}
		return modText(&m)
	}
	var first []string
	for i := range p.Len() {
		first = append(first, read(i))
		if (i < dels) != (m.Command == openflow.FlowDeleteStrict) {
			t.Fatalf("change %d (%s): deletes must come first (%d of them)", i, first[i], dels)
		}
	}
	cs := p.Changes()
	for _, i := range []int{p.Len() - 1, 0, p.Len() / 2, p.Len() / 2} {
		if got := read(i); got != first[i] {
			t.Fatalf("change %d read out of order as\n  %s\nin order\n  %s", i, got, first[i])
		}
		if want := ModOf(&cs[i]); modText(&want) != first[i] {
			t.Fatalf("Changes()[%d] is %s, want %s", i, modText(&want), first[i])
		}
	}
	if err := p.At(p.Len(), &m); err == nil {
		t.Fatal("At past the end: no error")
	}
	w.ports["c"] = pipeline.Attachment{DPID: 1, OFPort: 3}
	w.applyPacked(hostOp("c", "10.0.0.7", "02:00:00:00:00:07"),
		topology.Create(&topology.Subnet{VPC: "v", Name: "r", CIDR: netip.MustParsePrefix("11.0.0.0/24"), Host: "c"}))
	if got := read(0); got != first[0] {
		t.Fatalf("after the engine went on, change 0 reads %s, want %s", got, first[0])
	}
}

// TestPackedChangesAreSmall: what waits in a switch's queue is a small
// fraction of the changes as Go values (issue 17's bulk-load peak).
func TestPackedChangesAreSmall(t *testing.T) {
	w := newWorld(t)
	var ops []topology.Op
	for i := range 50 {
		name := fmt.Sprintf("h%d", i)
		w.ports[name] = pipeline.Attachment{DPID: 1, OFPort: uint32(i + 1)}
		ops = append(ops, hostOp(name, fmt.Sprintf("10.0.0.%d", 10+i), fmt.Sprintf("02:00:00:00:01:%02x", i)))
	}
	p := w.applyPacked(ops...)
	t.Logf("%d changes packed into %d bytes", p.Len(), len(p.buf))
	if p.Len() < 50 {
		t.Fatalf("50 hosts: %d changes", p.Len())
	}
	if per := len(p.buf) / p.Len(); per > 40 {
		t.Fatalf("%d changes packed into %d bytes, %d a change; want at most 40", p.Len(), len(p.buf), per)
	}
}

// TestUpdatePackedIsUpdate: the changes packed as they are computed are
// Update's, deletes first, each part by table and priority (within those,
// in the order computed).
func TestUpdatePackedIsUpdate(t *testing.T) {
	lists, packed := newWorld(t), newWorld(t)
	step := func(what string, ops ...topology.Op) {
		t.Helper()
		want := lists.apply(ops...)
		got := packed.applyPacked(ops...)
		if len(want) == 0 {
			if got != nil {
				t.Fatalf("%s: Update changes nothing, UpdatePacked %d changes", what, got.Len())
			}
			return
		}
		cs := got.Changes()
		dels := 0
		for dels < len(cs) && cs[dels].Delete {
			dels++
		}
		for i, c := range cs {
			if i >= dels && c.Delete {
				t.Fatalf("%s: a delete after an install:\n%s", what, changesText(cs))
			}
			// Within deletes and within installs: by table, then
			// priority, high first (as a sorted list is sent).
			if i > 0 && i != dels {
				p := cs[i-1].Flow
				if p.Table > c.Flow.Table || p.Table == c.Flow.Table && p.Priority < c.Flow.Priority {
					t.Fatalf("%s: change %d (%s) is out of table and priority order:\n%s", what, i, c.Flow.String(), changesText(cs))
				}
			}
		}
		OrderChanges(cs)
		if changesText(cs) != changesText(want) {
			t.Fatalf("%s: UpdatePacked\n%s\nUpdate\n%s", what, changesText(cs), changesText(want))
		}
		if a, d := got.Counts(); a+d != len(want) || d != dels {
			t.Fatalf("%s: counts %d installs, %d deletes for %d changes, %d deletes", what, a, d, len(want), dels)
		}
	}
	for _, w := range []*world{lists, packed} {
		w.ports["a"] = pipeline.Attachment{DPID: 1, OFPort: 1}
		w.ports["b"] = pipeline.Attachment{DPID: 1, OFPort: 2}
	}
	step("two hosts", hostOp("a", "10.0.0.5", "02:00:00:00:00:05"), hostOp("b", "10.0.0.6", "02:00:00:00:00:06"))
	step("a route entry", topology.Create(&topology.Subnet{VPC: "v", Name: "r", CIDR: netip.MustParsePrefix("11.0.0.0/24"), Host: "a"}))
	step("the entry moves", topology.Update(&topology.Subnet{VPC: "v", Name: "r", Host: "b"}))
	step("nothing changes", topology.Update(&topology.Subnet{VPC: "v", Name: "r", Host: "b"}))
	step("a host goes", topology.Delete(&topology.Subnet{VPC: "v", Name: "r"}, false), topology.Delete(&topology.Host{VPC: "v", Name: "a"}, false))
}
