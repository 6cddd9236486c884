package controller

import (
	"context"
	"crypto/tls"
	"fmt"
	"github.com/vpcflow/vpcflow/ovsdb/endpoint"
	"net"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/ovsdb"
	"github.com/vpcflow/vpcflow/topology"
)

// ChassisConfigurer prepares a chassis's bridge for vpcflow through the
// chassis's OVSDB (as `vpcflow bridge setup` does, plus the VXLAN port).
type ChassisConfigurer interface {
	// Setup configures the chassis's bridge with target as its controller.
	// The returned undo puts back what Setup changed; it is called when
	// the store refuses the chassis after all.
	Setup(ctx context.Context, ch topology.Chassis, targets []string) (undo func(context.Context) error, err error)
}

// OVSDBChassis configures chassis through their real OVSDB.
type OVSDBChassis struct {
	Log *zap.Logger
	TLS *tls.Config // for ssl: endpoints
}

// Setup prepares the chassis's bridge in one OVSDB transaction
// (ovsdb.PrepareChassisBridge): the settings of `vpcflow bridge setup`
// with target as the only controller, and the flow-based VXLAN port. It is
// validated against the database first and applied all or nothing, so a
// chassis that is refused (the bridge missing, the tunnel port's name
// taken elsewhere) changes nothing. The undo puts back exactly what it
// changed.
func (o *OVSDBChassis) Setup(ctx context.Context, ch topology.Chassis, targets []string) (func(context.Context) error, error) {
	log := o.Log.With(zap.String("chassis", ch.Name))
	opts := ovsdb.ChassisOptions{SetupOptions: ovsdb.SetupOptions{Controllers: targets}, TunnelPort: topology.TunnelPortName}
	undo, err := ovsdb.PrepareChassisBridge(ctx, log, ch.OVSDB, ch.Bridge, opts, ovsdb.WithTLS(o.TLS))
	if err != nil {
		return nil, topology.Invalid("ovsdb", "cannot configure chassis %q: %v", ch.Name, err)
	}
	if undo.Changed() {
		log.Info("chassis configured", zap.String("ovsdb", ch.OVSDB), zap.String("bridge", ch.Bridge),
			zap.Strings("controllers", targets), zap.Stringer("tunnel_ip", ch.TunnelIP))
	}
	return undo.Run, nil
}

// chassisPlaces resolves every chassis in the store against the port map;
// a chassis whose bridge or tunnel port is not known yet is left out.
func chassisPlaces(st *topology.State, bridges map[string][]ovsdb.Bridge) map[string]pipeline.ChassisPlace {
	out := map[string]pipeline.ChassisPlace{}
	for _, ch := range st.AllChassis() {
		b, ok := bridgeAt(bridges, ch.OVSDB, ch.Bridge)
		if !ok || b.DPID == 0 {
			continue
		}
		p, ok := b.Ports[topology.TunnelPortName]
		if !ok || p.OFPort <= 0 {
			continue
		}
		out[ch.Name] = pipeline.ChassisPlace{Chassis: ch, DPID: b.DPID, TunnelPort: uint32(p.OFPort)}
	}
	return out
}

func sameChassisPlaces(a, b map[string]pipeline.ChassisPlace) bool {
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
	b, ok := bridgeAt(c.bridges, ch.OVSDB, ch.Bridge)
	if !ok {
		return nil, false
	}
	if p, ok := b.Ports[iface]; ok && len(p.AttachedMAC) == 6 {
		return p.AttachedMAC, true
	}
	return nil, false
}

// controllerTargets are the OpenFlow targets a chassis's bridge is
// pointed at: the chassis's own, or else serve's --advertise (both may
// list several, comma-separated: one per replica).
func (c *Controller) controllerTargets(ch topology.Chassis) ([]string, error) {
	list := ch.Controller
	if list == "" {
		list = c.opts.Advertise
	}
	if list == "" {
		return nil, topology.Invalid("controller", "required: give the chassis a controller target, or start vpcflow serve with --advertise tcp:IP:6653")
	}
	targets, err := endpoint.ParseControllers(list)
	if err != nil {
		return nil, topology.Invalid("controller", "%v", err)
	}
	return targets, nil
}

// setupChassis configures one chassis's bridge.
func (c *Controller) setupChassis(ctx context.Context, ch topology.Chassis) (func(context.Context) error, error) {
	targets, err := c.controllerTargets(ch)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return c.chassis.Setup(sctx, ch, targets)
}

