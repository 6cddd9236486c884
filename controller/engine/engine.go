// Package engine keeps vpcflow's desired flows, as OVN's desired-flow
// table does: every flow is referenced by each owner that wants it (a
// host, a route entry, a chassis), stays until the last one is gone, and
// every change comes out as the difference to what was desired before.
// It is pure: state changes in (a snapshot and the owners to recompute),
// flow changes out; no I/O, no locks (its user serializes calls).
//
// What it keeps is small (issue 17: 100,000 hosts in well under 1 KB of
// memory each): each owner's flows packed into one string
// (openflow.Packer: a host's ten flows in about 60 bytes), and, for the
// few flows several owners want, one copy of the flow with a count.
//
// A flow whose cookie names the owner that produces it (a host's flows
// carry HostCookie(its id), a route entry's SubnetCookie(its id)) is that
// owner's alone: no other owner produces the same table, priority and
// match. Every other flow (a vSwitch's ARP answer produced by each of its
// hosts, per-datapath flows produced by the hosts there) is shared and
// counted per owner that wants it.
package engine

import (
	"encoding/binary"
	"slices"
	"unsafe"

	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/internal/arena"
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
	p  *pipeline.Pipeline
	pk *openflow.Packer
	// recs holds each owner's flows as one packed record (see pack).
	recs ownerRecords
	// shared are the flows whose cookie does not name the owner that
	// wants them, per datapath and key, with how many owners want each
	// content.
	shared map[uint64]map[openflow.Key]*sharedFlow
	// counts is the number of desired flows (defaults left out) per
	// datapath and table, kept as flows come and go.
	counts map[uint64]map[uint8]int
	// dpids interns the datapaths records refer to.
	dpids  []uint64
	dpidIx map[uint64]uint32

	// scratch for Update
	st      openflow.PackState
	buf     []byte
	olds    []placed
	oldUsed []bool
	news    []pipeline.PlacedFlow // an owner's computed flows (cleared after)
	// newKeys and oldKeys index an owner's new and old flows by slot when
	// it has more than 32 (keyindex.go); newHash holds the new ones'
	// hashes and newDropped marks those dedupe drops.
	newKeys, oldKeys keyIndex
	newHash          []uint64
	newDropped       []bool
	// staged are the records an update packed into buf, stored once the
	// whole batch is computed (see storeStaged).
	staged []stagedRecord
}

// stagedRecord is an owner's new record: buf[start:end].
type stagedRecord struct {
	owner      pipeline.Owner
	start, end int
}

// recordChunkLen is the size of the arrays a batch's records are stored
// in (storeStaged): Go's span for small objects.
const recordChunkLen = 8192

// maxKeptBuf is the largest scratch buffer an engine keeps between
// updates: a start-up packs every record into it.
const maxKeptBuf = 64 << 10

// sharedFlow is a flow several owners want. variants[0] is the one
// desired; owners that want the same key with other content (a conflict
// the pipeline should not produce) wait behind it, first come first.
type sharedFlow struct {
	variants []variant
}

type variant struct {
	flow openflow.Flow
	n    int // owners that want this content
}

// placed is a flow and its datapath.
type placed struct {
	dpid uint64
	flow openflow.Flow
}

// slot is where a flow lives: datapath and flow key.
type slot struct {
	dpid uint64
	key  openflow.Key
}

// New returns an empty engine for pipeline p.
func New(p *pipeline.Pipeline) *Engine {
	return &Engine{p: p, pk: openflow.NewPacker(),
		shared: map[uint64]map[openflow.Key]*sharedFlow{}, counts: map[uint64]map[uint8]int{},
		dpidIx: map[uint64]uint32{}}
}

// Pipeline is the engine's pipeline.
func (e *Engine) Pipeline() *pipeline.Pipeline { return e.p }

