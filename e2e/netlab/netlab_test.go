package netlab

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	mac1 = "52:58:00:98:c0:81"
	mac2 = "52:58:00:98:c0:92"
)

func TestMain(m *testing.M) { Main(m) }

// twoVMs builds phys (OVS, br-test) + vm1/vm2 attached as vnet1/vnet3 with
// the seed's addresses. It returns the ofports.
func twoVMs(ctx context.Context, l *Lab) (phys, vm1, vm2 *Node, o *OVS, p1, p3 int, err error) {
	if phys, err = l.AddNode("phys"); err != nil {
		return
	}
	if vm1, err = l.AddNode("vm1"); err != nil {
		return
	}
	if vm2, err = l.AddNode("vm2"); err != nil {
		return
	}
	if o, err = phys.StartOVS(ctx); err != nil {
		return
	}
	if err = o.AddBridge(ctx, "br-test"); err != nil {
		return
	}
	if p1, err = l.LinkToOVS(ctx, vm1, "ens8", mac1, phys, o, "br-test", "vnet1", true); err != nil {
		return
	}
	if p3, err = l.LinkToOVS(ctx, vm2, "ens8", mac2, phys, o, "br-test", "vnet3", true); err != nil {
		return
	}
	if err = vm1.AddAddr(ctx, "ens8", "10.10.10.11/24"); err != nil {
		return
	}
	err = vm2.AddAddr(ctx, "ens8", "10.10.10.12/24")
	return
}

func mustNoErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// echoServer echoes every connection until ln is closed.
func echoServer(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			_, _ = io.Copy(c, c)
		}()
	}
}

