package ovsdb

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// rowsState is `ovs-vsctl list` of every table PrepareChassisBridge can
// touch, row UUIDs included.
func rowsState(o *testOVS) string {
	o.t.Helper()
	return strings.Join([]string{
		o.vsctl("list", "Open_vSwitch"),
		o.vsctl("list", "Bridge"),
		o.vsctl("list", "Controller"),
		o.vsctl("list", "Port"),
		o.vsctl("list", "Interface"),
	}, "\n----\n")
}

func expectSame(t *testing.T, what, before, after string) {
	t.Helper()
	if before != after {
		t.Errorf("%s:\nbefore:\n%s\nafter:\n%s", what, before, after)
	}
}

func chassisOpts(controllers ...string) ChassisOptions {
	return ChassisOptions{SetupOptions: SetupOptions{Controllers: controllers}, TunnelPort: tunnelPort}
}

// A bridge set up by hand the way an operator might, then prepared and
// undone: undo gives back every row exactly, UUIDs included (the dropped
// controller row comes back under its old UUID).
func TestPrepareChassisBridgeAndUndo(t *testing.T) {
	o := startOVSDB(t)
	ctx := withTimeout(t, 30*time.Second)
	o.vsctl("add-br", "br0",
		"--", "set", "Bridge", "br0", "protocols=OpenFlow10,OpenFlow13", "fail_mode=standalone",
		"other_config:foo=bar", "other_config:disable-in-band=false",
		"--", "add-port", "br0", "vnet1", "--", "set", "Interface", "vnet1", "external_ids:attached-mac=52:54:00:00:00:01",
		"--", "set-controller", "br0", "tcp:127.0.0.1:6653", "tcp:127.0.0.2:6653")
	kept := o.vsctl("--bare", "--columns=_uuid", "find", "Controller", `target="tcp:127.0.0.1:6653"`)
	dropped := o.vsctl("--bare", "--columns=_uuid", "find", "Controller", `target="tcp:127.0.0.2:6653"`)
	o.vsctl("set", "Controller", kept, "inactivity_probe=7000", "max_backoff=8000", "connection_mode=in-band")
	o.vsctl("set", "Controller", dropped, "external_ids:owner=someone", "controller_rate_limit=200")
	before := rowsState(o)

	u, err := PrepareChassisBridge(ctx, testLogger(t), o.endpoint, "br0", chassisOpts("tcp:127.0.0.1:6653", "tcp:192.0.2.254:6653"))
	if err != nil {
		t.Fatal(err)
	}
	if !u.Changed() {
		t.Fatal("Changed() = false after preparing a bridge that needed it")
	}
	expectVsctl(t, o, "[OpenFlow13]", "get", "Bridge", "br0", "protocols")
	expectVsctl(t, o, "secure", "get", "Bridge", "br0", "fail_mode")
	expectVsctl(t, o, `{disable-in-band="true", foo=bar}`, "get", "Bridge", "br0", "other_config")
	expectVsctl(t, o, "tcp:127.0.0.1:6653\ntcp:192.0.2.254:6653", "get-controller", "br0")
	for _, target := range []string{"tcp:127.0.0.1:6653", "tcp:192.0.2.254:6653"} {
		expectVsctl(t, o, "out-of-band\n1000", "--bare", "--columns=connection_mode,max_backoff", "find", "Controller", `target="`+target+`"`)
	}
	expectVsctl(t, o, "vnet1\n"+tunnelPort, "list-ports", "br0")
	expectVsctl(t, o, "vxlan", "get", "Interface", tunnelPort, "type")
	expectVsctl(t, o, "{key=flow, remote_ip=flow}", "get", "Interface", tunnelPort, "options")
	prepared := rowsState(o)

	// Prepared already: nothing sent, nothing to undo.
	again, err := PrepareChassisBridge(ctx, testLogger(t), o.endpoint, "br0", chassisOpts("tcp:127.0.0.1:6653", "tcp:192.0.2.254:6653"))
	if err != nil {
		t.Fatal(err)
	}
	if again.Changed() {
		t.Error("second PrepareChassisBridge reports a change")
	}
	expectSame(t, "a second PrepareChassisBridge changed the database", prepared, rowsState(o))
	if err := again.Run(ctx); err != nil {
		t.Fatal(err)
	}
	expectSame(t, "undoing a PrepareChassisBridge that changed nothing changed the database", prepared, rowsState(o))

	if err := u.Run(ctx); err != nil {
		t.Fatal(err)
	}
	expectSame(t, "undo did not restore the rows", before, rowsState(o))
	// Twice is harmless: everything is as it was.
	if err := u.Run(ctx); err != nil {
		t.Fatal(err)
	}
	expectSame(t, "a second undo changed the rows", before, rowsState(o))
	var nilUndo *ChassisUndo
	if nilUndo.Changed() || nilUndo.Run(ctx) != nil {
		t.Error("a nil *ChassisUndo is not a no-op")
	}
}

