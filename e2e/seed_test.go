package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// seed builds the seed scenario of DESIGN.md — br-test, VM1 test1 on vnet1,
// VM2 test2 on vnet3, a Linux bridge and a container in each VM — and
// registers it over REST exactly as a user would: one VPC, one vSwitch,
// then a host and a subnet per VM.
type seed struct {
	*fabric
	dpid     uint64
	vm1, vm2 *vm
	port1    int
	port2    int
}

// newSeed builds the seed scenario; extra are more `vpcflow serve` flags.
func newSeed(t *testing.T, extra ...string) *seed {
	f := newFabric(t, extra...)
	return seedOn(f, f.addBridge("br-test"))
}

// seedOn builds the seed's VMs on br-test (already connected to vpcflow as
// dpid) and registers them, whatever the fabric's transport (plain, TLS).
func seedOn(f *fabric, dpid uint64) *seed {
	s := &seed{fabric: f, dpid: dpid}
	s.vm1, s.vm2 = f.addVM(seedVM1), f.addVM(seedVM2)
	s.port1 = f.plugVM(s.vm1, seedVM1, "br-test")
	s.port2 = f.plugVM(s.vm2, seedVM2, "br-test")

	f.rest("POST", "/v1/vpcs", map[string]any{"name": "vpc-seed"}, 201)
	f.rest("POST", "/v1/vpcs/vpc-seed/vswitches",
		map[string]any{"name": "vsw-a", "cidr": "10.10.10.0/24", "gateway": "10.10.10.1"}, 201)
	for _, v := range []vmSpec{seedVM1, seedVM2} {
		// Attached by bridge + interface: only OVSDB can tell vpcflow
		// the ofport.
		f.rest("POST", "/v1/vpcs/vpc-seed/hosts", map[string]any{"name": v.name, "vswitch": "vsw-a",
			"ip": v.ip, "mac": v.mac, "bridge": "br-test", "interface": v.port}, 201)
		f.rest("POST", "/v1/vpcs/vpc-seed/subnets",
			map[string]any{"cidr": netip.MustParsePrefix(v.bridgeCIDR).Masked().String(), "host": v.name}, 201)
	}
	return s
}

// TestSeedScenario is acceptance test #1: the seed blog's topology, driven
// only by the REST API and OVS connecting to vpcflow.
func TestSeedScenario(t *testing.T) {
	s := newSeed(t)

	out := ping(t, s.vm1.container, "172.18.3.4", 3)
	if !strings.Contains(out, "ttl=62") {
		t.Fatalf("want ttl=62 (one hop in each VM, none in the fabric):\n%s", out)
	}
	t.Logf("testns1 → 172.18.3.4:\n%s", out)
	ping(t, s.vm2.container, "172.18.1.3", 3)

	// TCP in both directions, container to container.
	tcpRoundTrip(t, s.vm2.container, s.vm1.container, "172.18.3.4", 5001)
	tcpRoundTrip(t, s.vm1.container, s.vm2.container, "172.18.1.3", 5002)

	// VM to VM, and every neighbour at the gateway MAC.
	ping(t, s.vm1.node, "10.10.10.12", 2)
	ping(t, s.vm2.node, "10.10.10.11", 2)
	for _, c := range []struct {
		v  *vm
		ip string
	}{{s.vm1, "10.10.10.1"}, {s.vm1, "10.10.10.12"}, {s.vm2, "10.10.10.1"}, {s.vm2, "10.10.10.11"}} {
		if got := neighMAC(t, c.v.node, c.ip); got != topology.GatewayMACString {
			t.Errorf("%s: neighbour %s at %q, want %s", c.v.node.Name(), c.ip, got, topology.GatewayMACString)
		}
	}
	t.Logf("ip neigh in test1:\n%s", s.vm1.node.MustCmd(t, "ip", "neigh", "show", "dev", "ens8"))

	// The switch holds exactly the pipeline's flows: not one more, not one
	// less; and they are the golden seed table of the pipeline's tests.
	s.assertSwitchHoldsDesired()
	s.assertSwitchHoldsGolden()
}

// assertSwitchHoldsGolden checks with `ovs-ofctl diff-flows` that br-test
// holds exactly controller/pipeline/testdata/seed.golden, the table the
// pipeline's unit tests pin for the seed (there vnet1 is port 1 and vnet3
// port 2, as OVS numbers them here).
func (s *seed) assertSwitchHoldsGolden() {
	t := s.t
	if s.port1 != 1 || s.port2 != 2 {
		t.Fatalf("vnet1/vnet3 are ports %d/%d, the golden table has 1/2", s.port1, s.port2)
	}
	golden, err := filepath.Abs("../controller/pipeline/testdata/seed.golden")
	must(t, err)
	out, err := exec.Command("ovs-ofctl", "-O", "OpenFlow13", "diff-flows", golden,
		"unix:"+filepath.Join(s.ovs.Rundir, "br-test.mgmt")).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("br-test differs from seed.golden (%v):\n%s", err, out)
	}
	t.Logf("br-test holds exactly controller/pipeline/testdata/seed.golden")
}

