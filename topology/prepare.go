package topology

import (
	"fmt"
	"math"
	"net/netip"
	"sort"
)

// prepare validates op against st and returns it resolved: objects copied,
// defaults and IDs filled in, deletes carrying the whole object, Old set.
// It hands out IDs by advancing st.lastID but changes nothing else; the
// caller then calls mutate with the result.
func (st *State) prepare(op Op) (Op, *Error) {
	n := 0
	for _, set := range []bool{op.VPC != nil, op.VSwitch != nil, op.Host != nil, op.Subnet != nil, op.Chassis != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return Op{}, Invalid("", "a change must carry exactly one of vpc, vswitch, host, subnet or chassis (got %d)", n)
	}
	if op.Cascade && op.Kind != OpDelete {
		return Op{}, Invalid("cascade", "only a delete can cascade, not a %s", op.Kind)
	}
	switch op.Kind {
	case OpCreate:
		switch {
		case op.VPC != nil:
			return st.prepareCreateVPC(*op.VPC)
		case op.VSwitch != nil:
			return st.prepareCreateVSwitch(*op.VSwitch)
		case op.Host != nil:
			return st.prepareCreateHost(cloneHost(*op.Host))
		case op.Chassis != nil:
			return st.prepareCreateChassis(*op.Chassis)
		default:
			return st.prepareCreateSubnet(*op.Subnet)
		}
	case OpDelete:
		var r Op
		var err *Error
		switch {
		case op.VPC != nil:
			r, err = st.prepareDeleteVPC(op.VPC.Name, op.Cascade)
		case op.VSwitch != nil:
			r, err = st.prepareDeleteVSwitch(op.VSwitch.VPC, op.VSwitch.Name, op.Cascade)
		case op.Host != nil:
			r, err = st.prepareDeleteHost(op.Host.VPC, op.Host.Name, op.Cascade)
		case op.Chassis != nil:
			r, err = st.prepareDeleteChassis(op.Chassis.Name, op.Cascade)
		default:
			// A subnet holds nothing: Cascade changes nothing.
			r, err = st.prepareDeleteSubnet(op.Subnet.VPC, op.Subnet.Name)
		}
		if err != nil {
			return Op{}, err
		}
		r.Cascade = op.Cascade
		return r, nil
	case OpUpdate:
		if op.Subnet == nil {
			kind := "VPC"
			switch {
			case op.VSwitch != nil:
				kind = "vSwitch"
			case op.Host != nil:
				kind = "host"
			case op.Chassis != nil:
				kind = "chassis"
			}
			return Op{}, Invalid("", "a %s cannot be updated; delete and re-create it", kind)
		}
		return st.prepareUpdateSubnet(*op.Subnet)
	default:
		return Op{}, Invalid("", "unknown change kind %s", op.Kind)
	}
}

// nextID hands out the next ID of a kind.
func (st *State) nextID(k objKind) (uint32, *Error) {
	if st.lastID[k] == math.MaxUint32 {
		return 0, Conflict("", "no %s IDs left", k)
	}
	st.lastID[k]++
	return st.lastID[k], nil
}

func (st *State) vpcOf(name string) (*vpcState, *Error) {
	v, ok := st.vpcs[name]
	if !ok {
		return nil, NotFound("vpc", "VPC %s does not exist", quote(name))
	}
	return v, nil
}

// ---- creates ----

func (st *State) prepareCreateVPC(v VPC) (Op, *Error) {
	if err := validateVPC(&v); err != nil {
		return Op{}, err
	}
	if _, ok := st.vpcs[v.Name]; ok {
		return Op{}, Conflict("name", "VPC %q already exists", v.Name)
	}
	id, err := st.nextID(kindVPC)
	if err != nil {
		return Op{}, err
	}
	v.ID = id
	return Op{Kind: OpCreate, VPC: &v}, nil
}