// echoRoundTrip sends n random bytes and expects them back.
func echoRoundTrip(ctx context.Context, from *Node, addr string, n int) error {
	conn, err := from.Dial(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	payload := make([]byte, n)
	_, _ = rand.Read(payload)
	errc := make(chan error, 1)
	go func() {
		_, err := conn.Write(payload)
		errc <- err
	}()
	got := make([]byte, n)
	if _, err := io.ReadFull(conn, got); err != nil {
		return fmt.Errorf("read echo from %s: %w", addr, err)
	}
	if err := <-errc; err != nil {
		return fmt.Errorf("write to %s: %w", addr, err)
	}
	if !bytes.Equal(got, payload) {
		return errors.New("echo payload differs")
	}
	return nil
}

func TestTwoVMsThroughOVS(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	start := time.Now()
	l := New(t)
	phys, vm1, vm2, o, p1, p3, err := twoVMs(ctx, l)
	mustNoErr(t, err)
	t.Logf("lab %s: 3 nodes, OVS, bridge and 2 links up in %v", l.ID(), time.Since(start))

	if phys.NetNS() != l.ID()+"-phys" || vm1.Name() != "vm1" {
		t.Fatalf("names: %s %s", phys.NetNS(), vm1.Name())
	}
	if p1 <= 0 || p3 <= 0 || p1 == p3 {
		t.Fatalf("ofports %d %d", p1, p3)
	}
	out, err := o.Vsctl(ctx, "get", "Interface", "vnet1", "external_ids:attached-mac")
	mustNoErr(t, err)
	if strings.Trim(strings.TrimSpace(out), `"`) != mac1 {
		t.Fatalf("attached-mac = %q", out)
	}
	if got := vm1.MustCmd(t, "cat", "/sys/class/net/ens8/address"); strings.TrimSpace(got) != mac1 {
		t.Fatalf("vm1 ens8 MAC %q", got)
	}
	dpid, err := o.DPID(ctx, "br-test")
	mustNoErr(t, err)
	if dpid == 0 {
		t.Fatal("dpid 0")
	}
	if _, err := o.Appctl(ctx, "version"); err != nil {
		t.Fatal(err)
	}
	// fail_mode=secure and no flows: nothing passes.
	if _, err := vm1.Cmd(ctx, "ping", "-c", "1", "-W", "1", "10.10.10.12"); err == nil {
		t.Fatal("ping passed through a secure bridge without flows")
	}
	_, err = o.Ofctl(ctx, "br-test", "add-flow", "priority=0,actions=normal")
	mustNoErr(t, err)
	flows, err := o.OfctlDumpFlows(ctx, "br-test", "--no-stats")
	mustNoErr(t, err)
	if len(flows) != 1 || flows[0] != "priority=0 actions=NORMAL" {
		t.Fatalf("flows = %q", flows)
	}

	// ICMP.
	out = vm1.MustCmd(t, "ping", "-c", "2", "-i", "0.2", "-W", "2", "10.10.10.12")
	if !strings.Contains(out, "2 received") {
		t.Fatalf("ping: %s", out)
	}
	// TCP (needs tx checksum offload off on the veths), 1 MiB each way.
	ln, err := vm2.Listen("tcp", "10.10.10.12:0")
	mustNoErr(t, err)
	defer ln.Close()
	go echoServer(ln)
	mustNoErr(t, echoRoundTrip(ctx, vm1, ln.Addr().String(), 1<<20))

	// HTTP through OVS with the node's client.
	hln, err := vm2.Listen("tcp", "10.10.10.12:8080")
	mustNoErr(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from vm2, you are %s", r.RemoteAddr)
	})}
	go func() { _ = srv.Serve(hln) }()
	defer srv.Close()
	resp, err := vm1.HTTPClient().Get("http://10.10.10.12:8080/")
	mustNoErr(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(string(body), "hello from vm2, you are 10.10.10.11:") {
		t.Fatalf("http body %q", body)
	}

	// Loopback inside a node is the node's own.
	lo, err := vm1.Listen("tcp", "127.0.0.1:0")
	mustNoErr(t, err)
	defer lo.Close()
	go echoServer(lo)
	mustNoErr(t, echoRoundTrip(ctx, vm1, lo.Addr().String(), 1000))
	mustNoErr(t, echoRoundTrip(ctx, vm1, "localhost:"+strconv.Itoa(lo.Addr().(*net.TCPAddr).Port), 10))
	if c, err := vm2.Dial(ctx, "tcp", lo.Addr().String()); err == nil {
		c.Close()
		t.Fatal("vm2 reached vm1's loopback listener")
	}
	// UDP.
	pc, err := vm2.ListenPacket("udp", "10.10.10.12:0")
	mustNoErr(t, err)
	defer pc.Close()
	uc, err := vm1.Dial(ctx, "udp", pc.LocalAddr().String())
	mustNoErr(t, err)
	_, err = uc.Write([]byte("datagram"))
	uc.Close()
	mustNoErr(t, err)
	_ = pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	n, from, err := pc.ReadFrom(buf)
	mustNoErr(t, err)
	if string(buf[:n]) != "datagram" || !strings.HasPrefix(from.String(), "10.10.10.11:") {
		t.Fatalf("udp got %q from %v", buf[:n], from)
	}
}

// TestSeedTopologyHandFlows reproduces the seed scenario with the two
// hand-written flows of the blog post: container to container across two
// VMs, ttl=62.
func TestSeedTopologyHandFlows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := New(t)
	_, vm1, vm2, o, p1, p3, err := twoVMs(ctx, l)
	mustNoErr(t, err)
	for _, v := range []struct {
		vm         *Node
		br, cidr   string
		ns, nscidr string
		gw         string
	}{
		{vm1, "vpc1", "172.18.1.1/24", "testns1", "172.18.1.3/24", "172.18.1.1"},
		{vm2, "vpc2", "172.18.3.1/24", "testns2", "172.18.3.4/24", "172.18.3.1"},
	} {
		mustNoErr(t, v.vm.AddRoute(ctx, "default", "10.10.10.1", ""))
		mustNoErr(t, v.vm.EnableIPForward())
		mustNoErr(t, v.vm.AddLinuxBridge(ctx, v.br, v.cidr))
		c, err := l.AddContainer(ctx, v.vm, v.br, v.ns, "eth0", v.nscidr, v.gw)
		mustNoErr(t, err)
		if c.NetNS() != l.ID()+"-"+v.ns {
			t.Fatalf("container netns %s", c.NetNS())
		}
		// Nobody answers ARP for the gateway without vpcflow.
		v.vm.MustCmd(t, "ip", "neigh", "replace", "10.10.10.1", "lladdr", "ee:ff:ff:ff:ff:ff", "dev", "ens8", "nud", "permanent")
	}
	for _, f := range []string{
		fmt.Sprintf("ip,nw_dst=172.18.3.0/24,actions=set_field:%s->eth_dst,output:%d", mac2, p3),
		fmt.Sprintf("ip,nw_dst=172.18.1.0/24,actions=set_field:%s->eth_dst,output:%d", mac1, p1),
	} {
		_, err := o.Ofctl(ctx, "br-test", "add-flow", f)
		mustNoErr(t, err)
	}
	out := l.Node("testns1").MustCmd(t, "ping", "-c", "2", "-i", "0.2", "-W", "2", "172.18.3.4")
	if !strings.Contains(out, "ttl=62") || !strings.Contains(out, "2 received") {
		t.Fatalf("ping: %s", out)
	}
	// And TCP from the container side.
	ln, err := l.Node("testns2").Listen("tcp", "172.18.3.4:0")
	mustNoErr(t, err)
	defer ln.Close()
	go echoServer(ln)
	mustNoErr(t, echoRoundTrip(ctx, l.Node("testns1"), ln.Addr().String(), 256<<10))
}

