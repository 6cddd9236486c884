package ovsdb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// This file is the test harness: a private ovsdb-server (and, where ofport
// assignment matters, ovs-vswitchd in its own network namespace) per test,
// in the test's temp dir, stopped by pid on cleanup.

const (
	ovsSchema = "/usr/share/openvswitch/vswitch.ovsschema"
)

// requireOVS skips the test when OVS cannot be run here, unless
// VPCFLOW_E2E=1, in which case the test fails instead.
func requireOVS(t *testing.T, vswitchd bool) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	bins := []string{"ovsdb-tool", "ovsdb-server", "ovs-vsctl"}
	if vswitchd {
		bins = append(bins, "ovs-vswitchd", "unshare")
	}
	for _, b := range bins {
		if _, err := exec.LookPath(b); err != nil {
			missing = append(missing, b)
		}
	}
	if _, err := os.Stat(ovsSchema); err != nil {
		missing = append(missing, ovsSchema)
	}
	if len(missing) == 0 {
		return
	}
	msg := fmt.Sprintf("needs a real Open vSwitch; missing: %s (install openvswitch-switch and run as root)", strings.Join(missing, ", "))
	if os.Getenv("VPCFLOW_E2E") == "1" {
		t.Fatal(msg + " [VPCFLOW_E2E=1: failing instead of skipping]")
	}
	t.Skip(msg)
}

func testLogger(t *testing.T) *zap.Logger {
	return zaptest.NewLogger(t)
}

type ovsInstance struct {
	t        *testing.T
	dir      string
	sock     string
	endpoint string
	extra    []string // more ovsdb-server options, e.g. a pssl: remote
}

// startOVSDB creates a fresh database and starts ovsdb-server on
// unix:DIR/db.sock, with the extra options given (e.g. a pssl: remote and
// its keys). The server (and vswitchd, if started) is stopped by pid when
// the test ends.
func startOVSDB(t *testing.T, extra ...string) *ovsInstance {
	t.Helper()
	requireOVS(t, false)
	// t.TempDir paths can get long; unix socket paths must stay < 108 bytes.
	dir, err := os.MkdirTemp("", "vpcflow-ovsdb-")
	if err != nil {
		t.Fatal(err)
	}
	o := &ovsInstance{t: t, dir: dir, sock: filepath.Join(dir, "db.sock"), extra: extra}
	o.endpoint = "unix:" + o.sock
	t.Cleanup(func() {
		o.stop("ovs-vswitchd", syscall.SIGTERM)
		o.stop("ovsdb-server", syscall.SIGTERM)
		if t.Failed() {
			for _, f := range []string{"ovsdb-server.log", "ovs-vswitchd.log"} {
				if b, err := os.ReadFile(filepath.Join(dir, f)); err == nil {
					t.Logf("--- %s ---\n%s", f, b)
				}
			}
		}
		os.RemoveAll(dir)
	})
	o.run("ovsdb-tool", "create", filepath.Join(dir, "conf.db"), ovsSchema)
	o.startServer()
	o.vsctl("--no-wait", "init")
	return o
}

func (o *ovsInstance) env() []string {
	return append(os.Environ(), "OVS_RUNDIR="+o.dir, "OVS_LOGDIR="+o.dir, "OVS_DBDIR="+o.dir)
}

func (o *ovsInstance) run(name string, args ...string) string {
	o.t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = o.env()
	cmd.Dir = o.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		o.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// startServer starts (or restarts) ovsdb-server on the instance's database
// and socket. --detach returns once the socket is listening.
func (o *ovsInstance) startServer() {
	o.t.Helper()
	args := []string{filepath.Join(o.dir, "conf.db"),
		"--remote=punix:" + o.sock,
		"--pidfile=" + filepath.Join(o.dir, "ovsdb-server.pid"),
		"--unixctl=" + filepath.Join(o.dir, "ovsdb-server.ctl"),
		"--detach", "--no-chdir",
		"--log-file=" + filepath.Join(o.dir, "ovsdb-server.log")}
	o.run("ovsdb-server", append(args, o.extra...)...)
}

// startVswitchd starts ovs-vswitchd in a new network namespace, so the tap
// devices of netdev bridges and internal ports stay private to the test.
func (o *ovsInstance) startVswitchd() {
	o.t.Helper()
	requireOVS(o.t, true)
	o.run("unshare", "--net", "--",
		"ovs-vswitchd", "unix:"+o.sock,
		"--pidfile="+filepath.Join(o.dir, "ovs-vswitchd.pid"),
		"--unixctl="+filepath.Join(o.dir, "ovs-vswitchd.ctl"),
		"--detach", "--no-chdir",
		"--log-file="+filepath.Join(o.dir, "ovs-vswitchd.log"))
}

func (o *ovsInstance) vsctl(args ...string) string {
	o.t.Helper()
	return o.run("ovs-vsctl", append([]string{"--db=" + o.endpoint, "--timeout=10"}, args...)...)
}

// stop signals the daemon whose pidfile is DIR/NAME.pid and waits for it to
// exit (SIGKILL after 5 s). It only ever touches that pid.
func (o *ovsInstance) stop(name string, sig syscall.Signal) {
	o.t.Helper()
	pidfile := filepath.Join(o.dir, name+".pid")
	b, err := os.ReadFile(pidfile)
	if err != nil {
		return // never started
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		o.t.Errorf("bad pidfile %s: %q", pidfile, b)
		return
	}
	if !alive(pid) {
		return
	}
	if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		o.t.Errorf("kill %s (pid %d): %v", name, pid, err)
		return
	}
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			deadline = time.Now().Add(5 * time.Second)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// alive reports whether pid exists and is not a zombie (a detached daemon's
// parent may be a PID 1 that does not reap).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// Field 3, after the parenthesised command name.
	s := string(stat)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// withTimeout is a context bounded by the test's deadline-ish budget.
func withTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// pid reads DIR/NAME.pid.
func (o *ovsInstance) pid(name string) int {
	o.t.Helper()
	b, err := os.ReadFile(filepath.Join(o.dir, name+".pid"))
	if err != nil {
		o.t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		o.t.Fatalf("bad pidfile for %s: %q", name, b)
	}
	return pid
}

func dpidHex(d uint64) string { return fmt.Sprintf("%016x", d) }

func itoa(i int) string { return strconv.Itoa(i) }
