package controller

import (
	"context"
	"fmt"
	"time"

	"github.com/vpcflow/vpcflow/controller/engine"
	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
	"github.com/vpcflow/vpcflow/trace"
)

// traceCache keeps, for the switches that were traced, an index of the
// desired table that the engine's changes keep up to date, so a trace
// costs a few hash probes per table whatever the number of hosts. An
// index not used for traceIdle is dropped, by a timer (sweepTraces), not
// only when the next trace comes (trace.Index: ~60 bytes a flow, 80 MB at
// 100,000 hosts).
type traceCache struct {
	idx  map[uint64]*trace.Index
	used map[uint64]time.Time
	// building holds, for a switch whose index is being built without
	// the lock, the changes computed meanwhile, applied once it is done.
	building map[uint64]*[][]engine.FlowChange
	// idle is traceIdle (tests make it short); sweep, when set, is the
	// timer of the next sweep.
	idle  time.Duration
	sweep *time.Timer
}

const traceIdle = 10 * time.Minute

func newTraceCache() *traceCache {
	return &traceCache{idx: map[uint64]*trace.Index{}, used: map[uint64]time.Time{}, idle: traceIdle,
		building: map[uint64]*[][]engine.FlowChange{}}
}

// apply keeps the indexes equal to the desired tables. Caller holds c.mu.
func (t *traceCache) apply(changes map[uint64]*engine.PackedChanges) {
	for dpid, p := range changes {
		x, indexed := t.idx[dpid]
		b, building := t.building[dpid]
		if !indexed && !building {
			continue
		}
		cs := p.Changes()
		if indexed {
			x.Apply(cs)
		}
		if building {
			*b = append(*b, cs)
		}
	}
}

// prepareTrace makes sure the switches a trace may visit (every switch
// the engine has flows for) are indexed. An index is built without the
// controller lock (at 50,000 hosts it takes seconds): the desired table
// is taken under the lock (an engine.Table: the owners' immutable
// records, nothing unpacked), read and indexed outside it, and the
// changes computed meanwhile are applied before it is used.
func (c *Controller) prepareTrace() {
	c.mu.Lock()
	var todo []uint64
	tables := map[uint64]*engine.Table{}
	for _, dpid := range c.engine.Datapaths() {
		if _, ok := c.trace.idx[dpid]; ok {
			continue
		}
		if _, ok := c.trace.building[dpid]; ok {
			continue // another trace builds it; traceTables waits for nothing and builds under the lock if needed
		}
		todo = append(todo, dpid)
		tables[dpid] = c.engine.Table(dpid)
		c.trace.building[dpid] = &[][]engine.FlowChange{}
	}
	c.mu.Unlock()
	for _, dpid := range todo {
		x := c.indexOf(tables[dpid])
		delete(tables, dpid)
		c.mu.Lock()
		for _, cs := range *c.trace.building[dpid] {
			x.Apply(cs)
		}
		delete(c.trace.building, dpid)
		c.trace.idx[dpid] = x
		c.trace.used[dpid] = time.Now()
		c.scheduleTraceSweep()
		c.mu.Unlock()
	}
}

// indexOf indexes a table's flows as it reads them: the desired table of
// 100,000 hosts built as a DesiredTable first (~350 bytes a flow) made
// the first trace's heap ~500 MB (issue 17). Building it leaves garbage
// (167 MB allocated at 50,000 hosts, BenchmarkTrace), handed back in the
// next quiet moment, not after the changes that come next
// (memrelease.go).
func (c *Controller) indexOf(t *engine.Table) *trace.Index {
	x := trace.NewIndex(nil)
	t.Each(x.Put)
	c.release.after(0)
	return x
}

// dropIdleTraces drops the indexes not used for the idle time and
// returns when the next of the others falls idle (zero: none left).
// Caller holds c.mu.
func (c *Controller) dropIdleTraces(now time.Time) (next time.Time) {
	for d, at := range c.trace.used {
		due := at.Add(c.trace.idle)
		if !now.Before(due) {
			delete(c.trace.idx, d)
			delete(c.trace.used, d)
			continue
		}
		if next.IsZero() || due.Before(next) {
			next = due
		}
	}
	return next
}

