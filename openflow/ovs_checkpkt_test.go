package openflow

import (
	"context"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vpcflow/vpcflow/e2e/netlab"
)

// pktLenFlows is the check_pkt_larger + resubmit pattern: table 30 writes
// "longer than 1464 bytes" into reg1[0] and resubmits to table 45, which
// drops what is too long and outputs the rest.
func pktLenFlows(out uint32) []Flow {
	const cookie = 0x7670030000000001
	return []Flow{
		{Table: 30, Priority: 100, Cookie: cookie, Match: NewMatch().EthType(EthTypeIPv4),
			Actions: []Action{CheckPktLarger(1464, FieldReg1, 0), Resubmit(45)}},
		{Table: 45, Priority: 100, Cookie: cookie, Match: NewMatch().WithMasked(FieldReg1, 1, 1)},
		{Table: 45, Priority: 0, Cookie: cookie, Actions: []Action{Output(out)}},
		// Other destinations, an OXM-only field among them, several in one
		// list, and a resubmit that goes back to an earlier table.
		{Table: 31, Priority: 7, Cookie: cookie, Match: NewMatch().EthType(EthTypeIPv4).WithMasked(FieldReg1, 0x80000000, 0x80000000),
			Actions: []Action{CheckPktLarger(0, FieldReg0, 31), CheckPktLarger(9000, FieldMetadata, 63),
				CheckPktLarger(65535, FieldEthDst, 40), Resubmit(0), Output(out), Resubmit(254), GotoTable(40)}},
	}
}

// TestOVSCheckPktLargerResubmit installs check_pkt_larger, resubmit and a
// reg1 bit match in a real OVS with our encoding and checks that the dump
// decodes to the same flows, that ovs-ofctl prints our text, that OVS's own
// parser reads our bytes as our text, and that OVS's own encoding of our
// text (ovs-ofctl add-flows) decodes to the same flows.
func TestOVSCheckPktLargerResubmit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lab := newOVSLab(t, ctx)
	rec := newRecorder()
	addr := lab.startServer(t, rec, ServerOptions{})
	const br, dpid = "vpcoft2", uint64(0x00000000cafe0003)
	lab.addBridge(t, ctx, br, dpid)
	lab.setController(t, ctx, br, addr)
	sw := rec.waitConnected(t, dpid, 20*time.Second)

	desired := pktLenFlows(1)
	checkDump := func(t *testing.T) {
		t.Helper()
		got := installedByKey(t, ctx, sw)
		if len(got) != len(desired) {
			t.Errorf("switch has %d flows, want %d:\n%s", len(got), len(desired), dumpText(got))
		}
		for i := range desired {
			want := &desired[i]
			fs, ok := got[want.Key()]
			if !ok {
				t.Errorf("flow not found by key:\n want %s\n have:\n%s", want, dumpText(got))
				continue
			}
			if !want.SameContent(&fs.Flow) || fs.Flow.String() != want.String() {
				t.Errorf("dumped flow differs:\n want %s\n got  %s", want, &fs.Flow)
			}
		}
	}
	flowsFile := func(t *testing.T) string {
		var b strings.Builder
		for i := range desired {
			b.WriteString(desired[i].String())
			b.WriteByte('\n')
		}
		file := filepath.Join(t.TempDir(), "flows.txt")
		if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return file
	}

	t.Run("OVS parses our bytes as our text", func(t *testing.T) {
		for i := range desired {
			b := mustEncode(t, FlowMod{Command: FlowAdd, Flow: desired[i]})
			out, err := exec.CommandContext(ctx, "ovs-ofctl", "ofp-print", hex.EncodeToString(b)).CombinedOutput()
			if err != nil {
				t.Fatalf("ovs-ofctl ofp-print: %v\n%s", err, out)
			}
			want := "actions=" + desired[i].ActionsString()
			if !strings.Contains(string(out), want) || strings.Contains(string(out), "***") {
				t.Errorf("ovs-ofctl ofp-print of %s:\n%s\nwant it to contain %q", &desired[i], out, want)
			}
		}
	})

	t.Run("install with our encoding, dump and decode", func(t *testing.T) {
		if err := sw.Apply(ctx, addMods(desired)); err != nil {
			t.Fatalf("Apply: %v", err)
		}
		checkDump(t)
		out, err := lab.ofctl(ctx, br, "dump-flows")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("ovs-ofctl dump-flows:\n%s", out)
		for _, s := range []string{"actions=check_pkt_larger(1464)->NXM_NX_REG1[0],resubmit(,45)", "reg1=0x1/0x1 actions=drop"} {
			if !strings.Contains(out, s) {
				t.Errorf("ovs-ofctl dump-flows does not show %q", s)
			}
		}
	})

	t.Run("ovs-ofctl diff-flows agrees with our text", func(t *testing.T) {
		file := flowsFile(t)
		if out, err := lab.ofctl(ctx, br, "diff-flows", file); err != nil || strings.TrimSpace(out) != "" {
			t.Fatalf("ovs-ofctl diff-flows: %v\n%s", err, out)
		}
	})

	t.Run("OVS's own encoding of our text decodes to our flows", func(t *testing.T) {
		file := flowsFile(t)
		if out, err := lab.ofctl(ctx, br, "del-flows"); err != nil {
			t.Fatalf("del-flows: %v\n%s", err, out)
		}
		if out, err := lab.ofctl(ctx, br, "add-flows", file); err != nil {
			t.Fatalf("ovs-ofctl add-flows of our text: %v\n%s", err, out)
		}
		checkDump(t)
	})
}