func TestOVSRestarts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := New(t)
	_, vm1, _, o, p1, p3, err := twoVMs(ctx, l)
	mustNoErr(t, err)
	_, err = o.Ofctl(ctx, "br-test", "add-flow", "priority=0,actions=normal")
	mustNoErr(t, err)

	oldPid := o.VswitchdPID()
	t0 := time.Now()
	mustNoErr(t, o.RestartVswitchd(ctx))
	t.Logf("vswitchd restart: %v", time.Since(t0))
	if o.VswitchdPID() == 0 || o.VswitchdPID() == oldPid || procRunning(oldPid) {
		t.Fatalf("vswitchd pid %d -> %d", oldPid, o.VswitchdPID())
	}
	flows, err := o.OfctlDumpFlows(ctx, "br-test")
	mustNoErr(t, err)
	if len(flows) != 0 {
		t.Fatalf("flows survived a vswitchd restart: %q", flows)
	}
	// A kept flow comes back with every start, the others do not.
	mustNoErr(t, o.AddKeptFlow(ctx, "br-test", "priority=5,udp,tp_dst=9,actions=drop"))
	_, err = o.Ofctl(ctx, "br-test", "add-flow", "priority=0,actions=normal")
	mustNoErr(t, err)
	mustNoErr(t, o.RestartVswitchd(ctx))
	flows, err = o.OfctlDumpFlows(ctx, "br-test", "--no-stats")
	mustNoErr(t, err)
	if len(flows) != 1 || flows[0] != "priority=5,udp,tp_dst=9 actions=drop" {
		t.Fatalf("after a restart with a kept flow: %q, want only the kept one", flows)
	}
	if q1, _ := o.Ofport(ctx, "vnet1"); q1 != p1 {
		t.Fatalf("vnet1 ofport %d -> %d", p1, q1)
	}

	mustNoErr(t, o.KillVswitchd())
	if o.VswitchdPID() != 0 {
		t.Fatal("vswitchd pid after kill")
	}
	mustNoErr(t, o.StartVswitchd(ctx))
	if q3, _ := o.Ofport(ctx, "vnet3"); q3 != p3 {
		t.Fatalf("vnet3 ofport %d -> %d", p3, q3)
	}

	mustNoErr(t, o.KillOVSDB())
	if _, err := o.Vsctl(ctx, "--timeout=1", "show"); err == nil {
		t.Fatal("vsctl worked without ovsdb-server")
	}
	mustNoErr(t, o.StartOVSDB(ctx))
	mustNoErr(t, o.RestartOVSDB(ctx))
	// vswitchd reconnects and still forwards.
	_, err = o.Ofctl(ctx, "br-test", "add-flow", "priority=0,actions=normal")
	mustNoErr(t, err)
	mustNoErr(t, o.syncVswitchd(ctx))
	out := vm1.MustCmd(t, "ping", "-c", "1", "-W", "2", "10.10.10.12")
	if !strings.Contains(out, "1 received") {
		t.Fatalf("ping after restarts: %s", out)
	}
	// Controller settings as DESIGN.md wants them.
	mustNoErr(t, o.SetController(ctx, "br-test", "tcp:127.0.0.1:6653"))
	out, err = o.Vsctl(ctx, "--columns=target,connection_mode", "list", "Controller")
	mustNoErr(t, err)
	if !strings.Contains(out, `"tcp:127.0.0.1:6653"`) || !strings.Contains(out, "out-of-band") {
		t.Fatalf("controller: %s", out)
	}
	out, err = o.Vsctl(ctx, "get", "Bridge", "br-test", "other_config:disable-in-band", "protocols", "fail_mode", "datapath_type")
	mustNoErr(t, err)
	if want := "\"true\"\n[OpenFlow13]\nsecure\nnetdev\n"; out != want {
		t.Fatalf("bridge settings %q, want %q", out, want)
	}
	mustNoErr(t, o.SetController(ctx, "br-test"))
	out, err = o.Vsctl(ctx, "get-controller", "br-test")
	mustNoErr(t, err)
	if strings.TrimSpace(out) != "" {
		t.Fatalf("controller after delete: %q", out)
	}
}