// desiredFlows computes, with vpcflow's pipeline and engine over the
// objects the REST API returns, the table br-test must hold.
func (s *seed) desiredFlows() []openflow.Flow {
	return s.referenceTable(attachments{dpid: s.dpid, bridge: "br-test",
		ports: map[string]uint32{"test1": uint32(s.port1), "test2": uint32(s.port2)}})
}

// assertSwitchHoldsDesired checks with `ovs-ofctl diff-flows` (OVS's own
// parser and comparison) that br-test holds exactly the desired flows.
func (s *seed) assertSwitchHoldsDesired() { s.assertBrTestHolds(s.desiredFlows()) }

// assertBrTestHolds checks with `ovs-ofctl diff-flows` that br-test holds
// exactly flows.
func (s *seed) assertBrTestHolds(flows []openflow.Flow) {
	t := s.t
	t.Helper()
	var b strings.Builder
	for i := range flows {
		b.WriteString(flows[i].String())
		b.WriteByte('\n')
	}
	file := filepath.Join(s.lab.Dir(), "desired-br-test.flows")
	must(t, os.WriteFile(file, []byte(b.String()), 0o644))
	out, err := exec.Command("ovs-ofctl", "-O", "OpenFlow13", "diff-flows", file,
		"unix:"+filepath.Join(s.ovs.Rundir, "br-test.mgmt")).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("br-test differs from the desired table (%v):\n%s\ndesired:\n%s", err, out, b.String())
	}
	t.Logf("br-test holds exactly the %d desired flows", len(flows))
}

// TestSubnetDeleteStopsTrafficAndReAddRestores removes the route entry of
// VM2's containers and puts it back.
func TestSubnetDeleteStopsTrafficAndReAddRestores(t *testing.T) {
	s := newSeed(t)
	ping(t, s.vm1.container, "172.18.3.4", 2)
	s.rest("DELETE", "/v1/vpcs/vpc-seed/subnets/172.18.3.0-24", nil, 204)
	pingFails(t, s.vm1.container, "172.18.3.4")
	s.rest("POST", "/v1/vpcs/vpc-seed/subnets", map[string]any{"cidr": "172.18.3.0/24", "host": "test2"}, 201)
	ping(t, s.vm1.container, "172.18.3.4", 2)
	s.assertSwitchHoldsDesired()
}

// TestPortAddedAfterHostRegistered registers VM2 before its NIC exists on
// the bridge; the OVSDB monitor picks the port (and its late ofport) up.
func TestPortAddedAfterHostRegistered(t *testing.T) {
	f := newFabric(t)
	f.addBridge("br-test")
	vm1, vm2 := f.addVM(seedVM1), f.addVM(seedVM2)
	f.plugVM(vm1, seedVM1, "br-test")
	f.rest("POST", "/v1/vpcs", map[string]any{"name": "vpc-seed"}, 201)
	f.rest("POST", "/v1/vpcs/vpc-seed/vswitches", map[string]any{"name": "vsw-a", "cidr": "10.10.10.0/24", "gateway": "10.10.10.1"}, 201)
	// Both hosts and subnets in one batch each: all or nothing.
	f.rest("POST", "/v1/vpcs/vpc-seed/hosts", []map[string]any{
		{"name": "test1", "vswitch": "vsw-a", "ip": "10.10.10.11", "mac": seedVM1.mac, "bridge": "br-test", "interface": "vnet1"},
		{"name": "test2", "vswitch": "vsw-a", "ip": "10.10.10.12", "mac": seedVM2.mac, "bridge": "br-test", "interface": "vnet3"},
	}, 201)
	f.rest("POST", "/v1/vpcs/vpc-seed/subnets", []map[string]any{
		{"cidr": "172.18.1.0/24", "host": "test1"}, {"cidr": "172.18.3.0/24", "host": "test2"},
	}, 201)
	pingFails(t, vm1.container, "172.18.3.4")

	f.plugVM(vm2, seedVM2, "br-test")
	f.eventually("route to VM2 after its port appeared", 10*time.Second, func() error {
		_, err := vm1.container.Cmd(testCtx(t), "ping", "-n", "-c", "1", "-W", "1", "172.18.3.4")
		return err
	})
	out := ping(t, vm1.container, "172.18.3.4", 3)
	if !strings.Contains(out, "ttl=62") {
		t.Fatalf("want ttl=62:\n%s", out)
	}
}

