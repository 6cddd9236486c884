package engine

import (
	"fmt"
	"testing"

	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// modText is a flow-mod as a line: command and flow in ovs-ofctl syntax.
func modText(m *openflow.FlowMod) string { return m.String() }

// TestPackedChangesReadBackAsTheirMods: a batch packed for a switch's
// queue reads back, in order and out of order, as exactly the flow-mods
// of its changes (installs as adds, deletes as strict deletes), and
// counts both.
func TestPackedChangesReadBackAsTheirMods(t *testing.T) {
	w := newWorld(t)
	w.addHost("a", "10.0.0.5", "02:00:00:00:00:05", 1)
	var cs []FlowChange
	cs = append(cs, w.addHost("b", "10.0.0.6", "02:00:00:00:00:06", 2)...)
	cs = append(cs, w.apply(topology.Delete(&topology.Host{VPC: "v", Name: "a"}, false))...)
	adds, dels := 0, 0
	for i := range cs {
		if cs[i].Delete {
			dels++
		} else {
			adds++
		}
	}
	if adds == 0 || dels == 0 {
		t.Fatalf("want installs and deletes to pack, got %d and %d", adds, dels)
	}
	p := w.e.Pack(cs)
	if p.Len() != len(cs) {
		t.Fatalf("Len %d, want %d", p.Len(), len(cs))
	}
	if a, d := p.Counts(); a != adds || d != dels {
		t.Fatalf("Counts %d, %d; want %d, %d", a, d, adds, dels)
	}
	var m openflow.FlowMod
	read := func(i int) string {
		t.Helper()
		if err := p.At(i, &m); err != nil {
			t.Fatalf("At(%d): %v", i, err)
		}
		return modText(&m)
	}
	for i := range cs {
		want := ModOf(&cs[i])
		if got := read(i); got != modText(&want) {
			t.Fatalf("change %d reads back as\n  %s\nwant\n  %s", i, got, modText(&want))
		}
	}
	// Out of order (an error names a flow-mod the switch refused).
	for _, i := range []int{len(cs) - 1, 0, len(cs) / 2, len(cs) / 2} {
		want := ModOf(&cs[i])
		if got := read(i); got != modText(&want) {
			t.Fatalf("change %d read out of order as\n  %s\nwant\n  %s", i, got, modText(&want))
		}
	}
	if err := p.At(len(cs), &m); err == nil {
		t.Fatal("At past the end: no error")
	}
	// The engine goes on (new shapes are interned) while a packed batch
	// waits: it still reads the same.
	w.addHost("c", "10.0.0.7", "02:00:00:00:00:07", 3)
	want := ModOf(&cs[0])
	if got := read(0); got != modText(&want) {
		t.Fatalf("after the engine changed, change 0 reads %s, want %s", got, modText(&want))
	}
}

// TestPackedChangesAreSmall: what waits in a switch's queue is a small
// fraction of the changes as Go values (issue 17's bulk-load peak).
func TestPackedChangesAreSmall(t *testing.T) {
	w := newWorld(t)
	var cs []FlowChange
	for i := range 50 {
		cs = append(cs, w.addHost(fmt.Sprintf("h%d", i), fmt.Sprintf("10.0.0.%d", 10+i), fmt.Sprintf("02:00:00:00:01:%02x", i), uint32(i+1))...)
	}
	p := w.e.Pack(cs)
	t.Logf("%d changes packed into %d bytes", len(cs), len(p.buf))
	if per := len(p.buf) / len(cs); per > 40 {
		t.Fatalf("%d changes packed into %d bytes, %d a change; want at most 40", len(cs), len(p.buf), per)
	}
}
