package topology

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// The etcd backend: the store of several vpcflow replicas (serve --store
// etcd://…). Every replica keeps the whole topology in memory, as with
// bbolt, and follows the others' changes through a watch.
//
// Keys under the prefix P (default /vpcflow):
//
//	P/schema             the schema version (SchemaVersion)
//	P/rev                rewritten by every commit: its mod revision is the
//	                     revision of the data, which every commit is
//	                     guarded by (optimistic concurrency)
//	P/obj/KIND/KEY       one object, JSON (as in bbolt's buckets)
//	P/last_id/KIND       the last ID handed out, decimal
//	P/pending            a large commit decided but not yet rolled forward
//	P/stage/ID/NNNNNN    that commit's records, in chunks
//	P/epoch              the generation id epoch (package ha)
//	P/election/…         leader election (package ha)
//
// A commit of at most etcdMaxOps operations and etcdMaxBytes bytes is one
// transaction, guarded by P/rev's mod revision. A larger one (a cascading
// delete of a big VPC, a restore) is written to P/stage first, where
// nobody reads it, then decided by one small transaction that creates
// P/pending (guarded like any commit), then rolled forward into P/obj by
// transactions guarded by P/pending, the last of which deletes it.
// Readers (Load, Watch) read a pending commit's records from its stage,
// so they see it whole from the revision that decided it; writers finish
// (roll forward) a pending commit before committing anything else. So a
// change is all or nothing however large, and a writer that dies half
// way leaves either nothing or a decided commit any replica completes.

// DefaultEtcdPrefix is where the store's keys live unless the etcd URL
// names another prefix.
const DefaultEtcdPrefix = "/vpcflow"

// Transaction limits: etcd refuses more than 128 operations (--max-txn-ops)
// or 1.5 MiB (--max-request-bytes) per request by default.
const (
	etcdMaxOps        = 120
	etcdMaxBytes      = 1 << 20
	etcdStageChunk    = 512 << 10
	etcdPageSize      = 5000
	etcdStaleStageAge = 10 * time.Minute
)

// ErrStale is returned (wrapped) by CommitAt when something was committed
// since the revision the caller's state reflects.
var ErrStale = errors.New("the store changed since this replica last read it")

// ErrVersion is returned when the store was written by a vpcflow of
// another schema version.
var ErrVersion = errors.New("the store is of another vpcflow version")

// Change is what a Watch delivers: the records changed by one commit of
// another writer (final values, a nil Value deletes), or, when Full, the
// whole store again (after the watch fell behind etcd's compaction).
type Change struct {
	// Revision is the store revision after the update (as Snapshot's).
	Revision int64
	Records  []Record
	// LastIDs holds the counters that changed (all of them when Full).
	LastIDs map[string]uint32
	Full    bool
}

// Shared is a Backend that several vpcflow processes write (etcd). Its
// commits are guarded by the revision the writer's state reflects, and
// it delivers the other writers' commits.
type Shared interface {
	Backend
	// CommitAt writes c unless anything was committed after revision
	// base (Snapshot.Revision or Change.Revision); it returns the
	// revision after the commit, or an error wrapping ErrStale.
	CommitAt(ctx context.Context, c Commit, base int64) (int64, error)
	// Watch calls fn with every commit after the last Load, in order,
	// until ctx ends (it then returns ctx.Err()), fn fails, or the store
	// becomes unreadable to this vpcflow (ErrVersion).
	Watch(ctx context.Context, fn func(Change) error) error
}

// EtcdOptions configure OpenEtcd.
type EtcdOptions struct {
	Endpoints []string
	// Prefix of every key (default DefaultEtcdPrefix).
	Prefix string
	// TLS, when set, is used for https endpoints (client certificate,
	// RootCAs).
	TLS *tls.Config
	// DialTimeout bounds reaching etcd at start (default 5s).
	DialTimeout time.Duration
	// Init creates the store when etcd has none under the prefix.
	Init bool
}

