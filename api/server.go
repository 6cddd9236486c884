package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/controller"
	"github.com/vpcflow/vpcflow/topology"
)

type server struct {
	log    *zap.Logger
	b      Backend
	opts   Options
	router *mux.Router
	// tokenSum is the SHA-256 of opts.Token, when set.
	tokenSum [sha256.Size]byte
}

// NewServer returns the REST API over b.
func NewServer(log *zap.Logger, b Backend, opts Options) http.Handler {
	if log == nil {
		log = zap.NewNop()
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	s := &server{log: log, b: b, opts: opts}
	if opts.Token != "" {
		s.tokenSum = sha256.Sum256([]byte(opts.Token))
	}
	r := mux.NewRouter()
	s.router = r
	routes := []route{
		{"/healthz", http.MethodGet, s.health},
		{"/v1/switches", http.MethodGet, s.listSwitches},
		{"/v1/switches/{dpid}/flows", http.MethodGet, s.listFlows},
		{"/v1/drops", http.MethodGet, s.listDrops},
		{"/v1/drift", http.MethodGet, s.getDrift},
		{"/v1/switches/{dpid}/flush", http.MethodPost, s.flushSwitch},
	}
	for _, rs := range resources() {
		routes = append(routes, s.routes(rs)...)
	}
	for _, rt := range routes {
		r.HandleFunc(rt.path, rt.h).Methods(rt.method)
	}
	r.HandleFunc("/healthz", s.health).Methods(http.MethodHead)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		writeJSON(w, http.StatusNotFound, ErrorBody{Error: fmt.Sprintf("no such route: %s %s", req.Method, req.URL.Path)})
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(s.methodNotAllowed)
	return s.logRequests(s.recoverPanics(s.authenticate(r)))
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
// except GET and HEAD /healthz, when Options.Token is set. Unknown routes
// are refused too, so that nobody learns what exists without the token.
func (s *server) authenticate(next http.Handler) http.Handler {
	if s.opts.Token == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
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
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(ErrorBody{Error: "internal error: encoding the response: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
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
	if err != nil {
		return nil, err
	}
	cascades := false
	for _, op := range ops {
		cascades = cascades || op.Cascade
	}
	if len(out) != len(ops) && (!cascades || len(out) < len(ops)) {
		return nil, fmt.Errorf("backend returned %d results for %d changes", len(out), len(ops))
	}
	return out, nil
}

// ---- handlers ----

func (s *server) health(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, HealthBody{Status: "ok"})
}

func (s *server) listSwitches(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, nonNil(s.b.Switches()))
}

func (s *server) listDrops(w http.ResponseWriter, r *http.Request) {
	report, err := s.b.Drops(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, report)
}

func (s *server) listFlows(w http.ResponseWriter, r *http.Request) {
	raw := mux.Vars(r)["dpid"]
	dpid, err := topology.ParseDPID(raw)
	if err != nil {
		s.writeError(w, r, badRequest("dpid", "%v", err))
		return
	}
	flows, err := s.b.Flows(r.Context(), dpid)
	if err != nil {
		if errors.Is(err, controller.ErrUnknownSwitch) {
			s.writeError(w, r, notFound("dpid", "switch %s is not connected", dpid))
			return
		}
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, nonNil(flows))
}

// nonNil makes nil slices encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
