package engine

import (
	"hash/maphash"
	"iter"
	"slices"

	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/openflow"
)

// Table is what the engine wants on one datapath (or in one of its
// tables) at the moment it was taken, readable without the engine: the
// owners' packed records are immutable strings, so taking it costs a
// look at each record's header and no flow is unpacked. A switch's
// reconciliation takes it under the caller's lock and diffs against it
// after letting go (Diff).
type Table struct {
	p    *pipeline.Pipeline
	dpid uint64
	only int // table ID, or -1 for every table
	// cookie and cookieMask keep only the flows whose cookie equals
	// cookie under cookieMask, as a switch filters a flow stats request
	// (mask 0: every flow).
	cookie, cookieMask uint64
	r                  *recordReader
	recs               []string // owners' records with flows on dpid
	// extra is the pipeline's defaults (the first nDefaults) and the
	// shared flows on dpid. The table's flows come in Desired's order:
	// defaults, owners' records, shared flows; a later flow with a key
	// replaces an earlier one (an owner's flow a default, the shared
	// winner an owner's copy of a contested key).
	extra     []openflow.Flow
	nDefaults int
}

// Table is what the engine wants on dpid now (the pipeline's defaults and
// every owner's flows there): Desired, without building it.
func (e *Engine) Table(dpid uint64) *Table { return e.table(dpid, -1, e.recs.all()) }

// TableIn is Table(dpid) restricted to one table.
func (e *Engine) TableIn(dpid uint64, tableID uint8) *Table {
	return e.table(dpid, int(tableID), e.recs.all())
}

// TableSlice is TableIn restricted to the flows whose cookie equals
// cookie under mask: what a flow stats request for that table, cookie and
// mask (openflow.Switch.DumpCookie) returns from a switch that holds
// exactly the desired flows. Drift checks read a big table a slice at a
// time this way.
//
// Owners whose ID is outside the slice are skipped without reading their
// records: an owner's flows carry its ID in their cookie's low 32 bits
// (TestTableSliceIsTheSwitchsAnswer), so the mask should lie within them;
// a mask of low bits (2^k-1) looks at those owners only.
// Two flows with one key but cookies in different slices (a shared flow's
// variants, an owner's flow over a default) make a slice differ from the
// switch's answer where the whole table would not: a caller repairs only
// from a whole table.
func (e *Engine) TableSlice(dpid uint64, tableID uint8, cookie, mask uint64) *Table {
	owners := e.recs.all()
	if mask != 0 && mask <= 0xffffffff {
		owners = e.recs.masked(uint32(mask), uint32(cookie))
	}
	t := e.table(dpid, int(tableID), owners)
	if mask != 0 {
		t.cookie, t.cookieMask = cookie&mask, mask
		out := func(f openflow.Flow) bool { return !t.in(&f) }
		defaults := slices.DeleteFunc(slices.Clone(t.extra[:t.nDefaults]), out)
		shared := slices.DeleteFunc(t.extra[t.nDefaults:], out)
		t.extra, t.nDefaults = append(defaults, shared...), len(defaults)
	}
	return t
}

// table takes the records of owners (every owner's, or a slice's).
func (e *Engine) table(dpid uint64, only int, owners iter.Seq2[pipeline.Owner, string]) *Table {
	t := &Table{p: e.p, dpid: dpid, only: only, r: e.frozenReader()}
	for _, rec := range owners {
		if t.r.on(rec, dpid) {
			t.recs = append(t.recs, rec)
		}
	}
	for _, f := range e.p.Defaults() {
		if t.inTable(f.Table) {
			t.extra = append(t.extra, f)
		}
	}
	t.nDefaults = len(t.extra)
	for k, sf := range e.shared[dpid] {
		if t.inTable(k.Table) {
			t.extra = append(t.extra, sf.variants[0].flow)
		}
	}
	return t
}

func (t *Table) inTable(table uint8) bool { return t.only < 0 || int(table) == t.only }

// in reports whether f belongs to t: its table, and its cookie in t's
// slice.
func (t *Table) in(f *openflow.Flow) bool {
	return t.inTable(f.Table) && f.Cookie&t.cookieMask == t.cookie
}

// each calls the functions with the table's flows in Desired's order
// (see Table.extra): extra(i) for t.extra[i], record(i) for t.recs[i].
func (t *Table) each(extra func(i int), record func(i int)) {
	for i := range t.nDefaults {
		extra(i)
	}
	for i := range t.recs {
		record(i)
	}
	for i := t.nDefaults; i < len(t.extra); i++ {
		extra(i)
	}
}

// Each calls fn with every flow of the table, in an order in which a
// later flow with a key replaces an earlier one: what fn keeps by key is
// Desired (TestTableEachIsDesired). f is scratch: fn copies what it
// keeps. A million-flow table is read this way without a DesiredTable
// (~350 bytes a flow) built under the caller's lock.
func (t *Table) Each(fn func(f *openflow.Flow)) {
	var scratch openflow.Flow
	t.each(func(i int) { fn(&t.extra[i]) }, func(i int) {
		t.eachRecordFlow(i, &scratch, func(_ int, f *openflow.Flow) { fn(f) })
	})
}

// eachRecordFlow calls fn with every flow record i has on the table's
// datapath (f is scratch) and its position in the record.
func (t *Table) eachRecordFlow(i int, f *openflow.Flow, fn func(ord int, f *openflow.Flow)) {
	ord := -1
	t.r.each(t.recs[i], f, func(d uint64, f *openflow.Flow) bool {
		ord++
		if d == t.dpid && t.in(f) {
			fn(ord, f)
		}
		return true
	})
}

