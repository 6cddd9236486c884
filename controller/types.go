package controller

import (
	"errors"
	"time"

	"github.com/vpcflow/vpcflow/topology"
)

// ErrUnknownSwitch is returned for a datapath id that is not connected.
var ErrUnknownSwitch = errors.New("switch not connected")

// SwitchInfo describes a connected switch for the REST API.
type SwitchInfo struct {
	DPID           topology.DPID `json:"dpid"`
	Bridge         string        `json:"bridge,omitempty"`
	Remote         string        `json:"remote"`
	ConnectedSince time.Time     `json:"connected_since"`
	// CertificateSHA256 is the SHA-256 of the TLS certificate the switch
	// connected with (what GET /v1/switch-certificates binds its dpid to),
	// empty over plain TCP.
	CertificateSHA256 string     `json:"certificate_sha256,omitempty"`
	Ports             []PortInfo `json:"ports"`
}

// PortInfo is one port of a switch, as OVSDB reports it.
type PortInfo struct {
	Name   string `json:"name"`
	OFPort int32  `json:"ofport"`
	MAC    string `json:"mac,omitempty"` // external_ids:attached-mac (the VM's MAC), when set
}

// FlowEntry is one installed flow as the switch reports it.
type FlowEntry struct {
	Table       uint8   `json:"table"`
	Priority    uint16  `json:"priority"`
	Cookie      string  `json:"cookie"` // "0x…"
	Match       string  `json:"match"`  // ovs-ofctl syntax
	Actions     string  `json:"actions"`
	Packets     uint64  `json:"n_packets"`
	Bytes       uint64  `json:"n_bytes"`
	DurationSec float64 `json:"duration_sec"`
}

// DropCounters are packets dropped by the pipeline, by reason name (see
// docs/pipeline.md, "Drop reasons"); every declared reason is present.
type DropCounters map[string]uint64

// Add counts n packets dropped for the named reason.
func (d DropCounters) Add(reason string, n uint64) { d[reason] += n }

// SwitchDrops are the drops of one switch, all hosts together.
type SwitchDrops struct {
	DPID   topology.DPID `json:"dpid"`
	Bridge string        `json:"bridge,omitempty"`
	Drops  DropCounters  `json:"drops"`
}

// HostDrops are the drops charged to one host: packets it sent that were
// spoofed, and ARP requests for its own address.
type HostDrops struct {
	VPC   string        `json:"vpc"`
	Name  string        `json:"name"`
	DPID  topology.DPID `json:"dpid"`
	Drops DropCounters  `json:"drops"`
}

// DropReport is the answer of GET /v1/drops.
type DropReport struct {
	Switches []SwitchDrops `json:"switches"`
	Hosts    []HostDrops   `json:"hosts"`
}

// ReconcileResult is what one reconciliation of a switch did: the flows it
// found, added (or rewrote) and deleted, and the unwanted flows it kept:
// those of objects whose OVSDB has not answered yet, and those of objects
// the store does not know when they are most of the switch's (see
// Options.AllowFlush and Controller.Flush).
type ReconcileResult struct {
	DPID        topology.DPID `json:"dpid"`
	Installed   int           `json:"installed"`
	Added       int           `json:"added"`
	Deleted     int           `json:"deleted"`
	KeptUnknown int           `json:"kept_unknown_ovsdb"`
	KeptGuarded int           `json:"kept_unknown_objects"`
}
