package trace_test

import (
	"context"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/vpcflow/vpcflow/controller"
	"github.com/vpcflow/vpcflow/controller/controllertest"
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
	"github.com/vpcflow/vpcflow/trace"
)

// rig: the controller over a real store with an in-memory switch holding
// the seed scenario (vpc-seed: test1 and test2 on vsw-a 10.10.10.0/24,
// route entries 172.18.1.0/24 → test1 and 172.18.3.0/24 → test2) and a
// second VPC with the same addresses (vpc-b: test1 on port 3).
type rig struct {
	t   *testing.T
	ctx context.Context
	c   *controller.Controller
	dp  *controllertest.Datapath
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
	c := controller.New(log, st, controller.Options{Chassis: &controllertest.Chassis{}})
	r := &rig{t: t, ctx: ctx, c: c, dp: controllertest.NewDatapath(1)}
	go func() { c.Serve(ctx, r.dp); c.Forget(r.dp) }()
	for deadline := time.Now().Add(10 * time.Second); len(c.Switches()) == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("switch not reconciled")
		}
	}
	mac := func(s string) topology.MAC { m, _ := topology.ParseMAC(s); return m }
	pfx, addr := netip.MustParsePrefix, netip.MustParseAddr
	r.apply(&topology.VPC{Name: "vpc-seed"}, &topology.VPC{Name: "vpc-b"})
	r.apply(&topology.VSwitch{VPC: "vpc-seed", Name: "vsw-a", CIDR: pfx("10.10.10.0/24"), Gateway: addr("10.10.10.1")},
		&topology.VSwitch{VPC: "vpc-b", Name: "vsw-b", CIDR: pfx("10.10.10.0/24"), Gateway: addr("10.10.10.1")})
	r.apply(
		&topology.Host{VPC: "vpc-seed", Name: "test1", VSwitch: "vsw-a", IP: addr("10.10.10.11"), MAC: mac("52:58:00:98:c0:81"), DPID: 1, OFPort: 1},
		&topology.Host{VPC: "vpc-seed", Name: "test2", VSwitch: "vsw-a", IP: addr("10.10.10.12"), MAC: mac("52:58:00:98:c0:92"), DPID: 1, OFPort: 2},
		&topology.Host{VPC: "vpc-b", Name: "test1", VSwitch: "vsw-b", IP: addr("10.10.10.11"), MAC: mac("52:58:00:98:c0:b1"), DPID: 1, OFPort: 3})
	r.apply(&topology.Subnet{VPC: "vpc-seed", CIDR: pfx("172.18.1.0/24"), Host: "test1"},
		&topology.Subnet{VPC: "vpc-seed", CIDR: pfx("172.18.3.0/24"), Host: "test2"})
	return r
}

func (r *rig) apply(os ...topology.Object) {
	r.t.Helper()
	ops := make([]topology.Op, len(os))
	for i, o := range os {
		ops[i] = topology.Create(o)
	}
	if _, err := r.c.Apply(r.ctx, ops); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) trace(req trace.Request) *trace.Result {
	r.t.Helper()
	res, err := r.c.Trace(r.ctx, req)
	if err != nil {
		r.t.Fatalf("trace %+v: %v", req, err)
	}
	if _, err := json.Marshal(res); err != nil {
		r.t.Fatal(err)
	}
	return res
}

func tablesOf(res *trace.Result) []int {
	var out []int
	for _, h := range res.Hops {
		for _, s := range h.Steps {
			out = append(out, int(s.Table))
		}
	}
	return out
}

