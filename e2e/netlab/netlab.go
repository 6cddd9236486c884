// Package netlab is a mininet-style test harness: hosts are network
// namespaces, links are veth pairs and switches are Open vSwitch bridges on
// the userspace (netdev) datapath, each run by a private ovsdb-server and
// ovs-vswitchd inside the lab's own "physical host" namespace.
//
// Every lab gets a random id ("vf" + 6 hex digits). All of its namespaces are
// named "<id>-<node>" and all of its files live in BaseDir()/<id>, so any
// number of labs can run at the same time on one machine. A lab removes
// everything it created when it is closed: processes are stopped by PID,
// namespaces deleted (which deletes their veths) and the lab directory
// removed (unless VPCFLOW_KEEP_LAB=1). Three further safety nets exist:
//
//   - InstallSignalHandler (done automatically by New) closes all open labs
//     on SIGINT/SIGTERM before the process dies;
//   - each lab starts a tiny reaper shell, in its own session, that waits on
//     a pipe held only by the owning process; if that process dies without
//     closing the lab (SIGKILL, `go test -timeout` panic, crash), the reaper
//     kills what runs in the lab's namespaces and deletes them;
//   - SweepStale (run once per process by New/NewStandalone) removes
//     namespaces of labs whose recorded owner process is dead.
package netlab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	// EnvE2E makes a missing prerequisite a test failure instead of a skip.
	EnvE2E = "VPCFLOW_E2E"
	// EnvKeepLab keeps the lab directory (logs, OVS database) after Close.
	// Namespaces and processes are removed regardless.
	EnvKeepLab = "VPCFLOW_KEEP_LAB"

	labIDPrefix       = "vf"
	defaultCmdTimeout = 60 * time.Second
	stopGrace         = 5 * time.Second
	ownerFile         = "owner"
	keepFile          = "keep"
	// OVSSchema is the Open_vSwitch database schema used for new databases.
	OVSSchema = "/usr/share/openvswitch/vswitch.ovsschema"
)

