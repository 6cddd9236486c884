package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/controller/engine"
	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/openflow"
)

// connectionGone reports whether err only says that the switch's
// connection closed (or is closing) under a job.
func connectionGone(ctx context.Context, err error) bool {
	return errors.Is(err, openflow.ErrClosed) || errors.Is(err, errSwitchGone) || ctx.Err() != nil
}

// errSwitchGone is returned to waiters whose changes were not sent because
// the switch disconnected; it reconciles from a fresh dump when it returns.
var errSwitchGone = errors.New("switch disconnected before confirming; it will be reconciled when it reconnects")

// switchConn owns all writes to one switch. Jobs run one at a time in the
// order they were queued (queued under Controller.mu, so in the order the
// changes were computed), each within its own timeout. A slow or hung
// switch only delays its own queue: Controller.mu is never held while a
// switch is being waited for.
type switchConn struct {
	dp      Datapath
	log     *zap.Logger
	pipe    *pipeline.Pipeline
	obs     Observer
	release *memRelease // nil: never

	mu         sync.Mutex
	queue      []*pushJob
	wake       chan struct{}
	gone       bool
	reconciled bool
	// changesIn and changesDone count the jobs that change the switch's
	// table (flow-mods, reconciliations) queued and finished: equal, the
	// switch holds every change computed for it (changeState).
	changesIn, changesDone uint64

	// writeGate says whether jobs may write: always for a lone
	// controller, only once the switch answered MASTER for a replica
	// (replicas.go). onSlave is told when the switch refused a write
	// because this connection is a slave.
	writeGate
	onSlave func(error)
}

// pushJob is a batch of flow-mods, or (when snapshot is set) a full
// reconciliation against the desired table that snapshot returns.
//
// The snapshot is taken while the switch's flows are being dumped, not when
// the job is queued. Changes computed in between are then both in the
// snapshot and queued behind this job; replaying them is harmless because
// an add replaces the same entry and a strict delete of an absent entry
// does nothing.
type pushJob struct {
	mods     openflow.FlowMods
	snapshot func() (*engine.Table, *holdPolicy)
	// flushed, when set, gets the reconciliation's result (what it sent
	// and what it kept).
	flushed func(ReconcileResult)
	// check, when set, is a drift check: it runs in the queue's turn (so
	// no change is being applied meanwhile) and does its own I/O.
	check func(ctx context.Context) error
	// role, when set, is a role request (replicas.go): it runs in the
	// queue's turn, so nothing queued behind it is sent before the
	// switch answered.
	role    func(ctx context.Context) error
	timeout time.Duration
	result  chan error
}

// changes reports whether j changes the switch's table (flow-mods or a
// reconciliation; not a drift check or a role request).
func (j *pushJob) changes() bool { return j.check == nil && j.role == nil }

// changeState is the number of table-changing jobs queued so far (the
// generation) and whether every one of them has finished. A caller that
// holds Controller.mu (under which changes are queued) and sees settled
// knows that the switch holds what the engine's desired table says (but
// for drift); the generation tells it later whether a change was queued
// since (settledAt).
func (s *switchConn) changeState() (gen uint64, settled bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changesIn, s.changesIn == s.changesDone
}

// settledAt reports whether no change was queued since changeState said
// gen, and every change before it has finished.
func (s *switchConn) settledAt(gen uint64) bool {
	g, settled := s.changeState()
	return settled && g == gen
}

func newSwitchConn(dp Datapath, log *zap.Logger, pipe *pipeline.Pipeline) *switchConn {
	return &switchConn{dp: dp, log: log, pipe: pipe, obs: nopObserver{}, wake: make(chan struct{}, 1)}
}

