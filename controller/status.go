package controller

// Read-only status for the REST API: what a change did not get confirmed
// by, whether the controller is ready (store, OVSDB endpoints, switches),
// and where each host is attached now.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/vpcflow/vpcflow/ovsdb"
	"github.com/vpcflow/vpcflow/topology"
)

// UnconfirmedSwitch is a switch that did not confirm a stored change.
type UnconfirmedSwitch struct {
	DPID   topology.DPID `json:"dpid"`
	Bridge string        `json:"bridge,omitempty"` // as OVSDB names it, when known
	Reason string        `json:"reason"`
}

// UnconfirmedError is returned by Apply (with the applied ops) when the
// change was stored but not every connected switch confirmed it before the
// context ended or it failed: the change stands, and each switch listed
// gets it when its queue catches up or when it reconnects and is
// reconciled.
type UnconfirmedError struct {
	Switches []UnconfirmedSwitch // sorted by dpid
}

func (e *UnconfirmedError) Error() string {
	parts := make([]string, len(e.Switches))
	for i, s := range e.Switches {
		name := s.DPID.String()
		if s.Bridge != "" {
			name += " (" + s.Bridge + ")"
		}
		parts[i] = "switch " + name + ": " + s.Reason
	}
	n := "a switch"
	if len(e.Switches) > 1 {
		n = fmt.Sprintf("%d switches", len(e.Switches))
	}
	return fmt.Sprintf("change stored, but %s did not confirm it: %s", n, strings.Join(parts, "; "))
}

// waitConfirmed waits for every switch's confirmation (each bounded by
// PushTimeout in its own queue) or for ctx, whichever comes first. Every
// switch that failed, or had not answered when ctx ended, is listed in
// the *UnconfirmedError it returns.
func (c *Controller) waitConfirmed(ctx context.Context, waits map[uint64]<-chan error) error {
	dpids := make([]uint64, 0, len(waits))
	for dpid := range waits {
		dpids = append(dpids, dpid)
	}
	sort.Slice(dpids, func(i, j int) bool { return dpids[i] < dpids[j] })
	var out []UnconfirmedSwitch
	for _, dpid := range dpids {
		var err error
		answered := false
		select {
		case err = <-waits[dpid]:
			answered = true
		case <-ctx.Done():
			select { // answered at the last moment?
			case err = <-waits[dpid]:
				answered = true
			default:
			}
		}
		switch {
		case !answered && errors.Is(ctx.Err(), context.DeadlineExceeded):
			out = append(out, UnconfirmedSwitch{DPID: topology.DPID(dpid),
				Reason: "no confirmation before the request's deadline; the change stays queued for the switch"})
		case !answered:
			out = append(out, UnconfirmedSwitch{DPID: topology.DPID(dpid),
				Reason: "the request ended before the switch confirmed; the change stays queued for the switch"})
		case err != nil:
			out = append(out, UnconfirmedSwitch{DPID: topology.DPID(dpid), Reason: err.Error()})
		}
	}
	if len(out) == 0 {
		return nil
	}
	c.mu.Lock()
	for i := range out {
		out[i].Bridge = c.bridgeOf(uint64(out[i].DPID))
	}
	c.mu.Unlock()
	return &UnconfirmedError{Switches: out}
}

// bridgeOf is the name OVSDB gives the bridge with datapath id dpid, ""
// if none does. Caller holds c.mu.
func (c *Controller) bridgeOf(dpid uint64) string {
	b, _, _ := c.bridgeByDPID(dpid)
	return b.Name
}

// OVSDBStatus is the state of one OVSDB endpoint the controller watches.
type OVSDBStatus struct {
	Endpoint string `json:"endpoint"`
	// Chassis lists the chassis whose OVSDB this is; empty for a --ovsdb
	// endpoint only.
	Chassis []string `json:"chassis,omitempty"`
	// Flag says the endpoint was given with serve --ovsdb.
	Flag bool `json:"flag"`
	// State is "connected", "never-connected", "down", or "not-started"
	// before the controller runs its monitors.
	State     string    `json:"state"`
	Since     time.Time `json:"since,omitzero"`
	LastError string    `json:"last_error,omitempty"`
	Failures  int       `json:"failures,omitempty"`
}

// Connected says the endpoint is connected and its ports are known.
func (s OVSDBStatus) Connected() bool { return s.State == ovsdb.EndpointConnected.String() }

// SwitchStatus is one switch connected over OpenFlow.
type SwitchStatus struct {
	DPID topology.DPID `json:"dpid"`
	// Bridge is the bridge OVSDB reports with this datapath id; "" when
	// no OVSDB the controller watches does (hosts attached to it by
	// bridge or chassis cannot be found).
	Bridge         string    `json:"bridge,omitempty"`
	Remote         string    `json:"remote"`
	ConnectedSince time.Time `json:"connected_since"`
	// Reconciled says its flow table has been made right since it
	// connected.
	Reconciled bool `json:"reconciled"`
}

