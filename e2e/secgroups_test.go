package e2e

// Security groups with real traffic: TCP, UDP and ICMP allowed and refused
// per rule, default-deny ingress, replies to allowed egress, equal priority
// (drop wins), a peer-group rule following membership, members of a common
// group, an egress rule, a live TCP stream cut by a rule change while
// another keeps flowing — on one switch and across two chassis — and a
// controller SIGKILL under a live stream. `ovs-appctl dpctl/dump-conntrack`
// shows the hosts' zones throughout.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vpcflow/vpcflow/controller"
	"github.com/vpcflow/vpcflow/e2e/netlab"
	"github.com/vpcflow/vpcflow/topology"
)

// ---- traffic checks ----

// tcpOpens reports whether client can open a TCP connection to
// serverIP:port in server and get an echo back. A refused connection is
// one whose SYN gets no answer within the dial timeout (security groups
// drop silently, as Aliyun's do).
func tcpOpens(t *testing.T, server, client *netlab.Node, serverIP string, port int) bool {
	t.Helper()
	ln, err := server.Listen("tcp", fmt.Sprintf("%s:%d", serverIP, port))
	must(t, err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	c, err := client.Dial(ctx, "tcp", fmt.Sprintf("%s:%d", serverIP, port))
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("hello")); err != nil {
		return false
	}
	buf := make([]byte, 5)
	_, err = io.ReadFull(c, buf)
	return err == nil && string(buf) == "hello"
}

// udpEchoes reports whether a datagram from client reaches serverIP:port
// in server and the answer comes back (three tries).
func udpEchoes(t *testing.T, server, client *netlab.Node, serverIP string, port int) bool {
	t.Helper()
	pc, err := server.ListenPacket("udp", fmt.Sprintf("%s:%d", serverIP, port))
	must(t, err)
	defer pc.Close()
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(buf[:n], from)
		}
	}()
	c, err := client.Dial(context.Background(), "udp", fmt.Sprintf("%s:%d", serverIP, port))
	must(t, err)
	defer c.Close()
	buf := make([]byte, 16)
	for try := 0; try < 3; try++ {
		_ = c.SetDeadline(time.Now().Add(700 * time.Millisecond))
		if _, err := c.Write([]byte("udp-hello")); err != nil {
			continue
		}
		if n, err := c.Read(buf); err == nil && string(buf[:n]) == "udp-hello" {
			return true
		}
	}
	return false
}

// pingOK reports whether at least one of three pings is answered.
func pingOK(t *testing.T, n *netlab.Node, dst string) bool {
	t.Helper()
	out, _ := n.Cmd(testCtx(t), "ping", "-n", "-c", "3", "-i", "0.2", "-W", "1", dst)
	return strings.Contains(out, " received") && !strings.Contains(out, " 0 received")
}

// expect fails the test when what happened is not what was wanted.
func expect(t *testing.T, what string, want, got bool) {
	t.Helper()
	verb := map[bool]string{true: "passes", false: "is refused"}
	if want != got {
		t.Errorf("%s: %s, want it %s", what, verb[got], verb[want])
	} else {
		t.Logf("ok: %s %s", what, verb[got])
	}
}

// tcpStream is a paced TCP stream whose receiver records when bytes last
// arrived.
type tcpStream struct {
	ln     net.Listener
	client net.Conn
	recv   atomic.Int64
	last   atomic.Int64 // UnixNano of the last read that got bytes
	stop   chan struct{}
	once   sync.Once
	wg     sync.WaitGroup
}

