package controller

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/ovsdb"
	"github.com/vpcflow/vpcflow/topology"
)

// chassisState is a chassis as far as its OVSDB has told us: the dpid of
// its bridge and the ofport of its VXLAN port. A chassis whose bridge or
// tunnel port is not known yet has no tunnel flows.
type chassisState struct {
	ch         topology.Chassis
	dpid       uint64
	tunnelPort uint32
}

// chassisStates resolves every chassis in the store against the port map.
// Caller holds c.mu.
func (c *Controller) chassisStates(st *topology.State) map[string]chassisState {
	out := map[string]chassisState{}
	for _, ch := range st.AllChassis() {
		b, ok := c.bridgeAt(ch.OVSDB, ch.Bridge)
		if !ok || b.DPID == 0 {
			continue
		}
		p, ok := b.Ports[topology.TunnelPortName]
		if !ok || p.OFPort <= 0 {
			continue
		}
		out[ch.Name] = chassisState{ch: ch, dpid: b.DPID, tunnelPort: uint32(p.OFPort)}
	}
	return out
}

// bridgeAt finds a bridge in the port map of one OVSDB endpoint.
// Caller holds c.mu.
func (c *Controller) bridgeAt(endpoint, bridge string) (ovsdb.Bridge, bool) {
	for _, b := range c.bridges[endpoint] {
		if b.Name == bridge {
			return b, true
		}
	}
	return ovsdb.Bridge{}, false
}

func sameChassisStates(a, b map[string]chassisState) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// ChassisInterfaceMAC is the VM MAC that a chassis's OVSDB records for an
// interface on the chassis bridge (external_ids:attached-mac).
func (c *Controller) ChassisInterfaceMAC(chassis, iface string) (net.HardwareAddr, bool) {
	var ch topology.Chassis
	var ok bool
	c.store.Read(func(st *topology.State) { ch, ok = st.Chassis(chassis) })
	if !ok {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.bridgeAt(ch.OVSDB, ch.Bridge)
	if !ok {
		return nil, false
	}
	if p, ok := b.Ports[iface]; ok && len(p.AttachedMAC) == 6 {
		return p.AttachedMAC, true
	}
	return nil, false
}

// controllerTarget is the OpenFlow target a chassis's bridge is pointed at.
func (c *Controller) controllerTarget(ch topology.Chassis) string {
	if ch.Controller != "" {
		return ch.Controller
	}
	return c.opts.Advertise
}

// setupChassis configures a chassis's bridge for vpcflow, as `vpcflow
// bridge setup` does, and makes sure it has the flow-based VXLAN port.
func (c *Controller) setupChassis(ctx context.Context, ch topology.Chassis) error {
	target := c.controllerTarget(ch)
	if target == "" {
		return topology.Invalid("controller", "required: give the chassis a controller target, or start vpcflow serve with --advertise tcp:IP:6653")
	}
	log := c.log.Named("chassis").With(zap.String("chassis", ch.Name))
	tlsOpt := ovsdb.WithTLS(c.opts.OVSDBTLS)
	if err := ovsdb.SetupBridge(ctx, log, ch.OVSDB, ch.Bridge, ovsdb.SetupOptions{Controllers: []string{target}}, tlsOpt); err != nil {
		return topology.Invalid("ovsdb", "cannot configure chassis %q: %v", ch.Name, err)
	}
	if err := ovsdb.EnsureTunnelPort(ctx, log, ch.OVSDB, ch.Bridge, topology.TunnelPortName, tlsOpt); err != nil {
		return topology.Invalid("ovsdb", "cannot create the VXLAN port on chassis %q: %v", ch.Name, err)
	}
	log.Info("chassis configured", zap.String("ovsdb", ch.OVSDB), zap.String("bridge", ch.Bridge),
		zap.String("controller", target), zap.Stringer("tunnel_ip", ch.TunnelIP))
	return nil
}

// monitorSet runs one OVSDB monitor per endpoint: the --ovsdb ones for
// the whole run, a chassis's from its creation to its deletion.
type monitorSet struct {
	log    *zap.Logger
	ctx    context.Context
	wg     sync.WaitGroup
	byEP   map[string]*monitorRun
	notify func(endpoint string, bridges []ovsdb.Bridge)
	tls    *tls.Config // for ssl: endpoints
}

type monitorRun struct {
	cancel context.CancelFunc
	users  int
}

// start runs a monitor for endpoint unless one runs already. Caller holds
// Controller.mu.
func (m *monitorSet) start(endpoint string) {
	if r, ok := m.byEP[endpoint]; ok {
		r.users++
		return
	}
	ctx, cancel := context.WithCancel(m.ctx)
	m.byEP[endpoint] = &monitorRun{cancel: cancel, users: 1}
	mon := ovsdb.NewMonitor(m.log, endpoint, m.notify, ovsdb.WithTLS(m.tls))
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if err := mon.Run(ctx); err != nil && ctx.Err() == nil {
			m.log.Error("OVSDB monitor stopped", zap.String("ovsdb", endpoint), zap.Error(err))
		}
	}()
}

