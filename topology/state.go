package topology

import (
	"net/netip"
	"sort"
)

// Object kinds, for ID counters and store buckets.
type objKind int

const (
	kindVPC objKind = iota
	kindVSwitch
	kindHost
	kindSubnet
	kindChassis
	numKinds
)

func (k objKind) String() string {
	return [...]string{"vpc", "vswitch", "host", "subnet", "chassis"}[k]
}

// loadOrder is the order the store loads kinds in: everything a kind
// refers to comes before it (hosts refer to VPCs, vSwitches and chassis).
func loadOrder() [numKinds]objKind {
	return [numKinds]objKind{kindChassis, kindVPC, kindVSwitch, kindHost, kindSubnet}
}

// State is the whole topology in memory, with the indexes that keep every
// change O(1) or O(#vSwitches in the VPC). It is only ever seen inside
// Store.Read; its accessors return copies.
type State struct {
	vpcs map[string]*vpcState

	// Chassis and their indexes: tunnel IPs and OVSDB bridges are unique.
	chassis           map[string]Chassis
	chassisByTunnelIP map[netip.Addr]string
	chassisByBridge   map[chassisBridgeKey]string
	hostsByChassis    map[string]map[hostRef]struct{}

	// Attachments are unique across all VPCs.
	byIface        map[ifaceKey]hostRef
	byChassisIface map[chassisIfaceKey]hostRef
	byOFPort       map[ofportKey]hostRef

	// lastID is the last ID handed out per kind; IDs are never reused.
	lastID [numKinds]uint32
}

type ifaceKey struct{ bridge, iface string }

type chassisIfaceKey struct{ chassis, iface string }

type chassisBridgeKey struct{ ovsdb, bridge string }

type ofportKey struct {
	dpid DPID
	port uint32
}

type hostRef struct{ vpc, name string }

type vpcState struct {
	vpc       VPC
	vswitches map[string]VSwitch
	hosts     map[string]Host
	subnets   map[string]Subnet

	hostByIP       map[netip.Addr]string
	hostsByVSwitch map[string]map[string]struct{}
	subnetsByHost  map[string]map[string]struct{}
	subnetByCIDR   map[netip.Prefix]string
	subnetTrie     prefixTrie
}

func newState() *State {
	return &State{
		vpcs:              map[string]*vpcState{},
		chassis:           map[string]Chassis{},
		chassisByTunnelIP: map[netip.Addr]string{},
		chassisByBridge:   map[chassisBridgeKey]string{},
		hostsByChassis:    map[string]map[hostRef]struct{}{},
		byIface:           map[ifaceKey]hostRef{},
		byChassisIface:    map[chassisIfaceKey]hostRef{},
		byOFPort:          map[ofportKey]hostRef{},
	}
}

func newVPCState(v VPC) *vpcState {
	return &vpcState{
		vpc:            v,
		vswitches:      map[string]VSwitch{},
		hosts:          map[string]Host{},
		subnets:        map[string]Subnet{},
		hostByIP:       map[netip.Addr]string{},
		hostsByVSwitch: map[string]map[string]struct{}{},
		subnetsByHost:  map[string]map[string]struct{}{},
		subnetByCIDR:   map[netip.Prefix]string{},
	}
}

// cloneHost copies h so that no MAC backing array is shared.
func cloneHost(h Host) Host {
	if h.MAC != nil {
		h.MAC = append(MAC(nil), h.MAC...)
	}
	return h
}

func addToSet(m map[string]map[string]struct{}, key, name string) {
	s := m[key]
	if s == nil {
		s = map[string]struct{}{}
		m[key] = s
	}
	s[name] = struct{}{}
}

func removeFromSet(m map[string]map[string]struct{}, key, name string) {
	s := m[key]
	delete(s, name)
	if len(s) == 0 {
		delete(m, key)
	}
}

