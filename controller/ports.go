package controller

import (
	"errors"
	"net"
	"slices"
	"sort"

	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/controller/engine"
	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/ovsdb"
	"github.com/vpcflow/vpcflow/topology"
)

// portMap resolves hosts to ports from the OVSDB port maps: it is the
// snapshot's pipeline.Ports. It only reads; the caller holds c.mu.
type portMap struct {
	bridges map[string][]ovsdb.Bridge
	st      *topology.State
	// pins are the endpoints bridge hosts without an OVSDB of their own
	// were found on (by host id): kept while that endpoint has the
	// bridge, so the attachment never flips to another server's bridge of
	// the same name.
	pins map[uint32]string
}

// candidates are the endpoints (sorted) whose port map has a bridge named
// bridge.
func (m portMap) candidates(bridge string) []string {
	var out []string
	for _, ep := range sortedEndpoints(m.bridges) {
		if _, ok := bridgeAt(m.bridges, ep, bridge); ok {
			out = append(out, ep)
		}
	}
	return out
}

// bridgeEndpoint is the endpoint whose bridge a bridge+interface host is
// on: its own OVSDB when it names one; else the one it was pinned to, as
// long as that still has the bridge; else the only one that has it. A
// bridge name on several endpoints (and no pin) resolves to none.
func (m portMap) bridgeEndpoint(h topology.Host) (string, bool) {
	if h.OVSDB != "" {
		return h.OVSDB, true
	}
	cands := m.candidates(h.Bridge)
	if pin, ok := m.pins[h.ID]; ok && slices.Contains(cands, pin) {
		return pin, true
	}
	if len(cands) == 1 {
		return cands[0], true
	}
	return "", false
}

// Attachment finds where host h is attached: by chassis+interface through
// that chassis's OVSDB, by bridge+interface through the --ovsdb server
// that has the bridge (see bridgeEndpoint), or as given by dpid+ofport.
func (m portMap) Attachment(h topology.Host) (pipeline.Attachment, bool) {
	if h.Chassis != "" {
		ch, ok := m.st.Chassis(h.Chassis)
		if !ok {
			return pipeline.Attachment{}, false
		}
		b, ok := bridgeAt(m.bridges, ch.OVSDB, ch.Bridge)
		if !ok || b.DPID == 0 {
			return pipeline.Attachment{}, false
		}
		p, ok := b.Ports[h.Interface]
		if !ok || p.OFPort <= 0 {
			return pipeline.Attachment{}, false
		}
		return pipeline.Attachment{DPID: b.DPID, OFPort: uint32(p.OFPort)}, true
	}
	if h.Bridge == "" {
		if h.DPID == 0 || h.OFPort == 0 {
			return pipeline.Attachment{}, false
		}
		return pipeline.Attachment{DPID: uint64(h.DPID), OFPort: h.OFPort}, true
	}
	ep, ok := m.bridgeEndpoint(h)
	if !ok {
		return pipeline.Attachment{}, false
	}
	b, ok := bridgeAt(m.bridges, ep, h.Bridge)
	if !ok || b.DPID == 0 {
		return pipeline.Attachment{}, false
	}
	p, ok := b.Ports[h.Interface]
	if !ok || p.OFPort <= 0 {
		return pipeline.Attachment{}, false
	}
	return pipeline.Attachment{DPID: b.DPID, OFPort: uint32(p.OFPort)}, true
}

func sortedEndpoints(bridges map[string][]ovsdb.Bridge) []string {
	eps := make([]string, 0, len(bridges))
	for ep := range bridges {
		eps = append(eps, ep)
	}
	sort.Strings(eps)
	return eps
}

// bridgeAt finds a bridge in the port map of one OVSDB endpoint.
func bridgeAt(bridges map[string][]ovsdb.Bridge, endpoint, bridge string) (ovsdb.Bridge, bool) {
	for _, b := range bridges[endpoint] {
		if b.Name == bridge {
			return b, true
		}
	}
	return ovsdb.Bridge{}, false
}

