// Package aliyunapi serves Alibaba Cloud's own OpenAPI — the RPC-style VPC
// API (2016-04-28) and the ECS API (2014-05-26) — over vpcflow's topology,
// so that software written against Aliyun (the official SDKs, aliyungo and
// flannel's ali-vpc backend, Terraform's alicloud provider, the aliyun
// CLI) drives a local vpcflow unchanged.
//
// It is a second front door to the same objects as the REST API: every
// change goes through the Backend's Apply (the controller in production),
// every read through its Read. Aliyun IDs are derived from the objects'
// store IDs (topology.AliyunID). Requests are verified against the access
// keys of a keys file, signed either way the SDKs sign
// (ACS3-HMAC-SHA256 or HMAC-SHA1 v1), within Aliyun's 15-minute
// timestamp window and with a nonce that is never reused.
//
// docs/aliyun-api.md lists the actions and how they differ from Aliyun.
package aliyunapi

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/topology"
)

// Backend is what the API drives: the controller in production.
type Backend interface {
	// Apply validates, stores and pushes a change, and returns once the
	// switches confirmed it; on an error after the change was stored it
	// returns the applied ops with the error.
	Apply(ctx context.Context, ops []topology.Op) ([]topology.Op, error)
	// Read runs fn with the current topology.
	Read(fn func(st *topology.State))
}

// API versions served.
const (
	VersionVPC = "2016-04-28"
	VersionECS = "2014-05-26"
)