func sortedKeys(s map[string]struct{}) []string {
	out := make([]string, 0, len(s))
	for k := range s {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ---- accessors ----

// VPCs lists all VPCs, sorted by name.
func (st *State) VPCs() []VPC {
	out := make([]VPC, 0, len(st.vpcs))
	for _, v := range st.vpcs {
		out = append(out, v.vpc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// VPC returns the named VPC.
func (st *State) VPC(name string) (VPC, bool) {
	v, ok := st.vpcs[name]
	if !ok {
		return VPC{}, false
	}
	return v.vpc, true
}

// VSwitches lists a VPC's vSwitches, sorted by name.
func (st *State) VSwitches(vpc string) []VSwitch {
	v, ok := st.vpcs[vpc]
	if !ok {
		return []VSwitch{}
	}
	out := make([]VSwitch, 0, len(v.vswitches))
	for _, w := range v.vswitches {
		out = append(out, w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// VSwitch returns one vSwitch.
func (st *State) VSwitch(vpc, name string) (VSwitch, bool) {
	v, ok := st.vpcs[vpc]
	if !ok {
		return VSwitch{}, false
	}
	w, ok := v.vswitches[name]
	return w, ok
}

// Hosts lists a VPC's hosts, sorted by name.
func (st *State) Hosts(vpc string) []Host {
	v, ok := st.vpcs[vpc]
	if !ok {
		return []Host{}
	}
	out := make([]Host, 0, len(v.hosts))
	for _, h := range v.hosts {
		out = append(out, cloneHost(h))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// AllHosts lists the hosts of every VPC, sorted by VPC then name.
func (st *State) AllHosts() []Host {
	n := 0
	for _, v := range st.vpcs {
		n += len(v.hosts)
	}
	out := make([]Host, 0, n)
	for _, v := range st.vpcs {
		for _, h := range v.hosts {
			out = append(out, cloneHost(h))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].VPC != out[j].VPC {
			return out[i].VPC < out[j].VPC
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Host returns one host.
func (st *State) Host(vpc, name string) (Host, bool) {
	v, ok := st.vpcs[vpc]
	if !ok {
		return Host{}, false
	}
	h, ok := v.hosts[name]
	if !ok {
		return Host{}, false
	}
	return cloneHost(h), true
}

// HostByIP returns the host of a VPC that has address ip.
func (st *State) HostByIP(vpc string, ip netip.Addr) (Host, bool) {
	v, ok := st.vpcs[vpc]
	if !ok {
		return Host{}, false
	}
	name, ok := v.hostByIP[ip]
	if !ok {
		return Host{}, false
	}
	return cloneHost(v.hosts[name]), true
}

// HostsOfVSwitch lists the hosts attached to a vSwitch, sorted by name.
func (st *State) HostsOfVSwitch(vpc, vswitch string) []Host {
	v, ok := st.vpcs[vpc]
	if !ok {
		return []Host{}
	}
	names := sortedKeys(v.hostsByVSwitch[vswitch])
	out := make([]Host, len(names))
	for i, n := range names {
		out[i] = cloneHost(v.hosts[n])
	}
	return out
}

// Subnets lists a VPC's subnets (route entries), sorted by name.
func (st *State) Subnets(vpc string) []Subnet {
	v, ok := st.vpcs[vpc]
	if !ok {
		return []Subnet{}
	}
	out := make([]Subnet, 0, len(v.subnets))
	for _, s := range v.subnets {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Subnet returns one subnet.
func (st *State) Subnet(vpc, name string) (Subnet, bool) {
	v, ok := st.vpcs[vpc]
	if !ok {
		return Subnet{}, false
	}
	s, ok := v.subnets[name]
	return s, ok
}

// SubnetsOfHost lists the subnets whose next hop is the host, sorted by
// name.
func (st *State) SubnetsOfHost(vpc, host string) []Subnet {
	v, ok := st.vpcs[vpc]
	if !ok {
		return []Subnet{}
	}
	names := sortedKeys(v.subnetsByHost[host])
	out := make([]Subnet, len(names))
	for i, n := range names {
		out[i] = v.subnets[n]
	}
	return out
}

// Counts returns how many VPCs, vSwitches, hosts and subnets there are.
func (st *State) Counts() (vpcs, vswitches, hosts, subnets int) {
	for _, v := range st.vpcs {
		vswitches += len(v.vswitches)
		hosts += len(v.hosts)
		subnets += len(v.subnets)
	}
	return len(st.vpcs), vswitches, hosts, subnets
}

// Chassis returns the named chassis.
func (st *State) Chassis(name string) (Chassis, bool) {
	c, ok := st.chassis[name]
	return c, ok
}

// AllChassis lists every chassis, sorted by name.
func (st *State) AllChassis() []Chassis {
	out := make([]Chassis, 0, len(st.chassis))
	for _, c := range st.chassis {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// HostsOnChassis lists the hosts attached by chassis+interface to the named
// chassis, in every VPC, sorted by VPC then name.
func (st *State) HostsOnChassis(name string) []Host {
	refs := sortedRefs(st.hostsByChassis[name])
	out := make([]Host, len(refs))
	for i, r := range refs {
		out[i] = cloneHost(st.vpcs[r.vpc].hosts[r.name])
	}
	return out
}

// sortedRefs sorts host references by VPC, then name.
func sortedRefs(s map[hostRef]struct{}) []hostRef {
	out := make([]hostRef, 0, len(s))
	for r := range s {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].vpc != out[j].vpc {
			return out[i].vpc < out[j].vpc
		}
		return out[i].name < out[j].name
	})
	return out
}

// ---- mutation (no validation: callers have checked the op) ----

func (st *State) insertVPC(v VPC) { st.vpcs[v.Name] = newVPCState(v) }

func (st *State) removeVPC(v VPC) { delete(st.vpcs, v.Name) }

func (st *State) insertVSwitch(w VSwitch) { st.vpcs[w.VPC].vswitches[w.Name] = w }

func (st *State) removeVSwitch(w VSwitch) { delete(st.vpcs[w.VPC].vswitches, w.Name) }

func (st *State) insertHost(h Host) {
	v := st.vpcs[h.VPC]
	h = cloneHost(h)
	v.hosts[h.Name] = h
	v.hostByIP[h.IP] = h.Name
	addToSet(v.hostsByVSwitch, h.VSwitch, h.Name)
	ref := hostRef{h.VPC, h.Name}
	switch {
	case h.Bridge != "":
		st.byIface[ifaceKey{h.Bridge, h.Interface}] = ref
	case h.Chassis != "":
		st.byChassisIface[chassisIfaceKey{h.Chassis, h.Interface}] = ref
		hs := st.hostsByChassis[h.Chassis]
		if hs == nil {
			hs = map[hostRef]struct{}{}
			st.hostsByChassis[h.Chassis] = hs
		}
		hs[ref] = struct{}{}
	default:
		st.byOFPort[ofportKey{h.DPID, h.OFPort}] = ref
	}
}

func (st *State) removeHost(h Host) {
	v := st.vpcs[h.VPC]
	delete(v.hosts, h.Name)
	delete(v.hostByIP, h.IP)
	removeFromSet(v.hostsByVSwitch, h.VSwitch, h.Name)
	switch {
	case h.Bridge != "":
		delete(st.byIface, ifaceKey{h.Bridge, h.Interface})
	case h.Chassis != "":
		delete(st.byChassisIface, chassisIfaceKey{h.Chassis, h.Interface})
		hs := st.hostsByChassis[h.Chassis]
		delete(hs, hostRef{h.VPC, h.Name})
		if len(hs) == 0 {
			delete(st.hostsByChassis, h.Chassis)
		}
	default:
		delete(st.byOFPort, ofportKey{h.DPID, h.OFPort})
	}
}

func (st *State) insertChassis(c Chassis) {
	st.chassis[c.Name] = c
	st.chassisByTunnelIP[c.TunnelIP] = c.Name
	st.chassisByBridge[chassisBridgeKey{c.OVSDB, c.Bridge}] = c.Name
}

func (st *State) removeChassis(c Chassis) {
	delete(st.chassis, c.Name)
	delete(st.chassisByTunnelIP, c.TunnelIP)
	delete(st.chassisByBridge, chassisBridgeKey{c.OVSDB, c.Bridge})
}

func (st *State) insertSubnet(s Subnet) {
	v := st.vpcs[s.VPC]
	v.subnets[s.Name] = s
	addToSet(v.subnetsByHost, s.Host, s.Name)
	v.subnetByCIDR[s.CIDR] = s.Name
	v.subnetTrie.insert(s.CIDR, s.Name)
}

func (st *State) removeSubnet(s Subnet) {
	v := st.vpcs[s.VPC]
	delete(v.subnets, s.Name)
	removeFromSet(v.subnetsByHost, s.Host, s.Name)
	delete(v.subnetByCIDR, s.CIDR)
	v.subnetTrie.remove(s.CIDR)
}

// mutate performs a resolved op (as returned by prepare) on the state.
func (st *State) mutate(op Op) {
	switch {
	case op.VPC != nil:
		if op.Kind == OpCreate {
			st.insertVPC(*op.VPC)
		} else {
			st.removeVPC(*op.VPC)
		}
	case op.VSwitch != nil:
		if op.Kind == OpCreate {
			st.insertVSwitch(*op.VSwitch)
		} else {
			st.removeVSwitch(*op.VSwitch)
		}
	case op.Host != nil:
		if op.Kind == OpCreate {
			st.insertHost(*op.Host)
		} else {
			st.removeHost(*op.Host)
		}
	case op.Chassis != nil:
		if op.Kind == OpCreate {
			st.insertChassis(*op.Chassis)
		} else {
			st.removeChassis(*op.Chassis)
		}
	case op.Subnet != nil:
		switch op.Kind {
		case OpCreate:
			st.insertSubnet(*op.Subnet)
		case OpDelete:
			st.removeSubnet(*op.Subnet)
		case OpUpdate:
			st.removeSubnet(*op.Old.(*Subnet))
			st.insertSubnet(*op.Subnet)
		}
	}
}

// inverse returns the op that undoes a resolved op.
func inverse(op Op) Op {
	inv := op
	switch op.Kind {
	case OpCreate:
		inv.Kind = OpDelete
	case OpDelete:
		inv.Kind = OpCreate
		inv.Old = nil
	case OpUpdate:
		// Only subnets can be updated.
		inv.Subnet = op.Old.(*Subnet)
		inv.Old = op.Subnet
	}
	return inv
}