func TestTraceVerdicts(t *testing.T) {
	r := newRig(t)
	for _, c := range []struct {
		name    string
		req     trace.Request
		verdict string
		reason  string
		to      string
		says    []string // in the text
	}{
		{"container subnet", trace.Request{VPC: "vpc-seed", From: "test1", Dst: "172.18.3.4", Src: "172.18.1.3"},
			trace.Delivered, "", "vpc-seed/test2",
			[]string{"route entry vpc-seed/172.18.3.0-24 (172.18.3.0/24 → host test2)", "eth_dst := 52:58:00:98:c0:92 (host vpc-seed/test2)",
				"eth_src := ee:ff:ff:ff:ff:ff (the gateway MAC)", "route entry vpc-seed/172.18.1.0-24", "delivered to host vpc-seed/test2"}},
		{"VM to VM tcp", trace.Request{VPC: "vpc-seed", From: "test2", Dst: "10.10.10.11", Proto: "tcp", DstPort: 22},
			trace.Delivered, "", "vpc-seed/test1", []string{"host vpc-seed/test1 (10.10.10.11"}},
		{"unused address of the vSwitch", trace.Request{VPC: "vpc-seed", From: "test1", Dst: "10.10.10.99"},
			trace.Dropped, "no_route", "", []string{"vSwitch vpc-seed/vsw-a", "dropped: no_route at L3Forwarding (table 30)"}},
		{"outside the VPC", trace.Request{VPC: "vpc-seed", From: "test1", Dst: "8.8.8.8", Proto: "udp", DstPort: 53},
			trace.Dropped, "no_route", "", []string{"pipeline default"}},
		{"stolen source IP", trace.Request{VPC: "vpc-seed", From: "test1", Dst: "10.10.10.12", Src: "10.10.10.13"},
			trace.Dropped, "spoofed", "", []string{"SpoofGuard (table 10)"}},
		{"another VM's route entry as source", trace.Request{VPC: "vpc-seed", From: "test1", Dst: "10.10.10.12", Src: "172.18.3.9"},
			trace.Dropped, "spoofed", "", nil},
		{"forged MAC", trace.Request{VPC: "vpc-seed", From: "test1", Dst: "10.10.10.12", SrcMAC: "52:58:00:00:00:66"},
			trace.Dropped, "spoofed", "", []string{"Classifier (table 0)"}},
		{"isolation: vpc-b's test1 to an address only vpc-seed has", trace.Request{VPC: "vpc-b", From: "test1", Dst: "10.10.10.12"},
			trace.Dropped, "no_route", "", []string{"vSwitch vpc-b/vsw-b"}},
		{"isolation: vpc-b to vpc-seed's container subnet", trace.Request{VPC: "vpc-b", From: "test1", Dst: "172.18.3.4"},
			trace.Dropped, "no_route", "", []string{"pipeline default"}},
		{"ARP for the gateway", trace.Request{VPC: "vpc-seed", From: "test1", Dst: "10.10.10.1", Proto: "arp"},
			trace.ARPAnswered, "", "", []string{"ARP answered: 10.10.10.1 is at ee:ff:ff:ff:ff:ff", "vSwitch vpc-seed/vsw-a"}},
		{"gratuitous ARP", trace.Request{VPC: "vpc-seed", From: "test1", Dst: "10.10.10.11", Proto: "arp"},
			trace.Dropped, "arp_not_answered", "", nil},
		{"ttl 1 with dec_ttl off is still delivered", trace.Request{VPC: "vpc-seed", From: "test1", Dst: "10.10.10.12", TTL: 1},
			trace.Delivered, "", "vpc-seed/test2", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := r.trace(c.req)
			text := res.Text()
			if res.Verdict != c.verdict || res.Reason != c.reason || res.DeliveredTo != c.to {
				t.Fatalf("verdict %q reason %q to %q, want %q %q %q:\n%s", res.Verdict, res.Reason, res.DeliveredTo, c.verdict, c.reason, c.to, text)
			}
			for _, s := range c.says {
				if !strings.Contains(text, s) {
					t.Errorf("the trace does not say %q:\n%s", s, text)
				}
			}
			if strings.Count(text, "\n") < 3 || !strings.HasPrefix(text, res.Summary) {
				t.Errorf("text:\n%s", text)
			}
		})
	}
	// The delivered walk visits the whole pipeline in order.
	got := tablesOf(r.trace(trace.Request{VPC: "vpc-seed", From: "test1", Dst: "10.10.10.12"}))
	if want := []int{0, 10, 15, 16, 17, 21, 26, 30, 31, 45, 46, 50, 70}; !equal(got, want) {
		t.Errorf("tables visited %v, want %v", got, want)
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestTraceBadRequests(t *testing.T) {
	r := newRig(t)
	for _, c := range []struct {
		req     trace.Request
		field   string
		missing bool
	}{
		{trace.Request{VPC: "nope", From: "test1", Dst: "10.10.10.12"}, "vpc", true},
		{trace.Request{VPC: "vpc-seed", From: "nope", Dst: "10.10.10.12"}, "from", true},
		{trace.Request{VPC: "vpc-seed", From: "test1", Dst: "10.10.10"}, "dst", false},
		{trace.Request{VPC: "vpc-seed", From: "test1", Dst: "::1"}, "dst", false},
		{trace.Request{VPC: "vpc-seed", Dst: "10.10.10.12"}, "from", false},
		{trace.Request{VPC: "vpc-seed", From: "test1", Dst: "10.10.10.12", Proto: "sctp"}, "proto", false},
		{trace.Request{VPC: "vpc-seed", From: "test1", Dst: "10.10.10.12", SrcMAC: "zz"}, "src_mac", false},
		{trace.Request{VPC: "vpc-seed", From: "test1", Dst: "10.10.10.12", Size: 10}, "size", false},
		{trace.Request{VPC: "vpc-seed", FromChassis: "node9", Dst: "10.10.10.12", Src: "1.2.3.4"}, "from_chassis", false},
	} {
		_, err := r.c.Trace(r.ctx, c.req)
		te, ok := err.(*trace.Error)
		if !ok || te.Field != c.field || te.Missing != c.missing {
			t.Errorf("%+v: error %v, want one on %q (missing %v)", c.req, err, c.field, c.missing)
		}
	}
}

// TestTraceInstalledReportsDrift: the same trace on the flows the switch
// holds agrees while nothing drifted, and names the flow once one is
// removed or changed behind vpcflow's back.
func TestTraceInstalledReportsDrift(t *testing.T) {
	r := newRig(t)
	req := trace.Request{VPC: "vpc-seed", From: "test1", Dst: "172.18.3.4", Src: "172.18.1.3", Installed: true}
	res := r.trace(req)
	if res.Installed == nil || len(res.Drift) != 0 || res.Installed.Verdict != trace.Delivered {
		t.Fatalf("no drift expected:\n%s", res.Text())
	}
	// Remove the route entry's flow from the switch, as an operator might.
	var route = findFlow(t, r.dp, 30, "nw_dst=172.18.3.0/24")
	r.dp.Remove(route)
	res = r.trace(req)
	if res.Verdict != trace.Delivered || res.Installed.Verdict != trace.Dropped || res.Installed.Reason != "no_route" {
		t.Fatalf("desired %s / installed %s:\n%s", res.Verdict, res.Installed.Verdict, res.Text())
	}
	kinds := map[string]string{}
	for _, d := range res.Drift {
		kinds[d.Kind] = d.Desired + d.Installed
	}
	if !strings.Contains(kinds["missing"], "nw_dst=172.18.3.0/24") || kinds["verdict"] == "" {
		t.Errorf("drift %+v:\n%s", res.Drift, res.Text())
	}
	if !strings.Contains(res.Text(), "DRIFT") {
		t.Errorf("text:\n%s", res.Text())
	}
	// Modified: the flow is back with another output port.
	changed := route
	changed.Actions = append(changed.Actions[:0:0], route.Actions...)
	changed.Actions[2].Value = 7 // set_field:0x7->reg2
	r.dp.Put(changed)
	res = r.trace(req)
	if len(res.Drift) == 0 || res.Drift[0].Kind != "modified" || !strings.Contains(res.Drift[0].Installed, "0x7->reg2") {
		t.Errorf("drift %+v:\n%s", res.Drift, res.Text())
	}
}

func findFlow(t *testing.T, dp *controllertest.Datapath, table uint8, match string) openflow.Flow {
	t.Helper()
	for _, f := range dp.Flows() {
		if f.Table == table && strings.Contains(f.Match.String(), match) {
			return f
		}
	}
	t.Fatalf("no flow in table %d matching %s", table, match)
	return openflow.Flow{}
}

// TestTraceNAT: with an uplink, a NAT gateway, an SNAT entry and a DNAT
// entry, a VM's packet to the outside leaves by the uplink from the SNAT
// address, and a hairpin to the DNAT address reaches its target.
func TestTraceNAT(t *testing.T) {
	r := newRig(t)
	mac := func(s string) topology.MAC { m, _ := topology.ParseMAC(s); return m }
	pfx, addr := netip.MustParsePrefix, netip.MustParseAddr
	r.apply(&topology.Uplink{Name: "up1", DPID: 1, OFPort: 9, CIDR: pfx("203.0.113.0/24"), Gateway: addr("203.0.113.1"),
		MAC: mac("02:76:70:00:00:01"), RouterMAC: mac("52:54:00:aa:00:01")})
	r.apply(&topology.NATGateway{VPC: "vpc-seed", Name: "ngw", Uplink: "up1", IPs: []netip.Addr{addr("203.0.113.10"), addr("203.0.113.12")}})
	r.apply(&topology.SNATEntry{VPC: "vpc-seed", Name: "vsw-a", NATGateway: "ngw", VSwitch: "vsw-a", SNATIPs: []netip.Addr{addr("203.0.113.10")}},
		&topology.DNATEntry{VPC: "vpc-seed", Name: "web", NATGateway: "ngw", ExternalIP: addr("203.0.113.12"), Protocol: "tcp",
			ExternalPort: "8080", InternalIP: addr("10.10.10.11"), InternalPort: "80"})

	res := r.trace(trace.Request{VPC: "vpc-seed", From: "test1", Dst: "198.51.100.10", Proto: "tcp", DstPort: 80})
	text := res.Text()
	if res.Verdict != trace.LeftUplink {
		t.Fatalf("verdict %q, want %q:\n%s", res.Verdict, trace.LeftUplink, text)
	}
	for _, s := range []string{"ct: source NAT to 203.0.113.10", "left by uplink up1", "203.0.113.10 → 198.51.100.10", "52:54:00:aa:00:01",
		"NAT gateway vpc-seed/ngw", "SNAT entry vpc-seed/vsw-a", "uplink up1 (203.0.113.0/24"} {
		if !strings.Contains(text, s) {
			t.Errorf("the trace does not say %q:\n%s", s, text)
		}
	}
	// Hairpin: test2 to the DNAT address reaches test1 on port 80.
	res = r.trace(trace.Request{VPC: "vpc-seed", From: "test2", Dst: "203.0.113.12", Proto: "tcp", DstPort: 8080})
	text = res.Text()
	if res.Verdict != trace.Delivered || res.DeliveredTo != "vpc-seed/test1" {
		t.Fatalf("hairpin: verdict %q to %q, want delivered to vpc-seed/test1:\n%s", res.Verdict, res.DeliveredTo, text)
	}
	if !strings.Contains(text, "ct: destination NAT to 10.10.10.11 port 80") || !strings.Contains(text, "DNAT entry vpc-seed/web") {
		t.Errorf("the hairpin trace does not show the DNAT:\n%s", text)
	}
	// A port of the gateway's address no entry maps: the hairpin is
	// dropped, as from outside.
	res = r.trace(trace.Request{VPC: "vpc-seed", From: "test2", Dst: "203.0.113.12", Proto: "tcp", DstPort: 8081})
	if res.Verdict != trace.Dropped || res.Reason != "nat_no_entry" {
		t.Errorf("unmapped port: verdict %q reason %q, want dropped nat_no_entry:\n%s", res.Verdict, res.Reason, res.Text())
	}
}
