// Package packaging holds the Debian package's files (nfpm.yaml, the
// systemd unit, the default configuration, the maintainer scripts) and the
// tests that install the built package in a sandbox: a clean copy of this
// machine (overlay root, PID, mount and network namespaces of its own) that
// the tests throw away, so that they change nothing here.
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

// packageUnderTest is the .deb named by $VPCFLOW_PACKAGE_TEST (make
// package-test sets it, as root), or skips.
func packageUnderTest(t *testing.T) string {
	t.Helper()
	deb := os.Getenv("VPCFLOW_PACKAGE_TEST")
	if deb == "" {
		t.Skip("installs the package in a sandbox: run by `make package-test` (VPCFLOW_PACKAGE_TEST=path/to.deb), as root")
	}
	if os.Geteuid() != 0 {
		t.Fatal("VPCFLOW_PACKAGE_TEST is set but this is not root")
	}
	for _, c := range []string{"dpkg", "unshare", "nsenter", "setpriv", "runuser", "curl", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-ofctl", "ip", "ping"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Fatalf("needs %s: %v", c, err)
		}
	}
	return deb
}

// TestDebianPackage installs the .deb in a clean sandbox, checks what it
// put where, starts the unit's ExecStart the way systemd would (its User=,
// its capabilities, no new privileges, $NOTIFY_SOCKET, $WATCHDOG_USEC) with
// a private Open vSwitch at the system socket path, runs the smoke test
// (vpcflow switches, curl /healthz), then removes the package (the store
// stays), installs it again (the data is still there) and purges it (the
// store and /etc/vpcflow go).
func TestDebianPackage(t *testing.T) {
	deb := packageUnderTest(t)
	sb := newSandbox(t)
	sb.checkClean(t)
	sb.install(t, deb, "/tmp/vpcflow.deb", 0o644)

	// Install.
	out := sb.sh(t, "dpkg", "-i", "/tmp/vpcflow.deb")
	t.Logf("dpkg -i:\n%s", out)
	if !strings.Contains(out, "systemd is not running; start vpcflow with") {
		t.Errorf("postinst did not say how to start vpcflow without systemd:\n%s", out)
	}
	uid, err := sb.userID("vpcflow")
	if err != nil {
		t.Fatalf("no vpcflow user after install: %v", err)
	}
	if uid >= 1000 || uid == 0 {
		t.Errorf("vpcflow uid %d: want a system user", uid)
	}
	if pw := sb.sh(t, "getent", "passwd", "vpcflow"); !strings.HasSuffix(strings.TrimSpace(pw), ":/var/lib/vpcflow:/usr/sbin/nologin") {
		t.Errorf("passwd entry %q: want home /var/lib/vpcflow, shell nologin", pw)
	}
	sb.checkOwner(t, "/var/lib/vpcflow", "vpcflow", "vpcflow", 0o750)
	// postinst created the store (vpcflow init, as vpcflow): serve never
	// creates one by itself.
	if !strings.Contains(out, "created an empty store /var/lib/vpcflow/vpcflow.db") {
		t.Errorf("postinst did not initialise the store:\n%s", out)
	}
	sb.checkOwner(t, "/var/lib/vpcflow/vpcflow.db", "vpcflow", "vpcflow", 0o600)
	sb.checkOwner(t, "/etc/vpcflow", "root", "vpcflow", 0o750)
	sb.checkOwner(t, "/etc/vpcflow/vpcflow.yaml", "root", "vpcflow", 0o640)
	sb.checkOwner(t, "/usr/bin/vpcflow", "root", "root", 0o755)
	if _, err := sb.command("sh", "-c", "command -v deb-systemd-helper").Output(); err != nil {
		t.Logf("deb-systemd-helper (init-system-helpers) is not installed: the unit's enablement is not checked")
	} else if !sb.exists("/etc/systemd/system/multi-user.target.wants/vpcflow.service") {
		t.Error("the unit is not enabled (no multi-user.target.wants link)")
	}
	if conf := sb.sh(t, "dpkg-query", "-W", "-f=${Conffiles}", "vpcflow"); !strings.Contains(conf, "/etc/vpcflow/vpcflow.yaml") {
		t.Errorf("vpcflow.yaml is not a conffile: %q", conf)
	}
	// The unit as systemd reads it (systemd-analyze needs the systemd
	// package, which a bare Debian 12 container lacks).
	if _, err := sb.command("sh", "-c", "command -v systemd-analyze").Output(); err != nil {
		t.Logf("systemd-analyze is not installed: the unit file is not verified by systemd")
	} else if out, err := sb.command("systemd-analyze", "verify", "/lib/systemd/system/vpcflow.service").CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	unit := readUnit(t, sb.path("/lib/systemd/system/vpcflow.service"))
	for k, want := range map[string]string{"Type": "notify", "Restart": "on-failure", "User": "vpcflow", "Group": "vpcflow",
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "StateDirectory": "vpcflow", "AmbientCapabilities": "CAP_DAC_OVERRIDE"} {
		if unit[k] != want {
			t.Errorf("unit %s=%q, want %q", k, unit[k], want)
		}
	}
	if unit["WatchdogSec"] == "" {
		t.Error("unit has no WatchdogSec")
	}
	if out := sb.sh(t, "/usr/bin/vpcflow", "version"); !strings.Contains(out, "store schema:") {
		t.Errorf("vpcflow version: %s", out)
	}
	sb.sh(t, "/usr/bin/vpcflow", "config", "check", "--config", "/etc/vpcflow/vpcflow.yaml")

	sb.startOVS(t)
	svc := sb.startService(t, unit)
	ready := svc.waitNotify(t, "READY=1", 30*time.Second)
	t.Logf("sd_notify: %q", ready)

	// Smoke test.
	health := sb.sh(t, "curl", "-sf", "http://127.0.0.1:8080/healthz")
	if !strings.Contains(health, `"status":"ok"`) {
		t.Errorf("curl /healthz: %s", health)
	}
	sb.sh(t, "/usr/bin/vpcflow", "bridge", "setup", "br-int", "--create", "--datapath-type", "netdev", "--controller", "tcp:127.0.0.1:6653")
	var switches string
	deadline := time.Now().Add(30 * time.Second)
	for {
		switches = sb.sh(t, "/usr/bin/vpcflow", "switches")
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
	sb.sh(t, "/usr/bin/vpcflow", "vpc", "create", "vpc-kept")
	status := readFile(t, fmt.Sprintf("/proc/%d/status", svc.pid()))
	if !strings.Contains(status, fmt.Sprintf("\nUid:\t%d\t%d\t%d\t%d\n", uid, uid, uid, uid)) {
		t.Errorf("service does not run as vpcflow (uid %d):\n%s", uid, status)
	}
	if !strings.Contains(status, "\nCapEff:\t0000000000000002\n") || !strings.Contains(status, "\nNoNewPrivs:\t1\n") {
		t.Errorf("want only CAP_DAC_OVERRIDE effective and no new privileges:\n%s", grep(status, "Cap", "NoNewPrivs"))
	}
	sb.checkOwner(t, "/var/lib/vpcflow/vpcflow.db", "vpcflow", "vpcflow", 0o600)
	svc.signal(t, syscall.SIGHUP)
	svc.waitNotify(t, "RELOADING=1", 10*time.Second)
	svc.waitNotify(t, "READY=1", 10*time.Second)
	svc.stop(t)

	// Remove: the program goes, the store and the configuration stay.
	t.Logf("dpkg -r:\n%s", sb.sh(t, "dpkg", "-r", "vpcflow"))
	for _, gone := range []string{"/usr/bin/vpcflow", "/lib/systemd/system/vpcflow.service"} {
		if sb.exists(gone) {
			t.Errorf("%s still there after dpkg -r", gone)
		}
	}
	for _, kept := range []string{"/var/lib/vpcflow/vpcflow.db", "/etc/vpcflow/vpcflow.yaml"} {
		if !sb.exists(kept) {
			t.Errorf("%s gone after dpkg -r; remove must keep it", kept)
		}
	}

	// Install again: the store is picked up as it was.
	if out := sb.sh(t, "dpkg", "-i", "/tmp/vpcflow.deb"); !strings.Contains(out, "store /var/lib/vpcflow/vpcflow.db exists already (1 VPCs") {
		t.Errorf("reinstall did not find the kept store:\n%s", out)
	}
	svc = sb.startService(t, unit)
	svc.waitNotify(t, "READY=1", 30*time.Second)
	if vpcs := sb.sh(t, "/usr/bin/vpcflow", "vpc", "list"); !strings.Contains(vpcs, "vpc-kept") {
		t.Errorf("after remove and reinstall the store lost vpc-kept:\n%s", vpcs)
	}
	svc.stop(t)

	// Purge: the store and the configuration go too.
	t.Logf("dpkg --purge:\n%s", sb.sh(t, "dpkg", "--purge", "vpcflow"))
	for _, gone := range []string{"/usr/bin/vpcflow", "/var/lib/vpcflow", "/etc/vpcflow", "/etc/systemd/system/vpcflow.service",
		"/etc/systemd/system/multi-user.target.wants/vpcflow.service"} {
		if sb.exists(gone) {
			t.Errorf("%s still there after dpkg --purge", gone)
		}
	}
	if out, err := sb.command("dpkg", "-s", "vpcflow").CombinedOutput(); err == nil {
		t.Errorf("dpkg still knows vpcflow after purge:\n%s", out)
	}
	// Left by design (Debian policy keeps system users): the vpcflow user
	// and group, with the sandbox.
	if _, err := sb.userID("vpcflow"); err != nil {
		t.Errorf("the vpcflow user is gone after purge (%v); Debian policy keeps it", err)
	}
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

// sandbox is a clean machine for the package: PID, mount and network
// namespaces of their own, chrooted into an overlay of this machine's root
// file system whose writes go to a tmpfs, with fresh /run, /tmp, /proc and
// /sys. dpkg, useradd and the service change only the overlay; a private
// Open vSwitch has its sockets at the system path, /run/openvswitch. Killing
// its first process (the holder) ends every process in it, and with them
// its mounts and network namespaces.
type sandbox struct {
	holder *exec.Cmd
	pid    int    // the holder (PID 1 inside), as this machine sees it
	dir    string // on this machine: mount point of the sandbox's tmpfs, logs
}

func newSandbox(t *testing.T) *sandbox {
	t.Helper()
	dir, err := os.MkdirTemp("", "vpcflow-pkg-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(dir, "fs")
	if err := os.Mkdir(base, 0o755); err != nil {
		t.Fatal(err)
	}
	// The repository and Go's caches are bound in at their paths (make
	// install builds there), wherever they are mounted on this machine.
	var binds []string
	if repo, err := filepath.Abs(".."); err == nil {
		binds = append(binds, repo)
	}
	for _, v := range []string{"GOROOT", "GOMODCACHE", "GOCACHE"} {
		if out, err := exec.Command("go", "env", v).Output(); err == nil && strings.TrimSpace(string(out)) != "" {
			binds = append(binds, strings.TrimSpace(string(out)))
		}
	}
	script := `set -e
B=` + base + `
mount -t tmpfs -o mode=0755 tmpfs $B
mkdir $B/upper $B/work $B/root
mount -t overlay overlay -o lowerdir=/,upperdir=$B/upper,workdir=$B/work $B/root
mount --rbind /dev $B/root/dev
mount -t proc proc $B/root/proc
mount -t sysfs sysfs $B/root/sys
mount -t tmpfs -o mode=0755 tmpfs $B/root/run
mount -t tmpfs -o mode=1777 tmpfs $B/root/tmp
for d in "$@"; do
	[ -d "$d" ] || continue
	mkdir -p "$B/root$d"
	mount --bind "$d" "$B/root$d"
done
ip link set lo up
touch $B/root/run/sandbox-ready
exec chroot $B/root sleep infinity
`
	sb := &sandbox{dir: dir}
	sb.holder = exec.Command("unshare", append([]string{"--pid", "--mount", "--net", "--propagation", "private", "--fork", "--",
		"sh", "-c", script, "sandbox"}, binds...)...)
	var out bytes.Buffer
	sb.holder.Stdout, sb.holder.Stderr = &out, &out
	if err := sb.holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.close(t) })
	deadline := time.Now().Add(15 * time.Second)
	for {
		if sb.pid == 0 {
			sb.pid = firstChild(sb.holder.Process.Pid)
		}
		if sb.pid != 0 && pathExists(sb.path("/run/sandbox-ready")) {
			if c, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", sb.pid)); strings.TrimSpace(string(c)) == "sleep" {
				break
			}
		}
		if sb.holder.ProcessState != nil || time.Now().After(deadline) {
			t.Fatalf("the sandbox did not start:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return sb
}

// firstChild is the first child process of pid, 0 if none.
func firstChild(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return 0
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		p, _ := strconv.Atoi(f[0])
		return p
	}
	return 0
}

// path is where this machine reaches a path inside the sandbox.
func (sb *sandbox) path(p string) string { return fmt.Sprintf("/proc/%d/root%s", sb.pid, p) }

// command runs inside the sandbox: its namespaces, its root, / as the
// working directory.
func (sb *sandbox) command(name string, args ...string) *exec.Cmd {
	c := exec.Command("nsenter", append([]string{"-t", strconv.Itoa(sb.pid), "--pid", "--mount", "--net", "--root", "--wdns=/", "--", name}, args...)...)
	c.Env = []string{"PATH=" + os.Getenv("PATH") + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "HOME=/root"}
	return c
}

func (sb *sandbox) sh(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := sb.command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("(in the sandbox) %s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// exists says whether a path exists inside the sandbox.
func (sb *sandbox) exists(p string) bool { return pathExists(sb.path(p)) }

// install copies a file of this machine into the sandbox.
func (sb *sandbox) install(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sb.path(dst), b, mode); err != nil {
		t.Fatal(err)
	}
}

// checkClean fails unless the sandbox has no vpcflow of its own (it
// starts as a copy of this machine).
func (sb *sandbox) checkClean(t *testing.T) {
	t.Helper()
	if out, err := sb.command("dpkg", "-s", "vpcflow").CombinedOutput(); err == nil {
		t.Fatalf("a vpcflow package is installed on this machine; the sandbox is not clean:\n%s", out)
	}
	for _, p := range []string{"/etc/vpcflow", "/var/lib/vpcflow", "/usr/local/bin/vpcflow", "/etc/systemd/system/vpcflow.service"} {
		if sb.exists(p) {
			t.Fatalf("%s exists on this machine; the sandbox is not clean", p)
		}
	}
	if _, err := sb.userID("vpcflow"); err == nil {
		t.Fatal("a vpcflow user exists on this machine; the sandbox is not clean")
	}
}

func (sb *sandbox) userID(name string) (int, error) {
	out, err := sb.command("id", "-u", name).Output()
	if err != nil {
		return 0, fmt.Errorf("id -u %s: %w", name, err)
	}
	return strconv.Atoi(strings.TrimSpace(string(out)))
}

func (sb *sandbox) readFile(t *testing.T, p string) string {
	t.Helper()
	return readFile(t, sb.path(p))
}

func (sb *sandbox) checkOwner(t *testing.T, path, user, group string, mode os.FileMode) {
	t.Helper()
	out, err := sb.command("stat", "-c", "%U %G %a", path).CombinedOutput()
	if err != nil {
		t.Errorf("stat %s: %v %s", path, err, out)
		return
	}
	want := fmt.Sprintf("%s %s %o", user, group, mode)
	if got := strings.TrimSpace(string(out)); got != want {
		t.Errorf("%s: owner, group, mode %q; want %q", path, got, want)
	}
}

// startOVS runs ovsdb-server and ovs-vswitchd (userspace datapath) with
// their sockets at the system path, /run/openvswitch, of the sandbox.
func (sb *sandbox) startOVS(t *testing.T) {
	t.Helper()
	sb.sh(t, "sh", "-c", `set -e
mkdir -p /run/openvswitch /var/lib/openvswitch-test
D=/var/lib/openvswitch-test
ovsdb-tool create $D/conf.db /usr/share/openvswitch/vswitch.ovsschema
export OVS_RUNDIR=/run/openvswitch OVS_LOGDIR=$D OVS_DBDIR=$D
ovsdb-server $D/conf.db --remote=punix:/run/openvswitch/db.sock --pidfile=/run/openvswitch/ovsdb-server.pid \
	--unixctl=/run/openvswitch/ovsdb-server.ctl --detach --no-chdir --log-file=$D/ovsdb-server.log
ovs-vsctl --no-wait init
ovs-vswitchd unix:/run/openvswitch/db.sock --pidfile=/run/openvswitch/ovs-vswitchd.pid \
	--unixctl=/run/openvswitch/ovs-vswitchd.ctl --detach --no-chdir --log-file=$D/ovs-vswitchd.log
`)
	if out := sb.sh(t, "stat", "-c", "%U %G %a", "/run/openvswitch/db.sock"); strings.TrimSpace(out) != "root root 750" {
		t.Logf("db.sock is %s (OVS's own default is root root 750)", out)
	}
}

// close ends every process of the sandbox (its PID 1 first: the kernel
// kills the rest) and removes what is left on this machine.
func (sb *sandbox) close(t *testing.T) {
	if sb.holder != nil && sb.holder.Process != nil {
		if sb.pid > 0 {
			_ = syscall.Kill(sb.pid, syscall.SIGKILL)
		}
		_ = sb.holder.Process.Kill()
		_ = sb.holder.Wait()
	}
	if err := os.RemoveAll(sb.dir); err != nil {
		t.Errorf("cleanup: %v", err)
	}
}

// service is the unit's ExecStart run as systemd would run it.
type service struct {
	cmd     *exec.Cmd
	notify  *net.UnixConn
	msgs    chan string
	logPath string
	done    chan error
}

// startService runs ExecStart inside the sandbox with the unit's User,
// Group, AmbientCapabilities/CapabilityBoundingSet and NoNewPrivileges
// (setpriv), and $NOTIFY_SOCKET and $WATCHDOG_USEC as systemd sets them.
func (sb *sandbox) startService(t *testing.T, unit map[string]string) *service {
	t.Helper()
	inside := fmt.Sprintf("/run/vpcflow-notify-%d.sock", time.Now().UnixNano())
	sock := sb.path(inside)
	nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	// vpcflow (the user) must be able to send to it.
	if err := os.Chmod(sock, 0o777); err != nil {
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
	s := &service{notify: nc, msgs: make(chan string, 1000), logPath: filepath.Join(sb.dir, fmt.Sprintf("vpcflow-%d.log", time.Now().UnixNano())), done: make(chan error, 1)}
	logf, err := os.Create(s.logPath)
	if err != nil {
		t.Fatal(err)
	}
	s.cmd = sb.command(argv[0], argv[1:]...)
	s.cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "NOTIFY_SOCKET=" + inside,
		"WATCHDOG_USEC=" + strconv.FormatInt(wd.Microseconds(), 10), "LANG=C.UTF-8"}
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

// TestMakeInstall runs `make install` in a clean sandbox, checks what it
// put where and that the installed unit's ExecStart serves, then `make
// uninstall`.
func TestMakeInstall(t *testing.T) {
	packageUnderTest(t)
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	sb := newSandbox(t)
	sb.checkClean(t)
	out := sb.sh(t, "make", "-C", repo, "install")
	t.Logf("make install:\n%s", out)
	sb.checkOwner(t, "/usr/local/bin/vpcflow", "root", "root", 0o755)
	sb.checkOwner(t, "/var/lib/vpcflow/vpcflow.db", "vpcflow", "vpcflow", 0o600)
	sb.checkOwner(t, "/etc/vpcflow/vpcflow.yaml", "root", "vpcflow", 0o640)
	unit := readUnit(t, sb.path("/etc/systemd/system/vpcflow.service"))
	if unit["ExecStart"] != "/usr/local/bin/vpcflow serve --config /etc/vpcflow/vpcflow.yaml" {
		t.Errorf("ExecStart %q", unit["ExecStart"])
	}
	sb.startOVS(t)
	svc := sb.startService(t, unit)
	svc.waitNotify(t, "READY=1", 30*time.Second)
	if health := sb.sh(t, "curl", "-sf", "http://127.0.0.1:8080/healthz"); !strings.Contains(health, `"status":"ok"`) {
		t.Errorf("curl /healthz: %s", health)
	}
	svc.stop(t)
	sb.sh(t, "make", "-C", repo, "uninstall")
	for _, gone := range []string{"/usr/local/bin/vpcflow", "/etc/systemd/system/vpcflow.service"} {
		if sb.exists(gone) {
			t.Errorf("%s still there after make uninstall", gone)
		}
	}
	if !sb.exists("/var/lib/vpcflow/vpcflow.db") {
		t.Error("make uninstall removed the store; it must keep it")
	}
}
