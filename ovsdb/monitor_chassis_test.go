package ovsdb

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vpcflow/vpcflow/e2e/netlab"
)

// The monitor reports what a chassis bridge's settings are, so that drift
// can be seen: a deleted tunnel port, a removed controller, a changed
// fail_mode or tunnel option, a bridge re-created with a new dpid, and the
// MTUs of its interfaces.
func TestMonitorReportsChassisSettings(t *testing.T) {
	o := startOVS(t)
	ctx := withTimeout(t, 60*time.Second)
	const target = "tcp:127.0.0.1:6653"
	opts := chassisOpts(target)
	opts.Create, opts.DatapathType = true, "netdev"
	if _, err := PrepareChassisBridge(ctx, testLogger(t), o.endpoint, "br-vpc", opts); err != nil {
		t.Fatal(err)
	}
	o.vsctl("add-port", "br-vpc", "p1", "--", "set", "Interface", "p1", "type=internal")

	rec := &recorder{t: t, endpoint: o.endpoint}
	startMonitor(t, o.endpoint, rec)
	wait := func(what string, pred func(b Bridge) bool) Bridge {
		t.Helper()
		_, c := rec.waitCall(t, 0, 10*time.Second, what, func(bs []Bridge) bool {
			b, ok := findBridge(bs, "br-vpc")
			return ok && pred(b)
		})
		b, _ := findBridge(c.bridges, "br-vpc")
		return b
	}
	b := wait("the prepared bridge with its dpid, tunnel ofport and MTUs", func(b Bridge) bool {
		return b.DPID != 0 && b.Ports[tunnelPort].OFPort > 0 && b.LocalMTU > 0 && b.Ports["p1"].MTU > 0
	})
	if drift := b.ChassisDrift([]string{target}, tunnelPort); drift != nil {
		t.Errorf("drift on a freshly prepared bridge: %q", drift)
	}
	if want := []Controller{{Target: target, ConnectionMode: "out-of-band", MaxBackoff: ControllerMaxBackoff}}; !slices.Equal(b.Controllers, want) {
		t.Errorf("controllers %+v, want %+v", b.Controllers, want)
	}
	if b.FailMode != "secure" || !slices.Equal(b.Protocols, []string{"OpenFlow13"}) || !b.DisableInBand {
		t.Errorf("settings: fail_mode %q, protocols %v, disable-in-band %v", b.FailMode, b.Protocols, b.DisableInBand)
	}
	if tp := b.Ports[tunnelPort]; !tp.IsFlowTunnel() || tp.Type != "vxlan" {
		t.Errorf("tunnel port %+v", tp)
	}
	if got := o.vsctl("get", "Interface", "br-vpc", "mtu"); got != itoa(b.LocalMTU) {
		t.Errorf("LocalMTU %d, ovs-vsctl says %s", b.LocalMTU, got)
	}
	t.Logf("br-vpc: dpid %016x, local MTU %d, p1 MTU %d", b.DPID, b.LocalMTU, b.Ports["p1"].MTU)
	dpid := b.DPID

	// Each hand edit of issue 19 shows up, with its drift sentence.
	for _, step := range []struct {
		what   string
		vsctl  []string
		pred   func(b Bridge) bool
		drift  string // "" when the bridge is as prepared
		repair bool   // prepare again afterwards
	}{
		{"tunnel port deleted", []string{"del-port", "br-vpc", tunnelPort},
			func(b Bridge) bool { _, ok := b.Ports[tunnelPort]; return !ok }, "tunnel port vpcflow-vxlan is missing", true},
		{"controller removed", []string{"del-controller", "br-vpc"},
			func(b Bridge) bool { return len(b.Controllers) == 0 }, "controllers are [], want [tcp:127.0.0.1:6653]", true},
		{"controller in-band", []string{"set", "Controller", "br-vpc", "connection_mode=in-band"},
			func(b Bridge) bool { return len(b.Controllers) == 1 && b.Controllers[0].ConnectionMode == "in-band" },
			"controller tcp:127.0.0.1:6653 is not out-of-band", true},
		{"fail_mode standalone", []string{"set", "Bridge", "br-vpc", "fail_mode=standalone"},
			func(b Bridge) bool { return b.FailMode == "standalone" }, "fail_mode is standalone, want secure", true},
		{"protocols widened", []string{"set", "Bridge", "br-vpc", "protocols=OpenFlow10,OpenFlow13"},
			func(b Bridge) bool { return len(b.Protocols) == 2 }, "protocols are [OpenFlow10 OpenFlow13], want [OpenFlow13]", true},
		{"in-band enabled", []string{"remove", "Bridge", "br-vpc", "other_config", "disable-in-band"},
			func(b Bridge) bool { return !b.DisableInBand }, "other_config:disable-in-band is not true", true},
		{"tunnel key fixed", []string{"set", "Interface", tunnelPort, "options:key=5"},
			func(b Bridge) bool { return b.Ports[tunnelPort].Options["key"] == "5" }, `tunnel port vpcflow-vxlan is type "vxlan" with options map[key:5 remote_ip:flow]`, true},
		{"p1 MTU", []string{"set", "Interface", "p1", "mtu_request=1400"},
			func(b Bridge) bool { return b.Ports["p1"].MTU == 1400 }, "", false},
		{"local MTU", []string{"set", "Interface", "br-vpc", "mtu_request=1450"},
			func(b Bridge) bool { return b.LocalMTU == 1450 }, "", false},
	} {
		n := rec.count()
		o.vsctl(step.vsctl...)
		_, c := rec.waitCall(t, n, 10*time.Second, step.what, func(bs []Bridge) bool {
			b, ok := findBridge(bs, "br-vpc")
			return ok && step.pred(b)
		})
		b, _ := findBridge(c.bridges, "br-vpc")
		drift := b.ChassisDrift([]string{target}, tunnelPort)
		switch {
		case step.drift == "" && drift != nil:
			t.Errorf("%s: drift %q, want none", step.what, drift)
		case step.drift != "" && (len(drift) != 1 || !strings.HasPrefix(drift[0], step.drift)):
			t.Errorf("%s: drift %q, want one sentence starting %q", step.what, drift, step.drift)
		}
		t.Logf("%s: drift %q", step.what, drift)
		if step.repair {
			n := rec.count()
			if _, err := PrepareChassisBridge(ctx, testLogger(t), o.endpoint, "br-vpc", chassisOpts(target)); err != nil {
				t.Fatal(err)
			}
			rec.waitCall(t, n, 10*time.Second, "repaired after "+step.what, func(bs []Bridge) bool {
				b, ok := findBridge(bs, "br-vpc")
				return ok && b.ChassisDrift([]string{target}, tunnelPort) == nil && b.Ports[tunnelPort].OFPort > 0
			})
		}
	}

	// Deleted and re-created: a new dpid.
	n := rec.count()
	o.vsctl("del-br", "br-vpc")
	rec.waitCall(t, n, 10*time.Second, "br-vpc gone", func(bs []Bridge) bool { _, ok := findBridge(bs, "br-vpc"); return !ok })
	if _, err := PrepareChassisBridge(ctx, testLogger(t), o.endpoint, "br-vpc", opts); err != nil {
		t.Fatal(err)
	}
	b = wait("br-vpc back with a dpid", func(b Bridge) bool { return b.DPID != 0 && b.DPID != dpid })
	t.Logf("re-created br-vpc: dpid %016x (was %016x)", b.DPID, dpid)
}

