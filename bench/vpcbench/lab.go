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
	refBridge = "br-ref"
	ofAddr    = "127.0.0.1:6653"
	restAddr  = "127.0.0.1:8080"
)

// bridgeName is the i-th bench bridge (hosts are spread over bridges of
// at most hostsPerBridge, see workload.go).
func bridgeName(i int) string { return fmt.Sprintf("br-bench%d", i) }

// refBridgeName is the i-th reference bridge (ovs-ofctl's).
func refBridgeName(i int) string { return fmt.Sprintf("%s%d", refBridge, i) }

// env is one lab: a "phys" namespace with a private OVS (userspace
// datapath) and the real `vpcflow serve` in it, driven over REST.
type env struct {
	lab     *netlab.Lab
	phys    *netlab.Node
	ovs     *netlab.OVS
	bin     string
	dataDir string
	dpids   []topology.DPID // of bridgeName(0), bridgeName(1), …
	api     *api.Client

	ctrl      *netlab.Process
	logPath   string
	name      string   // the lab's name: the prefix of its kept logs
	serveArgs []string // --log-level and -ctrl-flag's, after vpcbench's own
	starts    int
	verbose   bool
	// emptyFlows is what the switches hold before anything is created
	// (the pipeline's defaults): what a teardown must leave.
	emptyFlows int
}

func newEnv(ctx context.Context, name, bin string, serveArgs []string, verbose bool, bridges int) (*env, error) {
	var opts []netlab.Option
	if verbose {
		opts = append(opts, netlab.WithLogf(func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }))
	}
	lab, err := netlab.NewStandalone(name, opts...)
	if err != nil {
		return nil, err
	}
	e := &env{name: name, lab: lab, bin: bin, dataDir: filepath.Join(lab.Dir(), "vpcflow-data"), serveArgs: serveArgs, verbose: verbose}
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
	for b := range max(bridges, 1) {
		if err := e.ovs.AddBridge(ctx, bridgeName(b)); err != nil {
			return fail(err)
		}
		dpid, err := e.ovs.DPID(ctx, bridgeName(b))
		if err != nil {
			return fail(err)
		}
		e.dpids = append(e.dpids, topology.DPID(dpid))
	}
	hc := e.phys.HTTPClient()
	hc.Timeout = 5 * time.Minute
	if e.api, err = api.NewClient("http://"+restAddr, hc); err != nil {
		return fail(err)
	}
	if err := e.startController(ctx); err != nil {
		return fail(err)
	}
	for b := range e.dpids {
		if err := e.ovs.SetController(ctx, bridgeName(b), "tcp:"+ofAddr); err != nil {
			return fail(err)
		}
		// Reconnect attempts every second at most (the default backs off to
		// 8 s), so a controller restart is not measured as OVS's backoff.
		if _, err := e.ovs.Vsctl(ctx, "set", "Controller", bridgeName(b), "max_backoff=1000"); err != nil {
			return fail(err)
		}
	}
	if err := e.waitSwitch(ctx, time.Time{}, 30*time.Second); err != nil {
		return fail(err)
	}
	if e.emptyFlows, err = e.flowCount(ctx); err != nil {
		return fail(err)
	}
	return e, nil
}

func (e *env) close() error { return e.lab.Close() }

// target is the ovs-ofctl target of bench bridge b.
func (e *env) target(b int) string { return e.ovs.MgmtTarget(bridgeName(b)) }

// targets are the ovs-ofctl targets of every bench bridge.
func (e *env) targets() []string {
	out := make([]string, len(e.dpids))
	for b := range out {
		out[b] = e.target(b)
	}
	return out
}

