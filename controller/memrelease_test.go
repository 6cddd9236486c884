package controller

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestMemReleaseOncePerQuietSpell: with a big table, batches adding up to
// less than bigBatch never hand memory back; a run of batches adding up to more does, once,
// after the run (not once per batch); a nil release (switches outside a
// controller) is a no-op.
func TestMemReleaseOncePerQuietSpell(t *testing.T) {
	var calls atomic.Int32
	m := &memRelease{free: func() { calls.Add(1) }}
	m.tableIs(8 * bigBatch)
	m.after(bigBatch / 2)
	m.after(bigBatch/2 - 1)
	time.Sleep(2 * releaseDelay)
	if n := calls.Load(); n != 0 {
		t.Fatalf("%d flows released memory %d times", bigBatch-1, n)
	}
	for range 5 {
		m.after(bigBatch / 4) // the first one crosses bigBatch
	}
	deadline := time.Now().Add(10 * time.Second)
	for calls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(2 * releaseDelay)
	if n := calls.Load(); n != 1 {
		t.Fatalf("a run of batches released memory %d times, want 1", n)
	}
	m.after(bigBatch - 1) // counted from the release: not enough
	time.Sleep(2 * releaseDelay)
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d flows after a release released memory again (%d calls)", bigBatch-1, n)
	}
	var none *memRelease
	none.after(bigBatch) // must not panic
}

// TestMemReleaseScalesWithTheTable: a small table hands memory back once
// a quarter of it went by (not only after bigBatch flows), never for
// fewer than minRelease flows; a big one waits for bigBatch.
func TestMemReleaseScalesWithTheTable(t *testing.T) {
	var calls atomic.Int32
	m := &memRelease{free: func() { calls.Add(1) }}
	wait := func(want int32) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for calls.Load() < want && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(2 * releaseDelay)
		if n := calls.Load(); n != want {
			t.Fatalf("%d releases, want %d", n, want)
		}
	}
	m.tableIs(13_000) // 1,000 hosts
	m.after(3_000)
	wait(0)
	m.after(250) // 3,250: a quarter of the table
	wait(1)
	m.tableIs(100) // an almost empty table: minRelease
	m.after(minRelease - 1)
	wait(1)
	m.after(1)
	wait(2)
	m.tableIs(1_300_000) // 100,000 hosts: a quarter would be 325,000
	m.after(bigBatch - 1)
	wait(2)
	m.after(1)
	wait(3)
}
