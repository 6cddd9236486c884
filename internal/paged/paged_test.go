package paged

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestTableIsAMap: a Table holds exactly what a map would, whatever the
// order of sets and deletes, and drops a page with its last value.
func TestTableIsAMap(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var tb Table[string]
	want := map[uint32]string{}
	for i := range 20000 {
		id := uint32(r.IntN(5000))
		if i%7 == 0 {
			id = r.Uint32()
		}
		switch r.IntN(4) {
		case 0:
			tb.Delete(id)
			delete(want, id)
		case 1:
			tb.Set(id, "") // the zero value deletes
			delete(want, id)
		default:
			v := string(rune('a' + i%26))
			tb.Set(id, v)
			want[id] = v
		}
		if tb.Len() != len(want) {
			t.Fatalf("step %d: Len %d, want %d", i, tb.Len(), len(want))
		}
	}
	for id, v := range want {
		if got, ok := tb.Get(id); !ok || got != v {
			t.Fatalf("Get(%d) = %q, %v, want %q", id, got, ok, v)
		}
	}
	n := 0
	for id, v := range tb.All() {
		if want[id] != v {
			t.Fatalf("All yielded %d=%q, want %q", id, v, want[id])
		}
		n++
	}
	if n != len(want) {
		t.Fatalf("All yielded %d values, want %d", n, len(want))
	}
	if _, ok := tb.Get(4_000_000_000); ok {
		t.Fatal("Get of an ID never set found something")
	}
	for id := range want {
		tb.Delete(id)
	}
	if tb.Len() != 0 || tb.Pages() != 0 {
		t.Fatalf("after deleting everything: Len %d, %d pages", tb.Len(), tb.Pages())
	}
}

// TestKeyedKeepsKeysApart: the same ID under two keys is two values, and
// a key's table goes with its last value.
func TestKeyedKeepsKeysApart(t *testing.T) {
	var k Keyed[uint64, uint32]
	k.Set(1, 7, 70)
	k.Set(2, 7, 71)
	if v, ok := k.Get(1, 7); !ok || v != 70 {
		t.Fatalf("Get(1, 7) = %d, %v", v, ok)
	}
	if v, ok := k.Get(2, 7); !ok || v != 71 {
		t.Fatalf("Get(2, 7) = %d, %v", v, ok)
	}
	if k.Len() != 2 {
		t.Fatalf("Len %d, want 2", k.Len())
	}
	k.Delete(1, 7)
	k.Set(2, 7, 0) // the zero value deletes
	if _, ok := k.Get(2, 7); ok || k.Len() != 0 {
		t.Fatalf("after deleting both: Len %d", k.Len())
	}
	n := 0
	for range k.Tables() {
		n++
	}
	if n != 0 {
		t.Fatalf("%d tables left", n)
	}
}

// TestKeyedAllYieldsEveryValue: All calls back with each key, ID and
// value once, and stops when told.
func TestKeyedAllYieldsEveryValue(t *testing.T) {
	var k Keyed[uint64, uint32]
	want := map[[2]uint64]uint32{}
	for key := range uint64(3) {
		for id := uint32(1); id < 600; id += 7 {
			k.Set(key, id, id*10+uint32(key))
			want[[2]uint64{key, uint64(id)}] = id*10 + uint32(key)
		}
	}
	got := map[[2]uint64]uint32{}
	k.All(func(key uint64, id, v uint32) bool {
		p := [2]uint64{key, uint64(id)}
		if _, dup := got[p]; dup {
			t.Fatalf("%v yielded twice", p)
		}
		got[p] = v
		return true
	})
	if len(got) != len(want) {
		t.Fatalf("All yielded %d values, want %d", len(got), len(want))
	}
	for p, v := range want {
		if got[p] != v {
			t.Fatalf("%v = %d, want %d", p, got[p], v)
		}
	}
	n := 0
	k.All(func(uint64, uint32, uint32) bool { n++; return n < 5 })
	if n != 5 {
		t.Fatalf("All went on after false: %d calls", n)
	}
}

// TestMaskedIsAFilteredAll: Masked yields exactly what All yields with
// the ID's bits under the mask equal to the value's, for masks of low
// bits (the stepping path) and others, across page boundaries.
func TestMaskedIsAFilteredAll(t *testing.T) {
	var tb Table[string]
	for id := uint32(1); id < 3*PageSize+40; id++ {
		if id%7 != 3 { // holes
			tb.Set(id, fmt.Sprint(id))
		}
	}
	tb.Set(1<<20+5, "far")
	for _, mask := range []uint32{0, 1, 3, 15, 255, 0xffff, 6, 0x11} {
		for value := uint32(0); value <= min(mask, 20); value++ {
			want := map[uint32]string{}
			for id, v := range tb.All() {
				if id&mask == value&mask {
					want[id] = v
				}
			}
			got := map[uint32]string{}
			for id, v := range tb.Masked(mask, value) {
				if _, dup := got[id]; dup {
					t.Fatalf("mask %#x value %d: id %d twice", mask, value, id)
				}
				got[id] = v
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("mask %#x value %d: %d ids, want %d", mask, value, len(got), len(want))
			}
		}
	}
}
