package main

// Certificate rotation against real Open vSwitch (issue 19, item 9).

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vpcflow/vpcflow/e2e/netlab"
	"github.com/vpcflow/vpcflow/internal/testpki"
)

// installCert writes c's certificate and key over cert and key the way
// a careful operator (or certbot) does: new files renamed into place.
func installCert(t *testing.T, c *testpki.Cert, cert, key string) {
	t.Helper()
	for _, f := range []struct {
		path string
		data []byte
	}{{key, c.KeyPEM}, {cert, c.CertPEM}} {
		tmp := f.path + ".new"
		mustT(t, os.WriteFile(tmp, f.data, 0o600))
		mustT(t, os.Rename(tmp, f.path))
	}
}

// TestTLSCertificateRotation: vpcflow serves OpenFlow over TLS to a real
// OVS bridge. Its certificate is replaced on disk and SIGHUP sent: the
// connected bridge stays connected (same connected_since), a new TLS
// connection is served the new certificate, and a new bridge connects
// with it. A second replacement without SIGHUP is picked up from the file
// change. A certificate from a CA the switch does not trust is logged as
// refused by the switch, in words, and the connected bridge is untouched.
func TestTLSCertificateRotation(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ca, err := testpki.NewCA("rotation CA")
	mustT(t, err)
	other, err := testpki.NewCA("CA the switch does not trust")
	mustT(t, err)
	issue := func(ca *testpki.CA, cn string) *testpki.Cert {
		c, err := ca.Issue(cn, "127.0.0.1")
		mustT(t, err)
		return c
	}
	first := issue(ca, "vpcflow-first")
	ofFiles, err := first.WriteFiles(dir, "vpcflow", ca)
	mustT(t, err)
	ovsFiles, err := issue(ca, "ovs-vswitchd").WriteFiles(dir, "ovs", ca)
	mustT(t, err)

	lab := netlab.New(t)
	phys, err := lab.AddNode("phys")
	mustT(t, err)
	ovs, err := phys.StartOVS(ctx)
	mustT(t, err)
	_, err = ovs.Vsctl(ctx, "set-ssl", ovsFiles.Key, ovsFiles.Cert, ovsFiles.CA)
	mustT(t, err)
	f := &floodLab{t: t, lab: lab, phys: phys, ovs: ovs, http: phys.HTTPClient(), logPath: filepath.Join(lab.Dir(), "vpcflow.log")}
	f.http.Timeout = 5 * time.Second
	f.proc, err = phys.Start(ctx, f.logPath, vpcflowBinary(t), "serve", "--config", "/dev/null", "--init",
		"--data-dir", filepath.Join(lab.Dir(), "data"), "--openflow", floodOF, "--listen", floodREST, "--ovsdb", ovs.DBEndpoint(),
		"--openflow-tls-cert", ofFiles.Cert, "--openflow-tls-key", ofFiles.Key, "--openflow-tls-ca", ofFiles.CA,
		"--tls-reload-interval", "500ms")
	mustT(t, err)
	t.Cleanup(func() {
		_ = f.proc.Stop()
		if t.Failed() {
			t.Logf("vpcflow log (tail):\n%s", tail(f.log(), 80))
		}
	})
	f.eventually("REST up", 15*time.Second, func() error { _, err := f.get("/healthz"); return err })

	connect := func(bridge string) string {
		t.Helper()
		mustT(t, ovs.AddBridge(ctx, bridge))
		mustT(t, ovs.SetController(ctx, bridge, "ssl:"+floodOF))
		dpid, err := ovs.DPID(ctx, bridge)
		mustT(t, err)
		return fmt.Sprintf("%016x", dpid)
	}
	sinceOf := func(dpid string) (string, error) {
		g := *f
		g.dpid = dpid
		return g.since()
	}
	br0 := connect("br0")
	f.eventually("br0 connected over TLS", 20*time.Second, func() error { _, err := sinceOf(br0); return err })
	before, err := sinceOf(br0)
	mustT(t, err)

	// What a new TLS client is served now.
	served := func() string {
		t.Helper()
		cert, err := tls.LoadX509KeyPair(ovsFiles.Cert, ovsFiles.Key)
		mustT(t, err)
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		nc, err := phys.Dial(dctx, "tcp", floodOF)
		mustT(t, err)
		defer nc.Close()
		// The chain is checked, the name is not (the second certificate
		// has no SAN: Open vSwitch does not check it either).
		c := tls.Client(nc, &tls.Config{Certificates: []tls.Certificate{cert}, InsecureSkipVerify: true,
			VerifyConnection: func(cs tls.ConnectionState) error {
				_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: ca.Pool()})
				return err
			}})
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if err := c.Handshake(); err != nil {
			t.Fatalf("TLS handshake with vpcflow: %v", err)
		}
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if got := served(); got != "vpcflow-first" {
		t.Fatalf("served %q before rotation", got)
	}
	stillConnected := func(when string) {
		t.Helper()
		s, err := sinceOf(br0)
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if s != before {
			t.Fatalf("%s: br0 reconnected (connected_since %s, was %s)", when, s, before)
		}
		// OVS's own view: br0's controller connection never dropped.
		b, err := os.ReadFile(ovs.VswitchdLog())
		mustT(t, err)
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "br0<->ssl:") && !strings.HasSuffix(l, "connecting...") && !strings.HasSuffix(l, ": connected") {
				t.Fatalf("%s: ovs-vswitchd: %s", when, l)
			}
		}
	}

	// 1. SIGHUP after the files change (reload interval aside: the test
	// waits for the SIGHUP's log line).
	// The second certificate names no host at all: OVS checks that its CA
	// signed vpcflow's certificate, not the name in it (br1 connects).
	noSAN, err := ca.Issue("vpcflow-second")
	mustT(t, err)
	if len(noSAN.Cert.IPAddresses)+len(noSAN.Cert.DNSNames) != 0 {
		t.Fatal("want a certificate without SANs")
	}
	installCert(t, noSAN, ofFiles.Cert, ofFiles.Key)
	mustT(t, syscall.Kill(f.proc.Pid, syscall.SIGHUP))
	f.eventually("reload with the second certificate", 10*time.Second, func() error {
		if !strings.Contains(f.log(), `"certificate": "CN=vpcflow-second`) {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	if got := served(); got != "vpcflow-second" {
		t.Errorf("after SIGHUP a new connection got %q, want vpcflow-second", got)
	}
	br1 := connect("br1")
	f.eventually("br1 connected with the second certificate", 20*time.Second, func() error { _, err := sinceOf(br1); return err })
	time.Sleep(2 * time.Second) // a few echo rounds on the old session
	stillConnected("after SIGHUP")

	// 2. No SIGHUP: the file change alone.
	installCert(t, issue(ca, "vpcflow-third"), ofFiles.Cert, ofFiles.Key)
	f.eventually("the third certificate served", 10*time.Second, func() error {
		if got := served(); got != "vpcflow-third" {
			return fmt.Errorf("served %q", got)
		}
		return nil
	})
	if !strings.Contains(f.log(), "openflow TLS certificates reloaded (files changed)") {
		t.Error("no log line for the reload on file change")
	}
	stillConnected("after the file change")

	// 3. A certificate the switch does not trust: new switches refuse it,
	// and vpcflow says so.
	installCert(t, issue(other, "vpcflow-untrusted"), ofFiles.Cert, ofFiles.Key)
	f.eventually("the untrusted certificate loaded", 10*time.Second, func() error {
		if !strings.Contains(f.log(), `"certificate": "CN=vpcflow-untrusted`) {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	connect("br2")
	f.eventually("the refusal logged", 20*time.Second, func() error {
		if !strings.Contains(f.log(), "the switch refused vpcflow's certificate") {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	t.Logf("refusal: %s", grepLines(f.log(), "refused vpcflow's certificate"))
	if !strings.Contains(f.log(), "(CN=vpcflow-untrusted,O=vpcflow tests, issued by CN=CA the switch does not trust,O=vpcflow tests)") {
		t.Error("the refusal does not name the certificate and its issuer")
	}
	stillConnected("with an untrusted certificate loaded")
}

// `vpcflow bridge setup` over an ssl: OVSDB endpoint with its TLS flags,
// against a real ovsdb-server with a pssl: remote; without the flags it is
// refused before connecting.
func TestBridgeSetupOverTLS(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ca, err := testpki.NewCA("bridge setup CA")
	mustT(t, err)
	srv, err := ca.Issue("ovsdb-server", "127.0.0.1")
	mustT(t, err)
	srvFiles, err := srv.WriteFiles(dir, "ovsdb-server", ca)
	mustT(t, err)
	cli, err := ca.Issue("vpcflow-cli")
	mustT(t, err)
	cliFiles, err := cli.WriteFiles(dir, "cli", ca)
	mustT(t, err)
	lab := netlab.New(t)
	phys, err := lab.AddNode("phys")
	mustT(t, err)
	ovs, err := phys.StartOVS(ctx)
	mustT(t, err)
	ep, err := ovs.ServeOVSDBSSL(ctx, 6640, srvFiles.Key, srvFiles.Cert, srvFiles.CA)
	mustT(t, err)

	out, err := phys.Cmd(ctx, vpcflowBinary(t), "bridge", "setup", "br0", "--create", "--datapath-type", "netdev",
		"--ovsdb", ep, "--controller", "ssl:127.0.0.1:6653")
	if err == nil || !strings.Contains(out, "an ssl: endpoint needs --ovsdb-tls-cert, --ovsdb-tls-key and --ovsdb-tls-ca") {
		t.Errorf("ssl: without TLS flags: %v\n%s", err, out)
	}
	out, err = phys.Cmd(ctx, vpcflowBinary(t), "bridge", "setup", "br0", "--create", "--datapath-type", "netdev",
		"--ovsdb", ep, "--ovsdb-tls-cert", cliFiles.Cert, "--ovsdb-tls-key", cliFiles.Key, "--ovsdb-tls-ca", cliFiles.CA,
		"--controller", "ssl:127.0.0.1:6653")
	if err != nil || !strings.Contains(out, "bridge br0 is set up for vpcflow") {
		t.Fatalf("bridge setup over ssl: %v\n%s", err, out)
	}
	if got, err := ovs.Vsctl(ctx, "get-controller", "br0"); err != nil || strings.TrimSpace(got) != "ssl:127.0.0.1:6653" {
		t.Errorf("controller %q %v", got, err)
	}
}
