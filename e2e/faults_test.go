package e2e

// Fault scenarios ("survive restarts, faults and bad input"): each runs on
// the seed scenario with a continuous ping (100 packets/s) and a TCP stream
// from testns1 to testns2 across the fault, and reports one line
//
//	FAULT <name>: ping sent=N lost=N longest_outage=Xms; tcp bytes=N longest_stall=Xms; recovery=Xms
//
// Timings are reported, not asserted (beyond generous sanity bounds).

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vpcflow/vpcflow/e2e/netlab"
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// ---- traffic probe ----

const (
	probePingInterval = 10 * time.Millisecond
	probeTCPWindow    = 100 * time.Millisecond
	// probeTCPChunk bytes are written every probeTCPTick: ~3.2 MB/s, a
	// steady stream that does not saturate the userspace datapath (the
	// pings must not be lost to congestion the fault did not cause).
	probeTCPChunk = 16 << 10
	probeTCPTick  = 5 * time.Millisecond
	// probeInFlight is how many trailing unanswered pings are taken as
	// still in flight when the probe stops, not lost.
	probeInFlight = 5
)

// trafficProbe runs a continuous ping (`ping -i 0.01 -n -D`) and a paced
// TCP stream between two nodes, and measures losses and outages.
type trafficProbe struct {
	t       *testing.T
	dst     string
	started time.Time

	ping    *exec.Cmd
	pingOut lockedBuffer

	ln       net.Listener
	client   net.Conn
	server   atomic.Pointer[net.Conn]
	recv     atomic.Int64
	sent     atomic.Int64
	stop     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	windows  []tcpWindow
	tcpErr   error
	stopOnce sync.Once
	result   probeResult
	// rawDir, if set, receives probe-ping.txt and probe-tcp.txt.
	rawDir string
}

type tcpWindow struct {
	end   time.Time
	bytes int64
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// probeResult is what a trafficProbe measured.
type probeResult struct {
	PingSent, PingReceived, PingLost, PingDup int
	// LongestOutage is the longest run of unanswered pings, timed by when
	// they were sent: from the last answered ping before the run to the
	// first answered one after it, less one interval; OutageFrom/OutageTo
	// are when those two were sent.
	LongestOutage        time.Duration
	LongestRun           int // pings in that run
	OutageFrom, OutageTo time.Time
	replies              map[int]time.Time
	PingSummary          string // ping's own statistics line
	// MaxRTT is the slowest reply; Delayed counts replies slower than
	// 100 ms (packets held up, not lost, e.g. by a stalled datapath).
	MaxRTT  time.Duration
	Delayed int
	// MeanInterval is the real spacing of the pings (ping -i 0.01 asks
	// for 10 ms; on a loaded machine it sends less often).
	MeanInterval time.Duration

	TCPBytes int64
	// LongestStall is the longest run of 100 ms windows in which the
	// receiver got nothing; Stalls counts such runs.
	LongestStall time.Duration
	Stalls       int
	StallFrom    time.Time
	TCPErr       error
}

// FirstReplyAfter is the time of the first ping reply received after t.
func (r probeResult) FirstReplyAfter(t time.Time) (time.Time, bool) {
	var best time.Time
	for _, ts := range r.replies {
		if ts.After(t) && (best.IsZero() || ts.Before(best)) {
			best = ts
		}
	}
	return best, !best.IsZero()
}

func ms(d time.Duration) string { return fmt.Sprintf("%dms", d.Round(time.Millisecond).Milliseconds()) }

// line is the one-line FAULT summary.
// what says what recovery measures; extra adds fault-specific numbers.
func (r probeResult) line(name string, recovery time.Duration, what, extra string) string {
	s := fmt.Sprintf("FAULT %s: ping sent=%d lost=%d longest_outage=%s; tcp bytes=%d longest_stall=%s; recovery=%s",
		name, r.PingSent, r.PingLost, ms(r.LongestOutage), r.TCPBytes, ms(r.LongestStall), ms(recovery))
	if what != "" {
		s += " (" + what + ")"
	}
	if r.Delayed > 0 {
		s += fmt.Sprintf("; ping max_rtt=%s (%d replies held up >100ms)", ms(r.MaxRTT), r.Delayed)
	}
	if extra != "" {
		s += "; " + extra
	}
	return s
}

// startProbe starts ping from src to dstIP and a TCP stream from src to a
// server listening in dst on dstIP:port, and returns once both carry
// traffic.
func startProbe(t *testing.T, src, dst *netlab.Node, dstIP string, port int) *trafficProbe {
	t.Helper()
	p := &trafficProbe{t: t, dst: dstIP, stop: make(chan struct{})}

	// TCP: the server counts what it receives, per 100 ms window.
	ln, err := dst.Listen("tcp", fmt.Sprintf("%s:%d", dstIP, port))
	must(t, err)
	p.ln = ln
	accepted := make(chan error, 1)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		c, err := ln.Accept()
		accepted <- err
		if err != nil {
			return
		}
		p.server.Store(&c)
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			p.recv.Add(int64(n))
			if err != nil {
				select {
				case <-p.stop:
				default:
					p.setTCPErr(fmt.Errorf("server read: %w", err))
				}
				return
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := src.Dial(ctx, "tcp", fmt.Sprintf("%s:%d", dstIP, port))
	if err != nil {
		ln.Close()
		t.Fatalf("probe: TCP %s → %s:%d: %v", src.Name(), dstIP, port, err)
	}
	p.client = c
	if err := <-accepted; err != nil {
		t.Fatalf("probe: accept: %v", err)
	}

	// The ping. ip netns exec execs ping, so the pid is ping's own.
	p.ping = exec.Command("ip", "netns", "exec", src.NetNS(), "ping", "-i", "0.01", "-n", "-D", dstIP)
	p.ping.Stdout, p.ping.Stderr = &p.pingOut, &p.pingOut
	p.started = time.Now()
	must(t, p.ping.Start())
	t.Cleanup(func() { p.Stop() })

	// The writer, paced, and the window ticker.
	p.wg.Add(2)
	go func() {
		defer p.wg.Done()
		chunk := bytes.Repeat([]byte("probe-tcp-"), probeTCPChunk/10+1)[:probeTCPChunk]
		tick := time.NewTicker(probeTCPTick)
		defer tick.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
			n, err := c.Write(chunk)
			p.sent.Add(int64(n))
			if err != nil {
				select {
				case <-p.stop:
				default:
					p.setTCPErr(fmt.Errorf("client write: %w", err))
				}
				return
			}
		}
	}()
	go func() {
		defer p.wg.Done()
		tick := time.NewTicker(probeTCPWindow)
		defer tick.Stop()
		var last int64
		for {
			select {
			case <-p.stop:
				return
			case now := <-tick.C:
				cur := p.recv.Load()
				p.mu.Lock()
				p.windows = append(p.windows, tcpWindow{end: now, bytes: cur - last})
				p.mu.Unlock()
				last = cur
			}
		}
	}()

	// Both flows carry traffic before the fault.
	deadline := time.Now().Add(5 * time.Second)
	for p.recv.Load() < 4*probeTCPChunk || strings.Count(p.pingOut.String(), "bytes from") < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("probe: no traffic after 5s: tcp received %d bytes; ping output:\n%s", p.recv.Load(), p.pingOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return p
}

// WaitFlowing waits until both flows carry traffic again (TCP may take
// longer than ping after an outage: its retransmission timer backs off).
// It reports an error, not a fatal one, if they do not within timeout.
func (p *trafficProbe) WaitFlowing(timeout time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		b0, n0 := p.recv.Load(), strings.Count(p.pingOut.String(), "bytes from")
		time.Sleep(200 * time.Millisecond)
		b1, n1 := p.recv.Load(), strings.Count(p.pingOut.String(), "bytes from")
		if b1 > b0 && n1 >= n0+5 {
			return
		}
		if time.Now().After(deadline) {
			p.t.Errorf("probe: traffic not flowing again within %s (tcp +%d bytes, ping +%d replies in the last 200ms)", timeout, b1-b0, n1-n0)
			return
		}
	}
}

func (p *trafficProbe) setTCPErr(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tcpErr == nil {
		p.tcpErr = err
	}
}

var (
	pingReplyRE   = regexp.MustCompile(`^\[(\d+)\.(\d+)\] \d+ bytes from [^:]+: icmp_seq=(\d+) .*time=([0-9.]+) ms`)
	pingSummaryRE = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)
)

