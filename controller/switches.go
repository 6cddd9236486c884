package controller

import (
	"context"
	"fmt"
	"sort"

	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/controller/engine"
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// SwitchConnected runs a switch's connection: once the OVSDB port map is
// known, it queues a full reconciliation against a snapshot of the desired
// table (dump, then send only what is missing, different or stale), and then
// applies queued changes in order until the switch disconnects.
func (c *Controller) SwitchConnected(ctx context.Context, sw *openflow.Switch) {
	c.Serve(ctx, sw)
}

// SwitchDisconnected forgets a switch.
func (c *Controller) SwitchDisconnected(sw *openflow.Switch) {
	c.Forget(sw)
}

// Serve runs one connected datapath until ctx ends or it fails: it is
// reconciled first, then gets every change in order. The caller calls
// Forget when the datapath's connection is gone.
func (c *Controller) Serve(ctx context.Context, dp Datapath) {
	log := c.log.With(zap.String("dpid", dpidString(dp.DPID())), zap.String("remote", dp.RemoteAddr()))
	select {
	case <-c.portsReady:
	case <-ctx.Done():
		return
	}
	sc := newSwitchConn(dp, log, c.pipe)
	sc.obs = c.observer()
	sc.release = c.release
	sc.onSlave = func(err error) {
		c.demoted(fmt.Sprintf("switch %s refused a change: this connection is a slave (%v)", dpidString(dp.DPID()), err))
	}
	c.mu.Lock()
	if old, ok := c.switches[dp.DPID()]; ok && old.dp != dp {
		old.dp.Close()
	}
	c.switches[dp.DPID()] = sc
	dpid := dp.DPID()
	nothing := make(chan error)
	close(nothing)
	var done <-chan error = nothing
	switch {
	case !c.replicated():
		sc.setWritable(true)
		done = sc.enqueue(&pushJob{timeout: c.opts.ReconcileTimeout, snapshot: c.reconcileSnapshot(dpid, false)})
	case c.rep.known:
		// Nothing is sent before the role request (replicas.go).
		c.claimRole(sc)
	default:
		// The election has not spoken yet: nothing is sent.
	}
	c.mu.Unlock()
	go func() {
		if err := <-done; err != nil {
			if connectionGone(ctx, err) {
				log.Info("switch went away while it was being reconciled", zap.Error(err))
				return
			}
			log.Error("reconciling switch", zap.Error(err))
		}
	}()
	go c.driftLoop(ctx, sc)
	go c.uplinkARPLoop(ctx, sc)
	sc.run(ctx)
}

// reconcileSnapshot is the snapshot function of a reconciliation of dpid:
// the desired table and what to keep, taken together under c.mu.
func (c *Controller) reconcileSnapshot(dpid uint64, flush bool) func() (*engine.Table, *holdPolicy) {
	return func() (*engine.Table, *holdPolicy) {
		c.mu.Lock()
		defer c.mu.Unlock()
		var p *holdPolicy
		c.store.Read(func(st *topology.State) { p = c.holdPolicyFor(st, dpid, flush) })
		return c.engine.Table(dpid), p
	}
}

// Flush reconciles a connected switch now, deleting every flow vpcflow
// does not want there, also when the store knows far fewer objects than
// the switch has flows for (which a reconciliation otherwise holds back);
// flows of objects whose OVSDB has not answered are still kept. It
// returns what was done once the switch confirmed it.
func (c *Controller) Flush(ctx context.Context, dpid topology.DPID) (ReconcileResult, error) {
	c.mu.Lock()
	sc, ok := c.switches[uint64(dpid)]
	c.mu.Unlock()
	if !ok {
		return ReconcileResult{}, fmt.Errorf("%s: %w", dpid, ErrUnknownSwitch)
	}
	var res ReconcileResult
	done := sc.enqueue(&pushJob{timeout: c.opts.ReconcileTimeout, snapshot: c.reconcileSnapshot(uint64(dpid), true),
		flushed: func(r ReconcileResult) { res = r }})
	select {
	case err := <-done:
		if err != nil {
			return ReconcileResult{}, fmt.Errorf("flushing %s: %w", dpid, err)
		}
	case <-ctx.Done():
		return ReconcileResult{}, fmt.Errorf("flushing %s: %w", dpid, ctx.Err())
	}
	res.DPID = dpid
	c.log.Info("switch flushed on request", zap.String("dpid", dpid.String()), zap.Int("deleted", res.Deleted),
		zap.Int("added", res.Added), zap.Int("kept_unknown_ovsdb", res.KeptUnknown))
	return res, nil
}

// Forget drops a datapath whose connection is gone; a newer connection
// with the same dpid is kept.
func (c *Controller) Forget(dp Datapath) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur, ok := c.switches[dp.DPID()]; ok && cur.dp == dp {
		delete(c.switches, dp.DPID())
		cur.fail(errSwitchGone)
		c.log.Info("switch disconnected", zap.String("dpid", dpidString(dp.DPID())))
	}
}

