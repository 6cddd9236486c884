package netlab

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const netnsDir = "/run/netns"

func netnsPath(name string) string { return filepath.Join(netnsDir, name) }

// Do runs fn on an OS thread that has joined the node's network namespace,
// then moves the thread back. Sockets created inside fn belong to the node
// for their whole life; fn must not start goroutines that create sockets
// (they run on other threads). If the thread cannot be moved back it is
// left locked, so the Go runtime destroys it when the goroutine ends.
func (n *Node) Do(fn func() error) error {
	type result struct{ err error }
	ch := make(chan result, 1)
	// A fresh goroutine: if its thread is tainted, only it dies with it.
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{fmt.Errorf("open own netns: %w", err)}
			return
		}
		defer unix.Close(orig)
		target, err := unix.Open(netnsPath(n.ns), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{fmt.Errorf("open netns %s: %w", n.ns, err)}
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- result{fmt.Errorf("setns %s: %w", n.ns, err)}
			return
		}
		fnErr := fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			// Stay locked: the thread is discarded when we return.
			ch <- result{fmt.Errorf("setns back from %s: %w (fn: %v)", n.ns, err, fnErr)}
			return
		}
		runtime.UnlockOSThread()
		ch <- result{fnErr}
	}()
	return (<-ch).err
}

// Dial opens a connection from inside the node, so 127.0.0.1 is the node's
// loopback and routes are the node's. Host names are resolved first in the
// test process (from /etc/hosts; there is no DNS in a lab) and one address
// is dialed, on the thread that sits in the namespace.
func (n *Node) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	target, err := resolveOne(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("netlab: %s: dial %s %s: %w", n.name, network, addr, err)
	}
	var conn net.Conn
	err = n.Do(func() error {
		var d net.Dialer
		var err error
		conn, err = d.DialContext(ctx, network, target)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netlab: %s: dial %s %s: %w", n.name, network, addr, err)
	}
	return conn, nil
}

// Listen opens a listener bound inside the node (e.g. "tcp", "10.0.0.1:0"
// or "127.0.0.1:6653" for a controller that vswitchd in this node dials).
func (n *Node) Listen(network, addr string) (net.Listener, error) {
	target, err := resolveOne(context.Background(), network, addr)
	if err != nil {
		return nil, fmt.Errorf("netlab: %s: listen %s %s: %w", n.name, network, addr, err)
	}
	var ln net.Listener
	err = n.Do(func() error {
		var err error
		ln, err = net.Listen(network, target)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netlab: %s: listen %s %s: %w", n.name, network, addr, err)
	}
	return ln, nil
}

// ListenPacket opens a packet socket (e.g. "udp") bound inside the node.
func (n *Node) ListenPacket(network, addr string) (net.PacketConn, error) {
	target, err := resolveOne(context.Background(), network, addr)
	if err != nil {
		return nil, fmt.Errorf("netlab: %s: listen %s %s: %w", n.name, network, addr, err)
	}
	var pc net.PacketConn
	err = n.Do(func() error {
		var err error
		pc, err = net.ListenPacket(network, target)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netlab: %s: listen %s %s: %w", n.name, network, addr, err)
	}
	return pc, nil
}

// HTTPClient returns a client whose connections are made inside the node.
// Proxy settings from the environment are ignored.
func (n *Node) HTTPClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         n.Dial,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     30 * time.Second,
		},
		Timeout: 60 * time.Second,
	}
}

// resolveOne turns host:port into a literal ip:port so that the dialer does
// a single, serial attempt on the calling thread (a host name with several
// addresses would make net.Dialer race attempts on other goroutines, which
// run outside the namespace). Unix socket paths pass through.
func resolveOne(ctx context.Context, network, addr string) (string, error) {
	if strings.HasPrefix(network, "unix") {
		return addr, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if host == "" || net.ParseIP(strings.SplitN(host, "%", 2)[0]) != nil {
		return addr, nil
	}
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return "", err
	}
	want4 := strings.HasSuffix(network, "4")
	want6 := strings.HasSuffix(network, "6")
	var pick net.IP
	for _, ip := range ips { // prefer IPv4 (labs disable IPv6 by default)
		if v4 := ip.IP.To4(); v4 != nil && !want6 {
			pick = ip.IP
			break
		}
	}
	if pick == nil && !want4 {
		for _, ip := range ips {
			if ip.IP.To4() == nil {
				pick = ip.IP
				break
			}
		}
	}
	if pick == nil {
		return "", fmt.Errorf("no usable address for %s", host)
	}
	return net.JoinHostPort(pick.String(), port), nil
}

// listNetns returns the names of all named network namespaces.
func listNetns() ([]string, error) {
	entries, err := os.ReadDir(netnsDir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("list network namespaces: %w", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names, nil
}

// netnsPids lists the processes whose network namespace is the named one
// (what `ip netns pids` does), leaving out this process.
func netnsPids(name string) ([]int, error) {
	var want unix.Stat_t
	if err := unix.Stat(netnsPath(name), &want); err != nil {
		if err == unix.ENOENT {
			return nil, nil
		}
		return nil, fmt.Errorf("stat netns %s: %w", name, err)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("read /proc: %w", err)
	}
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		var st unix.Stat_t
		if err := unix.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &st); err != nil {
			continue
		}
		if st.Dev == want.Dev && st.Ino == want.Ino {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// killNetnsProcs SIGKILLs every process left in the given namespaces and
// waits (up to 5s) for them to disappear.
func killNetnsProcs(names []string, logf func(string, ...any)) error {
	var left []int
	for _, ns := range names {
		pids, err := netnsPids(ns)
		if err != nil {
			return err
		}
		for _, pid := range pids {
			if logf != nil {
				logf("netlab: killing leftover pid %d (%s) in %s", pid, procComm(pid), ns)
			}
			if err := syscall.Kill(pid, syscall.SIGKILL); err == nil {
				left = append(left, pid)
			}
		}
	}
	deadline := time.Now().Add(stopGrace)
	for _, pid := range left {
		for procRunning(pid) {
			if time.Now().After(deadline) {
				return fmt.Errorf("pid %d survived SIGKILL", pid)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nil
}

func procComm(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

// procRunning reports whether pid exists and is not a zombie.
func procRunning(pid int) bool {
	st, err := readProcStat(pid)
	return err == nil && st.state != "Z"
}

type procStat struct {
	state     string
	startTime uint64
}

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); starttime is field 22.
	if len(f) < 20 {
		return procStat{}, fmt.Errorf("short /proc/%d/stat", pid)
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat starttime: %w", pid, err)
	}
	return procStat{state: f[0], startTime: start}, nil
}
