package trace

import (
	"encoding/binary"
	"hash/maphash"
	"sort"

	"github.com/vpcflow/vpcflow/controller/engine"
	"github.com/vpcflow/vpcflow/internal/idhash"
	"github.com/vpcflow/vpcflow/openflow"
)

// Tables is a switch's flow tables as the interpreter reads them.
type Tables interface {
	// Lookup returns the highest-priority flow of table that matches p.
	Lookup(table uint8, p *Packet) (openflow.Flow, bool)
	// Get returns the flow with key k, if the table holds one.
	Get(k openflow.Key) (openflow.Flow, bool)
}

// Index holds flow tables for lookups in time independent of the number
// of flows: flows are grouped by the fields and masks they match on (a
// tuple space, as OVS's classifier does), and each group finds its flows
// by a hash of their masked values. A packet is looked up with one hash
// probe per group; a pipeline has a few dozen groups whatever the number
// of hosts.
//
// Flows are kept packed (openflow.Packer, ~20 bytes a flow) and found by
// 32-bit hashes (internal/idhash), told apart by reading them back: about
// 60 bytes a flow, where Go values in maps were ~600 (650 MB at 100,000
// hosts, whose collection made every change wait). Not safe for
// concurrent use (reading a flow uses scratch state).
type Index struct {
	tables map[uint8]*tableIndex
	pk     *openflow.Packer
	st     openflow.PackState
	seed   maphash.Seed
	// recs are the packed flows by slot (slot 0 unused: idhash IDs are
	// never 0); free lists the slots of removed ones.
	recs  []string
	free  []uint32
	byKey idhash.Table // hash of the key → slot
	n     int
	// scratch for reading a flow back
	f openflow.Flow
}

type tableIndex struct {
	groups  map[string]*group // by signature
	hasConj bool              // some flow is a conjunction clause
}

// group is every flow of a table that matches on the same fields under
// the same masks.
type group struct {
	fields  []maskedField
	maxPrio uint16 // of the ordinary flows
	// maxConj is the highest priority of the conjunction clause flows
	// (hasConj says there are any).
	maxConj uint16
	hasConj bool
	flows   idhash.Table // hash of the masked values → slots
	n       int
}

// isClause says whether f is a conjunction clause flow: its actions are
// conjunction actions only (OVS allows nothing else with them).
func isClause(f *openflow.Flow) bool {
	for _, a := range f.Actions {
		if a.Type != openflow.ActConjunction {
			return false
		}
	}
	return len(f.Actions) > 0
}

type maskedField struct {
	f    openflow.Field
	mask uint64
}

// NewIndex indexes flows (one switch's tables).
func NewIndex(flows []openflow.Flow) *Index {
	x := &Index{tables: map[uint8]*tableIndex{}, pk: openflow.NewPacker(), seed: maphash.MakeSeed(),
		recs: make([]string, 1, len(flows)+1)}
	for i := range flows {
		x.add(&flows[i], flows[i].Key())
	}
	return x
}

// Len is the number of flows indexed.
func (x *Index) Len() int { return x.n }

// Apply applies the engine's changes (install: add or replace by key;
// delete: remove by key), keeping the index equal to the table they
// transform.
func (x *Index) Apply(changes []engine.FlowChange) {
	for i := range changes {
		ch := &changes[i]
		if ch.Delete {
			if slot, ok := x.find(ch.Flow.Key()); ok {
				x.remove(slot)
			}
			continue
		}
		x.Put(&ch.Flow)
	}
}

// Put adds f, replacing the flow with its key if there is one: fed the
// flows of an engine.Table (Table.Each) it indexes Desired without it
// being built. f is not kept.
func (x *Index) Put(f *openflow.Flow) {
	k := f.Key()
	if slot, ok := x.find(k); ok {
		if x.read(slot).SameContent(f) {
			return // a shared flow again, from its next owner
		}
		x.remove(slot)
	}
	x.add(f, k)
}

