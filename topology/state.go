package topology

import (
	"hash/maphash"
	"math"
	"math/bits"
	"slices"
	"sort"

	"github.com/vpcflow/vpcflow/internal/idhash"
)

// State is the whole topology in memory, with the indexes that keep every
// change O(1) or O(#referrers): one table per kind (objects by key and by
// ID, and the kind's unique values), and, across kinds, who refers to
// whom. It is only ever seen inside Store.Read; its accessors return
// copies.
//
// The indexes are kept small (issue 17: 100,000 hosts in well under 1 KB
// each): unique values are indexed by a hash of the value (the holder is
// checked on a hit, and values whose hash another holds are kept whole
// aside), references by kind and ID, and the strings an object shares
// with the objects it refers to (its VPC's name, its vSwitch's…) are the
// stored ones (interner).
type State struct {
	tables map[string]*table
	// kinds numbers the kinds for the reference index (kindIndex).
	kinds map[string]uint8
	order []kind
	// referrers[target and referring kind] holds the IDs of the objects of
	// that kind that refer to target.
	referrers map[refTarget]refList
	// lastID is the last ID handed out per kind; IDs are never reused.
	lastID map[string]uint32
	// hash is the unique indexes' hash (a seeded maphash; tests make it
	// collide).
	hash func(string) uint64
	// slabs hold the copies a batch keeps (slab.go), while do runs.
	slabs *slabs
}

// refTarget is an object others refer to (its kind, by kindIndex, and
// ID), and the kind of the referring objects listed under it.
type refTarget struct {
	kind, from uint8
	id         uint32
}

// refEntry is the ID of an object that refers to a target.
type refEntry = uint32

// refList is the set of objects referring to one target. Most targets
// have one referrer (a host, its route entry), held inline: the list is
// 16 bytes by value (it was 40, ~100 bytes a host with its map slot and
// the one-entry slice at 100,000 hosts, issue 17). More go to a refMore.
// It is kept by value: callers store it back after add and remove.
type refList struct {
	one  refEntry // the entry, when n == 1 and more is nil
	n    uint32
	more *refMore // every entry, once there were two
}

// refMore holds the entries of a list of several: a short slice while it
// is short, a sparse bitset when it grows (a VPC's hosts: IDs are handed
// out in order, so 64 of them share a word; a set of 100,000 hosts is
// ~30 KB, it was 2.5 MB as a map of IDs).
type refMore struct {
	small []refEntry
	big   map[uint32]uint64 // ID/64 → bit ID%64
}

// refListSmall is how long a refMore stays a slice.
const refListSmall = 16

// table is one kind's objects. They are found by key through a hash of
// the key (internal/idhash: the object found is checked with keyIs), so
// the state keeps no key strings: a host's "vpc/name" and its map slot
// were ~100 bytes of each host at 100,000 (issue 17).
type table struct {
	byKey  idhash.Table // hash of the key → ID
	byID   idTable
	unique map[string]*idhash.Table // by index name: hash of the value → holder ID
}

// keyInVPCer is an object keyed "VPC/NAME": its key is compared without
// building it.
type keyInVPCer interface {
	keyParts() (vpc, name string)
}

// keyIs reports whether o's key is key.
func keyIs(o Object, key string) bool {
	if k, ok := o.(keyInVPCer); ok {
		vpc, name := k.keyParts()
		return len(key) == len(vpc)+1+len(name) && key[len(vpc)] == '/' && key[:len(vpc)] == vpc && key[len(vpc)+1:] == name
	}
	return o.Key() == key
}

// lookup finds the object of table t with key.
func (t *table) lookup(hash func(string) uint64, key string) (Object, bool) {
	id, ok := t.byKey.Find(idhash.Hash32(hash(key)), func(id uint32) bool {
		o := t.byID.at(id)
		return o != nil && keyIs(o, key)
	})
	if !ok {
		return nil, false
	}
	return t.byID.get(id)
}

// put indexes o (already in byID) by key.
func (t *table) put(hash func(string) uint64, key string, o Object) {
	t.byKey.Add(idhash.Hash32(hash(key)), o.ObjectID())
}

