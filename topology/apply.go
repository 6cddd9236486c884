package topology

import (
	"fmt"
	"sort"
	"strings"
)

// prepare validates op against st and returns it resolved: the object
// copied, defaults and IDs filled in, a delete carrying the whole object,
// Old set. It hands out IDs by advancing st.lastID but changes nothing
// else; the caller then calls mutate with the result.
//
// The checks run in one order for every kind: the object on its own
// (kind.check), the objects it refers to exist (404 naming the field), the
// object against them (kind.validate), its key is free (409 "name"), its
// unique values are free (409 naming the field).
func (st *State) prepare(op Op) (Op, *Error) {
	if op.Obj == nil {
		return Op{}, Invalid("", "a change must carry an object")
	}
	if op.Cascade && op.Kind != OpDelete {
		return Op{}, Invalid("cascade", "only a delete can cascade, not a %s", op.Kind)
	}
	k := op.Obj.kind()
	switch op.Kind {
	case OpCreate:
		return st.prepareCreate(k, st.slabs.copyOf(op.Obj))
	case OpUpdate:
		return st.prepareUpdate(k, st.slabs.copyOf(op.Obj))
	case OpDelete:
		return st.prepareDelete(k, op.Obj, op.Cascade)
	default:
		return Op{}, Invalid("", "unknown change kind %s", op.Kind)
	}
}

func (st *State) prepareCreate(k kind, o Object) (Op, *Error) {
	if err := k.check(o, nil); err != nil {
		return Op{}, err
	}
	st.slabs.ownText(o)
	if err := st.checkRefs(k, o); err != nil {
		return Op{}, err
	}
	if err := k.validate(st, o, nil); err != nil {
		return Op{}, err
	}
	if _, ok := st.get(k, o.Key()); ok {
		return Op{}, Conflict("name", "%s %q already exists%s", k.title(), nameOf(o), inVPCSuffix(k, o))
	}
	if err := st.checkUniques(k, o); err != nil {
		return Op{}, err
	}
	id, err := st.nextID(k)
	if err != nil {
		return Op{}, err
	}
	o.setID(id)
	return Op{Kind: OpCreate, Obj: o}, nil
}

func (st *State) prepareUpdate(k kind, o Object) (Op, *Error) {
	old, err := st.find(k, o)
	if err != nil {
		return Op{}, err
	}
	if err := k.check(o, old); err != nil {
		return Op{}, err
	}
	st.slabs.ownText(o)
	if err := st.checkRefs(k, o); err != nil {
		return Op{}, err
	}
	if err := k.validate(st, o, old); err != nil {
		return Op{}, err
	}
	if err := st.checkUniques(k, o); err != nil {
		return Op{}, err
	}
	o.setID(old.ObjectID())
	return Op{Kind: OpUpdate, Obj: o, Old: old.clone()}, nil
}

func (st *State) prepareDelete(k kind, req Object, cascade bool) (Op, *Error) {
	o, err := st.find(k, req)
	if err != nil {
		return Op{}, err
	}
	if g, ok := k.(deleteGuard); ok {
		if err := g.guardDelete(st, o, cascade); err != nil {
			return Op{}, err
		}
	}
	if !cascade {
		if users := st.describeReferrers(k, o); users != "" {
			return Op{}, Conflict("name", "%s %q is still used by %s; delete them first %s", k.title(), nameOf(o), users, cascadeHint)
		}
	}
	return Op{Kind: OpDelete, Obj: o.clone(), Old: o.clone(), Cascade: cascade}, nil
}

// deleteGuard is implemented by kinds that refuse some deletes the
// references alone would allow (a security group with members, even with
// cascade).
type deleteGuard interface {
	guardDelete(st *State, o Object, cascade bool) *Error
}

// cascadeHint ends the message of a delete refused because the object is
// still in use.
const cascadeHint = "(use ?cascade=true to delete them too)"

// find returns the stored object an update or delete request names.
func (st *State) find(k kind, req Object) (Object, *Error) {
	key, err := k.keyOf(req)
	if err != nil {
		return nil, err
	}
	o, ok := st.get(k, key)
	if ok {
		return o, nil
	}
	if vpc := k.vpcOf(req); vpc != "" {
		if _, ok := st.get(vpcKind{}, vpc); !ok {
			return nil, NotFound("vpc", "VPC %s does not exist", quote(vpc))
		}
		return nil, NotFound("name", "%s %s does not exist in VPC %q", k.title(), quote(nameOf(req)), vpc)
	}
	return nil, NotFound("name", "%s %s does not exist", k.title(), quote(nameOf(req)))
}

// checkRefs checks that everything o refers to exists.
func (st *State) checkRefs(k kind, o Object) *Error {
	for _, r := range k.refs(o) {
		if _, ok := st.get(r.to, r.key); !ok {
			return NotFound(r.field, "%s does not exist", r.what())
		}
	}
	return nil
}