// Stop stops both flows and computes the result (once; later calls return
// the same result).
func (p *trafficProbe) Stop() probeResult {
	p.stopOnce.Do(func() {
		stoppedAt := time.Now()
		_ = p.ping.Process.Signal(syscall.SIGINT) // ping prints its statistics
		waited := make(chan struct{})
		go func() { _ = p.ping.Wait(); close(waited) }()
		select {
		case <-waited:
		case <-time.After(3 * time.Second):
			_ = p.ping.Process.Kill()
			<-waited
		}
		close(p.stop)
		p.client.Close()
		p.ln.Close()
		if c := p.server.Load(); c != nil {
			(*c).Close()
		}
		p.wg.Wait()
		p.result = p.analyze(stoppedAt)
		if p.rawDir != "" {
			_ = os.WriteFile(filepath.Join(p.rawDir, "probe-ping.txt"), []byte(p.pingOut.String()), 0o644)
			p.mu.Lock()
			var w strings.Builder
			for _, x := range p.windows {
				fmt.Fprintf(&w, "%s %d\n", x.end.Format("15:04:05.000"), x.bytes)
			}
			p.mu.Unlock()
			_ = os.WriteFile(filepath.Join(p.rawDir, "probe-tcp.txt"), []byte(w.String()), 0o644)
		}
	})
	return p.result
}

func (p *trafficProbe) analyze(stoppedAt time.Time) probeResult {
	r := probeResult{replies: map[int]time.Time{}}
	sentAt := map[int]time.Time{} // reply time less rtt: when ping sent it
	out := p.pingOut.String()
	transmitted := -1
	for _, line := range strings.Split(out, "\n") {
		if m := pingReplyRE.FindStringSubmatch(line); m != nil {
			sec, _ := strconv.ParseInt(m[1], 10, 64)
			frac := m[2]
			for len(frac) < 9 {
				frac += "0"
			}
			nsec, _ := strconv.ParseInt(frac[:9], 10, 64)
			seq, _ := strconv.Atoi(m[3])
			if strings.Contains(line, "(DUP!)") {
				r.PingDup++
				continue
			}
			r.replies[seq] = time.Unix(sec, nsec)
			sentAt[seq] = r.replies[seq]
			if rtt, err := strconv.ParseFloat(m[4], 64); err == nil {
				d := time.Duration(rtt * float64(time.Millisecond))
				sentAt[seq] = r.replies[seq].Add(-d)
				r.MaxRTT = max(r.MaxRTT, d)
				if d > 100*time.Millisecond {
					r.Delayed++
				}
			}
			continue
		}
		if m := pingSummaryRE.FindStringSubmatch(line); m != nil {
			transmitted, _ = strconv.Atoi(m[1])
			r.PingSummary = strings.TrimSpace(line)
		}
	}
	seqs := make([]int, 0, len(r.replies))
	for s := range r.replies {
		seqs = append(seqs, s)
	}
	sort.Ints(seqs)
	lastSeq := 0
	if len(seqs) > 0 {
		lastSeq = seqs[len(seqs)-1]
	}
	sent := transmitted
	if sent < lastSeq {
		sent = lastSeq
	}
	if sent-lastSeq <= probeInFlight {
		sent = lastSeq // the last few were in flight when ping stopped
	}
	r.PingSent, r.PingReceived = sent, len(seqs)
	r.MeanInterval = probePingInterval
	if len(seqs) > 1 {
		first, last := sentAt[seqs[0]], sentAt[lastSeq]
		r.MeanInterval = last.Sub(first) / time.Duration(lastSeq-seqs[0])
	}
	r.PingLost = sent - len(seqs)
	// An outage is a run of pings that got no reply, timed by when they
	// were sent (reply time less rtt), so that replies held up and then
	// delivered in a burst do not hide it: from the last ping before the
	// run that was answered to the first one after it, less one interval.
	prevSeq, prevSent := 0, p.started
	consider := func(run int, from, to time.Time) {
		if run <= 0 {
			return
		}
		gap := max(to.Sub(from)-r.MeanInterval, 0)
		if gap > r.LongestOutage || r.LongestRun == 0 {
			r.LongestOutage, r.LongestRun, r.OutageFrom, r.OutageTo = gap, run, from, to
		}
	}
	for _, s := range seqs {
		consider(s-prevSeq-1, prevSent, sentAt[s])
		prevSeq, prevSent = s, sentAt[s]
	}
	consider(sent-prevSeq, prevSent, stoppedAt) // never recovered

	p.mu.Lock()
	defer p.mu.Unlock()
	r.TCPBytes = p.recv.Load()
	r.TCPErr = p.tcpErr
	run := 0
	for i, w := range p.windows {
		if w.bytes == 0 {
			run++
			if run == 1 {
				r.Stalls++
			}
			if d := time.Duration(run) * probeTCPWindow; d > r.LongestStall {
				r.LongestStall = d
				r.StallFrom = p.windows[i-run+1].end.Add(-probeTCPWindow)
			}
		} else {
			run = 0
		}
	}
	return r
}

