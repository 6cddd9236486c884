package topology

import "net/netip"

// VSwitch is a subnet of a VPC that hosts attach to. Gateway defaults to the
// CIDR's broadcast address minus 2, as on Aliyun.
type VSwitch struct {
	ID      uint32       `json:"id"`
	VPC     string       `json:"vpc"`
	Name    string       `json:"name"`
	CIDR    netip.Prefix `json:"cidr"`
	Gateway netip.Addr   `json:"gateway"`
}

// Key is "VPC/NAME".
func (w *VSwitch) Key() string      { return vpcKey(w.VPC, w.Name) }
func (w *VSwitch) ObjectID() uint32 { return w.ID }
func (w *VSwitch) kind() kind       { return vswitchKind{} }
func (w *VSwitch) setID(id uint32)  { w.ID = id }
func (w *VSwitch) clone() Object    { c := *w; return &c }

// VSwitch is the op's object when it is a vSwitch, else nil.
func (op Op) VSwitch() *VSwitch { w, _ := op.Obj.(*VSwitch); return w }

// vswitchKind declares vSwitches: in a VPC, with a CIDR inside the VPC's,
// overlapping no other vSwitch of the VPC and holding no route entry.
type vswitchKind struct{}

func (vswitchKind) name() string                    { return "vswitch" }
func (vswitchKind) title() string                   { return "vSwitch" }
func (vswitchKind) plural() string                  { return "vSwitches" }
func (vswitchKind) vpcOf(o Object) string           { return o.(*VSwitch).VPC }
func (vswitchKind) decode(b []byte) (Object, error) { return decodeJSON[VSwitch](b) }
func (vswitchKind) uniques(Object) []unique         { return nil }

func (vswitchKind) keyOf(o Object) (string, *Error) {
	w := o.(*VSwitch)
	return keyInVPC(w.VPC, w.Name)
}

func (vswitchKind) refs(o Object) []ref {
	w := o.(*VSwitch)
	return []ref{vpcRef(w.VPC)}
}

// vpcRef is the reference of an object that lives in VPC vpc.
func vpcRef(vpc string) ref {
	return ref{field: "vpc", to: vpcKind{}, key: vpc, what: func() string { return "VPC " + quote(vpc) }}
}

func (vswitchKind) check(o, old Object) *Error {
	if old != nil {
		return Invalid("", "a vSwitch cannot be updated; delete and re-create it")
	}
	w := o.(*VSwitch)
	if err := ValidateName("vpc", w.VPC); err != nil {
		return err
	}
	if err := ValidateName("name", w.Name); err != nil {
		return err
	}
	if err := ValidateNetwork("cidr", w.CIDR, MinVSwitchBits, MaxVSwitchBits); err != nil {
		return err
	}
	if !w.Gateway.IsValid() {
		w.Gateway = DefaultGateway(w.CIDR)
		return nil
	}
	if err := validateIPv4("gateway", w.Gateway); err != nil {
		return err
	}
	if !w.CIDR.Contains(w.Gateway) {
		return Invalid("gateway", "%s is not inside the vSwitch CIDR %s", w.Gateway, w.CIDR)
	}
	if w.Gateway == w.CIDR.Addr() {
		return Invalid("gateway", "%s is the network address of %s", w.Gateway, w.CIDR)
	}
	if w.Gateway == Broadcast(w.CIDR) {
		return Invalid("gateway", "%s is the broadcast address of %s", w.Gateway, w.CIDR)
	}
	return nil
}

func (vswitchKind) validate(st *State, o, _ Object) *Error {
	w := o.(*VSwitch)
	v, _ := st.VPC(w.VPC)
	if vc := v.CIDR; vc.IsValid() && (vc.Bits() > w.CIDR.Bits() || !vc.Contains(w.CIDR.Addr())) {
		return Invalid("cidr", "%s is not inside the VPC CIDR %s", w.CIDR, vc)
	}
	for _, other := range st.VSwitches(w.VPC) {
		if other.Name != w.Name && other.CIDR.Overlaps(w.CIDR) {
			return Conflict("cidr", "%s overlaps vSwitch %q (%s)", w.CIDR, other.Name, other.CIDR)
		}
	}
	// Route entries may not equal or sit inside a vSwitch CIDR; keep that
	// true when the vSwitch comes second. A route entry that contains the
	// new vSwitch (0.0.0.0/0 to an SNAT instance, say) is fine: the
	// vSwitch's own route is longer and wins.
	var clash *Subnet
	st.eachReferrer(vpcKind{}, w.VPC, subnetKind{}, func(o Object) bool {
		s := o.(*Subnet)
		if s.CIDR.Overlaps(w.CIDR) && s.CIDR.Bits() >= w.CIDR.Bits() && (clash == nil || s.Name < clash.Name) {
			clash = s
		}
		return true
	})
	if clash != nil {
		return Conflict("cidr", "%s overlaps subnet (route entry) %q (%s)", w.CIDR, clash.Name, clash.CIDR)
	}
	return nil
}

// ---- accessors ----

// VSwitches lists a VPC's vSwitches, sorted by name.
func (st *State) VSwitches(vpc string) []VSwitch {
	return childrenAs[VSwitch](st, vpcKind{}, vpc, vswitchKind{})
}

// VSwitch returns one vSwitch.
func (st *State) VSwitch(vpc, name string) (VSwitch, bool) {
	return getAs[VSwitch](st, vswitchKind{}, vpcKey(vpc, name))
}

// VSwitchByID returns the vSwitch with an ID.
func (st *State) VSwitchByID(id uint32) (VSwitch, bool) {
	return getAsByID[VSwitch](st, vswitchKind{}, id)
}

// VSwitchOf returns the vSwitch of a VPC whose CIDR holds a.
func (st *State) VSwitchOf(vpc string, a netip.Addr) (VSwitch, bool) {
	for _, key := range st.referrersOf(vpcKind{}, vpc, vswitchKind{}) {
		o, _ := st.get(vswitchKind{}, key)
		if w := o.(*VSwitch); w.CIDR.Contains(a) {
			return *w, true
		}
	}
	return VSwitch{}, false
}

func (w *VSwitch) keyParts() (vpc, name string) { return w.VPC, w.Name }