// prepareChassis configures the bridges of chassis being created, once
// the whole change is known to be valid (so bad input is a 400 about the
// input and no OVSDB is touched for a change that would be refused). A
// chassis that cannot be configured is refused. The returned undo puts
// back what was configured, for when the store refuses the change.
func (c *Controller) prepareChassis(ctx context.Context, ops []topology.Op) (undo func(), err error) {
	var creates []int
	for i, op := range ops {
		if op.Chassis() != nil && op.Kind == topology.OpCreate {
			creates = append(creates, i)
		}
	}
	noop := func() {}
	if len(creates) == 0 {
		return noop, nil
	}
	resolved, err := c.store.Check(ctx, ops)
	if err != nil {
		return nil, err
	}
	var undos []func(context.Context) error
	undoAll := func() {
		for i := len(undos) - 1; i >= 0; i-- {
			uctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			if err := undos[i](uctx); err != nil {
				c.log.Error("undoing a chassis setup the store refused", zap.Error(err))
			}
			cancel()
		}
	}
	for _, i := range creates {
		u, err := c.setupChassis(ctx, *resolved[i].Chassis())
		if err != nil {
			undoAll()
			if e, ok := topology.AsError(err); ok && len(ops) > 1 {
				e.Field = fmt.Sprintf("[%d].%s", i, e.Field)
			}
			return nil, err
		}
		undos = append(undos, u)
	}
	return undoAll, nil
}

// chassisOpsAfter starts and stops OVSDB monitors for created and deleted
// chassis. Caller holds c.mu.
func (c *Controller) chassisOpsAfter(applied []topology.Op) {
	for _, op := range applied {
		ch := op.Chassis()
		if ch == nil {
			continue
		}
		switch op.Kind {
		case topology.OpCreate:
			if c.monitors != nil {
				c.monitors.start(ch.OVSDB)
			}
		case topology.OpDelete:
			if w := c.chassisWatch[ch.Name]; w != nil && w.id == ch.ID {
				delete(c.chassisWatch, ch.Name)
			}
			// Its OVSDB is no longer awaited: that it is not known any
			// more holds nothing back.
			if !slices.Contains(c.opts.OVSDBEndpoints, ch.OVSDB) {
				delete(c.wantEndpoints, ch.OVSDB)
			}
			if c.monitors != nil && c.monitors.stop(ch.OVSDB) {
				delete(c.bridges, ch.OVSDB)
				delete(c.epStatus, ch.OVSDB)
			}
		}
	}
}

// monitorSet runs one OVSDB monitor per endpoint: the --ovsdb ones for
// the whole run, a chassis's from its creation to its deletion.
type monitorSet struct {
	log    *zap.Logger
	ctx    context.Context
	wg     sync.WaitGroup
	byEP   map[string]*monitorRun
	notify func(endpoint string, bridges []ovsdb.Bridge)
	status func(ovsdb.EndpointStatus)
	tls    *tls.Config // for ssl: endpoints
}

type monitorRun struct {
	cancel context.CancelFunc
	users  int
	mon    *ovsdb.Monitor // for its Status (status.go, chassiswatch.go)
}

// start runs a monitor for endpoint unless one runs already. Caller holds
// Controller.mu.
func (m *monitorSet) start(endpoint string) {
	if r, ok := m.byEP[endpoint]; ok {
		r.users++
		return
	}
	ctx, cancel := context.WithCancel(m.ctx)
	mon := ovsdb.NewMonitor(m.log, endpoint, m.notify, ovsdb.WithTLS(m.tls))
	if m.status != nil {
		mon.OnStatus(m.status)
	}
	m.byEP[endpoint] = &monitorRun{cancel: cancel, users: 1, mon: mon}
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
		notify: c.BridgesChanged, status: c.endpointStatusChanged, tls: c.opts.OVSDBTLS}
	for _, ep := range c.opts.OVSDBEndpoints {
		c.monitors.start(ep)
	}
	// A stored chassis is prepared again (if it needs it) once its OVSDB
	// answers: see watchChassis.
	var stored []topology.Chassis
	c.store.Read(func(st *topology.State) { stored = st.AllChassis() })
	for _, ch := range stored {
		c.monitors.start(ch.OVSDB)
	}
	c.mu.Unlock()
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
