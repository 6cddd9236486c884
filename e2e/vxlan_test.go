package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vpcflow/vpcflow/e2e/netlab"
)

// multiChassis is one VPC fabric over several physical hosts: each chassis
// is a namespace with its own private OVS, joined by an underlay L2 segment;
// vpcflow runs in the underlay's namespace at ctrlIP and every chassis
// reaches it over the underlay.
type multiChassis struct {
	*fabric
	underlay *netlab.Underlay
	chassis  map[string]*netlab.Chassis
	dpids    map[string]uint64
}

const (
	underlayCIDR = "192.168.100.0/24"
	ctrlIP       = "192.168.100.254"
)

func newMultiChassis(t *testing.T, names ...string) *multiChassis {
	t.Helper()
	return newMultiChassisWith(t, nil, names...)
}

// newMultiChassisWith is newMultiChassis with more `vpcflow serve` flags.
func newMultiChassisWith(t *testing.T, extra []string, names ...string) *multiChassis {
	t.Helper()
	ctx := testCtx(t)
	lab := netlab.New(t)
	ul, err := lab.AddUnderlay(ctx, "underlay", underlayCIDR)
	must(t, err)
	must(t, ul.Node.AddAddr(ctx, netlab.UnderlayBridge, ctrlIP+"/24"))
	m := &multiChassis{
		// vpcflow runs in the underlay namespace; chassis reach its
		// OpenFlow listener over the underlay, and it finds their OVSDBs
		// through the chassis it is told about (no --ovsdb).
		fabric: &fabric{t: t, lab: lab, phys: ul.Node, http: ul.Node.HTTPClient(), dataDir: filepath.Join(lab.Dir(), "vpcflow-data"),
			serveFlags: append([]string{"--openflow", ctrlIP + ":6653", "--advertise", "tcp:" + ctrlIP + ":6653"}, extra...)},
		underlay: ul, chassis: map[string]*netlab.Chassis{}, dpids: map[string]uint64{},
	}
	for i, name := range names {
		ch, err := ul.AddChassis(ctx, name, fmt.Sprintf("192.168.100.%d", 11+i), "br-vpc")
		must(t, err)
		// vpcflow creates its own flow-based VXLAN port; drop the
		// harness's so the test proves vpcflow's.
		_, err = ch.OVS.Vsctl(ctx, "del-port", "br-vpc", netlab.VXLANPort)
		must(t, err)
		m.chassis[name] = ch
	}
	m.startController()
	return m
}

// registerChassis registers a chassis over REST and waits until its bridge
// has connected and been reconciled.
func (m *multiChassis) registerChassis(name string) {
	m.t.Helper()
	ch := m.chassis[name]
	m.rest("POST", "/v1/chassis", map[string]any{"name": name, "ovsdb": ch.OVS.DBEndpoint(),
		"bridge": ch.Bridge, "tunnel_ip": ch.TunnelIP}, 201)
	ctx := testCtx(m.t)
	dpid, err := ch.OVS.DPID(ctx, ch.Bridge)
	must(m.t, err)
	m.dpids[name] = dpid
	m.waitSwitch(dpid)
	m.eventually("VXLAN port on "+name, 10*time.Second, func() error {
		out, err := ch.OVS.Vsctl(ctx, "get", "interface", "vpcflow-vxlan", "ofport")
		if err != nil || strings.TrimSpace(out) == "[]" || strings.HasPrefix(strings.TrimSpace(out), "-") {
			return fmt.Errorf("ofport %q: %v", out, err)
		}
		return nil
	})
}

// plugVMOn links a VM's ens8 to a chassis's integration bridge.
func (m *multiChassis) plugVMOn(v *vm, s vmSpec, chassis string) {
	m.t.Helper()
	ctx := testCtx(m.t)
	ch := m.chassis[chassis]
	_, err := m.lab.LinkToOVS(ctx, v.node, "ens8", s.mac, ch.Node, ch.OVS, ch.Bridge, s.port, true)
	must(m.t, err)
	// VXLAN adds 50 bytes: with a 1500-byte underlay the VM NIC must be
	// 1450 (docs/pipeline.md, "MTU").
	v.node.MustCmd(m.t, "ip", "link", "set", "ens8", "mtu", "1450")
	v.node.MustCmd(m.t, "ip", "addr", "add", s.ip+"/24", "dev", "ens8")
	v.node.MustCmd(m.t, "ip", "route", "add", "default", "via", "10.10.10.1")
}