// report logs the summary line and the details, relative to t0 (the fault).
func (r probeResult) report(t *testing.T, name string, t0 time.Time, recovery time.Duration, what, extra string) {
	t.Helper()
	t.Log(r.line(name, recovery, what, extra))
	rel := func(x time.Time) string {
		if x.IsZero() {
			return "-"
		}
		return fmt.Sprintf("%+dms", x.Sub(t0).Milliseconds())
	}
	t.Logf("  ping: %s; dup=%d; mean interval %s; max rtt %s, %d replies slower than 100ms; longest outage %d pings, last answered one before sent at %s, first after sent at %s (relative to the fault)",
		r.PingSummary, r.PingDup, r.MeanInterval.Round(100*time.Microsecond), r.MaxRTT.Round(10*time.Microsecond), r.Delayed,
		r.LongestRun, rel(r.OutageFrom), rel(r.OutageTo))
	t.Logf("  tcp: %d bytes received, %d stall(s) of ≥100ms, longest %s from %s, error: %v",
		r.TCPBytes, r.Stalls, ms(r.LongestStall), rel(r.StallFrom), r.TCPErr)
}

// expectNoLoss fails the test if pings were lost. A few pings lost in one
// short burst (≤ 10, ≤ 150 ms) are reported but tolerated: on a loaded
// machine the userspace datapath, which runs in ovs-vswitchd's main thread,
// can be starved for that long by other processes. The tests pair this
// with assertNotReinstalled, which catches any flow churn exactly.
func (r probeResult) expectNoLoss(t *testing.T, what string) {
	t.Helper()
	if r.PingLost == 0 {
		return
	}
	load, _ := os.ReadFile("/proc/loadavg")
	if r.PingLost <= 10 && r.LongestOutage <= 150*time.Millisecond {
		t.Logf("WARNING: %d pings lost %s in a %s blip — tolerated as scheduling noise (load average %s)",
			r.PingLost, what, ms(r.LongestOutage), strings.TrimSpace(string(load)))
		return
	}
	t.Errorf("%d pings lost %s (longest outage %s), want 0 (load average %s)",
		r.PingLost, what, ms(r.LongestOutage), strings.TrimSpace(string(load)))
}

// probeSeed starts the probe testns1 → testns2 (172.18.3.4) on the seed.
func (s *seed) probeSeed(port int) *trafficProbe {
	s.t.Helper()
	ping(s.t, s.vm1.container, "172.18.3.4", 2) // warm the neighbour caches
	p := startProbe(s.t, s.vm1.container, s.vm2.container, "172.18.3.4", port)
	p.rawDir = s.lab.Dir()
	return p
}

// ---- helpers on the seed ----

// controllerLog is the current controller's log.
func (f *fabric) controllerLog() string {
	b, err := os.ReadFile(f.logPath)
	must(f.t, err)
	return string(b)
}

// waitLog waits until the current controller's log matches re at least n times.
func (f *fabric) waitLog(re *regexp.Regexp, n int, timeout time.Duration) {
	f.t.Helper()
	f.eventually(fmt.Sprintf("%d× %q in the controller log", n, re), timeout, func() error {
		if got := len(re.FindAllString(f.controllerLog(), -1)); got < n {
			return fmt.Errorf("%d so far", got)
		}
		return nil
	})
}

var reconciledRE = regexp.MustCompile(`switch reconciled.*"installed": (\d+), "added": (\d+), "deleted": (\d+)`)

// reconcileCounts returns installed/added/deleted of the last "switch
// reconciled" line of the current controller's log.
func (f *fabric) reconcileCounts() (installed, added, deleted int) {
	f.t.Helper()
	ms := reconciledRE.FindAllStringSubmatch(f.controllerLog(), -1)
	if len(ms) == 0 {
		f.t.Fatalf("no \"switch reconciled\" line in %s:\n%s", f.logPath, tail(f.controllerLog(), 30))
	}
	m := ms[len(ms)-1]
	installed, _ = strconv.Atoi(m[1])
	added, _ = strconv.Atoi(m[2])
	deleted, _ = strconv.Atoi(m[3])
	return installed, added, deleted
}

// desiredFlowsAt computes, like desiredFlows, the table br-test must hold,
// for every VPC, given the ofport on br-test of each host attached by
// bridge+interface to br-test. Hosts attached elsewhere (another bridge, or
// a dpid that is not br-test's) own no flows on br-test, nor do the route
// entries behind them.
func (s *seed) desiredFlowsAt(ports map[string]uint32) []openflow.Flow {
	return s.referenceTable(attachments{dpid: s.dpid, bridge: "br-test", ports: ports})
}

// diffDesired runs `ovs-ofctl diff-flows` between flows and br-test; it
// returns nil when they are equal.
func (s *seed) diffDesired(flows []openflow.Flow) error {
	var b strings.Builder
	for i := range flows {
		b.WriteString(flows[i].String())
		b.WriteByte('\n')
	}
	file := filepath.Join(s.lab.Dir(), "desired-at-br-test.flows")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		return err
	}
	out, err := exec.Command("ovs-ofctl", "-O", "OpenFlow13", "diff-flows", file, s.ovs.MgmtTarget("br-test")).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		return fmt.Errorf("br-test differs from the %d desired flows (%v):\n%s", len(flows), err, out)
	}
	return nil
}

// flowCount counts br-test's flows with ovs-ofctl (-1 if it cannot).
func (f *fabric) flowCount(bridge string) int {
	out, err := exec.Command("ovs-ofctl", "-O", "OpenFlow13", "dump-flows", "--no-stats", f.ovs.MgmtTarget(bridge)).CombinedOutput()
	if err != nil {
		return -1
	}
	n := 0
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "actions=") {
			n++
		}
	}
	return n
}

// ---- 1. controller SIGKILL + restart ----

// replayedRE is the store's line for the changes it replayed from its
// write-ahead log at open.
var replayedRE = regexp.MustCompile(`replaying the changes of the write-ahead log into the store file.*"changes": (\d+),`)

