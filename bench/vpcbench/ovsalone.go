package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/controller/engine"
	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// The single change's baseline: OVS alone. The bench sends the flow-mods
// vpcflow sends for a route entry add (then its delete) itself, over each
// bridge's management socket (as ovs-ofctl connects), with vpcflow's own
// OpenFlow code: one bundle a bridge, the bridges in parallel, each
// returning once OVS confirmed it, on the same tables in the same run.
// What vpcflow takes above it is its store (two fdatasyncs, the disk row),
// its computation and its HTTP.

// aloneOctet is the first octet of the baseline's route entries: flows
// that no object of vpcflow's has, added and deleted within a
// millisecond (a drift check that sees one deletes it; the baseline's
// delete then finds nothing, which OVS accepts).
const aloneOctet = 15

// ovsAloneLatency adds and deletes, one after the other, the flows of ops
// route entries as vpcflow would for the workload's route entry j (next
// hop host (j*7919)%n, as the single changes), timing each change.
func ovsAloneLatency(ctx context.Context, e *env, n, ops int) (add, del []time.Duration, err error) {
	changes := make([]map[uint64][]openflow.FlowMod, ops)
	for j := range changes {
		if changes[j], err = routeEntryMods(e.dpids, n, j); err != nil {
			return nil, nil, err
		}
	}
	sws, closeAll, err := dialBridges(ctx, e)
	if err != nil {
		return nil, nil, err
	}
	defer closeAll()
	apply := func(mods map[uint64][]openflow.FlowMod) (time.Duration, error) {
		t := time.Now()
		errs := make(chan error, len(mods))
		for dpid, ms := range mods {
			go func() { errs <- sws[dpid].Apply(ctx, ms) }()
		}
		var first error
		for range mods {
			if err := <-errs; err != nil && first == nil {
				first = err
			}
		}
		return time.Since(t), first
	}
	// Each add is deleted at once, so that no baseline flow lives long
	// enough for a drift check of vpcflow's to find it; the bench's own
	// collector is held off while timing, as for vpcflow's changes.
	runtime.GC()
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	for j, mods := range changes {
		d, err := apply(mods)
		if err != nil {
			return nil, nil, fmt.Errorf("OVS alone: route entry add %d: %w", j, err)
		}
		add = append(add, d)
		if d, err = apply(deletesOf(mods)); err != nil {
			return nil, nil, fmt.Errorf("OVS alone: route entry delete %d: %w", j, err)
		}
		del = append(del, d)
	}
	return add, del, nil
}

// routeEntryMods are the flow-mods, per dpid, that adding route entry
// aloneOctet.j.0/24 via host (j*7919)%n makes vpcflow send: the
// difference between the tables vpcflow's pipeline wants with and
// without it (with one host on every bridge, so that every bridge has
// the VPC).
func routeEntryMods(dpids []topology.DPID, n, j int) (map[uint64][]openflow.FlowMod, error) {
	var vsws []topology.VSwitch
	var hosts []topology.Host
	next := (j * 7919) % n
	for b := range dpids {
		vsws = append(vsws, benchVSwitchObj(b))
		if i := b * hostsPerBridge; i != next && i < n {
			hosts = append(hosts, hostObj(i, dpids))
		}
	}
	hosts = append(hosts, hostObj(next, dpids))
	for i := range hosts {
		hosts[i].ID = uint32(i + 1)
	}
	sub := topology.Subnet{ID: uint32(j + 1), VPC: benchVPC, Name: fmt.Sprintf("alone%d", j),
		CIDR: netip.MustParsePrefix(subnetCIDR(aloneOctet, j)), Host: hostName(next)}
	without, err := referenceTables(benchVPCObj(), vsws, hosts, nil)
	if err != nil {
		return nil, err
	}
	with, err := referenceTables(benchVPCObj(), vsws, hosts, []topology.Subnet{sub})
	if err != nil {
		return nil, err
	}
	// The difference as vpcflow's reconcile computes it (a route entry
	// only adds flows of its own, which deletesOf takes back).
	out := map[uint64][]openflow.FlowMod{}
	for dpid, fs := range with {
		desired := engine.DesiredTable{}
		for _, f := range fs {
			desired[f.Key()] = f
		}
		for _, c := range engine.DiffTable(pipeline.Default(), desired, without[dpid]) {
			if c.Delete {
				return nil, fmt.Errorf("OVS alone: route entry %s deletes %s", sub.CIDR, c.Flow.String())
			}
			out[dpid] = append(out[dpid], openflow.FlowMod{Command: openflow.FlowAdd, Flow: c.Flow})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("OVS alone: route entry %s makes no flows", sub.CIDR)
	}
	return out, nil
}

// deletesOf are the strict deletes of the flows mods add.
func deletesOf(mods map[uint64][]openflow.FlowMod) map[uint64][]openflow.FlowMod {
	out := make(map[uint64][]openflow.FlowMod, len(mods))
	for dpid, ms := range mods {
		for _, m := range ms {
			out[dpid] = append(out[dpid], openflow.FlowMod{Command: openflow.FlowDeleteStrict, Flow: m.Flow})
		}
	}
	return out
}

// dialBridges connects to every bench bridge's management socket and
// makes each an openflow.Switch, by dpid; closeAll ends them.
func dialBridges(ctx context.Context, e *env) (map[uint64]*openflow.Switch, func(), error) {
	ctx, cancel := context.WithCancel(ctx)
	ln := &dialedListener{conns: make(chan net.Conn, len(e.dpids)), done: make(chan struct{})}
	h := &collectSwitches{got: make(chan *openflow.Switch, len(e.dpids))}
	srv := openflow.NewServer(zap.NewNop(), h, openflow.ServerOptions{})
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ctx, ln)
	}()
	closeAll := func() {
		cancel()
		<-served
	}
	for b := range e.dpids {
		var d net.Dialer
		c, err := d.DialContext(ctx, "unix", strings.TrimPrefix(e.target(b), "unix:"))
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("OVS alone: %w", err)
		}
		ln.conns <- c
	}
	sws := map[uint64]*openflow.Switch{}
	timeout := time.After(10 * time.Second)
	for len(sws) < len(e.dpids) {
		select {
		case sw := <-h.got:
			sws[sw.DPID()] = sw
		case <-timeout:
			closeAll()
			return nil, nil, fmt.Errorf("OVS alone: %d of %d bridges finished the OpenFlow handshake in 10 s", len(sws), len(e.dpids))
		}
	}
	return sws, closeAll, nil
}

// dialedListener hands openflow.Server connections the bench dialed.
type dialedListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *dialedListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *dialedListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *dialedListener) Addr() net.Addr { return &net.UnixAddr{Name: "vpcbench", Net: "unix"} }

// collectSwitches hands on each connected switch and holds it until its
// connection ends.
type collectSwitches struct{ got chan *openflow.Switch }

func (h *collectSwitches) SwitchConnected(ctx context.Context, sw *openflow.Switch) {
	h.got <- sw
	<-ctx.Done()
}

func (h *collectSwitches) SwitchDisconnected(*openflow.Switch) {}
