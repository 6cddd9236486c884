package controller

import (
	"context"
	"fmt"
	"time"

	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// Observer is told what the runtime does, for metrics (Options.Observer;
// nil means nobody listens). Methods are called from the switches'
// queues and the packet-in handler: they must be quick and safe for
// concurrent use.
type Observer interface {
	// FlowMods: flow-mods were sent to a switch and confirmed (or not:
	// err), adds and deletes of them, taking d (a push, or the apply of a
	// reconciliation).
	FlowMods(dpid uint64, adds, deletes int, d time.Duration, err error)
	// Reconciled: a full reconciliation (dump, diff, apply) ended after d.
	Reconciled(dpid uint64, d time.Duration, err error)
	// PacketIn: the controller handled a packet-in sent for reason (a drop
	// reason's name, e.g. too_big, or "unexpected").
	PacketIn(reason string)
}

type nopObserver struct{}

func (nopObserver) FlowMods(uint64, int, int, time.Duration, error) {}
func (nopObserver) Reconciled(uint64, time.Duration, error)         {}
func (nopObserver) PacketIn(string)                                 {}

// observer is the configured Observer, never nil.
func (c *Controller) observer() Observer {
	if c.opts.Observer == nil {
		return nopObserver{}
	}
	return c.opts.Observer
}

// SwitchFlows are the flows a connected switch reported, with their
// counters.
type SwitchFlows struct {
	DPID  uint64
	Flows []openflow.FlowStats
}

// DumpAllFlows dumps the flow tables of every reconciled switch, one after
// the other, for traces that index them (EachFlow, kept).
func (c *Controller) DumpAllFlows(ctx context.Context) ([]SwitchFlows, error) {
	var out []SwitchFlows
	err := c.EachFlow(ctx, func(dpid uint64, fs *openflow.FlowStats) error {
		if len(out) == 0 || out[len(out)-1].DPID != dpid {
			out = append(out, SwitchFlows{DPID: dpid})
		}
		last := &out[len(out)-1]
		last.Flows = append(last.Flows, openflow.FlowStats{Flow: openflow.CloneFlow(&fs.Flow), Packets: fs.Packets, Bytes: fs.Bytes, Duration: fs.Duration})
		return nil
	})
	return out, err
}

// EachFlow calls fn with every flow of every reconciled switch, one
// switch after the other, as each dump arrives: nothing is held (fs is
// reused, fn copies what it keeps), so summing a million flows' counters
// (the metrics' flow statistics) leaves no garbage to mark. A switch whose
// dump fails has handed over the flows before the failure; the others go
// on and its error is returned with theirs. fn's error stops it.
func (c *Controller) EachFlow(ctx context.Context, fn func(dpid uint64, fs *openflow.FlowStats) error) error {
	var errs []error
	done := 0
	for _, sw := range c.listedSwitches() {
		dpid := uint64(sw.dpid)
		var ferr error
		err := c.dumpInChunks(ctx, sw.dp, func(fs *openflow.FlowStats) error {
			if err := fn(dpid, fs); err != nil {
				ferr = err
				return err
			}
			return nil
		})
		if ferr != nil {
			return ferr
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("dumping flows of %s: %w", sw.dpid, err))
			continue
		}
		done++
	}
	if len(errs) > 0 {
		return fmt.Errorf("%d of %d switches: %w", len(errs), len(errs)+done, errs[0])
	}
	return nil
}

// dumpInChunks calls fn with every flow of dp, one table per request —
// a big table (more than Options.DumpSliceFlows) a slice by cookie at a time —
// when dp can (*openflow.Switch): a switch answers a flow stats request
// whole before it reads its next message, so a dump of 650,000 flows in
// one request held a change to that switch back for most of a second
// (issue 17); in chunks it waits for one chunk at most. Not atomic: a
// flow that changes meanwhile may be seen twice or not at all, which a
// sum of counters or a report tolerates.
func (c *Controller) dumpInChunks(ctx context.Context, dp Datapath, fn func(fs *openflow.FlowStats) error) error {
	if _, ok := dp.(tableDumper); !ok {
		return dumpFlows(ctx, dp, fn)
	}
	stats, err := dp.TableStats(ctx)
	if err != nil {
		return dumpFlows(ctx, dp, fn) // a switch without table stats
	}
	for _, ts := range stats {
		if ts.Active == 0 {
			continue
		}
		parts := driftSlices(int(ts.Active), c.opts.DumpSliceFlows)
		for k := range parts {
			if err := dumpTable(ctx, dp, ts.Table, k, parts-1, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// DumpFlows dumps one connected switch's flows with their counters.
func (c *Controller) DumpFlows(ctx context.Context, dpid uint64) ([]openflow.FlowStats, error) {
	c.mu.Lock()
	sc, ok := c.switches[dpid]
	c.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%s: %w", topology.DPID(dpid), ErrUnknownSwitch)
	}
	return sc.dp.DumpFlows(ctx)
}

// TooBigByHost is the number of frames too big for the VXLAN underlay
// each host sent (by host id), as counted from packet-ins (OVS's flow
// counters cannot tell them).
func (c *Controller) TooBigByHost() map[uint32]uint64 {
	byHost, _ := c.tooBig.snapshot()
	return byHost
}

// packetInReason names why the pipeline sent a packet: its cookie's drop
// reason, or "unexpected" for a packet vpcflow did not ask for.
func (c *Controller) packetInReason(ck pipeline.ParsedCookie) string {
	if !ck.Ours || ck.Reason == pipeline.DropNone {
		return "unexpected"
	}
	return c.dropName(ck.Reason)
}
