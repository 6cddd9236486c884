package e2e

// Seeing inside the fabric against real traffic: `vpcflow trace` must say
// what real packets do (the verdict, and the very flow whose counter they
// bump), and GET /metrics must count them by VPC, vSwitch and reason.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/vpcflow/vpcflow/trace"
)

// traceREST runs POST /v1/trace.
func (f *fabric) traceREST(req trace.Request) trace.Result {
	f.t.Helper()
	var res trace.Result
	must(f.t, json.Unmarshal(f.rest("POST", "/v1/trace", req, 200), &res))
	return res
}

// lastFlow selects the installed flow the trace's last step matched on
// the last switch.
func lastFlow(t *testing.T, res trace.Result) (uint64, flowSel) {
	t.Helper()
	h := res.Hops[len(res.Hops)-1]
	s := h.Steps[len(h.Steps)-1]
	if s.Cookie == "" {
		t.Fatalf("the trace's last step matched no flow:\n%s", res.Text())
	}
	ck, err := strconv.ParseUint(strings.TrimPrefix(s.Cookie, "0x"), 16, 64)
	must(t, err)
	return uint64(h.DPID), flowSel{table: s.Table, priority: s.Priority, cookie: ck, match: s.Match}
}

// agree checks a trace against real traffic: the verdict, and that the
// flow the trace ends at counted at least n of the packets send sent.
func (f *fabric) agree(req trace.Request, verdict, reason, to string, n uint64, send func()) trace.Result {
	f.t.Helper()
	res := f.traceREST(req)
	if res.Verdict != verdict || res.Reason != reason || res.DeliveredTo != to {
		f.t.Fatalf("trace %+v: %s/%s/%s, want %s/%s/%s:\n%s", req, res.Verdict, res.Reason, res.DeliveredTo, verdict, reason, to, res.Text())
	}
	dpid, sel := lastFlow(f.t, res)
	read := func() uint64 {
		if f.ovs != nil {
			f.syncStats()
		}
		return f.pick(f.switchFlows(dpid), sel).Packets
	}
	before := read()
	send()
	// OVS pushes the datapath's counts into its flows every 500ms
	// (syncStats forces it where the test owns the OVS).
	var d uint64
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if d = read() - before; d >= n || time.Now().After(deadline) {
			break
		}
	}
	if d < n {
		f.t.Errorf("trace %q ends at %s, which counted %d of the %d packets sent", res.Summary, sel, d, n)
	}
	f.t.Logf("trace agrees with the packets (%d counted at its last flow): %s", n, res.Summary)
	return res
}

// scrape reads GET /metrics.
func (f *fabric) scrape() map[string]*dto.MetricFamily {
	f.t.Helper()
	body := f.rest("GET", "/metrics", nil, 200)
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(body))
	must(f.t, err)
	return mfs
}

