package controller

import (
	"context"
	"fmt"

	"github.com/vpcflow/vpcflow/controller/pipeline"
)

// RuleHits is what a security group rule matched, on every connected
// switch together: the counters of its conj_id flows (the rule decided the
// packet's fate; a conjunction's clause flows keep no counters). When two
// rules of the same priority and policy match one packet, one of them,
// chosen by OVS, counts it.
type RuleHits struct {
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// RuleHits reads the flows of every connected switch and sums the hits of
// each security group rule, by rule id.
func (c *Controller) RuleHits(ctx context.Context) (map[uint32]RuleHits, error) {
	out := map[uint32]RuleHits{}
	for _, info := range c.Switches() {
		c.mu.Lock()
		sc, ok := c.switches[uint64(info.DPID)]
		c.mu.Unlock()
		if !ok {
			continue
		}
		stats, err := sc.dp.DumpFlows(ctx)
		if err != nil {
			return nil, fmt.Errorf("dumping flows of %s: %w", info.DPID, err)
		}
		for _, s := range stats {
			ck := pipeline.ParseCookie(s.Flow.Cookie)
			if !ck.Ours || ck.Owner != pipeline.OwnerSGRule {
				continue
			}
			h := out[ck.ID]
			h.Packets += s.Packets
			h.Bytes += s.Bytes
			out[ck.ID] = h
		}
	}
	return out, nil
}
