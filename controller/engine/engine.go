// Package engine keeps vpcflow's desired flows, as OVN's desired-flow
// table does: every flow is referenced by each owner that wants it (a
// host, a route entry, a chassis), stays until the last one is gone, and
// every change comes out as the difference to what was desired before.
// It is pure: state changes in (a snapshot and the owners to recompute),
// flow changes out; no I/O, no locks (its user serializes calls).
package engine

import (
	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/openflow"
)

// FlowChange is one edit to a datapath's flow table: install (add or
// replace) Flow, or, when Delete is set, remove the entry with Flow's key.
type FlowChange struct {
	Delete bool
	Flow   openflow.Flow
}

// DesiredTable is the complete set of flows vpcflow wants on one datapath.
type DesiredTable map[openflow.Key]openflow.Flow

// Engine holds the desired flows of every datapath and who wants them.
type Engine struct {
	p       *pipeline.Pipeline
	desired map[uint64]map[openflow.Key]*entry
	owned   map[pipeline.Owner][]slot
	// counts is the number of desired flows (defaults left out) per
	// datapath and table, kept as flows come and go.
	counts map[uint64]map[uint8]int
}

// slot is where a flow lives: datapath and flow key.
type slot struct {
	dpid uint64
	key  openflow.Key
}

// entry is one desired flow and every owner that wants it. The first
// want is the one installed; when owners disagree on a flow's content (a
// conflict the pipeline should not produce), the earliest wins until it
// lets go.
type entry struct {
	wants []want
}

type want struct {
	owner pipeline.Owner
	flow  openflow.Flow
}

// New returns an empty engine for pipeline p.
func New(p *pipeline.Pipeline) *Engine {
	return &Engine{p: p, desired: map[uint64]map[openflow.Key]*entry{}, owned: map[pipeline.Owner][]slot{},
		counts: map[uint64]map[uint8]int{}}
}

// Pipeline is the engine's pipeline.
func (e *Engine) Pipeline() *pipeline.Pipeline { return e.p }

// Owners lists every owner that has flows now.
func (e *Engine) Owners() []pipeline.Owner {
	out := make([]pipeline.Owner, 0, len(e.owned))
	for o := range e.owned {
		out = append(out, o)
	}
	return out
}

// Update recomputes the flows of owners from snapshot s and returns what
// changed, per datapath, deletes first, each sorted (see OrderChanges).
// An owner that no longer exists in s simply wants nothing any more.
func (e *Engine) Update(s *pipeline.Snapshot, owners []pipeline.Owner) map[uint64][]FlowChange {
	// before records, for every slot touched, the flow installed there
	// before this update (nil: none), so that the result is the net
	// difference however many owners touched a slot.
	before := map[slot]*openflow.Flow{}
	touch := func(sl slot) {
		if _, ok := before[sl]; ok {
			return
		}
		if en, ok := e.desired[sl.dpid][sl.key]; ok {
			f := en.wants[0].flow
			before[sl] = &f
		} else {
			before[sl] = nil
		}
	}
	seen := map[pipeline.Owner]bool{}
	for _, o := range owners {
		if seen[o] {
			continue
		}
		seen[o] = true
		flows := e.p.Flows(s, o)
		now := make(map[slot]int, len(flows))
		slots := make([]slot, 0, len(flows))
		for i := range flows {
			sl := slot{flows[i].DPID, flows[i].Flow.Key()}
			if _, dup := now[sl]; dup {
				// One owner producing one key twice: the last one counts.
				flows[now[sl]].Flow = flows[i].Flow
				continue
			}
			now[sl] = i
			slots = append(slots, sl)
		}
		for _, sl := range e.owned[o] {
			if _, keep := now[sl]; !keep {
				touch(sl)
				e.release(o, sl)
			}
		}
		for _, sl := range slots {
			touch(sl)
			e.hold(o, sl, flows[now[sl]].Flow)
		}
		if len(slots) == 0 {
			delete(e.owned, o)
		} else {
			e.owned[o] = slots
		}
	}
	out := map[uint64][]FlowChange{}
	for sl, was := range before {
		en, ok := e.desired[sl.dpid][sl.key]
		switch {
		case !ok && was != nil:
			out[sl.dpid] = append(out[sl.dpid], FlowChange{Delete: true, Flow: *was})
		case ok && (was == nil || !was.SameContent(&en.wants[0].flow)):
			out[sl.dpid] = append(out[sl.dpid], FlowChange{Flow: en.wants[0].flow})
		}
	}
	for dpid := range out {
		OrderChanges(out[dpid])
	}
	return out
}

