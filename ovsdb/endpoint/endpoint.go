// Package endpoint parses the connection strings Open vSwitch uses for
// OVSDB servers ("unix:/run/openvswitch/db.sock", "tcp:192.0.2.1:6640") and
// OpenFlow controllers ("tcp:192.0.2.254:6653"). It needs nothing but the
// standard library, so that packages which only validate such strings (the
// topology) do not pull in an OVSDB client.
package endpoint

import (
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Networks understood by Parse and ParseController.
const (
	NetworkUnix = "unix"
	NetworkTCP  = "tcp"
	NetworkSSL  = "ssl"
)

// DefaultOVSDBPort is the port OVS assumes when a tcp: or ssl: OVSDB
// endpoint names no port.
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

// Parse parses an active OVSDB connection method as OVS writes it:
//
//	unix:PATH        a Unix domain socket; a relative PATH is made absolute
//	tcp:HOST:PORT    TCP; IPv6 addresses in brackets, e.g. tcp:[::1]:6640
//	tcp:HOST         TCP to port 6640
//	ssl:HOST:PORT    TLS
//
// Passive methods (punix:, ptcp:, pssl:) are rejected: vpcflow connects to
// ovsdb-server, it does not listen for it.
func Parse(s string) (Endpoint, error) {
	fail := func(format string, args ...any) (Endpoint, error) {
		return Endpoint{}, fmt.Errorf("invalid OVSDB endpoint %q: %s", s, fmt.Sprintf(format, args...))
	}
	if s == "" {
		return fail("empty; want unix:PATH, tcp:HOST:PORT or ssl:HOST:PORT")
	}
	if hasSpaceOrControl(s) {
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
		hostPort, err := parseHostPort(rest, DefaultOVSDBPort)
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

// ParseController checks an active OpenFlow controller target, as a
// bridge's Controller row holds it, and returns it in canonical form:
//
//	tcp:HOST:PORT    e.g. tcp:192.168.100.254:6653; IPv6 in brackets
//	ssl:HOST:PORT
//	unix:PATH        a socket on the switch's machine, kept as given
//
// Unlike OVS, the port is required: a controller's port is a deliberate
// choice, and a forgotten one is more likely than a wish for 6653.
// Passive targets (ptcp:, pssl:, punix:) are rejected.
func ParseController(s string) (string, error) {
	fail := func(format string, args ...any) (string, error) {
		return "", fmt.Errorf("invalid controller target %q: %s", s, fmt.Sprintf(format, args...))
	}
	if s == "" {
		return fail("empty; want tcp:HOST:PORT, ssl:HOST:PORT or unix:PATH")
	}
	if hasSpaceOrControl(s) {
		return fail("contains whitespace or control characters")
	}
	network, rest, ok := strings.Cut(s, ":")
	if !ok {
		return fail("no method prefix; want tcp:HOST:PORT, ssl:HOST:PORT or unix:PATH")
	}
	switch network {
	case NetworkUnix:
		if rest == "" {
			return fail("unix: needs a socket path")
		}
		return s, nil
	case NetworkTCP, NetworkSSL:
		hostPort, err := parseHostPort(rest, 0)
		if err != nil {
			return fail("%v", err)
		}
		return network + ":" + hostPort, nil
	case "punix", "ptcp", "pssl":
		return fail("%s: is a passive (listening) method; the bridge must connect to the controller (%s:...)", network, network[1:])
	default:
		return fail("unknown method %q; want tcp:, ssl: or unix:", network)
	}
}

// ParseControllers parses a comma-separated list of controller targets
// (each as ParseController; several for replicas, a bridge connecting to
// all of them) and returns them in canonical form, in the order given. An
// empty item or the same target twice is refused.
func ParseControllers(s string) ([]string, error) {
	var out []string
	for _, item := range strings.Split(s, ",") {
		t, err := ParseController(item)
		if err != nil {
			return nil, err
		}
		if slices.Contains(out, t) {
			return nil, fmt.Errorf("controller target %q given twice", t)
		}
		out = append(out, t)
	}
	return out, nil
}

// hasSpaceOrControl reports surrounding whitespace or control characters
// anywhere. Spaces inside a socket path are fine.
func hasSpaceOrControl(s string) bool {
	if strings.TrimSpace(s) != s {
		return true
	}
	for _, r := range s {
		if r < ' ' || r == 0x7f {
			return true
		}
	}
	return false
}

// parseHostPort validates OVS's HOST[:PORT] (IPv6 in brackets) and returns it
// as HOST:PORT. defaultPort 0 makes the port required.
func parseHostPort(s string, defaultPort int) (string, error) {
	if s == "" {
		return "", fmt.Errorf("needs HOST:PORT")
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		// OVS allows the port to be left out; only accept that when the
		// remainder is unambiguously a host (no colon, or a bracketed IPv6).
		switch {
		case defaultPort != 0 && !strings.Contains(s, ":"):
			host, port = s, strconv.Itoa(defaultPort)
		case defaultPort != 0 && strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]"):
			host, port = s[1:len(s)-1], strconv.Itoa(defaultPort)
		case defaultPort == 0 && (!strings.Contains(s, ":") || strings.HasSuffix(s, "]")):
			return "", fmt.Errorf("needs a port: want HOST:PORT")
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
