package openflow

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
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

// TestTLSBindsDPIDToCertificate (issue 10.2): over TLS a dpid belongs to
// the certificate that first presented it. Another certificate signed by
// the same CA is refused for that dpid — while the switch is connected
// and after it left — and counted; the first certificate gets it back.
func TestTLSBindsDPIDToCertificate(t *testing.T) {
	ca := newTestCA(t)
	srvCert := ca.issue(t, "vpcflow")
	ln := tls.NewListener(mustListen(t), &tls.Config{Certificates: []tls.Certificate{srvCert}, ClientCAs: ca.pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12})
	rec := newRecorder()
	srv := NewServer(testLogger(t), rec, ServerOptions{ClaimProbeTimeout: 200 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	addr := ln.Addr().String()
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
