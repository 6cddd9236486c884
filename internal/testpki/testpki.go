// Package testpki creates throwaway X.509 certificates for tests of
// vpcflow's TLS connections (OpenFlow and OVSDB): a certificate authority,
// and certificates it signs for servers and clients (vpcflow, ovs-vswitchd,
// ovsdb-server), written as PEM files in the form Open vSwitch reads.
//
// Keys are ECDSA P-256, certificates are valid from an hour ago for a day,
// and every leaf certificate is good for both server and client
// authentication, so one certificate can serve each side of a connection.
// Nothing here is fit for production: the keys never leave the test's
// temporary directory.
package testpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// CA is a self-signed certificate authority.
type CA struct {
	// Cert is the CA's certificate.
	Cert *x509.Certificate
	// CertPEM is Cert in PEM form.
	CertPEM []byte

	key crypto.Signer
}

// Cert is a certificate signed by a CA, with its private key.
type Cert struct {
	// Cert is the parsed certificate.
	Cert *x509.Certificate
	// CertPEM and KeyPEM are the certificate and its PKCS #8 private key in
	// PEM form.
	CertPEM, KeyPEM []byte
}

// Files are the paths of a certificate, its key and the CA certificate a
// peer is checked against, as WriteFiles writes them.
type Files struct {
	Cert, Key, CA string
}

const (
	notBeforeSlack = time.Hour
	validity       = 24 * time.Hour
)

// NewCA creates a certificate authority named commonName.
func NewCA(commonName string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("testpki: CA %q: generating key: %w", commonName, err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, fmt.Errorf("testpki: CA %q: %w", commonName, err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"vpcflow tests"}},
		NotBefore:             now.Add(-notBeforeSlack),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("testpki: CA %q: signing certificate: %w", commonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("testpki: CA %q: parsing certificate: %w", commonName, err)
	}
	return &CA{Cert: cert, CertPEM: pemBlock("CERTIFICATE", der), key: key}, nil
}

// Issue creates a certificate for commonName, signed by the CA and usable
// for server and client authentication. hosts are its subject alternative
// names: IP addresses become IP SANs, anything else a DNS name. A TLS
// client checks a server's certificate against the host it dialled, so a
// server's certificate must list that host (e.g. "127.0.0.1").
func (ca *CA) Issue(commonName string, hosts ...string) (*Cert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("testpki: certificate %q: generating key: %w", commonName, err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, fmt.Errorf("testpki: certificate %q: %w", commonName, err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: commonName, Organization: []string{"vpcflow tests"}},
		NotBefore:    now.Add(-notBeforeSlack),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.key)
	if err != nil {
		return nil, fmt.Errorf("testpki: certificate %q: signing: %w", commonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("testpki: certificate %q: parsing: %w", commonName, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("testpki: certificate %q: encoding key: %w", commonName, err)
	}
	return &Cert{Cert: cert, CertPEM: pemBlock("CERTIFICATE", der), KeyPEM: pemBlock("PRIVATE KEY", keyDER)}, nil
}

// Pool is a certificate pool holding only the CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// TLSCertificate is the certificate and key for a tls.Config.
func (c *Cert) TLSCertificate() (tls.Certificate, error) {
	tc, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("testpki: certificate %q: %w", c.Cert.Subject.CommonName, err)
	}
	return tc, nil
}

// WriteFiles writes the certificate to DIR/NAME-cert.pem, its key to
// DIR/NAME-key.pem (mode 0600) and the certificate of peerCA — the CA the
// holder checks its peers against — to DIR/NAME-ca.pem.
func (c *Cert) WriteFiles(dir, name string, peerCA *CA) (Files, error) {
	f := Files{
		Cert: filepath.Join(dir, name+"-cert.pem"),
		Key:  filepath.Join(dir, name+"-key.pem"),
		CA:   filepath.Join(dir, name+"-ca.pem"),
	}
	for _, w := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{{f.Cert, c.CertPEM, 0o644}, {f.Key, c.KeyPEM, 0o600}, {f.CA, peerCA.CertPEM, 0o644}} {
		if err := os.WriteFile(w.path, w.data, w.mode); err != nil {
			return Files{}, fmt.Errorf("testpki: writing %s: %w", w.path, err)
		}
	}
	return f, nil
}

func serialNumber() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("generating serial number: %w", err)
	}
	return n, nil
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
