package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vpcflow/vpcflow/api"
	"github.com/vpcflow/vpcflow/controller"
	"github.com/vpcflow/vpcflow/controller/engine"
	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/e2e/netlab"
	"github.com/vpcflow/vpcflow/topology"
)

// chassisPorts resolves chassis hosts from the ofports each chassis's
// OVSDB reports (read with ovs-vsctl by the test, not through vpcflow).
type chassisPorts map[string]map[string]uint32 // chassis → interface → ofport

func (p chassisPorts) dpidOf(places map[string]pipeline.ChassisPlace, ch string) uint64 {
	return places[ch].DPID
}

type chassisAttachments struct {
	places map[string]pipeline.ChassisPlace
	ports  chassisPorts
}

func (a chassisAttachments) Attachment(h topology.Host) (pipeline.Attachment, bool) {
	pl, ok := a.places[h.Chassis]
	if !ok || h.Chassis == "" {
		return pipeline.Attachment{}, false
	}
	p, ok := a.ports[h.Chassis][h.Interface]
	return pipeline.Attachment{DPID: pl.DPID, OFPort: p}, ok
}

// expectDesired compares the flows of every chassis bridge of the lab
// (registered or not) with the table vpcflow's pipeline and engine make,
// from scratch, of the objects the REST API returns and the ports and
// dpids the chassis's OVS reports; it logs each bridge's flow count.
func (m *multiChassis) expectDesired(stage string, mtu int) {
	m.t.Helper()
	ctx := testCtx(m.t)
	var chassis []topology.Chassis
	must(m.t, json.Unmarshal(m.rest("GET", "/v1/chassis", nil, 200), &chassis))
	at := chassisAttachments{places: map[string]pipeline.ChassisPlace{}, ports: chassisPorts{}}
	for _, ch := range chassis {
		lab := m.chassis[ch.Name]
		dpid, err := lab.OVS.DPID(ctx, lab.Bridge)
		must(m.t, err)
		tp, err := lab.OVS.Ofport(ctx, topology.TunnelPortName)
		must(m.t, err)
		at.places[ch.Name] = pipeline.ChassisPlace{Chassis: ch, DPID: dpid, TunnelPort: uint32(tp)}
		at.ports[ch.Name] = map[string]uint32{}
		out, err := lab.OVS.Vsctl(ctx, "--bare", "--columns=name,ofport", "list", "Interface")
		must(m.t, err)
		f := strings.Fields(out)
		for i := 0; i+1 < len(f); i += 2 {
			var n uint32
			if _, err := fmt.Sscan(f[i+1], &n); err == nil {
				at.ports[ch.Name][f[i]] = n
			}
		}
	}
	ref := m.referenceEngine(at, at.places, mtu)
	var counts []string
	for _, name := range []string{"node1", "node2", "node3"} {
		lab, ok := m.chassis[name]
		if !ok {
			continue
		}
		dpid, err := lab.OVS.DPID(ctx, lab.Bridge)
		must(m.t, err)
		want := engine.Sorted(ref.Desired(dpid))
		var b strings.Builder
		for i := range want {
			b.WriteString(want[i].String())
			b.WriteByte('\n')
		}
		file := filepath.Join(m.lab.Dir(), "desired-"+name+".flows")
		must(m.t, os.WriteFile(file, []byte(b.String()), 0o644))
		m.eventually(stage+": "+name+" holds the desired table", 10*time.Second, func() error {
			out, err := exec.Command("ovs-ofctl", "-O", "OpenFlow13", "diff-flows", file, lab.OVS.MgmtTarget(lab.Bridge)).CombinedOutput()
			if err != nil || len(strings.TrimSpace(string(out))) > 0 {
				return fmt.Errorf("%s differs from the %d desired flows (%v):\n%s", name, len(want), err, out)
			}
			return nil
		})
		counts = append(counts, fmt.Sprintf("%s %d", name, len(want)))
	}
	m.t.Logf("after %s: flows %s (each equal to the desired table)", stage, strings.Join(counts, ", "))
}

// noFlowMentions fails if any chassis bridge holds a flow containing s.
func (m *multiChassis) noFlowMentions(stage, s string) {
	m.t.Helper()
	for name, lab := range m.chassis {
		lines, err := lab.OVS.OfctlDumpFlows(testCtx(m.t), lab.Bridge)
		must(m.t, err)
		for _, l := range lines {
			if strings.Contains(l, s) {
				m.t.Errorf("%s: %s still holds a flow with %s: %s", stage, name, s, l)
			}
		}
	}
}

