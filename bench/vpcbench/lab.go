package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/vpcflow/vpcflow/api"
	"github.com/vpcflow/vpcflow/e2e/netlab"
	"github.com/vpcflow/vpcflow/topology"
)

const (
	bridge    = "br-bench"
	refBridge = "br-ref"
	ofAddr    = "127.0.0.1:6653"
	restAddr  = "127.0.0.1:8080"
)

// env is one lab: a "phys" namespace with a private OVS (userspace
// datapath) and the real `vpcflow serve` in it, driven over REST.
type env struct {
	lab     *netlab.Lab
	phys    *netlab.Node
	ovs     *netlab.OVS
	bin     string
	dataDir string
	dpid    topology.DPID
	api     *api.Client

	ctrl     *netlab.Process
	logPath  string
	logLevel string
	starts   int
	verbose  bool
}

func newEnv(ctx context.Context, name, bin, logLevel string, verbose bool) (*env, error) {
	var opts []netlab.Option
	if verbose {
		opts = append(opts, netlab.WithLogf(func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }))
	}
	lab, err := netlab.NewStandalone(name, opts...)
	if err != nil {
		return nil, err
	}
	e := &env{lab: lab, bin: bin, dataDir: filepath.Join(lab.Dir(), "vpcflow-data"), logLevel: logLevel, verbose: verbose}
	fail := func(err error) (*env, error) {
		_ = lab.Close()
		return nil, err
	}
	if e.phys, err = lab.AddNode("phys"); err != nil {
		return fail(err)
	}
	if e.ovs, err = e.phys.StartOVS(ctx); err != nil {
		return fail(err)
	}
	if err := e.ovs.AddBridge(ctx, bridge); err != nil {
		return fail(err)
	}
	dpid, err := e.ovs.DPID(ctx, bridge)
	if err != nil {
		return fail(err)
	}
	e.dpid = topology.DPID(dpid)
	hc := e.phys.HTTPClient()
	hc.Timeout = 5 * time.Minute
	if e.api, err = api.NewClient("http://"+restAddr, hc); err != nil {
		return fail(err)
	}
	if err := e.startController(ctx); err != nil {
		return fail(err)
	}
	if err := e.ovs.SetController(ctx, bridge, "tcp:"+ofAddr); err != nil {
		return fail(err)
	}
	// Reconnect attempts every second at most (the default backs off to
	// 8 s), so a controller restart is not measured as OVS's backoff.
	if _, err := e.ovs.Vsctl(ctx, "set", "Controller", bridge, "max_backoff=1000"); err != nil {
		return fail(err)
	}
	if _, err := e.waitSwitch(ctx, time.Time{}, 30*time.Second); err != nil {
		return fail(err)
	}
	return e, nil
}

func (e *env) close() error { return e.lab.Close() }

// target is the bench bridge's ovs-ofctl target.
func (e *env) target() string { return e.ovs.MgmtTarget(bridge) }

// startController runs `vpcflow serve` in the phys namespace and waits for
// its REST API.
func (e *env) startController(ctx context.Context) error {
	e.starts++
	e.logPath = filepath.Join(e.lab.Dir(), fmt.Sprintf("vpcflow-%d.log", e.starts))
	p, err := e.phys.Start(context.Background(), e.logPath, e.bin, "serve", "--init",
		"--openflow", ofAddr, "--listen", restAddr, "--ovsdb", e.ovs.DBEndpoint(),
		"--data-dir", e.dataDir, "--log-format", "json", "--log-level", e.logLevel)
	if err != nil {
		return err
	}
	e.ctrl = p
	return e.poll(ctx, "REST API up", 60*time.Second, 5*time.Millisecond, func() (bool, error) {
		if p.Exited() {
			return false, fmt.Errorf("vpcflow exited: %v; log %s:\n%s", p.Wait(), e.logPath, tailFile(e.logPath, 20))
		}
		return e.api.Health(ctx) == nil, nil
	})
}

// stopController sends SIGTERM and waits for the controller to exit.
func (e *env) stopController() error {
	if e.ctrl == nil {
		return nil
	}
	err := e.ctrl.Stop()
	e.ctrl = nil
	return err
}

// waitSwitch polls GET /v1/switches until the bench bridge is listed (it
// is listed once reconciled) with a connection newer than after.
func (e *env) waitSwitch(ctx context.Context, after time.Time, timeout time.Duration) (time.Time, error) {
	var since time.Time
	err := e.poll(ctx, "switch reconciled", timeout, 5*time.Millisecond, func() (bool, error) {
		sws, err := e.api.Switches(ctx)
		if err != nil {
			return false, nil
		}
		for _, s := range sws {
			if s.DPID == e.dpid && s.ConnectedSince.After(after) {
				since = s.ConnectedSince
				return true, nil
			}
		}
		return false, nil
	})
	return since, err
}

