package topology

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"
)

// ErrClosed is returned by Apply and Check after Close.
var ErrClosed = errors.New("topology store is closed")

// Backend keeps the topology durable: the bbolt file of one machine
// (OpenBolt, the default) or, later, a distributed store. The Store above
// it validates every change in memory and hands the backend only changes
// that are valid, as one all-or-nothing commit.
type Backend interface {
	// Load returns everything stored.
	Load(ctx context.Context) (Snapshot, error)
	// Commit writes one change, all or nothing.
	Commit(ctx context.Context, c Commit) error
	// Close releases the backend.
	Close() error
	// String names the backend for logs ("bbolt /var/lib/vpcflow/vpcflow.db").
	String() string
}

// Record is one stored object: its kind (KindNames), key (Object.Key)
// and JSON value; a nil Value in a Commit deletes the key.
type Record struct {
	Kind  string
	Key   string
	Value []byte
}

// Commit is one change to write: records to put or delete, and the last ID
// handed out per kind.
type Commit struct {
	Records []Record
	LastIDs map[string]uint32
}

// Snapshot is everything a backend holds.
type Snapshot struct {
	Records []Record
	LastIDs map[string]uint32
	// Revision is the store's revision (Shared backends; 0 for bbolt).
	Revision int64
}

// Store keeps the topology in memory, with indexes, over a Backend. Every
// change is validated in memory, committed to the backend, and only then
// made visible to readers.
type Store struct {
	log     *zap.Logger
	backend Backend

	// wmu serializes writers (Apply, Check, Close).
	wmu sync.Mutex
	// mu guards st and closed: readers hold it shared, writers exclusively
	// from validation to the end of the commit.
	mu     sync.RWMutex
	st     *State
	closed bool

	// Shared backends (etcd, follow.go): the revision st reflects
	// (guarded by wmu), signalled on changes, and who is told of the
	// changes other writers made.
	shared Shared
	base   int64
	moved  chan struct{} // closed and replaced when base moves
	subsMu sync.Mutex
	subs   []func([]Op)
}

// Open opens the bbolt store in dir (see OpenBolt for what is created
// and what is refused) and loads it into memory.
func Open(ctx context.Context, dir string, log *zap.Logger, opts ...OpenOption) (*Store, error) {
	b, err := OpenBolt(ctx, dir, log, opts...)
	if err != nil {
		return nil, err
	}
	s, err := NewStore(ctx, b, log)
	if err != nil {
		_ = b.Close()
		return nil, err
	}
	return s, nil
}

// NewStore loads what backend holds into memory, checking it as it goes
// (every reference found, every unique value unique), and returns the
// store over it. The store owns backend from then on.
func NewStore(ctx context.Context, backend Backend, log *zap.Logger) (*Store, error) {
	if log == nil {
		log = zap.NewNop()
	}
	start := time.Now()
	snap, err := backend.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("open topology store %s: %w", backend, err)
	}
	st, warnings, err := load(snap)
	if err != nil {
		return nil, fmt.Errorf("open topology store %s: %w", backend, err)
	}
	for _, w := range warnings {
		log.Warn("stored object breaks a rule added since it was stored; fix it", zap.String("problem", w))
	}
	nv, nw, nh, ns := st.Counts()
	log.Info("topology store opened", zap.Stringer("backend", backend),
		zap.Int("vpcs", nv), zap.Int("vswitches", nw), zap.Int("hosts", nh), zap.Int("subnets", ns),
		zap.Int("chassis", st.count(chassisKind{})), zap.Duration("took", time.Since(start)))
	s := &Store{log: log, backend: backend, st: st, moved: make(chan struct{})}
	if sh, ok := backend.(Shared); ok {
		s.shared, s.base = sh, snap.Revision
	}
	return s, nil
}

// Backend is what the store writes to.
func (s *Store) Backend() Backend { return s.backend }

// pageDropper is a backend that keeps pages of a file mapped (Bolt).
type pageDropper interface{ DropMappedPages() }

// ReleaseMapped takes what the backend keeps mapped of its file out of
// resident memory (the store itself serves reads from memory); nothing for
// a backend without a file.
func (s *Store) ReleaseMapped() {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return
	}
	if d, ok := s.backend.(pageDropper); ok {
		d.DropMappedPages()
	}
}

// Close closes the backend. Read keeps working on the last state; Apply
// fails with ErrClosed.
func (s *Store) Close() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if err := s.backend.Close(); err != nil {
		return fmt.Errorf("close topology store %s: %w", s.backend, err)
	}
	return nil
}

