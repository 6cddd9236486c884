package netlab

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	ovsReadyTimeout = 10 * time.Second
	// maxRundirLen keeps "<rundir>/<15-char bridge>.mgmt" under the 107 byte
	// limit of a unix socket path.
	maxRundirLen = 80
)

// OVS is a private Open vSwitch (ovsdb-server + ovs-vswitchd) running
// inside one node, with its database, sockets, pid files and logs in
// Rundir. ovs-* commands reach it through unix sockets (paths are not
// namespaced), so they run in the test's own namespace.
type OVS struct {
	// DBSock is the path of ovsdb-server's unix socket.
	DBSock string
	// Rundir is OVS_RUNDIR: BRIDGE.mgmt sockets land here.
	Rundir string
	// DBFile is the Open_vSwitch database file.
	DBFile string
	// CtlPath is ovs-vswitchd's unixctl socket (stable across restarts).
	CtlPath string
	// DBCtlPath is ovsdb-server's unixctl socket.
	DBCtlPath string

	node *Node
	lab  *Lab

	mu         sync.Mutex
	ovsdb      *Process
	vswitchd   *Process
	ovsdbExtra []string // more ovsdb-server options (ServeOVSDBSSL)
	// kept holds the flows AddKeptFlow installed, per bridge, in order:
	// StartVswitchd puts them back (OpenFlow tables die with vswitchd).
	kept map[string][]string
	// afterStart runs after StartVswitchd has restored the kept flows
	// (the chassis of an underlay waits for its tunnel here).
	afterStart []func(ctx context.Context) error
}

// OVSOption tunes StartOVS and NewOVS.
type OVSOption func(*ovsConfig)

type ovsConfig struct {
	noVswitchd bool
}

// WithoutVswitchd starts ovsdb-server only: nothing assigns ofports or
// datapath ids, and ovs-vsctl does not wait for a switch (Vsctl adds
// --no-wait while ovs-vswitchd is not running). StartVswitchd can still
// start it later. For tests of OVSDB clients.
func WithoutVswitchd() OVSOption {
	return func(c *ovsConfig) { c.noVswitchd = true }
}

// NewOVS is the shortest way to a private Open vSwitch for a test that
// needs OVSDB (and maybe ovs-vswitchd) but no topology: a lab (New) with
// one node, "ovs", running StartOVS(opts). Everything is removed when the
// test ends. The test is skipped (failed with VPCFLOW_E2E=1) where labs
// cannot run.
func NewOVS(t testing.TB, opts ...OVSOption) *OVS {
	t.Helper()
	l := New(t)
	n, err := l.AddNode("ovs")
	if err != nil {
		t.Fatalf("netlab: %v", err)
	}
	o, err := n.StartOVS(context.Background(), opts...)
	if err != nil {
		t.Fatalf("netlab: %v", err)
	}
	return o
}

