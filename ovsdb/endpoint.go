package ovsdb

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
)

// Endpoint networks understood by ParseEndpoint.
const (
	NetworkUnix = "unix"
	NetworkTCP  = "tcp"
	NetworkSSL  = "ssl"
)

// DefaultOVSDBPort is the port OVS assumes when a tcp: or ssl: endpoint
// names no port.
const DefaultOVSDBPort = 6640

// Endpoint is a parsed active OVSDB connection method.
type Endpoint struct {
	// Network is NetworkUnix, NetworkTCP or NetworkSSL.
	Network string
	// Address is an absolute socket path for unix, and HOST:PORT for tcp and
	// ssl (IPv6 hosts in brackets, as net.JoinHostPort writes them).
	Address string
}

// String writes the endpoint the way OVS does, e.g. "unix:/run/db.sock" or
// "tcp:127.0.0.1:6640".
func (e Endpoint) String() string {
	return e.Network + ":" + e.Address
}

// libovsdbAddress is the endpoint in the URL form libovsdb's
// client.WithEndpoint parses. libovsdb runs the string through url.Parse and
// takes a unix socket from the URL's Path, so characters that are special in
// URLs must be escaped, and a relative path would silently turn into the
// default socket (which is why ParseEndpoint makes unix paths absolute).
func (e Endpoint) libovsdbAddress() string {
	if e.Network == NetworkUnix {
		return e.Network + ":" + (&url.URL{Path: e.Address}).EscapedPath()
	}
	return e.String()
}

// ParseEndpoint parses an active OVSDB connection method as OVS writes it:
//
//	unix:PATH        a Unix domain socket; a relative PATH is made absolute
//	tcp:HOST:PORT    TCP; IPv6 addresses in brackets, e.g. tcp:[::1]:6640
//	tcp:HOST         TCP to port 6640
//	ssl:HOST:PORT    TLS (parsed, but not yet supported by Monitor and SetupBridge)
//
// Passive methods (punix:, ptcp:, pssl:) are rejected: vpcflow connects to
// ovsdb-server, it does not listen for it.
func ParseEndpoint(s string) (Endpoint, error) {
	fail := func(format string, args ...any) (Endpoint, error) {
		return Endpoint{}, fmt.Errorf("invalid OVSDB endpoint %q: %s", s, fmt.Sprintf(format, args...))
	}
	if s == "" {
		return fail("empty; want unix:PATH, tcp:HOST:PORT or ssl:HOST:PORT")
	}
	if strings.TrimSpace(s) != s || strings.ContainsAny(s, "\x00\n\r\t") {
		return fail("contains whitespace or control characters")
	}
	network, rest, ok := strings.Cut(s, ":")
	if !ok {
		return fail("no method prefix; want unix:PATH, tcp:HOST:PORT or ssl:HOST:PORT")
	}
	switch network {
	case NetworkUnix:
		if rest == "" {
			return fail("unix: needs a socket path")
		}
		path, err := filepath.Abs(rest)
		if err != nil {
			return fail("cannot make socket path absolute: %v", err)
		}
		return Endpoint{Network: NetworkUnix, Address: path}, nil
	case NetworkTCP, NetworkSSL:
		hostPort, err := parseHostPort(rest)
		if err != nil {
			return fail("%v", err)
		}
		return Endpoint{Network: network, Address: hostPort}, nil
	case "punix", "ptcp", "pssl":
		return fail("%s: is a passive (listening) method; vpcflow needs an active one (%s:...)", network, network[1:])
	default:
		return fail("unknown method %q; want unix:, tcp: or ssl:", network)
	}
}

// parseHostPort validates OVS's HOST[:PORT] (IPv6 in brackets) and returns it
// as HOST:PORT.
func parseHostPort(s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("needs HOST:PORT")
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		// OVS allows the port to be left out; only accept that when the
		// remainder is unambiguously a host (no colon, or a bracketed IPv6).
		switch {
		case !strings.Contains(s, ":"):
			host, port = s, strconv.Itoa(DefaultOVSDBPort)
		case strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]"):
			host, port = s[1:len(s)-1], strconv.Itoa(DefaultOVSDBPort)
		default:
			return "", fmt.Errorf("want HOST:PORT (IPv6 addresses in brackets): %v", err)
		}
	}
	if host == "" {
		return "", fmt.Errorf("empty host")
	}
	if strings.ContainsAny(host, "[]/ ") {
		return "", fmt.Errorf("malformed host %q", host)
	}
	if (strings.HasPrefix(s, "[") || strings.Contains(host, ":")) && (net.ParseIP(host) == nil || !strings.Contains(host, ":")) {
		return "", fmt.Errorf("malformed IPv6 address %q", host)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return "", fmt.Errorf("port %q is not a number in 1-65535", port)
	}
	return net.JoinHostPort(host, port), nil
}
