// Package controller turns the desired topology and the switches' ports into
// flows and keeps every connected switch's tables equal to them: desired
// flows are computed per object (host, subnet) by the pure functions in
// pipeline.go, cached, and every change is sent as the difference only.
package controller

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/ovsdb"
	"github.com/vpcflow/vpcflow/topology"
)

// Datapath is a connected switch as the controller uses it; *openflow.Switch
// implements it.
type Datapath interface {
	DPID() uint64
	RemoteAddr() string
	ConnectedAt() time.Time
	DumpFlows(ctx context.Context) ([]openflow.FlowStats, error)
	Apply(ctx context.Context, mods []openflow.FlowMod) error
	Close()
}

// Options tune the controller.
type Options struct {
	// OVSDBEndpoints are the OVSDB servers whose first snapshot must arrive
	// before any switch is reconciled: until the port map is known, a
	// reconnecting switch keeps the flows it has (OVN's "wait before
	// clearing"), so a controller restart never removes a correct flow.
	OVSDBEndpoints []string
	// PushTimeout bounds how long one switch may take to confirm a change.
	PushTimeout time.Duration
	// ReconcileTimeout bounds a full reconciliation (dump + diff + apply)
	// of a switch that (re)connected.
	ReconcileTimeout time.Duration
	// PortsWait is how long switches wait for every OVSDB's first port map
	// before they are reconciled with what is known (an OVSDB may be down).
	PortsWait time.Duration
	// Advertise is the OpenFlow target chassis bridges are pointed at
	// unless a chassis names its own (e.g. tcp:192.168.100.254:6653).
	Advertise string
	// OVSDBTLS is the TLS configuration (client certificate, RootCAs) for
	// ssl: OVSDB endpoints, the --ovsdb ones and the chassis's; nil
	// leaves ssl: endpoints unusable.
	OVSDBTLS *tls.Config
	// UnderlayMTU is the MTU of the network between chassis (default
	// 1500): inner packets over UnderlayMTU-50 are answered with ICMP
	// fragmentation-needed.
	UnderlayMTU int
}

// ownerKey names the object a set of flows exists for.
type ownerKey struct {
	kind OwnerKind
	id   uint32
	// vpc and name find the object in the store.
	vpc, name string
}

// Controller reconciles switches with the topology.
type Controller struct {
	log   *zap.Logger
	store *topology.Store
	opts  Options

	// mu serializes topology changes, port-map changes, reconciliation and
	// pushes, so a switch's tables change in one order only.
	mu       sync.Mutex
	owned    map[ownerKey][]PlacedFlow
	attached map[uint32]Attachment  // host id → resolved attachment
	hostAt   map[Attachment]hostRef // resolved attachment → host (for packet-ins)
	ports    *portIndex             // interface → hosts attached (or waiting) there
	tooBig   *tooBigState
	switches map[uint64]*switchConn // connected switches, by dpid
	bridges  map[string][]ovsdb.Bridge

	portsReady     chan struct{}
	portsReadyOnce sync.Once
	seenEndpoints  map[string]bool
	wantEndpoints  map[string]bool // OVSDBs whose first port map gates reconciliation

	monitors    *monitorSet             // set by Run
	lastChassis map[string]chassisState // as of the last recompute of tunnel flows
}

// New builds a controller over store and computes the desired flows of
// everything already in it.
func New(log *zap.Logger, store *topology.Store, opts Options) *Controller {
	if opts.PushTimeout == 0 {
		opts.PushTimeout = 10 * time.Second
	}
	if opts.ReconcileTimeout == 0 {
		opts.ReconcileTimeout = 5 * time.Minute
	}
	if opts.PortsWait == 0 {
		opts.PortsWait = 30 * time.Second
	}
	if opts.UnderlayMTU == 0 {
		opts.UnderlayMTU = 1500
	}
	c := &Controller{
		log:           log,
		store:         store,
		opts:          opts,
		owned:         map[ownerKey][]PlacedFlow{},
		attached:      map[uint32]Attachment{},
		hostAt:        map[Attachment]hostRef{},
		ports:         newPortIndex(),
		tooBig:        newTooBigState(),
		switches:      map[uint64]*switchConn{},
		bridges:       map[string][]ovsdb.Bridge{},
		portsReady:    make(chan struct{}),
		seenEndpoints: map[string]bool{},
		wantEndpoints: map[string]bool{},
		lastChassis:   map[string]chassisState{},
	}
	for _, ep := range opts.OVSDBEndpoints {
		c.wantEndpoints[ep] = true
	}
	store.Read(func(st *topology.State) {
		for _, ch := range st.AllChassis() {
			c.wantEndpoints[ch.OVSDB] = true
		}
	})
	if len(c.wantEndpoints) == 0 {
		c.portsReadyOnce.Do(func() { close(c.portsReady) })
	}
	c.mu.Lock()
	c.recomputeAll()
	c.mu.Unlock()
	return c
}

