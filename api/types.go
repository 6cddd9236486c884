// Package api is vpcflow's REST API (gorilla/mux, JSON in and out) and a
// Go client for it.
//
// Routes:
//
//	GET    /healthz                           alive: the process answers
//	GET    /readyz                            ready: store, OVSDB endpoints, switches (503 with reasons)
//	GET    /v1/vpcs                           POST /v1/vpcs
//	GET    /v1/vpcs/{vpc}                     DELETE /v1/vpcs/{vpc}[?cascade=true]
//	GET    /v1/vpcs/{vpc}/vswitches           POST …/vswitches
//	GET    /v1/vpcs/{vpc}/vswitches/{name}    DELETE …/vswitches/{name}[?cascade=true]
//	GET    /v1/vpcs/{vpc}/hosts               POST …/hosts (object or array)
//	GET    /v1/vpcs/{vpc}/hosts/{name}        PUT …/hosts/{name} (MAC, attachment, security_groups)  DELETE …/hosts/{name}[?cascade=true]
//	GET    /v1/vpcs/{vpc}/subnets             POST …/subnets (object or array)
//	GET    /v1/vpcs/{vpc}/subnets/{name}      PUT …/subnets/{name} (move)  DELETE …/subnets/{name}
//	GET    /v1/vpcs/{vpc}/security-groups     POST …/security-groups
//	GET    …/security-groups/{name}           PUT (description)  DELETE …/security-groups/{name}[?cascade=true]
//	GET    …/security-groups/{sg}/rules       POST …/rules (object or array; GET shows hits)
//	GET    …/security-groups/{sg}/rules/{id}  PUT …/rules/{id}  DELETE …/rules/{id}
//	GET    /v1/chassis                        POST /v1/chassis
//	GET    /v1/chassis/{name}                 DELETE /v1/chassis/{name}[?cascade=true]
//	GET    /v1/switches
//	GET    /v1/switches/{dpid}/flows
//	GET    /v1/drops
//	GET    /v1/drift                          POST /v1/switches/{dpid}/flush
//	POST   /v1/trace                          (Options.Tracer)
//	GET    /v1/backup                         (Options.Backup)
//	POST   /v1/restore[?dry_run=true]         (Options.Restorer)
//	GET    /metrics                           (Options.Metrics)
//	GET    /v1/openapi.json                   (api/openapi.yaml, the source of truth)
//
// A delete refuses (409) to delete what is still in use unless it is given
// ?cascade=true: a VPC then takes its subnets, hosts and vSwitches with it,
// a vSwitch its hosts and their subnets, a host its subnets, a chassis the
// hosts attached to it (in any VPC) and their subnets.
//
// Every list takes ?limit=N (1 to MaxPageLimit) and ?page_token=T: the
// items come in a stable order (by name; switches by dpid; flows by table,
// priority, match) and, when more follow, the answer carries the token
// of the next page in the X-Next-Page-Token header (and a Link rel="next"
// header); the last page has none. Every page says in X-Total-Count how
// many items the list has after its filters, every page together. The
// Client's *Page methods return both as a PageInfo.
//
// A change is stored and then sent to the switches; the answer is 201
// (200 for a PUT, 204 for a DELETE) once every connected switch confirmed
// it, and 202 Accepted (AcceptedBody: the objects and the switches that
// did not confirm, and why) when it is stored but a switch refused it or
// had not confirmed it within the request's timeout (Options.RequestTimeout).
//
// Errors are {"error": "...", "field": "..."} with 400 (bad input), 401
// (Options.Token is set and the request has no valid bearer token), 403
// (a Host or Origin that is not the API's, see Guard), 404 (unknown
// object), 405 (wrong method; OPTIONS is never answered), 409 (conflict),
// 413 (body too large), 415 (a write without Content-Type:
// application/json), 500 (internal), 504 (the request timed out before
// anything was stored).
package api

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strconv"

	"time"

	"github.com/gorilla/mux"

	"github.com/vpcflow/vpcflow/controller"
	"github.com/vpcflow/vpcflow/topology"
)

// Backend is what the API drives: the controller in production.
type Backend interface {
	// Apply validates, stores and pushes a change, and returns once the
	// switches confirmed it.
	Apply(ctx context.Context, ops []topology.Op) ([]topology.Op, error)
	// Read runs fn with the current topology.
	Read(fn func(st *topology.State))
	// Switches lists the connected switches.
	Switches() []controller.SwitchInfo
	// Flows calls fn with each of a switch's flows as its dump arrives (e
	// is reused: fn copies what it keeps); controller.ErrUnknownSwitch if
	// the switch is not connected.
	Flows(ctx context.Context, dpid topology.DPID, fn func(e *controller.FlowEntry) error) error
	// InterfaceMAC is an interface's external_ids:attached-mac in OVSDB.
	InterfaceMAC(bridge, iface string) (net.HardwareAddr, bool)
	// ChassisInterfaceMAC is the external_ids:attached-mac of an interface
	// on a chassis's bridge, as that chassis's OVSDB reports it.
	ChassisInterfaceMAC(chassis, iface string) (net.HardwareAddr, bool)
	// Drops sums the pipeline's drop counters by reason, per switch and
	// per host.
	Drops(ctx context.Context) (controller.DropReport, error)
	// Status reports the store, the OVSDB endpoints and the connected
	// switches, for GET /readyz.
	Status(ctx context.Context) controller.Status
	// HostAttachments says where each host is attached now (one entry
	// per host, in order), for GET on hosts.
	HostAttachments(hosts []topology.Host) []controller.HostAttachment
}

