package e2e

// TLS end to end: vpcflow's OpenFlow listener speaks only TLS, Open
// vSwitch connects to it with `ovs-vsctl set-ssl` + an ssl: controller
// target, and vpcflow learns the ports from ovsdb-server over an ssl:
// OVSDB endpoint (a pssl: remote). Every certificate is created here, in a
// temporary directory removed when the test ends.

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vpcflow/vpcflow/e2e/netlab"
	"github.com/vpcflow/vpcflow/internal/testpki"
)

const (
	tlsOFAddr   = "127.0.0.1:6653"
	tlsOFTarget = "ssl:" + tlsOFAddr
	tlsOVSDB    = 6640
)

// tlsPKI holds one CA and the four certificates of a TLS-only deployment:
// vpcflow's OpenFlow server certificate and ovs-vswitchd's client one;
// ovsdb-server's server certificate and vpcflow's OVSDB client one. Each
// Files.CA is the CA its holder checks peers against. intruder is a
// switch certificate from another CA.
type tlsPKI struct {
	ofServer, vswitchd    testpki.Files
	ovsdbServer, ovsdbCli testpki.Files
	ca                    *testpki.CA
	intruder              tls.Certificate
}

func newTLSPKI(t *testing.T) *tlsPKI {
	t.Helper()
	dir := t.TempDir() // removed after the lab (cleanups run last-in first-out)
	ca, err := testpki.NewCA("vpcflow e2e CA")
	must(t, err)
	other, err := testpki.NewCA("intruder CA")
	must(t, err)
	p := &tlsPKI{ca: ca}
	for _, c := range []struct {
		files *testpki.Files
		name  string
		hosts []string
	}{
		{&p.ofServer, "vpcflow-openflow", []string{"127.0.0.1"}},
		{&p.vswitchd, "ovs-vswitchd", nil},
		{&p.ovsdbServer, "ovsdb-server", []string{"127.0.0.1"}},
		{&p.ovsdbCli, "vpcflow-ovsdb", nil},
	} {
		cert, err := ca.Issue(c.name, c.hosts...)
		must(t, err)
		*c.files, err = cert.WriteFiles(dir, c.name, ca)
		must(t, err)
	}
	in, err := other.Issue("ovs-vswitchd")
	must(t, err)
	p.intruder, err = in.TLSCertificate()
	must(t, err)
	return p
}

// tlsFabric is a fabric whose controller is reachable only over TLS and
// reads OVSDB only over TLS.
type tlsFabric struct {
	*fabric
	pki     *tlsPKI
	ovsdbEP string
}

func newTLSFabric(t *testing.T) *tlsFabric {
	t.Helper()
	pki := newTLSPKI(t)
	ctx := testCtx(t)
	lab := netlab.New(t)
	phys, err := lab.AddNode("phys")
	must(t, err)
	ovs, err := phys.StartOVS(ctx)
	must(t, err)
	// ovsdb-server: an extra pssl: remote with its certificate.
	ep, err := ovs.ServeOVSDBSSL(ctx, tlsOVSDB, pki.ovsdbServer.Key, pki.ovsdbServer.Cert, pki.ovsdbServer.CA)
	must(t, err)
	// ovs-vswitchd: the key, certificate and CA for ssl: controllers.
	_, err = ovs.Vsctl(ctx, "set-ssl", pki.vswitchd.Key, pki.vswitchd.Cert, pki.vswitchd.CA)
	must(t, err)
	f := &fabric{t: t, lab: lab, phys: phys, ovs: ovs,
		dataDir: filepath.Join(lab.Dir(), "vpcflow-data"), http: phys.HTTPClient()}
	tf := &tlsFabric{fabric: f, pki: pki, ovsdbEP: ep}
	// TLS only: no plain OpenFlow listener, and the only OVSDB is ssl:.
	f.serveFlags = []string{"--openflow", tlsOFAddr,
		"--openflow-tls-cert", pki.ofServer.Cert, "--openflow-tls-key", pki.ofServer.Key, "--openflow-tls-ca", pki.ofServer.CA,
		"--ovsdb", ep,
		"--ovsdb-tls-cert", pki.ovsdbCli.Cert, "--ovsdb-tls-key", pki.ovsdbCli.Key, "--ovsdb-tls-ca", pki.ovsdbCli.CA}
	tf.startController()
	return tf
}

