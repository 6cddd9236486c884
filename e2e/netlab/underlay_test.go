package netlab

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	testVNI = 5001
	// fabricMAC is what the VMs' static neighbour entries point at, as on
	// Aliyun (every neighbour at ee:ff:ff:ff:ff:ff).
	fabricMAC = "ee:ff:ff:ff:ff:ff"
	vmIf      = "eth0"
	vmPort    = "vnet0"
)

// tunVM is one VM on one chassis.
type tunVM struct {
	c        *Chassis
	vm       *Node
	ip, mac  string
	port     int // the VM's ofport on the integration bridge
	tunnel   int // the chassis's VXLAN ofport
	listener net.Listener
}

// buildChassisLab makes an underlay 192.168.100.0/24 with n chassis
// ch1..chN (tunnel IPs .1..), each with integration bridge br-vpc and one
// VM vmI (10.10.10.1I/24, MTU vmMTU) plugged into it as vnet0. Every VM has
// static neighbour entries for the others at fabricMAC. Chassis are built
// concurrently.
func buildChassisLab(ctx context.Context, t *testing.T, l *Lab, n int, vmMTU int) (*Underlay, []*tunVM) {
	t.Helper()
	u, err := l.AddUnderlay(ctx, "underlay", "192.168.100.0/24")
	mustNoErr(t, err)
	vms := make([]*tunVM, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range vms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := &tunVM{
				ip:  fmt.Sprintf("10.10.10.%d", 11+i),
				mac: fmt.Sprintf("52:54:00:00:00:%02x", 11+i),
			}
			vms[i] = v
			errs[i] = func() error {
				var err error
				if v.c, err = u.AddChassis(ctx, fmt.Sprintf("ch%d", i+1), fmt.Sprintf("192.168.100.%d", i+1), "br-vpc"); err != nil {
					return err
				}
				if v.tunnel, err = v.c.TunnelOFPort(ctx); err != nil {
					return err
				}
				if v.vm, err = l.AddNode(fmt.Sprintf("vm%d", i+1)); err != nil {
					return err
				}
				if v.port, err = l.LinkToOVS(ctx, v.vm, vmIf, v.mac, v.c.Node, v.c.OVS, v.c.Bridge, vmPort, true); err != nil {
					return err
				}
				if err := v.vm.AddAddr(ctx, vmIf, v.ip+"/24"); err != nil {
					return err
				}
				return setVMMTU(ctx, v.vm, vmMTU)
			}()
		}()
	}
	wg.Wait()
	for _, err := range errs {
		mustNoErr(t, err)
	}
	for _, v := range vms {
		for _, w := range vms {
			if v != w {
				v.vm.MustCmd(t, "ip", "neigh", "replace", w.ip, "lladdr", fabricMAC, "dev", vmIf, "nud", "permanent")
			}
		}
	}
	return u, vms
}

func setVMMTU(ctx context.Context, vm *Node, mtu int) error {
	if _, err := vm.Cmd(ctx, "ip", "link", "set", "dev", vmIf, "mtu", strconv.Itoa(mtu)); err != nil {
		return err
	}
	// Forget any path MTU learnt before.
	_, err := vm.Cmd(ctx, "ip", "route", "flush", "cache")
	return err
}

// installTunnelFlows writes the hand-made VXLAN flows on every chassis:
// a VM's packets for another VM go into the tunnel with tun_id=vni and
// tun_dst=<that VM's chassis>; packets out of the tunnel with tun_id=vni
// for the local VM get its MAC and go to its port. Everything else is
// dropped (fail_mode=secure and no other flows).
func installTunnelFlows(ctx context.Context, t *testing.T, vms []*tunVM, vni int) {
	t.Helper()
	for _, v := range vms {
		var flows []string
		for _, w := range vms {
			if w == v {
				continue
			}
			flows = append(flows, fmt.Sprintf(
				"priority=100,in_port=%d,ip,nw_dst=%s actions=set_field:%d->tun_id,set_field:%s->tun_dst,output:%d",
				v.port, w.ip, vni, w.c.TunnelIP, v.tunnel))
		}
		flows = append(flows, fmt.Sprintf(
			"priority=100,in_port=%d,tun_id=%d,ip,nw_dst=%s actions=set_field:%s->eth_src,set_field:%s->eth_dst,output:%d",
			v.tunnel, vni, v.ip, fabricMAC, v.mac, v.port))
		for _, f := range flows {
			_, err := v.c.OVS.Ofctl(ctx, v.c.Bridge, "add-flow", f)
			mustNoErr(t, err)
		}
	}
}

