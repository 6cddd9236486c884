package openflow

import (
	"errors"
	"fmt"
	"strings"
)

// ErrClosed is returned (wrapped) by requests on a switch whose connection
// has closed.
var ErrClosed = errors.New("switch connection closed")

// OFError is an OFPT_ERROR message received from a switch.
type OFError struct {
	Type uint16
	Code uint16
	// Experimenter is set for experimenter errors (Type 0xffff), whose
	// Code is the experimenter's error type.
	Experimenter uint32
	// Data is the start of the offending request, as the switch echoed it.
	Data []byte
}

// Error prints the error with its spec names where known.
func (e *OFError) Error() string {
	if e.Type == 0xffff {
		return fmt.Sprintf("OFPET_EXPERIMENTER experimenter=0x%x type=%d", e.Experimenter, e.Code)
	}
	t, ok := errorTypeNames[e.Type]
	if !ok {
		return fmt.Sprintf("error type %d code %d", e.Type, e.Code)
	}
	if c, ok := errorCodeNames[[2]uint16{e.Type, e.Code}]; ok {
		return fmt.Sprintf("%s/%s (type %d, code %d)", t, c, e.Type, e.Code)
	}
	return fmt.Sprintf("%s (type %d, code %d)", t, e.Type, e.Code)
}

// parseError decodes the body of an OFPT_ERROR message (after the header).
func parseError(body []byte) *OFError {
	if len(body) < 4 {
		return &OFError{Type: 0xfffe, Data: body}
	}
	e := &OFError{Type: be.Uint16(body), Code: be.Uint16(body[2:]), Data: body[4:]}
	if e.Type == 0xffff && len(body) >= 8 {
		e.Experimenter = be.Uint32(body[4:])
		e.Data = body[8:]
	}
	return e
}

// FlowModError says that the switch rejected one flow mod of a batch.
type FlowModError struct {
	Index int // position in the batch given to Apply
	Mod   FlowMod
	Err   *OFError
}

// Error names the rejected flow.
func (e *FlowModError) Error() string {
	return fmt.Sprintf("flow-mod #%d rejected with %v: %s", e.Index, e.Err, e.Mod)
}

// Unwrap returns the switch's error.
func (e *FlowModError) Unwrap() error { return e.Err }

// joinFlowModErrors combines the rejections of a batch, naming at most a few.
func joinFlowModErrors(errs []*FlowModError, total int) error {
	if total == 0 {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d of the flow mods rejected: ", total)
	parts := make([]error, 0, len(errs))
	for i, e := range errs {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(e.Error())
		parts = append(parts, e)
	}
	if total > len(errs) {
		fmt.Fprintf(&b, "; and %d more", total-len(errs))
	}
	return &batchError{msg: b.String(), errs: parts}
}

// batchError lets errors.As find each *FlowModError of a batch.
type batchError struct {
	msg  string
	errs []error
}

func (e *batchError) Error() string   { return e.msg }
func (e *batchError) Unwrap() []error { return e.errs }

var errorTypeNames = map[uint16]string{
	0: "OFPET_HELLO_FAILED", 1: "OFPET_BAD_REQUEST", 2: "OFPET_BAD_ACTION",
	3: "OFPET_BAD_INSTRUCTION", 4: "OFPET_BAD_MATCH", 5: "OFPET_FLOW_MOD_FAILED",
	6: "OFPET_GROUP_MOD_FAILED", 7: "OFPET_PORT_MOD_FAILED", 8: "OFPET_TABLE_MOD_FAILED",
	9: "OFPET_QUEUE_OP_FAILED", 10: "OFPET_SWITCH_CONFIG_FAILED", 11: "OFPET_ROLE_REQUEST_FAILED",
	12: "OFPET_METER_MOD_FAILED", 13: "OFPET_TABLE_FEATURES_FAILED",
}

var errorCodeNames = map[[2]uint16]string{
	{1, 0}: "BAD_VERSION", {1, 1}: "BAD_TYPE", {1, 2}: "BAD_MULTIPART", {1, 3}: "BAD_EXPERIMENTER",
	{1, 4}: "BAD_EXP_TYPE", {1, 5}: "EPERM", {1, 6}: "BAD_LEN", {1, 7}: "BUFFER_EMPTY",
	{1, 8}: "BUFFER_UNKNOWN", {1, 9}: "BAD_TABLE_ID", {1, 10}: "IS_SLAVE", {1, 11}: "BAD_PORT",
	{1, 12}: "BAD_PACKET", {1, 13}: "MULTIPART_BUFFER_OVERFLOW",
	{2, 0}: "BAD_TYPE", {2, 1}: "BAD_LEN", {2, 2}: "BAD_EXPERIMENTER", {2, 3}: "BAD_EXP_TYPE",
	{2, 4}: "BAD_OUT_PORT", {2, 5}: "BAD_ARGUMENT", {2, 6}: "EPERM", {2, 7}: "TOO_MANY",
	{2, 8}: "BAD_QUEUE", {2, 9}: "BAD_OUT_GROUP", {2, 10}: "MATCH_INCONSISTENT", {2, 11}: "UNSUPPORTED_ORDER",
	{2, 12}: "BAD_TAG", {2, 13}: "BAD_SET_TYPE", {2, 14}: "BAD_SET_LEN", {2, 15}: "BAD_SET_ARGUMENT",
	{3, 0}: "UNKNOWN_INST", {3, 1}: "UNSUP_INST", {3, 2}: "BAD_TABLE_ID", {3, 3}: "UNSUP_METADATA",
	{3, 4}: "UNSUP_METADATA_MASK", {3, 5}: "BAD_EXPERIMENTER", {3, 6}: "BAD_EXP_TYPE", {3, 7}: "BAD_LEN",
	{3, 8}: "EPERM",
	{4, 0}: "BAD_TYPE", {4, 1}: "BAD_LEN", {4, 2}: "BAD_TAG", {4, 3}: "BAD_DL_ADDR_MASK",
	{4, 4}: "BAD_NW_ADDR_MASK", {4, 5}: "BAD_WILDCARDS", {4, 6}: "BAD_FIELD", {4, 7}: "BAD_VALUE",
	{4, 8}: "BAD_MASK", {4, 9}: "BAD_PREREQ", {4, 10}: "DUP_FIELD", {4, 11}: "EPERM",
	{11, 0}: "STALE", {11, 1}: "UNSUP", {11, 2}: "BAD_ROLE",
	{5, 0}: "UNKNOWN", {5, 1}: "TABLE_FULL", {5, 2}: "BAD_TABLE_ID", {5, 3}: "OVERLAP",
	{5, 4}: "EPERM", {5, 5}: "BAD_TIMEOUT", {5, 6}: "BAD_COMMAND", {5, 7}: "BAD_FLAGS",
}
