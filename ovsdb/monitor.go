package ovsdb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ovn-kubernetes/libovsdb/cache"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/ovsdb/vswitchd"
)

// Port is one OVS Interface as the controller sees it.
type Port struct {
	// Name is the Interface name (e.g. "vnet1").
	Name string
	// OFPort is the OpenFlow port number ovs-vswitchd assigned. It is 0 while
	// not assigned yet and -1 when ovs-vswitchd failed to add the interface;
	// only values > 0 are usable in flows (65534 is the bridge's LOCAL port).
	OFPort int32
	// AttachedMAC is the Interface's external_ids:attached-mac (libvirt's
	// convention for the VM's MAC), nil when unset or unparsable.
	AttachedMAC net.HardwareAddr
	// MACInUse is the Interface's mac_in_use as reported by ovs-vswitchd,
	// nil when not reported yet.
	MACInUse net.HardwareAddr
	// Type is the Interface's type: "" (a system device), "internal",
	// "vxlan", ...
	Type string
	// Options is the Interface's options column (a tunnel's remote_ip,
	// key, ...), nil when empty.
	Options map[string]string
	// MTU is the Interface's MTU as ovs-vswitchd reports it (the mtu
	// column), 0 while not reported.
	MTU int
}

// IsFlowTunnel reports whether the port is the flow-based VXLAN port
// EnsureTunnelPort and PrepareChassisBridge make: type vxlan with exactly
// the options remote_ip=flow and key=flow.
func (p Port) IsFlowTunnel() bool {
	return p.Type == TunnelType && maps.Equal(p.Options, tunnelOptions())
}

// Controller is one of a bridge's Controller rows.
type Controller struct {
	// Target is e.g. "tcp:192.0.2.254:6653".
	Target string
	// ConnectionMode is "out-of-band", "in-band", or "" (unset: OVS then
	// uses in-band).
	ConnectionMode string
	// MaxBackoff is max_backoff in milliseconds, 0 when unset (OVS's
	// default, 8000).
	MaxBackoff int
}

// Bridge is one OVS Bridge with every Interface of every one of its Ports,
// and the settings vpcflow manages on a chassis bridge (so that a user can
// see them drift: ChassisDrift).
type Bridge struct {
	Name string
	// DPID is the bridge's datapath_id, 0 until ovs-vswitchd has set it. A
	// bridge deleted and created again gets a new one.
	DPID uint64
	// Ports holds every Interface of every Port of the bridge, keyed by
	// interface name.
	Ports map[string]Port
	// Controllers are the bridge's Controller rows, sorted by target.
	Controllers []Controller
	// FailMode is "secure", "standalone", or "" (unset: standalone).
	FailMode string
	// Protocols are the OpenFlow versions the bridge allows, sorted; nil
	// when unset (OVS then allows 1.0 to 1.5).
	Protocols []string
	// DisableInBand is other_config:disable-in-band=true.
	DisableInBand bool
	// LocalMTU is the MTU of the bridge's local interface (the internal
	// one named like the bridge), 0 while not reported.
	LocalMTU int
}

// ControllerTargets returns the targets of the bridge's controllers, sorted.
func (b Bridge) ControllerTargets() []string {
	out := make([]string, 0, len(b.Controllers))
	for _, c := range b.Controllers {
		out = append(out, c.Target)
	}
	return out
}