// The connection state: never connected (with the failed attempts counted)
// until the server is there, connected only after the snapshot was
// delivered, down since the moment the server died, connected again.
func TestMonitorStatus(t *testing.T) {
	o := startOVSDB(t)
	o.vsctl("add-br", "br0")
	if err := o.StopOVSDB(); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{t: t, endpoint: o.endpoint}
	m := NewMonitor(testLogger(t), o.endpoint, rec.onChange)
	if st := m.Status(); st.State != EndpointNeverConnected || !st.Since.IsZero() || st.Endpoint != o.endpoint {
		t.Errorf("Status() before Run = %+v", st)
	}
	m.OnStatus(rec.onStatus)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	started := time.Now()
	go func() { done <- m.Run(ctx) }()
	stopped := false
	defer func() {
		if !stopped {
			cancel()
			<-done
		}
	}()

	st := rec.waitStatus(t, 0, 5*time.Second)
	if st.State != EndpointNeverConnected || st.Since.Before(started) {
		t.Fatalf("first status %+v, want never-connected since Run started", st)
	}
	waitFor(t, 5*time.Second, "failed attempts counted", func() bool { return m.Status().Failures >= 2 })
	if st := m.Status(); st.State != EndpointNeverConnected || !strings.Contains(st.LastError, "connecting to") {
		t.Errorf("Status() while the server is down: %+v", st)
	}
	if _, events := rec.statusSnapshot(); len(events) != 1 {
		t.Errorf("failed attempts were reported through onStatus: %v", events)
	}

	if err := o.StartOVSDB(context.Background()); err != nil {
		t.Fatal(err)
	}
	st = rec.waitStatus(t, 1, 10*time.Second)
	if st.State != EndpointConnected || st.LastError != "" || st.Failures != 0 {
		t.Errorf("status after the server came: %+v", st)
	}
	if _, events := rec.statusSnapshot(); !slices.Equal(events, []string{"status:never-connected", "change", "status:connected"}) {
		t.Errorf("events %v: want the snapshot delivered before connected is reported", events)
	}

	killed := time.Now()
	if err := o.KillOVSDB(); err != nil {
		t.Fatal(err)
	}
	st = rec.waitStatus(t, 2, 10*time.Second)
	if st.State != EndpointDown || st.Since.Before(killed) || st.LastError == "" {
		t.Errorf("status after the server died: %+v", st)
	}
	t.Logf("down: %+v, noticed %v after SIGKILL", st, st.Since.Sub(killed))
	if bs := m.Bridges(); len(bs) != 1 {
		t.Errorf("Bridges() while down = %v, want the last snapshot", bs)
	}
	time.Sleep(300 * time.Millisecond)
	if st := m.Status(); st.State != EndpointDown || st.Failures == 0 || !st.Since.Equal(rec.waitStatus(t, 2, 0).Since) {
		t.Errorf("Status() while down with failing attempts: %+v", st)
	}

	calls := rec.count()
	if err := o.StartOVSDB(context.Background()); err != nil {
		t.Fatal(err)
	}
	st = rec.waitStatus(t, 3, 10*time.Second)
	if st.State != EndpointConnected {
		t.Errorf("status after the server is back: %+v", st)
	}
	if rec.count() != calls {
		t.Errorf("unchanged state re-delivered on reconnect")
	}

	cancel()
	stopped = true
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := m.Status(); st.State != EndpointDown || st.LastError != "monitor stopped" {
		t.Errorf("Status() after Run returned: %+v", st)
	}
	if sts, _ := rec.statusSnapshot(); len(sts) != 4 {
		t.Errorf("%d onStatus calls, want 4 (none when stopped): %+v", len(sts), sts)
	}
}

