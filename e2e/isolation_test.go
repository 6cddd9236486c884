package e2e

// Tenant isolation: several VPCs with overlapping addresses on one bridge,
// several vSwitches in one VPC, anti-spoofing, longest-prefix match of
// route entries, moving a route entry, deletes refused while in use and
// cascading deletes.
// Every scenario sends real packets through a real Open vSwitch and proves
// where they went (or that they went nowhere) three ways: who answers,
// what tcpdump sees on the receiving VMs, and the n_packets of the flows
// the packets must (or must not) have hit.

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vpcflow/vpcflow/controller"
	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/e2e/netlab"
	"github.com/vpcflow/vpcflow/topology"
)

// ---- REST helpers ----------------------------------------------------------

func (f *fabric) createVPC(name string) topology.VPC {
	f.t.Helper()
	var v topology.VPC
	must(f.t, json.Unmarshal(f.rest("POST", "/v1/vpcs", map[string]any{"name": name}, 201), &v))
	return v
}

// createVSwitch creates a vSwitch; gateway "" leaves it to the default.
func (f *fabric) createVSwitch(vpc, name, cidr, gateway string) topology.VSwitch {
	f.t.Helper()
	body := map[string]any{"name": name, "cidr": cidr}
	if gateway != "" {
		body["gateway"] = gateway
	}
	var w topology.VSwitch
	must(f.t, json.Unmarshal(f.rest("POST", "/v1/vpcs/"+vpc+"/vswitches", body, 201), &w))
	return w
}

// createHost registers the VM of spec s (host name = s.name) on bridge.
func (f *fabric) createHost(vpc, vswitch, bridge string, s vmSpec) topology.Host {
	f.t.Helper()
	var h topology.Host
	must(f.t, json.Unmarshal(f.rest("POST", "/v1/vpcs/"+vpc+"/hosts", map[string]any{
		"name": s.name, "vswitch": vswitch, "ip": s.ip, "mac": s.mac,
		"bridge": bridge, "interface": s.port}, 201), &h))
	return h
}

// createSubnet adds the route entry cidr → host (default name).
func (f *fabric) createSubnet(vpc, cidr, host string) topology.Subnet {
	f.t.Helper()
	var s topology.Subnet
	must(f.t, json.Unmarshal(f.rest("POST", "/v1/vpcs/"+vpc+"/subnets",
		map[string]any{"cidr": cidr, "host": host}, 201), &s))
	return s
}

// switchFlows is GET /v1/switches/{dpid}/flows.
func (f *fabric) switchFlows(dpid uint64) []controller.FlowEntry {
	f.t.Helper()
	var flows []controller.FlowEntry
	must(f.t, json.Unmarshal(f.rest("GET", fmt.Sprintf("/v1/switches/%016x/flows", dpid), nil, 200), &flows))
	return flows
}

// flowSel picks installed flows by table, priority, exact cookie and a
// substring of the match ("" for any).
type flowSel struct {
	table    uint8
	priority uint16
	cookie   uint64
	match    string
}

func (s flowSel) String() string {
	return fmt.Sprintf("table=%d,priority=%d,cookie=%#x,%s", s.table, s.priority, s.cookie, s.match)
}

func (s flowSel) selects(e controller.FlowEntry) bool {
	ck, err := strconv.ParseUint(strings.TrimPrefix(e.Cookie, "0x"), 16, 64)
	return err == nil && e.Table == s.table && e.Priority == s.priority && ck == s.cookie &&
		strings.Contains(e.Match, s.match)
}

// pick returns the one flow of flows sel picks; it fails the test unless
// there is exactly one.
func (f *fabric) pick(flows []controller.FlowEntry, sel flowSel) controller.FlowEntry {
	f.t.Helper()
	var got []controller.FlowEntry
	for _, e := range flows {
		if sel.selects(e) {
			got = append(got, e)
		}
	}
	if len(got) != 1 {
		var b strings.Builder
		for _, e := range flows {
			fmt.Fprintf(&b, "  table=%d priority=%d cookie=%s %s actions=%s n_packets=%d\n",
				e.Table, e.Priority, e.Cookie, e.Match, e.Actions, e.Packets)
		}
		f.t.Fatalf("%d flows match %s, want exactly 1; the switch holds:\n%s", len(got), sel, b.String())
	}
	return got[0]
}

// syncStats makes ovs-vswitchd push the datapath's packet counts into
// its flow counters now, instead of at its next revalidation (up to half a
// second later): two complete revalidation rounds, so that one already
// under way when the packets were sent does not count as the sync.
func (f *fabric) syncStats() {
	f.t.Helper()
	for i := 0; i < 2; i++ {
		_, err := f.ovs.Appctl(testCtx(f.t), "revalidator/wait")
		must(f.t, err)
	}
}

// counters is a synced snapshot of a switch's flows and their n_packets,
// read over REST.
type counters struct {
	f     *fabric
	dpid  uint64
	flows []controller.FlowEntry
}

func (f *fabric) counters(dpid uint64) counters {
	f.t.Helper()
	f.syncStats()
	return counters{f: f, dpid: dpid, flows: f.switchFlows(dpid)}
}

// n is the n_packets of the one flow sel picks.
func (c counters) n(sel flowSel) uint64 {
	c.f.t.Helper()
	return c.f.pick(c.flows, sel).Packets
}

// delta is how many packets the flow sel picks counted since before.
func (c counters) delta(before counters, sel flowSel) uint64 {
	c.f.t.Helper()
	return c.n(sel) - before.n(sel)
}

// drops is GET /v1/drops; call it right after counters (or syncStats) for
// counts that include every packet sent so far.
func (f *fabric) drops() controller.DropReport {
	f.t.Helper()
	var r controller.DropReport
	must(f.t, json.Unmarshal(f.rest("GET", "/v1/drops", nil, 200), &r))
	return r
}

func hostDrops(r controller.DropReport, vpc, name string) controller.DropCounters {
	for _, h := range r.Hosts {
		if h.VPC == vpc && h.Name == name {
			return h.Drops
		}
	}
	return controller.DropCounters{}
}

func switchDrops(r controller.DropReport, dpid uint64) controller.DropCounters {
	for _, s := range r.Switches {
		if uint64(s.DPID) == dpid {
			return s.Drops
		}
	}
	return controller.DropCounters{}
}

// Flow selectors for the pipeline of docs/pipeline.md.
func hostRoute(h topology.Host) flowSel { // table 30: deliver to the VM
	return flowSel{table: 30, priority: 132, cookie: pipeline.HostCookie(h.ID, pipeline.DropNone)}
}

func subnetRoute(s topology.Subnet) flowSel { // table 30: route entry
	return flowSel{table: 30, priority: uint16(100 + s.CIDR.Bits()), cookie: pipeline.SubnetCookie(s.ID, pipeline.DropNone)}
}

func spoofedIP(h topology.Host) flowSel { // table 10: IP from a source the VM does not own
	return flowSel{table: 10, priority: 10, cookie: pipeline.HostCookie(h.ID, pipeline.DropSpoofed), match: "ip"}
}

func spoofedARP(h topology.Host) flowSel { // table 10: ARP with a forged sha/spa
	return flowSel{table: 10, priority: 10, cookie: pipeline.HostCookie(h.ID, pipeline.DropSpoofed), match: "arp"}
}

func spoofedMAC(h topology.Host) flowSel { // table 0: another source MAC on the VM's port
	return flowSel{table: 0, priority: 10, cookie: pipeline.HostCookie(h.ID, pipeline.DropSpoofed)}
}

// vswitchRouteDrop is the system route of a vSwitch: its addresses that no
// host has are dropped (table 30).
func vswitchRouteDrop(w topology.VSwitch) flowSel {
	return flowSel{table: 30, priority: uint16(100 + w.CIDR.Bits()), cookie: pipeline.VSwitchCookie(w.ID, pipeline.DropNoRoute)}
}

// noRouteDrop: what no route covers and no NAT gateway or EIP takes out
// (NATRoute's default, table 31).
var noRouteDrop = flowSel{table: 31, priority: 1, cookie: pipeline.PipelineCookie(pipeline.DropNoRoute)}

// ---- VM helpers ------------------------------------------------------------

// plainVM is a VM without a Linux bridge or containers.
func plainVM(name, port, ip, mac string) vmSpec {
	return vmSpec{name: name, port: port, ip: ip, mac: mac}
}

