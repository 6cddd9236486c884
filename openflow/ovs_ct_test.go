package openflow

import (
	"context"
	"net/netip"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/vpcflow/vpcflow/e2e/netlab"
)

// twoHosts is an ovsLab with hosts a (10.77.0.1) and b (10.77.0.2) on one
// bridge, static neighbours (so they send nothing but IPv4), and the
// controller connected.
type twoHosts struct {
	*ovsLab
	br     string
	a, b   *netlab.Node
	pA, pB uint32
	sw     *Switch
}

const (
	macHostA, macHostB = "52:58:00:00:0a:01", "52:58:00:00:0b:01"
	ipHostA, ipHostB   = "10.77.0.1", "10.77.0.2"
)

func newTwoHosts(t *testing.T, ctx context.Context, h interface {
	Handler
	waitConnected(t *testing.T, dpid uint64, timeout time.Duration) *Switch
}, extraNeigh ...string) *twoHosts {
	t.Helper()
	lab := newOVSLab(t, ctx)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	a, err := lab.lab.AddNode("a")
	must(err)
	b, err := lab.lab.AddNode("b")
	must(err)
	const br = "br-two"
	must(lab.ovs.AddBridge(ctx, br))
	pa, err := lab.lab.LinkToOVS(ctx, a, "eth0", macHostA, lab.phys, lab.ovs, br, "pa", false)
	must(err)
	pb, err := lab.lab.LinkToOVS(ctx, b, "eth0", macHostB, lab.phys, lab.ovs, br, "pb", false)
	must(err)
	must(a.AddAddr(ctx, "eth0", ipHostA+"/24"))
	must(b.AddAddr(ctx, "eth0", ipHostB+"/24"))
	a.MustCmd(t, "ip", "neigh", "replace", ipHostB, "lladdr", macHostB, "dev", "eth0", "nud", "permanent")
	b.MustCmd(t, "ip", "neigh", "replace", ipHostA, "lladdr", macHostA, "dev", "eth0", "nud", "permanent")
	for _, ip := range extraNeigh { // more addresses A reaches through B's MAC
		a.MustCmd(t, "ip", "neigh", "replace", ip, "lladdr", macHostB, "dev", "eth0", "nud", "permanent")
	}
	addr := lab.startServer(t, h, ServerOptions{})
	must(lab.ovs.SetController(ctx, br, "tcp:"+addr))
	dpid, err := lab.ovs.DPID(ctx, br)
	must(err)
	sw := h.waitConnected(t, dpid, 20*time.Second)
	return &twoHosts{ovsLab: lab, br: br, a: a, b: b, pA: uint32(pa), pB: uint32(pb), sw: sw}
}

// ping runs n pings from node to dst and returns how many were answered.
func ping(t *testing.T, ctx context.Context, node *netlab.Node, dst string, n int) int {
	t.Helper()
	out, _ := node.Cmd(ctx, "ping", "-n", "-c", strconv.Itoa(n), "-i", "0.2", "-W", "1", dst)
	m := regexp.MustCompile(`(\d+) received`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("cannot read ping output:\n%s", out)
	}
	got, _ := strconv.Atoi(m[1])
	return got
}