func TestChassisDrift(t *testing.T) {
	good := Bridge{
		Name:          "br-vpc",
		FailMode:      "secure",
		Protocols:     []string{"OpenFlow13"},
		DisableInBand: true,
		Controllers:   []Controller{{Target: "tcp:192.0.2.1:6653", ConnectionMode: "out-of-band", MaxBackoff: 1000}},
		Ports: map[string]Port{
			"vpcflow-vxlan": {Name: "vpcflow-vxlan", Type: "vxlan", Options: map[string]string{"remote_ip": "flow", "key": "flow"}},
		},
	}
	want := []string{"tcp:192.0.2.1:6653"}
	if d := good.ChassisDrift(want, "vpcflow-vxlan"); d != nil {
		t.Fatalf("drift of a good bridge: %q", d)
	}
	bad := good
	bad.FailMode, bad.Protocols, bad.DisableInBand = "", nil, false
	bad.Controllers = []Controller{{Target: "tcp:192.0.2.1:6653"}, {Target: "tcp:192.0.2.9:6653"}}
	bad.Ports = map[string]Port{"vpcflow-vxlan": {Type: "vxlan", Options: map[string]string{"remote_ip": "flow", "key": "flow", "local_ip": "192.0.2.5"}}}
	got := bad.ChassisDrift(want, "vpcflow-vxlan")
	for _, w := range []string{
		"protocols are [], want [OpenFlow13]",
		"fail_mode is unset, want secure",
		"other_config:disable-in-band is not true",
		"controllers are [tcp:192.0.2.1:6653 tcp:192.0.2.9:6653], want [tcp:192.0.2.1:6653]",
		"controller tcp:192.0.2.1:6653 is not out-of-band",
		"controller tcp:192.0.2.1:6653 has max_backoff 0, want 1000",
		`tunnel port vpcflow-vxlan is type "vxlan" with options map[key:flow local_ip:192.0.2.5 remote_ip:flow], want vxlan with remote_ip=flow, key=flow`,
	} {
		if !slices.Contains(got, w) {
			t.Errorf("drift %q lacks %q", got, w)
		}
	}
	if len(got) != 7 {
		t.Errorf("%d drift sentences, want 7: %q", len(got), got)
	}
	if d := good.ChassisDrift(want, "other-port"); len(d) != 1 || d[0] != "tunnel port other-port is missing" {
		t.Errorf("missing tunnel port: %q", d)
	}
	if EndpointDown.String() != "down" || EndpointState(9).String() != "EndpointState(9)" {
		t.Error("EndpointState.String")
	}
}

