package controller

import "fmt"

// Cookie layout (64 bits), so that `ovs-ofctl dump-flows` says who owns a
// flow and why it drops:
//
//	0x7670 | owner kind (8) | drop reason (8) | object id (32)
//
// Owner kinds: 1 pipeline default, 2 host, 3 subnet, 4 chassis.
//
// 0x7670 ("vp") marks every flow vpcflow installs; a flow in one of
// vpcflow's tables without it is foreign and is deleted on reconciliation.
const (
	cookieMagic     uint64 = 0x7670 << 48
	cookieMagicMask uint64 = 0xffff << 48
)

// OwnerKind is the kind of object a flow exists for.
type OwnerKind uint8

// Owner kinds.
const (
	OwnerPipeline OwnerKind = 1
	OwnerHost     OwnerKind = 2
	OwnerSubnet   OwnerKind = 3
	OwnerChassis  OwnerKind = 4
)

func (k OwnerKind) String() string {
	switch k {
	case OwnerPipeline:
		return "pipeline"
	case OwnerHost:
		return "host"
	case OwnerSubnet:
		return "subnet"
	case OwnerChassis:
		return "chassis"
	}
	return fmt.Sprintf("owner%d", uint8(k))
}

// DropReason says why a drop flow drops; it is part of the cookie so drop
// counters by reason are read from flow stats.
type DropReason uint8

// Drop reasons.
const (
	DropNone           DropReason = 0
	DropSpoofed        DropReason = 1 // source MAC, IPv4 source or ARP sha/spa not the VM's
	DropNoRoute        DropReason = 2 // no host or subnet in the VPC covers the destination
	DropARPNotAnswered DropReason = 3 // ARP that the fabric does not answer (own address, gratuitous, replies, outside the vSwitch)
	DropUnknownSource  DropReason = 4 // packet from a port no host is attached to
	DropOther          DropReason = 5 // neither IPv4 nor ARP (IPv6, LLDP…)
	// DropTooBig: too big for the VXLAN underlay; answered with ICMP
	// fragmentation-needed and counted by the controller (OVS's flow
	// counters cannot tell: check_pkt_larger credits both branches).
	DropTooBig DropReason = 6
)

// DropReasons lists the reasons in a stable order.
func DropReasons() []DropReason {
	return []DropReason{DropSpoofed, DropNoRoute, DropARPNotAnswered, DropUnknownSource, DropOther, DropTooBig}
}

func (r DropReason) String() string {
	switch r {
	case DropNone:
		return "none"
	case DropSpoofed:
		return "spoofed"
	case DropNoRoute:
		return "no_route"
	case DropARPNotAnswered:
		return "arp_not_answered"
	case DropUnknownSource:
		return "unknown_source"
	case DropOther:
		return "other"
	case DropTooBig:
		return "too_big"
	}
	return fmt.Sprintf("reason%d", uint8(r))
}

func makeCookie(k OwnerKind, r DropReason, id uint32) uint64 {
	return cookieMagic | uint64(k)<<40 | uint64(r)<<32 | uint64(id)
}

// PipelineCookie marks a per-datapath default flow.
func PipelineCookie(r DropReason) uint64 { return makeCookie(OwnerPipeline, r, 0) }

// HostCookie marks a flow that exists for host id.
func HostCookie(id uint32, r DropReason) uint64 { return makeCookie(OwnerHost, r, id) }

// SubnetCookie marks a flow that exists for subnet (route entry) id.
func SubnetCookie(id uint32) uint64 { return makeCookie(OwnerSubnet, DropNone, id) }

// ChassisCookie marks a tunnel flow that exists for chassis id.
func ChassisCookie(id uint32) uint64 { return makeCookie(OwnerChassis, DropNone, id) }

// ParsedCookie is a cookie taken apart.
type ParsedCookie struct {
	Ours   bool
	Owner  OwnerKind
	Reason DropReason
	ID     uint32
}

// ParseCookie takes a cookie apart.
func ParseCookie(c uint64) ParsedCookie {
	return ParsedCookie{
		Ours:   c&cookieMagicMask == cookieMagic,
		Owner:  OwnerKind(c >> 40),
		Reason: DropReason(c >> 32),
		ID:     uint32(c),
	}
}