// TestOVSConntrackFirewallAndNAT drives traffic through our ct encodings
// on the userspace datapath: a stateful firewall (A may open connections
// to B, B may not open any to A; replies pass as +est with the ct_mark the
// commit set) and DNAT of a virtual address to B, undone on the replies by
// a bare ct(nat).
func TestOVSConntrackFirewallAndNAT(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const vip = "10.77.0.100"
	h := newTwoHosts(t, ctx, newRecorder(), vip)
	ip := NewMatch().EthType(EthTypeIPv4)
	const zone = 5
	const cookie = 0x76700a0000000001
	flows := []Flow{
		// Every IPv4 packet goes through conntrack (NAT of known
		// connections applied) and on to table 1.
		{Table: 0, Priority: 100, Match: ip, Actions: []Action{ConnTrack(CT{Zone: zone, NAT: &NAT{}, Recirc: true, Table: 1})}},
		// A opens connections to B and to the VIP (DNAT to B).
		{Table: 1, Priority: 120, Match: ip.CTState(CTTrk|CTNew, CTEst).InPort(h.pA).Addr(FieldIPv4Dst, netip.MustParseAddr(vip)),
			Actions: []Action{ConnTrack(CT{Commit: true, Zone: zone, NAT: &NAT{Kind: NATDst, Min: netip.MustParseAddr(ipHostB)},
				Exec: []Action{SetField(FieldCTMark, 2)}}), Output(h.pB)}},
		{Table: 1, Priority: 110, Match: ip.CTState(CTTrk|CTNew, CTEst).InPort(h.pA),
			Actions: []Action{ConnTrack(CT{Commit: true, Zone: zone, Exec: []Action{SetField(FieldCTMark, 1), Load(FieldCTLabel, 0, 8, 0x42)}}), Output(h.pB)}},
		{Table: 1, Priority: 100, Match: ip.CTState(CTTrk|CTEst, CTNew|CTInv).InPort(h.pA), Actions: []Action{Output(h.pB)}},
		// B: only replies of connections A opened (marked 1 or 2).
		{Table: 1, Priority: 100, Match: ip.CTState(CTTrk|CTEst|CTRpl, CTNew|CTInv).InPort(h.pB).WithMasked(FieldCTMark, 0, 0xfffffffc).
			WithMasked(FieldCTLabel, 0x42, 0xff), Actions: []Action{Output(h.pA)}},
		// The reply of the DNATed connection, un-NATed by the ct(nat) of
		// table 0: its source was rewritten back to the VIP (+snat).
		{Table: 1, Priority: 99, Match: ip.CTState(CTTrk|CTEst|CTRpl|CTSNAT, CTNew|CTInv|CTDNAT).InPort(h.pB).With(FieldCTMark, 2),
			Actions: []Action{Output(h.pA)}},
		{Table: 1, Priority: 0}, // everything else: drop
	}
	for i := range flows {
		flows[i].Cookie = cookie
	}
	if err := h.sw.Apply(ctx, addMods(flows)); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	got := installedByKey(t, ctx, h.sw)
	for i := range flows {
		if fs, ok := got[flows[i].Key()]; !ok || !flows[i].SameContent(&fs.Flow) {
			t.Errorf("not installed as built: %s", &flows[i])
		}
	}

	if n := ping(t, ctx, h.a, ipHostB, 3); n != 3 {
		t.Errorf("A -> B: %d of 3 pings answered, want 3 (new from A, replies +est+rpl with ct_mark 1 and ct_label 0x42)", n)
	}
	if n := ping(t, ctx, h.b, ipHostA, 2); n != 0 {
		t.Errorf("B -> A: %d of 2 pings answered, want 0 (B may not open connections)", n)
	}
	if n := ping(t, ctx, h.a, vip, 3); n != 3 {
		t.Errorf("A -> %s (DNAT to B): %d of 3 pings answered, want 3", vip, n)
	}
	out, _ := h.ovs.Appctl(ctx, "dpctl/dump-conntrack", "zone="+strconv.Itoa(zone))
	t.Logf("conntrack zone %d:\n%s", zone, out)
	for _, want := range []string{"mark=1", "mark=2", "labels=0x42", "dst=" + vip} {
		if !regexp.MustCompile(regexp.QuoteMeta(want)).MatchString(out) {
			t.Errorf("conntrack table lacks %q", want)
		}
	}
	if t.Failed() {
		dump, _ := h.ofctl(ctx, h.br, "dump-flows")
		t.Logf("flows:\n%s", dump)
	}
}

