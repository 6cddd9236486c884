package openflow

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"
)

// Packer writes flows in a compact binary form and reads them back: what
// a controller keeps of every flow it wants, at a few bytes per flow
// instead of the ~200 of a Flow with its Match and Actions.
//
// Every flow has a shape: its table, priority, match fields (with their
// mask flags) and the kinds of its actions, without the values. Shapes
// are interned (a pipeline has a few dozen), and each keeps the values of
// the first flow of its shape as a prototype. A packed flow is its
// shape's number, a bitmap of the values that differ from the prototype,
// and those values: either a reference to an equal value earlier in the
// same record (a host's MAC, port and address recur in most of its
// flows), or the value XOR the prototype's (small when only the low bits
// differ, as between two hosts' cookies or addresses). A host's ten
// flows pack into about 60 bytes.
//
// A Packer only grows (shapes and interned strings are never dropped).
// Its methods are not safe for concurrent use, except those of a frozen
// copy (Freeze), which reads what was interned before it was taken.
type Packer struct {
	shapes []*packShape
	index  map[string]uint32
	exts   []string // interned Action.ext strings (ct, controller userdata); 0 is ""
	extIDs map[string]uint32
	sig    []byte // scratch
}

// packShape is a flow without its values, and the values of the first
// flow packed with it.
type packShape struct {
	table    uint8
	priority uint16
	match    []FieldMatch // Field and HasMask only
	actions  []Action     // everything but the value slots (Value, Mask, Port, ext)
	slots    []uint8      // per action: which value slots it has (slotValue|slotMask|…)
	proto    []uint64     // the prototype's values, in slot order
}

// Value slots of an action, present in a shape when non-zero.
const (
	slotValue uint8 = 1 << iota
	slotMask
	slotPort
	slotExt
)

// maxPackRefs bounds the values a record remembers for references.
const maxPackRefs = 64

// PackState is what a record's flows share while they are written or read
// one after the other: the values seen so far. Reset it between records.
type PackState struct {
	vals [maxPackRefs]uint64
	n    int
}

// Reset starts a new record.
func (st *PackState) Reset() { st.n = 0 }

func (st *PackState) find(v uint64) int {
	for i := range st.n {
		if st.vals[i] == v {
			return i
		}
	}
	return -1
}

func (st *PackState) remember(v uint64) {
	if st.n < maxPackRefs {
		st.vals[st.n] = v
		st.n++
	}
}

// NewPacker returns an empty packer.
func NewPacker() *Packer {
	return &Packer{index: map[string]uint32{}, exts: []string{""}, extIDs: map[string]uint32{"": 0}}
}

// Shapes is how many shapes the packer interned.
func (p *Packer) Shapes() int { return len(p.shapes) }

// Freeze returns a read-only copy that can read (ReadFlow) every flow
// packed so far, safe to use from another goroutine while p goes on
// packing.
func (p *Packer) Freeze() *Packer {
	return &Packer{shapes: p.shapes[:len(p.shapes):len(p.shapes)], exts: p.exts[:len(p.exts):len(p.exts)]}
}

func (p *Packer) extID(s string) uint64 {
	if id, ok := p.extIDs[s]; ok {
		return uint64(id)
	}
	id := uint32(len(p.exts))
	p.exts = append(p.exts, s)
	p.extIDs[s] = id
	return uint64(id)
}

// actionSlots says which value slots a shows.
func actionSlots(a *Action) uint8 {
	var s uint8
	if a.Value != 0 {
		s |= slotValue
	}
	if a.Mask != 0 {
		s |= slotMask
	}
	if a.Port != 0 {
		s |= slotPort
	}
	if a.ext != "" {
		s |= slotExt
	}
	return s
}