// drop removes o's key from the index.
func (t *table) drop(hash func(string) uint64, key string, id uint32) {
	t.byKey.Remove(idhash.Hash32(hash(key)), id)
}

// interner is a kind whose objects share strings with the objects they
// refer to: intern makes o use the stored objects' strings (called before
// o is stored; everything o refers to exists).
type interner interface {
	intern(st *State, o Object)
}

func newState() *State {
	st := &State{
		tables:    map[string]*table{},
		kinds:     map[string]uint8{},
		order:     kinds(),
		referrers: map[refTarget]refList{},
		lastID:    map[string]uint32{},
	}
	seed := maphash.MakeSeed()
	st.hash = func(v string) uint64 { return maphash.String(seed, v) }
	for i, k := range st.order {
		st.tables[k.name()] = &table{byID: newIDTable(), unique: map[string]*idhash.Table{}}
		st.kinds[k.name()] = uint8(i)
	}
	return st
}

// kindIndex numbers k for the reference index.
func (st *State) kindIndex(k kind) uint8 { return st.kinds[k.name()] }

// get returns the stored object (not a copy: callers must not change it).
func (st *State) get(k kind, key string) (Object, bool) {
	return st.tables[k.name()].lookup(st.hash, key)
}

// getByID returns the stored object of a kind with an ID.
func (st *State) getByID(k kind, id uint32) (Object, bool) {
	o, ok := st.tables[k.name()].byID.get(id)
	return o, ok
}

// holdsUnique reports whether o has value in unique index (an object may
// hold several values of one index: a NAT gateway's addresses).
func holdsUnique(k kind, o Object, index, value string) bool {
	for _, u := range k.uniques(o) {
		if u.index == index && u.value == value {
			return true
		}
	}
	return false
}

// holder returns the object of kind k that holds a unique value.
func (st *State) holder(k kind, index, value string) (Object, bool) {
	t := st.tables[k.name()]
	ix := t.unique[index]
	if ix == nil {
		return nil, false
	}
	id, ok := ix.Find(idhash.Hash32(st.hash(value)), func(id uint32) bool {
		o := t.byID.at(id)
		return o != nil && holdsUnique(k, o, index, value)
	})
	if !ok {
		return nil, false
	}
	return t.byID.get(id)
}

// insert adds a resolved object (the state keeps o itself).
func (st *State) insert(o Object) {
	k := o.kind()
	if in, ok := k.(interner); ok {
		in.intern(st, o)
	}
	t := st.tables[k.name()]
	key := o.Key()
	id := o.ObjectID()
	t.byID.set(id, o)
	t.put(st.hash, key, o)
	for _, u := range k.uniques(o) {
		ix := t.unique[u.index]
		if ix == nil {
			ix = &idhash.Table{}
			t.unique[u.index] = ix
		}
		h := idhash.Hash32(st.hash(u.value))
		if _, dup := ix.Find(h, func(other uint32) bool {
			o := t.byID.at(other)
			return other != id && o != nil && holdsUnique(k, o, u.index, u.value)
		}); dup {
			continue // a duplicate let in on load: the first keeps the index
		}
		ix.Add(h, id)
	}
	from := st.kindIndex(k)
	for _, r := range k.refs(o) {
		to, ok := st.get(r.to, r.key)
		if !ok {
			continue // checked before: cannot happen
		}
		tg := refTarget{st.kindIndex(r.to), from, to.ObjectID()}
		l := st.referrers[tg]
		l.add(id)
		st.referrers[tg] = l
	}
}

// remove deletes a stored object (o must be the stored one, or equal to it).
func (st *State) remove(o Object) {
	k := o.kind()
	t := st.tables[k.name()]
	id := o.ObjectID()
	for _, u := range k.uniques(o) {
		ix := t.unique[u.index]
		if ix == nil {
			continue
		}
		ix.Remove(idhash.Hash32(st.hash(u.value)), id)
	}
	from := st.kindIndex(k)
	for _, r := range k.refs(o) {
		to, ok := st.get(r.to, r.key)
		if !ok {
			// Removed before its referrer: the entry stays under an
			// ID that is never handed out again, and readers skip
			// referrers that are gone. Callers remove referrers
			// first.
			continue
		}
		tg := refTarget{st.kindIndex(r.to), from, to.ObjectID()}
		l := st.referrers[tg]
		if l.remove(id) {
			delete(st.referrers, tg)
		} else {
			st.referrers[tg] = l
		}
	}
	t.drop(st.hash, o.Key(), id)
	t.byID.del(id)
}