// labSnapshot is what a lab owns, for checking that cleanup removed it.
type labSnapshot struct {
	id, dir string
	pids    []int
}

func snapshot(t testing.TB, l *Lab) labSnapshot {
	s := labSnapshot{id: l.ID(), dir: l.Dir(), pids: []int{l.reaper.cmd.Process.Pid}}
	l.mu.Lock()
	for _, p := range l.procs {
		if !p.Exited() {
			s.pids = append(s.pids, p.Pid)
		}
	}
	nodes := append([]*Node(nil), l.nodes...)
	l.mu.Unlock()
	for _, n := range nodes {
		pids, err := netnsPids(n.ns)
		mustNoErr(t, err)
		for _, p := range pids {
			if !containsInt(s.pids, p) {
				s.pids = append(s.pids, p)
			}
		}
	}
	return s
}

func containsInt(xs []int, x int) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

// leftovers lists what of a snapshot still exists.
func (s labSnapshot) leftovers() []string {
	var left []string
	names, _ := listNetns()
	for _, n := range names {
		if strings.HasPrefix(n, s.id+"-") {
			left = append(left, "netns "+n)
		}
	}
	for _, p := range s.pids {
		if procRunning(p) {
			left = append(left, fmt.Sprintf("pid %d (%s)", p, procComm(p)))
		}
	}
	if _, err := os.Stat(s.dir); err == nil {
		left = append(left, "dir "+s.dir)
	}
	return left
}

func TestCloseLeavesNothing(t *testing.T) {
	Require(t)
	if os.Getenv(EnvKeepLab) == "1" {
		t.Skip("VPCFLOW_KEEP_LAB=1 keeps the lab dir")
	}
	t.Parallel()
	ctx := context.Background()
	t0 := time.Now()
	l, err := NewStandalone("close-test", WithLogf(t.Logf))
	mustNoErr(t, err)
	defer l.Close()
	_, vm1, _, _, _, _, err := twoVMs(ctx, l)
	mustNoErr(t, err)
	mustNoErr(t, vm1.AddLinuxBridge(ctx, "vpc1", "172.18.1.1/24"))
	_, err = l.AddContainer(ctx, vm1, "vpc1", "c1", "eth0", "172.18.1.3/24", "172.18.1.1")
	mustNoErr(t, err)
	setup := time.Since(t0)
	sleeper, err := vm1.Start(ctx, "", "sh", "-c", "sleep 600 & sleep 600")
	mustNoErr(t, err)
	// A process that escapes its process group: only the netns sweep finds it.
	_, err = vm1.Cmd(ctx, "sh", "-c", "setsid sleep 600 </dev/null >/dev/null 2>&1 &")
	mustNoErr(t, err)
	var s labSnapshot
	mustNoErr(t, poll(ctx, 5*time.Second, func() (bool, error) {
		s = snapshot(t, l)
		return len(s.pids) >= 7, nil // reaper, ovsdb, vswitchd, sh, sleep, sleep, setsid sleep
	}))
	t.Logf("tracked pids %v", s.pids)

	t1 := time.Now()
	mustNoErr(t, l.Close())
	t.Logf("setup %v, teardown %v", setup, time.Since(t1))
	mustNoErr(t, l.Close()) // idempotent
	if left := s.leftovers(); len(left) > 0 {
		t.Fatalf("left behind: %v", left)
	}
	if !sleeper.Exited() {
		t.Fatal("sleeper not reaped")
	}
	if _, err := l.AddNode("late"); err == nil {
		t.Fatal("AddNode on a closed lab")
	}
}