// TestFaultControllerKill SIGKILLs the controller and starts it again: the
// datapath keeps forwarding (fail_mode=secure), no flow is re-added, and
// the reconnect reconciliation sends nothing. The route entries created
// just before the kill (each in the store's write-ahead log only, not yet
// in its file) are all back.
func TestFaultControllerKill(t *testing.T) {
	s := newSeed(t)
	p := s.probeSeed(5201)
	time.Sleep(300 * time.Millisecond)
	// Killed within the store's quiet moment (1 s) after the last of
	// them, so that they are in its log only: the restart replays them.
	var created []string
	for i := range 20 {
		cidr := fmt.Sprintf("172.30.%d.0/24", i)
		s.rest("POST", "/v1/vpcs/vpc-seed/subnets", map[string]any{"cidr": cidr, "host": []string{"test1", "test2"}[i%2]}, 201)
		created = append(created, cidr)
	}
	before := s.durations("br-test")
	start := time.Now()

	fault := time.Now()
	must(t, s.ctrl.Kill())
	time.Sleep(700 * time.Millisecond) // the controller is gone; traffic goes on
	restart := time.Now()
	s.startController()
	s.waitSwitch(s.dpid)
	recovery := time.Since(restart)
	time.Sleep(300 * time.Millisecond)
	r := p.Stop()
	r.report(t, "controller-kill", fault, recovery, "restart→switch reconciled", "")

	r.expectNoLoss(t, "across a controller kill (fail_mode=secure keeps forwarding)")
	if r.TCPErr != nil {
		t.Errorf("TCP stream broke: %v", r.TCPErr)
	}
	s.assertNotReinstalled("br-test", before, time.Since(start)-time.Second)
	if installed, added, deleted := s.reconcileCounts(); added != 0 || deleted != 0 {
		t.Errorf("restart reconciliation sent flow-mods (installed %d, added %d, deleted %d)", installed, added, deleted)
	} else {
		t.Logf("reconcile after restart: installed=%d added=0 deleted=0", installed)
	}
	// The seed's own changes may be among them (made less than 1 s before).
	replayed := 0
	if m := replayedRE.FindStringSubmatch(s.controllerLog()); m != nil {
		replayed, _ = strconv.Atoi(m[1])
	}
	if replayed < len(created) {
		t.Errorf("the restart replayed %d changes from the store's write-ahead log, want at least the %d route entries:\n%s", replayed, len(created), tail(s.controllerLog(), 30))
	}
	listed := string(s.rest("GET", "/v1/vpcs/vpc-seed/subnets", nil, 200))
	for _, cidr := range created {
		if !strings.Contains(listed, `"`+cidr+`"`) {
			t.Errorf("route entry %s, created before the kill, is gone after the restart", cidr)
		}
	}
	s.assertSwitchHoldsDesired()
}

// ---- 2. drift while the controller is down ----

// TestFaultDriftRepairedOnReconnect changes br-test behind the controller's
// back while it is down — a flow deleted, a foreign flow added, VM2's port
// renumbered — and checks that the restarted controller repairs exactly
// that, with only the flow-mods needed.
func TestFaultDriftRepairedOnReconnect(t *testing.T) {
	s := newSeed(t)
	ctx := testCtx(t)
	var vpc topology.VPC
	must(t, json.Unmarshal(s.rest("GET", "/v1/vpcs/vpc-seed", nil, 200), &vpc))
	oldPort := s.port2
	oldFlows := s.desiredFlows()
	p := s.probeSeed(5202)

	fault := time.Now()
	must(t, s.ctrl.Kill())
	mgmt := s.ovs.MgmtTarget("br-test")
	routeMatch := fmt.Sprintf("table=30,priority=124,ip,metadata=0x%x/0xffffffff,nw_dst=172.18.3.0/24", vpc.ID)
	if out, err := exec.Command("ovs-ofctl", "-O", "OpenFlow13", "del-flows", "--strict", mgmt, routeMatch).CombinedOutput(); err != nil {
		t.Fatalf("del-flows: %v: %s", err, out)
	}
	foreign := "cookie=0x1,table=30,priority=500,ip,actions=drop"
	if out, err := exec.Command("ovs-ofctl", "-O", "OpenFlow13", "add-flow", mgmt, foreign).CombinedOutput(); err != nil {
		t.Fatalf("add-flow: %v: %s", err, out)
	}
	newReq := oldPort + 10
	_, err := s.ovs.Vsctl(ctx, "del-port", "br-test", "vnet3")
	must(t, err)
	_, err = s.ovs.Vsctl(ctx, "add-port", "br-test", "vnet3", "--", "set", "interface", "vnet3",
		fmt.Sprintf("ofport_request=%d", newReq), "external_ids:attached-mac="+strconv.Quote(seedVM2.mac))
	must(t, err)
	newPort, err := s.ovs.Ofport(ctx, "vnet3")
	must(t, err)
	if newPort == oldPort {
		t.Fatalf("vnet3 kept ofport %d", oldPort)
	}
	t.Logf("drift: deleted %q, added %q, vnet3 renumbered %d → %d", routeMatch, foreign, oldPort, newPort)
	time.Sleep(300 * time.Millisecond) // traffic is down now: no route (and the foreign drop)

	restart := time.Now()
	s.startController()
	s.waitSwitch(s.dpid)
	reconciled := time.Since(restart)
	p.WaitFlowing(15 * time.Second)
	r := p.Stop()
	recovery := reconciled
	if first, ok := r.FirstReplyAfter(restart); ok {
		recovery = first.Sub(restart)
	}
	r.report(t, "drift-repaired-on-reconnect", fault, recovery, "restart→first ping reply",
		fmt.Sprintf("restart→switch reconciled=%s", ms(reconciled)))

	// What the restarted controller had to send, worked out by hand:
	// the table before the drift, less the deleted route, plus the
	// foreign flow, against the table with vnet3's new ofport.
	s.port2 = newPort
	newFlows := s.desiredFlows()
	installed := map[openflow.Key]openflow.Flow{}
	for _, f := range oldFlows {
		installed[f.Key()] = f
	}
	for k, f := range installed {
		if k.Table == 30 && k.Priority == 124 && strings.Contains(f.Match.String(), "nw_dst=172.18.3.0/24") {
			delete(installed, k)
		}
	}
	inPortOld := fmt.Sprintf("in_port=%d", oldPort)
	var expAdd, expDel, rekeyed, rewritten, readded int
	expDel = 1 // the foreign flow
	want := map[openflow.Key]bool{}
	for _, f := range newFlows {
		k := f.Key()
		want[k] = true
		old, ok := installed[k]
		switch {
		case !ok && strings.Contains(f.Match.String(), fmt.Sprintf("in_port=%d", newPort)):
			expAdd++
			rekeyed++
		case !ok:
			expAdd++
			readded++
		case !old.SameContent(&f):
			expAdd++
			rewritten++
		}
	}
	for k, f := range installed {
		if !want[k] {
			expDel++
			if !strings.Contains(f.Match.String(), inPortOld) {
				t.Errorf("unexpected stale flow that does not match the old port: %s", f.String())
			}
		}
	}
	t.Logf("expected reconcile: added=%d (%d flows matching in_port=%d of host test2 and its route entry's SpoofGuard flow, "+
		"%d flows whose match is unchanged but output:%d → output:%d, %d hand-deleted route 172.18.3.0/24 re-added with output:%d), "+
		"deleted=%d (%d flows matching in_port=%d, 1 foreign cookie=0x1 flow in table 30)",
		expAdd, rekeyed, newPort, rewritten, oldPort, newPort, readded, newPort, expDel, expDel-1, oldPort)

	s.assertSwitchHoldsDesired()
	inst, added, deleted := s.reconcileCounts()
	t.Logf("reconcile log: installed=%d added=%d deleted=%d (expected added=%d deleted=%d)", inst, added, deleted, expAdd, expDel)
	if added != expAdd || deleted != expDel {
		t.Errorf("reconcile sent added=%d deleted=%d, want exactly added=%d deleted=%d", added, deleted, expAdd, expDel)
	}
	if inst != len(oldFlows) { // one deleted, one foreign added
		t.Errorf("reconcile saw %d installed flows, want %d", inst, len(oldFlows))
	}
	if r.TCPErr != nil {
		t.Errorf("TCP stream broke: %v", r.TCPErr)
	}
	ping(t, s.vm2.container, "172.18.1.3", 2)
}

