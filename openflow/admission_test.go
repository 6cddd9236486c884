package openflow

import (
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// nopHandler accepts switches and does nothing.
type nopHandler struct{}

func (nopHandler) SwitchConnected(context.Context, *Switch) {}
func (nopHandler) SwitchDisconnected(*Switch)               {}

// serveAdmission runs a Server on ln until the test ends.
func serveAdmission(t *testing.T, ln net.Listener, opts ServerOptions) (*Server, *observer.ObservedLogs, chan error) {
	t.Helper()
	core, logs := observer.New(zap.InfoLevel)
	srv := NewServer(zap.New(core), nopHandler{}, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return")
		}
	})
	return srv, logs, done
}

// dialFrom connects from a given loopback address.
func dialFrom(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// greeted says whether the server sent its HELLO on c (admitted) or closed
// it without a word (refused).
func greeted(t *testing.T, c net.Conn) bool {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, headerLen)
	_, err := io.ReadFull(c, buf)
	switch {
	case err == nil:
		return buf[1] == typeHello
	case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET):
		return false
	default:
		t.Fatalf("neither a hello nor a close: %v", err)
		return false
	}
}

// Connections in their handshake are capped per source address and in
// total; refused ones are closed at once; a finished or failed handshake
// frees its slot; the refusals are counted.
func TestHandshakeCaps(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, logs, _ := serveAdmission(t, ln, ServerOptions{MaxHandshakes: 4, MaxHandshakesPerSource: 2, HandshakeTimeout: 500 * time.Millisecond})
	addr := ln.Addr().String()
	a1, a2 := dialFrom(t, "127.0.0.1", addr), dialFrom(t, "127.0.0.1", addr)
	if !greeted(t, a1) || !greeted(t, a2) {
		t.Fatal("the first two from 127.0.0.1 were not admitted")
	}
	if greeted(t, dialFrom(t, "127.0.0.1", addr)) {
		t.Error("a third handshake from 127.0.0.1 was admitted (per-source cap 2)")
	}
	b1, b2 := dialFrom(t, "127.0.0.2", addr), dialFrom(t, "127.0.0.2", addr)
	if !greeted(t, b1) || !greeted(t, b2) {
		t.Fatal("127.0.0.2 was refused while under both caps")
	}
	if greeted(t, dialFrom(t, "127.0.0.3", addr)) {
		t.Error("a fifth handshake was admitted (total cap 4)")
	}
	if p, r := srv.HandshakeStats(); p != 4 || r != 2 {
		t.Errorf("stats: %d in handshake, %d refused; want 4, 2", p, r)
	}
	// A peer that gives up frees its slot.
	a1.Close()
	deadline := time.Now().Add(2 * time.Second)
	for {
		if p, _ := srv.HandshakeStats(); p == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a closed handshake kept its slot")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !greeted(t, dialFrom(t, "127.0.0.3", addr)) {
		t.Error("refused after a slot was freed")
	}
	// Idle handshakes time out and free their slots.
	deadline = time.Now().Add(3 * time.Second)
	for {
		if p, _ := srv.HandshakeStats(); p == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("idle handshakes did not time out")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := logs.FilterMessage("switch connection refused").Len(); n != 2 {
		t.Errorf("%d refusal warnings, want 2", n)
	}
}

// flakyListener fails its first n accepts with EMFILE.
type flakyListener struct {
	net.Listener
	fails atomic.Int32
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.fails.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	}
	return l.Listener.Accept()
}

// Accept errors (too many open files) are retried after a growing pause,
// not fatal; the warnings about them are rate-limited.
func TestAcceptErrorsBackOff(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &flakyListener{Listener: inner}
	ln.fails.Store(20)
	start := time.Now()
	_, logs, done := serveAdmission(t, ln, ServerOptions{MaxAcceptBackoff: 40 * time.Millisecond})
	c := dialFrom(t, "127.0.0.1", inner.Addr().String())
	if !greeted(t, c) {
		t.Fatal("no hello after the accept errors")
	}
	el := time.Since(start)
	// 5+10+20 ms, then 17 × 40 ms.
	if el < 500*time.Millisecond || el > 5*time.Second {
		t.Errorf("20 failed accepts took %s; want the backoff (~715ms)", el)
	}
	select {
	case err := <-done:
		t.Fatalf("Serve returned: %v", err)
	default:
	}
	if n := logs.FilterMessage("accepting a switch connection failed; retrying").Len(); n != 5 {
		t.Errorf("%d accept warnings for 20 errors, want 5 (rate-limited)", n)
	}
}

func TestAcceptBackoff(t *testing.T) {
	for n, want := range map[int]time.Duration{1: 5 * time.Millisecond, 2: 10 * time.Millisecond, 3: 20 * time.Millisecond, 9: time.Second, 100: time.Second} {
		if got := acceptBackoff(n, time.Second); got != want {
			t.Errorf("acceptBackoff(%d) = %s, want %s", n, got, want)
		}
	}
}

// Handshake failures are logged at most 5 times per 10s per peer address
// and kind of failure: a peer retrying forever does not flood the log,
// and another kind of failure is still logged.
func TestHandshakeFailureWarningsRateLimited(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, logs, _ := serveAdmission(t, ln, ServerOptions{HandshakeTimeout: time.Second})
	addr := ln.Addr().String()
	garbage := func(from string, b []byte) {
		c := dialFrom(t, from, addr)
		_, _ = c.Write(b)
		_, _ = io.Copy(io.Discard, c) // until the server closes it
		c.Close()
	}
	for i := 0; i < 12; i++ {
		garbage("127.0.0.1", []byte("GET / HTTP/1.1\r\n\r\n"))
	}
	garbage("127.0.0.1", []byte{0x04, 0, 0, 8, 0, 0, 0, 1, 0x04, 0x0a, 0, 8, 0, 0, 0, 2}) // another kind: hello, then silence (timeout)
	garbage("127.0.0.2", []byte("GET / HTTP/1.1\r\n\r\n"))                                // another address
	deadline := time.Now().Add(5 * time.Second)
	for {
		if p, _ := srv.HandshakeStats(); p == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("handshakes still pending")
		}
		time.Sleep(10 * time.Millisecond)
	}
	n := logs.FilterMessage("switch handshake failed").Len()
	if n != 7 {
		for _, e := range logs.FilterMessage("switch handshake failed").All() {
			t.Log(e.ContextMap())
		}
		t.Errorf("%d handshake warnings, want 7 (5 of 12 alike, 1 of another kind, 1 from another address)", n)
	}
}
