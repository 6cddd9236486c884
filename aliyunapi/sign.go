package aliyunapi

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"sort"
	"strings"
)

// The two ways Aliyun's SDKs sign an RPC request.
const (
	// AlgorithmACS3 is the signature of the current SDKs: the
	// Authorization header over a canonical request.
	AlgorithmACS3 = "ACS3-HMAC-SHA256"
	// SignatureMethodV1 is signature v1 (older SDKs, tea-rpc, aliyungo,
	// Terraform, the aliyun CLI): the Signature parameter over the sorted
	// parameters.
	SignatureMethodV1 = "HMAC-SHA1"
)

// percentEncode is Aliyun's encoding of names and values in what is
// signed: RFC 3986, only A-Z a-z 0-9 - _ . ~ left as they are, UTF-8
// bytes as %XX in capitals.
func percentEncode(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

// canonicalQuery is the parameters sorted by name, each
// "encode(name)=encode(value)", joined by '&'; skip is left out.
func canonicalQuery(params map[string]string, skip string) string {
	names := make([]string, 0, len(params))
	for k := range params {
		if k != skip {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = percentEncode(k) + "=" + percentEncode(params[k])
	}
	return strings.Join(parts, "&")
}

// v1StringToSign is signature v1's string to sign: the method, the
// encoded "/", and the encoded canonical query of every parameter but
// Signature (query and form body together).
func v1StringToSign(method string, params map[string]string) string {
	return method + "&" + percentEncode("/") + "&" + percentEncode(canonicalQuery(params, "Signature"))
}

// v1Signature is base64(HMAC-SHA1(secret + "&", stringToSign)).
func v1Signature(secret, stringToSign string) string {
	m := hmac.New(sha1.New, []byte(secret+"&"))
	m.Write([]byte(stringToSign))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// acs3Auth is a parsed "ACS3-HMAC-SHA256 Credential=…,SignedHeaders=…,Signature=…".
type acs3Auth struct {
	Algorithm     string
	Credential    string
	SignedHeaders []string
	Signature     string
}

// parseACS3 parses an Authorization header; ok is false when it is not
// an ACS3 one at all, err when it is one but malformed.
func parseACS3(header string) (a acs3Auth, ok bool, err *Error) {
	algo, rest, _ := strings.Cut(strings.TrimSpace(header), " ")
	if !strings.HasPrefix(algo, "ACS3-") {
		return a, false, nil
	}
	a.Algorithm = algo
	for _, part := range strings.Split(rest, ",") {
		k, v, found := strings.Cut(strings.TrimSpace(part), "=")
		if !found {
			return a, true, errIncomplete("Authorization: %q is not NAME=VALUE", strings.TrimSpace(part))
		}
		switch k {
		case "Credential":
			a.Credential = v
		case "SignedHeaders":
			for _, h := range strings.Split(v, ";") {
				if h = strings.ToLower(strings.TrimSpace(h)); h != "" {
					a.SignedHeaders = append(a.SignedHeaders, h)
				}
			}
		case "Signature":
			a.Signature = v
		}
	}
	switch {
	case a.Credential == "":
		return a, true, errIncomplete("Authorization has no Credential")
	case len(a.SignedHeaders) == 0:
		return a, true, errIncomplete("Authorization has no SignedHeaders")
	case a.Signature == "":
		return a, true, errIncomplete("Authorization has no Signature")
	}
	return a, true, nil
}

func errIncomplete(format string, args ...any) *Error {
	return newError(http.StatusBadRequest, "IncompleteSignature",
		"The request signature does not conform to Aliyun standards: "+format, args...)
}

// acs3StringToSign builds the canonical request of r (whose query values
// are query, whose body hashes to payloadHash) over the signed headers,
// and returns "ACS3-HMAC-SHA256\n" + hex(sha256(canonical request)).
// host is the Host header, which Go keeps out of r.Header.
func acs3StringToSign(r *http.Request, host string, query map[string]string, signed []string, payloadHash string) (sts, canonical string) {
	names := append([]string(nil), signed...)
	sort.Strings(names)
	var hdrs strings.Builder
	for _, h := range names {
		var vals []string
		if h == "host" {
			vals = []string{strings.TrimSpace(host)}
		} else {
			for _, v := range r.Header.Values(h) {
				vals = append(vals, strings.TrimSpace(v))
			}
			sort.Strings(vals)
		}
		hdrs.WriteString(h + ":" + strings.Join(vals, ",") + "\n")
	}
	uri := r.URL.EscapedPath()
	if uri == "" {
		uri = "/"
	}
	canonical = r.Method + "\n" + uri + "\n" + canonicalQuery(query, "") + "\n" + hdrs.String() + "\n" +
		strings.Join(names, ";") + "\n" + payloadHash
	sum := sha256.Sum256([]byte(canonical))
	return AlgorithmACS3 + "\n" + hex.EncodeToString(sum[:]), canonical
}

// acs3Signature is hex(HMAC-SHA256(secret, stringToSign)).
func acs3Signature(secret, stringToSign string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(stringToSign))
	return hex.EncodeToString(m.Sum(nil))
}

// sameSignature compares signatures in constant time.
func sameSignature(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// SignV1 signs params (which must hold every parameter, including
// AccessKeyId, SignatureMethod, SignatureVersion, Timestamp and
// SignatureNonce) for method, as the v1 clients do, and returns the value
// of Signature. For tests and tools.
func SignV1(method, secret string, params map[string]string) string {
	return v1Signature(secret, v1StringToSign(method, params))
}
