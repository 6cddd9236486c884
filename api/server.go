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
	routes := []struct {
		path, method string
		h            http.HandlerFunc
	}{
		{"/healthz", http.MethodGet, s.health},
		{"/v1/vpcs", http.MethodGet, s.listVPCs},
		{"/v1/vpcs", http.MethodPost, s.createVPC},
		{"/v1/vpcs/{vpc}", http.MethodGet, s.getVPC},
		{"/v1/vpcs/{vpc}", http.MethodDelete, s.deleteVPC},
		{"/v1/vpcs/{vpc}/vswitches", http.MethodGet, s.listVSwitches},
		{"/v1/vpcs/{vpc}/vswitches", http.MethodPost, s.createVSwitch},
		{"/v1/vpcs/{vpc}/vswitches/{name}", http.MethodGet, s.getVSwitch},
		{"/v1/vpcs/{vpc}/vswitches/{name}", http.MethodDelete, s.deleteVSwitch},
		{"/v1/vpcs/{vpc}/hosts", http.MethodGet, s.listHosts},
		{"/v1/vpcs/{vpc}/hosts", http.MethodPost, s.createHosts},
		{"/v1/vpcs/{vpc}/hosts/{name}", http.MethodGet, s.getHost},
		{"/v1/vpcs/{vpc}/hosts/{name}", http.MethodDelete, s.deleteHost},
		{"/v1/vpcs/{vpc}/subnets", http.MethodGet, s.listSubnets},
		{"/v1/vpcs/{vpc}/subnets", http.MethodPost, s.createSubnets},
		{"/v1/vpcs/{vpc}/subnets/{name}", http.MethodGet, s.getSubnet},
		{"/v1/vpcs/{vpc}/subnets/{name}", http.MethodPut, s.updateSubnet},
		{"/v1/vpcs/{vpc}/subnets/{name}", http.MethodDelete, s.deleteSubnet},
		{"/v1/chassis", http.MethodGet, s.listChassis},
		{"/v1/chassis", http.MethodPost, s.createChassis},
		{"/v1/chassis/{name}", http.MethodGet, s.getChassis},
		{"/v1/chassis/{name}", http.MethodDelete, s.deleteChassis},
		{"/v1/switches", http.MethodGet, s.listSwitches},
		{"/v1/switches/{dpid}/flows", http.MethodGet, s.listFlows},
		{"/v1/drops", http.MethodGet, s.listDrops},
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

func (s *server) listVPCs(w http.ResponseWriter, r *http.Request) {
	var out []topology.VPC
	s.b.Read(func(st *topology.State) { out = st.VPCs() })
	writeJSON(w, http.StatusOK, nonNil(out))
}

func (s *server) createVPC(w http.ResponseWriter, r *http.Request) {
	body, rerr := readBody(w, r, s.opts.MaxBodyBytes)
	if rerr != nil {
		s.writeError(w, r, rerr)
		return
	}
	var req VPCRequest
	if rerr := decodeObject(body, &req); rerr != nil {
		s.writeError(w, r, rerr)
		return
	}
	v, rerr := req.toVPC()
	if rerr != nil {
		s.writeError(w, r, rerr)
		return
	}
	out, err := s.apply(r, []topology.Op{{Kind: topology.OpCreate, VPC: &v}})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", location("vpcs", out[0].VPC.Name))
	writeJSON(w, http.StatusCreated, out[0].VPC)
}

// withVPC checks that the URL's VPC exists, then runs fn with the state.
func (s *server) withVPC(w http.ResponseWriter, r *http.Request, fn func(st *topology.State, vpc string) (any, error)) {
	vpc := mux.Vars(r)["vpc"]
	var out any
	var err error
	s.b.Read(func(st *topology.State) {
		if _, ok := st.VPC(vpc); !ok {
			err = notFound("vpc", "VPC %s does not exist", quote(vpc))
			return
		}
		out, err = fn(st, vpc)
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) getVPC(w http.ResponseWriter, r *http.Request) {
	s.withVPC(w, r, func(st *topology.State, vpc string) (any, error) {
		v, _ := st.VPC(vpc)
		return v, nil
	})
}

func (s *server) deleteVPC(w http.ResponseWriter, r *http.Request) {
	s.deleteOp(w, r, topology.Op{Kind: topology.OpDelete, VPC: &topology.VPC{Name: mux.Vars(r)["vpc"]}})
}

func (s *server) listVSwitches(w http.ResponseWriter, r *http.Request) {
	s.withVPC(w, r, func(st *topology.State, vpc string) (any, error) {
		return nonNil(st.VSwitches(vpc)), nil
	})
}

func (s *server) getVSwitch(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["name"]
	s.withVPC(w, r, func(st *topology.State, vpc string) (any, error) {
		v, ok := st.VSwitch(vpc, name)
		if !ok {
			return nil, notFound("name", "vSwitch %s does not exist in VPC %q", quote(name), vpc)
		}
		return v, nil
	})
}

func (s *server) createVSwitch(w http.ResponseWriter, r *http.Request) {
	vpc := mux.Vars(r)["vpc"]
	body, rerr := readBody(w, r, s.opts.MaxBodyBytes)
	if rerr != nil {
		s.writeError(w, r, rerr)
		return
	}
	var req VSwitchRequest
	if rerr := decodeObject(body, &req); rerr != nil {
		s.writeError(w, r, rerr)
		return
	}
	v, rerr := req.toVSwitch(vpc)
	if rerr != nil {
		s.writeError(w, r, rerr)
		return
	}
	out, err := s.apply(r, []topology.Op{{Kind: topology.OpCreate, VSwitch: &v}})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", location("vpcs", vpc, "vswitches", out[0].VSwitch.Name))
	writeJSON(w, http.StatusCreated, out[0].VSwitch)
}

func (s *server) deleteVSwitch(w http.ResponseWriter, r *http.Request) {
	v := mux.Vars(r)
	s.deleteOp(w, r, topology.Op{Kind: topology.OpDelete, VSwitch: &topology.VSwitch{VPC: v["vpc"], Name: v["name"]}})
}

// deleteOp runs a delete. ?cascade=true also deletes what the object
// holds (see topology.Op.Cascade); a subnet holds nothing, so it accepts
// the parameter and nothing changes.
func (s *server) deleteOp(w http.ResponseWriter, r *http.Request, op topology.Op) {
	cascade, rerr := cascadeParam(r)
	if rerr != nil {
		s.writeError(w, r, rerr)
		return
	}
	op.Cascade = cascade
	if _, err := s.apply(r, []topology.Op{op}); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) listHosts(w http.ResponseWriter, r *http.Request) {
	s.withVPC(w, r, func(st *topology.State, vpc string) (any, error) {
		return nonNil(st.Hosts(vpc)), nil
	})
}

func (s *server) getHost(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["name"]
	s.withVPC(w, r, func(st *topology.State, vpc string) (any, error) {
		h, ok := st.Host(vpc, name)
		if !ok {
			return nil, notFound("name", "host %s does not exist in VPC %q", quote(name), vpc)
		}
		return h, nil
	})
}

// lookupMAC finds the MAC of a host's interface in OVSDB: the
// --ovsdb servers' for bridge+interface, the chassis's for
// chassis+interface.
func (s *server) lookupMAC(h topology.Host) (topology.MAC, *requestError) {
	if h.Chassis != "" {
		if hw, ok := s.b.ChassisInterfaceMAC(h.Chassis, h.Interface); ok && len(hw) > 0 {
			return topology.MAC(hw), nil
		}
		exists := false
		s.b.Read(func(st *topology.State) { _, exists = st.Chassis(h.Chassis) })
		if !exists {
			return nil, &requestError{status: http.StatusNotFound, field: "chassis", msg: fmt.Sprintf("chassis %s does not exist", quote(h.Chassis))}
		}
		return nil, badRequest("mac", "required: the OVSDB of chassis %s has no external_ids:attached-mac for interface %s on its bridge", quote(h.Chassis), quote(h.Interface))
	}
	if hw, ok := s.b.InterfaceMAC(h.Bridge, h.Interface); ok && len(hw) > 0 {
		return topology.MAC(hw), nil
	}
	return nil, badRequest("mac", "required: OVSDB has no external_ids:attached-mac for %s/%s", h.Bridge, h.Interface)
}

// createHosts takes one host object or an array of them (all or none).
func (s *server) createHosts(w http.ResponseWriter, r *http.Request) {
	vpc := mux.Vars(r)["vpc"]
	s.createBatch(w, r, func(data []byte) (topology.Op, *requestError) {
		var req hostBody
		if rerr := decodeObject(data, &req); rerr != nil {
			return topology.Op{}, rerr
		}
		h, rerr := req.toHost(vpc, s.lookupMAC)
		if rerr != nil {
			return topology.Op{}, rerr
		}
		return topology.Op{Kind: topology.OpCreate, Host: &h}, nil
	}, func(op topology.Op) (any, string) {
		return op.Host, location("vpcs", vpc, "hosts", op.Host.Name)
	})
}

func (s *server) createSubnets(w http.ResponseWriter, r *http.Request) {
	vpc := mux.Vars(r)["vpc"]
	s.createBatch(w, r, func(data []byte) (topology.Op, *requestError) {
		var req SubnetRequest
		if rerr := decodeObject(data, &req); rerr != nil {
			return topology.Op{}, rerr
		}
		sub, rerr := req.toSubnet(vpc)
		if rerr != nil {
			return topology.Op{}, rerr
		}
		return topology.Op{Kind: topology.OpCreate, Subnet: &sub}, nil
	}, func(op topology.Op) (any, string) {
		return op.Subnet, location("vpcs", vpc, "subnets", op.Subnet.Name)
	})
}

// createBatch reads an object or an array of objects, converts each with
// parse, applies them in one Backend.Apply and answers 201 with the object
// or the array.
func (s *server) createBatch(w http.ResponseWriter, r *http.Request,
	parse func([]byte) (topology.Op, *requestError), result func(topology.Op) (any, string)) {
	body, rerr := readBody(w, r, s.opts.MaxBodyBytes)
	if rerr != nil {
		s.writeError(w, r, rerr)
		return
	}
	if !isArray(body) {
		op, rerr := parse(body)
		if rerr != nil {
			s.writeError(w, r, rerr)
			return
		}
		out, err := s.apply(r, []topology.Op{op})
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		obj, loc := result(out[0])
		w.Header().Set("Location", loc)
		writeJSON(w, http.StatusCreated, obj)
		return
	}
	elems, rerr := decodeArray(body)
	if rerr != nil {
		s.writeError(w, r, rerr)
		return
	}
	ops := make([]topology.Op, len(elems))
	for i, e := range elems {
		op, rerr := parse(e)
		if rerr != nil {
			s.writeError(w, r, withIndex(rerr, i))
			return
		}
		ops[i] = op
	}
	out, err := s.apply(r, ops)
	if err != nil {
		// The store prefixes fields with "[i]." only for batches of more
		// than one; an array is always a batch to the client.
		if te, ok := topology.AsError(err); ok && len(ops) == 1 {
			err = withIndex(&requestError{status: statusOf(te.Kind), field: te.Field, msg: te.Msg}, 0)
		}
		s.writeError(w, r, err)
		return
	}
	objs := make([]any, len(out))
	for i, op := range out {
		objs[i], _ = result(op)
	}
	writeJSON(w, http.StatusCreated, objs)
}

func statusOf(k topology.ErrorKind) int {
	switch k {
	case topology.ErrNotFound:
		return http.StatusNotFound
	case topology.ErrConflict:
		return http.StatusConflict
	}
	return http.StatusBadRequest
}

func (s *server) deleteHost(w http.ResponseWriter, r *http.Request) {
	v := mux.Vars(r)
	s.deleteOp(w, r, topology.Op{Kind: topology.OpDelete, Host: &topology.Host{VPC: v["vpc"], Name: v["name"]}})
}

func (s *server) listSubnets(w http.ResponseWriter, r *http.Request) {
	s.withVPC(w, r, func(st *topology.State, vpc string) (any, error) {
		return nonNil(st.Subnets(vpc)), nil
	})
}

func (s *server) getSubnet(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["name"]
	s.withVPC(w, r, func(st *topology.State, vpc string) (any, error) {
		sub, ok := st.Subnet(vpc, name)
		if !ok {
			return nil, notFound("name", "subnet %s does not exist in VPC %q", quote(name), vpc)
		}
		return sub, nil
	})
}

func (s *server) updateSubnet(w http.ResponseWriter, r *http.Request) {
	v := mux.Vars(r)
	body, rerr := readBody(w, r, s.opts.MaxBodyBytes)
	if rerr != nil {
		s.writeError(w, r, rerr)
		return
	}
	var req SubnetUpdateRequest
	if rerr := decodeObject(body, &req); rerr != nil {
		s.writeError(w, r, rerr)
		return
	}
	sub, rerr := req.toSubnet(v["vpc"], v["name"])
	if rerr != nil {
		s.writeError(w, r, rerr)
		return
	}
	out, err := s.apply(r, []topology.Op{{Kind: topology.OpUpdate, Subnet: &sub}})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out[0].Subnet)
}

func (s *server) deleteSubnet(w http.ResponseWriter, r *http.Request) {
	v := mux.Vars(r)
	s.deleteOp(w, r, topology.Op{Kind: topology.OpDelete, Subnet: &topology.Subnet{VPC: v["vpc"], Name: v["name"]}})
}

func (s *server) listChassis(w http.ResponseWriter, r *http.Request) {
	var out []topology.Chassis
	s.b.Read(func(st *topology.State) { out = st.AllChassis() })
	writeJSON(w, http.StatusOK, nonNil(out))
}

func (s *server) getChassis(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["name"]
	var c topology.Chassis
	var ok bool
	s.b.Read(func(st *topology.State) { c, ok = st.Chassis(name) })
	if !ok {
		s.writeError(w, r, notFound("name", "chassis %s does not exist", quote(name)))
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// createChassis registers a chassis. The backend configures its bridge
// before storing it; one it cannot reach is refused (400 on "ovsdb").
func (s *server) createChassis(w http.ResponseWriter, r *http.Request) {
	body, rerr := readBody(w, r, s.opts.MaxBodyBytes)
	if rerr != nil {
		s.writeError(w, r, rerr)
		return
	}
	var req ChassisRequest
	if rerr := decodeObject(body, &req); rerr != nil {
		s.writeError(w, r, rerr)
		return
	}
	c, rerr := req.toChassis()
	if rerr != nil {
		s.writeError(w, r, rerr)
		return
	}
	out, err := s.apply(r, []topology.Op{{Kind: topology.OpCreate, Chassis: &c}})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", location("chassis", out[0].Chassis.Name))
	writeJSON(w, http.StatusCreated, out[0].Chassis)
}

// deleteChassis deletes a chassis; ?cascade=true also deletes the hosts
// attached to it and the subnets routed to them.
func (s *server) deleteChassis(w http.ResponseWriter, r *http.Request) {
	s.deleteOp(w, r, topology.Op{Kind: topology.OpDelete, Chassis: &topology.Chassis{Name: mux.Vars(r)["name"]}})
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