// ChassisDrift lists, one sentence each, how the bridge differs from what
// PrepareChassisBridge makes of it with these controller targets and this
// tunnel port: protocols, fail_mode, disable-in-band, the controller set
// (each out-of-band with max_backoff ControllerMaxBackoff), and the
// flow-based VXLAN port. Nil means the bridge is as prepared. Whether the
// bridge is the same one (its DPID) is for the caller to compare.
func (b Bridge) ChassisDrift(controllers []string, tunnelPort string) []string {
	var out []string
	if !sameSet(b.Protocols, protocols13()) {
		out = append(out, fmt.Sprintf("protocols are %v, want [%s]", b.Protocols, vswitchd.BridgeProtocolsOpenflow13))
	}
	if b.FailMode != vswitchd.BridgeFailModeSecure {
		fm := b.FailMode
		if fm == "" {
			fm = "unset"
		}
		out = append(out, fmt.Sprintf("fail_mode is %s, want %s", fm, vswitchd.BridgeFailModeSecure))
	}
	if !b.DisableInBand {
		out = append(out, "other_config:disable-in-band is not true")
	}
	if !sameSet(b.ControllerTargets(), controllers) {
		out = append(out, fmt.Sprintf("controllers are %v, want %v", b.ControllerTargets(), controllers))
	}
	for _, c := range b.Controllers {
		if !slices.Contains(controllers, c.Target) {
			continue
		}
		if c.ConnectionMode != vswitchd.ControllerConnectionModeOutOfBand {
			out = append(out, fmt.Sprintf("controller %s is not out-of-band", c.Target))
		}
		if c.MaxBackoff != ControllerMaxBackoff {
			out = append(out, fmt.Sprintf("controller %s has max_backoff %d, want %d", c.Target, c.MaxBackoff, ControllerMaxBackoff))
		}
	}
	switch p, ok := b.Ports[tunnelPort]; {
	case !ok:
		out = append(out, fmt.Sprintf("tunnel port %s is missing", tunnelPort))
	case !p.IsFlowTunnel():
		out = append(out, fmt.Sprintf("tunnel port %s is type %q with options %v, want %s with remote_ip=flow, key=flow", tunnelPort, p.Type, p.Options, TunnelType))
	}
	return out
}

// Reconnect and liveness timing of a Monitor.
const (
	backoffMin = 100 * time.Millisecond
	backoffMax = 5 * time.Second
	// attemptTimeout bounds one connect + initial dump.
	attemptTimeout = 10 * time.Second
	// probeInterval is how often a connected Monitor echoes the server. It
	// is a backstop: a dropped connection is normally noticed at once
	// through libovsdb's disconnect notification.
	probeInterval = 5 * time.Second
	probeTimeout  = 5 * time.Second
	// settleDelay coalesces the burst of cache events one OVSDB
	// transaction produces (Bridge, Port and Interface rows) into one
	// snapshot; it bounds the latency Monitor adds to a change.
	settleDelay = 5 * time.Millisecond
)

// Monitor keeps an up-to-date view of the bridges, ports and interfaces in
// one OVSDB server and reports every relevant change. Create it with
// NewMonitor and start it with Run.
type Monitor struct {
	log      *zap.Logger
	endpoint string
	onChange func(endpoint string, bridges []Bridge)
	conn     connOptions

	running   atomic.Bool
	connected atomic.Bool

	mu        sync.RWMutex
	bridges   []Bridge // sorted by name; never handed out without cloning
	delivered bool     // onChange has been called at least once
	status    EndpointStatus
	onStatus  func(EndpointStatus)
}

// EndpointState is how a Monitor stands with its OVSDB server. Only
// EndpointConnected means the snapshot is what the server holds now: a
// server never seen, or down, is unknown, not empty.
type EndpointState int

const (
	// EndpointNeverConnected: Run has not had a snapshot from the server
	// yet; nothing is known about its bridges.
	EndpointNeverConnected EndpointState = iota
	// EndpointConnected: connected, and the first snapshot of this
	// connection has been delivered; changes follow as they happen.
	EndpointConnected
	// EndpointDown: the connection was lost (or Run stopped); the
	// snapshot is what the server held then.
	EndpointDown
)

func (s EndpointState) String() string {
	switch s {
	case EndpointNeverConnected:
		return "never-connected"
	case EndpointConnected:
		return "connected"
	case EndpointDown:
		return "down"
	}
	return fmt.Sprintf("EndpointState(%d)", int(s))
}

// EndpointStatus is a Monitor's connection state.
type EndpointStatus struct {
	// Endpoint is the OVSDB endpoint, as given to NewMonitor.
	Endpoint string
	State    EndpointState
	// Since is when State began: when Run started (never connected), when
	// the connection's first snapshot was delivered (connected), when the
	// connection was lost (down).
	Since time.Time
	// LastError is why the last connection attempt failed or the
	// connection was lost; "" while connected.
	LastError string
	// Failures counts the failed connection attempts since State began.
	Failures int
}

