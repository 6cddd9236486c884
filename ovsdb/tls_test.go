package ovsdb

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vpcflow/vpcflow/internal/testpki"
)

// tlsOVSDB is an ovsdb-server that also listens for TLS on
// pssl:6640:127.0.0.1 inside its lab node, with a certificate signed by ca,
// and requires its clients to present one signed by ca too. The ssl:
// endpoint is reachable only from inside that node: run clients with
// inNode.
type tlsOVSDB struct {
	*testOVS
	sslEndpoint string
	ca, other   *testpki.CA
	// client is vpcflow's certificate (signed by ca); rogue is signed by
	// other.
	client, rogue tls.Certificate
}

func startTLSOVSDB(t *testing.T) *tlsOVSDB {
	t.Helper()
	ca, err := testpki.NewCA("vpcflow test CA")
	must(t, err)
	other, err := testpki.NewCA("some other CA")
	must(t, err)
	server, err := ca.Issue("ovsdb-server", "127.0.0.1")
	must(t, err)
	dir := t.TempDir()
	files, err := server.WriteFiles(dir, "ovsdb-server", ca)
	must(t, err)
	tc := &tlsOVSDB{ca: ca, other: other}
	tc.client = issueTLS(t, ca, "vpcflow")
	tc.rogue = issueTLS(t, other, "vpcflow")

	tc.testOVS = startOVSDB(t)
	// The node's network namespace is the test's own: any port is free.
	tc.sslEndpoint, err = tc.ServeOVSDBSSL(withTimeout(t, 20*time.Second), DefaultOVSDBPort, files.Key, files.Cert, files.CA)
	must(t, err)
	return tc
}

// inNode runs fn on a thread inside the OVS node's network namespace, where
// 127.0.0.1 is the node's loopback and the ssl: endpoint listens. Every
// connection fn opens on its own goroutine stays in that namespace.
func (tc *tlsOVSDB) inNode(fn func() error) error {
	return tc.Node().Do(fn)
}

func (tc *tlsOVSDB) config(cert tls.Certificate, roots *testpki.CA) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: roots.Pool(), MinVersion: tls.VersionTLS12}
}