// BridgesChanged takes a new port map from an OVSDB monitor: hosts whose
// attachment changed (a port added, removed, or renumbered) get their flows
// recomputed and pushed.
func (c *Controller) BridgesChanged(endpoint string, bridges []ovsdb.Bridge) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.bridges[endpoint]
	now := keepKnownDPIDs(old, bridges)
	c.bridges[endpoint] = now
	var owners []pipeline.Owner
	var changes map[uint64]*engine.PackedChanges
	c.store.Read(func(st *topology.State) {
		// Only hosts on interfaces whose ofport changed (or whose bridge
		// came, went or changed dpid) are recomputed, with their subnets;
		// recompute adds every owner when a chassis's place changed.
		seen := map[uint32]bool{}
		changed := changedPorts(old, now)
		owners = append(owners, c.uplinkOwners(st, endpoint, changed)...)
		for _, p := range changed {
			for _, k := range []portKey{{endpoint, p.bridge, p.iface}, {"", p.bridge, p.iface}} {
				for _, o := range c.ports.lookup(k) {
					if seen[o.ID] {
						continue
					}
					seen[o.ID] = true
					owners = append(owners, o)
					if h, ok := st.HostByID(o.ID); ok {
						for _, s := range st.SubnetsOfHost(h.VPC, h.Name) {
							owners = append(owners, pipeline.Owner{Kind: pipeline.OwnerSubnet, ID: s.ID})
						}
					}
					owners = append(owners, c.pipe.Dependents(st, o)...)
				}
			}
		}
		changes = c.recompute(st, owners)
		c.watchChassis(st, endpoint, now)
	})
	// Only an OVSDB awaited at startup can have had flows kept for it.
	late := c.wantEndpoints[endpoint] && !c.seenEndpoints[endpoint] && c.portsAreReady()
	if late {
		// Switches were reconciled without this OVSDB, keeping the flows
		// it would tell about (unknown is not absent): reconcile them
		// again, so that what is kept and right stays untouched (an
		// install would reset its counters) and what is wrong goes.
		c.log.Info("an OVSDB answered after the switches were reconciled without it; reconciling them again",
			zap.String("ovsdb", endpoint))
		for dpid, sc := range c.switches {
			w := sc.enqueue(&pushJob{timeout: c.opts.ReconcileTimeout, snapshot: c.reconcileSnapshot(dpid, false)})
			go func(dpid uint64, w <-chan error) {
				if err := <-w; err != nil {
					c.log.Warn("reconciling after a late OVSDB", zap.String("dpid", dpidString(dpid)), zap.Error(err))
				}
			}(dpid, w)
		}
		changes = nil
	}
	if len(changes) > 0 {
		// Queued in order; the OVSDB monitor does not wait for the switches.
		for dpid, w := range c.queueChanges(changes) {
			go func(dpid uint64, w <-chan error) {
				if err := <-w; err != nil {
					lvl := zap.WarnLevel
					if errors.Is(err, openflow.ErrClosed) || errors.Is(err, errSwitchGone) {
						lvl = zap.DebugLevel // logged by its queue; reconciled when it is back
					}
					c.log.Log(lvl, "pushing port changes", zap.String("dpid", dpidString(dpid)), zap.Error(err))
				}
			}(dpid, w)
		}
		c.log.Info("port map changed", zap.String("ovsdb", endpoint), zap.Int("objects_recomputed", len(owners)))
	}
	if !c.seenEndpoints[endpoint] {
		c.seenEndpoints[endpoint] = true
		ready := true
		for ep := range c.wantEndpoints {
			ready = ready && c.seenEndpoints[ep]
		}
		if ready {
			c.portsReadyOnce.Do(func() { close(c.portsReady) })
		}
	}
}

// portsAreReady reports whether switches are being reconciled (every
// OVSDB answered, or the startup wait is over).
func (c *Controller) portsAreReady() bool {
	select {
	case <-c.portsReady:
		return true
	default:
		return false
	}
}

// keepKnownDPIDs carries a bridge's last known dpid over an update in which
// OVSDB has none: Bridge.datapath_id is ephemeral, so a restarted
// ovsdb-server reports it empty until ovs-vswitchd writes it back (~1 s).
// Treating that as "bridge gone" would delete and re-add every flow of the
// bridge's hosts. A bridge that really changes dpid reports the new one.
func keepKnownDPIDs(old, now []ovsdb.Bridge) []ovsdb.Bridge {
	known := map[string]uint64{}
	for _, b := range old {
		if b.DPID != 0 {
			known[b.Name] = b.DPID
		}
	}
	for i := range now {
		if now[i].DPID == 0 {
			if d, ok := known[now[i].Name]; ok {
				now[i].DPID = d
			}
		}
	}
	return now
}

// InterfaceMAC is the VM MAC OVSDB records for bridge/iface
// (external_ids:attached-mac), when exactly one OVSDB has that bridge.
func (c *Controller) InterfaceMAC(bridge, iface string) (net.HardwareAddr, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cands := portMap{bridges: c.bridges}.candidates(bridge)
	if len(cands) != 1 {
		return nil, false
	}
	return interfaceMACAt(c.bridges, cands[0], bridge, iface)
}