// addBridge creates a bridge and points it at ssl:127.0.0.1:6653 with
// `vpcflow bridge setup` (which also sets max_backoff=1000), and waits
// until vpcflow has reconciled it.
func (tf *tlsFabric) addBridge(name string) uint64 {
	f := tf.fabric
	f.t.Helper()
	ctx := testCtx(f.t)
	must(f.t, f.ovs.AddBridge(ctx, name))
	out, err := exec.CommandContext(ctx, vpcflowBin, "bridge", "setup", name,
		"--ovsdb", f.ovs.DBEndpoint(), "--controller", tlsOFTarget).CombinedOutput()
	if err != nil {
		f.t.Fatalf("vpcflow bridge setup %s: %v\n%s", name, err, out)
	}
	dpid, err := f.ovs.DPID(ctx, name)
	must(f.t, err)
	f.waitSwitch(dpid)
	return dpid
}

// newTLSSeed is newSeed over TLS.
func newTLSSeed(t *testing.T) (*tlsFabric, *seed) {
	tf := newTLSFabric(t)
	return tf, seedOn(tf.fabric, tf.addBridge("br-test"))
}

type switchSince struct {
	DPID              string    `json:"dpid"`
	Remote            string    `json:"remote"`
	ConnectedSince    time.Time `json:"connected_since"`
	CertificateSHA256 string    `json:"certificate_sha256"`
}

func (f *fabric) switchesNow() map[string]switchSince {
	f.t.Helper()
	var sws []switchSince
	must(f.t, json.Unmarshal(f.rest("GET", "/v1/switches", nil, 200), &sws))
	out := map[string]switchSince{}
	for _, s := range sws {
		out[s.DPID] = s
	}
	return out
}

func (f *fabric) vsctlGet(args ...string) string {
	f.t.Helper()
	out, err := f.ovs.Vsctl(testCtx(f.t), args...)
	must(f.t, err)
	return strings.TrimSpace(out)
}