// NewMonitor returns a Monitor for the OVSDB server at endpoint (see
// ParseEndpoint). onChange, which may be nil, is called from Run's goroutine,
// never concurrently with itself, with the full current set of bridges
// (sorted by name): once after the first initial dump, and then whenever
// anything a Bridge or Port reports changes: a bridge appears, disappears,
// changes its datapath ID, controllers, fail_mode, protocols,
// disable-in-band or local MTU; a port appears, disappears or changes its
// ofport, MACs, type, options or MTU. It is not called for other changes,
// nor when a re-dump after a reconnect finds nothing changed. The slice
// passed to onChange belongs to the callee. The connection state comes
// through OnStatus. An ssl: endpoint needs WithTLS among opts.
func NewMonitor(log *zap.Logger, endpoint string, onChange func(endpoint string, bridges []Bridge), opts ...ConnOption) *Monitor {
	if log == nil {
		log = zap.NewNop()
	}
	return &Monitor{
		log:      log.With(zap.String("ovsdb", endpoint)),
		endpoint: endpoint,
		onChange: onChange,
		conn:     applyConnOptions(opts),
	}
}

// Bridges returns the current snapshot, sorted by name. While disconnected it
// is the last state seen. It is safe for concurrent use.
func (m *Monitor) Bridges() []Bridge {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return cloneBridges(m.bridges)
}

// OnStatus sets a function that Run calls, from its goroutine and never
// concurrently with onChange or itself, each time the connection state
// changes: EndpointNeverConnected when Run starts, EndpointConnected once
// the connection's first snapshot has been delivered (through onChange if
// it differed from the last one: so the snapshot the user holds is
// current), EndpointDown when the connection is lost. Failed attempts
// while never connected or down only update Status. Set it before Run.
func (m *Monitor) OnStatus(f func(EndpointStatus)) {
	m.mu.Lock()
	m.onStatus = f
	m.mu.Unlock()
}

// Status returns the Monitor's connection state. Before Run it is
// EndpointNeverConnected with a zero Since. It is safe for concurrent use.
func (m *Monitor) Status() EndpointStatus {
	m.mu.RLock()
	defer m.mu.RUnlock()
	st := m.status
	st.Endpoint = m.endpoint
	return st
}

// setStatus moves to state (when it differs, or force) and calls onStatus
// if report. It is called from Run's goroutine only.
func (m *Monitor) setStatus(state EndpointState, cause error, report bool) {
	m.mu.Lock()
	st := m.status
	if st.State != state || st.Since.IsZero() {
		st = EndpointStatus{State: state, Since: time.Now()}
	}
	st.LastError = ""
	if cause != nil {
		st.LastError = cause.Error()
	}
	st.Endpoint = m.endpoint
	m.status = st
	f := m.onStatus
	m.mu.Unlock()
	if report && f != nil {
		f(st)
	}
}

// attemptFailed records a failed connection attempt in the status.
func (m *Monitor) attemptFailed(err error) {
	m.mu.Lock()
	m.status.Failures++
	m.status.LastError = err.Error()
	m.mu.Unlock()
}

// Connected reports whether the Monitor is connected and has its initial
// dump.
func (m *Monitor) Connected() bool {
	return m.connected.Load()
}