// enqueue adds a job; the returned channel yields its result.
func (s *switchConn) enqueue(j *pushJob) <-chan error {
	j.result = make(chan error, 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gone {
		j.result <- errSwitchGone
		return j.result
	}
	s.queue = append(s.queue, j)
	if j.changes() {
		s.changesIn++
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return j.result
}

func (s *switchConn) isReconciled() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reconciled
}

// run executes jobs until ctx ends (the switch disconnected) or a job
// fails, in which case the switch is disconnected so that it reconnects and
// is reconciled from scratch: a table is never left half-known.
func (s *switchConn) run(ctx context.Context) {
	defer s.fail(errSwitchGone)
	for {
		s.mu.Lock()
		var j *pushJob
		if len(s.queue) > 0 {
			j = s.queue[0]
			s.queue[0] = nil
			s.queue = s.queue[1:]
		}
		s.mu.Unlock()
		if j == nil {
			select {
			case <-ctx.Done():
				return
			case <-s.wake:
				continue
			}
		}
		err := s.do(ctx, j)
		if j.changes() {
			s.mu.Lock()
			s.changesDone++
			s.mu.Unlock()
		}
		j.result <- err
		if err != nil {
			if errors.Is(err, errNotLeader) {
				continue // nothing was sent
			}
			if openflow.IsSlaveError(err) && !connectionGone(ctx, err) {
				// Another controller is master: nothing of this job
				// was applied (a slave's bundle is refused whole).
				s.stopWriting()
				if s.onSlave != nil {
					s.onSlave(err)
				}
				continue
			}
			if connectionGone(ctx, err) {
				// The switch went away (its bridge deleted, OVS
				// restarted, ...): nothing is wrong with vpcflow; it is
				// reconciled when it comes back.
				s.log.Info("switch connection closed before it confirmed flow changes; it is reconciled when it reconnects", zap.Error(err))
			} else {
				s.log.Error("switch did not confirm flow changes; disconnecting it to resync", zap.Error(err))
			}
			s.dp.Close()
			return
		}
	}
}

// do runs one job within its timeout (a push: plus its flow-mods'
// allowance, pushDeadline).
func (s *switchConn) do(ctx context.Context, j *pushJob) error {
	if j.role == nil && !s.isWritable() {
		return errNotLeader
	}
	if j.role == nil && j.check == nil && j.snapshot == nil {
		return s.push(ctx, j)
	}
	ctx, cancel := context.WithTimeout(ctx, j.timeout)
	defer cancel()
	switch {
	case j.role != nil:
		return j.role(ctx)
	case j.check != nil:
		return j.check(ctx)
	}
	return s.reconcile(ctx, j)
}

// push sends a job's flow-mods within its timeout plus flowModAllowance
// for each (pushDeadline).
func (s *switchConn) push(ctx context.Context, j *pushJob) error {
	d, cancel := newPushDeadline(ctx, j.timeout)
	defer cancel()
	start := time.Now()
	err := applyMods(d, s.dp, stretchFor(d, j.mods))
	adds, dels := countMods(j.mods)
	s.obs.FlowMods(s.dp.DPID(), adds, dels, time.Since(start), err)
	if err != nil {
		return fmt.Errorf("applying %d flow-mods: %w", j.mods.Len(), err)
	}
	fields := []zap.Field{zap.Int("changes", j.mods.Len())}
	if p, ok := j.mods.(engine.PackedParts); ok {
		// Sent part by part as the engine computed them.
		fields = append(fields, zap.Int("parts", p.Parts()))
	}
	s.log.Debug("flows pushed", append(fields, zap.Duration("took", time.Since(start)))...)
	s.release.after(j.mods.Len())
	return nil
}

// reconcile brings the switch's table to the job's snapshot: dump, diff,
// apply.
func (s *switchConn) reconcile(ctx context.Context, j *pushJob) error {
	start := time.Now()
	var rerr error
	defer func() { s.obs.Reconciled(s.dp.DPID(), time.Since(start), rerr) }()
	metersAdded, metersModified, err := reconcileMeters(ctx, s.dp, s.pipe, s.log)
	if err != nil {
		rerr = err
		return fmt.Errorf("reconciling meters: %w", err)
	}
	// The desired table is taken and indexed while the switch's flows are
	// dumped; each reply part is diffed as it arrives (parts that come
	// before the index is ready wait in the connection's queue), so the
	// dump is never held whole.
	type snapshot struct {
		diff   *engine.TableDiff
		policy *holdPolicy
	}
	snap := make(chan snapshot, 1)
	go func() {
		t, p := j.snapshot()
		snap <- snapshot{t.Diff(), p}
	}()
	var sn *snapshot
	owners := installedOwners{}
	installed := 0
	err = dumpFlows(ctx, s.dp, func(fs *openflow.FlowStats) error {
		if sn == nil {
			x := <-snap
			sn = &x
		}
		installed++
		sn.diff.Installed(&fs.Flow)
		owners.add(fs.Flow.Cookie)
		return nil
	})
	if sn == nil {
		x := <-snap
		sn = &x
	}
	if err != nil {
		rerr = err
		return fmt.Errorf("reading flows: %w", err)
	}
	changes := sn.diff.Changes()
	changes, kept := sn.policy.filterOwners(changes, owners)
	adds, dels := countChanges(changes)
	if len(changes) > 0 {
		t := time.Now()
		rerr = applyMods(ctx, s.dp, engine.ChangeMods(changes))
		s.obs.FlowMods(s.dp.DPID(), adds, dels, time.Since(t), rerr)
		if rerr != nil {
			return fmt.Errorf("reconciling %d flow-mods: %w", len(changes), rerr)
		}
	}
	if kept.Unknown > 0 {
		s.log.Warn("kept flows whose OVSDB is not known yet (unknown is not absent): "+kept.describe(),
			zap.Int("kept", kept.Unknown))
	}
	if kept.Guarded > 0 {
		s.log.Warn("NOT deleting flows of objects the store does not know: the store looks far smaller than this switch's tables "+
			"(an empty or wrong store, or --data-dir?). "+kept.describe()+
			". Restart with --allow-flush, or POST /v1/switches/"+dpidString(s.dp.DPID())+"/flush, to delete them",
			zap.Int("kept", kept.Guarded), zap.Int("objects_unknown", kept.Missing), zap.Int("objects_on_switch", kept.Owners))
	}
	s.log.Info("switch reconciled", zap.Int("installed", installed), zap.Int("added", adds),
		zap.Int("deleted", dels), zap.Int("kept", kept.total()), zap.Duration("took", time.Since(start)),
		zap.Int("meters_added", metersAdded), zap.Int("meters_modified", metersModified))
	if j.flushed != nil {
		j.flushed(ReconcileResult{Installed: installed, Added: adds, Deleted: dels, KeptUnknown: kept.Unknown, KeptGuarded: kept.Guarded})
	}
	// Listed as reconciled only after the line above is written, so a
	// client that waits for the switch and then reads the log finds it.
	s.mu.Lock()
	s.reconciled = true
	s.mu.Unlock()
	s.release.after(adds + dels)
	return nil
}

// flowDumper is a Datapath that hands its flows over as its dump arrives
// (*openflow.Switch does).
type flowDumper interface {
	DumpFlowsFunc(ctx context.Context, fn func(fs *openflow.FlowStats) error) error
}

// dumpFlows calls fn with every flow of dp, as the dump arrives when dp
// can (fs is reused: fn copies what it keeps).
func dumpFlows(ctx context.Context, dp Datapath, fn func(fs *openflow.FlowStats) error) error {
	if d, ok := dp.(flowDumper); ok {
		return d.DumpFlowsFunc(ctx, fn)
	}
	all, err := dp.DumpFlows(ctx)
	if err != nil {
		return err
	}
	for i := range all {
		if err := fn(&all[i]); err != nil {
			return err
		}
	}
	return nil
}

// stopWriting makes the switch read-only for this controller at once:
// queued jobs that would write get errNotLeader (role requests stay).
// A job already writing finishes; the switch refuses it if this
// connection is no longer master.
func (s *switchConn) stopWriting() {
	s.setWritable(false)
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.queue[:0]
	for _, j := range s.queue {
		if j.role != nil {
			kept = append(kept, j)
			continue
		}
		j.result <- errNotLeader
	}
	for i := len(kept); i < len(s.queue); i++ {
		s.queue[i] = nil
	}
	s.queue = kept
}

// fail ends the queue: pending and future jobs get err.
func (s *switchConn) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gone = true
	for _, j := range s.queue {
		j.result <- err
	}
	s.queue = nil
}

