// Package controller turns the desired topology and the switches' ports into
// flows and keeps every connected switch's tables equal to them: desired
// flows are computed per object (host, subnet) by the pure functions in
// pipeline.go, cached, and every change is sent as the difference only.
package controller

import (
	"context"
	"errors"
	"fmt"
	"net"
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
	attached map[uint32]Attachment // host id → resolved attachment
	switches map[uint64]Datapath   // reconciled switches, by dpid
	bridges  map[string][]ovsdb.Bridge

	portsReady     chan struct{}
	portsReadyOnce sync.Once
	seenEndpoints  map[string]bool
}

// New builds a controller over store and computes the desired flows of
// everything already in it.
func New(log *zap.Logger, store *topology.Store, opts Options) *Controller {
	if opts.PushTimeout == 0 {
		opts.PushTimeout = 10 * time.Second
	}
	c := &Controller{
		log:           log,
		store:         store,
		opts:          opts,
		owned:         map[ownerKey][]PlacedFlow{},
		attached:      map[uint32]Attachment{},
		switches:      map[uint64]Datapath{},
		bridges:       map[string][]ovsdb.Bridge{},
		portsReady:    make(chan struct{}),
		seenEndpoints: map[string]bool{},
	}
	if len(opts.OVSDBEndpoints) == 0 {
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
// every connected switch and returns once they confirmed them.
func (c *Controller) Apply(ctx context.Context, ops []topology.Op) ([]topology.Op, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	applied, err := c.store.Apply(ctx, ops)
	if err != nil {
		return nil, err
	}
	owners := affectedOwners(applied)
	var changes map[uint64][]FlowChange
	c.store.Read(func(st *topology.State) { changes = c.recompute(st, owners) })
	if err := c.push(ctx, changes); err != nil {
		return applied, fmt.Errorf("change stored, but a switch did not confirm it: %w", err)
	}
	return applied, nil
}

// affectedOwners lists the objects whose flows a change touches.
func affectedOwners(ops []topology.Op) []ownerKey {
	var out []ownerKey
	for _, op := range ops {
		switch {
		case op.Host != nil:
			out = append(out, ownerKey{kind: OwnerHost, id: op.Host.ID, vpc: op.Host.VPC, name: op.Host.Name})
		case op.Subnet != nil:
			out = append(out, ownerKey{kind: OwnerSubnet, id: op.Subnet.ID, vpc: op.Subnet.VPC, name: op.Subnet.Name})
		}
		// VPCs and vSwitches carry no flows of their own: they may only be
		// deleted when empty, and their fields do not change.
	}
	return out
}

// recomputeAll rebuilds the cache of desired flows from the store.
func (c *Controller) recomputeAll() {
	c.store.Read(func(st *topology.State) {
		var owners []ownerKey
		for _, h := range st.AllHosts() {
			owners = append(owners, ownerKey{kind: OwnerHost, id: h.ID, vpc: h.VPC, name: h.Name})
			for _, s := range st.SubnetsOfHost(h.VPC, h.Name) {
				owners = append(owners, ownerKey{kind: OwnerSubnet, id: s.ID, vpc: s.VPC, name: s.Name})
			}
		}
		c.recompute(st, owners)
	})
}

// recompute refreshes the cached flows of owners and returns what changed,
// per datapath. Caller holds c.mu.
func (c *Controller) recompute(st *topology.State, owners []ownerKey) map[uint64][]FlowChange {
	all := map[uint64][]FlowChange{}
	for _, o := range owners {
		flows := c.flowsOf(st, o)
		for dpid, cs := range DiffOwner(c.owned[o], flows) {
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
// attached to a known port, has none.
func (c *Controller) flowsOf(st *topology.State, o ownerKey) []PlacedFlow {
	var hostName string
	var sub topology.Subnet
	switch o.kind {
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
			delete(c.attached, o.id)
		}
		return nil
	}
	vpc, ok1 := st.VPC(h.VPC)
	vsw, ok2 := st.VSwitch(h.VPC, h.VSwitch)
	if !ok1 || !ok2 {
		return nil
	}
	at, ok := c.resolve(h)
	if o.kind == OwnerHost {
		if ok {
			c.attached[h.ID] = at
		} else {
			delete(c.attached, h.ID)
		}
	}
	if !ok {
		return nil
	}
	var flows []openflow.Flow
	if o.kind == OwnerHost {
		flows = HostFlows(vpc, vsw, h, at)
	} else {
		flows = SubnetFlows(vpc, sub, h, at)
	}
	placed := make([]PlacedFlow, len(flows))
	for i, f := range flows {
		placed[i] = PlacedFlow{DPID: at.DPID, Flow: f}
	}
	return placed
}

// resolve finds where host h is attached. Caller holds c.mu.
func (c *Controller) resolve(h topology.Host) (Attachment, bool) {
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

// push sends changes to the reconciled switches concurrently, each within
// PushTimeout. A switch that fails is disconnected: it reconnects and is
// reconciled from a fresh dump, so its table never stays wrong. Switches
// that are not connected get the changes when they reconcile. Caller holds c.mu.
func (c *Controller) push(ctx context.Context, changes map[uint64][]FlowChange) error {
	var wg sync.WaitGroup
	var errMu sync.Mutex
	var errs []error
	for dpid, cs := range changes {
		sw, ok := c.switches[dpid]
		if !ok || len(cs) == 0 {
			continue
		}
		wg.Add(1)
		go func(dpid uint64, sw Datapath, cs []FlowChange) {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, c.opts.PushTimeout)
			defer cancel()
			start := time.Now()
			if err := sw.Apply(pctx, toFlowMods(cs)); err != nil {
				c.log.Error("switch rejected flow changes; disconnecting it to resync",
					zap.String("dpid", topology.DPID(dpid).String()), zap.Int("changes", len(cs)), zap.Error(err))
				sw.Close()
				errMu.Lock()
				errs = append(errs, fmt.Errorf("switch %s: %w", topology.DPID(dpid), err))
				errMu.Unlock()
				return
			}
			c.log.Debug("flows pushed", zap.String("dpid", topology.DPID(dpid).String()),
				zap.Int("changes", len(cs)), zap.Duration("took", time.Since(start)))
		}(dpid, sw, cs)
	}
	wg.Wait()
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

// SwitchConnected reconciles a switch that connected (or reconnected): it
// reads the switch's flows and sends only the difference. Until then the
// switch is not sent incremental changes.
func (c *Controller) SwitchConnected(ctx context.Context, sw *openflow.Switch) {
	c.connect(ctx, sw)
}

// SwitchDisconnected forgets a switch.
func (c *Controller) SwitchDisconnected(sw *openflow.Switch) {
	c.disconnect(sw)
}

func (c *Controller) connect(ctx context.Context, sw Datapath) {
	dpid := topology.DPID(sw.DPID()).String()
	log := c.log.With(zap.String("dpid", dpid), zap.String("remote", sw.RemoteAddr()))
	select {
	case <-c.portsReady:
	case <-ctx.Done():
		return
	}
	start := time.Now()
	installed, err := sw.DumpFlows(ctx)
	if err != nil {
		log.Error("reading flows of new switch", zap.Error(err))
		sw.Close()
		return
	}
	flows := make([]openflow.Flow, len(installed))
	for i := range installed {
		flows[i] = installed[i].Flow
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	changes := DiffTable(c.desiredFor(sw.DPID()), flows)
	if len(changes) > 0 {
		if err := sw.Apply(ctx, toFlowMods(changes)); err != nil {
			log.Error("reconciling new switch", zap.Error(err))
			sw.Close()
			return
		}
	}
	if old, ok := c.switches[sw.DPID()]; ok && old != sw {
		old.Close()
	}
	c.switches[sw.DPID()] = sw
	adds, dels := countChanges(changes)
	log.Info("switch reconciled", zap.Int("installed", len(installed)), zap.Int("added", adds),
		zap.Int("deleted", dels), zap.Duration("took", time.Since(start)))
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

func (c *Controller) disconnect(sw Datapath) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur, ok := c.switches[sw.DPID()]; ok && cur == sw {
		delete(c.switches, sw.DPID())
		c.log.Info("switch disconnected", zap.String("dpid", topology.DPID(sw.DPID()).String()))
	}
}

// BridgesChanged takes a new port map from an OVSDB monitor: hosts whose
// attachment changed (a port added, removed, or renumbered) get their flows
// recomputed and pushed.
func (c *Controller) BridgesChanged(endpoint string, bridges []ovsdb.Bridge) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.bridges[endpoint] = bridges
	var owners []ownerKey
	var changes map[uint64][]FlowChange
	c.store.Read(func(st *topology.State) {
		for _, h := range st.AllHosts() {
			at, ok := c.resolve(h)
			old, had := c.attached[h.ID]
			if ok == had && at == old {
				continue
			}
			owners = append(owners, ownerKey{kind: OwnerHost, id: h.ID, vpc: h.VPC, name: h.Name})
			for _, s := range st.SubnetsOfHost(h.VPC, h.Name) {
				owners = append(owners, ownerKey{kind: OwnerSubnet, id: s.ID, vpc: s.VPC, name: s.Name})
			}
		}
		changes = c.recompute(st, owners)
	})
	if len(owners) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), c.opts.PushTimeout)
		defer cancel()
		if err := c.push(ctx, changes); err != nil {
			c.log.Warn("pushing port changes", zap.Error(err))
		}
		c.log.Info("port map changed", zap.String("ovsdb", endpoint), zap.Int("objects_recomputed", len(owners)))
	}
	if !c.seenEndpoints[endpoint] {
		c.seenEndpoints[endpoint] = true
		if len(c.seenEndpoints) >= len(c.opts.OVSDBEndpoints) {
			c.portsReadyOnce.Do(func() { close(c.portsReady) })
		}
	}
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
	for dpid, sw := range c.switches {
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
	sw, ok := c.switches[uint64(dpid)]
	c.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%s: %w", dpid, ErrUnknownSwitch)
	}
	stats, err := sw.DumpFlows(ctx)
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
