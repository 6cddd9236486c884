package ovsdb

import (
	"net/url"

	"github.com/vpcflow/vpcflow/ovsdb/endpoint"
)

// Endpoint networks understood by ParseEndpoint.
const (
	NetworkUnix = endpoint.NetworkUnix
	NetworkTCP  = endpoint.NetworkTCP
	NetworkSSL  = endpoint.NetworkSSL
)

// DefaultOVSDBPort is the port OVS assumes when a tcp: or ssl: endpoint
// names no port.
const DefaultOVSDBPort = endpoint.DefaultOVSDBPort

// Endpoint is a parsed active OVSDB connection method. The parser lives in
// the dependency-free package ovsdb/endpoint, so that validation (the
// topology) can use it without importing libovsdb.
type Endpoint = endpoint.Endpoint

// ParseEndpoint parses an active OVSDB connection method as OVS writes it:
//
//	unix:PATH        a Unix domain socket; a relative PATH is made absolute
//	tcp:HOST:PORT    TCP; IPv6 addresses in brackets, e.g. tcp:[::1]:6640
//	tcp:HOST         TCP to port 6640
//	ssl:HOST:PORT    TLS (Monitor, SetupBridge and EnsureTunnelPort need WithTLS for it)
//
// Passive methods (punix:, ptcp:, pssl:) are rejected: vpcflow connects to
// ovsdb-server, it does not listen for it. See endpoint.Parse.
func ParseEndpoint(s string) (Endpoint, error) {
	return endpoint.Parse(s)
}

// libovsdbAddress is the endpoint in the URL form libovsdb's
// client.WithEndpoint parses. libovsdb runs the string through url.Parse and
// takes a unix socket from the URL's Path, so characters that are special in
// URLs must be escaped, and a relative path would silently turn into the
// default socket (which is why ParseEndpoint makes unix paths absolute).
func libovsdbAddress(e Endpoint) string {
	if e.Network == NetworkUnix {
		return e.Network + ":" + (&url.URL{Path: e.Address}).EscapedPath()
	}
	return e.String()
}