// scheduleTraceSweep makes sure a sweep is due while any index is kept.
// Caller holds c.mu.
func (c *Controller) scheduleTraceSweep() {
	if c.trace.sweep == nil && len(c.trace.idx) > 0 {
		c.trace.sweep = time.AfterFunc(c.trace.idle, c.sweepTraces)
	}
}

// sweepTraces drops idle indexes and comes back when the next falls idle.
func (c *Controller) sweepTraces() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.trace.sweep = nil
	kept := len(c.trace.idx)
	if next := c.dropIdleTraces(time.Now()); !next.IsZero() {
		c.trace.sweep = time.AfterFunc(time.Until(next), c.sweepTraces)
	}
	if len(c.trace.idx) < kept {
		c.release.after(0) // a dropped index is garbage: hand it back
	}
}

// tables returns the index of dpid's desired table, building it the
// first time. Caller holds c.mu.
func (c *Controller) traceTables(dpid uint64) (trace.Tables, error) {
	now := time.Now()
	c.dropIdleTraces(now)
	x, ok := c.trace.idx[dpid]
	if !ok {
		x = c.indexOf(c.engine.Table(dpid))
		c.trace.idx[dpid] = x
	}
	c.trace.used[dpid] = now
	c.scheduleTraceSweep()
	return x, nil
}

// traceEnv is what a trace reads. Caller holds c.mu and is inside
// store.Read.
func (c *Controller) traceEnv(st *topology.State) *trace.Env {
	snap := c.snapshot(st)
	return &trace.Env{Pipe: c.pipe, Topo: st, Ports: snap.Ports, Chassis: snap.Chassis,
		HostAt: func(dpid uint64, port uint32) (topology.Host, bool) {
			id, ok := c.hostAt.get(pipeline.Attachment{DPID: dpid, OFPort: port})
			if !ok {
				return topology.Host{}, false
			}
			return st.HostByID(id)
		},
		Tables: c.traceTables}
}

// Trace simulates req on vpcflow's desired tables and, with
// req.Installed, on the flows dumped from the switches, reporting the
// differences on the path as drift. With req.Live it then sends the
// packet for real and reports where it got to (livetrace.go); when that
// is not what the simulation says, the installed flows are traced too.
func (c *Controller) Trace(ctx context.Context, req trace.Request) (*trace.Result, error) {
	res, err := c.simulate(ctx, req)
	if err != nil || !req.Live {
		return res, err
	}
	if res.Live, err = c.liveTrace(ctx, req, res); err != nil {
		return nil, err
	}
	if !res.Live.Matches && !req.Installed {
		// Explain the mismatch: the same simulation on the flows the
		// switches hold, with the drift on the path.
		ireq := req
		ireq.Live, ireq.Installed = false, true
		if ires, err := c.simulate(ctx, ireq); err == nil {
			res.Installed, res.Drift = ires.Installed, ires.Drift
		}
	}
	return res, nil
}

func (c *Controller) simulate(ctx context.Context, req trace.Request) (*trace.Result, error) {
	installed := map[uint64]*trace.Index{}
	if req.Installed {
		// Indexed as the dumps arrive, never held whole.
		err := c.EachFlow(ctx, func(dpid uint64, fs *openflow.FlowStats) error {
			x := installed[dpid]
			if x == nil {
				x = trace.NewIndex(nil)
				installed[dpid] = x
			}
			x.Put(&fs.Flow)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("reading the installed flows: %w", err)
		}
	}
	c.prepareTrace()
	c.mu.Lock()
	defer c.mu.Unlock()
	var res *trace.Result
	var err error
	c.store.Read(func(st *topology.State) {
		env := c.traceEnv(st)
		if res, err = trace.Run(env, req, "desired"); err != nil || !req.Installed {
			return
		}
		inst := *env
		inst.Tables = func(dpid uint64) (trace.Tables, error) {
			if x, ok := installed[dpid]; ok {
				return x, nil
			}
			return nil, fmt.Errorf("%s: %w", topology.DPID(dpid), ErrUnknownSwitch)
		}
		var ires *trace.Result
		if ires, err = trace.Run(&inst, req, "installed"); err == nil {
			trace.Compare(res, ires, inst.Tables)
		}
	})
	return res, err
}
