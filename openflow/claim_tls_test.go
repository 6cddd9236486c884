package openflow

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"
)

// testCA issues certificates for TLS tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
	n    int64
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool, n: 1}
}

// issue makes a certificate for cn, usable as a client and a server.
func (ca *testCA) issue(t *testing.T, cn string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca.n++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(ca.n), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// dialFakeTLS is dialFake over TLS with a client certificate.
func dialFakeTLS(t *testing.T, addr string, ca *testCA, cert tls.Certificate, dpid uint64) *fakeSwitch {
	t.Helper()
	nc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
		&tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: ca.pool, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	f := &fakeSwitch{t: t, nc: nc, br: bufio.NewReader(nc), in: make(chan message, 1024), eof: make(chan struct{})}
	f.send(encodeHello(1))
	f.handshake(dpid)
	return f
}

// serveTLSClaims runs a TLS-only server for h, with certificates of ca
// and a short claim probe, until the test ends.
func serveTLSClaims(t *testing.T, ca *testCA, h Handler) (*Server, string) {
	t.Helper()
	srvCert := ca.issue(t, "vpcflow")
	ln := tls.NewListener(mustListen(t), &tls.Config{Certificates: []tls.Certificate{srvCert}, ClientCAs: ca.pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12})
	srv := NewServer(testLogger(t), h, ServerOptions{ClaimProbeTimeout: 200 * time.Millisecond})
	return srv, serveUntilEnd(t, srv, ln)
}

// TestTLSBindsDPIDToCertificate (issue 10.2): over TLS a dpid belongs to
// the certificate that first presented it. Another certificate signed by
// the same CA is refused for that dpid — while the switch is connected
// and after it left — and counted; the first certificate gets it back.
func TestTLSBindsDPIDToCertificate(t *testing.T) {
	ca := newTestCA(t)
	rec := newRecorder()
	srv, addr := serveTLSClaims(t, ca, rec)
	realCert, otherCert := ca.issue(t, "br-vpc switch"), ca.issue(t, "someone else")

	real := dialFakeTLS(t, addr, ca, realCert, 0x99)
	rec.waitConnected(t, 0x99, 5*time.Second)
	imp := dialFakeTLS(t, addr, ca, otherCert, 0x99)
	if err := imp.waitClosed(5 * time.Second); err != nil {
		t.Fatalf("impostor with another certificate while the switch is connected: %v", err)
	}
	// The switch leaves; the other certificate still may not have its dpid.
	real.nc.Close()
	<-rec.disconnected
	imp = dialFakeTLS(t, addr, ca, otherCert, 0x99)
	if err := imp.waitClosed(5 * time.Second); err != nil {
		t.Fatalf("impostor with another certificate after the switch left: %v", err)
	}
	select {
	case sw := <-rec.connected:
		t.Fatalf("impostor reported connected: %s", sw)
	case <-time.After(100 * time.Millisecond):
	}
	if got := srv.DPIDConflicts(); got != 2 {
		t.Errorf("DPIDConflicts() = %d, want 2", got)
	}
	// The certificate it is bound to gets it back; another dpid is free
	// for the other certificate.
	dialFakeTLS(t, addr, ca, realCert, 0x99)
	rec.waitConnected(t, 0x99, 5*time.Second)
	dialFakeTLS(t, addr, ca, otherCert, 0x98)
	rec.waitConnected(t, 0x98, 5*time.Second)
}

// bindingRecorder is a recorder that keeps certificate bindings itself
// (CertificateBinder), as vpcflow's controller does in its store.
type bindingRecorder struct {
	*recorder
	mu    sync.Mutex
	bound map[uint64][sha256.Size]byte
	fail  error // of BindCertificate
	calls int   // of BindCertificate
}

func (b *bindingRecorder) BoundCertificate(_ context.Context, dpid uint64) ([sha256.Size]byte, bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	fp, ok := b.bound[dpid]
	return fp, ok, nil
}

func (b *bindingRecorder) BindCertificate(_ context.Context, dpid uint64, fp [sha256.Size]byte, remote string) ([sha256.Size]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls++
	if b.fail != nil {
		return fp, b.fail
	}
	if cur, ok := b.bound[dpid]; ok {
		return cur, nil
	}
	b.bound[dpid] = fp
	return fp, nil
}

// TestTLSBindingsKeptByTheHandler: a handler that keeps bindings
// (CertificateBinder) is asked, not the server's memory: a dpid it has
// bound to another certificate — as a restarted controller finds in its
// store — is refused on the very first connection of this server, one it
// cannot bind is refused (and free for the next that can), and the
// certificate it holds is let in without binding again.
func TestTLSBindingsKeptByTheHandler(t *testing.T) {
	ca := newTestCA(t)
	realCert, otherCert := ca.issue(t, "br-vpc switch"), ca.issue(t, "someone else")
	h := &bindingRecorder{recorder: newRecorder(), bound: map[uint64][sha256.Size]byte{
		0x99: sha256.Sum256(realCert.Certificate[0]),
	}}
	srv, addr := serveTLSClaims(t, ca, h)

	if err := dialFakeTLS(t, addr, ca, otherCert, 0x99).waitClosed(5 * time.Second); err != nil {
		t.Fatalf("a certificate the handler has not bound to the dpid: %v", err)
	}
	h.mu.Lock()
	h.fail = errors.New("store unavailable")
	h.mu.Unlock()
	if err := dialFakeTLS(t, addr, ca, otherCert, 0x98).waitClosed(5 * time.Second); err != nil {
		t.Fatalf("a dpid the handler could not bind: %v", err)
	}
	h.mu.Lock()
	if _, ok := h.bound[0x98]; ok || h.calls != 1 {
		t.Errorf("bindings %v after %d calls, want 0x98 unbound after 1", h.bound, h.calls)
	}
	h.fail = nil
	h.mu.Unlock()
	dialFakeTLS(t, addr, ca, realCert, 0x99)
	h.waitConnected(t, 0x99, 5*time.Second)
	// The refused claim did not keep 0x98: the next certificate gets it.
	dialFakeTLS(t, addr, ca, otherCert, 0x98)
	h.waitConnected(t, 0x98, 5*time.Second)
	if got := srv.DPIDConflicts(); got != 2 {
		t.Errorf("DPIDConflicts() = %d, want 2", got)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.bound[0x98] != sha256.Sum256(otherCert.Certificate[0]) || h.calls != 2 {
		t.Errorf("bindings %v after %d calls, want 0x98 bound to the second certificate after 2", h.bound, h.calls)
	}
}

// TestTLSClaimThatLosesBindsNothing: a TLS connection claiming the dpid
// of a switch connected over plain TCP (a server with both listeners)
// that still answers is refused, and its certificate is not bound: the
// switch, once it moves to TLS with its own certificate, is let in.
func TestTLSClaimThatLosesBindsNothing(t *testing.T) {
	ca := newTestCA(t)
	impostor, own := ca.issue(t, "someone else"), ca.issue(t, "br-vpc switch")
	rec := newRecorder()
	srvCert := ca.issue(t, "vpcflow")
	srv := NewServer(testLogger(t), rec, ServerOptions{ClaimProbeTimeout: 200 * time.Millisecond})
	tlsAddr := serveUntilEnd(t, srv, tls.NewListener(mustListen(t), &tls.Config{Certificates: []tls.Certificate{srvCert},
		ClientCAs: ca.pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}))
	tcpAddr := serveUntilEnd(t, srv, mustListen(t))

	plain := dialFake(t, tcpAddr, 0x77)
	plainSw := rec.waitConnected(t, 0x77, 5*time.Second)
	if err := dialFakeTLS(t, tlsAddr, ca, impostor, 0x77).waitClosed(5 * time.Second); err != nil {
		t.Fatalf("a TLS claim on a connected plain-TCP switch that answers: %v", err)
	}
	if got := srv.DPIDConflicts(); got != 1 {
		t.Errorf("DPIDConflicts() = %d, want 1", got)
	}
	plain.nc.Close()
	rec.waitDisconnected(t, plainSw, 5*time.Second)
	dialFakeTLS(t, tlsAddr, ca, own, 0x77)
	rec.waitConnected(t, 0x77, 5*time.Second)
	if got := srv.DPIDConflicts(); got != 1 {
		t.Errorf("the switch's own certificate was refused: DPIDConflicts() = %d, want 1", got)
	}
}

// FuzzDecodeTableStats: the decoder never panics; what it decodes is one
// entry per 24 bytes, each table's id and count read back as encoded.
func FuzzDecodeTableStats(f *testing.F) {
	entry := func(table uint8, active uint32) []byte {
		b := make([]byte, tableStatsLen)
		b[0] = table
		be.PutUint32(b[4:], active)
		return b
	}
	f.Add(entry(0, 5))
	f.Add(append(entry(0, 5), entry(30, 200000)...))
	f.Add([]byte{})
	f.Add(make([]byte, 23))
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, err := DecodeTableStats(b)
		if err != nil {
			if len(b)%tableStatsLen == 0 {
				t.Fatalf("refused %d bytes", len(b))
			}
			return
		}
		if len(ts) != len(b)/tableStatsLen {
			t.Fatalf("%d entries from %d bytes", len(ts), len(b))
		}
		for i, e := range ts {
			if e.Table != b[i*tableStatsLen] || e.Active != be.Uint32(b[i*tableStatsLen+4:]) {
				t.Fatalf("entry %d: %+v", i, e)
			}
		}
	})
}