// Owners lists every owner that has flows now.
func (e *Engine) Owners() []pipeline.Owner {
	out := make([]pipeline.Owner, 0, e.recs.len())
	for o := range e.recs.all() {
		out = append(out, o)
	}
	return out
}

// ownsAlone reports whether flow f, wanted by o, is o's alone: its cookie
// names o.
func ownsAlone(o pipeline.Owner, cookie uint64) bool {
	ck := pipeline.ParseCookie(cookie)
	return ck.Ours && ck.Owner == o.Kind && ck.ID == o.ID
}

// sameKey reports whether two flows are the same entry of a switch.
func sameKey(a, b *openflow.Flow) bool {
	return a.Table == b.Table && a.Priority == b.Priority && slices.Equal(a.Match, b.Match)
}

// Update recomputes the flows of owners from snapshot s and returns what
// changed, per datapath, deletes first, each sorted (see OrderChanges).
// An owner that no longer exists in s simply wants nothing any more.
func (e *Engine) Update(s *pipeline.Snapshot, owners []pipeline.Owner) map[uint64][]FlowChange {
	out := &changeSet{lists: map[uint64][]FlowChange{}}
	e.updateAll(s, owners, out)
	for dpid, cs := range out.lists {
		if len(cs) == 0 {
			delete(out.lists, dpid)
			continue
		}
		OrderChanges(cs)
	}
	return out.lists
}

// UpdatePacked is Update with each datapath's changes packed as they are
// computed (PackedChanges), deletes first: what a switch is sent. No
// change is held as a Go value beyond its owner's computation, so a bulk
// load of 5,000 hosts no longer builds 65,000 of them (~20 MB, the peak
// of a bulk load, issue 17) to pack or send. Deletes and installs are
// each by table and priority (see packing), within those in the order
// computed.
func (e *Engine) UpdatePacked(s *pipeline.Snapshot, owners []pipeline.Owner) map[uint64]*PackedChanges {
	out := &changeSet{packing: map[uint64]*packing{}, pk: e.pk}
	e.updateAll(s, owners, out)
	return out.packed()
}

// Load is Update without the changes: for a start-up that fills the
// engine from the store, when nothing is installed from it (switches get
// the desired table when they reconcile). Producing and sorting a million
// changes only to drop them was a third of a 100,000-host start-up, and
// their garbage the memory a restart left behind (issue 17).
func (e *Engine) Load(s *pipeline.Snapshot, owners []pipeline.Owner) {
	e.updateAll(s, owners, nil)
}

// changeSet collects flow changes per datapath: as lists (Update) or
// packed as they come (UpdatePacked); a nil one drops them (Load).
type changeSet struct {
	lists   map[uint64][]FlowChange
	packing map[uint64]*packing
	pk      *openflow.Packer
	st      openflow.PackState
}

// packing is one datapath's changes being packed, in parts by kind
// (deletes first), table and priority: sent in that order, as a sorted
// list would be. Changes in the order computed, a host's ten flows in ten
// tables after one another, made OVS take ~5 % longer over a bulk load
// (issue 17).
type packing struct {
	parts map[partKey]*packedPart
}

type partKey struct {
	install  bool // deletes (false) first
	table    uint8
	priority uint16
}

type packedPart struct {
	buf []byte
	n   int
}

// add records fc, whose flow is kept as it is (lists) or packed now.
func (c *changeSet) add(dpid uint64, fc FlowChange) {
	switch {
	case c == nil:
	case c.lists != nil:
		c.lists[dpid] = append(c.lists[dpid], fc)
	default:
		c.pack(dpid, fc.Delete, &fc.Flow)
	}
}

// addScratch records a change of flow f, which is scratch (reused after
// this): a list keeps a copy.
func (c *changeSet) addScratch(dpid uint64, del bool, f *openflow.Flow) {
	switch {
	case c == nil:
	case c.lists != nil:
		c.lists[dpid] = append(c.lists[dpid], FlowChange{Delete: del, Flow: openflow.CloneFlow(f)})
	default:
		c.pack(dpid, del, f)
	}
}

