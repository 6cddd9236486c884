package api

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"reflect"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/controller"
	"github.com/vpcflow/vpcflow/topology"
)

type server struct {
	// fields caches structFields by request type (reflect.Type → map).
	fields sync.Map
	log    *zap.Logger
	b      Backend
	opts   Options
	router *mux.Router
	// tokenSum is the SHA-256 of opts.Token, when set.
	tokenSum [sha256.Size]byte
	spec     openAPIJSON // GET /v1/openapi.json
}

// NewServer returns the REST API over b.
func NewServer(log *zap.Logger, b Backend, opts Options) http.Handler {
	if log == nil {
		log = zap.NewNop()
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = DefaultRequestTimeout
	}
	s := &server{log: log, b: b, opts: opts}
	if opts.Token != "" {
		s.tokenSum = sha256.Sum256([]byte(opts.Token))
	}
	r := mux.NewRouter()
	s.router = r
	routes := []route{
		{"/healthz", http.MethodGet, s.health},
		{"/readyz", http.MethodGet, s.ready},
		{"/v1/switches", http.MethodGet, s.listSwitches},
		{"/v1/switches/{dpid}/flows", http.MethodGet, s.listFlows},
		{"/v1/drops", http.MethodGet, s.listDrops},
		{"/v1/drift", http.MethodGet, s.getDrift},
		{"/v1/switches/{dpid}/flush", http.MethodPost, s.flushSwitch},
	}
	for _, rs := range resources() {
		routes = append(routes, s.routes(rs)...)
	}
	routes = append(routes, s.observeRoutes()...)
	routes = append(routes, s.storeRoutes()...)
	for _, rt := range routes {
		r.HandleFunc(rt.path, rt.h).Methods(rt.method)
	}
	r.HandleFunc("/healthz", s.health).Methods(http.MethodHead)
	r.HandleFunc("/readyz", s.ready).Methods(http.MethodHead)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		writeJSON(w, http.StatusNotFound, ErrorBody{Error: fmt.Sprintf("no such route: %s %s", req.Method, req.URL.Path)})
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(s.methodNotAllowed)
	r.Use(s.nameRoute)
	if opts.routerHook != nil {
		opts.routerHook(r)
	}
	return s.observeRequests(s.logRequests(s.recoverPanics(Guard(log, opts, s.withTimeout(s.authenticate(r))))))
}

// withTimeout bounds the request by Options.RequestTimeout, or by the
// shorter X-Request-Timeout the client asked for.
func (s *server) withTimeout(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := s.opts.RequestTimeout
		if v := r.Header.Get(TimeoutHeader); v != "" {
			asked, err := parseTimeout(v)
			if err != nil {
				writeJSON(w, http.StatusBadRequest, ErrorBody{Error: fmt.Sprintf("%s %s: %v", TimeoutHeader, quote(v), err)})
				return
			}
			d = min(d, asked)
		}
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// parseTimeout reads a duration ("4.5s", "500ms") or a number of seconds.
func parseTimeout(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		secs, ferr := strconv.ParseFloat(v, 64)
		if ferr != nil || math.IsNaN(secs) || secs > math.MaxInt64/float64(time.Second) {
			return 0, errors.New("want a duration such as 4.5s, or seconds")
		}
		d = time.Duration(secs * float64(time.Second))
	}
	if d <= 0 {
		return 0, errors.New("want a duration above 0")
	}
	return d, nil
}

// ---- middleware ----

type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (s *server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		s.log.Info("http request",
			zap.String("method", r.Method),
			zap.String("path", r.URL.Path),
			zap.Int("status", rec.status),
			zap.Duration("duration", time.Since(start)),
			zap.Int64("bytes", rec.bytes),
			zap.String("remote", r.RemoteAddr))
	})
}

// errBadToken is the message of every 401.
const errBadToken = "missing or invalid bearer token"

// authenticate requires "Authorization: Bearer TOKEN" on every request
// except GET and HEAD /healthz and /readyz, when Options.Token is set. Unknown routes
// are refused too, so that nobody learns what exists without the token.
func (s *server) authenticate(next http.Handler) http.Handler {
	if s.opts.Token == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if (r.URL.Path == "/healthz" || r.URL.Path == "/readyz") && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			// /readyz gives its reasons only with the token (ready).
			next.ServeHTTP(w, r)
			return
		}
		if !s.validToken(r.Header.Get("Authorization")) {
			w.Header().Set("WWW-Authenticate", "Bearer")
			writeJSON(w, http.StatusUnauthorized, ErrorBody{Error: errBadToken})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// validToken checks an Authorization header value. The scheme is
// case-insensitive (RFC 7235). The tokens are compared as SHA-256 sums in
// constant time, so neither their content nor their length leaks through
// timing.
func (s *server) validToken(header string) bool {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return false
	}
	sum := sha256.Sum256([]byte(tok))
	return subtle.ConstantTimeCompare(sum[:], s.tokenSum[:]) == 1
}