// On a chassis of a netlab underlay, the monitor reports the MTU of the
// underlay NIC (a port of br-phy) and of br-phy's local interface, which
// holds the tunnel IP, and follows a change of the underlay's MTU: what
// --underlay-mtu can be checked against.
func TestMonitorSeesUnderlayMTU(t *testing.T) {
	ctx := withTimeout(t, 60*time.Second)
	lab := netlab.New(t)
	u, err := lab.AddUnderlay(ctx, "underlay", "192.168.100.0/24")
	if err != nil {
		t.Fatal(err)
	}
	c, err := u.AddChassis(ctx, "ch1", "192.168.100.1", "br-vpc")
	if err != nil {
		t.Fatal(err)
	}
	ep := c.OVS.DBEndpoint()
	rec := &recorder{t: t, endpoint: ep}
	startMonitor(t, ep, rec)
	phy := func(what string, pred func(b Bridge) bool) Bridge {
		t.Helper()
		_, call := rec.waitCall(t, 0, 10*time.Second, what, func(bs []Bridge) bool {
			b, ok := findBridge(bs, c.PhyBridge)
			return ok && pred(b)
		})
		b, _ := findBridge(call.bridges, c.PhyBridge)
		return b
	}
	b := phy("br-phy with MTUs", func(b Bridge) bool { return b.LocalMTU == 1500 && b.Ports[c.UnderlayIf].MTU == 1500 })
	t.Logf("br-phy local MTU %d, %s MTU %d", b.LocalMTU, c.UnderlayIf, b.Ports[c.UnderlayIf].MTU)
	if err := u.SetMTU(ctx, 1400); err != nil {
		t.Fatal(err)
	}
	b = phy("the underlay NIC at MTU 1400", func(b Bridge) bool { return b.Ports[c.UnderlayIf].MTU == 1400 })
	t.Logf("after Underlay.SetMTU(1400): br-phy local MTU %d, %s MTU %d", b.LocalMTU, c.UnderlayIf, b.Ports[c.UnderlayIf].MTU)
}
