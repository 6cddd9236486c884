package netlab

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Names and numbers of the multi-chassis setup built by AddUnderlay and
// Underlay.AddChassis.
const (
	// UnderlayBridge is the Linux bridge inside the underlay node that joins
	// all chassis NICs into one L2 segment.
	UnderlayBridge = "br-ul"
	// ChassisUnderlayIf is a chassis's "physical" NIC on the underlay: a
	// veth whose peer is a port of UnderlayBridge. It is a port of the
	// chassis's PhyBridge and has no address of its own.
	ChassisUnderlayIf = "ul0"
	// PhyBridge is the chassis bridge that holds ChassisUnderlayIf; its
	// internal interface carries the chassis's tunnel IP.
	PhyBridge = "br-phy"
	// VXLANPort is the flow-based VXLAN port on a chassis's integration
	// bridge (options remote_ip=flow, key=flow, local_ip=<tunnel IP>).
	VXLANPort = "vxlan0"
	// VXLANUDPPort is the IANA VXLAN port that OVS uses by default.
	VXLANUDPPort = 4789
)

// Underlay is an L2 segment joining chassis, the "physical network" between
// hypervisors: a Linux bridge (UnderlayBridge) inside its own node, with one
// veth per chassis plugged into it. Chassis get tunnel IPs out of Prefix.
type Underlay struct {
	// Node is the underlay's own namespace, where UnderlayBridge lives and
	// where Capture runs tcpdump.
	Node *Node
	// Prefix is the underlay subnet, e.g. 192.168.100.0/24.
	Prefix netip.Prefix

	lab  *Lab
	name string

	mu      sync.Mutex
	chassis []*Chassis
	byIP    map[netip.Addr]*Chassis
	mtu     int // 0: leave the veths at their default (1500)
}

// Chassis is a physical host (hypervisor) on an underlay: its own node and
// private OVS, the PhyBridge holding its underlay NIC and tunnel IP, and the
// integration bridge (the one vpcflow manages) with a flow-based VXLAN port.
type Chassis struct {
	// Node is the chassis's namespace; OVS runs in it.
	Node *Node
	// OVS is the chassis's private Open vSwitch.
	OVS *OVS
	// TunnelIP is the chassis's underlay address (VTEP), e.g. 192.168.100.1.
	TunnelIP string
	// Bridge is the integration bridge (e.g. "br-vpc"): netdev datapath,
	// OpenFlow13, fail_mode=secure, with VXLANPort on it and no flows.
	Bridge string
	// PhyBridge is the bridge holding the underlay NIC ("br-phy"): netdev,
	// OpenFlow13, fail_mode=secure plus a priority-0 NORMAL flow, the tunnel
	// IP on its internal interface.
	PhyBridge string
	// UnderlayIf is the chassis's NIC on the underlay (ChassisUnderlayIf),
	// a port of PhyBridge.
	UnderlayIf string
	// SegmentIf is the peer of UnderlayIf inside the underlay node, a port
	// of UnderlayBridge: capture on it to see one chassis's traffic.
	SegmentIf string
	// PhyMAC is PhyBridge's fixed MAC (other_config:hwaddr), the address
	// the tunnel IP answers ARP with: 02:00 followed by the IPv4 bytes.
	PhyMAC string

	underlay *Underlay
}

// AddUnderlay creates the node name with a Linux bridge (UnderlayBridge, up,
// no address) that AddChassis plugs chassis into. cidr is the underlay
// subnet (IPv4, e.g. "192.168.100.0/24"); chassis tunnel IPs must lie in it.
func (l *Lab) AddUnderlay(ctx context.Context, name string, cidr string) (*Underlay, error) {
	wrap := func(err error) (*Underlay, error) {
		return nil, fmt.Errorf("netlab: underlay %s: %w", name, nest(err))
	}
	prefix, err := netip.ParsePrefix(cidr)
	if err != nil {
		return wrap(fmt.Errorf("parse cidr: %w", err))
	}
	if !prefix.Addr().Is4() || prefix.Bits() > 30 {
		return wrap(fmt.Errorf("cidr %s: want an IPv4 prefix of /30 or shorter", cidr))
	}
	n, err := l.addNode(ctx, name)
	if err != nil {
		return wrap(err)
	}
	if err := n.AddLinuxBridge(ctx, UnderlayBridge, ""); err != nil {
		return wrap(err)
	}
	return &Underlay{Node: n, Prefix: prefix.Masked(), lab: l, name: name, byIP: map[netip.Addr]*Chassis{}}, nil
}