func TestProcessStopKill(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := New(t)
	n, err := l.AddNode("n")
	mustNoErr(t, err)
	// Ignores SIGTERM: Stop must fall back to SIGKILL.
	p, err := n.Start(ctx, "stubborn.log", "sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.1; done")
	mustNoErr(t, err)
	mustNoErr(t, poll(ctx, 5*time.Second, func() (bool, error) {
		b, _ := os.ReadFile(p.LogFile)
		return strings.Contains(string(b), "ready"), nil
	}))
	t0 := time.Now()
	mustNoErr(t, p.Stop())
	if d := time.Since(t0); d < stopGrace {
		t.Fatalf("stubborn process stopped after %v", d)
	}
	if procRunning(p.Pid) {
		t.Fatal("still running")
	}
	// Context cancellation stops a started process.
	cctx, cancel := context.WithCancel(ctx)
	q, err := n.Start(cctx, "", "sleep", "600")
	mustNoErr(t, err)
	cancel()
	select {
	case <-q.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("process survived its context")
	}
	r, err := n.Start(ctx, "", "sleep", "600")
	mustNoErr(t, err)
	mustNoErr(t, r.Kill())
	if err := r.Wait(); err == nil {
		t.Fatal("killed process exited 0")
	}
	// Errors name the command and carry its output.
	_, err = n.Cmd(ctx, "sh", "-c", "echo boom >&2; exit 3")
	if err == nil || !strings.Contains(err.Error(), "boom") || !strings.Contains(err.Error(), "ip netns exec "+n.NetNS()+" sh -c") {
		t.Fatalf("error %v", err)
	}
	// IPv6 is off by default.
	if out := n.MustCmd(t, "cat", "/proc/sys/net/ipv6/conf/all/disable_ipv6"); strings.TrimSpace(out) != "1" {
		t.Fatalf("disable_ipv6 = %q", out)
	}
}