// Read runs fn with the current state under a read lock. fn must not keep
// st (or call Apply) after it returns.
func (s *Store) Read(fn func(st *State)) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	fn(s.st)
}

// Apply validates ops in order, each seeing the ones before it, then
// commits them all to the backend at once and publishes them; all or
// nothing. It returns the ops resolved: IDs and defaults filled in, deletes
// carrying the whole object, Old set on updates and deletes. A delete with
// Cascade is followed in the result by the deletes of everything it took
// with it (see State.dependents), so the result may be longer than ops.
// A rejected change is a *Error; inside a batch of more than one op its
// Field is prefixed with "[i]." (the op's index).
//
// Readers wait while Apply validates in memory and, for a change of
// heldCommitOps ops or more on a local backend, while it commits (one
// bbolt transaction); they never see a change that is not durable.
func (s *Store) Apply(ctx context.Context, ops []Op) ([]Op, error) {
	if len(ops) == 0 {
		return []Op{}, nil
	}
	for attempt := 1; ; attempt++ {
		out, moved, err := s.apply(ctx, ops)
		if !errors.Is(err, ErrStale) || attempt == staleRetries {
			return out, err
		}
		// Another replica committed first: validate again once this
		// replica has its change.
		if err := s.waitMoved(ctx, moved); err != nil {
			return nil, fmt.Errorf("apply %d changes: %w", len(ops), err)
		}
	}
}

// heldCommitOps is the size of change, in ops performed (a cascade's
// dependents included), from which apply keeps readers waiting through a
// local backend's commit rather than undoing the change after validating
// it and performing it again once committed. Performing a change costs
// ~5-7 µs an op, a bbolt commit one or two ms: for a bulk load of 1,000
// hosts undo and redo were ~10 of the store's 25 ms, and a cascade delete
// of a 60,000-host VPC held readers 1.1 s to validate and undo, then
// 0.4 s to redo (issue 17).
const heldCommitOps = 256

// apply is one attempt of Apply; moved is closed when the store's
// revision moves on from the one the attempt validated against.
func (s *Store) apply(ctx context.Context, ops []Op) (_ []Op, moved <-chan struct{}, _ error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("apply %d changes: %w", len(ops), err)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	moved = s.moved
	start := time.Now()
	// Validate in memory under the read/write lock. A small change is
	// undone and readers go on with the state as it was while the backend
	// commits (an fsync); it is published once committed by performing
	// the resolved ops again. Writers are serialized by wmu, so nothing
	// else changed meanwhile. A big change stays performed and readers
	// wait for a local commit too (heldCommitOps); it is undone only if
	// the commit fails.
	//
	// What a cascade takes with it is found under the read lock, so that
	// readers go on meanwhile (0.3 s of a 60,000-host VPC's 0.67 s);
	// writers wait on wmu, so it still holds under the write lock.
	s.mu.RLock()
	var first []Op
	if !s.closed {
		first = s.st.cascadeOf(ops)
	}
	s.mu.RUnlock()
	// What a change's time went to, for its debug line: the wait for the
	// readers to let go (twice for a small change) and the backend's
	// commit (a write-ahead log's fdatasync, a bbolt transaction, an etcd
	// round trip); the rest is validating and publishing.
	var locked, committed time.Duration
	t0 := time.Now()
	s.mu.Lock()
	locked += time.Since(t0)
	if s.closed {
		s.mu.Unlock()
		return nil, moved, ErrClosed
	}
	saved := copyIDs(s.st.lastID)
	out, done, kept, err := s.st.do(ops, first)
	last := copyIDs(s.st.lastID)
	undo := func() {
		s.st.undo(done)
		s.st.lastID = saved
	}
	held := err == nil && len(done) >= heldCommitOps && s.shared == nil
	if !held {
		undo()
		s.mu.Unlock()
	}
	if err != nil {
		return nil, moved, err
	}
	err = ctx.Err()
	if err == nil {
		var c Commit
		if c, err = commitOf(out, last); err == nil {
			t0 = time.Now()
			err = s.commit(ctx, c)
			committed = time.Since(t0)
		}
	}
	if err != nil {
		if held {
			undo()
			s.mu.Unlock()
		}
		return nil, moved, fmt.Errorf("apply %d changes: %w", len(ops), err)
	}
	if !held {
		t0 = time.Now()
		s.mu.Lock()
		locked += time.Since(t0)
		// The copies validation stored go back in (not new ones: a
		// second copy of each object, with the first left as garbage
		// among the kept ones, was CPU and fragmented the heap of a bulk
		// load).
		for i, d := range done {
			s.st.mutateWith(d, kept[i])
		}
		s.st.lastID = last
	}
	s.mu.Unlock()
	unshare(out)
	s.log.Debug("topology changed", zap.Int("ops", len(out)), zap.Bool("held", held), zap.Duration("took", time.Since(start)),
		zap.Duration("commit", committed), zap.Duration("lock_wait", locked))
	return out, moved, nil
}

