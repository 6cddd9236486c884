// Package ovstest runs a private ovsdb-server for tests of packages that
// talk to OVSDB through vpcflow (the API, the CLI): a fresh database in a
// temporary directory, served on a unix socket, stopped by pid when the
// test ends. Nothing outside that directory is touched.
package ovstest

import (
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
)

// Schema is the Open_vSwitch database schema the server is created with.
const Schema = "/usr/share/openvswitch/vswitch.ovsschema"

// Require skips the test when a private ovsdb-server cannot be run here
// (not root, or Open vSwitch not installed), unless VPCFLOW_E2E=1: then it
// fails instead.
func Require(t testing.TB) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, b := range []string{"ovsdb-tool", "ovsdb-server", "ovs-vsctl"} {
		if _, err := exec.LookPath(b); err != nil {
			missing = append(missing, b)
		}
	}
	if _, err := os.Stat(Schema); err != nil {
		missing = append(missing, Schema)
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

// Server is a running private ovsdb-server.
type Server struct {
	t testing.TB
	// Dir holds the database, the socket, the pidfile and the log.
	Dir string
	// Endpoint is "unix:DIR/db.sock".
	Endpoint string
}

// Start creates a database (initialised as ovs-vsctl init does) and serves
// it. The server is stopped when the test ends; its log is printed if the
// test failed.
func Start(t testing.TB) *Server {
	t.Helper()
	Require(t)
	// Unix socket paths must stay short; t.TempDir can be long.
	dir, err := os.MkdirTemp("", "vpcflow-ovstest-")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{t: t, Dir: dir, Endpoint: "unix:" + filepath.Join(dir, "db.sock")}
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, "ovsdb-server.log")); err == nil {
				t.Logf("--- ovsdb-server.log ---\n%s", b)
			}
		}
		_ = os.RemoveAll(dir)
	})
	s.run("ovsdb-tool", "create", filepath.Join(dir, "conf.db"), Schema)
	s.run("ovsdb-server", filepath.Join(dir, "conf.db"),
		"--remote=punix:"+filepath.Join(dir, "db.sock"),
		"--pidfile="+filepath.Join(dir, "ovsdb-server.pid"),
		"--unixctl="+filepath.Join(dir, "ovsdb-server.ctl"),
		"--detach", "--no-chdir",
		"--log-file="+filepath.Join(dir, "ovsdb-server.log"))
	s.Vsctl("init")
	return s
}

// Vsctl runs ovs-vsctl --no-wait against the server and returns its
// trimmed output; a failure fails the test.
func (s *Server) Vsctl(args ...string) string {
	s.t.Helper()
	return s.run("ovs-vsctl", append([]string{"--db=" + s.Endpoint, "--timeout=10", "--no-wait"}, args...)...)
}

func (s *Server) run(name string, args ...string) string {
	s.t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "OVS_RUNDIR="+s.Dir, "OVS_LOGDIR="+s.Dir, "OVS_DBDIR="+s.Dir)
	cmd.Dir = s.Dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		s.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// stop sends SIGTERM to the pid in the pidfile and waits for it to go
// (SIGKILL after 5 s).
func (s *Server) stop() {
	b, err := os.ReadFile(filepath.Join(s.Dir, "ovsdb-server.pid"))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		s.t.Errorf("bad ovsdb-server pidfile: %q", b)
		return
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		if !errors.Is(err, syscall.ESRCH) {
			s.t.Errorf("stopping ovsdb-server (pid %d): %v", pid, err)
		}
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

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	st := string(stat)
	if i := strings.LastIndexByte(st, ')'); i >= 0 && i+2 < len(st) {
		return st[i+2] != 'Z'
	}
	return true
}
