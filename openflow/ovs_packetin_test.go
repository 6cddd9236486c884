package openflow

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vpcflow/vpcflow/e2e/netlab"
)

// echoFrame is what the test reads from an ICMP echo frame.
type echoFrame struct {
	dstMAC, srcMAC net.HardwareAddr
	src, dst       netip.Addr
	icmpType       uint8
	id, seq        uint16
}

// inetChecksum is the Internet checksum of b.
func inetChecksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// parseICMPEcho parses an Ethernet frame holding an ICMP echo request or
// reply and checks its lengths and checksums.
func parseICMPEcho(b []byte) (echoFrame, error) {
	if len(b) < 14+20+8 || be.Uint16(b[12:]) != EthTypeIPv4 {
		return echoFrame{}, fmt.Errorf("not IPv4 over Ethernet (%d bytes)", len(b))
	}
	ip := b[14:]
	ihl := int(ip[0]&0x0f) * 4
	total := int(be.Uint16(ip[2:]))
	if ip[0]>>4 != 4 || ihl < 20 || total < ihl+8 || total > len(ip) {
		return echoFrame{}, fmt.Errorf("bad IPv4 header %x", ip[:20])
	}
	if ip[9] != 1 {
		return echoFrame{}, fmt.Errorf("IP protocol %d, not ICMP", ip[9])
	}
	if inetChecksum(ip[:ihl]) != 0 {
		return echoFrame{}, errors.New("bad IPv4 header checksum")
	}
	icmp := ip[ihl:total]
	if inetChecksum(icmp) != 0 {
		return echoFrame{}, errors.New("bad ICMP checksum")
	}
	return echoFrame{
		dstMAC: net.HardwareAddr(b[0:6]), srcMAC: net.HardwareAddr(b[6:12]),
		src: netip.AddrFrom4([4]byte(ip[12:16])), dst: netip.AddrFrom4([4]byte(ip[16:20])),
		icmpType: icmp[0], id: be.Uint16(icmp[4:]), seq: be.Uint16(icmp[6:]),
	}, nil
}

// echoReply crafts the echo reply to an echo request frame: MACs and IP
// addresses swapped, ICMP type 0, same id, sequence and payload, fresh
// checksums.
func echoReply(req []byte) []byte {
	ihl := int(req[14]&0x0f) * 4
	total := int(be.Uint16(req[16:]))
	r := append([]byte(nil), req[:14+total]...) // without Ethernet padding
	copy(r[0:6], req[6:12])
	copy(r[6:12], req[0:6])
	ip := r[14:]
	copy(ip[12:16], req[14+16:14+20])
	copy(ip[16:20], req[14+12:14+16])
	ip[8] = 64               // TTL
	be.PutUint16(ip[10:], 0) // header checksum
	be.PutUint16(ip[10:], inetChecksum(ip[:ihl]))
	icmp := ip[ihl:total]
	icmp[0], icmp[1] = 0, 0 // echo reply
	be.PutUint16(icmp[2:], 0)
	be.PutUint16(icmp[2:], inetChecksum(icmp))
	return r
}

func TestEchoReplyFrame(t *testing.T) {
	req := unhex(t, icmpFrame)
	e, err := parseICMPEcho(req)
	if err != nil || e.icmpType != 8 || e.id != 0x1234 || e.seq != 1 {
		t.Fatalf("request: %+v %v", e, err)
	}
	r, err := parseICMPEcho(echoReply(req))
	if err != nil || r.icmpType != 0 || r.id != e.id || r.seq != e.seq || r.src != e.dst || r.dst != e.src ||
		r.srcMAC.String() != e.dstMAC.String() || r.dstMAC.String() != e.srcMAC.String() {
		t.Fatalf("reply: %+v %v", r, err)
	}
}

// latencies summarizes request durations.
type latencies []time.Duration

func (l latencies) String() string {
	if len(l) == 0 {
		return "none"
	}
	s := slices.Clone(l)
	slices.Sort(s)
	return fmt.Sprintf("n=%d p50=%v p90=%v max=%v", len(s), s[len(s)/2].Round(time.Microsecond),
		s[len(s)*9/10].Round(time.Microsecond), s[len(s)-1].Round(time.Microsecond))
}