func (l *refList) add(e refEntry) {
	switch {
	case l.more != nil:
		if l.more.add(e) {
			l.n++
		}
	case l.n == 0:
		l.one, l.n = e, 1
	case l.one != e:
		l.more = &refMore{small: []refEntry{l.one, e}}
		l.one, l.n = 0, 2
	}
}

// remove takes e out and reports whether the list is now empty.
func (l *refList) remove(e refEntry) bool {
	switch {
	case l.more != nil:
		if l.more.remove(e) {
			l.n--
		}
		if l.n == 0 {
			l.more = nil
		}
	case l.n == 1 && l.one == e:
		l.one, l.n = 0, 0
	}
	return l.n == 0
}

func (l *refList) len() int { return int(l.n) }

// each calls fn with every entry until it returns false.
func (l *refList) each(fn func(refEntry) bool) {
	switch {
	case l.more != nil:
		l.more.each(fn)
	case l.n == 1:
		fn(l.one)
	}
}

// add adds e and reports whether it was not there.
func (m *refMore) add(e refEntry) bool {
	if m.big != nil {
		return m.set(e)
	}
	if slices.Contains(m.small, e) {
		return false
	}
	if len(m.small) < refListSmall {
		m.small = append(m.small, e)
		return true
	}
	m.big = map[uint32]uint64{}
	for _, x := range m.small {
		m.set(x)
	}
	m.small = nil
	return m.set(e)
}

// set adds e to big and reports whether it was not there.
func (m *refMore) set(e refEntry) bool {
	w, bit := e/64, uint64(1)<<(e%64)
	if m.big[w]&bit != 0 {
		return false
	}
	m.big[w] |= bit
	return true
}

// remove takes e out and reports whether it was there.
func (m *refMore) remove(e refEntry) bool {
	if m.big != nil {
		w, bit := e/64, uint64(1)<<(e%64)
		v := m.big[w]
		if v&bit == 0 {
			return false
		}
		if v &^= bit; v == 0 {
			delete(m.big, w)
		} else {
			m.big[w] = v
		}
		return true
	}
	i := slices.Index(m.small, e)
	if i < 0 {
		return false
	}
	m.small = slices.Delete(m.small, i, i+1)
	return true
}

func (m *refMore) each(fn func(refEntry) bool) {
	if m.big != nil {
		for w, v := range m.big {
			for ; v != 0; v &= v - 1 {
				if !fn(w*64 + uint32(bits.TrailingZeros64(v))) {
					return
				}
			}
		}
		return
	}
	for _, e := range m.small {
		if !fn(e) {
			return
		}
	}
}

// referrerList is the list of the objects of kind from referring to the
// object of kind k with key.
func (st *State) referrerList(k kind, key string, from kind) (refList, bool) {
	to, ok := st.get(k, key)
	if !ok {
		return refList{}, false
	}
	l, ok := st.referrers[refTarget{st.kindIndex(k), st.kindIndex(from), to.ObjectID()}]
	return l, ok
}

// referrerObjects lists, sorted by key, the objects of kind from that
// refer to the object of kind k with key.
func (st *State) referrerObjects(k kind, key string, from kind) []Object {
	l, ok := st.referrerList(k, key, from)
	if !ok {
		return nil
	}
	byID := &st.tables[from.name()].byID
	out := make([]Object, 0, l.len())
	l.each(func(id refEntry) bool {
		if o, ok := byID.get(id); ok {
			out = append(out, o)
		}
		return true
	})
	if len(out) > 1 {
		keys := make([]string, len(out))
		for i, o := range out {
			keys[i] = o.Key()
		}
		idx := make([]int, len(out))
		for i := range idx {
			idx[i] = i
		}
		sort.Slice(idx, func(a, b int) bool { return lessKey(keys[idx[a]], keys[idx[b]]) })
		sorted := make([]Object, len(out))
		for i, j := range idx {
			sorted[i] = out[j]
		}
		out = sorted
	}
	return out
}

