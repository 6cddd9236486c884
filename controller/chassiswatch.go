package controller

import (
	"context"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/ovsdb"
	"github.com/vpcflow/vpcflow/topology"
)

// A chassis's bridge settings are watched through its OVSDB monitor: the
// tunnel port deleted by hand, the controller removed (OVS then flushes
// the bridge's flows), a changed fail_mode or protocol, a bridge deleted
// and created again (a new dpid, no controller): each new port map is
// compared with what the chassis's preparation makes of the bridge
// (ovsdb.Bridge.ChassisDrift) and the preparation is run again, at most
// once a second per chassis (backing off while it fails). What is actually
// there — OVSDB connection, bridge, dpid, switch, controllers, tunnel
// port, drift, repairs, the underlay MTU — is ChassisStatus.

// Repair pacing of one chassis.
const (
	chassisRepairGap        = time.Second
	chassisRepairMaxBackoff = 30 * time.Second
)

// chassisWatch is what the runtime knows of one chassis's bridge beyond
// the port map. Guarded by Controller.mu.
type chassisWatch struct {
	id            uint32
	drift         []string // as of the last port map; nil: as prepared
	bridgeMissing bool
	seen          bool // a port map of its OVSDB has been checked
	running       bool // a repair goroutine runs
	again         bool // a port map with drift arrived while it ran
	repairs       uint64
	failures      int
	lastRepair    time.Time
	lastDrift     []string // what the last repair restored
	lastErr       string
	underlay      underlayMTU
	warnedMTU     int // the underlay MTU last warned about
}

// underlayMTU is the smallest MTU of the system interfaces on the
// chassis's other bridges (its uplink NIC, e.g. on br-phy): the MTU of the
// network its tunnels cross, as far as its OVSDB can tell. The internal
// interface that carries the tunnel IP is not used: OVS leaves it at 1500
// whatever the NIC's.
type underlayMTU struct {
	MTU    int    `json:"mtu"`
	Iface  string `json:"interface"`
	Bridge string `json:"bridge"`
}

func findUnderlayMTU(bridges []ovsdb.Bridge, chassisBridge string) underlayMTU {
	var best underlayMTU
	for _, b := range bridges {
		if b.Name == chassisBridge {
			continue
		}
		for _, p := range b.Ports {
			if p.Type != "" || p.Name == b.Name || p.MTU <= 0 {
				continue
			}
			if best.MTU == 0 || p.MTU < best.MTU || (p.MTU == best.MTU && p.Name < best.Iface) {
				best = underlayMTU{MTU: p.MTU, Iface: p.Name, Bridge: b.Name}
			}
		}
	}
	return best
}

// mtuWarning says why --underlay-mtu is too big for what a chassis's
// OVSDB shows, or "".
func (c *Controller) mtuWarning(u underlayMTU) string {
	if u.MTU == 0 || c.opts.UnderlayMTU <= u.MTU {
		return ""
	}
	return fmt.Sprintf("--underlay-mtu %d is larger than the MTU of %s (%d, on bridge %s): VM packets of %d to %d bytes fit vpcflow's limit but not the underlay, and are lost there; lower --underlay-mtu to %d or raise the underlay's MTU",
		c.opts.UnderlayMTU, u.Iface, u.MTU, u.Bridge, u.MTU-50+1, c.opts.UnderlayMTU-50, u.MTU)
}

// watchChassis checks the chassis on endpoint against a new port map and
// starts a repair where their bridge drifted. Caller holds c.mu and is
// inside store.Read.
func (c *Controller) watchChassis(st *topology.State, endpoint string, bridges []ovsdb.Bridge) {
	for _, ch := range st.AllChassis() {
		if ch.OVSDB != endpoint {
			continue
		}
		w := c.chassisWatchOf(ch)
		w.seen = true
		w.underlay = findUnderlayMTU(bridges, ch.Bridge)
		if msg := c.mtuWarning(w.underlay); msg != "" && w.warnedMTU != w.underlay.MTU {
			w.warnedMTU = w.underlay.MTU
			c.log.Warn("underlay MTU too small for --underlay-mtu: "+msg, zap.String("chassis", ch.Name))
		}
		b, ok := bridgeAt(map[string][]ovsdb.Bridge{endpoint: bridges}, endpoint, ch.Bridge)
		if !ok {
			if !w.bridgeMissing {
				c.log.Warn("chassis bridge is gone from its OVSDB; its hosts are detached until it is back (vpcflow prepares it again then)",
					zap.String("chassis", ch.Name), zap.String("bridge", ch.Bridge), zap.String("ovsdb", endpoint))
			}
			w.bridgeMissing, w.drift = true, nil
			continue
		}
		w.bridgeMissing = false
		target, err := c.controllerTarget(ch)
		if err != nil {
			w.drift = nil
			continue
		}
		w.drift = b.ChassisDrift([]string{target}, topology.TunnelPortName)
		if len(w.drift) == 0 {
			continue
		}
		if w.running {
			w.again = true
			continue
		}
		if c.monitors == nil {
			continue // not running (tests): seen, not repaired
		}
		if !c.leading() {
			continue // a follower leaves repairs to the leader (replicas.go)
		}
		w.running = true
		go c.repairChassis(c.monitors.ctx, ch)
	}
}