func (m *multiChassis) addHost(vpc string, s vmSpec, chassis string) {
	m.t.Helper()
	m.rest("POST", "/v1/vpcs/"+vpc+"/hosts", map[string]any{"name": s.name, "vswitch": "vsw-a",
		"ip": s.ip, "mac": s.mac, "chassis": chassis, "interface": s.port}, 201)
	if s.bridgeCIDR != "" {
		cidr := strings.TrimSuffix(s.bridgeCIDR, ".1/24") + ".0/24"
		m.rest("POST", "/v1/vpcs/"+vpc+"/subnets", map[string]any{"cidr": cidr, "host": s.name}, 201)
	}
}

var (
	chVM1 = vmSpec{name: "vm1", port: "vnet1", ip: "10.10.10.11", mac: "52:58:00:98:c0:81",
		bridge: "vpc1", bridgeCIDR: "172.18.1.1/24", container: "ctr1", ctrIP: "172.18.1.3/24", ctrGW: "172.18.1.1"}
	chVM2 = vmSpec{name: "vm2", port: "vnet2", ip: "10.10.10.12", mac: "52:58:00:98:c0:92",
		bridge: "vpc2", bridgeCIDR: "172.18.3.1/24", container: "ctr2", ctrIP: "172.18.3.4/24", ctrGW: "172.18.3.1"}
	chVM3 = vmSpec{name: "vm3", port: "vnet3", ip: "10.10.10.13", mac: "52:58:00:98:c0:a3",
		bridge: "vpc3", bridgeCIDR: "172.18.5.1/24", container: "ctr3", ctrIP: "172.18.5.4/24", ctrGW: "172.18.5.1"}
)