func (c *changeSet) pack(dpid uint64, del bool, f *openflow.Flow) {
	p := c.packing[dpid]
	if p == nil {
		p = &packing{parts: map[partKey]*packedPart{}}
		c.packing[dpid] = p
	}
	k := partKey{install: !del, table: f.Table, priority: f.Priority}
	part := p.parts[k]
	if part == nil {
		part = &packedPart{}
		p.parts[k] = part
	}
	flag := packedInstall
	if del {
		flag = packedDelete
	}
	c.st.Reset()
	part.buf = c.pk.AppendFlow(append(part.buf, flag), &c.st, f)
	part.n++
}

// packed is every datapath's changes, deletes first, read with one
// frozen copy of the packer.
func (c *changeSet) packed() map[uint64]*PackedChanges {
	out := make(map[uint64]*PackedChanges, len(c.packing))
	if len(c.packing) == 0 {
		return out
	}
	pk := c.pk.Freeze()
	for dpid, p := range c.packing {
		keys := make([]partKey, 0, len(p.parts))
		size := 0
		for k, part := range p.parts {
			keys = append(keys, k)
			size += len(part.buf)
		}
		slices.SortFunc(keys, func(a, b partKey) int {
			switch {
			case a.install != b.install:
				if b.install {
					return -1
				}
				return 1
			case a.table != b.table:
				return int(a.table) - int(b.table)
			}
			return int(b.priority) - int(a.priority)
		})
		pc := &PackedChanges{pk: pk, buf: make([]byte, 0, size)}
		for _, k := range keys {
			part := p.parts[k]
			pc.buf = append(pc.buf, part.buf...)
			pc.n += part.n
			if k.install {
				pc.adds += part.n
			} else {
				pc.dels += part.n
			}
		}
		out[dpid] = pc
	}
	return out
}

// updateAll recomputes owners into out (nil: the changes are not wanted).
func (e *Engine) updateAll(s *pipeline.Snapshot, owners []pipeline.Owner, out *changeSet) {
	// before records, for every shared slot touched, the flow desired
	// there before this update (nil: none), so that the result is the net
	// difference however many owners touched it.
	before := map[slot]*openflow.Flow{}
	seen := make(map[pipeline.Owner]bool, len(owners))
	for _, o := range owners {
		if seen[o] {
			continue
		}
		seen[o] = true
		e.update(s, o, out, before)
	}
	e.storeStaged()
	for sl, was := range before {
		now, ok := e.desiredShared(sl)
		switch {
		case !ok && was != nil:
			out.add(sl.dpid, FlowChange{Delete: true, Flow: *was})
		case ok && (was == nil || !was.SameContent(now)):
			out.add(sl.dpid, FlowChange{Flow: *now})
		}
	}
}