var durationRE = regexp.MustCompile(`duration=([0-9.]+)s`)

// durations maps each flow (cookie, table, priority, match, actions) of a
// bridge to its age in seconds.
func (f *fabric) durations(bridge string) map[string]float64 {
	out, err := exec.Command("ovs-ofctl", "-O", "OpenFlow13", "dump-flows",
		"unix:"+filepath.Join(f.ovs.Rundir, bridge+".mgmt")).CombinedOutput()
	must(f.t, err)
	ages := map[string]float64{}
	for _, line := range strings.Split(string(out), "\n") {
		m := durationRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		age, _ := strconv.ParseFloat(m[1], 64)
		key := durationRE.ReplaceAllString(line, "")
		key = regexp.MustCompile(`n_packets=\d+, n_bytes=\d+, `).ReplaceAllString(key, "")
		key = regexp.MustCompile(`idle_age=\d+, `).ReplaceAllString(key, "")
		ages[strings.TrimSpace(key)] = age
	}
	return ages
}

// assertNotReinstalled checks that every flow of before is still there and
// has kept ageing (it was never deleted and added again).
func (f *fabric) assertNotReinstalled(bridge string, before map[string]float64, elapsed time.Duration) {
	f.t.Helper()
	after := f.durations(bridge)
	if len(after) != len(before) {
		f.t.Errorf("%s had %d flows, now %d", bridge, len(before), len(after))
	}
	for k, age := range before {
		now, ok := after[k]
		if !ok {
			f.t.Errorf("flow gone or changed: %s", k)
			continue
		}
		if now < age+elapsed.Seconds()-0.5 {
			f.t.Errorf("flow re-added (age %.3fs → %.3fs over %s): %s", age, now, elapsed, k)
		}
	}
}

// TestSecondSwitchDoesNotDisturbFirst connects a second bridge while the
// seed scenario runs: br-test's flows are not touched and traffic goes on.
func TestSecondSwitchDoesNotDisturbFirst(t *testing.T) {
	s := newSeed(t)
	ping(t, s.vm1.container, "172.18.3.4", 2)
	before := s.durations("br-test")
	start := time.Now()
	time.Sleep(1100 * time.Millisecond)
	dpid2 := s.addBridge("br-two")
	if dpid2 == s.dpid {
		t.Fatal("second bridge has the first one's dpid")
	}
	ping(t, s.vm1.container, "172.18.3.4", 2)
	s.assertNotReinstalled("br-test", before, time.Since(start)-200*time.Millisecond)
	// The new bridge got the pipeline defaults and nothing else.
	lines := s.flowDump("br-two")
	if len(lines) != len(pipeline.Default().Defaults()) {
		t.Errorf("br-two has %d flows, want the %d pipeline defaults:\n%s", len(lines), len(pipeline.Default().Defaults()), strings.Join(lines, "\n"))
	}
}

// TestControllerRestartLeavesCorrectFlowsAlone kills the controller, starts
// it again from its store, and checks that no flow was re-added and traffic
// never stopped.
func TestControllerRestartLeavesCorrectFlowsAlone(t *testing.T) {
	s := newSeed(t)
	ping(t, s.vm1.container, "172.18.3.4", 2)
	before := s.durations("br-test")
	start := time.Now()
	must(t, s.ctrl.Kill())
	// fail_mode=secure: the datapath keeps forwarding without a controller.
	ping(t, s.vm1.container, "172.18.3.4", 2)
	s.startController()
	s.waitSwitch(s.dpid)
	ping(t, s.vm1.container, "172.18.3.4", 2)
	s.assertNotReinstalled("br-test", before, time.Since(start)-time.Second)
	log, err := os.ReadFile(s.logPath)
	must(t, err)
	if !regexp.MustCompile(`switch reconciled.*"added": 0, "deleted": 0`).Match(log) {
		t.Errorf("restart reconciliation sent flow-mods; log:\n%s", tail(string(log), 30))
	}
	// The store brought everything back.
	var hosts []topology.Host
	must(t, json.Unmarshal(s.rest("GET", "/v1/vpcs/vpc-seed/hosts", nil, 200), &hosts))
	names := []string{}
	for _, h := range hosts {
		names = append(names, h.Name)
	}
	sort.Strings(names)
	if fmt.Sprint(names) != "[test1 test2]" {
		t.Errorf("hosts after restart: %v", names)
	}
}

var _ = context.Background
