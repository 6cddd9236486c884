package pipeline

import (
	"fmt"

	"github.com/vpcflow/vpcflow/topology"
)

// Cookie layout (64 bits), so that `ovs-ofctl dump-flows` says who owns a
// flow and why it drops:
//
//	0x7670 | owner kind (8) | drop reason (8) | object id (32)
//
// 0x7670 ("vp") marks every flow vpcflow installs; a flow in one of
// vpcflow's tables without it is foreign and is deleted on reconciliation.
const (
	cookieMagic     uint64 = 0x7670 << 48
	cookieMagicMask uint64 = 0xffff << 48
	// CookieOwnerMask selects the magic and the owner kind of a cookie.
	CookieOwnerMask uint64 = 0xffffff << 40
)

// OwnerKind is the kind of object a flow exists for, as its cookie says.
type OwnerKind uint8

// Owner kinds. Host, subnet, chassis and vSwitch are the topology kinds of
// the same name; the pipeline kind marks per-datapath defaults.
const (
	OwnerPipeline OwnerKind = 1
	OwnerHost     OwnerKind = 2
	OwnerSubnet   OwnerKind = 3
	OwnerChassis  OwnerKind = 4
	OwnerVSwitch  OwnerKind = 5
	// OwnerSecurityGroup owns a group's rule flows; OwnerSGRule marks a
	// rule's conj_id flow, whose counters are the rule's hits.
	OwnerSecurityGroup OwnerKind = 8
	OwnerSGRule        OwnerKind = 9
	// OwnerTrace owns the observation flows of one live trace
	// (livetrace.go) while it runs.
	OwnerTrace OwnerKind = 15
)

// OwnerKinds lists the owner kinds in cookie order.
func OwnerKinds() []OwnerKind {
	return []OwnerKind{OwnerPipeline, OwnerHost, OwnerSubnet, OwnerChassis, OwnerVSwitch, OwnerSecurityGroup, OwnerSGRule,
		OwnerUplink, OwnerNATGateway, OwnerSNATEntry, OwnerDNATEntry, OwnerEIP, OwnerTrace}
}

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
	case OwnerVSwitch:
		return "vswitch"
	case OwnerSecurityGroup:
		return "secgroup"
	case OwnerSGRule:
		return "sgrule"
	case OwnerUplink:
		return "uplink"
	case OwnerNATGateway:
		return "natgateway"
	case OwnerSNATEntry:
		return "snatentry"
	case OwnerDNATEntry:
		return "dnatentry"
	case OwnerEIP:
		return "eip"
	case OwnerTrace:
		return "trace"
	}
	return fmt.Sprintf("owner%d", uint8(k))
}

// Owner is an object that wants flows: the engine counts, per flow, every
// owner that wants it, and removes the flow when the last one is gone.
type Owner struct {
	Kind OwnerKind
	ID   uint32
}

func (o Owner) String() string { return fmt.Sprintf("%s#%d", o.Kind, o.ID) }

// OwnerOf is the owner a topology object is, when its kind owns flows.
func OwnerOf(o topology.Object) (Owner, bool) {
	switch topology.KindOf(o) {
	case "host":
		return Owner{OwnerHost, o.ObjectID()}, true
	case "subnet":
		return Owner{OwnerSubnet, o.ObjectID()}, true
	case "chassis":
		return Owner{OwnerChassis, o.ObjectID()}, true
	case "secgroup":
		return Owner{OwnerSecurityGroup, o.ObjectID()}, true
	case "uplink":
		return Owner{OwnerUplink, o.ObjectID()}, true
	case "natgateway":
		return Owner{OwnerNATGateway, o.ObjectID()}, true
	case "snatentry":
		return Owner{OwnerSNATEntry, o.ObjectID()}, true
	case "dnatentry":
		return Owner{OwnerDNATEntry, o.ObjectID()}, true
	case "eip":
		return Owner{OwnerEIP, o.ObjectID()}, true
	}
	return Owner{}, false
}

// DropReason says why a drop flow drops; it is part of the cookie so drop
// counters by reason are read from flow stats. Each reason is declared by
// one feature (Feature.Drops).
type DropReason uint8

// DropNone marks a flow that does not drop.
const DropNone DropReason = 0

// DropReasonInfo declares a drop reason.
type DropReasonInfo struct {
	Reason DropReason
	Name   string // as in /v1/drops and `vpcflow drops`
	Why    string
}

// MakeCookie builds a cookie.
func MakeCookie(k OwnerKind, r DropReason, id uint32) uint64 {
	return cookieMagic | uint64(k)<<40 | uint64(r)<<32 | uint64(id)
}

// PipelineCookie marks a per-datapath default flow.
func PipelineCookie(r DropReason) uint64 { return MakeCookie(OwnerPipeline, r, 0) }

// HostCookie marks a flow that exists for host id.
func HostCookie(id uint32, r DropReason) uint64 { return MakeCookie(OwnerHost, r, id) }

// SubnetCookie marks a flow that exists for subnet (route entry) id.
func SubnetCookie(id uint32, r DropReason) uint64 { return MakeCookie(OwnerSubnet, r, id) }

// ChassisCookie marks a tunnel flow that exists for chassis id.
func ChassisCookie(id uint32, r DropReason) uint64 { return MakeCookie(OwnerChassis, r, id) }

// VSwitchCookie marks a flow shared by the hosts of vSwitch id.
func VSwitchCookie(id uint32, r DropReason) uint64 { return MakeCookie(OwnerVSwitch, r, id) }

// SecurityGroupCookie marks a flow that exists for security group id.
func SecurityGroupCookie(id uint32) uint64 { return MakeCookie(OwnerSecurityGroup, DropNone, id) }

// RuleCookie marks the flow that counts security group rule id's hits.
func RuleCookie(id uint32) uint64 { return MakeCookie(OwnerSGRule, DropNone, id) }

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