// update recomputes one owner: its private flows' changes go to out
// directly, its shared flows are counted and their slots noted in before.
func (e *Engine) update(s *pipeline.Snapshot, o pipeline.Owner, out *changeSet, before map[slot]*openflow.Flow) {
	old, _ := e.recs.get(o)
	olds := e.unpack(old, e.olds[:0])
	e.olds = olds
	e.news = e.p.AppendFlows(e.news[:0], s, o)
	news, hashes := e.dedupe(e.news)
	defer e.releaseNews()
	used := e.oldUsed[:0]
	for range olds {
		used = append(used, false)
	}
	e.oldUsed = used
	indexed := len(olds) > 32 // old flows by slot, for owners with many flows
	if indexed {
		e.oldKeys.reset(len(olds))
		for i := range olds {
			e.oldKeys.add(slotHash(olds[i].dpid, &olds[i].flow), i)
		}
	}
	find := func(k int) int {
		pf := &news[k]
		same := func(i int) bool { return olds[i].dpid == pf.DPID && sameKey(&olds[i].flow, &pf.Flow) }
		if indexed {
			h := slotHash(pf.DPID, &pf.Flow)
			if hashes != nil {
				h = hashes[k]
			}
			return e.oldKeys.find(h, same)
		}
		for i := range olds {
			if same(i) {
				return i
			}
		}
		return -1
	}
	for k := range news {
		nf := &news[k]
		alone := ownsAlone(o, nf.Flow.Cookie)
		i := find(k)
		if i >= 0 {
			used[i] = true
			of := &olds[i].flow
			oldAlone := ownsAlone(o, of.Cookie)
			if alone && oldAlone {
				if !of.SameContent(&nf.Flow) {
					out.add(nf.DPID, FlowChange{Flow: nf.Flow})
				}
				continue
			}
			if !alone && !oldAlone && of.SameContent(&nf.Flow) {
				continue
			}
			// The flow changed hands between private and shared, or its
			// shared content changed: let go of the old, take the new.
			e.drop(o, olds[i].dpid, of, out, before)
		}
		e.take(o, nf.DPID, &nf.Flow, out, before)
	}
	for i := range olds {
		if !used[i] {
			e.drop(o, olds[i].dpid, &olds[i].flow, out, before)
		}
	}
	if len(news) == 0 {
		e.recs.del(o)
		return
	}
	start := len(e.buf)
	e.buf = e.pack(e.buf, news)
	e.staged = append(e.staged, stagedRecord{o, start, len(e.buf)})
}

// releaseNews lets go of the matches and actions of the owner just
// computed (what news still points at is garbage now) and of a set too
// large to keep.
func (e *Engine) releaseNews() {
	if cap(e.news) > maxKeptNews {
		e.news = nil
		return
	}
	clear(e.news)
	e.news = e.news[:0]
}

// maxKeptNews is the most flows of one owner whose slots an engine keeps
// for the next owner.
const maxKeptNews = 1024

// storeStaged stores the records the batch packed, one after the other
// in arrays of up to recordChunkLen shared by the batch's records: made
// one by one as each owner was computed, they sat between that
// computation's garbage, and the half-empty spans they kept were ~20 % of
// the heap after a bulk load (issue 17); made one by one here, each its
// own string, they still shared spans with what other goroutines
// allocated meanwhile (the next request's decoding). An array one live
// record keeps costs what the span a string of its own kept would.
func (e *Engine) storeStaged() {
	a := arena.NewBytes(len(e.buf), recordChunkLen)
	for _, r := range e.staged {
		e.recs.set(r.owner, arena.String(&a, e.buf[r.start:r.end]))
	}
	e.staged = e.staged[:0]
	e.buf = e.buf[:0]
	if cap(e.buf) > maxKeptBuf {
		e.buf = nil
		e.staged = nil
	}
}

// take records that o wants flow f on dpid (f is not o's yet).
func (e *Engine) take(o pipeline.Owner, dpid uint64, f *openflow.Flow, out *changeSet, before map[slot]*openflow.Flow) {
	if ownsAlone(o, f.Cookie) {
		out.add(dpid, FlowChange{Flow: *f})
		e.count(dpid, f.Table, 1)
		return
	}
	sl := slot{dpid, f.Key()}
	e.touch(sl, before)
	t := e.shared[dpid]
	if t == nil {
		t = map[openflow.Key]*sharedFlow{}
		e.shared[dpid] = t
	}
	sf := t[sl.key]
	if sf == nil {
		t[sl.key] = &sharedFlow{variants: []variant{{flow: openflow.CloneFlow(f), n: 1}}}
		e.count(dpid, f.Table, 1)
		return
	}
	for i := range sf.variants {
		if sf.variants[i].flow.SameContent(f) {
			sf.variants[i].n++
			return
		}
	}
	sf.variants = append(sf.variants, variant{flow: openflow.CloneFlow(f), n: 1})
}

