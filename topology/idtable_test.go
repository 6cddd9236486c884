package topology

import (
	"math/rand/v2"
	"testing"
)

// TestIDTableIsAMap: the paged ID table holds exactly what a map would,
// and drops a page with its last object.
func TestIDTableIsAMap(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	tb := newIDTable()
	want := map[uint32]Object{}
	for i := range 20000 {
		id := uint32(r.IntN(5000))
		if i%7 == 0 {
			id = r.Uint32()
		}
		if r.IntN(3) == 0 {
			tb.del(id)
			delete(want, id)
		} else {
			o := &VPC{ID: id, Name: "v"}
			tb.set(id, o)
			want[id] = o
		}
		if tb.len() != len(want) {
			t.Fatalf("step %d: len %d, want %d", i, tb.len(), len(want))
		}
	}
	for id, o := range want {
		if got, ok := tb.get(id); !ok || got != o {
			t.Fatalf("get(%d) = %v, %v", id, got, ok)
		}
	}
	n := 0
	for o := range tb.all() {
		if want[o.ObjectID()] != o {
			t.Fatalf("all yielded %d, not held", o.ObjectID())
		}
		n++
	}
	if n != len(want) {
		t.Fatalf("all yielded %d objects, want %d", n, len(want))
	}
	for id := range want {
		tb.del(id)
	}
	if tb.len() != 0 || len(tb.pages) != 0 {
		t.Fatalf("after deleting everything: len %d, %d pages", tb.len(), len(tb.pages))
	}
}
