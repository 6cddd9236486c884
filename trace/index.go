package trace

import (
	"encoding/binary"

	"github.com/vpcflow/vpcflow/controller/engine"
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
// tuple space, as OVS's classifier does), and each group is a hash map
// from the masked values to its flows. A packet is looked up with one
// hash probe per group; a pipeline has a few dozen groups whatever the
// number of hosts.
type Index struct {
	tables map[uint8]*tableIndex
	byKey  map[openflow.Key]openflow.Flow
}

type tableIndex struct {
	groups map[string]*group // by signature
}

// group is every flow of a table that matches on the same fields under
// the same masks.
type group struct {
	fields  []maskedField
	maxPrio uint16
	flows   map[string][]openflow.Flow // masked values → flows, highest priority first
}

type maskedField struct {
	f    openflow.Field
	mask uint64
}

// NewIndex indexes flows (one switch's tables).
func NewIndex(flows []openflow.Flow) *Index {
	x := &Index{tables: map[uint8]*tableIndex{}, byKey: make(map[openflow.Key]openflow.Flow, len(flows))}
	for i := range flows {
		x.add(flows[i])
	}
	return x
}

// Len is the number of flows indexed.
func (x *Index) Len() int { return len(x.byKey) }

// Apply applies the engine's changes (install: add or replace by key;
// delete: remove by key), keeping the index equal to the table they
// transform.
func (x *Index) Apply(changes []engine.FlowChange) {
	for _, ch := range changes {
		k := ch.Flow.Key()
		if old, ok := x.byKey[k]; ok {
			x.remove(old)
		}
		if !ch.Delete {
			x.add(ch.Flow)
		}
	}
}

// Get returns the flow with key k.
func (x *Index) Get(k openflow.Key) (openflow.Flow, bool) {
	f, ok := x.byKey[k]
	return f, ok
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

func (x *Index) add(f openflow.Flow) {
	t := x.tables[f.Table]
	if t == nil {
		t = &tableIndex{groups: map[string]*group{}}
		x.tables[f.Table] = t
	}
	var sb, kb [320]byte
	sig := appendSignature(sb[:0], f.Match)
	g := t.groups[string(sig)]
	if g == nil {
		g = &group{fields: fieldsOf(f.Match), flows: map[string][]openflow.Flow{}}
		t.groups[string(sig)] = g
	}
	g.maxPrio = max(g.maxPrio, f.Priority)
	k := appendValues(kb[:0], g.fields, func(i int) uint64 { return f.Match[i].Value })
	list := g.flows[string(k)]
	if len(list) == 0 {
		g.flows[string(k)] = []openflow.Flow{f}
		x.byKey[f.Key()] = f
		return
	}
	pos := len(list)
	for i, o := range list {
		if f.Priority > o.Priority {
			pos = i
			break
		}
	}
	list = append(list, openflow.Flow{})
	copy(list[pos+1:], list[pos:])
	list[pos] = f
	g.flows[string(k)] = list
	x.byKey[f.Key()] = f
}

func (x *Index) remove(f openflow.Flow) {
	delete(x.byKey, f.Key())
	t := x.tables[f.Table]
	if t == nil {
		return
	}
	var sb, kb [320]byte
	sig := string(appendSignature(sb[:0], f.Match))
	g := t.groups[sig]
	if g == nil {
		return
	}
	k := string(appendValues(kb[:0], g.fields, func(i int) uint64 { return f.Match[i].Value }))
	list := g.flows[k]
	for i, o := range list {
		if o.Priority == f.Priority {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(g.flows, k)
	} else {
		g.flows[k] = list
	}
	if len(g.flows) == 0 {
		delete(t.groups, sig)
	}
}

// Lookup returns the highest-priority flow of table matching p. Flows of
// equal priority that both match are an ambiguity OpenFlow leaves
// undefined; the pipeline never produces them.
func (x *Index) Lookup(table uint8, p *Packet) (openflow.Flow, bool) {
	t := x.tables[table]
	if t == nil {
		return openflow.Flow{}, false
	}
	var best openflow.Flow
	found := false
	for _, g := range t.groups {
		if found && g.maxPrio <= best.Priority {
			continue
		}
		var kb [320]byte
		k := appendValues(kb[:0], g.fields, func(i int) uint64 { return p.Get(g.fields[i].f) })
		if list := g.flows[string(k)]; len(list) > 0 && (!found || list[0].Priority > best.Priority) {
			best, found = list[0], true
		}
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