// Read runs fn with the current topology.
func (c *Controller) Read(fn func(st *topology.State)) { c.store.Read(fn) }

// Apply validates and stores a change, then sends the flows it affects to
// every connected switch and returns once they confirmed them. The
// controller lock is held only to compute and queue the changes, never
// while a switch is being waited for.
func (c *Controller) Apply(ctx context.Context, ops []topology.Op) ([]topology.Op, error) {
	if err := c.chassisOpsBefore(ctx, ops); err != nil {
		return nil, err
	}
	c.mu.Lock()
	applied, err := c.store.Apply(ctx, ops)
	if err != nil {
		c.mu.Unlock()
		return nil, err
	}
	c.chassisOpsAfter(applied)
	owners, all := affectedOwners(applied)
	var changes map[uint64][]FlowChange
	c.store.Read(func(st *topology.State) {
		if all {
			owners = allOwners(st)
		}
		changes = c.recompute(st, owners)
	})
	waits := c.queueChanges(changes)
	c.mu.Unlock()
	if err := waitAll(ctx, waits); err != nil {
		return applied, fmt.Errorf("change stored, but a switch did not confirm it: %w", err)
	}
	return applied, nil
}

// affectedOwners lists the objects whose flows a change touches; all is
// set when a chassis came or went, which changes every tunnel route.
func affectedOwners(ops []topology.Op) (out []ownerKey, all bool) {
	for _, op := range ops {
		switch {
		case op.Chassis != nil:
			all = true
		case op.Host != nil:
			out = append(out, ownerKey{kind: OwnerHost, id: op.Host.ID, vpc: op.Host.VPC, name: op.Host.Name})
		case op.Subnet != nil:
			out = append(out, ownerKey{kind: OwnerSubnet, id: op.Subnet.ID, vpc: op.Subnet.VPC, name: op.Subnet.Name})
		}
		// VPCs and vSwitches carry no flows of their own and their fields
		// do not change; a cascading delete returns the hosts and subnets
		// it removed as ops of their own.
	}
	return out, all
}

// allOwners lists every object that can own flows.
func allOwners(st *topology.State) []ownerKey {
	var owners []ownerKey
	for _, h := range st.AllHosts() {
		owners = append(owners, ownerKey{kind: OwnerHost, id: h.ID, vpc: h.VPC, name: h.Name})
		for _, s := range st.SubnetsOfHost(h.VPC, h.Name) {
			owners = append(owners, ownerKey{kind: OwnerSubnet, id: s.ID, vpc: s.VPC, name: s.Name})
		}
	}
	for _, ch := range st.AllChassis() {
		owners = append(owners, ownerKey{kind: OwnerChassis, id: ch.ID, name: ch.Name})
	}
	return owners
}

// recomputeAll rebuilds the cache of desired flows from the store.
func (c *Controller) recomputeAll() {
	c.store.Read(func(st *topology.State) {
		// Nothing is installed from here: fill the cache, no diff.
		cv := c.chassisStates(st)
		c.lastChassis = cv
		for _, o := range allOwners(st) {
			if flows := c.flowsOf(st, o, cv); len(flows) > 0 {
				c.owned[o] = flows
			}
		}
	})
}

// recompute refreshes the cached flows of owners and returns what changed,
// per datapath. Caller holds c.mu.
func (c *Controller) recompute(st *topology.State, owners []ownerKey) map[uint64][]FlowChange {
	all := map[uint64][]FlowChange{}
	cv := c.chassisStates(st)
	c.lastChassis = cv
	for _, o := range owners {
		flows := c.flowsOf(st, o, cv)
		for dpid, cs := range diffOwner(c.owned[o], flows) {
			all[dpid] = append(all[dpid], cs...)
		}
		if len(flows) == 0 {
			delete(c.owned, o)
		} else {
			c.owned[o] = flows
		}
	}
	for dpid := range all {
		orderDeletesFirst(all[dpid])
	}
	return all
}

