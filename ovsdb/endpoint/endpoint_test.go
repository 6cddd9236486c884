package endpoint

import (
	"strings"
	"testing"
)

// Parse is tested through ovsdb.ParseEndpoint in package ovsdb, together
// with the URL form libovsdb dials; these cover what only this package has.

func TestParseCanonical(t *testing.T) {
	for in, want := range map[string]string{
		"tcp:192.0.2.1":          "tcp:192.0.2.1:6640",
		"tcp:192.0.2.1:6641":     "tcp:192.0.2.1:6641",
		"tcp:[2001:db8::1]":      "tcp:[2001:db8::1]:6640",
		"unix:/run/ovs//db.sock": "unix:/run/ovs/db.sock",
	} {
		ep, err := Parse(in)
		if err != nil {
			t.Errorf("Parse(%q): %v", in, err)
			continue
		}
		if ep.String() != want {
			t.Errorf("Parse(%q) = %s, want %s", in, ep, want)
		}
	}
}

// Several targets (replicas), comma-separated: each canonical, order kept,
// the same one twice and empty items refused.
func TestParseControllers(t *testing.T) {
	got, err := ParseControllers("tcp:192.0.2.2:6653,tcp:192.0.2.1:6653,unix:/run/a.sock")
	if err != nil || strings.Join(got, " ") != "tcp:192.0.2.2:6653 tcp:192.0.2.1:6653 unix:/run/a.sock" {
		t.Errorf("ParseControllers = %q, %v", got, err)
	}
	for in, why := range map[string]string{
		"tcp:192.0.2.1:6653,tcp:192.0.2.1:6653":  "given twice",
		"tcp:192.0.2.1:6653,":                    "empty",
		"tcp:192.0.2.1:6653, tcp:192.0.2.2:6653": "whitespace",
		"tcp:192.0.2.1:6653,ptcp:6653":           "passive",
	} {
		if _, err := ParseControllers(in); err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("ParseControllers(%q) = %v, want an error saying %q", in, err, why)
		}
	}
}

func TestParseController(t *testing.T) {
	good := map[string]string{
		"tcp:192.168.100.254:6653":   "tcp:192.168.100.254:6653",
		"ssl:ctl.example.com:6653":   "ssl:ctl.example.com:6653",
		"tcp:[2001:db8::1]:6653":     "tcp:[2001:db8::1]:6653",
		"unix:/var/run/vpcflow.sock": "unix:/var/run/vpcflow.sock",
		"unix:ctl.sock":              "unix:ctl.sock",
	}
	for in, want := range good {
		got, err := ParseController(in)
		if err != nil || got != want {
			t.Errorf("ParseController(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := []struct{ in, why string }{
		{"", "empty"},
		{"192.168.100.254:6653", "unknown method"},
		{"tcp:192.168.100.254", "needs a port"},
		{"tcp:[2001:db8::1]", "needs a port"},
		{"tcp:2001:db8::1:6653", "IPv6 addresses in brackets"},
		{"tcp:192.168.100.254:0", "not a number"},
		{"tcp:192.168.100.254:65536", "not a number"},
		{"tcp::6653", "empty host"},
		{"ptcp:6653", "passive"},
		{"punix:/x", "passive"},
		{"http://x:6653", "unknown method"},
		{"unix:", "needs a socket path"},
		{"tcp:1.2.3.4:6653\n", "whitespace"},
		{" tcp:1.2.3.4:6653", "whitespace"},
		{"nocolon", "no method prefix"},
	}
	for _, tc := range bad {
		_, err := ParseController(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.why) || !strings.Contains(err.Error(), "invalid controller target") {
			t.Errorf("ParseController(%q) = %v, want an error saying %q", tc.in, err, tc.why)
		}
	}
}