// Etcd is the Shared backend on an etcd cluster.
type Etcd struct {
	cli    *clientv3.Client
	prefix string
	log    *zap.Logger
	eps    []string
	// header is the etcd revision of the last Load: Watch starts after
	// it; base is that Load's store revision.
	header, base int64
}

// OpenEtcd connects to etcd and checks the store under the prefix: it
// must exist (ErrNoStore, unless Init creates it) and be of this
// vpcflow's schema (ErrVersion; an older schema is upgraded).
func OpenEtcd(ctx context.Context, opts EtcdOptions, log *zap.Logger) (*Etcd, error) {
	if log == nil {
		log = zap.NewNop()
	}
	if len(opts.Endpoints) == 0 {
		return nil, errors.New("open etcd store: no endpoints")
	}
	prefix := strings.TrimRight(opts.Prefix, "/")
	if prefix == "" {
		prefix = DefaultEtcdPrefix
	}
	if !strings.HasPrefix(prefix, "/") {
		prefix = "/" + prefix
	}
	dial := opts.DialTimeout
	if dial <= 0 {
		dial = 5 * time.Second
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            opts.Endpoints,
		DialTimeout:          dial,
		DialKeepAliveTime:    2 * time.Second,
		DialKeepAliveTimeout: 2 * time.Second,
		TLS:                  opts.TLS,
		Logger:               log.Named("etcd-client").WithOptions(zap.IncreaseLevel(zap.ErrorLevel)),
		Context:              context.WithoutCancel(ctx),
	})
	if err != nil {
		return nil, fmt.Errorf("open etcd store at %s: %w", strings.Join(opts.Endpoints, ","), err)
	}
	b := &Etcd{cli: cli, prefix: prefix, log: log, eps: opts.Endpoints}
	if err := b.check(ctx, opts.Init, dial); err != nil {
		_ = cli.Close()
		return nil, err
	}
	return b, nil
}

func (b *Etcd) String() string { return "etcd " + strings.Join(b.eps, ",") + b.prefix }

// Client is the etcd client (leader election shares it).
func (b *Etcd) Client() *clientv3.Client { return b.cli }

// Prefix is the prefix of the store's keys.
func (b *Etcd) Prefix() string { return b.prefix }

// Close closes the client.
func (b *Etcd) Close() error { return b.cli.Close() }

func (b *Etcd) key(parts ...string) string { return b.prefix + "/" + strings.Join(parts, "/") }

// check reaches etcd and checks (or creates) the schema version.
func (b *Etcd) check(ctx context.Context, init bool, timeout time.Duration) error {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := b.cli.Get(cctx, b.key("schema"))
	if err != nil {
		if cctx.Err() != nil && ctx.Err() == nil {
			return fmt.Errorf("open %s: etcd did not answer within %s (is it running and reachable, with matching TLS?): %w", b, timeout, err)
		}
		return fmt.Errorf("open %s: %w", b, err)
	}
	if len(resp.Kvs) == 0 {
		if !init {
			return fmt.Errorf("open %s: %w under %s (create it with `vpcflow init --store …` or `vpcflow serve --init`)", b, ErrNoStore, b.prefix)
		}
		tr, err := b.cli.Txn(cctx).If(clientv3.Compare(clientv3.CreateRevision(b.key("schema")), "=", 0)).
			Then(clientv3.OpPut(b.key("schema"), SchemaVersion), clientv3.OpPut(b.key("rev"), "init"),
				clientv3.OpPut(b.key("epoch"), "1")).Commit()
		if err != nil {
			return fmt.Errorf("create %s: %w", b, err)
		}
		if tr.Succeeded {
			b.log.Info("created an empty store in etcd", zap.Stringer("store", b), zap.String("schema", SchemaVersion))
			return nil
		}
		return b.check(ctx, false, timeout) // created meanwhile by another replica
	}
	v := string(resp.Kvs[0].Value)
	if v == SchemaVersion {
		return nil
	}
	have, err1 := strconv.Atoi(v)
	want, err2 := strconv.Atoi(SchemaVersion)
	if err1 != nil || err2 != nil || have > want {
		return fmt.Errorf("open %s: %w: it has schema version %q, this vpcflow reads schema %q: run the same vpcflow version on every replica", b, ErrVersion, v, SchemaVersion)
	}
	// An older schema: new kinds are all an upgrade adds. Replicas still
	// running the older vpcflow stop when they see it change.
	tr, err := b.cli.Txn(cctx).If(clientv3.Compare(clientv3.Value(b.key("schema")), "=", v)).
		Then(clientv3.OpPut(b.key("schema"), SchemaVersion)).Commit()
	if err != nil {
		return fmt.Errorf("upgrade %s: %w", b, err)
	}
	if !tr.Succeeded {
		return b.check(ctx, false, timeout)
	}
	b.log.Info("store in etcd upgraded", zap.Stringer("store", b), zap.String("from_schema", v), zap.String("to_schema", SchemaVersion))
	return nil
}