// TestParallelLabs builds two labs with identical node, port and address
// names at the same time and checks that each works on its own.
func TestParallelLabs(t *testing.T) {
	Require(t)
	t.Parallel()
	ctx := context.Background()
	const n = 2
	labs := make([]*Lab, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range labs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := NewStandalone(fmt.Sprintf("parallel-%d", i), WithLogf(t.Logf))
			if err != nil {
				errs[i] = err
				return
			}
			labs[i] = l
			var o *OVS
			if _, _, _, o, _, _, err = twoVMs(ctx, l); err == nil {
				_, err = o.Ofctl(ctx, "br-test", "add-flow", "priority=0,actions=normal")
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, l := range labs {
		if l != nil {
			defer l.Close()
		}
		mustNoErr(t, errs[i])
	}
	if labs[0].ID() == labs[1].ID() {
		t.Fatal("same lab id")
	}
	// Both are up at once; traffic in each one stays in it.
	for i, l := range labs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ln, err := l.Node("vm2").Listen("tcp", "10.10.10.12:7000")
			if err != nil {
				errs[i] = err
				return
			}
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err == nil {
					fmt.Fprintf(c, "lab %s", l.ID())
					c.Close()
				}
			}()
			if _, err := l.Node("vm1").Cmd(ctx, "ping", "-c", "3", "-i", "0.2", "-W", "2", "10.10.10.12"); err != nil {
				errs[i] = err
				return
			}
			c, err := l.Node("vm1").Dial(ctx, "tcp", "10.10.10.12:7000")
			if err != nil {
				errs[i] = err
				return
			}
			defer c.Close()
			b, err := io.ReadAll(c)
			if err == nil && string(b) != "lab "+l.ID() {
				err = fmt.Errorf("lab %s got %q", l.ID(), b)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i := range labs {
		mustNoErr(t, errs[i])
	}
	snaps := []labSnapshot{snapshot(t, labs[0]), snapshot(t, labs[1])}
	mustNoErr(t, labs[0].Close())
	if left := snaps[0].leftovers(); len(left) > 0 {
		t.Fatalf("lab 0 left %v", left)
	}
	if left := snaps[1].leftovers(); len(left) < 4 {
		t.Fatalf("closing lab 0 disturbed lab 1: it has only %v", left)
	}
	out, err := labs[1].Node("vm1").Cmd(ctx, "ping", "-c", "1", "-W", "2", "10.10.10.12")
	if err != nil {
		t.Fatalf("lab 1 after lab 0 closed: %v", err)
	}
	_ = out
}

func TestSweepStale(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	live := New(t)
	_, err := live.AddNode("alive")
	mustNoErr(t, err)

	// The owner is alive while the lab is built (other test processes sweep
	// at start: a lab whose owner record names a dead process from the first
	// moment could be swept half-built), and dies just before the sweep.
	owner := exec.Command("sleep", "600")
	mustNoErr(t, owner.Start())
	t.Cleanup(func() { _ = owner.Process.Kill(); _ = owner.Wait() })
	ownerStat, err := readProcStat(owner.Process.Pid)
	mustNoErr(t, err)
	id, err := randomID()
	mustNoErr(t, err)
	dir := filepath.Join(BaseDir(), id)
	mustNoErr(t, os.MkdirAll(dir, 0o700))
	mustNoErr(t, os.WriteFile(filepath.Join(dir, ownerFile), []byte(fmt.Sprintf("%d %d\nstale\n", owner.Process.Pid, ownerStat.startTime)), 0o644))
	// A lab-looking namespace with no owner record must survive.
	orphanID, err := randomID()
	mustNoErr(t, err)
	staleNS, orphanNS := id+"-x", orphanID+"-y"
	for _, ns := range []string{staleNS, orphanNS} {
		ns := ns
		t.Cleanup(func() { _ = deleteNetns(ns) })
		_, err := live.run(ctx, nil, "ip", "netns", "add", ns)
		mustNoErr(t, err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// Something running inside the stale lab, as after a crash.
	stray := exec.Command("ip", "netns", "exec", staleNS, "sleep", "600")
	stray.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	mustNoErr(t, stray.Start())
	strayDone := make(chan error, 1)
	go func() { strayDone <- stray.Wait() }()
	t.Cleanup(func() { _ = stray.Process.Kill() })
	mustNoErr(t, poll(ctx, 5*time.Second, func() (bool, error) {
		pids, err := netnsPids(staleNS) // `ip netns exec` has joined it
		return containsInt(pids, stray.Process.Pid), err
	}))

	mustNoErr(t, owner.Process.Kill())
	_ = owner.Wait() // reaped: the pid no longer names the owner
	swept, err := SweepStale(t.Logf)
	mustNoErr(t, err)
	if !containsString(swept, id) {
		// Another test process (a crash-test helper) may have swept it first.
		t.Logf("swept %v without %s: someone else swept it", swept, id)
	}
	names, err := listNetns()
	mustNoErr(t, err)
	if containsString(names, staleNS) {
		t.Fatal("stale netns survived")
	}
	if !containsString(names, orphanNS) {
		t.Fatal("netns without owner record was removed")
	}
	if !containsString(names, live.ID()+"-alive") {
		t.Fatal("live lab's netns was removed")
	}
	if _, err := os.Stat(dir); err == nil {
		t.Fatal("stale lab dir survived")
	}
	select {
	case <-strayDone:
	case <-time.After(5 * time.Second):
		t.Fatal("process in stale netns survived")
	}
}

func containsString(xs []string, x string) bool { return contains(xs, x) }

// TestHelperProcess is not a test: the crash tests run it as a child.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv("NETLAB_HELPER")
	if mode == "" {
		t.Skip("helper for the crash tests")
	}
	ctx := context.Background()
	l, err := NewStandalone("helper-"+mode, WithLogf(func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }))
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	if mode == "signal" {
		InstallSignalHandler()
	}
	phys, err := l.AddNode("phys")
	if err == nil {
		var o *OVS
		if o, err = phys.StartOVS(ctx); err == nil {
			err = o.AddBridge(ctx, "br0")
		}
	}
	if err == nil {
		_, err = phys.Start(ctx, "", "sleep", "600")
	}
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	s := snapshot(t, l)
	fmt.Printf("LAB %s %s", s.id, s.dir)
	for _, p := range s.pids {
		fmt.Printf(" %d", p)
	}
	fmt.Println()
	time.Sleep(10 * time.Minute)
	os.Exit(3)
}

var labLineRe = regexp.MustCompile(`^LAB (vf[0-9a-f]{6}) (\S+)((?: \d+)+)$`)

// runHelper starts the helper in a mode and returns it with its lab.
func runHelper(t *testing.T, mode string) (*exec.Cmd, *bytes.Buffer, labSnapshot) {
	Require(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), "NETLAB_HELPER="+mode)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	mustNoErr(t, err)
	mustNoErr(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "LAB ") || strings.HasPrefix(sc.Text(), "ERR ") {
				lines <- sc.Text()
			}
		}
		close(lines)
	}()
	var line string
	select {
	case line = <-lines:
	case <-time.After(60 * time.Second):
		t.Fatalf("helper said nothing; stderr:\n%s", stderr.String())
	}
	m := labLineRe.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("helper: %q; stderr:\n%s", line, stderr.String())
	}
	s := labSnapshot{id: m[1], dir: m[2]}
	for _, f := range strings.Fields(m[3]) {
		p, _ := strconv.Atoi(f)
		s.pids = append(s.pids, p)
	}
	if len(s.pids) < 4 { // reaper, ovsdb-server, ovs-vswitchd, sleep
		t.Fatalf("helper pids %v", s.pids)
	}
	return cmd, &stderr, s
}

