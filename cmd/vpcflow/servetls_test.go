package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/vpcflow/vpcflow/internal/testpki"
	"github.com/vpcflow/vpcflow/openflow"
)

// pki is a CA with a server certificate for vpcflow and a client
// certificate for a switch, plus a switch certificate from another CA.
type pki struct {
	dir                  string
	ca, other            *testpki.CA
	vpcflow              testpki.Files // certificate, key, and the CA switches are checked against
	switchCert, intruder tls.Certificate
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	p := &pki{dir: t.TempDir()}
	var err error
	p.ca, err = testpki.NewCA("vpcflow test CA")
	mustT(t, err)
	p.other, err = testpki.NewCA("intruder CA")
	mustT(t, err)
	srv, err := p.ca.Issue("vpcflow", "127.0.0.1", "localhost")
	mustT(t, err)
	p.vpcflow, err = srv.WriteFiles(p.dir, "vpcflow", p.ca)
	mustT(t, err)
	p.switchCert = issue(t, p.ca, "br-test switch")
	p.intruder = issue(t, p.other, "br-test switch")
	return p
}

func issue(t *testing.T, ca *testpki.CA, cn string) tls.Certificate {
	t.Helper()
	c, err := ca.Issue(cn)
	mustT(t, err)
	tc, err := c.TLSCertificate()
	mustT(t, err)
	return tc
}

func mustT(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// The TLS flags come in threes, files must load, and an ssl: --ovsdb needs
// the OVSDB ones; every mistake is exit status 2 before anything starts.
func TestServeTLSFlagValidation(t *testing.T) {
	p := newPKI(t)
	f := p.vpcflow
	otherKey := filepath.Join(p.dir, "other-key.pem")
	c, err := p.ca.Issue("someone else")
	mustT(t, err)
	mustT(t, os.WriteFile(otherKey, c.KeyPEM, 0o600))
	notPEM := filepath.Join(p.dir, "not-pem")
	mustT(t, os.WriteFile(notPEM, []byte("not a certificate\n"), 0o644))
	missing := filepath.Join(p.dir, "missing.pem")

	cases := []struct {
		name string
		args []string
		want string
	}{
		{"openflow cert alone", []string{"--openflow-tls-cert", f.Cert},
			"--openflow-tls-cert, --openflow-tls-key and --openflow-tls-ca go together: --openflow-tls-key and --openflow-tls-ca missing"},
		{"openflow without ca", []string{"--openflow-tls-cert", f.Cert, "--openflow-tls-key", f.Key},
			"go together: --openflow-tls-ca missing"},
		{"openflow ca alone", []string{"--openflow-tls-ca", f.CA},
			"go together: --openflow-tls-cert and --openflow-tls-key missing"},
		{"openflow missing cert file", []string{"--openflow-tls-cert", missing, "--openflow-tls-key", f.Key, "--openflow-tls-ca", f.CA},
			"--openflow-tls-cert " + missing + " / --openflow-tls-key " + f.Key + ": open " + missing + ": no such file"},
		{"openflow key of another cert", []string{"--openflow-tls-cert", f.Cert, "--openflow-tls-key", otherKey, "--openflow-tls-ca", f.CA},
			"private key does not match public key"},
		{"openflow ca not PEM", []string{"--openflow-tls-cert", f.Cert, "--openflow-tls-key", f.Key, "--openflow-tls-ca", notPEM},
			"--openflow-tls-ca: " + notPEM + " holds no PEM certificate"},
		{"openflow ca missing", []string{"--openflow-tls-cert", f.Cert, "--openflow-tls-key", f.Key, "--openflow-tls-ca", missing},
			"--openflow-tls-ca: reading CA certificates: open " + missing},
		{"ovsdb key alone", []string{"--ovsdb-tls-key", f.Key},
			"--ovsdb-tls-cert, --ovsdb-tls-key and --ovsdb-tls-ca go together: --ovsdb-tls-cert and --ovsdb-tls-ca missing"},
		{"ovsdb cert is a key", []string{"--ovsdb-tls-cert", f.Key, "--ovsdb-tls-key", f.Key, "--ovsdb-tls-ca", f.CA},
			"--ovsdb-tls-cert " + f.Key},
		{"ssl ovsdb without TLS", []string{"--ovsdb", "unix:/run/openvswitch/db.sock", "--ovsdb", "ssl:127.0.0.1:6640"},
			"--ovsdb ssl:127.0.0.1:6640: an ssl: endpoint needs --ovsdb-tls-cert, --ovsdb-tls-key and --ovsdb-tls-ca"},
		{"ssl ovsdb with only openflow TLS", []string{"--ovsdb", "ssl:127.0.0.1", "--openflow-tls-cert", f.Cert, "--openflow-tls-key", f.Key, "--openflow-tls-ca", f.CA},
			"--ovsdb ssl:127.0.0.1: an ssl: endpoint needs"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			var errb bytes.Buffer
			code := runServe(context.Background(), append(tc.args, "--data-dir", data, "--openflow", "127.0.0.1:0", "--listen", "127.0.0.1:0"),
				&bytes.Buffer{}, &errb, func(string) string { return "" })
			if code != 2 || !strings.HasPrefix(errb.String(), "serve: --") || !strings.Contains(errb.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and serve: … %q", code, errb.String(), tc.want)
			}
			if _, err := os.Stat(data); !os.IsNotExist(err) {
				t.Errorf("the store was opened despite the bad flags: %v", err)
			}
		})
	}

	var help bytes.Buffer
	if code := runServe(context.Background(), []string{"-h"}, &bytes.Buffer{}, &help, func(string) string { return "" }); code != 0 {
		t.Errorf("-h exit %d", code)
	}
	for _, fl := range []string{"-openflow-tls-cert", "-openflow-tls-key", "-openflow-tls-ca", "-ovsdb-tls-cert", "-ovsdb-tls-key", "-ovsdb-tls-ca", "set-ssl"} {
		if !strings.Contains(help.String(), fl) {
			t.Errorf("help does not mention %s", fl)
		}
	}
}

