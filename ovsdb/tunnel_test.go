package ovsdb

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"
)

const tunnelPort = "vpcflow-vxlan"

// pendingTunnelOps connects the way EnsureTunnelPort does and returns how
// many operations it would send now.
func pendingTunnelOps(t *testing.T, o *testOVS, bridge, port string) int {
	t.Helper()
	ctx := withTimeout(t, 10*time.Second)
	ep, err := ParseEndpoint(o.endpoint)
	if err != nil {
		t.Fatal(err)
	}
	c, err := connectForTunnel(ctx, testLogger(t), ep, connOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ops, err := tunnelOps(ctx, c, bridge, port, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range ops {
		t.Logf("pending op: %+v", op)
	}
	return len(ops)
}

// waitOFPort waits until ovs-vswitchd has given the interface an ofport
// and returns it.
func waitOFPort(t *testing.T, o *testOVS, iface string) int {
	t.Helper()
	var n int
	waitFor(t, 10*time.Second, iface+" to get an ofport", func() bool {
		v, err := strconv.Atoi(o.vsctl("get", "Interface", iface, "ofport"))
		n = v
		return err == nil && v > 0
	})
	return n
}

func TestEnsureTunnelPortCreatesAndIsIdempotent(t *testing.T) {
	o := startOVS(t)
	ctx := withTimeout(t, 30*time.Second)
	if err := SetupBridge(ctx, testLogger(t), o.endpoint, "br-vpc", SetupOptions{Create: true, DatapathType: "netdev"}); err != nil {
		t.Fatal(err)
	}
	o.vsctl("add-port", "br-vpc", "vnet1", "--", "set", "Interface", "vnet1", "type=internal")
	vnet1Before := o.vsctl("list", "Interface", "vnet1")

	if err := EnsureTunnelPort(ctx, testLogger(t), o.endpoint, "br-vpc", tunnelPort); err != nil {
		t.Fatal(err)
	}
	expectVsctl(t, o, "vxlan", "get", "Interface", tunnelPort, "type")
	expectVsctl(t, o, "{key=flow, remote_ip=flow}", "get", "Interface", tunnelPort, "options")
	expectVsctl(t, o, "br-vpc", "port-to-br", tunnelPort)
	expectVsctl(t, o, "vnet1\n"+tunnelPort, "list-ifaces", "br-vpc")
	expectVsctl(t, o, "vnet1\n"+tunnelPort, "list-ports", "br-vpc")
	ofport := waitOFPort(t, o, tunnelPort)
	t.Logf("%s has ofport %d", tunnelPort, ofport)
	if e := o.vsctl("get", "Interface", tunnelPort, "error"); e != "[]" {
		t.Errorf("ovs-vswitchd reports an error on the tunnel port: %s", e)
	}

	before := dbState(o)
	if n := pendingTunnelOps(t, o, "br-vpc", tunnelPort); n != 0 {
		t.Errorf("after EnsureTunnelPort, %d operations still pending, want 0", n)
	}
	if err := EnsureTunnelPort(ctx, testLogger(t), o.endpoint, "br-vpc", tunnelPort); err != nil {
		t.Fatalf("second EnsureTunnelPort: %v", err)
	}
	if after := dbState(o); after != before {
		t.Errorf("second EnsureTunnelPort changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if got := waitOFPort(t, o, tunnelPort); got != ofport {
		t.Errorf("ofport changed from %d to %d", ofport, got)
	}
	if got := o.vsctl("list", "Interface", "vnet1"); got != vnet1Before {
		t.Errorf("another port was touched:\nbefore:\n%s\nafter:\n%s", vnet1Before, got)
	}
}

func TestEnsureTunnelPortFixesWrongPort(t *testing.T) {
	o := startOVS(t)
	ctx := withTimeout(t, 30*time.Second)
	if err := SetupBridge(ctx, testLogger(t), o.endpoint, "br-vpc", SetupOptions{Create: true, DatapathType: "netdev"}); err != nil {
		t.Fatal(err)
	}
	// A GRE port with a fixed remote and extra options, plus an unrelated
	// VXLAN port that must be left alone.
	o.vsctl("add-port", "br-vpc", tunnelPort, "--", "set", "Interface", tunnelPort,
		"type=gre", "options:remote_ip=192.0.2.9", "options:tos=inherit")
	o.vsctl("add-port", "br-vpc", "other-vxlan", "--", "set", "Interface", "other-vxlan",
		"type=vxlan", "options:remote_ip=192.0.2.7", "options:dst_port=4790")
	otherBefore := o.vsctl("--columns=_uuid,name,type,options", "list", "Interface", "other-vxlan")
	ifaceUUID := o.vsctl("get", "Interface", tunnelPort, "_uuid")
	portUUID := o.vsctl("get", "Port", tunnelPort, "_uuid")

	if err := EnsureTunnelPort(ctx, testLogger(t), o.endpoint, "br-vpc", tunnelPort); err != nil {
		t.Fatal(err)
	}
	expectVsctl(t, o, "vxlan", "get", "Interface", tunnelPort, "type")
	expectVsctl(t, o, "{key=flow, remote_ip=flow}", "get", "Interface", tunnelPort, "options")
	expectVsctl(t, o, ifaceUUID, "get", "Interface", tunnelPort, "_uuid")
	expectVsctl(t, o, portUUID, "get", "Port", tunnelPort, "_uuid")
	if got := o.vsctl("--columns=_uuid,name,type,options", "list", "Interface", "other-vxlan"); got != otherBefore {
		t.Errorf("another port was touched:\nbefore:\n%s\nafter:\n%s", otherBefore, got)
	}
	waitOFPort(t, o, tunnelPort)
	if n := pendingTunnelOps(t, o, "br-vpc", tunnelPort); n != 0 {
		t.Errorf("after the fix, %d operations still pending, want 0", n)
	}

	// Only the options wrong (a key fixed to one VNI).
	o.vsctl("set", "Interface", tunnelPort, "options:key=5")
	if err := EnsureTunnelPort(ctx, testLogger(t), o.endpoint, "br-vpc", tunnelPort); err != nil {
		t.Fatal(err)
	}
	expectVsctl(t, o, "{key=flow, remote_ip=flow}", "get", "Interface", tunnelPort, "options")

	// A bond named like the tunnel port, whose interfaces are named
	// otherwise: it ends up with exactly the tunnel interface.
	o.vsctl("del-port", "br-vpc", tunnelPort)
	o.vsctl("add-bond", "br-vpc", tunnelPort, "b0", "b1", "--", "set", "Interface", "b0", "type=internal",
		"--", "set", "Interface", "b1", "type=internal")
	if err := EnsureTunnelPort(ctx, testLogger(t), o.endpoint, "br-vpc", tunnelPort); err != nil {
		t.Fatal(err)
	}
	expectVsctl(t, o, "other-vxlan\n"+tunnelPort, "list-ifaces", "br-vpc")
	expectVsctl(t, o, "vxlan", "get", "Interface", tunnelPort, "type")
	expectVsctl(t, o, "{key=flow, remote_ip=flow}", "get", "Interface", tunnelPort, "options")
	if got := o.vsctl("--bare", "--columns=name", "find", "Interface", "name=b0"); got != "" {
		t.Errorf("bond member b0 still exists: %q", got)
	}
	waitOFPort(t, o, tunnelPort)
	if n := pendingTunnelOps(t, o, "br-vpc", tunnelPort); n != 0 {
		t.Errorf("after the bond fix, %d operations still pending, want 0", n)
	}
}

func TestEnsureTunnelPortErrors(t *testing.T) {
	o := startOVSDB(t)
	ctx := withTimeout(t, 20*time.Second)
	o.vsctl("--no-wait", "add-br", "br-a", "--", "add-br", "br-b",
		"--", "add-port", "br-b", tunnelPort,
		"--", "add-port", "br-b", "p1")
	before := dbState(o)

	cases := []struct {
		bridge, port string
		want         []string
	}{
		{"br-missing", tunnelPort, []string{`bridge "br-missing" does not exist`}},
		{"br-a", tunnelPort, []string{`port "vpcflow-vxlan" already exists on bridge "br-b"`, `on bridge "br-a"`}},
		{"", tunnelPort, []string{"empty bridge name"}},
		{"br-a", "", []string{"empty port name"}},
	}
	for _, tc := range cases {
		err := EnsureTunnelPort(ctx, testLogger(t), o.endpoint, tc.bridge, tc.port)
		if err == nil {
			t.Errorf("EnsureTunnelPort(%q, %q) succeeded", tc.bridge, tc.port)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("EnsureTunnelPort(%q, %q) = %q, want it to contain %q", tc.bridge, tc.port, err, w)
			}
		}
		t.Logf("error: %v", err)
	}
	if after := dbState(o); after != before {
		t.Errorf("a failed EnsureTunnelPort changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	for _, ep := range []string{"garbage", "ssl:127.0.0.1:6640", "unix:/nonexistent/vpcflow.sock"} {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err := EnsureTunnelPort(ctx, nil, ep, "br-a", tunnelPort)
		cancel()
		if err == nil || !strings.Contains(err.Error(), `bridge "br-a"`) {
			t.Errorf("EnsureTunnelPort on %q = %v, want an error naming the bridge", ep, err)
		}
	}
}