// TestVXLANThreeChassis spreads the seed scenario's VMs, with containers
// behind them, over three chassis: every pair talks (ping with ttl=62, TCP
// both ways) through VXLAN carrying the VPC's VNI, and a second VPC with
// the same addresses stays apart.
func TestVXLANThreeChassis(t *testing.T) {
	m := newMultiChassis(t, "node1", "node2", "node3")
	for _, n := range []string{"node1", "node2", "node3"} {
		m.registerChassis(n)
	}
	must(t, m.underlay.ResolveTunnelNeighbors(testCtx(t)))

	var vpc struct {
		ID uint32 `json:"id"`
	}
	must(t, json.Unmarshal(m.rest("POST", "/v1/vpcs", map[string]any{"name": "vpc-a"}, 201), &vpc))
	m.rest("POST", "/v1/vpcs/vpc-a/vswitches", map[string]any{"name": "vsw-a", "cidr": "10.10.10.0/24", "gateway": "10.10.10.1"}, 201)
	specs := []vmSpec{chVM1, chVM2, chVM3}
	nodes := []string{"node1", "node2", "node3"}
	vms := make([]*vm, len(specs))
	for i, s := range specs {
		vms[i] = m.addVM(s)
		m.plugVMOn(vms[i], s, nodes[i])
		m.addHost("vpc-a", s, nodes[i])
	}

	capture, err := m.underlay.Capture(testCtx(t), "udp port 4789")
	must(t, err)
	for i := range vms {
		for j := range vms {
			if i == j {
				continue
			}
			dst := strings.TrimSuffix(specs[j].ctrIP, "/24")
			out := ping(t, vms[i].container, dst, 2)
			if !strings.Contains(out, "ttl=62") {
				t.Errorf("%s → %s: want ttl=62:\n%s", specs[i].container, dst, out)
			}
			tcpRoundTrip(t, vms[j].container, vms[i].container, dst, 6000+10*i+j)
		}
	}
	lines, err := capture.Stop()
	must(t, err)
	pkts := netlab.JoinPackets(lines)
	vni := fmt.Sprintf("vni %d", vpc.ID)
	seen := map[string]bool{}
	for _, p := range pkts {
		if !strings.Contains(p, "VXLAN") {
			continue
		}
		if !strings.Contains(p, vni+" ") && !strings.HasSuffix(p, vni) && !strings.Contains(p, vni+"\n") {
			t.Errorf("VXLAN packet without the VPC's %s: %s", vni, p)
		}
		f := strings.Fields(p)
		for k := range f {
			if f[k] == ">" && k > 0 && k+1 < len(f) {
				seen[ipOnly(f[k-1])+">"+ipOnly(f[k+1])] = true
				break
			}
		}
	}
	t.Logf("underlay capture: %d packets, tunnel pairs %v", len(pkts), keys(seen))
	for _, a := range []string{"192.168.100.11", "192.168.100.12", "192.168.100.13"} {
		for _, b := range []string{"192.168.100.11", "192.168.100.12", "192.168.100.13"} {
			if a != b && !seen[a+">"+b] {
				t.Errorf("no VXLAN %s → %s on the underlay", a, b)
			}
		}
	}

	// A second tenant with the same addresses on node1 and node3.
	m.rest("POST", "/v1/vpcs", map[string]any{"name": "vpc-b"}, 201)
	m.rest("POST", "/v1/vpcs/vpc-b/vswitches", map[string]any{"name": "vsw-a", "cidr": "10.10.10.0/24", "gateway": "10.10.10.1"}, 201)
	b1 := vmSpec{name: "b1", port: "vnetb1", ip: "10.10.10.11", mac: "52:58:00:bb:00:01"}
	b2 := vmSpec{name: "b2", port: "vnetb2", ip: "10.10.10.12", mac: "52:58:00:bb:00:02"}
	vb1, vb2 := m.addVM(b1), m.addVM(b2)
	m.plugVMOn(vb1, b1, "node1")
	m.plugVMOn(vb2, b2, "node3")
	m.addHost("vpc-b", b1, "node1")
	m.addHost("vpc-b", b2, "node3")
	ping(t, vb1.node, "10.10.10.12", 3) // b1 → b2 across chassis, in vpc-b
	ping(t, vms[0].node, "10.10.10.12", 3)
	// vm1 (vpc-a) reaching 10.10.10.12 must reach vm2 (node2), never b2.
	assertNoPacketsFrom(t, vb2.node, func() { ping(t, vms[0].node, "10.10.10.12", 3) })

	// A VM moves to another chassis: deleted (with its route entry) and
	// registered again on node2; its containers' traffic follows.
	ctx := testCtx(t)
	m.rest("DELETE", "/v1/vpcs/vpc-a/hosts/vm3?cascade=true", nil, 204)
	pingFails(t, vms[0].container, "172.18.5.4")
	n3 := m.chassis["node3"]
	_, err = n3.OVS.Vsctl(ctx, "del-port", n3.Bridge, chVM3.port)
	must(t, err)
	_, err = n3.Node.Cmd(ctx, "ip", "link", "del", chVM3.port)
	must(t, err)
	m.plugVMOn(vms[2], chVM3, "node2")
	m.addHost("vpc-a", chVM3, "node2")
	// The host's flows follow node2's OVSDB port event, which may come
	// after the REST answer: wait for the first reply, then count.
	m.eventually("vm3's containers reachable on node2", 10*time.Second, func() error {
		_, err := vms[0].container.Cmd(ctx, "ping", "-n", "-c", "1", "-W", "1", "172.18.5.4")
		return err
	})
	out := ping(t, vms[0].container, "172.18.5.4", 3)
	if !strings.Contains(out, "ttl=62") {
		t.Errorf("after the move: want ttl=62:\n%s", out)
	}
	tcpRoundTrip(t, vms[2].container, vms[0].container, "172.18.5.4", 6100)

	// A chassis deleted (its hosts with it) and registered again.
	m.rest("DELETE", "/v1/chassis/node3?cascade=true", nil, 204)
	pingFails(t, vb1.node, "10.10.10.12")
	m.registerChassis("node3")
	m.addHost("vpc-b", b2, "node3")
	m.eventually("b1 → b2 after node3 came back", 10*time.Second, func() error {
		_, err := vb1.node.Cmd(testCtx(t), "ping", "-n", "-c", "1", "-W", "1", "10.10.10.12")
		return err
	})
	ping(t, vb1.node, "10.10.10.12", 3)
}

