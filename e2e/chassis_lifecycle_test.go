package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vpcflow/vpcflow/controller/engine"
	"github.com/vpcflow/vpcflow/controller/pipeline"
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
