package ovsdb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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
}

// Bridge is one OVS Bridge with every Interface of every one of its Ports.
type Bridge struct {
	Name string
	// DPID is the bridge's datapath_id, 0 until ovs-vswitchd has set it.
	DPID uint64
	// Ports holds every Interface of every Port of the bridge, keyed by
	// interface name.
	Ports map[string]Port
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
}

// NewMonitor returns a Monitor for the OVSDB server at endpoint (see
// ParseEndpoint). onChange, which may be nil, is called from Run's goroutine,
// never concurrently with itself, with the full current set of bridges
// (sorted by name): once after the first initial dump, and then whenever a
// bridge appears, disappears or changes its datapath ID, or a port appears,
// disappears or changes its ofport or MACs. It is not called for other
// changes, nor when a re-dump after a reconnect finds nothing changed. The
// slice passed to onChange belongs to the callee. An ssl: endpoint needs
// WithTLS among opts.
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
	dbModel, err := databaseModel(&vswitchd.Bridge{}, &vswitchd.Port{}, &vswitchd.Interface{})
	if err != nil {
		return fmt.Errorf("ovsdb monitor %s: %w", ep, err)
	}
	if !m.running.CompareAndSwap(false, true) {
		return fmt.Errorf("ovsdb monitor %s: already running", ep)
	}
	defer m.running.Store(false)

	bo := backoff{min: backoffMin, max: backoffMax}
	failures := 0
	for {
		start := time.Now()
		dumped, err := m.session(ctx, ep, dbModel)
		m.connected.Store(false)
		if ctx.Err() != nil {
			m.log.Debug("ovsdb monitor stopped")
			return nil
		}
		if dumped {
			bo.reset()
			failures = 0
			m.log.Warn("ovsdb connection lost, reconnecting", zap.Error(err),
				zap.Duration("up", time.Since(start)))
		} else {
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

	br, pt, ifc := &vswitchd.Bridge{}, &vswitchd.Port{}, &vswitchd.Interface{}
	mon := c.NewMonitor(
		client.WithTable(br, &br.Name, &br.DatapathID, &br.Ports),
		client.WithTable(pt, &pt.Name, &pt.Interfaces),
		client.WithTable(ifc, &ifc.Name, &ifc.Ofport, &ifc.ExternalIDs, &ifc.MACInUse),
	)
	if _, err := c.Monitor(attemptCtx, mon); err != nil {
		return false, fmt.Errorf("monitoring Bridge/Port/Interface on %s: %w", ep, err)
	}
	m.connected.Store(true)
	m.log.Info("ovsdb connected and monitoring")
	m.publish(tc)

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

	out := make([]Bridge, 0, len(bridgeRows))
	for _, r := range bridgeRows {
		b, ok := r.(*vswitchd.Bridge)
		if !ok {
			continue
		}
		nb := Bridge{Name: b.Name, DPID: parseDPID(log, b), Ports: map[string]Port{}}
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
				nb.Ports[ifc.Name] = Port{
					Name:        ifc.Name,
					OFPort:      ofport(ifc.Ofport),
					AttachedMAC: parseMAC(log, ifc.Name, "external_ids:attached-mac", ifc.ExternalIDs["attached-mac"]),
					MACInUse:    parseMAC(log, ifc.Name, "mac_in_use", deref(ifc.MACInUse)),
				}
			}
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
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].DPID != b[i].DPID || len(a[i].Ports) != len(b[i].Ports) {
			return false
		}
		for name, pa := range a[i].Ports {
			pb, ok := b[i].Ports[name]
			if !ok || pa.Name != pb.Name || pa.OFPort != pb.OFPort ||
				!bytes.Equal(pa.AttachedMAC, pb.AttachedMAC) || !bytes.Equal(pa.MACInUse, pb.MACInUse) {
				return false
			}
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
		out[i] = Bridge{Name: b.Name, DPID: b.DPID, Ports: make(map[string]Port, len(b.Ports))}
		for k, p := range b.Ports {
			p.AttachedMAC = slices.Clone(p.AttachedMAC)
			p.MACInUse = slices.Clone(p.MACInUse)
			out[i].Ports[k] = p
		}
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