// stagedRecord is one record of a staged commit.
type stagedRecord struct {
	Kind  string          `json:"k"`
	Key   string          `json:"n"`
	Value json.RawMessage `json:"v,omitempty"` // absent: delete
}

type pendingCommit struct {
	ID     string `json:"id"`
	Chunks int    `json:"chunks"`
}

// parsed sorts the keys of the store into what they mean.
type parsed struct {
	records  []Record
	lastIDs  map[string]uint32
	base     int64 // P/rev's mod revision
	baseSeen bool
	pending  *pendingCommit
	pendRev  int64
	stages   map[string]int64 // stage id → create revision of its first chunk
	schema   *string
}

func (b *Etcd) parse(kv *mvccpb.KeyValue, deleted bool, p *parsed) error {
	k := strings.TrimPrefix(string(kv.Key), b.prefix+"/")
	switch {
	case k == "schema":
		v := ""
		if !deleted {
			v = string(kv.Value)
		}
		p.schema = &v
	case k == "rev":
		p.base, p.baseSeen = kv.ModRevision, true
	case k == "pending":
		if deleted {
			return nil
		}
		var pc pendingCommit
		if err := json.Unmarshal(kv.Value, &pc); err != nil || pc.ID == "" {
			return fmt.Errorf("%s: %q is not a pending commit", kv.Key, kv.Value)
		}
		p.pending, p.pendRev = &pc, kv.ModRevision
	case strings.HasPrefix(k, "obj/"):
		kind, key, ok := strings.Cut(strings.TrimPrefix(k, "obj/"), "/")
		if !ok || key == "" {
			return fmt.Errorf("%s: not an object key", kv.Key)
		}
		r := Record{Kind: kind, Key: key}
		if !deleted {
			r.Value = append([]byte(nil), kv.Value...)
		}
		p.records = append(p.records, r)
	case strings.HasPrefix(k, "last_id/"):
		kind := strings.TrimPrefix(k, "last_id/")
		if deleted {
			return nil
		}
		n, err := strconv.ParseUint(string(kv.Value), 10, 32)
		if err != nil {
			return fmt.Errorf("%s: %q is not an ID", kv.Key, kv.Value)
		}
		if p.lastIDs == nil {
			p.lastIDs = map[string]uint32{}
		}
		p.lastIDs[kind] = uint32(n)
	case strings.HasPrefix(k, "stage/"):
		id, _, _ := strings.Cut(strings.TrimPrefix(k, "stage/"), "/")
		if p.stages == nil {
			p.stages = map[string]int64{}
		}
		if _, ok := p.stages[id]; !ok && !deleted {
			p.stages[id] = kv.CreateRevision
		}
	}
	return nil
}

