package topology

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
)

// ParseFingerprint takes a SHA-256 as people paste it and writes it one
// way; anything else is refused.
func TestParseFingerprint(t *testing.T) {
	want := strings.Repeat("0a", 31) + "ff"
	for _, in := range []string{
		want,
		strings.ToUpper(want),
		strings.Repeat("0A:", 31) + "FF",
		"sha256 Fingerprint=" + strings.Repeat("0A:", 31) + "FF",
		"SHA256 Fingerprint=" + strings.Repeat("0a:", 31) + "ff\n",
	} {
		if got, err := ParseFingerprint(in); err != nil || got != want {
			t.Errorf("ParseFingerprint(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "ab", strings.Repeat("0a", 33), strings.Repeat("zz", 32), "sha1 Fingerprint=01:02", "=" + strings.Repeat("0a", 31)} {
		if got, err := ParseFingerprint(in); err == nil {
			t.Errorf("ParseFingerprint(%q) = %q, want an error", in, got)
		}
	}
}

// FuzzValidateSwitchCertificate decodes arbitrary JSON into a binding and
// runs it through the store's validation as a create and a delete. It
// never panics, never changes the state (Check), and what it accepts has a
// dpid, a canonical SHA-256 and a known source, and no other binding of
// that dpid.
func FuzzValidateSwitchCertificate(f *testing.F) {
	sum := strings.Repeat("ab", 32)
	for _, s := range []string{
		`{"dpid":"00000000000000aa","sha256":"` + sum + `"}`,
		`{"dpid":"00000000000000bb","sha256":"` + sum + `","source":"first-use","remote":"192.0.2.1:5"}`,
		`{"dpid":170,"sha256":"AB:CD","source":"pinned"}`,
		`{"dpid":"0","sha256":"` + sum + `"}`,
		`{"dpid":"00000000000000cc","sha256":"` + sum + `","source":"other"}`,
		`{}`,
	} {
		f.Add([]byte(s))
	}
	s := newStore(f)
	if _, err := s.Apply(context.Background(), []Op{Create(&SwitchCertificate{DPID: 0xaa, SHA256: sum})}); err != nil {
		f.Fatal(err)
	}
	before := dump(s)
	f.Fuzz(func(t *testing.T, data []byte) {
		var c SwitchCertificate
		if err := json.Unmarshal(data, &c); err != nil {
			return
		}
		ctx := context.Background()
		cc := c
		out, err := s.Check(ctx, []Op{Create(&cc)})
		if err == nil {
			got := out[0].SwitchCertificate()
			b, herr := hex.DecodeString(got.SHA256)
			if got.DPID == 0 || herr != nil || len(b) != 32 || strings.ToLower(got.SHA256) != got.SHA256 || got.ID == 0 ||
				(got.Source != CertificatePinned && got.Source != CertificateFirstUse) {
				t.Fatalf("accepted an invalid binding: %+v", got)
			}
			s.Read(func(st *State) {
				if o, ok := st.SwitchCertificate(got.DPID); ok {
					t.Fatalf("accepted a second binding of dpid %s: %+v, already %+v", got.DPID, got, o)
				}
			})
		} else if _, ok := AsError(err); !ok {
			t.Fatalf("non-*Error from validation: %v", err)
		}
		cd := c
		if _, err := s.Check(ctx, []Op{Delete(&cd, false)}); err != nil {
			if _, ok := AsError(err); !ok {
				t.Fatalf("non-*Error from delete validation: %v", err)
			}
		}
		if after := dump(s); after != before {
			t.Fatalf("Check changed the state")
		}
	})
}
