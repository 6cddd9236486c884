// Package pipeline declares vpcflow's OpenFlow pipeline as an ordered list
// of features and turns a snapshot of the topology into each feature's
// flows. It is pure: no I/O, no locks, no state of its own.
//
// A feature (classifier.go, spoofguard.go, arp.go, l3.go, tunnel.go,
// output.go) declares the tables it owns, the registers and bits it uses,
// its cookie kinds and drop reasons, and produces its flows for one owner
// (a host, a route entry, a chassis) at a time. A flow reaches the next
// stage by pipeline order (Flow.Next), never by naming another feature's
// table; the Output stage sends to the port that earlier stages wrote into
// reg2, so a new stage can be put in before it without editing anyone else.
// A new feature is one file here plus its test, and one entry in Default.
package pipeline

import (
	"fmt"
	"sort"

	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// Proto is a set of packet kinds a table handles.
type Proto uint8

// Packet kinds.
const (
	ARP  Proto = 1 << iota // ARP
	IPv4                   // IPv4
	Any  = ARP | IPv4
)

func (p Proto) String() string {
	switch p {
	case ARP:
		return "ARP"
	case IPv4:
		return "IPv4"
	case Any:
		return "ARP, IPv4"
	}
	return fmt.Sprintf("proto%d", uint8(p))
}

// Table is one flow table, declared once by the feature that owns it.
type Table struct {
	ID   uint8
	Name string
	Why  string
	// Handles says which packets walk the table: Next skips a table that
	// does not handle the packet's kind.
	Handles Proto
	// Entry tables are reached only by a jump from their own feature, not
	// by falling through the pipeline; a flow in one continues (Next) at
	// the first in-line table after it.
	Entry bool
	// Miss is what a packet that matches no flow gets: dropped with a
	// reason (the default flow's cookie names it), or sent on (Continue).
	Miss Miss
}

// Miss is a table's default flow.
type Miss struct {
	// Drop is the reason packets are dropped for; DropNone with Continue.
	Drop DropReason
	// Continue sends unmatched packets to the next stage.
	Continue bool
	// Actions, when set, replace the default flow's actions (the Output
	// stage outputs to reg2).
	Actions []openflow.Action
}

// Register is a register (or a part of one, or of metadata) a feature
// uses, declared once so that no two features clash.
type Register struct {
	Field openflow.Field
	// Lo and Hi are the bit range, inclusive.
	Lo, Hi uint8
	// Name says what it holds.
	Name string
	Why  string
}

func (r Register) String() string {
	if r.Lo == 0 && uint(r.Hi) == r.Field.Bits()-1 {
		return r.Field.Name()
	}
	if r.Lo == r.Hi {
		return fmt.Sprintf("%s[%d]", r.Field.Name(), r.Lo)
	}
	return fmt.Sprintf("%s[%d..%d]", r.Field.Name(), r.Lo, r.Hi)
}

// Feature is one concern of the pipeline.
type Feature interface {
	// Name names the feature in docs and errors.
	Name() string
	// Tables are the tables the feature owns, in packet order.
	Tables() []*Table
	// Registers are the registers and bits the feature writes or reads
	// for its own purposes.
	Registers() []Register
	// Cookies are the owner kinds that appear in the cookies of the
	// feature's flows.
	Cookies() []OwnerKind
	// Drops are the drop reasons the feature declares (it may also use
	// others' reasons).
	Drops() []DropReasonInfo
	// Flows adds the flows the feature wants for owner o to out.
	Flows(s *Snapshot, o Owner, out *FlowSet)
	// Affected lists the owners whose flows from this feature depend on
	// the object op changes, besides the object itself.
	Affected(st *topology.State, op topology.Op) []Owner
}

// Pipeline is an ordered list of features and their tables.
type Pipeline struct {
	features []Feature
	tables   []*Table // in pipeline order, IDs ascending
	owner    map[*Table]Feature
	drops    []DropReasonInfo
	// meters are the features' meters (punt.go), by id.
	meters     []*Meter
	meterOwner map[*Meter]Feature
}

// New assembles a pipeline from features in packet order and checks the
// declarations: table IDs ascending and unique, registers disjoint, drop
// reasons unique.
func New(features ...Feature) (*Pipeline, error) {
	p := &Pipeline{features: features, owner: map[*Table]Feature{}, meterOwner: map[*Meter]Feature{}}
	var regs []Register
	regOwner := map[int]string{}
	seenReason := map[DropReason]string{}
	last := -1
	for _, f := range features {
		for _, t := range f.Tables() {
			if int(t.ID) <= last {
				return nil, fmt.Errorf("pipeline: table %d (%s) of %s must come after table %d: goto_table only goes forward", t.ID, t.Name, f.Name(), last)
			}
			last = int(t.ID)
			p.tables = append(p.tables, t)
			p.owner[t] = f
		}
		for _, r := range f.Registers() {
			for i, o := range regs {
				if o.Field == r.Field && r.Lo <= o.Hi && o.Lo <= r.Hi {
					return nil, fmt.Errorf("pipeline: %s of %s overlaps %s of %s", r, f.Name(), o, regOwner[i])
				}
			}
			regOwner[len(regs)] = f.Name()
			regs = append(regs, r)
		}
		for _, d := range f.Drops() {
			if other, ok := seenReason[d.Reason]; ok {
				return nil, fmt.Errorf("pipeline: drop reason %d (%s) of %s is already declared by %s", d.Reason, d.Name, f.Name(), other)
			}
			seenReason[d.Reason] = f.Name()
			p.drops = append(p.drops, d)
		}
	}
	if err := p.checkMeters(); err != nil {
		return nil, err
	}
	if len(p.meters) > 0 {
		if other, ok := seenReason[puntDrop.Reason]; ok {
			return nil, fmt.Errorf("pipeline: drop reason %d (%s) of the pipeline is already declared by %s", puntDrop.Reason, puntDrop.Name, other)
		}
		p.drops = append(p.drops, puntDrop)
	}
	sort.Slice(p.drops, func(i, j int) bool { return p.drops[i].Reason < p.drops[j].Reason })
	return p, nil
}

// Features lists the features in pipeline order.
func (p *Pipeline) Features() []Feature { return p.features }

// Tables lists every table in pipeline order.
func (p *Pipeline) Tables() []*Table { return p.tables }

// Owns reports whether vpcflow owns flow table id: flows found there that
// vpcflow does not want are deleted on reconciliation.
func (p *Pipeline) Owns(id uint8) bool {
	for _, t := range p.tables {
		if t.ID == id {
			return true
		}
	}
	return false
}

// First is the table every packet enters (OpenFlow table 0).
func (p *Pipeline) First() *Table { return p.tables[0] }

// DropReasons lists the declared drop reasons, by number.
func (p *Pipeline) DropReasons() []DropReasonInfo { return p.drops }

// next is the first in-line table after t that handles proto.
func (p *Pipeline) next(t *Table, proto Proto) (*Table, error) {
	found := false
	for _, x := range p.tables {
		if found && !x.Entry && x.Handles&proto == proto {
			return x, nil
		}
		if x == t {
			found = true
		}
	}
	return nil, fmt.Errorf("pipeline: no table after %s handles %s", t.Name, proto)
}

// Defaults are the per-datapath default flows: every table's miss flow,
// and the features' flows on every datapath (defaults.go). Drops carry
// the reason in the cookie, so drop counters come from flow stats.
func (p *Pipeline) Defaults() []openflow.Flow {
	return append(p.Misses(), p.datapathFlows()...)
}

// Misses are the tables' miss flows, one per table.
func (p *Pipeline) Misses() []openflow.Flow {
	var out []openflow.Flow
	for _, t := range p.tables {
		f := openflow.Flow{Table: t.ID, Priority: 0, Cookie: PipelineCookie(t.Miss.Drop)}
		switch {
		case t.Miss.Actions != nil:
			f.Actions = t.Miss.Actions
		case t.Miss.Continue:
			next, err := p.next(t, t.Handles)
			if err != nil {
				panic(err) // checked by TestDefaultPipeline
			}
			f.Actions = []openflow.Action{openflow.GotoTable(next.ID)}
		}
		out = append(out, f)
	}
	return out
}

// Flows computes every flow owner o wants in snapshot s, from every
// feature, placed on their datapaths.
func (p *Pipeline) Flows(s *Snapshot, o Owner) []PlacedFlow {
	return p.AppendFlows(nil, s, o)
}

// AppendFlows is Flows appended to dst: a caller computing owner after
// owner passes the same slice back (dst[:0]) and the set grows once, not
// once per owner (it was 10 % of a bulk load's allocation, issue 17).
// The flows' matches and actions are never in dst's array, so they stay
// valid after dst is reused.
func (p *Pipeline) AppendFlows(dst []PlacedFlow, s *Snapshot, o Owner) []PlacedFlow {
	out := &FlowSet{p: p, flows: dst}
	// Hosts are remembered while one owner's flows are computed, not
	// longer: a snapshot may be used again after its ports changed.
	s.seen.at = false
	defer func() { s.seen.at = false }()
	for _, f := range p.features {
		out.feature = f
		f.Flows(s, o, out)
	}
	return out.flows
}

// Affected lists the owners to recompute when the resolved ops are
// applied: the objects themselves (when they own flows) and whatever the
// features say depends on them. Ops are resolved: deletes carry the whole
// object, so the owners of what was deleted are included.
func (p *Pipeline) Affected(st *topology.State, ops []topology.Op) []Owner {
	seen := map[Owner]bool{}
	var out []Owner
	add := func(o Owner) {
		if !seen[o] {
			seen[o] = true
			out = append(out, o)
		}
	}
	for _, op := range ops {
		if o, ok := OwnerOf(op.Obj); ok {
			add(o)
		}
		for _, f := range p.features {
			for _, o := range f.Affected(st, op) {
				add(o)
			}
		}
	}
	return out
}

// Dependents lists the owners whose flows depend on where owner o (a
// host) is attached, besides o itself: a port event that moves o
// recomputes them with it. Features say so by implementing
// Dependents(st, o) []Owner.
func (p *Pipeline) Dependents(st *topology.State, o Owner) []Owner {
	var out []Owner
	for _, f := range p.features {
		if d, ok := f.(interface {
			Dependents(*topology.State, Owner) []Owner
		}); ok {
			out = append(out, d.Dependents(st, o)...)
		}
	}
	return out
}

// PlacedFlow is a flow together with the datapath it belongs on.
type PlacedFlow struct {
	DPID uint64
	Flow openflow.Flow
}

// FlowSet collects the flows of one owner.
type FlowSet struct {
	p       *Pipeline
	feature Feature // the feature adding flows now
	flows   []PlacedFlow
}

// On starts a flow on datapath dpid in table t: a table of the feature
// adding it, or the pipeline's first table (where every feature may
// classify what enters).
//
// It is small enough to inline, so a builder used where it was started
// stays on the stack (one heap builder per flow was 5 % of a bulk load's
// allocation).
func (s *FlowSet) On(dpid uint64, t *Table) *FlowBuilder {
	s.checkTable(t)
	return &FlowBuilder{set: s, dpid: dpid, t: t}
}

// checkTable panics unless the feature adding flows may add to t.
func (s *FlowSet) checkTable(t *Table) {
	if s.p.owner[t] == s.feature || t == s.p.First() {
		return
	}
	panic(fmt.Sprintf("pipeline: %s adds a flow to %s, a table of %s", s.feature.Name(), t.Name, s.p.owner[t].Name()))
}

// First is the pipeline's first table.
func (s *FlowSet) First() *Table { return s.p.First() }

// FlowBuilder builds one flow; a terminal method (Next, Jump, Drop, Do)
// adds it to its set.
type FlowBuilder struct {
	set     *FlowSet
	dpid    uint64
	t       *Table
	prio    uint16
	cookie  uint64
	match   openflow.Match
	actions []openflow.Action
}

// Priority sets the priority.
func (b *FlowBuilder) Priority(p uint16) *FlowBuilder { b.prio = p; return b }

// Cookie sets the cookie.
func (b *FlowBuilder) Cookie(c uint64) *FlowBuilder { b.cookie = c; return b }

// Match sets the match.
func (b *FlowBuilder) Match(m openflow.Match) *FlowBuilder { b.match = m; return b }

// Actions appends apply-actions (and write_metadata).
func (b *FlowBuilder) Actions(a ...openflow.Action) *FlowBuilder {
	b.actions = append(b.actions, a...)
	return b
}

// Next ends the flow by going to the next stage that handles proto.
func (b *FlowBuilder) Next(proto Proto) {
	next, err := b.set.p.next(b.t, proto)
	if err != nil {
		panic(err) // a pipeline declaration error, caught by the tests
	}
	b.add(append(b.actions, openflow.GotoTable(next.ID)))
}

// Jump ends the flow by going to t, a table of the same feature.
func (b *FlowBuilder) Jump(t *Table) {
	if b.set.p.owner[t] != b.set.feature {
		panic(fmt.Sprintf("pipeline: %s jumps to %s, a table of another feature", b.set.feature.Name(), t.Name))
	}
	b.add(append(b.actions, openflow.GotoTable(t.ID)))
}

// CTNext ends the flow with ct(…) that continues, once conntrack has run,
// at the next stage that handles proto (ct(table=N)): that stage sees the
// packet as conntrack left it (NATed) with its ct state. A ct action
// without table= would leave later stages matching the packet as it was.
func (b *FlowBuilder) CTNext(c openflow.CT, proto Proto) {
	next, err := b.set.p.next(b.t, proto)
	if err != nil {
		panic(err) // a pipeline declaration error, caught by the tests
	}
	c.Recirc, c.Table = true, next.ID
	b.add(append(b.actions, openflow.ConnTrack(c)))
}

// Do ends the flow with its actions (output, controller, IN_PORT…).
func (b *FlowBuilder) Do() { b.add(b.actions) }

// Drop ends the flow as a drop (no actions).
func (b *FlowBuilder) Drop() { b.add(nil) }

func (b *FlowBuilder) add(actions []openflow.Action) {
	b.set.flows = append(b.set.flows, PlacedFlow{DPID: b.dpid, Flow: openflow.Flow{
		Table: b.t.ID, Priority: b.prio, Cookie: b.cookie, Match: b.match, Actions: actions,
	}})
}