// TableDiff compares the flows a switch reports, one at a time as its
// dump arrives, with a Table, and says what to change: DiffTable without
// holding either side whole. It indexes the desired flows by a 128-bit
// hash of their key (two 64-bit hashes with seeds of its own, so a
// collision between two different keys has a chance of 2^-128) and a
// 64-bit hash of their content.
type TableDiff struct {
	t            *Table
	seed1, seed2 maphash.Seed
	seedC        maphash.Seed
	index        map[uint64]int32 // first hash of a key → first want with it
	wants        []tableWant
	found        int
	dels         []FlowChange
	stale        []int32 // wants whose installed content differs
	buf          []byte
}

type tableWant struct {
	h2, content uint64
	rec         int32 // index in t.recs, or -1-i for t.extra[i]
	ord         int32 // the flow's position in its record
	next        int32 // next want whose key has the same first hash, or -1
	seen        bool
}

// Diff starts comparing t with a switch's flows: it indexes every desired
// flow (a few hundred nanoseconds each).
func (t *Table) Diff() *TableDiff {
	d := &TableDiff{t: t, seed1: maphash.MakeSeed(), seed2: maphash.MakeSeed(), seedC: maphash.MakeSeed()}
	n := len(t.extra)
	for range t.recs {
		n += 8
	}
	d.index = make(map[uint64]int32, n)
	d.wants = make([]tableWant, 0, n)
	var scratch openflow.Flow
	t.each(func(i int) { d.want(&t.extra[i], int32(-1-i), 0) }, func(i int) {
		t.eachRecordFlow(i, &scratch, func(ord int, f *openflow.Flow) {
			d.want(f, int32(i), int32(ord))
		})
	})
	return d
}

func (d *TableDiff) hashes(f *openflow.Flow) (h1, h2 uint64) {
	d.buf = openflow.AppendKey(d.buf[:0], f)
	return maphash.Bytes(d.seed1, d.buf), maphash.Bytes(d.seed2, d.buf)
}

func (d *TableDiff) contentHash(f *openflow.Flow) uint64 {
	d.buf = openflow.AppendContent(d.buf[:0], f)
	return maphash.Bytes(d.seedC, d.buf)
}

// lookup finds the want with f's key, or -1.
func (d *TableDiff) lookup(h1, h2 uint64) int32 {
	i, ok := d.index[h1]
	if !ok {
		return -1
	}
	for ; i >= 0; i = d.wants[i].next {
		if d.wants[i].h2 == h2 {
			return i
		}
	}
	return -1
}

// want indexes one desired flow; a later flow with the same key replaces
// an earlier one (an owner's flow replaces a default, as in Desired).
func (d *TableDiff) want(f *openflow.Flow, rec, ord int32) {
	h1, h2 := d.hashes(f)
	w := tableWant{h2: h2, content: d.contentHash(f), rec: rec, ord: ord, next: -1}
	if i := d.lookup(h1, h2); i >= 0 {
		w.next = d.wants[i].next
		d.wants[i] = w
		return
	}
	if first, ok := d.index[h1]; ok {
		w.next = first
	}
	d.index[h1] = int32(len(d.wants))
	d.wants = append(d.wants, w)
}

// Installed takes one flow the switch has (f may be reused once it
// returns).
func (d *TableDiff) Installed(f *openflow.Flow) {
	if !d.t.in(f) {
		return
	}
	h1, h2 := d.hashes(f)
	i := d.lookup(h1, h2)
	if i < 0 || d.wants[i].seen {
		if IsManaged(d.t.p, f) {
			d.dels = append(d.dels, FlowChange{Delete: true, Flow: openflow.CloneFlow(f)})
		}
		return
	}
	w := &d.wants[i]
	w.seen = true
	d.found++
	if w.content != d.contentHash(f) {
		d.stale = append(d.stale, i)
	}
}

// Changes is what to send once every installed flow was given: the
// managed flows nobody wants deleted, the missing and different ones
// installed; deletes first, then installs, each ordered as DiffTable
// orders them.
func (d *TableDiff) Changes() []FlowChange {
	need := d.stale
	if d.found < len(d.wants) {
		for i := range d.wants {
			if !d.wants[i].seen {
				need = append(need, int32(i))
			}
		}
	}
	adds := make([]FlowChange, 0, len(need))
	byRec := map[int32][]int32{} // record → positions of the flows needed
	for _, i := range need {
		w := &d.wants[i]
		if w.rec < 0 {
			adds = append(adds, FlowChange{Flow: d.t.extra[-1-w.rec]})
			continue
		}
		byRec[w.rec] = append(byRec[w.rec], w.ord)
	}
	var scratch openflow.Flow
	for rec, ords := range byRec {
		d.t.eachRecordFlow(int(rec), &scratch, func(ord int, f *openflow.Flow) {
			if slices.Contains(ords, int32(ord)) {
				adds = append(adds, FlowChange{Flow: openflow.CloneFlow(f)})
			}
		})
	}
	sortChanges(d.dels)
	sortChanges(adds)
	return append(d.dels, adds...)
}

// Differ is, once every installed flow was given, how many desired flows
// the switch lacks and how many it holds with other actions or cookie.
func (d *TableDiff) Differ() (missing, modified int) {
	return len(d.wants) - d.found, len(d.stale)
}

// Wanted is how many flows the table holds.
func (d *TableDiff) Wanted() int { return len(d.wants) }
