package openflow

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// requireOVS skips the test when it cannot run a private Open vSwitch
// (not root, or OVS not installed), or fails it when VPCFLOW_E2E=1.
func requireOVS(t *testing.T) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "needs root to run a private Open vSwitch"
	}
	for _, bin := range []string{"ovs-vswitchd", "ovsdb-server", "ovsdb-tool", "ovs-vsctl", "ovs-ofctl"} {
		if _, err := exec.LookPath(bin); err != nil && why == "" {
			why = bin + " not installed (apt-get install openvswitch-switch)"
		}
	}
	if why == "" {
		return
	}
	if os.Getenv("VPCFLOW_E2E") == "1" {
		t.Fatalf("VPCFLOW_E2E=1 but %s", why)
	}
	t.Skip(why)
}

// testOVS is a private ovsdb-server + ovs-vswitchd under a temp dir.
type testOVS struct {
	dir     string
	db      string   // unix:…/db.sock
	bridges []string // deleted before the daemons stop
}

// startOVS starts a private OVS; t.Cleanup stops both daemons by pid.
func startOVS(t *testing.T) *testOVS {
	t.Helper()
	requireOVS(t)
	// Short path: unix socket names are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "vpcof")
	if err != nil {
		t.Fatal(err)
	}
	o := &testOVS{dir: dir, db: "unix:" + filepath.Join(dir, "db.sock")}
	t.Cleanup(func() {
		o.stop(t)
		if !t.Failed() {
			_ = os.RemoveAll(dir)
		} else {
			t.Logf("OVS logs kept in %s", dir)
		}
	})
	o.run(t, "ovsdb-tool", "create", filepath.Join(dir, "conf.db"), "/usr/share/openvswitch/vswitch.ovsschema")
	o.run(t, "ovsdb-server", filepath.Join(dir, "conf.db"), "--remote=punix:"+filepath.Join(dir, "db.sock"),
		"--pidfile="+filepath.Join(dir, "ovsdb-server.pid"), "--detach", "--log-file="+filepath.Join(dir, "ovsdb-server.log"))
	o.vsctl(t, "--no-wait", "init")
	o.run(t, "ovs-vswitchd", o.db, "--pidfile="+filepath.Join(dir, "ovs-vswitchd.pid"), "--detach",
		"--log-file="+filepath.Join(dir, "ovs-vswitchd.log"))
	return o
}

func (o *testOVS) env() []string {
	return append(os.Environ(), "OVS_RUNDIR="+o.dir, "OVS_DBDIR="+o.dir, "OVS_LOGDIR="+o.dir)
}

