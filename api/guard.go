package api

// What keeps a web browser from driving the API on someone's behalf. The
// API has no cookies, but without a token anyone who can reach it may use
// it, and a browser on the operator's desk can reach 127.0.0.1:
//
//   - DNS rebinding: a page from evil.example re-resolves its own name to
//     127.0.0.1 and then reads and writes the API as "same origin". The
//     browser still sends "Host: evil.example", so only the names the API
//     is reached by are accepted (Options.AllowedHosts).
//   - Cross-site requests: a page POSTs to http://127.0.0.1:8080 with a
//     form or fetch in "no-cors" mode, which allows only text/plain, form
//     and multipart bodies. Writes must say "Content-Type:
//     application/json", which no such request can, and a request whose
//     Origin is not one of the API's own names is refused.
//   - CORS: a preflight (OPTIONS) is never answered with
//     Access-Control-Allow-*, so no other origin is ever let in.

import (
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"

	"go.uber.org/zap"
)

// DefaultAllowedHosts are the Host names accepted when Options.AllowedHosts
// is nil: localhost and the loopback addresses, the machine's host name
// (and its first label), and the host of listen (the API's listen address,
// HOST:PORT) unless it is a wildcard. An address literal that is the
// address the request came in on is always accepted besides.
func DefaultAllowedHosts(listen string) []string {
	out := []string{"localhost", "127.0.0.1", "::1"}
	if name, err := os.Hostname(); err == nil && name != "" {
		out = append(out, name)
		if short, _, ok := strings.Cut(name, "."); ok && short != "" {
			out = append(out, short)
		}
	}
	if host, _, err := net.SplitHostPort(listen); err == nil && host != "" {
		if a, err := netip.ParseAddr(host); err != nil || !a.IsUnspecified() {
			out = append(out, host)
		}
	}
	return out
}

// hostGuard decides which Host (and Origin) names are the API's own.
type hostGuard struct {
	any   bool            // "*": every name
	names map[string]bool // normalized
}

func newHostGuard(allowed []string) hostGuard {
	g := hostGuard{names: map[string]bool{}}
	for _, h := range allowed {
		h = strings.TrimSpace(h)
		if h == "*" {
			g.any = true
			continue
		}
		if h != "" {
			g.names[normalizeHost(h)] = true
		}
	}
	return g
}

// normalizeHost lowers a host name, drops a port, the brackets of an IPv6
// literal and a trailing dot, and writes addresses in their canonical form.
func normalizeHost(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Unmap().String()
	}
	return h
}

// allows says whether host (a Host header or an Origin's host, with or
// without a port) is one of the API's names for request r.
func (g hostGuard) allows(r *http.Request, host string) bool {
	if g.any {
		return true
	}
	h := normalizeHost(host)
	if h == "" {
		return false
	}
	if g.names[h] {
		return true
	}
	// The address the connection came in on: a browser sends it only for
	// a page loaded from that very address, which no rebinding can fake.
	if a, err := netip.ParseAddr(h); err == nil {
		if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			if ap, err := netip.ParseAddrPort(la.String()); err == nil && ap.Addr().Unmap() == a {
				return true
			}
		}
	}
	return false
}

// writeMethod says whether a request carries a body to act on.
func writeMethod(m string) bool {
	return m == http.MethodPost || m == http.MethodPut || m == http.MethodPatch
}

// Guard applies the API's browser protections to next: a Host that is not
// one of opts.AllowedHosts (DefaultAllowedHosts("") when nil) or the
// connection's own address is 403, and so is an Origin that is not one
// of them; OPTIONS (a CORS preflight) is 405 without any Access-Control-*
// header; a POST, PUT or PATCH without "Content-Type: application/json" is
// 415. NewServer applies it; serve puts it in front of what it serves
// beside the API (backups) too.
func Guard(log *zap.Logger, opts Options, next http.Handler) http.Handler {
	if log == nil {
		log = zap.NewNop()
	}
	allowed := opts.AllowedHosts
	if allowed == nil {
		allowed = DefaultAllowedHosts("")
	}
	g := newHostGuard(allowed)
	refuse := func(w http.ResponseWriter, r *http.Request, status int, msg string, fields ...zap.Field) {
		log.Warn("request refused", append([]zap.Field{zap.String("method", r.Method), zap.String("path", r.URL.Path),
			zap.String("remote", r.RemoteAddr), zap.String("why", msg)}, fields...)...)
		writeJSON(w, status, ErrorBody{Error: msg})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.allows(r, r.Host) {
			refuse(w, r, http.StatusForbidden,
				"this API does not answer to Host "+quote(r.Host)+": add the name to vpcflow serve --allowed-hosts if it is one of this machine's",
				zap.String("host", r.Host))
			return
		}
		if origin, ok := r.Header["Origin"]; ok {
			u, err := url.Parse(strings.Join(origin, ""))
			if err != nil || u.Host == "" || !g.allows(r, u.Host) {
				refuse(w, r, http.StatusForbidden, "cross-origin requests are not allowed (Origin "+quote(strings.Join(origin, ""))+")",
					zap.Strings("origin", origin))
				return
			}
		}
		if r.Method == http.MethodOptions {
			w.Header().Set("Allow", "GET, HEAD, POST, PUT, DELETE")
			refuse(w, r, http.StatusMethodNotAllowed, "OPTIONS is not served: the API answers no CORS preflight")
			return
		}
		if writeMethod(r.Method) {
			ct := r.Header.Get("Content-Type")
			mt, _, err := mime.ParseMediaType(ct)
			if err != nil || mt != "application/json" {
				got := "none"
				if ct != "" {
					got = quote(ct)
				}
				refuse(w, r, http.StatusUnsupportedMediaType, "Content-Type must be application/json (got "+got+")")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