// pingResult classifies a ping run.
type pingResult struct {
	out               string
	sent, received    int
	fragNeeded        bool // an ICMP "Frag needed" came back
	localTooLong      bool // the sender's own kernel refused (local MTU)
	err               error
	transmittedParsed bool
}

var pingStatsRe = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)

func runPing(ctx context.Context, from *Node, args ...string) pingResult {
	out, err := from.Cmd(ctx, append([]string{"ping"}, args...)...)
	r := pingResult{out: out, err: err}
	if m := pingStatsRe.FindStringSubmatch(out); m != nil {
		r.sent, _ = strconv.Atoi(m[1])
		r.received, _ = strconv.Atoi(m[2])
		r.transmittedParsed = true
	}
	r.fragNeeded = strings.Contains(out, "Frag needed")
	r.localTooLong = strings.Contains(out, "message too long")
	return r
}

func (r pingResult) String() string {
	switch {
	case r.localTooLong:
		return "refused locally by the sender (message too long)"
	case r.fragNeeded:
		return fmt.Sprintf("ICMP frag-needed came back (%d/%d received)", r.received, r.sent)
	case r.received == r.sent && r.sent > 0:
		return fmt.Sprintf("got through (%d/%d)", r.received, r.sent)
	case r.received == 0 && r.sent > 0:
		return fmt.Sprintf("dropped silently (0/%d, no ICMP error)", r.sent)
	default:
		return fmt.Sprintf("%d/%d received", r.received, r.sent)
	}
}