// drop records that o no longer wants flow f on dpid (f was o's; it is
// scratch: copied if kept).
func (e *Engine) drop(o pipeline.Owner, dpid uint64, f *openflow.Flow, out *changeSet, before map[slot]*openflow.Flow) {
	if ownsAlone(o, f.Cookie) {
		out.addScratch(dpid, true, f)
		e.count(dpid, f.Table, -1)
		return
	}
	sl := slot{dpid, f.Key()}
	e.touch(sl, before)
	t := e.shared[dpid]
	sf := t[sl.key]
	if sf == nil {
		return
	}
	for i := range sf.variants {
		if sf.variants[i].flow.SameContent(f) {
			if sf.variants[i].n--; sf.variants[i].n == 0 {
				sf.variants = append(sf.variants[:i], sf.variants[i+1:]...)
			}
			break
		}
	}
	if len(sf.variants) == 0 {
		delete(t, sl.key)
		if len(t) == 0 {
			delete(e.shared, dpid)
		}
		e.count(dpid, f.Table, -1)
	}
}

// touch notes what a shared slot held before this update's first change
// to it.
func (e *Engine) touch(sl slot, before map[slot]*openflow.Flow) {
	if _, ok := before[sl]; ok {
		return
	}
	if f, ok := e.desiredShared(sl); ok {
		c := *f
		before[sl] = &c
	} else {
		before[sl] = nil
	}
}

func (e *Engine) desiredShared(sl slot) (*openflow.Flow, bool) {
	sf := e.shared[sl.dpid][sl.key]
	if sf == nil {
		return nil, false
	}
	return &sf.variants[0].flow, true
}

func (e *Engine) count(dpid uint64, table uint8, d int) {
	c := e.counts[dpid]
	if c == nil {
		c = map[uint8]int{}
		e.counts[dpid] = c
	}
	if c[table] += d; c[table] <= 0 {
		delete(c, table)
		if len(c) == 0 {
			delete(e.counts, dpid)
		}
	}
}

// dedupe drops all but the last of an owner's flows with the same
// datapath and key (one owner producing one key twice: the last counts),
// in place. For more than 32 flows it indexes them (e.newKeys) and also
// returns the hash of each flow it keeps (slotHash), else nil.
func (e *Engine) dedupe(fs []pipeline.PlacedFlow) ([]pipeline.PlacedFlow, []uint64) {
	if len(fs) < 2 {
		return fs, nil
	}
	if len(fs) <= 32 {
		out := fs[:0]
		for i := range fs {
			dup := false
			for j := i + 1; j < len(fs); j++ {
				if fs[j].DPID == fs[i].DPID && sameKey(&fs[j].Flow, &fs[i].Flow) {
					dup = true
					break
				}
			}
			if !dup {
				out = append(out, fs[i])
			}
		}
		return out, nil
	}
	// Each flow is indexed; one whose slot an earlier flow holds takes
	// its place (the later wins), marked in dropped.
	e.newKeys.reset(len(fs))
	hashes := e.newHash[:0]
	dropped := e.newDropped[:0]
	for i := range fs {
		h := slotHash(fs[i].DPID, &fs[i].Flow)
		if j := e.newKeys.find(h, func(j int) bool {
			return !dropped[j] && fs[j].DPID == fs[i].DPID && sameKey(&fs[j].Flow, &fs[i].Flow)
		}); j >= 0 {
			dropped[j] = true
		}
		e.newKeys.add(h, i)
		hashes = append(hashes, h)
		dropped = append(dropped, false)
	}
	out := fs[:0]
	kept := hashes[:0]
	for i := range fs {
		if !dropped[i] {
			out = append(out, fs[i])
			kept = append(kept, hashes[i])
		}
	}
	e.newHash, e.newDropped = hashes, dropped
	return out, kept
}

// A record is an owner's flows packed: the number of datapaths and the
// index of each (in e.dpids), then the flows (openflow.Packer), each
// preceded by its datapath's place in that list when there are several.

