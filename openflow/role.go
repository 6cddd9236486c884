package openflow

import (
	"context"
	"errors"
	"fmt"
)

// Controller roles (OpenFlow 1.3 §6.3.4). Every connection starts EQUAL
// (full access). A MASTER request demotes the switch's other master to
// SLAVE (which is told by a role status message); a SLAVE is refused
// every message that changes the switch (flow_mod, group_mod, meter_mod,
// packet_out, port_mod, table_mod, and in OVS bundle_control and
// bundle_add) with OFPET_BAD_REQUEST/OFPBRC_IS_SLAVE.
//
// MASTER and SLAVE requests carry a generation id. OVS keeps, per bridge,
// the largest one it accepted (lost when ovs-vswitchd restarts, kept
// across controller reconnects) and refuses a request whose id is older,
// compared as (int64)(gen - cached) < 0, with
// OFPET_ROLE_REQUEST_FAILED/OFPRRFC_STALE; an equal id is accepted.

// Role is a controller role.
type Role uint32

// Roles on the wire (ofp_controller_role).
const (
	RoleNoChange Role = 0
	RoleEqual    Role = 1
	RoleMaster   Role = 2
	RoleSlave    Role = 3
)

func (r Role) String() string {
	switch r {
	case RoleNoChange:
		return "nochange"
	case RoleEqual:
		return "equal"
	case RoleMaster:
		return "master"
	case RoleSlave:
		return "slave"
	}
	return fmt.Sprintf("role(%d)", uint32(r))
}

// Message types and codes of roles.
const (
	typeRoleRequest = 24
	typeRoleReply   = 25
	roleRequestLen  = 24 // header + role, pad, generation_id

	// ONFT_ROLE_STATUS: OpenFlow 1.4's role status as an ONF extension
	// of 1.3 (experimenter 0x4f4e4600, type 1911), what OVS sends a 1.3
	// master it demoted.
	onfRoleStatus = 1911
	roleStatusLen = 16 // role, reason, pad, generation_id (after the experimenter header)

	errTypeBadRequest        = 1
	errCodeIsSlave           = 10
	errTypeRoleRequestFailed = 11
	errCodeRoleStale         = 0
)

// RoleReply is a switch's answer to a role request: the connection's role
// now and the generation id the switch holds (0 if none yet).
type RoleReply struct {
	Role       Role
	Generation uint64
}

// Role status reasons (ofp_controller_role_reason).
const (
	RoleReasonMasterRequest = 0 // another controller asked to be master
	RoleReasonConfig        = 1
	RoleReasonExperimenter  = 2
)

// RoleStatus is an unsolicited role change the switch reports: OVS sends
// one to a master it demoted because another controller became master.
type RoleStatus struct {
	Role       Role
	Reason     uint8
	Generation uint64
}

// RoleStatusHandler is implemented by a Handler that wants the role
// changes a switch reports. It is called on the switch's reader goroutine
// and must not block.
type RoleStatusHandler interface {
	SwitchRoleStatus(sw *Switch, st RoleStatus)
}

// ErrStaleGeneration is returned (wrapped, with the switch's *OFError) by
// RequestRole when the switch holds a newer generation id than the one
// asked with: another controller became master after this one.
var ErrStaleGeneration = errors.New("generation id is stale: the switch holds a newer one")

// RequestRole asks for role with generation id gen (ignored for EQUAL and
// NOCHANGE) and returns the switch's reply. A refused request is an
// error: ErrStaleGeneration for a stale id, otherwise the switch's
// *OFError.
func (s *Switch) RequestRole(ctx context.Context, role Role, gen uint64) (RoleReply, error) {
	r, err := s.c.request(ctx, false, func(b []byte, xid uint32) []byte {
		return appendRoleRequest(b, xid, role, gen)
	})
	if err != nil {
		return RoleReply{}, fmt.Errorf("%s: role request %s: %w", s, role, err)
	}
	if r.err != nil {
		if r.err.Type == errTypeRoleRequestFailed && r.err.Code == errCodeRoleStale {
			return RoleReply{}, fmt.Errorf("%s: role request %s with generation %#x: %w (%w)", s, role, gen, ErrStaleGeneration, r.err)
		}
		return RoleReply{}, fmt.Errorf("%s: role request %s: %w", s, role, r.err)
	}
	if r.msg.typ != typeRoleReply {
		return RoleReply{}, fmt.Errorf("%s: role request %s: answered with message type %d", s, role, r.msg.typ)
	}
	rep, err := decodeRoleReply(r.msg.body)
	if err != nil {
		return RoleReply{}, fmt.Errorf("%s: role reply: %w", s, err)
	}
	return rep, nil
}

// IsSlaveError reports whether err carries the switch's
// OFPET_BAD_REQUEST/OFPBRC_IS_SLAVE: the message was refused because this
// connection is a slave.
func IsSlaveError(err error) bool {
	var oe *OFError
	if !errors.As(err, &oe) {
		return false
	}
	return oe.Type == errTypeBadRequest && oe.Code == errCodeIsSlave
}

func appendRoleRequest(b []byte, xid uint32, role Role, gen uint64) []byte {
	start := len(b)
	b = appendHeader(b, typeRoleRequest, xid)
	b = appendU32(b, uint32(role))
	b = append(b, 0, 0, 0, 0)
	b = appendU64(b, gen)
	setLength(b, start)
	return b
}

// decodeRoleReply decodes the body (after the header) of a ROLE_REPLY.
func decodeRoleReply(body []byte) (RoleReply, error) {
	if len(body) < roleRequestLen-headerLen {
		return RoleReply{}, fmt.Errorf("%w: role reply of %d bytes", errTruncated, len(body))
	}
	return RoleReply{Role: Role(be.Uint32(body)), Generation: be.Uint64(body[8:])}, nil
}

// isRoleStatus reports whether an experimenter message's body is an
// ONFT_ROLE_STATUS.
func isRoleStatus(body []byte) bool {
	return len(body) >= 8 && be.Uint32(body) == onfExperimenter && be.Uint32(body[4:]) == onfRoleStatus
}

// DecodeRoleStatus decodes the body (after the header) of an OpenFlow 1.3
// ONFT_ROLE_STATUS experimenter message.
func DecodeRoleStatus(body []byte) (RoleStatus, error) {
	if !isRoleStatus(body) {
		return RoleStatus{}, errors.New("not an ONF role status message")
	}
	b := body[8:]
	if len(b) < roleStatusLen {
		return RoleStatus{}, fmt.Errorf("%w: role status of %d bytes", errTruncated, len(b))
	}
	return RoleStatus{Role: Role(be.Uint32(b)), Reason: b[4], Generation: be.Uint64(b[8:])}, nil
}

// handleRoleStatus passes a role status to the handler, if it takes them.
func (c *conn) handleRoleStatus(m message) {
	st, err := DecodeRoleStatus(m.body)
	if err != nil {
		c.log.Warn("malformed role status from switch")
		return
	}
	if c.roleStatus != nil {
		c.roleStatus(st)
		return
	}
	c.log.Info("switch reports a role change; nobody listens for it")
}
