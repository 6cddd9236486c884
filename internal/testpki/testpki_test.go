package testpki

import (
	"crypto/x509"
	"os"
	"testing"
)

func TestIssueVerifiesOnlyAgainstItsCA(t *testing.T) {
	ca, err := NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewCA("other CA")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.Issue("server", "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		opts := x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{usage}}
		if _, err := c.Cert.Verify(opts); err != nil {
			t.Errorf("usage %v: %v", usage, err)
		}
		opts.Roots = other.Pool()
		if _, err := c.Cert.Verify(opts); err == nil {
			t.Errorf("usage %v: verified against another CA", usage)
		}
	}
	if err := c.Cert.VerifyHostname("127.0.0.1"); err != nil {
		t.Error(err)
	}
	if err := c.Cert.VerifyHostname("localhost"); err != nil {
		t.Error(err)
	}
	if _, err := c.TLSCertificate(); err != nil {
		t.Error(err)
	}
	dir := t.TempDir()
	f, err := c.WriteFiles(dir, "server", other)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(f.Key); err != nil {
		t.Error(err)
	} else if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file %s has mode %v, want 0600", f.Key, fi.Mode().Perm())
	}
	if b, err := os.ReadFile(f.CA); err != nil || string(b) != string(other.CertPEM) {
		t.Errorf("CA file holds %q, %v; want the peer CA", b, err)
	}
}