// run runs an OVS command and fails the test if it fails.
func (o *testOVS) run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := o.try(name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// try runs an OVS command (bounded to 60s) and returns its combined output.
func (o *testOVS) try(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = o.env()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (o *testOVS) vsctl(t *testing.T, args ...string) string {
	t.Helper()
	return o.run(t, "ovs-vsctl", append([]string{"--db=" + o.db, "--timeout=30"}, args...)...)
}

// mgmt is the ovs-ofctl target of a bridge.
func (o *testOVS) mgmt(br string) string { return "unix:" + filepath.Join(o.dir, br+".mgmt") }

// ofctl runs ovs-ofctl -O OpenFlow13.
func (o *testOVS) ofctl(args ...string) (string, error) {
	return o.try("ovs-ofctl", append([]string{"-O", "OpenFlow13"}, args...)...)
}

// addBridge creates a userspace OpenFlow 1.3-only bridge in secure fail
// mode with out-of-band control, without a controller yet.
func (o *testOVS) addBridge(t *testing.T, br string, dpid uint64) {
	t.Helper()
	o.vsctl(t, "add-br", br, "--", "set", "bridge", br, "datapath_type=netdev", "protocols=OpenFlow13",
		"fail_mode=secure", "other_config:disable-in-band=true",
		fmt.Sprintf("other_config:datapath-id=%016x", dpid))
	o.bridges = append(o.bridges, br)
}

// setController points br at addr, out of band.
func (o *testOVS) setController(t *testing.T, br, addr string, extra ...string) {
	t.Helper()
	o.vsctl(t, "set-controller", br, "tcp:"+addr)
	args := []string{"set", "controller", br, "connection_mode=out-of-band"}
	o.vsctl(t, append(args, extra...)...)
}

// stop deletes the bridges (the userspace datapath makes each bridge's
// internal port a persistent tap device that would outlive the daemons),
// then kills the daemons by the pids in their pidfiles and waits for them.
func (o *testOVS) stop(t *testing.T) {
	for _, br := range o.bridges {
		if out, err := o.try("ovs-vsctl", "--db="+o.db, "--timeout=10", "del-br", br); err != nil {
			t.Logf("del-br %s: %v %s", br, err, out)
		}
	}
	for _, name := range []string{"ovs-vswitchd", "ovsdb-server"} {
		b, err := os.ReadFile(filepath.Join(o.dir, name+".pid"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 1 {
			continue
		}
		_ = syscall.Kill(pid, syscall.SIGTERM)
		deadline := time.Now().Add(5 * time.Second)
		for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if syscall.Kill(pid, 0) == nil {
			t.Logf("%s (pid %d) did not exit on SIGTERM; killing", name, pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// recorder is a test Handler that reports lifecycle events on channels.
type recorder struct {
	mu           sync.Mutex
	connected    chan *Switch
	disconnected chan *Switch
	active       map[uint64]*Switch
}

func newRecorder() *recorder {
	return &recorder{
		connected:    make(chan *Switch, 64),
		disconnected: make(chan *Switch, 64),
		active:       map[uint64]*Switch{},
	}
}

func (r *recorder) SwitchConnected(ctx context.Context, sw *Switch) {
	r.mu.Lock()
	r.active[sw.DPID()] = sw
	r.mu.Unlock()
	r.connected <- sw
}

func (r *recorder) SwitchDisconnected(sw *Switch) {
	r.mu.Lock()
	if r.active[sw.DPID()] == sw {
		delete(r.active, sw.DPID())
	}
	r.mu.Unlock()
	r.disconnected <- sw
}

func (r *recorder) waitConnected(t *testing.T, dpid uint64, timeout time.Duration) *Switch {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case sw := <-r.connected:
			if sw.DPID() == dpid {
				return sw
			}
		case <-deadline:
			t.Fatalf("switch %016x did not connect within %v", dpid, timeout)
			return nil
		}
	}
}

func (r *recorder) waitDisconnected(t *testing.T, sw *Switch, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case d := <-r.disconnected:
			if d == sw {
				return
			}
		case <-deadline:
			t.Fatalf("%s not reported disconnected within %v", sw, timeout)
		}
	}
}

// startServer runs a Server on 127.0.0.1:0 until the test ends.
func startServer(t *testing.T, h Handler, opts ServerOptions) (addr string, log *zap.Logger) {
	t.Helper()
	return startServerOn(t, mustListen(t), h, opts)
}

// startServerOn runs a Server on ln (e.g. a listener opened in a netlab
// node) until the test ends.
func startServerOn(t *testing.T, ln net.Listener, h Handler, opts ServerOptions) (addr string, log *zap.Logger) {
	t.Helper()
	log = testLogger(t)
	srv := NewServer(log, h, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, net.ErrClosed) {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return within 10s of cancel")
		}
	})
	return ln.Addr().String(), log
}

func mustListen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// testLogger logs to the test at info level (debug with VPCFLOW_DEBUG=1).
func testLogger(t *testing.T) *zap.Logger {
	lvl := zap.InfoLevel
	if os.Getenv("VPCFLOW_DEBUG") == "1" {
		lvl = zap.DebugLevel
	}
	return zaptest.NewLogger(t, zaptest.Level(lvl))
}
