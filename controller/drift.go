package controller

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/controller/engine"
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// Drift: a switch that stays connected is checked every DriftInterval,
// beside its queue: the check reads the switch while changes may be
// applied, and counts only if no change was queued for the switch from
// before its first read to after its last (changeState, settledAt; else
// it is put off and the next one will do), so it never compares against a
// desired table that is ahead of the switch, and a change never waits
// for a check's dump and diff. What it found is repaired by a job queued
// under the lock in that same moment, so nothing queued later runs
// first. A switch whose changes put off driftQueueAfter checks in a row
// is checked in its queue's turn instead (changes then wait for it):
//
//  1. one OFPMP_TABLE request gives the number of flows in every table;
//     each of vpcflow's tables is compared with the number the engine
//     wants there (plus what was kept on purpose last time);
//  2. the tables whose count differs are dumped alone and diffed; what
//     differs is repaired at once, and counted as missing, unexpected or
//     modified;
//  3. one more table in turn (a flow whose actions were edited in place
//     leaves the count alone) is dumped and diffed the same way — a
//     table of more than Options.DumpSliceFlows a slice at a time: the flows
//     whose cookie's owner ID falls in the slice (the switch filters
//     them). A slice that differs is repaired from a dump of its whole
//     table.
//
// Nothing changed costs one small request and one table's (or slice's)
// dump per interval. At most driftConcurrency switches are checked at a
// time.

// driftQueueAfter is how many checks in a row a switch's changes may put
// off before the next one runs in the queue's turn: a switch changed all
// the time is still checked.
const driftQueueAfter = 3

// DefaultDriftInterval is how often a connected switch is checked for
// drift unless Options.DriftInterval says otherwise.
const DefaultDriftInterval = 30 * time.Second

// driftConcurrency is how many switches are checked at once.
const driftConcurrency = 2

// DefaultDumpSliceFlows is the most flows vpcflow asks a switch for in
// one request from one table unless Options.DumpSliceFlows says
// otherwise: a bigger table is read in 2, 4, 8, ... slices by cookie — a
// drift check reads one slice per check, the flow statistics every slice
// in turn. At 100,000 hosts a whole table in turn was 400,000 flows, ~1 s
// of the switch's queue in which a change to that switch waited, and OVS
// answers one request whole before it reads its next message (issue 17).
const DefaultDumpSliceFlows = 16384

// driftSlices is how many slices a table of n flows is checked in: the
// least power of two that puts at most perSlice flows in each (owner IDs
// are handed out in turn, so their low bits spread evenly).
func driftSlices(n, perSlice int) uint64 {
	k := uint64(1)
	for perSlice > 0 && k*uint64(perSlice) < uint64(n) && k < 1<<16 {
		k <<= 1
	}
	return k
}

// DriftCounters are what the periodic drift checks of one switch found
// and did, since vpcflow started. Missing, Unexpected and Modified count
// flows: a desired flow that was not installed (re-added), an installed
// flow in vpcflow's tables that vpcflow does not want (deleted), a flow
// with vpcflow's match and priority but other actions or cookie
// (rewritten). Reconciliations when a switch (re)connects are not counted
// here.
type DriftCounters struct {
	// Checks is the number of checks run to the end.
	Checks uint64 `json:"checks"`
	// Skipped counts checks put off because changes were queued for the
	// switch before or while it was read (the desired table was ahead of
	// it, or the dump may have seen a change half-way in).
	Skipped uint64 `json:"skipped"`
	// TablesDumped counts the tables dumped by the checks (a slice of a
	// big table counts as one).
	TablesDumped uint64 `json:"tables_dumped"`
	Missing      uint64 `json:"missing"`
	Unexpected   uint64 `json:"unexpected"`
	Modified     uint64 `json:"modified"`
	// Repairs counts the checks that sent flow-mods; RepairedFlows the
	// flow-mods they sent.
	Repairs       uint64 `json:"repairs"`
	RepairedFlows uint64 `json:"repaired_flows"`
	// Held is how many unwanted flows the last checks kept on purpose
	// (their OVSDB is unknown, or the store looks far smaller than the
	// switch): a gauge, not a counter.
	Held uint64 `json:"held"`
	// Errors counts checks that failed (the switch is then reconnected).
	Errors    uint64    `json:"errors"`
	LastCheck time.Time `json:"last_check,omitzero"`
	LastDrift time.Time `json:"last_drift,omitzero"`
}

