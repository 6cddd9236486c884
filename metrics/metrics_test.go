package metrics

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/vpcflow/vpcflow/api"
	"github.com/vpcflow/vpcflow/controller"
	"github.com/vpcflow/vpcflow/controller/controllertest"
	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// rig: a controller over a real store, with the metrics hooked in as
// `vpcflow serve` does, and an in-memory switch connected.
type rig struct {
	t    *testing.T
	ctx  context.Context
	m    *Metrics
	c    *controller.Controller
	dp   *controllertest.Datapath
	objs map[string]topology.Object
}

func newRig(t *testing.T) *rig {
	t.Helper()
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	st, err := topology.Open(context.Background(), t.TempDir(), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	m := New()
	c := controller.New(log, st, controller.Options{Chassis: &controllertest.Chassis{}, Observer: m.Controller()})
	if err := m.Register(NewFlowCollector(c, log, FlowOptions{Wait: 5 * time.Second})); err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, ctx: ctx, m: m, c: c, dp: controllertest.NewDatapath(1), objs: map[string]topology.Object{}}
	go func() { c.Serve(ctx, r.dp); c.Forget(r.dp) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(c.Switches()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("switch not reconciled")
		}
		time.Sleep(time.Millisecond)
	}
	return r
}

func (r *rig) apply(os ...topology.Object) {
	r.t.Helper()
	ops := make([]topology.Op, len(os))
	for i, o := range os {
		ops[i] = topology.Create(o)
	}
	out, err := r.c.Apply(r.ctx, ops)
	if err != nil {
		r.t.Fatal(err)
	}
	for _, op := range out {
		r.objs[topology.KindOf(op.Obj)+":"+op.Obj.Key()] = op.Obj
	}
}