// Options tune the server.
type Options struct {
	// MaxBodyBytes limits request bodies; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Token, when set, is the bearer token every request must carry
	// ("Authorization: Bearer TOKEN"), except GET and HEAD /healthz.
	// Others are answered 401 {"error":"missing or invalid bearer token"}
	// with "WWW-Authenticate: Bearer".
	Token string
	// Observer, when set, is told about every request (metrics).
	Observer RequestObserver
	// Metrics, when set, is served at GET /metrics (behind the token).
	Metrics http.Handler
	// Tracer, when set, serves POST /v1/trace.
	Tracer Tracer
	// Backup, when set, serves GET /v1/backup (the store: vpcflow backup).
	Backup Backuper
	// Restorer, when set, serves POST /v1/restore (the controller:
	// vpcflow restore).
	Restorer Restorer
	// routerHook, in tests, is given the router once every route is on it.
	routerHook func(*mux.Router)
	// AllowedHosts are the names (and addresses) the API answers to in
	// the Host header and accepts in an Origin; "*" accepts any. nil
	// means DefaultAllowedHosts(""). The address a request came in on is
	// always accepted. See Guard.
	AllowedHosts []string
	// RequestTimeout bounds every request, waiting for switches included:
	// a change stored but not confirmed by then is answered 202. A client
	// may ask for less with the X-Request-Timeout header (a duration such
	// as 4.5s, or seconds). 0 means DefaultRequestTimeout.
	RequestTimeout time.Duration
}

// DefaultMaxBodyBytes is the default request body limit (8 MiB).
const DefaultMaxBodyBytes = 8 << 20

// DefaultRequestTimeout is the default Options.RequestTimeout: less than
// the CLI's default --timeout (30s), so that it gets the answer.
const DefaultRequestTimeout = 20 * time.Second

// TimeoutHeader is the request header in which a client asks for a
// shorter Options.RequestTimeout.
const TimeoutHeader = "X-Request-Timeout"

// AcceptedBody is the body of a 202 Accepted: the change is stored (it
// stands, and survives a restart) but not every connected switch
// confirmed it before the request's timeout, or one refused it. Each
// switch listed gets it when its queue catches up, or is disconnected and
// reconciled from scratch when it reconnects.
type AcceptedBody struct {
	Message string `json:"message"`
	// Object is what a one-object POST or a PUT stored; Objects what an
	// array POST stored; both are absent for a DELETE.
	Object      any                            `json:"object,omitempty"`
	Objects     []any                          `json:"objects,omitempty"`
	Unconfirmed []controller.UnconfirmedSwitch `json:"unconfirmed"`
}

// ReadyBody is the body of GET /readyz: 200 when ready, 503 with the
// reasons when not. Without a valid token (when the API has one) only
// Status is given.
type ReadyBody struct {
	Status  string   `json:"status"` // "ready" or "not ready"
	Reasons []string `json:"reasons,omitempty"`
	// Store is "open", or why changes cannot be stored.
	Store    string                    `json:"store,omitempty"`
	OVSDB    []controller.OVSDBStatus  `json:"ovsdb,omitempty"`
	Switches []controller.SwitchStatus `json:"switches,omitempty"`
}

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

// HealthBody is the body of GET /healthz.
type HealthBody struct {
	Status string `json:"status"`
}

// SwitchView is a connected switch as GET /v1/switches lists it.
type SwitchView struct {
	controller.SwitchInfo
	// OVSDBResolved says an OVSDB the controller watches reports a bridge
	// with this datapath id (Bridge names it). A switch connected over
	// OpenFlow but not resolved through OVSDB cannot have hosts attached
	// by bridge or chassis found on it.
	OVSDBResolved bool `json:"ovsdb_resolved"`
}

// VSwitchView is a vSwitch as GET lists and shows it: the stored vSwitch
// and how many hosts it has (what the X-Total-Count of a page of its hosts
// without a filter says).
type VSwitchView struct {
	topology.VSwitch
	HostCount int `json:"host_count"`
}

// MarshalJSON writes the vSwitch as stored (with aliyun_id, which
// topology.VSwitch's MarshalJSON adds) and host_count.
func (w VSwitchView) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(w.VSwitch)
	if err != nil {
		return nil, err
	}
	b = append(b[:len(b)-1], `,"host_count":`...)
	b = strconv.AppendInt(b, int64(w.HostCount), 10)
	return append(b, '}'), nil
}

// HostInfo is a host as GET lists and shows it: the stored host, and
// where it is attached now (state "attached", "port not found" or
// "bridge not connected", with the reason when not attached).
type HostInfo struct {
	topology.Host
	Attachment controller.HostAttachment `json:"attachment"`
}

// MarshalJSON writes the host as topology.Host does (its Aliyun ID
// included), with the attachment: the promoted Host.MarshalJSON alone
// would leave the attachment out.
func (h HostInfo) MarshalJSON() ([]byte, error) {
	return h.appendJSON(nil)
}

// appendJSON appends what MarshalJSON returns.
func (h *HostInfo) appendJSON(b []byte) ([]byte, error) {
	a, err := json.Marshal(h.Attachment)
	if err != nil {
		return nil, err
	}
	b = h.Host.AppendJSON(b)
	b = append(b[:len(b)-1], `,"attachment":`...)
	b = append(b, a...)
	return append(b, '}'), nil
}
