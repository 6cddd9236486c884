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
// the other, for scrape-time metrics and traces. A switch that fails is
// left out and its error returned with the others'.
func (c *Controller) DumpAllFlows(ctx context.Context) ([]SwitchFlows, error) {
	var out []SwitchFlows
	var errs []error
	for _, info := range c.Switches() {
		c.mu.Lock()
		sc, ok := c.switches[uint64(info.DPID)]
		c.mu.Unlock()
		if !ok {
			continue
		}
		stats, err := sc.dp.DumpFlows(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("dumping flows of %s: %w", info.DPID, err))
			continue
		}
		out = append(out, SwitchFlows{DPID: uint64(info.DPID), Flows: stats})
	}
	if len(errs) > 0 {
		return out, fmt.Errorf("%d of %d switches: %w", len(errs), len(errs)+len(out), errs[0])
	}
	return out, nil
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