// checkUniques checks that no other object of kind k holds one of o's
// unique values.
func (st *State) checkUniques(k kind, o Object) *Error {
	for _, u := range k.uniques(o) {
		if h, ok := st.holder(k, u.index, u.value); ok && h.Key() != o.Key() {
			return Conflict(u.field, "%s", u.taken(h))
		}
	}
	return nil
}

// describeReferrers lists, by kind, what still refers to o ("2 vSwitches
// (a, b) and 1 host (h)"); "" when nothing does.
func (st *State) describeReferrers(k kind, o Object) string {
	var parts []string
	vpc := k.vpcOf(o)
	if k.name() == (vpcKind{}).name() {
		vpc = o.Key()
	}
	for _, from := range kinds() {
		keys := st.referrersOf(k, o.Key(), from)
		if len(keys) == 0 {
			continue
		}
		names := make([]string, len(keys))
		for i, key := range keys {
			// Objects of the same VPC are named by name, others by VPC/name.
			names[i] = strings.TrimPrefix(key, vpc+"/")
		}
		what := from.title()
		if len(keys) != 1 {
			what = from.plural()
		}
		parts = append(parts, fmt.Sprintf("%d %s (%s)", len(keys), what, describeNames(names, 3)))
	}
	return joinParts(parts)
}

// dependents returns what a resolved cascading delete takes with it: every
// object that refers to it, directly or through others, as resolved
// deletes of their own, ordered so that each can be performed after the
// ones before it (kinds in reverse load order — subnets, then hosts, then
// vSwitches —, each sorted by key). Nothing is changed.
func (st *State) dependents(op Op) []Op {
	type item struct {
		kind uint8
		id   uint32
	}
	type found struct {
		rank int // kindRank of the object's kind
		key  string
		obj  Object
	}
	seen := map[item]bool{}
	var all []found
	ks := kinds() // once: a walk step per object taken
	var walk func(k kind, to Object)
	walk = func(k kind, to Object) {
		for rank, from := range ks {
			// Unsorted, by the stored object: the whole is sorted once at
			// the end (each referrer list sorted, and each object looked
			// up by key once per kind, were most of a 100,000-host VPC's
			// cascade, issue 17).
			st.eachReferrerOf(k, to, from, func(o Object) bool {
				if it := (item{st.kindIndex(from), o.ObjectID()}); !seen[it] {
					seen[it] = true
					all = append(all, found{rank, o.Key(), o})
					walk(from, o)
				}
				return true
			})
		}
	}
	if to, ok := st.get(op.Obj.kind(), op.Obj.Key()); ok {
		walk(op.Obj.kind(), to)
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].rank != all[j].rank {
			return all[i].rank > all[j].rank
		}
		return lessKey(all[i].key, all[j].key)
	})
	out := make([]Op, 0, len(all))
	for _, f := range all {
		out = append(out, Op{Kind: OpDelete, Obj: f.obj.clone(), Old: f.obj.clone()})
	}
	return out
}

// lessKey orders keys by VPC, then name.
func lessKey(a, b string) bool {
	av, an, _ := strings.Cut(a, "/")
	bv, bn, _ := strings.Cut(b, "/")
	if av != bv {
		return av < bv
	}
	return an < bn
}

// mutate performs a resolved op (as returned by prepare) on the state.
func (st *State) mutate(op Op) (stored Object) {
	return st.mutateWith(op, nil)
}

// mutateWith is mutate storing kept (a copy of op.Obj that mutate stored
// before and an undo took out) instead of a new copy; nil: a new copy. It
// returns the object stored, if any.
func (st *State) mutateWith(op Op, kept Object) (stored Object) {
	if op.Kind != OpDelete {
		stored = kept
		if stored == nil {
			stored = op.Obj.clone()
		}
	}
	switch op.Kind {
	case OpCreate:
		st.insert(stored)
	case OpDelete:
		if o, ok := st.get(op.Obj.kind(), op.Obj.Key()); ok {
			st.remove(o)
		}
	case OpUpdate:
		if o, ok := st.get(op.Obj.kind(), op.Obj.Key()); ok {
			st.remove(o)
		}
		st.insert(stored)
	}
	return stored
}

// inverse returns the op that undoes a resolved op.
func inverse(op Op) Op {
	inv := op
	switch op.Kind {
	case OpCreate:
		inv.Kind = OpDelete
	case OpDelete:
		inv.Kind = OpCreate
		inv.Old = nil
	case OpUpdate:
		inv.Obj, inv.Old = op.Old, op.Obj
	}
	return inv
}

// nameOf is an object's name: its key without the VPC.
func nameOf(o Object) string {
	key := o.Key()
	return key[strings.LastIndexByte(key, '/')+1:]
}

// inVPCSuffix is " in VPC "x"" for an object that lives in a VPC.
func inVPCSuffix(k kind, o Object) string {
	if vpc := k.vpcOf(o); vpc != "" {
		return fmt.Sprintf(" in VPC %q", vpc)
	}
	return ""
}

func joinParts(parts []string) string {
	switch len(parts) {
	case 0:
		return ""
	case 1:
		return parts[0]
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}