// tcpRoundTrip sends n random bytes to an echo server and expects them
// back within timeout.
func tcpRoundTrip(ctx context.Context, from *Node, addr string, n int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := from.Dial(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	payload := make([]byte, n)
	_, _ = rand.Read(payload)
	errc := make(chan error, 1)
	go func() {
		_, err := conn.Write(payload)
		errc <- err
	}()
	got := make([]byte, n)
	if k, err := io.ReadFull(conn, got); err != nil {
		return fmt.Errorf("read echo from %s: %w (after %d of %d bytes)", addr, err, k, n)
	}
	if err := <-errc; err != nil {
		return fmt.Errorf("write to %s: %w", addr, err)
	}
	if !bytes.Equal(got, payload) {
		return errors.New("echo payload differs")
	}
	return nil
}

func startEcho(t *testing.T, vms []*tunVM) {
	t.Helper()
	for _, v := range vms {
		ln, err := v.vm.Listen("tcp", v.ip+":7000")
		mustNoErr(t, err)
		t.Cleanup(func() { ln.Close() })
		v.listener = ln
		go echoServer(ln)
	}
}

// vxlanLine matches the outer header line of a VXLAN packet in tcpdump -v
// output: "192.168.100.1.41234 > 192.168.100.2.4789: VXLAN, flags [I] (0x08), vni 5001".
var vxlanLineRe = regexp.MustCompile(`(\d+\.\d+\.\d+\.\d+)\.\d+ > (\d+\.\d+\.\d+\.\d+)\.4789: VXLAN, flags \[I\] \(0x08\), vni (\d+)`)

// TestUnderlayVXLAN: three chassis on one underlay, a VM on each, and
// hand-written flows that carry VM traffic between chassis in VXLAN with
// one VNI. Ping and TCP work between every pair; the wire shows VXLAN on
// UDP 4789 with that VNI; tun_src on the receiver is the sender's tunnel
// IP and can be matched on.
func TestUnderlayVXLAN(t *testing.T) {
	Require(t, NeedLab, NeedTcpdump)
	t.Parallel()
	ctx := context.Background()
	t0 := time.Now()
	l := New(t)
	u, vms := buildChassisLab(ctx, t, l, 3, 1450)
	t.Logf("TIMING underlay + 3 chassis (OVS, br-phy, br-vpc, vxlan0) + 3 VMs, built concurrently: %v", time.Since(t0))

	// The settings that make userspace VXLAN work.
	a, b, c := vms[0], vms[1], vms[2]
	out, err := a.c.OVS.Vsctl(ctx, "get", "Interface", VXLANPort, "type", "options")
	mustNoErr(t, err)
	if want := `vxlan` + "\n" + `{key=flow, local_ip="192.168.100.1", remote_ip=flow}` + "\n"; out != want {
		t.Fatalf("vxlan0: %q, want %q", out, want)
	}
	out, err = a.c.OVS.Vsctl(ctx, "get", "Bridge", PhyBridge, "datapath_type", "protocols", "fail_mode", "other_config:hwaddr")
	mustNoErr(t, err)
	if want := "netdev\n[OpenFlow13]\nsecure\n\"02:00:c0:a8:64:01\"\n"; out != want {
		t.Fatalf("br-phy: %q, want %q", out, want)
	}
	if mac := strings.TrimSpace(a.c.Node.MustCmd(t, "cat", "/sys/class/net/br-phy/address")); mac != a.c.PhyMAC {
		t.Fatalf("br-phy MAC %s, want %s", mac, a.c.PhyMAC)
	}
	ports, err := a.c.OVS.Appctl(ctx, "tnl/ports/show")
	mustNoErr(t, err)
	if !strings.Contains(ports, "vxlan_sys_4789 (") {
		t.Fatalf("tnl/ports/show: %s", ports)
	}
	if a.tunnel <= 0 || a.port <= 0 || a.tunnel == a.port {
		t.Fatalf("ofports: tunnel %d, vm %d", a.tunnel, a.port)
	}
	if got := u.Chassis(); len(got) != 3 {
		t.Fatalf("%d chassis", len(got))
	}
	// Bad arguments.
	if _, err := u.AddChassis(ctx, "dup", "192.168.100.1", "br-vpc"); err == nil || !strings.Contains(err.Error(), "taken") {
		t.Fatalf("duplicate tunnel IP: %v", err)
	}
	for _, ip := range []string{"10.0.0.1", "192.168.100.0", "192.168.100.255", "bogus"} {
		if _, err := u.AddChassis(ctx, "bad", ip, "br-vpc"); err == nil {
			t.Fatalf("tunnel IP %s accepted", ip)
		}
	}

	installTunnelFlows(ctx, t, vms, testVNI)
	capt, err := u.Capture(ctx, "udp port 4789")
	mustNoErr(t, err)

	// The very first packet towards a chassis whose MAC OVS does not know
	// yet: OVS ARPs for the tunnel IP and drops the packet.
	t1 := time.Now()
	first := runPing(ctx, a.vm, "-c", "1", "-W", "1", b.ip)
	t.Logf("FINDING first packet A->B before OVS knows B's tunnel MAC: %s (%v)", first, time.Since(t1))
	t1 = time.Now()
	mustNoErr(t, u.ResolveTunnelNeighbors(ctx))
	t.Logf("TIMING ResolveTunnelNeighbors (3 chassis): %v", time.Since(t1))
	for _, v := range vms {
		neigh, err := v.c.TunnelNeighbors(ctx)
		mustNoErr(t, err)
		for _, w := range vms {
			if w != v && neigh[w.c.TunnelIP] != w.c.PhyMAC {
				t.Fatalf("%s: tnl/neigh %v lacks %s -> %s", v.c.Name(), neigh, w.c.TunnelIP, w.c.PhyMAC)
			}
		}
	}

	// Ping and TCP between every ordered pair.
	startEcho(t, vms)
	t1 = time.Now()
	for _, v := range vms {
		for _, w := range vms {
			if v == w {
				continue
			}
			r := runPing(ctx, v.vm, "-c", "3", "-i", "0.2", "-W", "2", w.ip)
			if r.received != 3 {
				t.Fatalf("ping %s -> %s: %s\n%s", v.vm.Name(), w.vm.Name(), r, r.out)
			}
			if !strings.Contains(r.out, "ttl=64") {
				t.Fatalf("ping %s -> %s: ttl is not 64 (hand flows do not dec_ttl):\n%s", v.vm.Name(), w.vm.Name(), r.out)
			}
			mustNoErr(t, tcpRoundTrip(ctx, v.vm, v.listenerAddrOf(w), 256<<10, 20*time.Second))
		}
	}
	t.Logf("TIMING 6 ordered pairs x (3 pings + 256 KiB TCP echo): %v", time.Since(t1))

	lines, err := capt.Stop()
	mustNoErr(t, err)
	pkts := JoinPackets(lines)
	t.Logf("capture: %d lines, %d packets; first ones:\n%s", len(lines), len(pkts), strings.Join(head(lines, 12), "\n"))
	seen := map[[2]string]int{}
	for _, line := range lines {
		m := vxlanLineRe.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if m[3] != strconv.Itoa(testVNI) {
			t.Fatalf("VXLAN with vni %s on the wire: %s", m[3], line)
		}
		seen[[2]string{m[1], m[2]}]++
	}
	for _, v := range vms {
		for _, w := range vms {
			if v != w && seen[[2]string{v.c.TunnelIP, w.c.TunnelIP}] == 0 {
				t.Fatalf("no VXLAN vni %d from %s to %s on the underlay; saw %v", testVNI, v.c.TunnelIP, w.c.TunnelIP, seen)
			}
		}
	}
	inner := fmt.Sprintf("%s > %s: ICMP echo request", a.ip, b.ip)
	if !containsSubstr(lines, inner) {
		t.Fatalf("no inner %q in the capture", inner)
	}
	t.Logf("VXLAN packets per (src, dst) tunnel IP: %v", seen)

	// tun_src on the receiver: B accepts tunnel traffic only from A.
	_, err = b.c.OVS.Ofctl(ctx, b.c.Bridge, "add-flow", fmt.Sprintf(
		"priority=300,in_port=%d,tun_src=%s,tun_dst=%s,tun_id=%d,ip,nw_dst=%s actions=set_field:%s->eth_src,set_field:%s->eth_dst,output:%d",
		b.tunnel, a.c.TunnelIP, b.c.TunnelIP, testVNI, b.ip, fabricMAC, b.mac, b.port))
	mustNoErr(t, err)
	_, err = b.c.OVS.Ofctl(ctx, b.c.Bridge, "add-flow", fmt.Sprintf("priority=250,in_port=%d actions=drop", b.tunnel))
	mustNoErr(t, err)
	if r := runPing(ctx, a.vm, "-c", "3", "-i", "0.2", "-W", "2", b.ip); r.received != 3 {
		t.Fatalf("A -> B with a tun_src=A flow on B: %s\n%s", r, r.out)
	}
	if r := runPing(ctx, c.vm, "-c", "2", "-i", "0.2", "-W", "1", b.ip); r.received != 0 {
		t.Fatalf("C -> B got through although B only accepts tun_src=A: %s", r)
	}
	flowsB, err := b.c.OVS.OfctlDumpFlows(ctx, b.c.Bridge)
	mustNoErr(t, err)
	var allowed, dropped []string
	for _, f := range flowsB {
		switch {
		case strings.Contains(f, " priority=300,"):
			allowed = append(allowed, f)
		case strings.Contains(f, " priority=250,"):
			dropped = append(dropped, f)
		}
	}
	if len(allowed) != 1 || !strings.Contains(allowed[0], "n_packets=3,") {
		t.Fatalf("tun_src=A flow on B: %q", allowed)
	}
	if len(dropped) != 1 || !strings.Contains(dropped[0], "n_packets=2,") {
		t.Fatalf("drop flow for other chassis on B: %q", dropped)
	}
	t.Logf("FINDING on B, tun_src=%s matched 3 packets from A; C's 2 packets fell to the drop flow:\n%s\n%s", a.c.TunnelIP, allowed[0], dropped[0])
	dp, err := b.c.OVS.Appctl(ctx, "dpctl/dump-flows")
	mustNoErr(t, err)
	for _, line := range strings.Split(dp, "\n") {
		if strings.Contains(line, "tunnel(") {
			t.Logf("datapath flow on B: %s", line)
		}
	}
	dbg, err := a.c.TunnelDebug(ctx)
	mustNoErr(t, err)
	t.Logf("chassis ch1 tunnel state:\n%s", dbg)

	// options:local_ip is allowed with remote_ip=flow (above); is it
	// needed? Drop it on C: C -> A and A -> C must still work, with C's
	// tunnel IP (the route's SRC) as the outer source.
	_, err = c.c.OVS.Vsctl(ctx, "remove", "Interface", VXLANPort, "options", "local_ip")
	mustNoErr(t, err)
	out, err = c.c.OVS.Vsctl(ctx, "get", "Interface", VXLANPort, "options", "ofport")
	mustNoErr(t, err)
	if want := fmt.Sprintf("{key=flow, remote_ip=flow}\n%d\n", c.tunnel); out != want {
		t.Fatalf("C's vxlan0 without local_ip: %q, want %q", out, want)
	}
	capt2, err := u.Capture(ctx, "udp port 4789 and host "+c.c.TunnelIP)
	mustNoErr(t, err)
	for _, p := range [][2]*tunVM{{c, a}, {a, c}} {
		if r := runPing(ctx, p[0].vm, "-c", "3", "-i", "0.2", "-W", "2", p[1].ip); r.received != 3 {
			t.Fatalf("%s -> %s with no local_ip on C: %s", p[0].vm.Name(), p[1].vm.Name(), r)
		}
		mustNoErr(t, tcpRoundTrip(ctx, p[0].vm, p[1].listener.Addr().String(), 64<<10, 20*time.Second))
	}
	lines, err = capt2.Stop()
	mustNoErr(t, err)
	seen = map[[2]string]int{}
	for _, line := range lines {
		if m := vxlanLineRe.FindStringSubmatch(line); m != nil {
			seen[[2]string{m[1], m[2]}]++
		}
	}
	if seen[[2]string{c.c.TunnelIP, a.c.TunnelIP}] == 0 || seen[[2]string{a.c.TunnelIP, c.c.TunnelIP}] == 0 || len(seen) != 2 {
		t.Fatalf("VXLAN between A and C without local_ip on C: %v", seen)
	}
	t.Logf("FINDING without options:local_ip on C, C<->A still works; outer (src, dst) seen: %v", seen)

	// After all that traffic every OVS still has the right MAC for every
	// peer (the chassis kernels do not answer ARP on ul0: NOARP).
	for _, v := range vms {
		if out := v.c.Node.MustCmd(t, "ip", "link", "show", "dev", ChassisUnderlayIf); !strings.Contains(out, "NOARP") {
			t.Fatalf("%s: %s is not NOARP: %s", v.c.Name(), ChassisUnderlayIf, out)
		}
		neigh, err := v.c.TunnelNeighbors(ctx)
		mustNoErr(t, err)
		for _, w := range vms {
			if w != v && neigh[w.c.TunnelIP] != w.c.PhyMAC {
				t.Fatalf("%s: tnl/neigh %v, want %s -> %s", v.c.Name(), neigh, w.c.TunnelIP, w.c.PhyMAC)
			}
		}
	}
}

func (v *tunVM) listenerAddrOf(w *tunVM) string { return w.listener.Addr().String() }

func containsSubstr(lines []string, s string) bool {
	for _, l := range lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

func head(xs []string, n int) []string {
	if len(xs) > n {
		return xs[:n]
	}
	return xs
}

// TestUnderlayMTU measures what happens to a full-size packet when VXLAN's
// 50 bytes do not fit the underlay: VM MTU 1500 over underlay MTU 1500,
// then VM MTU 1450, then underlay MTU 1550.
func TestUnderlayMTU(t *testing.T) {
	Require(t, NeedLab, NeedTcpdump)
	t.Parallel()
	ctx := context.Background()
	t0 := time.Now()
	l := New(t)
	u, vms := buildChassisLab(ctx, t, l, 2, 1500)
	a, b := vms[0], vms[1]
	installTunnelFlows(ctx, t, vms, testVNI)
	mustNoErr(t, u.ResolveTunnelNeighbors(ctx))
	startEcho(t, vms)
	t.Logf("TIMING 2-chassis lab ready: %v", time.Since(t0))
	capt, err := u.Capture(ctx, "udp port 4789")
	mustNoErr(t, err)

	big := []string{"-M", "do", "-s", "1472", "-c", "3", "-i", "0.3", "-W", "1", b.ip}
	fits := []string{"-M", "do", "-s", "1422", "-c", "3", "-i", "0.3", "-W", "1", b.ip}

	// 1. VM MTU 1500, underlay MTU 1500: the 1500-byte packet becomes a
	// 1550-byte VXLAN packet that ul0 (MTU 1500) cannot send.
	r1500 := runPing(ctx, a.vm, big...)
	t.Logf("FINDING VM MTU 1500, underlay MTU 1500, ping -M do -s 1472: %s\n%s", r1500, r1500.out)
	rFits := runPing(ctx, a.vm, fits...)
	t.Logf("FINDING VM MTU 1500, underlay MTU 1500, ping -M do -s 1422: %s", rFits)
	tcp1500 := tcpRoundTrip(ctx, a.vm, b.listener.Addr().String(), 256<<10, 5*time.Second)
	t.Logf("FINDING VM MTU 1500, underlay MTU 1500, 256 KiB TCP echo: err=%v", tcp1500)
	pmtu := a.vm.MustCmd(t, "ip", "route", "get", b.ip)
	t.Logf("VM A route to B after that (a learnt PMTU would show as 'mtu'): %s", strings.TrimSpace(pmtu))
	stats, err := a.c.OVS.Vsctl(ctx, "get", "Interface", ChassisUnderlayIf, "statistics")
	mustNoErr(t, err)
	t.Logf("ch1 %s statistics (the drops are not counted): %s", ChassisUnderlayIf, strings.TrimSpace(stats))
	dpShow, err := a.c.OVS.Appctl(ctx, "dpctl/show", "-s")
	mustNoErr(t, err)
	t.Logf("ch1 dpctl/show -s:\n%s", dpShow)
	tooLong := 0
	vlog, err := os.ReadFile(a.c.OVS.VswitchdLog())
	mustNoErr(t, err)
	for _, line := range strings.Split(string(vlog), "\n") {
		if strings.Contains(line, "error sending Ethernet packet on "+ChassisUnderlayIf+": Message too long") {
			tooLong++
			if tooLong <= 2 {
				t.Logf("ch1 vswitchd.log: %s", line)
			}
		}
	}
	t.Logf("FINDING ch1 vswitchd.log has %d 'Message too long' warnings for %s (rate-limited)", tooLong, ChassisUnderlayIf)
	if r1500.received != 0 || r1500.fragNeeded || r1500.localTooLong || !r1500.transmittedParsed {
		t.Errorf("VM MTU 1500 over underlay 1500: expected a silent drop, got %s", r1500)
	}
	if tooLong == 0 {
		t.Errorf("no 'Message too long' in ch1's vswitchd log")
	}
	if rFits.received != 3 {
		t.Errorf("1450-byte packets with VM MTU 1500: %s", rFits)
	}
	if tcp1500 == nil {
		t.Errorf("bulk TCP with VM MTU 1500 over underlay 1500 got through: expected a black hole")
	}
	if strings.Contains(pmtu, " mtu ") {
		t.Errorf("VM A learnt a path MTU although nothing told it: %s", pmtu)
	}

	// 2. VM MTU 1450 on both VMs.
	mustNoErr(t, setVMMTU(ctx, a.vm, 1450))
	mustNoErr(t, setVMMTU(ctx, b.vm, 1450))
	r1450 := runPing(ctx, a.vm, big...)
	t.Logf("FINDING VM MTU 1450, underlay MTU 1500, ping -M do -s 1472: %s\n%s", r1450, r1450.out)
	r1450fits := runPing(ctx, a.vm, fits...)
	t.Logf("FINDING VM MTU 1450, underlay MTU 1500, ping -M do -s 1422: %s", r1450fits)
	tcp1450 := tcpRoundTrip(ctx, a.vm, b.listener.Addr().String(), 256<<10, 20*time.Second)
	t.Logf("FINDING VM MTU 1450, underlay MTU 1500, 256 KiB TCP echo: err=%v", tcp1450)
	if !r1450.localTooLong || r1450.received != 0 {
		t.Errorf("1472-byte ping with VM MTU 1450: expected the sender to refuse it, got %s", r1450)
	}
	if r1450fits.received != 3 {
		t.Errorf("1450-byte packets with VM MTU 1450: %s", r1450fits)
	}
	mustNoErr(t, tcp1450)

	// 3. VM MTU 1500, underlay MTU 1550 (jumbo-ish underlay).
	mustNoErr(t, u.SetMTU(ctx, 1550))
	mustNoErr(t, setVMMTU(ctx, a.vm, 1500))
	mustNoErr(t, setVMMTU(ctx, b.vm, 1500))
	r1550 := runPing(ctx, a.vm, big...)
	t.Logf("FINDING VM MTU 1500, underlay MTU 1550, ping -M do -s 1472: %s", r1550)
	tcp1550 := tcpRoundTrip(ctx, a.vm, b.listener.Addr().String(), 256<<10, 20*time.Second)
	t.Logf("FINDING VM MTU 1500, underlay MTU 1550, 256 KiB TCP echo: err=%v", tcp1550)

	lines, err := capt.Stop()
	mustNoErr(t, err)
	maxLen := 0
	lenRe := regexp.MustCompile(`proto UDP \(17\), length (\d+)\)`)
	for _, line := range lines {
		if m := lenRe.FindStringSubmatch(line); m != nil {
			if n, _ := strconv.Atoi(m[1]); n > maxLen {
				maxLen = n
			}
		}
	}
	t.Logf("FINDING largest outer IP packet on the underlay: %d bytes", maxLen)
	if r1550.received != 3 {
		t.Errorf("VM MTU 1500 over underlay MTU 1550: %s", r1550)
	}
	mustNoErr(t, tcp1550)
	if maxLen != 1550 {
		t.Errorf("largest VXLAN packet on the wire is %d bytes, want 1550 (1500 + 50)", maxLen)
	}
}

func TestUnderlayHelpers(t *testing.T) {
	for cidr, want := range map[string]string{
		"192.168.100.0/24": "192.168.100.255",
		"10.0.0.0/8":       "10.255.255.255",
		"10.1.2.4/30":      "10.1.2.7",
		"172.16.0.0/20":    "172.16.15.255",
	} {
		if got := lastAddr(netip.MustParsePrefix(cidr)).String(); got != want {
			t.Errorf("lastAddr(%s) = %s, want %s", cidr, got, want)
		}
	}
	if got := PhyMACFor(netip.MustParseAddr("192.168.100.1")); got != "02:00:c0:a8:64:01" {
		t.Errorf("PhyMACFor = %s", got)
	}
	if got := SegmentIfName("ch1"); got != "ul-ch1" {
		t.Errorf("SegmentIfName(ch1) = %s", got)
	}
	if got := SegmentIfName("a-very-long-chassis"); len(got) > 15 || !strings.HasPrefix(got, "ul-") {
		t.Errorf("SegmentIfName(long) = %s", got)
	}
	neigh := parseTunnelNeighbors(`IP                                            MAC                 Bridge
==========================================================================
192.168.100.2                                 02:00:c0:a8:64:02   br-phy
192.168.100.3                                 02:00:c0:a8:64:03   br-phy
`)
	if len(neigh) != 2 || neigh["192.168.100.3"] != "02:00:c0:a8:64:03" {
		t.Errorf("parseTunnelNeighbors = %v", neigh)
	}
	pkts := JoinPackets([]string{
		"06:57:34.184598 ul-ch1 P   IP (tos 0x0, ttl 64, id 0, offset 0, flags [DF], proto UDP (17), length 134)",
		"    192.168.100.1.49642 > 192.168.100.2.4789: VXLAN, flags [I] (0x08), vni 5001",
		"IP (tos 0x0, ttl 64, id 38320, offset 0, flags [DF], proto ICMP (1), length 84)",
		"    10.10.10.11 > 10.10.10.12: ICMP echo request, id 1, seq 1, length 64",
	})
	if len(pkts) != 2 || !strings.HasSuffix(pkts[0], "vni 5001") || !strings.HasPrefix(pkts[1], "IP (tos") {
		t.Errorf("JoinPackets = %q", pkts)
	}
}

// TestUnderlayVswitchdRestart: restarting one chassis's ovs-vswitchd (and
// killing another's) keeps the underlay: PhyBridge's NORMAL flow comes
// back (a kept flow), the tunnel routes and terminates again, and OVS has
// its peers' MACs before the first packet, so once the test has put its own
// br-vpc flows back, not a single ping between any pair is lost.
func TestUnderlayVswitchdRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := New(t)
	u, vms := buildChassisLab(ctx, t, l, 3, 1450)
	installTunnelFlows(ctx, t, vms, testVNI)
	mustNoErr(t, u.ResolveTunnelNeighbors(ctx))
	allPairs := func(what string) {
		t.Helper()
		for _, v := range vms {
			for _, w := range vms {
				if v == w {
					continue
				}
				if r := runPing(ctx, v.vm, "-c", "2", "-i", "0.2", "-W", "2", w.ip); r.received != 2 {
					t.Fatalf("%s: ping %s -> %s: %s\n%s", what, v.vm.Name(), w.vm.Name(), r, r.out)
				}
			}
		}
	}
	allPairs("before any restart")
	a, b := vms[0], vms[1]
	if got := a.c.OVS.KeptFlows(PhyBridge); len(got) != 1 || got[0] != "priority=0,actions=NORMAL" {
		t.Fatalf("kept flows of %s: %q", PhyBridge, got)
	}

	for _, restart := range []struct {
		name string
		v    *tunVM
		do   func(o *OVS) error
	}{
		{"restart", a, func(o *OVS) error { return o.RestartVswitchd(ctx) }},
		{"kill and start", b, func(o *OVS) error {
			if err := o.KillVswitchd(); err != nil {
				return err
			}
			return o.StartVswitchd(ctx)
		}},
	} {
		t0 := time.Now()
		mustNoErr(t, restart.do(restart.v.c.OVS))
		t.Logf("TIMING %s of %s's ovs-vswitchd until its underlay works: %v", restart.name, restart.v.c.Name(), time.Since(t0))
		phy, err := restart.v.c.OVS.OfctlDumpFlows(ctx, PhyBridge, "--no-stats")
		mustNoErr(t, err)
		if len(phy) != 1 || phy[0] != "priority=0 actions=NORMAL" {
			t.Fatalf("%s after %s: %s flows %q, want the NORMAL flow back", restart.v.c.Name(), restart.name, PhyBridge, phy)
		}
		vpc, err := restart.v.c.OVS.OfctlDumpFlows(ctx, restart.v.c.Bridge)
		mustNoErr(t, err)
		if len(vpc) != 0 {
			t.Fatalf("%s after %s: the test's own %s flows survived: %q", restart.v.c.Name(), restart.name, restart.v.c.Bridge, vpc)
		}
		neigh, err := restart.v.c.TunnelNeighbors(ctx)
		mustNoErr(t, err)
		for _, w := range vms {
			if w != restart.v && neigh[w.c.TunnelIP] != w.c.PhyMAC {
				t.Fatalf("%s after %s: tnl/neigh %v lacks %s", restart.v.c.Name(), restart.name, neigh, w.c.TunnelIP)
			}
		}
		installTunnelFlows(ctx, t, []*tunVM{restart.v}, testVNI) // with no peers: the flow into its VM only
		for _, w := range vms {
			if w == restart.v {
				continue
			}
			for _, f := range []string{
				fmt.Sprintf("priority=100,in_port=%d,ip,nw_dst=%s actions=set_field:%d->tun_id,set_field:%s->tun_dst,output:%d",
					restart.v.port, w.ip, testVNI, w.c.TunnelIP, restart.v.tunnel),
			} {
				_, err := restart.v.c.OVS.Ofctl(ctx, restart.v.c.Bridge, "add-flow", f)
				mustNoErr(t, err)
			}
		}
		allPairs("after " + restart.name + " of " + restart.v.c.Name())
	}
}
