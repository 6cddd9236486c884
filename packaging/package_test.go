// Package packaging holds the Debian package's files (nfpm.yaml, the
// systemd unit, the default configuration, the maintainer scripts) and the
// test that installs the built package on this machine.
package packaging

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDebianPackage installs the .deb named by $VPCFLOW_PACKAGE_TEST on
// this machine (make package-test sets it, as root, on a machine with no
// vpcflow of its own), checks what it put where, starts the unit's
// ExecStart the way systemd would (its User=, its capabilities, no new
// privileges, $NOTIFY_SOCKET, $WATCHDOG_USEC) inside a network and mount
// namespace of its own with a private Open vSwitch at the system socket
// path, runs the smoke test (vpcflow switches, curl /healthz), then
// removes the package (the store stays), installs it again (the data is
// still there), purges it (the store and /etc/vpcflow go) and removes
// the vpcflow user it made.
func TestDebianPackage(t *testing.T) {
	deb := os.Getenv("VPCFLOW_PACKAGE_TEST")
	if deb == "" {
		t.Skip("installs a package on this machine: run by `make package-test` (VPCFLOW_PACKAGE_TEST=path/to.deb), as root")
	}
	if os.Geteuid() != 0 {
		t.Fatal("VPCFLOW_PACKAGE_TEST is set but this is not root")
	}
	for _, c := range []string{"dpkg", "unshare", "nsenter", "setpriv", "runuser", "curl", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Fatalf("needs %s: %v", c, err)
		}
	}
	if out, err := exec.Command("dpkg", "-s", "vpcflow").CombinedOutput(); err == nil {
		t.Fatalf("a vpcflow package is installed already; not touching it:\n%s", out)
	}
	for _, p := range []string{"/etc/vpcflow", "/var/lib/vpcflow"} {
		if _, err := os.Stat(p); err == nil {
			t.Fatalf("%s exists already; not touching it", p)
		}
	}
	if _, err := userID("vpcflow"); err == nil {
		t.Fatal("a vpcflow user exists already; not touching it")
	}
	t.Cleanup(func() { cleanupPackage(t) })

	// Install.
	out := sh(t, "dpkg", "-i", deb)
	t.Logf("dpkg -i:\n%s", out)
	if !strings.Contains(out, "systemd is not running; start vpcflow with") && pathExists("/run/systemd/system") == false {
		t.Errorf("postinst did not say how to start vpcflow without systemd:\n%s", out)
	}
	uid, err := userID("vpcflow")
	if err != nil {
		t.Fatalf("no vpcflow user after install: %v", err)
	}
	if uid >= 1000 || uid == 0 {
		t.Errorf("vpcflow uid %d: want a system user", uid)
	}
	if pw := sh(t, "getent", "passwd", "vpcflow"); !strings.HasSuffix(strings.TrimSpace(pw), ":/var/lib/vpcflow:/usr/sbin/nologin") {
		t.Errorf("passwd entry %q: want home /var/lib/vpcflow, shell nologin", pw)
	}
	checkOwner(t, "/var/lib/vpcflow", "vpcflow", "vpcflow", 0o750)
	// postinst created the store (vpcflow init, as vpcflow): serve never
	// creates one by itself.
	if !strings.Contains(out, "created an empty store /var/lib/vpcflow/vpcflow.db") {
		t.Errorf("postinst did not initialise the store:\n%s", out)
	}
	checkOwner(t, "/var/lib/vpcflow/vpcflow.db", "vpcflow", "vpcflow", 0o600)
	checkOwner(t, "/etc/vpcflow", "root", "vpcflow", 0o750)
	checkOwner(t, "/etc/vpcflow/vpcflow.yaml", "root", "vpcflow", 0o640)
	checkOwner(t, "/usr/bin/vpcflow", "root", "root", 0o755)
	if _, err := exec.LookPath("deb-systemd-helper"); err != nil {
		t.Logf("deb-systemd-helper (init-system-helpers) is not installed: the unit's enablement is not checked")
	} else if !pathExists("/etc/systemd/system/multi-user.target.wants/vpcflow.service") {
		t.Error("the unit is not enabled (no multi-user.target.wants link)")
	}
	if conf := sh(t, "dpkg-query", "-W", "-f=${Conffiles}", "vpcflow"); !strings.Contains(conf, "/etc/vpcflow/vpcflow.yaml") {
		t.Errorf("vpcflow.yaml is not a conffile: %q", conf)
	}
	// The unit as systemd reads it (systemd-analyze needs the systemd
	// package, which a bare Debian 12 container lacks).
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Logf("systemd-analyze is not installed: the unit file is not verified by systemd")
	} else if out, err := exec.Command("systemd-analyze", "verify", "/lib/systemd/system/vpcflow.service").CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	unit := readUnit(t, "/lib/systemd/system/vpcflow.service")
	for k, want := range map[string]string{"Type": "notify", "Restart": "on-failure", "User": "vpcflow", "Group": "vpcflow",
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "StateDirectory": "vpcflow", "AmbientCapabilities": "CAP_DAC_OVERRIDE"} {
		if unit[k] != want {
			t.Errorf("unit %s=%q, want %q", k, unit[k], want)
		}
	}
	if unit["WatchdogSec"] == "" {
		t.Error("unit has no WatchdogSec")
	}
	if out := sh(t, "/usr/bin/vpcflow", "version"); !strings.Contains(out, "store schema:") {
		t.Errorf("vpcflow version: %s", out)
	}
	sh(t, "/usr/bin/vpcflow", "config", "check", "--config", "/etc/vpcflow/vpcflow.yaml")

	ns := newNamespace(t)
	ns.startOVS(t)
	svc := ns.startService(t, unit)
	ready := svc.waitNotify(t, "READY=1", 30*time.Second)
	t.Logf("sd_notify: %q", ready)

	// Smoke test.
	health := ns.sh(t, "curl", "-sf", "http://127.0.0.1:8080/healthz")
	if !strings.Contains(health, `"status":"ok"`) {
		t.Errorf("curl /healthz: %s", health)
	}
	ns.sh(t, "/usr/bin/vpcflow", "bridge", "setup", "br-int", "--create", "--datapath-type", "netdev", "--controller", "tcp:127.0.0.1:6653")
	var switches string
	deadline := time.Now().Add(30 * time.Second)
	for {
		switches = ns.sh(t, "/usr/bin/vpcflow", "switches")
		// The bridge name comes from OVSDB: vpcflow, as user vpcflow, reads
		// root's 0750 db.sock through CAP_DAC_OVERRIDE.
		if strings.Contains(switches, "br-int") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("vpcflow switches never showed br-int (connected and named through OVSDB):\n%s\nlog:\n%s", switches, svc.log())
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("vpcflow switches:\n%s", switches)
	ns.sh(t, "/usr/bin/vpcflow", "vpc", "create", "vpc-kept")
	status := readFile(t, fmt.Sprintf("/proc/%d/status", svc.pid()))
	if !strings.Contains(status, fmt.Sprintf("\nUid:\t%d\t%d\t%d\t%d\n", uid, uid, uid, uid)) {
		t.Errorf("service does not run as vpcflow (uid %d):\n%s", uid, status)
	}
	if !strings.Contains(status, "\nCapEff:\t0000000000000002\n") || !strings.Contains(status, "\nNoNewPrivs:\t1\n") {
		t.Errorf("want only CAP_DAC_OVERRIDE effective and no new privileges:\n%s", grep(status, "Cap", "NoNewPrivs"))
	}
	checkOwner(t, "/var/lib/vpcflow/vpcflow.db", "vpcflow", "vpcflow", 0o600)
	svc.signal(t, syscall.SIGHUP)
	svc.waitNotify(t, "RELOADING=1", 10*time.Second)
	svc.waitNotify(t, "READY=1", 10*time.Second)
	svc.stop(t)

	// Remove: the program goes, the store and the configuration stay.
	t.Logf("dpkg -r:\n%s", sh(t, "dpkg", "-r", "vpcflow"))
	for _, gone := range []string{"/usr/bin/vpcflow", "/lib/systemd/system/vpcflow.service"} {
		if pathExists(gone) {
			t.Errorf("%s still there after dpkg -r", gone)
		}
	}
	for _, kept := range []string{"/var/lib/vpcflow/vpcflow.db", "/etc/vpcflow/vpcflow.yaml"} {
		if !pathExists(kept) {
			t.Errorf("%s gone after dpkg -r; remove must keep it", kept)
		}
	}

	// Install again: the store is picked up as it was.
	if out := sh(t, "dpkg", "-i", deb); !strings.Contains(out, "store /var/lib/vpcflow/vpcflow.db exists already (1 VPCs") {
		t.Errorf("reinstall did not find the kept store:\n%s", out)
	}
	svc = ns.startService(t, unit)
	svc.waitNotify(t, "READY=1", 30*time.Second)
	if vpcs := ns.sh(t, "/usr/bin/vpcflow", "vpc", "list"); !strings.Contains(vpcs, "vpc-kept") {
		t.Errorf("after remove and reinstall the store lost vpc-kept:\n%s", vpcs)
	}
	svc.stop(t)

	// Purge: the store and the configuration go too.
	t.Logf("dpkg --purge:\n%s", sh(t, "dpkg", "--purge", "vpcflow"))
	for _, gone := range []string{"/usr/bin/vpcflow", "/var/lib/vpcflow", "/etc/vpcflow", "/etc/systemd/system/vpcflow.service",
		"/etc/systemd/system/multi-user.target.wants/vpcflow.service"} {
		if pathExists(gone) {
			t.Errorf("%s still there after dpkg --purge", gone)
		}
	}
	if out, err := exec.Command("dpkg", "-s", "vpcflow").CombinedOutput(); err == nil {
		t.Errorf("dpkg still knows vpcflow after purge:\n%s", out)
	}
	// Left by design (Debian policy keeps system users): the vpcflow user
	// and group; the cleanup removes them.
	if _, err := userID("vpcflow"); err != nil {
		t.Logf("the vpcflow user is gone after purge (%v)", err)
	}
}