// InterfaceMACAt is the VM MAC the OVSDB endpoint records for bridge/iface.
func (c *Controller) InterfaceMACAt(endpoint, bridge, iface string) (net.HardwareAddr, bool) {
	ep, err := topology.ValidateOVSDB("ovsdb", endpoint)
	if err != nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return interfaceMACAt(c.bridges, ep, bridge, iface)
}

func interfaceMACAt(bridges map[string][]ovsdb.Bridge, ep, bridge, iface string) (net.HardwareAddr, bool) {
	b, ok := bridgeAt(bridges, ep, bridge)
	if !ok {
		return nil, false
	}
	if p, ok := b.Ports[iface]; ok && len(p.AttachedMAC) == 6 {
		return p.AttachedMAC, true
	}
	return nil, false
}

// BridgeCandidates lists the OVSDB endpoints (sorted) that have a bridge
// named bridge, as far as they have answered.
func (c *Controller) BridgeCandidates(bridge string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return portMap{bridges: c.bridges}.candidates(bridge)
}

// portKey names the OVS interface a host is attached to: the OVSDB
// endpoint of its chassis ("" for a bridge+interface host, which may be on
// any --ovsdb server), the bridge and the interface.
type portKey struct {
	endpoint, bridge, iface string
}

// portIndex finds the hosts waiting on, or attached to, an interface, so a
// port event recomputes only the hosts whose port changed instead of
// walking every host.
type portIndex struct {
	hosts map[portKey]map[uint32]pipeline.Owner
	keyOf map[uint32]portKey
}

func newPortIndex() *portIndex {
	return &portIndex{hosts: map[portKey]map[uint32]pipeline.Owner{}, keyOf: map[uint32]portKey{}}
}

// portKeyOf is where host h is attached by name; false for hosts attached
// by dpid+ofport, which no port event can change.
func portKeyOf(st *topology.State, h topology.Host) (portKey, bool) {
	switch {
	case h.Chassis != "":
		ch, ok := st.Chassis(h.Chassis)
		if !ok {
			return portKey{}, false
		}
		return portKey{endpoint: ch.OVSDB, bridge: ch.Bridge, iface: h.Interface}, true
	case h.Bridge != "":
		return portKey{endpoint: h.OVSDB, bridge: h.Bridge, iface: h.Interface}, true
	}
	return portKey{}, false
}

// set records host o at k (ok) or forgets it.
func (p *portIndex) set(o pipeline.Owner, k portKey, ok bool) {
	if old, had := p.keyOf[o.ID]; had {
		delete(p.hosts[old], o.ID)
		if len(p.hosts[old]) == 0 {
			delete(p.hosts, old)
		}
		delete(p.keyOf, o.ID)
	}
	if !ok {
		return
	}
	if p.hosts[k] == nil {
		p.hosts[k] = map[uint32]pipeline.Owner{}
	}
	p.hosts[k][o.ID] = o
	p.keyOf[o.ID] = k
}

// lookup lists the hosts at k.
func (p *portIndex) lookup(k portKey) []pipeline.Owner {
	out := make([]pipeline.Owner, 0, len(p.hosts[k]))
	for _, o := range p.hosts[k] {
		out = append(out, o)
	}
	return out
}

// bridgePort is an interface on a bridge.
type bridgePort struct {
	bridge, iface string
}

// changedPorts lists the interfaces whose ofport differs between two port
// maps of one OVSDB; a bridge that appeared, disappeared or changed dpid
// changes all of its interfaces.
func changedPorts(old, now []ovsdb.Bridge) []bridgePort {
	byName := func(bs []ovsdb.Bridge) map[string]ovsdb.Bridge {
		m := make(map[string]ovsdb.Bridge, len(bs))
		for _, b := range bs {
			m[b.Name] = b
		}
		return m
	}
	o, n := byName(old), byName(now)
	var out []bridgePort
	all := func(b ovsdb.Bridge) {
		for name := range b.Ports {
			out = append(out, bridgePort{b.Name, name})
		}
	}
	for name, nb := range n {
		ob, ok := o[name]
		if !ok || ob.DPID != nb.DPID {
			all(nb)
			if ok {
				all(ob)
			}
			continue
		}
		for iface, np := range nb.Ports {
			if op, ok := ob.Ports[iface]; !ok || op.OFPort != np.OFPort {
				out = append(out, bridgePort{name, iface})
			}
		}
		for iface := range ob.Ports {
			if _, ok := nb.Ports[iface]; !ok {
				out = append(out, bridgePort{name, iface})
			}
		}
	}
	for name, ob := range o {
		if _, ok := n[name]; !ok {
			all(ob)
		}
	}
	return out
}