// sample is the value of the sample of name whose labels include want.
func sample(mfs map[string]*dto.MetricFamily, name string, want ...string) float64 {
	mf := mfs[name]
	if mf == nil {
		return -1
	}
next:
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(want); i += 2 {
			if have[want[i]] != want[i+1] {
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

// TestTraceAndMetricsAgreeWithTraffic: on the seed scenario plus a second
// VPC with overlapping addresses, trace's verdict for delivered, no_route,
// spoofed and isolation cases is what real pings get, ending at the flow
// that counts them; the same trace on the installed flows finds no drift;
// the CLI prints the verdict; and /metrics counts the traffic by VPC,
// vSwitch and reason.
func TestTraceAndMetricsAgreeWithTraffic(t *testing.T) {
	s := newSeed(t)
	b1 := plainVM("b1", "vnetb1", "10.10.10.11", "52:58:00:bb:00:01")
	vb1 := s.addVM(b1)
	s.plugVM(vb1, b1, "br-test")
	s.createVPC("vpc-b")
	s.createVSwitch("vpc-b", "vsw-b", "10.10.10.0/24", "10.10.10.1")
	s.createHost("vpc-b", "vsw-b", "br-test", b1)
	m0 := s.scrape()

	// delivered: container to container through two route entries.
	res := s.agree(trace.Request{VPC: "vpc-seed", From: "test1", Src: "172.18.1.3", Dst: "172.18.3.4", Installed: true},
		trace.Delivered, "", "vpc-seed/test2", 3, func() { pingTTL(t, s.vm1.container, "172.18.3.4", 3, 62) })
	if res.Installed == nil || len(res.Drift) != 0 {
		t.Errorf("the installed flows drift from the desired ones:\n%s", res.Text())
	}
	// ARP: every neighbour at the gateway MAC.
	ping(t, s.vm1.node, "10.10.10.12", 1)
	if r := s.traceREST(trace.Request{VPC: "vpc-seed", From: "test1", Proto: "arp", Dst: "10.10.10.12"}); r.Verdict != trace.ARPAnswered ||
		!strings.Contains(r.Summary, "ee:ff:ff:ff:ff:ff") || neighMAC(t, s.vm1.node, "10.10.10.12") != "ee:ff:ff:ff:ff:ff" {
		t.Errorf("ARP: trace %q, test1's neighbour 10.10.10.12 at %s", r.Summary, neighMAC(t, s.vm1.node, "10.10.10.12"))
	}
	// no_route: an address of the vSwitch no host has.
	s.agree(trace.Request{VPC: "vpc-seed", From: "test1", Dst: "10.10.10.99"}, trace.Dropped, "no_route", "", 3,
		func() { pingNone(t, s.vm1.node, 3, "10.10.10.99") })
	// spoofed: test1 sends from test2's address.
	s.vm1.node.MustCmd(t, "ip", "addr", "add", "10.10.10.12/32", "dev", "ens8")
	s.agree(trace.Request{VPC: "vpc-seed", From: "test1", Src: "10.10.10.12", Dst: "172.18.3.4"}, trace.Dropped, "spoofed", "", 3,
		func() { pingNone(t, s.vm1.node, 3, "-I", "10.10.10.12", "172.18.3.4") })
	s.vm1.node.MustCmd(t, "ip", "addr", "del", "10.10.10.12/32", "dev", "ens8")
	// isolation: vpc-b's b1 (same address as test1) reaches nothing of vpc-seed.
	s.agree(trace.Request{VPC: "vpc-b", From: "b1", Dst: "10.10.10.12"}, trace.Dropped, "no_route", "", 3,
		func() { pingNone(t, vb1.node, 3, "10.10.10.12") })
	s.agree(trace.Request{VPC: "vpc-b", From: "b1", Dst: "172.18.3.4"}, trace.Dropped, "no_route", "", 3,
		func() { pingNone(t, vb1.node, 3, "172.18.3.4") })
	// --live: the real packet of the isolation case is caught where the
	// simulation ends (vpc-b has no route to test2's address).
	if l := s.liveTrace(trace.Request{VPC: "vpc-b", From: "b1", Dst: "10.10.10.12"}).Live; !l.Observed || !l.Matches ||
		l.Verdict != trace.Dropped || l.Reason != "no_route" || l.TableName != "L3Forwarding" {
		t.Errorf("live trace of the isolation case: %+v", *l)
	} else {
		t.Logf("isolation, live: %s (%.1f ms)", l.Summary, l.Millis)
	}

	// The CLI prints the verdict first, then the path.
	out := s.phys.MustCmd(t, vpcflowBin, "trace", "--api", "http://"+restAddr, "--vpc", "vpc-seed", "--from", "test1",
		"--src", "172.18.1.3", "172.18.3.4")
	if !strings.HasPrefix(out, "delivered to host vpc-seed/test2") || !strings.Contains(out, "route entry vpc-seed/172.18.3.0-24") {
		t.Errorf("vpcflow trace printed:\n%s", out)
	}
	t.Logf("vpcflow trace --vpc vpc-seed --from test1 --src 172.18.1.3 172.18.3.4:\n%s", out)

	// Metrics: the same traffic, by VPC, vSwitch and reason.
	s.syncStats()
	m1 := s.scrape()
	grew := func(name string, n float64, labels ...string) {
		t.Helper()
		before := max(sample(m0, name, labels...), 0)
		if d := sample(m1, name, labels...) - before; d < n {
			t.Errorf("%s%v grew by %v, want ≥ %v", name, labels, d, n)
		}
	}
	grew("vpcflow_forwarded_packets_total", 6, "vpc", "vpc-seed", "vswitch", "vsw-a") // 3 requests + 3 replies
	grew("vpcflow_dropped_packets_total", 3, "vpc", "vpc-seed", "vswitch", "vsw-a", "reason", "no_route")
	grew("vpcflow_dropped_packets_total", 3, "vpc", "vpc-seed", "vswitch", "vsw-a", "reason", "spoofed")
	grew("vpcflow_dropped_packets_total", 3, "vpc", "vpc-b", "vswitch", "vsw-b", "reason", "no_route")
	grew("vpcflow_dropped_packets_total", 3, "vpc", "", "vswitch", "", "reason", "no_route")
	grew("vpcflow_http_requests_total", 1, "route", "/v1/trace", "method", "POST", "code", "200")
	for _, c := range []struct {
		name   string
		labels []string
		min    float64
	}{
		{"vpcflow_openflow_switches_connected", nil, 1},
		{"vpcflow_openflow_connections_total", nil, 1},
		{"vpcflow_openflow_messages_total", []string{"direction", "out", "type", "bundle_add"}, 1},
		{"vpcflow_openflow_messages_total", []string{"direction", "in", "type", "multipart_reply"}, 1},
		{"vpcflow_flow_ops_total", []string{"op", "add"}, 20},
		{"vpcflow_reconcile_duration_seconds", []string{"result", "ok"}, 1},
		{"vpcflow_objects", []string{"kind", "host"}, 3},
		{"vpcflow_flows", []string{"table", "30", "table_name", "L3Forwarding"}, 5},
		{"vpcflow_http_requests_total", []string{"route", "/v1/vpcs/{vpc}/hosts", "method", "POST", "code", "201"}, 3},
	} {
		if got := sample(m1, c.name, c.labels...); got < c.min {
			t.Errorf("%s%v = %v, want ≥ %v", c.name, c.labels, got, c.min)
		}
	}
	if got, want := sample(m1, "vpcflow_flows", "table", "0"), float64(len(s.flowsInTable(0))); got != want {
		t.Errorf("vpcflow_flows{table=0} = %v, the switch holds %v", got, want)
	}
	var names []string
	for n := range m1 {
		if strings.HasPrefix(n, "vpcflow_") {
			names = append(names, n)
		}
	}
	t.Logf("/metrics: %d vpcflow_ families; forwarded vpc-seed/vsw-a %v, dropped spoofed %v, no_route vpc-seed %v / vpc-b %v",
		len(names), sample(m1, "vpcflow_forwarded_packets_total", "vpc", "vpc-seed"),
		sample(m1, "vpcflow_dropped_packets_total", "vpc", "vpc-seed", "reason", "spoofed"),
		sample(m1, "vpcflow_dropped_packets_total", "vpc", "vpc-seed", "reason", "no_route"),
		sample(m1, "vpcflow_dropped_packets_total", "vpc", "vpc-b", "reason", "no_route"))
}

// flowsInTable lists br-test's flows in one table (ovs-ofctl).
func (s *seed) flowsInTable(table int) []string {
	var out []string
	for _, l := range s.flowDump("br-test") {
		if strings.Contains(l, fmt.Sprintf("table=%d,", table)) || (table == 0 && !strings.Contains(l, "table=")) {
			out = append(out, l)
		}
	}
	return out
}

// TestTraceAcrossChassis: a packet from a VM on node1 to a container
// behind a VM on node2 is traced through node1's tables, the VXLAN tunnel
// and node2's tables to that VM, as the real ping goes, and ends at the
// TunnelDelivery flow that counts it; a packet arriving from node1's
// uplink is delivered the same way; a frame too big for the underlay goes
// to vpcflow.
func TestTraceAcrossChassis(t *testing.T) {
	m := newMultiChassis(t, "node1", "node2")
	m.registerChassis("node1")
	m.registerChassis("node2")
	must(t, m.underlay.ResolveTunnelNeighbors(testCtx(t)))
	m.rest("POST", "/v1/vpcs", map[string]any{"name": "vpc-a"}, 201)
	m.rest("POST", "/v1/vpcs/vpc-a/vswitches", map[string]any{"name": "vsw-a", "cidr": "10.10.10.0/24", "gateway": "10.10.10.1"}, 201)
	vm1, vm2 := m.addVM(chVM1), m.addVM(chVM2)
	m.plugVMOn(vm1, chVM1, "node1")
	m.plugVMOn(vm2, chVM2, "node2")
	m.addHost("vpc-a", chVM1, "node1")
	m.addHost("vpc-a", chVM2, "node2")

	res := m.agree(trace.Request{VPC: "vpc-a", From: "vm1", Src: "172.18.1.3", Dst: "172.18.3.4", Installed: true},
		trace.Delivered, "", "vpc-a/vm2", 3, func() { pingTTL(t, vm1.container, "172.18.3.4", 3, 62) })
	if len(res.Hops) != 2 || res.Hops[0].Chassis != "node1" || res.Hops[1].Chassis != "node2" ||
		!strings.Contains(res.Hops[0].Out, "VXLAN (VNI 1) to chassis node2") || res.Hops[1].From != "VXLAN from chassis node1" {
		t.Errorf("path:\n%s", res.Text())
	}
	if len(res.Drift) != 0 {
		t.Errorf("drift on the tunnel path:\n%s", res.Text())
	}
	t.Logf("trace across chassis:\n%s", res.Text())
	// --live: the real packet leaves node1 by the VXLAN port to node2,
	// with the headers the simulation has at that point.
	live := m.liveTrace(trace.Request{VPC: "vpc-a", From: "vm1", Src: "172.18.1.3", Dst: "172.18.3.4"})
	if l := live.Live; !l.Observed || !l.Matches || l.Verdict != trace.LiveTunnel ||
		!strings.Contains(l.Summary, "by its VXLAN port") || !strings.Contains(l.Summary, "on to chassis node2") {
		t.Errorf("live trace across chassis: %+v\n%s", *l, live.Text())
	} else {
		t.Logf("across chassis, live: %s (%.1f ms) %v", l.Summary, l.Millis, l.Packet)
	}
	uplink := m.traceREST(trace.Request{VPC: "vpc-a", FromChassis: "node1", Src: "10.10.10.11", Dst: "10.10.10.12"})
	if uplink.Verdict != trace.Delivered || uplink.DeliveredTo != "vpc-a/vm2" || uplink.Hops[0].Steps[1].TableName != "TunnelDelivery" {
		t.Errorf("from node1's uplink:\n%s", uplink.Text())
	}
	big := m.traceREST(trace.Request{VPC: "vpc-a", From: "vm1", Dst: "10.10.10.12", Size: 1514})
	if big.Verdict != trace.ToVPCFlow || big.Reason != "too_big" {
		t.Errorf("a 1514-byte frame:\n%s", big.Text())
	}
}