// hold records that owner o wants flow f at sl.
func (e *Engine) hold(o pipeline.Owner, sl slot, f openflow.Flow) {
	table := e.desired[sl.dpid]
	if table == nil {
		table = map[openflow.Key]*entry{}
		e.desired[sl.dpid] = table
	}
	en := table[sl.key]
	if en == nil {
		table[sl.key] = &entry{wants: []want{{o, f}}}
		c := e.counts[sl.dpid]
		if c == nil {
			c = map[uint8]int{}
			e.counts[sl.dpid] = c
		}
		c[sl.key.Table]++
		return
	}
	for i := range en.wants {
		if en.wants[i].owner == o {
			en.wants[i].flow = f
			return
		}
	}
	en.wants = append(en.wants, want{o, f})
}

// release drops owner o's want at sl; the flow goes when nobody wants it.
func (e *Engine) release(o pipeline.Owner, sl slot) {
	table := e.desired[sl.dpid]
	en := table[sl.key]
	if en == nil {
		return
	}
	for i := range en.wants {
		if en.wants[i].owner == o {
			en.wants = append(en.wants[:i], en.wants[i+1:]...)
			break
		}
	}
	if len(en.wants) == 0 {
		delete(table, sl.key)
		if len(table) == 0 {
			delete(e.desired, sl.dpid)
		}
		if c := e.counts[sl.dpid]; c != nil {
			if c[sl.key.Table]--; c[sl.key.Table] <= 0 {
				delete(c, sl.key.Table)
			}
			if len(c) == 0 {
				delete(e.counts, sl.dpid)
			}
		}
	}
}

// Desired is the full table vpcflow wants on dpid: the pipeline's defaults
// and every owner's flows there.
func (e *Engine) Desired(dpid uint64) DesiredTable {
	t := make(DesiredTable, len(e.desired[dpid])+len(e.p.Tables()))
	for _, f := range e.p.Defaults() {
		t[f.Key()] = f
	}
	for k, en := range e.desired[dpid] {
		t[k] = en.wants[0].flow
	}
	return t
}

// TableSizes is the number of flows Desired(dpid) holds in each table,
// without building it: cheap enough for a periodic check.
func (e *Engine) TableSizes(dpid uint64) map[uint8]int {
	out := make(map[uint8]int, len(e.p.Tables()))
	for t, n := range e.counts[dpid] {
		out[t] = n
	}
	table := e.desired[dpid]
	for _, f := range e.p.Defaults() {
		if _, ok := table[f.Key()]; !ok {
			out[f.Table]++
		}
	}
	return out
}

// DesiredIn is Desired(dpid) restricted to one table.
func (e *Engine) DesiredIn(dpid uint64, tableID uint8) DesiredTable {
	t := DesiredTable{}
	for _, f := range e.p.Defaults() {
		if f.Table == tableID {
			t[f.Key()] = f
		}
	}
	for k, en := range e.desired[dpid] {
		if k.Table == tableID {
			t[k] = en.wants[0].flow
		}
	}
	return t
}

// OwnersOf lists the owners that want the flow with key k on dpid.
func (e *Engine) OwnersOf(dpid uint64, k openflow.Key) []pipeline.Owner {
	en := e.desired[dpid][k]
	if en == nil {
		return nil
	}
	out := make([]pipeline.Owner, len(en.wants))
	for i, w := range en.wants {
		out[i] = w.owner
	}
	return out
}

// Size is the number of desired flows on every datapath together (without
// the defaults).
func (e *Engine) Size() int {
	n := 0
	for _, t := range e.desired {
		n += len(t)
	}
	return n
}
