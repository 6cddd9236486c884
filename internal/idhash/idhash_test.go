package idhash

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
)

// TestTableIsAMultiset: random adds and removes, with few distinct hashes
// (pairs share hashes and collide all the time) and with many, agree with
// a map of pairs after every step; Find tells pairs of one hash apart by
// the caller's check; the table grows and shrinks.
func TestTableIsAMultiset(t *testing.T) {
	for _, hashes := range []int{3, 1000, 1 << 30} {
		r := rand.New(rand.NewPCG(uint64(hashes), 7))
		var tb Table
		want := map[slot]bool{}
		maxSlots := 0
		for step := range 40000 {
			// Spread like real hashes (a few values each shared by many pairs).
			h := uint32(r.IntN(hashes)) * 0x9e3779b1
			s := slot{h, uint32(r.IntN(min(2000, hashes*20))) + 1}
			grow := step < 20000
			if r.IntN(3) == 0 || (grow && r.IntN(2) == 0) {
				tb.Add(s.hash, s.id)
				want[s] = true
			} else {
				if got := tb.Remove(s.hash, s.id); got != want[s] {
					t.Fatalf("hashes %d step %d: Remove(%v) = %v, want %v", hashes, step, s, got, want[s])
				}
				delete(want, s)
			}
			if tb.Len() != len(want) {
				t.Fatalf("hashes %d step %d: Len %d, want %d", hashes, step, tb.Len(), len(want))
			}
			maxSlots = max(maxSlots, tb.Slots())
			if step%97 == 0 {
				for w := range want {
					if id, ok := tb.Find(w.hash, func(id uint32) bool { return id == w.id }); !ok || id != w.id {
						t.Fatalf("hashes %d step %d: %v not found", hashes, step, w)
					}
				}
				n := 0
				tb.All(func(h, id uint32) bool {
					if !want[slot{h, id}] {
						t.Fatalf("hashes %d step %d: All yields %d/%d, not in the set", hashes, step, h, id)
					}
					n++
					return true
				})
				if n != len(want) {
					t.Fatalf("hashes %d step %d: All yields %d pairs, want %d", hashes, step, n, len(want))
				}
			}
		}
		if _, ok := tb.Find(uint32(hashes)+1, func(uint32) bool { return true }); ok {
			t.Fatal("found a hash never added")
		}
		for w := range want {
			tb.Remove(w.hash, w.id)
		}
		if tb.Len() != 0 || tb.Slots() > minSlots*2 || hashes > 3 && maxSlots < 1024 {
			t.Fatalf("hashes %d: emptied table holds %d pairs in %d slots (at most %d)", hashes, tb.Len(), tb.Slots(), maxSlots)
		}
	}
}

// TestZeroIDPanics: 0 marks an empty slot.
func TestZeroIDPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Add of ID 0 did not panic")
		}
	}()
	var tb Table
	tb.Add(1, 0)
}

// BenchmarkEntryBytes reports the heap a Table and a map[uint64]uint32
// (what the store used) take per entry, at sizes on both sides of a
// growth.
func BenchmarkEntryBytes(b *testing.B) {
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	for _, n := range []uint32{50_000, 90_000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				h0 := heap()
				var tb Table
				for i := range n {
					tb.Add(Hash32(uint64(i)*0x9e3779b97f4a7c15), i+1)
				}
				h1 := heap()
				m := map[uint64]uint32{}
				for i := range n {
					m[uint64(i)*0x9e3779b97f4a7c15] = i + 1
				}
				h2 := heap()
				b.ReportMetric(float64(h1-h0)/float64(n), "table-B/entry")
				b.ReportMetric(float64(h2-h1)/float64(n), "map-B/entry")
				runtime.KeepAlive(m)
				runtime.KeepAlive(&tb)
			}
		})
	}
}
