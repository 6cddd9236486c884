package openflow

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestPartQueueReadsAsItsParts: a PartQueue hands each part out as it is
// added, waits for the next (or for ctx), and read as a FlowMods is its
// parts in order, once closed; an aborted one ends with the abort's
// error, not with "no more".
func TestPartQueueReadsAsItsParts(t *testing.T) {
	part := func(first, n int) ModList {
		var l ModList
		for i := first; i < first+n; i++ {
			l = append(l, FlowMod{Command: FlowAdd, Flow: Flow{Table: 10, Priority: uint16(i), Match: NewMatch().InPort(uint32(i))}})
		}
		return l
	}
	parts := []ModList{part(0, 3), part(3, 1), part(4, 5)}
	q := NewPartQueue[ModList]()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := q.Part(ctx, 0); err == nil {
		t.Fatal("Part returned before a part was added")
	}
	got := make(chan int, 1)
	go func() { got <- q.Len() }() // waits for Close
	q.Add(parts[0])
	q.Add(parts[1])
	if p, ok, err := q.Part(context.Background(), 1); err != nil || !ok || p.Len() != 1 {
		t.Fatalf("Part(1) = %v, %v, %v", p, ok, err)
	}
	select {
	case n := <-got:
		t.Fatalf("Len returned %d before Close", n)
	case <-time.After(20 * time.Millisecond):
	}
	q.Add(parts[2])
	q.Close()
	q.Close() // harmless
	if n := <-got; n != 9 {
		t.Fatalf("Len %d, want 9", n)
	}
	if _, ok, err := q.Part(context.Background(), 3); ok || err != nil {
		t.Fatalf("Part(3) after Close: ok %v, %v", ok, err)
	}
	if all := q.All(); len(all) != 3 || all[2].Len() != 5 {
		t.Fatalf("All: %v", all)
	}
	// Read out of order, then in order: each the right part's mod (the
	// priority is the mod's index in the whole).
	var m FlowMod
	for _, i := range []int{8, 0, 3, 4, 1, 2, 3, 5, 6, 7} {
		if err := q.At(i, &m); err != nil {
			t.Fatal(err)
		}
		if int(m.Flow.Priority) != i {
			t.Fatalf("At(%d) read %s", i, m.String())
		}
	}
	for _, i := range []int{-1, 9} {
		if err := q.At(i, &m); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("#%d", i)) {
			t.Fatalf("At(%d): %v, want an out-of-range error naming it", i, err)
		}
	}

	// Aborted: the parts so far, then the error.
	a := NewPartQueue[ModList]()
	a.Add(parts[0])
	boom := errors.New("boom")
	a.Abort(boom)
	a.Close() // after Abort: still aborted
	if p, ok, err := a.Part(context.Background(), 0); !ok || err != nil || p.Len() != 3 {
		t.Fatalf("Part(0) of an aborted queue: %v, %v", ok, err)
	}
	if _, ok, err := a.Part(context.Background(), 1); ok || !errors.Is(err, boom) {
		t.Fatalf("Part(1) after Abort: ok %v, err %v; want the abort's error", ok, err)
	}
}