// TestCascadesOnThreeChassis (issue 19.1): every cascading delete — host,
// vSwitch, VPC, chassis — and a chassis added again with another tunnel
// IP leave every chassis holding exactly the desired table (counted and
// compared flow by flow with ovs-ofctl diff-flows), with no flow left for
// what was deleted, and traffic where it should be.
func TestCascadesOnThreeChassis(t *testing.T) {
	m := newMultiChassis(t, "node1", "node2", "node3")
	for _, n := range []string{"node1", "node2", "node3"} {
		m.registerChassis(n)
	}
	must(t, m.underlay.ResolveTunnelNeighbors(testCtx(t)))
	m.rest("POST", "/v1/vpcs", map[string]any{"name": "vpc-a"}, 201)
	m.rest("POST", "/v1/vpcs/vpc-a/vswitches", map[string]any{"name": "vsw-a", "cidr": "10.10.10.0/24", "gateway": "10.10.10.1"}, 201)
	m.rest("POST", "/v1/vpcs/vpc-a/vswitches", map[string]any{"name": "vsw-b", "cidr": "10.10.20.0/24"}, 201)
	specs, nodes := []vmSpec{chVM1, chVM2, chVM3}, []string{"node1", "node2", "node3"}
	vms := make([]*vm, len(specs))
	for i, s := range specs {
		vms[i] = m.addVM(s)
		m.plugVMOn(vms[i], s, nodes[i])
		m.addHost("vpc-a", s, nodes[i])
	}
	// vm4 in vsw-b on node2, b1 and b3 of vpc-b on node1 and node3: ports
	// of their own (no VM behind them), so that they have flows.
	for _, p := range []struct{ node, port string }{{"node2", "vnet4"}, {"node1", "vnetb1"}, {"node3", "vnetb3"}} {
		lab := m.chassis[p.node]
		_, err := lab.OVS.Vsctl(testCtx(t), "add-port", lab.Bridge, p.port, "--", "set", "Interface", p.port, "type=internal")
		must(t, err)
	}
	// vm4 in vsw-b on node2, with a route entry.
	m.rest("POST", "/v1/vpcs/vpc-a/hosts", map[string]any{"name": "vm4", "vswitch": "vsw-b", "ip": "10.10.20.14",
		"mac": "52:58:00:98:c0:b4", "chassis": "node2", "interface": "vnet4"}, 201)
	m.rest("POST", "/v1/vpcs/vpc-a/subnets", map[string]any{"cidr": "172.18.7.0/24", "host": "vm4"}, 201)
	// A second VPC on node1 and node3.
	m.rest("POST", "/v1/vpcs", map[string]any{"name": "vpc-b"}, 201)
	m.rest("POST", "/v1/vpcs/vpc-b/vswitches", map[string]any{"name": "vsw-a", "cidr": "10.10.10.0/24"}, 201)
	for _, b := range []struct{ name, port, ip, mac, node string }{
		{"b1", "vnetb1", "10.10.10.11", "52:58:00:bb:00:01", "node1"}, {"b3", "vnetb3", "10.10.10.13", "52:58:00:bb:00:03", "node3"},
	} {
		m.rest("POST", "/v1/vpcs/vpc-b/hosts", map[string]any{"name": b.name, "vswitch": "vsw-a", "ip": b.ip, "mac": b.mac,
			"chassis": b.node, "interface": b.port}, 201)
		m.rest("POST", "/v1/vpcs/vpc-b/subnets", map[string]any{"cidr": "172.19." + b.ip[len(b.ip)-2:] + ".0/24", "host": b.name}, 201)
	}
	m.expectDesired("setup", 1500)
	ping(t, vms[0].container, "172.18.3.4", 2)
	ping(t, vms[0].container, "172.18.5.4", 2)

	m.rest("DELETE", "/v1/vpcs/vpc-a/hosts/vm2?cascade=true", nil, 204)
	m.expectDesired("host vm2 deleted with its route entry", 1500)
	m.noFlowMentions("host vm2 deleted", "172.18.3.0/24")
	pingFails(t, vms[0].container, "172.18.3.4")

	m.rest("DELETE", "/v1/vpcs/vpc-a/vswitches/vsw-b?cascade=true", nil, 204)
	m.expectDesired("vSwitch vsw-b deleted with vm4 and its route entry", 1500)
	m.noFlowMentions("vSwitch vsw-b deleted", "10.10.20.")
	m.noFlowMentions("vSwitch vsw-b deleted", "172.18.7.0")

	m.rest("DELETE", "/v1/vpcs/vpc-b?cascade=true", nil, 204)
	m.expectDesired("VPC vpc-b deleted with everything in it", 1500)
	m.noFlowMentions("VPC vpc-b deleted", "52:58:00:bb:00:")

	m.rest("DELETE", "/v1/chassis/node3?cascade=true", nil, 204)
	m.expectDesired("chassis node3 deleted with vm3", 1500)
	m.noFlowMentions("chassis node3 deleted", "192.168.100.13")
	m.noFlowMentions("chassis node3 deleted", "172.18.5.0")
	pingFails(t, vms[0].container, "172.18.5.4")

	// node3 comes back with another tunnel IP (its underlay address
	// changed), and vm3 with it.
	n3 := m.chassis["node3"]
	n3.Node.MustCmd(t, "ip", "addr", "del", "192.168.100.13/24", "dev", "br-phy")
	n3.Node.MustCmd(t, "ip", "addr", "add", "192.168.100.23/24", "dev", "br-phy")
	// Its OpenFlow connection came from the old address: it reconnects
	// from the new one (the old connection no longer answers echoes).
	m.eventually("node3's bridge reconnected from 192.168.100.23", 30*time.Second, func() error {
		var sws []struct {
			DPID   topology.DPID `json:"dpid"`
			Remote string        `json:"remote"`
		}
		must(t, json.Unmarshal(m.rest("GET", "/v1/switches", nil, 200), &sws))
		for _, s := range sws {
			if uint64(s.DPID) == m.dpids["node3"] && strings.HasPrefix(s.Remote, "192.168.100.23:") {
				return nil
			}
		}
		return fmt.Errorf("switches %+v", sws)
	})
	m.rest("POST", "/v1/chassis", map[string]any{"name": "node3", "ovsdb": n3.OVS.DBEndpoint(), "bridge": n3.Bridge, "tunnel_ip": "192.168.100.23"}, 201)
	m.addHost("vpc-a", chVM3, "node3")
	m.expectDesired("chassis node3 added again with tunnel IP 192.168.100.23", 1500)
	m.noFlowMentions("node3 re-added", "192.168.100.13")
	m.eventually("vm1's container → vm3's over the new tunnel IP", 20*time.Second, func() error {
		_, err := vms[0].container.Cmd(testCtx(t), "ping", "-n", "-c", "1", "-W", "1", "172.18.5.4")
		return err
	})
	ping(t, vms[2].container, "172.18.1.3", 2)
}

