package ovsdb

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseEndpoint(t *testing.T) {
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	good := []struct {
		in   string
		want Endpoint
	}{
		{"unix:/var/run/openvswitch/db.sock", Endpoint{Network: "unix", Address: "/var/run/openvswitch/db.sock"}},
		{"unix:db.sock", Endpoint{Network: "unix", Address: filepath.Join(cwd, "db.sock")}},
		{"unix:/tmp/odd dir/a%b?c#d.sock", Endpoint{Network: "unix", Address: "/tmp/odd dir/a%b?c#d.sock"}},
		{"tcp:127.0.0.1:6640", Endpoint{Network: "tcp", Address: "127.0.0.1:6640"}},
		{"tcp:127.0.0.1", Endpoint{Network: "tcp", Address: "127.0.0.1:6640"}},
		{"tcp:localhost:6641", Endpoint{Network: "tcp", Address: "localhost:6641"}},
		{"tcp:[::1]:6640", Endpoint{Network: "tcp", Address: "[::1]:6640"}},
		{"tcp:[fe80::1]", Endpoint{Network: "tcp", Address: "[fe80::1]:6640"}},
		{"ssl:192.0.2.1:6640", Endpoint{Network: "ssl", Address: "192.0.2.1:6640"}},
	}
	for _, tc := range good {
		got, err := ParseEndpoint(tc.in)
		if err != nil {
			t.Errorf("ParseEndpoint(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("ParseEndpoint(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
		// What libovsdb will dial must be the same socket / address.
		u, err := url.Parse(libovsdbAddress(got))
		if err != nil {
			t.Errorf("%q: libovsdb address %q does not parse: %v", tc.in, libovsdbAddress(got), err)
			continue
		}
		dial := u.Opaque
		if u.Scheme == "unix" {
			dial = u.Path
		}
		if u.Scheme != got.Network || dial != got.Address {
			t.Errorf("%q: libovsdb would dial %s %q, want %s %q", tc.in, u.Scheme, dial, got.Network, got.Address)
		}
	}

	bad := []struct{ in, why string }{
		{"", "empty"},
		{"garbage", "no method prefix"},
		{"/var/run/openvswitch/db.sock", "no method prefix"},
		{"http://127.0.0.1:6640", "unknown method"},
		{"udp:127.0.0.1:6640", "unknown method"},
		{"unix:", "needs a socket path"},
		{"tcp:", "needs HOST:PORT"},
		{"tcp::6640", "empty host"},
		{"tcp:127.0.0.1:", "not a number"},
		{"tcp:127.0.0.1:http", "not a number"},
		{"tcp:127.0.0.1:0", "not a number"},
		{"tcp:127.0.0.1:70000", "not a number"},
		{"tcp:::1:6640", "IPv6 addresses in brackets"},
		{"tcp:[::1", "IPv6 addresses in brackets"},
		{"tcp:[nonsense]:6640", "malformed IPv6"},
		{"tcp:a/b:6640", "malformed host"},
		{" unix:/x", "whitespace"},
		{"tcp:127.0.0.1:6640\n", "whitespace"},
		{"ptcp:6640", "passive"},
		{"punix:/var/run/db.sock", "passive"},
	}
	for _, tc := range bad {
		_, err := ParseEndpoint(tc.in)
		if err == nil {
			t.Errorf("ParseEndpoint(%q) succeeded, want error mentioning %q", tc.in, tc.why)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, tc.why) || !strings.Contains(msg, "invalid OVSDB endpoint") {
			t.Errorf("ParseEndpoint(%q) error %q, want it to say %q", tc.in, msg, tc.why)
		}
	}
}
