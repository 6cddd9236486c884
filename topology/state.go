package topology

import (
	"math"
	"sort"
)

// State is the whole topology in memory, with the indexes that keep every
// change O(1) or O(#referrers): one table per kind (objects by key and by
// ID, and the kind's unique values), and, across kinds, who refers to
// whom. It is only ever seen inside Store.Read; its accessors return
// copies.
type State struct {
	tables map[string]*table
	// referrers[target][referring kind] holds the keys of the objects of
	// that kind that refer to target.
	referrers map[refTarget]map[string]map[string]struct{}
	// lastID is the last ID handed out per kind; IDs are never reused.
	lastID map[string]uint32
}

type refTarget struct{ kind, key string }

type table struct {
	objs   map[string]Object
	byID   map[uint32]string
	unique map[string]map[string]string // index → value → key of the holder
}

func newState() *State {
	st := &State{
		tables:    map[string]*table{},
		referrers: map[refTarget]map[string]map[string]struct{}{},
		lastID:    map[string]uint32{},
	}
	for _, k := range kinds() {
		st.tables[k.name()] = &table{objs: map[string]Object{}, byID: map[uint32]string{}, unique: map[string]map[string]string{}}
	}
	return st
}

// get returns the stored object (not a copy: callers must not change it).
func (st *State) get(k kind, key string) (Object, bool) {
	o, ok := st.tables[k.name()].objs[key]
	return o, ok
}

// getByID returns the stored object of a kind with an ID.
func (st *State) getByID(k kind, id uint32) (Object, bool) {
	t := st.tables[k.name()]
	key, ok := t.byID[id]
	if !ok {
		return nil, false
	}
	return t.objs[key], true
}

// holder returns the object of kind k that holds a unique value.
func (st *State) holder(k kind, index, value string) (Object, bool) {
	key, ok := st.tables[k.name()].unique[index][value]
	if !ok {
		return nil, false
	}
	return st.get(k, key)
}

// insert adds a resolved object (the state keeps o itself).
func (st *State) insert(o Object) {
	k := o.kind()
	t := st.tables[k.name()]
	key := o.Key()
	t.objs[key] = o
	t.byID[o.ObjectID()] = key
	for _, u := range k.uniques(o) {
		m := t.unique[u.index]
		if m == nil {
			m = map[string]string{}
			t.unique[u.index] = m
		}
		if _, taken := m[u.value]; !taken {
			m[u.value] = key
		}
	}
	for _, r := range k.refs(o) {
		tg := refTarget{r.to.name(), r.key}
		byKind := st.referrers[tg]
		if byKind == nil {
			byKind = map[string]map[string]struct{}{}
			st.referrers[tg] = byKind
		}
		set := byKind[k.name()]
		if set == nil {
			set = map[string]struct{}{}
			byKind[k.name()] = set
		}
		set[key] = struct{}{}
	}
}

// remove deletes a stored object (o must be the stored one, or equal to it).
func (st *State) remove(o Object) {
	k := o.kind()
	t := st.tables[k.name()]
	key := o.Key()
	delete(t.objs, key)
	delete(t.byID, o.ObjectID())
	for _, u := range k.uniques(o) {
		if t.unique[u.index][u.value] == key {
			delete(t.unique[u.index], u.value)
		}
	}
	for _, r := range k.refs(o) {
		tg := refTarget{r.to.name(), r.key}
		byKind := st.referrers[tg]
		delete(byKind[k.name()], key)
		if len(byKind[k.name()]) == 0 {
			delete(byKind, k.name())
		}
		if len(byKind) == 0 {
			delete(st.referrers, tg)
		}
	}
}

// referrersOf lists, sorted, the keys of the objects of kind from that
// refer to the object of kind k with key.
func (st *State) referrersOf(k kind, key string, from kind) []string {
	set := st.referrers[refTarget{k.name(), key}][from.name()]
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return lessKey(out[i], out[j]) })
	return out
}

// eachReferrer calls fn with each object of kind from that refers to the
// object of kind k with key, in no order, until fn returns false. fn must
// not change the state.
func (st *State) eachReferrer(k kind, key string, from kind, fn func(Object) bool) {
	for rk := range st.referrers[refTarget{k.name(), key}][from.name()] {
		o, _ := st.get(from, rk)
		if !fn(o) {
			return
		}
	}
}

// countReferrers counts the objects of kind from that refer to an object.
func (st *State) countReferrers(k kind, key string, from kind) int {
	return len(st.referrers[refTarget{k.name(), key}][from.name()])
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
func (st *State) count(k kind) int { return len(st.tables[k.name()].objs) }

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
	out := make([]T, 0, len(t.objs))
	for _, o := range t.objs {
		out = append(out, *(any(o.clone()).(*T)))
	}
	sort.Slice(out, func(i, j int) bool { return less(&out[i], &out[j]) })
	return out
}

// childrenAs lists, sorted by key, the objects of kind from that refer to
// the object of kind k with key.
func childrenAs[T any](st *State, k kind, key string, from kind) []T {
	return listAs[T](st, from, st.referrersOf(k, key, from))
}