func issueTLS(t *testing.T, ca *testpki.CA, cn string) tls.Certificate {
	t.Helper()
	c, err := ca.Issue(cn)
	must(t, err)
	tc, err := c.TLSCertificate()
	must(t, err)
	return tc
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestTLSSetupTunnelAndMonitor does over ssl: everything vpcflow does with
// a chassis's OVSDB: set the bridge up, add the VXLAN port, monitor it.
func TestTLSSetupTunnelAndMonitor(t *testing.T) {
	o := startTLSOVSDB(t)
	ctx := withTimeout(t, 30*time.Second)
	good := WithTLS(o.config(o.client, o.ca))

	opts := SetupOptions{Create: true, Controllers: []string{"ssl:127.0.0.1:6653"}}
	if err := o.inNode(func() error { return SetupBridge(ctx, testLogger(t), o.sslEndpoint, "br-tls", opts, good) }); err != nil {
		t.Fatalf("SetupBridge over TLS: %v", err)
	}
	expectVsctl(t, o.testOVS, "br-tls", "list-br")
	expectVsctl(t, o.testOVS, "ssl:127.0.0.1:6653", "get-controller", "br-tls")
	if err := o.inNode(func() error {
		return EnsureTunnelPort(ctx, testLogger(t), o.sslEndpoint, "br-tls", "vpcflow-vxlan", good)
	}); err != nil {
		t.Fatalf("EnsureTunnelPort over TLS: %v", err)
	}
	expectVsctl(t, o.testOVS, "vxlan", "get", "Interface", "vpcflow-vxlan", "type")

	rec := &recorder{t: t, endpoint: o.sslEndpoint}
	m := startMonitorIn(t, o.inNode, o.sslEndpoint, rec, good)
	rec.waitCall(t, 0, 10*time.Second, "br-tls with its VXLAN port", func(bs []Bridge) bool {
		b, ok := findBridge(bs, "br-tls")
		_, vx := b.Ports["vpcflow-vxlan"]
		return ok && vx
	})
	if !m.Connected() {
		t.Error("Connected() = false after the initial dump over TLS")
	}
	// Changes arrive over the TLS session too.
	o.vsctl("--no-wait", "add-port", "br-tls", "vnet1", "--", "set", "Interface", "vnet1",
		"external_ids:attached-mac=52:58:00:98:c0:81")
	rec.waitCall(t, 0, 10*time.Second, "vnet1 with its attached-mac", func(bs []Bridge) bool {
		b, _ := findBridge(bs, "br-tls")
		return b.Ports["vnet1"].AttachedMAC.String() == "52:58:00:98:c0:81"
	})
}

// TestTLSRefusals: without a TLS configuration an ssl: endpoint is refused
// at once; with a certificate the server does not trust, or a server the
// client does not trust, nothing connects and nothing is changed.
func TestTLSRefusals(t *testing.T) {
	o := startTLSOVSDB(t)
	log := testLogger(t)

	t.Run("no TLS configuration", func(t *testing.T) {
		ctx := withTimeout(t, 5*time.Second)
		for name, err := range map[string]error{
			"SetupBridge":      SetupBridge(ctx, log, o.sslEndpoint, "br0", SetupOptions{Create: true}),
			"EnsureTunnelPort": EnsureTunnelPort(ctx, log, o.sslEndpoint, "br0", "vx"),
			"Monitor.Run":      NewMonitor(log, o.sslEndpoint, nil).Run(ctx),
			"WithTLS(nil)":     NewMonitor(log, o.sslEndpoint, nil, WithTLS(nil)).Run(ctx),
		} {
			if !errors.Is(err, ErrTLSRequired) {
				t.Errorf("%s on %s without TLS = %v, want ErrTLSRequired", name, o.sslEndpoint, err)
			}
		}
	})

	bad := []struct {
		name string
		cfg  *tls.Config
		want string // in the error of a one-shot call
	}{
		{"client certificate from another CA", o.config(o.rogue, o.ca), ""},
		{"no client certificate", &tls.Config{RootCAs: o.ca.Pool(), MinVersion: tls.VersionTLS12}, ""},
		{"server certificate from an untrusted CA", o.config(o.client, o.other), "certificate signed by unknown authority"},
		{"server certificate for another name", func() *tls.Config {
			c := o.config(o.client, o.ca)
			c.ServerName = "ovsdb.example.com"
			return c
		}(), "wanted to match ovsdb.example.com"},
	}
	before := dbState(o.testOVS)
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := o.inNode(func() error {
				return SetupBridge(ctx, log, o.sslEndpoint, "br0", SetupOptions{Create: true}, WithTLS(tc.cfg))
			})
			if err == nil {
				t.Fatal("SetupBridge succeeded")
			}
			if !strings.Contains(err.Error(), o.sslEndpoint) || !strings.Contains(err.Error(), `"br0"`) {
				t.Errorf("error %q should name the endpoint and the bridge", err)
			}
			if tc.want != "" && !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q should contain %q", err, tc.want)
			}
			t.Logf("SetupBridge: %v", err)
			err = o.inNode(func() error { return EnsureTunnelPort(ctx, log, o.sslEndpoint, "br0", "vx", WithTLS(tc.cfg)) })
			if err == nil {
				t.Fatal("EnsureTunnelPort succeeded")
			}

			// A monitor keeps trying and never connects.
			rec := &recorder{t: t, endpoint: o.sslEndpoint}
			m := startMonitorIn(t, o.inNode, o.sslEndpoint, rec, WithTLS(tc.cfg))
			time.Sleep(700 * time.Millisecond)
			if m.Connected() || rec.count() != 0 {
				t.Errorf("monitor with a bad TLS setup: connected=%v, %d onChange calls; want neither", m.Connected(), rec.count())
			}
		})
	}
	if after := dbState(o.testOVS); after != before {
		t.Errorf("refused TLS clients changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}
