// Package metadata is vpcflow's instance metadata service, Aliyun's
// 100.100.100.200: GET /latest/meta-data/ and its entries, and the
// hardened mode's tokens (PUT /latest/api/token with
// X-aliyun-ecs-metadata-token-ttl-seconds, then
// X-aliyun-ecs-metadata-token on every request).
//
// It answers from the request's source address only: the pipeline
// rewrites every VM's requests to come from the VM's own link address
// (pipeline.MetadataLinkAddr), chosen by the port they came in by, so a
// VM can never ask as another, even when VPCs overlap. Nothing the request
// says about who sent it is believed.
package metadata

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Instance is what the service tells one VM about itself.
type Instance struct {
	InstanceID  string
	PrivateIPv4 string
	MAC         string
	VPCID       string
	VSwitchID   string
	VSwitchCIDR string
	RegionID    string
	ZoneID      string
	Hostname    string
}

// entries are the meta-data keys and how to read them.
var entries = map[string]func(i *Instance) string{
	"instance-id":        func(i *Instance) string { return i.InstanceID },
	"private-ipv4":       func(i *Instance) string { return i.PrivateIPv4 },
	"mac":                func(i *Instance) string { return i.MAC },
	"vpc-id":             func(i *Instance) string { return i.VPCID },
	"vswitch-id":         func(i *Instance) string { return i.VSwitchID },
	"vswitch-cidr-block": func(i *Instance) string { return i.VSwitchCIDR },
	"region-id":          func(i *Instance) string { return i.RegionID },
	"zone-id":            func(i *Instance) string { return i.ZoneID },
	"hostname":           func(i *Instance) string { return i.Hostname },
}

// Headers of the hardened mode, as on Aliyun.
const (
	HeaderTokenTTL = "X-aliyun-ecs-metadata-token-ttl-seconds"
	HeaderToken    = "X-aliyun-ecs-metadata-token"
	MaxTokenTTL    = 21600
)

// Lookup finds the VM whose requests come from addr; false when none does
// (the request did not come through a VM's metadata flow).
type Lookup func(addr netip.Addr) (Instance, bool)

// Options tune the service.
type Options struct {
	// Hardened requires a token on every meta-data request.
	Hardened bool
	// Now is the clock (time.Now by default).
	Now func() time.Time
}

// Stats counts the requests the service refused.
type Stats struct {
	Answered, Unknown, Refused uint64
}

// Handler is the service.
type Handler struct {
	log    *zap.Logger
	lookup Lookup
	opts   Options
	key    [32]byte

	answered, unknown, refused atomic.Uint64
}

// New returns the service; tokens are signed with a key drawn now, so a
// restart invalidates them (clients ask for a new one on 401, as they
// must when a token expires).
func New(log *zap.Logger, lookup Lookup, opts Options) (*Handler, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	h := &Handler{log: log, lookup: lookup, opts: opts}
	if _, err := rand.Read(h.key[:]); err != nil {
		return nil, fmt.Errorf("metadata token key: %w", err)
	}
	return h, nil
}

// Stats returns the counters.
func (h *Handler) Stats() Stats {
	return Stats{Answered: h.answered.Load(), Unknown: h.unknown.Load(), Refused: h.refused.Load()}
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, code int, why string) {
	h.refused.Add(1)
	h.log.Debug("metadata request refused", zap.String("remote", r.RemoteAddr), zap.String("method", r.Method),
		zap.String("path", r.URL.Path), zap.Int("status", code), zap.String("why", why))
	http.Error(w, http.StatusText(code), code)
}

// ServeHTTP answers one request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		h.fail(w, r, http.StatusForbidden, "no remote address")
		return
	}
	inst, ok := h.lookup(ap.Addr().Unmap())
	if !ok {
		h.unknown.Add(1)
		h.fail(w, r, http.StatusForbidden, "not a VM's link address")
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Server", "vpcflow-metadata")
	switch {
	case r.URL.Path == "/latest/api/token":
		if r.Method != http.MethodPut {
			h.fail(w, r, http.StatusMethodNotAllowed, "token: PUT only")
			return
		}
		if r.Header.Get("X-Forwarded-For") != "" {
			h.fail(w, r, http.StatusForbidden, "token through a proxy")
			return
		}
		ttl, err := strconv.Atoi(r.Header.Get(HeaderTokenTTL))
		if err != nil || ttl < 1 || ttl > MaxTokenTTL {
			h.fail(w, r, http.StatusBadRequest, "bad "+HeaderTokenTTL)
			return
		}
		h.answered.Add(1)
		_, _ = w.Write([]byte(h.token(ap.Addr(), h.opts.Now().Add(time.Duration(ttl)*time.Second))))
		return
	case r.URL.Path == "/latest/meta-data" || strings.HasPrefix(r.URL.Path, "/latest/meta-data/"):
	default:
		h.fail(w, r, http.StatusNotFound, "unknown path")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.fail(w, r, http.StatusMethodNotAllowed, "GET only")
		return
	}
	if tok := r.Header.Get(HeaderToken); tok != "" {
		if !h.validToken(tok, ap.Addr()) {
			h.fail(w, r, http.StatusUnauthorized, "invalid or expired token")
			return
		}
	} else if h.opts.Hardened {
		h.fail(w, r, http.StatusForbidden, "hardened mode: a token is required")
		return
	}
	key := strings.Trim(strings.TrimPrefix(r.URL.Path, "/latest/meta-data"), "/")
	if key == "" {
		keys := make([]string, 0, len(entries))
		for k := range entries {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		h.answered.Add(1)
		_, _ = w.Write([]byte(strings.Join(keys, "\n")))
		return
	}
	get, ok := entries[key]
	if !ok {
		h.fail(w, r, http.StatusNotFound, "unknown meta-data key")
		return
	}
	h.answered.Add(1)
	_, _ = w.Write([]byte(get(&inst)))
}

// token is base64url(expiry unix seconds, 8 bytes | HMAC of the VM's
// link address and the expiry, 16 bytes): bound to the VM, checked
// without state.
func (h *Handler) token(a netip.Addr, exp time.Time) string {
	b := binary.BigEndian.AppendUint64(nil, uint64(exp.Unix()))
	return base64.RawURLEncoding.EncodeToString(append(b, h.mac(a, b)...))
}

func (h *Handler) mac(a netip.Addr, exp []byte) []byte {
	m := hmac.New(sha256.New, h.key[:])
	a4 := a.As16()
	m.Write(a4[:])
	m.Write(exp)
	return m.Sum(nil)[:16]
}

func (h *Handler) validToken(tok string, a netip.Addr) bool {
	if len(tok) > 64 {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) != 24 {
		return false
	}
	if !hmac.Equal(b[8:], h.mac(a, b[:8])) {
		return false
	}
	return h.opts.Now().Unix() < int64(binary.BigEndian.Uint64(b[:8]))
}
