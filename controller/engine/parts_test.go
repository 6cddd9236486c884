package engine

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

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
// new host computed in a later part — and only the first part deletes.
// The parts grow from 64 owners.
func TestUpdatePartsLeavesUpdatesTable(t *testing.T) {
	whole, parted := newWorld(t), newWorld(t)
	onWhole, onParted := switchModel{}, switchModel{}
	for _, w := range []*world{whole, parted} {
		for i := range 240 {
			w.ports[fmt.Sprintf("h%d", i)] = pipeline.Attachment{DPID: 1, OFPort: uint32(1 + i)}
		}
		w.ports["late"] = pipeline.Attachment{DPID: 1, OFPort: 1}
	}
	step := func(what string, wantParts int, ops ...topology.Op) {
		t.Helper()
		whole.applyWith(ops, func(snap *pipeline.Snapshot, owners []pipeline.Owner) {
			if cs := whole.e.UpdatePacked(snap, owners)[1]; cs != nil {
				onWhole.apply(t, cs)
			}
		})
		parts, ended := 0, false
		parted.applyWith(ops, func(snap *pipeline.Snapshot, owners []pipeline.Owner) {
			parted.e.UpdateParts(snap, owners, func(part map[uint64]*PackedChanges, more bool) {
				if ended {
					t.Fatalf("%s: a part after one that said no more", what)
				}
				ended = !more
				parts++
				cs := part[1]
				if _, dels := cs.Counts(); dels > 0 && parts > 1 {
					t.Fatalf("%s: part %d deletes %d flows", what, parts, dels)
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
	step("200 new hosts", 3, ops...)
	// h0 goes; "late", computed in the last part, takes its address, MAC
	// and port: part 1 deletes h0's flows, a later part installs the same
	// keys.
	ops = []topology.Op{topology.Delete(&topology.Host{VPC: "v", Name: "h0"}, false)}
	for i := 200; i < 240; i++ {
		ops = append(ops, hostNamed(i))
	}
	ops = append(ops, topology.Create(&topology.Host{VPC: "v", Name: "late", VSwitch: "w", IP: netip.MustParseAddr("10.0.0.10"),
		MAC: mac("02:00:00:00:01:00"), Bridge: "br", Interface: "late"}))
	step("a host's address to a new host", 2, ops...)
	step("nothing changes", 0)
	ops = ops[:0]
	for i := 1; i < 240; i += 2 {
		ops = append(ops, topology.Delete(&topology.Host{VPC: "v", Name: fmt.Sprintf("h%d", i)}, false))
	}
	step("half the hosts go", 1, ops...)
}

// TestPackedPartsReadAsTheirSum: a PackedParts hands each part out as it
// is added, waits for the next (or for ctx), and read as a FlowMods is
// its parts in order, counted together, once closed.
func TestPackedPartsReadAsTheirSum(t *testing.T) {
	w := newWorld(t)
	var parts []*PackedChanges
	for i := range 3 {
		w.ports[fmt.Sprintf("h%d", i)] = pipeline.Attachment{DPID: 1, OFPort: uint32(1 + i)}
		parts = append(parts, w.applyPacked(hostNamed(i)))
	}
	p := NewPackedParts()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := p.Part(ctx, 0); err == nil {
		t.Fatal("Part returned before a part was added")
	}
	var wg sync.WaitGroup
	got := make(chan int)
	wg.Add(1)
	go func() {
		defer wg.Done()
		got <- p.Len() // waits for Close
	}()
	p.Add(parts[0])
	p.Add(parts[1])
	if c, ok, err := p.Part(context.Background(), 1); err != nil || !ok || c != parts[1] {
		t.Fatalf("Part(1) = %v, %v, %v", c, ok, err)
	}
	select {
	case n := <-got:
		t.Fatalf("Len returned %d before Close", n)
	case <-time.After(20 * time.Millisecond):
	}
	p.Add(parts[2])
	p.Close()
	want := 0
	for _, c := range parts {
		want += c.Len()
	}
	if n := <-got; n != want {
		t.Fatalf("Len %d, want %d", n, want)
	}
	wg.Wait()
	if _, ok, err := p.Part(context.Background(), 3); ok || err != nil {
		t.Fatalf("Part(3) after Close: ok %v, %v", ok, err)
	}
	// Read out of order, then in order: each the right part's change.
	var m, w2 openflow.FlowMod
	for _, i := range []int{want - 1, 0, parts[0].Len(), 1} {
		if err := p.At(i, &m); err != nil {
			t.Fatal(err)
		}
		k, j := 0, i
		for j >= parts[k].Len() {
			j -= parts[k].Len()
			k++
		}
		if err := parts[k].At(j, &w2); err != nil {
			t.Fatal(err)
		}
		if m.String() != w2.String() {
			t.Fatalf("At(%d) = %s, want part %d's #%d %s", i, m.String(), k, j, w2.String())
		}
	}
	if err := p.At(want, &m); err == nil {
		t.Fatal("At past the end read something")
	}
	adds, dels := p.Counts()
	if adds != want || dels != 0 {
		t.Fatalf("Counts %d, %d, want %d, 0", adds, dels, want)
	}

	// Aborted: the parts so far, then the error, not the end.
	a := NewPackedParts()
	a.Add(parts[0])
	a.Abort(errors.New("boom"))
	if c, ok, err := a.Part(context.Background(), 0); !ok || err != nil || c != parts[0] {
		t.Fatalf("Part(0) of an aborted PackedParts: %v, %v", ok, err)
	}
	if _, ok, err := a.Part(context.Background(), 1); ok || err == nil {
		t.Fatalf("Part(1) after Abort: ok %v, err %v; want the abort's error", ok, err)
	}
}
