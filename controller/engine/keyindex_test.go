package engine

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/openflow"
)

// TestKeyIndexChainsCollisions: entries under one hash are all found, the
// last added first, and same decides among them.
func TestKeyIndexChainsCollisions(t *testing.T) {
	var x keyIndex
	x.reset(4)
	for i, h := range []uint64{7, 7, 9, 7} {
		x.add(h, i)
	}
	for _, c := range []struct {
		h    uint64
		want []int // entries same says yes to
		got  int
	}{{7, []int{0, 1, 3}, 3}, {7, []int{0, 1}, 1}, {7, []int{0}, 0}, {7, []int{2}, -1}, {9, []int{2}, 2}, {8, []int{0, 1, 2, 3}, -1}} {
		if got := x.find(c.h, func(i int) bool { return slices.Contains(c.want, i) }); got != c.got {
			t.Errorf("find(%d, %v) = %d, want %d", c.h, c.want, got, c.got)
		}
	}
	x.reset(1)
	if got := x.find(7, func(int) bool { return true }); got != -1 {
		t.Errorf("after reset find = %d", got)
	}
}

// TestDedupeIsByKey: an owner's flows deduplicated through the hash index
// (more than 32) are exactly those a map of openflow.Flow.Key keeps — the
// last of each datapath and key, in order — with each one's hash, across
// owners of many sizes computed one after another on one engine (whose
// scratch index is reused).
func TestDedupeIsByKey(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	e := New(pipeline.Default())
	for round := 0; round < 300; round++ {
		n := 1 + rng.IntN(300)
		fs := make([]pipeline.PlacedFlow, n)
		for i := range fs {
			m := openflow.NewMatch().With(openflow.FieldInPort, uint64(rng.IntN(4)))
			if rng.IntN(2) == 0 {
				m = m.WithMasked(openflow.FieldIPv4Dst, uint64(rng.IntN(3))<<8, 0xffffff00)
			}
			fs[i] = pipeline.PlacedFlow{DPID: uint64(1 + rng.IntN(2)), Flow: openflow.Flow{
				Table: uint8(rng.IntN(2)), Priority: uint16(100 + rng.IntN(2)), Match: m, Cookie: uint64(i)}}
		}
		type slotKey struct {
			dpid uint64
			key  openflow.Key
		}
		last := map[slotKey]int{}
		for i := range fs {
			last[slotKey{fs[i].DPID, fs[i].Flow.Key()}] = i
		}
		var want []uint64 // the cookies (indexes) kept
		for i := range fs {
			if last[slotKey{fs[i].DPID, fs[i].Flow.Key()}] == i {
				want = append(want, uint64(i))
			}
		}
		got, hashes := e.dedupe(slices.Clone(fs))
		var cookies []uint64
		for k := range got {
			cookies = append(cookies, got[k].Flow.Cookie)
			if hashes != nil && hashes[k] != slotHash(got[k].DPID, &got[k].Flow) {
				t.Fatalf("round %d: hash of kept flow %d is not its slot's", round, k)
			}
		}
		if !slices.Equal(cookies, want) {
			t.Fatalf("round %d (%d flows): kept %v, want %v", round, n, cookies, want)
		}
		if (hashes != nil) != (n > 32) || (hashes != nil && len(hashes) != len(got)) {
			t.Fatalf("round %d (%d flows): %d hashes for %d flows", round, n, len(hashes), len(got))
		}
	}
}