// TestTableRequestsOnTheWire: the request bodies
// name OFPMP_TABLE, and OFPMP_FLOW with the one table.
func TestTableRequestsOnTheWire(t *testing.T) {
	rec := newRecorder()
	addr, _ := startServer(t, rec, ServerOptions{})
	f := dialFake(t, addr, 0x77)
	sw := rec.waitConnected(t, 0x77, 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got := make(chan []TableStats, 1)
	go func() {
		ts, err := sw.TableStats(ctx)
		if err != nil {
			t.Error(err)
		}
		got <- ts
	}()
	m := f.expect(typeMultipartReq)
	if be.Uint16(m.body) != multipartTable || len(m.body) != 8 {
		t.Fatalf("table stats request body %x", m.body)
	}
	body := make([]byte, 2*tableStatsLen)
	body[tableStatsLen] = 30
	be.PutUint32(body[tableStatsLen+4:], 12)
	f.send(multipartReplyOf(m.xid, multipartTable, body))
	if ts := <-got; len(ts) != 2 || ts[1].Table != 30 || ts[1].Active != 12 {
		t.Errorf("table stats %+v", ts)
	}
	dumped := make(chan error, 1)
	go func() {
		_, err := sw.DumpTable(ctx, 30)
		dumped <- err
	}()
	m = f.expect(typeMultipartReq)
	if be.Uint16(m.body) != multipartFlow || m.body[8] != 30 {
		t.Fatalf("dump table request body %x", m.body)
	}
	f.send(multipartReply(m.xid, false, nil))
	if err := <-dumped; err != nil {
		t.Fatal(err)
	}
	// Echo: the reply with its xid completes it.
	echoed := make(chan error, 1)
	go func() { echoed <- sw.Echo(ctx) }()
	if err := <-echoed; err != nil {
		t.Fatalf("Echo against a live peer: %v", err)
	}
}

// multipartReplyOf builds one final reply part of multipart type typ.
func multipartReplyOf(xid uint32, typ uint16, entries []byte) []byte {
	body := appendU16(nil, typ)
	body = appendU16(body, 0)
	body = append(body, 0, 0, 0, 0)
	return simpleMessage(typeMultipartReply, xid, append(body, entries...))
}