// shapeOf finds or interns the shape of f.
func (p *Packer) shapeOf(f *Flow) uint32 {
	b := p.sig[:0]
	b = append(b, f.Table, byte(f.Priority>>8), byte(f.Priority), byte(len(f.Match)))
	for i := range f.Match {
		fm := &f.Match[i]
		h := byte(0)
		if fm.HasMask {
			h = 1
		}
		b = append(b, byte(fm.Field), h)
	}
	b = binary.AppendUvarint(b, uint64(len(f.Actions)))
	for i := range f.Actions {
		a := &f.Actions[i]
		b = append(b, byte(a.Type), byte(a.Field), byte(a.Src), a.Bit, a.Table, a.Ofs, a.SrcOfs, a.NBits, actionSlots(a))
	}
	p.sig = b
	if id, ok := p.index[string(b)]; ok {
		return id
	}
	sh := &packShape{table: f.Table, priority: f.Priority, match: make([]FieldMatch, len(f.Match)),
		actions: make([]Action, len(f.Actions)), slots: make([]uint8, len(f.Actions))}
	for i, fm := range f.Match {
		sh.match[i] = FieldMatch{Field: fm.Field, HasMask: fm.HasMask}
	}
	for i, a := range f.Actions {
		sh.slots[i] = actionSlots(&a)
		a.Value, a.Mask, a.Port, a.ext = 0, 0, 0, ""
		sh.actions[i] = a
	}
	sh.proto = p.values(nil, f)
	id := uint32(len(p.shapes))
	p.shapes = append(p.shapes, sh)
	p.index[string(b)] = id
	return id
}

// values appends f's values in slot order: cookie, each match field's
// value (and mask), each action's value slots.
func (p *Packer) values(out []uint64, f *Flow) []uint64 {
	out = append(out, f.Cookie)
	for i := range f.Match {
		fm := &f.Match[i]
		out = append(out, fm.Value)
		if fm.HasMask {
			out = append(out, fm.Mask)
		}
	}
	for i := range f.Actions {
		a := &f.Actions[i]
		if a.Value != 0 {
			out = append(out, a.Value)
		}
		if a.Mask != 0 {
			out = append(out, a.Mask)
		}
		if a.Port != 0 {
			out = append(out, uint64(a.Port))
		}
		if a.ext != "" {
			out = append(out, p.extID(a.ext))
		}
	}
	return out
}

// AppendFlow appends f, packed, to b. The flows of one record are
// appended one after the other with the same st (Reset first).
func (p *Packer) AppendFlow(b []byte, st *PackState, f *Flow) []byte {
	id := p.shapeOf(f)
	sh := p.shapes[id]
	var arr [48]uint64
	vals := p.values(arr[:0], f)
	b = binary.AppendUvarint(b, uint64(id))
	mapAt := len(b)
	for range (len(vals) + 7) / 8 {
		b = append(b, 0)
	}
	for i, v := range vals {
		pv := sh.proto[i]
		if v == pv {
			continue
		}
		b[mapAt+i/8] |= 1 << (i % 8)
		if k := st.find(v); k >= 0 {
			b = binary.AppendUvarint(b, uint64(k)<<1|1)
			continue
		}
		d := v ^ pv
		if d>>63 == 0 {
			b = binary.AppendUvarint(b, d<<1)
		} else {
			b = append(b, 0)
			b = binary.BigEndian.AppendUint64(b, d)
		}
		st.remember(v)
	}
	return b
}

// errPacked is returned for bytes that are not a packed flow.
var errPacked = errors.New("openflow: not a packed flow")

// ReadFlow reads the flow at the start of b into f and returns the rest
// of b. f's Match and Actions are rebuilt in their own backing arrays,
// reused when they have the capacity (so f can be read into again without
// allocating; CloneFlow what must outlive the next read).
func (p *Packer) ReadFlow(b []byte, st *PackState, f *Flow) ([]byte, error) {
	id, n := binary.Uvarint(b)
	if n <= 0 || id >= uint64(len(p.shapes)) {
		return nil, errPacked
	}
	b = b[n:]
	sh := p.shapes[id]
	nmap := (len(sh.proto) + 7) / 8
	if len(b) < nmap {
		return nil, errPacked
	}
	r := packReader{b: b[nmap:], bits: b[:nmap], proto: sh.proto, st: st}
	f.Table, f.Priority = sh.table, sh.priority
	f.Cookie = r.next()
	f.Match = f.Match[:0]
	for _, fm := range sh.match {
		fm.Value = r.next()
		if fm.HasMask {
			fm.Mask = r.next()
		}
		f.Match = append(f.Match, fm)
	}
	f.Actions = f.Actions[:0]
	for i, a := range sh.actions {
		s := sh.slots[i]
		if s&slotValue != 0 {
			a.Value = r.next()
		}
		if s&slotMask != 0 {
			a.Mask = r.next()
		}
		if s&slotPort != 0 {
			a.Port = uint32(r.next())
		}
		if s&slotExt != 0 {
			v := r.next()
			if v >= uint64(len(p.exts)) {
				return nil, errPacked
			}
			a.ext = p.exts[v]
		}
		f.Actions = append(f.Actions, a)
	}
	if r.bad {
		return nil, errPacked
	}
	return r.b, nil
}

