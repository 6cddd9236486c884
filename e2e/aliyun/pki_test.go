package aliyun

import (
	"crypto/tls"
	"os"
	"testing"

	"github.com/vpcflow/vpcflow/internal/testpki"
)

// pki is a throwaway CA (vpcflow's testpki) with a server certificate for
// 127.0.0.1 and a client certificate, as PEM files.
type pki struct {
	ca, serverCert, serverKey, clientCert, clientKey string
	clientTLSConfig                                  *tls.Config
}

func newPKI(t *testing.T, dir string) *pki {
	t.Helper()
	must(t, os.MkdirAll(dir, 0o700))
	ca, err := testpki.NewCA("vpcflow aliyun e2e CA")
	must(t, err)
	server, err := ca.Issue("etcd-server", "127.0.0.1")
	must(t, err)
	client, err := ca.Issue("flannel")
	must(t, err)
	sf, err := server.WriteFiles(dir, "etcd-server", ca)
	must(t, err)
	cf, err := client.WriteFiles(dir, "flannel", ca)
	must(t, err)
	cert, err := client.TLSCertificate()
	must(t, err)
	return &pki{ca: sf.CA, serverCert: sf.Cert, serverKey: sf.Key, clientCert: cf.Cert, clientKey: cf.Key,
		clientTLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}}
}

// clientTLS is the client side, for the test's own etcd client.
func (p *pki) clientTLS() (*tls.Config, error) { return p.clientTLSConfig, nil }