// Both triples given correctly: the configurations are what they must be.
func TestServeTLSConfigs(t *testing.T) {
	p := newPKI(t)
	f := p.vpcflow
	ofCfg, err := openflowTLSConfig(&tlsFlags{prefix: "openflow", cert: &f.Cert, key: &f.Key, cas: &f.CA})
	mustT(t, err)
	if ofCfg == nil || ofCfg.ClientAuth != tls.RequireAndVerifyClientCert || ofCfg.ClientCAs == nil || len(ofCfg.Certificates) != 1 || ofCfg.MinVersion < tls.VersionTLS12 {
		t.Errorf("OpenFlow TLS config %+v: want our certificate, verified client certificates, TLS ≥ 1.2", ofCfg)
	}
	dbCfg, err := ovsdbTLSConfig(&tlsFlags{prefix: "ovsdb", cert: &f.Cert, key: &f.Key, cas: &f.CA})
	mustT(t, err)
	if dbCfg == nil || dbCfg.RootCAs == nil || len(dbCfg.Certificates) != 1 || dbCfg.InsecureSkipVerify {
		t.Errorf("OVSDB TLS config %+v: want our client certificate and the CA as roots", dbCfg)
	}
	empty := ""
	if cfg, err := ovsdbTLSConfig(&tlsFlags{prefix: "ovsdb", cert: &empty, key: &empty, cas: &empty}); cfg != nil || err != nil {
		t.Errorf("no flags: %v, %v; want nil, nil", cfg, err)
	}
	if err := checkOVSDBTLS([]string{"ssl:127.0.0.1:6640"}, dbCfg, nil); err != nil {
		t.Errorf("ssl: --ovsdb with TLS configured: %v", err)
	}
}

// logBuffer is a concurrency-safe zap sink.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) Sync() error { return nil }

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type recordingHandler struct {
	mu        sync.Mutex
	connected []uint64
}

func (h *recordingHandler) SwitchConnected(ctx context.Context, sw *openflow.Switch) {
	h.mu.Lock()
	h.connected = append(h.connected, sw.DPID())
	h.mu.Unlock()
}

func (h *recordingHandler) SwitchDisconnected(*openflow.Switch) {}

// ofHeader writes an OpenFlow 1.3 message header.
func ofMessage(typ uint8, xid uint32, body []byte) []byte {
	b := make([]byte, 8+len(body))
	b[0], b[1] = openflow.Version, typ
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	binary.BigEndian.PutUint32(b[4:], xid)
	copy(b[8:], body)
	return b
}

func readOF(t *testing.T, c net.Conn) (typ uint8, xid uint32) {
	t.Helper()
	h := make([]byte, 8)
	if _, err := io.ReadFull(c, h); err != nil {
		t.Fatalf("reading an OpenFlow header: %v", err)
	}
	if h[0] != openflow.Version {
		t.Fatalf("OpenFlow version 0x%02x, want 0x04", h[0])
	}
	body := make([]byte, int(binary.BigEndian.Uint16(h[2:]))-8)
	if _, err := io.ReadFull(c, body); err != nil {
		t.Fatalf("reading an OpenFlow body: %v", err)
	}
	return h[1], binary.BigEndian.Uint32(h[4:])
}

// waitClosed reads until the server closes the connection and returns how
// long that took.
func waitClosed(t *testing.T, c net.Conn, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(limit))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server kept the connection open for %v", limit)
	}
	return time.Since(start)
}