// flowsOf computes the desired flows of one object from the topology and
// the port map. An object that no longer exists, or whose host is not
// attached to a known port, has none. Hosts on a chassis also get their
// tunnel delivery flow, and routes to them (and to their subnets) on every
// other chassis.
func (c *Controller) flowsOf(st *topology.State, o ownerKey, cv map[string]chassisState) []PlacedFlow {
	var hostName string
	var sub topology.Subnet
	switch o.kind {
	case OwnerChassis:
		return chassisFlows(st, o, cv)
	case OwnerHost:
		hostName = o.name
	case OwnerSubnet:
		s, ok := st.Subnet(o.vpc, o.name)
		if !ok || s.ID != o.id {
			return nil
		}
		sub, hostName = s, s.Host
	default:
		return nil
	}
	h, ok := st.Host(o.vpc, hostName)
	if !ok || (o.kind == OwnerHost && h.ID != o.id) {
		if o.kind == OwnerHost {
			c.setAttached(o.id, hostRef{}, Attachment{}, false)
			c.ports.set(o, portKey{}, false)
		}
		return nil
	}
	if o.kind == OwnerHost {
		k, named := portKeyOf(st, h)
		c.ports.set(o, k, named)
	}
	vpc, ok1 := st.VPC(h.VPC)
	vsw, ok2 := st.VSwitch(h.VPC, h.VSwitch)
	if !ok1 || !ok2 {
		return nil
	}
	at, ok := c.resolve(st, h)
	if o.kind == OwnerHost {
		c.setAttached(h.ID, hostRef{id: h.ID, vpc: h.VPC, name: h.Name}, at, ok)
	}
	if !ok {
		return nil
	}
	var flows []openflow.Flow
	var dst netip.Prefix
	var cookie uint64
	if o.kind == OwnerHost {
		flows = HostFlows(vpc, vsw, h, at)
		dst, cookie = netip.PrefixFrom(h.IP, 32), HostCookie(h.ID, DropNone)
		if h.Chassis != "" {
			flows = append(flows, TunnelDeliveryFlow(vpc, h, at))
		}
	} else {
		flows = SubnetFlows(vpc, sub, h, at)
		dst, cookie = sub.CIDR, SubnetCookie(sub.ID)
	}
	placed := make([]PlacedFlow, 0, len(flows)+len(cv))
	for _, f := range flows {
		placed = append(placed, PlacedFlow{DPID: at.DPID, Flow: f})
	}
	if home, ok := cv[h.Chassis]; ok && h.Chassis != "" {
		for name, peer := range cv {
			if name == h.Chassis || peer.dpid == at.DPID {
				continue
			}
			placed = append(placed, PlacedFlow{DPID: peer.dpid,
				Flow: RemoteRouteFlow(vpc, dst, cookie, h.MAC.HW(), home.ch.TunnelIP, c.opts.UnderlayMTU)})
		}
	}
	return placed
}

// setAttached records where host id is attached (ok) or that it is not.
// Caller holds c.mu.
func (c *Controller) setAttached(id uint32, ref hostRef, at Attachment, ok bool) {
	if old, had := c.attached[id]; had {
		if c.hostAt[old].id == id {
			delete(c.hostAt, old)
		}
		delete(c.attached, id)
	}
	if ok {
		c.attached[id] = at
		c.hostAt[at] = ref
	}
}

// chassisFlows admit VXLAN on a chassis from every other registered chassis.
func chassisFlows(st *topology.State, o ownerKey, cv map[string]chassisState) []PlacedFlow {
	me, ok := cv[o.name]
	if !ok || me.ch.ID != o.id {
		return nil
	}
	var peers []Peer
	for _, ch := range st.AllChassis() {
		if ch.Name != o.name {
			peers = append(peers, Peer{TunnelIP: ch.TunnelIP})
		}
	}
	var out []PlacedFlow
	for _, f := range TunnelIngressFlows(me.ch.ID, me.tunnelPort, peers) {
		out = append(out, PlacedFlow{DPID: me.dpid, Flow: f})
	}
	return out
}

// resolve finds where host h is attached. Caller holds c.mu.
func (c *Controller) resolve(st *topology.State, h topology.Host) (Attachment, bool) {
	if h.Chassis != "" {
		ch, ok := st.Chassis(h.Chassis)
		if !ok {
			return Attachment{}, false
		}
		b, ok := c.bridgeAt(ch.OVSDB, ch.Bridge)
		if !ok || b.DPID == 0 {
			return Attachment{}, false
		}
		p, ok := b.Ports[h.Interface]
		if !ok || p.OFPort <= 0 {
			return Attachment{}, false
		}
		return Attachment{DPID: b.DPID, OFPort: uint32(p.OFPort)}, true
	}
	if h.Bridge == "" {
		if h.DPID == 0 || h.OFPort == 0 {
			return Attachment{}, false
		}
		return Attachment{DPID: uint64(h.DPID), OFPort: h.OFPort}, true
	}
	for _, ep := range c.sortedEndpoints() {
		for _, b := range c.bridges[ep] {
			if b.Name != h.Bridge || b.DPID == 0 {
				continue
			}
			p, ok := b.Ports[h.Interface]
			if !ok || p.OFPort <= 0 {
				return Attachment{}, false
			}
			return Attachment{DPID: b.DPID, OFPort: uint32(p.OFPort)}, true
		}
	}
	return Attachment{}, false
}