// cleanupPackage removes whatever the test may have left: the package,
// its directories, the user and group.
func cleanupPackage(t *testing.T) {
	if err := exec.Command("dpkg", "-s", "vpcflow").Run(); err == nil {
		if out, err := exec.Command("dpkg", "--purge", "vpcflow").CombinedOutput(); err != nil {
			t.Errorf("cleanup: dpkg --purge: %v\n%s", err, out)
		}
	}
	for _, p := range []string{"/var/lib/vpcflow", "/etc/vpcflow", "/etc/systemd/system/vpcflow.service",
		"/etc/systemd/system/multi-user.target.wants/vpcflow.service"} {
		_ = os.RemoveAll(p)
	}
	if _, err := userID("vpcflow"); err == nil {
		if out, err := exec.Command("userdel", "vpcflow").CombinedOutput(); err != nil {
			t.Errorf("cleanup: userdel vpcflow: %v\n%s", err, out)
		}
	}
	if exec.Command("getent", "group", "vpcflow").Run() == nil {
		if out, err := exec.Command("groupdel", "vpcflow").CombinedOutput(); err != nil {
			t.Errorf("cleanup: groupdel vpcflow: %v\n%s", err, out)
		}
	}
}

func sh(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func pathExists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func grep(s string, prefixes ...string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, p := range prefixes {
			if strings.HasPrefix(l, p) {
				out = append(out, l)
			}
		}
	}
	return strings.Join(out, "\n")
}

