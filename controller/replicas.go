package controller

// Replicas (serve --store etcd://): several vpcflow processes share one
// store and every bridge lists them all as controllers. Each replica
// keeps the topology (the store follows the others' commits), computes
// the desired flows and keeps its switch connections, but only the
// leader (elected through etcd, package ha) writes to switches:
//
//   - The leader asks every switch for MASTER with its generation id and
//     sends nothing else to it, no flow-mod, no bundle, no drift repair,
//     before the switch answered MASTER; then it reconciles (dump + diff:
//     nothing is sent when nothing changed).
//   - Followers ask for SLAVE with the leader's generation (which also
//     moves the switch's generation up, so a deposed leader's stale
//     MASTER request is refused even before the new leader speaks to it),
//     write nothing, and ignore packet-ins.
//   - A leader whose MASTER request is refused as stale, who is told by
//     a role status that another controller became master, or whose
//     change is refused because its connection is a slave, stops writing
//     at once and steps down (Leadership.StepDown). A stale refusal while
//     etcd still confirms the leadership means the switch holds an id of
//     an etcd rebuilt since: the leader raises the epoch (guarded by its
//     leadership key) and asks again.
//   - Losing the etcd session makes the leader a follower before another
//     replica can be elected (the session's lease outlives what the
//     client waits for): it asks every switch for SLAVE.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/controller/engine"
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// Leadership is the election a replica takes part in (package ha's
// Elector implements it).
type Leadership interface {
	// Confirm returns nil while this replica still leads with
	// generation gen, checked in etcd.
	Confirm(ctx context.Context, gen uint64) error
	// BumpEpoch raises the epoch of the generation ids (guarded by the
	// leadership key) and returns this leader's new generation.
	BumpEpoch(ctx context.Context, gen uint64) (uint64, error)
	// StepDown gives up the leadership: a switch said another
	// controller is its master.
	StepDown(reason string)
}

// Role is this replica's part, as the election says.
type Role struct {
	Leader bool
	// Generation is the leader's generation id (this replica's when it
	// leads); 0 while no leader is known.
	Generation uint64
	// LeaderName names the leader (for status and logs).
	LeaderName string
}

// errNotLeader is what a job that would write gets on a replica that is
// not (or no longer) master of the switch.
var errNotLeader = errors.New("this replica is not the leader; the leader installs the flows")

// maxEpochBumps bounds how often one switch's stale refusal raises the
// epoch before the leader gives up and steps down.
const maxEpochBumps = 3

// replicaState is the controller's role; guarded by Controller.mu.
type replicaState struct {
	lead  Leadership
	role  Role
	known bool // SetRole was called
	since time.Time
	// stepping is set while a step-down this replica asked for is under
	// way, so that many refusals ask once.
	stepping bool
}

// replicated reports whether this controller is one replica of several.
func (c *Controller) replicated() bool { return c.rep.lead != nil }

// leading reports whether this controller may write to switches now: it
// is not a replica, or it is the leader. Caller holds c.mu.
func (c *Controller) leading() bool { return !c.replicated() || (c.rep.known && c.rep.role.Leader) }

// IsLeader reports whether this controller writes to switches (always,
// unless it is a replica and not the leader).
func (c *Controller) IsLeader() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leading()
}

// Role returns this replica's role and since when it has it; ok is false
// for a controller that is not a replica.
func (c *Controller) Role() (r Role, since time.Time, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rep.role, c.rep.since, c.replicated()
}

// SetRole is how the election tells the controller its role. Becoming
// leader queues, on every connected switch, a MASTER request and then a
// reconciliation; becoming (or staying) a follower stops every write at
// once and queues a SLAVE request with the leader's generation.
func (c *Controller) SetRole(r Role) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.replicated() {
		return
	}
	prev, known := c.rep.role, c.rep.known
	if known && prev == r {
		return
	}
	c.rep.role, c.rep.known = r, true
	if !known || prev.Leader != r.Leader {
		c.rep.since = time.Now()
		c.rep.stepping = false
	}
	switch {
	case r.Leader:
		c.log.Info("this replica leads: asking every switch for MASTER, then reconciling it",
			zap.String("generation", genString(r.Generation)), zap.Int("switches", len(c.switches)))
	case known && prev.Leader:
		c.log.Warn("this replica no longer leads: it stops writing to switches",
			zap.String("leader", r.LeaderName), zap.String("generation", genString(r.Generation)))
	default:
		c.log.Info("this replica follows", zap.String("leader", r.LeaderName), zap.String("generation", genString(r.Generation)))
	}
	for _, sc := range c.switches {
		c.claimRole(sc)
	}
}

// claimRole queues what sc needs for the current role. Caller holds c.mu.
func (c *Controller) claimRole(sc *switchConn) {
	r := c.rep.role
	if !r.Leader {
		sc.stopWriting()
		if r.Generation != 0 {
			sc.enqueue(c.roleJob(sc, openflow.RoleSlave, r.Generation))
		}
		return
	}
	sc.enqueue(c.roleJob(sc, openflow.RoleMaster, r.Generation))
	done := sc.enqueue(&pushJob{timeout: c.opts.ReconcileTimeout, snapshot: c.reconcileSnapshot(sc.dp.DPID(), false)})
	go func() {
		if err := <-done; err != nil && !errors.Is(err, errNotLeader) && !errors.Is(err, errSwitchGone) {
			sc.log.Error("reconciling switch after becoming its master", zap.Error(err))
		}
	}()
}