func (d *DriftCounters) add(o DriftCounters) {
	d.Checks += o.Checks
	d.Skipped += o.Skipped
	d.TablesDumped += o.TablesDumped
	d.Missing += o.Missing
	d.Unexpected += o.Unexpected
	d.Modified += o.Modified
	d.Repairs += o.Repairs
	d.RepairedFlows += o.RepairedFlows
	d.Held += o.Held
	d.Errors += o.Errors
	if o.LastCheck.After(d.LastCheck) {
		d.LastCheck = o.LastCheck
	}
	if o.LastDrift.After(d.LastDrift) {
		d.LastDrift = o.LastDrift
	}
}

// SwitchDrift is one switch's drift counters.
type SwitchDrift struct {
	DPID      topology.DPID `json:"dpid"`
	Bridge    string        `json:"bridge,omitempty"`
	Connected bool          `json:"connected"`
	DriftCounters
	// Installed is the number of flows in each of vpcflow's tables at the
	// last check (table id → flows).
	Installed map[uint8]uint32 `json:"installed,omitempty"`
}

// DriftReport is every switch's drift counters (switches seen since
// vpcflow started, by dpid) and their sum.
type DriftReport struct {
	// Interval is how often a switch is checked (0: checks are off).
	Interval time.Duration `json:"interval_ns"`
	Switches []SwitchDrift `json:"switches"`
	Total    DriftCounters `json:"total"`
}

// driftState is one dpid's counters and check bookkeeping, kept across
// reconnects.
type driftState struct {
	DriftCounters
	// heldBy is what the last dump of each table kept on purpose: the
	// count check expects it on top of the desired flows.
	heldBy    map[uint8]int
	installed map[uint8]uint32
	next      int    // the table the next check dumps in turn (index in the pipeline's tables)
	slice     uint64 // and which of its slices
}

// driftBook holds every dpid's drift state.
type driftBook struct {
	mu  sync.Mutex
	by  map[uint64]*driftState
	sem chan struct{}
}

func newDriftBook() *driftBook {
	return &driftBook{by: map[uint64]*driftState{}, sem: make(chan struct{}, driftConcurrency)}
}

// with runs fn on dpid's state under the book's lock.
func (b *driftBook) with(dpid uint64, fn func(s *driftState)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.by[dpid]
	if s == nil {
		s = &driftState{heldBy: map[uint8]int{}}
		b.by[dpid] = s
	}
	fn(s)
}

// Drift reports what the periodic drift checks found and repaired, per
// switch.
func (c *Controller) Drift() DriftReport {
	c.mu.Lock()
	connected := map[uint64]bool{}
	for dpid := range c.switches {
		connected[dpid] = true
	}
	names := map[uint64]string{}
	for _, ep := range sortedEndpoints(c.bridges) {
		for _, b := range c.bridges[ep] {
			if _, ok := names[b.DPID]; !ok && b.DPID != 0 {
				names[b.DPID] = b.Name
			}
		}
	}
	c.mu.Unlock()
	rep := DriftReport{Switches: []SwitchDrift{}}
	if c.opts.DriftInterval > 0 {
		rep.Interval = c.opts.DriftInterval
	}
	c.drift.mu.Lock()
	for dpid, s := range c.drift.by {
		sd := SwitchDrift{DPID: topology.DPID(dpid), Bridge: names[dpid], Connected: connected[dpid], DriftCounters: s.DriftCounters}
		if len(s.installed) > 0 {
			sd.Installed = make(map[uint8]uint32, len(s.installed))
			for t, n := range s.installed {
				sd.Installed[t] = n
			}
		}
		rep.Switches = append(rep.Switches, sd)
		rep.Total.add(s.DriftCounters)
	}
	c.drift.mu.Unlock()
	sort.Slice(rep.Switches, func(i, j int) bool { return rep.Switches[i].DPID < rep.Switches[j].DPID })
	return rep
}