// TestOVSCheckPktLargerBehaviour sends pings through check_pkt_larger on
// the userspace datapath: A and B are namespaces on one OVS bridge; IPv4
// from A goes through check_pkt_larger(1000)->reg1[0] and resubmit(,45),
// where reg1[0]=1 is dropped and the rest goes to B. Frames of at most 1000
// bytes (Ethernet header included) must pass, longer ones must be dropped.
//
// What reaches B is counted exactly by B's kernel (Icmp InEchos). The
// OpenFlow counters are not per branch: OVS translates check_pkt_larger
// into one datapath flow whose action is check_pkt_len(size=1000,gt(…),
// le(…)), translating both branches, and credits every packet of that
// datapath flow to the rules of both branches (with the datapath action
// turned off, the slow-pathed flow credits the rules of the branch its
// first packet took). So the drop flow counts every dropped packet, and
// also the passed ones; the flow with check_pkt_larger counts each packet
// once, with the frame length as OVS compares it.
func TestOVSCheckPktLargerBehaviour(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
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
	const br = "br-cpl"
	const macA, macB = "52:58:00:00:0a:01", "52:58:00:00:0b:01"
	must(o.AddBridge(ctx, br))
	pa, err := lab.LinkToOVS(ctx, a, "eth0", macA, phys, o, br, "pa", false)
	must(err)
	pb, err := lab.LinkToOVS(ctx, b, "eth0", macB, phys, o, br, "pb", false)
	must(err)
	must(a.AddAddr(ctx, "eth0", "10.77.0.1/24"))
	must(b.AddAddr(ctx, "eth0", "10.77.0.2/24"))
	// Static neighbours: no ARP, so A sends B nothing but echo requests.
	a.MustCmd(t, "ip", "neigh", "replace", "10.77.0.2", "lladdr", macB, "dev", "eth0", "nud", "permanent")
	b.MustCmd(t, "ip", "neigh", "replace", "10.77.0.1", "lladdr", macA, "dev", "eth0", "nud", "permanent")

	ln, err := phys.Listen("tcp", "127.0.0.1:0")
	must(err)
	rec := newRecorder()
	addr, _ := startServerOn(t, ln, rec, ServerOptions{})
	must(o.SetController(ctx, br, "tcp:"+addr))
	dpid, err := o.DPID(ctx, br)
	must(err)
	sw := rec.waitConnected(t, dpid, 20*time.Second)

	const limit = 1000
	const cookie = 0x7670030000000002
	pA, pB := uint32(pa), uint32(pb)
	check := Flow{Table: 0, Priority: 100, Cookie: cookie, Match: NewMatch().EthType(EthTypeIPv4).InPort(pA),
		Actions: []Action{CheckPktLarger(limit, FieldReg1, 0), Resubmit(45)}}
	drop := Flow{Table: 45, Priority: 100, Cookie: cookie, Match: NewMatch().WithMasked(FieldReg1, 1, 1)}
	pass := Flow{Table: 45, Priority: 0, Cookie: cookie, Actions: []Action{Output(pB)}}
	back := Flow{Table: 0, Priority: 100, Cookie: cookie, Match: NewMatch().EthType(EthTypeIPv4).InPort(pB), Actions: []Action{Output(pA)}}
	flows := []Flow{check, drop, pass, back}
	if err := sw.Apply(ctx, addMods(flows)); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	for _, f := range flows {
		t.Logf("installed: %s", &f)
	}

	type count struct{ packets, bytes uint64 }
	// counters waits for the revalidators to push datapath statistics to
	// the OpenFlow rules, then reads them through our decoder; echoes is
	// the number of echo requests B's kernel has received.
	counters := func() (dropped, passed, checked count, echoes uint64) {
		t.Helper()
		if out, err := o.Appctl(ctx, "revalidator/wait"); err != nil {
			t.Fatalf("revalidator/wait: %v\n%s", err, out)
		}
		got := installedByKey(t, ctx, sw)
		for _, c := range []struct {
			f   *Flow
			dst *count
		}{{&drop, &dropped}, {&pass, &passed}, {&check, &checked}} {
			fs, ok := got[c.f.Key()]
			if !ok || !c.f.SameContent(&fs.Flow) {
				t.Fatalf("flow %s not installed as such:\n%s", c.f, dumpText(got))
			}
			*c.dst = count{fs.Packets, fs.Bytes}
		}
		return dropped, passed, checked, icmpInEchos(t, b.MustCmd(t, "cat", "/proc/net/snmp"))
	}
	ping := func(size, n int) (string, error) {
		return a.Cmd(ctx, "ping", "-n", "-q", "-M", "do", "-c", strconv.Itoa(n), "-i", "0.2", "-W", "1",
			"-s", strconv.Itoa(size), "10.77.0.2")
	}
	received := func(out string) int {
		m := regexp.MustCompile(`(\d+) received`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("cannot read ping output:\n%s", out)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	// An ICMP echo with s bytes of payload is an s+8+20+14-byte frame.
	frame := func(size int) uint64 { return uint64(size + 42) }

	d0, p0, c0, e0 := counters()
	var nDropped, nPassed uint64
	steps := []struct {
		size, n int
		pass    bool
	}{
		{56, 2, true},          // 98-byte frames
		{900, 3, true},         // 942
		{limit - 42, 2, true},  // exactly 1000: not larger
		{limit - 41, 2, false}, // 1001
		{1200, 3, false},       // 1242, DF set
		{900, 1, true},         // and small ones still pass
	}
	for _, st := range steps {
		out, err := ping(st.size, st.n)
		got := received(out)
		d, p, c, e := counters()
		t.Logf("ping -M do -s %4d (%4d-byte frames) x%d: %d replies; B got %d echo requests; flows: check_pkt_larger %d pkts %d bytes, drop %d pkts, output %d pkts",
			st.size, frame(st.size), st.n, got, e-e0, c.packets-c0.packets, c.bytes-c0.bytes, d.packets-d0.packets, p.packets-p0.packets)
		n := uint64(st.n)
		wantEchoes := uint64(0)
		if st.pass {
			wantEchoes = n
			nPassed += n
			if err != nil || got != st.n {
				t.Errorf("ping -s %d: %d of %d replies, want all: %v\n%s", st.size, got, st.n, err, out)
			}
		} else {
			nDropped += n
			if err == nil || got != 0 {
				t.Errorf("ping -s %d: %d of %d replies, want none\n%s", st.size, got, st.n, out)
			}
		}
		if e-e0 != wantEchoes {
			t.Errorf("ping -s %d: B received %d echo requests, want %d", st.size, e-e0, wantEchoes)
		}
		// Each packet crosses check_pkt_larger once; bytes are whole frames.
		if c.packets-c0.packets != n || c.bytes-c0.bytes != n*frame(st.size) {
			t.Errorf("ping -s %d: check_pkt_larger flow counted %d packets %d bytes, want %d, %d",
				st.size, c.packets-c0.packets, c.bytes-c0.bytes, n, n*frame(st.size))
		}
		d0, p0, c0, e0 = d, p, c, e
	}
	// The drop flow has counted every dropped packet (and, OVS crediting
	// both branches of a check_pkt_len datapath flow, the passed ones).
	if d0.packets < nDropped {
		t.Errorf("drop flow counted %d packets, fewer than the %d dropped", d0.packets, nDropped)
	}
	if p0.packets < nPassed {
		t.Errorf("output flow counted %d packets, fewer than the %d passed", p0.packets, nPassed)
	}
	t.Logf("in all: %d passed, %d dropped; drop flow n_packets=%d, output flow n_packets=%d", nPassed, nDropped, d0.packets, p0.packets)
	dp, _ := o.Appctl(ctx, "dpctl/dump-flows")
	t.Logf("datapath flows:\n%s", dp)
	if t.Failed() {
		out, _ := o.Ofctl(ctx, br, "dump-flows")
		t.Logf("OpenFlow flows:\n%s", out)
	}
}

// icmpInEchos reads Icmp InEchos from the text of /proc/net/snmp.
func icmpInEchos(t *testing.T, snmp string) uint64 {
	t.Helper()
	var names []string
	for _, line := range strings.Split(snmp, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || fields[0] != "Icmp:" {
			continue
		}
		if names == nil {
			names = fields
			continue
		}
		for i, name := range names {
			if name == "InEchos" && i < len(fields) {
				v, err := strconv.ParseUint(fields[i], 10, 64)
				if err != nil {
					t.Fatalf("Icmp InEchos %q: %v", fields[i], err)
				}
				return v
			}
		}
	}
	t.Fatalf("no Icmp InEchos in /proc/net/snmp:\n%s", snmp)
	return 0
}