// Status is the controller's state for readiness checks.
type Status struct {
	// StoreError is why the store cannot take changes ("" when it can).
	StoreError string         `json:"store_error,omitempty"`
	OVSDB      []OVSDBStatus  `json:"ovsdb"`
	Switches   []SwitchStatus `json:"switches"`
}

// Status reports the store, every OVSDB endpoint the controller needs
// (--ovsdb and the chassis's) and every connected switch.
func (c *Controller) Status(ctx context.Context) Status {
	var out Status
	if _, err := c.store.Check(ctx, nil); err != nil {
		out.StoreError = err.Error()
	}
	flag := map[string]bool{}
	for _, ep := range c.opts.OVSDBEndpoints {
		flag[ep] = true
	}
	chassisOf := map[string][]string{}
	c.store.Read(func(st *topology.State) {
		for _, ch := range st.AllChassis() {
			chassisOf[ch.OVSDB] = append(chassisOf[ch.OVSDB], ch.Name)
		}
	})
	eps := make([]string, 0, len(flag)+len(chassisOf))
	for ep := range flag {
		eps = append(eps, ep)
	}
	for ep := range chassisOf {
		if !flag[ep] {
			eps = append(eps, ep)
		}
	}
	sort.Strings(eps)

	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ep := range eps {
		s := OVSDBStatus{Endpoint: ep, Chassis: chassisOf[ep], Flag: flag[ep], State: "not-started"}
		if mon := c.monitorOf(ep); mon != nil {
			ms := mon.Status()
			s.State, s.Since, s.LastError, s.Failures = ms.State.String(), ms.Since, ms.LastError, ms.Failures
		}
		out.OVSDB = append(out.OVSDB, s)
	}
	out.Switches = []SwitchStatus{}
	for dpid, sc := range c.switches {
		out.Switches = append(out.Switches, SwitchStatus{
			DPID: topology.DPID(dpid), Bridge: c.bridgeOf(dpid), Remote: sc.dp.RemoteAddr(),
			ConnectedSince: sc.dp.ConnectedAt().UTC(), Reconciled: sc.isReconciled(),
		})
	}
	sort.Slice(out.Switches, func(i, j int) bool { return out.Switches[i].DPID < out.Switches[j].DPID })
	return out
}

// monitorOf is the running monitor of endpoint, nil if none. Caller holds
// c.mu.
func (c *Controller) monitorOf(endpoint string) *ovsdb.Monitor {
	if c.monitors == nil {
		return nil
	}
	if r, ok := c.monitors.byEP[endpoint]; ok {
		return r.mon
	}
	return nil
}

// Attachment states of a host (HostAttachment.State).
const (
	// AttachedState: its port is found and its switch is connected and
	// reconciled: its flows are installed.
	AttachedState = "attached"
	// PortNotFoundState: its interface (or port) cannot be found in OVSDB.
	PortNotFoundState = "port not found"
	// BridgeNotConnectedState: its port is known but its switch is not
	// connected to vpcflow (or not reconciled yet).
	BridgeNotConnectedState = "bridge not connected"
)

// HostAttachment is where a host is attached now.
type HostAttachment struct {
	State  string        `json:"state"`
	Detail string        `json:"detail,omitempty"`
	DPID   topology.DPID `json:"dpid,omitzero"`
	OFPort uint32        `json:"ofport,omitempty"`
}

// HostAttachments reports, for each host, where it is attached now: the
// OVSDB port maps resolve it to a switch port, and that switch is
// connected. The result has one entry per host, in order.
func (c *Controller) HostAttachments(hosts []topology.Host) []HostAttachment {
	out := make([]HostAttachment, len(hosts))
	c.mu.Lock()
	defer c.mu.Unlock()
	c.store.Read(func(st *topology.State) {
		pm := portMap{bridges: c.bridges, st: st, pins: c.pins}
		for i, h := range hosts {
			out[i] = c.hostAttachment(st, pm, h)
		}
	})
	return out
}

