package topology

import "net/netip"

// VPC is a tenant network. ID is assigned by the store, never reused, and is
// what the datapath carries in metadata (and as the VXLAN VNI).
type VPC struct {
	ID     uint32       `json:"id"`
	Name   string       `json:"name"`
	CIDR   netip.Prefix `json:"cidr,omitzero"`
	DecTTL bool         `json:"dec_ttl"`
}

// Key is the VPC's name.
func (v *VPC) Key() string      { return v.Name }
func (v *VPC) ObjectID() uint32 { return v.ID }
func (v *VPC) kind() kind       { return vpcKind{} }
func (v *VPC) setID(id uint32)  { v.ID = id }
func (v *VPC) clone() Object    { c := *v; return &c }

// VPC is the op's object when it is a VPC, else nil.
func (op Op) VPC() *VPC { v, _ := op.Obj.(*VPC); return v }

// vpcKind declares VPCs: global, refer to nothing; everything that lives
// in a VPC refers to it.
type vpcKind struct{}

func (vpcKind) name() string                    { return "vpc" }
func (vpcKind) title() string                   { return "VPC" }
func (vpcKind) plural() string                  { return "VPCs" }
func (vpcKind) vpcOf(Object) string             { return "" }
func (vpcKind) decode(b []byte) (Object, error) { return decodeJSON[VPC](b) }
func (vpcKind) refs(Object) []ref               { return nil }
func (vpcKind) uniques(Object) []unique         { return nil }

func (vpcKind) keyOf(o Object) (string, *Error) {
	v := o.(*VPC)
	return v.Name, ValidateName("name", v.Name)
}

func (vpcKind) check(o, old Object) *Error {
	if old != nil {
		return Invalid("", "a VPC cannot be updated; delete and re-create it")
	}
	v := o.(*VPC)
	if err := ValidateName("name", v.Name); err != nil {
		return err
	}
	if v.CIDR.IsValid() {
		return ValidateNetwork("cidr", v.CIDR, 8, 29)
	} else if v.CIDR != (netip.Prefix{}) {
		return Invalid("cidr", "invalid CIDR")
	}
	return nil
}

func (vpcKind) validate(*State, Object, Object) *Error { return nil }

// ---- accessors ----

// VPCs lists all VPCs, sorted by name.
func (st *State) VPCs() []VPC {
	return allAs(st, vpcKind{}, func(a, b *VPC) bool { return a.Name < b.Name })
}

// VPC returns the named VPC.
func (st *State) VPC(name string) (VPC, bool) { return getAs[VPC](st, vpcKind{}, name) }

// VPCByID returns the VPC with an ID.
func (st *State) VPCByID(id uint32) (VPC, bool) { return getAsByID[VPC](st, vpcKind{}, id) }