func (st *State) prepareCreateVSwitch(w VSwitch) (Op, *Error) {
	if err := validateVSwitch(&w); err != nil {
		return Op{}, err
	}
	v, err := st.vpcOf(w.VPC)
	if err != nil {
		return Op{}, err
	}
	if vc := v.vpc.CIDR; vc.IsValid() && (vc.Bits() > w.CIDR.Bits() || !vc.Contains(w.CIDR.Addr())) {
		return Op{}, Invalid("cidr", "%s is not inside the VPC CIDR %s", w.CIDR, vc)
	}
	if _, ok := v.vswitches[w.Name]; ok {
		return Op{}, Conflict("name", "vSwitch %q already exists in VPC %q", w.Name, w.VPC)
	}
	for _, o := range v.vswitches {
		if o.CIDR.Overlaps(w.CIDR) {
			return Op{}, Conflict("cidr", "%s overlaps vSwitch %q (%s)", w.CIDR, o.Name, o.CIDR)
		}
	}
	// Route entries may not equal or sit inside a vSwitch CIDR; keep that
	// true when the vSwitch comes second. A route entry that contains the
	// new vSwitch (0.0.0.0/0 to an SNAT instance, say) is fine: the hosts'
	// /32 routes are longer and win.
	if p, name, ok := v.subnetTrie.within(w.CIDR); ok {
		return Op{}, Conflict("cidr", "%s overlaps subnet (route entry) %q (%s)", w.CIDR, name, p)
	}
	id, err := st.nextID(kindVSwitch)
	if err != nil {
		return Op{}, err
	}
	w.ID = id
	return Op{Kind: OpCreate, VSwitch: &w}, nil
}

func (st *State) prepareCreateHost(h Host) (Op, *Error) {
	if err := validateHost(&h); err != nil {
		return Op{}, err
	}
	v, err := st.vpcOf(h.VPC)
	if err != nil {
		return Op{}, err
	}
	w, ok := v.vswitches[h.VSwitch]
	if !ok {
		return Op{}, NotFound("vswitch", "vSwitch %q does not exist in VPC %q", h.VSwitch, h.VPC)
	}
	if h.Chassis != "" {
		if _, ok := st.chassis[h.Chassis]; !ok {
			return Op{}, NotFound("chassis", "chassis %q does not exist", h.Chassis)
		}
	}
	switch {
	case !w.CIDR.Contains(h.IP):
		return Op{}, Invalid("ip", "%s is not inside vSwitch %q (%s)", h.IP, w.Name, w.CIDR)
	case h.IP == w.CIDR.Addr():
		return Op{}, Invalid("ip", "%s is the network address of vSwitch %q (%s)", h.IP, w.Name, w.CIDR)
	case h.IP == Broadcast(w.CIDR):
		return Op{}, Invalid("ip", "%s is the broadcast address of vSwitch %q (%s)", h.IP, w.Name, w.CIDR)
	case h.IP == w.Gateway:
		return Op{}, Invalid("ip", "%s is the gateway of vSwitch %q", h.IP, w.Name)
	}
	if _, ok := v.hosts[h.Name]; ok {
		return Op{}, Conflict("name", "host %q already exists in VPC %q", h.Name, h.VPC)
	}
	if other, ok := v.hostByIP[h.IP]; ok {
		return Op{}, Conflict("ip", "%s is already used by host %q", h.IP, other)
	}
	switch {
	case h.Bridge != "":
		if r, ok := st.byIface[ifaceKey{h.Bridge, h.Interface}]; ok {
			return Op{}, Conflict("interface", "%s/%s is already attached as host %q in VPC %q", h.Bridge, h.Interface, r.name, r.vpc)
		}
	case h.Chassis != "":
		if r, ok := st.byChassisIface[chassisIfaceKey{h.Chassis, h.Interface}]; ok {
			return Op{}, Conflict("interface", "interface %s of chassis %q is already attached as host %q in VPC %q", quote(h.Interface), h.Chassis, r.name, r.vpc)
		}
	default:
		if r, ok := st.byOFPort[ofportKey{h.DPID, h.OFPort}]; ok {
			return Op{}, Conflict("ofport", "dpid %s port %d is already attached as host %q in VPC %q", h.DPID, h.OFPort, r.name, r.vpc)
		}
	}
	id, err := st.nextID(kindHost)
	if err != nil {
		return Op{}, err
	}
	h.ID = id
	return Op{Kind: OpCreate, Host: &h}, nil
}

