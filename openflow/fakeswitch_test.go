package openflow

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeSwitch is a scripted OpenFlow peer for tests of the connection layer
// (a test peer speaking the protocol over real loopback TCP, not a mock of
// our code). After the handshake a reader goroutine answers echo requests
// and queues every other message on in.
type fakeSwitch struct {
	t   *testing.T
	nc  net.Conn
	br  *bufio.Reader
	wmu sync.Mutex
	in  chan message
	eof chan struct{} // closed when the server closed the connection

	packetInFormat atomic.Uint32 // the format the server asked for, if any
	// mute, when set, makes the fake stop answering anything (a peer
	// that is gone without closing its connection).
	mute atomic.Bool
}

// dialRaw connects without a handshake.
func dialRaw(t *testing.T, addr string) *fakeSwitch {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &fakeSwitch{t: t, nc: nc, br: bufio.NewReader(nc), in: make(chan message, 1024), eof: make(chan struct{})}
}

// dialFake connects and completes the handshake as an OpenFlow 1.3 switch.
func dialFake(t *testing.T, addr string, dpid uint64) *fakeSwitch {
	t.Helper()
	f := dialRaw(t, addr)
	f.send(encodeHello(1))
	f.handshake(dpid)
	return f
}

// handshake reads the server's hello and features request and answers it,
// then starts the reader.
func (f *fakeSwitch) handshake(dpid uint64) {
	f.t.Helper()
	_ = f.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	m, err := readMessage(f.br)
	if err != nil || m.typ != typeHello || m.version != Version {
		f.t.Fatalf("expected hello from server, got %+v, %v", m, err)
	}
	if !helloOffers13(m) {
		f.t.Fatalf("server hello does not offer 1.3: %x", m.body)
	}
	m, err = readMessage(f.br)
	if err != nil || m.typ != typeFeaturesRequest {
		f.t.Fatalf("expected features request, got %+v, %v", m, err)
	}
	body := make([]byte, featuresReplyLen-headerLen)
	be.PutUint64(body, dpid)
	body[12] = 254 // n_tables
	f.send(simpleMessage(typeFeaturesReply, m.xid, body))
	_ = f.nc.SetReadDeadline(time.Time{})
	go f.readLoop()
}

func (f *fakeSwitch) readLoop() {
	defer close(f.eof)
	for {
		m, err := readMessage(f.br)
		if err != nil {
			return
		}
		if f.mute.Load() {
			continue
		}
		if m.typ == typeEchoRequest {
			f.send(simpleMessage(typeEchoReply, m.xid, m.body))
			continue
		}
		if m.typ == typeExperimenter && len(m.body) == 12 && be.Uint32(m.body) == nxExperimenter &&
			be.Uint32(m.body[4:]) == nxtSetPacketInFormat {
			// The server asks every switch whose handler takes packet-ins
			// for NXT_PACKET_IN2; the scripted tests do not care.
			f.packetInFormat.Store(be.Uint32(m.body[8:]))
			continue
		}
		f.in <- m
	}
}

func (f *fakeSwitch) send(b []byte) {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	_, _ = f.nc.Write(b)
}

// expect returns the next queued message, which must be of type typ.
func (f *fakeSwitch) expect(typ uint8) message {
	f.t.Helper()
	select {
	case m := <-f.in:
		if m.typ != typ {
			f.t.Fatalf("fake switch got message type %d, want %d", m.typ, typ)
		}
		return m
	case <-time.After(5 * time.Second):
		f.t.Fatalf("fake switch: no message of type %d within 5s", typ)
	}
	return message{}
}

// waitClosed waits for the server to close the connection.
func (f *fakeSwitch) waitClosed(timeout time.Duration) error {
	select {
	case <-f.eof:
		return nil
	case <-time.After(timeout):
		return errors.New("server did not close the connection")
	}
}

// waitClosedRaw waits for EOF on a connection without a reader goroutine.
func (f *fakeSwitch) waitClosedRaw(timeout time.Duration) error {
	_ = f.nc.SetReadDeadline(time.Now().Add(timeout))
	_, err := io.Copy(io.Discard, f.br)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return errors.New("server did not close the connection")
	}
	return nil
}

// errorMsg builds an OFPT_ERROR for xid.
func errorMsg(xid uint32, typ, code uint16) []byte {
	body := appendU16(nil, typ)
	body = appendU16(body, code)
	body = append(body, 1, 2, 3, 4)
	return simpleMessage(typeError, xid, body)
}

// multipartReply builds one OFPMP_FLOW reply part.
func multipartReply(xid uint32, more bool, entries []byte) []byte {
	body := appendU16(nil, multipartFlow)
	flags := uint16(0)
	if more {
		flags = multipartReplyMore
	}
	body = appendU16(body, flags)
	body = append(body, 0, 0, 0, 0)
	return simpleMessage(typeMultipartReply, xid, append(body, entries...))
}
