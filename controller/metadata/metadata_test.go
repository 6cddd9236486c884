package metadata

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

var (
	vmA = netip.MustParseAddr("100.64.0.1")
	vmB = netip.MustParseAddr("100.64.0.2")
)

func lookup(a netip.Addr) (Instance, bool) {
	switch a {
	case vmA:
		return Instance{InstanceID: "i-1", PrivateIPv4: "10.10.10.11", VPCID: "vpc-a", MAC: "52:58:00:98:c0:81", Hostname: "test1"}, true
	case vmB:
		return Instance{InstanceID: "i-2", PrivateIPv4: "10.10.10.11", VPCID: "vpc-b", MAC: "52:58:00:98:c0:92", Hostname: "test1"}, true
	}
	return Instance{}, false
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func do(t *testing.T, h http.Handler, from netip.Addr, method, path string, hdr map[string]string) (int, string) {
	t.Helper()
	r := httptest.NewRequest(method, "http://100.100.100.200"+path, nil)
	r.RemoteAddr = netip.AddrPortFrom(from, 40000).String()
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	b, _ := io.ReadAll(w.Result().Body)
	return w.Code, string(b)
}

func TestAnswersByLinkAddress(t *testing.T) {
	h, err := New(zap.NewNop(), lookup, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if code, body := do(t, h, vmA, "GET", "/latest/meta-data/vpc-id", nil); code != 200 || body != "vpc-a" {
		t.Errorf("A: %d %q", code, body)
	}
	if code, body := do(t, h, vmB, "GET", "/latest/meta-data/vpc-id", nil); code != 200 || body != "vpc-b" {
		t.Errorf("B: %d %q", code, body)
	}
	code, body := do(t, h, vmA, "GET", "/latest/meta-data/", nil)
	for _, k := range []string{"instance-id", "private-ipv4", "mac", "vpc-id", "vswitch-id", "vswitch-cidr-block", "region-id", "zone-id", "hostname"} {
		if code != 200 || !strings.Contains(body, k+"\n") && !strings.HasSuffix(body, k) {
			t.Errorf("listing lacks %s: %d %q", k, code, body)
		}
	}
	for _, tc := range []struct {
		from         netip.Addr
		method, path string
		want         int
	}{
		{netip.MustParseAddr("10.10.10.11"), "GET", "/latest/meta-data/vpc-id", 403},
		{vmA, "GET", "/latest/meta-data/nope", 404},
		{vmA, "GET", "/etc/passwd", 404},
		{vmA, "POST", "/latest/meta-data/vpc-id", 405},
		{vmA, "GET", "/latest/api/token", 405},
	} {
		if code, _ := do(t, h, tc.from, tc.method, tc.path, nil); code != tc.want {
			t.Errorf("%s %s from %s: %d, want %d", tc.method, tc.path, tc.from, code, tc.want)
		}
	}
	if s := h.Stats(); s.Unknown != 1 || s.Refused != 5 {
		t.Errorf("stats %+v", s)
	}
}

func TestHardenedTokens(t *testing.T) {
	c := &clock{t: time.Unix(1_000_000, 0)}
	h, err := New(zap.NewNop(), lookup, Options{Hardened: true, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := do(t, h, vmA, "GET", "/latest/meta-data/vpc-id", nil); code != 403 {
		t.Errorf("hardened without token: %d", code)
	}
	for _, ttl := range []string{"", "0", "21601", "x"} {
		if code, _ := do(t, h, vmA, "PUT", "/latest/api/token", map[string]string{HeaderTokenTTL: ttl}); code != 400 {
			t.Errorf("ttl %q: %d", ttl, code)
		}
	}
	if code, _ := do(t, h, vmA, "PUT", "/latest/api/token", map[string]string{HeaderTokenTTL: "60", "X-Forwarded-For": "1.2.3.4"}); code != 403 {
		t.Errorf("token through a proxy: %d", code)
	}
	code, tok := do(t, h, vmA, "PUT", "/latest/api/token", map[string]string{HeaderTokenTTL: "60"})
	if code != 200 || tok == "" {
		t.Fatalf("token: %d %q", code, tok)
	}
	if code, body := do(t, h, vmA, "GET", "/latest/meta-data/vpc-id", map[string]string{HeaderToken: tok}); code != 200 || body != "vpc-a" {
		t.Errorf("with token: %d %q", code, body)
	}
	// Bound to the VM: B cannot use A's token.
	if code, _ := do(t, h, vmB, "GET", "/latest/meta-data/vpc-id", map[string]string{HeaderToken: tok}); code != 401 {
		t.Errorf("another VM's token: %d", code)
	}
	if code, _ := do(t, h, vmA, "GET", "/latest/meta-data/vpc-id", map[string]string{HeaderToken: tok[:len(tok)-2] + "AA"}); code != 401 {
		t.Errorf("forged token: %d", code)
	}
	c.t = c.t.Add(61 * time.Second)
	if code, _ := do(t, h, vmA, "GET", "/latest/meta-data/vpc-id", map[string]string{HeaderToken: tok}); code != 401 {
		t.Errorf("expired token: %d", code)
	}
}
