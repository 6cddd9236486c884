// Package api is vpcflow's REST API (gorilla/mux, JSON in and out) and a
// Go client for it.
//
// Routes:
//
//	GET    /healthz
//	GET    /v1/vpcs                           POST /v1/vpcs
//	GET    /v1/vpcs/{vpc}                     DELETE /v1/vpcs/{vpc}[?cascade=true]
//	GET    /v1/vpcs/{vpc}/vswitches           POST …/vswitches
//	GET    /v1/vpcs/{vpc}/vswitches/{name}    DELETE …/vswitches/{name}[?cascade=true]
//	GET    /v1/vpcs/{vpc}/hosts               POST …/hosts (object or array)
//	GET    /v1/vpcs/{vpc}/hosts/{name}        PUT …/hosts/{name} (MAC, attachment)  DELETE …/hosts/{name}[?cascade=true]
//	GET    /v1/vpcs/{vpc}/subnets             POST …/subnets (object or array)
//	GET    /v1/vpcs/{vpc}/subnets/{name}      PUT …/subnets/{name} (move)  DELETE …/subnets/{name}
//	GET    /v1/chassis                        POST /v1/chassis
//	GET    /v1/chassis/{name}                 DELETE /v1/chassis/{name}[?cascade=true]
//	GET    /v1/switches
//	GET    /v1/switches/{dpid}/flows
//	GET    /v1/drops
//	GET    /v1/drift                          POST /v1/switches/{dpid}/flush
//
// A delete refuses (409) to delete what is still in use unless it is given
// ?cascade=true: a VPC then takes its subnets, hosts and vSwitches with it,
// a vSwitch its hosts and their subnets, a host its subnets, a chassis the
// hosts attached to it (in any VPC) and their subnets.
//
// Errors are {"error": "...", "field": "..."} with 400 (bad input), 401
// (Options.Token is set and the request has no valid bearer token), 404
// (unknown object), 405 (wrong method), 409 (conflict), 413 (body too
// large), 500 (internal).
package api

import (
	"context"
	"net"

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
	// Flows dumps a switch's flows; controller.ErrUnknownSwitch if it is
	// not connected.
	Flows(ctx context.Context, dpid topology.DPID) ([]controller.FlowEntry, error)
	// InterfaceMAC is an interface's external_ids:attached-mac in OVSDB.
	InterfaceMAC(bridge, iface string) (net.HardwareAddr, bool)
	// ChassisInterfaceMAC is the external_ids:attached-mac of an interface
	// on a chassis's bridge, as that chassis's OVSDB reports it.
	ChassisInterfaceMAC(chassis, iface string) (net.HardwareAddr, bool)
	// Drops sums the pipeline's drop counters by reason, per switch and
	// per host.
	Drops(ctx context.Context) (controller.DropReport, error)
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
}

// DefaultMaxBodyBytes is the default request body limit (8 MiB).
const DefaultMaxBodyBytes = 8 << 20

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

// HealthBody is the body of GET /healthz.
type HealthBody struct {
	Status string `json:"status"`
}