func mac(s string) topology.MAC {
	m, err := topology.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// seed registers two VPCs: vpc-a (vsw-a: h1, h2 and a route entry to h2)
// and vpc-b (vsw-b: h3), all on dpid 1.
func (r *rig) seed() {
	r.apply(&topology.VPC{Name: "vpc-a"}, &topology.VPC{Name: "vpc-b"})
	r.apply(&topology.VSwitch{VPC: "vpc-a", Name: "vsw-a", CIDR: netip.MustParsePrefix("10.10.10.0/24")},
		&topology.VSwitch{VPC: "vpc-b", Name: "vsw-b", CIDR: netip.MustParsePrefix("10.10.10.0/24")})
	r.apply(
		&topology.Host{VPC: "vpc-a", Name: "h1", VSwitch: "vsw-a", IP: netip.MustParseAddr("10.10.10.11"), MAC: mac("52:58:00:00:00:01"), DPID: 1, OFPort: 1},
		&topology.Host{VPC: "vpc-a", Name: "h2", VSwitch: "vsw-a", IP: netip.MustParseAddr("10.10.10.12"), MAC: mac("52:58:00:00:00:02"), DPID: 1, OFPort: 2},
		&topology.Host{VPC: "vpc-b", Name: "h3", VSwitch: "vsw-b", IP: netip.MustParseAddr("10.10.10.11"), MAC: mac("52:58:00:00:00:03"), DPID: 1, OFPort: 3})
	r.apply(&topology.Subnet{VPC: "vpc-a", CIDR: netip.MustParsePrefix("172.18.3.0/24"), Host: "h2"})
}

// count sets the packet counter of the installed flow with cookie ck in
// table (the first such flow; it must exist).
func (r *rig) count(table uint8, ck uint64, packets uint64) {
	r.t.Helper()
	for _, f := range r.dp.Flows() {
		if f.Table == table && f.Cookie == ck {
			r.dp.Count(f, packets)
			return
		}
	}
	r.t.Fatalf("no flow in table %d with cookie %#x", table, ck)
}

func (r *rig) id(key string) uint32 { return r.objs[key].ObjectID() }

// gather returns every sample of the registry, by metric name.
func (r *rig) gather() map[string][]*dto.Metric {
	r.t.Helper()
	mfs, err := r.m.Registry().Gather()
	if err != nil {
		r.t.Fatal(err)
	}
	out := map[string][]*dto.Metric{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf.GetMetric()
	}
	return out
}

// value is the sample of name whose labels include want; -1 if none.
func value(ms map[string][]*dto.Metric, name string, want map[string]string) float64 {
next:
	for _, m := range ms[name] {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

func TestFlowCollectorNamesCountersInVPCTerms(t *testing.T) {
	r := newRig(t)
	r.seed()
	h1, h2, h3 := r.id("host:vpc-a/h1"), r.id("host:vpc-a/h2"), r.id("host:vpc-b/h3")
	sub := r.id("subnet:vpc-a/172.18.3.0-24")
	vswA := r.id("vswitch:vpc-a/vsw-a")
	// Traffic, as the switch's counters would show it.
	r.count(0, pipeline.HostCookie(h1, pipeline.DropSpoofed), 5)       // h1 changed its MAC
	r.count(10, pipeline.HostCookie(h1, pipeline.DropSpoofed), 2)      // and sent from a stolen IP
	r.count(10, pipeline.HostCookie(h3, pipeline.DropSpoofed), 7)      // vpc-b's h3 too
	r.count(30, pipeline.VSwitchCookie(vswA, pipeline.DropNoRoute), 4) // to an unused address of vsw-a
	r.count(31, pipeline.PipelineCookie(pipeline.DropNoRoute), 3)      // to nowhere: no route, no NAT gateway (NATRoute)
	r.count(30, pipeline.HostCookie(h2, pipeline.DropNone), 11)        // routed to h2
	r.count(30, pipeline.SubnetCookie(sub, pipeline.DropNone), 6)      // routed to h2's route entry
	r.count(0, pipeline.HostCookie(h2, pipeline.DropNone), 1000)       // admitted: not a forward

	ms := r.gather()
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"vpcflow_dropped_packets_total", map[string]string{"vpc": "vpc-a", "vswitch": "vsw-a", "reason": "spoofed"}, 7},
		{"vpcflow_dropped_packets_total", map[string]string{"vpc": "vpc-b", "vswitch": "vsw-b", "reason": "spoofed"}, 7},
		{"vpcflow_dropped_packets_total", map[string]string{"vpc": "vpc-a", "vswitch": "vsw-a", "reason": "no_route"}, 4},
		{"vpcflow_dropped_packets_total", map[string]string{"vpc": "", "vswitch": "", "reason": "no_route"}, 3},
		{"vpcflow_forwarded_packets_total", map[string]string{"vpc": "vpc-a", "vswitch": "vsw-a"}, 17},
		{"vpcflow_objects", map[string]string{"kind": "host"}, 3},
		{"vpcflow_objects", map[string]string{"kind": "vpc"}, 2},
		{"vpcflow_objects", map[string]string{"kind": "subnet"}, 1},
		{"vpcflow_flow_stats_errors_total", nil, 0},
	} {
		if got := value(ms, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// Flows per table: what the switch holds, table by table.
	perTable := map[uint8]int{}
	for _, f := range r.dp.Flows() {
		perTable[f.Table]++
	}
	for table, n := range perTable {
		got := value(ms, "vpcflow_flows", map[string]string{"dpid": "0000000000000001", "table": itoa(table)})
		if got != float64(n) {
			t.Errorf("vpcflow_flows{table=%d} = %v, want %d", table, got, n)
		}
	}
	if got := value(ms, "vpcflow_flows", map[string]string{"table": "30", "table_name": "L3Forwarding"}); got <= 0 {
		t.Errorf("table 30 is not named L3Forwarding: %v", got)
	}
	// Flow-mods the switch confirmed: every flow it holds came in as an add.
	if got := value(ms, "vpcflow_flow_ops_total", map[string]string{"op": "add"}); got < float64(len(r.dp.Flows())) {
		t.Errorf("vpcflow_flow_ops_total{op=add} = %v, want ≥ %d (flows installed)", got, len(r.dp.Flows()))
	}
	if got := value(ms, "vpcflow_reconcile_duration_seconds", map[string]string{"result": "ok"}); got != 1 {
		t.Errorf("reconciliations observed: %v, want 1", got)
	}
	assertNoAddressLabels(t, ms)
}

func itoa(v uint8) string { return strconv.Itoa(int(v)) }

// assertNoAddressLabels: no label value is an IP address, a prefix, a MAC
// or a cookie.
func assertNoAddressLabels(t *testing.T, ms map[string][]*dto.Metric) {
	t.Helper()
	for name, samples := range ms {
		for _, m := range samples {
			for _, l := range m.GetLabel() {
				v := l.GetValue()
				_, errIP := netip.ParseAddr(v)
				_, errPfx := netip.ParsePrefix(v)
				_, errMAC := net.ParseMAC(v)
				isMAC := errMAC == nil && strings.ContainsAny(v, ":-.")
				if errIP == nil || errPfx == nil || isMAC || strings.HasPrefix(v, "0x7670") {
					t.Errorf("%s has label %s=%q: an address or cookie", name, l.GetName(), v)
				}
			}
		}
	}
}

// TestHooks: the OpenFlow, REST and packet-in hooks land in the registry,
// and GET /metrics serves it through the API with route templates.
func TestHooks(t *testing.T) {
	r := newRig(t)
	r.seed()
	of := r.m.OpenFlow()
	of.SwitchConnected(1)
	of.SwitchConnected(2)
	of.SwitchDisconnected(2)
	of.Messages(false, "bundle_add", 100)
	of.Messages(true, "packet_in2", 1)
	of.Error(openflow.ErrorTypeName(2))
	of.EchoRTT(300 * time.Microsecond)
	r.m.Controller().PacketIn("too_big")

	srv := httptest.NewServer(api.NewServer(zap.NewNop(), r.c, api.Options{Observer: r.m, Metrics: r.m.Handler(zap.NewNop())}))
	defer srv.Close()
	for _, p := range []string{"/v1/vpcs/vpc-a/hosts", "/v1/vpcs/vpc-a/hosts", "/v1/vpcs/nope/hosts", "/nothing"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	ms := r.gather()
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"vpcflow_openflow_switches_connected", nil, 1},
		{"vpcflow_openflow_connections_total", nil, 2},
		{"vpcflow_openflow_disconnections_total", nil, 1},
		{"vpcflow_openflow_messages_total", map[string]string{"direction": "out", "type": "bundle_add"}, 100},
		{"vpcflow_openflow_messages_total", map[string]string{"direction": "in", "type": "packet_in2"}, 1},
		{"vpcflow_openflow_errors_total", map[string]string{"type": "bad_action"}, 1},
		{"vpcflow_openflow_echo_rtt_seconds", nil, 1},
		{"vpcflow_packet_ins_total", map[string]string{"reason": "too_big"}, 1},
		{"vpcflow_http_requests_total", map[string]string{"route": "/v1/vpcs/{vpc}/hosts", "method": "GET", "code": "200"}, 2},
		{"vpcflow_http_requests_total", map[string]string{"route": "/v1/vpcs/{vpc}/hosts", "method": "GET", "code": "404"}, 1},
		{"vpcflow_http_requests_total", map[string]string{"route": "unmatched", "method": "GET", "code": "404"}, 1},
		{"vpcflow_http_request_duration_seconds", map[string]string{"route": "/v1/vpcs/{vpc}/hosts"}, 3},
	} {
		if got := value(ms, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

// TestDashboardUsesRealMetrics: every metric docs/grafana-dashboard.json
// queries is one vpcflow exports.
func TestDashboardUsesRealMetrics(t *testing.T) {
	r := newRig(t)
	r.seed()
	r.m.OpenFlow().EchoRTT(time.Millisecond)
	r.m.OpenFlow().Error("bad_match")
	r.m.Controller().PacketIn("too_big")
	r.m.Request("/v1/vpcs", "GET", 200, time.Millisecond)
	ms := r.gather()
	b, err := os.ReadFile("../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`vpcflow_[a-z_]+`)
	n := 0
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			for _, name := range re.FindAllString(tg.Expr, -1) {
				n++
				base := strings.TrimSuffix(name, "_bucket")
				if _, ok := ms[base]; !ok {
					t.Errorf("panel %q queries %s, which vpcflow does not export", p.Title, name)
				}
			}
		}
	}
	if n < 15 {
		t.Fatalf("only %d metric references found in the dashboard", n)
	}
}

// TestDriftCollectorExportsTheControllersCounters: the drift metrics are
// the controller's drift report, per switch and kind.
func TestDriftCollectorExportsTheControllersCounters(t *testing.T) {
	rep := controller.DriftReport{Switches: []controller.SwitchDrift{{DPID: 1,
		DriftCounters: controller.DriftCounters{Checks: 4, Missing: 2, Unexpected: 1, Modified: 3, Repairs: 2, RepairedFlows: 6},
		Installed:     map[uint8]uint32{30: 12}}}}
	m := New()
	if err := m.Register(NewDriftCollector(func() controller.DriftReport { return rep })); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	m.Handler(zap.NewNop()).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{
		`vpcflow_drift_flows_total{dpid="0000000000000001",kind="missing"} 2`,
		`vpcflow_drift_flows_total{dpid="0000000000000001",kind="unexpected"} 1`,
		`vpcflow_drift_flows_total{dpid="0000000000000001",kind="modified"} 3`,
		`vpcflow_drift_checks_total{dpid="0000000000000001"} 4`,
		`vpcflow_drift_repaired_flows_total{dpid="0000000000000001"} 6`,
		`vpcflow_drift_installed_flows{dpid="0000000000000001",table="30"} 12`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// slowSource is a Source whose every dump takes took (one flow).
type slowSource struct {
	st    *topology.Store
	took  time.Duration
	dumps atomic.Int32
}

func (s *slowSource) EachFlow(ctx context.Context, fn func(dpid uint64, fs *openflow.FlowStats) error) error {
	s.dumps.Add(1)
	time.Sleep(s.took)
	return fn(1, &openflow.FlowStats{Flow: openflow.Flow{Table: 30}, Packets: 1})
}
func (s *slowSource) Read(fn func(st *topology.State)) { s.st.Read(fn) }
func (s *slowSource) Pipeline() *pipeline.Pipeline     { return pipeline.Default() }
func (s *slowSource) TooBigByHost() map[uint32]uint64  { return nil }

// TestSlowRefreshesAreSpaced (issue 17): a dump of the switches that
// took long is not started again at every scrape, only once ten times its
// duration has passed; the scrapes meanwhile report the last one and its
// age. A quick one runs at every scrape.
func TestSlowRefreshesAreSpaced(t *testing.T) {
	st, err := topology.NewStore(context.Background(), topology.NewMemory(), nil)
	if err != nil {
		t.Fatal(err)
	}
	scrape := func(c *FlowCollector) map[string][]*dto.Metric {
		reg := prometheus.NewRegistry()
		reg.MustRegister(c)
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string][]*dto.Metric{}
		for _, mf := range mfs {
			out[mf.GetName()] = mf.GetMetric()
		}
		return out
	}
	slow := &slowSource{st: st, took: 2 * slowRefresh}
	c := NewFlowCollector(slow, nil, FlowOptions{Wait: 5 * slowRefresh})
	ms := scrape(c) // waits for the first dump
	ended := time.Now()
	took := time.Duration(value(ms, "vpcflow_flow_stats_refresh_duration_seconds", nil) * float64(time.Second))
	for range 3 {
		ms := scrape(c)
		if age := value(ms, "vpcflow_flow_stats_age_seconds", nil); age <= 0 {
			t.Errorf("age %v of a dump reported again", age)
		}
	}
	if n := slow.dumps.Load(); n != 1 {
		t.Fatalf("%d dumps of a slow source in 4 scrapes right after each other, want 1", n)
	}
	time.Sleep(time.Until(ended.Add(refreshDuty * took)))
	scrape(c)
	if n := slow.dumps.Load(); n != 2 {
		t.Fatalf("%d dumps once %d× the last one's duration passed, want 2", n, refreshDuty)
	}

	quick := &slowSource{st: st}
	c = NewFlowCollector(quick, nil, FlowOptions{Wait: time.Second})
	for range 4 {
		scrape(c)
	}
	if n := quick.dumps.Load(); n != 4 {
		t.Errorf("%d dumps of a quick source in 4 scrapes, want 4", n)
	}
}