// TestTLSSeedScenario: the seed scenario with the controller reachable only
// over TLS and OVSDB read only over TLS; then a plain-TCP switch (a real
// OVS bridge pointed at tcp:), a switch with a certificate from another
// CA claiming br-test's datapath id, and a TLS-less OpenFlow HELLO are
// refused and logged, and br-test never notices.
func TestTLSSeedScenario(t *testing.T) {
	tf, s := newTLSSeed(t)
	f := tf.fabric

	out := ping(t, s.vm1.container, "172.18.3.4", 3)
	if !strings.Contains(out, "ttl=62") {
		t.Fatalf("want ttl=62 (one hop in each VM, none in the fabric):\n%s", out)
	}
	t.Logf("testns1 → 172.18.3.4 with the controller on TLS only:\n%s", out)
	ping(t, s.vm2.container, "172.18.1.3", 3)
	s.assertSwitchHoldsDesired()

	// How it got there: OVS connected over TLS with its certificate, and
	// the port map came over OVSDB TLS (the only OVSDB vpcflow knows).
	if got := f.vsctlGet("get-controller", "br-test"); got != tlsOFTarget {
		t.Errorf("br-test controller %q, want %q", got, tlsOFTarget)
	}
	f.waitControllerStatus("br-test", `is_connected\s*: true`)
	if got := f.vsctlGet("get", "Controller", "br-test", "max_backoff"); got != "1000" {
		t.Errorf("br-test Controller max_backoff = %s, want 1000 (set by vpcflow bridge setup)", got)
	}
	f.waitLog(regexp.MustCompile(`switch TLS handshake done.*"peer_certificate": "CN=ovs-vswitchd,O=vpcflow tests"`), 1, 5*time.Second)
	f.waitLog(regexp.MustCompile(`ovsdb connected and monitoring.*"ovsdb": "ssl:127\.0\.0\.1:6640"`), 1, 5*time.Second)
	log := f.controllerLog()
	if !regexp.MustCompile(`vpcflow serving.*"openflow_tls": true, "ovsdb_tls": true`).MatchString(log) {
		t.Errorf("the startup line does not report TLS on both:\n%s", grepLines(log, "vpcflow serving"))
	}
	want := fmt.Sprintf("%016x", s.dpid)
	before := f.switchesNow()[want]
	if before.DPID == "" {
		t.Fatalf("br-test (%s) not connected", want)
	}
	ages := s.durations("br-test")
	start := time.Now()

	t.Run("plain TCP switch refused", func(t *testing.T) {
		ctx := testCtx(t)
		must(t, f.ovs.AddBridge(ctx, "br-plain"))
		must(t, f.ovs.SetController(ctx, "br-plain", "tcp:"+tlsOFAddr))
		dpid, err := f.ovs.DPID(ctx, "br-plain")
		must(t, err)
		f.waitLog(regexp.MustCompile(`switch handshake failed.*TLS handshake: tls: first record does not look like a TLS handshake`), 1, 10*time.Second)
		// vswitchd's own view: never connected, and why.
		st := f.waitControllerStatus("br-plain", `last_error=`)
		if !strings.Contains(st, "is_connected        : false") {
			t.Errorf("br-plain Controller:\n%s", st)
		}
		t.Logf("br-plain's Controller row:\n%s", st)
		if _, ok := f.switchesNow()[fmt.Sprintf("%016x", dpid)]; ok {
			t.Errorf("br-plain is listed as connected")
		}
		// Stop its retries.
		must(t, f.ovs.SetController(ctx, "br-plain"))
	})

	t.Run("no plain OpenFlow listener", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := f.phys.Dial(ctx, "tcp", tlsOFAddr)
		must(t, err)
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		// A switch says HELLO; a plain OpenFlow controller would say HELLO
		// back.
		_, err = c.Write(ofHeader(0, 8, 1))
		must(t, err)
		b, err := io.ReadAll(c)
		if len(b) >= 2 && b[0] == 0x04 && b[1] == 0 {
			t.Fatalf("got an OpenFlow HELLO over plain TCP: % x", b)
		}
		t.Logf("plain TCP peer got %d bytes, then %v", len(b), err)
	})

	t.Run("certificate from another CA refused", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		raw, err := f.phys.Dial(ctx, "tcp", tlsOFAddr)
		must(t, err)
		c := tls.Client(raw, &tls.Config{RootCAs: tf.pki.ca.Pool(), ServerName: "127.0.0.1",
			// Present it whatever CAs the server asks for, as an
			// attacker would.
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				return &tf.pki.intruder, nil
			}})
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		// An intruder claiming br-test's datapath id: HELLO, and a
		// FEATURES_REPLY as soon as asked. With TLS 1.3 the client
		// finishes its handshake before the server has checked the
		// certificate, so the refusal shows on the first read.
		if err := c.Handshake(); err == nil {
			_, _ = c.Write(ofHeader(0, 8, 1))
			hdr := make([]byte, 8)
			_, err = io.ReadFull(c, hdr)
			if err == nil {
				reply := ofHeader(6, 32, binary.BigEndian.Uint32(hdr[4:]))
				reply = binary.BigEndian.AppendUint64(reply, s.dpid)
				reply = append(reply, make([]byte, 16)...)
				_, _ = c.Write(reply)
				t.Fatalf("the controller talked OpenFlow to a certificate from another CA (got % x)", hdr)
			}
			t.Logf("intruder: %v", err)
		} else {
			t.Logf("intruder handshake: %v", err)
		}
		f.waitLog(regexp.MustCompile(`switch handshake failed.*TLS handshake: tls: failed to verify certificate: x509: certificate signed by unknown authority`), 1, 10*time.Second)
	})

	// br-test never noticed: same connection, flows never reinstalled,
	// traffic flowing.
	after := f.switchesNow()[want]
	if !after.ConnectedSince.Equal(before.ConnectedSince) || after.Remote != before.Remote {
		t.Errorf("br-test's connection changed: %+v → %+v", before, after)
	}
	ping(t, s.vm1.container, "172.18.3.4", 2)
	s.assertNotReinstalled("br-test", ages, time.Since(start)-time.Second)
	st := f.waitControllerStatus("br-test", `is_connected\s*: true`)
	if m := regexp.MustCompile(`sec_since_connect="(\d+)"`).FindStringSubmatch(st); m == nil {
		t.Errorf("br-test Controller status without sec_since_connect:\n%s", st)
	} else if secs, _ := strconv.Atoi(m[1]); time.Duration(secs)*time.Second < time.Since(start)-2*time.Second {
		t.Errorf("br-test reconnected during the test: sec_since_connect=%d, %v since the intruders started", secs, time.Since(start))
	}
}

