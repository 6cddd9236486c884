package topology

import (
	"encoding/json"
	"fmt"
)

// Object is one stored topology object: *VPC, *VSwitch, *Host, *Subnet or
// *Chassis. Every kind is declared once, in its own file, by a value of an
// unexported type implementing kind: its validation, the objects it refers
// to (which the store checks exist, finds dependents by, and cascades
// deletes through), its unique indexes and its storage key. The store, the
// loader and cascading deletes are written once, over kinds.
type Object interface {
	// Key identifies the object within its kind: "NAME" for global kinds,
	// "VPC/NAME" for those that live in a VPC. It is also the storage key.
	Key() string
	// ObjectID is the ID the store handed out (0 before it is created).
	ObjectID() uint32

	kind() kind
	setID(id uint32)
	clone() Object
}

// kind declares one object kind. Implementations are stateless.
type kind interface {
	// name is the kind's name: store bucket, ID counter, API errors
	// ("vpc", "vswitch", "host", "subnet", "chassis").
	name() string
	// title and plural name one object and several in messages ("vSwitch",
	// "vSwitches").
	title() string
	plural() string
	// vpcOf is the VPC an object lives in, "" for global kinds.
	vpcOf(o Object) string
	// decode reads a stored object.
	decode(b []byte) (Object, error)
	// check validates an object on its own (no state), filling in
	// defaults. old is the object being replaced by an update, nil on a
	// create.
	check(o, old Object) *Error
	// refs lists the objects o refers to; they must exist, and deleting
	// one of them is refused (or cascades) while o exists.
	refs(o Object) []ref
	// validate checks o against the state, after check and after its
	// references were found to exist. old is as for check.
	validate(st *State, o, old Object) *Error
	// uniques lists the values o holds that no other object of its kind
	// may hold.
	uniques(o Object) []unique
	// keyOf builds the key of an object from what a delete request
	// names (its VPC and name), validating them.
	keyOf(o Object) (string, *Error)
}

// kinds lists every kind, each after the kinds it refers to: the order in
// which the store loads them (and, reversed, the order in which a
// cascading delete removes them). A new kind is one file declaring it and
// one entry here.
func kinds() []kind {
	return []kind{chassisKind{}, vpcKind{}, vswitchKind{}, secGroupKind{}, secGroupRuleKind{}, hostKind{}, subnetKind{}, dhcpOptionsKind{},
		uplinkKind{}, natGatewayKind{}, snatEntryKind{}, dnatEntryKind{}, eipKind{}, switchCertKind{}}
}

// kindRank is a kind's position in kinds().
func kindRank(k kind) int {
	for i, x := range kinds() {
		if x.name() == k.name() {
			return i
		}
	}
	return -1
}

// KindNames lists the kinds' names in load order.
func KindNames() []string {
	out := []string{}
	for _, k := range kinds() {
		out = append(out, k.name())
	}
	return out
}

// KindOf is the name of an object's kind ("host", "subnet", …).
func KindOf(o Object) string { return o.kind().name() }

// ref is a reference from one object to another, named by the field that
// holds it.
type ref struct {
	field string // JSON field of the referring object ("vswitch")
	to    kind
	key   string
	// what describes the referred object in messages ("vSwitch \"a\" in VPC \"x\""),
	// formatted only when one is written (refs are listed on every change).
	what func() string
}

// unique is one value an object holds that is unique within its kind.
type unique struct {
	index string // index name, e.g. "ip"
	field string // JSON field at fault when it is taken
	value string // the indexed value (scoped as the kind needs, e.g. "vpc\x00ip")
	// taken describes the conflict, given the object that holds it.
	taken func(holder Object) string
	// lenientOnLoad: a stored duplicate (from before the rule) is loaded
	// with a warning instead of refusing to open the store.
	lenientOnLoad bool
}

// decodeJSON decodes a stored object of type T.
func decodeJSON[T any, P interface {
	*T
	Object
}](b []byte) (Object, error) {
	return decodeInto(b, P(new(T)))
}

// decodeInto decodes a stored object into o.
func decodeInto(b []byte, o Object) (Object, error) {
	if err := json.Unmarshal(b, o); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	return o, nil
}

// vpcKey is the key of an object that lives in a VPC.
func vpcKey(vpc, name string) string { return vpc + "/" + name }

// keyInVPC validates and builds the key of a VPC-scoped object from its
// VPC and name, as a delete or update request names them.
func keyInVPC(vpc, name string) (string, *Error) {
	if err := ValidateName("vpc", vpc); err != nil {
		return "", err
	}
	if err := ValidateName("name", name); err != nil {
		return "", err
	}
	return vpcKey(vpc, name), nil
}
