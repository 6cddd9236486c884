// Package controller is vpcflow's runtime: it commits changes to the
// store, feeds the pure engine (package engine) with a snapshot of the
// topology and the switches' ports, queues the resulting flow changes per
// switch, talks to OVSDB and waits for switches to confirm. What the
// flows are is decided in package pipeline; how they are diffed and
// shared in package engine.
package controller

import (
	"context"
	"crypto/tls"
	"errors"
	"net/netip"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/controller/engine"
	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/internal/paged"
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
	// CertificateSHA256 is the SHA-256 (hex) of the TLS certificate the
	// switch connected with, "" over plain TCP.
	CertificateSHA256() string
	DumpFlows(ctx context.Context) ([]openflow.FlowStats, error)
	// DumpTable returns the flows of one table.
	DumpTable(ctx context.Context, table uint8) ([]openflow.FlowStats, error)
	// DumpCookie returns the flows of table (openflow.TableAll: every
	// table) whose cookie equals cookie under mask; an exact cookie is
	// found in OVS's cookie index.
	DumpCookie(ctx context.Context, table uint8, cookie, mask uint64) ([]openflow.FlowStats, error)
	// TableStats returns the number of flows in every table.
	TableStats(ctx context.Context) ([]openflow.TableStats, error)
	// ApplySeq applies a batch of flow-mods all or nothing (one bundle),
	// reading them one at a time as it sends them: a batch is never
	// held as Go values (engine.PackedChanges).
	ApplySeq(ctx context.Context, mods openflow.FlowMods) error
	Close()
	// Meters (see meters.go): the pipeline's meters are switch state
	// like flows.
	DumpMeters(ctx context.Context, id uint32) ([]openflow.MeterConfig, error)
	AddMeter(ctx context.Context, m openflow.MeterConfig) error
	ModifyMeter(ctx context.Context, m openflow.MeterConfig) error
	MeterStats(ctx context.Context, id uint32) ([]openflow.MeterStats, error)
}

// Options tune the controller.
type Options struct {
	// OVSDBEndpoints are the OVSDB servers whose first snapshot must arrive
	// before any switch is reconciled: until the port map is known, a
	// reconnecting switch keeps the flows it has (OVN's "wait before
	// clearing"), so a controller restart never removes a correct flow.
	OVSDBEndpoints []string
	// PushTimeout bounds how long one switch may take to confirm a change,
	// plus flowModAllowance for each of the change's flow-mods; a switch
	// that does not is disconnected and reconciled when it reconnects.
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
	// AliyunServiceIP is the address VMs reach the Aliyun API at, steered
	// to the listener behind the bridges' metadata ports
	// (pipeline.AliyunService); the zero Addr when it is not served there.
	AliyunServiceIP netip.Addr
	// Chassis configures chassis bridges through their OVSDB; nil uses
	// OVSDBChassis (the real OVSDB).
	Chassis ChassisConfigurer
	// DriftInterval is how often a connected switch's flows are checked
	// against the desired table and repaired (0: DefaultDriftInterval;
	// negative: never, only on reconnect).
	DriftInterval time.Duration
	// DumpSliceFlows is the most flows asked of a switch in one request
	// from one table by drift checks and the flow statistics: a bigger
	// table is read a slice by cookie at a time (0: DefaultDumpSliceFlows).
	DumpSliceFlows int
	// AllowFlush lets a reconciliation delete the flows of objects the
	// store does not know even when that is most of a switch's (an empty
	// or truncated store would otherwise be held back from wiping it).
	AllowFlush bool
	// Observer, when set, is told about flow pushes, reconciliations and
	// packet-ins (metrics).
	Observer Observer
	// Leadership, when set, makes this controller one replica of several
	// over a shared store (replicas.go): it writes to switches only while
	// SetRole says it leads, and follows the store's other writers.
	Leadership Leadership
}