// waitControllerStatus waits (up to 15 s: vswitchd refreshes Controller
// status every few seconds) until the bridge's Controller row matches re,
// and returns the row.
func (f *fabric) waitControllerStatus(bridge, re string) string {
	f.t.Helper()
	rx := regexp.MustCompile(re)
	var row string
	f.eventually(bridge+" Controller row matching "+re, 15*time.Second, func() error {
		row = f.vsctlGet("--columns=target,is_connected,status,max_backoff", "list", "Controller", bridge)
		if !rx.MatchString(row) {
			return fmt.Errorf("row:\n%s", row)
		}
		return nil
	})
	return row
}

// TestTLSControllerRestartReconnectsFast restarts the TLS-only controller
// after the switch has been without it long enough for OVS's default
// backoff to show: vswitchd retries after 1, 2, 4, 8 s, so after 8 s down
// its next attempt would be ~7 s away (measured: 7.8 s with max_backoff
// cleared). With the max_backoff=1000 that `vpcflow bridge setup` sets,
// the switch is back within about a second of the listener returning.
func TestTLSControllerRestartReconnectsFast(t *testing.T) {
	tf, s := newTLSSeed(t)
	f := tf.fabric
	ping(t, s.vm1.container, "172.18.3.4", 2)
	for round := 1; round <= 2; round++ {
		must(t, f.ctrl.Stop())
		// Long enough for the default backoff to climb to 8 s.
		time.Sleep(8 * time.Second)
		ping(t, s.vm1.container, "172.18.3.4", 2) // fail_mode=secure: forwarding goes on
		tf.startController()
		up := time.Now()
		f.waitSwitch(s.dpid)
		took := time.Since(up)
		t.Logf("round %d: br-test reconnected over TLS and was reconciled %v after the REST API came up", round, took.Round(time.Millisecond))
		if took > 3*time.Second {
			t.Errorf("round %d: reconnect took %v, want ~1 s (max_backoff=1000)", round, took)
		}
		f.waitLog(regexp.MustCompile(`switch TLS handshake done`), 1, 5*time.Second)
	}
	ping(t, s.vm1.container, "172.18.3.4", 2)
	s.assertSwitchHoldsDesired()
}

// switchCertificate is GET /v1/switch-certificates/{dpid}.
type switchCertificate struct {
	DPID   string `json:"dpid"`
	SHA256 string `json:"sha256"`
	Source string `json:"source"`
	Remote string `json:"remote"`
}

func (f *fabric) switchCertificate(dpid uint64) switchCertificate {
	f.t.Helper()
	var c switchCertificate
	must(f.t, json.Unmarshal(f.rest("GET", fmt.Sprintf("/v1/switch-certificates/%016x", dpid), nil, 200), &c))
	return c
}

