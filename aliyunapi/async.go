package aliyunapi

import (
	"context"
	"crypto/sha256"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/topology"
)

// Route entry states while a change waits for the switches.
const (
	statePending  = "Pending"
	stateDeleting = "Deleting"
)

// routeTracker knows which route entries have a change stored but not yet
// confirmed by every switch: such an entry is Pending (or, being deleted,
// holds its table busy), and while a table has one, Aliyun refuses other
// route entry changes in it (IncorrectRouteEntryStatus).
type routeTracker struct {
	mu    sync.Mutex
	byVPC map[string]map[string]string // VPC name → subnet name → state
}

func newRouteTracker() *routeTracker {
	return &routeTracker{byVPC: map[string]map[string]string{}}
}

// start marks an entry changing; false if the table is busy already.
func (t *routeTracker) start(vpc, name, state string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.byVPC[vpc]) > 0 {
		return false
	}
	t.byVPC[vpc] = map[string]string{name: state}
	return true
}

func (t *routeTracker) done(vpc, name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.byVPC[vpc], name)
	if len(t.byVPC[vpc]) == 0 {
		delete(t.byVPC, vpc)
	}
}

func (t *routeTracker) busy(vpc string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byVPC[vpc]) > 0
}

// status is an entry's state: Pending while its creation waits for the
// switches, else Available.
func (t *routeTracker) status(vpc, name string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byVPC[vpc][name] == statePending {
		return statePending
	}
	return "Available"
}

// applyAsync stores op in the background as Aliyun's asynchronous route
// entry actions do: it returns once the change is stored (committed says
// whether the state shows it), while the switches may still be installing
// it; the entry stays marked (Pending) until Backend.Apply returns, that
// is until every switch confirmed its flows. The caller marked the entry
// with routes.start; the mark is cleared here.
func (c *call) applyAsync(vpc, name string, op topology.Op, committed func(st *topology.State) bool,
	mapErr func(*topology.Error) *Error) *Error {
	s := c.s
	type result struct {
		out []topology.Op
		err error
	}
	done := make(chan result, 1)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(s.ctx, s.opts.ApplyTimeout)
		out, err := s.b.Apply(ctx, []topology.Op{op})
		cancel()
		if err != nil && len(out) > 0 {
			// Stored, but a switch did not confirm: it gets the flows when
			// it reconciles. The entry is reported Available from now on.
			s.log.Warn("route entry stored, but not confirmed by every switch", zap.String("vpc", vpc), zap.String("subnet", name), zap.Error(err))
		}
		s.routes.done(vpc, name)
		done <- result{out, err}
	}()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case res := <-done:
			if res.err != nil && len(res.out) == 0 {
				return c.mapApplyError(res.err, mapErr)
			}
			return nil
		case <-tick.C:
			seen := false
			c.read(func(st *topology.State) { seen = committed(st) })
			if seen {
				return nil
			}
		case <-c.ctx.Done():
			return newError(http.StatusServiceUnavailable, "ServiceUnavailable", "The request was canceled before the change was stored: %v", c.ctx.Err())
		}
	}
}

// clientTokens makes the create actions idempotent by ClientToken, as on
// Aliyun: the same token with the same parameters gives the first answer
// again; with other parameters it is refused.
type clientTokens struct {
	mu sync.Mutex
	m  map[string]clientTokenEntry
}

type clientTokenEntry struct {
	params [32]byte
	resp   any
	at     time.Time
}

// clientTokenTTL is how long a token's answer is kept.
const clientTokenTTL = time.Hour

// idempotent runs fn once per ClientToken.
func (c *call) idempotent(fn func() (any, *Error)) (any, *Error) {
	token := c.p.str("ClientToken")
	if token == "" {
		return fn()
	}
	key := c.accessKey + "\x00" + c.version + "\x00" + c.action + "\x00" + token
	sum := c.paramsSum()
	ct := c.s.tokens
	now := c.s.opts.Now()
	ct.mu.Lock()
	if e, ok := ct.m[key]; ok && now.Sub(e.at) < clientTokenTTL {
		ct.mu.Unlock()
		if e.params != sum {
			return nil, newError(http.StatusBadRequest, "IdempotentParameterMismatch", "The request uses the same client token %q as a previous, but non-identical request.", token)
		}
		return e.resp, nil
	}
	ct.mu.Unlock()
	resp, aerr := fn()
	if aerr != nil {
		return nil, aerr
	}
	ct.mu.Lock()
	for k, e := range ct.m {
		if now.Sub(e.at) >= clientTokenTTL {
			delete(ct.m, k)
		}
	}
	ct.m[key] = clientTokenEntry{params: sum, resp: resp, at: now}
	ct.mu.Unlock()
	return resp, nil
}

// paramsSum hashes the action's own parameters (not the signing ones).
func (c *call) paramsSum() [32]byte {
	skip := map[string]bool{"Signature": true, "SignatureNonce": true, "Timestamp": true, "SignatureMethod": true,
		"SignatureVersion": true, "AccessKeyId": true, "Format": true, "SecurityToken": true}
	names := make([]string, 0, len(c.p))
	for k := range c.p {
		if !skip[k] {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		b.WriteString(k + "\x00" + c.p[k] + "\x00")
	}
	return sha256.Sum256([]byte(b.String()))
}
