package netlab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Node is a network namespace: a host in mininet terms.
type Node struct {
	lab  *Lab
	name string
	ns   string

	mu  sync.Mutex
	ovs *OVS
}

// AddNode creates the namespace "<labid>-<name>" with lo up (and IPv6
// disabled unless WithIPv6 was given).
func (l *Lab) AddNode(name string) (*Node, error) {
	return l.addNode(context.Background(), name)
}

func (l *Lab) addNode(ctx context.Context, name string) (*Node, error) {
	if !nodeNameRe.MatchString(name) {
		return nil, fmt.Errorf("netlab: invalid node name %q (want %s)", name, nodeNameRe)
	}
	n := &Node{lab: l, name: name, ns: l.id + "-" + name}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, fmt.Errorf("netlab: add node %s: lab %s is closed", name, l.id)
	}
	if _, dup := l.byName[name]; dup {
		l.mu.Unlock()
		return nil, fmt.Errorf("netlab: add node %s: a node with that name exists", name)
	}
	// Held across the `ip netns add` so that a concurrent Close either sees
	// the node (and deletes it) or refuses to create it.
	_, err := l.run(ctx, nil, "ip", "netns", "add", n.ns)
	if err == nil {
		l.nodes = append(l.nodes, n)
		l.byName[name] = n
	}
	l.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("netlab: add node %s: %w", name, err)
	}
	if _, err := l.run(ctx, nil, "ip", "-n", n.ns, "link", "set", "lo", "up"); err != nil {
		return nil, fmt.Errorf("netlab: add node %s: %w", name, err)
	}
	if !l.cfg.ipv6 {
		for _, key := range []string{"net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.default.disable_ipv6"} {
			if err := n.SetSysctl(key, "1"); err != nil {
				return nil, fmt.Errorf("netlab: add node %s: %w", name, nest(err))
			}
		}
	}
	return n, nil
}

// Name is the node's short name, as given to AddNode.
func (n *Node) Name() string { return n.name }

// NetNS is the node's namespace name ("<labid>-<name>"), usable with
// `ip netns exec` and `ip -n`.
func (n *Node) NetNS() string { return n.ns }

// Lab returns the lab the node belongs to.
func (n *Node) Lab() *Lab { return n.lab }

// OVS returns the Open vSwitch started in this node, or nil.
func (n *Node) OVS() *OVS {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ovs
}

// Cmd runs `ip netns exec NS args...` and returns its combined output. The
// error includes the command line and the output.
func (n *Node) Cmd(ctx context.Context, args ...string) (string, error) {
	if len(args) == 0 {
		return "", fmt.Errorf("netlab: %s: empty command", n.name)
	}
	return n.lab.run(ctx, nil, append([]string{"ip", "netns", "exec", n.ns}, args...)...)
}

// MustCmd is Cmd that fails the test on error.
func (n *Node) MustCmd(t testing.TB, args ...string) string {
	t.Helper()
	out, err := n.Cmd(context.Background(), args...)
	if err != nil {
		t.Fatalf("netlab: on %s: %v", n.name, err)
	}
	return out
}

// SetSysctl writes /proc/sys/<key with dots as slashes> inside the node.
func (n *Node) SetSysctl(key, value string) error {
	path := filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
	err := n.Do(func() error {
		return os.WriteFile(path, []byte(value+"\n"), 0o644)
	})
	n.lab.logf("netlab: [%s] sysctl -w %s=%s (err=%v)", n.ns, key, value, err)
	if err != nil {
		return fmt.Errorf("netlab: sysctl %s=%s in %s: %w", key, value, n.ns, err)
	}
	return nil
}

// EnableIPForward sets net.ipv4.ip_forward=1 in the node (a router, or a VM
// that routes for its containers).
func (n *Node) EnableIPForward() error {
	return n.SetSysctl("net.ipv4.ip_forward", "1")
}

// Process is a background process running inside a node.
type Process struct {
	Pid     int
	Node    *Node
	Args    []string
	LogFile string

	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
}

// Start runs args in the background inside the node, with stdout and stderr
// appended to logFile (relative names are placed in the lab dir; "" picks
// one). The process gets its own process group; Stop and Kill signal the
// whole group. If ctx is canceled the process gets SIGTERM, then SIGKILL
// 5s later; pass context.Background() for a process that should live until
// the lab is closed. The lab stops it at Close in any case.
func (n *Node) Start(ctx context.Context, logFile string, args ...string) (*Process, error) {
	return n.start(ctx, logFile, nil, args)
}

func (n *Node) start(ctx context.Context, logFile string, env []string, args []string) (*Process, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("netlab: %s: start: empty command", n.name)
	}
	l := n.lab
	if logFile == "" {
		logFile = fmt.Sprintf("%s-%s-%d.log", n.name, filepath.Base(args[0]), l.nextSeq())
	}
	if !filepath.IsAbs(logFile) {
		logFile = filepath.Join(l.dir, logFile)
	}
	f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("netlab: %s: start %s: %w", n.name, args[0], err)
	}
	defer f.Close()

	argv := append([]string{"ip", "netns", "exec", n.ns}, args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &Process{Node: n, Args: args, LogFile: logFile, cmd: cmd, done: make(chan struct{})}
	cmd.Cancel = func() error { return p.signal(syscall.SIGTERM) }
	cmd.WaitDelay = stopGrace

	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, fmt.Errorf("netlab: %s: start %s: lab %s is closed", n.name, args[0], l.id)
	}
	err = cmd.Start()
	if err == nil {
		p.Pid = cmd.Process.Pid
		l.procs = append(l.procs, p)
	}
	l.mu.Unlock()
	if err != nil {
		l.logf("netlab: & %s  [%v]", shellJoin(argv), err)
		return nil, fmt.Errorf("netlab: %s: start %s: %w", n.name, shellJoin(argv), err)
	}
	l.logf("netlab: & %s  [pid %d, log %s]", shellJoin(argv), p.Pid, logFile)
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// signal sends sig to the process group while the leader has not been
// reaped (after that the PID could belong to someone else).
func (p *Process) signal(sig syscall.Signal) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	err := syscall.Kill(-p.Pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// Signal sends sig (SIGSTOP, SIGCONT, …) to the process group while it
// runs.
func (p *Process) Signal(sig syscall.Signal) error { return p.signal(sig) }

// Done is closed when the process has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits for the process to exit and returns its exit error.
func (p *Process) Wait() error {
	<-p.done
	return p.waitErr
}

// Stop sends SIGTERM to the process group, waits up to 5s, then SIGKILLs
// it and waits for it. Stopping an exited process is a no-op.
func (p *Process) Stop() error {
	if p.Exited() {
		return nil
	}
	if err := p.signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("netlab: stop pid %d (%s): %w", p.Pid, p.Args[0], err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(stopGrace):
	}
	return p.Kill()
}

// Kill sends SIGKILL to the process group and waits for the process.
func (p *Process) Kill() error {
	if err := p.signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("netlab: kill pid %d (%s): %w", p.Pid, p.Args[0], err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(stopGrace):
		return fmt.Errorf("netlab: pid %d (%s) did not exit after SIGKILL", p.Pid, p.Args[0])
	}
}