// TestTLSCertificateBindingOutlivesRestart: the certificate br-test first
// connected with stays bound to its dpid across a controller restart (it
// was kept in memory only before): after ovs-vswitchd is given another
// certificate of the same CA and the controller restarts, br-test is
// refused and VMs keep talking on the flows OVS holds (fail_mode=secure);
// `vpcflow switch-cert unbind` lets it in with the new certificate. A
// dpid pinned with `vpcflow switch-cert pin` before its bridge exists is
// refused any other certificate, until unbound.
func TestTLSCertificateBindingOutlivesRestart(t *testing.T) {
	tf, s := newTLSSeed(t)
	f := tf.fabric
	ctx := testCtx(t)
	dpid := fmt.Sprintf("%016x", s.dpid)
	fingerprint := func(path string) string {
		sum := certFileSHA256(t, path)
		return hex.EncodeToString(sum[:])
	}
	b := f.switchCertificate(s.dpid)
	if b.SHA256 != fingerprint(tf.pki.vswitchd.Cert) || b.Source != "first-use" || !strings.HasPrefix(b.Remote, "127.0.0.1:") {
		t.Fatalf("br-test's binding %+v, want first-use of ovs-vswitchd's certificate %s", b, fingerprint(tf.pki.vswitchd.Cert))
	}
	if got := f.switchesNow()[dpid].CertificateSHA256; got != b.SHA256 {
		t.Errorf("GET /v1/switches says br-test presented %q, want %s", got, b.SHA256)
	}
	t.Logf("vpcflow switch-cert list:\n%s", f.runCLI("switch-cert", "list"))

	// ovs-vswitchd gets a new certificate (same CA); the controller restarts.
	cert, err := tf.pki.ca.Issue("ovs-vswitchd rekeyed")
	must(t, err)
	rekeyed, err := cert.WriteFiles(t.TempDir(), "ovs-vswitchd-2", tf.pki.ca)
	must(t, err)
	must(t, f.ctrl.Stop())
	_, err = f.ovs.Vsctl(ctx, "set-ssl", rekeyed.Key, rekeyed.Cert, rekeyed.CA)
	must(t, err)
	tf.startController()
	refused := regexp.MustCompile(`refused a connection claiming the datapath id of another switch: the datapath id is bound to another TLS certificate.*"bound_certificate_sha256": "` +
		b.SHA256 + `", "presented_certificate_sha256": "` + fingerprint(rekeyed.Cert) + `".*"dpid": "` + dpid + `"`)
	f.waitLog(refused, 2, 15*time.Second) // refused, and refused again on its retry
	if _, ok := f.switchesNow()[dpid]; ok {
		t.Fatalf("br-test connected with a certificate its dpid is not bound to")
	}
	ping(t, s.vm1.container, "172.18.3.4", 2) // OVS keeps its flows meanwhile
	tcpRoundTrip(t, s.vm2.container, s.vm1.container, "172.18.3.4", 7101)

	out := f.runCLI("switch-cert", "unbind", dpid)
	if !strings.Contains(out, "unbound dpid "+dpid) {
		t.Errorf("switch-cert unbind said %q", out)
	}
	f.waitSwitch(s.dpid)
	if b := f.switchCertificate(s.dpid); b.SHA256 != fingerprint(rekeyed.Cert) || b.Source != "first-use" {
		t.Fatalf("after unbind, br-test's binding %+v, want the new certificate %s", b, fingerprint(rekeyed.Cert))
	}
	if got := f.switchesNow()[dpid].CertificateSHA256; got != fingerprint(rekeyed.Cert) {
		t.Errorf("GET /v1/switches says br-test presented %q after unbind, want %s", got, fingerprint(rekeyed.Cert))
	}
	ping(t, s.vm1.container, "172.18.3.4", 2)
	tcpRoundTrip(t, s.vm2.container, s.vm1.container, "172.18.3.4", 7102)
	s.assertSwitchHoldsDesired()

	// Pinned before the bridge exists: vswitchd's (new) certificate is
	// not the pinned one, so br-pin is refused until unbound.
	must(t, f.ovs.AddBridge(ctx, "br-pin"))
	pinDPID, err := f.ovs.DPID(ctx, "br-pin")
	must(t, err)
	pinHex := fmt.Sprintf("%016x", pinDPID)
	out = f.runCLI("switch-cert", "pin", pinHex, "--sha256", "sha256 Fingerprint="+opensslColons(certFileSHA256(t, tf.pki.vswitchd.Cert)))
	if !strings.Contains(out, b.SHA256) || !strings.Contains(out, "pinned") {
		t.Fatalf("switch-cert pin printed:\n%s", out)
	}
	before := len(refused.FindAllString(f.controllerLog(), -1))
	out2, err := exec.CommandContext(ctx, vpcflowBin, "bridge", "setup", "br-pin",
		"--ovsdb", f.ovs.DBEndpoint(), "--controller", tlsOFTarget).CombinedOutput()
	if err != nil {
		t.Fatalf("vpcflow bridge setup br-pin: %v\n%s", err, out2)
	}
	f.waitLog(regexp.MustCompile(`refused a connection claiming the datapath id of another switch: the datapath id is bound to another TLS certificate.*"dpid": "`+pinHex+`"`), 1, 15*time.Second)
	if _, ok := f.switchesNow()[pinHex]; ok {
		t.Fatalf("br-pin connected with a certificate other than the pinned one")
	}
	f.runCLI("switch-cert", "unbind", pinHex)
	f.waitSwitch(pinDPID)
	if got := len(refused.FindAllString(f.controllerLog(), -1)); got < before {
		t.Errorf("log lines went away: %d < %d", got, before)
	}
}

// certFileSHA256 is the SHA-256 of a PEM certificate file's DER.
func certFileSHA256(t *testing.T, path string) [sha256.Size]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	must(t, err)
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("no PEM block in %s", path)
	}
	return sha256.Sum256(blk.Bytes)
}

// opensslColons is a SHA-256 as `openssl x509 -fingerprint -sha256`
// prints it: upper-case bytes joined by colons.
func opensslColons(sum [sha256.Size]byte) string {
	parts := make([]string, len(sum))
	for i, x := range sum {
		parts[i] = fmt.Sprintf("%02X", x)
	}
	return strings.Join(parts, ":")
}
