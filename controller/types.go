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
	Ports          []PortInfo    `json:"ports"`
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
