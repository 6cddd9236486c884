package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vpcflow/vpcflow/controller"
	"github.com/vpcflow/vpcflow/e2e/netlab"
)

// TestVXLANForgedTunnelTrafficIsDropped proves docs/pipeline.md's tunnel
// admission: VXLAN from an address that is not a registered chassis is
// dropped by table 0 (unknown_source), and VXLAN from a registered chassis
// with a VNI that is no VPC's is dropped by table 40 (no_route). Both are
// counted in GET /v1/drops, and the victim VM receives nothing.
//
// The forger "rogue" is a third chassis on the underlay with its own OVS,
// unknown to vpcflow; it sends exactly what a real chassis would (the
// VPC's VNI, vm1's MAC, to node1's tunnel IP). The unknown VNI comes from
// registered node2, through a foreign flow planted in its table 0.
func TestVXLANForgedTunnelTrafficIsDropped(t *testing.T) {
	const forgers = 5
	m := newMultiChassis(t, "node1", "node2", "rogue")
	m.registerChassis("node1")
	m.registerChassis("node2")
	ctx := testCtx(t)
	node1, node2, rogue := m.chassis["node1"], m.chassis["node2"], m.chassis["rogue"]

	// rogue: not controlled by vpcflow; a flow-based VXLAN port and
	// hand-written flows.
	_, err := rogue.OVS.Vsctl(ctx, "add-port", rogue.Bridge, "vx", "--", "set", "interface", "vx",
		"type=vxlan", "options:remote_ip=flow", "options:key=flow")
	must(t, err)
	_, err = rogue.OVS.Vsctl(ctx, "set-fail-mode", rogue.Bridge, "secure")
	must(t, err)
	vxPort, err := rogue.OVS.Ofport(ctx, "vx")
	must(t, err)
	must(t, m.underlay.ResolveTunnelNeighbors(ctx))

	var vpc struct {
		ID uint32 `json:"id"`
	}
	must(t, json.Unmarshal(m.rest("POST", "/v1/vpcs", map[string]any{"name": "vpc-a"}, 201), &vpc))
	m.rest("POST", "/v1/vpcs/vpc-a/vswitches", map[string]any{"name": "vsw-a", "cidr": "10.10.10.0/24", "gateway": "10.10.10.1"}, 201)
	s1 := vmSpec{name: chVM1.name, port: chVM1.port, ip: chVM1.ip, mac: chVM1.mac}
	s2 := vmSpec{name: chVM2.name, port: chVM2.port, ip: chVM2.ip, mac: chVM2.mac}
	vm1, vm2 := m.addVM(s1), m.addVM(s2)
	m.plugVMOn(vm1, s1, "node1")
	m.plugVMOn(vm2, s2, "node2")
	m.addHost("vpc-a", s1, "node1")
	m.addHost("vpc-a", s2, "node2")

	// Baseline: the tunnel between the registered chassis works.
	ping(t, vm1.node, s2.ip, 3)
	ping(t, vm2.node, s1.ip, 3)

	// 1. Forged from an unregistered address, with the right VNI and MAC.
	evil, err := m.lab.AddNode("evil")
	must(t, err)
	evilPort, err := m.lab.LinkToOVS(ctx, evil, "ens8", "52:58:00:66:66:66", rogue.Node, rogue.OVS, rogue.Bridge, "evil0", false)
	must(t, err)
	evil.MustCmd(t, "ip", "link", "set", "ens8", "mtu", "1450")
	evil.MustCmd(t, "ip", "addr", "add", "10.10.10.66/24", "dev", "ens8")
	evil.MustCmd(t, "ip", "neigh", "replace", s1.ip, "lladdr", s1.mac, "dev", "ens8", "nud", "permanent")
	_, err = rogue.OVS.Ofctl(ctx, rogue.Bridge, "add-flow", fmt.Sprintf(
		"in_port=%d,ip,actions=set_field:%d->tun_id,set_field:%s->tun_dst,output:%d",
		evilPort, vpc.ID, node1.TunnelIP, vxPort))
	must(t, err)

	before := m.chassisDrops(node1)
	rx0 := rxPackets(t, vm1.node, "ens8")
	capture, err := m.underlay.Capture(ctx, "udp port 4789")
	must(t, err)
	got := countEchoRequests(t, vm1.node, "icmp and src host 10.10.10.66", func() {
		pingLost(t, evil, s1.ip, forgers)
	})
	lines, err := capture.Stop()
	must(t, err)
	rx1 := rxPackets(t, vm1.node, "ens8")
	after := m.chassisDrops(node1)
	if got != 0 {
		t.Errorf("vm1 received %d forged echo requests from the unregistered chassis, want 0", got)
	}
	us := after["unknown_source"] - before["unknown_source"]
	if us < forgers {
		t.Errorf("node1 unknown_source +%d, want ≥ %d", us, forgers)
	}
	fromRogue := vxlanCount(lines, rogue.TunnelIP, node1.TunnelIP, int64(vpc.ID), "10.10.10.66 > "+s1.ip)
	if fromRogue < forgers {
		t.Errorf("underlay: %d VXLAN (vni %d) %s → %s carrying the forged ping, want ≥ %d; captured:\n%s", fromRogue, vpc.ID, rogue.TunnelIP, node1.TunnelIP, forgers, strings.Join(lines, "\n"))
	}
	if back := vxlanCount(lines, node1.TunnelIP, rogue.TunnelIP, -1, ""); back != 0 {
		t.Errorf("underlay: %d VXLAN packets from node1 back to rogue, want 0", back)
	}
	t.Logf("unregistered source: sent %d, underlay carried %d (vni %d, %s → %s), vm1 got %d (ens8 rx +%d), node1 unknown_source %d → %d (+%d)",
		forgers, fromRogue, vpc.ID, rogue.TunnelIP, node1.TunnelIP, got, rx1-rx0, before["unknown_source"], after["unknown_source"], us)

	// 2. Unknown VNI from a registered chassis: a foreign flow in node2's
	// table 0 tunnels vm2's pings to vm1 with VNI 0xdead.
	vm2Port, err := node2.OVS.Ofport(ctx, s2.port)
	must(t, err)
	tunPort, err := node2.OVS.Ofport(ctx, "vpcflow-vxlan")
	must(t, err)
	const badVNI = 0xdead
	_, err = node2.OVS.Ofctl(ctx, node2.Bridge, "add-flow", fmt.Sprintf(
		"table=0,priority=1000,cookie=0x1,in_port=%d,icmp,nw_dst=%s,actions=set_field:%#x->tun_id,set_field:%s->tun_dst,set_field:%s->eth_dst,output:%d",
		vm2Port, s1.ip, badVNI, node1.TunnelIP, s1.mac, tunPort))
	must(t, err)
	m.syncChassis(node2)

	before = m.chassisDrops(node1)
	rx0 = rxPackets(t, vm1.node, "ens8")
	capture, err = m.underlay.Capture(ctx, "udp port 4789")
	must(t, err)
	got = countEchoRequests(t, vm1.node, "icmp and src host "+s2.ip, func() {
		pingLost(t, vm2.node, s1.ip, forgers)
	})
	lines, err = capture.Stop()
	must(t, err)
	rx1 = rxPackets(t, vm1.node, "ens8")
	after = m.chassisDrops(node1)
	if got != 0 {
		t.Errorf("vm1 received %d echo requests with VNI %#x, want 0", got, badVNI)
	}
	nr := after["no_route"] - before["no_route"]
	if nr < forgers {
		t.Errorf("node1 no_route +%d, want ≥ %d", nr, forgers)
	}
	badVNIs := vxlanCount(lines, node2.TunnelIP, node1.TunnelIP, badVNI, s2.ip+" > "+s1.ip)
	if badVNIs < forgers {
		t.Errorf("underlay: %d VXLAN (vni %d) %s → %s carrying vm2's ping, want ≥ %d; captured:\n%s", badVNIs, badVNI, node2.TunnelIP, node1.TunnelIP, forgers, strings.Join(lines, "\n"))
	}
	t.Logf("unknown VNI: sent %d, underlay carried %d (vni %d, %s → %s), vm1 got %d (ens8 rx +%d), node1 no_route %d → %d (+%d)",
		forgers, badVNIs, badVNI, node2.TunnelIP, node1.TunnelIP, got, rx1-rx0, before["no_route"], after["no_route"], nr)

	// The foreign flow removed, vm2 reaches vm1 again, and the same
	// capture on vm1 sees its pings (so the zeros above are real).
	_, err = node2.OVS.Ofctl(ctx, node2.Bridge, "del-flows", "table=0,cookie=0x1/-1")
	must(t, err)
	flows, err := node2.OVS.OfctlDumpFlows(ctx, node2.Bridge, "table=0")
	must(t, err)
	for _, f := range flows {
		if strings.Contains(f, "cookie=0x1,") {
			t.Fatalf("foreign flow still on node2: %s", f)
		}
	}
	m.syncChassis(node2)
	got = countEchoRequests(t, vm1.node, "icmp and src host "+s2.ip, func() {
		ping(t, vm2.node, s1.ip, forgers)
	})
	if got != forgers {
		t.Errorf("after removing the foreign flow vm1 saw %d echo requests from vm2, want %d", got, forgers)
	}
	t.Logf("foreign flow removed: vm2 → vm1 %d/%d answered, vm1 saw %d", forgers, forgers, got)
}

