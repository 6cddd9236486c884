package controller

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vpcflow/vpcflow/controller/controllertest"
	"github.com/vpcflow/vpcflow/ovsdb"
	"github.com/vpcflow/vpcflow/topology"
)

// TestSecurityGroupFollowsPortEvents: a filtered host whose port appears
// on a second bridge only through OVSDB (no store change) takes its
// group's rules there; when the port goes, the rules go too, and every
// switch holds exactly what the engine wants throughout.
func TestSecurityGroupFollowsPortEvents(t *testing.T) {
	r := newRig(t, Options{OVSDBEndpoints: []string{"unix:/test/db.sock"}})
	// Every port map is a new one, as the monitor sends them.
	bridges := func(vnet9 bool) []ovsdb.Bridge {
		two := ovsdb.Bridge{Name: "br-two", DPID: 2, Ports: map[string]ovsdb.Port{}}
		if vnet9 {
			two.Ports["vnet9"] = ovsdb.Port{Name: "vnet9", OFPort: 9}
		}
		return append(seedBridges(), two)
	}
	r.c.BridgesChanged("unix:/test/db.sock", bridges(false))
	one, two := controllertest.NewDatapath(1), controllertest.NewDatapath(2)
	r.connect(one)
	r.connect(two)
	ops := append(seedOps(),
		topology.Create(&topology.SecurityGroup{VPC: "vpc-seed", Name: "web"}),
		topology.Create(&topology.SecurityGroupRule{VPC: "vpc-seed", Group: "web", Direction: "ingress", Priority: 1, Protocol: "tcp", PortRange: "80/80", CIDR: netip.MustParsePrefix("0.0.0.0/0")}),
		topology.Create(&topology.Host{VPC: "vpc-seed", Name: "test3", VSwitch: "vsw-a", IP: netip.MustParseAddr("10.10.10.13"), MAC: mac("52:58:00:98:c0:13"),
			Bridge: "br-two", Interface: "vnet9", SecurityGroups: []string{"web"}}))
	out := r.apply(ops...)
	rule := out[len(out)-2].SecurityGroupRule()
	conj := "conj_id=" + itoa(rule.ID)
	if strings.Contains(two.Text(), conj) || strings.Contains(one.Text(), conj) {
		t.Fatalf("rules installed before any member is attached:\n%s", two.Text())
	}
	r.c.BridgesChanged("unix:/test/db.sock", bridges(true))
	waitFor(t, "the group's rules on br-two", func() bool { return strings.Contains(two.Text(), conj) })
	if strings.Contains(one.Text(), conj) {
		t.Errorf("rules on br-test, where web has no member:\n%s", one.Text())
	}
	r.exact()
	r.c.BridgesChanged("unix:/test/db.sock", bridges(false))
	waitFor(t, "the group's rules gone from br-two", func() bool { return !strings.Contains(two.Text(), conj) })
	r.exact()
}

// TestSecurityGroupRestartSendsNothing: a controller started again on the
// same store computes the same flows (zones and group bits come from the
// store), so a reconnecting switch gets no flow-mod.
func TestSecurityGroupRestartSendsNothing(t *testing.T) {
	r := newRig(t, Options{OVSDBEndpoints: []string{"unix:/test/db.sock"}})
	r.c.BridgesChanged("unix:/test/db.sock", seedBridges())
	dp := controllertest.NewDatapath(1)
	r.connect(dp)
	r.apply(seedOps()...)
	r.apply(topology.Create(&topology.SecurityGroup{VPC: "vpc-seed", Name: "web"}), topology.Create(&topology.SecurityGroup{VPC: "vpc-seed", Name: "db"}))
	r.apply(topology.Create(&topology.SecurityGroupRule{VPC: "vpc-seed", Group: "web", Direction: "ingress", Priority: 5, Protocol: "udp", PortRange: "53/53", SecurityGroup: "db"}))
	r.apply(topology.Update(&topology.Host{VPC: "vpc-seed", Name: "test1", SecurityGroups: []string{"web"}}),
		topology.Update(&topology.Host{VPC: "vpc-seed", Name: "test2", SecurityGroups: []string{"db", "web"}}))
	if !strings.Contains(dp.Text(), "ct(table=22,zone=") {
		t.Fatalf("no security group flows:\n%s", dp.Text())
	}
	r.disconnect(1)
	// A new controller over the same store.
	r2 := newRigOn(t, r.store, Options{OVSDBEndpoints: []string{"unix:/test/db.sock"}})
	r2.c.BridgesChanged("unix:/test/db.sock", seedBridges())
	before := dp.Mods()
	r2.connect(dp)
	if n := dp.Mods() - before; n != 0 {
		t.Fatalf("the restarted controller sent %d flow-mods, want 0", n)
	}
	r2.exact()
}

func itoa(v uint32) string { return strconv.FormatUint(uint64(v), 10) }

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