// ReadFlowString is ReadFlow of packed bytes kept as a string (read in
// place, not copied).
func (p *Packer) ReadFlowString(s string, st *PackState, f *Flow) (rest string, err error) {
	b, err := p.ReadFlow(unsafe.Slice(unsafe.StringData(s), len(s)), st, f)
	if err != nil {
		return "", err
	}
	return s[len(s)-len(b):], nil
}

// packReader reads one flow's values.
type packReader struct {
	b, bits []byte
	proto   []uint64
	slot    int
	st      *PackState
	bad     bool
}

func (r *packReader) next() uint64 {
	i := r.slot
	r.slot++
	pv := r.proto[i]
	if r.bits[i/8]&(1<<(i%8)) == 0 {
		return pv
	}
	x, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	if x&1 == 1 {
		if int(x>>1) >= r.st.n {
			r.bad = true
			return 0
		}
		return r.st.vals[x>>1]
	}
	var v uint64
	if x == 0 {
		if len(r.b) < 8 {
			r.bad = true
			return 0
		}
		v = binary.BigEndian.Uint64(r.b) ^ pv
		r.b = r.b[8:]
	} else {
		v = (x >> 1) ^ pv
	}
	r.st.remember(v)
	return v
}

// CloneFlow returns f with its own Match and Actions (for a flow read
// into a reused one with ReadFlow).
func CloneFlow(f *Flow) Flow {
	c := *f
	c.Match = append(Match(nil), f.Match...)
	c.Actions = append([]Action(nil), f.Actions...)
	return c
}

// String describes the packer for logs and tests.
func (p *Packer) String() string {
	return fmt.Sprintf("packer: %d shapes, %d interned strings", len(p.shapes), len(p.exts)-1)
}

// AppendKey appends a canonical binary form of f's key (table, priority,
// match): equal exactly when the keys are (the match is canonical).
func AppendKey(b []byte, f *Flow) []byte {
	b = append(b, f.Table, byte(f.Priority>>8), byte(f.Priority))
	for i := range f.Match {
		fm := &f.Match[i]
		if fm.HasMask {
			b = append(b, byte(fm.Field), 1)
			b = binary.LittleEndian.AppendUint64(b, fm.Value)
			b = binary.LittleEndian.AppendUint64(b, fm.Mask)
		} else {
			b = append(b, byte(fm.Field), 0)
			b = binary.LittleEndian.AppendUint64(b, fm.Value)
		}
	}
	return b
}

// AppendContent appends a canonical binary form of what SameContent
// compares (cookie and actions): equal exactly when SameContent is true.
func AppendContent(b []byte, f *Flow) []byte {
	b = binary.LittleEndian.AppendUint64(b, f.Cookie)
	for i := range f.Actions {
		a := &f.Actions[i]
		b = append(b, byte(a.Type), byte(a.Field), byte(a.Src), a.Bit, a.Table, a.Ofs, a.SrcOfs, a.NBits)
		b = binary.LittleEndian.AppendUint64(b, a.Value)
		b = binary.LittleEndian.AppendUint64(b, a.Mask)
		b = binary.LittleEndian.AppendUint32(b, a.Port)
		b = binary.AppendUvarint(b, uint64(len(a.ext)))
		b = append(b, a.ext...)
	}
	return b
}
