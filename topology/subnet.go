package topology

import (
	"fmt"
	"net/netip"
	"strings"
)

// Subnet is a VPC route entry: traffic to CIDR goes to Host.
type Subnet struct {
	ID   uint32       `json:"id"`
	VPC  string       `json:"vpc"`
	Name string       `json:"name"`
	CIDR netip.Prefix `json:"cidr"`
	Host string       `json:"host"`
}

// Key is "VPC/NAME".
func (s *Subnet) Key() string      { return vpcKey(s.VPC, s.Name) }
func (s *Subnet) ObjectID() uint32 { return s.ID }
func (s *Subnet) kind() kind       { return subnetKind{} }
func (s *Subnet) setID(id uint32)  { s.ID = id }
func (s *Subnet) clone() Object    { c := *s; return &c }

// Subnet is the op's object when it is a subnet, else nil.
func (op Op) Subnet() *Subnet { s, _ := op.Obj.(*Subnet); return s }

// DefaultSubnetName is the name a subnet gets when none is given:
// the CIDR with "/" written as "-".
func DefaultSubnetName(p netip.Prefix) string {
	return strings.ReplaceAll(p.String(), "/", "-")
}

// subnetKind declares route entries, with Aliyun's rules: the destination
// may not equal or sit inside a vSwitch CIDR (it may contain one), is
// unique per VPC, and the next hop is a host of the VPC. An update moves
// the entry to another host; its CIDR stays.
type subnetKind struct{}

func (subnetKind) name() string                    { return "subnet" }
func (subnetKind) title() string                   { return "subnet" }
func (subnetKind) plural() string                  { return "subnets" }
func (subnetKind) vpcOf(o Object) string           { return o.(*Subnet).VPC }
func (subnetKind) decode(b []byte) (Object, error) { return decodeJSON[Subnet](b) }

func (subnetKind) keyOf(o Object) (string, *Error) {
	s := o.(*Subnet)
	return keyInVPC(s.VPC, s.Name)
}

func (subnetKind) refs(o Object) []ref {
	s := o.(*Subnet)
	return []ref{vpcRef(s.VPC), {field: "host", to: hostKind{}, key: vpcKey(s.VPC, s.Host),
		what: func() string { return fmt.Sprintf("host %q in VPC %q", s.Host, s.VPC) }}}
}

func (subnetKind) uniques(o Object) []unique {
	s := o.(*Subnet)
	var buf [64]byte
	return []unique{{index: "cidr", field: "cidr", value: string(s.CIDR.AppendTo(scope(&buf, s.VPC))),
		taken: func(h Object) string {
			return fmt.Sprintf("a route entry for %s already exists: subnet %q", s.CIDR, h.(*Subnet).Name)
		}}}
}

func (subnetKind) check(o, old Object) *Error {
	s := o.(*Subnet)
	if err := ValidateName("vpc", s.VPC); err != nil {
		return err
	}
	if old != nil {
		was := old.(*Subnet)
		if s.CIDR.IsValid() && s.CIDR != was.CIDR {
			return Invalid("cidr", "the CIDR of subnet %q cannot be changed (%s → %s); delete it and create a new one", s.Name, was.CIDR, s.CIDR)
		}
		s.CIDR = was.CIDR
	}
	if err := ValidateRoute("cidr", s.CIDR); err != nil {
		return err
	}
	if s.Name == "" {
		s.Name = DefaultSubnetName(s.CIDR)
	}
	if err := ValidateName("name", s.Name); err != nil {
		return err
	}
	return ValidateName("host", s.Host)
}

func (subnetKind) validate(st *State, o, _ Object) *Error {
	s := o.(*Subnet)
	for _, w := range st.VSwitches(s.VPC) {
		if !w.CIDR.Overlaps(s.CIDR) || s.CIDR.Bits() < w.CIDR.Bits() {
			continue
		}
		how := "is inside"
		if w.CIDR == s.CIDR {
			how = "equals"
		}
		return Invalid("cidr", "destination %s overlaps vSwitch %q (%s): it %s the vSwitch CIDR, and a route entry may not equal or sit inside one", s.CIDR, w.Name, w.CIDR, how)
	}
	return nil
}

// ---- accessors ----

// Subnets lists a VPC's subnets (route entries), sorted by name.
func (st *State) Subnets(vpc string) []Subnet {
	return childrenAs[Subnet](st, vpcKind{}, vpc, subnetKind{})
}

// Subnet returns one subnet.
func (st *State) Subnet(vpc, name string) (Subnet, bool) {
	return getAs[Subnet](st, subnetKind{}, vpcKey(vpc, name))
}

// SubnetByID returns the subnet with an ID.
func (st *State) SubnetByID(id uint32) (Subnet, bool) { return getAsByID[Subnet](st, subnetKind{}, id) }

// SubnetsOfHost lists the subnets whose next hop is the host, sorted by
// name.
func (st *State) SubnetsOfHost(vpc, host string) []Subnet {
	return childrenAs[Subnet](st, hostKind{}, vpcKey(vpc, host), subnetKind{})
}

// intern makes a stored route entry share its VPC and next hop's names
// with the stored objects.
func (subnetKind) intern(st *State, o Object) {
	s := o.(*Subnet)
	s.VPC = st.interned(vpcKind{}, s.VPC, s.VPC, func(o Object) string { return o.(*VPC).Name })
	s.Host = st.interned(hostKind{}, vpcKey(s.VPC, s.Host), s.Host, func(o Object) string { return o.(*Host).Name })
}

func (s *Subnet) keyParts() (vpc, name string) { return s.VPC, s.Name }

// EachSubnet calls fn with each subnet (route entry) of a VPC, or only
// those whose next hop is host when host is not "", in no order, until fn
// returns false; nothing is copied. s is the stored subnet: fn reads it
// and must neither change nor keep it (a Subnet value is a copy).
func (st *State) EachSubnet(vpc, host string, fn func(s *Subnet) bool) {
	visit := func(o Object) bool { return fn(o.(*Subnet)) }
	if host != "" {
		st.eachReferrer(hostKind{}, vpcKey(vpc, host), subnetKind{}, visit)
		return
	}
	st.eachReferrer(vpcKind{}, vpc, subnetKind{}, visit)
}
