package openflow

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var (
	macVM1 = mustMAC("52:58:00:98:c0:81")
	macVM2 = mustMAC("52:58:00:98:c0:92")
	macGW  = mustMAC("ee:ff:ff:ff:ff:ff")
)

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

const testCookie = 0x7670020000000001

// pipelineFlows covers every Field and Action the pipeline uses, in the
// shapes it uses them.
func pipelineFlows() []Flow {
	p := netip.MustParsePrefix
	a := netip.MustParseAddr
	return []Flow{
		{Table: 0, Priority: 100, Cookie: testCookie,
			Match:   NewMatch().InPort(1).EthSrc(macVM1),
			Actions: []Action{WriteMetadata(1, 0xffffffff), GotoTable(10)}},
		{Table: 10, Priority: 100, Cookie: testCookie,
			Match: NewMatch().EthType(EthTypeARP).InPort(1).EthSrc(macVM1).
				Addr(FieldArpSpa, a("10.10.10.11")).With(FieldArpSha, MACToUint64(macVM1)),
			Actions: []Action{GotoTable(20)}},
		{Table: 20, Priority: 100, Cookie: testCookie,
			Match: NewMatch().EthType(EthTypeARP).InPort(1).With(FieldArpOp, 1).
				Prefix(FieldArpTpa, p("10.10.10.0/24")),
			Actions: []Action{
				Move(FieldEthSrc, FieldEthDst), SetMAC(FieldEthSrc, macGW), SetField(FieldArpOp, 2),
				Move(FieldArpSha, FieldArpTha), SetMAC(FieldArpSha, macGW),
				Move(FieldArpTpa, FieldReg0), Move(FieldArpSpa, FieldArpTpa), Move(FieldReg0, FieldArpSpa),
				OutputInPort(),
			}},
		{Table: 30, Priority: 124, Cookie: testCookie,
			Match: NewMatch().EthType(EthTypeIPv4).Metadata(1, 0xffffffff).Prefix(FieldIPv4Dst, p("172.18.3.0/24")),
			Actions: []Action{
				SetMAC(FieldEthSrc, macGW), SetMAC(FieldEthDst, macVM2), DecTTL(), Output(2),
			}},
		{Table: 30, Priority: 132, Cookie: testCookie,
			Match:   NewMatch().EthType(EthTypeIPv4).Metadata(1, ^uint64(0)).Addr(FieldIPv4Dst, a("10.10.10.12")),
			Actions: []Action{SetMAC(FieldEthSrc, macGW), SetMAC(FieldEthDst, macVM2), Output(2)}},
		{Table: 30, Priority: 0, Cookie: testCookie}, // drop
		{Table: 0, Priority: 90, Cookie: testCookie,
			Match:   NewMatch().InPort(5).With(FieldTunID, 0x1234).Addr(FieldTunSrc, a("192.0.2.1")).Addr(FieldTunDst, a("192.0.2.2")),
			Actions: []Action{WriteMetadata(0x1234, ^uint64(0)), GotoTable(10)}},
		{Table: 40, Priority: 200, Cookie: testCookie + 1,
			Match: NewMatch().EthType(EthTypeIPv4).WithMasked(FieldMetadata, 0x7, 0xff).
				Prefix(FieldIPv4Src, p("172.18.0.0/16")).Prefix(FieldIPv4Dst, p("0.0.0.0/1")).With(FieldIPProto, 17),
			Actions: []Action{SetField(FieldTunID, 0x1234), SetAddr(FieldTunDst, a("192.0.2.9")), SetAddr(FieldTunSrc, a("192.0.2.1")), Output(5)}},
		{Table: 40, Priority: 190, Cookie: testCookie + 1,
			Match:   NewMatch().WithMasked(FieldReg0, 0x10, 0xf0).EthType(EthTypeIPv4).WithMasked(FieldEthDst, 0x010000000000, 0x010000000000),
			Actions: []Action{SetField(FieldReg0, 7), Move(FieldInPort, FieldReg0), Move(FieldIPv4Src, FieldIPv4Dst), Move(FieldMetadata, FieldTunID), Action{Type: ActController}}},
		{Table: 40, Priority: 180, Cookie: testCookie + 1,
			Match:   NewMatch().EthType(EthTypeARP).Addr(FieldArpTpa, a("10.0.0.1")).With(FieldArpTha, 0).Prefix(FieldArpSpa, p("10.0.0.0/8")),
			Actions: []Action{SetAddr(FieldArpSpa, a("10.0.0.1")), SetAddr(FieldArpTpa, a("10.0.0.2")), SetMAC(FieldArpTha, macVM1), SetMAC(FieldEthDst, macVM2), OutputInPort()}},
	}
}

