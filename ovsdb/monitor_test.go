package ovsdb

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// recorder collects onChange calls and checks they never overlap.
type recorder struct {
	t          *testing.T
	endpoint   string
	delay      time.Duration // simulated slow consumer
	inCall     atomic.Int32
	overlapped atomic.Bool

	mu       sync.Mutex
	calls    []call
	statuses []EndpointStatus
	events   []string // "change" and "status:<state>" in call order
}

func (r *recorder) onStatus(st EndpointStatus) {
	if r.inCall.Add(1) > 1 {
		r.overlapped.Store(true)
	}
	defer r.inCall.Add(-1)
	if st.Endpoint != r.endpoint {
		r.t.Errorf("onStatus endpoint = %q, want %q", st.Endpoint, r.endpoint)
	}
	r.mu.Lock()
	r.statuses = append(r.statuses, st)
	r.events = append(r.events, "status:"+st.State.String())
	r.mu.Unlock()
}

func (r *recorder) statusSnapshot() ([]EndpointStatus, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]EndpointStatus(nil), r.statuses...), append([]string(nil), r.events...)
}

// waitStatus waits until the n-th (0-based) onStatus call has arrived and
// returns it.
func (r *recorder) waitStatus(t *testing.T, n int, timeout time.Duration) EndpointStatus {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		sts, events := r.statusSnapshot()
		if len(sts) > n {
			return sts[n]
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for onStatus call %d; events so far: %v", timeout, n, events)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

type call struct {
	at      time.Time
	bridges []Bridge
}

func (r *recorder) onChange(endpoint string, bridges []Bridge) {
	if r.inCall.Add(1) > 1 {
		r.overlapped.Store(true)
	}
	defer r.inCall.Add(-1)
	if endpoint != r.endpoint {
		r.t.Errorf("onChange endpoint = %q, want %q", endpoint, r.endpoint)
	}
	r.mu.Lock()
	r.calls = append(r.calls, call{at: time.Now(), bridges: bridges})
	r.events = append(r.events, "change")
	r.mu.Unlock()
	if r.delay > 0 {
		time.Sleep(r.delay)
	}
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

func (r *recorder) snapshot() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]call(nil), r.calls...)
}

// waitCall waits until a call made at or after index from satisfies pred and
// returns it with its index.
func (r *recorder) waitCall(t *testing.T, from int, timeout time.Duration, what string, pred func([]Bridge) bool) (int, call) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		calls := r.snapshot()
		for i := from; i < len(calls); i++ {
			if pred(calls[i].bridges) {
				return i, calls[i]
			}
		}
		if time.Now().After(deadline) {
			var last []Bridge
			if len(calls) > 0 {
				last = calls[len(calls)-1].bridges
			}
			t.Fatalf("timed out after %v waiting for onChange with %s; %d calls, last: %+v", timeout, what, len(calls), last)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// startMonitor runs a Monitor until the test ends, and checks that Run
// returns nil promptly when cancelled.
func startMonitor(t *testing.T, endpoint string, rec *recorder, opts ...ConnOption) *Monitor {
	t.Helper()
	return startMonitorIn(t, nil, endpoint, rec, opts...)
}

// startMonitorIn is startMonitor with Run called through in (e.g. inside
// a lab node's network namespace); nil calls it directly.
func startMonitorIn(t *testing.T, in func(func() error) error, endpoint string, rec *recorder, opts ...ConnOption) *Monitor {
	t.Helper()
	if in == nil {
		in = func(f func() error) error { return f() }
	}
	m := NewMonitor(testLogger(t), endpoint, rec.onChange, opts...)
	m.OnStatus(rec.onStatus)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in(func() error { return m.Run(ctx) }) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v after cancel, want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Run did not return within 5s of cancel")
		}
		if rec.overlapped.Load() {
			t.Errorf("onChange or onStatus was called concurrently with itself or the other")
		}
	})
	return m
}

func findBridge(bs []Bridge, name string) (Bridge, bool) {
	for _, b := range bs {
		if b.Name == name {
			return b, true
		}
	}
	return Bridge{}, false
}