// TestReaperAfterSIGKILL kills a lab's owner outright: the reaper must
// remove the namespaces, the processes in them and the lab dir.
func TestReaperAfterSIGKILL(t *testing.T) {
	t.Parallel()
	cmd, _, s := runHelper(t, "kill")
	mustNoErr(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	t0 := time.Now()
	var left []string
	for time.Since(t0) < 15*time.Second {
		if left = s.leftovers(); len(left) == 0 {
			t.Logf("reaper cleaned up %s in %v", s.id, time.Since(t0))
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("after the owner's SIGKILL, left: %v", left)
}

// TestSignalHandler sends SIGTERM to a lab's owner: its handler must close
// the lab before the process dies of the signal.
func TestSignalHandler(t *testing.T) {
	t.Parallel()
	cmd, stderr, s := runHelper(t, "signal")
	mustNoErr(t, cmd.Process.Signal(syscall.SIGTERM))
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
		t.Fatalf("helper exit: %v", err)
	}
	if !strings.Contains(stderr.String(), "netlab: caught terminated") {
		t.Fatalf("no handler message; stderr:\n%s", stderr.String())
	}
	if left := s.leftovers(); len(left) > 0 {
		t.Fatalf("left behind at exit: %v", left)
	}
}

func TestShellJoin(t *testing.T) {
	got := shellJoin([]string{"ovs-vsctl", "set", "Interface", "p", `external_ids:attached-mac="52:58:00:98:c0:81"`, "a b", ""})
	want := `ovs-vsctl set Interface p 'external_ids:attached-mac="52:58:00:98:c0:81"' 'a b' ''`
	if got != want {
		t.Fatalf("got %s", got)
	}
}

func TestContainerHostIf(t *testing.T) {
	if got := ContainerHostIf("testns1"); got != "vh-testns1" {
		t.Fatal(got)
	}
	long := ContainerHostIf("a-very-long-container-name")
	if len(long) > 15 || !strings.HasPrefix(long, "vh-") {
		t.Fatal(long)
	}
}

// TestNewOVSWithoutVswitchd: an OVSDB-only OVS for client tests. Vsctl
// does not wait for a switch that is not there; starting ovs-vswitchd
// later works and makes Vsctl wait again.
func TestNewOVSWithoutVswitchd(t *testing.T) {
	t.Parallel()
	o := NewOVS(t, WithoutVswitchd())
	if o.VswitchdPID() != 0 || o.OVSDBPID() == 0 {
		t.Fatalf("pids: vswitchd %d, ovsdb-server %d", o.VswitchdPID(), o.OVSDBPID())
	}
	if o.Node().Name() != "ovs" || !strings.HasPrefix(o.DBEndpoint(), "unix:"+o.Node().Lab().Dir()) {
		t.Fatalf("node %s, endpoint %s", o.Node().Name(), o.DBEndpoint())
	}
	t0 := time.Now()
	o.MustVsctl(t, "add-br", "br0", "--", "set", "Bridge", "br0", "datapath_type=netdev")
	if d := time.Since(t0); d > 5*time.Second {
		t.Fatalf("add-br without vswitchd took %v: it waited for a switch", d)
	}
	if got := o.MustVsctl(t, "get", "Bridge", "br0", "datapath_id"); got != "[]" {
		t.Fatalf("datapath_id without vswitchd: %s", got)
	}
	ctx := context.Background()
	mustNoErr(t, o.StartVswitchd(ctx))
	if o.VswitchdPID() == 0 {
		t.Fatal("no vswitchd pid after StartVswitchd")
	}
	dpid, err := o.DPID(ctx, "br0")
	mustNoErr(t, err)
	// With vswitchd running, Vsctl waits: the port has its ofport at once.
	o.MustVsctl(t, "add-port", "br0", "p1", "--", "set", "Interface", "p1", "type=internal")
	if got := o.MustVsctl(t, "get", "Interface", "p1", "ofport"); got == "[]" || got == "-1" {
		t.Fatalf("p1 ofport right after add-port with vswitchd: %s", got)
	}
	t.Logf("br0 dpid %016x", dpid)
}

// fakeTB records what Require does with a test.
type fakeTB struct {
	testing.TB
	skipped, failed string
}

func (f *fakeTB) Helper()                        {}
func (f *fakeTB) Skipf(format string, a ...any)  { f.skipped = fmt.Sprintf(format, a...) }
func (f *fakeTB) Fatalf(format string, a ...any) { f.failed = fmt.Sprintf(format, a...) }

func TestRequire(t *testing.T) {
	missing := NeedBinary("vpcflow-no-such-program")
	if err := Check(missing); err == nil || !strings.Contains(err.Error(), "vpcflow-no-such-program") {
		t.Fatalf("Check(missing binary) = %v", err)
	}
	if err := Check(Need("bogus")); err == nil || !strings.Contains(err.Error(), `unknown netlab.Need "bogus"`) {
		t.Fatalf("Check(bogus) = %v", err)
	}
	if err := Check(NeedBinary("sh"), NeedBinary("sh")); err != nil {
		t.Fatalf("Check(sh) = %v", err)
	}
	if (Check(NeedRoot) == nil) != (os.Geteuid() == 0) {
		t.Fatalf("Check(NeedRoot) = %v as uid %d", Check(NeedRoot), os.Geteuid())
	}
	if (Check() == nil) != (Check(NeedLab) == nil) || (Available() == nil) != (Check(NeedLab) == nil) {
		t.Fatal("Check(), Check(NeedLab) and Available() disagree")
	}

	t.Setenv(EnvE2E, "")
	f := &fakeTB{TB: t}
	Require(f, NeedRoot, missing)
	if f.failed != "" || !strings.Contains(f.skipped, "vpcflow-no-such-program") || !strings.Contains(f.skipped, EnvE2E+"=1") {
		t.Fatalf("without %s: skipped %q, failed %q", EnvE2E, f.skipped, f.failed)
	}
	t.Setenv(EnvE2E, "1")
	f = &fakeTB{TB: t}
	Require(f, missing)
	if f.skipped != "" || !strings.Contains(f.failed, "vpcflow-no-such-program") {
		t.Fatalf("with %s=1: skipped %q, failed %q", EnvE2E, f.skipped, f.failed)
	}
	f = &fakeTB{TB: t}
	Require(f, NeedBinary("sh"))
	if f.skipped != "" || f.failed != "" {
		t.Fatalf("nothing missing: skipped %q, failed %q", f.skipped, f.failed)
	}
}