// StartOVS creates a fresh database and starts ovsdb-server and
// ovs-vswitchd inside the node (`ip netns exec`, so the bridges' tap
// devices and the ports vswitchd opens are the node's). Both are stopped at
// lab cleanup. One OVS per node. WithoutVswitchd leaves ovs-vswitchd out.
func (n *Node) StartOVS(ctx context.Context, opts ...OVSOption) (*OVS, error) {
	var cfg ovsConfig
	for _, f := range opts {
		if f != nil {
			f(&cfg)
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ovs != nil {
		return nil, fmt.Errorf("netlab: %s: OVS already started", n.name)
	}
	rundir := filepath.Join(n.lab.dir, "ovs-"+n.name)
	if len(rundir) > maxRundirLen {
		return nil, fmt.Errorf("netlab: %s: OVS rundir %s is longer than %d bytes: unix socket paths would not fit (use a shorter TMPDIR or node name)", n.name, rundir, maxRundirLen)
	}
	if err := os.Mkdir(rundir, 0o755); err != nil {
		return nil, fmt.Errorf("netlab: %s: OVS rundir: %w", n.name, err)
	}
	o := &OVS{
		DBSock:    filepath.Join(rundir, "db.sock"),
		Rundir:    rundir,
		DBFile:    filepath.Join(rundir, "conf.db"),
		CtlPath:   filepath.Join(rundir, "ovs-vswitchd.ctl"),
		DBCtlPath: filepath.Join(rundir, "ovsdb-server.ctl"),
		node:      n,
		lab:       n.lab,
	}
	if _, err := n.lab.run(ctx, nil, "ovsdb-tool", "create", o.DBFile, OVSSchema); err != nil {
		return nil, fmt.Errorf("netlab: %s: create OVS database: %w", n.name, err)
	}
	n.lab.mu.Lock()
	n.lab.ovs = append(n.lab.ovs, o)
	n.lab.mu.Unlock()
	if err := o.StartOVSDB(ctx); err != nil {
		return nil, err
	}
	if _, err := o.Vsctl(ctx, "--no-wait", "init"); err != nil {
		return nil, fmt.Errorf("netlab: %s: %w", n.name, err)
	}
	if !cfg.noVswitchd {
		if err := o.StartVswitchd(ctx); err != nil {
			return nil, err
		}
	}
	n.ovs = o
	return o, nil
}

// Node is the node this OVS runs in.
func (o *OVS) Node() *Node { return o.node }

// DBEndpoint is the OVSDB remote for clients: "unix:<DBSock>".
func (o *OVS) DBEndpoint() string { return "unix:" + o.DBSock }

// MgmtTarget is the ovs-ofctl target of a bridge: "unix:<Rundir>/BR.mgmt".
func (o *OVS) MgmtTarget(bridge string) string {
	return "unix:" + filepath.Join(o.Rundir, bridge+".mgmt")
}

// OVSDBLog and VswitchdLog are the daemons' log files.
func (o *OVS) OVSDBLog() string    { return filepath.Join(o.Rundir, "ovsdb-server.log") }
func (o *OVS) VswitchdLog() string { return filepath.Join(o.Rundir, "ovs-vswitchd.log") }

func (o *OVS) env() []string {
	return []string{"OVS_RUNDIR=" + o.Rundir, "OVS_LOGDIR=" + o.Rundir, "OVS_DBDIR=" + o.Rundir}
}

// VswitchdPID is ovs-vswitchd's pid, or 0 if it is not running.
func (o *OVS) VswitchdPID() int { return o.pid(&o.vswitchd) }

// OVSDBPID is ovsdb-server's pid, or 0 if it is not running.
func (o *OVS) OVSDBPID() int { return o.pid(&o.ovsdb) }

func (o *OVS) pid(pp **Process) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	if *pp == nil || (*pp).Exited() {
		return 0
	}
	return (*pp).Pid
}

// StartOVSDB starts ovsdb-server on the existing database (after a Kill or
// Stop) and waits until its socket accepts connections.
func (o *OVS) StartOVSDB(ctx context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ovsdb != nil && !o.ovsdb.Exited() {
		return fmt.Errorf("netlab: %s: ovsdb-server already running (pid %d)", o.node.name, o.ovsdb.Pid)
	}
	p, err := o.node.start(context.WithoutCancel(ctx), filepath.Join(o.Rundir, "ovsdb-server.out"), o.env(), append([]string{
		"ovsdb-server", o.DBFile,
		"--remote=punix:" + o.DBSock,
		"--pidfile=" + filepath.Join(o.Rundir, "ovsdb-server.pid"),
		"--log-file=" + o.OVSDBLog(),
		"--unixctl=" + o.DBCtlPath,
		"-vconsole:err",
	}, o.ovsdbExtra...))
	if err != nil {
		return err
	}
	o.ovsdb = p
	if err := waitUnixSocket(ctx, p, o.DBSock); err != nil {
		return fmt.Errorf("netlab: %s: ovsdb-server not ready: %w", o.node.name, err)
	}
	return nil
}

// StartVswitchd starts ovs-vswitchd (after a Kill or Stop) and waits until
// it has applied the current database configuration. Then it puts back the
// flows added with AddKeptFlow (the harness's own, e.g. the NORMAL flow of
// an underlay chassis's PhyBridge) and, on an underlay chassis, waits until
// the tunnel works again (see Underlay.AddChassis): what a test built with
// the harness survives a restart; flows the test (or a controller) added
// do not.
func (o *OVS) StartVswitchd(ctx context.Context) error {
	o.mu.Lock()
	if o.vswitchd != nil && !o.vswitchd.Exited() {
		o.mu.Unlock()
		return fmt.Errorf("netlab: %s: ovs-vswitchd already running (pid %d)", o.node.name, o.vswitchd.Pid)
	}
	p, err := o.node.start(context.WithoutCancel(ctx), filepath.Join(o.Rundir, "ovs-vswitchd.out"), o.env(), []string{
		"ovs-vswitchd", o.DBEndpoint(),
		"--pidfile=" + filepath.Join(o.Rundir, "ovs-vswitchd.pid"),
		"--log-file=" + o.VswitchdLog(),
		"--unixctl=" + o.CtlPath,
		"-vconsole:err",
	})
	if err != nil {
		o.mu.Unlock()
		return err
	}
	o.vswitchd = p
	kept := make(map[string][]string, len(o.kept))
	for br, flows := range o.kept {
		kept[br] = slices.Clone(flows)
	}
	hooks := slices.Clone(o.afterStart)
	o.mu.Unlock()

	if err := waitUnixSocket(ctx, p, o.CtlPath); err != nil {
		return fmt.Errorf("netlab: %s: ovs-vswitchd not ready: %w", o.node.name, err)
	}
	if err := o.syncVswitchd(ctx); err != nil {
		return fmt.Errorf("netlab: %s: ovs-vswitchd not ready: %w", o.node.name, err)
	}
	bridges := make([]string, 0, len(kept))
	for br := range kept {
		bridges = append(bridges, br)
	}
	slices.Sort(bridges)
	for _, br := range bridges {
		for _, f := range kept[br] {
			if _, err := o.Ofctl(ctx, br, "add-flow", f); err != nil {
				return fmt.Errorf("netlab: %s: restoring kept flow on %s: %w", o.node.name, br, err)
			}
		}
	}
	for _, h := range hooks {
		if err := h(ctx); err != nil {
			return fmt.Errorf("netlab: %s: after starting ovs-vswitchd: %w", o.node.name, nest(err))
		}
	}
	return nil
}

// AddKeptFlow adds a flow (ovs-ofctl add-flow syntax) to the bridge and
// remembers it: StartVswitchd, and so RestartVswitchd, adds it again. For
// flows that are part of the test's fixed scenery (a learning-switch flow
// on an underlay bridge), not for what the test checks.
func (o *OVS) AddKeptFlow(ctx context.Context, bridge, flow string) error {
	if _, err := o.Ofctl(ctx, bridge, "add-flow", flow); err != nil {
		return fmt.Errorf("netlab: %s: %w", o.node.name, err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.kept == nil {
		o.kept = map[string][]string{}
	}
	o.kept[bridge] = append(o.kept[bridge], flow)
	return nil
}

// KeptFlows returns the flows AddKeptFlow added to bridge, in order.
func (o *OVS) KeptFlows(bridge string) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.kept[bridge])
}

// afterVswitchdStart registers f to run at the end of every later
// StartVswitchd.
func (o *OVS) afterVswitchdStart(f func(ctx context.Context) error) {
	o.mu.Lock()
	o.afterStart = append(o.afterStart, f)
	o.mu.Unlock()
}

// syncVswitchd bumps next_cfg and waits until vswitchd reports it as
// cur_cfg, i.e. until it has (re)configured every bridge and port.
func (o *OVS) syncVswitchd(ctx context.Context) error {
	out, err := o.Vsctl(ctx, "get", "Open_vSwitch", ".", "next_cfg")
	if err != nil {
		return err
	}
	next, err := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
	if err != nil {
		return fmt.Errorf("parse next_cfg %q: %w", out, err)
	}
	next++
	if _, err := o.Vsctl(ctx, "--no-wait", "set", "Open_vSwitch", ".", fmt.Sprintf("next_cfg=%d", next)); err != nil {
		return err
	}
	_, err = o.Vsctl(ctx, "wait-until", "Open_vSwitch", ".", fmt.Sprintf("cur_cfg>=%d", next))
	return err
}

// waitUnixSocket polls until path accepts a connection, the process exits
// or ovsReadyTimeout passes.
func waitUnixSocket(ctx context.Context, p *Process, path string) error {
	ctx, cancel := context.WithTimeout(ctx, ovsReadyTimeout)
	defer cancel()
	for {
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-p.Done():
			return fmt.Errorf("pid %d exited (%v) before %s accepted connections; see %s", p.Pid, p.waitErr, path, p.LogFile)
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", path, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// StopVswitchd stops ovs-vswitchd with SIGTERM (SIGKILL after 5s).
func (o *OVS) StopVswitchd() error { return o.stop(&o.vswitchd, false) }

// StopOVSDB stops ovsdb-server with SIGTERM (SIGKILL after 5s).
func (o *OVS) StopOVSDB() error { return o.stop(&o.ovsdb, false) }

// KillVswitchd SIGKILLs ovs-vswitchd (a crash: no cleanup on its side).
func (o *OVS) KillVswitchd() error { return o.stop(&o.vswitchd, true) }

// KillOVSDB SIGKILLs ovsdb-server.
func (o *OVS) KillOVSDB() error { return o.stop(&o.ovsdb, true) }

func (o *OVS) stop(pp **Process, kill bool) error {
	o.mu.Lock()
	p := *pp
	o.mu.Unlock()
	if p == nil {
		return nil
	}
	if kill {
		return p.Kill()
	}
	return p.Stop()
}

// RestartVswitchd stops ovs-vswitchd and starts it again on the same
// database and socket paths. OpenFlow flows are lost except those added
// with AddKeptFlow, which StartVswitchd puts back; ports keep their ofport
// numbers.
func (o *OVS) RestartVswitchd(ctx context.Context) error {
	if err := o.StopVswitchd(); err != nil {
		return err
	}
	return o.StartVswitchd(ctx)
}

// RestartOVSDB stops ovsdb-server and starts it again on the same database
// file and socket; vswitchd and other clients reconnect on their own.
func (o *OVS) RestartOVSDB(ctx context.Context) error {
	if err := o.StopOVSDB(); err != nil {
		return err
	}
	return o.StartOVSDB(ctx)
}

// Vsctl runs ovs-vsctl --db=unix:DBSock --timeout=10 args... While
// ovs-vswitchd is not running (WithoutVswitchd, or after a Stop or Kill) it
// adds --no-wait, since nothing would ever acknowledge the change.
func (o *OVS) Vsctl(ctx context.Context, args ...string) (string, error) {
	argv := []string{"ovs-vsctl", "--db=" + o.DBEndpoint(), "--timeout=10"}
	if o.VswitchdPID() == 0 && !slices.Contains(args, "--no-wait") {
		argv = append(argv, "--no-wait")
	}
	return o.lab.run(ctx, o.env(), append(argv, args...)...)
}

// MustVsctl is Vsctl for tests: it returns the output without surrounding
// white space and fails the test on error.
func (o *OVS) MustVsctl(t testing.TB, args ...string) string {
	t.Helper()
	out, err := o.Vsctl(context.Background(), args...)
	if err != nil {
		t.Fatalf("netlab: %s: %v", o.node.name, err)
	}
	return strings.TrimSpace(out)
}

// Ofctl runs ovs-ofctl -O OpenFlow13 with the bridge's management socket
// as the switch target, placed right after the subcommand:
// Ofctl(ctx, "br0", "add-flow", "priority=0,actions=drop") runs
// `ovs-ofctl -O OpenFlow13 add-flow unix:RUNDIR/br0.mgmt priority=0,actions=drop`.
// Leading arguments that start with "-" are options and stay in front of
// the subcommand (write them as --name=value).
func (o *OVS) Ofctl(ctx context.Context, bridge string, args ...string) (string, error) {
	i := 0
	for i < len(args) && strings.HasPrefix(args[i], "-") {
		i++
	}
	if i == len(args) {
		return "", fmt.Errorf("netlab: ovs-ofctl on %s: no subcommand in %q", bridge, args)
	}
	argv := []string{"ovs-ofctl", "-O", "OpenFlow13"}
	argv = append(argv, args[:i]...)
	argv = append(argv, args[i], o.MgmtTarget(bridge))
	argv = append(argv, args[i+1:]...)
	return o.lab.run(ctx, o.env(), argv...)
}

// OfctlDumpFlows returns the bridge's flows, one per line, without the
// reply headers. Arguments starting with "-" are ovs-ofctl options (e.g.
// "--no-stats"); the others follow the target (e.g. "table=0").
func (o *OVS) OfctlDumpFlows(ctx context.Context, bridge string, args ...string) ([]string, error) {
	var opts, rest []string
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			opts = append(opts, a)
		} else {
			rest = append(rest, a)
		}
	}
	out, err := o.Ofctl(ctx, bridge, append(append(opts, "dump-flows"), rest...)...)
	if err != nil {
		return nil, err
	}
	var flows []string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "OFPST_") || strings.HasPrefix(line, "NXST_") {
			continue
		}
		flows = append(flows, line)
	}
	return flows, nil
}

