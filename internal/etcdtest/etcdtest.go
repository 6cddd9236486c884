// Package etcdtest runs real etcd members (Debian's etcd-server) for
// tests: a cluster on loopback with free ports and private data
// directories, stopped when the test ends. The e2e tests run the same
// command lines (Args) inside a network namespace.
package etcdtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/e2e/netlab"
)

// Member is one etcd member.
type Member struct {
	Name string
	Host string // listen address, e.g. 127.0.0.1
	// ClientListen, when set, is the address clients are served on
	// instead of Host (e.g. 0.0.0.0, for clients using other loopback
	// addresses).
	ClientPort, PeerPort int
	Dir                  string // data directory
	ClientListen         string
}

// ClientURL is where clients reach the member.
func (m Member) ClientURL() string { return fmt.Sprintf("http://%s:%d", m.Host, m.ClientPort) }

// PeerURL is where the other members reach it.
func (m Member) PeerURL() string { return fmt.Sprintf("http://%s:%d", m.Host, m.PeerPort) }

// Args is the etcd command line of m in a cluster of all: default raft
// timings (100 ms heartbeat, 1 s election timeout), warnings only.
func Args(m Member, all []Member) []string {
	var peers []string
	for _, x := range all {
		peers = append(peers, x.Name+"="+x.PeerURL())
	}
	listen := m.ClientURL()
	if m.ClientListen != "" {
		listen = fmt.Sprintf("http://%s:%d", m.ClientListen, m.ClientPort)
	}
	return []string{"etcd", "--name", m.Name, "--data-dir", m.Dir,
		"--listen-client-urls", listen, "--advertise-client-urls", m.ClientURL(),
		"--listen-peer-urls", m.PeerURL(), "--initial-advertise-peer-urls", m.PeerURL(),
		"--initial-cluster", strings.Join(peers, ","), "--initial-cluster-state", "new",
		"--initial-cluster-token", "vpcflow-test-" + filepath.Base(filepath.Dir(m.Dir)),
		"--logger", "zap", "--log-level", "warn"}
}

// Cluster is etcd members running on this machine's loopback.
type Cluster struct {
	t       testing.TB
	Members []Member
	cmds    []*exec.Cmd
	done    []chan struct{}
}

// Start runs an n-member cluster on 127.0.0.1 and waits until it
// answers. It skips the test without an etcd binary (fails with
// VPCFLOW_E2E=1).
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	netlab.Require(t, netlab.NeedBinary("etcd"))
	dir := t.TempDir()
	c := &Cluster{t: t}
	for i := 0; i < n; i++ {
		c.Members = append(c.Members, Member{Name: fmt.Sprintf("m%d", i+1), Host: "127.0.0.1",
			ClientPort: freePort(t), PeerPort: freePort(t), Dir: filepath.Join(dir, fmt.Sprintf("m%d", i+1))})
	}
	c.cmds = make([]*exec.Cmd, n)
	c.done = make([]chan struct{}, n)
	for i := range c.Members {
		c.start(i)
	}
	t.Cleanup(func() {
		for i := range c.cmds {
			c.Kill(i)
		}
	})
	c.WaitHealthy(30 * time.Second)
	return c
}

func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func (c *Cluster) start(i int) {
	m := c.Members[i]
	args := Args(m, c.Members)
	if err := os.MkdirAll(filepath.Dir(m.Dir), 0o700); err != nil {
		c.t.Fatal(err)
	}
	log, err := os.OpenFile(m.Dir+".log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		log.Close()
		c.t.Fatalf("start etcd %s: %v", m.Name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); log.Close(); close(done) }()
	c.cmds[i], c.done[i] = cmd, done
}

// Endpoints are the members' client URLs.
func (c *Cluster) Endpoints() []string {
	out := make([]string, len(c.Members))
	for i, m := range c.Members {
		out[i] = m.ClientURL()
	}
	return out
}

// Kill SIGKILLs member i (if running) and waits for it.
func (c *Cluster) Kill(i int) {
	cmd := c.cmds[i]
	if cmd == nil {
		return
	}
	select {
	case <-c.done[i]:
	default:
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-c.done[i]
	}
	c.cmds[i] = nil
}

// Restart starts a killed member again with its data.
func (c *Cluster) Restart(i int) {
	c.Kill(i)
	c.start(i)
}

// Client is a client of the whole cluster, closed when the test ends.
func (c *Cluster) Client() *clientv3.Client {
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { cli.Close() })
	return cli
}

// WaitHealthy waits until a write through the cluster succeeds.
func (c *Cluster) WaitHealthy(timeout time.Duration) {
	c.t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		c.t.Fatal(err)
	}
	defer cli.Close()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := cli.Put(ctx, "/etcdtest/health", time.Now().String())
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("etcd cluster %v not healthy within %s: %v", c.Endpoints(), timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