func (l latencies) max() time.Duration {
	if len(l) == 0 {
		return 0
	}
	return slices.Max(l)
}

// TestOVSPacketInOut puts the controller in the loop on a real OVS: A
// and B are namespaces on one bridge, A's ICMP goes to the controller
// (our encoding of CONTROLLER:65535), the handler checks each packet-in
// and answers the echo request with a hand-made echo reply sent back to A
// with PacketOut, so A's ping succeeds although nothing reaches B. Then a
// flood of packet-ins, handled and then stuck, must not hold up Apply and
// DumpFlows on the same switch.
func TestOVSPacketInOut(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	lab := netlab.New(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	phys, err := lab.AddNode("phys")
	must(err)
	a, err := lab.AddNode("a")
	must(err)
	b, err := lab.AddNode("b")
	must(err)
	o, err := phys.StartOVS(ctx)
	must(err)
	const br = "br-pin"
	const macA, macB = "52:58:00:00:0a:01", "52:58:00:00:0b:01"
	ipA, ipB := netip.MustParseAddr("10.77.0.1"), netip.MustParseAddr("10.77.0.2")
	must(o.AddBridge(ctx, br))
	pa, err := lab.LinkToOVS(ctx, a, "eth0", macA, phys, o, br, "pa", false)
	must(err)
	_, err = lab.LinkToOVS(ctx, b, "eth0", macB, phys, o, br, "pb", false)
	must(err)
	must(a.AddAddr(ctx, "eth0", ipA.String()+"/24"))
	must(b.AddAddr(ctx, "eth0", ipB.String()+"/24"))
	// Static neighbours: A sends nothing but IPv4.
	a.MustCmd(t, "ip", "neigh", "replace", ipB.String(), "lladdr", macB, "dev", "eth0", "nud", "permanent")
	b.MustCmd(t, "ip", "neigh", "replace", ipA.String(), "lladdr", macA, "dev", "eth0", "nud", "permanent")
	pA := uint32(pa)

	// The handler: records packet-ins, checks them, answers echo
	// requests when replying is on, or blocks while stuck is set.
	var (
		mu         sync.Mutex
		seen       []PacketIn // the first few
		bad        []string
		received   atomic.Uint64
		replying   atomic.Bool
		replied    atomic.Uint64
		replyErrs  atomic.Uint64
		stuck      atomic.Bool
		unstick    = make(chan struct{})
		unstickOne sync.Once
	)
	release := func() { unstickOne.Do(func() { close(unstick) }) }
	defer release()
	const cookie = 0x7670050000000001
	h := &pinRecorder{recorder: newRecorder()}
	h.fn = func(sw *Switch, pi PacketIn) {
		received.Add(1)
		if stuck.Load() {
			<-unstick
		}
		e, err := parseICMPEcho(pi.Data)
		var problem string
		switch {
		case err != nil:
			problem = err.Error()
		case pi.InPort != pA || pi.Cookie != cookie || pi.TableID != 0 || pi.Reason != PacketInAction ||
			pi.BufferID != noBuffer || int(pi.TotalLen) != len(pi.Data):
			problem = fmt.Sprintf("packet-in header %+v", pi)
		case e.icmpType != 8 || e.src != ipA || e.dst != ipB || e.srcMAC.String() != macA || e.dstMAC.String() != macB:
			problem = fmt.Sprintf("frame %+v", e)
		}
		mu.Lock()
		if len(seen) < 10 {
			seen = append(seen, pi)
		}
		if problem != "" && len(bad) < 10 {
			bad = append(bad, problem)
		}
		mu.Unlock()
		if problem != "" || !replying.Load() {
			return
		}
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		defer pcancel()
		if err := sw.PacketOut(pctx, PortController, []Action{Output(pA)}, echoReply(pi.Data)); err != nil {
			replyErrs.Add(1)
			t.Errorf("PacketOut: %v", err)
			return
		}
		replied.Add(1)
	}

	ln, err := phys.Listen("tcp", "127.0.0.1:0")
	must(err)
	addr, _ := startServerOn(t, ln, h, ServerOptions{})
	must(o.SetController(ctx, br, "tcp:"+addr))
	dpid, err := o.DPID(ctx, br)
	must(err)
	sw := h.waitConnected(t, dpid, 20*time.Second)

	toController := Flow{Table: 0, Priority: 100, Cookie: cookie,
		Match:   NewMatch().EthType(EthTypeIPv4).With(FieldIPProto, 1).InPort(pA),
		Actions: []Action{ToController()}}
	if err := sw.Apply(ctx, addMods([]Flow{toController})); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	t.Logf("installed: %s", &toController)

	t.Run("controller action as OVS sees it", func(t *testing.T) {
		got := installedByKey(t, ctx, sw)
		fs, ok := got[toController.Key()]
		if len(got) != 1 || !ok || !toController.SameContent(&fs.Flow) || fs.Flow.String() != toController.String() {
			t.Fatalf("dumped:\n%s\nwant %s", dumpText(got), &toController)
		}
		flows, err := o.OfctlDumpFlows(ctx, br, "--no-stats")
		if err != nil || len(flows) != 1 || !strings.HasSuffix(flows[0], " actions=CONTROLLER:65535") {
			t.Errorf("ovs-ofctl dump-flows: %v %q", err, flows)
		}
		file := filepath.Join(t.TempDir(), "flows.txt")
		must(os.WriteFile(file, []byte(toController.String()+"\n"), 0o644))
		if out, err := o.Ofctl(ctx, br, "diff-flows", file); err != nil || strings.TrimSpace(out) != "" {
			t.Errorf("ovs-ofctl diff-flows: %v\n%s", err, out)
		}
	})

	pingStats := func(out string) (sent, got int) {
		m := regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("cannot read ping output:\n%s", out)
		}
		sent, _ = strconv.Atoi(m[1])
		got, _ = strconv.Atoi(m[2])
		return sent, got
	}
	inEchos := func() uint64 { return icmpInEchos(t, b.MustCmd(t, "cat", "/proc/net/snmp")) }

	t.Run("ping answered by the controller", func(t *testing.T) {
		replying.Store(true)
		echos0, recv0, repl0 := inEchos(), received.Load(), replied.Load()
		out, err := a.Cmd(ctx, "ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", ipB.String())
		sent, got := pingStats(out)
		if err != nil || sent != 3 || got != 3 {
			t.Errorf("ping: %d sent, %d received (%v), want 3 replies:\n%s", sent, got, err, out)
		}
		if n := received.Load() - recv0; n != 3 {
			t.Errorf("handler got %d packet-ins, want 3", n)
		}
		if n := replied.Load() - repl0; n != 3 {
			t.Errorf("handler sent %d replies, want 3", n)
		}
		if n := inEchos() - echos0; n != 0 {
			t.Errorf("B received %d echo requests; the controller should have answered them all", n)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(bad) > 0 {
			t.Errorf("bad packet-ins: %q", bad)
		}
		for _, pi := range seen {
			e, _ := parseICMPEcho(pi.Data)
			t.Logf("packet-in: reason=%d table=%d cookie=%#x in_port=%d total_len=%d buffer=%#x match=%s; icmp type %d %s > %s id=%#x seq=%d",
				pi.Reason, pi.TableID, pi.Cookie, pi.InPort, pi.TotalLen, pi.BufferID, pi.Match, e.icmpType, e.src, e.dst, e.id, e.seq)
		}
		if len(seen) != 3 {
			t.Errorf("recorded %d packet-ins", len(seen))
		}
	})

	// applyOnce changes one flow in table 50 and times Apply and
	// DumpFlows.
	var gen atomic.Uint64
	applyOnce := func() (apply, dump time.Duration, err error) {
		i := gen.Add(1)
		f := Flow{Table: 50, Priority: 10, Cookie: 0x50, Match: NewMatch().InPort(99), Actions: []Action{Output(uint32(i%64 + 1))}}
		rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
		defer rcancel()
		start := time.Now()
		if err := sw.Apply(rctx, addMods([]Flow{f})); err != nil {
			return 0, 0, err
		}
		apply = time.Since(start)
		start = time.Now()
		if _, err := sw.DumpFlows(rctx); err != nil {
			return 0, 0, err
		}
		return apply, time.Since(start), nil
	}
	var baseApply, baseDump latencies
	for range 30 {
		ap, dp, err := applyOnce()
		if err != nil {
			t.Fatal(err)
		}
		baseApply, baseDump = append(baseApply, ap), append(baseDump, dp)
	}
	t.Logf("idle: Apply %s; DumpFlows %s", baseApply, baseDump)

	// flood runs ping -f with args for a second while applying flows in a
	// loop, and returns the ping output and the latencies.
	flood := func(t *testing.T, args ...string) (out string, ap, dp latencies) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			argv := append([]string{"ping", "-n", "-q", "-f", "-w", "1"}, args...)
			out, _ = a.Cmd(ctx, append(argv, ipB.String())...)
		}()
		for {
			select {
			case <-done:
				return out, ap, dp
			default:
			}
			x, y, err := applyOnce()
			if err != nil {
				t.Fatalf("during the flood: %v", err)
			}
			ap, dp = append(ap, x), append(dp, y)
		}
	}
	// limit is how long an Apply may take during a flood: far above the
	// idle latency (about a millisecond) and far below what waiting
	// behind the packet-ins would cost.
	const limit = 500 * time.Millisecond

	t.Run("flood with a handler that answers", func(t *testing.T) {
		replying.Store(true)
		st0, recv0, repl0 := sw.PacketInStats(), received.Load(), replied.Load()
		out, ap, dp := flood(t)
		sent, got := pingStats(out)
		st := sw.PacketInStats()
		t.Logf("ping -f for 1s: %d sent, %d answered; packet-ins handled %d, replies %d; stats %+v (dropped during the flood: %d)",
			sent, got, received.Load()-recv0, replied.Load()-repl0, st, st.Dropped-st0.Dropped)
		t.Logf("flooded: Apply %s; DumpFlows %s", ap, dp)
		if got < 100 {
			t.Errorf("only %d of %d flood pings answered through the controller", got, sent)
		}
		if len(ap) < 10 || ap.max() > limit || dp.max() > limit {
			t.Errorf("Apply/DumpFlows held up by the flood: Apply %s, DumpFlows %s", ap, dp)
		}
	})

	t.Run("flood with a stuck handler", func(t *testing.T) {
		replying.Store(false)
		stuck.Store(true)
		st0 := sw.PacketInStats()
		out, ap, dp := flood(t, "-l", "1000")
		sent, got := pingStats(out)
		waitFor(t, "packet-ins to stop arriving", func() bool {
			before := sw.PacketInStats()
			time.Sleep(200 * time.Millisecond)
			return sw.PacketInStats() == before
		})
		st := sw.PacketInStats()
		t.Logf("ping -f -l 1000 for 1s with the handler stuck: %d sent, %d answered; stats %+v", sent, got, st)
		t.Logf("flooded, handler stuck: Apply %s; DumpFlows %s", ap, dp)
		if d := st.Dropped - st0.Dropped; d == 0 {
			t.Errorf("no packet-ins dropped with the handler stuck (%d sent): queue not bounded?", sent)
		}
		if q := st.Queued - st0.Queued; q > 257 {
			t.Errorf("%d packet-ins queued behind a stuck handler, more than the queue (256) and the one in the handler", q)
		}
		if len(ap) < 10 || ap.max() > limit || dp.max() > limit {
			t.Errorf("Apply/DumpFlows held up by the flood: Apply %s, DumpFlows %s", ap, dp)
		}
		// Unstick: the backlog drains and the loop works again.
		stuck.Store(false)
		release()
		waitFor(t, "backlog delivered", func() bool { s := sw.PacketInStats(); return s.Delivered == s.Queued })
		replying.Store(true)
		out2, err := a.Cmd(ctx, "ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", ipB.String())
		if sent, got := pingStats(out2); err != nil || got != 3 {
			t.Errorf("ping after the backlog: %d sent, %d received (%v)", sent, got, err)
		}
	})
	mu.Lock()
	if len(bad) > 0 {
		t.Errorf("bad packet-ins: %q", bad)
	}
	mu.Unlock()
	if n := replyErrs.Load(); n > 0 {
		t.Errorf("%d PacketOut errors", n)
	}
}
