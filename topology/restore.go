package topology

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"

	"go.uber.org/zap"
)

// ErrInvalidSnapshot is returned by ApplySnapshot for a snapshot that
// would not load as a store.
var ErrInvalidSnapshot = errors.New("the snapshot is not a valid store")

// ApplySnapshot makes the store hold exactly the objects of snap (a
// backup's content, from Backend.Load of the backup file), with their IDs
// and every stored field as they are there, in one commit: an online
// restore. snap is checked whole first, as a store is when it is opened
// (every reference found, every unique value unique, every object valid);
// a snapshot that does not load is refused and nothing changes.
//
// It returns the resolved ops that took the store there — as Apply
// returns them: creates, updates with Old, deletes carrying the object —
// and how many objects were already as snap has them (those get no op, so
// whoever recomputes from the ops leaves their flows alone). The ops are
// in dependency order: deletes first, referring kinds before the kinds
// they refer to, then creates and updates, each kind after those it
// refers to; within a kind, sorted by key. An object whose key is in both
// but with another ID is deleted and created again with the snapshot's
// ID (IDs are in cookies, metadata and tunnel ids). The last ID handed out
// per kind becomes the larger of the store's and the snapshot's, so IDs
// are never handed out twice.
//
// With dryRun the ops are computed and returned, and nothing is stored.
//
// Over a shared backend (etcd, replicas) the commit is guarded by the
// revision the diff was made against, as Apply's: when another replica
// committed first, the diff is made again once this replica has that
// change.
func (s *Store) ApplySnapshot(ctx context.Context, snap Snapshot, dryRun bool) (ops []Op, unchanged int, err error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, fmt.Errorf("apply snapshot: %w", err)
	}
	if _, _, err := load(snap); err != nil {
		return nil, 0, fmt.Errorf("apply snapshot: %w: %w", ErrInvalidSnapshot, err)
	}
	for attempt := 1; ; attempt++ {
		ops, unchanged, moved, err := s.applySnapshot(ctx, snap, dryRun)
		if !errors.Is(err, ErrStale) || attempt == staleRetries {
			return ops, unchanged, err
		}
		if err := s.waitMoved(ctx, moved); err != nil {
			return nil, 0, fmt.Errorf("apply snapshot: %w", err)
		}
	}
}

// applySnapshot is one attempt of ApplySnapshot; moved is closed when
// the store's revision moves on from the one the attempt diffed against.
func (s *Store) applySnapshot(ctx context.Context, snap Snapshot, dryRun bool) (ops []Op, unchanged int, moved <-chan struct{}, err error) {
	// A state of its own each attempt: the one that is committed
	// becomes the store's.
	target, _, err := load(snap)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("apply snapshot: %w: %w", ErrInvalidSnapshot, err)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	moved = s.moved
	s.mu.RLock()
	closed := s.closed
	if !closed {
		ops, unchanged, err = diffStates(s.st, target)
		for k, v := range s.st.lastID {
			if v > target.lastID[k] {
				target.lastID[k] = v
			}
		}
	}
	s.mu.RUnlock()
	if closed {
		return nil, 0, moved, ErrClosed
	}
	if err != nil {
		return nil, 0, moved, fmt.Errorf("apply snapshot: %w", err)
	}
	// Nothing to change: nothing to commit — except over a shared store,
	// where only the guarded commit proves that this replica's state (and
	// so the diff) is the store's latest.
	if dryRun || len(ops) == 0 && sameIDs(s.lastIDs(), target.lastID) && s.shared == nil {
		return ops, unchanged, moved, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, moved, fmt.Errorf("apply snapshot: %w", err)
	}
	c, err := commitOf(ops, target.lastID)
	if err == nil {
		err = s.commit(ctx, c)
	}
	if err != nil {
		return nil, 0, moved, fmt.Errorf("apply snapshot: %w", err)
	}
	// Writers are serialized by wmu: nothing changed the state since the
	// diff, and target is the state the ops lead to.
	s.mu.Lock()
	s.st = target
	s.mu.Unlock()
	s.log.Info("topology replaced by a snapshot", zap.Int("ops", len(ops)), zap.Int("unchanged", unchanged))
	return ops, unchanged, moved, nil
}

// lastIDs copies the ID counters. Caller holds wmu.
func (s *Store) lastIDs() map[string]uint32 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return copyIDs(s.st.lastID)
}

func sameIDs(a, b map[string]uint32) bool {
	for _, k := range KindNames() {
		if a[k] != b[k] {
			return false
		}
	}
	return true
}

// diffStates returns the resolved ops that turn from into to, in
// dependency order (see ApplySnapshot), and how many objects are the same
// in both.
func diffStates(from, to *State) (ops []Op, unchanged int, err error) {
	var deletes, upserts [][]Op // per kind, in kinds() order
	for _, k := range kinds() {
		cur, want := from.tables[k.name()], to.tables[k.name()]
		var del, up []Op
		for o := range cur.byID.all() {
			key := o.Key()
			n, ok := want.lookup(to.hash, key)
			switch {
			case !ok:
				del = append(del, Op{Kind: OpDelete, Obj: o.clone(), Old: o.clone()})
			case n.ObjectID() != o.ObjectID():
				del = append(del, Op{Kind: OpDelete, Obj: o.clone(), Old: o.clone()})
				up = append(up, Op{Kind: OpCreate, Obj: n.clone()})
			default:
				a, err := marshalObject(o)
				if err != nil {
					return nil, 0, fmt.Errorf("encode %s %s: %w", k.name(), key, err)
				}
				b, err := marshalObject(n)
				if err != nil {
					return nil, 0, fmt.Errorf("encode %s %s: %w", k.name(), key, err)
				}
				if bytes.Equal(a, b) {
					unchanged++
					continue
				}
				up = append(up, Op{Kind: OpUpdate, Obj: n.clone(), Old: o.clone()})
			}
		}
		for n := range want.byID.all() {
			if _, ok := cur.lookup(from.hash, n.Key()); !ok {
				up = append(up, Op{Kind: OpCreate, Obj: n.clone()})
			}
		}
		byKey := func(l []Op) {
			sort.Slice(l, func(i, j int) bool { return l[i].Obj.Key() < l[j].Obj.Key() })
		}
		byKey(del)
		byKey(up)
		deletes = append(deletes, del)
		upserts = append(upserts, up)
	}
	for i := len(deletes) - 1; i >= 0; i-- {
		ops = append(ops, deletes[i]...)
	}
	for _, up := range upserts {
		ops = append(ops, up...)
	}
	return ops, unchanged, nil
}