// Check validates ops exactly as Apply would and returns them resolved,
// without storing anything. IDs in the result are the ones Apply would
// hand out if nothing else changed first.
func (s *Store) Check(ctx context.Context, ops []Op) ([]Op, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("check %d changes: %w", len(ops), err)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	saved := copyIDs(s.st.lastID)
	out, done, _, err := s.st.do(ops, nil)
	s.st.undo(done)
	s.st.lastID = saved
	if err != nil {
		return nil, err
	}
	return out, nil
}

func copyIDs(m map[string]uint32) map[string]uint32 {
	out := make(map[string]uint32, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// do prepares and performs each op in turn, so later ops see earlier ones.
// The created and updated objects of out and done are the ones the state
// stores (Apply unshares them before the caller sees them; Check undoes
// the change).
// out is the result: each op resolved, a cascading delete followed by the
// deletes of its dependents. done is what was performed, in the order it
// was performed (a cascade's dependents before the op itself); do returns
// it also when an op fails, and the caller undoes it (and restores lastID)
// unless it keeps the change. kept is, for each op of done, the copy of
// its object the state stored (nil for a delete), for mutateWith. first,
// when not nil, is cascadeOf(ops) found on this same state.
func (st *State) do(ops []Op, first []Op) (out, done []Op, kept []Object, err error) {
	st.slabs = slabsFor(ops)
	defer func() { st.slabs = nil }()
	out = make([]Op, 0, len(ops))
	done = make([]Op, 0, len(ops))
	kept = make([]Object, 0, len(ops))
	for i, op := range ops {
		r, e := st.prepare(op)
		if e != nil {
			return out, done, kept, inBatch(e, i, len(ops))
		}
		var deps []Op
		switch {
		case r.Kind != OpDelete || !r.Cascade:
		case i == 0 && first != nil:
			deps = first
		default:
			deps = st.dependents(r)
		}
		for _, d := range deps {
			kept = append(kept, st.mutate(d))
			done = append(done, d)
		}
		// The state keeps r.Obj itself (prepare's copy): a second copy
		// here would sit between garbage copies in the heap of a bulk
		// load (issue 17); Apply hands the caller copies made after.
		kept = append(kept, st.mutateWith(r, r.Obj))
		done = append(done, r)
		out = append(out, r)
		out = append(out, deps...)
	}
	return out, done, kept, nil
}

// cascadeOf is what ops[0] takes with it (its dependents) when it is a
// cascading delete that can be performed on st, else nil. Nothing is
// changed: it runs under the read lock, before do.
func (st *State) cascadeOf(ops []Op) []Op {
	if len(ops) == 0 || ops[0].Kind != OpDelete || !ops[0].Cascade {
		return nil
	}
	r, err := st.prepare(ops[0])
	if err != nil {
		return nil
	}
	return st.dependents(r)
}

// unshare gives the created and updated objects of ops, which the state
// holds, fresh copies: callers own what Apply returns. They are made
// after the whole batch is stored, so that the state's objects sit next
// to each other in the heap, not between the caller's (issue 17).
func unshare(ops []Op) {
	for i := range ops {
		if ops[i].Kind != OpDelete {
			ops[i].Obj = ops[i].Obj.clone()
		}
	}
}

// undo reverts performed ops, newest first.
func (st *State) undo(done []Op) {
	for i := len(done) - 1; i >= 0; i-- {
		st.mutate(inverse(done[i]))
	}
}

// inBatch prefixes an error's field with the op's index in a batch.
func inBatch(e *Error, i, n int) *Error {
	if n <= 1 {
		return e
	}
	c := *e
	if c.Field == "" {
		c.Field = fmt.Sprintf("[%d]", i)
	} else {
		c.Field = fmt.Sprintf("[%d].%s", i, c.Field)
	}
	return &c
}

// commitOf folds resolved ops into the final value per key, sorted by
// kind and key (what bbolt is fastest at), with the ID counters.
func commitOf(ops []Op, last map[string]uint32) (Commit, error) {
	type slot struct{ kind, key string }
	final := map[slot][]byte{}
	for _, op := range ops {
		sl := slot{KindOf(op.Obj), op.Obj.Key()}
		if op.Kind == OpDelete {
			final[sl] = nil
			continue
		}
		b, err := marshalObject(op.Obj)
		if err != nil {
			return Commit{}, fmt.Errorf("encode %s %s: %w", sl.kind, sl.key, err)
		}
		final[sl] = b
	}
	c := Commit{Records: make([]Record, 0, len(final)), LastIDs: copyIDs(last)}
	for sl, v := range final {
		c.Records = append(c.Records, Record{Kind: sl.kind, Key: sl.key, Value: v})
	}
	sort.Slice(c.Records, func(i, j int) bool {
		a, b := c.Records[i], c.Records[j]
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Key < b.Key
	})
	return c, nil
}

// load builds a State from a backend's snapshot: kinds in load order
// (everything an object refers to comes first), every object checked as a
// create would check its references and unique values.
func load(snap Snapshot) (*State, []string, error) {
	var warnings []string
	st := newState()
	for k, v := range snap.LastIDs {
		st.lastID[k] = v
	}
	byKind := map[string][]Record{}
	known := map[string]bool{}
	for _, k := range kinds() {
		known[k.name()] = true
	}
	for _, r := range snap.Records {
		if !known[r.Kind] {
			return nil, nil, fmt.Errorf("load: unknown kind %q (key %q)", r.Kind, r.Key)
		}
		byKind[r.Kind] = append(byKind[r.Kind], r)
	}
	hosts, subnets := byKind[hostKind{}.name()], byKind[subnetKind{}.name()]
	text := len(hosts) * macLen // and a name is shorter than its key "VPC/NAME"
	for _, rs := range [][]Record{hosts, subnets} {
		for _, r := range rs {
			text += len(r.Key)
		}
	}
	sl := newSlabs(len(hosts), len(subnets), text)
	for _, k := range kinds() {
		for _, r := range byKind[k.name()] {
			if err := st.loadOne(k, r, sl, &warnings); err != nil {
				return nil, nil, fmt.Errorf("load: %s %q: %w", k.name(), r.Key, err)
			}
		}
	}
	return st, warnings, nil
}

func (st *State) loadOne(k kind, r Record, sl *slabs, warnings *[]string) error {
	o, err := sl.decode(k, r.Value)
	if err != nil {
		return err
	}
	if o.Key() != r.Key {
		return fmt.Errorf("stored under the wrong key (%s)", o.Key())
	}
	if _, ok := st.getByID(k, o.ObjectID()); ok || o.ObjectID() == 0 {
		return fmt.Errorf("has an invalid or duplicate ID %d", o.ObjectID())
	}
	for _, rf := range k.refs(o) {
		if _, ok := st.get(rf.to, rf.key); !ok {
			return fmt.Errorf("refers to missing %s (%s)", rf.what(), rf.field)
		}
	}
	if err := k.check(o, nil); err != nil {
		return fmt.Errorf("invalid: %w", err)
	}
	for _, u := range k.uniques(o) {
		h, ok := st.holder(k, u.index, u.value)
		if !ok {
			continue
		}
		if !u.lenientOnLoad {
			return fmt.Errorf("%s: %s", u.field, u.taken(h))
		}
		// Stored before the rule was added: keep both, and say so; the
		// first keeps the index.
		*warnings = append(*warnings, fmt.Sprintf("%s %q: %s: %s", k.name(), r.Key, u.field, u.taken(h)))
	}
	st.insert(o)
	if o.ObjectID() > st.lastID[k.name()] {
		st.lastID[k.name()] = o.ObjectID()
	}
	return nil
}

// Restore fills an empty store with objs, IDs as given — a backup's
// restore, or a tool recomputing what vpcflow does with objects the REST
// API returned. Everything is checked as when the store loads (references
// found, unique values unique); all or nothing.
func (s *Store) Restore(ctx context.Context, objs []Object) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	for _, k := range kinds() {
		if s.st.count(k) > 0 {
			return fmt.Errorf("restore: the store is not empty (it has %s objects)", k.name())
		}
	}
	snap := Snapshot{LastIDs: map[string]uint32{}}
	for _, o := range objs {
		b, err := marshalObject(o)
		if err != nil {
			return fmt.Errorf("restore: encode %s %s: %w", KindOf(o), o.Key(), err)
		}
		k := KindOf(o)
		snap.Records = append(snap.Records, Record{Kind: k, Key: o.Key(), Value: b})
		if o.ObjectID() > snap.LastIDs[k] {
			snap.LastIDs[k] = o.ObjectID()
		}
	}
	st, _, err := load(snap)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := s.commit(ctx, Commit{Records: snap.Records, LastIDs: snap.LastIDs}); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	s.st = st
	return nil
}
