package controller

import (
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
	"weak"

	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/topology"
)

// releaseDelay is how long the controller must have been without a flow
// batch before it looks at its heap: a bulk load of many batches pays
// for one collection at its end, not one per batch.
const releaseDelay = 200 * time.Millisecond

// minHeld is the least heap beyond the live one worth handing back.
const minHeld = 1 << 20

// bulkFlowMods: once this many flow-mods were sent since the last
// release, the next quiet moment hands the heap back even when it did not
// outgrow the last release's live heap: that live heap may have been read
// in the middle of a bulk change (a VPC of 100,000 hosts deleted: a
// release between its two switches' bundles read 94 MB live, and the
// ~130 MiB RSS left after the delete was never handed back). Single
// changes (a few flow-mods each) only get there after thousands.
const bulkFlowMods = 10000

// bigGrowthShift: a heap that outgrew the last release's live heap by a
// quarter or more is handed back after releaseDelay; one that outgrew it
// by less (single changes' garbage) only after quietRelease.
const bigGrowthShift = 2

// quietRelease is how long the controller must have been without flows
// sent, dumped or computed before it hands back a heap that grew only a
// little, by single changes. After releaseDelay such a release fell in
// the first pause of a run of single changes, and met the changes after
// it: at 100,000 hosts a release (a collection marking the 147 MB live
// heap, then the heap's free pages handed back under its lock) took 82 ms,
// and the deletes that came meanwhile 3–16 ms instead of 1 (the p99 of
// the bench's single deletes, issue 17).
const quietRelease = 2 * time.Second

// growthShift: the heap is handed back once it outgrew the last release's
// live heap by 1/2^growthShift. It was a quarter, and a release in a
// pause of a bulk load (its live heap then holding a request) left up to
// a quarter more mapped at the end: 10,000 hosts measured 1,660–1,722
// bytes a host instead of ~950 in one run of three (issue 17).
const growthShift = 4

// memRelease hands the heap's free memory back to the OS (a forced
// collection and a scavenge, collectAndFree) when the controller has been quiet
// for releaseDelay after sending or dumping flows, and the heap it keeps
// mapped (objects, collected or not, and free memory not yet returned)
// outgrew the live heap of the last release by a sixteenth (growthShift;
// at least minHeld), or bulkFlowMods flow-mods were sent since it. Go keeps both mapped: a bulk load or a restart at
// 100,000 hosts left hundreds of MB; 1,000 hosts, whose heap grows to
// 4 MB before Go collects at all, 5.6 KB a host above the empty
// controller (issue 17). A quiet controller doing single changes
// collects once a sixteenth of its heap is garbage.
type memRelease struct {
	mu    sync.Mutex
	timer *time.Timer
	// base is the live heap right after the last release (0: none yet),
	// or of a later collection if smaller.
	base uint64
	// heap is heapMapped (tests give their own).
	heap func() (mapped, live uint64)
	// free is collectAndFree (tests count the calls).
	free func()
	// sent is the flow-mods sent since the last release began.
	sent int
	// whole says flows were dumped or computed whole (a reconcile, a
	// start, a trace's index) since the last look: not a single change.
	whole bool
	// last is when after was last called; quiet is quietRelease (tests
	// give their own).
	last  time.Time
	quiet time.Duration
	log   *zap.Logger
}

// newMemRelease releases the heap and what st keeps mapped of its file.
// It holds st weakly: a pending release must not keep a controller's
// store (all its objects) alive once nothing else does.
func newMemRelease(st *topology.Store, log *zap.Logger) *memRelease {
	var ws weak.Pointer[topology.Store]
	if st != nil {
		ws = weak.Make(st)
	}
	return &memRelease{heap: heapMapped, log: log, quiet: quietRelease, free: func() {
		collectAndFree()
		if st := ws.Value(); st != nil {
			st.ReleaseMapped()
		}
	}}
}

// collectAndFree collects once and hands free memory back
// (debug.FreeOSMemory). It collected twice before, for a sync.Pool's
// objects, which survive one collection: the JSON encoder's buffer of a
// bulk response (~1.5 MB for 5,000 hosts). Lists of hosts and route
// entries no longer pass through that pool (they write their own JSON), and
// the second collection was a second pause in the single changes that
// came after a bulk load (issue 17).
func collectAndFree() {
	debug.FreeOSMemory()
}

// after notes that flowMods flow-mods were sent (0: flows dumped or
// computed whole): the heap is looked at once none were for releaseDelay.
func (m *memRelease) after(flowMods int) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent += flowMods
	m.whole = m.whole || flowMods == 0
	m.last = time.Now()
	if m.timer == nil {
		m.timer = time.AfterFunc(releaseDelay, m.check)
		return
	}
	m.timer.Reset(releaseDelay)
}

// check hands memory back if the heap outgrew the last release's. The
// collections run without the lock: after (a switch's job finishing)
// must not wait for them.
func (m *memRelease) check() {
	m.mu.Lock()
	mapped, live := m.heap()
	// The live heap of the last collection, when smaller: objects deleted
	// since (it is never smaller than the truth for long, only larger:
	// a collection during a bulk load counts the request as live).
	m.base = min(m.base, live)
	grown := mapped > m.base+max(minHeld, m.base>>growthShift)
	bulk := m.sent >= bulkFlowMods
	small := !bulk && !m.whole && m.base > 0 && mapped < m.base+m.base>>bigGrowthShift
	if grown && small {
		if wait := m.quiet - time.Since(m.last); wait > 0 {
			m.timer.Reset(wait) // single changes: wait for a longer quiet
			m.mu.Unlock()
			return
		}
	}
	due := grown || bulk
	m.whole = false
	if due {
		m.sent = 0
	}
	m.mu.Unlock()
	if !due {
		return
	}
	start := time.Now()
	m.free()
	took := time.Since(start)
	after, live := m.heap()
	m.mu.Lock()
	m.base = live
	m.mu.Unlock()
	if m.log != nil {
		// A release is a collection: what it cost the changes that
		// arrived meanwhile shows next to this line's time (issue 17).
		m.log.Debug("heap handed back to the OS", zap.Duration("took", took),
			zap.Uint64("mapped_before", mapped), zap.Uint64("mapped_after", after), zap.Uint64("live", live))
	}
}

// heapMapped reads, without stopping the world, the heap the process
// keeps mapped (objects, whether the collector took them yet or not, and
// free memory not yet returned to the OS) and the live heap as of the
// last collection.
func heapMapped() (mapped, live uint64) {
	s := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/gc/heap/live:bytes"},
	}
	metrics.Read(s)
	for _, x := range s {
		if x.Value.Kind() != metrics.KindUint64 {
			return 0, 0 // not in this Go: never release
		}
	}
	return s[0].Value.Uint64() + s[1].Value.Uint64(), s[2].Value.Uint64()
}