// Undo changes only what Prepare changed: an edit made in between stays.
func TestPrepareChassisBridgeUndoKeepsLaterEdits(t *testing.T) {
	o := startOVSDB(t)
	ctx := withTimeout(t, 30*time.Second)
	o.vsctl("add-br", "br0", "--", "set", "Bridge", "br0", "fail_mode=standalone")
	u, err := PrepareChassisBridge(ctx, testLogger(t), o.endpoint, "br0", chassisOpts("tcp:127.0.0.1:6653"))
	if err != nil {
		t.Fatal(err)
	}
	o.vsctl("add-port", "br0", "vnet9", "--", "set", "Bridge", "br0", "other_config:foo=bar", "external_ids:k=v")
	if err := u.Run(ctx); err != nil {
		t.Fatal(err)
	}
	expectVsctl(t, o, "standalone", "get", "Bridge", "br0", "fail_mode")
	expectVsctl(t, o, "", "get-controller", "br0")
	expectVsctl(t, o, "vnet9", "list-ports", "br0")
	expectVsctl(t, o, "{foo=bar}", "get", "Bridge", "br0", "other_config")
	expectVsctl(t, o, "{k=v}", "get", "Bridge", "br0", "external_ids")
	expectVsctl(t, o, "[]", "get", "Bridge", "br0", "protocols")
	if got := o.vsctl("--bare", "--columns=name", "find", "Interface", "name="+tunnelPort); got != "" {
		t.Errorf("tunnel interface left after undo: %q", got)
	}

	// A bridge deleted since cannot be restored: a clear error.
	u, err = PrepareChassisBridge(ctx, testLogger(t), o.endpoint, "br0", chassisOpts("tcp:127.0.0.1:6653"))
	if err != nil {
		t.Fatal(err)
	}
	o.vsctl("del-br", "br0")
	if err := u.Run(ctx); err == nil || !strings.Contains(err.Error(), "deleted since") {
		t.Errorf("undo on a deleted bridge = %v, want an error saying it was deleted", err)
	}
}

// An existing port named like the tunnel port, of the wrong kind, is
// corrected, and undo gives it back: the GRE interface's type and options,
// and a bond's member interfaces (which OVSDB had deleted) under their UUIDs.
func TestPrepareChassisBridgeUndoRestoresTunnelPort(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup []string
	}{
		{"gre", []string{"add-port", "br0", tunnelPort, "--", "set", "Interface", tunnelPort,
			"type=gre", "options:remote_ip=192.0.2.9", "options:tos=inherit"}},
		{"bond", []string{"add-bond", "br0", tunnelPort, "b0", "b1",
			"--", "set", "Interface", "b0", "external_ids:x=1", "mtu_request=1400",
			"--", "set", "Port", tunnelPort, "bond_mode=active-backup"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := startOVSDB(t)
			ctx := withTimeout(t, 30*time.Second)
			o.vsctl("add-br", "br0", "--", "set-fail-mode", "br0", "secure")
			o.vsctl(tc.setup...)
			before := rowsState(o)
			u, err := PrepareChassisBridge(ctx, testLogger(t), o.endpoint, "br0", chassisOpts("tcp:127.0.0.1:6653"))
			if err != nil {
				t.Fatal(err)
			}
			expectVsctl(t, o, tunnelPort, "list-ifaces", "br0")
			expectVsctl(t, o, "vxlan", "get", "Interface", tunnelPort, "type")
			expectVsctl(t, o, "{key=flow, remote_ip=flow}", "get", "Interface", tunnelPort, "options")
			if err := u.Run(ctx); err != nil {
				t.Fatal(err)
			}
			expectSame(t, "undo did not restore the rows", before, rowsState(o))
		})
	}
}

