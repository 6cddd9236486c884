// Package ha elects the leader among vpcflow replicas through etcd and
// hands out the generation ids that fence deposed leaders on the
// switches.
//
// Each replica campaigns (concurrency.Election) on a session with a short
// TTL. Campaign returning is not enough (it can return after the session
// expired): leadership is confirmed with a transaction on the election
// key's create revision, and the leader's own etcd writes (its proclaimed
// generation, an epoch bump) are guarded by that key. The generation id
// is epoch<<48 | the election key's create revision: it grows with every
// new leader, and the epoch (P/epoch) lets it grow past ids an earlier
// etcd handed out (revisions restart low when etcd is rebuilt).
package ha

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
)

// DefaultTTL is the session TTL: a dead leader is replaced after about
// this long.
const DefaultTTL = 3 * time.Second

// Role is what the elector reports.
type Role struct {
	Leader bool
	// Generation is the leader's generation id (0: no leader known).
	Generation uint64
	LeaderName string
}

// Config of an Elector.
type Config struct {
	Client *clientv3.Client
	// Prefix is the store's prefix: the election lives under
	// Prefix/election, the epoch at Prefix/epoch.
	Prefix string
	// Name identifies this replica (the leader's name in status and logs).
	Name string
	// TTL of the session (default DefaultTTL; whole seconds, at least 1).
	TTL time.Duration
	Log *zap.Logger
}

// Elector takes part in the election.
type Elector struct {
	cfg Config
	log *zap.Logger

	stepDown chan string

	mu      sync.Mutex
	key     string // our election key while we lead
	rev     int64  // its create revision
	gen     uint64
	leading bool
}

// New returns an elector; Run takes part.
func New(cfg Config) *Elector {
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	return &Elector{cfg: cfg, log: cfg.Log, stepDown: make(chan string, 1)}
}

// leaderValue is the election key's value: who leads, with which
// generation (0 until the leader confirmed and proclaimed it).
type leaderValue struct {
	Name       string `json:"name"`
	Generation uint64 `json:"generation"`
}

func (e *Elector) electionPrefix() string { return e.cfg.Prefix + "/election" }
func (e *Elector) epochKey() string       { return e.cfg.Prefix + "/epoch" }

func ttlSeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	return max(s, 1)
}

// Run takes part in the election until ctx ends, calling onRole (from one
// goroutine, in order) whenever this replica's role or the known leader
// changes. It returns ctx's error.
func (e *Elector) Run(ctx context.Context, onRole func(Role)) error {
	var last Role
	var lastSet bool
	report := func(r Role) {
		if lastSet && r == last {
			return
		}
		last, lastSet = r, true
		onRole(r)
	}
	backoff := 200 * time.Millisecond
	for ctx.Err() == nil {
		err := e.term(ctx, report, func() Role { return last })
		if ctx.Err() != nil {
			break
		}
		if last.Leader {
			report(Role{Generation: last.Generation, LeaderName: last.LeaderName})
		}
		if err != nil {
			e.log.Warn("election: session ended", zap.Error(err))
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		backoff = 200 * time.Millisecond
	}
	return ctx.Err()
}

// term is one session: campaign (observing the leader meanwhile), lead
// until the session ends or this replica steps down.
func (e *Elector) term(ctx context.Context, report func(Role), last func() Role) error {
	sess, err := concurrency.NewSession(e.cfg.Client, concurrency.WithTTL(ttlSeconds(e.cfg.TTL)), concurrency.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("open etcd session: %w", err)
	}
	defer sess.Close() // revokes the lease: the key goes at once
	el := concurrency.NewElection(sess, e.electionPrefix())

	// Followers learn the leader (and its generation) by observing.
	octx, ocancel := context.WithCancel(sess.Ctx())
	defer ocancel()
	var obsMu sync.Mutex
	campaigning := true
	go func() {
		for resp := range el.Observe(octx) {
			if len(resp.Kvs) == 0 {
				continue
			}
			var v leaderValue
			if json.Unmarshal(resp.Kvs[0].Value, &v) != nil || v.Generation == 0 {
				continue // not confirmed yet
			}
			obsMu.Lock()
			if campaigning {
				report(Role{Generation: v.Generation, LeaderName: v.Name})
			}
			obsMu.Unlock()
		}
	}()

	val, _ := json.Marshal(leaderValue{Name: e.cfg.Name})
	if err := el.Campaign(sess.Ctx(), string(val)); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("campaign: %w", err)
	}
	// Campaign can return without the key when the session expired:
	// confirm in etcd, and read the epoch in the same transaction.
	tr, err := e.cfg.Client.Txn(sess.Ctx()).
		If(clientv3.Compare(clientv3.CreateRevision(el.Key()), "=", el.Rev())).
		Then(clientv3.OpGet(e.epochKey())).Commit()
	if err != nil {
		return fmt.Errorf("confirm leadership: %w", err)
	}
	if !tr.Succeeded {
		return errors.New("campaign returned but the election key is gone (session expired)")
	}
	epoch := uint64(1)
	if kvs := tr.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
		if n, err := strconv.ParseUint(string(kvs[0].Value), 10, 16); err == nil && n > 0 {
			epoch = n
		}
	}
	gen := epoch<<48 | uint64(el.Rev())
	val, _ = json.Marshal(leaderValue{Name: e.cfg.Name, Generation: gen})
	if err := el.Proclaim(sess.Ctx(), string(val)); err != nil {
		return fmt.Errorf("proclaim generation: %w", err)
	}
	obsMu.Lock()
	campaigning = false
	obsMu.Unlock()
	select { // a step-down asked for in an earlier term is stale
	case <-e.stepDown:
	default:
	}
	e.mu.Lock()
	e.key, e.rev, e.gen, e.leading = el.Key(), el.Rev(), gen, true
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.leading = false
		e.mu.Unlock()
	}()
	e.log.Info("elected leader", zap.String("name", e.cfg.Name), zap.Uint64("epoch", epoch), zap.Int64("key_revision", el.Rev()))
	report(Role{Leader: true, Generation: gen, LeaderName: e.cfg.Name})

	select {
	case <-ctx.Done():
		rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = el.Resign(rctx)
		cancel()
		return nil
	case <-sess.Done():
		e.log.Warn("lost the etcd session: no longer leader", zap.Duration("ttl", e.cfg.TTL))
		return nil
	case why := <-e.stepDown:
		e.mu.Lock()
		e.leading = false
		e.mu.Unlock()
		report(Role{Generation: last().Generation, LeaderName: last().LeaderName})
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := el.Resign(rctx)
		cancel()
		e.log.Warn("stepped down", zap.String("reason", why), zap.NamedError("resign", err))
		// Let another replica take over before campaigning again.
		select {
		case <-ctx.Done():
		case <-time.After(e.cfg.TTL):
		}
		return nil
	}
}