func (e *Engine) dpidIndex(dpid uint64) uint32 {
	if i, ok := e.dpidIx[dpid]; ok {
		return i
	}
	i := uint32(len(e.dpids))
	e.dpids = append(e.dpids, dpid)
	e.dpidIx[dpid] = i
	return i
}

// pack appends an owner's flows, packed as one record, to b.
func (e *Engine) pack(b []byte, fs []pipeline.PlacedFlow) []byte {
	var ds [8]uint64
	dps := ds[:0]
	for i := range fs {
		if !slices.Contains(dps, fs[i].DPID) {
			dps = append(dps, fs[i].DPID)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(dps)))
	for _, d := range dps {
		b = binary.AppendUvarint(b, uint64(e.dpidIndex(d)))
	}
	e.st.Reset()
	for i := range fs {
		if len(dps) > 1 {
			b = binary.AppendUvarint(b, uint64(slices.Index(dps, fs[i].DPID)))
		}
		b = e.pk.AppendFlow(b, &e.st, &fs[i].Flow)
	}
	return b
}

// recordReader reads the flows of records; it holds what it needs of the
// engine (the packer and the datapaths as of when it was made), so a copy
// made under the engine's lock reads on without it.
type recordReader struct {
	pk    *openflow.Packer
	dpids []uint64
	st    openflow.PackState
}

func (e *Engine) reader() *recordReader {
	return &recordReader{pk: e.pk, dpids: e.dpids}
}

// frozenReader is a reader that stays valid while the engine changes.
func (e *Engine) frozenReader() *recordReader {
	return &recordReader{pk: e.pk.Freeze(), dpids: e.dpids[:len(e.dpids):len(e.dpids)]}
}

// bytesOf views a record as bytes, without copying; nothing writes them.
func bytesOf(rec string) []byte { return unsafe.Slice(unsafe.StringData(rec), len(rec)) }

// on reports whether record rec has flows on dpid.
func (r *recordReader) on(rec string, dpid uint64) bool {
	b := bytesOf(rec)
	nd, n := binary.Uvarint(b)
	if n <= 0 {
		return false
	}
	b = b[n:]
	for range nd {
		ix, n := binary.Uvarint(b)
		if n <= 0 || ix >= uint64(len(r.dpids)) {
			return false
		}
		if r.dpids[ix] == dpid {
			return true
		}
		b = b[n:]
	}
	return false
}

// each calls fn with every flow of record rec (f is scratch, reused for
// the next flow) until fn returns false.
func (r *recordReader) each(rec string, f *openflow.Flow, fn func(dpid uint64, f *openflow.Flow) bool) {
	b := bytesOf(rec)
	nd, n := binary.Uvarint(b)
	if n <= 0 {
		return
	}
	b = b[n:]
	var ds [8]uint64
	dps := ds[:0]
	for range nd {
		ix, n := binary.Uvarint(b)
		if n <= 0 || ix >= uint64(len(r.dpids)) {
			return
		}
		dps = append(dps, r.dpids[ix])
		b = b[n:]
	}
	r.st.Reset()
	for len(b) > 0 {
		d := uint64(0)
		if len(dps) > 0 {
			d = dps[0]
		}
		if len(dps) > 1 {
			k, n := binary.Uvarint(b)
			if n <= 0 || k >= uint64(len(dps)) {
				return
			}
			d = dps[k]
			b = b[n:]
		}
		var err error
		if b, err = r.pk.ReadFlow(b, &r.st, f); err != nil {
			return
		}
		if !fn(d, f) {
			return
		}
	}
}