// A bridge Create made is deleted again by undo, with its ports and
// controllers.
func TestPrepareChassisBridgeCreateAndUndo(t *testing.T) {
	o := startOVSDB(t)
	ctx := withTimeout(t, 30*time.Second)
	o.vsctl("add-br", "br-other")
	before := rowsState(o)
	opts := chassisOpts("tcp:127.0.0.1:6653")
	opts.Create, opts.DatapathType = true, "netdev"
	u, err := PrepareChassisBridge(ctx, testLogger(t), o.endpoint, "br0", opts)
	if err != nil {
		t.Fatal(err)
	}
	expectVsctl(t, o, "br-other\nbr0", "list-br")
	expectVsctl(t, o, tunnelPort, "list-ports", "br0")
	expectVsctl(t, o, "netdev", "get", "Bridge", "br0", "datapath_type")
	expectVsctl(t, o, "tcp:127.0.0.1:6653", "get-controller", "br0")
	if err := u.Run(ctx); err != nil {
		t.Fatal(err)
	}
	expectSame(t, "undo of a created bridge", before, rowsState(o))
}

// A refused preparation sends nothing: the database is exactly as it was.
func TestPrepareChassisBridgeRefusedChangesNothing(t *testing.T) {
	o := startOVSDB(t)
	ctx := withTimeout(t, 30*time.Second)
	o.vsctl("add-br", "br-a", "--", "set", "Bridge", "br-a", "fail_mode=standalone", "protocols=OpenFlow10",
		"--", "add-br", "br-b", "--", "add-port", "br-b", tunnelPort,
		"--", "add-br", "br-c")
	before := rowsState(o)
	create := chassisOpts("tcp:127.0.0.1:6653")
	create.Create = true
	other := chassisOpts("tcp:127.0.0.1:6653")
	other.TunnelPort = "br-c" // the internal port of another bridge
	self := chassisOpts("tcp:127.0.0.1:6653")
	self.TunnelPort = "br-a"
	for _, tc := range []struct {
		bridge string
		opts   ChassisOptions
		want   string
	}{
		{"br-a", chassisOpts("tcp:127.0.0.1:6653"), `port "vpcflow-vxlan" already exists on bridge "br-b"`},
		{"br-new", create, `port "vpcflow-vxlan" already exists on bridge "br-b"`},
		{"br-a", other, `port "br-c" already exists on bridge "br-c"`},
		{"br-a", self, "is the bridge's own (internal) port"},
		{"br-missing", chassisOpts("tcp:127.0.0.1:6653"), "bridge does not exist"},
		{"br-a", chassisOpts("6653"), "want METHOD:ADDRESS"},
		{"br-a", ChassisOptions{SetupOptions: SetupOptions{Controllers: []string{"tcp:127.0.0.1:6653"}}}, "empty tunnel port name"},
	} {
		u, err := PrepareChassisBridge(ctx, testLogger(t), o.endpoint, tc.bridge, tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `"`+tc.bridge+`"`) {
			t.Errorf("PrepareChassisBridge(%s, %+v) = %v, want an error naming the bridge and containing %q", tc.bridge, tc.opts, err, tc.want)
		}
		if u != nil {
			t.Errorf("PrepareChassisBridge(%s) returned an undo with its error", tc.bridge)
		}
		t.Logf("refused: %v", err)
	}
	expectSame(t, "a refused PrepareChassisBridge changed the database", before, rowsState(o))
}