var (
	labIDRe    = regexp.MustCompile(`^vf[0-9a-f]{6}$`)
	labNSRe    = regexp.MustCompile(`^(vf[0-9a-f]{6})-`)
	nodeNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$`)
)

// Option configures a Lab.
type Option func(*config)

type config struct {
	logf       func(format string, args ...any)
	cmdTimeout time.Duration
	ipv6       bool
}

// WithLogf sends a line for every command the lab runs (and its output) to
// logf. New defaults to t.Logf; NewStandalone defaults to no logging.
func WithLogf(logf func(format string, args ...any)) Option {
	return func(c *config) { c.logf = logf }
}

// WithCmdTimeout sets the timeout applied to commands whose context has no
// deadline (default 60s).
func WithCmdTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.cmdTimeout = d
		}
	}
}

// WithIPv6 leaves IPv6 enabled in the lab's nodes. By default every node gets
// net.ipv6.conf.{all,default}.disable_ipv6=1 so that the fabric only carries
// the traffic a test sends (no router solicitations, no DAD, no MLD).
func WithIPv6() Option {
	return func(c *config) { c.ipv6 = true }
}

// Lab is one isolated set of namespaces, links and OVS instances.
type Lab struct {
	id   string
	name string
	dir  string
	cfg  config

	mu     sync.Mutex
	closed bool
	nodes  []*Node
	byName map[string]*Node
	procs  []*Process
	ovs    []*OVS
	seq    int

	logMu     sync.Mutex
	logStderr bool // set when t.Logf may no longer be safe (signal path)

	reaper *reaper

	closeOnce sync.Once
	closeErr  error
}

// BaseDir is the directory that holds one sub-directory per lab. It is fixed
// per machine (under os.TempDir) so that SweepStale can find dead labs.
func BaseDir() string {
	return filepath.Join(os.TempDir(), "vpcflow-netlab")
}

var sbinOnce sync.Once

// addSbinToPath appends the sbin directories (ip, ovs-vswitchd and
// ovsdb-server live there) to PATH when a non-login root shell lacks them.
func addSbinToPath() {
	sbinOnce.Do(func() {
		path := os.Getenv("PATH")
		have := filepath.SplitList(path)
		for _, d := range []string{"/usr/local/sbin", "/usr/sbin", "/sbin"} {
			if !contains(have, d) {
				path += string(os.PathListSeparator) + d
			}
		}
		os.Setenv("PATH", path)
	})
}

// New builds an empty lab for a test and registers its cleanup. If the
// machine cannot run labs (not root, binaries missing) the test is skipped,
// unless VPCFLOW_E2E=1, in which case it fails.
func New(t testing.TB, opts ...Option) *Lab {
	t.Helper()
	Require(t)
	InstallSignalHandler()
	cfg := config{logf: t.Logf, cmdTimeout: defaultCmdTimeout}
	for _, o := range opts {
		o(&cfg)
	}
	l, err := newLab(t.Name(), cfg)
	if err != nil {
		t.Fatalf("netlab: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			l.dumpLogs()
		}
		if err := l.Close(); err != nil {
			t.Errorf("netlab: %v", err)
		}
	})
	return l
}

// NewStandalone builds a lab outside of a test (demo and bench tools). The
// caller must Close it; InstallSignalHandler is not called automatically.
func NewStandalone(name string, opts ...Option) (*Lab, error) {
	if err := Available(); err != nil {
		return nil, fmt.Errorf("netlab: cannot build a lab: %w", err)
	}
	cfg := config{cmdTimeout: defaultCmdTimeout}
	for _, o := range opts {
		o(&cfg)
	}
	return newLab(name, cfg)
}

var sweepOnce sync.Once

func newLab(name string, cfg config) (*Lab, error) {
	base := BaseDir()
	if err := os.MkdirAll(base, 0o755); err != nil {
		return nil, fmt.Errorf("create lab base dir: %w", err)
	}
	sweepOnce.Do(func() {
		if _, err := SweepStale(cfg.logf); err != nil && cfg.logf != nil {
			cfg.logf("netlab: sweeping stale labs: %v", err)
		}
	})
	existing, err := listNetns()
	if err != nil {
		return nil, err
	}
	l := &Lab{name: name, cfg: cfg, byName: map[string]*Node{}}
	for attempt := 0; ; attempt++ {
		if attempt == 20 {
			return nil, errors.New("could not allocate a unique lab id")
		}
		id, err := randomID()
		if err != nil {
			return nil, err
		}
		if hasLabNetns(existing, id) {
			continue
		}
		dir := filepath.Join(base, id)
		if err := os.Mkdir(dir, 0o700); err != nil {
			if errors.Is(err, os.ErrExist) {
				continue
			}
			return nil, fmt.Errorf("create lab dir: %w", err)
		}
		l.id, l.dir = id, dir
		break
	}
	if err := writeOwner(l.dir, name); err != nil {
		os.RemoveAll(l.dir)
		return nil, err
	}
	r, err := startReaper(l.id, l.dir)
	if err != nil {
		os.RemoveAll(l.dir)
		return nil, err
	}
	l.reaper = r
	if err := register(l); err != nil {
		_ = r.dismiss()
		os.RemoveAll(l.dir)
		return nil, err
	}
	l.logf("netlab: lab %s (%s) in %s", l.id, name, l.dir)
	return l, nil
}

func randomID() (string, error) {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random lab id: %w", err)
	}
	return labIDPrefix + hex.EncodeToString(b), nil
}

func hasLabNetns(names []string, id string) bool {
	for _, n := range names {
		if strings.HasPrefix(n, id+"-") {
			return true
		}
	}
	return false
}

// ID is the lab's unique id, the prefix ("<id>-") of all its namespaces.
func (l *Lab) ID() string { return l.id }

// Dir is the lab's private directory (logs, OVS databases and sockets).
func (l *Lab) Dir() string { return l.dir }

// Node returns the node with that name, or nil.
func (l *Lab) Node(name string) *Node {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byName[name]
}

// Nodes returns the lab's nodes in creation order.
func (l *Lab) Nodes() []*Node {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*Node(nil), l.nodes...)
}

func (l *Lab) logf(format string, args ...any) {
	l.logMu.Lock()
	defer l.logMu.Unlock()
	if l.logStderr {
		fmt.Fprintf(os.Stderr, "["+l.id+"] "+format+"\n", args...)
		return
	}
	if l.cfg.logf != nil {
		l.cfg.logf(format, args...)
	}
}

func (l *Lab) setLogStderr() {
	l.logMu.Lock()
	l.logStderr = true
	l.logMu.Unlock()
}

func (l *Lab) nextSeq() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	return l.seq
}

// Close stops every process the lab started, deletes its namespaces (and so
// its veths) and removes its directory unless VPCFLOW_KEEP_LAB=1. It is safe
// to call more than once and from several goroutines.
func (l *Lab) Close() error {
	l.closeOnce.Do(func() { l.closeErr = l.close() })
	return l.closeErr
}

func (l *Lab) close() error {
	start := time.Now()
	l.mu.Lock()
	l.closed = true
	procs := append([]*Process(nil), l.procs...)
	nodes := append([]*Node(nil), l.nodes...)
	l.mu.Unlock()

	var errs []error
	// 1. Processes, newest first (ovs-vswitchd before its ovsdb-server).
	for i := len(procs) - 1; i >= 0; i-- {
		if err := procs[i].Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	// 2. Anything else still running inside our namespaces (children that
	// left their process group, commands whose context was never canceled).
	names := make([]string, 0, len(nodes))
	for _, n := range nodes {
		names = append(names, n.ns)
	}
	if all, err := listNetns(); err == nil {
		for _, ns := range all {
			if strings.HasPrefix(ns, l.id+"-") && !contains(names, ns) {
				names = append(names, ns)
			}
		}
	} else {
		errs = append(errs, err)
	}
	if err := killNetnsProcs(names, l.logf); err != nil {
		errs = append(errs, err)
	}
	// 3. Namespaces, newest first. Deleting one deletes its veths.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := len(names) - 1; i >= 0; i-- {
		if _, err := l.run(ctx, nil, "ip", "netns", "delete", names[i]); err != nil {
			if _, statErr := os.Stat(netnsPath(names[i])); statErr == nil {
				errs = append(errs, err)
			}
		}
	}
	// 4. The reaper has nothing left to do.
	if l.reaper != nil {
		if err := l.reaper.dismiss(); err != nil {
			errs = append(errs, err)
		}
	}
	// 5. The directory.
	if os.Getenv(EnvKeepLab) == "1" {
		if err := os.WriteFile(filepath.Join(l.dir, keepFile), nil, 0o644); err != nil {
			errs = append(errs, fmt.Errorf("mark lab dir kept: %w", err))
		}
		l.logf("netlab: %s=1: keeping %s", EnvKeepLab, l.dir)
	} else if err := os.RemoveAll(l.dir); err != nil {
		errs = append(errs, fmt.Errorf("remove lab dir: %w", err))
	}
	unregister(l)
	l.logf("netlab: lab %s torn down in %v", l.id, time.Since(start).Round(time.Millisecond))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("closing lab %s: %w", l.id, err)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// dumpLogs writes the tail of every daemon and process log to the logger,
// so that a failing test shows what OVS said.
func (l *Lab) dumpLogs() {
	l.mu.Lock()
	var files []string
	for _, o := range l.ovs {
		files = append(files, o.OVSDBLog(), o.VswitchdLog())
	}
	for _, p := range l.procs {
		if !contains(files, p.LogFile) {
			files = append(files, p.LogFile)
		}
	}
	l.mu.Unlock()
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > 40 {
			lines = lines[len(lines)-40:]
		}
		l.logf("netlab: --- tail of %s ---\n%s", f, strings.Join(lines, "\n"))
	}
	if os.Getenv(EnvKeepLab) != "1" {
		l.logf("netlab: set %s=1 to keep %s after the test", EnvKeepLab, l.dir)
	}
}
