package controller

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/controller/engine"
	"github.com/vpcflow/vpcflow/topology"
)

// RestoreResult is what an online restore did (or, on a dry run, would
// do).
type RestoreResult struct {
	// Ops are the changes, resolved, in the order they were applied
	// (topology.Store.ApplySnapshot): deletes, then creates and updates.
	Ops []topology.Op
	// Unchanged counts the objects that were already as the snapshot has
	// them: nothing of theirs was recomputed.
	Unchanged int
	// FlowMods counts the flow-mods queued, over all connected switches
	// (0 on a dry run); Switches, the switches that got any.
	FlowMods int
	Switches int
}

// Restore makes the topology exactly snap (a backup's content) on a
// running fabric: the store takes only the objects that differ, in one
// commit (topology.Store.ApplySnapshot), and every switch gets only the
// net flow difference, one bundle each, as for any Apply. Objects the
// snapshot has as they are cost nothing, and their flows are not touched.
// Chassis the snapshot brings back have their OVSDB bridge configured
// first. Like Apply, an unconfirmed change is an *UnconfirmedError
// returned with the result.
func (c *Controller) Restore(ctx context.Context, snap topology.Snapshot, dryRun bool) (RestoreResult, error) {
	plan, unchanged, err := c.store.ApplySnapshot(ctx, snap, true)
	if err != nil {
		return RestoreResult{}, err
	}
	if dryRun {
		return RestoreResult{Ops: plan, Unchanged: unchanged}, nil
	}
	var undos []func(context.Context) error
	undoAll := func() {
		for i := len(undos) - 1; i >= 0; i-- {
			uctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			if err := undos[i](uctx); err != nil {
				c.log.Error("undoing a chassis setup of a restore that failed", zap.Error(err))
			}
			cancel()
		}
	}
	for _, op := range plan {
		if ch := op.Chassis(); ch != nil && op.Kind == topology.OpCreate {
			u, err := c.setupChassis(ctx, *ch)
			if err != nil {
				undoAll()
				return RestoreResult{}, fmt.Errorf("restore: chassis %q: %w", ch.Name, err)
			}
			undos = append(undos, u)
		}
	}
	applied, unchanged, err := c.store.ApplySnapshot(ctx, snap, false)
	if err != nil {
		undoAll()
		return RestoreResult{}, err
	}
	res := RestoreResult{Ops: applied, Unchanged: unchanged}
	if len(applied) == 0 {
		return res, nil
	}
	c.mu.Lock()
	c.chassisOpsAfter(applied)
	var changes map[uint64]*engine.PackedChanges
	c.store.Read(func(st *topology.State) {
		changes = c.recompute(st, c.pipe.Affected(st, applied))
	})
	for dpid, cs := range changes {
		if _, ok := c.switches[dpid]; ok && cs.Len() > 0 && c.leading() { // a follower sends none (replicas.go)
			res.FlowMods += cs.Len()
			res.Switches++
		}
	}
	waits := c.queueChanges(changes)
	c.mu.Unlock()
	c.log.Info("topology restored from a snapshot", zap.Int("ops", len(applied)), zap.Int("unchanged", unchanged),
		zap.Int("flow_mods", res.FlowMods), zap.Int("switches", res.Switches))
	return res, c.waitConfirmed(ctx, waits)
}