// stop ends a monitor when its last user is gone; it reports whether it
// did. Caller holds Controller.mu.
func (m *monitorSet) stop(endpoint string) bool {
	r, ok := m.byEP[endpoint]
	if !ok {
		return false
	}
	r.users--
	if r.users > 0 {
		return false
	}
	r.cancel()
	delete(m.byEP, endpoint)
	return true
}

// Run watches OVSDB (every --ovsdb endpoint and every chassis) and keeps
// the chassis configured until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	c.mu.Lock()
	c.monitors = &monitorSet{log: c.log.Named("ovsdb"), ctx: ctx, byEP: map[string]*monitorRun{},
		notify: c.BridgesChanged, tls: c.opts.OVSDBTLS}
	for _, ep := range c.opts.OVSDBEndpoints {
		c.monitors.start(ep)
	}
	var stored []topology.Chassis
	c.store.Read(func(st *topology.State) { stored = st.AllChassis() })
	for _, ch := range stored {
		c.monitors.start(ch.OVSDB)
	}
	c.mu.Unlock()
	for _, ch := range stored {
		go c.keepConfiguring(ctx, ch)
	}
	go func() {
		// Never wait forever for an OVSDB that is down: after the grace
		// period, switches are reconciled with what is known.
		select {
		case <-time.After(c.opts.PortsWait):
			c.portsReadyOnce.Do(func() {
				c.log.Warn("not every OVSDB answered in time; reconciling switches with the ports known so far",
					zap.Duration("waited", c.opts.PortsWait))
				close(c.portsReady)
			})
		case <-c.portsReady:
		case <-ctx.Done():
		}
	}()
	<-ctx.Done()
	c.monitors.wg.Wait()
	return nil
}

// keepConfiguring retries a stored chassis's setup until it succeeds (its
// OVSDB may be down when vpcflow starts).
func (c *Controller) keepConfiguring(ctx context.Context, ch topology.Chassis) {
	delay := time.Second
	for {
		sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := c.setupChassis(sctx, ch)
		cancel()
		if err == nil || ctx.Err() != nil {
			return
		}
		c.log.Warn("configuring chassis; will retry", zap.String("chassis", ch.Name), zap.Error(err), zap.Duration("in", delay))
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		if delay < 30*time.Second {
			delay *= 2
		}
	}
}

// chassisOpsBefore configures the bridges of chassis being created, before
// anything is stored: a chassis that cannot be configured is refused. The
// whole change is validated first, so bad input is a 400 about the input
// and no OVSDB is touched for a change that would be refused anyway.
func (c *Controller) chassisOpsBefore(ctx context.Context, ops []topology.Op) error {
	var creates []int
	for i, op := range ops {
		if op.Chassis != nil && op.Kind == topology.OpCreate {
			creates = append(creates, i)
		}
	}
	if len(creates) == 0 {
		return nil
	}
	if _, err := c.store.Check(ctx, ops); err != nil {
		return err
	}
	for _, i := range creates {
		sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := c.setupChassis(sctx, *ops[i].Chassis)
		cancel()
		if err != nil {
			if e, ok := topology.AsError(err); ok && len(ops) > 1 {
				e.Field = fmt.Sprintf("[%d].%s", i, e.Field)
			}
			return err
		}
	}
	return nil
}

// chassisOpsAfter starts and stops OVSDB monitors for created and deleted
// chassis. Caller holds c.mu.
func (c *Controller) chassisOpsAfter(applied []topology.Op) {
	if c.monitors == nil {
		return
	}
	for _, op := range applied {
		if op.Chassis == nil {
			continue
		}
		switch op.Kind {
		case topology.OpCreate:
			c.monitors.start(op.Chassis.OVSDB)
		case topology.OpDelete:
			if c.monitors.stop(op.Chassis.OVSDB) {
				delete(c.bridges, op.Chassis.OVSDB)
			}
		}
	}
}
