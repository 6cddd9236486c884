package ovsdb

import (
	"context"
	"maps"
	"strings"
	"testing"
	"time"
)

// pendingOps connects the way SetupBridge does and returns the operations it
// would send now.
func pendingOps(t *testing.T, o *testOVS, bridge string, opts SetupOptions) int {
	t.Helper()
	ctx := withTimeout(t, 10*time.Second)
	ep, err := ParseEndpoint(o.endpoint)
	if err != nil {
		t.Fatal(err)
	}
	c, err := connectForSetup(ctx, testLogger(t), ep, connOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ops, err := setupOps(ctx, c, bridge, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range ops {
		t.Logf("pending op: %+v", op)
	}
	return len(ops)
}

// dbState is everything SetupBridge could touch, as ovs-vsctl shows it
// (including row UUIDs).
func dbState(o *testOVS) string {
	o.t.Helper()
	return strings.Join([]string{
		o.vsctl("list", "Open_vSwitch"),
		o.vsctl("list", "Bridge"),
		o.vsctl("list", "Controller"),
		o.vsctl("list", "Port"),
		o.vsctl("list", "Interface"),
	}, "\n----\n")
}

func expectVsctl(t *testing.T, o *testOVS, want string, args ...string) {
	t.Helper()
	if got := o.vsctl(args...); got != want {
		t.Errorf("ovs-vsctl %s = %s, want %s", strings.Join(args, " "), got, want)
	}
}

// controllers returns target → connection_mode for every Controller row,
// and the number of rows.
func controllers(t *testing.T, o *testOVS) (map[string]string, int) {
	t.Helper()
	out := o.vsctl("--bare", "--columns=target,connection_mode", "list", "Controller")
	got := map[string]string{}
	rows := 0
	for _, rec := range strings.Split(out, "\n\n") {
		lines := strings.Split(strings.TrimSpace(rec), "\n")
		if len(lines) != 2 {
			continue
		}
		rows++
		got[lines[0]] = lines[1]
	}
	return got, rows
}

// maxBackoffs returns target → max_backoff ("" when unset) for every
// Controller row.
func maxBackoffs(t *testing.T, o *testOVS) map[string]string {
	t.Helper()
	out := o.vsctl("--bare", "--columns=target,max_backoff", "list", "Controller")
	got := map[string]string{}
	for _, rec := range strings.Split(out, "\n\n") {
		lines := strings.Split(strings.TrimSpace(rec), "\n")
		if len(lines) == 0 || lines[0] == "" {
			continue
		}
		got[lines[0]] = ""
		if len(lines) == 2 {
			got[lines[0]] = lines[1]
		}
	}
	return got
}

func TestSetupBridgeCreatesAndIsIdempotent(t *testing.T) {
	o := startOVSDB(t)
	ctx := withTimeout(t, 20*time.Second)
	opts := SetupOptions{
		Create:       true,
		DatapathType: "netdev",
		Controllers:  []string{"tcp:127.0.0.1:6653", "tcp:127.0.0.1:6654"},
	}
	if err := SetupBridge(ctx, testLogger(t), o.endpoint, "br-test", opts); err != nil {
		t.Fatal(err)
	}
	expectVsctl(t, o, "br-test", "list-br")
	expectVsctl(t, o, "[OpenFlow13]", "get", "Bridge", "br-test", "protocols")
	expectVsctl(t, o, "secure", "get", "Bridge", "br-test", "fail_mode")
	expectVsctl(t, o, `"true"`, "get", "Bridge", "br-test", "other_config:disable-in-band")
	expectVsctl(t, o, "netdev", "get", "Bridge", "br-test", "datapath_type")
	expectVsctl(t, o, "tcp:127.0.0.1:6653\ntcp:127.0.0.1:6654", "get-controller", "br-test")
	expectVsctl(t, o, "internal", "get", "Interface", "br-test", "type")
	portUUID := o.vsctl("get", "Port", "br-test", "_uuid")
	expectVsctl(t, o, "["+portUUID+"]", "get", "Bridge", "br-test", "ports")
	expectVsctl(t, o, "br-test", "--bare", "--columns=name", "list", "Interface")
	ctls, rows := controllers(t, o)
	if rows != 2 || ctls["tcp:127.0.0.1:6653"] != "out-of-band" || ctls["tcp:127.0.0.1:6654"] != "out-of-band" {
		t.Errorf("controllers = %v (%d rows), want both targets out-of-band", ctls, rows)
	}
	if got, want := maxBackoffs(t, o), map[string]string{"tcp:127.0.0.1:6653": "1000", "tcp:127.0.0.1:6654": "1000"}; !maps.Equal(got, want) {
		t.Errorf("max_backoff = %v, want %v", got, want)
	}

	before := dbState(o)
	if n := pendingOps(t, o, "br-test", opts); n != 0 {
		t.Errorf("after setup, %d operations still pending, want 0", n)
	}
	if err := SetupBridge(ctx, testLogger(t), o.endpoint, "br-test", opts); err != nil {
		t.Fatalf("second SetupBridge: %v", err)
	}
	if after := dbState(o); after != before {
		t.Errorf("second SetupBridge changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func TestSetupBridgeFixesExistingBridge(t *testing.T) {
	o := startOVSDB(t)
	ctx := withTimeout(t, 20*time.Second)
	o.vsctl("--no-wait", "add-br", "br0",
		"--", "set", "Bridge", "br0", "protocols=OpenFlow10,OpenFlow13", "fail_mode=standalone",
		"other_config:foo=bar", "other_config:disable-in-band=false", "datapath_type=system",
		"--", "add-port", "br0", "vnet1",
		"--", "set-controller", "br0", "tcp:127.0.0.1:6653", "tcp:127.0.0.2:6653")
	keptUUID := o.vsctl("--bare", "--columns=_uuid", "find", "Controller", "target=\"tcp:127.0.0.1:6653\"")
	if keptUUID == "" {
		t.Fatal("no controller row from set-controller")
	}

	opts := SetupOptions{Controllers: []string{"tcp:127.0.0.1:6653", "unix:/tmp/vpcflow-ctl.sock"}}
	if err := SetupBridge(ctx, testLogger(t), o.endpoint, "br0", opts); err != nil {
		t.Fatal(err)
	}
	expectVsctl(t, o, "[OpenFlow13]", "get", "Bridge", "br0", "protocols")
	expectVsctl(t, o, "secure", "get", "Bridge", "br0", "fail_mode")
	expectVsctl(t, o, `{disable-in-band="true", foo=bar}`, "get", "Bridge", "br0", "other_config")
	expectVsctl(t, o, "system", "get", "Bridge", "br0", "datapath_type") // DatapathType "" leaves it
	expectVsctl(t, o, "vnet1", "list-ports", "br0")
	expectVsctl(t, o, "tcp:127.0.0.1:6653\nunix:/tmp/vpcflow-ctl.sock", "get-controller", "br0")
	ctls, rows := controllers(t, o)
	if rows != 2 || ctls["tcp:127.0.0.1:6653"] != "out-of-band" || ctls["unix:/tmp/vpcflow-ctl.sock"] != "out-of-band" {
		t.Errorf("controllers = %v (%d rows), want the two wanted targets out-of-band and the dropped row garbage-collected", ctls, rows)
	}
	if got := o.vsctl("--bare", "--columns=_uuid", "find", "Controller", "target=\"tcp:127.0.0.1:6653\""); got != keptUUID {
		t.Errorf("controller row for a kept target was replaced (%s → %s)", keptUUID, got)
	}
	// The kept row, created by set-controller without max_backoff, got it.
	if got, want := maxBackoffs(t, o), map[string]string{"tcp:127.0.0.1:6653": "1000", "unix:/tmp/vpcflow-ctl.sock": "1000"}; !maps.Equal(got, want) {
		t.Errorf("max_backoff = %v, want %v", got, want)
	}
	if n := pendingOps(t, o, "br0", opts); n != 0 {
		t.Errorf("after setup, %d operations still pending, want 0", n)
	}

	// Changing the datapath type and the controller set later.
	opts = SetupOptions{DatapathType: "netdev"}
	if err := SetupBridge(ctx, testLogger(t), o.endpoint, "br0", opts); err != nil {
		t.Fatal(err)
	}
	expectVsctl(t, o, "netdev", "get", "Bridge", "br0", "datapath_type")
	expectVsctl(t, o, "", "get-controller", "br0")
	if _, rows := controllers(t, o); rows != 0 {
		t.Errorf("%d Controller rows left after clearing the set", rows)
	}
	if n := pendingOps(t, o, "br0", opts); n != 0 {
		t.Errorf("after setup, %d operations still pending, want 0", n)
	}
}

// A controller row with another max_backoff (OVS's default of 8 s, or one
// set by hand) is brought to 1000 ms in place; after that SetupBridge has
// nothing to do.
func TestSetupBridgeSetsControllerMaxBackoff(t *testing.T) {
	o := startOVSDB(t)
	ctx := withTimeout(t, 20*time.Second)
	o.vsctl("--no-wait", "add-br", "br0", "--", "set-controller", "br0", "tcp:127.0.0.1:6653")
	o.vsctl("--no-wait", "set", "Controller", "br0", "max_backoff=8000", "connection_mode=out-of-band")
	uuid := o.vsctl("--bare", "--columns=_uuid", "list", "Controller")
	opts := SetupOptions{Controllers: []string{"tcp:127.0.0.1:6653"}}
	if n := pendingOps(t, o, "br0", opts); n == 0 {
		t.Fatal("max_backoff=8000: SetupBridge would send nothing, want the row corrected")
	}
	if err := SetupBridge(ctx, testLogger(t), o.endpoint, "br0", opts); err != nil {
		t.Fatal(err)
	}
	expectVsctl(t, o, "1000", "get", "Controller", uuid, "max_backoff")
	expectVsctl(t, o, "out-of-band", "get", "Controller", uuid, "connection_mode")
	if n := pendingOps(t, o, "br0", opts); n != 0 {
		t.Errorf("after setup, %d operations still pending, want 0", n)
	}
	before := dbState(o)
	if err := SetupBridge(ctx, testLogger(t), o.endpoint, "br0", opts); err != nil {
		t.Fatal(err)
	}
	if after := dbState(o); after != before {
		t.Errorf("second SetupBridge changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func TestSetupBridgeMissingBridge(t *testing.T) {
	o := startOVSDB(t)
	ctx := withTimeout(t, 10*time.Second)
	err := SetupBridge(ctx, testLogger(t), o.endpoint, "br-missing", SetupOptions{Controllers: []string{"tcp:127.0.0.1:6653"}})
	if err == nil {
		t.Fatal("SetupBridge on a missing bridge without Create succeeded")
	}
	if !strings.Contains(err.Error(), `"br-missing"`) || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("error %q should name the bridge and say it does not exist", err)
	}
	t.Logf("error: %v", err)
	expectVsctl(t, o, "", "list-br")
}

func TestSetupBridgeUninitialisedDatabase(t *testing.T) {
	o := startOVSDB(t)
	o.vsctl("--no-wait", "destroy", "Open_vSwitch", ".")
	err := SetupBridge(withTimeout(t, 10*time.Second), testLogger(t), o.endpoint, "br0", SetupOptions{Create: true})
	if err == nil || !strings.Contains(err.Error(), "Open_vSwitch row") {
		t.Fatalf("err = %v, want one about the missing Open_vSwitch row", err)
	}
}

func TestSetupBridgeRejectsBadInput(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cases := []struct {
		endpoint, bridge string
		opts             SetupOptions
		want             string
	}{
		{"garbage", "br0", SetupOptions{}, "invalid OVSDB endpoint"},
		{"ssl:127.0.0.1:6640", "br0", SetupOptions{}, "needs a TLS configuration"},
		{"unix:/nonexistent/vpcflow.sock", "", SetupOptions{}, "empty bridge name"},
		{"unix:/nonexistent/vpcflow.sock", "br0", SetupOptions{Controllers: []string{"127.0.0.1:6653"}}, "unknown method"},
		{"unix:/nonexistent/vpcflow.sock", "br0", SetupOptions{Controllers: []string{"tcp"}}, "want METHOD:ADDRESS"},
		{"unix:/nonexistent/vpcflow.sock", "br0", SetupOptions{Controllers: []string{"tcp:a:1", "tcp:a:1"}}, "listed twice"},
		{"unix:/nonexistent/vpcflow.sock", "br0", SetupOptions{}, "connecting to unix:/nonexistent/vpcflow.sock"},
	}
	for _, tc := range cases {
		err := SetupBridge(ctx, nil, tc.endpoint, tc.bridge, tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("SetupBridge(%q, %q, %+v) = %v, want error containing %q", tc.endpoint, tc.bridge, tc.opts, err, tc.want)
		}
	}
}