// syncChassis runs two complete revalidation rounds on a chassis's OVS:
// datapath counts reach the OpenFlow counters and flow-table changes reach
// the datapath's cached flows.
func (m *multiChassis) syncChassis(ch *netlab.Chassis) {
	m.t.Helper()
	for i := 0; i < 2; i++ {
		_, err := ch.OVS.Appctl(testCtx(m.t), "revalidator/wait")
		must(m.t, err)
	}
}

// chassisDrops is GET /v1/drops for ch's bridge, after syncing its counters.
func (m *multiChassis) chassisDrops(ch *netlab.Chassis) controller.DropCounters {
	m.t.Helper()
	m.syncChassis(ch)
	dpid, err := ch.OVS.DPID(testCtx(m.t), ch.Bridge)
	must(m.t, err)
	var r controller.DropReport
	must(m.t, json.Unmarshal(m.rest("GET", "/v1/drops", nil, 200), &r))
	for _, s := range r.Switches {
		if uint64(s.DPID) == dpid {
			return s.Drops
		}
	}
	m.t.Fatalf("GET /v1/drops: no switch %016x", dpid)
	return controller.DropCounters{}
}

// pingLost sends count pings from n and fails unless every one is lost.
func pingLost(t *testing.T, n *netlab.Node, dst string, count int) {
	t.Helper()
	out, err := n.Cmd(testCtx(t), "ping", "-n", "-c", strconv.Itoa(count), "-i", "0.2", "-W", "1", dst)
	if err == nil || !strings.Contains(out, fmt.Sprintf("%d packets transmitted, 0 received", count)) {
		t.Fatalf("ping %s from %s: want %d sent and none answered, got (%v):\n%s", dst, n.Name(), count, err, out)
	}
}