// assertNoPacketsFrom captures ICMP on n's ens8 while fn runs and fails if
// any echo request arrived (n belongs to another tenant than fn's traffic).
func assertNoPacketsFrom(t *testing.T, n *netlab.Node, fn func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pcap := filepath.Join(os.TempDir(), fmt.Sprintf("vpcflow-iso-%d.txt", time.Now().UnixNano()))
	defer os.Remove(pcap)
	p, err := n.Start(ctx, pcap, "tcpdump", "-i", "ens8", "-nn", "-e", "-l", "icmp")
	must(t, err)
	time.Sleep(500 * time.Millisecond)
	fn()
	time.Sleep(300 * time.Millisecond)
	_ = p.Stop()
	b, _ := os.ReadFile(pcap)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "ICMP echo request") {
			t.Errorf("%s received another tenant's packet: %s", n.Name(), line)
		}
	}
}

func ipOnly(s string) string {
	s = strings.TrimSuffix(s, ":")
	if i := strings.LastIndex(s, "."); i > 0 && strings.Count(s, ".") == 4 {
		return s[:i]
	}
	return s
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestVXLANPathMTU leaves the VMs at MTU 1500 over a 1500-byte underlay, so
// their biggest packets cannot fit a VXLAN frame. The fabric must not drop
// them silently: the gateway answers ICMP fragmentation-needed (mtu 1450),
// the senders' path-MTU discovery shrinks their packets, TCP works, and the
// drops are counted as too_big.
func TestVXLANPathMTU(t *testing.T) {
	m := newMultiChassis(t, "node1", "node2")
	m.registerChassis("node1")
	m.registerChassis("node2")
	must(t, m.underlay.ResolveTunnelNeighbors(testCtx(t)))
	m.rest("POST", "/v1/vpcs", map[string]any{"name": "vpc-a"}, 201)
	m.rest("POST", "/v1/vpcs/vpc-a/vswitches", map[string]any{"name": "vsw-a", "cidr": "10.10.10.0/24", "gateway": "10.10.10.1"}, 201)
	v1, v2 := m.addVM(chVM1), m.addVM(chVM2)
	m.plugVMOn(v1, chVM1, "node1")
	m.plugVMOn(v2, chVM2, "node2")
	for _, v := range []*vm{v1, v2} {
		v.node.MustCmd(t, "ip", "link", "set", "ens8", "mtu", "1500")
	}
	m.addHost("vpc-a", chVM1, "node1")
	m.addHost("vpc-a", chVM2, "node2")

	ping(t, v1.container, "172.18.3.4", 2)
	// A full-size packet with DF: answered by the gateway, not lost.
	out, err := v1.container.Cmd(testCtx(t), "ping", "-n", "-c", "1", "-W", "2", "-M", "do", "-s", "1472", "172.18.3.4")
	if err == nil || !strings.Contains(out, "Frag needed") || !strings.Contains(out, "mtu = 1450") {
		t.Fatalf("want ICMP fragmentation-needed with mtu 1450 from the gateway, got (%v):\n%s", err, out)
	}
	t.Logf("oversize ping from the container:\n%s", out)
	// The container's kernel learnt the path MTU.
	route := v1.container.MustCmd(t, "ip", "route", "get", "172.18.3.4")
	if !strings.Contains(route, "mtu 1450") {
		t.Errorf("no learnt path MTU in the container's route cache:\n%s", route)
	}
	ping(t, v1.container, "172.18.3.4", 2)
	// TCP with 1500-byte NICs everywhere works thanks to PMTUD.
	tcpRoundTrip(t, v2.container, v1.container, "172.18.3.4", 7001)
	tcpRoundTrip(t, v1.node, v2.node, "10.10.10.11", 7002)

	var report struct {
		Hosts []struct {
			Name  string `json:"name"`
			Drops struct {
				TooBig uint64 `json:"too_big"`
			} `json:"drops"`
		} `json:"hosts"`
	}
	must(t, json.Unmarshal(m.rest("GET", "/v1/drops", nil, 200), &report))
	counted := map[string]uint64{}
	for _, h := range report.Hosts {
		counted[h.Name] = h.Drops.TooBig
	}
	if counted["vm1"] == 0 || counted["vm2"] == 0 {
		t.Errorf("too_big drops per host = %v, want both VMs counted", counted)
	}
	t.Logf("too_big drops per host: %v", counted)
}