// Switches lists the reconciled switches with their ports.
func (c *Controller) Switches() []SwitchInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]SwitchInfo, 0, len(c.switches))
	for dpid, sc := range c.switches {
		if !c.listed(sc) {
			continue
		}
		sw := sc.dp
		info := SwitchInfo{DPID: topology.DPID(dpid), Remote: sw.RemoteAddr(),
			ConnectedSince: sw.ConnectedAt().UTC(), CertificateSHA256: sw.CertificateSHA256(), Ports: []PortInfo{}}
		for _, ep := range sortedEndpoints(c.bridges) {
			for _, b := range c.bridges[ep] {
				if b.DPID != dpid {
					continue
				}
				info.Bridge = b.Name
				for _, p := range b.Ports {
					pi := PortInfo{Name: p.Name, OFPort: p.OFPort}
					if len(p.AttachedMAC) == 6 {
						pi.MAC = p.AttachedMAC.String()
					}
					info.Ports = append(info.Ports, pi)
				}
			}
		}
		sort.Slice(info.Ports, func(i, j int) bool { return info.Ports[i].OFPort < info.Ports[j].OFPort })
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].DPID < out[j].DPID })
	return out
}

// Flows calls fn with every flow of a connected switch as its dump
// arrives, in the switch's order (e is reused: fn copies what it keeps).
// Nothing is held: a listing of a million flows keeps what its page
// needs, not the whole dump (issue 17).
func (c *Controller) Flows(ctx context.Context, dpid topology.DPID, fn func(e *FlowEntry) error) error {
	c.mu.Lock()
	sc, ok := c.switches[uint64(dpid)]
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("%s: %w", dpid, ErrUnknownSwitch)
	}
	var e FlowEntry
	var ferr error
	err := c.dumpInChunks(ctx, sc.dp, func(fs *openflow.FlowStats) error {
		e = EntryOf(fs)
		if err := fn(&e); err != nil {
			ferr = err
			return err
		}
		return nil
	})
	if ferr != nil {
		return ferr
	}
	if err != nil {
		return fmt.Errorf("dumping flows of %s: %w", dpid, err)
	}
	return nil
}

// EntryOf is a flow as the API lists it.
func EntryOf(fs *openflow.FlowStats) FlowEntry {
	return FlowEntry{
		Table: fs.Flow.Table, Priority: fs.Flow.Priority,
		Cookie: fmt.Sprintf("0x%x", fs.Flow.Cookie), Match: fs.Flow.Match.String(),
		Actions: fs.Flow.ActionsString(), Packets: fs.Packets, Bytes: fs.Bytes,
		DurationSec: fs.Duration.Seconds(),
	}
}

// listed says whether Switches lists sc: a leader lists a switch once its
// tables are known to be right (reconciled). Caller holds c.mu.
func (c *Controller) listed(sc *switchConn) bool { return sc.isReconciled() || !c.leading() }

// listedSwitch is a switch Switches lists, for reads that go to every one.
type listedSwitch struct {
	dpid topology.DPID
	dp   Datapath
}

// listedSwitches are the switches Switches lists, by dpid.
func (c *Controller) listedSwitches() []listedSwitch {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]listedSwitch, 0, len(c.switches))
	for dpid, sc := range c.switches {
		if c.listed(sc) {
			out = append(out, listedSwitch{topology.DPID(dpid), sc.dp})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].dpid < out[j].dpid })
	return out
}