// staged reads the records of a staged commit as of revision rev (0: now).
func (b *Etcd) staged(ctx context.Context, pc *pendingCommit, rev int64) ([]Record, error) {
	opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend)}
	if rev > 0 {
		opts = append(opts, clientv3.WithRev(rev))
	}
	resp, err := b.cli.Get(ctx, b.key("stage", pc.ID)+"/", opts...)
	if err != nil {
		return nil, fmt.Errorf("read staged commit %s: %w", pc.ID, err)
	}
	if len(resp.Kvs) != pc.Chunks {
		return nil, fmt.Errorf("staged commit %s has %d chunks, want %d", pc.ID, len(resp.Kvs), pc.Chunks)
	}
	var out []Record
	for _, kv := range resp.Kvs {
		var rs []stagedRecord
		if err := json.Unmarshal(kv.Value, &rs); err != nil {
			return nil, fmt.Errorf("staged commit %s: %s: %w", pc.ID, kv.Key, err)
		}
		for _, r := range rs {
			rec := Record{Kind: r.Kind, Key: r.Key}
			if r.Value != nil {
				rec.Value = []byte(r.Value)
			}
			out = append(out, rec)
		}
	}
	return out, nil
}

// Load reads the whole store at one revision: the objects, with a pending
// commit's records over them.
func (b *Etcd) Load(ctx context.Context) (Snapshot, error) {
	snap, header, err := b.load(ctx)
	if err != nil {
		return Snapshot{}, fmt.Errorf("read %s: %w", b, err)
	}
	b.header, b.base = header, snap.Revision
	return snap, nil
}

