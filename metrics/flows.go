package metrics

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// Source is what the FlowCollector reads at scrape time: the controller.
type Source interface {
	// EachFlow calls fn with every reconciled switch's flows and their
	// counters as the dumps arrive (fs is reused).
	EachFlow(ctx context.Context, fn func(dpid uint64, fs *openflow.FlowStats) error) error
	// Read runs fn with the current topology.
	Read(fn func(st *topology.State))
	// Pipeline declares the tables, cookies and drop reasons.
	Pipeline() *pipeline.Pipeline
	// TooBigByHost counts frames too big for the underlay by host id
	// (these drops are counted from packet-ins, not flow stats).
	TooBigByHost() map[uint32]uint64
}

// FlowOptions tune the FlowCollector.
type FlowOptions struct {
	// Wait is how long a scrape waits for fresh flow statistics (default
	// 50ms). A dump that takes longer (hundreds of thousands of flows)
	// goes on in the background and the scrape answers with the last
	// complete one; vpcflow_flow_stats_age_seconds says how old it is.
	Wait time.Duration
	// Timeout bounds one dump of every switch (default 30s).
	Timeout time.Duration
}

// FlowCollector reads the switches' flow statistics when Prometheus
// scrapes and turns them into counters in VPC terms: the cookie of each
// flow names its owner (host, route entry, vSwitch, chassis, pipeline)
// and, for a drop, the reason; the topology maps the owner's id to its
// VPC and vSwitch. Nothing is counted twice: the switches' own counters
// are the only ones (too_big, which OVS cannot tell apart, comes from the
// controller's packet-in count).
type FlowCollector struct {
	src  Source
	log  *zap.Logger
	opts FlowOptions

	mu      sync.Mutex
	last    *flowSnapshot
	running chan struct{} // closed when the refresh under way ends; nil: none

	objects, flows, dropped, droppedBytes, forwarded, forwardedBytes *prometheus.Desc
	age, refresh, refreshErrors                                      *prometheus.Desc
	errCount                                                         uint64 // under mu
}

// NewFlowCollector reads src at scrape time.
func NewFlowCollector(src Source, log *zap.Logger, opts FlowOptions) *FlowCollector {
	if opts.Wait <= 0 {
		opts.Wait = 50 * time.Millisecond
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &FlowCollector{src: src, log: log, opts: opts,
		objects: prometheus.NewDesc("vpcflow_objects", "Objects in the topology, by kind.", []string{"kind"}, nil),
		flows: prometheus.NewDesc("vpcflow_flows", "Flows installed in each switch, by table (as the switch reports them).",
			[]string{"dpid", "table", "table_name"}, nil),
		dropped: prometheus.NewDesc("vpcflow_dropped_packets_total",
			"Packets the pipeline dropped, by VPC, vSwitch and reason (from the drop flows' counters; vpc and vswitch are empty for drops before a packet is classified).",
			[]string{"vpc", "vswitch", "reason"}, nil),
		droppedBytes: prometheus.NewDesc("vpcflow_dropped_bytes_total", "Bytes the pipeline dropped, by VPC, vSwitch and reason.",
			[]string{"vpc", "vswitch", "reason"}, nil),
		forwarded: prometheus.NewDesc("vpcflow_forwarded_packets_total",
			"Packets routed by L3Forwarding on the sending switch, by the VPC and vSwitch of the VM they were sent to.",
			[]string{"vpc", "vswitch"}, nil),
		forwardedBytes: prometheus.NewDesc("vpcflow_forwarded_bytes_total", "Bytes routed by L3Forwarding, by destination VPC and vSwitch.",
			[]string{"vpc", "vswitch"}, nil),
		age: prometheus.NewDesc("vpcflow_flow_stats_age_seconds",
			"Age of the flow statistics this scrape reports (0 when read during the scrape).", nil, nil),
		refresh: prometheus.NewDesc("vpcflow_flow_stats_refresh_duration_seconds",
			"How long the last dump of every switch's flow statistics took.", nil, nil),
		refreshErrors: prometheus.NewDesc("vpcflow_flow_stats_errors_total",
			"Dumps of flow statistics that failed for some switch.", nil, nil),
	}
}

// Describe sends every descriptor.
func (c *FlowCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.objects, c.flows, c.dropped, c.droppedBytes, c.forwarded,
		c.forwardedBytes, c.age, c.refresh, c.refreshErrors} {
		ch <- d
	}
}