func (st *State) prepareCreateSubnet(s Subnet) (Op, *Error) {
	if err := validateSubnet(&s); err != nil {
		return Op{}, err
	}
	v, err := st.vpcOf(s.VPC)
	if err != nil {
		return Op{}, err
	}
	if err := checkRouteAgainstVSwitches(v, s.CIDR); err != nil {
		return Op{}, err
	}
	if _, ok := v.hosts[s.Host]; !ok {
		return Op{}, NotFound("host", "host %q does not exist in VPC %q", s.Host, s.VPC)
	}
	if other, ok := v.subnetByCIDR[s.CIDR]; ok {
		return Op{}, Conflict("cidr", "a route entry for %s already exists: subnet %q", s.CIDR, other)
	}
	if _, ok := v.subnets[s.Name]; ok {
		return Op{}, Conflict("name", "subnet %q already exists in VPC %q", s.Name, s.VPC)
	}
	id, err := st.nextID(kindSubnet)
	if err != nil {
		return Op{}, err
	}
	s.ID = id
	return Op{Kind: OpCreate, Subnet: &s}, nil
}

// checkRouteAgainstVSwitches applies Aliyun's rule that a route entry's
// destination may not equal or sit inside a vSwitch CIDR. It may contain
// one (0.0.0.0/0 to an SNAT instance is the classic case): every host's /32
// route is longer, so traffic to the vSwitch's VMs is never hijacked.
func checkRouteAgainstVSwitches(v *vpcState, p netip.Prefix) *Error {
	for _, w := range v.vswitches {
		if !w.CIDR.Overlaps(p) || p.Bits() < w.CIDR.Bits() {
			continue
		}
		how := "is inside"
		if w.CIDR == p {
			how = "equals"
		}
		return Invalid("cidr", "destination %s overlaps vSwitch %q (%s): it %s the vSwitch CIDR, and a route entry may not equal or sit inside one", p, w.Name, w.CIDR, how)
	}
	return nil
}

// ---- updates ----

func (st *State) prepareUpdateSubnet(s Subnet) (Op, *Error) {
	if err := ValidateName("vpc", s.VPC); err != nil {
		return Op{}, err
	}
	if err := ValidateName("name", s.Name); err != nil {
		return Op{}, err
	}
	v, err := st.vpcOf(s.VPC)
	if err != nil {
		return Op{}, err
	}
	old, ok := v.subnets[s.Name]
	if !ok {
		return Op{}, NotFound("name", "subnet %q does not exist in VPC %q", s.Name, s.VPC)
	}
	if s.CIDR.IsValid() && s.CIDR != old.CIDR {
		return Op{}, Invalid("cidr", "the CIDR of subnet %q cannot be changed (%s → %s); delete it and create a new one", s.Name, old.CIDR, s.CIDR)
	}
	if err := ValidateName("host", s.Host); err != nil {
		return Op{}, err
	}
	if _, ok := v.hosts[s.Host]; !ok {
		return Op{}, NotFound("host", "host %q does not exist in VPC %q", s.Host, s.VPC)
	}
	nu := old
	nu.Host = s.Host
	return Op{Kind: OpUpdate, Subnet: &nu, Old: &old}, nil
}

// ---- deletes ----

// cascadeHint ends the message of a delete refused because the object is
// still in use.
const cascadeHint = "(use ?cascade=true to delete them too)"

func (st *State) prepareDeleteVPC(name string, cascade bool) (Op, *Error) {
	v, ok := st.vpcs[name]
	if !ok {
		return Op{}, NotFound("name", "VPC %s does not exist", quote(name))
	}
	// Without cascade a VPC must be empty; with it, do expands the delete
	// into deletes of its subnets, hosts and vSwitches (see dependents).
	if !cascade && len(v.vswitches)+len(v.hosts)+len(v.subnets) > 0 {
		var parts []string
		add := func(n int, one, many string, names []string) {
			if n == 0 {
				return
			}
			what := one
			if n != 1 {
				what = many
			}
			parts = append(parts, fmt.Sprintf("%d %s (%s)", n, what, describeNames(names, 3)))
		}
		add(len(v.vswitches), "vSwitch", "vSwitches", sortedMapKeys(v.vswitches))
		add(len(v.hosts), "host", "hosts", sortedMapKeys(v.hosts))
		add(len(v.subnets), "subnet", "subnets", sortedMapKeys(v.subnets))
		return Op{}, Conflict("name", "VPC %q is not empty: it still has %s; delete them first %s", name, joinParts(parts), cascadeHint)
	}
	vpc := v.vpc
	old := vpc
	return Op{Kind: OpDelete, VPC: &vpc, Old: &old}, nil
}