// hostAttachment resolves one host. Caller holds c.mu, inside store.Read.
func (c *Controller) hostAttachment(st *topology.State, pm portMap, h topology.Host) HostAttachment {
	at, ok := pm.Attachment(h)
	if !ok {
		return HostAttachment{State: PortNotFoundState, Detail: c.whyNotFound(st, h)}
	}
	out := HostAttachment{DPID: topology.DPID(at.DPID), OFPort: at.OFPort}
	if h.Bridge == "" && h.Chassis == "" {
		// Attached by dpid+ofport: when OVSDB knows the bridge, it knows
		// its ports too.
		if b, ep, known := c.bridgeByDPID(at.DPID); known && !hasOFPort(b, at.OFPort) {
			out.State = PortNotFoundState
			out.Detail = fmt.Sprintf("bridge %s (dpid %s, OVSDB %s) has no port %d", b.Name, topology.DPID(at.DPID), ep, at.OFPort)
			return out
		}
	}
	sc, connected := c.switches[at.DPID]
	switch {
	case !connected:
		out.State = BridgeNotConnectedState
		out.Detail = fmt.Sprintf("switch %s is not connected to vpcflow over OpenFlow", topology.DPID(at.DPID))
	case !sc.isReconciled():
		out.State = BridgeNotConnectedState
		out.Detail = fmt.Sprintf("switch %s is connected but its flows are not reconciled yet", topology.DPID(at.DPID))
	default:
		out.State = AttachedState
	}
	return out
}

// whyNotFound says why a host's port cannot be resolved. Caller holds c.mu.
func (c *Controller) whyNotFound(st *topology.State, h topology.Host) string {
	if h.Chassis != "" {
		ch, ok := st.Chassis(h.Chassis)
		if !ok {
			return fmt.Sprintf("chassis %q does not exist", h.Chassis)
		}
		bridges, seen := c.bridges[ch.OVSDB]
		if !seen {
			if mon := c.monitorOf(ch.OVSDB); mon != nil && mon.Status().LastError != "" {
				return fmt.Sprintf("the OVSDB of chassis %q (%s) has not reported its ports: %s", ch.Name, ch.OVSDB, mon.Status().LastError)
			}
			return fmt.Sprintf("the OVSDB of chassis %q (%s) has not reported its ports", ch.Name, ch.OVSDB)
		}
		for _, b := range bridges {
			if b.Name == ch.Bridge {
				return whyNotOnBridge(b, h.Interface)
			}
		}
		return fmt.Sprintf("the OVSDB of chassis %q (%s) has no bridge %s", ch.Name, ch.OVSDB, ch.Bridge)
	}
	if len(c.bridges) == 0 {
		if len(c.opts.OVSDBEndpoints) == 0 {
			return fmt.Sprintf("no OVSDB to find bridge %s in: start vpcflow serve with --ovsdb, or attach the host by dpid and ofport", h.Bridge)
		}
		return fmt.Sprintf("no --ovsdb server has reported its ports yet (%s)", strings.Join(c.opts.OVSDBEndpoints, ", "))
	}
	pm := portMap{bridges: c.bridges, st: st, pins: c.pins}
	if h.OVSDB != "" {
		if _, seen := c.bridges[h.OVSDB]; !seen {
			return fmt.Sprintf("OVSDB %s has not reported its ports", h.OVSDB)
		}
		if b, ok := bridgeAt(c.bridges, h.OVSDB, h.Bridge); ok {
			return whyNotOnBridge(b, h.Interface)
		}
		return fmt.Sprintf("OVSDB %s has no bridge %s", h.OVSDB, h.Bridge)
	}
	if ep, ok := pm.bridgeEndpoint(h); ok {
		b, _ := bridgeAt(c.bridges, ep, h.Bridge)
		return whyNotOnBridge(b, h.Interface)
	}
	if cands := pm.candidates(h.Bridge); len(cands) > 1 {
		return fmt.Sprintf("bridge %s is on %d OVSDB servers (%s): give the host the one it is on (\"ovsdb\")", h.Bridge, len(cands), strings.Join(cands, ", "))
	}
	return fmt.Sprintf("no OVSDB reports a bridge %s", h.Bridge)
}

func whyNotOnBridge(b ovsdb.Bridge, iface string) string {
	if b.DPID == 0 {
		return fmt.Sprintf("bridge %s has no datapath id yet", b.Name)
	}
	p, ok := b.Ports[iface]
	if !ok {
		return fmt.Sprintf("bridge %s has no interface %s", b.Name, iface)
	}
	return fmt.Sprintf("interface %s on bridge %s has no OpenFlow port number (ofport %d)", iface, b.Name, p.OFPort)
}

// bridgeByDPID finds the bridge with a datapath id in the port maps.
// Caller holds c.mu.
func (c *Controller) bridgeByDPID(dpid uint64) (ovsdb.Bridge, string, bool) {
	for _, ep := range sortedEndpoints(c.bridges) {
		for _, b := range c.bridges[ep] {
			if b.DPID == dpid {
				return b, ep, true
			}
		}
	}
	return ovsdb.Bridge{}, "", false
}

func hasOFPort(b ovsdb.Bridge, ofport uint32) bool {
	for _, p := range b.Ports {
		if p.OFPort > 0 && uint32(p.OFPort) == ofport {
			return true
		}
	}
	return false
}
