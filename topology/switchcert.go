package topology

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// SwitchCertificate binds an OpenFlow datapath id to the TLS certificate
// its switch presents, by the SHA-256 of the certificate (its DER, as
// `openssl x509 -noout -fingerprint -sha256` prints it). A switch that
// connects over TLS claiming DPID with another certificate is refused.
//
// vpcflow stores one the first time a dpid connects over TLS (Source
// "first-use", with the address it came from), so the binding outlives a
// restart and holds on every replica. An operator can pin a certificate
// before the switch first connects (POST, Source "pinned") and deletes the
// binding when a switch is given a new certificate. A binding cannot be
// updated: delete it and let the switch (or a POST) bind again.
type SwitchCertificate struct {
	ID     uint32 `json:"id"`
	DPID   DPID   `json:"dpid"`
	SHA256 string `json:"sha256"`
	// Source is "first-use" (stored when the switch first connected over
	// TLS) or "pinned" (created through the API).
	Source string `json:"source"`
	// Remote is the address the first-use connection came from.
	Remote string `json:"remote,omitempty"`

	// badDPID is the error of the dpid a request named, when it was not
	// one (SwitchCertificateRef): such a key is refused as the "dpid".
	badDPID string
}

// Sources of a SwitchCertificate.
const (
	CertificateFirstUse = "first-use"
	CertificatePinned   = "pinned"
)

// SwitchCertificateRef is the binding a request names by its dpid text
// (a DELETE): a dpid that does not parse is refused on "dpid".
func SwitchCertificateRef(dpid string) *SwitchCertificate {
	d, err := ParseDPID(dpid)
	if err != nil {
		return &SwitchCertificate{badDPID: err.Error()}
	}
	return &SwitchCertificate{DPID: d}
}

// Fingerprint is the binding's SHA-256 as bytes (zero if SHA256 is not
// 64 hex digits, which the store never holds).
func (c *SwitchCertificate) Fingerprint() [sha256.Size]byte {
	var fp [sha256.Size]byte
	if b, err := hex.DecodeString(c.SHA256); err == nil && len(b) == sha256.Size {
		copy(fp[:], b)
	}
	return fp
}

// Key is the dpid as 16 hex digits.
func (c *SwitchCertificate) Key() string      { return c.DPID.String() }
func (c *SwitchCertificate) ObjectID() uint32 { return c.ID }
func (c *SwitchCertificate) kind() kind       { return switchCertKind{} }
func (c *SwitchCertificate) setID(id uint32)  { c.ID = id }
func (c *SwitchCertificate) clone() Object    { x := *c; return &x }

// SwitchCertificate is the op's object when it is a switch certificate
// binding, else nil.
func (op Op) SwitchCertificate() *SwitchCertificate {
	c, _ := op.Obj.(*SwitchCertificate)
	return c
}

// switchCertKind declares switch certificate bindings: global, one per
// dpid, referring to nothing (a binding may name a switch that never
// connected: a pinned one waits for it).
type switchCertKind struct{}

func (switchCertKind) name() string                    { return "switchcert" }
func (switchCertKind) title() string                   { return "switch certificate" }
func (switchCertKind) plural() string                  { return "switch certificates" }
func (switchCertKind) vpcOf(Object) string             { return "" }
func (switchCertKind) decode(b []byte) (Object, error) { return decodeJSON[SwitchCertificate](b) }
func (switchCertKind) refs(Object) []ref               { return nil }
func (switchCertKind) uniques(Object) []unique         { return nil }

func (k switchCertKind) validate(st *State, o, _ Object) *Error {
	c := o.(*SwitchCertificate)
	if cur, ok := st.get(k, c.Key()); ok {
		b := cur.(*SwitchCertificate)
		return Conflict("dpid", "dpid %s is already bound to certificate %s (%s); delete that binding first", c.DPID, b.SHA256, b.Source)
	}
	return nil
}

func (switchCertKind) keyOf(o Object) (string, *Error) {
	c := o.(*SwitchCertificate)
	if c.badDPID != "" {
		return "", Invalid("dpid", "%s", c.badDPID)
	}
	return c.Key(), nil
}

func (switchCertKind) check(o, old Object) *Error {
	c := o.(*SwitchCertificate)
	if old != nil {
		return Invalid("", "a switch certificate binding cannot be updated; delete it and bind again")
	}
	if c.badDPID != "" {
		return Invalid("dpid", "%s", c.badDPID)
	}
	if c.DPID == 0 {
		return Invalid("dpid", "required: the switch's datapath id (16 hex digits, as ovs-vsctl get Bridge BR datapath_id prints it)")
	}
	fp, err := ParseFingerprint(c.SHA256)
	if err != nil {
		return Invalid("sha256", "%v", err)
	}
	c.SHA256 = fp
	switch c.Source {
	case "":
		c.Source = CertificatePinned
	case CertificatePinned, CertificateFirstUse:
	default:
		return Invalid("source", "%s: want %q or %q", quote(c.Source), CertificatePinned, CertificateFirstUse)
	}
	return nil
}

// ParseFingerprint reads a certificate's SHA-256: 64 hex digits, with or
// without colons between the bytes (as openssl prints it), in any case.
// "sha256 Fingerprint=" before them (openssl's whole line) is allowed.
// It returns them lower case without colons.
func ParseFingerprint(s string) (string, error) {
	t := s
	if _, after, ok := strings.Cut(t, "="); ok {
		t = after // as openssl prints it: "sha256 Fingerprint=AB:CD:…"
	}
	t = strings.ToLower(strings.ReplaceAll(strings.TrimSpace(t), ":", ""))
	if t == "" {
		return "", fmt.Errorf("required: the SHA-256 of the switch's certificate (openssl x509 -in cert.pem -noout -fingerprint -sha256)")
	}
	if b, err := hex.DecodeString(t); err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("%s is not a SHA-256: want 64 hex digits (colons between bytes allowed)", quote(s))
	}
	return t, nil
}

// SwitchCertificate returns the binding of a dpid.
func (st *State) SwitchCertificate(dpid DPID) (SwitchCertificate, bool) {
	return getAs[SwitchCertificate](st, switchCertKind{}, dpid.String())
}

// SwitchCertificates lists every binding, by dpid.
func (st *State) SwitchCertificates() []SwitchCertificate {
	return allAs(st, switchCertKind{}, func(a, b *SwitchCertificate) bool { return a.DPID < b.DPID })
}
