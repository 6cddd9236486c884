package main

import (
	"strings"
	"testing"
)

// The switch-cert commands over the real API and store: pin (openssl's
// fingerprint line as it is), list, show, refusals naming the field, and
// unbind.
func TestSwitchCertCLI(t *testing.T) {
	url := newFixedAPI(t)
	sum := strings.Repeat("0a", 32)
	openssl := "sha256 Fingerprint=" + strings.TrimSuffix(strings.Repeat("0A:", 32), ":")
	want := "DPID              SHA256                                                            SOURCE  REMOTE\n" +
		"00000000000000aa  " + sum + "  pinned  -\n"
	expectOutput(t, mustCLI(t, url, "switch-cert", "pin", "aa", "--sha256", openssl), want)
	expectOutput(t, mustCLI(t, url, "switch-cert", "list"), want)
	expectOutput(t, mustCLI(t, url, "switch-cert", "show", "0x00aa"), want)

	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"switch-cert", "pin", "aa", "--sha256", sum}, 1, `dpid: dpid 00000000000000aa is already bound to certificate ` + sum + ` (pinned); delete that binding first`},
		{[]string{"switch-cert", "pin", "ab", "--sha256", "0a0a"}, 1, `sha256: "0a0a" is not a SHA-256: want 64 hex digits`},
		{[]string{"switch-cert", "pin", "xyz", "--sha256", sum}, 1, `dpid: invalid dpid "xyz"`},
		{[]string{"switch-cert", "pin", "ab"}, 2, `--sha256 is required`},
		{[]string{"switch-cert", "show", "ab"}, 1, `no TLS certificate is bound to dpid "ab"`},
	} {
		r := runCLI(t, url, c.args...)
		if r.code != c.code || !strings.Contains(r.stderr, c.msg) {
			t.Errorf("vpcflow %s: exit %d, stderr %q; want exit %d naming %q", strings.Join(c.args, " "), r.code, r.stderr, c.code, c.msg)
		}
	}

	expectOutput(t, mustCLI(t, url, "switch-cert", "unbind", "00000000000000aa"), "unbound dpid 00000000000000aa from its certificate\n")
	expectOutput(t, mustCLI(t, url, "switch-cert", "list"), "DPID  SHA256  SOURCE  REMOTE\n")
	if r := runCLI(t, url, "switch-cert", "unbind", "aa"); r.code != 1 || !strings.Contains(r.stderr, "does not exist") {
		t.Errorf("unbinding twice: exit %d, %q", r.code, r.stderr)
	}
}