// Confirm returns nil while this replica leads with generation gen (its
// election key still there, checked in etcd).
func (e *Elector) Confirm(ctx context.Context, gen uint64) error {
	e.mu.Lock()
	key, rev, cur, leading := e.key, e.rev, e.gen, e.leading
	e.mu.Unlock()
	if !leading || cur != gen {
		return errors.New("not the leader")
	}
	tr, err := e.cfg.Client.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", rev)).Commit()
	if err != nil {
		return fmt.Errorf("confirm leadership: %w", err)
	}
	if !tr.Succeeded {
		return errors.New("the election key is gone")
	}
	return nil
}

// BumpEpoch raises P/epoch by one, guarded by this leader's election key,
// and returns its new generation.
func (e *Elector) BumpEpoch(ctx context.Context, gen uint64) (uint64, error) {
	e.mu.Lock()
	key, rev, cur, leading := e.key, e.rev, e.gen, e.leading
	e.mu.Unlock()
	if !leading || cur != gen {
		return 0, errors.New("not the leader")
	}
	next := gen>>48 + 1
	if next >= 1<<16 {
		return 0, errors.New("epoch exhausted")
	}
	tr, err := e.cfg.Client.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", rev)).
		Then(clientv3.OpPut(e.epochKey(), strconv.FormatUint(next, 10))).Commit()
	if err != nil {
		return 0, fmt.Errorf("raise epoch: %w", err)
	}
	if !tr.Succeeded {
		return 0, errors.New("raise epoch: the election key is gone")
	}
	ng := next<<48 | uint64(rev)
	val, _ := json.Marshal(leaderValue{Name: e.cfg.Name, Generation: ng})
	if _, err := e.cfg.Client.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", rev)).
		Then(clientv3.OpPut(key, string(val), clientv3.WithIgnoreLease())).Commit(); err != nil {
		e.log.Warn("proclaiming the new generation failed", zap.Error(err))
	}
	e.mu.Lock()
	e.gen = ng
	e.mu.Unlock()
	return ng, nil
}

// StepDown resigns the leadership; the elector campaigns again after a
// TTL, giving another replica the time to take over.
func (e *Elector) StepDown(reason string) {
	e.mu.Lock()
	leading := e.leading
	e.mu.Unlock()
	if !leading {
		return
	}
	select {
	case e.stepDown <- reason:
	default:
	}
}