// Someone edits a row between the moment Prepare reads it and the moment
// its transaction arrives (the bridge, a controller it corrects, the tunnel
// interface it corrects): the transaction fails as a whole
// (ErrBridgeChanged) and only that edit is in the database.
func TestPrepareChassisBridgeConcurrentEdit(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit []string
	}{
		{"bridge", []string{"add-port", "br0", "vnet5"}},
		{"controller", []string{"set", "Controller", "br0", "max_backoff=2000"}},
		{"tunnel interface", []string{"set", "Interface", tunnelPort, "options:key=7"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := startOVSDB(t)
			ctx := withTimeout(t, 30*time.Second)
			o.vsctl("add-br", "br0", "--", "set", "Bridge", "br0", "fail_mode=standalone",
				"--", "set-controller", "br0", "tcp:127.0.0.1:6653",
				"--", "add-port", "br0", tunnelPort, "--", "set", "Interface", tunnelPort, "type=gre", "options:remote_ip=192.0.2.1")
			var edited string
			u, err := prepareChassisBridge(ctx, testLogger(t), o.endpoint, "br0", chassisOpts("tcp:127.0.0.1:6653"), func() {
				o.vsctl(tc.edit...)
				edited = rowsState(o)
			})
			if !errors.Is(err, ErrBridgeChanged) || u != nil {
				t.Fatalf("prepare with a concurrent edit = %v, %v; want ErrBridgeChanged", u, err)
			}
			t.Logf("error: %v", err)
			expectSame(t, "a failed transaction left changes", edited, rowsState(o))
			// Again, it goes through.
			if _, err := PrepareChassisBridge(ctx, testLogger(t), o.endpoint, "br0", chassisOpts("tcp:127.0.0.1:6653")); err != nil {
				t.Fatal(err)
			}
			expectVsctl(t, o, "{key=flow, remote_ip=flow}", "get", "Interface", tunnelPort, "options")
			expectVsctl(t, o, "1000", "get", "Controller", "br0", "max_backoff")
		})
	}
}

// With ovs-vswitchd: the tunnel port it makes works (an ofport, no error),
// and undo brings back the bridge's configuration and, for a standalone
// bridge without a controller, its NORMAL flow.
func TestPrepareChassisBridgeWithVswitchd(t *testing.T) {
	o := startOVS(t)
	ctx := withTimeout(t, 30*time.Second)
	o.vsctl("add-br", "br0", "--", "set", "Bridge", "br0", "datapath_type=netdev", "fail_mode=standalone",
		"--", "add-port", "br0", "p1", "--", "set", "Interface", "p1", "type=internal")
	config := func() string {
		return strings.Join([]string{
			o.vsctl("list", "Bridge"),
			o.vsctl("list", "Port"),
			o.vsctl("--columns=_uuid,target,connection_mode,max_backoff,inactivity_probe,external_ids,other_config", "list", "Controller"),
			o.vsctl("--columns=_uuid,name,type,options,ofport", "list", "Interface"),
		}, "\n----\n")
	}
	flows := func() string {
		out, err := o.OfctlDumpFlows(context.Background(), "br0", "--no-stats")
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(out, "\n")
	}
	before, beforeFlows := config(), flows()
	t.Logf("flows before: %q", beforeFlows)

	u, err := PrepareChassisBridge(ctx, testLogger(t), o.endpoint, "br0", chassisOpts("tcp:127.0.0.1:6653"))
	if err != nil {
		t.Fatal(err)
	}
	ofport := waitOFPort(t, o, tunnelPort)
	if e := o.vsctl("get", "Interface", tunnelPort, "error"); e != "[]" {
		t.Errorf("ovs-vswitchd reports an error on the tunnel port: %s", e)
	}
	t.Logf("tunnel port ofport %d; flows while prepared: %q", ofport, flows())
	if err := u.Run(ctx); err != nil {
		t.Fatal(err)
	}
	o.vsctl("--timeout=10", "wait-until", "Bridge", "br0", "fail_mode=standalone") // waits for vswitchd too
	expectSame(t, "undo with ovs-vswitchd", before, config())
	waitFor(t, 5*time.Second, "the NORMAL flow back", func() bool { return flows() == beforeFlows })
}
