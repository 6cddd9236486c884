package main

// The real binary run as systemd would run it: sd_notify READY/WATCHDOG/
// RELOADING/STOPPING on a datagram socket, journal priority prefixes, and
// SIGHUP reloading the configuration file.

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/e2e/netlab"
)

// binDir holds the binary built for this package's tests; TestMain
// removes it.
var binOnce struct {
	sync.Once
	dir, path string
	err       error
}

func TestMain(m *testing.M) {
	netlab.InstallSignalHandler()
	code := m.Run()
	if err := netlab.CloseAll(); err != nil {
		fmt.Fprintf(os.Stderr, "netlab: %v\n", err)
	}
	if binOnce.dir != "" {
		os.RemoveAll(binOnce.dir)
	}
	os.Exit(code)
}

// vpcflowBinary builds cmd/vpcflow once per test run.
func vpcflowBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		binOnce.dir, binOnce.err = os.MkdirTemp("", "vpcflow-cmd-bin-")
		if binOnce.err != nil {
			return
		}
		binOnce.path = filepath.Join(binOnce.dir, "vpcflow")
		out, err := exec.Command("go", "build", "-o", binOnce.path, ".").CombinedOutput()
		if err != nil {
			binOnce.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binOnce.err != nil {
		t.Fatal(binOnce.err)
	}
	return binOnce.path
}

// freeAddr returns a loopback address with a port free right now.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// notifySocket is the systemd end of sd_notify.
type notifySocket struct {
	t    *testing.T
	path string
	c    *net.UnixConn
	msgs chan string
}

func newNotifySocket(t *testing.T, dir string) *notifySocket {
	t.Helper()
	path := filepath.Join(dir, "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	n := &notifySocket{t: t, path: path, c: c, msgs: make(chan string, 1000)}
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := c.Read(buf)
			if err != nil {
				close(n.msgs)
				return
			}
			n.msgs <- string(buf[:k])
		}
	}()
	t.Cleanup(func() { c.Close() })
	return n
}

// wait returns the first message containing want (skipping others), or
// fails after limit.
func (n *notifySocket) wait(want string, limit time.Duration) string {
	n.t.Helper()
	deadline := time.After(limit)
	for {
		select {
		case m, ok := <-n.msgs:
			if !ok {
				n.t.Fatalf("notify socket closed waiting for %q", want)
			}
			if strings.Contains(m, want) {
				return m
			}
		case <-deadline:
			n.t.Fatalf("no %q from vpcflow within %s", want, limit)
		}
	}
}

// daemon is a `vpcflow serve` process.
type daemon struct {
	t       *testing.T
	cmd     *exec.Cmd
	logPath string
	done    chan error // Wait's result, once
	exit    chan struct{}
	once    sync.Once
	err     error
}

// exited is closed when the process has exited (err is then its status).
func (d *daemon) exited() <-chan struct{} {
	d.once.Do(func() {
		d.exit = make(chan struct{})
		go func() { d.err = <-d.done; close(d.exit) }()
	})
	return d.exit
}

// startDaemon runs `vpcflow serve args` with exactly env; with journal,
// JOURNAL_STREAM names its log file's device and inode, as systemd names
// the journal's stream.
func startDaemon(t *testing.T, env []string, journal bool, args ...string) *daemon {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "vpcflow.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if journal {
		var st syscall.Stat_t
		if err := syscall.Fstat(int(logf.Fd()), &st); err != nil {
			t.Fatal(err)
		}
		env = append(env, fmt.Sprintf("JOURNAL_STREAM=%d:%d", st.Dev, st.Ino))
	}
	cmd := exec.Command(vpcflowBinary(t), append([]string{"serve"}, args...)...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	d := &daemon{t: t, cmd: cmd, logPath: logPath, done: make(chan error, 1)}
	go func() { d.done <- cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-d.exited():
		default:
			_ = d.cmd.Process.Kill()
			<-d.exited()
		}
		if t.Failed() {
			t.Logf("vpcflow log:\n%s", d.log())
		}
	})
	return d
}