// Run connects to the server, monitors the Bridge, Port and Interface tables
// and reports changes through onChange until ctx is done. When the
// connection fails or drops it reconnects with a jittered exponential
// backoff (100 ms doubling up to 5 s, ±20 %), re-dumps the tables and
// resumes. It returns nil once ctx is done; it returns an error at once only
// for an endpoint it can never use (malformed, or ssl: without WithTLS), or
// when the Monitor is already running. A TLS handshake that fails (an
// untrusted certificate on either side) is a failed attempt like any other:
// logged, and retried with backoff.
func (m *Monitor) Run(ctx context.Context) error {
	ep, err := ParseEndpoint(m.endpoint)
	if err != nil {
		return fmt.Errorf("ovsdb monitor: %w", err)
	}
	if err := m.conn.checkUsable(ep); err != nil {
		return fmt.Errorf("ovsdb monitor: %w", err)
	}
	dbModel, err := databaseModel(&vswitchd.Bridge{}, &vswitchd.Port{}, &vswitchd.Interface{}, &vswitchd.Controller{})
	if err != nil {
		return fmt.Errorf("ovsdb monitor %s: %w", ep, err)
	}
	if !m.running.CompareAndSwap(false, true) {
		return fmt.Errorf("ovsdb monitor %s: already running", ep)
	}
	defer m.running.Store(false)

	// A Monitor run before and stopped is down since then, not unknown.
	if st := m.Status(); st.State == EndpointNeverConnected {
		m.setStatus(EndpointNeverConnected, nil, true)
	} else {
		m.setStatus(EndpointDown, errors.New(st.LastError), true)
	}
	bo := backoff{min: backoffMin, max: backoffMax}
	failures := 0
	for {
		start := time.Now()
		dumped, err := m.session(ctx, ep, dbModel)
		m.connected.Store(false)
		if ctx.Err() != nil {
			if m.Status().State == EndpointConnected {
				m.setStatus(EndpointDown, errors.New("monitor stopped"), false)
			}
			m.log.Debug("ovsdb monitor stopped")
			return nil
		}
		if dumped {
			bo.reset()
			failures = 0
			m.setStatus(EndpointDown, err, true)
			m.log.Warn("ovsdb connection lost, reconnecting", zap.Error(err),
				zap.Duration("up", time.Since(start)))
		} else {
			m.attemptFailed(err)
			failures++
			// Say it loudly the first time, then every 10th attempt.
			lvl := zap.DebugLevel
			if failures == 1 || failures%10 == 0 {
				lvl = zap.WarnLevel
			}
			m.log.Log(lvl, "ovsdb connection attempt failed", zap.Error(err), zap.Int("attempt", failures))
		}
		t := time.NewTimer(bo.next())
		select {
		case <-ctx.Done():
			t.Stop()
			m.log.Debug("ovsdb monitor stopped")
			return nil
		case <-t.C:
		}
	}
}

// session runs one connection: connect, monitor, publish, and follow updates
// until the connection drops or ctx is done. dumped reports whether the
// initial dump succeeded.
func (m *Monitor) session(ctx context.Context, ep Endpoint, dbModel model.ClientDBModel) (dumped bool, err error) {
	c, err := newClient(m.log, ep, dbModel, m.conn)
	if err != nil {
		return false, err
	}
	attemptCtx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	if err := c.Connect(attemptCtx); err != nil {
		return false, fmt.Errorf("connecting to %s: %w", ep, err)
	}
	defer c.Close()

	// libovsdb sends its disconnect notification without blocking, so
	// somebody must be waiting for it from now on; the echo probe below
	// covers the short window before this goroutine gets there.
	stop := make(chan struct{})
	defer close(stop)
	lost := make(chan struct{})
	notify := c.DisconnectNotify()
	go func() {
		select {
		case <-notify:
			close(lost)
		case <-stop:
		}
	}()

	tc := c.Cache()
	if tc == nil {
		return false, fmt.Errorf("connected to %s but libovsdb has no cache", ep)
	}
	dirty := make(chan struct{}, 1)
	mark := func() {
		select {
		case dirty <- struct{}{}:
		default:
		}
	}
	// Handlers run on libovsdb's event goroutine and must not block.
	tc.AddEventHandler(&cache.EventHandlerFuncs{
		AddFunc:    func(string, model.Model) { mark() },
		UpdateFunc: func(string, model.Model, model.Model) { mark() },
		DeleteFunc: func(string, model.Model) { mark() },
	})

	br, pt, ifc, ctl := &vswitchd.Bridge{}, &vswitchd.Port{}, &vswitchd.Interface{}, &vswitchd.Controller{}
	mon := c.NewMonitor(
		client.WithTable(br, &br.Name, &br.DatapathID, &br.Ports, &br.Controller, &br.FailMode,
			&br.Protocols, &br.OtherConfig),
		client.WithTable(pt, &pt.Name, &pt.Interfaces),
		client.WithTable(ifc, &ifc.Name, &ifc.Ofport, &ifc.ExternalIDs, &ifc.MACInUse, &ifc.Type,
			&ifc.Options, &ifc.MTU),
		client.WithTable(ctl, &ctl.Target, &ctl.ConnectionMode, &ctl.MaxBackoff),
	)
	if _, err := c.Monitor(attemptCtx, mon); err != nil {
		return false, fmt.Errorf("monitoring Bridge/Port/Interface/Controller on %s: %w", ep, err)
	}
	m.connected.Store(true)
	m.log.Info("ovsdb connected and monitoring")
	m.publish(tc)
	m.setStatus(EndpointConnected, nil, true)

	probe := time.NewTicker(probeInterval)
	defer probe.Stop()
	for {
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case <-lost:
			return true, errors.New("disconnected by server")
		case <-probe.C:
			pctx, pcancel := context.WithTimeout(ctx, probeTimeout)
			err := c.Echo(pctx)
			pcancel()
			if err != nil && ctx.Err() == nil {
				return true, fmt.Errorf("echo: %w", err)
			}
		case <-dirty:
			settle := time.NewTimer(settleDelay)
			select {
			case <-ctx.Done():
				settle.Stop()
				return true, ctx.Err()
			case <-settle.C:
			}
			// Drain before reading: an event after this point marks
			// dirty again and gets its own snapshot.
			select {
			case <-dirty:
			default:
			}
			m.publish(tc)
		}
	}
}