// Name is the underlay's name (its node's name).
func (u *Underlay) Name() string { return u.name }

// Chassis returns the chassis added so far, in order.
func (u *Underlay) Chassis() []*Chassis {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]*Chassis(nil), u.chassis...)
}

// SegmentIfName is the underlay-side name of a chassis's veth: "ul-<name>",
// or "ul-<hash>" if that would be longer than 15 bytes.
func SegmentIfName(chassis string) string {
	if name := "ul-" + chassis; len(name) <= 15 {
		return name
	}
	sum := sha256.Sum256([]byte(chassis))
	return "ul-" + hex.EncodeToString(sum[:])[:12]
}

// PhyMACFor is the MAC AddChassis gives PhyBridge for a tunnel IP:
// 02:00:a:b:c:d for a.b.c.d (locally administered, unique per IP).
func PhyMACFor(tunnelIP netip.Addr) string {
	b := tunnelIP.As4()
	return fmt.Sprintf("02:00:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3])
}

// AddChassis builds a hypervisor on the underlay:
//
//   - node name with its own OVS (Node.StartOVS);
//   - a veth ChassisUnderlayIf (chassis) <-> SegmentIfName(name) (underlay
//     node, enslaved to UnderlayBridge), both up with tx checksum offload
//     off, and NOARP on ChassisUnderlayIf (see below);
//   - PhyBridge: datapath_type=netdev, protocols=OpenFlow13,
//     fail_mode=secure, disable-in-band, other_config:hwaddr=PhyMACFor(ip),
//     ChassisUnderlayIf as a port and the flow "priority=0,actions=NORMAL"
//     (a learning switch: ARP for the tunnel IP reaches the kernel, and
//     VXLAN packets for it reach OVS's tunnel termination);
//   - tunnelIP/<prefix length> on PhyBridge's internal interface, up;
//   - the integration bridge (as OVS.AddBridge: netdev, OpenFlow13,
//     fail_mode=secure, no flows) with VXLANPort: type=vxlan,
//     options:remote_ip=flow, options:key=flow, options:local_ip=tunnelIP.
//
// It returns once the VXLAN port has an ofport, OVS's tunnel routing table
// (ovs/route/show) has the underlay route through PhyBridge and its tunnel
// termination table (tnl/ports/show) lists vxlan_sys_4789, i.e. when the
// chassis can send and receive VXLAN. OVS resolves a remote
// tunnel IP's MAC with ARP on the first packet sent to it, and drops that
// packet: see Underlay.ResolveTunnelNeighbors.
func (u *Underlay) AddChassis(ctx context.Context, name, tunnelIP string, integrationBridge string) (*Chassis, error) {
	wrap := func(err error) (*Chassis, error) {
		return nil, fmt.Errorf("netlab: chassis %s on underlay %s: %w", name, u.name, nest(err))
	}
	ip, err := netip.ParseAddr(tunnelIP)
	if err != nil {
		return wrap(fmt.Errorf("parse tunnel IP: %w", err))
	}
	if err := u.checkTunnelIP(ip); err != nil {
		return wrap(err)
	}
	if err := validIfName(integrationBridge); err != nil {
		return wrap(fmt.Errorf("integration bridge: %w", err))
	}
	if integrationBridge == PhyBridge {
		return wrap(fmt.Errorf("integration bridge may not be %s", PhyBridge))
	}
	c := &Chassis{
		TunnelIP:   ip.String(),
		Bridge:     integrationBridge,
		PhyBridge:  PhyBridge,
		UnderlayIf: ChassisUnderlayIf,
		SegmentIf:  SegmentIfName(name),
		PhyMAC:     PhyMACFor(ip),
		underlay:   u,
	}
	// Reserve the IP before the slow part, so that concurrent AddChassis
	// calls cannot both take it.
	u.mu.Lock()
	if _, dup := u.byIP[ip]; dup {
		u.mu.Unlock()
		return wrap(fmt.Errorf("tunnel IP %s is taken", ip))
	}
	u.byIP[ip] = c
	mtu := u.mtu
	u.mu.Unlock()
	ok := false
	defer func() {
		if !ok {
			u.mu.Lock()
			delete(u.byIP, ip)
			u.mu.Unlock()
		}
	}()

	l := u.lab
	if c.Node, err = l.addNode(ctx, name); err != nil {
		return wrap(err)
	}
	if c.OVS, err = c.Node.StartOVS(ctx); err != nil {
		return wrap(err)
	}
	// The underlay NIC: up and tx off before OVS opens it.
	if err := l.createVeth(ctx, c.Node, c.UnderlayIf, "", u.Node, c.SegmentIf); err != nil {
		return wrap(err)
	}
	if _, err := l.run(ctx, nil, "ip", "-n", u.Node.ns, "link", "set", c.SegmentIf, "master", UnderlayBridge); err != nil {
		return wrap(err)
	}
	// OVS reads ul0 with a packet socket, but the chassis's kernel still
	// sees every frame on it too, and by default (arp_ignore=0) answers
	// ARP for the tunnel IP there, with ul0's own MAC: remote OVSes then
	// cache the wrong MAC for this chassis and tunnel into the void. NOARP
	// makes the kernel ignore ARP on ul0; ARP for the tunnel IP is
	// answered only behind PhyBridge.
	if _, err := l.run(ctx, nil, "ip", "-n", c.Node.ns, "link", "set", "dev", c.UnderlayIf, "arp", "off"); err != nil {
		return wrap(err)
	}
	if mtu > 0 {
		if err := c.setMTU(ctx, mtu); err != nil {
			return wrap(err)
		}
	}
	// br-phy with the NIC as its only port.
	if _, err := c.OVS.Vsctl(ctx,
		"add-br", PhyBridge, "--", "set", "Bridge", PhyBridge,
		"datapath_type=netdev", "protocols=OpenFlow13", "fail_mode=secure",
		"other_config:disable-in-band=true", "other_config:hwaddr="+strconv.Quote(c.PhyMAC),
		"--", "add-port", PhyBridge, c.UnderlayIf); err != nil {
		return wrap(fmt.Errorf("add %s: %w", PhyBridge, err))
	}
	if _, err := c.OVS.Ofport(ctx, c.UnderlayIf); err != nil {
		return wrap(err)
	}
	// Kept: a restarted ovs-vswitchd gets it back (StartVswitchd).
	if err := c.OVS.AddKeptFlow(ctx, PhyBridge, "priority=0,actions=NORMAL"); err != nil {
		return wrap(fmt.Errorf("%s NORMAL flow: %w", PhyBridge, err))
	}
	// The tunnel IP on br-phy's internal (tap) interface.
	cidr := fmt.Sprintf("%s/%d", ip, u.Prefix.Bits())
	if err := c.Node.AddAddr(ctx, PhyBridge, cidr); err != nil {
		return wrap(err)
	}
	if _, err := l.run(ctx, nil, "ip", "-n", c.Node.ns, "link", "set", PhyBridge, "up"); err != nil {
		return wrap(err)
	}
	// The integration bridge and its flow-based VXLAN port.
	if err := c.OVS.AddBridge(ctx, integrationBridge); err != nil {
		return wrap(err)
	}
	if _, err := c.OVS.Vsctl(ctx, "add-port", integrationBridge, VXLANPort,
		"--", "set", "Interface", VXLANPort, "type=vxlan",
		"options:remote_ip=flow", "options:key=flow", "options:local_ip="+strconv.Quote(c.TunnelIP)); err != nil {
		return wrap(fmt.Errorf("add %s: %w", VXLANPort, err))
	}
	if _, err := c.TunnelOFPort(ctx); err != nil {
		return wrap(err)
	}
	if err := c.waitTunnelReady(ctx); err != nil {
		return wrap(err)
	}
	c.OVS.afterVswitchdStart(c.afterVswitchdRestart)
	u.mu.Lock()
	u.chassis = append(u.chassis, c)
	u.mu.Unlock()
	ok = true
	return c, nil
}

func (u *Underlay) checkTunnelIP(ip netip.Addr) error {
	if !ip.Is4() {
		return fmt.Errorf("tunnel IP %s is not IPv4", ip)
	}
	if !u.Prefix.Contains(ip) {
		return fmt.Errorf("tunnel IP %s is outside the underlay %s", ip, u.Prefix)
	}
	if ip == u.Prefix.Addr() || ip == lastAddr(u.Prefix) {
		return fmt.Errorf("tunnel IP %s is the network or broadcast address of %s", ip, u.Prefix)
	}
	return nil
}

// lastAddr is the broadcast address of an IPv4 prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := 32 - p.Bits()
	for i := 3; i >= 0 && host > 0; i-- {
		n := min(host, 8)
		b[i] |= byte(1<<n - 1)
		host -= n
	}
	return netip.AddrFrom4(b)
}

