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
	undo, err := oc.Setup(ctx, ch, "tcp:127.0.0.1:6653")
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
	if _, err := oc.Setup(ctx, ch, "tcp:127.0.0.1:6653"); err == nil {
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