// Appctl runs ovs-appctl -t <CtlPath> args... against ovs-vswitchd.
func (o *OVS) Appctl(ctx context.Context, args ...string) (string, error) {
	return o.lab.run(ctx, o.env(), append([]string{"ovs-appctl", "-t", o.CtlPath}, args...)...)
}

// AppctlOVSDB runs ovs-appctl against ovsdb-server.
func (o *OVS) AppctlOVSDB(ctx context.Context, args ...string) (string, error) {
	return o.lab.run(ctx, o.env(), append([]string{"ovs-appctl", "-t", o.DBCtlPath}, args...)...)
}

// AddBridge adds a bridge on the userspace datapath speaking only OpenFlow
// 1.3, with fail_mode=secure and in-band control disabled. It has no
// controller: tests call SetController (or add flows with Ofctl).
func (o *OVS) AddBridge(ctx context.Context, name string) error {
	_, err := o.Vsctl(ctx, "add-br", name, "--", "set", "Bridge", name,
		"datapath_type=netdev", "protocols=OpenFlow13", "fail_mode=secure",
		"other_config:disable-in-band=true")
	if err != nil {
		return fmt.Errorf("netlab: add bridge %s: %w", name, err)
	}
	return nil
}

// SetController points the bridge at the given controller targets (e.g.
// "tcp:127.0.0.1:6653" — an address in the OVS node's namespace, see
// Node.Listen) with connection_mode=out-of-band and
// other_config:disable-in-band=true. No targets removes the controllers.
func (o *OVS) SetController(ctx context.Context, bridge string, targets ...string) error {
	if len(targets) == 0 {
		if _, err := o.Vsctl(ctx, "del-controller", bridge); err != nil {
			return fmt.Errorf("netlab: del controller of %s: %w", bridge, err)
		}
		return nil
	}
	var args, refs []string
	for i, t := range targets {
		id := fmt.Sprintf("@c%d", i)
		refs = append(refs, id)
		args = append(args, "--", "--id="+id, "create", "Controller",
			"target="+strconv.Quote(t), "connection_mode=out-of-band")
	}
	args = append(args, "--", "set", "Bridge", bridge,
		"controller=["+strings.Join(refs, ",")+"]", "other_config:disable-in-band=true")
	if _, err := o.Vsctl(ctx, args...); err != nil {
		return fmt.Errorf("netlab: set controller of %s: %w", bridge, err)
	}
	return nil
}

