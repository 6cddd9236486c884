package topology

import (
	"errors"
	"fmt"
)

// OpKind says what an Op does.
type OpKind uint8

// Op kinds.
const (
	OpCreate OpKind = iota + 1
	OpDelete
	OpUpdate
)

func (k OpKind) String() string {
	switch k {
	case OpCreate:
		return "create"
	case OpDelete:
		return "delete"
	case OpUpdate:
		return "update"
	}
	return fmt.Sprintf("op%d", uint8(k))
}

// Op is one change to the topology: create, update or delete Obj, one of
// *VPC, *VSwitch, *Host, *Subnet or *Chassis. For OpDelete only the
// object's VPC and Name need to be set in the request; Store.Apply
// returns the op with the whole deleted object, and with Old set to it.
// For OpUpdate, Store.Apply sets Old to the object as it was before.
// Store.Apply fills in IDs and defaults on creates.
type Op struct {
	Kind OpKind
	Obj  Object

	// Old is the object before the change (OpUpdate, OpDelete), of the same
	// type as Obj; nil on OpCreate.
	Old Object

	// Cascade, on OpDelete, also deletes every object that refers to this
	// one, and those that refer to them (a VPC's vSwitches, hosts and
	// subnets; a vSwitch's hosts and their subnets; a host's subnets; a
	// chassis's hosts and their subnets), instead of refusing with
	// ErrConflict. Store.Apply returns the deleted dependents as OpDelete
	// ops of their own, after the requested one.
	Cascade bool
}

// Create, Update and Delete build ops.
func Create(o Object) Op { return Op{Kind: OpCreate, Obj: o} }

// Update builds an update op.
func Update(o Object) Op { return Op{Kind: OpUpdate, Obj: o} }

// Delete builds a delete op; cascade deletes what refers to o too.
func Delete(o Object, cascade bool) Op { return Op{Kind: OpDelete, Obj: o, Cascade: cascade} }

// ErrorKind classifies a rejected change; the API maps it to a status code.
type ErrorKind uint8

// Error kinds.
const (
	ErrInvalid  ErrorKind = iota + 1 // 400: the request itself is wrong
	ErrNotFound                      // 404: it names something that does not exist
	ErrConflict                      // 409: duplicate, overlap, or still in use
)

// Error is a rejected change. Field names the JSON field at fault ("cidr",
// "ip", "host", or "[2].ip" inside a batch), Msg says what is wrong.
type Error struct {
	Kind  ErrorKind
	Field string
	Msg   string
}

func (e *Error) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

// Invalid returns a 400-kind error.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Kind: ErrInvalid, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// NotFound returns a 404-kind error.
func NotFound(field, format string, args ...any) *Error {
	return &Error{Kind: ErrNotFound, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Conflict returns a 409-kind error.
func Conflict(field, format string, args ...any) *Error {
	return &Error{Kind: ErrConflict, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// AsError unwraps err into a *Error, if it is one.
func AsError(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}