func userID(name string) (int, error) {
	out, err := exec.Command("id", "-u", name).Output()
	if err != nil {
		return 0, fmt.Errorf("id -u %s: %w", name, err)
	}
	return strconv.Atoi(strings.TrimSpace(string(out)))
}

func checkOwner(t *testing.T, path, user, group string, mode os.FileMode) {
	t.Helper()
	out, err := exec.Command("stat", "-c", "%U %G %a", path).CombinedOutput()
	if err != nil {
		t.Errorf("stat %s: %v %s", path, err, out)
		return
	}
	want := fmt.Sprintf("%s %s %o", user, group, mode)
	if got := strings.TrimSpace(string(out)); got != want {
		t.Errorf("%s: owner, group, mode %q; want %q", path, got, want)
	}
}

// readUnit reads the [Service] keys of a unit file (the last value of a
// key that is repeated).
func readUnit(t *testing.T, path string) map[string]string {
	t.Helper()
	m := map[string]string{}
	section := ""
	for _, l := range strings.Split(readFile(t, path), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || l[0] == '#' {
			continue
		}
		if l[0] == '[' {
			section = l
			continue
		}
		if k, v, ok := strings.Cut(l, "="); ok && section == "[Service]" {
			m[k] = v
		}
	}
	return m
}

