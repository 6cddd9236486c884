package controller

import (
	"context"
	"fmt"
	"sort"

	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// Drops reads the drop flows of every connected switch and sums their
// packet counts by reason, per switch and per host (the host's id is in
// the cookie of its drop flows).
func (c *Controller) Drops(ctx context.Context) (DropReport, error) {
	report := DropReport{Switches: []SwitchDrops{}, Hosts: []HostDrops{}}
	infos := c.Switches()
	byHostID := map[uint32]*HostDrops{}
	// Spoofed drops of a route entry's flows (the addresses of vSwitches
	// a covering route entry must not give its next hop) are packets
	// that host sent: charged to it below.
	type subnetSpoof struct {
		dpid    topology.DPID
		subnet  uint32
		packets uint64
	}
	var bySubnet []subnetSpoof
	for _, info := range infos {
		c.mu.Lock()
		sc, ok := c.switches[uint64(info.DPID)]
		c.mu.Unlock()
		if !ok {
			continue
		}
		// Summed as the dump arrives, never held whole (a million flows
		// decoded at once were hundreds of MB).
		sd := SwitchDrops{DPID: info.DPID, Bridge: info.Bridge, Drops: c.newDropCounters()}
		err := c.dumpInChunks(ctx, sc.dp, func(s *openflow.FlowStats) error {
			if len(s.Flow.Actions) != 0 {
				return nil
			}
			ck := pipeline.ParseCookie(s.Flow.Cookie)
			if !ck.Ours || ck.Reason == pipeline.DropNone || ck.Reason == pipeline.DropTooBig {
				return nil // too_big is counted by the controller, below
			}
			sd.Drops.Add(c.dropName(ck.Reason), s.Packets)
			if ck.Owner == pipeline.OwnerHost {
				hd, ok := byHostID[ck.ID]
				if !ok {
					hd = &HostDrops{DPID: info.DPID, Drops: c.newDropCounters()}
					byHostID[ck.ID] = hd
				}
				hd.Drops.Add(c.dropName(ck.Reason), s.Packets)
			}
			if ck.Owner == pipeline.OwnerSubnet && ck.Reason == pipeline.DropSpoofed {
				bySubnet = append(bySubnet, subnetSpoof{info.DPID, ck.ID, s.Packets})
			}
			return nil
		})
		if err != nil {
			return DropReport{}, fmt.Errorf("dumping flows of %s: %w", info.DPID, err)
		}
		report.Switches = append(report.Switches, sd)
	}
	if len(bySubnet) > 0 {
		c.store.Read(func(st *topology.State) {
			for _, sp := range bySubnet {
				sub, ok := st.SubnetByID(sp.subnet)
				if !ok {
					continue
				}
				h, ok := st.Host(sub.VPC, sub.Host)
				if !ok {
					continue
				}
				hd, ok := byHostID[h.ID]
				if !ok {
					hd = &HostDrops{DPID: sp.dpid, Drops: c.newDropCounters()}
					byHostID[h.ID] = hd
				}
				hd.Drops.Add(c.dropName(pipeline.DropSpoofed), sp.packets)
			}
		})
	}
	tooBigHosts, tooBigSwitches := c.tooBig.snapshot()
	for i := range report.Switches {
		report.Switches[i].Drops[c.dropName(pipeline.DropTooBig)] = tooBigSwitches[uint64(report.Switches[i].DPID)]
	}
	for id, n := range tooBigHosts {
		hd, ok := byHostID[id]
		if !ok {
			hd = &HostDrops{Drops: c.newDropCounters()}
			byHostID[id] = hd
		}
		hd.Drops[c.dropName(pipeline.DropTooBig)] = n
	}
	if err := c.addPuntDrops(ctx, &report, byHostID); err != nil {
		return DropReport{}, fmt.Errorf("reading what vpcflow dropped itself: %w", err)
	}
	c.store.Read(func(st *topology.State) {
		for _, h := range st.AllHosts() {
			if hd, ok := byHostID[h.ID]; ok {
				hd.VPC, hd.Name = h.VPC, h.Name
				report.Hosts = append(report.Hosts, *hd)
			}
		}
	})
	sort.Slice(report.Hosts, func(i, j int) bool {
		if report.Hosts[i].VPC != report.Hosts[j].VPC {
			return report.Hosts[i].VPC < report.Hosts[j].VPC
		}
		return report.Hosts[i].Name < report.Hosts[j].Name
	})
	return report, nil
}

// newDropCounters has every declared reason at zero.
func (c *Controller) newDropCounters() DropCounters {
	d := DropCounters{}
	for _, r := range c.pipe.DropReasons() {
		d[r.Name] = 0
	}
	return d
}

// dropName is the declared name of a drop reason.
func (c *Controller) dropName(r pipeline.DropReason) string {
	for _, d := range c.pipe.DropReasons() {
		if d.Reason == r {
			return d.Name
		}
	}
	return fmt.Sprintf("reason%d", uint8(r))
}
