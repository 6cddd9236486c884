package e2e

// `vpcflow trace --live`: a real packet, tagged, injected at the sender's
// port and caught by a packet-in where its walk ends, must do what the
// simulation says — for a delivered packet, one without a route and a
// spoofed one — and say so when it does not.

import (
	"fmt"
	"github.com/vpcflow/vpcflow/controller/pipeline"
	"strings"
	"testing"

	"github.com/vpcflow/vpcflow/trace"
)

// liveTrace runs POST /v1/trace with live set and checks the live part
// against the simulation.
func (f *fabric) liveTrace(req trace.Request) trace.Result {
	f.t.Helper()
	req.Live = true
	res := f.traceREST(req)
	if res.Live == nil {
		f.t.Fatalf("trace %+v: no live result:\n%s", req, res.Text())
	}
	return res
}

// noProbes checks that no live trace flow is left on br-test.
func (f *fabric) noProbes() {
	f.t.Helper()
	for _, l := range f.flowDump("br-test") {
		if strings.Contains(l, "cookie=0x76700a") || strings.Contains(l, "pkt_mark") {
			f.t.Errorf("a live trace's flow is still installed: %s", l)
		}
	}
}

// TestLiveTraceMatchesSimulation: on the seed, live traces of a delivered
// packet (container to container, and VM to VM), one without a route (an
// address of the vSwitch no host has), a spoofed one and an ARP request
// are caught where the simulation says and match it — the right table,
// the output port, the rewritten headers —; the observation flows go
// again afterwards and the trace meter is on the switch. With a route
// entry's flow deleted by hand the real packet no longer does what the
// simulation says, and the live trace reports the mismatch (the CLI exits
// 1).
func TestLiveTraceMatchesSimulation(t *testing.T) {
	s := newSeed(t)
	ping(t, s.vm1.container, "172.18.3.4", 1)

	cases := []struct {
		name    string
		req     trace.Request
		verdict string
		reason  string
		to      string
		table   string
		headers []string
	}{
		{"delivered container to container", trace.Request{VPC: "vpc-seed", From: "test1", Src: "172.18.1.3", Dst: "172.18.3.4"},
			trace.Delivered, "", "vpc-seed/test2", "Output",
			[]string{"dl_src=ee:ff:ff:ff:ff:ff", "dl_dst=52:58:00:98:c0:92", "nw_src=172.18.1.3", "nw_dst=172.18.3.4", "nw_ttl=64"}},
		{"delivered VM to VM, TCP", trace.Request{VPC: "vpc-seed", From: "test2", Dst: "10.10.10.11", Proto: "tcp", DstPort: 22},
			trace.Delivered, "", "vpc-seed/test1", "Output",
			[]string{"dl_dst=52:58:00:98:c0:81", "nw_src=10.10.10.12", "nw_proto=6"}},
		{"no_route", trace.Request{VPC: "vpc-seed", From: "test1", Dst: "10.10.10.99"},
			trace.Dropped, "no_route", "", "L3Forwarding", []string{"nw_dst=10.10.10.99"}},
		{"no_route outside the VPC", trace.Request{VPC: "vpc-seed", From: "test1", Dst: "192.168.7.7"}, // a destination nothing in the VPC covers: NAT's routing stage drops it (no SNAT entry)
			trace.Dropped, "no_route", "", "NATRoute", []string{"nw_dst=192.168.7.7"}},
		{"spoofed", trace.Request{VPC: "vpc-seed", From: "test1", Src: "10.10.10.12", Dst: "172.18.3.4"},
			trace.Dropped, "spoofed", "", "SpoofGuard", []string{"nw_src=10.10.10.12", "dl_src=52:58:00:98:c0:81"}},
		{"ARP answered", trace.Request{VPC: "vpc-seed", From: "test1", Proto: "arp", Dst: "10.10.10.12"},
			trace.ARPAnswered, "", "", "ARPResponder", []string{"arp_op=2", "arp_spa=10.10.10.12", "arp_sha=ee:ff:ff:ff:ff:ff"}},
	}
	for _, c := range cases {
		res := s.liveTrace(c.req)
		l := res.Live
		t.Logf("%s: %s | live: %s (table %d %s, %.1f ms) %v", c.name, res.Summary, l.Summary, l.Table, l.TableName, l.Millis, l.Packet)
		if res.Verdict != c.verdict || res.Reason != c.reason || res.DeliveredTo != c.to {
			t.Errorf("%s: simulated %s/%s/%s, want %s/%s/%s", c.name, res.Verdict, res.Reason, res.DeliveredTo, c.verdict, c.reason, c.to)
		}
		if !l.Observed || !l.Matches || l.Verdict != c.verdict || l.Reason != c.reason || l.DeliveredTo != c.to || l.TableName != c.table {
			t.Errorf("%s: live %+v; want observed in %s, %s/%s/%s, matching:\n%s", c.name, *l, c.table, c.verdict, c.reason, c.to, res.Text())
		}
		got := " " + strings.Join(l.Packet, " ") + " "
		for _, h := range c.headers {
			if !strings.Contains(got, " "+h+" ") {
				t.Errorf("%s: the caught packet %v has no %s", c.name, l.Packet, h)
			}
		}
		if c.to == "vpc-seed/test2" && l.OutPort != uint32(s.port2) {
			t.Errorf("%s: caught leaving by port %d, test2 is on %d", c.name, l.OutPort, s.port2)
		}
		s.noProbes()
	}
	meters, err := s.ovs.Ofctl(testCtx(t), "br-test", "dump-meters")
	must(t, err)
	if want := fmt.Sprintf("meter=%d ", pipeline.MeterTrace); !strings.Contains(meters, want) {
		t.Errorf("no trace meter (%d) on br-test:\n%s", pipeline.MeterTrace, meters)
	}

	// The CLI.
	out := s.runCLI("trace", "--vpc", "vpc-seed", "--from", "test1", "--live", "10.10.10.99")
	if !strings.Contains(out, "live: dropped: no_route at L3Forwarding (table 30)") || !strings.Contains(out, "the real packet did what the simulation says") {
		t.Errorf("vpcflow trace --live printed:\n%s", out)
	}
	t.Logf("vpcflow trace --live --vpc vpc-seed --from test1 10.10.10.99:\n%s", out)

	// Drift the simulation does not know: the route entry to test2's
	// containers deleted by hand. The real packet falls to L3's no_route
	// miss; the live trace says it did not get where the simulation says.
	_, err = s.ovs.Ofctl(testCtx(t), "br-test", "del-flows", "--strict", "table=30,priority=124,ip,metadata=0x1/0xffffffff,nw_dst=172.18.3.0/24")
	must(t, err)
	res := s.liveTrace(trace.Request{VPC: "vpc-seed", From: "test1", Src: "172.18.1.3", Dst: "172.18.3.4"})
	t.Logf("after deleting the route entry's flow: %s | live: %s %v", res.Summary, res.Live.Summary, res.Live.Differences)
	if res.Verdict != trace.Delivered || res.Live.Matches || res.Live.Observed || res.Live.Verdict != trace.LiveNotObserved {
		t.Errorf("a live trace through a deleted flow: %+v\n%s", *res.Live, res.Text())
	}
	// The mismatch comes with the installed flows' trace, which finds the
	// missing flow.
	missing := false
	for _, d := range res.Drift {
		missing = missing || d.Kind == "missing" && d.Table == 30 && strings.Contains(d.Desired, "nw_dst=172.18.3.0/24")
	}
	if res.Installed == nil || res.Installed.Reason != "no_route" || !missing {
		t.Errorf("the mismatch was not explained by the installed flows: %+v\n%s", res.Drift, res.Text())
	}
	cmdOut, cerr := s.phys.Cmd(testCtx(t), vpcflowBin, "--api", "http://"+restAddr, "trace", "--vpc", "vpc-seed", "--from", "test1",
		"--src", "172.18.1.3", "--live", "172.18.3.4")
	if cerr == nil || !strings.Contains(cmdOut, "MISMATCH") {
		t.Errorf("vpcflow trace --live on a mismatch: %v\n%s", cerr, cmdOut)
	}
	s.noProbes()
}