// publish rebuilds the snapshot from the cache and calls onChange if it
// differs from the previous one (or nothing was delivered yet).
func (m *Monitor) publish(tc *cache.TableCache) {
	snap := snapshot(m.log, tc)
	m.mu.Lock()
	changed := !m.delivered || !equalBridges(m.bridges, snap)
	m.bridges = snap
	m.delivered = true
	m.mu.Unlock()
	if !changed {
		return
	}
	m.log.Debug("ovsdb bridges changed", zap.Int("bridges", len(snap)))
	if m.onChange != nil {
		m.onChange(m.endpoint, cloneBridges(snap))
	}
}

// snapshot builds the sorted bridge list from the cache. Rows are read
// table by table; a reference to a row not (or no longer) in the cache is
// skipped, and the event that caused it triggers another snapshot.
func snapshot(log *zap.Logger, tc *cache.TableCache) []Bridge {
	bridgeRows := rows(tc, vswitchd.BridgeTable)
	portRows := rows(tc, vswitchd.PortTable)
	ifaceRows := rows(tc, vswitchd.InterfaceTable)
	ctlRows := rows(tc, vswitchd.ControllerTable)

	out := make([]Bridge, 0, len(bridgeRows))
	for _, r := range bridgeRows {
		b, ok := r.(*vswitchd.Bridge)
		if !ok {
			continue
		}
		nb := Bridge{
			Name:          b.Name,
			DPID:          parseDPID(log, b),
			Ports:         map[string]Port{},
			FailMode:      deref(b.FailMode),
			DisableInBand: b.OtherConfig[disableInBandKey] == disableInBandVal,
		}
		if len(b.Protocols) > 0 {
			nb.Protocols = slices.Sorted(slices.Values(b.Protocols))
		}
		for _, cu := range b.Controller {
			c, ok := ctlRows[cu].(*vswitchd.Controller)
			if !ok {
				continue
			}
			nb.Controllers = append(nb.Controllers, Controller{
				Target:         c.Target,
				ConnectionMode: deref(c.ConnectionMode),
				MaxBackoff:     derefInt(c.MaxBackoff),
			})
		}
		slices.SortFunc(nb.Controllers, func(a, b Controller) int { return strings.Compare(a.Target, b.Target) })
		for _, pu := range b.Ports {
			p, ok := portRows[pu].(*vswitchd.Port)
			if !ok {
				continue
			}
			for _, iu := range p.Interfaces {
				ifc, ok := ifaceRows[iu].(*vswitchd.Interface)
				if !ok {
					continue
				}
				np := Port{
					Name:        ifc.Name,
					OFPort:      ofport(ifc.Ofport),
					AttachedMAC: parseMAC(log, ifc.Name, "external_ids:attached-mac", ifc.ExternalIDs["attached-mac"]),
					MACInUse:    parseMAC(log, ifc.Name, "mac_in_use", deref(ifc.MACInUse)),
					Type:        ifc.Type,
					MTU:         derefInt(ifc.MTU),
				}
				if len(ifc.Options) > 0 {
					np.Options = maps.Clone(ifc.Options)
				}
				nb.Ports[ifc.Name] = np
			}
		}
		if local, ok := nb.Ports[nb.Name]; ok && local.Type == "internal" {
			nb.LocalMTU = local.MTU
		}
		out = append(out, nb)
	}
	slices.SortFunc(out, func(a, b Bridge) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func rows(tc *cache.TableCache, table string) map[string]model.Model {
	rc := tc.Table(table)
	if rc == nil {
		return nil
	}
	return rc.RowsShallow()
}

func parseDPID(log *zap.Logger, b *vswitchd.Bridge) uint64 {
	if b.DatapathID == nil || *b.DatapathID == "" {
		return 0
	}
	v, err := strconv.ParseUint(*b.DatapathID, 16, 64)
	if err != nil {
		log.Debug("ignoring malformed datapath_id", zap.String("bridge", b.Name), zap.String("datapath_id", *b.DatapathID))
		return 0
	}
	return v
}

func ofport(p *int) int32 {
	if p == nil {
		return 0
	}
	return int32(*p)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func derefInt(i *int) int {
	if i == nil {
		return 0
	}
	return *i
}

func parseMAC(log *zap.Logger, iface, column, s string) net.HardwareAddr {
	if s == "" {
		return nil
	}
	mac, err := net.ParseMAC(s)
	if err != nil || len(mac) != 6 {
		log.Debug("ignoring malformed MAC", zap.String("interface", iface), zap.String("column", column), zap.String("value", s))
		return nil
	}
	return mac
}

func equalBridges(a, b []Bridge) bool {
	return slices.EqualFunc(a, b, equalBridge)
}

func equalBridge(a, b Bridge) bool {
	if a.Name != b.Name || a.DPID != b.DPID || a.FailMode != b.FailMode || a.DisableInBand != b.DisableInBand ||
		a.LocalMTU != b.LocalMTU || !slices.Equal(a.Protocols, b.Protocols) || !slices.Equal(a.Controllers, b.Controllers) ||
		len(a.Ports) != len(b.Ports) {
		return false
	}
	for name, pa := range a.Ports {
		pb, ok := b.Ports[name]
		if !ok || pa.Name != pb.Name || pa.OFPort != pb.OFPort || pa.Type != pb.Type || pa.MTU != pb.MTU ||
			!bytes.Equal(pa.AttachedMAC, pb.AttachedMAC) || !bytes.Equal(pa.MACInUse, pb.MACInUse) ||
			!maps.Equal(pa.Options, pb.Options) {
			return false
		}
	}
	return true
}

func cloneBridges(in []Bridge) []Bridge {
	if in == nil {
		return nil
	}
	out := make([]Bridge, len(in))
	for i, b := range in {
		nb := b
		nb.Protocols = slices.Clone(b.Protocols)
		nb.Controllers = slices.Clone(b.Controllers)
		nb.Ports = make(map[string]Port, len(b.Ports))
		for k, p := range b.Ports {
			p.AttachedMAC = slices.Clone(p.AttachedMAC)
			p.MACInUse = slices.Clone(p.MACInUse)
			p.Options = maps.Clone(p.Options)
			nb.Ports[k] = p
		}
		out[i] = nb
	}
	return out
}

// backoff is a jittered exponential backoff: min, 2·min, … up to max, each
// delay scaled by a random factor in [0.8, 1.2).
type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) reset() { b.cur = 0 }

func (b *backoff) next() time.Duration {
	switch {
	case b.cur == 0:
		b.cur = b.min
	case b.cur < b.max:
		b.cur = min(2*b.cur, b.max)
	}
	return time.Duration(float64(b.cur) * (0.8 + 0.4*rand.Float64()))
}
