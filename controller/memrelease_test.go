package controller

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// TestMemReleaseOncePerQuietSpell: a run of batches looks at the heap
// once, after the run (not once per batch), and hands memory back only
// when the mapped heap outgrew the live heap of the last release by more
// than a sixteenth, and by at least minHeld (a smaller live heap of a later
// collection counts); a nil release (switches
// outside a controller) is a no-op.
func TestMemReleaseOncePerQuietSpell(t *testing.T) {
	var checks, frees atomic.Int32
	var mapped, live atomic.Uint64
	m := &memRelease{
		heap: func() (uint64, uint64) { checks.Add(1); return mapped.Load(), live.Load() },
		free: func() { frees.Add(1); mapped.Store(live.Load()) },
	}
	quiet := func(wantFrees int32) { t.Helper(); waitReleases(t, &frees, wantFrees) }
	live.Store(100 << 20)
	mapped.Store(300 << 20) // the first time: anything above minHeld
	for range 5 {
		m.after(1)
		time.Sleep(releaseDelay / 4)
	}
	quiet(1)
	if c := checks.Load(); c != 2 { // the look, and the reading after the release
		t.Fatalf("a run of 5 batches looked at the heap %d times, want once (and once after releasing)", c)
	}
	mapped.Store(105 << 20) // a twentieth above the last release's live heap
	m.after(1)
	quiet(1)
	mapped.Store(107 << 20) // more than a sixteenth
	m.after(1)
	quiet(2)
	live.Store(1 << 20) // objects deleted: a small heap, where minHeld counts
	mapped.Store(1 << 20)
	m.after(1)
	quiet(2)
	mapped.Store(1<<20 + minHeld)
	m.after(1)
	quiet(2)
	mapped.Store(1<<20 + minHeld + 1)
	m.after(1)
	quiet(3)
	var none *memRelease
	none.after(1) // must not panic
}

// waitReleases waits out a quiet spell and until frees counts want
// releases (or 10 s), and fails unless it is exactly want.
func waitReleases(t *testing.T, frees *atomic.Int32, want int32) {
	t.Helper()
	time.Sleep(2 * releaseDelay)
	deadline := time.Now().Add(10 * time.Second)
	for frees.Load() < want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if f := frees.Load(); f != want {
		t.Fatalf("%d releases, want %d", f, want)
	}
}

// TestHeapMappedSeesGarbage: the real reading counts garbage the
// collector has not taken yet, and a release takes it away.
func TestHeapMappedSeesGarbage(t *testing.T) {
	runtime.GC()
	var keep [][]byte
	for range 64 {
		keep = append(keep, make([]byte, 1<<20))
	}
	runtime.KeepAlive(keep)
	keep = nil // 64 MB of garbage
	before, _ := heapMapped()
	if before < 64<<20 {
		t.Fatalf("with 64 MB allocated the heap maps %d bytes", before)
	}
	newMemRelease(nil, nil).free()
	if after, _ := heapMapped(); after > before-48<<20 {
		t.Fatalf("after a release the heap still maps %d bytes (was %d)", after, before)
	}
}

// TestMemReleaseDoesNotHoldUpSwitches: while the collections run, a
// switch finishing a job (after) does not wait for them.
func TestMemReleaseDoesNotHoldUpSwitches(t *testing.T) {
	freeing, done := make(chan struct{}, 8), make(chan struct{})
	m := &memRelease{
		heap: func() (uint64, uint64) { return 100 << 20, 1 << 20 },
		free: func() {
			select {
			case freeing <- struct{}{}:
			default:
			}
			<-done
		},
	}
	defer close(done)
	m.after(1)
	select {
	case <-freeing:
	case <-time.After(10 * time.Second):
		t.Fatal("no release")
	}
	returned := make(chan struct{})
	go func() { m.after(1); close(returned) }()
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("after waited for the collections")
	}
}

// TestMemReleaseAfterABulkChange: once bulkFlowMods flow-mods were sent
// since the last release, a quiet moment hands the heap back even when
// it did not outgrow that release's live heap (which may have been read
// in the middle of the bulk change, its garbage counted as live); single
// changes do not.
func TestMemReleaseAfterABulkChange(t *testing.T) {
	var frees atomic.Int32
	m := &memRelease{
		// Read mid-change: the live heap as big as what is mapped.
		heap: func() (uint64, uint64) { return 100 << 20, 100 << 20 },
		free: func() { frees.Add(1) },
	}
	wait := func(want int32) { t.Helper(); waitReleases(t, &frees, want) }
	m.after(3) // the first look: base unknown, so due
	wait(1)
	for range 10 {
		m.after(3) // single changes: nothing outgrew the base
	}
	wait(1)
	m.after(bulkFlowMods) // a VPC's deletes: their garbage may hide behind the base
	wait(2)
	m.after(3)
	wait(2) // counted from the last release, not again
}

// TestMemReleaseWaitsLongerAfterSingleChanges: a heap that grew a little
// (more than a sixteenth, less than a quarter) through single changes is
// handed back only after a longer quiet (quietRelease), not in the first
// pause of releaseDelay, where its collection met the next changes; one
// that grew by a quarter, or after flows were dumped or computed whole
// (after(0): a reconcile, a trace's index), still after releaseDelay.
func TestMemReleaseWaitsLongerAfterSingleChanges(t *testing.T) {
	var frees atomic.Int32
	var mapped atomic.Uint64
	const live = 100 << 20
	m := &memRelease{
		heap:  func() (uint64, uint64) { return mapped.Load(), live },
		free:  func() { frees.Add(1); mapped.Store(live) },
		quiet: 1500 * time.Millisecond,
	}
	mapped.Store(300 << 20)
	m.after(1) // the first look: released
	waitReleases(t, &frees, 1)

	// Single changes, a pause of releaseDelay and more between runs.
	mapped.Store(107 << 20)
	for range 3 {
		m.after(3)
		time.Sleep(releaseDelay + releaseDelay/2)
	}
	if f := frees.Load(); f != 1 {
		t.Fatalf("a little growth from single changes was handed back in a short pause (%d releases)", f)
	}
	waitReleases(t, &frees, 1) // still within the quiet
	deadline := time.Now().Add(10 * time.Second)
	for frees.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if f := frees.Load(); f != 2 {
		t.Fatalf("the little growth was never handed back (%d releases)", f)
	}

	// A quarter more: after releaseDelay.
	mapped.Store(126 << 20)
	m.after(3)
	waitReleases(t, &frees, 3)
	// Flows computed whole (a trace's index): after releaseDelay too.
	mapped.Store(107 << 20)
	m.after(0)
	waitReleases(t, &frees, 4)
}