// namespace is a network and mount namespace held open by a sleeping
// process: vpcflow's ports, and a tmpfs on /run/openvswitch with a private
// Open vSwitch, stay inside it.
type namespace struct {
	holder   *exec.Cmd
	pid      int
	dir      string
	madeRun  bool // /run/openvswitch was created for the test
	ovsPids  []int
	nsenterA []string
}

func newNamespace(t *testing.T) *namespace {
	t.Helper()
	dir, err := os.MkdirTemp("", "vpcflow-pkg-")
	if err != nil {
		t.Fatal(err)
	}
	ns := &namespace{dir: dir}
	if !pathExists("/run/openvswitch") {
		if err := os.Mkdir("/run/openvswitch", 0o755); err != nil {
			t.Fatal(err)
		}
		ns.madeRun = true
	}
	pidFile := filepath.Join(dir, "holder.pid")
	ns.holder = exec.Command("unshare", "--net", "--mount", "--propagation", "private", "--fork", "--",
		"sh", "-c", "echo $$ > "+pidFile+"; ip link set lo up; mount -t tmpfs -o mode=0755 tmpfs /run/openvswitch; exec sleep 3600")
	if err := ns.holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.close(t) })
	deadline := time.Now().Add(10 * time.Second)
	for {
		if b, err := os.ReadFile(pidFile); err == nil && len(bytes.TrimSpace(b)) > 0 {
			ns.pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
			if c, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", ns.pid)); strings.TrimSpace(string(c)) == "sleep" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("namespace holder did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	ns.nsenterA = []string{"-t", strconv.Itoa(ns.pid), "--net", "--mount", "--"}
	return ns
}

func (ns *namespace) command(name string, args ...string) *exec.Cmd {
	return exec.Command("nsenter", append(append(append([]string{}, ns.nsenterA...), name), args...)...)
}

func (ns *namespace) sh(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := ns.command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("(in the namespace) %s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// startOVS runs ovsdb-server and ovs-vswitchd (userspace datapath) with
// their sockets at the system path, /run/openvswitch, of the namespace.
func (ns *namespace) startOVS(t *testing.T) {
	t.Helper()
	db := filepath.Join(ns.dir, "conf.db")
	sh(t, "ovsdb-tool", "create", db, "/usr/share/openvswitch/vswitch.ovsschema")
	env := []string{"OVS_RUNDIR=/run/openvswitch", "OVS_LOGDIR=" + ns.dir, "OVS_DBDIR=" + ns.dir}
	run := func(args ...string) {
		t.Helper()
		c := ns.command(args[0], args[1:]...)
		c.Env = append(os.Environ(), env...)
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	run("ovsdb-server", db, "--remote=punix:/run/openvswitch/db.sock", "--pidfile=/run/openvswitch/ovsdb-server.pid",
		"--unixctl=/run/openvswitch/ovsdb-server.ctl", "--detach", "--no-chdir", "--log-file="+filepath.Join(ns.dir, "ovsdb-server.log"))
	run("ovs-vsctl", "--no-wait", "init")
	run("ovs-vswitchd", "unix:/run/openvswitch/db.sock", "--pidfile=/run/openvswitch/ovs-vswitchd.pid",
		"--unixctl=/run/openvswitch/ovs-vswitchd.ctl", "--detach", "--no-chdir", "--log-file="+filepath.Join(ns.dir, "ovs-vswitchd.log"))
	for _, p := range []string{"ovsdb-server", "ovs-vswitchd"} {
		b := ns.sh(t, "cat", "/run/openvswitch/"+p+".pid")
		pid, err := strconv.Atoi(strings.TrimSpace(b))
		if err != nil {
			t.Fatal(err)
		}
		ns.ovsPids = append(ns.ovsPids, pid)
	}
	if out := ns.sh(t, "stat", "-c", "%U %G %a", "/run/openvswitch/db.sock"); strings.TrimSpace(out) != "root root 750" {
		t.Logf("db.sock is %s (OVS's own default is root root 750)", out)
	}
}

func (ns *namespace) close(t *testing.T) {
	for _, pid := range ns.ovsPids {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	for _, pid := range ns.ovsPids {
		for i := 0; i < 200 && syscall.Kill(pid, 0) == nil; i++ {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if ns.holder != nil && ns.holder.Process != nil {
		if ns.pid > 0 {
			_ = syscall.Kill(ns.pid, syscall.SIGKILL)
		}
		_ = ns.holder.Wait()
	}
	if ns.madeRun {
		if err := os.Remove("/run/openvswitch"); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
	_ = os.RemoveAll(ns.dir)
}

// service is the unit's ExecStart run as systemd would run it.
type service struct {
	cmd     *exec.Cmd
	notify  *net.UnixConn
	msgs    chan string
	logPath string
	done    chan error
}

// startService runs ExecStart inside the namespace with the unit's User,
// Group, AmbientCapabilities/CapabilityBoundingSet and NoNewPrivileges
// (setpriv), and $NOTIFY_SOCKET and $WATCHDOG_USEC as systemd sets them.
func (ns *namespace) startService(t *testing.T, unit map[string]string) *service {
	t.Helper()
	sock := filepath.Join(ns.dir, fmt.Sprintf("notify-%d.sock", time.Now().UnixNano()))
	nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	// vpcflow (the user) must be able to send to it.
	if err := os.Chmod(sock, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(ns.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	wd, err := time.ParseDuration(strings.TrimSuffix(unit["WatchdogSec"], "s") + "s")
	if err != nil {
		t.Fatalf("WatchdogSec %q: %v", unit["WatchdogSec"], err)
	}
	caps := strings.ToLower(strings.TrimPrefix(unit["AmbientCapabilities"], "CAP_"))
	argv := append([]string{"setpriv", "--reuid=" + unit["User"], "--regid=" + unit["Group"], "--init-groups",
		"--inh-caps=+" + caps, "--ambient-caps=+" + caps, "--bounding-set=-all,+" + caps, "--no-new-privs", "--"},
		strings.Fields(unit["ExecStart"])...)
	s := &service{notify: nc, msgs: make(chan string, 1000), logPath: filepath.Join(ns.dir, fmt.Sprintf("vpcflow-%d.log", time.Now().UnixNano())), done: make(chan error, 1)}
	logf, err := os.Create(s.logPath)
	if err != nil {
		t.Fatal(err)
	}
	s.cmd = ns.command(argv[0], argv[1:]...)
	s.cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "NOTIFY_SOCKET=" + sock,
		"WATCHDOG_USEC=" + strconv.FormatInt(wd.Microseconds(), 10), "LANG=C.UTF-8"}
	s.cmd.Dir = "/"
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := nc.Read(buf)
			if err != nil {
				return
			}
			s.msgs <- string(buf[:n])
		}
	}()
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			_ = s.cmd.Process.Kill()
		}
		nc.Close()
		if t.Failed() {
			t.Logf("vpcflow log %s:\n%s", s.logPath, s.log())
		}
	})
	return s
}

func (s *service) log() string {
	b, _ := os.ReadFile(s.logPath)
	return string(b)
}

// pid is vpcflow's pid (nsenter forks it; setpriv execs it).
func (s *service) pid() int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", s.cmd.Process.Pid, s.cmd.Process.Pid))
	if err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			if p, err := strconv.Atoi(f[0]); err == nil {
				return p
			}
		}
	}
	return s.cmd.Process.Pid
}

func (s *service) waitNotify(t *testing.T, want string, limit time.Duration) string {
	t.Helper()
	deadline := time.After(limit)
	for {
		select {
		case m := <-s.msgs:
			if strings.Contains(m, want) {
				return m
			}
		case err := <-s.done:
			t.Fatalf("vpcflow exited (%v) before %q:\n%s", err, want, s.log())
		case <-deadline:
			t.Fatalf("no %q within %s:\n%s", want, limit, s.log())
		}
	}
}

func (s *service) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := syscall.Kill(s.pid(), sig); err != nil {
		t.Fatal(err)
	}
}