func (b *Etcd) load(ctx context.Context) (Snapshot, int64, error) {
	var p parsed
	var header int64
	from, end := b.prefix+"/", clientv3.GetPrefixRangeEnd(b.prefix+"/")
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(etcdPageSize),
			clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend)}
		if header != 0 {
			opts = append(opts, clientv3.WithRev(header))
		}
		resp, err := b.cli.Get(ctx, from, opts...)
		if err != nil {
			return Snapshot{}, 0, err
		}
		if header == 0 {
			header = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			if err := b.parse(kv, false, &p); err != nil {
				return Snapshot{}, 0, err
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	if p.schema == nil {
		return Snapshot{}, 0, fmt.Errorf("%w under %s", ErrNoStore, b.prefix)
	}
	if *p.schema != SchemaVersion {
		return Snapshot{}, 0, fmt.Errorf("%w: it has schema version %q, this vpcflow reads %q", ErrVersion, *p.schema, SchemaVersion)
	}
	snap := Snapshot{Records: p.records, LastIDs: p.lastIDs, Revision: p.base}
	if snap.LastIDs == nil {
		snap.LastIDs = map[string]uint32{}
	}
	if p.pending != nil {
		staged, err := b.staged(ctx, p.pending, header)
		if err != nil {
			return Snapshot{}, 0, err
		}
		snap.Records = overlay(snap.Records, staged)
	}
	b.sweepStages(ctx, p.stages, p.pending, header)
	return snap, header, nil
}

// overlay puts over's records over base's: later values win, deletes
// remove.
func overlay(base, over []Record) []Record {
	type slot struct{ kind, key string }
	idx := make(map[slot]int, len(base))
	for i, r := range base {
		idx[slot{r.Kind, r.Key}] = i
	}
	out := append([]Record(nil), base...)
	for _, r := range over {
		if i, ok := idx[slot{r.Kind, r.Key}]; ok {
			out[i] = r
			continue
		}
		idx[slot{r.Kind, r.Key}] = len(out)
		out = append(out, r)
	}
	kept := out[:0]
	for _, r := range out {
		if r.Value != nil {
			kept = append(kept, r)
		}
	}
	return kept
}

// sweepStages deletes the stages of large commits that were never
// decided (their writer died) once they are old, best effort.
func (b *Etcd) sweepStages(ctx context.Context, stages map[string]int64, pending *pendingCommit, header int64) {
	for id := range stages {
		if pending != nil && id == pending.ID {
			continue
		}
		ts, _, _ := strings.Cut(id, "-")
		ns, err := strconv.ParseInt(ts, 16, 64)
		if err == nil && time.Since(time.Unix(0, ns)) < etcdStaleStageAge {
			continue
		}
		if _, err := b.cli.Delete(ctx, b.key("stage", id)+"/", clientv3.WithPrefix()); err != nil {
			b.log.Warn("deleting the stage of an undecided commit failed", zap.String("id", id), zap.Error(err))
		} else {
			b.log.Info("deleted the stage of a commit its writer never decided", zap.String("id", id))
		}
	}
}

// Commit writes c whatever was committed before (restores, tools).
func (b *Etcd) Commit(ctx context.Context, c Commit) error {
	_, err := b.CommitAt(ctx, c, -1)
	return err
}

// CommitAt writes c in one transaction guarded by base (a negative base
// guards nothing), or, when it is too large for one, stages it (see the
// comment at the top of this file).
func (b *Etcd) CommitAt(ctx context.Context, c Commit, base int64) (int64, error) {
	ops := make([]clientv3.Op, 0, len(c.Records)+len(c.LastIDs)+1)
	size := 0
	for _, r := range c.Records {
		k := b.key("obj", r.Kind, r.Key)
		size += len(k) + len(r.Value) + 16
		if r.Value == nil {
			ops = append(ops, clientv3.OpDelete(k))
		} else {
			ops = append(ops, clientv3.OpPut(k, string(r.Value)))
		}
	}
	idOps := b.lastIDOps(c.LastIDs)
	id := newCommitID()
	cmps := b.guard(base)
	if len(ops)+len(idOps)+1 <= etcdMaxOps && size <= etcdMaxBytes {
		ops = append(append(ops, idOps...), clientv3.OpPut(b.key("rev"), "c "+id))
		for attempt := 1; ; attempt++ {
			resp, err := b.txn(ctx, cmps, ops)
			if err == nil {
				if !resp.Succeeded {
					return 0, b.refused(ctx, resp)
				}
				return resp.Header.Revision, nil
			}
			// The member went away mid-request (killed, no leader): the
			// transaction may or may not have applied. P/rev tells.
			rev, applied, again := b.ambiguous(ctx, "c "+id, base, attempt, err)
			if applied {
				return rev, nil
			}
			if !again {
				return 0, fmt.Errorf("write to %s: %w", b, err)
			}
		}
	}
	return b.commitStaged(ctx, c, idOps, cmps, id, base)
}

// commitAttempt bounds one attempt of a commit's transaction: a member
// that lost its raft leader holds a request up to 7 s (etcd 3.4) before it
// answers "request timed out"; by then another member may have a leader.
const commitAttempt = 2 * time.Second

// txn sends one guarded commit transaction, bounded by commitAttempt; its
// Else reads P/pending (see refused).
func (b *Etcd) txn(ctx context.Context, cmps []clientv3.Cmp, ops []clientv3.Op) (*clientv3.TxnResponse, error) {
	actx, cancel := context.WithTimeout(ctx, commitAttempt)
	defer cancel()
	return b.cli.Txn(actx).If(cmps...).Then(ops...).Else(clientv3.OpGet(b.key("pending"))).Commit()
}

// commitRetries bounds the attempts of a transaction whose outcome a
// failing etcd member left unknown.
const commitRetries = 5

// ambiguous resolves a transaction that failed without an answer (the
// member serving it went away): every commit rewrites P/rev, and a
// guarded one can only be the first change after base, so P/rev's history
// tells. applied: it is in (rev is its revision); again: it is not, and
// may be sent again; neither: another writer's change came first (the
// store validates again), or the outcome cannot be known.
func (b *Etcd) ambiguous(ctx context.Context, marker string, base int64, attempt int, cause error) (rev int64, applied, again bool) {
	if ctx.Err() != nil || attempt >= commitRetries {
		return 0, false, false
	}
	b.log.Warn("etcd write failed without an answer; checking whether it applied", zap.Int("attempt", attempt), zap.Error(cause))
	select {
	case <-ctx.Done():
		return 0, false, false
	case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
	}
	g, err := b.cli.Get(ctx, b.key("rev")) // retried by the client until a member answers
	if err != nil || len(g.Kvs) != 1 {
		return 0, false, false
	}
	kv := g.Kvs[0]
	switch {
	case string(kv.Value) == marker:
		return kv.ModRevision, true, false
	case base < 0 || kv.ModRevision == base:
		return 0, false, true
	}
	// P/rev moved on: was our commit the first change after base?
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for resp := range b.cli.Watch(wctx, b.key("rev"), clientv3.WithRev(base+1)) {
		if resp.Err() != nil || resp.CompactRevision != 0 {
			return 0, false, false
		}
		for _, ev := range resp.Events {
			if string(ev.Kv.Value) == marker {
				return ev.Kv.ModRevision, true, false
			}
			return 0, false, false
		}
	}
	return 0, false, false
}

func (b *Etcd) guard(base int64) []clientv3.Cmp {
	cmps := []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(b.key("pending")), "=", 0)}
	if base >= 0 {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(b.key("rev")), "=", base))
	}
	return cmps
}

