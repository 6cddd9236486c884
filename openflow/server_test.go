package openflow

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRequestsAgainstFakeSwitch(t *testing.T) {
	rec := newRecorder()
	addr, _ := startServer(t, rec, ServerOptions{})
	f := dialFake(t, addr, 0xab)
	sw := rec.waitConnected(t, 0xab, 5*time.Second)
	if sw.DPID() != 0xab || sw.RemoteAddr() == "" || sw.ConnectedAt().IsZero() {
		t.Errorf("switch info: %s %v", sw, sw.ConnectedAt())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Echo requests are answered with the same xid and payload.
	f.send(simpleMessage(typeEchoRequest, 0x1234, []byte("payload")))
	// The fake's reader answers echo requests itself, so read this one
	// directly from the queue: it is the server's reply.
	m := f.expect(typeEchoReply)
	if m.xid != 0x1234 || string(m.body) != "payload" {
		t.Errorf("echo reply xid %#x body %q", m.xid, m.body)
	}

	// Unknown and asynchronous messages are ignored.
	f.send(simpleMessage(99, 7, []byte{1, 2, 3}))
	f.send(simpleMessage(typePacketIn, 8, make([]byte, 30)))
	f.send(simpleMessage(typePortStatus, 9, make([]byte, 3)))
	f.send(simpleMessage(typeFlowRemoved, 10, nil))
	f.send(simpleMessage(typeBarrierReply, 11, nil))          // nobody waits
	f.send(errorMsg(12, 1, 1))                                // nobody waits
	f.send(simpleMessage(typeExperimenter, 13, []byte{0, 1})) // short experimenter

	// Barrier.
	done := make(chan error, 1)
	go func() { done <- sw.Barrier(ctx) }()
	m = f.expect(typeBarrierRequest)
	f.send(simpleMessage(typeBarrierReply, m.xid, nil))
	if err := <-done; err != nil {
		t.Fatalf("Barrier: %v", err)
	}

	// DumpFlows collects every part of a multipart reply, in order.
	flows := pipelineFlows()
	var parts [][]byte
	for _, fl := range flows {
		parts = append(parts, statsEntry(mustEncode(t, FlowMod{Flow: fl}), 1, 2, 3))
	}
	type dumpResult struct {
		fs  []FlowStats
		err error
	}
	dumped := make(chan dumpResult, 1)
	go func() {
		fs, err := sw.DumpFlows(ctx)
		dumped <- dumpResult{fs, err}
	}()
	m = f.expect(typeMultipartReq)
	if len(m.body) != 8+flowStatsReqLen || m.body[8] != TableAll || be.Uint32(m.body[12:]) != PortAny ||
		be.Uint32(m.body[16:]) != groupAny || be.Uint16(m.body[0:]) != multipartFlow {
		t.Errorf("flow stats request body %x", m.body)
	}
	f.send(multipartReply(m.xid, true, bytes.Join(parts[:2], nil)))
	f.send(simpleMessage(typeBarrierReply, 99, nil)) // interleaved noise
	f.send(multipartReply(m.xid, true, bytes.Join(parts[2:5], nil)))
	f.send(multipartReply(m.xid, false, bytes.Join(parts[5:], nil)))
	r := <-dumped
	if r.err != nil {
		t.Fatalf("DumpFlows: %v", r.err)
	}
	if len(r.fs) != len(flows) {
		t.Fatalf("DumpFlows returned %d flows, want %d", len(r.fs), len(flows))
	}
	for i := range flows {
		if r.fs[i].Flow.String() != flows[i].String() {
			t.Errorf("flow %d: got %s want %s", i, &r.fs[i].Flow, &flows[i])
		}
	}

	// A stats error is returned.
	go func() {
		fs, err := sw.DumpFlows(ctx)
		dumped <- dumpResult{fs, err}
	}()
	m = f.expect(typeMultipartReq)
	f.send(errorMsg(m.xid, 1, 2))
	if r := <-dumped; r.err == nil || !strings.Contains(r.err.Error(), "BAD_MULTIPART") {
		t.Errorf("DumpFlows error = %v, want BAD_MULTIPART", r.err)
	}
}

// TestApplyFallsBackWithoutBundles plays a switch that refuses bundles:
// Apply falls back to flow mods + barrier and reports the rejected mod.
func TestApplyFallsBackWithoutBundles(t *testing.T) {
	rec := newRecorder()
	addr, _ := startServer(t, rec, ServerOptions{})
	f := dialFake(t, addr, 1)
	sw := rec.waitConnected(t, 1, 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	flows := pipelineFlows()[:3]
	done := make(chan error, 1)
	go func() { done <- sw.Apply(ctx, addMods(flows)) }()

	// The bundle attempt: open, 3 adds, barrier. Refuse all of it.
	open := f.expect(typeExperimenter)
	if _, typ, ok := bundleControlReply(open.body); !ok || typ != bundleOpenRequest {
		t.Fatalf("first message is not a bundle open: %x", open.body)
	}
	f.send(errorMsg(open.xid, 1, 3)) // BAD_EXPERIMENTER
	for range flows {
		add := f.expect(typeExperimenter)
		f.send(errorMsg(add.xid, 1, 3))
	}
	bar := f.expect(typeBarrierRequest)
	f.send(simpleMessage(typeBarrierReply, bar.xid, nil))

	// Discard of the failed bundle, then the plain path.
	disc := f.expect(typeExperimenter)
	if _, typ, ok := bundleControlReply(disc.body); !ok || typ != bundleDiscardRequest {
		t.Fatalf("expected bundle discard, got %x", disc.body)
	}
	f.send(errorMsg(disc.xid, 1, 3))
	var xids []uint32
	for i := range flows {
		m := f.expect(typeFlowMod)
		want := mustEncode(t, FlowMod{Flow: flows[i]})
		if !bytes.Equal(m.body, want[headerLen:]) {
			t.Errorf("flow mod %d body differs", i)
		}
		xids = append(xids, m.xid)
	}
	bar = f.expect(typeBarrierRequest)
	f.send(errorMsg(xids[1], 2, 4)) // reject mod #1 before the barrier reply
	f.send(simpleMessage(typeBarrierReply, bar.xid, nil))
	err := <-done
	var fe *FlowModError
	if !errors.As(err, &fe) || fe.Index != 1 || !strings.Contains(err.Error(), flows[1].String()) ||
		!strings.Contains(err.Error(), "BAD_OUT_PORT") {
		t.Fatalf("Apply error = %v, want flow-mod #1 BAD_OUT_PORT naming %s", err, &flows[1])
	}

	// From now on no bundle is tried.
	go func() { done <- sw.Apply(ctx, addMods(flows[:1])) }()
	f.expect(typeFlowMod)
	bar = f.expect(typeBarrierRequest)
	f.send(simpleMessage(typeBarrierReply, bar.xid, nil))
	if err := <-done; err != nil {
		t.Fatalf("plain Apply: %v", err)
	}
	if err := sw.Apply(ctx, nil); err != nil {
		t.Fatalf("empty Apply: %v", err)
	}
}

// TestBundleCommitAgainstFakeSwitch checks the bundle message sequence.
func TestBundleCommitAgainstFakeSwitch(t *testing.T) {
	rec := newRecorder()
	addr, _ := startServer(t, rec, ServerOptions{})
	f := dialFake(t, addr, 2)
	sw := rec.waitConnected(t, 2, 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	flows := pipelineFlows()
	done := make(chan error, 1)
	go func() { done <- sw.Apply(ctx, addMods(flows)) }()
	acceptBundle(t, f, flows)
	if err := <-done; err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

// acceptBundle plays the switch's side of a bundle of adds of flows:
// open (checked and answered), each add (carrying exactly that flow's
// flow-mod), the barrier, the commit (answered).
func acceptBundle(t *testing.T, f *fakeSwitch, flows []Flow) {
	t.Helper()
	open := f.expect(typeExperimenter)
	id, typ, _ := bundleControlReply(open.body)
	if typ != bundleOpenRequest || be.Uint16(open.body[14:]) != bundleFlags {
		t.Fatalf("open: type %d flags %d", typ, be.Uint16(open.body[14:]))
	}
	reply := append([]byte(nil), open.body...)
	be.PutUint16(reply[12:], bundleOpenReply)
	f.send(simpleMessage(typeExperimenter, open.xid, reply))
	for i := range flows {
		add := f.expect(typeExperimenter)
		if be.Uint32(add.body[4:]) != onfBundleAdd || be.Uint32(add.body[8:]) != id ||
			be.Uint16(add.body[14:]) != bundleFlags {
			t.Fatalf("add %d: %x", i, add.body[:16])
		}
		inner := add.body[16:]
		want := mustEncode(t, FlowMod{Flow: flows[i]})
		if be.Uint32(inner[4:]) != add.xid || !bytes.Equal(inner[headerLen:], want[headerLen:]) || inner[1] != typeFlowMod {
			t.Fatalf("add %d carries the wrong message (want flow %s)", i, &flows[i])
		}
	}
	bar := f.expect(typeBarrierRequest)
	f.send(simpleMessage(typeBarrierReply, bar.xid, nil))
	commit := f.expect(typeExperimenter)
	if cid, typ, _ := bundleControlReply(commit.body); cid != id || typ != bundleCommitRequest {
		t.Fatalf("commit: id %d type %d", cid, typ)
	}
	reply = append([]byte(nil), commit.body...)
	be.PutUint16(reply[12:], bundleCommitReply)
	f.send(simpleMessage(typeExperimenter, commit.xid, reply))
}

// TestMalformedFramesCloseOnlyThatConnection: bad framing from one switch
// closes that connection; another switch keeps working.
func TestMalformedFramesCloseOnlyThatConnection(t *testing.T) {
	rec := newRecorder()
	addr, _ := startServer(t, rec, ServerOptions{EchoInterval: 100 * time.Millisecond, EchoTimeout: 2 * time.Second})
	good := dialFake(t, addr, 100)
	goodSw := rec.waitConnected(t, 100, 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	barrierOK := func() {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- goodSw.Barrier(ctx) }()
		m := good.expect(typeBarrierRequest)
		good.send(simpleMessage(typeBarrierReply, m.xid, nil))
		if err := <-done; err != nil {
			t.Fatalf("good switch disturbed: %v", err)
		}
	}

	cases := map[string][]byte{
		"length below 8":           {4, typeEchoRequest, 0, 4, 0, 0, 0, 1},
		"length zero":              {4, typeBarrierReply, 0, 0, 0, 0, 0, 1},
		"length beyond data, eof":  {4, typeEchoRequest, 0, 200, 0, 0, 0, 1, 1, 2, 3},
		"garbage after handshake":  bytes.Repeat([]byte{0x00}, 64),
		"garbage with bad version": []byte("\x01\x00\x00\x08\x00\x00\x00\x00ZZZZZZZZZZZZZZZZZ"),
	}
	dpid := uint64(200)
	for name, payload := range cases {
		t.Run(name, func(t *testing.T) {
			dpid++
			bad := dialFake(t, addr, dpid)
			badSw := rec.waitConnected(t, dpid, 5*time.Second)
			bad.send(payload)
			if name == "length beyond data, eof" {
				_ = bad.nc.(interface{ CloseWrite() error }).CloseWrite()
			}
			// The last case is a version-1 header (ignored) followed by a
			// header announcing 23130 bytes that never come: the server
			// drops it after EchoTimeout.
			if err := bad.waitClosed(5 * time.Second); err != nil {
				t.Fatal(err)
			}
			rec.waitDisconnected(t, badSw, 5*time.Second)
			barrierOK()
		})
	}

	t.Run("garbage before handshake", func(t *testing.T) {
		raw := dialRaw(t, addr)
		raw.send([]byte("SSH-2.0-OpenSSH_9.0\r\n" + strings.Repeat("x", 100)))
		if err := raw.waitClosedRaw(5 * time.Second); err != nil {
			t.Fatal(err)
		}
		barrierOK()
	})
	t.Run("silent client times out in handshake", func(t *testing.T) {
		srvRec := newRecorder()
		addr2, _ := startServer(t, srvRec, ServerOptions{HandshakeTimeout: 300 * time.Millisecond})
		raw := dialRaw(t, addr2)
		if err := raw.waitClosedRaw(5 * time.Second); err != nil {
			t.Fatal(err)
		}
	})
}

// TestHelloNegotiation covers the versions a switch may offer.
func TestHelloNegotiation(t *testing.T) {
	rec := newRecorder()
	addr, _ := startServer(t, rec, ServerOptions{})
	hello := func(version uint8, bitmap uint32, withBitmap bool) []byte {
		b := []byte{version, typeHello, 0, 0, 0, 0, 0, 1}
		if withBitmap {
			b = appendU16(b, helloElemVersionBitmap)
			b = appendU16(b, 8)
			b = appendU32(b, bitmap)
		}
		be.PutUint16(b[2:], uint16(len(b)))
		return b
	}
	ok := map[string][]byte{
		"1.5 header, bitmap 1.0-1.5 (OVS default)": hello(6, 0x7e, true),
		"1.5 header, no bitmap":                    hello(6, 0, false),
		"1.3 header, bitmap 1.3":                   hello(4, 1<<4, true),
	}
	dpid := uint64(300)
	for name, h := range ok {
		t.Run(name, func(t *testing.T) {
			dpid++
			f := dialRaw(t, addr)
			f.send(h)
			f.handshake(dpid)
			rec.waitConnected(t, dpid, 5*time.Second)
		})
	}
	bad := map[string][]byte{
		"1.0 header, no bitmap":      hello(1, 0, false),
		"1.5 header, bitmap 1.4-1.5": hello(6, 1<<5|1<<6, true),
	}
	for name, h := range bad {
		t.Run(name, func(t *testing.T) {
			f := dialRaw(t, addr)
			f.send(h)
			_ = f.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			var gotErr bool
			for {
				m, err := readMessage(f.br)
				if err != nil {
					break
				}
				if m.typ == typeError && be.Uint16(m.body) == errTypeHelloFailed {
					gotErr = true
				}
			}
			if !gotErr {
				t.Error("no HELLO_FAILED error before close")
			}
		})
	}
}

// TestReconnectSameDPID: a second connection from the same datapath wins
// when the first one no longer answers (a switch that reconnected before
// its old connection was seen to close); the old one is disconnected
// first.
func TestReconnectSameDPID(t *testing.T) {
	rec := newRecorder()
	addr, _ := startServer(t, rec, ServerOptions{ClaimProbeTimeout: 200 * time.Millisecond})
	f1 := dialFake(t, addr, 7)
	sw1 := rec.waitConnected(t, 7, 5*time.Second)
	f1.mute.Store(true)
	_ = dialFake(t, addr, 7)
	select {
	case d := <-rec.disconnected:
		if d != sw1 {
			t.Fatalf("disconnected %s, want the old one", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("old connection not disconnected")
	}
	sw2 := rec.waitConnected(t, 7, 5*time.Second)
	if sw2 == sw1 {
		t.Fatal("same switch object reported twice")
	}
	if err := f1.waitClosed(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := sw1.Barrier(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Barrier on replaced switch: %v, want ErrClosed", err)
	}
}

// TestImpostorCannotTakeOverDPID (issue 10.2): a peer that completes the
// handshake with the dpid of a connected switch that still answers is
// refused: the established connection stays, the handler never hears of
// the impostor, nothing is sent to it after the handshake, and the
// conflict is counted. Reconnecting over and over changes nothing.
func TestImpostorCannotTakeOverDPID(t *testing.T) {
	rec := newRecorder()
	log := testLogger(t)
	srv := NewServer(log, rec, ServerOptions{ClaimProbeTimeout: 500 * time.Millisecond})
	addr := serveUntilEnd(t, srv, mustListen(t))
	real := dialFake(t, addr, 0x42)
	sw := rec.waitConnected(t, 0x42, 5*time.Second)
	for i := 0; i < 5; i++ {
		imp := dialFake(t, addr, 0x42)
		if err := imp.waitClosed(5 * time.Second); err != nil {
			t.Fatalf("impostor %d: %v", i, err)
		}
		select {
		case m := <-imp.in:
			t.Errorf("impostor %d was sent message type %d after its handshake", i, m.typ)
		default:
		}
		if imp.packetInFormat.Load() != 0 {
			t.Errorf("impostor %d was asked for a packet-in format", i)
		}
	}
	select {
	case d := <-rec.disconnected:
		t.Fatalf("%s disconnected by an impostor", d)
	case sw2 := <-rec.connected:
		t.Fatalf("impostor reported as connected: %s", sw2)
	case <-time.After(200 * time.Millisecond):
	}
	if got := srv.DPIDConflicts(); got != 5 {
		t.Errorf("DPIDConflicts() = %d, want 5", got)
	}
	// The real switch is still served.
	bctx, bcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer bcancel()
	go func() {
		m := real.expect(typeBarrierRequest)
		real.send(simpleMessage(typeBarrierReply, m.xid, nil))
	}()
	if err := sw.Barrier(bctx); err != nil {
		t.Fatalf("the real switch no longer answers through the server: %v", err)
	}
	if got := srv.Switches(); len(got) != 1 || got[0] != sw {
		t.Errorf("switches %v", got)
	}
}

// TestRequestDeadlineAndClose: requests honour ctx and fail when the
// connection closes while they wait.
func TestRequestDeadlineAndClose(t *testing.T) {
	rec := newRecorder()
	addr, _ := startServer(t, rec, ServerOptions{})
	f := dialFake(t, addr, 9)
	sw := rec.waitConnected(t, 9, 5*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	err := sw.Barrier(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Barrier with unanswered request: %v, want deadline exceeded", err)
	}
	f.expect(typeBarrierRequest)

	done := make(chan error, 1)
	go func() {
		_, err := sw.DumpFlows(context.Background())
		done <- err
	}()
	f.expect(typeMultipartReq)
	f.nc.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("DumpFlows when the switch goes away: %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("DumpFlows did not return after the connection closed")
	}
	rec.waitDisconnected(t, sw, 5*time.Second)
}

// TestEchoTimeout: a switch that stops answering is dropped; one that
// answers stays.
func TestEchoTimeout(t *testing.T) {
	rec := newRecorder()
	addr, _ := startServer(t, rec, ServerOptions{EchoInterval: 50 * time.Millisecond, EchoTimeout: 400 * time.Millisecond})
	alive := dialFake(t, addr, 11)
	aliveSw := rec.waitConnected(t, 11, 5*time.Second)
	// A switch that completes the handshake and then never reads.
	mute := dialRaw(t, addr)
	mute.send(encodeHello(1))
	_ = mute.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := readMessage(mute.br); err != nil { // hello
		t.Fatal(err)
	}
	m, err := readMessage(mute.br)
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, featuresReplyLen-headerLen)
	be.PutUint64(body, 12)
	mute.send(simpleMessage(typeFeaturesReply, m.xid, body))
	muteSw := rec.waitConnected(t, 12, 5*time.Second)
	rec.waitDisconnected(t, muteSw, 5*time.Second)
	time.Sleep(500 * time.Millisecond)
	select {
	case d := <-rec.disconnected:
		t.Fatalf("%s dropped although it answers echoes", d)
	default:
	}
	done := make(chan error, 1)
	go func() { done <- aliveSw.Barrier(context.Background()) }()
	m = alive.expect(typeBarrierRequest)
	alive.send(simpleMessage(typeBarrierReply, m.xid, nil))
	if err := <-done; err != nil {
		t.Fatalf("answering switch: %v", err)
	}
}

// TestServeStops: Serve returns when ctx is cancelled and closes switches.
func TestServeStops(t *testing.T) {
	rec := newRecorder()
	ln := mustListen(t)
	srv := NewServer(testLogger(t), rec, ServerOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	f := dialFake(t, ln.Addr().String(), 5)
	sw := rec.waitConnected(t, 5, 5*time.Second)
	if n := len(srv.Switches()); n != 1 {
		t.Errorf("Switches() has %d entries", n)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	rec.waitDisconnected(t, sw, time.Second)
	if err := f.waitClosed(5 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestSlowSwitchDoesNotBlockOthers: a switch that stops reading blocks
// only its own requests, and those still honour their contexts.
func TestSlowSwitchDoesNotBlockOthers(t *testing.T) {
	rec := newRecorder()
	addr, _ := startServer(t, rec, ServerOptions{EchoInterval: time.Hour, EchoTimeout: time.Hour})
	good := dialFake(t, addr, 21)
	goodSw := rec.waitConnected(t, 21, 5*time.Second)

	stuck := dialRaw(t, addr)
	stuck.send(encodeHello(1))
	_ = stuck.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := readMessage(stuck.br); err != nil {
		t.Fatal(err)
	}
	m, err := readMessage(stuck.br)
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, featuresReplyLen-headerLen)
	be.PutUint64(body, 22)
	stuck.send(simpleMessage(typeFeaturesReply, m.xid, body))
	stuckSw := rec.waitConnected(t, 22, 5*time.Second)
	// From here on the stuck switch reads nothing: its socket buffers fill.

	flows := make([]Flow, 100000)
	for i := range flows {
		flows[i] = Flow{Table: 1, Priority: uint16(i), Match: NewMatch().InPort(uint32(i)), Actions: []Action{Output(1)}}
	}
	applyErr := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 800*time.Millisecond)
		defer cancel()
		applyErr <- stuckSw.Apply(ctx, addMods(flows))
	}()
	time.Sleep(100 * time.Millisecond)

	// Another request on the stuck switch waits for the write lock, but
	// only as long as its context allows.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	start := time.Now()
	err = stuckSw.Barrier(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Errorf("Barrier on stuck switch: %v after %v", err, time.Since(start))
	}

	// The other switch is not affected.
	done := make(chan error, 1)
	start = time.Now()
	go func() { done <- goodSw.Barrier(context.Background()) }()
	m = good.expect(typeBarrierRequest)
	good.send(simpleMessage(typeBarrierReply, m.xid, nil))
	if err := <-done; err != nil || time.Since(start) > time.Second {
		t.Errorf("good switch Barrier: %v after %v", err, time.Since(start))
	}

	select {
	case err := <-applyErr:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Apply to stuck switch: %v, want deadline exceeded", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Apply to a stuck switch ignored its deadline")
	}
	// Half a message may be on the wire: the connection is dropped.
	rec.waitDisconnected(t, stuckSw, 5*time.Second)
}

// reusingMods is a FlowMods that reads each mod into the caller's m,
// reusing its Match and Actions arrays (as a packed batch does), and fails
// to read mod bad (-1: none).
type reusingMods struct {
	mods []FlowMod
	bad  int
}

func (r reusingMods) Len() int { return len(r.mods) }

func (r reusingMods) At(i int, m *FlowMod) error {
	if i == r.bad {
		return errors.New("unreadable")
	}
	src := r.mods[i]
	match, acts := append(m.Flow.Match[:0], src.Flow.Match...), append(m.Flow.Actions[:0], src.Flow.Actions...)
	*m = src
	m.Flow.Match, m.Flow.Actions = match, acts
	return nil
}

// TestApplySeqReadsModsOneAtATime: a batch read one flow-mod at a time
// into one reused value goes out as the same bundle as the list would;
// a batch with a mod that does not read sends nothing at all.
func TestApplySeqReadsModsOneAtATime(t *testing.T) {
	rec := newRecorder()
	addr, _ := startServer(t, rec, ServerOptions{})
	f := dialFake(t, addr, 3)
	sw := rec.waitConnected(t, 3, 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	flows := pipelineFlows()

	err := sw.ApplySeq(ctx, reusingMods{mods: addMods(flows), bad: 2})
	if err == nil || !strings.Contains(err.Error(), "flow-mod #2") {
		t.Fatalf("ApplySeq with an unreadable mod: %v, want an error naming flow-mod #2", err)
	}
	done := make(chan error, 1)
	go func() { done <- sw.Barrier(ctx) }()
	m := f.expect(typeBarrierRequest) // nothing of the refused batch before it
	f.send(simpleMessage(typeBarrierReply, m.xid, nil))
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	go func() { done <- sw.ApplySeq(ctx, reusingMods{mods: addMods(flows), bad: -1}) }()
	acceptBundle(t, f, flows)
	if err := <-done; err != nil {
		t.Fatalf("ApplySeq: %v", err)
	}
}