func (s *service) stop(t *testing.T) {
	t.Helper()
	s.signal(t, syscall.SIGTERM)
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("vpcflow exit after SIGTERM: %v\n%s", err, s.log())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("vpcflow did not stop within 20s of SIGTERM")
	}
	s.waitNotify(t, "STOPPING=1", 2*time.Second)
}

// TestMakeInstall runs `make install` on this machine (same opt-in as
// TestDebianPackage), checks what it put where and that the installed
// unit's ExecStart serves, then `make uninstall` and removes the rest.
func TestMakeInstall(t *testing.T) {
	if os.Getenv("VPCFLOW_PACKAGE_TEST") == "" {
		t.Skip("installs vpcflow on this machine: run by `make package-test`, as root")
	}
	if os.Geteuid() != 0 {
		t.Fatal("VPCFLOW_PACKAGE_TEST is set but this is not root")
	}
	for _, p := range []string{"/usr/local/bin/vpcflow", "/etc/systemd/system/vpcflow.service", "/etc/vpcflow", "/var/lib/vpcflow"} {
		if pathExists(p) {
			t.Fatalf("%s exists already; not touching it", p)
		}
	}
	if _, err := userID("vpcflow"); err == nil {
		t.Fatal("a vpcflow user exists already; not touching it")
	}
	t.Cleanup(func() {
		for _, p := range []string{"/usr/local/bin/vpcflow", "/etc/systemd/system/vpcflow.service"} {
			_ = os.Remove(p)
		}
		cleanupPackage(t)
	})
	out := sh(t, "make", "-C", "..", "install")
	t.Logf("make install:\n%s", out)
	checkOwner(t, "/usr/local/bin/vpcflow", "root", "root", 0o755)
	checkOwner(t, "/var/lib/vpcflow/vpcflow.db", "vpcflow", "vpcflow", 0o600)
	checkOwner(t, "/etc/vpcflow/vpcflow.yaml", "root", "vpcflow", 0o640)
	unit := readUnit(t, "/etc/systemd/system/vpcflow.service")
	if unit["ExecStart"] != "/usr/local/bin/vpcflow serve --config /etc/vpcflow/vpcflow.yaml" {
		t.Errorf("ExecStart %q", unit["ExecStart"])
	}
	ns := newNamespace(t)
	svc := ns.startService(t, unit)
	svc.waitNotify(t, "READY=1", 30*time.Second)
	if health := ns.sh(t, "curl", "-sf", "http://127.0.0.1:8080/healthz"); !strings.Contains(health, `"status":"ok"`) {
		t.Errorf("curl /healthz: %s", health)
	}
	svc.stop(t)
	sh(t, "make", "-C", "..", "uninstall")
	for _, gone := range []string{"/usr/local/bin/vpcflow", "/etc/systemd/system/vpcflow.service"} {
		if pathExists(gone) {
			t.Errorf("%s still there after make uninstall", gone)
		}
	}
	if !pathExists("/var/lib/vpcflow/vpcflow.db") {
		t.Error("make uninstall removed the store; it must keep it")
	}
}