func (e *env) poll(ctx context.Context, what string, timeout, every time.Duration, f func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := f()
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waiting for %s: timed out after %v", what, timeout)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(every):
		}
	}
}

// ofctl runs ovs-ofctl -O OpenFlow13 [opts] CMD TARGET args… (TARGET is a
// bridge's unix:…/BR.mgmt), sending stdout to out (nil: discard), and
// returns how long it took.
func ofctl(ctx context.Context, out io.Writer, target string, opts []string, cmd string, args ...string) (time.Duration, error) {
	argv := append([]string{"-O", "OpenFlow13"}, opts...)
	argv = append(argv, cmd, target)
	argv = append(argv, args...)
	c := exec.CommandContext(ctx, "ovs-ofctl", argv...)
	if out == nil {
		out = io.Discard
	}
	var stderr bytes.Buffer
	c.Stdout, c.Stderr = out, &stderr
	start := time.Now()
	err := c.Run()
	d := time.Since(start)
	if err != nil {
		return d, fmt.Errorf("ovs-ofctl %s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(stderr.String()))
	}
	return d, nil
}

var flowCountRe = regexp.MustCompile(`flow_count=(\d+)`)

// flowCount is the number of flows in the bridge (ovs-ofctl dump-aggregate).
func flowCount(ctx context.Context, target string) (int, error) {
	var out bytes.Buffer
	if _, err := ofctl(ctx, &out, target, nil, "dump-aggregate"); err != nil {
		return 0, err
	}
	m := flowCountRe.FindStringSubmatch(out.String())
	if m == nil {
		return 0, fmt.Errorf("dump-aggregate: no flow_count in %q", out.String())
	}
	return strconv.Atoi(m[1])
}

// lineCounter counts lines written to it.
type lineCounter struct{ n int }

func (l *lineCounter) Write(p []byte) (int, error) {
	l.n += bytes.Count(p, []byte{'\n'})
	return len(p), nil
}

// rss reads VmRSS and VmHWM (bytes) of a process.
func rss(pid int) (cur, peak int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			cur = v * 1024
		case "VmHWM:":
			peak = v * 1024
		}
	}
	if cur == 0 {
		return 0, 0, errors.New("no VmRSS in /proc/PID/status")
	}
	return cur, peak, nil
}

// reconciled is a "switch reconciled" log line of the controller, with the
// time of the "switch connected" line before it.
type reconciled struct {
	Installed int     `json:"installed"`
	Added     int     `json:"added"`
	Deleted   int     `json:"deleted"`
	Took      float64 `json:"took"` // seconds (zap's JSON duration): dump + diff + apply
	TS        string  `json:"ts"`

	// FromConnect is from the switch's connection (handshake done) to the
	// reconciled line: also the wait for OVSDB and the desired-table
	// snapshot, which "took" leaves out. Log timestamps have ms precision.
	FromConnect time.Duration `json:"-"`
}

// reconciledLines returns the "switch reconciled" lines of a log file.
func reconciledLines(path string) ([]reconciled, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []reconciled
	var connected time.Time
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		isConn := bytes.Contains(line, []byte(`"switch connected"`))
		if !isConn && !bytes.Contains(line, []byte(`"switch reconciled"`)) {
			continue
		}
		var r reconciled
		if err := json.Unmarshal(line, &r); err != nil {
			return nil, fmt.Errorf("parse %q: %w", line, err)
		}
		ts, err := time.Parse(time.RFC3339Nano, r.TS)
		if err != nil {
			return nil, fmt.Errorf("parse time in %q: %w", line, err)
		}
		if isConn {
			connected = ts
			continue
		}
		if !connected.IsZero() {
			r.FromConnect = ts.Sub(connected)
		}
		out = append(out, r)
	}
	return out, sc.Err()
}

// logProblems returns up to max warn/error lines from the controller's logs
// of this lab (a reconnect or a failed push explains an outlier).
func (e *env) logProblems(max int) []string {
	var out []string
	for i := 1; i <= e.starts; i++ {
		b, err := os.ReadFile(filepath.Join(e.lab.Dir(), fmt.Sprintf("vpcflow-%d.log", i)))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, `"level":"warn"`) || strings.Contains(line, `"level":"error"`) {
				if len(line) > 300 {
					line = line[:300] + "…"
				}
				out = append(out, fmt.Sprintf("[vpcflow-%d.log] %s", i, line))
				if len(out) == max {
					return out
				}
			}
		}
	}
	return out
}

// copyLogs copies the controller's logs and ovs-vswitchd's log to dir,
// named n<N>-<file>.
func (e *env) copyLogs(dir string, n int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files := []string{e.ovs.VswitchdLog()}
	for i := 1; i <= e.starts; i++ {
		files = append(files, filepath.Join(e.lab.Dir(), fmt.Sprintf("vpcflow-%d.log", i)))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("n%d-%s", n, filepath.Base(f))), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