// ---- 3. ovs-vswitchd restart ----

// TestFaultVswitchdRestart restarts ovs-vswitchd: its flows are gone, the
// bridge comes back from OVSDB and reconnects, and vpcflow reinstalls the
// whole table; traffic recovers by itself.
func TestFaultVswitchdRestart(t *testing.T) {
	s := newSeed(t)
	ctx := testCtx(t)
	want := len(s.desiredFlows())
	p := s.probeSeed(5203)
	time.Sleep(300 * time.Millisecond)

	fault := time.Now()
	must(t, s.ovs.RestartVswitchd(ctx))
	started := time.Now()
	// Poll the table every 20 ms until it is full again.
	var full time.Time
	var seen []string
	lastN := -2
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		n := s.flowCount("br-test")
		if n != lastN {
			seen = append(seen, fmt.Sprintf("%d@%s", n, ms(time.Since(fault))))
			lastN = n
		}
		if n == want {
			full = time.Now()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("br-test has %d flows 30s after the restart, want %d (counts seen: %v)", n, want, seen)
		}
	}
	s.eventually("br-test holds the desired table", 10*time.Second, func() error { return s.diffDesired(s.desiredFlows()) })
	p.WaitFlowing(15 * time.Second) // ping recovers by itself
	r := p.Stop()
	t.Logf("flow counts (count@time since restart began): %v; vswitchd stop+start took %s", seen, ms(started.Sub(fault)))
	r.report(t, "vswitchd-restart", fault, full.Sub(fault), fmt.Sprintf("restart began→full table of %d flows", want),
		fmt.Sprintf("vswitchd up again→full table=%s", ms(full.Sub(started))))
	s.assertSwitchHoldsDesired()
	inst, added, deleted := s.reconcileCounts()
	t.Logf("reconcile after the vswitchd restart: installed=%d added=%d deleted=%d", inst, added, deleted)
	if r.TCPErr != nil {
		t.Errorf("TCP stream broke: %v", r.TCPErr)
	}
	if r.LongestOutage > 30*time.Second {
		t.Errorf("ping outage %s", r.LongestOutage)
	}
}

// ---- 4. ovsdb-server kill + restart ----

var faultVM3 = vmSpec{name: "test3", port: "vnet5", ip: "10.10.10.13", mac: "52:58:00:98:c0:a3"}