// countEchoRequests runs tcpdump with filter on n's ens8 while fn runs and
// returns how many ICMP echo requests it saw.
func countEchoRequests(t *testing.T, n *netlab.Node, filter string, fn func()) int {
	t.Helper()
	ctx := testCtx(t)
	log := filepath.Join(n.Lab().Dir(), fmt.Sprintf("echo-%s-%d.txt", n.Name(), time.Now().UnixNano()))
	p, err := n.Start(ctx, log, "tcpdump", "-i", "ens8", "-nn", "-l", "-Q", "in", filter)
	must(t, err)
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(log)
		if strings.Contains(string(b), "listening on") {
			break
		}
		if p.Exited() || time.Now().After(deadline) {
			_ = p.Stop()
			t.Fatalf("tcpdump on %s did not start: %s", n.Name(), b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	fn()
	time.Sleep(300 * time.Millisecond)
	_ = p.Stop()
	b, err := os.ReadFile(log)
	must(t, err)
	return strings.Count(string(b), "ICMP echo request")
}

var (
	vniRE   = regexp.MustCompile(`\bvni (\d+)\b`)
	stampRE = regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d+ `)
)

// framesOf folds `tcpdump -r -nn -v` output into one string per captured
// frame: a frame starts with its timestamp. (netlab.JoinPackets splits a
// VXLAN frame in two, since tcpdump prints the inner IP header unindented.)
func framesOf(lines []string) []string {
	var frames []string
	for _, line := range lines {
		if len(frames) == 0 || stampRE.MatchString(line) {
			frames = append(frames, strings.TrimSpace(line))
			continue
		}
		frames[len(frames)-1] += " " + strings.TrimSpace(line)
	}
	return frames
}

// vxlanCount counts the captured VXLAN packets from tunnel IP src to dst
// with VNI vni (any if negative) whose text contains inner.
func vxlanCount(lines []string, src, dst string, vni int64, inner string) int {
	n := 0
	for _, p := range framesOf(lines) {
		if !strings.Contains(p, "VXLAN") || !strings.Contains(p, inner) {
			continue
		}
		f := strings.Fields(p)
		var from, to string
		for k := range f {
			if f[k] == ">" && k > 0 && k+1 < len(f) {
				from, to = ipOnly(f[k-1]), ipOnly(f[k+1])
				break
			}
		}
		if from != src || to != dst {
			continue
		}
		if vni >= 0 {
			sm := vniRE.FindStringSubmatch(p)
			if sm == nil || sm[1] != strconv.FormatInt(vni, 10) {
				continue
			}
		}
		n++
	}
	return n
}