func (c *Controller) sortedEndpoints() []string {
	eps := make([]string, 0, len(c.bridges))
	for ep := range c.bridges {
		eps = append(eps, ep)
	}
	sort.Strings(eps)
	return eps
}

// desiredFor is the full table vpcflow wants on dpid. Caller holds c.mu.
func (c *Controller) desiredFor(dpid uint64) DesiredTable {
	t := DesiredTable{}
	for _, f := range PipelineFlows() {
		t[f.Key()] = f
	}
	for _, flows := range c.owned {
		for _, pf := range flows {
			if pf.DPID == dpid {
				t[pf.Flow.Key()] = pf.Flow
			}
		}
	}
	return t
}

// queueChanges queues changes on the connected switches, in the order they
// were computed. Switches that are not connected get them when they
// reconcile. Caller holds c.mu.
func (c *Controller) queueChanges(changes map[uint64][]FlowChange) map[uint64]<-chan error {
	waits := map[uint64]<-chan error{}
	for dpid, cs := range changes {
		sc, ok := c.switches[dpid]
		if !ok || len(cs) == 0 {
			continue
		}
		waits[dpid] = sc.enqueue(&pushJob{mods: toFlowMods(cs), timeout: c.opts.PushTimeout})
	}
	return waits
}

// waitAll waits for every switch's confirmation (each bounded by
// PushTimeout in its own queue) or for ctx.
func waitAll(ctx context.Context, waits map[uint64]<-chan error) error {
	var errs []error
	for dpid, w := range waits {
		select {
		case err := <-w:
			if err != nil {
				errs = append(errs, fmt.Errorf("switch %s: %w", dpidString(dpid), err))
			}
		case <-ctx.Done():
			return fmt.Errorf("waiting for switch %s: %w", dpidString(dpid), ctx.Err())
		}
	}
	return errors.Join(errs...)
}

// toFlowMods turns changes into OpenFlow flow-mods: an install is an ADD
// (which replaces an entry with the same table, priority and match), a
// delete is a strict delete of exactly that entry.
func toFlowMods(cs []FlowChange) []openflow.FlowMod {
	mods := make([]openflow.FlowMod, len(cs))
	for i, ch := range cs {
		cmd := openflow.FlowAdd
		if ch.Delete {
			cmd = openflow.FlowDeleteStrict
		}
		mods[i] = openflow.FlowMod{Command: cmd, Flow: ch.Flow}
	}
	return mods
}

// SwitchConnected runs a switch's connection: once the OVSDB port map is
// known, it queues a full reconciliation against a snapshot of the desired
// table (dump, then send only what is missing, different or stale), and then
// applies queued changes in order until the switch disconnects.
func (c *Controller) SwitchConnected(ctx context.Context, sw *openflow.Switch) {
	c.serveSwitch(ctx, sw)
}

// SwitchDisconnected forgets a switch.
func (c *Controller) SwitchDisconnected(sw *openflow.Switch) {
	c.forgetSwitch(sw)
}

func (c *Controller) serveSwitch(ctx context.Context, dp Datapath) {
	log := c.log.With(zap.String("dpid", dpidString(dp.DPID())), zap.String("remote", dp.RemoteAddr()))
	select {
	case <-c.portsReady:
	case <-ctx.Done():
		return
	}
	sc := newSwitchConn(dp, log)
	c.mu.Lock()
	if old, ok := c.switches[dp.DPID()]; ok && old.dp != dp {
		old.dp.Close()
	}
	c.switches[dp.DPID()] = sc
	dpid := dp.DPID()
	done := sc.enqueue(&pushJob{timeout: c.opts.ReconcileTimeout, snapshot: func() DesiredTable {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.desiredFor(dpid)
	}})
	c.mu.Unlock()
	go func() {
		if err := <-done; err != nil {
			log.Error("reconciling switch", zap.Error(err))
		}
	}()
	sc.run(ctx)
}