// TestOVSControllerUserdataAndResume: a controller(userdata=…,pause)
// action delivers an NXT_PACKET_IN2 with the userdata, table, cookie,
// reason and the registers an earlier table set; Switch.Resume lets the
// paused packet carry on to B, so A's pings are answered only because the
// handler resumes them. A ToController flow keeps arriving as before
// (now as packet-in2, without userdata).
func TestOVSControllerUserdataAndResume(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var (
		mu   sync.Mutex
		pins []PacketIn
	)
	rec := &pinRecorder{recorder: newRecorder()}
	resume := make(chan bool, 1)
	resume <- true
	rec.fn = func(sw *Switch, pi PacketIn) {
		mu.Lock()
		pins = append(pins, pi)
		mu.Unlock()
		do := <-resume
		resume <- do
		if do && len(pi.Continuation) > 0 {
			rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
			defer rcancel()
			if err := sw.Resume(rctx, pi); err != nil {
				t.Errorf("Resume: %v", err)
			}
		}
	}
	h := newTwoHosts(t, ctx, rec)
	ip := NewMatch().EthType(EthTypeIPv4)
	userdata := []byte{0xde, 0xad, 0xbe, 0xef, 0x01}
	const cookie = 0x76700b0000000001
	toB := Flow{Table: 7, Priority: 100, Cookie: cookie + 1, Match: NewMatch().ICMP().Reg(3, 0x2a, 0xffffffff),
		Actions: []Action{ControllerWith(Controller{Userdata: userdata}), Output(h.pB)}}
	flows := []Flow{
		{Table: 0, Priority: 100, Cookie: cookie, Match: NewMatch().ICMP().InPort(h.pA),
			Actions: []Action{SetField(FieldReg3, 0x2a), Load(FieldReg4, 4, 4, 9), GotoTable(7)}},
		toB,
		{Table: 0, Priority: 100, Cookie: cookie + 2, Match: ip.InPort(h.pB), Actions: []Action{Output(h.pA)}},
		{Table: 0, Priority: 90, Cookie: cookie + 3, Match: NewMatch().UDP().InPort(h.pA), Actions: []Action{ToController()}},
	}
	if err := h.sw.Apply(ctx, addMods(flows)); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	// takePins takes the packet-ins so far, once want of them arrived (or
	// 5 s passed) and 100 ms more for any extra: the switch sends them
	// after the packets it forwards, so the pings can be answered first.
	takePins := func(want int) []PacketIn {
		deadline := time.Now().Add(5 * time.Second)
		for {
			mu.Lock()
			n := len(pins)
			mu.Unlock()
			if n >= want || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		p := pins
		pins = nil
		return p
	}
	check := func(t *testing.T, pi PacketIn, table uint8, cookie uint64, paused bool) {
		t.Helper()
		t.Logf("packet-in: reason=%d table=%d cookie=%#x in_port=%d total_len=%d userdata=%x continuation=%d bytes match=%s",
			pi.Reason, pi.TableID, pi.Cookie, pi.InPort, pi.TotalLen, pi.Userdata, len(pi.Continuation), pi.Match)
		r3, ok3 := pi.Match.Get(FieldReg3)
		r4, ok4 := pi.Match.Get(FieldReg4)
		if string(pi.Userdata) != string(userdata) || pi.TableID != table || pi.Cookie != cookie || pi.Reason != PacketInAction ||
			pi.InPort != h.pA || !ok3 || r3.Value != 0x2a || !ok4 || r4.Value != 0x90 || (len(pi.Continuation) > 0) != paused ||
			int(pi.TotalLen) != len(pi.Data) {
			t.Errorf("packet-in %+v", pi)
		}
		if _, err := parseICMPEcho(pi.Data); err != nil {
			t.Errorf("packet-in frame: %v", err)
		}
	}

	t.Run("userdata", func(t *testing.T) {
		if n := ping(t, ctx, h.a, ipHostB, 2); n != 2 {
			t.Errorf("%d of 2 pings answered, want 2 (the controller action does not stop the packet)", n)
		}
		p := takePins(2)
		for _, pi := range p {
			check(t, pi, 7, cookie+1, false)
		}
		if len(p) != 2 {
			t.Errorf("%d packet-ins, want 2", len(p))
		}
	})

	t.Run("pause and resume", func(t *testing.T) {
		paused := toB
		paused.Actions = []Action{ControllerWith(Controller{Userdata: userdata, Pause: true}), Output(h.pB)}
		if err := h.sw.Apply(ctx, addMods([]Flow{paused})); err != nil {
			t.Fatalf("Apply: %v", err)
		}
		if n := ping(t, ctx, h.a, ipHostB, 3); n != 3 {
			t.Errorf("with Resume: %d of 3 pings answered, want 3", n)
		}
		p := takePins(3)
		for _, pi := range p {
			// OVS reports a paused packet's first rule (table 0), not
			// the one whose action paused it.
			check(t, pi, 0, cookie, true)
		}
		if len(p) != 3 {
			t.Errorf("%d packet-ins, want 3", len(p))
		}
		<-resume
		resume <- false
		if n := ping(t, ctx, h.a, ipHostB, 2); n != 0 {
			t.Errorf("without Resume: %d of 2 pings answered, want 0", n)
		}
		if p := takePins(2); len(p) != 2 {
			t.Errorf("%d packet-ins without Resume, want 2", len(p))
		}
	})

	t.Run("ToController still arrives, without userdata", func(t *testing.T) {
		if out, err := h.a.Cmd(ctx, "bash", "-c", "echo x > /dev/udp/"+ipHostB+"/9"); err != nil {
			t.Fatalf("sending UDP: %v\n%s", err, out)
		}
		waitFor(t, "the UDP packet-in", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(pins) > 0
		})
		for _, pi := range takePins(1) {
			if pi.TableID != 0 || pi.Cookie != cookie+3 || pi.Userdata != nil || pi.Continuation != nil || pi.Reason != PacketInAction {
				t.Errorf("packet-in %+v", pi)
			}
		}
	})
}