// chassisWatchOf is ch's watch, made afresh when ch is new (or was deleted
// and created again). Caller holds c.mu.
func (c *Controller) chassisWatchOf(ch topology.Chassis) *chassisWatch {
	w := c.chassisWatch[ch.Name]
	if w == nil || w.id != ch.ID {
		w = &chassisWatch{id: ch.ID}
		c.chassisWatch[ch.Name] = w
	}
	return w
}

// repairChassis prepares ch's bridge again while its port map shows
// drift, paced by chassisRepairGap and backing off on failure.
func (c *Controller) repairChassis(ctx context.Context, ch topology.Chassis) {
	log := c.log.With(zap.String("chassis", ch.Name), zap.String("ovsdb", ch.OVSDB), zap.String("bridge", ch.Bridge))
	for {
		c.mu.Lock()
		w := c.chassisWatch[ch.Name]
		if w == nil || w.id != ch.ID {
			c.mu.Unlock()
			return // deleted meanwhile
		}
		wait := chassisRepairGap - time.Since(w.lastRepair)
		if w.failures > 0 {
			wait = min(chassisRepairGap<<min(w.failures, 5), chassisRepairMaxBackoff)
		}
		c.mu.Unlock()
		if wait > 0 {
			select {
			case <-ctx.Done():
				c.stopRepair(ch)
				return
			case <-time.After(wait):
			}
		}
		c.mu.Lock()
		w = c.chassisWatch[ch.Name]
		if w == nil || w.id != ch.ID || len(w.drift) == 0 || w.bridgeMissing {
			if w != nil && w.id == ch.ID {
				w.running = false
			}
			c.mu.Unlock()
			return
		}
		drift := slices.Clone(w.drift)
		w.again = false
		c.mu.Unlock()

		_, err := c.setupChassis(ctx, ch)

		c.mu.Lock()
		w = c.chassisWatch[ch.Name]
		if w == nil || w.id != ch.ID {
			c.mu.Unlock()
			return
		}
		w.lastRepair = time.Now()
		if err != nil {
			w.failures++
			w.lastErr = err.Error()
			c.mu.Unlock()
			log.Warn("chassis settings drifted and restoring them failed; will retry", zap.Strings("drift", drift), zap.Error(err))
			if ctx.Err() != nil {
				c.stopRepair(ch)
				return
			}
			continue
		}
		w.failures, w.lastErr = 0, ""
		w.repairs++
		w.lastDrift = drift
		again := w.again
		if !again {
			w.running = false
		}
		c.mu.Unlock()
		log.Warn("chassis settings drifted; restored", zap.Strings("drift", drift))
		if !again {
			return
		}
	}
}

func (c *Controller) stopRepair(ch topology.Chassis) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if w := c.chassisWatch[ch.Name]; w != nil && w.id == ch.ID {
		w.running = false
	}
}

// endpointStatusChanged records an OVSDB monitor's connection state.
func (c *Controller) endpointStatusChanged(st ovsdb.EndpointStatus) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, watched := c.epStatus[st.Endpoint]; !watched && c.monitors != nil && c.monitors.byEP[st.Endpoint] == nil {
		return // stopped meanwhile
	}
	if was, ok := c.epStatus[st.Endpoint]; ok && was.State != st.State {
		c.log.Info("OVSDB "+st.State.String(), zap.String("ovsdb", st.Endpoint), zap.String("was", was.State.String()),
			zap.String("error", st.LastError))
	}
	c.epStatus[st.Endpoint] = st
}

// TunnelPortStatus is a chassis's VXLAN port as its OVSDB shows it.
type TunnelPortStatus struct {
	OFPort int32  `json:"ofport"`
	Type   string `json:"type"`
	// FlowBased: type vxlan with remote_ip=flow and key=flow, as vpcflow
	// makes it.
	FlowBased bool `json:"flow_based"`
}