// Controller reconciles switches with the topology.
type Controller struct {
	log     *zap.Logger
	store   *topology.Store
	opts    Options
	pipe    *pipeline.Pipeline
	chassis ChassisConfigurer

	// mu serializes recomputation, port-map changes, reconciliation and
	// queueing, so a switch's tables change in one order only. It is
	// never held while the store commits or while a switch is waited for.
	mu       sync.Mutex
	engine   *engine.Engine
	attached paged.Table[pipeline.Attachment] // host id → resolved attachment (paged by id)
	hostAt   hostsAt                          // resolved attachment → host id (for packet-ins)
	ports    *portIndex                       // interface → hosts attached (or waiting) there
	tooBig   *tooBigState
	punts    *puntState             // per-source budgets and vpcflow-counted drops (punts.go)
	switches map[uint64]*switchConn // connected switches, by dpid
	bridges  map[string][]ovsdb.Bridge

	portsReady     chan struct{}
	portsReadyOnce sync.Once
	seenEndpoints  map[string]bool
	wantEndpoints  map[string]bool // OVSDBs whose first port map gates reconciliation

	monitors    *monitorSet                      // set by Run
	lastChassis map[string]pipeline.ChassisPlace // as of the last recompute

	drift *driftBook // periodic drift checks, per dpid

	epStatus     map[string]ovsdb.EndpointStatus // OVSDB monitors' connection states
	chassisWatch map[string]*chassisWatch        // by chassis name
	pins         map[uint32]string               // bridge host id → the endpoint it was found on
	ambiguous    map[uint32]string               // bridge host id → candidates last warned about
	trace        *traceCache                     // indexes of desired tables for traces
	live         liveTraces                      // running live traces (livetrace.go)
	// lastMetadata are the metadata ports as of the last recompute.
	lastMetadata map[uint64]pipeline.MetadataPort
	uplinks      *uplinkState // router ARP (uplink.go)
	// release hands memory back to the OS after big batches.
	release *memRelease
	// rep is this controller's role among replicas (replicas.go).
	rep replicaState
}