// Get returns the flow with key k.
func (x *Index) Get(k openflow.Key) (openflow.Flow, bool) {
	slot, ok := x.find(k)
	if !ok {
		return openflow.Flow{}, false
	}
	return openflow.CloneFlow(x.read(slot)), true
}

// read reads the flow in slot into the scratch flow.
func (x *Index) read(slot uint32) *openflow.Flow {
	x.st.Reset()
	if _, err := x.pk.ReadFlowString(x.recs[slot], &x.st, &x.f); err != nil {
		// Cannot happen: packed by this index.
		x.f = openflow.Flow{}
	}
	return &x.f
}

// keyHash is the hash of a flow key.
func (x *Index) keyHash(k openflow.Key) uint32 {
	var h maphash.Hash
	h.SetSeed(x.seed)
	h.WriteByte(k.Table)
	h.WriteByte(byte(k.Priority >> 8))
	h.WriteByte(byte(k.Priority))
	h.WriteString(k.Match)
	return idhash.Hash32(h.Sum64())
}

// find is the slot of the flow with key k.
func (x *Index) find(k openflow.Key) (uint32, bool) {
	return x.byKey.Find(x.keyHash(k), func(slot uint32) bool {
		f := x.read(slot)
		return f.Table == k.Table && f.Priority == k.Priority && f.Key().Match == k.Match
	})
}

func maskOf(fm openflow.FieldMatch) uint64 {
	if fm.HasMask {
		return fm.Mask
	}
	return fullMask(fm.Field)
}

// appendSignature appends the fields and masks m matches on.
func appendSignature(b []byte, m openflow.Match) []byte {
	for _, fm := range m {
		b = append(b, byte(fm.Field))
		b = binary.BigEndian.AppendUint64(b, maskOf(fm))
	}
	return b
}

func fieldsOf(m openflow.Match) []maskedField {
	fields := make([]maskedField, len(m))
	for i, fm := range m {
		fields[i] = maskedField{fm.Field, maskOf(fm)}
	}
	return fields
}

// appendValues appends the masked values of a group's fields.
func appendValues(b []byte, fields []maskedField, get func(i int) uint64) []byte {
	for i, mf := range fields {
		b = binary.BigEndian.AppendUint64(b, get(i)&mf.mask)
	}
	return b
}

// valuesHash is the hash of a group's masked values.
func (x *Index) valuesHash(fields []maskedField, get func(i int) uint64) uint32 {
	var kb [320]byte
	return idhash.Hash32(maphash.Bytes(x.seed, appendValues(kb[:0], fields, get)))
}

// sameValues says whether f (of group g) matches the masked values vals.
func sameValues(g *group, f *openflow.Flow, get func(i int) uint64) bool {
	if len(f.Match) != len(g.fields) {
		return false
	}
	for i, mf := range g.fields {
		if f.Match[i].Value&mf.mask != get(i)&mf.mask {
			return false
		}
	}
	return true
}

// add indexes f, whose key is k.
func (x *Index) add(f *openflow.Flow, k openflow.Key) {
	t := x.tables[f.Table]
	if t == nil {
		t = &tableIndex{groups: map[string]*group{}}
		x.tables[f.Table] = t
	}
	var sb [320]byte
	sig := appendSignature(sb[:0], f.Match)
	g := t.groups[string(sig)]
	if g == nil {
		g = &group{fields: fieldsOf(f.Match)}
		t.groups[string(sig)] = g
	}
	if isClause(f) {
		g.maxConj, g.hasConj, t.hasConj = max(g.maxConj, f.Priority), true, true
	} else {
		g.maxPrio = max(g.maxPrio, f.Priority)
	}
	x.st.Reset()
	rec := string(x.pk.AppendFlow(nil, &x.st, f))
	var slot uint32
	if n := len(x.free); n > 0 {
		slot, x.free = x.free[n-1], x.free[:n-1]
		x.recs[slot] = rec
	} else {
		slot = uint32(len(x.recs))
		x.recs = append(x.recs, rec)
	}
	g.flows.Add(x.valuesHash(g.fields, func(i int) uint64 { return f.Match[i].Value }), slot)
	g.n++
	x.byKey.Add(x.keyHash(k), slot)
	x.n++
}