// applyMods applies mods on dp (nothing for an empty batch). A batch in
// parts goes to the switch at once, unread: its Len would wait for the
// last part, and the switch takes each part as it comes (issue 17).
func applyMods(ctx context.Context, dp Datapath, mods openflow.FlowMods) error {
	if mods == nil {
		return nil
	}
	if _, parted := mods.(openflow.ModParts); !parted && mods.Len() == 0 {
		return nil
	}
	return dp.ApplySeq(ctx, mods)
}

// modCounter is a batch that knows how many of its mods install and
// delete (engine.PackedChanges counts as it packs).
type modCounter interface{ Counts() (adds, dels int) }

// countMods is how many of mods install and how many delete.
func countMods(mods openflow.FlowMods) (adds, dels int) {
	if mods == nil {
		return 0, 0
	}
	if c, ok := mods.(modCounter); ok {
		return c.Counts()
	}
	var m openflow.FlowMod
	for i := range mods.Len() {
		if mods.At(i, &m) == nil && m.Command == openflow.FlowAdd {
			adds++
		} else {
			dels++
		}
	}
	return adds, dels
}

func countChanges(cs []engine.FlowChange) (adds, dels int) {
	for _, ch := range cs {
		if ch.Delete {
			dels++
		} else {
			adds++
		}
	}
	return adds, dels
}