// ChassisStatus is what is actually there for a chassis: its OVSDB
// connection, its bridge (dpid, controllers, tunnel port), whether the
// bridge is connected to vpcflow over OpenFlow, how its settings differ
// from what vpcflow prepared (and the repairs so far), and the underlay
// MTU its OVSDB shows.
type ChassisStatus struct {
	// OVSDB is the monitor's state: connected, down, never-connected.
	OVSDB      string    `json:"ovsdb"`
	OVSDBSince time.Time `json:"ovsdb_since,omitzero"`
	OVSDBError string    `json:"ovsdb_error,omitempty"`
	// Bridge: the chassis's bridge is in the OVSDB (as of the last port
	// map; false also while the OVSDB has not answered).
	Bridge bool          `json:"bridge_found"`
	DPID   topology.DPID `json:"dpid,omitzero"`
	// SwitchConnected: the bridge is connected to vpcflow over OpenFlow.
	SwitchConnected bool `json:"switch_connected"`
	// Controllers are the bridge's controller targets; ControllerSet says
	// vpcflow's target (Target) is among them.
	Controllers   []string          `json:"controllers"`
	Target        string            `json:"target,omitempty"`
	ControllerSet bool              `json:"controller_set"`
	TunnelPort    *TunnelPortStatus `json:"tunnel_port,omitempty"`
	// Drift lists how the bridge differs from what vpcflow prepared, one
	// sentence each (nil: as prepared); it is being repaired.
	Drift []string `json:"drift,omitempty"`
	// Repairs counts the times vpcflow prepared the bridge again since it
	// started; LastDrift is what the last repair restored.
	Repairs     uint64    `json:"repairs"`
	LastRepair  time.Time `json:"last_repair,omitzero"`
	LastDrift   []string  `json:"last_drift,omitempty"`
	RepairError string    `json:"repair_error,omitempty"`
	// UnderlayMTU is the smallest MTU of the system interfaces on the
	// chassis's other bridges (its uplink), 0 when none is seen;
	// UnderlayInterface names it. MTUWarning is set when --underlay-mtu
	// is larger.
	UnderlayMTU       int    `json:"underlay_mtu,omitempty"`
	UnderlayInterface string `json:"underlay_interface,omitempty"`
	ConfiguredMTU     int    `json:"configured_underlay_mtu"`
	MTUWarning        string `json:"mtu_warning,omitempty"`
}

// ChassisStatus reports what is actually there for chassis name; false
// when there is no such chassis.
func (c *Controller) ChassisStatus(name string) (ChassisStatus, bool) {
	var ch topology.Chassis
	var ok bool
	c.store.Read(func(st *topology.State) { ch, ok = st.Chassis(name) })
	if !ok {
		return ChassisStatus{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := ChassisStatus{OVSDB: ovsdb.EndpointNeverConnected.String(), Controllers: []string{}, ConfiguredMTU: c.opts.UnderlayMTU}
	st, ok := c.epStatus[ch.OVSDB]
	if c.monitors != nil {
		if r := c.monitors.byEP[ch.OVSDB]; r != nil {
			// The monitor's own status also has the failed attempts.
			st, ok = r.mon.Status(), true
		}
	}
	if ok {
		out.OVSDB, out.OVSDBSince, out.OVSDBError = st.State.String(), st.Since, st.LastError
	}
	out.Target, _ = c.controllerTarget(ch)
	if b, ok := bridgeAt(c.bridges, ch.OVSDB, ch.Bridge); ok {
		out.Bridge = true
		out.DPID = topology.DPID(b.DPID)
		_, out.SwitchConnected = c.switches[b.DPID]
		out.Controllers = b.ControllerTargets()
		out.ControllerSet = out.Target != "" && slices.Contains(out.Controllers, out.Target)
		if p, ok := b.Ports[topology.TunnelPortName]; ok {
			out.TunnelPort = &TunnelPortStatus{OFPort: p.OFPort, Type: p.Type, FlowBased: p.IsFlowTunnel()}
		}
	}
	if w := c.chassisWatch[ch.Name]; w != nil && w.id == ch.ID {
		out.Drift = slices.Clone(w.drift)
		out.Repairs, out.LastRepair, out.LastDrift, out.RepairError = w.repairs, w.lastRepair, slices.Clone(w.lastDrift), w.lastErr
		out.UnderlayMTU, out.UnderlayInterface = w.underlay.MTU, w.underlay.Iface
		out.MTUWarning = c.mtuWarning(w.underlay)
	}
	return out, true
}