func startStream(t *testing.T, server, client *netlab.Node, serverIP string, port int) *tcpStream {
	t.Helper()
	s := &tcpStream{stop: make(chan struct{})}
	ln, err := server.Listen("tcp", fmt.Sprintf("%s:%d", serverIP, port))
	must(t, err)
	s.ln = ln
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		go func() { <-s.stop; c.Close() }()
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				s.recv.Add(int64(n))
				s.last.Store(time.Now().UnixNano())
			}
			if err != nil {
				return
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "tcp", fmt.Sprintf("%s:%d", serverIP, port))
	must(t, err)
	s.client = c
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		chunk := bytes.Repeat([]byte("sg-stream"), 1024)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
			_ = c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
			if _, err := c.Write(chunk); err != nil && !isTimeout(err) {
				return
			}
		}
	}()
	t.Cleanup(s.Stop)
	deadline := time.Now().Add(5 * time.Second)
	for s.recv.Load() < 64<<10 {
		if time.Now().After(deadline) {
			t.Fatalf("stream to %s:%d carries nothing", serverIP, port)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func (s *tcpStream) Stop() {
	s.once.Do(func() {
		close(s.stop)
		s.ln.Close()
		s.client.Close()
		s.wg.Wait()
	})
}

// flowing reports whether the stream delivers bytes within d.
func (s *tcpStream) flowing(d time.Duration) bool {
	before := s.recv.Load()
	time.Sleep(d)
	return s.recv.Load() > before
}

// cutAfter waits until the stream has delivered nothing for quiet (at most
// timeout) and returns how long after since its last bytes arrived.
func (s *tcpStream) cutAfter(since time.Time, quiet, timeout time.Duration) (time.Duration, bool) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		last := time.Unix(0, s.last.Load())
		if time.Since(last) >= quiet {
			if last.Before(since) {
				return 0, true
			}
			return last.Sub(since), true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return 0, false
}

// ---- REST ----

type sgAPI struct {
	f   *fabric
	vpc string
	// ovs are the switches that hold the VPC's hosts: after a change the
	// test waits for their revalidators, since OVS keeps using its
	// datapath flow cache for the few milliseconds it takes to revalidate
	// it against the new tables (docs/pipeline.md, "Security groups").
	ovs []*netlab.OVS
}

// settle waits for two full revalidation rounds on every switch.
func (a sgAPI) settle() {
	a.f.t.Helper()
	for _, o := range a.ovs {
		for i := 0; i < 2; i++ {
			_, err := o.Appctl(testCtx(a.f.t), "revalidator/wait")
			must(a.f.t, err)
		}
	}
}

func (a sgAPI) group(name string) topology.SecurityGroup {
	a.f.t.Helper()
	var g topology.SecurityGroup
	must(a.f.t, json.Unmarshal(a.f.rest("POST", "/v1/vpcs/"+a.vpc+"/security-groups", map[string]any{"name": name}, 201), &g))
	return g
}

func (a sgAPI) rule(group string, body map[string]any) topology.SecurityGroupRule {
	a.f.t.Helper()
	var r topology.SecurityGroupRule
	must(a.f.t, json.Unmarshal(a.f.rest("POST", "/v1/vpcs/"+a.vpc+"/security-groups/"+group+"/rules", body, 201), &r))
	a.settle()
	return r
}

func (a sgAPI) changeRule(r topology.SecurityGroupRule, body map[string]any) {
	a.f.t.Helper()
	a.f.rest("PUT", fmt.Sprintf("/v1/vpcs/%s/security-groups/%s/rules/%d", a.vpc, r.Group, r.ID), body, 200)
}

func (a sgAPI) deleteRule(r topology.SecurityGroupRule) {
	a.f.t.Helper()
	a.f.rest("DELETE", fmt.Sprintf("/v1/vpcs/%s/security-groups/%s/rules/%d", a.vpc, r.Group, r.ID), nil, 204)
	a.settle()
}

func (a sgAPI) join(host string, groups ...string) topology.Host {
	a.f.t.Helper()
	var h topology.Host
	must(a.f.t, json.Unmarshal(a.f.rest("PUT", "/v1/vpcs/"+a.vpc+"/hosts/"+host,
		map[string]any{"security_groups": append([]string{}, groups...)}, 200), &h))
	a.settle()
	return h
}

func (a sgAPI) host(name string) topology.Host {
	a.f.t.Helper()
	var h topology.Host
	must(a.f.t, json.Unmarshal(a.f.rest("GET", "/v1/vpcs/"+a.vpc+"/hosts/"+name, nil, 200), &h))
	return h
}

type ruleWithHits struct {
	topology.SecurityGroupRule
	Hits *controller.RuleHits `json:"hits"`
}

func (a sgAPI) hits(group string) map[uint32]controller.RuleHits {
	a.f.t.Helper()
	var rs []ruleWithHits
	must(a.f.t, json.Unmarshal(a.f.rest("GET", "/v1/vpcs/"+a.vpc+"/security-groups/"+group+"/rules", nil, 200), &rs))
	out := map[uint32]controller.RuleHits{}
	for _, r := range rs {
		if r.Hits == nil {
			a.f.t.Fatalf("rule %d has no hits in GET …/rules", r.ID)
		}
		out[r.ID] = *r.Hits
	}
	return out
}

// conntrack is `ovs-appctl dpctl/dump-conntrack` of one OVS.
func conntrack(t *testing.T, o *netlab.OVS) string {
	t.Helper()
	out, err := o.Appctl(testCtx(t), "dpctl/dump-conntrack")
	must(t, err)
	return out
}

// conntrackOf is the part of a conntrack dump in zone z to or from addr.
func conntrackOf(dump string, z uint16, addr string) []string {
	var out []string
	zone := regexp.MustCompile(fmt.Sprintf(`zone=%d\b`, z))
	for _, l := range strings.Split(dump, "\n") {
		if zone.MatchString(l) && strings.Contains(l, addr) {
			out = append(out, l)
		}
	}
	return out
}

// ---- the checks, on any fabric ----

// sgPair is a client VM and a server VM of one VPC, wherever they are.
type sgPair struct {
	api                  sgAPI
	client, server       *vm
	clientName, srvName  string
	clientOVS, serverOVS *netlab.OVS
}

// runSecurityGroupChecks drives the scenario of this file's comment
// through the REST API and proves each step with traffic.
func runSecurityGroupChecks(t *testing.T, p sgPair) {
	a, cl, srv := p.api, p.client.node, p.server.node
	srvIP, clIP := p.server.ip, p.client.ip

	// Unfiltered, as before security groups existed.
	expect(t, "before any group: ping client → server", true, pingOK(t, cl, srvIP))
	expect(t, "before any group: tcp client → server:81", true, tcpOpens(t, srv, cl, srvIP, 81))

	a.group("web")
	a.group("client")
	sh := a.join(p.srvName, "web")
	t.Logf("%s joined web: conntrack zone %d", p.srvName, sh.CTZone)
	if sh.CTZone == 0 {
		t.Fatalf("a host in a group has no zone: %+v", sh)
	}

	// Default: ingress denied, egress accepted (and its replies come back).
	expect(t, "default-deny ingress: ping client → server", false, pingOK(t, cl, srvIP))
	expect(t, "default-deny ingress: tcp client → server:80", false, tcpOpens(t, srv, cl, srvIP, 80))
	expect(t, "egress default accept, replies pass: ping server → client", true, pingOK(t, srv, clIP))
	expect(t, "egress default accept, replies pass: tcp server → client:82", true, tcpOpens(t, cl, srv, clIP, 82))
	expect(t, "the fabric's own services come before the groups: ping server → its gateway", true, pingOK(t, srv, "10.10.10.1"))

	// Rules.
	r80 := a.rule("web", map[string]any{"direction": "ingress", "priority": 10, "protocol": "tcp", "port_range": "80/80", "cidr": "10.10.10.0/24"})
	r8080 := a.rule("web", map[string]any{"direction": "ingress", "priority": 10, "protocol": "tcp", "port_range": "8000/8080", "cidr": clIP})
	rUDP := a.rule("web", map[string]any{"direction": "ingress", "priority": 20, "protocol": "udp", "port_range": "5353/5353", "security_group": "client"})
	rICMP := a.rule("web", map[string]any{"direction": "ingress", "priority": 30, "protocol": "icmp", "cidr": "10.10.10.0/24"})
	expect(t, "rule tcp 80/80 from 10.10.10.0/24: tcp client → server:80", true, tcpOpens(t, srv, cl, srvIP, 80))
	expect(t, "rule tcp 8000/8080: tcp client → server:8080", true, tcpOpens(t, srv, cl, srvIP, 8080))
	expect(t, "no rule for tcp 81: tcp client → server:81", false, tcpOpens(t, srv, cl, srvIP, 81))
	expect(t, "rule icmp from 10.10.10.0/24: ping client → server", true, pingOK(t, cl, srvIP))
	expect(t, "rule udp 5353 from group client (client not in it): udp client → server:5353", false, udpEchoes(t, srv, cl, srvIP, 5353))
	expect(t, "no rule for udp 5354: udp client → server:5354", false, udpEchoes(t, srv, cl, srvIP, 5354))

	// A peer-group rule follows membership.
	ch := a.join(p.clientName, "client")
	t.Logf("%s joined client: conntrack zone %d", p.clientName, ch.CTZone)
	expect(t, "client joined group client: udp client → server:5353", true, udpEchoes(t, srv, cl, srvIP, 5353))
	expect(t, "client now filtered, no ingress rule: ping server → client", false, pingOK(t, srv, clIP))
	expect(t, "client's own egress and its replies: tcp client → server:80", true, tcpOpens(t, srv, cl, srvIP, 80))
	a.join(p.clientName)
	expect(t, "client left group client: udp client → server:5353", false, udpEchoes(t, srv, cl, srvIP, 5353))
	expect(t, "client unfiltered again: ping server → client", true, pingOK(t, srv, clIP))

	// Equal priority: drop wins; a higher priority beats it.
	drop := a.rule("web", map[string]any{"direction": "ingress", "policy": "drop", "priority": 30, "protocol": "icmp", "cidr": clIP})
	expect(t, "icmp accept and drop at priority 30: ping client → server", false, pingOK(t, cl, srvIP))
	higher := a.rule("web", map[string]any{"direction": "ingress", "priority": 29, "protocol": "icmp", "cidr": clIP + "/32"})
	expect(t, "icmp accept at priority 29 over the drop at 30: ping client → server", true, pingOK(t, cl, srvIP))
	a.deleteRule(higher)
	expect(t, "the priority 29 accept deleted: ping client → server", false, pingOK(t, cl, srvIP))
	a.deleteRule(drop)
	expect(t, "the drop deleted: ping client → server", true, pingOK(t, cl, srvIP))

	// Members of a common group reach each other without a rule.
	a.join(p.clientName, "web")
	expect(t, "client and server both in web: tcp client → server:81", true, tcpOpens(t, srv, cl, srvIP, 81))
	expect(t, "client and server both in web: ping server → client", true, pingOK(t, srv, clIP))
	a.join(p.clientName)

	// An egress rule.
	rOut := a.rule("web", map[string]any{"direction": "egress", "policy": "drop", "priority": 1, "protocol": "tcp", "port_range": "9000/9000", "cidr": "0.0.0.0/0"})
	expect(t, "egress drop tcp 9000: tcp server → client:9000", false, tcpOpens(t, cl, srv, clIP, 9000))
	expect(t, "egress drop tcp 9000 only: tcp server → client:9001", true, tcpOpens(t, cl, srv, clIP, 9001))
	expect(t, "egress drop tcp 9000 only: udp server → client:9000", true, udpEchoes(t, cl, srv, clIP, 9000))
	a.deleteRule(rOut)

	// A rule change cuts the connections it no longer allows, and only
	// those.
	s80 := startStream(t, srv, cl, srvIP, 80)
	s8080 := startStream(t, srv, cl, srvIP, 8080)
	zone := a.host(p.srvName).CTZone
	before := conntrack(t, p.serverOVS)
	if got := conntrackOf(before, zone, srvIP); len(got) == 0 {
		t.Errorf("dpctl/dump-conntrack has no connection of %s in its zone %d:\n%s", p.srvName, zone, before)
	} else {
		t.Logf("dpctl/dump-conntrack, zone %d of %s:\n%s", zone, p.srvName, strings.Join(got, "\n"))
	}
	changed := time.Now()
	a.changeRule(r80, map[string]any{"policy": "drop"})
	confirmed := time.Since(changed)
	cut, ok := s80.cutAfter(changed, time.Second, 10*time.Second)
	if !ok {
		t.Errorf("the stream to port 80 still flows after its rule became drop")
	} else {
		t.Logf("RESULT sg-cut: rule accept→drop confirmed by the switch in %s; the live stream to port 80 got its last bytes %s after the change", ms(confirmed), ms(cut))
	}
	if !s8080.flowing(time.Second) {
		t.Errorf("the stream to port 8080, still allowed, stopped with the change of the port 80 rule")
	}
	after := conntrack(t, p.serverOVS)
	blocked := false
	for _, l := range conntrackOf(after, zone, srvIP) {
		blocked = blocked || strings.Contains(l, "dport=80)") && strings.Contains(l, "mark=1")
	}
	if !blocked {
		t.Errorf("no connection to port 80 marked blocked (mark=1) in zone %d:\n%s", zone, after)
	} else {
		t.Logf("dpctl/dump-conntrack after the change, zone %d:\n%s", zone, strings.Join(conntrackOf(after, zone, srvIP), "\n"))
	}
	s80.Stop()
	s8080.Stop()
	expect(t, "rule 80 now drop: a new tcp client → server:80", false, tcpOpens(t, srv, cl, srvIP, 80))

	// Drops per host and hits per rule.
	a.settle() // also pushes the datapath counters into the flows
	r := p.api.f.drops()
	if n := hostDrops(r, a.vpc, p.srvName)["security_group"]; n == 0 {
		t.Errorf("GET /v1/drops counts no security_group drop for %s: %+v", p.srvName, r.Hosts)
	} else {
		t.Logf("GET /v1/drops: %s security_group=%d", p.srvName, n)
	}
	hits := a.hits("web")
	for _, rr := range []topology.SecurityGroupRule{r80, r8080, rUDP, rICMP} {
		t.Logf("rule %d (%s %s %s): %d packets, %d bytes", rr.ID, rr.Protocol, rr.PortRange, rr.Policy, hits[rr.ID].Packets, hits[rr.ID].Bytes)
		if hits[rr.ID].Packets == 0 || hits[rr.ID].Bytes == 0 {
			t.Errorf("rule %d counted no hits", rr.ID)
		}
	}
}

// TestSecurityGroupsOneSwitch runs the checks between the seed's two VMs
// on br-test.
func TestSecurityGroupsOneSwitch(t *testing.T) {
	s := newSeed(t)
	a := sgAPI{f: s.fabric, vpc: "vpc-seed", ovs: []*netlab.OVS{s.ovs}}
	runSecurityGroupChecks(t, sgPair{api: a, client: s.vm1, server: s.vm2, clientName: "test1", srvName: "test2",
		clientOVS: s.ovs, serverOVS: s.ovs})
	s.assertSwitchHoldsDesired()
}

// TestSecurityGroupsTwoChassis runs the checks between vm1 on node1 and
// vm2 on node2, through VXLAN: egress on the sender's chassis, ingress on
// the receiver's.
func TestSecurityGroupsTwoChassis(t *testing.T) {
	m := newMultiChassis(t, "node1", "node2")
	m.registerChassis("node1")
	m.registerChassis("node2")
	must(t, m.underlay.ResolveTunnelNeighbors(testCtx(t)))
	m.rest("POST", "/v1/vpcs", map[string]any{"name": "vpc-a"}, 201)
	m.rest("POST", "/v1/vpcs/vpc-a/vswitches", map[string]any{"name": "vsw-a", "cidr": "10.10.10.0/24", "gateway": "10.10.10.1"}, 201)
	vm1, vm2 := m.addVM(chVM1), m.addVM(chVM2)
	m.plugVMOn(vm1, chVM1, "node1")
	m.plugVMOn(vm2, chVM2, "node2")
	m.addHost("vpc-a", chVM1, "node1")
	m.addHost("vpc-a", chVM2, "node2")
	a := sgAPI{f: m.fabric, vpc: "vpc-a", ovs: []*netlab.OVS{m.chassis["node1"].OVS, m.chassis["node2"].OVS}}
	m.eventually("vm1 → vm2 over VXLAN", 10*time.Second, func() error {
		if !pingOK(t, vm1.node, vm2.ip) {
			return fmt.Errorf("no reply")
		}
		return nil
	})
	runSecurityGroupChecks(t, sgPair{api: a, client: vm1, server: vm2, clientName: "vm1", srvName: "vm2",
		clientOVS: m.chassis["node1"].OVS, serverOVS: m.chassis["node2"].OVS})
	// The client's chassis saw nothing of the server's zone: ingress is
	// checked where the server is.
	z := a.host("vm2").CTZone
	if got := conntrackOf(conntrack(t, m.chassis["node1"].OVS), z, vm2.ip); len(got) != 0 {
		t.Errorf("node1 has connections in vm2's zone %d:\n%s", z, strings.Join(got, "\n"))
	}
}

// TestSecurityGroupsControllerKill: both seed VMs filtered, a continuous
// ping and a TCP stream between their containers allowed by rules; the
// controller is SIGKILLed and restarted: nothing is lost, the stream
// lives on, the zones are the same, the restart sends no flow-mod, and
// conntrack still holds the connection in the same zones.
func TestSecurityGroupsControllerKill(t *testing.T) {
	s := newSeed(t)
	a := sgAPI{f: s.fabric, vpc: "vpc-seed", ovs: []*netlab.OVS{s.ovs}}
	a.group("web")
	a.group("client")
	a.rule("web", map[string]any{"direction": "ingress", "protocol": "icmp", "cidr": "172.18.0.0/16"})
	a.rule("web", map[string]any{"direction": "ingress", "protocol": "tcp", "port_range": "5201/5201", "security_group": "client"})
	a.rule("client", map[string]any{"direction": "egress", "policy": "drop", "priority": 1, "protocol": "tcp", "port_range": "22/22", "cidr": "0.0.0.0/0"})
	a.join("test1", "client")
	a.join("test2", "web")
	// The stream's source is the container behind test1 (172.18.1.3), not
	// test1's address: the peer group does not cover it, so allow it.
	a.rule("web", map[string]any{"direction": "ingress", "protocol": "tcp", "port_range": "5201/5201", "cidr": "172.18.1.0/24"})
	zones := map[string]uint16{"test1": a.host("test1").CTZone, "test2": a.host("test2").CTZone}

	p := s.probeSeed(5201)
	ctBefore := conntrack(t, s.ovs)
	for name, z := range zones {
		if len(conntrackOf(ctBefore, z, "172.18.3.4")) == 0 {
			t.Errorf("no connection to 172.18.3.4 in %s's zone %d:\n%s", name, z, ctBefore)
		}
	}
	fault := time.Now()
	must(t, s.ctrl.Kill())
	time.Sleep(700 * time.Millisecond)
	restart := time.Now()
	s.startController()
	s.waitSwitch(s.dpid)
	recovery := time.Since(restart)
	time.Sleep(300 * time.Millisecond)
	r := p.Stop()
	r.report(t, "controller-kill-with-security-groups", fault, recovery, "restart→switch reconciled", "")
	if r.PingLost != 0 {
		t.Errorf("%d pings lost across the controller kill", r.PingLost)
	}
	if r.TCPErr != nil {
		t.Errorf("TCP stream broke: %v", r.TCPErr)
	}
	for name, z := range zones {
		if got := a.host(name).CTZone; got != z {
			t.Errorf("%s's zone changed across the restart: %d → %d", name, z, got)
		}
	}
	if installed, added, deleted := s.reconcileCounts(); added != 0 || deleted != 0 {
		t.Errorf("restart reconciliation sent flow-mods (installed %d, added %d, deleted %d)", installed, added, deleted)
	} else {
		t.Logf("reconcile after restart: installed=%d added=0 deleted=0", installed)
	}
	ctAfter := conntrack(t, s.ovs)
	for name, z := range zones {
		if got := conntrackOf(ctAfter, z, "172.18.3.4"); len(got) == 0 {
			t.Errorf("after the restart, no connection in %s's zone %d:\n%s", name, z, ctAfter)
		} else {
			t.Logf("after the restart, zone %d (%s):\n%s", z, name, strings.Join(got, "\n"))
		}
	}
	s.assertSwitchHoldsDesired()
}
