package engine

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// switchModel is a flow table as a switch keeps it: flow-mods applied in
// order (an install replaces the entry with its key, a strict delete
// removes it).
type switchModel map[openflow.Key]string

func (m switchModel) apply(t *testing.T, mods openflow.FlowMods) {
	t.Helper()
	var fm openflow.FlowMod
	for i := range mods.Len() {
		if err := mods.At(i, &fm); err != nil {
			t.Fatal(err)
		}
		if fm.Command == openflow.FlowDeleteStrict {
			delete(m, fm.Flow.Key())
		} else {
			m[fm.Flow.Key()] = fm.Flow.String()
		}
	}
}

func (m switchModel) differs(o switchModel) string {
	for k, f := range m {
		if o[k] != f {
			return fmt.Sprintf("%s\n  vs %s", f, o[k])
		}
	}
	for k, f := range o {
		if _, ok := m[k]; !ok {
			return "missing " + f
		}
	}
	return ""
}

func hostNamed(i int) topology.Op {
	return hostOp(fmt.Sprintf("h%d", i), fmt.Sprintf("10.0.0.%d", 10+i), fmt.Sprintf("02:00:00:00:01:%02x", i))
}

// TestUpdatePartsLeavesUpdatesTable: a switch that applies UpdateParts'
// parts in order ends with the table UpdatePacked's changes leave — also
// when one batch deletes a host and gives its address, MAC and port to a
// new host computed in a later part, and when a cascade removes most
// hosts in parts while another host takes a removed one's address — and
// no part deletes after the part of the owners that had flows and stay.
// The parts of new and of removed owners grow from 64 owners.
func TestUpdatePartsLeavesUpdatesTable(t *testing.T) {
	whole, parted := newWorld(t), newWorld(t)
	onWhole, onParted := switchModel{}, switchModel{}
	for _, w := range []*world{whole, parted} {
		for i := range 240 {
			w.ports[fmt.Sprintf("h%d", i)] = pipeline.Attachment{DPID: 1, OFPort: uint32(1 + i)}
		}
		w.ports["late"] = pipeline.Attachment{DPID: 1, OFPort: 1}
	}
	// step applies ops to both worlds; the parted one's first deleting
	// parts may delete, the others must not.
	step := func(what string, wantParts, deleting int, ops ...topology.Op) {
		t.Helper()
		whole.applyWith(ops, func(snap *pipeline.Snapshot, owners []pipeline.Owner) {
			if cs := whole.e.UpdatePacked(snap, owners)[1]; cs != nil {
				onWhole.apply(t, cs)
			}
		})
		parts, ended := 0, false
		parted.applyOps(ops, func(snap *pipeline.Snapshot, owners []pipeline.Owner, applied []topology.Op) {
			removed := map[pipeline.Owner]bool{}
			for _, op := range applied {
				if o, ok := pipeline.OwnerOf(op.Obj); ok && op.Kind == topology.OpDelete {
					removed[o] = true
				}
			}
			parted.e.UpdateParts(snap, owners, removed, func(part map[uint64]*PackedChanges, more bool) {
				if ended {
					t.Fatalf("%s: a part after one that said no more", what)
				}
				ended = !more
				parts++
				cs := part[1]
				if _, dels := cs.Counts(); dels > 0 && parts > deleting {
					t.Fatalf("%s: part %d deletes %d flows (only the first %d may)", what, parts, dels, deleting)
				}
				onParted.apply(t, cs)
			})
		})
		if parts != wantParts || parts > 0 && !ended {
			t.Errorf("%s: %d parts, want %d; the last said no more: %v", what, parts, wantParts, ended)
		}
		if d := onWhole.differs(onParted); d != "" {
			t.Fatalf("%s: the parts leave a different table than the whole batch: %s", what, d)
		}
		if len(onParted) != parted.e.Size() {
			t.Fatalf("%s: the parts leave %d flows, the engine desires %d", what, len(onParted), parted.e.Size())
		}
	}
	var ops []topology.Op
	for i := range 200 {
		ops = append(ops, hostNamed(i))
	}
	// 200 new hosts: 64, 128, then 8 (the vSwitch's own flows are already
	// installed; nothing of it changes).
	step("200 new hosts", 3, 0, ops...)
	// h0 goes; "late", computed in the last part, takes its address, MAC
	// and port: part 1 deletes h0's flows, a later part installs the same
	// keys.
	ops = []topology.Op{topology.Delete(&topology.Host{VPC: "v", Name: "h0"}, false)}
	for i := 200; i < 240; i++ {
		ops = append(ops, hostNamed(i))
	}
	ops = append(ops, topology.Create(&topology.Host{VPC: "v", Name: "late", VSwitch: "w", IP: netip.MustParseAddr("10.0.0.10"),
		MAC: mac("02:00:00:00:01:00"), Bridge: "br", Interface: "late"}))
	step("a host's address to a new host", 2, 1, ops...)
	step("nothing changes", 0, 0)
	// 200 of the 240 hosts go (in parts of 64 and 128, then 8) while
	// "late" moves to h1's port (its interface is renamed; the test's
	// ports are by host name), whose flows by in_port alone the parts
	// before it delete; then one part for late.
	ops = ops[:0]
	for i := 1; i <= 200; i++ {
		ops = append(ops, topology.Delete(&topology.Host{VPC: "v", Name: fmt.Sprintf("h%d", i)}, false))
	}
	ops = append(ops, topology.Update(&topology.Host{VPC: "v", Name: "late", VSwitch: "w", IP: netip.MustParseAddr("10.0.0.10"),
		MAC: mac("02:00:00:00:01:00"), Bridge: "br", Interface: "late-on-2"}))
	for _, w := range []*world{whole, parted} {
		w.ports["late"] = w.ports["h1"]
	}
	step("most hosts go, one takes a removed one's port", 4, 4, ops...)
	ops = ops[:0]
	for i := 201; i < 240; i += 2 {
		ops = append(ops, topology.Delete(&topology.Host{VPC: "v", Name: fmt.Sprintf("h%d", i)}, false))
	}
	step("a few hosts go", 1, 1, ops...)
}

// TestPackedPartsCountTheirParts: a PackedParts (an openflow.PartQueue of
// the engine's packed changes, tested in openflow) reads as its parts in
// order and counts them together, once closed.
func TestPackedPartsCountTheirParts(t *testing.T) {
	w := newWorld(t)
	var parts []*PackedChanges
	for i := range 3 {
		w.ports[fmt.Sprintf("h%d", i)] = pipeline.Attachment{DPID: 1, OFPort: uint32(1 + i)}
		parts = append(parts, w.applyPacked(hostNamed(i)))
	}
	p := NewPackedParts()
	want := 0
	for _, c := range parts {
		p.Add(c)
		want += c.Len()
	}
	p.Close()
	if p.Parts() != 3 || p.Len() != want {
		t.Fatalf("%d parts of %d changes, want 3 of %d", p.Parts(), p.Len(), want)
	}
	var m, w2 openflow.FlowMod
	if err := p.At(parts[0].Len(), &m); err != nil {
		t.Fatal(err)
	}
	if err := parts[1].At(0, &w2); err != nil {
		t.Fatal(err)
	}
	if m.String() != w2.String() {
		t.Fatalf("At(%d) = %s, want part 1's first %s", parts[0].Len(), m.String(), w2.String())
	}
	if adds, dels := p.Counts(); adds != want || dels != 0 {
		t.Fatalf("Counts %d, %d, want %d, 0", adds, dels, want)
	}
}