// DPID returns the bridge's datapath id, waiting (up to 10s) until vswitchd
// has set it.
func (o *OVS) DPID(ctx context.Context, bridge string) (uint64, error) {
	var last string
	err := poll(ctx, ovsReadyTimeout, func() (bool, error) {
		out, err := o.Vsctl(ctx, "get", "Bridge", bridge, "datapath_id")
		if err != nil {
			return false, err
		}
		last = strings.Trim(strings.TrimSpace(out), `"`)
		return last != "" && last != "[]", nil
	})
	if err != nil {
		return 0, fmt.Errorf("netlab: datapath id of %s: %w", bridge, err)
	}
	dpid, err := strconv.ParseUint(last, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("netlab: datapath id of %s: parse %q: %w", bridge, last, err)
	}
	return dpid, nil
}

// Ofport returns the OpenFlow port number of an interface, waiting (up to
// 10s) for vswitchd to assign it. An interface vswitchd could not open
// (ofport -1) fails at once with the Interface's error column.
func (o *OVS) Ofport(ctx context.Context, iface string) (int, error) {
	var port int
	err := poll(ctx, ovsReadyTimeout, func() (bool, error) {
		out, err := o.Vsctl(ctx, "get", "Interface", iface, "ofport")
		if err != nil {
			return false, err
		}
		s := strings.TrimSpace(out)
		if s == "[]" || s == "" {
			return false, nil
		}
		port, err = strconv.Atoi(s)
		if err != nil {
			return false, fmt.Errorf("parse ofport %q: %w", s, err)
		}
		if port == -1 {
			msg, _ := o.Vsctl(ctx, "get", "Interface", iface, "error")
			return false, fmt.Errorf("vswitchd could not add %s: %s", iface, strings.TrimSpace(msg))
		}
		return port > 0, nil
	})
	if err != nil {
		return 0, fmt.Errorf("netlab: ofport of %s: %w", iface, err)
	}
	return port, nil
}

// poll calls f every 50ms until it reports done, fails, or timeout passes.
func poll(ctx context.Context, timeout time.Duration, f func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		ok, err := f()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out after %v: %w", timeout, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