// installedByKey dumps the switch and indexes the flows by Key.
func installedByKey(t *testing.T, ctx context.Context, sw *Switch) map[Key]FlowStats {
	t.Helper()
	stats, err := sw.DumpFlows(ctx)
	if err != nil {
		t.Fatalf("DumpFlows: %v", err)
	}
	m := make(map[Key]FlowStats, len(stats))
	for _, fs := range stats {
		k := fs.Flow.Key()
		if _, dup := m[k]; dup {
			t.Errorf("two installed flows with key %+v", k)
		}
		m[k] = fs
	}
	return m
}

func addMods(flows []Flow) []FlowMod {
	mods := make([]FlowMod, len(flows))
	for i, f := range flows {
		mods[i] = FlowMod{Command: FlowAdd, Flow: f}
	}
	return mods
}

// TestOVS runs vpcflow's OpenFlow layer against a real, private Open
// vSwitch in a netlab namespace: install, dump, compare with ovs-ofctl,
// modify, delete, errors, a 20k-flow bundle, keepalive and reconnection.
func TestOVS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	lab := newOVSLab(t, ctx)
	rec := newRecorder()
	addr := lab.startServer(t, rec, ServerOptions{})
	const br, dpid = "vpcoft0", uint64(0x00000000cafe0001)
	lab.addBridge(t, ctx, br, dpid)
	if _, err := lab.ovs.Vsctl(ctx, "add-port", br, "vx0", "--", "set", "interface", "vx0", "type=vxlan",
		"options:remote_ip=flow", "options:key=flow", "ofport_request=5"); err != nil {
		t.Fatal(err)
	}
	lab.setController(t, ctx, br, addr)
	sw := rec.waitConnected(t, dpid, 20*time.Second)

	desired := pipelineFlows()

	t.Run("install and dump round trip", func(t *testing.T) {
		if err := sw.Apply(ctx, addMods(desired)); err != nil {
			t.Fatalf("Apply: %v", err)
		}
		got := installedByKey(t, ctx, sw)
		if len(got) != len(desired) {
			t.Errorf("switch has %d flows, want %d", len(got), len(desired))
		}
		for i := range desired {
			want := &desired[i]
			fs, ok := got[want.Key()]
			if !ok {
				t.Errorf("flow not found by key after install:\n want %s\n have:\n%s", want, dumpText(got))
				continue
			}
			if !want.SameContent(&fs.Flow) {
				t.Errorf("flow content differs:\n want %s\n got  %s", want, &fs.Flow)
			}
			if fs.Flow.String() != want.String() {
				t.Errorf("text differs:\n want %s\n got  %s", want, &fs.Flow)
			}
		}
	})

	t.Run("ovs-ofctl diff-flows agrees with our text", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "flows.txt")
		var b strings.Builder
		for i := range desired {
			b.WriteString(desired[i].String())
			b.WriteByte('\n')
		}
		if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := lab.ofctl(ctx, br, "diff-flows", file)
		if err != nil || strings.TrimSpace(out) != "" {
			t.Fatalf("ovs-ofctl diff-flows: %v\n%s\nour text:\n%s", err, out, b.String())
		}
	})

	t.Run("modify-strict replaces actions, keeps cookie", func(t *testing.T) {
		f := desired[3]
		f.Actions = []Action{SetMAC(FieldEthDst, macVM1), Output(7)}
		f.Cookie = 0xdead // ignored by OpenFlow 1.3 modify
		if err := sw.Apply(ctx, []FlowMod{{Command: FlowModifyStrict, Flow: f}}); err != nil {
			t.Fatalf("Apply modify: %v", err)
		}
		got := installedByKey(t, ctx, sw)[f.Key()]
		want := f
		want.Cookie = desired[3].Cookie
		if !want.SameContent(&got.Flow) {
			t.Errorf("after modify-strict:\n want %s\n got  %s", &want, &got.Flow)
		}
		// Put it back with an add, which does replace the cookie too.
		if err := sw.Apply(ctx, addMods(desired[3:4])); err != nil {
			t.Fatal(err)
		}
		got = installedByKey(t, ctx, sw)[f.Key()]
		if !desired[3].SameContent(&got.Flow) {
			t.Errorf("after re-add:\n want %s\n got  %s", &desired[3], &got.Flow)
		}
	})

	t.Run("delete-strict and delete-by-cookie", func(t *testing.T) {
		// Strict: only the exact entry goes, not the lower-priority one
		// whose match is a superset.
		if err := sw.Apply(ctx, []FlowMod{{Command: FlowDeleteStrict, Flow: desired[4]}}); err != nil {
			t.Fatalf("delete-strict: %v", err)
		}
		got := installedByKey(t, ctx, sw)
		if _, ok := got[desired[4].Key()]; ok {
			t.Errorf("flow still there after delete-strict: %s", &desired[4])
		}
		if len(got) != len(desired)-1 {
			t.Errorf("delete-strict removed %d flows, want 1", len(desired)-len(got))
		}
		// By cookie: the three table-40 flows carry testCookie+1.
		err := sw.Apply(ctx, []FlowMod{{Command: FlowDeleteByCookie, Flow: Flow{Cookie: testCookie + 1}, CookieMask: ^uint64(0)}})
		if err != nil {
			t.Fatalf("delete-by-cookie: %v", err)
		}
		got = installedByKey(t, ctx, sw)
		for k, fs := range got {
			if fs.Flow.Cookie == testCookie+1 {
				t.Errorf("flow with deleted cookie still there: %+v", k)
			}
		}
		if len(got) != len(desired)-4 {
			t.Errorf("have %d flows, want %d", len(got), len(desired)-4)
		}
		// Restore for the tests below.
		if err := sw.Apply(ctx, addMods(desired)); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("rejected flows are named and the bundle is atomic", func(t *testing.T) {
		before := installedByKey(t, ctx, sw)
		good := Flow{Table: 50, Priority: 1, Cookie: 0x99, Match: NewMatch().InPort(9), Actions: []Action{Output(1)}}
		backwards := Flow{Table: 50, Priority: 2, Cookie: 0x99, Match: NewMatch().InPort(9), Actions: []Action{GotoTable(10)}}
		// OVS accepts output:0 (any port below its port limit); OFPP_ANY is
		// not a valid output port.
		portAny := Flow{Table: 50, Priority: 3, Cookie: 0x99, Match: NewMatch().InPort(9), Actions: []Action{Output(PortAny)}}
		// set_field of an ARP field on a flow that does not match ARP.
		prereq := Flow{Table: 50, Priority: 4, Cookie: 0x99, Match: NewMatch().EthType(EthTypeIPv4), Actions: []Action{SetField(FieldArpOp, 2), Output(1)}}
		for _, bad := range []Flow{backwards, portAny, prereq} {
			err := sw.Apply(ctx, addMods([]Flow{good, bad}))
			if err == nil {
				t.Fatalf("Apply accepted %s", &bad)
			}
			t.Logf("Apply error: %v", err)
			var fe *FlowModError
			if !errors.As(err, &fe) || fe.Index != 1 {
				t.Errorf("error %v does not identify flow-mod #1", err)
			}
			if !strings.Contains(err.Error(), bad.String()) {
				t.Errorf("error %q does not name the flow %q", err, bad.String())
			}
		}
		after := installedByKey(t, ctx, sw)
		if len(after) != len(before) {
			t.Errorf("a rejected bundle changed the table: %d flows before, %d after", len(before), len(after))
		}
		if sw.noBundles.Load() {
			t.Errorf("a rejected flow made the switch fall back from bundles")
		}
	})

	t.Run("plain flow mods and barrier (no bundle)", func(t *testing.T) {
		f := Flow{Table: 60, Priority: 5, Cookie: 0x60, Match: NewMatch().InPort(3), Actions: []Action{Output(4)}}
		bad := Flow{Table: 60, Priority: 6, Cookie: 0x60, Match: NewMatch().InPort(3), Actions: []Action{GotoTable(1)}}
		err := sw.applyPlain(ctx, ModList(addMods([]Flow{f, bad})))
		var fe *FlowModError
		if !errors.As(err, &fe) || fe.Index != 1 {
			t.Fatalf("applyPlain error %v does not identify flow-mod #1", err)
		}
		got := installedByKey(t, ctx, sw)
		if fs, ok := got[f.Key()]; !ok || !f.SameContent(&fs.Flow) {
			t.Errorf("plain mode: accepted flow missing: %s", &f)
		}
		if err := sw.applyPlain(ctx, ModList{{Command: FlowDeleteStrict, Flow: f}}); err != nil {
			t.Fatal(err)
		}
		if err := sw.Barrier(ctx); err != nil {
			t.Fatalf("Barrier: %v", err)
		}
	})

	t.Run("a batch in parts is one bundle, sent as it comes", func(t *testing.T) {
		f := func(prio uint16, port uint32) Flow {
			return Flow{Table: 70, Priority: prio, Cookie: 0x70, Match: NewMatch().InPort(7), Actions: []Action{Output(port)}}
		}
		before := installedByKey(t, ctx, sw)
		// Part 0 installs f1 (output:1) and f2; part 1 deletes f1 and
		// installs it again with output:2, and installs f3. Part 1 is
		// given only once ApplySeq asked for it, i.e. sent part 0
		// without waiting for the rest; meanwhile nothing of part 0 is
		// on the switch (the bundle is not committed).
		f1, f2, f3 := f(1, 1), f(2, 1), f(3, 1)
		f1b := f(1, 2)
		parts := newAskedParts()
		done := make(chan error, 1)
		go func() { done <- sw.ApplySeq(ctx, parts) }()
		parts.Add(ModList(addMods([]Flow{f1, f2})))
		parts.waitAsked(t, 1)
		if err := sw.Barrier(ctx); err != nil {
			t.Fatal(err)
		}
		if got := installedByKey(t, ctx, sw); len(got) != len(before) {
			t.Fatalf("part 0 is on the switch before the bundle is committed: %d flows, had %d", len(got), len(before))
		}
		parts.Add(ModList{{Command: FlowDeleteStrict, Flow: f1}, {Command: FlowAdd, Flow: f1b}, {Command: FlowAdd, Flow: f3}})
		parts.Close()
		if err := <-done; err != nil {
			t.Fatalf("ApplySeq of parts: %v", err)
		}
		got := installedByKey(t, ctx, sw)
		for _, want := range []Flow{f1b, f2, f3} {
			if fs, ok := got[want.Key()]; !ok || !want.SameContent(&fs.Flow) {
				t.Errorf("after the parts: want %s, have %v", &want, fs.Flow.String())
			}
		}
		if len(got) != len(before)+3 {
			t.Errorf("after the parts: %d flows, want %d", len(got), len(before)+3)
		}

		// A part OVS refuses: the error names the flow-mod by its index in
		// the whole batch, and nothing of any part applies. A part that
		// cannot be encoded is refused before it is sent, the same way.
		backwards := Flow{Table: 70, Priority: 9, Cookie: 0x70, Match: NewMatch().InPort(7), Actions: []Action{GotoTable(10)}}
		for _, tc := range []struct {
			bad   FlowMod
			ovs   bool
			index int
		}{
			{FlowMod{Command: FlowAdd, Flow: backwards}, true, 3},
			{FlowMod{Command: 99, Flow: f(8, 1)}, false, 3},
		} {
			parts := newAskedParts()
			parts.Add(ModList(addMods([]Flow{f(4, 1), f(5, 1)})))
			parts.Add(ModList{{Command: FlowDeleteStrict, Flow: f2}, tc.bad})
			parts.Close()
			err := sw.ApplySeq(ctx, parts)
			var fe *FlowModError
			switch {
			case err == nil:
				t.Fatalf("ApplySeq accepted a part with %s", tc.bad.String())
			case tc.ovs && (!errors.As(err, &fe) || fe.Index != tc.index || !strings.Contains(err.Error(), backwards.String())):
				t.Errorf("error %v does not name flow-mod #%d, %s", err, tc.index, &backwards)
			case !tc.ovs && !strings.Contains(err.Error(), fmt.Sprintf("flow-mod #%d", tc.index)):
				t.Errorf("error %v does not name flow-mod #%d", err, tc.index)
			}
			t.Logf("refused: %v", err)
			after := installedByKey(t, ctx, sw)
			if d := len(after) - len(got); d != 0 || after[f2.Key()].Flow.Cookie != 0x70 {
				t.Errorf("a refused part changed the table: %+d flows, f2 there: %v", d, after[f2.Key()].Flow.Cookie == 0x70)
			}
		}
		if sw.noBundles.Load() {
			t.Errorf("a refused part made the switch fall back from bundles")
		}
		if err := sw.Apply(ctx, []FlowMod{{Command: FlowDeleteByCookie, Flow: Flow{Cookie: 0x70}, CookieMask: ^uint64(0)}}); err != nil {
			t.Fatal(err)
		}
	})

	bigBatch := func(t *testing.T, n int, table uint8, cookie uint64) {
		flows := make([]Flow, n)
		for i := range flows {
			flows[i] = Flow{Table: table, Priority: 100, Cookie: cookie,
				Match:   NewMatch().EthType(EthTypeIPv4).Metadata(uint64(i/250+1), 0xffffffff).Addr(FieldIPv4Dst, Uint32ToAddr(0x0a000000+uint32(i))),
				Actions: []Action{SetMAC(FieldEthSrc, macGW), SetMAC(FieldEthDst, macVM2), DecTTL(), Output(uint32(i%40 + 1))}}
		}
		start := time.Now()
		if err := sw.Apply(ctx, addMods(flows)); err != nil {
			t.Fatalf("Apply %d: %v", n, err)
		}
		applied := time.Since(start)
		start = time.Now()
		got := installedByKey(t, ctx, sw)
		dumped := time.Since(start)
		t.Logf("%d flow adds in one bundle: Apply took %v; DumpFlows of %d flows took %v", n, applied, len(got), dumped)
		for i := range flows {
			fs, ok := got[flows[i].Key()]
			if !ok || !flows[i].SameContent(&fs.Flow) {
				t.Fatalf("flow %d missing or different after apply: %s", i, &flows[i])
			}
		}
		// The same dump, flow by flow as the reply parts arrive.
		streamed := 0
		start = time.Now()
		err := sw.DumpFlowsFunc(ctx, func(fs *FlowStats) error {
			want, ok := got[fs.Flow.Key()]
			if !ok || !want.Flow.SameContent(&fs.Flow) || want.Packets != fs.Packets {
				return fmt.Errorf("streamed flow %s is not what DumpFlows returned", &fs.Flow)
			}
			streamed++
			return nil
		})
		if err != nil || streamed != len(got) {
			t.Fatalf("DumpFlowsFunc: %d flows, want %d (%v)", streamed, len(got), err)
		}
		t.Logf("DumpFlowsFunc of %d flows took %v", streamed, time.Since(start))
		// One table's flows by cookie under a mask (a drift check's slice):
		// the switch answers with those and no other.
		for _, c := range []struct{ cookie, mask uint64 }{{cookie, 3}, {cookie + 1, 3}, {0, 0}} {
			want := 0
			for _, fs := range got {
				if fs.Flow.Table == table && fs.Flow.Cookie&c.mask == c.cookie&c.mask {
					want++
				}
			}
			n := 0
			err := sw.DumpTableFunc(ctx, table, c.cookie, c.mask, func(fs *FlowStats) error {
				if fs.Flow.Table != table || fs.Flow.Cookie&c.mask != c.cookie&c.mask {
					return fmt.Errorf("flow %s is not in table %d cookie 0x%x/0x%x", &fs.Flow, table, c.cookie, c.mask)
				}
				n++
				return nil
			})
			if err != nil || n != want {
				t.Fatalf("DumpTableFunc(table %d, 0x%x/0x%x): %d flows, want %d (%v)", table, c.cookie, c.mask, n, want, err)
			}
		}
		stop := errors.New("enough")
		if err := sw.DumpFlowsFunc(ctx, func(*FlowStats) error { return stop }); !errors.Is(err, stop) {
			t.Fatalf("DumpFlowsFunc stopped by its callback: %v, want %v", err, stop)
		}
		if err := sw.Barrier(ctx); err != nil {
			t.Fatalf("the connection after a dump stopped early: %v", err)
		}
		if sw.noBundles.Load() {
			t.Error("switch fell back from bundles")
		}
		start = time.Now()
		if err := sw.Apply(ctx, []FlowMod{{Command: FlowDeleteByCookie, Flow: Flow{Cookie: cookie}, CookieMask: ^uint64(0)}}); err != nil {
			t.Fatal(err)
		}
		t.Logf("delete-by-cookie of %d flows took %v", n, time.Since(start))
		if got := installedByKey(t, ctx, sw); len(got) != len(desired) {
			t.Errorf("have %d flows after deleting the batch, want %d", len(got), len(desired))
		}
	}
	t.Run("20k flows in one bundle", func(t *testing.T) { bigBatch(t, 20000, 70, 0x70) })
	t.Run("100k flows in one bundle", func(t *testing.T) {
		if testing.Short() {
			t.Skip("-short")
		}
		bigBatch(t, 100000, 71, 0x71)
	})

	t.Run("garbage client does not disturb the switch", func(t *testing.T) {
		gc, err := lab.phys.Dial(ctx, "tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer gc.Close()
		_, _ = gc.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n" + strings.Repeat("\xff", 300)))
		_ = gc.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 4096)
		for {
			if _, err := gc.Read(buf); err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Fatal("server did not close the garbage connection")
				}
				break
			}
		}
		if err := sw.Barrier(ctx); err != nil {
			t.Fatalf("switch disturbed by garbage client: %v", err)
		}
		select {
		case d := <-rec.disconnected:
			t.Fatalf("%s disconnected", d)
		default:
		}
	})

	t.Run("reconnect gives Disconnected then Connected", func(t *testing.T) {
		if err := lab.ovs.SetController(ctx, br); err != nil {
			t.Fatal(err)
		}
		rec.waitDisconnected(t, sw, 20*time.Second)
		if err := sw.Barrier(ctx); !errors.Is(err, ErrClosed) {
			t.Errorf("Barrier on a closed switch: %v, want ErrClosed", err)
		}
		lab.setController(t, ctx, br, addr)
		sw = rec.waitConnected(t, dpid, 20*time.Second)
		// OVS flushes every flow when a bridge goes from having a primary
		// controller to none (bridge.c), so del-controller wiped the table.
		if got := installedByKey(t, ctx, sw); len(got) != 0 {
			t.Logf("after del-controller/set-controller OVS kept %d flows", len(got))
		}
		if err := sw.Apply(ctx, addMods(desired)); err != nil {
			t.Fatalf("Apply after reconnect: %v", err)
		}
		if got := installedByKey(t, ctx, sw); len(got) != len(desired) {
			t.Errorf("after reconnect: %d flows, want %d", len(got), len(desired))
		}
	})

	t.Run("OVS echo requests are answered", func(t *testing.T) {
		// A second server that never sends its own echoes: only answering
		// OVS's inactivity probes keeps the connection up. OVS clamps
		// inactivity_probe to at least 5s: it probes after 5s of silence
		// and disconnects if nothing arrives 5s later.
		rec2 := newRecorder()
		addr2 := lab.startServer(t, rec2, ServerOptions{EchoInterval: time.Hour, EchoTimeout: time.Hour})
		const br2, dpid2 = "vpcoft1", uint64(0x00000000cafe0002)
		lab.addBridge(t, ctx, br2, dpid2)
		lab.setController(t, ctx, br2, addr2, "inactivity_probe=1000")
		sw2 := rec2.waitConnected(t, dpid2, 20*time.Second)
		time.Sleep(11500 * time.Millisecond)
		select {
		case d := <-rec2.disconnected:
			t.Fatalf("%s disconnected while idle", d)
		default:
		}
		if err := sw2.Barrier(ctx); err != nil {
			t.Fatalf("Barrier after idling: %v", err)
		}
		if n := sw2.c.echoesSeen.Load(); n < 1 {
			t.Errorf("OVS sent %d echo requests in 11.5s of silence, want at least 1", n)
		} else {
			t.Logf("answered %d echo requests from OVS while idle", n)
		}
	})
}

func dumpText(m map[Key]FlowStats) string {
	var b strings.Builder
	for _, fs := range m {
		fmt.Fprintf(&b, "  %s\n", &fs.Flow)
	}
	return b.String()
}