// TestOpenFlowTLSListener runs the OpenFlow server on the listener `vpcflow
// serve` builds with --openflow-tls-*: a switch with a certificate from the
// CA connects; a peer that never completes TLS is dropped after the
// OpenFlow handshake timeout (TLS happens lazily inside it); a plain-TCP
// switch, a certificate from another CA and no certificate are refused at
// once and logged; none of them disturbs the connected switch.
func TestOpenFlowTLSListener(t *testing.T) {
	p := newPKI(t)
	f := p.vpcflow
	cfg, err := openflowTLSConfig(&tlsFlags{prefix: "openflow", cert: &f.Cert, key: &f.Key, cas: &f.CA})
	mustT(t, err)
	logs := &logBuffer{}
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), logs, zap.DebugLevel))
	ln, err := listenOpenFlow(log, "127.0.0.1:0", cfg)
	mustT(t, err)
	addr := ln.Addr().String()
	const handshakeTimeout = 500 * time.Millisecond
	h := &recordingHandler{}
	srv := openflow.NewServer(log, h, openflow.ServerOptions{HandshakeTimeout: handshakeTimeout})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	roots := p.ca.Pool()

	// A switch with a certificate from the CA: TLS, then the OpenFlow
	// handshake, and it is connected.
	good, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{p.switchCert}, ServerName: "127.0.0.1"})
	mustT(t, err)
	defer good.Close()
	_ = good.SetDeadline(time.Now().Add(5 * time.Second))
	if typ, _ := readOF(t, good); typ != 0 {
		t.Fatalf("first message type %d, want HELLO", typ)
	}
	_, err = good.Write(ofMessage(0, 1, nil))
	mustT(t, err)
	typ, xid := readOF(t, good)
	if typ != 5 {
		t.Fatalf("message type %d after HELLO, want FEATURES_REQUEST", typ)
	}
	features := make([]byte, 24)
	binary.BigEndian.PutUint64(features, 0xabcd)
	_, err = good.Write(ofMessage(6, xid, features))
	mustT(t, err)
	_ = good.SetDeadline(time.Time{})
	waitSwitches := func(want int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for len(srv.Switches()) != want {
			if time.Now().After(deadline) {
				t.Fatalf("%d switches connected, want %d", len(srv.Switches()), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitSwitches(1)
	// Keep answering the server's echo requests.
	go func() {
		for {
			hdr := make([]byte, 8)
			if _, err := io.ReadFull(good, hdr); err != nil {
				return
			}
			body := make([]byte, int(binary.BigEndian.Uint16(hdr[2:]))-8)
			if _, err := io.ReadFull(good, body); err != nil {
				return
			}
			if hdr[1] == 2 { // ECHO_REQUEST
				if _, err := good.Write(ofMessage(3, binary.BigEndian.Uint32(hdr[4:]), body)); err != nil {
					return
				}
			}
		}
	}()

	t.Run("silent TCP peer dropped by the handshake timeout", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		mustT(t, err)
		defer c.Close()
		if d := waitClosed(t, c, 5*time.Second); d < handshakeTimeout*8/10 || d > handshakeTimeout+2*time.Second {
			t.Errorf("closed after %v, want about the handshake timeout %v", d, handshakeTimeout)
		}
	})
	t.Run("TLS handshake that stalls dropped by the handshake timeout", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		mustT(t, err)
		defer c.Close()
		// The start of a TLS handshake record, and then nothing.
		_, err = c.Write([]byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01})
		mustT(t, err)
		if d := waitClosed(t, c, 5*time.Second); d < handshakeTimeout*8/10 || d > handshakeTimeout+2*time.Second {
			t.Errorf("closed after %v, want about the handshake timeout %v", d, handshakeTimeout)
		}
	})
	t.Run("plain OpenFlow refused", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		mustT(t, err)
		defer c.Close()
		_, err = c.Write(ofMessage(0, 1, nil))
		mustT(t, err)
		if d := waitClosed(t, c, 5*time.Second); d > handshakeTimeout {
			t.Errorf("closed after %v, want at once", d)
		}
	})
	for _, tc := range []struct {
		name string
		cert *tls.Certificate
	}{{"certificate from another CA refused", &p.intruder}, {"no client certificate refused", nil}} {
		t.Run(tc.name, func(t *testing.T) {
			ccfg := &tls.Config{RootCAs: roots, ServerName: "127.0.0.1",
				// Present the certificate whatever CAs the server asks for.
				GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
					if tc.cert == nil {
						return &tls.Certificate{}, nil
					}
					return tc.cert, nil
				}}
			c, err := tls.Dial("tcp", addr, ccfg)
			if err != nil {
				return // refused during the handshake (TLS 1.2)
			}
			defer c.Close()
			// TLS 1.3: the client is done before the server has checked
			// its certificate; the refusal arrives as an alert.
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err = c.Read(make([]byte, 8))
			if err == nil {
				t.Fatal("the server sent OpenFlow to a switch it should have refused")
			}
			t.Logf("client sees: %v", err)
		})
	}

	waitLog := func(what string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(logs.String(), what) {
			if time.Now().After(deadline) {
				t.Errorf("the log does not say %q", what)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitLog("TLS handshake: tls: first record does not look like a TLS handshake")
	waitLog("TLS handshake: tls: failed to verify certificate: x509: certificate signed by unknown authority")
	waitLog("TLS handshake: tls: client didn't provide a certificate")
	waitLog("TLS handshake: read tcp")
	waitLog(`"peer_certificate":"CN=br-test switch,O=vpcflow tests"`)

	// The good switch is still connected on its first connection.
	if sws := srv.Switches(); len(sws) != 1 || sws[0].DPID() != 0xabcd {
		t.Errorf("switches now %v, want only 0xabcd", sws)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.connected) != 1 {
		t.Errorf("SwitchConnected called %d times, want once", len(h.connected))
	}
}