func (b *Etcd) lastIDOps(ids map[string]uint32) []clientv3.Op {
	kinds := make([]string, 0, len(ids))
	for k := range ids {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	ops := make([]clientv3.Op, 0, len(kinds))
	for _, k := range kinds {
		ops = append(ops, clientv3.OpPut(b.key("last_id", k), strconv.FormatUint(uint64(ids[k]), 10)))
	}
	return ops
}

// refused explains a guarded transaction that did not apply: a pending
// commit (rolled forward here first) or a newer revision; both are stale.
func (b *Etcd) refused(ctx context.Context, resp *clientv3.TxnResponse) error {
	if len(resp.Responses) > 0 {
		if g := resp.Responses[0].GetResponseRange(); g != nil && len(g.Kvs) > 0 {
			var p parsed
			if err := b.parse(g.Kvs[0], false, &p); err == nil && p.pending != nil {
				if _, err := b.rollForward(ctx, p.pending, p.pendRev); err != nil {
					b.log.Warn("finishing another replica's large commit failed", zap.String("id", p.pending.ID), zap.Error(err))
				}
			}
		}
	}
	return fmt.Errorf("write to %s: %w", b, ErrStale)
}

// newCommitID is a commit's id: when it was made (hex nanoseconds, so old
// stages can be told apart) and randomness.
func newCommitID() string {
	var r [6]byte
	_, _ = rand.Read(r[:])
	return strconv.FormatInt(time.Now().UnixNano(), 16) + "-" + hex.EncodeToString(r[:])
}

func (b *Etcd) commitStaged(ctx context.Context, c Commit, idOps []clientv3.Op, cmps []clientv3.Cmp, id string, base int64) (int64, error) {
	var chunks [][]byte
	var cur []stagedRecord
	curSize := 0
	flush := func() error {
		if len(cur) == 0 {
			return nil
		}
		v, err := json.Marshal(cur)
		if err != nil {
			return err
		}
		chunks = append(chunks, v)
		cur, curSize = nil, 0
		return nil
	}
	for _, r := range c.Records {
		sr := stagedRecord{Kind: r.Kind, Key: r.Key}
		if r.Value != nil {
			sr.Value = json.RawMessage(r.Value)
		}
		if curSize+len(r.Value)+len(r.Key)+32 > etcdStageChunk {
			if err := flush(); err != nil {
				return 0, fmt.Errorf("stage a commit for %s: %w", b, err)
			}
		}
		cur = append(cur, sr)
		curSize += len(r.Value) + len(r.Key) + 32
	}
	if err := flush(); err != nil {
		return 0, fmt.Errorf("stage a commit for %s: %w", b, err)
	}
	stage := b.key("stage", id) + "/"
	for i, ch := range chunks {
		if _, err := b.cli.Put(ctx, fmt.Sprintf("%s%06d", stage, i), string(ch)); err != nil {
			b.dropStage(stage)
			return 0, fmt.Errorf("stage a commit for %s: %w", b, err)
		}
	}
	pc, _ := json.Marshal(pendingCommit{ID: id, Chunks: len(chunks)})
	ops := append([]clientv3.Op{clientv3.OpPut(b.key("pending"), string(pc)), clientv3.OpPut(b.key("rev"), "p "+id)}, idOps...)
	var decided int64
	for attempt := 1; decided == 0; attempt++ {
		resp, err := b.txn(ctx, cmps, ops)
		if err == nil {
			if !resp.Succeeded {
				b.dropStage(stage)
				return 0, b.refused(ctx, resp)
			}
			decided = resp.Header.Revision
			break
		}
		rev, applied, again := b.ambiguous(ctx, "p "+id, base, attempt, err)
		if applied {
			decided = rev
			break
		}
		if !again {
			// Decided or not, we cannot tell: a decided commit is rolled
			// forward by whoever writes next; an undecided stage is swept.
			return 0, fmt.Errorf("write to %s: %w", b, err)
		}
	}
	rev, err := b.rollForward(ctx, &pendingCommit{ID: id, Chunks: len(chunks)}, decided)
	if err != nil {
		// The commit stands (it is decided): the next writer, on any
		// replica, finishes it first.
		b.log.Warn("a large commit is decided but not yet rolled forward; the next write finishes it", zap.String("id", id), zap.Error(err))
		return decided, nil
	}
	b.log.Info("large commit written in stages", zap.String("id", id), zap.Int("records", len(c.Records)), zap.Int("chunks", len(chunks)))
	return rev, nil
}

func (b *Etcd) dropStage(stage string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = b.cli.Delete(ctx, stage, clientv3.WithPrefix())
}

// rollForward writes a decided commit's records into P/obj, each
// transaction guarded by P/pending (pendRev, its mod revision), and
// deletes P/pending and the stage in the last one. It returns the
// revision of that last transaction; another writer finishing it first
// is no error (its revision is then 0).
func (b *Etcd) rollForward(ctx context.Context, pc *pendingCommit, pendRev int64) (int64, error) {
	recs, err := b.staged(ctx, pc, 0)
	if err != nil {
		return 0, err
	}
	guard := clientv3.Compare(clientv3.ModRevision(b.key("pending")), "=", pendRev)
	var ops []clientv3.Op
	size := 0
	send := func() (bool, error) {
		if len(ops) == 0 {
			return true, nil
		}
		resp, err := b.cli.Txn(ctx).If(guard).Then(ops...).Commit()
		ops, size = nil, 0
		if err != nil {
			return false, err
		}
		return resp.Succeeded, nil
	}
	for _, r := range recs {
		k := b.key("obj", r.Kind, r.Key)
		if len(ops)+1 > etcdMaxOps || size+len(k)+len(r.Value) > etcdMaxBytes {
			if ok, err := send(); err != nil || !ok {
				return 0, err
			}
		}
		if r.Value == nil {
			ops = append(ops, clientv3.OpDelete(k))
		} else {
			ops = append(ops, clientv3.OpPut(k, string(r.Value)))
		}
		size += len(k) + len(r.Value) + 16
	}
	if ok, err := send(); err != nil || !ok {
		return 0, err
	}
	resp, err := b.cli.Txn(ctx).If(guard).Then(clientv3.OpDelete(b.key("pending")),
		clientv3.OpDelete(b.key("stage", pc.ID)+"/", clientv3.WithPrefix()),
		clientv3.OpPut(b.key("rev"), "r "+pc.ID)).Commit()
	if err != nil {
		return 0, err
	}
	if !resp.Succeeded {
		return 0, nil
	}
	return resp.Header.Revision, nil
}

// Watch follows the store from the last Load (see Shared). A watch that
// fell behind etcd's compaction relists (a Full update); one that breaks
// (etcd member lost, no leader) is opened again where it stopped.
func (b *Etcd) Watch(ctx context.Context, fn func(Change) error) error {
	rev, base := b.header, b.base
	backoff := 100 * time.Millisecond
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		wch := b.cli.Watch(wctx, b.prefix+"/", clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		relist := false
		var werr error
		for resp := range wch {
			if resp.CompactRevision != 0 || errors.Is(resp.Err(), rpctypes.ErrCompacted) {
				relist = true
				break
			}
			if err := resp.Err(); err != nil {
				werr = err
				break
			}
			next, err := b.deliver(ctx, resp.Events, &base, fn)
			if next > rev {
				rev = next
			}
			if errors.Is(err, rpctypes.ErrCompacted) {
				relist = true
				break
			}
			if err != nil {
				cancel()
				return err
			}
			backoff = 100 * time.Millisecond
		}
		cancel()
		if err := ctx.Err(); err != nil {
			return err
		}
		if relist {
			b.log.Warn("the store's watch fell behind etcd's compaction; reading the whole store again", zap.Int64("from_revision", rev))
			snap, header, err := b.load(ctx)
			if err != nil {
				if errors.Is(err, ErrVersion) || errors.Is(err, ErrNoStore) {
					return err
				}
				b.log.Warn("reading the store again failed; retrying", zap.Error(err))
				time.Sleep(backoff)
				continue
			}
			if err := fn(Change{Revision: snap.Revision, Records: snap.Records, LastIDs: snap.LastIDs, Full: true}); err != nil {
				return err
			}
			rev, base = header, snap.Revision
			continue
		}
		b.log.Warn("the store's watch broke; opening it again", zap.Int64("after_revision", rev), zap.NamedError("reason", werr))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// deliver turns the events of one watch response into updates, one per
// revision, and returns the last revision seen. base tracks P/rev's mod
// revision.
func (b *Etcd) deliver(ctx context.Context, evs []*clientv3.Event, base *int64, fn func(Change) error) (int64, error) {
	var last int64 // the last revision delivered
	for i := 0; i < len(evs); {
		rev := evs[i].Kv.ModRevision
		var p parsed
		for ; i < len(evs) && evs[i].Kv.ModRevision == rev; i++ {
			if err := b.parse(evs[i].Kv, evs[i].Type == mvccpb.DELETE, &p); err != nil {
				return last, fmt.Errorf("watching %s: %w", b, err)
			}
		}
		if p.schema != nil && *p.schema != SchemaVersion {
			return last, fmt.Errorf("watching %s: %w: another vpcflow changed its schema version to %q; this one reads %q", b, ErrVersion, *p.schema, SchemaVersion)
		}
		recs := p.records
		if p.pending != nil {
			staged, err := b.stagedRetry(ctx, p.pending, rev)
			if err != nil {
				return last, fmt.Errorf("watching %s: %w", b, err)
			}
			recs = append(recs, staged...)
		}
		if p.baseSeen {
			*base = p.base
		}
		if p.baseSeen || len(recs) > 0 || len(p.lastIDs) > 0 { // else not the data (election, epoch, a stage)
			if err := fn(Change{Revision: *base, Records: recs, LastIDs: p.lastIDs}); err != nil {
				return last, err
			}
		}
		last = rev
	}
	return last, nil
}

// stagedRetry reads a staged commit, retrying while etcd is unreachable.
func (b *Etcd) stagedRetry(ctx context.Context, pc *pendingCommit, rev int64) ([]Record, error) {
	for {
		recs, err := b.staged(ctx, pc, rev)
		if err == nil || ctx.Err() != nil || errors.Is(err, rpctypes.ErrCompacted) {
			return recs, err
		}
		b.log.Warn("reading a staged commit failed; retrying", zap.Error(err))
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}