func (st *State) prepareDeleteVSwitch(vpc, name string, cascade bool) (Op, *Error) {
	v, err := st.vpcOf(vpc)
	if err != nil {
		return Op{}, err
	}
	w, ok := v.vswitches[name]
	if !ok {
		return Op{}, NotFound("name", "vSwitch %s does not exist in VPC %q", quote(name), vpc)
	}
	if hs := v.hostsByVSwitch[name]; !cascade && len(hs) > 0 {
		return Op{}, Conflict("name", "vSwitch %q still has %d host(s): %s; delete them first %s", name, len(hs), describeNames(sortedKeys(hs), 3), cascadeHint)
	}
	old := w
	return Op{Kind: OpDelete, VSwitch: &w, Old: &old}, nil
}

func (st *State) prepareDeleteHost(vpc, name string, cascade bool) (Op, *Error) {
	v, err := st.vpcOf(vpc)
	if err != nil {
		return Op{}, err
	}
	h, ok := v.hosts[name]
	if !ok {
		return Op{}, NotFound("name", "host %s does not exist in VPC %q", quote(name), vpc)
	}
	if ss := v.subnetsByHost[name]; !cascade && len(ss) > 0 {
		return Op{}, Conflict("name", "host %q is the next hop of %d subnet(s): %s; delete or move them first %s", name, len(ss), describeNames(sortedKeys(ss), 3), cascadeHint)
	}
	h = cloneHost(h)
	old := cloneHost(h)
	return Op{Kind: OpDelete, Host: &h, Old: &old}, nil
}

func (st *State) prepareDeleteSubnet(vpc, name string) (Op, *Error) {
	v, err := st.vpcOf(vpc)
	if err != nil {
		return Op{}, err
	}
	s, ok := v.subnets[name]
	if !ok {
		return Op{}, NotFound("name", "subnet %s does not exist in VPC %q", quote(name), vpc)
	}
	old := s
	return Op{Kind: OpDelete, Subnet: &s, Old: &old}, nil
}

// dependents returns what a resolved cascading delete takes with it, as
// resolved deletes of their own: subnets, then hosts, then vSwitches, each
// kind sorted by name (for a chassis, whose hosts may be in several VPCs,
// by VPC and name). Performed in that order, before the op itself, each
// one leaves the state consistent. Nothing is changed.
func (st *State) dependents(op Op) []Op {
	var subnets, hosts, vswitches []string
	var v *vpcState
	switch {
	case op.VPC != nil:
		v = st.vpcs[op.VPC.Name]
		subnets = sortedMapKeys(v.subnets)
		hosts = sortedMapKeys(v.hosts)
		vswitches = sortedMapKeys(v.vswitches)
	case op.VSwitch != nil:
		v = st.vpcs[op.VSwitch.VPC]
		hosts = sortedKeys(v.hostsByVSwitch[op.VSwitch.Name])
		for _, h := range hosts {
			for s := range v.subnetsByHost[h] {
				subnets = append(subnets, s)
			}
		}
		sort.Strings(subnets)
	case op.Host != nil:
		v = st.vpcs[op.Host.VPC]
		subnets = sortedKeys(v.subnetsByHost[op.Host.Name])
	case op.Chassis != nil:
		return st.chassisDependents(op.Chassis.Name)
	default:
		return nil
	}
	out := make([]Op, 0, len(subnets)+len(hosts)+len(vswitches))
	for _, name := range subnets {
		s := v.subnets[name]
		old := s
		out = append(out, Op{Kind: OpDelete, Subnet: &s, Old: &old})
	}
	for _, name := range hosts {
		h := cloneHost(v.hosts[name])
		old := cloneHost(h)
		out = append(out, Op{Kind: OpDelete, Host: &h, Old: &old})
	}
	for _, name := range vswitches {
		w := v.vswitches[name]
		old := w
		out = append(out, Op{Kind: OpDelete, VSwitch: &w, Old: &old})
	}
	return out
}

func sortedMapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func joinParts(parts []string) string {
	switch len(parts) {
	case 0:
		return ""
	case 1:
		return parts[0]
	}
	out := parts[0]
	for _, p := range parts[1 : len(parts)-1] {
		out += ", " + p
	}
	return out + " and " + parts[len(parts)-1]
}