// New builds a controller over store and computes the desired flows of
// everything already in it.
func New(log *zap.Logger, store *topology.Store, opts Options) *Controller {
	if opts.PushTimeout == 0 {
		opts.PushTimeout = DefaultPushTimeout
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
	// --ovsdb endpoints in the canonical form the store keeps (a host's
	// "ovsdb" is compared with them).
	eps := make([]string, len(opts.OVSDBEndpoints))
	for i, ep := range opts.OVSDBEndpoints {
		eps[i] = ep
		if canon, err := topology.ValidateOVSDB("ovsdb", ep); err == nil {
			eps[i] = canon
		}
	}
	opts.OVSDBEndpoints = eps
	if opts.DriftInterval == 0 {
		opts.DriftInterval = DefaultDriftInterval
	}
	if opts.DumpSliceFlows <= 0 {
		opts.DumpSliceFlows = DefaultDumpSliceFlows
	}
	c := &Controller{
		log:           log,
		store:         store,
		opts:          opts,
		pipe:          pipeline.Default(),
		chassis:       opts.Chassis,
		ports:         newPortIndex(),
		tooBig:        newTooBigState(),
		punts:         newPuntState(),
		switches:      map[uint64]*switchConn{},
		bridges:       map[string][]ovsdb.Bridge{},
		portsReady:    make(chan struct{}),
		seenEndpoints: map[string]bool{},
		wantEndpoints: map[string]bool{},
		lastChassis:   map[string]pipeline.ChassisPlace{},
		drift:         newDriftBook(),
		epStatus:      map[string]ovsdb.EndpointStatus{},
		chassisWatch:  map[string]*chassisWatch{},
		pins:          map[uint32]string{},
		ambiguous:     map[uint32]string{},
		trace:         newTraceCache(),
		uplinks:       newUplinkState(),
		release:       newMemRelease(store, log.Named("memory")),
	}
	if c.chassis == nil {
		c.chassis = &OVSDBChassis{Log: log.Named("chassis"), TLS: opts.OVSDBTLS}
	}
	c.engine = engine.New(c.pipe)
	c.rep.lead = opts.Leadership
	store.Subscribe(c.remoteChanged)
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
	// Nothing is installed from here: the changes are not sent anywhere;
	// switches get the desired table when they reconcile.
	c.store.Read(func(st *topology.State) { c.load(st) })
	c.release.after(0)
	c.mu.Unlock()
	return c
}

// Pipeline is the controller's pipeline.
func (c *Controller) Pipeline() *pipeline.Pipeline { return c.pipe }

// Read runs fn with the current topology.
func (c *Controller) Read(fn func(st *topology.State)) { c.store.Read(fn) }

// Apply validates and stores a change, then sends the flows it affects to
// every connected switch and returns once they confirmed them.
//
// The steps, each at its own layer: validate (store.Check); configure the
// OVSDB of chassis being created (only once the change is known to be
// valid); commit to the store (no controller lock held, so switch events
// go on), undoing the chassis setup if the store refuses; then, under the
// controller lock, feed the engine and queue the flow changes; and wait
// for the switches without any lock.
func (c *Controller) Apply(ctx context.Context, ops []topology.Op) ([]topology.Op, error) {
	if err := c.resolveBridgeHosts(ops); err != nil {
		return nil, err
	}
	undo, err := c.prepareChassis(ctx, ops)
	if err != nil {
		return nil, err
	}
	applied, err := c.store.Apply(ctx, ops)
	if err != nil {
		undo()
		return nil, err
	}
	c.mu.Lock()
	c.chassisOpsAfter(applied)
	var waits map[uint64]<-chan error
	c.store.Read(func(st *topology.State) {
		owners := c.pipe.Affected(st, applied)
		if c.leading() {
			waits = c.recomputeAndQueue(st, owners, removedOwners(applied))
			return
		}
		// The leader installs them; wait until it has (followerconfirm.go).
		waits = c.followerWaits(c.recompute(st, owners))
	})
	c.mu.Unlock()
	// A stored change that a switch did not confirm is an
	// *UnconfirmedError (status.go), returned with the applied ops.
	if err := c.waitConfirmed(ctx, waits); err != nil {
		return applied, err
	}
	return applied, nil
}

// snapshot is what the engine computes from. Caller holds c.mu and is
// inside store.Read.
func (c *Controller) snapshot(st *topology.State) *pipeline.Snapshot {
	return &pipeline.Snapshot{
		Topo:        st,
		Ports:       portMap{bridges: c.bridges, st: st, pins: c.pins},
		Chassis:     chassisPlaces(st, c.bridges),
		UnderlayMTU: c.opts.UnderlayMTU,
		// The bridges' metadata ports (metadataports.go).
		MetadataPorts: metadataPorts(c.bridges),
		Probes:        c.live.probes,
		// Where VMs reach the Aliyun API, if it is served behind them.
		AliyunServiceIP: c.opts.AliyunServiceIP,
	}
}

// recompute feeds owners to the engine and returns the flow changes per
// datapath; it also records where the recomputed hosts are attached (for
// packet-ins and port events). When the set of resolved chassis changed,
// every owner the engine knows is recomputed as well. Caller holds c.mu
// and is inside store.Read.
func (c *Controller) recompute(st *topology.State, owners []pipeline.Owner) map[uint64]*engine.PackedChanges {
	snap, owners := c.recomputed(st, owners)
	changes := c.engine.UpdatePacked(snap, owners)
	c.trace.apply(changes)
	c.trackHosts(snap, owners)
	return changes
}

// recomputeAndQueue is recompute with the changes queued on the connected
// switches as the engine computes them, part by part
// (engine.UpdateParts): a switch takes a bulk load's (or a cascade
// delete's) first flow-mods while the rest are computed, all in one
// bundle (engine.PackedParts). removed are the owners of the objects the
// batch deleted. A batch the engine computes in one part is queued as
// recompute's changes are. Caller holds c.mu and is inside store.Read.
func (c *Controller) recomputeAndQueue(st *topology.State, owners []pipeline.Owner, removed map[pipeline.Owner]bool) map[uint64]<-chan error {
	snap, owners := c.recomputed(st, owners)
	streams := map[uint64]engine.PackedParts{}
	waits := map[uint64]<-chan error{}
	computed := false
	defer func() {
		for _, p := range streams {
			if computed {
				p.Close()
			} else {
				// The computation panicked: the switch discards what it
				// was sent and is reconciled (switchconn.go).
				p.Abort(errors.New("computing the rest of the batch failed"))
			}
		}
	}()
	c.engine.UpdateParts(snap, owners, removed, func(part map[uint64]*engine.PackedChanges, more bool) {
		c.trace.apply(part)
		if len(streams) == 0 && !more {
			waits = c.queueChanges(part) // the batch in one part
			return
		}
		for dpid, cs := range part {
			p, ok := streams[dpid]
			if !ok {
				p = engine.NewPackedParts()
				w, ok := c.push(dpid, p)
				if !ok {
					continue // it gets them when it reconciles
				}
				streams[dpid], waits[dpid] = p, w
			}
			p.Add(cs)
		}
	})
	computed = true
	c.trackHosts(snap, owners)
	return waits
}

// removedOwners are the owners of the objects ops delete (a cascade's
// dependents included): they have no flows once ops are applied. Object
// IDs are never handed out again, so none of them comes back in the
// same batch.
func removedOwners(ops []topology.Op) map[pipeline.Owner]bool {
	out := map[pipeline.Owner]bool{}
	for _, op := range ops {
		if op.Kind != topology.OpDelete {
			continue
		}
		if o, ok := pipeline.OwnerOf(op.Obj); ok {
			out[o] = true
		}
	}
	return out
}

// recomputed is the snapshot to recompute owners from, and the owners:
// every owner the engine knows as well when the set of resolved chassis
// or of metadata ports changed. Caller holds c.mu and is inside
// store.Read.
func (c *Controller) recomputed(st *topology.State, owners []pipeline.Owner) (*pipeline.Snapshot, []pipeline.Owner) {
	snap := c.snapshot(st)
	if !sameChassisPlaces(snap.Chassis, c.lastChassis) || !sameMetadataPorts(snap.MetadataPorts, c.lastMetadata) {
		owners = append(append(owners, c.engine.Owners()...), pipeline.AllOwners(st)...)
	}
	c.lastChassis, c.lastMetadata = snap.Chassis, snap.MetadataPorts
	return snap, owners
}

// trackHosts records where the host owners among owners are attached.
// Caller holds c.mu.
func (c *Controller) trackHosts(snap *pipeline.Snapshot, owners []pipeline.Owner) {
	for _, o := range owners {
		if o.Kind == pipeline.OwnerHost {
			c.trackHost(snap, o)
		}
	}
}

// load fills the engine with every owner's flows at start-up, without
// producing changes (nothing is installed from here), and records where
// the hosts are attached. Caller holds c.mu and is inside store.Read.
func (c *Controller) load(st *topology.State) {
	snap := c.snapshot(st)
	c.lastChassis, c.lastMetadata = snap.Chassis, snap.MetadataPorts
	owners := pipeline.AllOwners(st)
	c.engine.Load(snap, owners)
	c.trackHosts(snap, owners)
}

// trackHost records where host owner o is attached, or that it is not (or
// is gone). Caller holds c.mu.
func (c *Controller) trackHost(snap *pipeline.Snapshot, o pipeline.Owner) {
	if old, had := c.attached.Get(o.ID); had {
		if id, _ := c.hostAt.get(old); id == o.ID {
			c.hostAt.del(old)
		}
		c.attached.Delete(o.ID)
	}
	h, ok := snap.Topo.HostByID(o.ID)
	if !ok {
		c.ports.set(o, portKey{}, false)
		delete(c.pins, o.ID)
		delete(c.ambiguous, o.ID)
		return
	}
	c.pinBridgeHost(snap, h)
	k, named := portKeyOf(snap.Topo, h)
	c.ports.set(o, k, named)
	if at, ok := snap.Ports.Attachment(h); ok {
		c.attached.Set(o.ID, at)
		c.hostAt.set(at, h.ID)
	}
}

// queueChanges queues changes on the connected switches, in the order they
// were computed. Switches that are not connected get them when they
// reconcile. Caller holds c.mu.
func (c *Controller) queueChanges(changes map[uint64]*engine.PackedChanges) map[uint64]<-chan error {
	waits := map[uint64]<-chan error{}
	if !c.leading() {
		return waits // the leader sends them (replicas.go)
	}
	for dpid, cs := range changes {
		if cs.Len() == 0 {
			continue
		}
		if w, ok := c.push(dpid, cs); ok {
			waits[dpid] = w
		}
	}
	return waits
}

// push queues mods on switch dpid, if it is connected (ok false: it gets
// them when it reconciles). Caller holds c.mu.
func (c *Controller) push(dpid uint64, mods openflow.FlowMods) (<-chan error, bool) {
	sc, ok := c.switches[dpid]
	if !ok {
		return nil, false
	}
	return sc.enqueue(&pushJob{mods: mods, timeout: c.opts.PushTimeout}), true
}

// DesiredFlows is the full table vpcflow wants on dpid, sorted, for tools
// (`ovs-ofctl add-flows` files, tests).
func (c *Controller) DesiredFlows(dpid uint64) []openflow.Flow {
	c.mu.Lock()
	t := c.engine.Desired(dpid)
	c.mu.Unlock()
	return engine.Sorted(t)
}

// dpidString is the dpid as `ovs-ofctl show` prints it.
func dpidString(dpid uint64) string { return topology.DPID(dpid).String() }