// TestFaultOVSDBRestart kills ovsdb-server and starts it again on the same
// database and socket: vpcflow's OVSDB monitor reconnects (with backoff)
// and resumes — a port added afterwards is picked up — and vpcflow does
// not touch br-test's flows because of the outage.
//
// Traffic: with the userspace datapath, ovs-vswitchd itself stops
// forwarding while it is disconnected from ovsdb-server (bridge_run()
// returns early without the database lock, so the main thread, which
// polls the netdev ports, does not run the datapath) — until its own
// reconnect (1 s backoff, then 2 s, …). Packets are held up, and some
// lost once the socket buffers fill. That is OVS's, with or without a
// controller, so losses are reported here, not asserted; what vpcflow
// owes is to send no flow-mod at all.
func TestFaultOVSDBRestart(t *testing.T) {
	s := newSeed(t)
	ctx := testCtx(t)
	// test3 registered before its port exists (and before the fault).
	s.rest("POST", "/v1/vpcs/vpc-seed/hosts", map[string]any{"name": "test3", "vswitch": "vsw-a",
		"ip": faultVM3.ip, "mac": faultVM3.mac, "bridge": "br-test", "interface": faultVM3.port}, 201)
	vm3 := s.addVM(faultVM3)
	connectedRE := regexp.MustCompile(`ovsdb connected and monitoring`)
	s.waitLog(connectedRE, 1, 5*time.Second)
	p := s.probeSeed(5204)
	before := s.durations("br-test")
	start := time.Now()
	time.Sleep(300 * time.Millisecond)
	logBefore := len(s.controllerLog())

	fault := time.Now()
	must(t, s.ovs.KillOVSDB())
	time.Sleep(300 * time.Millisecond) // OVSDB is gone for a while
	restart := time.Now()
	must(t, s.ovs.StartOVSDB(ctx))
	s.waitLog(connectedRE, 2, 20*time.Second)
	monitorBack := time.Since(restart)
	// vswitchd is back too once it has rewritten the bridge's datapath_id
	// (an ephemeral column: empty in a restarted ovsdb-server until then).
	_, err := s.ovs.DPID(ctx, "br-test")
	must(t, err)
	vswitchdBack := time.Since(restart)
	time.Sleep(500 * time.Millisecond)
	after := s.controllerLog()[logBefore:]
	t.Logf("controller log from the fault on (without libovsdb debug):\n%s", grepOut(after, "libovsdb"))

	// vpcflow sent nothing to br-test because of the outage.
	s.assertNotReinstalled("br-test", before, time.Since(start)-time.Second)
	if n := strings.Count(after, "flows pushed"); n > 0 {
		t.Errorf("vpcflow pushed flow changes %d time(s) because of the OVSDB restart: %s", n,
			grepLines(after, "port map changed"))
	}

	// A port added now is picked up through the resumed monitor.
	plugged := time.Now()
	port3 := s.plugVM(vm3, faultVM3, "br-test")
	s.eventually("test3 reachable", 10*time.Second, func() error {
		_, err := s.vm1.node.Cmd(ctx, "ping", "-n", "-c", "1", "-W", "1", faultVM3.ip)
		return err
	})
	reach := time.Since(plugged)
	ping(t, vm3.node, "10.10.10.11", 2)
	p.WaitFlowing(15 * time.Second)
	r := p.Stop()
	r.report(t, "ovsdb-restart", fault, monitorBack, "ovsdb-server started→vpcflow's monitor resynced",
		fmt.Sprintf("ovsdb-server started→vswitchd resynced (datapath_id back)=%s; test3 plugged after the restart (ofport %d)→reachable=%s",
			ms(vswitchdBack), port3, ms(reach)))
	if r.PingLost > 0 || r.Delayed > 0 {
		t.Logf("  ovs-vswitchd's own log around the outage:\n%s", grepLines(readFile(s.ovs.VswitchdLog()), "reconnect"))
	}
	if r.TCPErr != nil {
		t.Errorf("TCP stream broke: %v", r.TCPErr)
	}
	ports := map[string]uint32{"test1": uint32(s.port1), "test2": uint32(s.port2), "test3": uint32(port3)}
	if err := s.diffDesired(s.desiredFlowsAt(ports)); err != nil {
		t.Error(err)
	}
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// grepOut drops the lines that contain substr.
func grepOut(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l != "" && !strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// ---- 5. crash in the middle of a big write ----

const bulkHosts = 2000

// bulkBody is a batch of n hosts in vSwitch vsw-bulk, attached by dpid +
// ofport to a datapath that is not connected (so the write is store-heavy).
func bulkBody(n int) []map[string]any {
	body := make([]map[string]any, n)
	for i := range body {
		body[i] = map[string]any{
			"name": fmt.Sprintf("bulk-%04d", i), "vswitch": "vsw-bulk",
			"ip":   fmt.Sprintf("10.20.%d.%d", i/200, i%200+10),
			"mac":  fmt.Sprintf("02:00:00:00:%02x:%02x", i>>8, i&0xff),
			"dpid": "00000000000000aa", "ofport": i + 1,
		}
	}
	return body
}

func (f *fabric) hostCount(vpc string) (int, error) {
	code, b, err := f.do("GET", "/v1/vpcs/"+vpc+"/hosts", nil)
	if err != nil {
		return 0, err
	}
	if code != 200 {
		return 0, fmt.Errorf("status %d: %s", code, b)
	}
	var hosts []topology.Host
	if err := json.Unmarshal(b, &hosts); err != nil {
		return 0, err
	}
	return len(hosts), nil
}

// TestFaultCrashMidWrite SIGKILLs the controller while a batch of 2,000
// hosts is being written: after a restart the store holds all of the batch
// or none of it, and br-test still holds exactly the seed's flows.
func TestFaultCrashMidWrite(t *testing.T) {
	s := newSeed(t)
	// vswitchd's reconnect backoff doubles up to max_backoff (8 s by
	// default) over repeated controller deaths; cap it at 1 s so that six
	// kills fit in the test. (With the default, the 4th restart in a row
	// took ~8 s to be reconnected.)
	_, err := s.ovs.Vsctl(testCtx(t), "set", "controller", "br-test", "max_backoff=1000")
	must(t, err)
	p := s.probeSeed(5205)
	before := s.durations("br-test")
	t0 := time.Now()
	seedHosts := 0 // the batch goes to a VPC of its own, with no host on br-test
	vsw := map[string]any{"name": "vsw-bulk", "cidr": "10.20.0.0/16"}
	s.rest("POST", "/v1/vpcs", map[string]any{"name": "vpc-bulk"}, 201)
	s.rest("POST", "/v1/vpcs/vpc-bulk/vswitches", vsw, 201)
	body := bulkBody(bulkHosts)
	ports := map[string]uint32{"test1": uint32(s.port1), "test2": uint32(s.port2)}

	// Baseline: how long the batch takes when nothing goes wrong.
	begin := time.Now()
	s.rest("POST", "/v1/vpcs/vpc-bulk/hosts", body, 201)
	base := time.Since(begin)
	if n, err := s.hostCount("vpc-bulk"); err != nil || n != seedHosts+bulkHosts {
		t.Fatalf("after the batch: %d hosts (%v), want %d", n, err, seedHosts+bulkHosts)
	}
	begin = time.Now()
	s.rest("DELETE", "/v1/vpcs/vpc-bulk/vswitches/vsw-bulk?cascade=true", nil, 204)
	t.Logf("batch of %d hosts: POST took %s; cascading delete of vsw-bulk took %s", bulkHosts, ms(base), ms(time.Since(begin)))
	s.rest("POST", "/v1/vpcs/vpc-bulk/vswitches", vsw, 201)

	// Kill at random points of the request. The store commits early (the
	// request is read, validated and written in the first ~10-20% of the
	// baseline; flows and the 300 KB answer take the rest), so most kills
	// aim there: while the body is sent and parsed, while it is validated
	// and written, just around the commit, and later.
	ranges := [][2]float64{{0, 0.04}, {0.04, 0.08}, {0.08, 0.12}, {0.12, 0.2}, {0.2, 0.5}, {0.5, 1.1}}
	var results []string
	var recoveries []time.Duration
	sawNone, sawAll := 0, 0
	for i, rg := range ranges {
		delay := time.Duration(float64(base) * (rg[0] + rand.Float64()*(rg[1]-rg[0])))
		type res struct {
			code int
			err  error
			at   time.Time
		}
		done := make(chan res, 1)
		sent := time.Now()
		go func() {
			code, _, err := s.do("POST", "/v1/vpcs/vpc-bulk/hosts", body)
			done <- res{code, err, time.Now()}
		}()
		time.Sleep(delay)
		killedAt := time.Now()
		must(t, s.ctrl.Kill())
		rr := <-done
		answered := rr.err == nil && rr.at.Before(killedAt)
		restart := time.Now()
		s.startController()
		s.waitSwitch(s.dpid)
		recovery := time.Since(restart)
		recoveries = append(recoveries, recovery)
		n, err := s.hostCount("vpc-bulk")
		must(t, err)
		state := "none"
		switch n {
		case seedHosts:
			sawNone++
		case seedHosts + bulkHosts:
			state = "all"
			sawAll++
		default:
			t.Errorf("kill #%d after %s: store holds %d hosts — a partial batch (want %d or %d)", i+1, ms(delay), n, seedHosts, seedHosts+bulkHosts)
			state = "PARTIAL"
		}
		if answered && rr.code == 201 && n != seedHosts+bulkHosts {
			t.Errorf("kill #%d: the batch was acknowledged (201) before the kill but is not in the store after the restart", i+1)
		}
		reply := fmt.Sprintf("status %d", rr.code)
		if rr.err != nil {
			reply = "no reply (connection cut)"
		}
		results = append(results, fmt.Sprintf("kill after %s (%.0f%% of baseline): %s, answered before the kill=%v → store holds %s (%d hosts); restart→reconciled %s",
			ms(killedAt.Sub(sent)), 100*float64(killedAt.Sub(sent))/float64(base), reply, answered, state, n, ms(recovery)))
		// The switch converges to the store: exactly the seed's flows
		// (the batch's hosts are on a datapath that is not connected).
		s.eventually("br-test holds the store's flows", 10*time.Second, func() error { return s.diffDesired(s.desiredFlowsAt(ports)) })
		if state == "all" {
			s.rest("DELETE", "/v1/vpcs/vpc-bulk/vswitches/vsw-bulk?cascade=true", nil, 204)
			s.rest("POST", "/v1/vpcs/vpc-bulk/vswitches", vsw, 201)
		}
	}
	r := p.Stop()
	var worst time.Duration
	for _, d := range recoveries {
		worst = max(worst, d)
	}
	r.report(t, "crash-mid-write", t0, worst, fmt.Sprintf("worst restart→switch reconciled over %d kills", len(ranges)),
		fmt.Sprintf("batch outcomes none=%d all=%d partial=%d", sawNone, sawAll, len(ranges)-sawNone-sawAll))
	for _, l := range results {
		t.Log("  " + l)
	}
	r.expectNoLoss(t, "across controller kills")
	s.assertNotReinstalled("br-test", before, time.Since(t0)-time.Second)
	if r.TCPErr != nil {
		t.Errorf("TCP stream broke: %v", r.TCPErr)
	}
	if n, _ := s.hostCount("vpc-bulk"); n == seedHosts {
		s.assertSwitchHoldsDesired()
	}
}

// ---- 6. a hung switch must not block the others ----

// fakeSwitch is an OpenFlow 1.3 "switch" written in raw bytes: it completes
// the handshake and, while healthy, answers flow-stats requests (empty
// table), barriers and bundle controls. Once hung it still answers echo
// requests (the connection stays up) but nothing else: flow changes for it
// never complete.
type fakeSwitch struct {
	conn     net.Conn
	dpid     uint64
	hung     atomic.Bool
	mods     atomic.Int64 // flow-mods received (plain or in bundles)
	swallow  atomic.Int64 // requests left unanswered while hung
	closed   chan struct{}
	readErr  error
	wmu      sync.Mutex
	features atomic.Bool
}

const (
	ofpHello         = 0
	ofpEchoRequest   = 2
	ofpEchoReply     = 3
	ofpExperimenter  = 4
	ofpFeaturesReq   = 5
	ofpFeaturesReply = 6
	ofpFlowMod       = 14
	ofpMultipartReq  = 18
	ofpMultipartRep  = 19
	ofpBarrierReq    = 20
	ofpBarrierReply  = 21
	onfExperimenter  = 0x4f4e4600
	onfBundleCtrl    = 2300
	onfBundleAdd     = 2301
)

func ofHeader(typ uint8, length int, xid uint32) []byte {
	b := make([]byte, 8, length)
	b[0], b[1] = 0x04, typ
	binary.BigEndian.PutUint16(b[2:], uint16(length))
	binary.BigEndian.PutUint32(b[4:], xid)
	return b
}

func startFakeSwitch(t *testing.T, node *netlab.Node, addr string, dpid uint64) *fakeSwitch {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := node.Dial(ctx, "tcp", addr)
	must(t, err)
	fs := &fakeSwitch{conn: c, dpid: dpid, closed: make(chan struct{})}
	t.Cleanup(func() { c.Close(); <-fs.closed })
	must(t, fs.write(ofHeader(ofpHello, 8, 1)))
	go fs.serve()
	return fs
}

func (fs *fakeSwitch) write(b []byte) error {
	fs.wmu.Lock()
	defer fs.wmu.Unlock()
	_, err := fs.conn.Write(b)
	return err
}

func (fs *fakeSwitch) serve() {
	defer close(fs.closed)
	hdr := make([]byte, 8)
	for {
		if _, err := io.ReadFull(fs.conn, hdr); err != nil {
			fs.readErr = err
			return
		}
		typ, length, xid := hdr[1], int(binary.BigEndian.Uint16(hdr[2:])), binary.BigEndian.Uint32(hdr[4:])
		if length < 8 {
			fs.readErr = fmt.Errorf("bad length %d", length)
			return
		}
		body := make([]byte, length-8)
		if _, err := io.ReadFull(fs.conn, body); err != nil {
			fs.readErr = err
			return
		}
		var reply []byte
		switch typ {
		case ofpEchoRequest: // always: the connection stays alive
			reply = append(ofHeader(ofpEchoReply, 8+len(body), xid), body...)
		case ofpFeaturesReq:
			reply = ofHeader(ofpFeaturesReply, 32, xid)
			reply = binary.BigEndian.AppendUint64(reply, fs.dpid)
			reply = binary.BigEndian.AppendUint32(reply, 0) // n_buffers
			reply = append(reply, 254, 0, 0, 0)             // n_tables, auxiliary_id, pad
			reply = binary.BigEndian.AppendUint32(reply, 0x4f)
			reply = binary.BigEndian.AppendUint32(reply, 0)
			fs.features.Store(true)
		case ofpFlowMod:
			fs.mods.Add(1)
		case ofpMultipartReq, ofpBarrierReq, ofpExperimenter:
			if typ == ofpExperimenter && len(body) >= 8 && binary.BigEndian.Uint32(body) == onfExperimenter &&
				binary.BigEndian.Uint32(body[4:]) == onfBundleAdd {
				fs.mods.Add(1)
				continue
			}
			if fs.hung.Load() {
				fs.swallow.Add(1)
				continue
			}
			switch typ {
			case ofpMultipartReq: // an empty reply of the same kind
				reply = ofHeader(ofpMultipartRep, 16, xid)
				reply = append(reply, body[0], body[1], 0, 0, 0, 0, 0, 0)
			case ofpBarrierReq:
				reply = ofHeader(ofpBarrierReply, 8, xid)
			case ofpExperimenter:
				if len(body) >= 16 && binary.BigEndian.Uint32(body) == onfExperimenter &&
					binary.BigEndian.Uint32(body[4:]) == onfBundleCtrl {
					r := append([]byte(nil), body...)
					binary.BigEndian.PutUint16(r[12:], binary.BigEndian.Uint16(body[12:])+1) // OPEN→OPEN_REPLY, COMMIT→COMMIT_REPLY…
					reply = append(ofHeader(ofpExperimenter, 8+len(r), xid), r...)
				}
			}
		}
		if reply != nil {
			if err := fs.write(reply); err != nil {
				fs.readErr = err
				return
			}
		}
	}
}

// timedDo runs a REST request and returns its status and latency.
func (f *fabric) timedDo(method, path string, body any) (int, []byte, time.Duration, error) {
	start := time.Now()
	code, b, err := f.do(method, path, body)
	return code, b, time.Since(start), err
}

// TestFaultSlowSwitchDoesNotBlockOthers connects a fake switch that stops
// answering (it completes the handshake and its first reconciliation, then
// never confirms anything again) next to br-test: a change for the hung
// switch is answered 202 (stored, not confirmed) after the per-switch push
// timeout, while changes for br-test
// keep returning promptly — alone and while the hung change is in flight.
func TestFaultSlowSwitchDoesNotBlockOthers(t *testing.T) {
	s := newSeed(t)
	const hungDPID = 0x00000000deadbeef
	fs := startFakeSwitch(t, s.phys, "127.0.0.1:6653", hungDPID)
	s.waitSwitch(hungDPID)
	t.Logf("fake switch %016x reconciled: %d flow-mods received", uint64(hungDPID), fs.mods.Load())

	s.rest("POST", "/v1/vpcs", map[string]any{"name": "vpc-hung"}, 201)
	s.rest("POST", "/v1/vpcs/vpc-hung/vswitches", map[string]any{"name": "vsw-h", "cidr": "10.30.0.0/24"}, 201)
	code, b, healthy, err := s.timedDo("POST", "/v1/vpcs/vpc-hung/hosts", map[string]any{"name": "hung1", "vswitch": "vsw-h",
		"ip": "10.30.0.5", "mac": "02:00:00:00:be:ef", "dpid": fmt.Sprintf("%016x", uint64(hungDPID)), "ofport": 1})
	if err != nil || code != 201 {
		t.Fatalf("host on the (still healthy) fake switch: %d %s %v", code, b, err)
	}
	t.Logf("host on the healthy fake switch: 201 in %s (%d flow-mods received in all)", ms(healthy), fs.mods.Load())

	p := s.probeSeed(5206)
	before := s.durations("br-test")
	fault := time.Now()
	fs.hung.Store(true)

	// (a) A br-test change while the hung switch has nothing in flight.
	seedChange := func(cidr string) (add, del time.Duration) {
		code, b, add, err := s.timedDo("POST", "/v1/vpcs/vpc-seed/subnets", map[string]any{"cidr": cidr, "host": "test2"})
		if err != nil || code != 201 {
			t.Fatalf("POST subnet %s: %d %s %v", cidr, code, b, err)
		}
		name := strings.ReplaceAll(cidr, "/", "-")
		code, b, del, err = s.timedDo("DELETE", "/v1/vpcs/vpc-seed/subnets/"+name, nil)
		if err != nil || code != 204 {
			t.Fatalf("DELETE subnet %s: %d %s %v", name, code, b, err)
		}
		return add, del
	}
	aloneAdd, aloneDel := seedChange("172.18.98.0/24")
	t.Logf("br-test subnet add/delete with the fake switch hung, nothing in flight to it: %s / %s", ms(aloneAdd), ms(aloneDel))

	// (b) A change for the hung switch, and a br-test change while it waits.
	type res struct {
		code int
		body []byte
		took time.Duration
		err  error
	}
	hungDone := make(chan res, 1)
	go func() {
		code, b, took, err := s.timedDo("POST", "/v1/vpcs/vpc-hung/subnets", map[string]any{"cidr": "192.168.77.0/24", "host": "hung1"})
		hungDone <- res{code, b, took, err}
	}()
	time.Sleep(500 * time.Millisecond)
	busyAdd, busyDel := seedChange("172.18.99.0/24")
	t.Logf("br-test subnet add/delete while a change for the hung switch is in flight: %s / %s", ms(busyAdd), ms(busyDel))
	hr := <-hungDone
	t.Logf("change for the hung switch: status %d after %s: %s (requests left unanswered by the fake: %d)",
		hr.code, ms(hr.took), strings.TrimSpace(string(hr.body)), fs.swallow.Load())
	select {
	case <-fs.closed:
		t.Logf("the controller closed the hung switch's connection (%v)", fs.readErr)
	case <-time.After(5 * time.Second):
		t.Errorf("the controller did not disconnect the hung switch after its push timed out")
	}
	ping(t, s.vm1.container, "172.18.3.4", 2)
	r := p.Stop()
	r.report(t, "slow-switch", fault, hr.took, "change for the hung switch→error", fmt.Sprintf(
		"br-test change alone add=%s del=%s; br-test change during the hung push add=%s del=%s; hung change status=%d after %s",
		ms(aloneAdd), ms(aloneDel), ms(busyAdd), ms(busyDel), hr.code, ms(hr.took)))
	s.assertSwitchHoldsDesired()

	r.expectNoLoss(t, "on br-test while another switch hung")
	s.assertNotReinstalled("br-test", before, time.Since(fault)-time.Second)
	// Stored, not confirmed: 202 naming the switch (issue 10).
	if hr.err != nil || hr.code != 202 || !strings.Contains(string(hr.body), fmt.Sprintf(`"unconfirmed":[{"dpid":"%016x"`, uint64(hungDPID))) {
		t.Errorf("change for the hung switch: status %d, err %v; want 202 naming the switch after the push timeout", hr.code, hr.err)
	}
	if hr.took < 2*time.Second || hr.took > 40*time.Second {
		t.Errorf("change for the hung switch failed after %s; want after the per-switch timeout (10s by default)", hr.took)
	}
	const prompt = 2 * time.Second
	if aloneAdd > prompt || aloneDel > prompt {
		t.Errorf("br-test changes took %s / %s with a hung switch and nothing in flight to it", aloneAdd, aloneDel)
	}
	if busyAdd > prompt || busyDel > prompt {
		t.Errorf("a REST change for br-test waited %s / %s behind a change for a hung switch", busyAdd, busyDel)
	}
}