func (d *daemon) log() string {
	b, _ := os.ReadFile(d.logPath)
	return string(b)
}

func (d *daemon) signal(s syscall.Signal) {
	d.t.Helper()
	if err := d.cmd.Process.Signal(s); err != nil {
		d.t.Fatal(err)
	}
}

// waitLog waits until the log contains want.
func (d *daemon) waitLog(want string, limit time.Duration) {
	d.t.Helper()
	deadline := time.Now().Add(limit)
	for !strings.Contains(d.log(), want) {
		if time.Now().After(deadline) {
			d.t.Fatalf("log lacks %q after %s:\n%s", want, limit, d.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (d *daemon) stop() error {
	d.signal(syscall.SIGTERM)
	select {
	case <-d.exited():
		return d.err
	case <-time.After(15 * time.Second):
		d.t.Fatal("vpcflow did not stop within 15s of SIGTERM")
		return nil
	}
}

func httpStatus(t *testing.T, url, token string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestServeUnderSystemd: READY=1 only once the REST and OpenFlow listeners
// answer (and the store is on disk), WATCHDOG=1 every WatchdogSec/2, log
// lines carrying journal priorities, SIGHUP applying the log level and the
// API token at once and naming the settings that need a restart, a bad
// file refused on reload, STOPPING=1 on SIGTERM.
func TestServeUnderSystemd(t *testing.T) {
	dir := t.TempDir()
	n := newNotifySocket(t, dir)
	rest, of := freeAddr(t), freeAddr(t)
	data := filepath.Join(dir, "data")
	tokenA := writeFile(t, dir, "token-a", "token-a\n")
	conf := filepath.Join(dir, "vpcflow.yaml")
	writeConf := func(extra string) {
		t.Helper()
		c := fmt.Sprintf("data-dir: %s\nlisten: %s\nopenflow: %s\napi-token-file: %s\n%s", data, rest, of, tokenA, extra)
		if err := os.WriteFile(conf, []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeConf("log-level: info\n")

	// JOURNAL_STREAM names the log file: vpcflow must then prefix each
	// line with its priority.
	env := []string{"PATH=" + os.Getenv("PATH"), "NOTIFY_SOCKET=" + n.path, "WATCHDOG_USEC=400000", "VPCFLOW_CONFIG=" + conf}
	d := startDaemon(t, env, true, "--init")
	ready := n.wait("READY=1", 20*time.Second)
	// The listeners were up before READY=1: no retry needed.
	if code := httpStatus(t, "http://"+rest+"/healthz", ""); code != 200 {
		t.Fatalf("/healthz right after READY=1: %d", code)
	}
	if c, err := net.DialTimeout("tcp", of, time.Second); err != nil {
		t.Fatalf("OpenFlow listener right after READY=1: %v", err)
	} else {
		c.Close()
	}
	if _, err := os.Stat(filepath.Join(data, "vpcflow.db")); err != nil {
		t.Fatalf("store not on disk at READY=1: %v", err)
	}
	if !strings.Contains(ready, "STATUS=serving OpenFlow on "+of) {
		t.Errorf("READY message %q lacks the status", ready)
	}
	start := time.Now()
	for i := 0; i < 3; i++ {
		n.wait("WATCHDOG=1", 2*time.Second)
	}
	if el := time.Since(start); el > 1500*time.Millisecond {
		t.Errorf("3 watchdog pings took %s; want one every 200ms", el)
	}
	d.waitLog("systemd watchdog enabled", 5*time.Second)

	if code := httpStatus(t, "http://"+rest+"/v1/vpcs", "token-a"); code != 200 {
		t.Fatalf("token A: %d", code)
	}
	// Journal priorities: info lines start with <6>.
	for _, line := range strings.Split(strings.TrimSpace(d.log()), "\n") {
		if !strings.HasPrefix(line, "<") {
			t.Errorf("log line without a journal priority: %q", line)
		}
	}
	if !strings.Contains(d.log(), "<6>") {
		t.Errorf("no <6> (info) line:\n%s", d.log())
	}

	// SIGHUP: a new token file and log level apply at once; a new listen
	// address is only reported.
	tokenB := writeFile(t, dir, "token-b", "token-b\n")
	c := fmt.Sprintf("data-dir: %s\nlisten: 127.0.0.1:1\nopenflow: %s\napi-token-file: %s\nlog-level: debug\n", data, of, tokenB)
	if err := os.WriteFile(conf, []byte(c), 0o600); err != nil {
		t.Fatal(err)
	}
	d.signal(syscall.SIGHUP)
	n.wait("RELOADING=1", 5*time.Second)
	n.wait("READY=1", 5*time.Second)
	d.waitLog(`configuration reloaded`, 5*time.Second)
	log := d.log()
	for _, want := range []string{
		`"applied": ["log-level", "API token"]`,
		`setting changed; restart vpcflow to apply it	{"key": "listen", "running": "` + rest + `", "new": "127.0.0.1:1"`,
		`"needs_restart": ["listen"]`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if code := httpStatus(t, "http://"+rest+"/v1/vpcs", "token-a"); code != 401 {
		t.Errorf("old token after reload: %d, want 401", code)
	}
	if code := httpStatus(t, "http://"+rest+"/v1/vpcs", "token-b"); code != 200 {
		t.Errorf("new token after reload: %d, want 200", code)
	}
	// Debug lines now: a change logs "topology changed" at debug.
	req, _ := http.NewRequest("POST", "http://"+rest+"/v1/vpcs", strings.NewReader(`{"name":"vpc-a"}`))
	req.Header.Set("Authorization", "Bearer token-b")
	req.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 201 {
		t.Fatalf("create a VPC: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	d.waitLog("<7>", 5*time.Second)

	// A broken file is refused whole; token B stays.
	if err := os.WriteFile(conf, []byte(c+"bogus-key: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d.signal(syscall.SIGHUP)
	d.waitLog(`configuration reload failed; the running configuration stays`, 5*time.Second)
	if !strings.Contains(d.log(), `key \"bogus-key\": unknown key`) {
		t.Errorf("the reload error does not name the key:\n%s", d.log())
	}
	if code := httpStatus(t, "http://"+rest+"/v1/vpcs", "token-b"); code != 200 {
		t.Errorf("token B after a failed reload: %d, want 200", code)
	}

	if err := d.stop(); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
	n.wait("STOPPING=1", 2*time.Second)
}

// The watchdog pings only while the probe (the store's read lock) answers:
// a hung store means no pings, and systemd restarts vpcflow.
func TestWatchdogFollowsProbe(t *testing.T) {
	n := newNotifySocket(t, t.TempDir())
	nt := newNotifier(envMap(map[string]string{"NOTIFY_SOCKET": n.path}))
	if watchdogInterval(envMap(map[string]string{"WATCHDOG_USEC": "100000", "WATCHDOG_PID": "1"})) != 0 {
		t.Error("WATCHDOG_PID of another process honoured")
	}
	iv := watchdogInterval(envMap(map[string]string{"WATCHDOG_USEC": "100000"}))
	if iv != 100*time.Millisecond {
		t.Fatalf("interval %s", iv)
	}
	var mu sync.Mutex // held = the store is hung
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		runWatchdog(ctx, zap.NewNop(), nt, iv, func() { mu.Lock(); mu.Unlock() })
		close(done)
	}()
	defer func() { cancel(); <-done }()
	n.wait("WATCHDOG=1", time.Second)
	mu.Lock()
	time.Sleep(120 * time.Millisecond) // a ping may have been on its way
	for len(n.msgs) > 0 {
		<-n.msgs
	}
	select {
	case m := <-n.msgs:
		t.Fatalf("%q while the probe hangs", m)
	case <-time.After(500 * time.Millisecond):
	}
	mu.Unlock()
	n.wait("WATCHDOG=1", time.Second)
}
