package controller

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/vpcflow/vpcflow/e2e/netlab"
	"github.com/vpcflow/vpcflow/topology"
)

// Tests of the chassis runtime against a real OVSDB (and ovs-vswitchd where
// ports and dpids matter), through e2e/netlab: skipped where OVS cannot
// run, failures with VPCFLOW_E2E=1.

// ovsRows is `ovs-vsctl list` of every table a chassis setup can touch.
func ovsRows(t *testing.T, o *netlab.OVS) string {
	t.Helper()
	var parts []string
	for _, table := range []string{"Open_vSwitch", "Bridge", "Controller", "Port", "Interface"} {
		parts = append(parts, o.MustVsctl(t, "list", table))
	}
	return strings.Join(parts, "\n----\n")
}

func testLog(t *testing.T) *zap.Logger { return zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)) }

// TestChassisSetupIsAllOrNothing (issue 19.4): a chassis whose tunnel port
// cannot be made (its name is taken on another bridge) is refused, and
// its bridge is left exactly as it was: no protocols, fail_mode or
// controller set before the failure.
func TestChassisSetupIsAllOrNothing(t *testing.T) {
	o := netlab.NewOVS(t, netlab.WithoutVswitchd())
	o.MustVsctl(t, "add-br", "br-vpc", "--", "set", "Bridge", "br-vpc", "fail_mode=standalone")
	o.MustVsctl(t, "add-br", "br-other", "--", "add-port", "br-other", topology.TunnelPortName)
	before := ovsRows(t, o)
	oc := &OVSDBChassis{Log: testLog(t)}
	ch := topology.Chassis{Name: "node1", OVSDB: o.DBEndpoint(), Bridge: "br-vpc", TunnelIP: netip.MustParseAddr("192.0.2.11")}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	undo, err := oc.Setup(ctx, ch, []string{"tcp:127.0.0.1:6653"})
	if err == nil {
		t.Fatal("Setup succeeded with the tunnel port's name taken on another bridge")
	}
	if e, ok := topology.AsError(err); !ok || e.Field != "ovsdb" || !strings.Contains(e.Msg, "br-other") {
		t.Errorf("error %v: want a 400 on ovsdb naming the other bridge", err)
	}
	if undo != nil {
		t.Error("an undo returned with the error")
	}
	if after := ovsRows(t, o); after != before {
		t.Fatalf("a refused chassis changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	// A bridge that does not exist: refused, nothing created.
	ch.Bridge = "br-missing"
	if _, err := oc.Setup(ctx, ch, []string{"tcp:127.0.0.1:6653"}); err == nil {
		t.Fatal("Setup succeeded on a missing bridge")
	}
	if after := ovsRows(t, o); after != before {
		t.Fatalf("a refused chassis changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestChassisSetupUndoneOnRealOVSDB: a chassis the store refuses is set up
// and then undone; the bridge's rows are back exactly as they were.
func TestChassisSetupUndoneOnRealOVSDB(t *testing.T) {
	o := netlab.NewOVS(t, netlab.WithoutVswitchd())
	o.MustVsctl(t, "add-br", "br-vpc", "--", "set", "Bridge", "br-vpc", "fail_mode=standalone", "protocols=OpenFlow10,OpenFlow13",
		"--", "set-controller", "br-vpc", "tcp:192.0.2.1:6653")
	before := ovsRows(t, o)
	b, err := topology.OpenBolt(context.Background(), t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	fb := &failingBackend{Backend: b, fail: true}
	st, err := topology.NewStore(context.Background(), fb, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	c := New(testLog(t), st, Options{Advertise: "tcp:127.0.0.1:6653"})
	ch := &topology.Chassis{Name: "node1", OVSDB: o.DBEndpoint(), Bridge: "br-vpc", TunnelIP: netip.MustParseAddr("192.0.2.11")}
	if _, err := c.Apply(context.Background(), []topology.Op{topology.Create(ch)}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Apply = %v, want the store's error", err)
	}
	if after := ovsRows(t, o); after != before {
		t.Fatalf("the store refused the chassis but its bridge stays changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	fb.fail = false
	if _, err := c.Apply(context.Background(), []topology.Op{topology.Create(ch)}); err != nil {
		t.Fatal(err)
	}
	if got := o.MustVsctl(t, "get-controller", "br-vpc"); got != "tcp:127.0.0.1:6653" {
		t.Errorf("controller %q after the chassis was stored", got)
	}
	if got := o.MustVsctl(t, "get", "Interface", topology.TunnelPortName, "options"); got != "{key=flow, remote_ip=flow}" {
		t.Errorf("tunnel options %q", got)
	}
}

// TestChassisSeveralControllers: a chassis naming every replica's target
// gets a bridge connected to all of them (the replicas then agree on roles
// over OpenFlow), and the status sees no drift.
func TestChassisSeveralControllers(t *testing.T) {
	o := netlab.NewOVS(t)
	ctx := context.Background()
	if err := o.AddBridge(ctx, "br-vpc"); err != nil {
		t.Fatal(err)
	}
	st, err := topology.Open(ctx, t.TempDir(), testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	const targets = "tcp:127.0.0.1:1,tcp:127.0.0.2:1"
	c := New(testLog(t), st, Options{Advertise: targets, PortsWait: time.Second})
	runController(t, c)
	ch := &topology.Chassis{Name: "node1", OVSDB: o.DBEndpoint(), Bridge: "br-vpc", TunnelIP: netip.MustParseAddr("192.0.2.11")}
	if _, err := c.Apply(ctx, []topology.Op{topology.Create(ch)}); err != nil {
		t.Fatal(err)
	}
	const both = "tcp:127.0.0.1:1\ntcp:127.0.0.2:1"
	if got := o.MustVsctl(t, "get-controller", "br-vpc"); got != both {
		t.Errorf("controllers %q, want both replicas'", got)
	}
	prepared := func(s ChassisStatus) bool { return s.Bridge && s.ControllerSet && len(s.Drift) == 0 }
	status := waitStatus(t, c, "node1", "bridge seen with both controllers", prepared)
	if status.Target != targets || len(status.Controllers) != 2 || status.Repairs != 0 {
		t.Errorf("status target %q controllers %q repairs %d", status.Target, status.Controllers, status.Repairs)
	}
	// One replica's target removed by hand: drift, repaired.
	o.MustVsctl(t, "set-controller", "br-vpc", "tcp:127.0.0.1:1")
	status = waitStatus(t, c, "node1", "the missing target repaired", func(s ChassisStatus) bool { return s.Repairs == 1 && prepared(s) })
	t.Logf("repaired, last drift %q", status.LastDrift)
	if got := o.MustVsctl(t, "get-controller", "br-vpc"); got != both {
		t.Errorf("controllers %q after repair", got)
	}
}

// runController runs c (its OVSDB monitors) until the test ends.
func runController(t *testing.T, c *Controller) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("controller did not stop")
		}
	})
}

// waitStatus polls the chassis's status until ok says it is what the test
// waits for.
func waitStatus(t *testing.T, c *Controller, name, what string, ok func(ChassisStatus) bool) ChassisStatus {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, found := c.ChassisStatus(name)
		if found && ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: chassis status %+v", what, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestChassisDriftRestored (issue 19.3): the settings vpcflow gives a
// chassis's bridge are restored when they are changed by hand — the
// tunnel port deleted, the controller removed, fail_mode changed, the
// bridge deleted and created again with a new dpid — and the chassis's
// status says what is there and how often it was repaired.
func TestChassisDriftRestored(t *testing.T) {
	o := netlab.NewOVS(t)
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(o.AddBridge(ctx, "br-vpc"))
	st, err := topology.Open(ctx, t.TempDir(), testLog(t))
	must(err)
	t.Cleanup(func() { _ = st.Close() })
	const target = "tcp:127.0.0.1:1"
	c := New(testLog(t), st, Options{Advertise: target, PortsWait: time.Second})
	runController(t, c)
	_, err = c.Apply(ctx, []topology.Op{topology.Create(&topology.Chassis{Name: "node1", OVSDB: o.DBEndpoint(), Bridge: "br-vpc", TunnelIP: netip.MustParseAddr("192.0.2.11")})})
	must(err)
	prepared := func(s ChassisStatus) bool {
		return s.OVSDB == "connected" && s.Bridge && s.DPID != 0 && s.ControllerSet && s.TunnelPort != nil &&
			s.TunnelPort.FlowBased && s.TunnelPort.OFPort > 0 && len(s.Drift) == 0
	}
	s := waitStatus(t, c, "node1", "prepared", prepared)
	dpid := s.DPID
	if s.Repairs != 0 {
		t.Errorf("repairs %d before any drift", s.Repairs)
	}
	for i, edit := range []struct {
		what string
		args []string
	}{
		{"tunnel port deleted", []string{"del-port", "br-vpc", topology.TunnelPortName}},
		{"controller removed", []string{"del-controller", "br-vpc"}},
		{"fail_mode standalone", []string{"set", "Bridge", "br-vpc", "fail_mode=standalone"}},
		{"tunnel made a plain port", []string{"set", "Interface", topology.TunnelPortName, "type=internal"}},
	} {
		o.MustVsctl(t, edit.args...)
		s = waitStatus(t, c, "node1", "restored after "+edit.what, func(s ChassisStatus) bool {
			return s.Repairs == uint64(i+1) && prepared(s)
		})
		t.Logf("%s: restored, last drift %q", edit.what, s.LastDrift)
	}
	if got := o.MustVsctl(t, "get-controller", "br-vpc"); got != target {
		t.Errorf("controller %q", got)
	}
	// Deleted: seen as gone, nothing re-created; created again by hand
	// (a new dpid, no controller, no tunnel port): prepared again.
	o.MustVsctl(t, "del-br", "br-vpc")
	waitStatus(t, c, "node1", "bridge gone", func(s ChassisStatus) bool { return !s.Bridge })
	time.Sleep(1500 * time.Millisecond)
	if out := o.MustVsctl(t, "list-br"); out != "" {
		t.Fatalf("vpcflow re-created the bridge on its own: %q", out)
	}
	must(o.AddBridge(ctx, "br-vpc"))
	s = waitStatus(t, c, "node1", "re-created bridge prepared", func(s ChassisStatus) bool { return prepared(s) && s.DPID != dpid })
	t.Logf("bridge re-created: dpid %s → %s, repairs %d", dpid, s.DPID, s.Repairs)
}