// Collect reads the topology and the (fresh, or last complete) flow
// statistics.
func (c *FlowCollector) Collect(ch chan<- prometheus.Metric) {
	c.src.Read(func(st *topology.State) {
		for kind, n := range st.CountByKind() {
			ch <- prometheus.MustNewConstMetric(c.objects, prometheus.GaugeValue, float64(n), kind)
		}
	})
	done := c.startRefresh()
	t := time.NewTimer(c.opts.Wait)
	select {
	case <-done:
	case <-t.C:
	}
	t.Stop()
	c.mu.Lock()
	snap, errs := c.last, c.errCount
	c.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(c.refreshErrors, prometheus.CounterValue, float64(errs))
	if snap == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, time.Since(snap.at).Seconds())
	ch <- prometheus.MustNewConstMetric(c.refresh, prometheus.GaugeValue, snap.took.Seconds())
	for k, n := range snap.flows {
		ch <- prometheus.MustNewConstMetric(c.flows, prometheus.GaugeValue, float64(n),
			topology.DPID(k.dpid).String(), strconv.Itoa(int(k.table)), snap.tableNames[k.table])
	}
	for k, v := range snap.dropped {
		ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(v.packets), k.vpc, k.vswitch, k.reason)
		ch <- prometheus.MustNewConstMetric(c.droppedBytes, prometheus.CounterValue, float64(v.bytes), k.vpc, k.vswitch, k.reason)
	}
	for k, v := range snap.forwarded {
		ch <- prometheus.MustNewConstMetric(c.forwarded, prometheus.CounterValue, float64(v.packets), k.vpc, k.vswitch)
		ch <- prometheus.MustNewConstMetric(c.forwardedBytes, prometheus.CounterValue, float64(v.bytes), k.vpc, k.vswitch)
	}
}

// slowRefresh and refreshDuty: a dump of every switch that took
// slowRefresh or longer is not started again until refreshDuty times its
// duration has passed since it ended; the scrapes meanwhile report the
// last one (vpcflow_flow_stats_age_seconds says how old). A switch
// answers a dump on its main thread, and at 100,000 hosts one took ~2 s:
// a scrape every 2 s (the topology page's counters) kept the switches
// dumping all the time, and a change waited for a dump's chunk (issue 17).
// A quick dump (thousands of flows) runs at every scrape.
const (
	slowRefresh = 100 * time.Millisecond
	refreshDuty = 10
)

// startRefresh starts a dump unless one is under way or a slow one ended
// too recently, and returns the channel closed when it ends (closed
// already when none is started).
func (c *FlowCollector) startRefresh() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running != nil {
		return c.running
	}
	if l := c.last; l != nil && l.took >= slowRefresh && time.Since(l.at) < refreshDuty*l.took {
		done := make(chan struct{})
		close(done)
		return done
	}
	done := make(chan struct{})
	c.running = done
	go func() {
		defer close(done)
		snap, err := c.read()
		c.mu.Lock()
		defer c.mu.Unlock()
		c.running = nil
		if err != nil {
			c.errCount++
			c.log.Warn("reading flow statistics for metrics", zap.Error(err))
		}
		if snap != nil {
			c.last = snap
			c.log.Debug("flow statistics read", zap.Duration("took", snap.took), zap.Time("started", snap.started))
		}
	}()
	return done
}

type tableKey struct {
	dpid  uint64
	table uint8
}

type place struct{ vpc, vswitch string }

type dropKey struct {
	place
	reason string
}

type count struct{ packets, bytes uint64 }

// flowSnapshot is one dump, summed.
type flowSnapshot struct {
	at, started time.Time
	took        time.Duration
	tableNames  map[uint8]string
	flows       map[tableKey]int
	dropped     map[dropKey]count
	forwarded   map[place]count
}

