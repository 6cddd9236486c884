package controller

import (
	"context"
	"sync"
	"time"

	"github.com/vpcflow/vpcflow/controller/pipeline"
)

// Packets punted to vpcflow are limited twice: on the switch by their
// service's meter (declared in the pipeline, installed by meters.go), and
// here by a budget per source — a switch port, i.e. one VM — so that one
// VM flooding (DF probes too big for the underlay, DHCP requests) is cut
// off before any work is done for it and before the controller lock is
// taken, and the packets of others still get through.

// Per-source budget: a token bucket per (switch, port).
const (
	puntRate  = 20 // packets per second a source may have handled
	puntBurst = 40
)

// source is where a punted packet came from.
type source struct {
	dpid uint64
	port uint32
}

// puntState is the per-source budgets and the counters of what vpcflow
// itself drops or answers (the switch's meters count their own drops).
type puntState struct {
	mu      sync.Mutex
	buckets map[source]*bucket
	// limited counts packets over their source's budget, by source.
	limited map[source]uint64
	// counted counts controller-side drops by reason, by source.
	counted map[pipeline.DropReason]map[source]uint64
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newPuntState() *puntState {
	return &puntState{buckets: map[source]*bucket{}, limited: map[source]uint64{},
		counted: map[pipeline.DropReason]map[source]uint64{}}
}

// allow takes one packet from src's budget; false (and counted as
// punt_limited) when it is spent.
func (p *puntState) allow(src source, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	b, ok := p.buckets[src]
	if !ok {
		b = &bucket{tokens: puntBurst, last: now}
		p.buckets[src] = b
	}
	b.tokens = min(puntBurst, b.tokens+now.Sub(b.last).Seconds()*puntRate)
	b.last = now
	if b.tokens < 1 {
		p.limited[src]++
		return false
	}
	b.tokens--
	return true
}

// count records one packet of src dropped by vpcflow for reason r.
func (p *puntState) count(r pipeline.DropReason, src source) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.counted[r]
	if m == nil {
		m = map[source]uint64{}
		p.counted[r] = m
	}
	m[src]++
}

// snapshot copies the counters: punt_limited (over budget) and the
// counted reasons, by source.
func (p *puntState) snapshot() map[pipeline.DropReason]map[source]uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[pipeline.DropReason]map[source]uint64{pipeline.DropPuntLimited: {}}
	for s, n := range p.limited {
		out[pipeline.DropPuntLimited][s] = n
	}
	for r, m := range p.counted {
		c := map[source]uint64{}
		for s, n := range m {
			c[s] = n
		}
		out[r] = c
	}
	return out
}

// addPuntDrops adds to a drop report what vpcflow counts itself: packets
// over their source's budget and those its services refused (by the
// host on the port they came from), and the packets each switch's meters
// dropped (punt_limited, per switch). Caller holds no lock.
func (c *Controller) addPuntDrops(ctx context.Context, report *DropReport, byHostID map[uint32]*HostDrops) error {
	counts := c.punts.snapshot()
	c.mu.Lock()
	hostOf := make(map[source]uint32, c.hostAt.len())
	for at, id := range c.hostAt.all() {
		hostOf[source{at.DPID, at.OFPort}] = id
	}
	dps := map[uint64]Datapath{}
	for dpid, sc := range c.switches {
		dps[dpid] = sc.dp
	}
	c.mu.Unlock()
	for i := range report.Switches {
		sd := &report.Switches[i]
		dpid := uint64(sd.DPID)
		for r, bySrc := range counts {
			name := c.dropName(r)
			for src, n := range bySrc {
				if src.dpid != dpid {
					continue
				}
				sd.Drops.Add(name, n)
				if id, ok := hostOf[src]; ok {
					hd, ok := byHostID[id]
					if !ok {
						hd = &HostDrops{DPID: sd.DPID, Drops: c.newDropCounters()}
						byHostID[id] = hd
					}
					hd.Drops.Add(name, n)
				}
			}
		}
		dp, ok := dps[dpid]
		if !ok {
			continue
		}
		stats, err := dp.MeterStats(ctx, 0xffffffff)
		if err != nil {
			return err
		}
		for _, m := range c.pipe.Meters() {
			for _, st := range stats {
				if st.ID != m.ID {
					continue
				}
				for _, b := range st.Bands {
					sd.Drops.Add(c.dropName(pipeline.DropPuntLimited), b.Packets)
				}
			}
		}
	}
	return nil
}