func (s *server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("panic in HTTP handler", zap.String("method", r.Method), zap.String("path", r.URL.Path),
				zap.Any("panic", v), zap.ByteString("stack", debug.Stack()))
			writeJSON(w, http.StatusInternalServerError, ErrorBody{Error: "internal error"})
		}()
		next.ServeHTTP(w, r)
	})
}

// methodNotAllowed answers 405 with the Allow header.
func (s *server) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		var match mux.RouteMatch
		if s.router.Match(probe, &match) && match.MatchErr == nil {
			allowed = append(allowed, m)
		}
	}
	if len(allowed) > 0 {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
	}
	writeJSON(w, http.StatusMethodNotAllowed, ErrorBody{Error: fmt.Sprintf("method %s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allowed, ", "))})
}

// ---- responses ----

func writeJSON(w http.ResponseWriter, status int, v any) {
	if rv := reflect.ValueOf(v); streamable(rv) {
		writeJSONList(w, status, rv)
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(ErrorBody{Error: "internal error: encoding the response: " + err.Error()})
	}
	writeJSONHeader(w, status)
	_, _ = w.Write(append(b, '\n'))
}

// writeJSONHeader sends status with the headers of a JSON body.
func writeJSONHeader(w http.ResponseWriter, status int) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
}

// streamMin is the length from which writeJSON encodes a list element by
// element: json.Marshal of 100,000 hosts built a 40 MB body in a buffer
// doubled up to 64 MB and copied twice, ~250 MB of garbage whose
// collection then delayed the controller's changes (issue 17).
const streamMin = 256

// streamable says whether rv is a list writeJSONList writes as
// json.Marshal would: a slice of streamMin elements or more, not bytes
// (base64) and not a type that encodes itself.
func streamable(rv reflect.Value) bool {
	if rv.Kind() != reflect.Slice || rv.Len() < streamMin || rv.Type().Elem().Kind() == reflect.Uint8 {
		return false
	}
	t := rv.Type()
	for _, i := range []reflect.Type{reflect.TypeFor[json.Marshaler](), reflect.TypeFor[encoding.TextMarshaler]()} {
		if t.Implements(i) || reflect.PointerTo(t).Implements(i) {
			return false
		}
	}
	return true
}

// writeJSONList writes list rv as json.Marshal would, one element at a
// time through a buffer. The first element is encoded before the status
// is sent, so a list whose type cannot be encoded gets the 500 a whole
// one would; a later element that fails (it cannot: same type) ends the
// body short, so no client takes it for a whole list.
func writeJSONList(w http.ResponseWriter, status int, rv reflect.Value) {
	// Elements by address, as json.Marshal of the slice sees them (a
	// MarshalJSON on the pointer applies). Hosts (with their attachment)
	// and route entries write their own JSON into one reused buffer,
	// chosen by concrete type: HostInfo embeds Host, and an interface
	// would have written the host without its attachment.
	var scratch []byte
	encode := func(i int) (b []byte, err error) {
		e := rv.Index(i).Addr().Interface()
		if h, ok := e.(*HostInfo); ok {
			scratch, err = h.appendJSON(scratch[:0])
			return scratch, err
		}
		if b, ok := topology.AppendObjectJSON(scratch[:0], e); ok {
			scratch = b
			return b, nil
		}
		return json.Marshal(e)
	}
	first, err := encode(0)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, ErrorBody{Error: "internal error: encoding the response: " + err.Error()})
		return
	}
	writeJSONHeader(w, status)
	bw := bufio.NewWriterSize(w, 64<<10)
	_ = bw.WriteByte('[')
	_, _ = bw.Write(first)
	for i := 1; i < rv.Len(); i++ {
		b, err := encode(i)
		if err != nil {
			return
		}
		_ = bw.WriteByte(',')
		_, _ = bw.Write(b)
	}
	_, _ = bw.WriteString("]\n")
	_ = bw.Flush()
}

// writeError maps err to a status code and writes it as JSON.
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var re *requestError
	switch {
	case errors.As(err, &re):
		writeJSON(w, re.status, ErrorBody{Error: re.msg, Field: re.field})
		return
	case errors.Is(err, controller.ErrUnknownSwitch):
		writeJSON(w, http.StatusNotFound, ErrorBody{Error: err.Error(), Field: "dpid"})
		return
	}
	if te, ok := topology.AsError(err); ok {
		writeJSON(w, statusOf(te.Kind), ErrorBody{Error: te.Msg, Field: te.Field})
		return
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		s.log.Warn("request timed out", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Error(err))
		writeJSON(w, http.StatusGatewayTimeout, ErrorBody{Error: err.Error()})
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; nobody reads this.
		writeJSON(w, http.StatusServiceUnavailable, ErrorBody{Error: err.Error()})
	default:
		s.log.Error("internal error", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Error(err))
		writeJSON(w, http.StatusInternalServerError, ErrorBody{Error: "internal error: " + err.Error()})
	}
}

func notFound(field, format string, args ...any) error {
	return topology.NotFound(field, format, args...)
}

