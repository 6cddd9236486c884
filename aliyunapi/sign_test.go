package aliyunapi

import (
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// The SDK's own test vectors (darabonba-openapi v2 utils/client_test.go):
// our verification computes the same signatures as the SDK's signer.
func TestSignaturesMatchTheSDKVectors(t *testing.T) {
	// GetRPCSignature({"test":"ok"}, method "", "accessKeySecret").
	if got := SignV1("", "accessKeySecret", map[string]string{"test": "ok"}); got != "jHx/oHoHNrbVfhncHEvPdHXZwHU=" {
		t.Errorf("v1 signature %q, want the SDK's jHx/oHoHNrbVfhncHEvPdHXZwHU=", got)
	}
	// GetAuthorization: query {test: ok, empty: ""}, headers x-acs-test
	// given twice (http, https), empty path and method, payload hash as
	// given, key "acesskey", secret "secret".
	r := &http.Request{URL: &url.URL{}, Header: http.Header{"X-Acs-Test": {"http", "https"}}}
	sts, canonical := acs3StringToSign(r, "", map[string]string{"test": "ok", "empty": ""}, []string{"x-acs-test"},
		"55e12e91650d2fec56ec74e1d3e4ddbfce2ef3a65890c2a19ecf88a307e76a23")
	if got := acs3Signature("secret", sts); got != "4ab59fffe3c5738ff8a2729f90cc04fe18b02a4b15b2102cbaf92f9ff3df2ea3" {
		t.Errorf("ACS3 signature %s, want the SDK's 4ab59f…; canonical request:\n%s", got, canonical)
	}
}

func TestPercentEncode(t *testing.T) {
	for in, want := range map[string]string{
		"abcXYZ019-_.~":        "abcXYZ019-_.~",
		"a b":                  "a%20b",
		"a*b":                  "a%2Ab",
		"a+b/c=d&e":            "a%2Bb%2Fc%3Dd%26e",
		"2016-02-23T12:46:24Z": "2016-02-23T12%3A46%3A24Z",
		"中":                    "%E4%B8%AD",
		`["i-1"]`:              "%5B%22i-1%22%5D",
	} {
		if got := percentEncode(in); got != want {
			t.Errorf("percentEncode(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestKeysFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	now := time.Now()
	clock := func() time.Time { return now }
	for name, text := range map[string]string{
		"empty":    "# nothing\n\n",
		"fields":   "onlyid\n",
		"three":    "id secret extra\n",
		"dup":      "a x\na y\n",
		"nonascii": "a s\u00e9cret\n",
	} {
		if _, err := loadKeyFile(zap.NewNop(), write(name, text), clock); err == nil {
			t.Errorf("keys file %q accepted", name)
		}
	}
	if _, err := loadKeyFile(zap.NewNop(), "", clock); err == nil || !strings.Contains(err.Error(), "--aliyun-keys-file") {
		t.Errorf("no keys file: %v", err)
	}
	if _, err := loadKeyFile(zap.NewNop(), filepath.Join(dir, "missing"), clock); err == nil {
		t.Error("missing keys file accepted")
	}
	p := write("good", "# keys\n  id1   secret1  \nid2 secret2\n")
	kf, err := loadKeyFile(zap.NewNop(), p, clock)
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := kf.secret("id1"); !ok || s != "secret1" {
		t.Fatalf("id1: %q %v", s, ok)
	}
	// Rotation: the file changes; the new keys count from the next check.
	write("good", "id3 secret3\n")
	future := now.Add(time.Hour)
	if err := os.Chtimes(p, future, future); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Second)
	if _, ok := kf.secret("id1"); ok {
		t.Error("revoked key id1 still accepted")
	}
	if s, ok := kf.secret("id3"); !ok || s != "secret3" {
		t.Errorf("new key id3: %q %v", s, ok)
	}
	// A broken rewrite keeps the keys read before.
	write("good", "broken\n")
	if err := os.Chtimes(p, future.Add(time.Hour), future.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Second)
	if _, ok := kf.secret("id3"); !ok {
		t.Error("a broken keys file dropped the keys read before")
	}
}