// referrersOf lists, sorted, the keys of the objects of kind from that
// refer to the object of kind k with key.
func (st *State) referrersOf(k kind, key string, from kind) []string {
	objs := st.referrerObjects(k, key, from)
	out := make([]string, len(objs))
	for i, o := range objs {
		out[i] = o.Key()
	}
	return out
}

// eachReferrer calls fn with each object of kind from that refers to the
// object of kind k with key, in no order, until fn returns false. fn must
// not change the state.
func (st *State) eachReferrer(k kind, key string, from kind, fn func(Object) bool) {
	if to, ok := st.get(k, key); ok {
		st.eachReferrerOf(k, to, from, fn)
	}
}

// eachReferrerOf is eachReferrer of to, a stored object of kind k: no
// lookup by key (a cascade walks every referrer of every object it takes).
func (st *State) eachReferrerOf(k kind, to Object, from kind, fn func(Object) bool) {
	l, ok := st.referrers[refTarget{st.kindIndex(k), st.kindIndex(from), to.ObjectID()}]
	if !ok {
		return
	}
	byID := &st.tables[from.name()].byID
	l.each(func(id refEntry) bool {
		o, ok := byID.get(id)
		return !ok || fn(o)
	})
}

// interned returns the stored copy of s when the object of kind k with key
// stores it in the field got reads, else s.
func (st *State) interned(k kind, key, s string, got func(Object) string) string {
	if o, ok := st.get(k, key); ok {
		if v := got(o); v == s {
			return v
		}
	}
	return s
}

// nextID hands out the next ID of a kind.
func (st *State) nextID(k kind) (uint32, *Error) {
	if st.lastID[k.name()] == math.MaxUint32 {
		return 0, Conflict("", "no %s IDs left", k.title())
	}
	st.lastID[k.name()]++
	return st.lastID[k.name()], nil
}

// count is the number of objects of a kind.
func (st *State) count(k kind) int { return st.tables[k.name()].byID.len() }

func sortedKeys(s map[string]struct{}) []string {
	out := make([]string, 0, len(s))
	for k := range s {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ---- generic typed access, used by each kind's accessors ----

// getAs returns a copy of the object of kind k with key, as a T.
func getAs[T any](st *State, k kind, key string) (T, bool) {
	o, ok := st.get(k, key)
	if !ok {
		var zero T
		return zero, false
	}
	return *(any(o.clone()).(*T)), true
}

// getAsByID returns a copy of the object of kind k with ID id.
func getAsByID[T any](st *State, k kind, id uint32) (T, bool) {
	o, ok := st.getByID(k, id)
	if !ok {
		var zero T
		return zero, false
	}
	return *(any(o.clone()).(*T)), true
}

// listAs returns copies of the given objects of kind k, in that order.
func listAs[T any](st *State, k kind, keys []string) []T {
	out := make([]T, 0, len(keys))
	for _, key := range keys {
		if o, ok := st.get(k, key); ok {
			out = append(out, *(any(o.clone()).(*T)))
		}
	}
	return out
}

// allAs returns copies of every object of kind k, sorted by less.
func allAs[T any](st *State, k kind, less func(a, b *T) bool) []T {
	t := st.tables[k.name()]
	out := make([]T, 0, t.byID.len())
	for o := range t.byID.all() {
		out = append(out, *(any(o.clone()).(*T)))
	}
	sort.Slice(out, func(i, j int) bool { return less(&out[i], &out[j]) })
	return out
}

// childrenAs lists, sorted by key, the objects of kind from that refer to
// the object of kind k with key.
func childrenAs[T any](st *State, k kind, key string, from kind) []T {
	objs := st.referrerObjects(k, key, from)
	out := make([]T, 0, len(objs))
	for _, o := range objs {
		out = append(out, *(any(o.clone()).(*T)))
	}
	return out
}
