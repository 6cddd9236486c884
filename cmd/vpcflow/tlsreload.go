package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// tlsMaterial is one loading of a certificate, its key and a CA bundle.
type tlsMaterial struct {
	files [3]string // cert, key, ca
	stamp string    // size and mtime of the three files, to notice changes
	cert  tls.Certificate
	pool  *x509.CertPool
	// server is the listener configuration built from this material.
	server *tls.Config
}

// leaf is the material's certificate.
func (m *tlsMaterial) leaf() *x509.Certificate { return m.cert.Leaf }

// certReloader holds the current TLS material of one --PREFIX-tls-*
// triple and re-reads it on demand (SIGHUP) or when the files change.
// Connections established before a reload keep the material they were
// made with; new ones get the new material.
type certReloader struct {
	prefix string
	mu     sync.Mutex // serializes reloads
	cur    atomic.Pointer[tlsMaterial]
	// startPool is the CA bundle loaded at start (what clientConfig checks
	// servers against for good).
	startPool *x509.CertPool
}

// newCertReloader loads the triple; nil, nil when none of its flags is set.
func newCertReloader(f *tlsFlags) (*certReloader, error) {
	m, err := loadMaterial(f)
	if err != nil || m == nil {
		return nil, err
	}
	r := &certReloader{prefix: f.prefix, startPool: m.pool}
	r.cur.Store(m)
	return r, nil
}

func loadMaterial(f *tlsFlags) (*tlsMaterial, error) {
	stamp := fileStamp(*f.cert, *f.key, *f.cas)
	cert, pool, ok, err := f.load()
	if err != nil || !ok {
		return nil, err
	}
	m := &tlsMaterial{files: [3]string{*f.cert, *f.key, *f.cas}, stamp: stamp, cert: cert, pool: pool}
	m.server = serverTLSConfig(cert, pool)
	return m, nil
}

// fileStamp is the size, modification time and inode change time of
// files, so that a replaced or rewritten file is noticed.
func fileStamp(files ...string) string {
	s := ""
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			s += f + ":missing;"
			continue
		}
		s += fmt.Sprintf("%s:%d:%d;", f, fi.Size(), fi.ModTime().UnixNano())
	}
	return s
}

// material is the current material.
func (r *certReloader) material() *tlsMaterial { return r.cur.Load() }

// reloadFrom loads f (the same files or new names) and makes it current.
// On error the current material stays. changed says whether anything
// differs from before (files, or their content's certificate).
func (r *certReloader) reloadFrom(f *tlsFlags) (changed bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, err := loadMaterial(f)
	if err != nil {
		return false, err
	}
	if m == nil {
		return false, fmt.Errorf("%s are no longer set: turning TLS off needs a restart", f.names())
	}
	old := r.cur.Load()
	r.cur.Store(m)
	return !sameMaterial(old, m), nil
}

// changedOnDisk says whether the current files' stamp differs.
func (r *certReloader) changedOnDisk() bool {
	m := r.cur.Load()
	return fileStamp(m.files[:]...) != m.stamp
}

func sameMaterial(a, b *tlsMaterial) bool {
	if a.files != b.files || len(a.cert.Certificate) != len(b.cert.Certificate) || !a.pool.Equal(b.pool) {
		return false
	}
	for i := range a.cert.Certificate {
		if string(a.cert.Certificate[i]) != string(b.cert.Certificate[i]) {
			return false
		}
	}
	return true
}

// serverTLSConfig is the OpenFlow listener's configuration for one
// material: vpcflow presents cert and accepts only switches whose
// certificate pool signed.
func serverTLSConfig(cert tls.Certificate, pool *x509.CertPool) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS12,
	}
}

// serverConfig is the listener's configuration: each handshake takes the
// material current at that moment (GetConfigForClient), so a reload
// changes what new switches see and leaves connected ones alone.
func (r *certReloader) serverConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return r.cur.Load().server, nil
		},
	}
}

// clientConfig is the configuration of ssl: OVSDB connections: the
// current client certificate (GetClientCertificate, so a reload changes it
// for new sessions), and the server's certificate checked by crypto/tls
// against the CA bundle loaded at start and the endpoint's host. (The CA
// cannot be swapped the same way: libovsdb dials with the host as server
// name, which a custom check would not see for IP endpoints; a new
// --ovsdb-tls-ca needs a restart, and a reload says so.)
func (r *certReloader) clientConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		RootCAs:    r.cur.Load().pool,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			c := r.cur.Load().cert
			return &c, nil
		},
	}
}

// describe logs what the material presents and trusts.
func (r *certReloader) describe(log *zap.Logger, what, msg string) {
	if r == nil {
		return
	}
	leaf := r.material().leaf()
	if leaf == nil {
		return
	}
	log.Info(msg, zap.String("tls", what), zap.String("certificate", leaf.Subject.String()),
		zap.String("serial", leaf.SerialNumber.String()), zap.Time("not_after", leaf.NotAfter))
	if time.Now().After(leaf.NotAfter) {
		log.Warn(what+" TLS certificate has expired", zap.String("certificate", leaf.Subject.String()),
			zap.Time("not_after", leaf.NotAfter))
	}
}