// chassisStatus is GET /v1/chassis/{name}'s status.
func (m *multiChassis) chassisStatus(name string) controller.ChassisStatus {
	m.t.Helper()
	var d api.ChassisDetail
	must(m.t, json.Unmarshal(m.rest("GET", "/v1/chassis/"+name, nil, 200), &d))
	if d.Status == nil {
		m.t.Fatalf("GET /v1/chassis/%s has no status", name)
	}
	return *d.Status
}

// pingEventually waits until one ping from n to dst gets through.
func (m *multiChassis) pingEventually(what string, n *netlab.Node, dst string) time.Duration {
	m.t.Helper()
	start := time.Now()
	m.eventually(what, 30*time.Second, func() error {
		_, err := n.Cmd(testCtx(m.t), "ping", "-n", "-c", "1", "-W", "1", dst)
		return err
	})
	return time.Since(start)
}

// TestChassisHandEditsRestored (issue 19.3): on the lab, node2's bridge is
// edited by hand — its VXLAN port deleted, its controller removed (OVS
// flushes its flows), the bridge deleted and created again (a new dpid) —
// and each time cross-chassis traffic comes back by itself; chassis show
// says what is there and counts the repairs.
func TestChassisHandEditsRestored(t *testing.T) {
	m := newMultiChassis(t, "node1", "node2")
	m.registerChassis("node1")
	m.registerChassis("node2")
	must(t, m.underlay.ResolveTunnelNeighbors(testCtx(t)))
	m.rest("POST", "/v1/vpcs", map[string]any{"name": "vpc-a"}, 201)
	m.rest("POST", "/v1/vpcs/vpc-a/vswitches", map[string]any{"name": "vsw-a", "cidr": "10.10.10.0/24", "gateway": "10.10.10.1"}, 201)
	v1, v2 := m.addVM(chVM1), m.addVM(chVM2)
	m.plugVMOn(v1, chVM1, "node1")
	m.plugVMOn(v2, chVM2, "node2")
	m.addHost("vpc-a", chVM1, "node1")
	m.addHost("vpc-a", chVM2, "node2")
	ping(t, v1.container, "172.18.3.4", 2)
	st := m.chassisStatus("node2")
	if st.OVSDB != "connected" || !st.Bridge || !st.SwitchConnected || !st.ControllerSet || st.TunnelPort == nil ||
		!st.TunnelPort.FlowBased || len(st.Drift) != 0 || st.Repairs != 0 || st.UnderlayMTU != 1500 || st.MTUWarning != "" {
		t.Fatalf("node2 status before any edit: %+v", st)
	}
	n2 := m.chassis["node2"]
	ctx := testCtx(t)
	vsctl := func(args ...string) {
		t.Helper()
		_, err := n2.OVS.Vsctl(ctx, args...)
		must(t, err)
	}
	for i, edit := range []struct {
		what string
		do   func()
	}{
		{"VXLAN port deleted", func() { vsctl("del-port", n2.Bridge, topology.TunnelPortName) }},
		{"controller removed", func() { vsctl("del-controller", n2.Bridge) }},
		{"bridge deleted and created again", func() {
			vsctl("del-br", n2.Bridge)
			must(t, n2.OVS.AddBridge(ctx, n2.Bridge))
			vsctl("add-port", n2.Bridge, chVM2.port)
		}},
	} {
		edit.do()
		took := m.pingEventually("traffic back after "+edit.what, v1.container, "172.18.3.4")
		ping(t, v2.container, "172.18.1.3", 2)
		st = m.chassisStatus("node2")
		t.Logf("%s: traffic back after %s; repairs %d, last drift %q", edit.what, ms(took), st.Repairs, st.LastDrift)
		if st.Repairs < uint64(i+1) || len(st.Drift) != 0 || !st.SwitchConnected || !st.ControllerSet {
			t.Errorf("after %s: status %+v", edit.what, st)
		}
	}
	dpid, err := n2.OVS.DPID(ctx, n2.Bridge)
	must(t, err)
	if st.DPID != topology.DPID(dpid) || dpid == m.dpids["node2"] {
		t.Errorf("status dpid %s, bridge dpid %016x (was %016x)", st.DPID, dpid, m.dpids["node2"])
	}
	m.expectDesired("node2 repaired", 1500)
	show := m.runCLI("chassis", "show", "node2")
	for _, want := range []string{"ovsdb state: connected", "switch connected: yes", "controller set: yes", "tunnel port ok: yes", "drift: none", "repairs: 3"} {
		if !strings.Contains(strings.Join(strings.Fields(show), " "), want) {
			t.Errorf("chassis show lacks %q:\n%s", want, show)
		}
	}
	t.Logf("vpcflow chassis show node2:\n%s", show)
}