// addDummy gives the VM a port-less Linux bridge "stub0" holding the given
// addresses: something that answers pings for a route entry's prefix.
// (The "dummy" link type needs a kernel module these machines lack.)
//
// It also sets arp_announce=2. With Linux's default (0), a VM answering
// from such an address while its neighbour entry for the gateway is empty
// asks "who-has 10.10.10.1 tell 172.x.y.z", and SpoofGuard drops that ARP
// (table 10 admits only arp_spa = the VM's own IP), so the answer never
// leaves the VM (a limitation of the SpoofGuard table, reported to the
// controller's owners). 2 makes Linux use the ens8 address as the ARP
// sender.
func addDummy(t *testing.T, n *netlab.Node, cidrs ...string) {
	t.Helper()
	must(t, n.SetSysctl("net.ipv4.conf.all.arp_announce", "2"))
	n.MustCmd(t, "ip", "link", "add", "stub0", "type", "bridge")
	for _, c := range cidrs {
		n.MustCmd(t, "ip", "addr", "add", c, "dev", "stub0")
	}
	n.MustCmd(t, "ip", "link", "set", "stub0", "up")
}

var replyRE = regexp.MustCompile(`bytes from (\S+): icmp_seq=\d+ ttl=(\d+)`)

// pingTTL pings and requires every reply to carry ttl: with TTL left
// alone by the fabric, 64 is an answer from the VM itself, 63 one from a
// container behind it (one forwarding hop).
func pingTTL(t *testing.T, n *netlab.Node, dst string, count, ttl int) string {
	t.Helper()
	out := ping(t, n, dst, count)
	m := replyRE.FindAllStringSubmatch(out, -1)
	if len(m) != count {
		t.Fatalf("ping %s from %s: %d reply lines, want %d:\n%s", dst, n.Name(), len(m), count, out)
	}
	for _, r := range m {
		if r[1] != dst || r[2] != strconv.Itoa(ttl) {
			t.Fatalf("ping %s from %s: reply from %s ttl=%s, want from %s ttl=%d:\n%s", dst, n.Name(), r[1], r[2], dst, ttl, out)
		}
	}
	return out
}

// pingNone runs ping (extra arguments before the destination) and requires
// that not one reply comes back.
func pingNone(t *testing.T, n *netlab.Node, count int, args ...string) string {
	t.Helper()
	argv := append([]string{"ping", "-n", "-c", strconv.Itoa(count), "-i", "0.2", "-W", "1"}, args...)
	out, err := n.Cmd(testCtx(t), argv...)
	if err == nil || !strings.Contains(out, fmt.Sprintf("%d packets transmitted, 0 received", count)) {
		t.Fatalf("%s in %s should get no reply, got (%v):\n%s", strings.Join(argv, " "), n.Name(), err, out)
	}
	return out
}

// rxPackets is the interface's received-packets counter.
func rxPackets(t *testing.T, n *netlab.Node, iface string) uint64 {
	t.Helper()
	var links []struct {
		Stats struct {
			RX struct {
				Packets uint64 `json:"packets"`
			} `json:"rx"`
		} `json:"stats64"`
	}
	must(t, json.Unmarshal([]byte(n.MustCmd(t, "ip", "-s", "-j", "link", "show", "dev", iface)), &links))
	if len(links) != 1 {
		t.Fatalf("ip -s -j link show %s in %s: %d links", iface, n.Name(), len(links))
	}
	return links[0].Stats.RX.Packets
}

// ---- tcpdump ---------------------------------------------------------------

// capture is tcpdump on a VM's ens8, incoming packets only, one line per
// packet (with MACs) in a log file that can be read at any time.
type capture struct {
	t    *testing.T
	node *netlab.Node
	p    *netlab.Process
	log  string
}

