// Package e2e runs vpcflow end to end: real Open vSwitch (userspace
// datapath) in a private network namespace, VMs and containers as network
// namespaces, the real vpcflow binary, real pings and real TCP.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vpcflow/vpcflow/e2e/netlab"
)

// vpcflowBin is the binary under test, built once by TestMain.
var vpcflowBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "vpcflow-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	vpcflowBin = filepath.Join(dir, "vpcflow")
	build := exec.Command("go", "build", "-o", vpcflowBin, "../cmd/vpcflow")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building vpcflow:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// fabric is one "physical host": a network namespace running a private
// Open vSwitch and the vpcflow controller, whose REST API the test reaches
// through a socket opened inside that namespace.
type fabric struct {
	t       *testing.T
	lab     *netlab.Lab
	phys    *netlab.Node
	ovs     *netlab.OVS
	ctrl    *netlab.Process
	dataDir string
	logPath string
	http    *http.Client
	starts  int
	// serveFlags are the transport flags of `vpcflow serve` (OpenFlow
	// listener, OVSDB endpoints, TLS); the REST address, data directory and
	// log level are the same for every fabric.
	serveFlags []string
}

const (
	restAddr = "127.0.0.1:8080"
	ofTarget = "tcp:127.0.0.1:6653"
)

// newFabric starts a fabric; extra are more `vpcflow serve` flags.
func newFabric(t *testing.T, extra ...string) *fabric {
	t.Helper()
	ctx := testCtx(t)
	lab := netlab.New(t)
	phys, err := lab.AddNode("phys")
	must(t, err)
	ovs, err := phys.StartOVS(ctx)
	must(t, err)
	f := &fabric{t: t, lab: lab, phys: phys, ovs: ovs,
		dataDir: filepath.Join(lab.Dir(), "vpcflow-data"), http: phys.HTTPClient(),
		serveFlags: append([]string{"--openflow", "127.0.0.1:6653", "--ovsdb", ovs.DBEndpoint()}, extra...)}
	f.startController()
	return f
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// startController runs `vpcflow serve` with f.serveFlags inside the phys
// namespace and waits for its REST API.
func (f *fabric) startController() {
	f.t.Helper()
	f.starts++
	f.logPath = filepath.Join(f.lab.Dir(), fmt.Sprintf("vpcflow-%d.log", f.starts))
	args := append([]string{vpcflowBin, "serve", "--init", "--listen", restAddr, "--data-dir", f.dataDir, "--log-level", "debug"}, f.serveFlags...)
	p, err := f.phys.Start(context.Background(), f.logPath, args...)
	must(f.t, err)
	f.ctrl = p
	f.t.Cleanup(func() {
		_ = p.Stop()
		if f.t.Failed() {
			if b, err := os.ReadFile(f.logPath); err == nil {
				f.t.Logf("controller log %s:\n%s", f.logPath, tail(string(b), 80))
			}
		}
	})
	f.eventually("REST API up", 15*time.Second, func() error {
		_, _, err := f.do("GET", "/healthz", nil)
		return err
	})
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// do sends one REST request and returns the status and body.
func (f *fabric) do(method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://"+restAddr+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// rest sends a request that must answer with want.
func (f *fabric) rest(method, path string, body any, want int) []byte {
	f.t.Helper()
	code, b, err := f.do(method, path, body)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, path, err)
	}
	if code != want {
		f.t.Fatalf("%s %s: status %d, want %d: %s", method, path, code, want, b)
	}
	return b
}

func (f *fabric) eventually(what string, timeout time.Duration, fn func() error) {
	f.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%s: not within %s: %v", what, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// addBridge creates a bridge and points it at the controller, as a user
// would with ovs-vsctl, and waits until vpcflow has reconciled it.
func (f *fabric) addBridge(name string) uint64 {
	f.t.Helper()
	ctx := testCtx(f.t)
	must(f.t, f.ovs.AddBridge(ctx, name))
	must(f.t, f.ovs.SetController(ctx, name, ofTarget))
	dpid, err := f.ovs.DPID(ctx, name)
	must(f.t, err)
	f.waitSwitch(dpid)
	return dpid
}

type switchJSON struct {
	DPID   string `json:"dpid"`
	Bridge string `json:"bridge"`
}

func (f *fabric) waitSwitch(dpid uint64) {
	f.t.Helper()
	want := fmt.Sprintf("%016x", dpid)
	f.eventually("switch "+want+" connected and reconciled", 20*time.Second, func() error {
		code, b, err := f.do("GET", "/v1/switches", nil)
		if err != nil {
			return err
		}
		if code != 200 {
			return fmt.Errorf("status %d", code)
		}
		var sws []switchJSON
		if err := json.Unmarshal(b, &sws); err != nil {
			return err
		}
		for _, s := range sws {
			if s.DPID == want {
				return nil
			}
		}
		return fmt.Errorf("not in %s", b)
	})
}

// vm is a VM of the seed scenario: a namespace with NIC ens8 on the OVS
// bridge, a Linux bridge with containers behind it, and IP forwarding on.
type vm struct {
	node      *netlab.Node
	container *netlab.Node
	ip, mac   string
}

type vmSpec struct {
	name, port, ip, mac string
	bridge, bridgeCIDR  string
	container, ctrIP    string
	ctrGW               string
	// gw is the VM's default gateway (the vSwitch gateway; "" means
	// 10.10.10.1) and bits its prefix length on ens8 (0 means 24).
	gw   string
	bits int
}

var (
	seedVM1 = vmSpec{name: "test1", port: "vnet1", ip: "10.10.10.11", mac: "52:58:00:98:c0:81",
		bridge: "vpc1", bridgeCIDR: "172.18.1.1/24", container: "testns1", ctrIP: "172.18.1.3/24", ctrGW: "172.18.1.1"}
	seedVM2 = vmSpec{name: "test2", port: "vnet3", ip: "10.10.10.12", mac: "52:58:00:98:c0:92",
		bridge: "vpc2", bridgeCIDR: "172.18.3.1/24", container: "testns2", ctrIP: "172.18.3.4/24", ctrGW: "172.18.3.1"}
)

// addVM builds a VM node without its link to OVS. A spec without a
// bridge gives a plain VM: no Linux bridge, no container.
func (f *fabric) addVM(s vmSpec) *vm {
	f.t.Helper()
	ctx := testCtx(f.t)
	n, err := f.lab.AddNode(s.name)
	must(f.t, err)
	v := &vm{node: n, ip: s.ip, mac: s.mac}
	if s.bridge == "" {
		return v
	}
	must(f.t, n.AddLinuxBridge(ctx, s.bridge, s.bridgeCIDR))
	n.MustCmd(f.t, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	v.container, err = f.lab.AddContainer(ctx, n, s.bridge, s.container, "eth0", s.ctrIP, s.ctrGW)
	must(f.t, err)
	return v
}

// plugVM connects the VM's ens8 to the bridge as port s.port and configures
// its address (s.ip/s.bits, default /24) and default route via the vSwitch
// gateway s.gw (default 10.10.10.1).
func (f *fabric) plugVM(v *vm, s vmSpec, bridge string) int {
	f.t.Helper()
	ctx := testCtx(f.t)
	ofport, err := f.lab.LinkToOVS(ctx, v.node, "ens8", s.mac, f.phys, f.ovs, bridge, s.port, true)
	must(f.t, err)
	gw, bits := s.gw, s.bits
	if gw == "" {
		gw = "10.10.10.1"
	}
	if bits == 0 {
		bits = 24
	}
	v.node.MustCmd(f.t, "ip", "addr", "add", fmt.Sprintf("%s/%d", s.ip, bits), "dev", "ens8")
	v.node.MustCmd(f.t, "ip", "route", "add", "default", "via", gw)
	return ofport
}

// ping runs ping in n and returns its output; it fails the test unless
// every reply came back.
func ping(t *testing.T, n *netlab.Node, dst string, count int) string {
	t.Helper()
	out, err := n.Cmd(testCtx(t), "ping", "-n", "-c", fmt.Sprint(count), "-i", "0.2", "-W", "2", dst)
	if err != nil {
		t.Fatalf("ping %s from %s: %v\n%s", dst, n.Name(), err, out)
	}
	if !strings.Contains(out, fmt.Sprintf("%d received", count)) {
		t.Fatalf("ping %s from %s lost packets:\n%s", dst, n.Name(), out)
	}
	return out
}

// pingFails asserts that no reply comes back.
func pingFails(t *testing.T, n *netlab.Node, dst string) {
	t.Helper()
	out, err := n.Cmd(testCtx(t), "ping", "-n", "-c", "2", "-i", "0.2", "-W", "1", dst)
	if err == nil || !strings.Contains(out, " 0 received") {
		t.Fatalf("ping %s from %s should fail, got:\n%s", dst, n.Name(), out)
	}
}

// tcpRoundTrip listens on port inside server and dials it from client; the
// server echoes a 64 KiB payload back.
func tcpRoundTrip(t *testing.T, server, client *netlab.Node, serverIP string, port int) {
	t.Helper()
	ln, err := server.Listen("tcp", fmt.Sprintf("%s:%d", serverIP, port))
	must(t, err)
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		_, err = io.Copy(c, c)
		done <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "tcp", fmt.Sprintf("%s:%d", serverIP, port))
	if err != nil {
		t.Fatalf("TCP %s → %s:%d: %v", client.Name(), serverIP, port, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	payload := bytes.Repeat([]byte("vpcflow-"), 8192)
	go func() {
		_, _ = c.Write(payload)
		_ = c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("TCP %s → %s:%d: reading echo: %v", client.Name(), serverIP, port, err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatalf("TCP %s → %s:%d: echoed %d bytes, want %d", client.Name(), serverIP, port, len(got), len(payload))
	}
	if err := <-done; err != nil {
		t.Fatalf("TCP server in %s: %v", server.Name(), err)
	}
}

// neighMAC returns the MAC the VM's neighbour table holds for ip.
func neighMAC(t *testing.T, n *netlab.Node, ip string) string {
	t.Helper()
	out := n.MustCmd(t, "ip", "neigh", "show", ip, "dev", "ens8")
	f := strings.Fields(out)
	for i := range f {
		if f[i] == "lladdr" && i+1 < len(f) {
			return f[i+1]
		}
	}
	return ""
}

// flowDump returns `ovs-ofctl dump-flows` of bridge, without stats.
func (f *fabric) flowDump(bridge string) []string {
	f.t.Helper()
	lines, err := f.ovs.OfctlDumpFlows(testCtx(f.t), bridge)
	must(f.t, err)
	return lines
}