// driftLoop checks sc every DriftInterval (±10 %) until ctx ends.
func (c *Controller) driftLoop(ctx context.Context, sc *switchConn) {
	every := c.opts.DriftInterval
	if every <= 0 {
		return
	}
	putOff := 0 // checks in a row put off by changes
	for {
		wait := every + time.Duration((rand.Float64()-0.5)*0.2*float64(every))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		select {
		case c.drift.sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		if putOff >= driftQueueAfter {
			done := sc.enqueue(&pushJob{timeout: c.opts.ReconcileTimeout, check: func(jctx context.Context) error {
				_, err := c.checkDrift(jctx, sc, true)
				return err
			}})
			select {
			case <-done:
			case <-ctx.Done():
			}
			putOff = 0
		} else if sc.isWritable() {
			cctx, cancel := context.WithTimeout(ctx, c.opts.ReconcileTimeout)
			if off, _ := c.checkDrift(cctx, sc, false); off {
				putOff++
			} else {
				putOff = 0
			}
			cancel()
		}
		<-c.drift.sem
	}
}

// checkAt is where a check runs: the switch's change generation it
// started at (changeState), and whether in the queue's turn.
type checkAt struct {
	gen     uint64
	inQueue bool
}

// checkPutOff ends a check whose desired table went ahead of the switch
// (changes were queued meanwhile); the next one will do.
type checkPutOff struct{}

// checkDrift runs one drift check of sc: as a job of sc's queue (inQueue),
// or beside it. It reports whether changes put the check off; the error
// is for the queue (a repair that failed: the switch must resync).
func (c *Controller) checkDrift(ctx context.Context, sc *switchConn, inQueue bool) (putOff bool, _ error) {
	dpid := sc.dp.DPID()
	start := time.Now()
	var found DriftCounters
	err := c.runCheck(ctx, sc, &found, inQueue)
	_, putOff = err.(checkPutOff)
	if putOff {
		// Nothing it found counts: it was read against a desired
		// table the switch was not at, and nothing was repaired.
		found = DriftCounters{TablesDumped: found.TablesDumped}
	}
	if found.RepairedFlows > 0 {
		found.Repairs = 1
	}
	c.drift.with(dpid, func(s *driftState) {
		held := s.Held // a gauge, set by runCheck
		s.add(found)
		s.Held = held
		switch {
		case putOff:
			s.Skipped++
		case err != nil:
			s.Errors++
			s.LastCheck = time.Now()
		default:
			s.Checks++
			s.LastCheck = time.Now()
		}
	})
	if drifted := found.Missing + found.Unexpected + found.Modified; drifted > 0 {
		sc.log.Warn("drift repaired: the switch's flows were changed behind vpcflow's back",
			zap.Uint64("missing", found.Missing), zap.Uint64("unexpected", found.Unexpected),
			zap.Uint64("modified", found.Modified), zap.Uint64("flow_mods", found.RepairedFlows),
			zap.Duration("took", time.Since(start)))
	}
	var repair repairError
	switch {
	case putOff:
		sc.log.Debug("drift check put off: changes were queued for the switch", zap.Bool("in_queue", inQueue))
		return true, nil
	case errors.As(err, &repair):
		// Half a repair may be on the switch: its queue logs the error
		// and reconnects it to resync (a repair queued beside a check
		// failed in the queue already).
		return false, fmt.Errorf("drift check: %w", err)
	case err != nil:
		// Only reading failed: the table is as it was; try again next
		// time (a switch that cannot answer at all is dropped by its
		// echo timeout).
		sc.log.Warn("drift check failed", zap.Error(err))
		return false, nil
	}
	sc.log.Debug("drift check done", zap.Uint64("tables_dumped", found.TablesDumped), zap.Bool("in_queue", inQueue), zap.Duration("took", time.Since(start)))
	return false, nil
}

// runCheck reads sc's table counts, the tables whose count differs and
// the table (or slice) in turn, and repairs what differs: at once in the
// queue's turn (inQueue), else by a job queued if no change was queued
// since the first read.
func (c *Controller) runCheck(ctx context.Context, sc *switchConn, found *DriftCounters, inQueue bool) error {
	dpid := sc.dp.DPID()
	tables := c.pipe.Tables()
	// The desired sizes, taken only when every change queued has been
	// applied: the engine then holds exactly what the switch was sent.
	c.mu.Lock()
	gen, settled := sc.changeState()
	at := checkAt{gen: gen, inQueue: inQueue}
	if !settled {
		c.mu.Unlock()
		return checkPutOff{}
	}
	want := c.engine.TableSizes(dpid)
	c.mu.Unlock()

	stats, err := sc.dp.TableStats(ctx)
	if err != nil {
		return fmt.Errorf("reading table stats: %w", err)
	}
	active := map[uint8]uint32{}
	for _, ts := range stats {
		active[ts.Table] = ts.Active
	}
	var heldBy map[uint8]int
	var next int
	var slice uint64
	installed := map[uint8]uint32{}
	c.drift.with(dpid, func(s *driftState) {
		heldBy = make(map[uint8]int, len(s.heldBy))
		for t, n := range s.heldBy {
			heldBy[t] = n
		}
		next, slice = s.next%len(tables), s.slice
	})
	inTurn := tables[next].ID
	parts := driftSlices(want[inTurn], c.opts.DumpSliceFlows)
	slice %= parts // the table may have shrunk
	c.drift.with(dpid, func(s *driftState) {
		s.next, s.slice = next, slice+1
		if s.slice == parts {
			s.next, s.slice = next+1, 0
		}
	})
	var dump []uint8
	for _, t := range tables {
		installed[t.ID] = active[t.ID]
		if int(active[t.ID]) != want[t.ID]+heldBy[t.ID] || (t.ID == inTurn && parts == 1) {
			dump = append(dump, t.ID)
		}
	}
	if parts > 1 && !slices.Contains(dump, inTurn) {
		same, err := c.checkSlice(ctx, sc, at, inTurn, slice, parts-1, found)
		if err != nil {
			return err
		}
		if !same {
			dump = append(dump, inTurn)
		}
	}
	var repair []engine.FlowChange
	for _, table := range dump {
		changes, n, err := c.checkTable(ctx, sc, at, table, found)
		if err != nil {
			return err
		}
		heldBy[table] = n
		repair = append(repair, changes...)
	}
	if len(repair) > 0 {
		if err := c.repairDrift(ctx, sc, at, repair); err != nil {
			return err
		}
		found.RepairedFlows += uint64(len(repair))
		found.LastDrift = time.Now()
	}
	total := 0
	for _, n := range heldBy {
		total += n
	}
	c.drift.with(dpid, func(s *driftState) {
		s.heldBy = heldBy
		s.installed = installed
		s.Held = uint64(total)
	})
	return nil
}

// checkSlice dumps the flows of one table of sc whose cookie is slice
// under mask and diffs them against the same slice of the desired table;
// it reports whether they are the same (but for what the hold policy
// keeps). It repairs nothing: a slice can differ where its whole table
// does not (a shared flow's winner and the copy it replaced may have
// cookies in different slices), so the caller checks the whole table.
func (c *Controller) checkSlice(ctx context.Context, sc *switchConn, at checkAt, table uint8, slice, mask uint64, found *DriftCounters) (bool, error) {
	changes, _, _, err := c.diffTable(ctx, sc, at, table, slice, mask, found)
	if err != nil {
		return false, err
	}
	if len(changes) > 0 {
		sc.log.Debug("drift check: a slice differs; checking its whole table",
			zap.Uint8("table", table), zap.Uint64("slice", slice), zap.Uint64("slices", mask+1), zap.Int("changes", len(changes)))
	}
	return len(changes) == 0, nil
}

// diffTable dumps the flows of one table of sc whose cookie is cookie
// under mask (0: every flow) and diffs them, as they arrive, against the
// same part of the desired table (the engine's Table, taken under the
// lock without copying a flow; DesiredIn copied 200,000 flows, 130 ms, at
// 50,000 hosts): the changes it needs once the hold policy filtered them,
// what the policy kept, and the diff (to count what differed). It is
// put off unless the switch is still settled at the check's generation
// when it takes the desired side, and, beside the queue, after the dump
// too. (In the queue's turn nothing is applied during the dump, and
// changes queued after the desired side was taken are computed from it:
// the diff stands.)
func (c *Controller) diffTable(ctx context.Context, sc *switchConn, at checkAt, table uint8, cookie, mask uint64, found *DriftCounters) ([]engine.FlowChange, held, *engine.TableDiff, error) {
	dpid := sc.dp.DPID()
	var desired *engine.Table
	var policy *holdPolicy
	c.mu.Lock()
	putOff := !sc.settledAt(at.gen)
	if !putOff {
		desired = c.engine.TableSlice(dpid, table, cookie, mask)
		c.store.Read(func(st *topology.State) { policy = c.holdPolicyFor(st, dpid, false) })
	}
	c.mu.Unlock()
	if putOff {
		return nil, held{}, nil, checkPutOff{}
	}
	diff := desired.Diff()
	owners := installedOwners{}
	err := dumpTable(ctx, sc.dp, table, cookie, mask, func(fs *openflow.FlowStats) error {
		if fs.Flow.Table == table {
			diff.Installed(&fs.Flow)
			owners.add(fs.Flow.Cookie)
		}
		return nil
	})
	if err != nil {
		if mask != 0 {
			return nil, held{}, nil, fmt.Errorf("dumping table %d slice %d of %d: %w", table, cookie&mask, mask+1, err)
		}
		return nil, held{}, nil, fmt.Errorf("dumping table %d: %w", table, err)
	}
	found.TablesDumped++
	if !at.inQueue && !sc.settledAt(at.gen) {
		// A change was queued while the switch was read: what the
		// dump saw may be before or after it.
		return nil, held{}, nil, checkPutOff{}
	}
	changes, kept := policy.filterOwners(diff.Changes(), owners)
	return changes, kept, diff, nil
}

// checkTable dumps one table of sc, diffs it against the desired flows
// there as it arrives (diffTable) and counts what differs; it returns the
// changes that repair it and how many unwanted flows it kept on purpose.
func (c *Controller) checkTable(ctx context.Context, sc *switchConn, at checkAt, table uint8, found *DriftCounters) ([]engine.FlowChange, int, error) {
	dpid := sc.dp.DPID()
	changes, kept, diff, err := c.diffTable(ctx, sc, at, table, 0, 0, found)
	if err != nil {
		return nil, 0, err
	}
	if kept.Guarded > 0 {
		sc.log.Warn("drift check kept flows it would delete: "+kept.describe()+
			"; restart with --allow-flush or POST /v1/switches/"+dpidString(dpid)+"/flush to delete them",
			zap.Uint8("table", table))
	}
	if len(changes) == 0 {
		return nil, kept.total(), nil
	}
	missing, modified := diff.Differ()
	found.Missing += uint64(missing)
	found.Modified += uint64(modified)
	for _, ch := range changes {
		if ch.Delete {
			found.Unexpected++
		}
	}
	return changes, kept.total(), nil
}

// repairDrift sends the changes a check found to sc: at once when the
// check runs in the queue's turn, else as a job queued under the lock if
// the switch is still settled at gen (put off otherwise), which it waits
// for (ctx bounds only a repair sent at once). A repair that fails leaves
// the switch half-repaired: its queue disconnects it to resync.
func (c *Controller) repairDrift(ctx context.Context, sc *switchConn, at checkAt, changes []engine.FlowChange) error {
	repair := func(ctx context.Context) error {
		start := time.Now()
		err := applyMods(ctx, sc.dp, engine.ChangeMods(changes))
		adds, dels := countChanges(changes)
		sc.obs.FlowMods(sc.dp.DPID(), adds, dels, time.Since(start), err)
		if err != nil {
			return repairError{fmt.Errorf("repairing drift (%d flow-mods): %w", len(changes), err)}
		}
		return nil
	}
	if at.inQueue {
		return repair(ctx)
	}
	c.mu.Lock()
	if !sc.settledAt(at.gen) {
		c.mu.Unlock()
		return checkPutOff{}
	}
	done := sc.enqueue(&pushJob{timeout: c.opts.ReconcileTimeout, check: repair})
	c.mu.Unlock()
	// Not bounded by ctx: the repair is queued and will run, and every
	// queued job gets its result (run within its own timeout, or failed
	// when the queue ends), so what it did is counted.
	return <-done
}

// tableDumper is a Datapath that hands over one table's flows (by cookie
// under a mask) as its dump arrives (*openflow.Switch does).
type tableDumper interface {
	DumpTableFunc(ctx context.Context, table uint8, cookie, mask uint64, fn func(fs *openflow.FlowStats) error) error
}

// dumpTable calls fn with every flow of table whose cookie is cookie
// under mask (0: every flow), as the dump arrives when dp can (fs is
// reused: fn copies what it keeps).
func dumpTable(ctx context.Context, dp Datapath, table uint8, cookie, mask uint64, fn func(fs *openflow.FlowStats) error) error {
	if d, ok := dp.(tableDumper); ok {
		return d.DumpTableFunc(ctx, table, cookie, mask, fn)
	}
	var all []openflow.FlowStats
	var err error
	if mask != 0 {
		all, err = dp.DumpCookie(ctx, table, cookie, mask)
	} else {
		all, err = dp.DumpTable(ctx, table)
	}
	if err != nil {
		return err
	}
	for i := range all {
		if all[i].Flow.Cookie&mask != cookie&mask {
			continue
		}
		if err := fn(&all[i]); err != nil {
			return err
		}
	}
	return nil
}

func (checkPutOff) Error() string { return "changes were queued meanwhile" }

// repairError is a drift check that failed while changing the switch.
type repairError struct{ err error }

func (e repairError) Error() string { return e.err.Error() }
func (e repairError) Unwrap() error { return e.err }