// TestChassisOVSDBDownKeepsFlows (issue 19.6): vpcflow restarts while
// node2's ovsdb-server is down. After the OVSDB wait the switches are
// reconciled, and nothing of node2's is deleted: not its own flows, not
// the tunnel routes to vm2 on node1; vm1 keeps reaching vm2. When node2's
// OVSDB is back, nothing needs to change.
func TestChassisOVSDBDownKeepsFlows(t *testing.T) {
	m := newMultiChassisWith(t, []string{"--ovsdb-wait", "2s"}, "node1", "node2")
	m.registerChassis("node1")
	m.registerChassis("node2")
	must(t, m.underlay.ResolveTunnelNeighbors(testCtx(t)))
	m.rest("POST", "/v1/vpcs", map[string]any{"name": "vpc-a"}, 201)
	m.rest("POST", "/v1/vpcs/vpc-a/vswitches", map[string]any{"name": "vsw-a", "cidr": "10.10.10.0/24", "gateway": "10.10.10.1"}, 201)
	v1, v2 := m.addVM(chVM1), m.addVM(chVM2)
	m.plugVMOn(v1, chVM1, "node1")
	m.plugVMOn(v2, chVM2, "node2")
	m.addHost("vpc-a", chVM1, "node1")
	m.addHost("vpc-a", chVM2, "node2")
	ping(t, v1.container, "172.18.3.4", 2)
	n1, n2 := m.chassis["node1"], m.chassis["node2"]
	flows1, flows2 := m.flowLines(n1), m.flowLines(n2)

	must(t, m.ctrl.Kill())
	must(t, n2.OVS.StopOVSDB())
	m.startController()
	// node2's ovs-vswitchd does not reconnect either while its
	// ovsdb-server is away (its main loop waits for the database); node1
	// is reconciled after the 2s OVSDB wait.
	m.waitSwitch(m.dpids["node1"])
	time.Sleep(time.Second)
	log := m.controllerLog()
	if !strings.Contains(log, "kept flows whose OVSDB is not known yet") {
		t.Errorf("no 'kept' line in the log:\n%s", tail(log, 30))
	}
	if got := m.flowLines(n1); got != flows1 {
		t.Errorf("node1's flows changed while node2's OVSDB is down:\nnow\n%s\nwas\n%s", got, flows1)
	}
	// (node2's own bridge cannot be dumped while its ovsdb-server is down:
	// ovs-vswitchd does not answer then.)
	if st := m.chassisStatus("node2"); st.OVSDB != "never-connected" || st.OVSDBError == "" {
		t.Errorf("node2 status while its OVSDB is down: %+v", st)
	}
	// vswitchd of node2 does not forward while its ovsdb-server is away
	// (see TestFaultOVSDBRestart): traffic is checked once it is back.
	must(t, n2.OVS.StartOVSDB(testCtx(t)))
	m.eventually("node2's OVSDB connected", 20*time.Second, func() error {
		if st := m.chassisStatus("node2"); st.OVSDB != "connected" {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	m.pingEventually("vm1 → vm2's container", v1.container, "172.18.3.4")
	m.expectDesired("node2's OVSDB back", 1500)
	if got := m.flowLines(n1); got != flows1 {
		t.Errorf("node1's flows changed once node2's OVSDB was back:\nnow\n%s\nwas\n%s", got, flows1)
	}
	if got := m.flowLines(n2); got != flows2 {
		t.Errorf("node2's flows changed:\nnow\n%s\nwas\n%s", got, flows2)
	}
}

// flowLines is a chassis bridge's flows without counters, sorted.
func (m *multiChassis) flowLines(ch *netlab.Chassis) string {
	m.t.Helper()
	out, err := exec.Command("ovs-ofctl", "-O", "OpenFlow13", "--timeout=10", "--no-stats", "--sort", "dump-flows", ch.OVS.MgmtTarget(ch.Bridge)).CombinedOutput()
	must(m.t, err)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	sort.Strings(lines) // --sort orders by priority only
	return strings.Join(lines, "\n")
}

// TestUnderlayMTUTooBigIsReported (issue 19.7): vpcflow started with
// --underlay-mtu 9000 over a 1500-byte underlay says so: a warning in its
// log and in chassis show, with the MTU of the chassis's uplink read from
// its OVSDB (br-phy's ul0).
func TestUnderlayMTUTooBigIsReported(t *testing.T) {
	m := newMultiChassisWith(t, []string{"--underlay-mtu", "9000"}, "node1")
	m.registerChassis("node1")
	var st controller.ChassisStatus
	m.eventually("node1's underlay MTU read", 10*time.Second, func() error {
		st = m.chassisStatus("node1")
		if st.UnderlayMTU == 0 {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	if st.UnderlayMTU != 1500 || st.UnderlayInterface != netlab.ChassisUnderlayIf || st.ConfiguredMTU != 9000 ||
		!strings.Contains(st.MTUWarning, "--underlay-mtu 9000 is larger than the MTU of ul0 (1500") {
		t.Errorf("status %+v", st)
	}
	if !strings.Contains(m.controllerLog(), "underlay MTU too small for --underlay-mtu") {
		t.Error("no warning in the log")
	}
	show := m.runCLI("chassis", "show", "node1")
	if !strings.Contains(show, "WARNING:") || !strings.Contains(show, "1500 (ul0)") {
		t.Errorf("chassis show:\n%s", show)
	}
	t.Logf("vpcflow chassis show node1:\n%s", show)
	// Raised to 9000 on the underlay: the warning goes.
	must(t, m.underlay.SetMTU(testCtx(t), 9000))
	m.eventually("warning gone", 10*time.Second, func() error {
		if st := m.chassisStatus("node1"); st.MTUWarning != "" || st.UnderlayMTU != 9000 {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
}

// runCLI runs the vpcflow CLI against the fabric's REST API (inside its
// namespace) and returns its output.
func (f *fabric) runCLI(args ...string) string {
	f.t.Helper()
	out, err := f.phys.Cmd(testCtx(f.t), append([]string{vpcflowBin, "--api", "http://" + restAddr}, args...)...)
	if err != nil {
		f.t.Fatalf("vpcflow %v: %v\n%s", args, err, out)
	}
	return out
}