// roleSwitch is a datapath that takes role requests (*openflow.Switch).
type roleSwitch interface {
	RequestRole(ctx context.Context, role openflow.Role, gen uint64) (openflow.RoleReply, error)
}

// roleJob asks sc's switch for role with generation gen, in its queue's
// turn. MASTER makes sc writable only once the switch answered MASTER.
func (c *Controller) roleJob(sc *switchConn, role openflow.Role, gen uint64) *pushJob {
	return &pushJob{timeout: c.opts.PushTimeout, role: func(ctx context.Context) error {
		rs, ok := sc.dp.(roleSwitch)
		if !ok {
			if role == openflow.RoleMaster {
				sc.setWritable(true)
			}
			return nil
		}
		for bumps := 0; ; bumps++ {
			if role == openflow.RoleMaster && !c.stillLeader(gen) {
				return errNotLeader // demoted while this job waited
			}
			rep, err := rs.RequestRole(ctx, role, gen)
			if err == nil {
				sc.log.Info("switch role set", zap.Stringer("role", rep.Role), zap.String("generation", genString(rep.Generation)))
				if role == openflow.RoleMaster && rep.Role == openflow.RoleMaster {
					sc.setWritable(true)
				}
				return nil
			}
			if !errors.Is(err, openflow.ErrStaleGeneration) {
				return err
			}
			if role == openflow.RoleSlave {
				// A newer leader moved the switch on; its generation
				// reaches this replica through the election.
				sc.log.Info("switch refused SLAVE with a generation it has moved past; waiting for the newer leader's", zap.String("generation", genString(gen)))
				return nil
			}
			// MASTER refused as stale: still leading (checked in etcd)?
			if cerr := c.rep.lead.Confirm(ctx, gen); cerr != nil {
				c.demoted(fmt.Sprintf("switch %s refused MASTER with generation %s as stale, and etcd no longer confirms this replica's leadership (%v)",
					dpidString(sc.dp.DPID()), genString(gen), cerr))
				return errNotLeader
			}
			if bumps == maxEpochBumps {
				c.demoted(fmt.Sprintf("switch %s refuses MASTER as stale even after %d epoch bumps", dpidString(sc.dp.DPID()), bumps))
				return errNotLeader
			}
			ng, berr := c.rep.lead.BumpEpoch(ctx, gen)
			if berr != nil {
				return fmt.Errorf("switch refused MASTER as stale; raising the epoch failed: %w", berr)
			}
			sc.log.Warn("switch holds a newer generation id than this confirmed leader's (etcd rebuilt?): epoch raised",
				zap.String("old", genString(gen)), zap.String("new", genString(ng)))
			gen = ng
			c.mu.Lock()
			if c.rep.role.Leader {
				c.rep.role.Generation = ng
			}
			c.mu.Unlock()
		}
	}}
}

// stillLeader reports whether this replica leads with generation gen (or
// a newer epoch of it).
func (c *Controller) stillLeader(gen uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rep.known && c.rep.role.Leader && c.rep.role.Generation&genRevMask == gen&genRevMask
}

const genRevMask = 1<<48 - 1

// demoted stops every write and steps down (once per leadership).
func (c *Controller) demoted(reason string) {
	c.mu.Lock()
	if !c.replicated() || !c.rep.role.Leader || c.rep.stepping {
		c.mu.Unlock()
		return
	}
	c.rep.stepping = true
	for _, sc := range c.switches {
		sc.stopWriting()
	}
	c.mu.Unlock()
	c.log.Warn("stepping down: "+reason, zap.String("generation", genString(c.rep.role.Generation)))
	c.rep.lead.StepDown(reason)
}

// SwitchRoleStatus takes a switch's role status: a master demoted by
// another controller's MASTER request stops writing and steps down.
func (c *Controller) SwitchRoleStatus(sw *openflow.Switch, st openflow.RoleStatus) {
	c.mu.Lock()
	sc := c.switches[sw.DPID()]
	ours := sc != nil && sc.dp == Datapath(sw)
	c.mu.Unlock()
	if !ours || st.Role == openflow.RoleMaster {
		return
	}
	if sc.isWritable() || c.IsLeader() {
		sc.stopWriting()
		c.demoted(fmt.Sprintf("switch %s says another controller became master (role status: %s, generation %s)",
			dpidString(sw.DPID()), st.Role, genString(st.Generation)))
	}
}

// genString prints a generation id as epoch:revision.
func genString(gen uint64) string { return fmt.Sprintf("%d:%d", gen>>48, gen&genRevMask) }

// remoteChanged takes the changes other replicas committed (the store's
// subscription): the same recomputation as Apply's, and, on the leader,
// the flow changes queued.
func (c *Controller) remoteChanged(ops []topology.Op) {
	c.mu.Lock()
	c.chassisOpsAfter(ops)
	var changes map[uint64]*engine.PackedChanges
	c.store.Read(func(st *topology.State) {
		changes = c.recompute(st, c.pipe.Affected(st, ops))
	})
	waits := c.queueChanges(changes)
	c.mu.Unlock()
	if len(waits) == 0 {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), c.opts.PushTimeout+time.Second)
		defer cancel()
		if err := c.waitConfirmed(ctx, waits); err != nil {
			c.log.Warn("a change another replica stored was not confirmed by every switch", zap.Error(err))
		}
	}()
}

// writeGate is the part of a switchConn that says whether it may write.
type writeGate struct {
	mu       sync.Mutex
	writable bool
}

func (g *writeGate) setWritable(v bool) {
	g.mu.Lock()
	g.writable = v
	g.mu.Unlock()
}

func (g *writeGate) isWritable() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.writable
}