func port(bs []Bridge, br, name string) (Port, bool) {
	b, ok := findBridge(bs, br)
	if !ok {
		return Port{}, false
	}
	p, ok := b.Ports[name]
	return p, ok
}

func names(bs []Bridge) []string {
	var out []string
	for _, b := range bs {
		out = append(out, b.Name)
	}
	return out
}

func mustMAC(t *testing.T, s string) net.HardwareAddr {
	t.Helper()
	m, err := net.ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// quiet asserts that no onChange call arrives within d.
func (r *recorder) quiet(t *testing.T, d time.Duration, why string) {
	t.Helper()
	before := r.count()
	time.Sleep(d)
	if n := r.count(); n != before {
		t.Fatalf("%s: got %d unexpected onChange call(s): %+v", why, n-before, r.snapshot()[before:])
	}
}

// Without ovs-vswitchd nothing assigns ofports or datapath IDs: this covers
// the initial dump, multi-interface ports, MAC changes, removals and
// irrelevant changes.
func TestMonitorDumpAndUpdates(t *testing.T) {
	o := startOVSDB(t)
	o.vsctl("--no-wait",
		"add-br", "br0",
		"--", "add-port", "br0", "vnet1",
		"--", "set", "interface", "vnet1", "external_ids:attached-mac=52:58:00:98:c0:81",
		"--", "add-br", "br1",
		"--", "add-bond", "br1", "bond0", "eth1", "eth2")

	rec := &recorder{t: t, endpoint: o.endpoint}
	m := startMonitor(t, o.endpoint, rec)

	_, first := rec.waitCall(t, 0, 5*time.Second, "initial dump", func([]Bridge) bool { return true })
	bs := first.bridges
	if got := names(bs); len(got) != 2 || got[0] != "br0" || got[1] != "br1" {
		t.Fatalf("bridges = %v, want [br0 br1] (sorted)", got)
	}
	br0, _ := findBridge(bs, "br0")
	if br0.DPID != 0 {
		t.Errorf("br0 DPID = %#x without vswitchd, want 0", br0.DPID)
	}
	if len(br0.Ports) != 2 {
		t.Errorf("br0 ports = %v, want br0 and vnet1", br0.Ports)
	}
	vnet1 := br0.Ports["vnet1"]
	if vnet1.Name != "vnet1" || vnet1.OFPort != 0 || vnet1.MACInUse != nil {
		t.Errorf("vnet1 = %+v, want unassigned ofport 0 and no mac_in_use", vnet1)
	}
	if vnet1.AttachedMAC.String() != "52:58:00:98:c0:81" {
		t.Errorf("vnet1 AttachedMAC = %v, want 52:58:00:98:c0:81", vnet1.AttachedMAC)
	}
	if br0.Ports["br0"].AttachedMAC != nil {
		t.Errorf("br0 internal port AttachedMAC = %v, want nil", br0.Ports["br0"].AttachedMAC)
	}
	br1, _ := findBridge(bs, "br1")
	for _, n := range []string{"br1", "eth1", "eth2"} {
		if _, ok := br1.Ports[n]; !ok {
			t.Errorf("br1 lacks interface %s of its bond/internal port: %v", n, br1.Ports)
		}
	}
	if !m.Connected() {
		t.Error("Connected() = false after the initial dump")
	}
	if !equalBridges(m.Bridges(), bs) {
		t.Errorf("Bridges() = %+v, want %+v", m.Bridges(), bs)
	}
	// Bridges() hands out copies.
	m.Bridges()[0].Ports["vnet1"].AttachedMAC[0] = 0xff
	if p, _ := port(m.Bridges(), "br0", "vnet1"); p.AttachedMAC[0] != 0x52 {
		t.Error("mutating Bridges() result changed the Monitor's state")
	}

	// Changes to columns the controller does not care about: no call.
	o.vsctl("--no-wait", "set", "bridge", "br0", "external_ids:foo=bar",
		"--", "set", "interface", "vnet1", "external_ids:iface-id=abc",
		"--", "set", "port", "vnet1", "tag=5")
	rec.quiet(t, 300*time.Millisecond, "irrelevant change")

	n := rec.count()
	o.vsctl("--no-wait", "set", "interface", "vnet1", "external_ids:attached-mac=52:58:00:98:c0:99")
	start := time.Now()
	_, c := rec.waitCall(t, n, 5*time.Second, "new attached-mac", func(bs []Bridge) bool {
		p, _ := port(bs, "br0", "vnet1")
		return p.AttachedMAC.String() == "52:58:00:98:c0:99"
	})
	t.Logf("attached-mac change reported %v after ovs-vsctl returned", c.at.Sub(start))

	n = rec.count()
	o.vsctl("--no-wait", "remove", "interface", "vnet1", "external_ids", "attached-mac")
	rec.waitCall(t, n, 5*time.Second, "attached-mac removed", func(bs []Bridge) bool {
		p, ok := port(bs, "br0", "vnet1")
		return ok && p.AttachedMAC == nil
	})

	n = rec.count()
	o.vsctl("--no-wait", "del-port", "br0", "vnet1")
	rec.waitCall(t, n, 5*time.Second, "vnet1 removed", func(bs []Bridge) bool {
		_, ok := port(bs, "br0", "vnet1")
		return !ok
	})

	n = rec.count()
	o.vsctl("--no-wait", "del-port", "br1", "bond0")
	rec.waitCall(t, n, 5*time.Second, "bond removed", func(bs []Bridge) bool {
		b, ok := findBridge(bs, "br1")
		return ok && len(b.Ports) == 1
	})

	n = rec.count()
	o.vsctl("--no-wait", "del-br", "br1")
	rec.waitCall(t, n, 5*time.Second, "br1 removed", func(bs []Bridge) bool {
		return len(bs) == 1 && bs[0].Name == "br0"
	})

	// Every call differed from the one before it.
	calls := rec.snapshot()
	for i := 1; i < len(calls); i++ {
		if equalBridges(calls[i-1].bridges, calls[i].bridges) {
			t.Errorf("call %d repeated the previous state: %+v", i, calls[i].bridges)
		}
	}
}

// With ovs-vswitchd: DPIDs and ofports arrive in later updates than the
// rows they belong to.
func TestMonitorSeesOFPortAssignedByVswitchd(t *testing.T) {
	o := startOVS(t)
	// Created by SetupBridge, so this also proves vswitchd accepts the
	// bridge/port/interface rows it writes.
	if err := SetupBridge(withTimeout(t, 10*time.Second), testLogger(t), o.endpoint, "br0",
		SetupOptions{Create: true, DatapathType: "netdev"}); err != nil {
		t.Fatal(err)
	}

	rec := &recorder{t: t, endpoint: o.endpoint}
	m := startMonitor(t, o.endpoint, rec)
	_, c := rec.waitCall(t, 0, 10*time.Second, "br0 with DPID and LOCAL port", func(bs []Bridge) bool {
		b, ok := findBridge(bs, "br0")
		return ok && b.DPID != 0 && b.Ports["br0"].OFPort == 65534 && b.Ports["br0"].MACInUse != nil
	})
	br0, _ := findBridge(c.bridges, "br0")
	t.Logf("br0 DPID %016x", br0.DPID)
	if got := o.vsctl("get", "bridge", "br0", "datapath_id"); got != `"`+dpidHex(br0.DPID)+`"` {
		t.Errorf("DPID %016x, ovs-vsctl says %s", br0.DPID, got)
	}

	// Freeze vswitchd so the port's row is reported before its ofport:
	// the Monitor must report the port twice, unassigned then assigned.
	pid := o.VswitchdPID()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := true
	defer func() {
		if stopped {
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	}()
	n := rec.count()
	o.vsctl("--no-wait", "add-port", "br0", "p1", "--", "set", "interface", "p1", "type=internal")
	i, _ := rec.waitCall(t, n, 5*time.Second, "p1 without ofport", func(bs []Bridge) bool {
		p, ok := port(bs, "br0", "p1")
		return ok && p.OFPort <= 0
	})
	start := time.Now()
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	stopped = false
	_, c = rec.waitCall(t, i+1, 10*time.Second, "p1 with its ofport", func(bs []Bridge) bool {
		p, _ := port(bs, "br0", "p1")
		return p.OFPort > 0 && p.MACInUse != nil
	})
	p1, _ := port(c.bridges, "br0", "p1")
	t.Logf("p1 ofport %d, mac_in_use %v, reported %v after vswitchd resumed", p1.OFPort, p1.MACInUse, c.at.Sub(start))
	if got := o.vsctl("get", "interface", "p1", "ofport"); got != itoa(int(p1.OFPort)) {
		t.Errorf("p1 ofport %d, ovs-vsctl says %s", p1.OFPort, got)
	}
	if got := o.vsctl("get", "interface", "p1", "mac_in_use"); got != `"`+p1.MACInUse.String()+`"` {
		t.Errorf("p1 mac_in_use %v, ovs-vsctl says %s", p1.MACInUse, got)
	}

	// A port added while vswitchd runs: measure add → ofport reported.
	n = rec.count()
	start = time.Now()
	o.vsctl("add-port", "br0", "p2", "--", "set", "interface", "p2", "type=internal",
		"external_ids:attached-mac=52:58:00:98:c0:92")
	_, c = rec.waitCall(t, n, 10*time.Second, "p2 with ofport and attached-mac", func(bs []Bridge) bool {
		p, _ := port(bs, "br0", "p2")
		return p.OFPort > 0 && p.AttachedMAC.String() == "52:58:00:98:c0:92"
	})
	t.Logf("p2 (ovs-vsctl waiting for vswitchd) reported %v after ovs-vsctl started", c.at.Sub(start))

	n = rec.count()
	o.vsctl("set", "interface", "p1", "external_ids:attached-mac=52:58:00:98:c0:81")
	rec.waitCall(t, n, 5*time.Second, "p1 attached-mac", func(bs []Bridge) bool {
		p, _ := port(bs, "br0", "p1")
		return p.AttachedMAC.String() == "52:58:00:98:c0:81"
	})

	n = rec.count()
	o.vsctl("del-port", "br0", "p1")
	rec.waitCall(t, n, 5*time.Second, "p1 removed", func(bs []Bridge) bool {
		_, gone := port(bs, "br0", "p1")
		_, kept := port(bs, "br0", "p2")
		return !gone && kept
	})
	if _, ok := port(m.Bridges(), "br0", "p1"); ok {
		t.Error("Bridges() still lists p1")
	}
}

func TestMonitorReconnectsAfterServerRestart(t *testing.T) {
	o := startOVSDB(t)
	o.vsctl("--no-wait", "add-br", "br0")
	rec := &recorder{t: t, endpoint: o.endpoint}
	m := startMonitor(t, o.endpoint, rec)
	rec.waitCall(t, 0, 5*time.Second, "initial dump", func(bs []Bridge) bool { return len(bs) == 1 })

	killed := time.Now()
	if err := o.KillOVSDB(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "Connected() to turn false", func() bool { return !m.Connected() })
	t.Logf("disconnect noticed %v after SIGKILL", time.Since(killed))
	if bs := m.Bridges(); len(bs) != 1 || bs[0].Name != "br0" {
		t.Errorf("Bridges() while disconnected = %+v, want the last state (br0)", bs)
	}

	// Stay down long enough for several failed attempts (backoff grows
	// 100, 200, 400, 800 ms ...).
	time.Sleep(1500 * time.Millisecond)
	calls := rec.count()
	restarted := time.Now()
	if err := o.StartOVSDB(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "Connected() after restart", m.Connected)
	t.Logf("reconnected %v after ovsdb-server was back (down %v in all)", time.Since(restarted), time.Since(killed))

	// The re-dump found nothing new: no call.
	rec.quiet(t, 200*time.Millisecond, "re-dump of unchanged state")
	if rec.count() != calls {
		t.Fatalf("onChange called on reconnect with unchanged state")
	}

	o.vsctl("--no-wait", "add-port", "br0", "p9")
	start := time.Now()
	_, c := rec.waitCall(t, calls, 5*time.Second, "p9 after restart", func(bs []Bridge) bool {
		_, ok := port(bs, "br0", "p9")
		return ok
	})
	t.Logf("p9 reported %v after ovs-vsctl returned", c.at.Sub(start))

	// A change made while the Monitor is away is reported by the re-dump.
	if err := o.StopOVSDB(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "Connected() to turn false again", func() bool { return !m.Connected() })
	calls = rec.count()
	if err := o.StartOVSDB(context.Background()); err != nil {
		t.Fatal(err)
	}
	restarted = time.Now()
	o.vsctl("--no-wait", "del-port", "br0", "p9", "--", "add-br", "br2")
	rec.waitCall(t, calls, 10*time.Second, "changes made while disconnected", func(bs []Bridge) bool {
		_, p9 := port(bs, "br0", "p9")
		_, br2 := findBridge(bs, "br2")
		return !p9 && br2
	})
	t.Logf("quick restart: changes made while disconnected reported %v after ovsdb-server was back", time.Since(restarted))
}

// A slow consumer: calls never overlap and the last one carries the final
// state.
func TestMonitorOnChangeSerialised(t *testing.T) {
	o := startOVSDB(t)
	o.vsctl("--no-wait", "add-br", "br0")
	rec := &recorder{t: t, endpoint: o.endpoint, delay: 30 * time.Millisecond}
	startMonitor(t, o.endpoint, rec)
	rec.waitCall(t, 0, 5*time.Second, "initial dump", func(bs []Bridge) bool { return len(bs) == 1 })
	for i := range 15 {
		o.vsctl("--no-wait", "add-port", "br0", "q"+itoa(i))
	}
	rec.waitCall(t, 0, 10*time.Second, "all 15 ports", func(bs []Bridge) bool {
		return len(bs) == 1 && len(bs[0].Ports) == 16
	})
	if rec.overlapped.Load() {
		t.Fatal("onChange overlapped")
	}
	t.Logf("%d onChange calls for 15 port adds with a 30 ms consumer", rec.count())
}

func TestMonitorRunStopsWhileDisconnected(t *testing.T) {
	rec := &recorder{t: t, endpoint: "unix:/nonexistent/vpcflow/db.sock"}
	m := NewMonitor(testLogger(t), rec.endpoint, rec.onChange)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	time.Sleep(400 * time.Millisecond)
	if m.Connected() {
		t.Error("Connected() = true with no server")
	}
	// Run refuses to run twice at once.
	if err := m.Run(ctx); err == nil {
		t.Error("second concurrent Run returned nil, want an error")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v after cancel, want nil", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return within 2s of cancel while backing off")
	}
	if rec.count() != 0 || m.Bridges() != nil {
		t.Errorf("calls=%d bridges=%v with no server, want none", rec.count(), m.Bridges())
	}
}

func TestMonitorRunRejectsUnusableEndpoints(t *testing.T) {
	for _, ep := range []string{"garbage", "", "ptcp:6640", "ssl:127.0.0.1:6640"} {
		m := NewMonitor(nil, ep, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := m.Run(ctx)
		cancel()
		if err == nil {
			t.Errorf("Run(%q) = nil, want an error", ep)
			continue
		}
		t.Logf("Run(%q): %v", ep, err)
	}
}

func TestBackoff(t *testing.T) {
	b := backoff{min: backoffMin, max: backoffMax}
	want := []time.Duration{100, 200, 400, 800, 1600, 3200, 5000, 5000}
	for i, w := range want {
		w *= time.Millisecond
		got := b.next()
		if got < w*8/10 || got > w*12/10 {
			t.Errorf("delay %d = %v, want %v ±20%%", i, got, w)
		}
	}
	b.reset()
	if got := b.next(); got > 120*time.Millisecond {
		t.Errorf("after reset: %v, want ~100ms", got)
	}
}
