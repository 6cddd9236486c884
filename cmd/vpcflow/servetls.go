package main

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/ovsdb"
)

// tlsFlags is one --PREFIX-tls-cert, --PREFIX-tls-key, --PREFIX-tls-ca
// triple: all three or none.
type tlsFlags struct {
	prefix         string
	cert, key, cas *string
}

func addTLSFlags(fs *flag.FlagSet, prefix, certHelp, caHelp string) *tlsFlags {
	return &tlsFlags{
		prefix: prefix,
		cert:   fs.String(prefix+"-tls-cert", "", certHelp),
		key:    fs.String(prefix+"-tls-key", "", "PEM file with the private key of --"+prefix+"-tls-cert"),
		cas:    fs.String(prefix+"-tls-ca", "", caHelp),
	}
}

func (f *tlsFlags) names() string {
	return fmt.Sprintf("--%[1]s-tls-cert, --%[1]s-tls-key and --%[1]s-tls-ca", f.prefix)
}

// load reads the key pair and the CA bundle. ok is false when none of the
// three flags was given; one or two of them is an error.
func (f *tlsFlags) load() (cert tls.Certificate, pool *x509.CertPool, ok bool, err error) {
	given := map[string]string{"cert": *f.cert, "key": *f.key, "ca": *f.cas}
	var missing []string
	for _, n := range []string{"cert", "key", "ca"} {
		if given[n] == "" {
			missing = append(missing, "--"+f.prefix+"-tls-"+n)
		}
	}
	switch len(missing) {
	case 3:
		return tls.Certificate{}, nil, false, nil
	case 0:
	default:
		return tls.Certificate{}, nil, false, fmt.Errorf("%s go together: %s missing", f.names(), strings.Join(missing, " and "))
	}
	cert, err = tls.LoadX509KeyPair(*f.cert, *f.key)
	if err != nil {
		return tls.Certificate{}, nil, false, fmt.Errorf("--%[1]s-tls-cert %[2]s / --%[1]s-tls-key %[3]s: %[4]w", f.prefix, *f.cert, *f.key, err)
	}
	pool, err = loadCAs(*f.cas)
	if err != nil {
		return tls.Certificate{}, nil, false, fmt.Errorf("--%s-tls-ca: %w", f.prefix, err)
	}
	return cert, pool, true, nil
}

// loadCAs reads a PEM bundle of CA certificates; it must hold at least one.
func loadCAs(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading CA certificates: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}

// openflowTLSConfig is the OpenFlow listener's TLS configuration: vpcflow
// presents its certificate and accepts only switches whose certificate the
// CA signed (ovs-vsctl set-ssl KEY CERT CACERT on the switch). nil when the
// flags were not given.
func openflowTLSConfig(f *tlsFlags) (*tls.Config, error) {
	cert, pool, ok, err := f.load()
	if err != nil || !ok {
		return nil, err
	}
	return serverTLSConfig(cert, pool), nil
}

// ovsdbTLSConfig is the TLS configuration of ssl: OVSDB connections:
// vpcflow's client certificate, and the CA that signed ovsdb-server's
// (whose certificate must name the host of the ssl: endpoint). nil when the
// flags were not given.
func ovsdbTLSConfig(f *tlsFlags) (*tls.Config, error) {
	cert, pool, ok, err := f.load()
	if err != nil || !ok {
		return nil, err
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		MinVersion:   tls.VersionTLS12,
	}, nil
}

// checkOVSDBTLS refuses ssl: --ovsdb endpoints when there is no TLS
// configuration for them.
func checkOVSDBTLS(endpoints []string, cfg *tls.Config, f *tlsFlags) error {
	if cfg != nil {
		return nil
	}
	for _, s := range endpoints {
		if ep, err := ovsdb.ParseEndpoint(s); err == nil && ep.Network == ovsdb.NetworkSSL {
			return fmt.Errorf("--ovsdb %s: an ssl: endpoint needs %s", s, f.names())
		}
	}
	return nil
}

// listenOpenFlow opens the OpenFlow listener: plain TCP, or TLS when cfg is
// set. The TLS handshake happens on a connection's first Read or Write,
// i.e. inside the OpenFlow handshake, so the OpenFlow server's handshake
// deadline bounds it too: a peer that never completes TLS is dropped after
// HandshakeTimeout like one that never says HELLO.
func listenOpenFlow(log *zap.Logger, addr string, cfg *tls.Config) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening for OpenFlow on %s: %w", addr, err)
	}
	if cfg == nil {
		return ln, nil
	}
	return &tlsListener{Listener: ln, cfg: cfg, log: log}, nil
}

// tlsListener is tls.NewListener with connections that say when a TLS
// handshake failed and log whom a successful one was with.
type tlsListener struct {
	net.Listener
	cfg *tls.Config
	log *zap.Logger
	// presented describes the certificate vpcflow presents now, for the
	// message when a switch refuses it (nil: not described).
	presented func() string
}

func (l *tlsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &tlsServerConn{Conn: tls.Server(c, l.cfg), log: l.log, presented: l.presented}, nil
}

type tlsServerConn struct {
	*tls.Conn
	log       *zap.Logger
	presented func() string
	once      sync.Once
	err       error
}

// refusedByPeer says whether a failed server handshake means the switch
// did not accept vpcflow's certificate: it sent a certificate alert, or
// (what OpenSSL in Open vSwitch does with TLS 1.3) aborted in a way Go
// reports as "bad record MAC".
func refusedByPeer(err error) bool {
	msg := err.Error()
	for _, s := range []string{"bad record MAC", "remote error: tls: unknown certificate authority", "remote error: tls: bad certificate",
		"remote error: tls: certificate unknown", "remote error: tls: unsupported certificate", "remote error: tls: expired certificate",
		"remote error: tls: revoked certificate", "remote error: tls: decrypt error"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// handshake runs the TLS handshake once, under the deadline set on the
// connection (tls.Conn would do the same implicitly).
func (c *tlsServerConn) handshake() error {
	c.once.Do(func() {
		if err := c.Conn.Handshake(); err != nil {
			if refusedByPeer(err) {
				what := ""
				if c.presented != nil {
					what = " " + c.presented()
				}
				c.err = fmt.Errorf("TLS handshake: the switch refused vpcflow's certificate%s: the CA the switch trusts "+
					"(ovs-vsctl set-ssl KEY CERT CACERT on the switch) must have signed --openflow-tls-cert (%w)", what, err)
				return
			}
			c.err = fmt.Errorf("TLS handshake: %w", err)
			return
		}
		st := c.Conn.ConnectionState()
		peer := ""
		if len(st.PeerCertificates) > 0 {
			peer = st.PeerCertificates[0].Subject.String()
		}
		c.log.Info("switch TLS handshake done", zap.String("remote", c.RemoteAddr().String()),
			zap.String("peer_certificate", peer), zap.String("version", tls.VersionName(st.Version)))
	})
	return c.err
}

func (c *tlsServerConn) Read(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Read(b)
}

func (c *tlsServerConn) Write(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}