// remove takes out the flow in slot.
func (x *Index) remove(slot uint32) {
	f := openflow.CloneFlow(x.read(slot))
	x.byKey.Remove(x.keyHash(f.Key()), slot)
	x.recs[slot] = ""
	x.free = append(x.free, slot)
	x.n--
	t := x.tables[f.Table]
	if t == nil {
		return
	}
	var sb [320]byte
	sig := string(appendSignature(sb[:0], f.Match))
	g := t.groups[sig]
	if g == nil {
		return
	}
	if g.flows.Remove(x.valuesHash(g.fields, func(i int) uint64 { return f.Match[i].Value }), slot) {
		g.n--
	}
	if g.n == 0 {
		delete(t.groups, sig)
	}
}

// each calls fn with every flow of group g whose masked values are p's
// (fn's flow is scratch: cloned if kept).
func (x *Index) each(g *group, p *Packet, fn func(f *openflow.Flow)) {
	get := func(i int) uint64 { return p.Get(g.fields[i].f) }
	g.flows.Find(x.valuesHash(g.fields, get), func(slot uint32) bool {
		f := x.read(slot)
		if sameValues(g, f, get) {
			fn(f)
		}
		return false // every flow under the hash
	})
}

// Lookup returns the flow of table that decides for p, as OVS's
// classifier does: the highest-priority ordinary flow that matches, unless
// conjunction clause flows of a higher priority match every clause of a
// conjunction; then the packet is looked up again with conj_id set to
// that conjunction's id (ignoring clause flows), and what that finds
// decides. Flows of equal priority that both match are an ambiguity
// OpenFlow leaves undefined; the pipeline never produces them (of
// conjunctions complete at one priority, the lowest id is taken).
func (x *Index) Lookup(table uint8, p *Packet) (openflow.Flow, bool) {
	t := x.tables[table]
	if t == nil {
		return openflow.Flow{}, false
	}
	best, found := x.ordinary(t, p)
	if !t.hasConj {
		return best, found
	}
	type conj struct {
		prio uint16
		id   uint32
	}
	seen := map[conj]uint64{} // clauses matched, one bit each
	need := map[conj]uint8{}
	for _, g := range t.groups {
		if !g.hasConj || found && g.maxConj <= best.Priority {
			continue
		}
		x.each(g, p, func(f *openflow.Flow) {
			if !isClause(f) || found && f.Priority <= best.Priority {
				return
			}
			for _, a := range f.Actions {
				c := conj{f.Priority, uint32(a.Value)}
				seen[c] |= 1 << (a.Ofs - 1)
				need[c] = a.NBits
			}
		})
	}
	var complete []conj
	for c, bits := range seen {
		if bits == 1<<need[c]-1 {
			complete = append(complete, c)
		}
	}
	sort.Slice(complete, func(i, j int) bool {
		if complete[i].prio != complete[j].prio {
			return complete[i].prio > complete[j].prio
		}
		return complete[i].id < complete[j].id
	})
	for _, c := range complete {
		q := *p
		q.Set(openflow.FieldConjID, uint64(c.id))
		if f, ok := x.ordinary(t, &q); ok {
			return f, true
		}
	}
	return best, found
}

// ordinary is the highest-priority flow of table t that matches p,
// clause flows aside.
func (x *Index) ordinary(t *tableIndex, p *Packet) (openflow.Flow, bool) {
	var best openflow.Flow
	found := false
	for _, g := range t.groups {
		if found && g.maxPrio <= best.Priority {
			continue
		}
		x.each(g, p, func(f *openflow.Flow) {
			if isClause(f) {
				return
			}
			if !found || f.Priority > best.Priority {
				best, found = openflow.CloneFlow(f), true
			}
		})
	}
	return best, found
}

// fullMask is the all-ones mask of a field's value (64 bits at most).
func fullMask(f openflow.Field) uint64 {
	if b := f.Bits(); b < 64 {
		return 1<<b - 1
	}
	return ^uint64(0)
}