var packetLineRE = regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d+ `)

func (f *fabric) startCapture(n *netlab.Node, filter ...string) *capture {
	f.t.Helper()
	log := filepath.Join(f.lab.Dir(), fmt.Sprintf("tcpdump-%s-%d.log", n.Name(), time.Now().UnixNano()))
	// --immediate-mode: hand each packet over at once, not when the
	// kernel's capture block fills or times out (up to a second later).
	args := append([]string{"tcpdump", "-i", "ens8", "-Q", "in", "-n", "-e", "-l", "--immediate-mode"}, filter...)
	p, err := n.Start(context.Background(), log, args...)
	must(f.t, err)
	c := &capture{t: f.t, node: n, p: p, log: log}
	f.t.Cleanup(func() { _ = p.Stop() })
	f.eventually("tcpdump listening in "+n.Name(), 10*time.Second, func() error {
		b, _ := os.ReadFile(log)
		if strings.Contains(string(b), "listening on ens8") {
			return nil
		}
		if p.Exited() {
			f.t.Fatalf("tcpdump in %s exited: %s", n.Name(), b)
		}
		return errors.New("not yet")
	})
	return c
}

// packets returns the captured packet lines so far.
func (c *capture) packets() []string {
	b, err := os.ReadFile(c.log)
	must(c.t, err)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if packetLineRE.MatchString(l) {
			out = append(out, l)
		}
	}
	return out
}

// count is the number of captured packets whose line contains every one
// of the substrings.
func (c *capture) count(substrs ...string) int {
	n := 0
next:
	for _, l := range c.packets() {
		for _, s := range substrs {
			if !strings.Contains(l, s) {
				continue next
			}
		}
		n++
	}
	return n
}

// captureSettle gives tcpdump time to print what has already arrived before a
// "nothing arrived" assertion.
func captureSettle() { time.Sleep(300 * time.Millisecond) }

// waitCount waits until at least n captured packets match substrs
// (tcpdump writes a packet's line a little after it arrived), for at most
// 5 s; the caller then counts exactly.
func (c *capture) waitCount(n int, substrs ...string) {
	deadline := time.Now().Add(5 * time.Second)
	for c.count(substrs...) < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
}

// ---- raw ARP ---------------------------------------------------------------

// arpPacket is an Ethernet + ARP frame (Ethernet source, ARP sender and
// target), as crafted by a VM that lies about who it is.
type arpPacket struct {
	ethSrc, ethDst net.HardwareAddr
	op             uint16
	sha, tha       net.HardwareAddr
	spa, tpa       netip.Addr
}

var (
	broadcastMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	zeroMAC      = net.HardwareAddr{0, 0, 0, 0, 0, 0}
)

func arpRequest(ethSrc, sha string, spa, tpa string) arpPacket {
	return arpPacket{ethSrc: mustMAC(ethSrc), ethDst: broadcastMAC, op: 1, sha: mustMAC(sha), tha: zeroMAC,
		spa: netip.MustParseAddr(spa), tpa: netip.MustParseAddr(tpa)}
}

func mustMAC(s string) net.HardwareAddr {
	hw, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return hw
}

func (a arpPacket) marshal() []byte {
	b := make([]byte, 42)
	copy(b[0:6], a.ethDst)
	copy(b[6:12], a.ethSrc)
	binary.BigEndian.PutUint16(b[12:], unix.ETH_P_ARP)
	binary.BigEndian.PutUint16(b[14:], 1)      // Ethernet
	binary.BigEndian.PutUint16(b[16:], 0x0800) // IPv4
	b[18], b[19] = 6, 4
	binary.BigEndian.PutUint16(b[20:], a.op)
	copy(b[22:28], a.sha)
	spa, tpa := a.spa.As4(), a.tpa.As4()
	copy(b[28:32], spa[:])
	copy(b[32:38], a.tha)
	copy(b[38:42], tpa[:])
	return b
}

func parseARP(b []byte) (arpPacket, bool) {
	if len(b) < 42 || binary.BigEndian.Uint16(b[12:]) != unix.ETH_P_ARP {
		return arpPacket{}, false
	}
	cp := func(s []byte) net.HardwareAddr { return append(net.HardwareAddr(nil), s...) }
	return arpPacket{
		ethDst: cp(b[0:6]), ethSrc: cp(b[6:12]), op: binary.BigEndian.Uint16(b[20:]),
		sha: cp(b[22:28]), spa: netip.AddrFrom4([4]byte(b[28:32])),
		tha: cp(b[32:38]), tpa: netip.AddrFrom4([4]byte(b[38:42])),
	}, true
}

func (a arpPacket) String() string {
	op := map[uint16]string{1: "who-has", 2: "reply"}[a.op]
	return fmt.Sprintf("%s > %s ARP %s tpa=%s tha=%s spa=%s sha=%s", a.ethSrc, a.ethDst, op, a.tpa, a.tha, a.spa, a.sha)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// arpExchange sends the frames out of iface from a raw AF_PACKET socket
// opened inside the node, then collects for listen every ARP reply that
// arrives on iface (the VM kernel's own traffic included; callers filter).
func arpExchange(n *netlab.Node, iface string, frames []arpPacket, listen time.Duration) ([]arpPacket, error) {
	var replies []arpPacket
	err := n.Do(func() error {
		proto := htons(unix.ETH_P_ARP)
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(proto))
		if err != nil {
			return fmt.Errorf("AF_PACKET socket: %w", err)
		}
		defer unix.Close(fd)
		ifi, err := net.InterfaceByName(iface)
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index}); err != nil {
			return fmt.Errorf("bind to %s: %w", iface, err)
		}
		tv := unix.NsecToTimeval(int64(50 * time.Millisecond))
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return err
		}
		for _, fr := range frames {
			if _, err := unix.Write(fd, fr.marshal()); err != nil {
				return fmt.Errorf("send %v: %w", fr, err)
			}
		}
		buf := make([]byte, 2048)
		for deadline := time.Now().Add(listen); time.Now().Before(deadline); {
			nr, from, err := unix.Recvfrom(fd, buf, 0)
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				return fmt.Errorf("recv: %w", err)
			}
			if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
				continue
			}
			if a, ok := parseARP(buf[:nr]); ok && a.op == 2 {
				replies = append(replies, a)
			}
		}
		return nil
	})
	return replies, err
}

// ---- 1. two tenants, same addresses, one bridge --------------------------

// tenant is one VPC of TestTwoTenantsSameAddressesOneBridge: two VMs with
// a container each, the seed's addresses, its own MACs.
type tenant struct {
	vpc     topology.VPC
	s1, s2  vmSpec
	v1, v2  *vm
	h1, h2  topology.Host
	sub1    topology.Subnet // 172.18.1.0/24 → VM 1
	sub3    topology.Subnet // 172.18.3.0/24 → VM 2
	cap1    *capture
	cap2    *capture
	tcpPort int
}

func tenantSpecs(p string, firstPort int, macByte string) (vmSpec, vmSpec) {
	s1 := vmSpec{name: p + "1", port: fmt.Sprintf("vnet%d", firstPort), ip: "10.10.10.11", mac: "52:58:00:" + macByte + ":00:11",
		bridge: "vpc1", bridgeCIDR: "172.18.1.1/24", container: p + "1c", ctrIP: "172.18.1.3/24", ctrGW: "172.18.1.1"}
	s2 := vmSpec{name: p + "2", port: fmt.Sprintf("vnet%d", firstPort+1), ip: "10.10.10.12", mac: "52:58:00:" + macByte + ":00:12",
		bridge: "vpc2", bridgeCIDR: "172.18.3.1/24", container: p + "2c", ctrIP: "172.18.3.4/24", ctrGW: "172.18.3.1"}
	return s1, s2
}

// routes are the four table-30 flows of the tenant.
func (tn *tenant) routes() []flowSel {
	return []flowSel{hostRoute(tn.h1), hostRoute(tn.h2), subnetRoute(tn.sub1), subnetRoute(tn.sub3)}
}

// traffic runs the tenant's own traffic: containers and VMs, ping and
// TCP, both ways. Each of its four routes carries at least 6 packets
// (3 echo requests or replies each way).
func (tn *tenant) traffic(t *testing.T) {
	t.Helper()
	pingTTL(t, tn.v1.container, "172.18.3.4", 3, 62)
	pingTTL(t, tn.v2.container, "172.18.1.3", 3, 62)
	pingTTL(t, tn.v1.node, "10.10.10.12", 3, 64)
	pingTTL(t, tn.v2.node, "10.10.10.11", 3, 64)
	tcpRoundTrip(t, tn.v2.container, tn.v1.container, "172.18.3.4", tn.tcpPort)
	tcpRoundTrip(t, tn.v1.container, tn.v2.container, "172.18.1.3", tn.tcpPort+1)
	tcpRoundTrip(t, tn.v2.node, tn.v1.node, "10.10.10.12", tn.tcpPort+2)
	tcpRoundTrip(t, tn.v1.node, tn.v2.node, "10.10.10.11", tn.tcpPort+3)
}

var tenantBPortRE = regexp.MustCompile(`\.600[1-4][: ]`)

// TestTwoTenantsSameAddressesOneBridge puts two VPCs with identical
// vSwitches, VM addresses and container subnets on one bridge. Each tenant
// talks to itself; not one packet crosses to the other, not even when a VM
// addresses the other tenant's MAC directly.
func TestTwoTenantsSameAddressesOneBridge(t *testing.T) {
	start := time.Now()
	f := newFabric(t)
	dpid := f.addBridge("br-test")
	a := &tenant{tcpPort: 5001}
	b := &tenant{tcpPort: 6001}
	a.s1, a.s2 = tenantSpecs("a", 1, "aa")
	b.s1, b.s2 = tenantSpecs("b", 3, "bb")
	for _, tn := range []*tenant{a, b} {
		tn.v1, tn.v2 = f.addVM(tn.s1), f.addVM(tn.s2)
		f.plugVM(tn.v1, tn.s1, "br-test")
		f.plugVM(tn.v2, tn.s2, "br-test")
	}
	a.vpc, b.vpc = f.createVPC("tenant-a"), f.createVPC("tenant-b")
	if a.vpc.ID == b.vpc.ID {
		t.Fatalf("both VPCs got id %d", a.vpc.ID)
	}
	for _, tn := range []*tenant{a, b} {
		f.createVSwitch(tn.vpc.Name, "vsw", "10.10.10.0/24", "10.10.10.1")
		tn.h1 = f.createHost(tn.vpc.Name, "vsw", "br-test", tn.s1)
		tn.h2 = f.createHost(tn.vpc.Name, "vsw", "br-test", tn.s2)
		tn.sub1 = f.createSubnet(tn.vpc.Name, "172.18.1.0/24", tn.s1.name)
		tn.sub3 = f.createSubnet(tn.vpc.Name, "172.18.3.0/24", tn.s2.name)
	}
	// A route entry only tenant B has, to an address only b2 holds.
	addDummy(t, b.v2.node, "172.20.0.1/24")
	bOnly := f.createSubnet(b.vpc.Name, "172.20.0.0/24", "b2")
	t.Logf("setup %.1fs: VPC %s id %d, VPC %s id %d", time.Since(start).Seconds(), a.vpc.Name, a.vpc.ID, b.vpc.Name, b.vpc.ID)

	// The same addresses and prefixes exist twice in table 30, told apart
	// only by the VPC id in metadata.
	flows := f.switchFlows(dpid)
	for _, tn := range []*tenant{a, b} {
		for _, sel := range tn.routes() {
			e := f.pick(flows, sel)
			if want := fmt.Sprintf("metadata=%#x/0xffffffff", tn.vpc.ID); !strings.Contains(e.Match, want) {
				t.Errorf("flow %s: match %q lacks %s", sel, e.Match, want)
			}
		}
	}

	for _, tn := range []*tenant{a, b} {
		tn.cap1 = f.startCapture(tn.v1.node, "ip")
		tn.cap2 = f.startCapture(tn.v2.node, "ip")
	}
	rxB1, rxB2 := rxPackets(t, b.v1.node, "ens8"), rxPackets(t, b.v2.node, "ens8")

	// Phase A: tenant A's traffic; B is idle and must receive nothing.
	phase := time.Now()
	c0 := f.counters(dpid)
	a.traffic(t)
	c1 := f.counters(dpid)
	if got := a.cap2.count("> 172.18.3.4: ICMP echo request"); got != 3 {
		t.Errorf("a2 saw %d echo requests for its container, want 3", got)
	}
	if got := a.cap2.count("10.10.10.11 > 10.10.10.12: ICMP echo request"); got != 3 {
		t.Errorf("a2 saw %d echo requests from a1, want 3", got)
	}
	for _, c := range []*capture{b.cap1, b.cap2} {
		if pk := c.packets(); len(pk) != 0 {
			t.Errorf("%s (tenant B) received %d IP packets during tenant A's traffic:\n%s", c.node.Name(), len(pk), strings.Join(pk, "\n"))
		}
	}
	dB1, dB2 := rxPackets(t, b.v1.node, "ens8")-rxB1, rxPackets(t, b.v2.node, "ens8")-rxB2
	if dB1 != 0 || dB2 != 0 {
		t.Errorf("tenant B's NICs received packets during tenant A's traffic: b1 +%d, b2 +%d", dB1, dB2)
	}
	var aSeen, bSeen []uint64
	for i := range 4 {
		aSeen = append(aSeen, c1.delta(c0, a.routes()[i]))
		bSeen = append(bSeen, c1.delta(c0, b.routes()[i]))
		if aSeen[i] < 6 || bSeen[i] != 0 {
			t.Errorf("phase A: %s +%d (want ≥ 6), tenant B's twin %s +%d (want 0)", a.routes()[i], aSeen[i], b.routes()[i], bSeen[i])
		}
	}
	t.Logf("phase A, tenant A's traffic (%.1fs): a2 received %d IP packets (tcpdump); n_packets of A's routes "+
		"a1 /32, a2 /32, 172.18.1.0/24, 172.18.3.0/24: %v. Tenant B: b1 %d / b2 %d packets by tcpdump, rx_packets +%d/+%d, its routes %v",
		time.Since(phase).Seconds(), len(a.cap2.packets()), aSeen, len(b.cap1.packets()), len(b.cap2.packets()), dB1, dB2, bSeen)

	// Phase B: the mirror image.
	phase = time.Now()
	seenA1, seenA2 := len(a.cap1.packets()), len(a.cap2.packets())
	b.traffic(t)
	c2 := f.counters(dpid)
	if got := b.cap2.count("> 172.18.3.4: ICMP echo request"); got != 3 {
		t.Errorf("b2 saw %d echo requests for its container, want 3", got)
	}
	// A's VMs are idle now; anything new on them would be B's (B's TCP
	// ports are 6001-6004).
	for _, c := range []struct {
		cap  *capture
		seen int
	}{{a.cap1, seenA1}, {a.cap2, seenA2}} {
		for _, l := range c.cap.packets()[c.seen:] {
			if strings.Contains(l, "echo request") || tenantBPortRE.MatchString(l) {
				t.Errorf("%s (tenant A) received tenant B's packet: %s", c.cap.node.Name(), l)
			}
		}
	}
	aSeen, bSeen = nil, nil
	for i := range 4 {
		aSeen = append(aSeen, c2.delta(c1, a.routes()[i]))
		bSeen = append(bSeen, c2.delta(c1, b.routes()[i]))
		if bSeen[i] < 6 || aSeen[i] != 0 {
			t.Errorf("phase B: %s +%d (want ≥ 6), tenant A's twin %s +%d (want 0)", b.routes()[i], bSeen[i], a.routes()[i], aSeen[i])
		}
	}
	t.Logf("phase B, tenant B's traffic (%.1fs): B's routes %v, A's routes %v; A's VMs got no echo request and no TCP of B",
		time.Since(phase).Seconds(), bSeen, aSeen)

	// Phase C: a1 points 10.10.10.12 at b2's MAC. The fabric decides by
	// the VPC in metadata, not by the destination MAC: the packets land at
	// a2 (with a2's MAC written in), never at b2.
	a1 := a.v1.node
	captureSettle()
	a1.MustCmd(t, "ip", "neigh", "replace", "10.10.10.12", "lladdr", b.s2.mac, "dev", "ens8", "nud", "permanent")
	if got := neighMAC(t, a1, "10.10.10.12"); got != b.s2.mac {
		t.Fatalf("a1's neighbour entry for 10.10.10.12 is %q, want b2's %s", got, b.s2.mac)
	}
	seenA2, seenB2 := a.cap2.count("10.10.10.11 > 10.10.10.12: ICMP echo request", "ee:ff:ff:ff:ff:ff > "+a.s2.mac), len(b.cap2.packets())
	rxB2 = rxPackets(t, b.v2.node, "ens8")
	pingTTL(t, a1, "10.10.10.12", 3, 64)
	c3 := f.counters(dpid)
	if got := a.cap2.count("10.10.10.11 > 10.10.10.12: ICMP echo request", "ee:ff:ff:ff:ff:ff > "+a.s2.mac) - seenA2; got != 3 {
		t.Errorf("a2 got %d of the 3 echo requests a1 sent to b2's MAC (rewritten to %s)", got, a.s2.mac)
	}
	if pk := b.cap2.packets()[seenB2:]; len(pk) != 0 {
		t.Errorf("b2 received a1's packets sent to its MAC:\n%s", strings.Join(pk, "\n"))
	}
	if d := rxPackets(t, b.v2.node, "ens8") - rxB2; d != 0 {
		t.Errorf("b2's rx_packets grew by %d while a1 sent to its MAC", d)
	}
	dA2, dB2 := c3.delta(c2, hostRoute(a.h2)), c3.delta(c2, hostRoute(b.h2))
	if dA2 != 3 || dB2 != 0 {
		t.Errorf("a1 → 10.10.10.12 at b2's MAC ×3: host route a2 +%d, b2 +%d; want 3, 0", dA2, dB2)
	}
	t.Logf("phase C: a1 → 10.10.10.12 with dl_dst=%s (b2's MAC): a2 answered all 3 (its /32 +%d), b2 received 0 (its /32 +%d, rx_packets +0)",
		b.s2.mac, dA2, dB2)

	// Phase D: 172.20.0.0/24 is routed in B only. B reaches it; from A
	// (even with the gateway pinned to b2's MAC) it is "no route".
	pingTTL(t, b.v1.node, "172.20.0.1", 2, 64)
	captureSettle()
	a1.MustCmd(t, "ip", "neigh", "replace", "10.10.10.1", "lladdr", b.s2.mac, "dev", "ens8", "nud", "permanent")
	seenB2 = len(b.cap2.packets())
	c4 := f.counters(dpid)
	d0 := f.drops()
	pingNone(t, a1, 3, "172.20.0.1")
	pingNone(t, a.v1.container, 3, "172.20.0.1")
	c5 := f.counters(dpid)
	d1 := f.drops()
	nr, bo := c5.delta(c4, noRouteDrop), c5.delta(c4, subnetRoute(bOnly))
	if nr != 6 || bo != 0 {
		t.Errorf("6 pings from tenant A to 172.20.0.1: no-route drop flow +%d, B's 172.20.0.0/24 +%d; want 6, 0", nr, bo)
	}
	if pk := b.cap2.packets()[seenB2:]; len(pk) != 0 {
		t.Errorf("b2 received tenant A's packets for 172.20.0.1:\n%s", strings.Join(pk, "\n"))
	}
	nrREST := switchDrops(d1, dpid)["no_route"] - switchDrops(d0, dpid)["no_route"]
	if nrREST != 6 {
		t.Errorf("GET /v1/drops: switch no_route +%d, want 6", nrREST)
	}
	t.Logf("phase D: b1 reaches B-only 172.20.0.1; 6 pings from tenant A (a1 and its container): 0 answered, "+
		"no-route flow +%d, GET /v1/drops no_route +%d, B's route +%d, b2 got 0. Total %.1fs",
		nr, nrREST, bo, time.Since(start).Seconds())
}

// ---- 2. two vSwitches in one VPC ------------------------------------------

// TestCrossVSwitch routes between two vSwitches of one VPC, each VM using
// its own vSwitch's gateway, and through route entries whose next hop is
// in the other vSwitch.
func TestCrossVSwitch(t *testing.T) {
	start := time.Now()
	f := newFabric(t)
	dpid := f.addBridge("br-test")
	s1 := vmSpec{name: "x1", port: "vnet1", ip: "10.10.10.11", mac: "52:58:00:98:c0:81",
		bridge: "vpc1", bridgeCIDR: "172.18.1.1/24", container: "x1c", ctrIP: "172.18.1.3/24", ctrGW: "172.18.1.1"}
	s2 := vmSpec{name: "x2", port: "vnet3", ip: "10.10.20.12", mac: "52:58:00:98:c0:92", gw: "10.10.20.253",
		bridge: "vpc2", bridgeCIDR: "172.18.3.1/24", container: "x2c", ctrIP: "172.18.3.4/24", ctrGW: "172.18.3.1"}
	x1, x2 := f.addVM(s1), f.addVM(s2)
	f.plugVM(x1, s1, "br-test")
	f.plugVM(x2, s2, "br-test")

	f.createVPC("vpc-x")
	wa := f.createVSwitch("vpc-x", "vsw-a", "10.10.10.0/24", "10.10.10.1")
	wb := f.createVSwitch("vpc-x", "vsw-b", "10.10.20.0/24", "")
	if wa.Gateway.String() != "10.10.10.1" {
		t.Errorf("vsw-a gateway %s, want the given 10.10.10.1", wa.Gateway)
	}
	if wb.Gateway.String() != "10.10.20.253" {
		t.Fatalf("vsw-b created without a gateway answered gateway %s, want 10.10.20.253 (broadcast − 2)", wb.Gateway)
	}
	var got topology.VSwitch
	must(t, json.Unmarshal(f.rest("GET", "/v1/vpcs/vpc-x/vswitches/vsw-b", nil, 200), &got))
	if got.Gateway.String() != "10.10.20.253" {
		t.Errorf("GET vsw-b: gateway %s, want 10.10.20.253", got.Gateway)
	}
	h1 := f.createHost("vpc-x", "vsw-a", "br-test", s1)
	h2 := f.createHost("vpc-x", "vsw-b", "br-test", s2)
	sub1 := f.createSubnet("vpc-x", "172.18.1.0/24", "x1")
	sub3 := f.createSubnet("vpc-x", "172.18.3.0/24", "x2")
	t.Logf("setup %.1fs; vsw-b created without a gateway: REST answered gateway %s", time.Since(start).Seconds(), wb.Gateway)

	// VM to VM across vSwitches, each through its own gateway.
	c0 := f.counters(dpid)
	pingTTL(t, x1.node, "10.10.20.12", 3, 64)
	pingTTL(t, x2.node, "10.10.10.11", 3, 64)
	tcpRoundTrip(t, x2.node, x1.node, "10.10.20.12", 5001)
	tcpRoundTrip(t, x1.node, x2.node, "10.10.10.11", 5002)
	c1 := f.counters(dpid)
	for _, c := range []struct {
		n       *netlab.Node
		gw, dst string
	}{{x1.node, "10.10.10.1", "10.10.20.12"}, {x2.node, "10.10.20.253", "10.10.10.11"}} {
		if mac := neighMAC(t, c.n, c.gw); mac != topology.GatewayMACString {
			t.Errorf("%s: gateway %s at %q, want %s", c.n.Name(), c.gw, mac, topology.GatewayMACString)
		}
		route := c.n.MustCmd(t, "ip", "route", "get", c.dst)
		if !strings.Contains(route, "via "+c.gw) {
			t.Errorf("%s routes to the other vSwitch not via its gateway %s: %s", c.n.Name(), c.gw, route)
		}
	}
	d2, d1 := c1.delta(c0, hostRoute(h2)), c1.delta(c0, hostRoute(h1))
	if d2 < 6 || d1 < 6 {
		t.Errorf("host routes x2 +%d, x1 +%d; want ≥ 6 each", d2, d1)
	}
	t.Logf("VM↔VM across vSwitches: ping 3+3 (ttl=64), TCP 64 KiB both ways; n_packets x2 /32 +%d, x1 /32 +%d", d2, d1)

	// Containers: route entries whose next hop sits in the other vSwitch.
	pingTTL(t, x1.container, "172.18.3.4", 3, 62)
	pingTTL(t, x2.container, "172.18.1.3", 3, 62)
	tcpRoundTrip(t, x2.container, x1.container, "172.18.3.4", 5003)
	tcpRoundTrip(t, x1.container, x2.container, "172.18.1.3", 5004)
	c2 := f.counters(dpid)
	n3, n1 := c2.delta(c1, subnetRoute(sub3)), c2.delta(c1, subnetRoute(sub1))
	if n3 < 6 || n1 < 6 {
		t.Errorf("routes 172.18.3.0/24 +%d, 172.18.1.0/24 +%d; want ≥ 6 each", n3, n1)
	}
	t.Logf("container↔container (ttl=62) via route entries in the other vSwitch: 172.18.3.0/24 → x2 +%d, 172.18.1.0/24 → x1 +%d", n3, n1)

	// The ARP responder answers within the asker's own vSwitch only: x1
	// asking for vsw-b's gateway or for x2 gets nothing.
	f.syncStats()
	dr0 := f.drops()
	replies, err := arpExchange(x1.node, "ens8", []arpPacket{
		arpRequest(s1.mac, s1.mac, "10.10.10.11", "10.10.10.1"),
		arpRequest(s1.mac, s1.mac, "10.10.10.11", "10.10.20.253"),
		arpRequest(s1.mac, s1.mac, "10.10.10.11", "10.10.20.12"),
	}, time.Second)
	must(t, err)
	var answered []string
	for _, r := range replies {
		if r.tpa.String() == "10.10.10.11" {
			answered = append(answered, r.spa.String())
		}
	}
	if fmt.Sprint(answered) != "[10.10.10.1]" {
		t.Errorf("x1's ARP for 10.10.10.1, 10.10.20.253, 10.10.20.12: answered for %v, want only [10.10.10.1]; replies: %v", answered, replies)
	}
	// They end in table 20's default drop, a pipeline flow: the switch's
	// counter counts them.
	f.syncStats()
	dr1 := f.drops()
	ana := switchDrops(dr1, dpid)["arp_not_answered"] - switchDrops(dr0, dpid)["arp_not_answered"]
	if ana != 2 {
		t.Errorf("GET /v1/drops: switch arp_not_answered +%d, want 2", ana)
	}
	t.Logf("x1's raw ARP requests: answered only for its own gateway (%v); arp_not_answered +%d; total %.1fs",
		answered, ana, time.Since(start).Seconds())
}

// ---- 3. anti-spoofing ------------------------------------------------------

var seedVM3 = plainVM("test3", "vnet5", "10.10.10.13", "52:58:00:98:c0:a3")

// TestAntiSpoofing: a VM that forges ARP, steals a neighbour's IP or
// changes its MAC gets nothing through, and the drop counters say so.
func TestAntiSpoofing(t *testing.T) {
	start := time.Now()
	s := newSeed(t)
	vm3 := s.addVM(seedVM3)
	s.plugVM(vm3, seedVM3, "br-test")
	s.createHost("vpc-seed", "vsw-a", "br-test", seedVM3)
	var h1 topology.Host
	must(t, json.Unmarshal(s.rest("GET", "/v1/vpcs/vpc-seed/hosts/test1", nil, 200), &h1))
	vm1 := s.vm1.node
	pingTTL(t, vm1, "10.10.10.13", 2, 64)
	cap2 := s.startCapture(s.vm2.node)
	cap3 := s.startCapture(vm3.node)
	t.Logf("setup %.1fs (seed + test3)", time.Since(start).Seconds())

	// (c) forged ARP, first, while every spoof counter is still 0.
	c0 := s.counters(s.dpid)
	d0 := s.drops()
	const n = 4
	var frames []arpPacket
	// Control: honest requests for an unused address of the vSwitch.
	for range 3 {
		frames = append(frames, arpRequest(seedVM1.mac, seedVM1.mac, "10.10.10.11", "10.10.10.200"))
	}
	for range n {
		frames = append(frames,
			// test2's IP as sender, test1's own MAC.
			arpRequest(seedVM1.mac, seedVM1.mac, "10.10.10.12", "10.10.10.201"),
			// test1's IP, test2's MAC as sender hardware address.
			arpRequest(seedVM1.mac, seedVM2.mac, "10.10.10.11", "10.10.10.202"),
			// Full impersonation of test2: its MAC on the wire, its IP.
			arpRequest(seedVM2.mac, seedVM2.mac, "10.10.10.12", "10.10.10.203"))
	}
	replies, err := arpExchange(vm1, "ens8", frames, 1500*time.Millisecond)
	must(t, err)
	byAsked := map[string]int{}
	for _, r := range replies {
		if strings.HasPrefix(r.spa.String(), "10.10.10.20") {
			byAsked[r.spa.String()]++
		}
		if r.spa.String() == "10.10.10.200" && (r.sha.String() != topology.GatewayMACString || r.tpa.String() != "10.10.10.11" ||
			r.ethDst.String() != seedVM1.mac || r.tha.String() != seedVM1.mac) {
			t.Errorf("control ARP reply is malformed: %v", r)
		}
	}
	if byAsked["10.10.10.200"] != 3 {
		t.Fatalf("the 3 honest ARP requests got %d replies (%v): the raw socket method does not work", byAsked["10.10.10.200"], replies)
	}
	for _, ip := range []string{"10.10.10.201", "10.10.10.202", "10.10.10.203"} {
		if byAsked[ip] != 0 {
			t.Errorf("a forged ARP request (asking for %s) was answered %d times", ip, byAsked[ip])
		}
	}
	const forged = 3 * n
	c1 := s.counters(s.dpid)
	d1 := s.drops()
	arpDrops, macDrops := c1.delta(c0, spoofedARP(h1)), c1.delta(c0, spoofedMAC(h1))
	if arpDrops != 2*n || macDrops != n {
		t.Errorf("drop flows of test1: table 10 ARP +%d (want %d: forged spa or sha), table 0 +%d (want %d: forged MAC)", arpDrops, 2*n, macDrops, n)
	}
	hostSp := hostDrops(d1, "vpc-seed", "test1")["spoofed"] - hostDrops(d0, "vpc-seed", "test1")["spoofed"]
	swSp := switchDrops(d1, s.dpid)["spoofed"] - switchDrops(d0, s.dpid)["spoofed"]
	if hostSp < forged || swSp < forged {
		t.Errorf("GET /v1/drops spoofed: host test1 +%d, switch +%d; want ≥ %d each", hostSp, swSp, forged)
	}
	if got := hostDrops(d1, "vpc-seed", "test2")["spoofed"]; got != hostDrops(d0, "vpc-seed", "test2")["spoofed"] {
		t.Errorf("test2 was charged with spoofed drops (%d) for test1's impersonation of it", got)
	}
	captureSettle()
	if c := cap2.count("ARP"); c != 0 {
		t.Errorf("test2 received %d ARP packets", c)
	}
	t.Logf("(c) forged ARP from test1: %d sent (%d each with spa=test2's IP, sha=test2's MAC, eth src+sha+spa=test2's), 0 answered; "+
		"3 honest ones all answered. Drop flows: table 10 arp +%d, table 0 +%d. GET /v1/drops spoofed: host test1 %d → %d, switch %d → %d",
		forged, n, arpDrops, macDrops, hostDrops(d0, "vpc-seed", "test1")["spoofed"], hostDrops(d1, "vpc-seed", "test1")["spoofed"],
		switchDrops(d0, s.dpid)["spoofed"], switchDrops(d1, s.dpid)["spoofed"])

	// (a) test1 takes test2's address (and one of test2's container
	// subnet) and sends from it. The neighbour entry is pinned so that the
	// packets do leave test1: SpoofGuard must drop them.
	vm1.MustCmd(t, "ip", "neigh", "replace", "10.10.10.13", "lladdr", topology.GatewayMACString, "dev", "ens8", "nud", "permanent")
	vm1.MustCmd(t, "ip", "addr", "add", "10.10.10.12/32", "dev", "ens8")
	vm1.MustCmd(t, "ip", "addr", "add", "172.18.3.9/32", "dev", "ens8")
	pingNone(t, vm1, 3, "-I", "10.10.10.12", "10.10.10.13")
	pingNone(t, vm1, 3, "-I", "172.18.3.9", "10.10.10.13")
	c2 := s.counters(s.dpid)
	ipDrops := c2.delta(c1, spoofedIP(h1))
	if ipDrops != 6 {
		t.Errorf("6 pings from stolen sources: SpoofGuard ip drop of test1 +%d, want 6", ipDrops)
	}
	if c := cap3.count("ICMP echo request"); c != 0 {
		t.Errorf("test3 received %d of the spoofed echo requests", c)
	}
	if c := cap2.count("ICMP"); c != 0 {
		t.Errorf("test2 (whose address was stolen) received %d ICMP packets", c)
	}
	vm1.MustCmd(t, "ip", "addr", "del", "10.10.10.12/32", "dev", "ens8")
	vm1.MustCmd(t, "ip", "addr", "del", "172.18.3.9/32", "dev", "ens8")
	pingTTL(t, vm1, "10.10.10.13", 2, 64)
	t.Logf("(a) 6 pings from stolen sources 10.10.10.12 and 172.18.3.9: 0 replies, test3 and test2 saw none, SpoofGuard ip drop +%d; own source works again", ipDrops)

	// (b) test1 changes its MAC: nothing gets through; restored, all works.
	// The two honest echo requests just above must be in the capture
	// before it is counted (tcpdump writes a line a little after the
	// packet: one counted late was once taken for a spoofed one).
	cap3.waitCount(2, "10.10.10.11 > 10.10.10.13: ICMP echo request")
	seen3 := cap3.count("ICMP echo request")
	c3 := s.counters(s.dpid)
	vm1.MustCmd(t, "ip", "link", "set", "ens8", "address", "52:58:00:00:00:66")
	pingNone(t, vm1, 3, "10.10.10.13")
	pingNone(t, s.vm1.container, 3, "172.18.3.4")
	c4 := s.counters(s.dpid)
	// 3 IP packets to test3 (pinned neighbour), then the container's
	// traffic: at least one ARP for the gateway from the new MAC.
	macDrops = c4.delta(c3, spoofedMAC(h1))
	if macDrops < 4 {
		t.Errorf("with a changed MAC: classifier drop of test1 +%d, want ≥ 4", macDrops)
	}
	if c := cap3.count("ICMP echo request") - seen3; c != 0 {
		t.Errorf("test3 received %d echo requests from test1's new MAC", c)
	}
	vm1.MustCmd(t, "ip", "link", "set", "ens8", "address", seedVM1.mac)
	pingTTL(t, vm1, "10.10.10.13", 2, 64)
	pingTTL(t, s.vm1.container, "172.18.3.4", 2, 62)
	cap3.waitCount(2+2, "10.10.10.11 > 10.10.10.13: ICMP echo request")
	captureSettle()
	if c := cap3.count("10.10.10.11 > 10.10.10.13: ICMP echo request"); c != 2+2 {
		t.Errorf("test3 saw %d echo requests from test1 since the capture started, want 4 (the honest ones only)", c)
	}
	s.syncStats()
	d2 := s.drops()
	t.Logf("(b) MAC 52:58:00:00:00:66: 6 pings, 0 replies, classifier drop +%d; MAC restored: ping and container ping work. "+
		"Spoofed drops now: host test1 %d, switch %d; total %.1fs",
		macDrops, hostDrops(d2, "vpc-seed", "test1")["spoofed"], switchDrops(d2, s.dpid)["spoofed"], time.Since(start).Seconds())
}

// ---- 4. longest prefix match ----------------------------------------------

// lpmLab is the topology of TestLongestPrefixMatch and TestMoveSubnet: VM 1
// (plain, with stub addresses), VM 2 (seed-like, container 172.18.3.4)
// and VM 3 (plain, the client), all in vsw-a of vpc-lpm.
type lpmLab struct {
	*fabric
	dpid         uint64
	v1, v2, v3   *vm
	h1, h2, h3   topology.Host
	port1, port2 int
	cap1, cap2   *capture
}

func newLPMLab(t *testing.T, stub ...string) *lpmLab {
	f := newFabric(t)
	l := &lpmLab{fabric: f}
	l.dpid = f.addBridge("br-test")
	sp1 := plainVM("vm1", "vnet1", "10.10.10.11", "52:58:00:98:c0:81")
	sp2 := seedVM2
	sp2.name, sp2.container = "vm2", "vm2c"
	sp3 := plainVM("vm3", "vnet5", "10.10.10.13", "52:58:00:98:c0:a3")
	l.v1, l.v2, l.v3 = f.addVM(sp1), f.addVM(sp2), f.addVM(sp3)
	l.port1 = f.plugVM(l.v1, sp1, "br-test")
	l.port2 = f.plugVM(l.v2, sp2, "br-test")
	f.plugVM(l.v3, sp3, "br-test")
	addDummy(t, l.v1.node, stub...)
	f.createVPC("vpc-lpm")
	f.createVSwitch("vpc-lpm", "vsw-a", "10.10.10.0/24", "10.10.10.1")
	l.h1 = f.createHost("vpc-lpm", "vsw-a", "br-test", sp1)
	l.h2 = f.createHost("vpc-lpm", "vsw-a", "br-test", sp2)
	l.h3 = f.createHost("vpc-lpm", "vsw-a", "br-test", sp3)
	l.cap1 = f.startCapture(l.v1.node, "icmp")
	l.cap2 = f.startCapture(l.v2.node, "icmp")
	return l
}

// requests counts the echo requests for dst VM 1 and VM 2 have received.
func (l *lpmLab) requests(dst string) (int, int) {
	captureSettle()
	m := "> " + dst + ": ICMP echo request"
	return l.cap1.count(m), l.cap2.count(m)
}

// TestLongestPrefixMatch: 172.16.0.0/12 → VM 1 and 172.18.3.0/24 → VM 2.
// VM 1 holds 172.17.0.1 and also a decoy 172.18.3.4, so a wrong choice of
// route would be answered (ttl=64) by VM 1 instead of (ttl=63) by the
// container behind VM 2.
func TestLongestPrefixMatch(t *testing.T) {
	start := time.Now()
	l := newLPMLab(t, "172.17.0.1/16", "172.18.3.4/32")
	wide := l.createSubnet("vpc-lpm", "172.16.0.0/12", "vm1")
	narrow := l.createSubnet("vpc-lpm", "172.18.3.0/24", "vm2")
	flows := l.switchFlows(l.dpid)
	if p := l.pick(flows, subnetRoute(wide)).Priority; p != 112 {
		t.Errorf("/12 route at priority %d, want 112", p)
	}
	if p := l.pick(flows, subnetRoute(narrow)).Priority; p != 124 {
		t.Errorf("/24 route at priority %d, want 124", p)
	}
	t.Logf("setup %.1fs", time.Since(start).Seconds())
	client := l.v3.node

	c0 := l.counters(l.dpid)
	pingTTL(t, client, "172.18.3.4", 4, 63) // the container behind VM 2
	c1 := l.counters(l.dpid)
	nw, ww := c1.delta(c0, subnetRoute(narrow)), c1.delta(c0, subnetRoute(wide))
	on1, on2 := l.requests("172.18.3.4")
	if nw != 4 || ww != 0 || on1 != 0 || on2 != 4 {
		t.Errorf("ping 172.18.3.4 ×4: /24 +%d, /12 +%d, echo requests at VM1 %d / VM2 %d; want 4, 0, 0, 4", nw, ww, on1, on2)
	}
	t.Logf("172.18.3.4 ×4 → answered by VM 2's container (ttl=63): /24 route (priority 124) +%d, /12 route (priority 112) +%d; tcpdump: VM1 %d, VM2 %d",
		nw, ww, on1, on2)

	pingTTL(t, client, "172.17.0.1", 4, 64) // VM 1 itself
	c2 := l.counters(l.dpid)
	ww, nw = c2.delta(c1, subnetRoute(wide)), c2.delta(c1, subnetRoute(narrow))
	on1, on2 = l.requests("172.17.0.1")
	if ww != 4 || nw != 0 || on1 != 4 || on2 != 0 {
		t.Errorf("ping 172.17.0.1 ×4: /12 +%d, /24 +%d, echo requests at VM1 %d / VM2 %d; want 4, 0, 4, 0", ww, nw, on1, on2)
	}
	t.Logf("172.17.0.1 ×4 → answered by VM 1 (ttl=64): /12 route +%d, /24 route +%d; tcpdump: VM1 %d, VM2 %d", ww, nw, on1, on2)

	// Without the /24, the /12 takes 172.18.3.4 to VM 1's decoy; with the
	// /24 back, VM 2's container answers again.
	l.rest("DELETE", "/v1/vpcs/vpc-lpm/subnets/"+narrow.Name, nil, 204)
	pingTTL(t, client, "172.18.3.4", 2, 64)
	c3 := l.counters(l.dpid)
	ww = c3.delta(c2, subnetRoute(wide))
	narrow = l.createSubnet("vpc-lpm", "172.18.3.0/24", "vm2")
	pingTTL(t, client, "172.18.3.4", 2, 63)
	on1, on2 = l.requests("172.18.3.4")
	if ww != 2 || on1 != 2 || on2 != 6 {
		t.Errorf("/24 deleted: /12 +%d (want 2); echo requests for 172.18.3.4 in all: VM1 %d, VM2 %d (want 2, 6)", ww, on1, on2)
	}
	t.Logf("/24 deleted: 172.18.3.4 answered by VM 1's decoy (ttl=64), /12 +%d; /24 re-added: VM 2's container again. Total %.1fs",
		ww, time.Since(start).Seconds())
}

// ---- 5. moving a route entry ----------------------------------------------

// TestMoveSubnet moves 172.18.3.0/24 from VM 2 to VM 1 and back with PUT:
// the route, and the right to send from that prefix, follow the next hop.
func TestMoveSubnet(t *testing.T) {
	start := time.Now()
	l := newLPMLab(t, "172.18.3.4/32")
	sub := l.createSubnet("vpc-lpm", "172.18.3.0/24", "vm2")
	client := l.v3.node
	t.Logf("setup %.1fs", time.Since(start).Seconds())

	check := func(owner topology.Host, port int) {
		t.Helper()
		flows := l.switchFlows(l.dpid)
		e := l.pick(flows, subnetRoute(sub))
		if want := fmt.Sprintf("set_field:%s->eth_dst,set_field:%#x->reg2", owner.MAC, port); !strings.Contains(e.Actions, want) {
			t.Errorf("route 172.18.3.0/24: actions %q, want %s", e.Actions, want)
		}
		g := l.pick(flows, flowSel{table: 10, priority: 124, cookie: pipeline.SubnetCookie(sub.ID, pipeline.DropNone), match: "nw_src=172.18.3.0/24"})
		if want := fmt.Sprintf("in_port=%d", port); !strings.Contains(g.Match, want) {
			t.Errorf("SpoofGuard entry for 172.18.3.0/24: match %q, want %s", g.Match, want)
		}
	}
	move := func(to string) {
		t.Helper()
		var got topology.Subnet
		t0 := time.Now()
		must(t, json.Unmarshal(l.rest("PUT", "/v1/vpcs/vpc-lpm/subnets/"+sub.Name, map[string]any{"host": to}, 200), &got))
		if got.Host != to || got.ID != sub.ID || got.CIDR != sub.CIDR {
			t.Fatalf("PUT answered %+v, want subnet %d %s → %s", got, sub.ID, sub.CIDR, to)
		}
		t.Logf("PUT %s → %s: %s", sub.Name, to, time.Since(t0).Round(time.Millisecond))
	}

	check(l.h2, l.port2)
	pingTTL(t, client, "172.18.3.4", 3, 63)
	pingTTL(t, l.v2.container, "10.10.10.13", 2, 63)
	on1, on2 := l.requests("172.18.3.4")
	if on1 != 0 || on2 != 3 {
		t.Errorf("before the move: echo requests at VM1 %d, VM2 %d; want 0, 3", on1, on2)
	}

	move("vm1")
	check(l.h1, l.port1)
	c0 := l.counters(l.dpid)
	pingTTL(t, client, "172.18.3.4", 3, 64) // VM 1 answers now
	after1, after2 := l.requests("172.18.3.4")
	if after1-on1 != 3 || after2-on2 != 0 {
		t.Errorf("after the move: new echo requests at VM1 %d, VM2 %d; want 3, 0", after1-on1, after2-on2)
	}
	// VM 2's container may no longer send from 172.18.3.0/24.
	pingNone(t, l.v2.container, 2, "10.10.10.13")
	c1 := l.counters(l.dpid)
	moved, spoofed := c1.delta(c0, subnetRoute(sub)), c1.delta(c0, spoofedIP(l.h2))
	if moved != 3 || spoofed != 2 {
		t.Errorf("after the move: route +%d (want 3), vm2's SpoofGuard ip drop +%d (want 2)", moved, spoofed)
	}
	t.Logf("moved to vm1: 3 pings answered by VM 1 (ttl=64), tcpdump VM1 +%d VM2 +%d, route +%d; vm2's container's 2 pings dropped as spoofed (+%d)",
		after1-on1, after2-on2, moved, spoofed)

	move("vm2")
	check(l.h2, l.port2)
	pingTTL(t, client, "172.18.3.4", 3, 63)
	pingTTL(t, l.v2.container, "10.10.10.13", 2, 63)
	back1, back2 := l.requests("172.18.3.4")
	if back1-after1 != 0 || back2-after2 != 3 {
		t.Errorf("moved back: new echo requests at VM1 %d, VM2 %d; want 0, 3", back1-after1, back2-after2)
	}
	t.Logf("moved back to vm2: VM 2's container answers again (tcpdump VM1 +%d, VM2 +%d). Total %.1fs",
		back1-after1, back2-after2, time.Since(start).Seconds())
}

// ---- 6. deletes refused while in use ---------------------------------------

// TestDeleteRefusedWhileInUse: a host that is a next hop, a vSwitch with
// hosts and a VPC with vSwitches cannot be deleted; the refusal changes
// nothing, in the store or on the switch, and traffic goes on.
func TestDeleteRefusedWhileInUse(t *testing.T) {
	start := time.Now()
	s := newSeed(t)
	ping(t, s.vm1.container, "172.18.3.4", 2)
	snapshot := func() map[string]any {
		out := map[string]any{}
		for _, p := range []string{"/v1/vpcs", "/v1/vpcs/vpc-seed/vswitches", "/v1/vpcs/vpc-seed/hosts", "/v1/vpcs/vpc-seed/subnets"} {
			var v any
			must(t, json.Unmarshal(s.rest("GET", p, nil, 200), &v))
			out[p] = v
		}
		return out
	}
	before := snapshot()
	ages := s.durations("br-test")
	t0 := time.Now()

	for _, c := range []struct {
		path  string
		wants []string
	}{
		{"/v1/vpcs/vpc-seed/hosts/test2", []string{"test2", "still used by 1 subnet", "172.18.3.0-24"}},
		{"/v1/vpcs/vpc-seed/hosts/test1", []string{"test1", "still used by 1 subnet", "172.18.1.0-24"}},
		{"/v1/vpcs/vpc-seed/vswitches/vsw-a", []string{"vsw-a", "test1", "test2"}},
		{"/v1/vpcs/vpc-seed", []string{"vpc-seed", "vsw-a", "test1", "172.18.3.0-24"}},
	} {
		body := s.rest("DELETE", c.path, nil, 409)
		var e struct {
			Error string `json:"error"`
		}
		must(t, json.Unmarshal(body, &e))
		for _, w := range c.wants {
			if !strings.Contains(e.Error, w) {
				t.Errorf("DELETE %s: 409 %q does not name %q", c.path, e.Error, w)
			}
		}
		t.Logf("DELETE %s → 409 %s", c.path, e.Error)
	}

	if after := snapshot(); !reflect.DeepEqual(before, after) {
		t.Errorf("the store changed after refused deletes:\nbefore %v\nafter  %v", before, after)
	}
	pingTTL(t, s.vm1.container, "172.18.3.4", 3, 62)
	tcpRoundTrip(t, s.vm2.container, s.vm1.container, "172.18.3.4", 5001)
	s.assertNotReinstalled("br-test", ages, time.Since(t0)-200*time.Millisecond)
	s.assertSwitchHoldsDesired()
	t.Logf("store unchanged, all %d flows untouched, traffic goes on; total %.1fs", len(ages), time.Since(start).Seconds())
}

// TestDeleteCascade: ?cascade=true deletes a next-hop host with its route
// entries, then a whole VPC; their flows leave the switch and the traffic
// they carried stops, while what is left keeps working.
func TestDeleteCascade(t *testing.T) {
	start := time.Now()
	s := newSeed(t)
	var h2 topology.Host
	must(t, json.Unmarshal(s.rest("GET", "/v1/vpcs/vpc-seed/hosts/test2", nil, 200), &h2))
	var sub3 topology.Subnet
	must(t, json.Unmarshal(s.rest("GET", "/v1/vpcs/vpc-seed/subnets/172.18.3.0-24", nil, 200), &sub3))
	pingTTL(t, s.vm1.container, "172.18.3.4", 2, 62)
	pingTTL(t, s.vm1.node, "10.10.10.12", 2, 64)
	owned := func(flows []controller.FlowEntry, owner pipeline.OwnerKind, id uint32) int {
		n := 0
		for _, e := range flows {
			ck, err := strconv.ParseUint(strings.TrimPrefix(e.Cookie, "0x"), 16, 64)
			must(t, err)
			if p := pipeline.ParseCookie(ck); p.Ours && p.Owner == owner && p.ID == id {
				n++
			}
		}
		return n
	}
	flows := s.switchFlows(s.dpid)
	if owned(flows, pipeline.OwnerHost, h2.ID) == 0 || owned(flows, pipeline.OwnerSubnet, sub3.ID) == 0 {
		t.Fatalf("before: no flows of host test2 or subnet 172.18.3.0/24")
	}
	nBefore := len(flows)

	s.rest("DELETE", "/v1/vpcs/vpc-seed/hosts/test2?cascade=true", nil, 204)
	var hosts []topology.Host
	must(t, json.Unmarshal(s.rest("GET", "/v1/vpcs/vpc-seed/hosts", nil, 200), &hosts))
	var subnets []topology.Subnet
	must(t, json.Unmarshal(s.rest("GET", "/v1/vpcs/vpc-seed/subnets", nil, 200), &subnets))
	if len(hosts) != 1 || hosts[0].Name != "test1" || len(subnets) != 1 || subnets[0].Name != "172.18.1.0-24" {
		t.Fatalf("after cascading delete of test2: hosts %v, subnets %v; want [test1], [172.18.1.0-24]", hosts, subnets)
	}
	s.rest("GET", "/v1/vpcs/vpc-seed/subnets/172.18.3.0-24", nil, 404)
	flows = s.switchFlows(s.dpid)
	if a, b := owned(flows, pipeline.OwnerHost, h2.ID), owned(flows, pipeline.OwnerSubnet, sub3.ID); a != 0 || b != 0 {
		t.Errorf("after the cascade %d flows of test2 and %d of its subnet are still installed", a, b)
	}
	c0 := s.counters(s.dpid)
	pingNone(t, s.vm1.container, 3, "172.18.3.4")
	pingNone(t, s.vm1.node, 3, "10.10.10.12")
	c1 := s.counters(s.dpid)
	// The container's address has no route left (the table's default
	// drop); the VM's address is in the vSwitch, whose system route drops
	// what no host of it owns. Both count as no_route.
	var vsw topology.VSwitch
	must(t, json.Unmarshal(s.rest("GET", "/v1/vpcs/vpc-seed/vswitches/vsw-a", nil, 200), &vsw))
	if nr, sys := c1.delta(c0, noRouteDrop), c1.delta(c0, vswitchRouteDrop(vsw)); nr != 3 || sys != 3 {
		t.Errorf("6 pings to the deleted host and its route: no-route drops +%d (default) and +%d (vSwitch route), want 3 and 3", nr, sys)
	}
	t.Logf("DELETE host test2?cascade=true: its route entry went too; flows %d → %d; 6 pings to them: 0 answered, 6 no-route drops",
		nBefore, len(flows))

	s.rest("DELETE", "/v1/vpcs/vpc-seed?cascade=true", nil, 204)
	if b := strings.TrimSpace(string(s.rest("GET", "/v1/vpcs", nil, 200))); b != "[]" {
		t.Errorf("GET /v1/vpcs after cascading VPC delete: %s", b)
	}
	flows = s.switchFlows(s.dpid)
	for _, e := range flows {
		ck, _ := strconv.ParseUint(strings.TrimPrefix(e.Cookie, "0x"), 16, 64)
		if pipeline.ParseCookie(ck).Owner != pipeline.OwnerPipeline {
			t.Errorf("flow left after the VPC is gone: %+v", e)
		}
	}
	if len(flows) != len(pipeline.Default().Defaults()) {
		t.Errorf("br-test holds %d flows, want the %d pipeline defaults", len(flows), len(pipeline.Default().Defaults()))
	}
	pingNone(t, s.vm1.node, 2, "10.10.10.12")
	t.Logf("DELETE vpc-seed?cascade=true: store empty, br-test back to its %d pipeline defaults; total %.1fs",
		len(flows), time.Since(start).Seconds())
}
