package topology

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestRefListIsASet: a refList (slice while short, sparse bitset when it
// grows) holds exactly the IDs added and not removed, whatever the order,
// and reports empty when the last goes.
func TestRefListIsASet(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var l refList
	want := map[uint32]bool{}
	for i := range 20000 {
		id := uint32(r.IntN(3000))
		if i%3 == 2 {
			id = uint32(r.Uint32())
		}
		if r.IntN(3) == 0 {
			empty := l.remove(id)
			delete(want, id)
			if empty != (len(want) == 0) {
				t.Fatalf("step %d: remove says empty=%v with %d left", i, empty, len(want))
			}
		} else {
			l.add(id)
			want[id] = true
		}
		if l.len() != len(want) {
			t.Fatalf("step %d: len %d, want %d", i, l.len(), len(want))
		}
	}
	got, exp := listed(&l), sortedIDs(want)
	if !slices.Equal(got, exp) {
		t.Fatalf("each gave %d IDs, want %d", len(got), len(exp))
	}
	n := 0
	l.each(func(refEntry) bool { n++; return n < 5 })
	if n != 5 {
		t.Fatalf("each went on after false: %d calls", n)
	}
}

// TestRefListSmallSets: lists that go between none, one (held inline) and
// a few entries, ID 0 included, stay exact sets.
func TestRefListSmallSets(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for round := range 200 {
		var l refList
		want := map[uint32]bool{}
		for i := range 50 {
			id := uint32(r.IntN(4))
			if r.IntN(2) == 0 {
				if empty := l.remove(id); empty != (len(want) == 0 || len(want) == 1 && want[id]) {
					t.Fatalf("round %d step %d: remove(%d) says empty=%v with %v", round, i, id, empty, want)
				}
				delete(want, id)
			} else {
				l.add(id)
				want[id] = true
			}
			got, exp := listed(&l), sortedIDs(want)
			if l.len() != len(want) || !slices.Equal(got, exp) {
				t.Fatalf("round %d step %d: list %v (len %d), want %v", round, i, got, l.len(), exp)
			}
		}
	}
}

// listed is what l.each yields, sorted.
func listed(l *refList) []uint32 {
	var got []uint32
	l.each(func(e refEntry) bool { got = append(got, e); return true })
	slices.Sort(got)
	return got
}

// sortedIDs is the set's IDs, sorted.
func sortedIDs(set map[uint32]bool) []uint32 {
	var out []uint32
	for id := range set {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}
