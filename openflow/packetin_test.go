package openflow

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.NewReplacer(" ", "", "-", "", "\n", "", "\t", "").Replace(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// icmpFrame is an ICMP echo request 10.77.0.1 -> 10.77.0.2 from
// 52:58:00:00:0a:01 to 52:58:00:00:0b:01 with 16 bytes of payload.
const icmpFrame = "525800000b01 525800000a01 0800" +
	"4500 002c 0001 4000 4001 2634 0a4d0001 0a4d0002" +
	"0800 ad8a 1234 0001 000102030405060708090a0b0c0d0e0f"

// ovsPacketIns are packet-ins Open vSwitch 3.1.0 sent for icmpFrame
// (ovs-ofctl -O OpenFlow13 -P standard -mmmmm monitor, while
// `ovs-ofctl packet-out` sent the frame from LOCAL through
// set_field:0x1234->metadata,resubmit(,3) and resubmit(,4)).
var ovsPacketIns = []struct {
	name string
	msg  string
	want PacketIn
}{
	{
		// table=3, cookie=0x7670040000000005, icmp actions=set_field:0x2a->reg0,set_field:0x99->reg1,controller(max_len=65535)
		name: "metadata and registers",
		msg: "040a007c 00000000 ffffffff 003a 01 03 7670040000000005" +
			"0001 0028 80000004 fffffffe 00010004 0000002a 00010204 00000099 80000408 0000000000001234" + // match, 40 bytes: no padding
			"0000" + icmpFrame,
		want: PacketIn{Reason: PacketInAction, TableID: 3, Cookie: 0x7670040000000005, InPort: 0xfffffffe,
			Match:    NewMatch().InPort(0xfffffffe).With(FieldReg0, 0x2a).With(FieldReg1, 0x99).Metadata(0x1234, ^uint64(0)),
			TotalLen: 58, BufferID: noBuffer},
	},
	{
		// table=4, cookie=0x7670040000000006, icmp actions=controller
		name: "in_port only",
		msg: "040a0064 00000000 ffffffff 003a 01 04 7670040000000006" +
			"0001 000c 80000004 fffffffe 00000000" +
			"0000" + icmpFrame,
		want: PacketIn{Reason: PacketInAction, TableID: 4, Cookie: 0x7670040000000006, InPort: 0xfffffffe,
			Match: NewMatch().InPort(0xfffffffe), TotalLen: 58, BufferID: noBuffer},
	},
}

// encodePacketIn builds an OFPT_PACKET_IN as a switch would (the test's
// switch side; the match must hold only known fields).
func encodePacketIn(xid uint32, pi PacketIn) []byte {
	b := appendHeader(nil, typePacketIn, xid)
	b = appendU32(b, pi.BufferID)
	b = appendU16(b, pi.TotalLen)
	b = append(b, pi.Reason, pi.TableID)
	b = appendU64(b, pi.Cookie)
	b = appendMatch(b, pi.Match)
	b = append(b, 0, 0)
	b = append(b, pi.Data...)
	setLength(b, 0)
	return b
}

func samePacketIn(a, b PacketIn) bool {
	return a.Reason == b.Reason && a.TableID == b.TableID && a.Cookie == b.Cookie && a.InPort == b.InPort &&
		a.TotalLen == b.TotalLen && a.BufferID == b.BufferID && bytes.Equal(a.Data, b.Data) &&
		len(a.Match) == len(b.Match) && (len(a.Match) == 0 || reflect.DeepEqual(a.Match, b.Match))
}

func TestDecodePacketInFromOVS(t *testing.T) {
	frame := unhex(t, icmpFrame)
	for _, c := range ovsPacketIns {
		t.Run(c.name, func(t *testing.T) {
			msg := unhex(t, c.msg)
			got, err := DecodePacketIn(msg)
			if err != nil {
				t.Fatalf("DecodePacketIn: %v", err)
			}
			want := c.want
			want.Data = frame
			if !samePacketIn(got, want) {
				t.Errorf("decoded\n %+v\nwant\n %+v", got, want)
			}
			if got.Match.String() != want.Match.String() {
				t.Errorf("match %q, want %q", got.Match, want.Match)
			}
			// Our switch-side encoder writes OVS's layout (fields in our
			// canonical order), so the hand-built messages of the other
			// tests are realistic.
			enc := encodePacketIn(0, got)
			again, err := DecodePacketIn(enc)
			if len(enc) != len(msg) || err != nil || !samePacketIn(again, got) {
				t.Errorf("re-encoded:\n %x\nOVS:\n %x", enc, msg)
			}
			if len(got.Match) == 1 && !bytes.Equal(enc, msg) {
				t.Errorf("re-encoded:\n %x\nOVS:\n %x", enc, msg)
			}
		})
	}
}

func TestDecodePacketInTruncated(t *testing.T) {
	msg := unhex(t, ovsPacketIns[0].msg)
	body := msg[headerLen:]
	dataOff := packetInFixedLen - headerLen + 40 + 2 // fixed part, padded match, pad
	for n := 0; n <= len(body); n++ {
		pi, err := decodePacketIn(body[:n])
		if n < dataOff {
			if err == nil {
				t.Errorf("body cut to %d bytes decoded: %+v", n, pi)
			}
			continue
		}
		// A cut in the frame is a frame the switch truncated.
		if err != nil || !bytes.Equal(pi.Data, body[dataOff:n]) || pi.InPort != 0xfffffffe {
			t.Errorf("body cut to %d bytes: %v, data %x", n, err, pi.Data)
		}
	}
	// Whole messages: the header must match.
	for name, mut := range map[string]func([]byte) []byte{
		"short header":   func(b []byte) []byte { return b[:7] },
		"length too big": func(b []byte) []byte { be.PutUint16(b[2:], uint16(len(b)+1)); return b },
		"length small":   func(b []byte) []byte { be.PutUint16(b[2:], uint16(len(b)-1)); return b },
		"cut message":    func(b []byte) []byte { return b[:len(b)-1] },
		"version 1.0":    func(b []byte) []byte { b[0] = 1; return b },
		"flow removed":   func(b []byte) []byte { b[1] = typeFlowRemoved; return b },
	} {
		if pi, err := DecodePacketIn(mut(append([]byte(nil), msg...))); err == nil {
			t.Errorf("%s: decoded %+v", name, pi)
		}
	}
	// Every single-byte corruption either decodes or fails; none panics.
	for i := range msg {
		for _, x := range []byte{0xff, 0x80, 0x01} {
			b := append([]byte(nil), msg...)
			b[i] ^= x
			_, _ = DecodePacketIn(b)
		}
	}
}

func TestDecodePacketInMalformed(t *testing.T) {
	frame := unhex(t, icmpFrame)
	good := PacketIn{Reason: PacketInAction, Cookie: 9, InPort: 3, Match: NewMatch().InPort(3).With(FieldReg0, 1), Data: frame, TotalLen: 58, BufferID: noBuffer}
	if pi, err := DecodePacketIn(encodePacketIn(1, good)); err != nil || !samePacketIn(pi, good) {
		t.Fatalf("good packet-in: %v %+v", err, pi)
	}
	const matchOff = packetInFixedLen
	cases := map[string][]byte{
		"no in_port":     encodePacketIn(1, PacketIn{Match: NewMatch().With(FieldReg0, 1), Data: frame}),
		"empty match":    encodePacketIn(1, PacketIn{Data: frame}),
		"masked in_port": encodePacketIn(1, PacketIn{Match: Match{{Field: FieldInPort, Value: 2, Mask: 2, HasMask: true}}, Data: frame}),
	}
	mut := func(name string, f func(b []byte)) {
		b := encodePacketIn(1, good)
		f(b)
		cases[name] = b
	}
	mut("standard match type", func(b []byte) { be.PutUint16(b[matchOff:], 0) })
	mut("match length 3", func(b []byte) { be.PutUint16(b[matchOff+2:], 3) })
	mut("match longer than message", func(b []byte) { be.PutUint16(b[matchOff+2:], 0xfff0) })
	mut("field longer than match", func(b []byte) { b[matchOff+7] = 0x40 }) // in_port header length 64
	cut := encodePacketIn(1, PacketIn{Match: NewMatch().InPort(3)})
	cut = cut[:len(cut)-2] // no pad after the match
	setLength(cut, 0)
	cases["no pad after match"] = cut
	for name, b := range cases {
		if pi, err := DecodePacketIn(b); err == nil {
			t.Errorf("%s: decoded %+v", name, pi)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	// Unknown match fields are kept as Field 0 and do not stop decoding.
	b := encodePacketIn(1, good)
	i := bytes.Index(b, []byte{0x00, 0x01, 0x00, 0x04, 0, 0, 0, 1}) // NXM_NX_REG0 = 1
	b[i+2] = 0x10                                                   // NXM_NX_REG8
	pi, err := DecodePacketIn(b)
	if err != nil || pi.InPort != 3 || len(pi.Match) != 2 || pi.Match[0].Field != 0 {
		t.Errorf("unknown field: %v %+v", err, pi)
	}
}

func TestEncodePacketOut(t *testing.T) {
	frame := unhex(t, icmpFrame)
	b, err := EncodePacketOut(0x2a, PortController, []Action{Output(5), OutputInPort()}, frame)
	if err != nil {
		t.Fatal(err)
	}
	want := unhex(t, strings.Join([]string{
		"040d 0072 0000002a",   // v1.3 PACKET_OUT, length 114, xid 42
		"ffffffff",             // buffer_id OFP_NO_BUFFER
		"fffffffd",             // in_port OFPP_CONTROLLER
		"0020", "000000000000", // actions_len 32, pad
		"0000 0010 00000005 ffff 000000000000", // output:5, max_len NO_BUFFER
		"0000 0010 fffffff8 ffff 000000000000", // output IN_PORT
		icmpFrame,
	}, ""))
	if !bytes.Equal(b, want) {
		t.Errorf("packet-out:\n got  %x\n want %x", b, want)
	}
	// The controller action is an output to OFPP_CONTROLLER, whole packet.
	b, err = EncodePacketOut(1, 7, []Action{ToController(), SetField(FieldReg0, 5), Resubmit(3)}, frame)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, unhex(t, "0000 0010 fffffffd ffff 000000000000")) || be.Uint32(b[12:]) != 7 {
		t.Errorf("packet-out with controller action: %x", b)
	}
	if _, err := EncodePacketOut(1, 1, nil, frame); err != nil {
		t.Errorf("no actions (drop): %v", err)
	}

	bad := map[string]struct {
		acts []Action
		data []byte
	}{
		"no frame":       {[]Action{Output(1)}, nil},
		"goto_table":     {[]Action{Output(1), GotoTable(3)}, frame},
		"write_metadata": {[]Action{WriteMetadata(1, 1)}, frame},
		"meter":          {[]Action{Meter(1), Output(1)}, frame},
		"unknown action": {[]Action{{Type: ActUnknown, ext: "00"}}, frame},
		"unknown field":  {[]Action{SetField(0, 1)}, frame},
		"too long":       {[]Action{Output(1)}, make([]byte, maxMessageLen-packetOutFixedLen-15)},
	}
	for name, c := range bad {
		if _, err := EncodePacketOut(1, PortController, c.acts, c.data); err == nil {
			t.Errorf("%s: encoded", name)
		}
	}
	if _, err := EncodePacketOut(1, PortController, []Action{Output(1)}, make([]byte, maxMessageLen-packetOutFixedLen-16)); err != nil {
		t.Errorf("largest packet-out: %v", err)
	}
}

func TestControllerActionText(t *testing.T) {
	a := ToController()
	if a.Type != ActController || a.String() != "CONTROLLER:65535" {
		t.Errorf("ToController() = %+v, %q", a, a)
	}
	f := Flow{Priority: 100, Match: NewMatch().EthType(EthTypeIPv4).With(FieldIPProto, 1).InPort(1), Actions: []Action{ToController()}}
	if s := f.String(); s != "table=0, priority=100, cookie=0x0, icmp,in_port=1 actions=CONTROLLER:65535" {
		t.Errorf("flow text %q", s)
	}
	b := mustEncode(t, FlowMod{Flow: f})
	if !bytes.HasSuffix(b, unhex(t, "0004 0018 00000000 0000 0010 fffffffd ffff 000000000000")) {
		t.Errorf("flow mod %x does not end in apply-actions(output CONTROLLER max_len 0xffff)", b)
	}
}

// TestPacketInOutPrintedByOVS checks our bytes with OVS's own parser
// (ovs-ofctl ofp-print needs no running switch).
func TestPacketInOutPrintedByOVS(t *testing.T) {
	if _, err := exec.LookPath("ovs-ofctl"); err != nil {
		if os.Getenv("VPCFLOW_E2E") == "1" {
			t.Fatal("VPCFLOW_E2E=1 but ovs-ofctl not installed")
		}
		t.Skip("ovs-ofctl not installed")
	}
	frame := unhex(t, icmpFrame)
	po, err := EncodePacketOut(7, PortController, []Action{Output(1), OutputInPort(), SetField(FieldReg0, 5), ToController()}, frame)
	if err != nil {
		t.Fatal(err)
	}
	pi := encodePacketIn(8, PacketIn{Reason: PacketInAction, TableID: 9, Cookie: 0xabc, Match: NewMatch().InPort(3).With(FieldTunID, 0x55), Data: frame[:40], TotalLen: 58, BufferID: noBuffer})
	for _, c := range []struct {
		msg  []byte
		want []string
	}{
		{po, []string{"OFPT_PACKET_OUT (OF1.3) (xid=0x7): in_port=CONTROLLER actions=output:1,IN_PORT,set_field:0x5->reg0,CONTROLLER:65535 data_len=58",
			"icmp,vlan_tci=0x0000,dl_src=52:58:00:00:0a:01,dl_dst=52:58:00:00:0b:01,nw_src=10.77.0.1,nw_dst=10.77.0.2"}},
		{pi, []string{"OFPT_PACKET_IN (OF1.3) (xid=0x8): table_id=9 cookie=0xabc total_len=58 tun_id=0x55,in_port=3 (via action) data_len=40 (unbuffered)"}},
	} {
		out, err := exec.Command("ovs-ofctl", "ofp-print", hex.EncodeToString(c.msg)).CombinedOutput()
		if err != nil {
			t.Fatalf("ovs-ofctl ofp-print: %v\n%s", err, out)
		}
		for _, w := range c.want {
			if !strings.Contains(string(out), w) {
				t.Errorf("ovs-ofctl ofp-print:\n%s\nwant it to contain\n%s", out, w)
			}
		}
	}
}

// pinRecorder is a recorder that also takes packet-ins.
type pinRecorder struct {
	*recorder
	fn func(sw *Switch, pi PacketIn)
}

func (r *pinRecorder) PacketIn(sw *Switch, pi PacketIn) { r.fn(sw, pi) }

type gotPacketIn struct {
	sw *Switch
	pi PacketIn
}

// fakeBarrier runs a Barrier against a fake switch and answers it.
func fakeBarrier(t *testing.T, f *fakeSwitch, sw *Switch) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- sw.Barrier(ctx) }()
	m := f.expect(typeBarrierRequest)
	f.send(simpleMessage(typeBarrierReply, m.xid, nil))
	if err := <-done; err != nil {
		t.Fatalf("Barrier: %v", err)
	}
	return time.Since(start)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPacketInDelivery: well-formed packet-ins reach the handler in
// order, with the switch; malformed ones are counted and skipped and the
// connection stays up.
func TestPacketInDelivery(t *testing.T) {
	got := make(chan gotPacketIn, 1000)
	rec := &pinRecorder{recorder: newRecorder(), fn: func(sw *Switch, pi PacketIn) { got <- gotPacketIn{sw, pi} }}
	addr, _ := startServer(t, rec, ServerOptions{})
	f := dialFake(t, addr, 0x51)
	sw := rec.waitConnected(t, 0x51, 5*time.Second)

	frame := unhex(t, icmpFrame)
	malformed := [][]byte{
		simpleMessage(typePacketIn, 1, nil),
		simpleMessage(typePacketIn, 2, make([]byte, 30)), // standard match type 0
		encodePacketIn(3, PacketIn{Data: frame}),         // no in_port
		unhex(t, ovsPacketIns[0].msg)[:40],               // cut, with its length fixed below
	}
	setLength(malformed[3], 0)
	const n = 100
	for i := 0; i < n; i++ {
		pi := PacketIn{Reason: uint8(i % 3), TableID: uint8(i), Cookie: uint64(i), InPort: uint32(i + 1),
			Match: NewMatch().InPort(uint32(i+1)).With(FieldReg1, uint64(i)), Data: frame[:14+i%40], TotalLen: 58, BufferID: uint32(i)}
		f.send(encodePacketIn(uint32(i), pi))
		if i%25 == 0 {
			f.send(malformed[i/25])
		}
	}
	for i := 0; i < n; i++ {
		select {
		case g := <-got:
			if g.sw != sw {
				t.Fatalf("packet-in %d for %v, want %v", i, g.sw, sw)
			}
			pi := g.pi
			if pi.Cookie != uint64(i) || pi.InPort != uint32(i+1) || pi.TableID != uint8(i) || pi.Reason != uint8(i%3) ||
				pi.BufferID != uint32(i) || pi.TotalLen != 58 || !bytes.Equal(pi.Data, frame[:14+i%40]) {
				t.Fatalf("packet-in %d: %+v", i, pi)
			}
			if fm, _ := pi.Match.Get(FieldReg1); fm.Value != uint64(i) {
				t.Errorf("packet-in %d: match %s", i, pi.Match)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d of %d packet-ins delivered", i, n)
		}
	}
	fakeBarrier(t, f, sw)
	waitFor(t, "delivered count", func() bool { return sw.PacketInStats().Delivered == n })
	if st := sw.PacketInStats(); st != (PacketInStats{Queued: n, Delivered: n, Malformed: 4}) {
		t.Errorf("stats %+v", st)
	}
	select {
	case d := <-rec.disconnected:
		t.Fatalf("%s disconnected", d)
	default:
	}
}

// TestPacketInQueueFull: a handler that does not return makes packet-ins
// queue up to the limit and then be dropped, counted and logged at most
// once a second, while requests on the same switch go on.
func TestPacketInQueueFull(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	releaseAll := func() { once.Do(func() { close(release) }) }
	defer releaseAll()
	got := make(chan PacketIn, 1000)
	rec := &pinRecorder{recorder: newRecorder(), fn: func(sw *Switch, pi PacketIn) {
		<-release
		got <- pi
	}}
	core, logs := observer.New(zapcore.InfoLevel)
	const queue = 8
	srv := NewServer(zap.New(core), rec, ServerOptions{PacketInQueue: queue})
	ln := mustListen(t)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	defer func() {
		releaseAll()
		cancel()
		<-served
	}()
	f := dialFake(t, ln.Addr().String(), 0x52)
	sw := rec.waitConnected(t, 0x52, 5*time.Second)

	frame := unhex(t, icmpFrame)
	const n = 200
	for i := 0; i < n; i++ {
		f.send(encodePacketIn(uint32(i), PacketIn{Cookie: uint64(i), Match: NewMatch().InPort(1), Data: frame}))
	}
	// The reader is not held up: a barrier and a flow dump go through.
	d := fakeBarrier(t, f, sw)
	dumped := make(chan error, 1)
	go func() {
		_, err := sw.DumpFlows(ctx)
		dumped <- err
	}()
	m := f.expect(typeMultipartReq)
	f.send(multipartReply(m.xid, false, statsEntry(mustEncode(t, FlowMod{Flow: pipelineFlows()[0]}), 0, 0, 0)))
	if err := <-dumped; err != nil {
		t.Fatalf("DumpFlows while the handler is stuck: %v", err)
	}
	st := sw.PacketInStats()
	t.Logf("handler stuck: barrier took %v; stats %+v", d, st)
	// One may be in the handler, queue more in the queue.
	if st.Queued+st.Dropped != n || st.Queued > queue+1 || st.Queued < queue || st.Delivered != 0 {
		t.Errorf("stats with a stuck handler: %+v", st)
	}
	var warns int
	for _, e := range logs.All() {
		if strings.Contains(e.Message, "queue full") {
			warns++
		}
	}
	if warns < 1 || warns > 2 {
		t.Errorf("%d queue-full warnings for %d drops in well under a second, want 1 (or 2)", warns, st.Dropped)
	}

	releaseAll()
	// The first ones fill the queue; once the handler has taken the first,
	// one later arrival may take its place. Order is kept.
	last := -1
	for i := uint64(0); i < st.Queued; i++ {
		select {
		case pi := <-got:
			if (i < queue && pi.Cookie != i) || int(pi.Cookie) <= last {
				t.Errorf("delivered packet-in %d has cookie %d (previous %d): the first ones must be kept, in order", i, pi.Cookie, last)
			}
			last = int(pi.Cookie)
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d of %d queued packet-ins delivered", i, st.Queued)
		}
	}
	// After the backlog, new ones flow again.
	f.send(encodePacketIn(999, PacketIn{Cookie: 999, Match: NewMatch().InPort(1), Data: frame}))
	select {
	case pi := <-got:
		if pi.Cookie != 999 {
			t.Errorf("got cookie %d, want 999", pi.Cookie)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("packet-in after the backlog not delivered")
	}
}

// TestPacketInLifecycle: a panic in PacketIn is contained, and
// SwitchDisconnected waits for the last PacketIn call; packet-ins still
// queued then are discarded.
func TestPacketInLifecycle(t *testing.T) {
	inHandler := make(chan struct{}, 10)
	release := make(chan struct{})
	var releaseOnce sync.Once
	defer releaseOnce.Do(func() { close(release) })
	rec := &pinRecorder{recorder: newRecorder(), fn: func(sw *Switch, pi PacketIn) {
		switch pi.Cookie {
		case 1:
			panic("handler bug")
		case 3:
			inHandler <- struct{}{}
			<-release
		}
	}}
	addr, _ := startServer(t, rec, ServerOptions{})
	f := dialFake(t, addr, 0x53)
	sw := rec.waitConnected(t, 0x53, 5*time.Second)
	frame := unhex(t, icmpFrame)
	for c := uint64(1); c <= 3; c++ {
		f.send(encodePacketIn(0, PacketIn{Cookie: c, Match: NewMatch().InPort(1), Data: frame}))
	}
	select {
	case <-inHandler:
	case <-time.After(5 * time.Second):
		t.Fatal("third packet-in not delivered after a panicking one")
	}
	// More arrive while PacketIn is stuck; then the switch goes away.
	f.send(encodePacketIn(0, PacketIn{Cookie: 4, Match: NewMatch().InPort(1), Data: frame}))
	waitFor(t, "fourth packet-in queued", func() bool { return sw.PacketInStats().Queued == 4 })
	f.nc.Close()
	select {
	case d := <-rec.disconnected:
		t.Fatalf("%s reported disconnected while its PacketIn is running", d)
	case <-time.After(300 * time.Millisecond):
	}
	releaseOnce.Do(func() { close(release) })
	rec.waitDisconnected(t, sw, 5*time.Second)
	st := sw.PacketInStats()
	if st.Queued != 4 || st.Delivered != 3 {
		t.Errorf("stats %+v: want 4 queued, 3 delivered (the fourth is discarded at disconnect)", st)
	}
}

// slowGoodbye is a packet-in handler whose SwitchDisconnected takes its
// time and records when it returned.
type slowGoodbye struct {
	*pinRecorder
	mu       sync.Mutex
	goneAt   map[*Switch]time.Time
	firstPin map[*Switch]time.Time
}

func (h *slowGoodbye) SwitchDisconnected(sw *Switch) {
	time.Sleep(300 * time.Millisecond)
	h.mu.Lock()
	h.goneAt[sw] = time.Now()
	h.mu.Unlock()
	h.pinRecorder.SwitchDisconnected(sw)
}

func (h *slowGoodbye) PacketIn(sw *Switch, pi PacketIn) {
	h.mu.Lock()
	if _, ok := h.firstPin[sw]; !ok {
		h.firstPin[sw] = time.Now()
	}
	h.mu.Unlock()
	h.pinRecorder.PacketIn(sw, pi)
}

// TestPacketInAfterReplacedSwitchGone: when a switch reconnects, the new
// connection's packet-ins are delivered only after SwitchDisconnected of
// the old one returned, like SwitchConnected.
func TestPacketInAfterReplacedSwitchGone(t *testing.T) {
	got := make(chan gotPacketIn, 10)
	h := &slowGoodbye{
		pinRecorder: &pinRecorder{recorder: newRecorder(), fn: func(sw *Switch, pi PacketIn) { got <- gotPacketIn{sw, pi} }},
		goneAt:      map[*Switch]time.Time{},
		firstPin:    map[*Switch]time.Time{},
	}
	addr, _ := startServer(t, h, ServerOptions{ClaimProbeTimeout: 200 * time.Millisecond})
	first := dialFake(t, addr, 0x56)
	old := h.waitConnected(t, 0x56, 5*time.Second)
	first.mute.Store(true) // gone without closing: the new connection replaces it
	f := dialFake(t, addr, 0x56)
	frame := unhex(t, icmpFrame)
	f.send(encodePacketIn(0, PacketIn{Cookie: 7, Match: NewMatch().InPort(1), Data: frame}))
	var g gotPacketIn
	select {
	case g = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("packet-in on the new connection not delivered")
	}
	h.waitDisconnected(t, old, 5*time.Second)
	if g.sw == old || g.pi.Cookie != 7 {
		t.Fatalf("packet-in %+v delivered for %v", g.pi, g.sw)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if gone, first := h.goneAt[old], h.firstPin[g.sw]; gone.IsZero() || first.Before(gone) {
		t.Errorf("new connection's first PacketIn at %v, old SwitchDisconnected returned at %v", first, gone)
	}
}

// TestPacketInWithoutHandler: a Handler without PacketIn gets nothing and
// the stats stay zero.
func TestPacketInWithoutHandler(t *testing.T) {
	rec := newRecorder()
	addr, _ := startServer(t, rec, ServerOptions{})
	f := dialFake(t, addr, 0x54)
	sw := rec.waitConnected(t, 0x54, 5*time.Second)
	f.send(unhex(t, ovsPacketIns[0].msg))
	f.send(simpleMessage(typePacketIn, 1, []byte{1}))
	fakeBarrier(t, f, sw)
	if st := sw.PacketInStats(); st != (PacketInStats{}) {
		t.Errorf("stats %+v", st)
	}
}

func TestPacketOutAgainstFakeSwitch(t *testing.T) {
	rec := newRecorder()
	addr, _ := startServer(t, rec, ServerOptions{})
	f := dialFake(t, addr, 0x55)
	sw := rec.waitConnected(t, 0x55, 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	frame := unhex(t, icmpFrame)

	if err := sw.PacketOut(ctx, PortController, []Action{Output(4)}, frame); err != nil {
		t.Fatalf("PacketOut: %v", err)
	}
	m := f.expect(typePacketOut)
	want, _ := EncodePacketOut(m.xid, PortController, []Action{Output(4)}, frame)
	if !bytes.Equal(simpleMessage(m.typ, m.xid, m.body), want) {
		t.Errorf("switch got %x\nwant %x", m.body, want[headerLen:])
	}

	// Refused before anything is written.
	if err := sw.PacketOut(ctx, PortController, []Action{GotoTable(1)}, frame); err == nil {
		t.Error("PacketOut with goto_table succeeded")
	}
	done, stop := context.WithCancel(ctx)
	stop()
	if err := sw.PacketOut(done, PortController, []Action{Output(4)}, frame); !errors.Is(err, context.Canceled) {
		t.Errorf("PacketOut with a cancelled context: %v", err)
	}
	// It waits for the write lock only as long as its context allows.
	if err := sw.c.lockWrite(ctx); err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(ctx, 100*time.Millisecond)
	start := time.Now()
	err := sw.PacketOut(short, PortController, []Action{Output(4)}, frame)
	cancelShort()
	sw.c.unlockWrite()
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Errorf("PacketOut while the write lock is held: %v after %v", err, time.Since(start))
	}
	// None of these reached the switch: the next message is the barrier.
	fakeBarrier(t, f, sw)

	sw.Close()
	rec.waitDisconnected(t, sw, 5*time.Second)
	if err := sw.PacketOut(ctx, PortController, []Action{Output(4)}, frame); !errors.Is(err, ErrClosed) {
		t.Errorf("PacketOut on a closed switch: %v, want ErrClosed", err)
	}
}
