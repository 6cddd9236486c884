package controller

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"

	"github.com/vpcflow/vpcflow/topology"
)

// TestCertificateBindingOutlivesRestart: the first certificate a dpid
// connects with is stored as its binding; another certificate gets the
// stored one back (the openflow server then refuses it) — also from a
// controller started again on the same data directory, which before kept
// bindings in memory only. A pinned binding holds before any connection;
// a deleted one lets the next certificate bind; a binding the store
// cannot keep is an error, and nothing is bound.
func TestCertificateBindingOutlivesRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	open := func() (*Controller, *failingBackend, func()) {
		b, err := topology.OpenBolt(ctx, dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		fb := &failingBackend{Backend: b}
		st, err := topology.NewStore(ctx, fb, nil)
		if err != nil {
			t.Fatal(err)
		}
		r := newRigOn(t, st, Options{})
		return r.c, fb, func() { _ = st.Close() }
	}
	first, other := sha256.Sum256([]byte("switch certificate")), sha256.Sum256([]byte("another certificate"))
	bind := func(c *Controller, dpid uint64, fp [sha256.Size]byte) [sha256.Size]byte {
		t.Helper()
		got, err := c.BindCertificate(ctx, dpid, fp, "192.0.2.7:40000")
		if err != nil {
			t.Fatalf("BindCertificate(%x): %v", dpid, err)
		}
		return got
	}

	c, fb, closeStore := open()
	if got := bind(c, 0x99, first); got != first {
		t.Fatalf("first use bound %x, want the certificate presented", got)
	}
	if got := bind(c, 0x99, other); got != first {
		t.Fatalf("another certificate got %x, want the first one's", got)
	}
	closeStore()

	c, fb, closeStore = open() // a restart: the same data directory
	defer closeStore()
	if got := bind(c, 0x99, other); got != first {
		t.Fatalf("after a restart another certificate got %x, want the stored one", got)
	}
	var b topology.SwitchCertificate
	c.store.Read(func(st *topology.State) { b, _ = st.SwitchCertificate(0x99) })
	if b.Source != topology.CertificateFirstUse || b.Remote != "192.0.2.7:40000" || b.Fingerprint() != first {
		t.Fatalf("stored binding %+v", b)
	}

	// Pinned before the switch connects: only that certificate is let in.
	pin := &topology.SwitchCertificate{DPID: 0x42, SHA256: hexColons(other[:])}
	if _, err := c.Apply(ctx, []topology.Op{topology.Create(pin)}); err != nil {
		t.Fatal(err)
	}
	if got := bind(c, 0x42, first); got != other {
		t.Fatalf("a pinned dpid bound %x, want the pinned certificate", got)
	}

	// Unbound (a switch given a new certificate): the next one binds.
	if _, err := c.Apply(ctx, []topology.Op{topology.Delete(topology.SwitchCertificateRef("99"), false)}); err != nil {
		t.Fatal(err)
	}
	if got := bind(c, 0x99, other); got != other {
		t.Fatalf("after unbinding, the next certificate got %x, want itself", got)
	}

	// The store cannot keep it: an error, and nothing bound.
	fb.fail = true
	if _, err := c.BindCertificate(ctx, 0x77, first, "192.0.2.8:1"); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("BindCertificate with a failing store = %v, want the store's error", err)
	}
	fb.fail = false
	if got := bind(c, 0x77, other); got != other {
		t.Fatalf("a binding that failed to store held: got %x", got)
	}
}

// hexColons writes b as openssl prints a fingerprint: "AB:CD:…".
func hexColons(b []byte) string {
	parts := make([]string, len(b))
	for i, x := range b {
		parts[i] = fmt.Sprintf("%02X", x)
	}
	return strings.Join(parts, ":")
}
