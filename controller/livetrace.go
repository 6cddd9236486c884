package controller

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/controller/engine"
	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
	"github.com/vpcflow/vpcflow/trace"
)

// LiveWait is how long a live trace waits for its packet to be caught.
const LiveWait = 2 * time.Second

// liveTraces are the running live traces: their probes (the observation
// flows the engine installs, pipeline.LiveTrace) and who waits for each
// trace's packet-in.
type liveTraces struct {
	// probes is guarded by Controller.mu (the engine reads it through
	// the snapshot).
	probes map[uint32]pipeline.Probe
	last   uint16

	mu      sync.Mutex
	waiting map[uint16]chan trace.Observation
}

// liveTrace sends req's packet for real from its host's port, tagged,
// with observation flows at the end the simulation res predicts on the
// first switch and in the Output stage, and compares what the packet-in
// says with res.
func (c *Controller) liveTrace(ctx context.Context, req trace.Request, res *trace.Result) (*trace.Live, error) {
	var (
		inj   trace.Injection
		id    uint16
		waits map[uint64]<-chan error
		sc    *switchConn
		ierr  error
	)
	c.mu.Lock()
	if !c.leading() {
		// A follower neither writes flows nor hears packet-ins
		// (replicas.go): the leader must run it.
		leader := cmp.Or(c.rep.role.LeaderName, "none known now")
		c.mu.Unlock()
		return nil, &trace.Error{Field: "live", Msg: fmt.Sprintf("a live trace needs the leading replica (leader: %s); this replica does not write to switches", leader)}
	}
	c.store.Read(func(st *topology.State) {
		inj, ierr = trace.Inject(c.traceEnv(st), req)
		if ierr != nil {
			return
		}
		sc = c.switches[inj.DPID]
		if sc == nil {
			ierr = &trace.Error{Field: "from", Msg: fmt.Sprintf("the switch of host %q (%s) is not connected", req.From, topology.DPID(inj.DPID))}
			return
		}
		if id, ierr = c.live.alloc(); ierr != nil {
			return
		}
		c.live.probes[uint32(id)] = pipeline.Probe{DPID: inj.DPID, ID: id, Points: res.ProbePoints(c.pipe)}
		waits = c.queueChanges(c.recompute(st, []pipeline.Owner{pipeline.ProbeOwner(id)}))
	})
	c.mu.Unlock()
	if ierr != nil {
		return nil, ierr
	}
	caught := c.live.wait(id)
	defer c.endLive(id)
	if err := c.waitConfirmed(ctx, waits); err != nil {
		return nil, fmt.Errorf("installing the live trace's observation flows: %w", err)
	}
	sender, ok := sc.dp.(packetSender)
	if !ok {
		return nil, errors.New("live trace: this switch connection cannot send packets")
	}
	start := time.Now()
	mark := pipeline.TraceMark(id)
	if err := sender.PacketOut(ctx, inj.InPort, []openflow.Action{openflow.SetField(openflow.FieldPktMark, uint64(mark)),
		openflow.Output(openflow.PortTable)}, inj.Frame); err != nil {
		return nil, fmt.Errorf("live trace: sending the packet: %w", err)
	}
	var obs *trace.Observation
	timer := time.NewTimer(LiveWait)
	defer timer.Stop()
	select {
	case o := <-caught:
		obs = &o
	case <-timer.C:
	case <-ctx.Done():
		return nil, fmt.Errorf("live trace: %w", ctx.Err())
	}
	took := time.Since(start)
	var live *trace.Live
	c.mu.Lock()
	c.store.Read(func(st *topology.State) {
		live = trace.Observe(c.traceEnv(st), res, inj, obs, took)
	})
	c.mu.Unlock()
	return live, nil
}

// alloc hands out a free trace id. Caller holds Controller.mu.
func (l *liveTraces) alloc() (uint16, error) {
	if l.probes == nil {
		l.probes = map[uint32]pipeline.Probe{}
	}
	for range 1 << 16 {
		l.last++
		if l.last == 0 {
			l.last = 1
		}
		if _, busy := l.probes[uint32(l.last)]; !busy {
			return l.last, nil
		}
	}
	return 0, errors.New("live trace: every trace id is in use")
}

// wait registers for trace id's packet-in.
func (l *liveTraces) wait(id uint16) <-chan trace.Observation {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.waiting == nil {
		l.waiting = map[uint16]chan trace.Observation{}
	}
	ch := make(chan trace.Observation, 1)
	l.waiting[id] = ch
	return ch
}

// endLive removes trace id's observation flows and stops waiting for it.
func (c *Controller) endLive(id uint16) {
	c.live.mu.Lock()
	delete(c.live.waiting, id)
	c.live.mu.Unlock()
	c.mu.Lock()
	delete(c.live.probes, uint32(id))
	var changes map[uint64]*engine.PackedChanges
	c.store.Read(func(st *topology.State) {
		changes = c.recompute(st, []pipeline.Owner{pipeline.ProbeOwner(id)})
	})
	waits := c.queueChanges(changes)
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.waitConfirmed(ctx, waits); err != nil {
		c.log.Warn("removing a live trace's observation flows", zap.Uint16("trace", id), zap.Error(err))
	}
}

// liveIn hands a live trace's packet-in to the trace waiting for it.
func (c *Controller) liveIn(sw packetSender, pi openflow.PacketIn) {
	ck := pipeline.ParseCookie(pi.Cookie)
	if !ck.Ours || ck.Owner != pipeline.OwnerTrace || ck.ID > 0xffff {
		return
	}
	var reg2 uint64
	for _, m := range pi.Match {
		if m.Field == openflow.FieldReg2 {
			reg2 = m.Value
		}
	}
	c.live.mu.Lock()
	ch := c.live.waiting[uint16(ck.ID)]
	c.live.mu.Unlock()
	if ch == nil {
		c.log.Debug("live trace packet for no running trace", zap.String("dpid", dpidString(sw.DPID())), zap.Uint32("trace", ck.ID))
		return
	}
	select {
	case ch <- trace.Observation{Table: pi.TableID, OutPort: uint32(reg2), Frame: pi.Data}:
	default: // one is enough
	}
}