// Options tune the server.
type Options struct {
	// KeysFile is the access keys file (required): one key a line,
	// "ACCESS_KEY_ID ACCESS_KEY_SECRET".
	KeysFile string
	// Region is reported for requests that name none (aliyungo sends no
	// RegionId on route table calls). Default DefaultRegion.
	Region string
	// ApplyTimeout bounds a route entry change waiting for the switches
	// after the answer was sent. Default 2 minutes.
	ApplyTimeout time.Duration
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// DefaultRegion is the region reported when a request names none.
const DefaultRegion = "cn-hangzhou"

// TimestampWindow is how far a request's timestamp may be from now, either
// way, as on Aliyun.
const TimestampWindow = 15 * time.Minute

// maxBody limits a request body (form parameters).
const maxBody = 1 << 20

// maxNonces caps the nonces remembered; past it requests are throttled
// until old ones expire.
const maxNonces = 1 << 20

// Server is the Aliyun API handler.
type Server struct {
	log  *zap.Logger
	b    Backend
	opts Options
	keys *keyFile

	nonceMu    sync.Mutex
	nonces     map[string]time.Time // access key + nonce → when it may be forgotten
	nonceSweep time.Time

	routes  *routeTracker
	created *createdTimes
	sgMu    sync.Mutex // serializes the security group changes that read, then write
	tokens  *clientTokens

	ctx    context.Context // background route entry changes
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns the server. It refuses to start without a usable keys
// file: with no key every request would be refused.
func New(log *zap.Logger, b Backend, opts Options) (*Server, error) {
	if log == nil {
		log = zap.NewNop()
	}
	if opts.Region == "" {
		opts.Region = DefaultRegion
	}
	if opts.ApplyTimeout <= 0 {
		opts.ApplyTimeout = 2 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	keys, err := loadKeyFile(log, opts.KeysFile, opts.Now)
	if err != nil {
		return nil, fmt.Errorf("aliyun API: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		log: log, b: b, opts: opts, keys: keys,
		nonces:  map[string]time.Time{},
		routes:  newRouteTracker(),
		created: &createdTimes{m: map[string]time.Time{}},
		tokens:  &clientTokens{m: map[string]clientTokenEntry{}},
		ctx:     ctx, cancel: cancel,
	}, nil
}

// Close stops the route entry changes still waiting for switches (they
// are stored; the switches get them when they reconcile) and waits for
// them to return.
func (s *Server) Close() {
	s.cancel()
	s.wg.Wait()
}

// call is one request being served.
type call struct {
	s         *Server
	r         *http.Request
	ctx       context.Context
	requestID string
	action    string
	version   string
	p         params
	accessKey string
	region    string
}

type handler func(c *call) (any, *Error)

// actions lists what each version serves. The ECS API carries the VPC
// actions it had before the VPC API existed (aliyungo and flannel use
// them), with the same answers.
func (s *Server) actions(version string) map[string]handler {
	shared := map[string]handler{
		"CreateVpc":           (*call).createVpc,
		"DescribeVpcs":        (*call).describeVpcs,
		"DeleteVpc":           (*call).deleteVpc,
		"CreateVSwitch":       (*call).createVSwitch,
		"DescribeVSwitches":   (*call).describeVSwitches,
		"DeleteVSwitch":       (*call).deleteVSwitch,
		"DescribeVRouters":    (*call).describeVRouters,
		"DescribeRouteTables": (*call).describeRouteTables,
		"CreateRouteEntry":    (*call).createRouteEntry,
		"DeleteRouteEntry":    (*call).deleteRouteEntry,
	}
	switch version {
	case VersionVPC:
		shared["DescribeRouteTableList"] = (*call).describeRouteTableList
		shared["DescribeRouteEntryList"] = (*call).describeRouteEntryList
		return shared
	case VersionECS:
		shared["DescribeInstances"] = (*call).describeInstances
		for name, h := range securityGroupActions() {
			shared[name] = h
		}
		return shared
	}
	return nil
}

// ServeHTTP answers one RPC request: parameters, signature, action.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.opts.Now()
	c := &call{s: s, r: r, ctx: r.Context(), requestID: newRequestID()}
	status := http.StatusOK
	resp, aerr := c.serve()
	var body []byte
	if aerr != nil {
		status = aerr.Status
		body, _ = json.Marshal(errorBody{RequestId: c.requestID, HostId: r.Host, Code: aerr.Code, Message: aerr.Message,
			Recommend: "https://api.aliyun.com/troubleshoot?q=" + url.QueryEscape(aerr.Code) + "&requestId=" + c.requestID})
	} else {
		var err error
		if body, err = json.Marshal(resp); err != nil {
			status = http.StatusInternalServerError
			aerr = errInternal("encoding the answer: %v", err)
			body, _ = json.Marshal(errorBody{RequestId: c.requestID, HostId: r.Host, Code: aerr.Code, Message: aerr.Message})
		}
	}
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.Header().Set("x-acs-request-id", c.requestID)
	w.WriteHeader(status)
	_, _ = w.Write(body)
	fields := []zap.Field{zap.String("action", c.action), zap.String("version", c.version), zap.Int("status", status),
		zap.String("request_id", c.requestID), zap.String("access_key", c.accessKey), zap.String("remote", r.RemoteAddr),
		zap.Duration("duration", s.opts.Now().Sub(start))}
	if aerr != nil {
		s.log.Info("aliyun API request refused", append(fields, zap.String("code", aerr.Code), zap.String("message", aerr.Message))...)
		return
	}
	s.log.Info("aliyun API request", fields...)
}

func (c *call) serve() (resp any, aerr *Error) {
	r := c.r
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		return nil, newError(http.StatusMethodNotAllowed, "UnsupportedHTTPMethod", "The HTTP method %s is not supported: use GET or POST.", r.Method)
	}
	if r.URL.Path != "/" && r.URL.Path != "" {
		return nil, newError(http.StatusNotFound, "InvalidApi.NotFound", "Specified api is not found, please check your url and method: RPC requests go to \"/\", not %q.", r.URL.Path)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, newError(http.StatusBadRequest, "InvalidParameter", "The request body cannot be read: %v", err)
	}
	if len(body) > maxBody {
		return nil, newError(http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "The request body is larger than %d bytes.", maxBody)
	}
	query, aerr := singleValues("query", r.URL.RawQuery)
	if aerr != nil {
		return nil, aerr
	}
	p := params{}
	for k, v := range query {
		p[k] = v
	}
	if len(body) > 0 {
		ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if ct == "application/x-www-form-urlencoded" {
			form, aerr := singleValues("body", string(body))
			if aerr != nil {
				return nil, aerr
			}
			for k, v := range form {
				if _, dup := p[k]; dup {
					return nil, errInvalid(k, "given both in the query and in the body")
				}
				p[k] = v
			}
		}
	}
	c.p = p
	c.action = cmpOr(p["Action"], r.Header.Get("x-acs-action"))
	c.version = cmpOr(p["Version"], r.Header.Get("x-acs-version"))
	if aerr := c.authenticate(query, body); aerr != nil {
		return nil, aerr
	}
	if c.action == "" {
		return nil, errMissingCode("MissingAction", "Action")
	}
	if c.version == "" {
		return nil, errMissingCode("MissingVersion", "Version")
	}
	acts := c.s.actions(c.version)
	if acts == nil {
		return nil, newError(http.StatusBadRequest, "InvalidVersion", "Specified parameter Version %q is not valid: vpcflow serves the VPC API %s and the ECS API %s.", c.version, VersionVPC, VersionECS)
	}
	h, ok := acts[c.action]
	if !ok {
		return nil, newError(http.StatusNotFound, "InvalidApi.NotFound", "Specified api %s is not found in version %s (vpcflow serves the actions listed in docs/aliyun-api.md).", c.action, c.version)
	}
	if f := p["Format"]; f != "" && !strings.EqualFold(f, "json") {
		return nil, errInvalid("Format", "%q is not supported: vpcflow answers JSON only", f)
	}
	c.region = cmpOr(p["RegionId"], c.s.opts.Region)
	if dry, _, _ := p.boolParam("DryRun"); dry {
		return nil, newError(http.StatusBadRequest, "DryRunOperation", "Request validation has been passed with DryRun flag set.")
	}
	return h(c)
}

// singleValues parses a query string; a parameter given twice is refused
// (its signature would be ambiguous).
func singleValues(where, raw string) (map[string]string, *Error) {
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return nil, newError(http.StatusBadRequest, "InvalidParameter", "The request %s is not a valid query string: %v", where, err)
	}
	out := make(map[string]string, len(vals))
	for k, v := range vals {
		if len(v) != 1 {
			return nil, errInvalid(k, "given %d times in the %s; give it once", len(v), where)
		}
		out[k] = v[0]
	}
	return out, nil
}

// authenticate checks the signature (ACS3 or v1), the timestamp window
// and the nonce, and records the nonce. query holds the URL's parameters,
// body the raw body.
func (c *call) authenticate(query map[string]string, body []byte) *Error {
	r := c.r
	auth, isACS3, aerr := parseACS3(r.Header.Get("Authorization"))
	if aerr != nil {
		return aerr
	}
	if isACS3 {
		return c.authenticateACS3(auth, query, body)
	}
	if c.p["Signature"] != "" {
		return c.authenticateV1()
	}
	return newError(http.StatusBadRequest, "IncompleteSignature",
		"The request signature does not conform to Aliyun standards: it carries neither an ACS3-HMAC-SHA256 Authorization header nor a Signature parameter (signature v1).")
}

func (c *call) authenticateACS3(auth acs3Auth, query map[string]string, body []byte) *Error {
	r := c.r
	if auth.Algorithm != AlgorithmACS3 {
		return newError(http.StatusBadRequest, "InvalidSignatureMethod", "The signature algorithm %s is not supported: use %s (or signature v1, %s).", auth.Algorithm, AlgorithmACS3, SignatureMethodV1)
	}
	signed := map[string]bool{}
	for _, h := range auth.SignedHeaders {
		signed[h] = true
	}
	if !signed["host"] {
		return errIncomplete("SignedHeaders must include host")
	}
	for name := range r.Header {
		l := strings.ToLower(name)
		if (strings.HasPrefix(l, "x-acs-") || l == "content-type") && !signed[l] {
			return errIncomplete("header %s is not signed: SignedHeaders must include every x-acs-* header and content-type", l)
		}
	}
	for _, h := range []string{"x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256", "x-acs-action", "x-acs-version"} {
		if r.Header.Get(h) == "" {
			return errMissingCode("MissingParameter", h)
		}
	}
	if aerr := c.checkTimestamp("x-acs-date", r.Header.Get("x-acs-date")); aerr != nil {
		return aerr
	}
	c.accessKey = auth.Credential
	secret, ok := c.s.keys.secret(auth.Credential)
	if !ok {
		return errUnknownKey()
	}
	sum := sha256.Sum256(body)
	payload := hex.EncodeToString(sum[:])
	if got := strings.ToLower(strings.TrimSpace(r.Header.Get("x-acs-content-sha256"))); got != payload {
		return newError(http.StatusBadRequest, "SignatureDoesNotMatch", "Specified signature is not matched with our calculation: x-acs-content-sha256 %s is not the SHA-256 of the body (%s).", got, payload)
	}
	sts, canonical := acs3StringToSign(r, r.Host, query, auth.SignedHeaders, payload)
	if !sameSignature(acs3Signature(secret, sts), strings.ToLower(auth.Signature)) {
		return newError(http.StatusBadRequest, "SignatureDoesNotMatch",
			"Specified signature is not matched with our calculation. server string to sign is:%s (canonical request: %q)", sts, canonical)
	}
	return c.useNonce(r.Header.Get("x-acs-signature-nonce"))
}

func (c *call) authenticateV1() *Error {
	p := c.p
	for _, name := range []string{"AccessKeyId", "SignatureMethod", "Timestamp", "SignatureNonce"} {
		if p[name] == "" {
			return errMissing(name)
		}
	}
	if p["SignatureMethod"] != SignatureMethodV1 {
		return newError(http.StatusBadRequest, "InvalidSignatureMethod", "The signature method %q is not supported: use %s (or the %s Authorization header).", p["SignatureMethod"], SignatureMethodV1, AlgorithmACS3)
	}
	if v := p["SignatureVersion"]; v != "" && v != "1.0" {
		return newError(http.StatusBadRequest, "InvalidSignatureVersion", "The signature version %q is not supported: use 1.0.", v)
	}
	if aerr := c.checkTimestamp("Timestamp", p["Timestamp"]); aerr != nil {
		return aerr
	}
	c.accessKey = p["AccessKeyId"]
	secret, ok := c.s.keys.secret(p["AccessKeyId"])
	if !ok {
		return errUnknownKey()
	}
	sts := v1StringToSign(c.r.Method, p)
	if !sameSignature(v1Signature(secret, sts), p["Signature"]) {
		return newError(http.StatusBadRequest, "SignatureDoesNotMatch",
			"Specified signature is not matched with our calculation. server string to sign is:%s", sts)
	}
	return c.useNonce(p["SignatureNonce"])
}

func errUnknownKey() *Error {
	return newError(http.StatusNotFound, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
}

// checkTimestamp parses an ISO 8601 UTC time and checks it is within the
// window around now.
func (c *call) checkTimestamp(name, v string) *Error {
	t, err := time.Parse("2006-01-02T15:04:05Z", v)
	if err != nil {
		if t, err = time.Parse(time.RFC3339, v); err != nil {
			return newError(http.StatusBadRequest, "InvalidTimeStamp.Format", "Specified time stamp %s=%q is not valid: use UTC in ISO 8601, YYYY-MM-DDThh:mm:ssZ.", name, v)
		}
	}
	now := c.s.opts.Now()
	if d := now.Sub(t); d > TimestampWindow || d < -TimestampWindow {
		return newError(http.StatusBadRequest, "InvalidTimeStamp.Expired",
			"Specified time stamp or date value is expired: %s %s is more than %s from the server's time %s.", name, v, TimestampWindow, now.UTC().Format("2006-01-02T15:04:05Z"))
	}
	return nil
}

// useNonce records a signed request's nonce; a nonce seen before within
// twice the timestamp window (every request that could still pass the
// timestamp check) is refused.
func (c *call) useNonce(nonce string) *Error {
	if nonce == "" {
		return errMissing("SignatureNonce")
	}
	s := c.s
	now := s.opts.Now()
	key := c.accessKey + "\x00" + nonce
	s.nonceMu.Lock()
	defer s.nonceMu.Unlock()
	if now.Sub(s.nonceSweep) > time.Minute || len(s.nonces) >= maxNonces {
		for k, until := range s.nonces {
			if now.After(until) {
				delete(s.nonces, k)
			}
		}
		s.nonceSweep = now
	}
	if until, used := s.nonces[key]; used && !now.After(until) {
		return newError(http.StatusBadRequest, "SignatureNonceUsed", "Specified signature nonce was used already.")
	}
	if len(s.nonces) >= maxNonces {
		return newError(http.StatusServiceUnavailable, "Throttling.User", "Request was denied due to user flow control: too many signed requests in the last %s.", 2*TimestampWindow)
	}
	s.nonces[key] = now.Add(2 * TimestampWindow)
	return nil
}

// newRequestID is a random UUID in capitals, as Aliyun's RequestIds.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := strings.ToUpper(hex.EncodeToString(b[:]))
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// read runs fn with the topology.
func (c *call) read(fn func(st *topology.State)) { c.s.b.Read(fn) }

// createdTimes is when this process first saw each object: vpcflow's
// store keeps no creation time, and Aliyun's answers carry one.
type createdTimes struct {
	mu sync.Mutex
	m  map[string]time.Time
}

// at returns the creation time of the object with Aliyun ID id.
func (ct *createdTimes) at(id string, now time.Time) time.Time {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	t, ok := ct.m[id]
	if !ok {
		t = now.UTC().Truncate(time.Second)
		ct.m[id] = t
	}
	return t
}

func (c *call) creationTime(id string) string {
	return c.s.created.at(id, c.s.opts.Now()).Format("2006-01-02T15:04:05Z")
}