// location is the URL of a created object.
func location(parts ...string) string {
	var b strings.Builder
	b.WriteString("/v1")
	for _, p := range parts {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(p))
	}
	return b.String()
}

// cascadeParam reads the optional ?cascade=true|false of a delete.
func cascadeParam(r *http.Request) (bool, *requestError) {
	vals, ok := r.URL.Query()["cascade"]
	if !ok {
		return false, nil
	}
	if len(vals) != 1 {
		return false, badRequest("cascade", "given %d times; give it once, true or false", len(vals))
	}
	switch vals[0] {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, badRequest("cascade", "%q is not a boolean: want true or false", vals[0])
}

// apply runs ops on the backend. The result has one op per op in ops,
// except that a cascading delete is followed by the deletes of its
// dependents.
func (s *server) apply(r *http.Request, ops []topology.Op) ([]topology.Op, error) {
	out, err := s.b.Apply(r.Context(), ops)
	var ue *controller.UnconfirmedError
	if err != nil && (!errors.As(err, &ue) || len(out) == 0) {
		return nil, err
	}
	cascades := false
	for _, op := range ops {
		cascades = cascades || op.Cascade
	}
	if len(out) != len(ops) && (!cascades || len(out) < len(ops)) {
		return nil, fmt.Errorf("backend returned %d results for %d changes", len(out), len(ops))
	}
	return out, err
}

// stored says whether err from apply means "stored, but not confirmed by
// every switch" (a 202), and writes that answer with obj (one object),
// objs (several) or neither.
func (s *server) stored(w http.ResponseWriter, r *http.Request, err error, obj any, objs []any) bool {
	var ue *controller.UnconfirmedError
	if !errors.As(err, &ue) {
		return false
	}
	s.log.Warn("change stored but not confirmed by every switch", zap.String("method", r.Method),
		zap.String("path", r.URL.Path), zap.Error(ue))
	writeJSON(w, http.StatusAccepted, AcceptedBody{Message: ue.Error(), Object: obj, Objects: objs, Unconfirmed: ue.Switches})
	return true
}

// ---- handlers ----

func (s *server) health(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, HealthBody{Status: "ok"})
}

// ready is GET /readyz: ready when the store takes changes, every OVSDB
// endpoint (--ovsdb and the chassis's) is connected, and every connected
// switch is resolved through OVSDB (when there is an OVSDB to resolve it)
// and reconciled. 503 lists what is not.
func (s *server) ready(w http.ResponseWriter, r *http.Request) {
	st := s.b.Status(r.Context())
	body := ReadyBody{Store: "open", OVSDB: st.OVSDB, Switches: st.Switches}
	if st.StoreError != "" {
		body.Store = st.StoreError
		body.Reasons = append(body.Reasons, "store: "+st.StoreError)
	}
	for _, e := range st.OVSDB {
		if e.Connected() {
			continue
		}
		what := "OVSDB " + e.Endpoint
		if len(e.Chassis) > 0 && !e.Flag {
			what += " (chassis " + strings.Join(e.Chassis, ", ") + ")"
		}
		why := e.State
		if e.LastError != "" {
			why += ": " + e.LastError
		}
		if e.Failures > 0 {
			why += fmt.Sprintf(" (%d failed attempts)", e.Failures)
		}
		body.Reasons = append(body.Reasons, what+" is not connected: "+why)
	}
	for _, sw := range st.Switches {
		switch {
		case sw.Bridge == "" && len(st.OVSDB) > 0:
			body.Reasons = append(body.Reasons, fmt.Sprintf("switch %s (from %s) is connected over OpenFlow but no OVSDB reports a bridge with this datapath id: hosts attached by bridge or chassis cannot be found on it", sw.DPID, sw.Remote))
		case !sw.Reconciled:
			body.Reasons = append(body.Reasons, fmt.Sprintf("switch %s (from %s) is connected but its flows are not reconciled yet", sw.DPID, sw.Remote))
		}
	}
	status := http.StatusOK
	body.Status = "ready"
	if len(body.Reasons) > 0 {
		status = http.StatusServiceUnavailable
		body.Status = "not ready"
	}
	if s.opts.Token != "" && !s.validToken(r.Header.Get("Authorization")) {
		body = ReadyBody{Status: body.Status}
	}
	writeJSON(w, status, body)
}

func (s *server) listSwitches(w http.ResponseWriter, r *http.Request) {
	p, rerr := parsePage(r)
	if rerr != nil {
		s.writeError(w, r, rerr)
		return
	}
	sws := paginate(w, r, p, s.b.Switches(), func(x *controller.SwitchInfo) string { return x.DPID.String() })
	out := make([]SwitchView, len(sws))
	for i, sw := range sws {
		out[i] = SwitchView{SwitchInfo: sw, OVSDBResolved: sw.Bridge != ""}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) listDrops(w http.ResponseWriter, r *http.Request) {
	report, err := s.b.Drops(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, report)
}

// nonNil makes nil slices encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