// unpack appends the flows of record rec to out, each with its own Match
// and Actions (reusing out's spare elements' backing arrays).
func (e *Engine) unpack(rec string, out []placed) []placed {
	if rec == "" {
		return out
	}
	r := e.reader()
	var f openflow.Flow
	r.each(rec, &f, func(dpid uint64, f *openflow.Flow) bool {
		if len(out) < cap(out) {
			out = out[:len(out)+1]
			p := &out[len(out)-1]
			p.dpid = dpid
			m, a := p.flow.Match[:0], p.flow.Actions[:0]
			p.flow = *f
			p.flow.Match = append(m, f.Match...)
			p.flow.Actions = append(a, f.Actions...)
			return true
		}
		out = append(out, placed{dpid: dpid, flow: openflow.CloneFlow(f)})
		return true
	})
	return out
}

// Desired is the full table vpcflow wants on dpid: the pipeline's defaults
// and every owner's flows there.
func (e *Engine) Desired(dpid uint64) DesiredTable {
	return e.desiredWhere(dpid, func(uint8) bool { return true })
}

// DesiredIn is Desired(dpid) restricted to one table.
func (e *Engine) DesiredIn(dpid uint64, tableID uint8) DesiredTable {
	return e.desiredWhere(dpid, func(t uint8) bool { return t == tableID })
}

func (e *Engine) desiredWhere(dpid uint64, in func(uint8) bool) DesiredTable {
	n := 0
	for t, c := range e.counts[dpid] {
		if in(t) {
			n += c
		}
	}
	t := make(DesiredTable, n+len(e.p.Tables()))
	for _, f := range e.p.Defaults() {
		if in(f.Table) {
			t[f.Key()] = f
		}
	}
	r := e.reader()
	var scratch openflow.Flow
	for _, rec := range e.recs.all() {
		if !r.on(rec, dpid) {
			continue
		}
		r.each(rec, &scratch, func(d uint64, f *openflow.Flow) bool {
			if d == dpid && in(f.Table) {
				c := openflow.CloneFlow(f)
				t[c.Key()] = c
			}
			return true
		})
	}
	for k, sf := range e.shared[dpid] {
		if in(k.Table) {
			t[k] = sf.variants[0].flow
		}
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
	for _, f := range e.p.Defaults() {
		if !e.wants(dpid, &f) {
			out[f.Table]++
		}
	}
	return out
}

// wants reports whether an owner wants a flow with f's key on dpid.
func (e *Engine) wants(dpid uint64, f *openflow.Flow) bool {
	if _, ok := e.shared[dpid][f.Key()]; ok {
		return true
	}
	if ck := pipeline.ParseCookie(f.Cookie); ck.Ours && ck.Owner != pipeline.OwnerPipeline {
		found := false
		if rec, ok := e.recs.get(pipeline.Owner{Kind: ck.Owner, ID: ck.ID}); ok {
			r := e.reader()
			var scratch openflow.Flow
			r.each(rec, &scratch, func(d uint64, g *openflow.Flow) bool {
				found = d == dpid && sameKey(f, g)
				return !found
			})
		}
		return found
	}
	return false
}

// OwnersOf lists the owners that want the flow with key k on dpid. It
// reads every record: for tests and tools.
func (e *Engine) OwnersOf(dpid uint64, k openflow.Key) []pipeline.Owner {
	var out []pipeline.Owner
	r := e.reader()
	var scratch openflow.Flow
	for o, rec := range e.recs.all() {
		if !r.on(rec, dpid) {
			continue
		}
		r.each(rec, &scratch, func(d uint64, f *openflow.Flow) bool {
			if d == dpid && f.Key() == k {
				out = append(out, o)
				return false
			}
			return true
		})
	}
	slices.SortFunc(out, func(a, b pipeline.Owner) int {
		if a.Kind != b.Kind {
			return int(a.Kind) - int(b.Kind)
		}
		return int(a.ID) - int(b.ID)
	})
	return out
}

// Size is the number of desired flows on every datapath together (without
// the defaults).
func (e *Engine) Size() int {
	n := 0
	for _, c := range e.counts {
		for _, k := range c {
			n += k
		}
	}
	return n
}
