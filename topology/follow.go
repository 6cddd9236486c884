package topology

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"time"

	"go.uber.org/zap"
)

// A Store over a Shared backend (etcd) is one replica of the topology:
// its Apply commits guarded by the revision its state reflects (and, when
// another replica committed first, validates again once it has that
// change), and Follow brings in what the others commit, telling the
// subscribers (the controller) which objects changed.

// staleRetries bounds how often Apply validates again after another
// replica committed first.
const staleRetries = 20

// staleWait bounds how long Apply waits for another replica's change to
// arrive through the watch before it validates again.
const staleWait = 5 * time.Second

// commit writes c through the backend; for a Shared backend guarded by
// the revision the state reflects, which then moves to the commit's.
// Caller holds wmu.
func (s *Store) commit(ctx context.Context, c Commit) error {
	if s.shared == nil {
		return s.backend.Commit(ctx, c)
	}
	rev, err := s.shared.CommitAt(ctx, c, s.base)
	if err != nil {
		return err
	}
	s.setBase(rev)
	return nil
}

// setBase records the revision the state reflects. Caller holds wmu.
func (s *Store) setBase(rev int64) {
	if rev == s.base {
		return
	}
	s.base = rev
	close(s.moved)
	s.moved = make(chan struct{})
}

// waitMoved waits until moved is closed, ctx ends or staleWait passed.
func (s *Store) waitMoved(ctx context.Context, moved <-chan struct{}) error {
	t := time.NewTimer(staleWait)
	defer t.Stop()
	select {
	case <-moved:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("%w, and this replica did not receive the change within %s (is its watch on %s behind?)", ErrStale, staleWait, s.backend)
	}
}

// Revision is the store revision the state reflects (0 for bbolt).
func (s *Store) Revision() int64 {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.base
}

// Subscribe adds fn to those told, in order, of every change another
// replica made, as resolved ops (Old set on updates and deletes), after
// it is visible to Read. fn is called with no lock of the store held but
// before the next change is applied; it must not call Apply.
func (s *Store) Subscribe(fn func(ops []Op)) {
	s.subsMu.Lock()
	defer s.subsMu.Unlock()
	s.subs = append(s.subs, fn)
}

// Follow applies the changes other replicas commit until ctx ends (it
// then returns nil) or the backend fails for good (ErrVersion: another
// vpcflow version took the store over). A bbolt store has no other
// writers: Follow returns at once.
func (s *Store) Follow(ctx context.Context) error {
	if s.shared == nil {
		return nil
	}
	err := s.shared.Watch(ctx, s.applyChange)
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("following %s: %w", s.backend, err)
}

// applyChange brings one change from the backend into the state, unless
// the state already reflects it (it is this replica's own commit, or
// older), and tells the subscribers.
func (s *Store) applyChange(ch Change) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if ch.Revision <= s.base {
		return nil
	}
	start := time.Now()
	s.mu.Lock()
	ops, err := s.st.diff(ch)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	s.st.replace(ops)
	for k, v := range ch.LastIDs {
		if v > s.st.lastID[k] {
			s.st.lastID[k] = v
		}
	}
	s.mu.Unlock()
	s.setBase(ch.Revision)
	if len(ops) == 0 {
		return nil
	}
	s.log.Debug("topology changed by another replica", zap.Int("ops", len(ops)), zap.Int64("revision", ch.Revision),
		zap.Bool("full", ch.Full), zap.Duration("took", time.Since(start)))
	s.subsMu.Lock()
	subs := append([]func([]Op){}, s.subs...)
	s.subsMu.Unlock()
	for _, fn := range subs {
		fn(ops)
	}
	return nil
}

// diff resolves a change against the state: a create for a record the
// state lacks, an update (Old set) for one whose stored value differs, a
// delete for one removed (or, in a Full change, absent). Records equal to
// the state are left out. Deletes come first (dependents before what they
// refer to), then creates and updates in load order.
func (st *State) diff(ch Change) ([]Op, error) {
	known := map[string]kind{}
	for _, k := range kinds() {
		known[k.name()] = k
	}
	type slot struct{ kind, key string }
	seen := map[slot]bool{}
	var dels, puts []Op
	for _, r := range ch.Records {
		k, ok := known[r.Kind]
		if !ok {
			return nil, fmt.Errorf("a change holds an object of unknown kind %q (key %q): %w", r.Kind, r.Key, ErrVersion)
		}
		seen[slot{r.Kind, r.Key}] = true
		old, had := st.get(k, r.Key)
		if r.Value == nil {
			if had {
				dels = append(dels, Op{Kind: OpDelete, Obj: old.clone(), Old: old.clone()})
			}
			continue
		}
		o, err := k.decode(r.Value)
		if err != nil {
			return nil, fmt.Errorf("a change holds an unreadable %s %q: %w", r.Kind, r.Key, err)
		}
		if o.Key() != r.Key {
			return nil, fmt.Errorf("a change holds %s %q under the wrong key (%s)", r.Kind, r.Key, o.Key())
		}
		if !had {
			puts = append(puts, Op{Kind: OpCreate, Obj: o})
			continue
		}
		if cur, err := marshalObject(old); err == nil && bytes.Equal(cur, r.Value) {
			continue
		}
		puts = append(puts, Op{Kind: OpUpdate, Obj: o, Old: old.clone()})
	}
	if ch.Full {
		for _, k := range kinds() {
			for o := range st.tables[k.name()].byID.all() {
				if !seen[slot{k.name(), o.Key()}] {
					dels = append(dels, Op{Kind: OpDelete, Obj: o.clone(), Old: o.clone()})
				}
			}
		}
	}
	sort.SliceStable(dels, func(i, j int) bool { return kindRank(dels[i].Obj.kind()) > kindRank(dels[j].Obj.kind()) })
	sort.SliceStable(puts, func(i, j int) bool { return kindRank(puts[i].Obj.kind()) < kindRank(puts[j].Obj.kind()) })
	return append(dels, puts...), nil
}

// replace performs resolved ops of a change as one: every old object out
// first, then every new one in, so unique values and references that move
// between objects of the change stay indexed.
//
// Objects go out referrers first (kinds in reverse load order), as the
// reference index finds a referrer's entry through the object it refers
// to.
func (st *State) replace(ops []Op) {
	var outs []Object
	for _, op := range ops {
		if op.Kind != OpCreate {
			if o, ok := st.get(op.Obj.kind(), op.Obj.Key()); ok {
				outs = append(outs, o)
			}
		}
	}
	sort.SliceStable(outs, func(i, j int) bool { return kindRank(outs[i].kind()) > kindRank(outs[j].kind()) })
	for _, o := range outs {
		st.remove(o)
	}
	for _, op := range ops {
		if op.Kind != OpDelete {
			st.insert(op.Obj.clone())
		}
	}
}