// read dumps every switch and sums the counters by VPC, vSwitch and reason.
func (c *FlowCollector) read() (*flowSnapshot, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.Timeout)
	defer cancel()
	start := time.Now()
	p := c.src.Pipeline()
	snap := &flowSnapshot{started: start, tableNames: map[uint8]string{}, flows: map[tableKey]int{},
		dropped: map[dropKey]count{}, forwarded: map[place]count{}}
	var routing uint8
	for _, t := range p.Tables() {
		snap.tableNames[t.ID] = t.Name
		if t.Name == "L3Forwarding" {
			routing = t.ID
		}
	}
	reasons := map[pipeline.DropReason]string{}
	for _, r := range p.DropReasons() {
		reasons[r.Reason] = r.Name
	}
	// Sum by owner first, without the store: holding its read lock over a
	// dump of a million flows made every change wait (issue 17: the
	// single-change p99 at 100,000 hosts was the scrape's refresh). The
	// dump is summed as it arrives, never held: a decoded million-flow
	// dump was the next tail (the GC marking it).
	type ownerDrop struct {
		owner  pipeline.ParsedCookie
		reason string
	}
	drops := map[ownerDrop]count{}
	fwd := map[pipeline.ParsedCookie]count{}
	seen := 0
	err := c.src.EachFlow(ctx, func(dpid uint64, fs *openflow.FlowStats) error {
		seen++
		snap.flows[tableKey{dpid, fs.Flow.Table}]++
		ck := pipeline.ParseCookie(fs.Flow.Cookie)
		if !ck.Ours {
			return nil
		}
		switch {
		case ck.Reason != pipeline.DropNone && len(fs.Flow.Actions) == 0:
			k := ownerDrop{pipeline.ParsedCookie{Ours: true, Owner: ck.Owner, ID: ck.ID}, reasons[ck.Reason]}
			v := drops[k]
			drops[k] = count{v.packets + fs.Packets, v.bytes + fs.Bytes}
		case ck.Reason == pipeline.DropNone && fs.Flow.Table == routing && routing != 0 && len(fs.Flow.Actions) > 0:
			k := pipeline.ParsedCookie{Ours: true, Owner: ck.Owner, ID: ck.ID}
			v := fwd[k]
			fwd[k] = count{v.packets + fs.Packets, v.bytes + fs.Bytes}
		}
		return nil
	})
	for id, n := range c.src.TooBigByHost() {
		k := ownerDrop{pipeline.ParsedCookie{Ours: true, Owner: pipeline.OwnerHost, ID: id}, reasons[pipeline.DropTooBig]}
		v := drops[k]
		drops[k] = count{v.packets + n, v.bytes}
	}
	// Then name the owners, a few hundred per read of the store, so that
	// a change waits for one chunk at most.
	names := newNamer()
	dropKeys := make([]ownerDrop, 0, len(drops))
	for k := range drops {
		dropKeys = append(dropKeys, k)
	}
	for part := range slices.Chunk(dropKeys, namesPerRead) {
		c.src.Read(func(st *topology.State) {
			names.st = st
			for _, k := range part {
				v, dk := drops[k], dropKey{names.of(k.owner), k.reason}
				old := snap.dropped[dk]
				snap.dropped[dk] = count{old.packets + v.packets, old.bytes + v.bytes}
			}
		})
	}
	fwdKeys := make([]pipeline.ParsedCookie, 0, len(fwd))
	for k := range fwd {
		fwdKeys = append(fwdKeys, k)
	}
	for part := range slices.Chunk(fwdKeys, namesPerRead) {
		c.src.Read(func(st *topology.State) {
			names.st = st
			for _, k := range part {
				v, p := fwd[k], names.of(k)
				old := snap.forwarded[p]
				snap.forwarded[p] = count{old.packets + v.packets, old.bytes + v.bytes}
			}
		})
	}
	snap.at = time.Now()
	snap.took = snap.at.Sub(start)
	if err != nil && seen == 0 {
		return nil, err
	}
	return snap, err
}

// namer maps a cookie's owner to the VPC and vSwitch it belongs to,
// caching what it looked up.
type namer struct {
	st       *topology.State
	vswitchs map[uint32]place
	hosts    map[uint32]place
}

// newNamer returns a namer; st is set before each use (the cache spans
// several reads of the store).
func newNamer() *namer {
	return &namer{vswitchs: map[uint32]place{}, hosts: map[uint32]place{}}
}

// namesPerRead is how many owners are named per read of the store.
const namesPerRead = 256

func (n *namer) host(id uint32) place {
	if p, ok := n.hosts[id]; ok {
		return p
	}
	var p place
	if h, ok := n.st.HostByID(id); ok {
		p = place{h.VPC, h.VSwitch}
	}
	n.hosts[id] = p
	return p
}

// of is the VPC and vSwitch of a flow's owner: a host's own; a route
// entry's VPC and its next hop's vSwitch; a vSwitch's. Pipeline defaults
// and chassis flows belong to no VPC.
func (n *namer) of(ck pipeline.ParsedCookie) place {
	switch ck.Owner {
	case pipeline.OwnerHost:
		return n.host(ck.ID)
	case pipeline.OwnerSubnet:
		if s, ok := n.st.SubnetByID(ck.ID); ok {
			if h, ok := n.st.Host(s.VPC, s.Host); ok {
				return n.host(h.ID)
			}
			return place{vpc: s.VPC}
		}
	case pipeline.OwnerVSwitch:
		if p, ok := n.vswitchs[ck.ID]; ok {
			return p
		}
		var p place
		if w, ok := n.st.VSwitchByID(ck.ID); ok {
			p = place{w.VPC, w.Name}
		}
		n.vswitchs[ck.ID] = p
		return p
	}
	return place{}
}