// flowCount is the number of flows in every bench bridge together.
func (e *env) flowCount(ctx context.Context) (int, error) {
	total := 0
	for b := range e.dpids {
		n, err := flowCount(ctx, e.target(b))
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

// startController runs `vpcflow serve` in the phys namespace and waits for
// its REST API.
func (e *env) startController(ctx context.Context) error {
	e.starts++
	e.logPath = filepath.Join(e.lab.Dir(), fmt.Sprintf("vpcflow-%d.log", e.starts))
	args := append([]string{e.bin, "serve", "--init",
		"--openflow", ofAddr, "--listen", restAddr, "--ovsdb", e.ovs.DBEndpoint(),
		"--data-dir", e.dataDir, "--log-format", "json"}, e.serveArgs...)
	p, err := e.phys.Start(context.Background(), e.logPath, args...)
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

// waitSwitch polls GET /v1/switches until every bench bridge is listed
// (it is listed once reconciled) with a connection newer than after.
func (e *env) waitSwitch(ctx context.Context, after time.Time, timeout time.Duration) error {
	return e.poll(ctx, "switches reconciled", timeout, 5*time.Millisecond, func() (bool, error) {
		sws, err := e.api.Switches(ctx)
		if err != nil {
			return false, nil
		}
		ready := 0
		for _, s := range sws {
			for _, d := range e.dpids {
				if s.DPID == d && s.ConnectedSince.After(after) {
					ready++
				}
			}
		}
		return ready == len(e.dpids), nil
	})
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

// ofctlAll runs one ovs-ofctl per target at once (args(b) gives the
// options, command and arguments for targets[b]), output discarded, and
// returns how long they took together.
func ofctlAll(ctx context.Context, targets []string, args func(b int) (opts []string, cmd string, rest []string)) (time.Duration, error) {
	errs := make(chan error, len(targets))
	start := time.Now()
	for b, t := range targets {
		opts, cmd, rest := args(b)
		go func() {
			_, err := ofctl(ctx, nil, t, opts, cmd, rest...)
			errs <- err
		}()
	}
	var first error
	for range targets {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return time.Since(start), first
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

// memInfo is a process's memory as /proc/PID/status says, in bytes.
type memInfo struct {
	RSS, HWM   int64 // VmRSS, VmHWM
	Anon, File int64 // RssAnon (heap, stacks), RssFile (mapped files: the binary, bbolt's mmap)
}

// memOf reads a process's memInfo.
func memOf(pid int) (memInfo, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memInfo{}, err
	}
	var m memInfo
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			m.RSS = v * 1024
		case "VmHWM:":
			m.HWM = v * 1024
		case "RssAnon:":
			m.Anon = v * 1024
		case "RssFile:":
			m.File = v * 1024
		}
	}
	if m.RSS == 0 {
		return m, errors.New("no VmRSS in /proc/PID/status")
	}
	return m, nil
}

// swEvent is a "switch connected" or "switch reconciled" line of the
// controller's log.
type swEvent struct {
	Msg       string  `json:"msg"`
	DPID      string  `json:"dpid"`
	Installed int     `json:"installed"`
	Added     int     `json:"added"`
	Deleted   int     `json:"deleted"`
	Took      float64 `json:"took"` // seconds (zap's JSON duration): dump + diff + apply
	TS        string  `json:"ts"`
	at        time.Time
}

func (ev swEvent) reconciled() bool { return ev.Msg == "switch reconciled" }

// switchEvents returns the "switch connected" and "switch reconciled"
// lines of a log file, in order.
func switchEvents(path string) ([]swEvent, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []swEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.Contains(line, []byte(`"switch connected"`)) && !bytes.Contains(line, []byte(`"switch reconciled"`)) {
			continue
		}
		var ev swEvent
		if err := json.Unmarshal(line, &ev); err != nil {
			return nil, fmt.Errorf("parse %q: %w", line, err)
		}
		if ev.at, err = time.Parse(time.RFC3339Nano, ev.TS); err != nil {
			return nil, fmt.Errorf("parse time in %q: %w", line, err)
		}
		out = append(out, ev)
	}
	return out, sc.Err()
}

// resync is one reconciliation of every bench switch, from the log.
type resync struct {
	// FromConnect is from the first switch's connection (handshake done)
	// to the last "switch reconciled": also the wait for OVSDB and the
	// desired-table snapshot, which "took" leaves out. Log timestamps
	// have ms precision.
	FromConnect time.Duration
	Took        time.Duration // the longest "took" (dump + diff + apply) of a switch
	FlowMods    int           // added + deleted, every switch
	Installed   int           // flows found, every switch
}

// resyncOf finds, among the log's events from index from on, a
// reconciliation of each of dpids after its connection. ok is false until
// every switch has one.
func resyncOf(events []swEvent, from int, dpids []topology.DPID) (r resync, ok bool) {
	var first, last time.Time
	for _, d := range dpids {
		want := d.String()
		var conn time.Time
		found := false
		for _, ev := range events[min(from, len(events)):] {
			if ev.DPID != want {
				continue
			}
			if !ev.reconciled() {
				conn = ev.at
				continue
			}
			if conn.IsZero() {
				continue
			}
			found = true
			if first.IsZero() || conn.Before(first) {
				first = conn
			}
			if ev.at.After(last) {
				last = ev.at
			}
			r.Took = max(r.Took, secs(ev.Took))
			r.FlowMods += ev.Added + ev.Deleted
			r.Installed += ev.Installed
			break
		}
		if !found {
			return resync{}, false
		}
	}
	r.FromConnect = last.Sub(first)
	return r, true
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
// each named after the env (vpcbench-1000-vpcflow-1.log).
func (e *env) copyLogs(dir string) error {
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
		if err := os.WriteFile(filepath.Join(dir, e.name+"-"+filepath.Base(f)), b, 0o644); err != nil {
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
