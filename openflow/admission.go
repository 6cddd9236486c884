package openflow

// Admission control for the OpenFlow listener: how many connections may
// be in their handshake at once (in total and per source address), and
// how long to wait after a failed accept (EMFILE and the like) before
// trying again. Switches that finished their handshake are not counted:
// they are not limited here.

import (
	"net"
	"regexp"
	"sync"
	"time"

	"go.uber.org/zap"
)

// admission counts connections in their handshake.
type admission struct {
	max, perSource int

	mu       sync.Mutex
	total    int
	bySource map[string]int
	rejected uint64
}

func newAdmission(max, perSource int) *admission {
	return &admission{max: max, perSource: perSource, bySource: make(map[string]int)}
}

// sourceOf is the address part of a remote address ("" if none).
func sourceOf(a net.Addr) string {
	if a == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// admit reserves a handshake slot for src. It returns false, and why,
// when the total or src's share is used up.
func (a *admission) admit(src string) (ok bool, why string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.max > 0 && a.total >= a.max:
		a.rejected++
		return false, "too many connections in their handshake"
	case a.perSource > 0 && a.bySource[src] >= a.perSource:
		a.rejected++
		return false, "too many connections in their handshake from this address"
	}
	a.total++
	a.bySource[src]++
	return true, ""
}

// done releases src's slot.
func (a *admission) done(src string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.total--
	if a.bySource[src]--; a.bySource[src] <= 0 {
		delete(a.bySource, src)
	}
}

// counts returns the handshakes in progress and the connections refused
// so far.
func (a *admission) counts() (pending int, rejected uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.total, a.rejected
}

// rateLimitedLog logs at most burst messages per period per key, then one
// line saying how many it left out.
type rateLimitedLog struct {
	period time.Duration
	burst  int

	mu   sync.Mutex
	keys map[string]*rateWindow
}

type rateWindow struct {
	start      time.Time
	n          int
	suppressed int
}

func newRateLimitedLog(period time.Duration, burst int) *rateLimitedLog {
	return &rateLimitedLog{period: period, burst: burst, keys: make(map[string]*rateWindow)}
}

// allow says whether a message under key may be logged now; when a new
// period starts after some were left out, it logs how many first.
func (r *rateLimitedLog) allow(log *zap.Logger, key string) bool {
	r.mu.Lock()
	now := time.Now()
	w := r.keys[key]
	if w == nil {
		if len(r.keys) > 1024 { // forget old keys rather than grow without bound
			for k, v := range r.keys {
				if now.Sub(v.start) > r.period {
					delete(r.keys, k)
				}
			}
		}
		w = &rateWindow{start: now}
		r.keys[key] = w
	}
	var left int
	if now.Sub(w.start) > r.period {
		left = w.suppressed
		w.start, w.n, w.suppressed = now, 0, 0
	}
	ok := w.n < r.burst
	if ok {
		w.n++
	} else {
		w.suppressed++
	}
	r.mu.Unlock()
	if left > 0 {
		log.Warn("similar messages left out", zap.String("about", key), zap.Int("count", left), zap.Duration("within", r.period))
	}
	return ok
}

// acceptBackoff is the wait after the n-th failed accept in a row: 5ms,
// doubling, at most max (as net/http does).
func acceptBackoff(n int, max time.Duration) time.Duration {
	d := 5 * time.Millisecond
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}

// errorClass is an error's text without the addresses and ports in it, so
// that one kind of failure from one peer is one rate-limit key.
func errorClass(addrs *regexp.Regexp, err error) string {
	return addrs.ReplaceAllString(err.Error(), "ADDR")
}

func addrPattern() *regexp.Regexp {
	return regexp.MustCompile(`\[[0-9a-fA-F:.]+\]:\d+|\d+\.\d+\.\d+\.\d+:\d+`)
}