func countChanges(cs []FlowChange) (adds, dels int) {
	for _, ch := range cs {
		if ch.Delete {
			dels++
		} else {
			adds++
		}
	}
	return adds, dels
}

func (c *Controller) forgetSwitch(dp Datapath) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur, ok := c.switches[dp.DPID()]; ok && cur.dp == dp {
		delete(c.switches, dp.DPID())
		cur.fail(errSwitchGone)
		c.log.Info("switch disconnected", zap.String("dpid", dpidString(dp.DPID())))
	}
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
	var owners []ownerKey
	var changes map[uint64][]FlowChange
	c.store.Read(func(st *topology.State) {
		if !sameChassisStates(c.chassisStates(st), c.lastChassis) {
			// A chassis bridge or tunnel port appeared or changed: every
			// tunnel route may be affected.
			owners = allOwners(st)
			changes = c.recompute(st, owners)
			return
		}
		// Only hosts on interfaces whose ofport changed (or whose bridge
		// came, went or changed dpid) are recomputed, with their subnets.
		seen := map[uint32]bool{}
		for _, p := range changedPorts(old, now) {
			for _, k := range []portKey{{endpoint, p.bridge, p.iface}, {"", p.bridge, p.iface}} {
				for _, o := range c.ports.lookup(k) {
					if seen[o.id] {
						continue
					}
					seen[o.id] = true
					owners = append(owners, o)
					for _, s := range st.SubnetsOfHost(o.vpc, o.name) {
						owners = append(owners, ownerKey{kind: OwnerSubnet, id: s.ID, vpc: s.VPC, name: s.Name})
					}
				}
			}
		}
		changes = c.recompute(st, owners)
	})
	if len(owners) > 0 {
		// Queued in order; the OVSDB monitor does not wait for the switches.
		for dpid, w := range c.queueChanges(changes) {
			go func(dpid uint64, w <-chan error) {
				if err := <-w; err != nil {
					c.log.Warn("pushing port changes", zap.String("dpid", dpidString(dpid)), zap.Error(err))
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
// (external_ids:attached-mac).
func (c *Controller) InterfaceMAC(bridge, iface string) (net.HardwareAddr, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ep := range c.sortedEndpoints() {
		for _, b := range c.bridges[ep] {
			if b.Name != bridge {
				continue
			}
			if p, ok := b.Ports[iface]; ok && len(p.AttachedMAC) == 6 {
				return p.AttachedMAC, true
			}
		}
	}
	return nil, false
}

// Switches lists the reconciled switches with their ports.
func (c *Controller) Switches() []SwitchInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]SwitchInfo, 0, len(c.switches))
	for dpid, sc := range c.switches {
		if !sc.isReconciled() {
			continue // listed once its tables are known to be right
		}
		sw := sc.dp
		info := SwitchInfo{DPID: topology.DPID(dpid), Remote: sw.RemoteAddr(),
			ConnectedSince: sw.ConnectedAt().UTC(), Ports: []PortInfo{}}
		for _, ep := range c.sortedEndpoints() {
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

// Flows reads the flow table of a connected switch.
func (c *Controller) Flows(ctx context.Context, dpid topology.DPID) ([]FlowEntry, error) {
	c.mu.Lock()
	sc, ok := c.switches[uint64(dpid)]
	c.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%s: %w", dpid, ErrUnknownSwitch)
	}
	stats, err := sc.dp.DumpFlows(ctx)
	if err != nil {
		return nil, fmt.Errorf("dumping flows of %s: %w", dpid, err)
	}
	out := make([]FlowEntry, len(stats))
	for i, s := range stats {
		out[i] = FlowEntry{
			Table: s.Flow.Table, Priority: s.Flow.Priority,
			Cookie: fmt.Sprintf("0x%x", s.Flow.Cookie), Match: s.Flow.Match.String(),
			Actions: s.Flow.ActionsString(), Packets: s.Packets, Bytes: s.Bytes,
			DurationSec: s.Duration.Seconds(),
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Table != out[j].Table {
			return out[i].Table < out[j].Table
		}
		return out[i].Priority > out[j].Priority
	})
	return out, nil
}

// DesiredFlows is the full table vpcflow wants on dpid, sorted, for tools
// (`ovs-ofctl add-flows` files, tests).
func (c *Controller) DesiredFlows(dpid uint64) []openflow.Flow {
	c.mu.Lock()
	t := c.desiredFor(dpid)
	c.mu.Unlock()
	out := make([]openflow.Flow, 0, len(t))
	for _, f := range t {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return lessFlow(&out[i], &out[j]) })
	return out
}