// waitTunnelReady waits until OVS can send and receive VXLAN: its route
// table (copied from the kernel over netlink) has the underlay route out of
// PhyBridge with the tunnel IP as source (without it tunnel pushes fail
// with "no route"), and its tunnel termination table (tnl/ports/show,
// filled asynchronously once vswitchd has seen the IP on PhyBridge) lists
// the VXLAN port (without it received VXLAN goes to the kernel).
func (c *Chassis) waitTunnelReady(ctx context.Context) error {
	checks := []struct {
		cmd  string
		want func(line string) bool
	}{
		{"ovs/route/show", func(line string) bool {
			return strings.Contains(line, c.underlay.Prefix.String()) &&
				strings.Contains(line, "dev "+PhyBridge) && strings.Contains(line, "SRC "+c.TunnelIP)
		}},
		{"tnl/ports/show", func(line string) bool {
			// "vxlan_sys_4789 (4) ref_cnt=1": datapath port name and number.
			return strings.HasPrefix(line, fmt.Sprintf("vxlan_sys_%d ", VXLANUDPPort))
		}},
	}
	for _, chk := range checks {
		var last string
		err := poll(ctx, ovsReadyTimeout, func() (bool, error) {
			out, err := c.OVS.Appctl(ctx, chk.cmd)
			if err != nil {
				return false, err
			}
			last = out
			for _, line := range strings.Split(out, "\n") {
				if chk.want(line) {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("OVS tunnel not ready: %w; ovs-appctl %s:\n%s", err, chk.cmd, last)
		}
	}
	return nil
}

// Name is the chassis's node name.
func (c *Chassis) Name() string { return c.Node.name }

// Underlay is the underlay the chassis is on.
func (c *Chassis) Underlay() *Underlay { return c.underlay }

// TunnelOFPort is the OpenFlow port number of VXLANPort on the integration
// bridge (waiting up to 10s for vswitchd to assign it).
func (c *Chassis) TunnelOFPort(ctx context.Context) (int, error) {
	port, err := c.OVS.Ofport(ctx, VXLANPort)
	if err != nil {
		return 0, fmt.Errorf("netlab: chassis %s: tunnel port: %w", c.Node.name, nest(err))
	}
	return port, nil
}

// TunnelDebug returns what OVS knows about its tunnels, for logs:
// tnl/ports/show, ovs/route/show and tnl/neigh/show.
func (c *Chassis) TunnelDebug(ctx context.Context) (string, error) {
	var b strings.Builder
	for _, cmd := range []string{"tnl/ports/show", "ovs/route/show", "tnl/neigh/show"} {
		out, err := c.OVS.Appctl(ctx, cmd)
		if err != nil {
			return b.String(), fmt.Errorf("netlab: chassis %s: %w", c.Node.name, nest(err))
		}
		fmt.Fprintf(&b, "# ovs-appctl %s\n%s", cmd, out)
	}
	return b.String(), nil
}

// TunnelNeighbors returns OVS's tunnel neighbour cache (tnl/neigh/show):
// remote tunnel IP -> MAC.
func (c *Chassis) TunnelNeighbors(ctx context.Context) (map[string]string, error) {
	out, err := c.OVS.Appctl(ctx, "tnl/neigh/show")
	if err != nil {
		return nil, fmt.Errorf("netlab: chassis %s: %w", c.Node.name, nest(err))
	}
	return parseTunnelNeighbors(out), nil
}

// parseTunnelNeighbors reads tnl/neigh/show output:
//
//	IP                                            MAC                 Bridge
//	==========================================================================
//	192.168.100.2                                 02:00:c0:a8:64:02   br-phy
func parseTunnelNeighbors(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		if _, err := netip.ParseAddr(f[0]); err != nil {
			continue
		}
		m[f[0]] = f[1]
	}
	return m
}

// ResolveTunnelNeighbors makes every chassis's OVS learn the MAC of every
// other chassis's tunnel IP, so that the first VXLAN packet a test sends is
// not the one OVS drops while it ARPs. (Without it the first packet to each
// chassis is lost, and if that ARP goes unanswered OVS caches a datapath
// flow "actions:drop" that sends no further ARP while traffic keeps it
// alive: the tunnel stays dead until the flow idles out, ~10s.) For each
// pair it deletes the
// kernel's neighbour entry, pings the peer's tunnel IP from the chassis's
// kernel (out of PhyBridge: OVS snoops the ARP reply to it) and waits until
// tnl/neigh/show maps the peer's IP to its PhyMAC.
func (u *Underlay) ResolveTunnelNeighbors(ctx context.Context) error {
	all := u.Chassis()
	for _, c := range all {
		if err := c.resolveTunnelNeighbors(ctx, all); err != nil {
			return err
		}
	}
	return nil
}

// resolveTunnelNeighbors makes c's OVS learn the MAC of every peer's
// tunnel IP (see ResolveTunnelNeighbors).
func (c *Chassis) resolveTunnelNeighbors(ctx context.Context, peers []*Chassis) error {
	u := c.underlay
	for _, peer := range peers {
		if peer == c {
			continue
		}
		err := poll(ctx, ovsReadyTimeout, func() (bool, error) {
			neigh, err := c.TunnelNeighbors(ctx)
			if err != nil {
				return false, err
			}
			if neigh[peer.TunnelIP] == peer.PhyMAC {
				return true, nil
			}
			// OVS learns tunnel neighbours by snooping ARP through
			// PhyBridge. A kernel that has the peer cached (e.g.
			// from the peer's own ARP request) sends no ARP at all
			// until its entry goes stale (~10s here): drop the
			// entry so that the ping makes it ask.
			_, _ = c.Node.lab.run(ctx, nil, "ip", "-n", c.Node.ns, "neigh", "del", peer.TunnelIP, "dev", PhyBridge)
			// Ping errors are expected until ARP resolves; the cache
			// is what counts.
			_, _ = c.Node.Cmd(ctx, "ping", "-c", "1", "-W", "1", peer.TunnelIP)
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("netlab: underlay %s: %s does not resolve %s (%s): %w", u.name, c.Node.name, peer.Node.name, peer.TunnelIP, err)
		}
	}
	return nil
}

// afterVswitchdRestart runs at the end of every StartVswitchd after the
// first (the NORMAL flow of PhyBridge is already back, as a kept flow):
// it waits until OVS routes and terminates VXLAN again and re-learns the
// MAC of every other chassis's tunnel IP, which the restart forgot (the
// other chassis still know this one's: PhyMAC is fixed).
func (c *Chassis) afterVswitchdRestart(ctx context.Context) error {
	if err := c.waitTunnelReady(ctx); err != nil {
		return fmt.Errorf("chassis %s after ovs-vswitchd restart: %w", c.Node.name, err)
	}
	if err := c.resolveTunnelNeighbors(ctx, c.underlay.Chassis()); err != nil {
		return fmt.Errorf("chassis %s after ovs-vswitchd restart: %w", c.Node.name, nest(err))
	}
	return nil
}

// SetMTU sets the MTU of every underlay veth (both ends, for the chassis
// added so far and those added later). UnderlayBridge follows its ports.
// The default is the veth default, 1500.
func (u *Underlay) SetMTU(ctx context.Context, mtu int) error {
	if mtu < 68 || mtu > 65535 {
		return fmt.Errorf("netlab: underlay %s: invalid MTU %d", u.name, mtu)
	}
	u.mu.Lock()
	u.mtu = mtu
	u.mu.Unlock()
	for _, c := range u.Chassis() {
		if err := c.setMTU(ctx, mtu); err != nil {
			return fmt.Errorf("netlab: underlay %s: %w", u.name, nest(err))
		}
	}
	return nil
}

func (c *Chassis) setMTU(ctx context.Context, mtu int) error {
	m := strconv.Itoa(mtu)
	for _, end := range []struct {
		n   *Node
		ifn string
	}{{c.Node, c.UnderlayIf}, {c.underlay.Node, c.SegmentIf}} {
		if _, err := c.Node.lab.run(ctx, nil, "ip", "-n", end.n.ns, "link", "set", "dev", end.ifn, "mtu", m); err != nil {
			return fmt.Errorf("netlab: set MTU of %s in %s: %w", end.ifn, end.n.name, err)
		}
	}
	return nil
}

// Capture is a tcpdump running on an underlay.
type Capture struct {
	// File is the pcap file (in the lab dir).
	File string
	// Filter is the tcpdump filter expression.
	Filter string

	u    *Underlay
	proc *Process

	once  sync.Once
	lines []string
	err   error
}

// Capture starts tcpdump inside the underlay node on all of its interfaces,
// incoming direction only (-i any -Q in), so that every frame crossing the
// segment is recorded exactly once, on the port of the chassis that sent
// it. filter is a tcpdump expression ("" for everything), e.g.
// "udp port 4789". It returns once tcpdump is capturing. Stop it to read
// the packets; the lab stops it at Close in any case.
func (u *Underlay) Capture(ctx context.Context, filter string) (*Capture, error) {
	wrap := func(err error) (*Capture, error) {
		return nil, fmt.Errorf("netlab: underlay %s: capture %q: %w", u.name, filter, nest(err))
	}
	if _, err := exec.LookPath("tcpdump"); err != nil {
		return wrap(fmt.Errorf("%w (apt-get install tcpdump)", err))
	}
	seq := u.lab.nextSeq()
	c := &Capture{
		File:   filepath.Join(u.lab.dir, fmt.Sprintf("capture-%s-%d.pcap", u.name, seq)),
		Filter: filter,
		u:      u,
	}
	// -Z root: do not drop to the tcpdump user, who may not write to the
	// (0700) lab dir. -U: write every packet at once.
	args := []string{"tcpdump", "-i", "any", "-Q", "in", "-nn", "-U", "-Z", "root", "-w", c.File}
	if strings.TrimSpace(filter) != "" {
		args = append(args, filter)
	}
	logFile := filepath.Join(u.lab.dir, fmt.Sprintf("capture-%s-%d.log", u.name, seq))
	p, err := u.Node.Start(context.WithoutCancel(ctx), logFile, args...)
	if err != nil {
		return wrap(err)
	}
	c.proc = p
	err = poll(ctx, ovsReadyTimeout, func() (bool, error) {
		b, _ := os.ReadFile(logFile)
		if strings.Contains(string(b), "listening on") {
			return true, nil
		}
		if p.Exited() {
			return false, fmt.Errorf("tcpdump exited (%v): %s", p.Wait(), strings.TrimSpace(string(b)))
		}
		return false, nil
	})
	if err != nil {
		_ = p.Stop()
		return wrap(err)
	}
	return c, nil
}

// Stop stops tcpdump and returns the captured packets as `tcpdump -r FILE
// -nn -v` prints them, one output line per element (with -v a packet may
// span several lines: continuation lines start with white space; see
// JoinPackets). Calling it again returns the same result.
func (c *Capture) Stop() ([]string, error) {
	c.once.Do(func() {
		if err := c.proc.Stop(); err != nil {
			c.err = fmt.Errorf("netlab: underlay %s: stop capture: %w", c.u.name, nest(err))
			return
		}
		if _, err := os.Stat(c.File); errors.Is(err, os.ErrNotExist) {
			b, _ := os.ReadFile(c.proc.LogFile)
			c.err = fmt.Errorf("netlab: underlay %s: capture wrote no file: %s", c.u.name, strings.TrimSpace(string(b)))
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// Read in the underlay node: the file records interface indexes,
		// which tcpdump names with the reading namespace's interfaces.
		out, err := c.u.Node.Cmd(ctx, "tcpdump", "-r", c.File, "-nn", "-v")
		if err != nil {
			c.err = fmt.Errorf("netlab: underlay %s: decode capture: %w", c.u.name, err)
			return
		}
		for _, line := range strings.Split(out, "\n") {
			if line == "" || strings.HasPrefix(line, "reading from file") ||
				strings.HasPrefix(line, "Warning: interface names might be incorrect") {
				continue
			}
			c.lines = append(c.lines, line)
		}
	})
	return c.lines, c.err
}

// JoinPackets folds tcpdump -v output into one string per packet: lines
// that start with white space continue the previous one.
func JoinPackets(lines []string) []string {
	var pkts []string
	for _, line := range lines {
		if len(pkts) > 0 && (strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t")) {
			pkts[len(pkts)-1] += " " + strings.TrimSpace(line)
			continue
		}
		pkts = append(pkts, strings.TrimSpace(line))
	}
	return pkts
}
