package main

import (
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// connLimiter caps the REST listener's open connections. When the cap is
// reached, the connection that has been waiting longest without a request
// in progress (new, or idle between requests: a slow or idle client) is
// closed to make room; only when every connection is busy with a request
// is the newcomer refused. A flood of idle or slow clients can thus never
// lock out a client that sends its request promptly.
type connLimiter struct {
	net.Listener
	max int
	log *zap.Logger

	mu      sync.Mutex
	conns   map[*limitedConn]*connEntry
	evicted uint64
	refused uint64
	lastLog time.Time
}

type connEntry struct {
	state http.ConnState
	since time.Time
}

type limitedConn struct {
	net.Conn
	l    *connLimiter
	once sync.Once
}

func (c *limitedConn) Close() error {
	c.once.Do(func() { c.l.forget(c) })
	return c.Conn.Close()
}

func newConnLimiter(ln net.Listener, max int, log *zap.Logger) *connLimiter {
	return &connLimiter{Listener: ln, max: max, log: log, conns: make(map[*limitedConn]*connEntry)}
}

func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err // http.Server retries temporary errors (EMFILE) with a pause
		}
		c := &limitedConn{Conn: nc, l: l}
		l.mu.Lock()
		var victim *limitedConn
		if len(l.conns) >= l.max {
			var oldest time.Time
			for vc, e := range l.conns {
				if (e.state == http.StateNew || e.state == http.StateIdle) && (victim == nil || e.since.Before(oldest)) {
					victim, oldest = vc, e.since
				}
			}
			if victim == nil {
				l.refused++
				l.logLocked("REST connection refused: every connection is busy", zap.Int("max", l.max))
				l.mu.Unlock()
				_ = nc.Close()
				continue
			}
			delete(l.conns, victim)
			l.evicted++
			l.logLocked("REST connection limit reached: closed the longest-waiting idle connection", zap.Int("max", l.max),
				zap.String("closed", victim.RemoteAddr().String()), zap.Duration("it_waited", time.Since(oldest)))
		}
		l.conns[c] = &connEntry{state: http.StateNew, since: time.Now()}
		l.mu.Unlock()
		if victim != nil {
			_ = victim.Conn.Close()
		}
		return c, nil
	}
}

// logLocked logs at most once a second, with the running totals.
func (l *connLimiter) logLocked(msg string, fields ...zap.Field) {
	if time.Since(l.lastLog) < time.Second {
		return
	}
	l.lastLog = time.Now()
	l.log.Warn(msg, append(fields, zap.Uint64("evicted_total", l.evicted), zap.Uint64("refused_total", l.refused))...)
}

func (l *connLimiter) forget(c *limitedConn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
}

// connState is the http.Server's ConnState hook.
func (l *connLimiter) connState(nc net.Conn, st http.ConnState) {
	c, ok := nc.(*limitedConn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.conns[c]
	if e == nil {
		return
	}
	switch st {
	case http.StateClosed, http.StateHijacked:
		delete(l.conns, c)
	default:
		e.state, e.since = st, time.Now()
	}
}

// fileLimit is the soft RLIMIT_NOFILE (0 if unknown).
func fileLimit() uint64 {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0
	}
	return r.Cur
}

// autoLimit is a quarter of the file descriptor limit, between lo and hi
// (hi when the limit is unknown), for the caps left at 0 ("auto").
func autoLimit(lo, hi int) int {
	n := fileLimit() / 4
	if n == 0 || n > uint64(hi) {
		return hi
	}
	return max(int(n), lo)
}
