package topology

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
)

// Host is a VM (ECS instance) NIC in a vSwitch. It is attached by
// Bridge+Interface (resolved through every --ovsdb server), by
// Chassis+Interface (resolved through that chassis's OVSDB and bridge), or
// by DPID+OFPort.
// MAC may be empty when Bridge+Interface is given and OVSDB knows the
// interface's external_ids:attached-mac; the API fills it in then.
// The same holds for Chassis+Interface, through that chassis's OVSDB.
type Host struct {
	ID      uint32     `json:"id"`
	VPC     string     `json:"vpc"`
	Name    string     `json:"name"`
	VSwitch string     `json:"vswitch"`
	IP      netip.Addr `json:"ip"`
	MAC     MAC        `json:"mac"`
	Bridge  string     `json:"bridge,omitempty"`
	// OVSDB is the --ovsdb server whose Bridge the host is on: needed when
	// several servers have a bridge of that name, filled in by the
	// controller when exactly one has it (so the attachment never moves to
	// another server's bridge of the same name).
	OVSDB     string `json:"ovsdb,omitempty"`
	Chassis   string `json:"chassis,omitempty"`
	Interface string `json:"interface,omitempty"`
	DPID      DPID   `json:"dpid,omitzero"`
	OFPort    uint32 `json:"ofport,omitempty"`
	// SecurityGroups are the groups the host is in (secgroup.go); CTZone
	// is its conntrack zone while it is in any, assigned by the store.
	SecurityGroups []string `json:"security_groups,omitempty"`
	CTZone         uint16   `json:"ct_zone,omitempty"`
}

// Key is "VPC/NAME".
func (h *Host) Key() string      { return vpcKey(h.VPC, h.Name) }
func (h *Host) ObjectID() uint32 { return h.ID }
func (h *Host) kind() kind       { return hostKind{} }
func (h *Host) setID(id uint32)  { h.ID = id }
func (h *Host) clone() Object    { c := cloneHost(*h); return &c }

// Host is the op's object when it is a host, else nil.
func (op Op) Host() *Host { h, _ := op.Obj.(*Host); return h }

// cloneHost copies h so that no MAC backing array is shared.
func cloneHost(h Host) Host {
	if h.MAC != nil {
		h.MAC = append(MAC(nil), h.MAC...)
	}
	h.SecurityGroups = slices.Clone(h.SecurityGroups)
	return h
}

// hostKind declares hosts: in a VPC and one of its vSwitches, optionally
// on a chassis; their IP (per VPC), MAC (per VPC: the tunnel delivers by
// VNI and MAC) and attachment (across VPCs) are unique. A host can be
// updated (PUT) to change its MAC or attachment; its IP, vSwitch and ID
// stay.
type hostKind struct{}

func (hostKind) name() string                    { return "host" }
func (hostKind) title() string                   { return "host" }
func (hostKind) plural() string                  { return "hosts" }
func (hostKind) vpcOf(o Object) string           { return o.(*Host).VPC }
func (hostKind) decode(b []byte) (Object, error) { return decodeJSON[Host](b) }

func (hostKind) keyOf(o Object) (string, *Error) {
	h := o.(*Host)
	return keyInVPC(h.VPC, h.Name)
}

func (hostKind) refs(o Object) []ref {
	h := o.(*Host)
	out := []ref{vpcRef(h.VPC), {field: "vswitch", to: vswitchKind{}, key: vpcKey(h.VPC, h.VSwitch),
		what: func() string { return fmt.Sprintf("vSwitch %q in VPC %q", h.VSwitch, h.VPC) }}}
	if h.Chassis != "" {
		out = append(out, ref{field: "chassis", to: chassisKind{}, key: h.Chassis, what: func() string { return fmt.Sprintf("chassis %q", h.Chassis) }})
	}
	for _, g := range h.SecurityGroups {
		out = append(out, secGroupRef(h.VPC, g))
	}
	return out
}

func (hostKind) uniques(o Object) []unique {
	h := o.(*Host)
	// Uniques are listed on every change, several times per host in a
	// bulk load (validation, insert, undo, insert again): one array, the
	// values built in one go, and messages formatted only when a value is
	// taken by closures over h alone (a closure per message and a growing
	// array were 7 % of a bulk load's allocation, issue 17).
	out := make([]unique, 0, 4)
	switch {
	case h.Bridge != "":
		out = append(out, unique{index: "attachment", field: "interface", value: "b\x00" + h.OVSDB + "\x00" + h.Bridge + "\x00" + h.Interface,
			taken: func(holder Object) string {
				what := h.Bridge + "/" + h.Interface
				if h.OVSDB != "" {
					what += " on " + h.OVSDB
				}
				return attachedAs(what, holder)
			}})
	case h.Chassis != "":
		out = append(out, unique{index: "attachment", field: "interface", value: "c\x00" + h.Chassis + "\x00" + h.Interface,
			taken: func(holder Object) string {
				return attachedAs(fmt.Sprintf("interface %s of chassis %q", quote(h.Interface), h.Chassis), holder)
			}})
	default:
		var b [48]byte
		v := strconv.AppendUint(append(b[:0], "p\x00"...), uint64(h.DPID), 10)
		v = strconv.AppendUint(append(v, 0), uint64(h.OFPort), 10)
		out = append(out, unique{index: "attachment", field: "ofport", value: string(v),
			taken: func(holder Object) string {
				return attachedAs(fmt.Sprintf("dpid %s port %d", h.DPID, h.OFPort), holder)
			}})
	}
	// Two statements: the order of the conversions in one is unspecified.
	var buf [64]byte
	ip := string(h.IP.AppendTo(scope(&buf, h.VPC)))
	mac := string(h.MAC.AppendTo(scope(&buf, h.VPC)))
	out = append(out,
		unique{index: "ip", field: "ip", value: ip,
			taken: func(holder Object) string { return usedBy(h.IP.String(), holder) }},
		// The tunnel delivers by VNI and MAC: two hosts of a VPC may not
		// share one. Stores from before this rule load with a warning.
		unique{index: "mac", field: "mac", value: mac,
			taken: func(holder Object) string { return usedBy(h.MAC.String(), holder) }, lenientOnLoad: true})
	return append(out, hostSecurityGroupUniques(h)...)
}

// scope starts a unique value scoped to a VPC in buf: "VPC\x00".
func scope(buf *[64]byte, vpc string) []byte {
	return append(append(buf[:0], vpc...), 0)
}

// usedBy says that what is another host's.
func usedBy(what string, holder Object) string {
	return fmt.Sprintf("%s is already used by host %q", what, holder.(*Host).Name)
}

// attachedAs says that the attachment what is another host's.
func attachedAs(what string, holder Object) string {
	other := holder.(*Host)
	return fmt.Sprintf("%s is already attached as host %q in VPC %q", what, other.Name, other.VPC)
}

func (hostKind) check(o, old Object) *Error {
	h := o.(*Host)
	if err := ValidateName("vpc", h.VPC); err != nil {
		return err
	}
	if err := ValidateName("name", h.Name); err != nil {
		return err
	}
	if old != nil {
		// An update keeps what is not given, and may not move the host to
		// another address or vSwitch (route entries and peers rely on them).
		was := old.(*Host)
		if h.VSwitch == "" {
			h.VSwitch = was.VSwitch
		}
		if !h.IP.IsValid() {
			h.IP = was.IP
		}
		if len(h.MAC) == 0 {
			h.MAC = append(MAC(nil), was.MAC...)
		}
		if h.Bridge == "" && h.OVSDB == "" && h.Chassis == "" && h.Interface == "" && h.DPID == 0 && h.OFPort == 0 {
			h.Bridge, h.OVSDB, h.Chassis, h.Interface, h.DPID, h.OFPort = was.Bridge, was.OVSDB, was.Chassis, was.Interface, was.DPID, was.OFPort
		}
		if h.VSwitch != was.VSwitch {
			return Invalid("vswitch", "the vSwitch of host %q cannot be changed (%s → %s); delete and re-create it", h.Name, was.VSwitch, h.VSwitch)
		}
		if h.IP != was.IP {
			return Invalid("ip", "the IP of host %q cannot be changed (%s → %s); delete and re-create it", h.Name, was.IP, h.IP)
		}
	}
	if err := ValidateName("vswitch", h.VSwitch); err != nil {
		return err
	}
	if err := validateIPv4("ip", h.IP); err != nil {
		return err
	}
	if err := ValidateMAC("mac", h.MAC); err != nil {
		return err
	}
	if err := validateAttachment(h); err != nil {
		return err
	}
	was, _ := old.(*Host)
	return checkHostSecurityGroups(h, was)
}

func (hostKind) validate(st *State, o, old Object) *Error {
	h := o.(*Host)
	if err := assignHostZone(st, h, old); err != nil {
		return err
	}
	w, _ := st.VSwitch(h.VPC, h.VSwitch)
	switch {
	case !w.CIDR.Contains(h.IP):
		return Invalid("ip", "%s is not inside vSwitch %q (%s)", h.IP, w.Name, w.CIDR)
	case h.IP == w.CIDR.Addr():
		return Invalid("ip", "%s is the network address of vSwitch %q (%s)", h.IP, w.Name, w.CIDR)
	case h.IP == Broadcast(w.CIDR):
		return Invalid("ip", "%s is the broadcast address of vSwitch %q (%s)", h.IP, w.Name, w.CIDR)
	case h.IP == w.Gateway:
		return Invalid("ip", "%s is the gateway of vSwitch %q", h.IP, w.Name)
	}
	return nil
}

// validateAttachment checks that the host is attached in exactly one way:
// bridge+interface, chassis+interface or dpid+ofport.
func validateAttachment(h *Host) *Error {
	const how = "bridge+interface, chassis+interface or dpid+ofport"
	byBridge := h.Bridge != ""
	byChassis := h.Chassis != ""
	byPort := h.DPID != 0 || h.OFPort != 0
	if h.OVSDB != "" {
		if !byBridge {
			return Invalid("ovsdb", "only with bridge+interface: it names the --ovsdb server of the bridge (a chassis host is found through its chassis's OVSDB)")
		}
		ep, err := ValidateOVSDB("ovsdb", h.OVSDB)
		if err != nil {
			return err
		}
		h.OVSDB = ep
	}
	switch {
	case byBridge && byChassis:
		return Invalid("chassis", "give either bridge+interface or chassis+interface, not both (bridge %s, chassis %s)", quote(h.Bridge), quote(h.Chassis))
	case (byBridge || byChassis || h.Interface != "") && byPort:
		field := "dpid"
		if h.DPID == 0 {
			field = "ofport"
		}
		by := "bridge+interface"
		if byChassis {
			by = "chassis+interface"
		}
		return Invalid(field, "give either %s or dpid+ofport, not both", by)
	case !byBridge && !byChassis && !byPort:
		if h.Interface != "" {
			return Invalid("bridge", "required with interface %s: give bridge (or chassis) with it", quote(h.Interface))
		}
		return Invalid("bridge", "required: attach the host by %s", how)
	case byBridge:
		if h.Interface == "" {
			return Invalid("interface", "required with bridge %s", quote(h.Bridge))
		}
		if err := validateIfaceName("bridge", h.Bridge); err != nil {
			return err
		}
		return validateIfaceName("interface", h.Interface)
	case byChassis:
		if err := ValidateName("chassis", h.Chassis); err != nil {
			return err
		}
		if h.Interface == "" {
			return Invalid("interface", "required with chassis %s", quote(h.Chassis))
		}
		return validateIfaceName("interface", h.Interface)
	default:
		if h.DPID == 0 {
			return Invalid("dpid", "required with ofport (and must not be 0)")
		}
		if h.OFPort == 0 {
			return Invalid("ofport", "required with dpid")
		}
		if h.OFPort > MaxOFPort {
			return Invalid("ofport", "%d is out of range: use 1..%d", h.OFPort, uint32(MaxOFPort))
		}
		return nil
	}
}

// ---- accessors ----

// Hosts lists a VPC's hosts, sorted by name.
func (st *State) Hosts(vpc string) []Host {
	return childrenAs[Host](st, vpcKind{}, vpc, hostKind{})
}

// AllHosts lists the hosts of every VPC, sorted by VPC then name.
func (st *State) AllHosts() []Host {
	return allAs(st, hostKind{}, func(a, b *Host) bool {
		if a.VPC != b.VPC {
			return a.VPC < b.VPC
		}
		return a.Name < b.Name
	})
}

// Host returns one host.
func (st *State) Host(vpc, name string) (Host, bool) {
	return getAs[Host](st, hostKind{}, vpcKey(vpc, name))
}

// HostByID returns the host with an ID.
func (st *State) HostByID(id uint32) (Host, bool) { return getAsByID[Host](st, hostKind{}, id) }

// HostByIP returns the host of a VPC that has address ip.
func (st *State) HostByIP(vpc string, ip netip.Addr) (Host, bool) {
	o, ok := st.holder(hostKind{}, "ip", vpc+"\x00"+ip.String())
	if !ok {
		return Host{}, false
	}
	return cloneHost(*o.(*Host)), true
}

// HostsOfVSwitch lists the hosts attached to a vSwitch, sorted by name.
func (st *State) HostsOfVSwitch(vpc, vswitch string) []Host {
	return childrenAs[Host](st, vswitchKind{}, vpcKey(vpc, vswitch), hostKind{})
}

// HostCountOfVSwitch is the number of hosts attached to a vSwitch
// (len(HostsOfVSwitch), without listing them): 0 for one that does not
// exist.
func (st *State) HostCountOfVSwitch(vpc, vswitch string) int {
	l, ok := st.referrerList(vswitchKind{}, vpcKey(vpc, vswitch), hostKind{})
	if !ok {
		return 0
	}
	return l.len()
}

// HostsOnChassis lists the hosts attached by chassis+interface to the named
// chassis, in every VPC, sorted by VPC then name.
func (st *State) HostsOnChassis(name string) []Host {
	return childrenAs[Host](st, chassisKind{}, name, hostKind{})
}

// Counts returns how many VPCs, vSwitches, hosts and subnets there are.
func (st *State) Counts() (vpcs, vswitches, hosts, subnets int) {
	return st.count(vpcKind{}), st.count(vswitchKind{}), st.count(hostKind{}), st.count(subnetKind{})
}

// intern makes a stored host share its VPC, vSwitch, chassis and group
// names with the stored objects of those names.
func (hostKind) intern(st *State, o Object) {
	h := o.(*Host)
	h.VPC = st.interned(vpcKind{}, h.VPC, h.VPC, func(o Object) string { return o.(*VPC).Name })
	h.VSwitch = st.interned(vswitchKind{}, vpcKey(h.VPC, h.VSwitch), h.VSwitch, func(o Object) string { return o.(*VSwitch).Name })
	if h.Chassis != "" {
		h.Chassis = st.interned(chassisKind{}, h.Chassis, h.Chassis, func(o Object) string { return o.(*Chassis).Name })
	}
	for i, g := range h.SecurityGroups {
		h.SecurityGroups[i] = st.interned(secGroupKind{}, vpcKey(h.VPC, g), g, func(o Object) string { return o.(*SecurityGroup).Name })
	}
}

func (h *Host) keyParts() (vpc, name string) { return h.VPC, h.Name }

// EachHost calls fn with each host of a VPC, or of one of its vSwitches
// when vswitch is not "", in no order, until fn returns false; nothing
// is copied (a list's page is found among 100,000 hosts without copying
// them). h is the stored host: fn reads it and must neither change nor
// keep it (Clone copies it).
func (st *State) EachHost(vpc, vswitch string, fn func(h *Host) bool) {
	visit := func(o Object) bool { return fn(o.(*Host)) }
	if vswitch != "" {
		st.eachReferrer(vswitchKind{}, vpcKey(vpc, vswitch), hostKind{}, visit)
		return
	}
	st.eachReferrer(vpcKind{}, vpc, hostKind{}, visit)
}

// Clone copies a host, sharing nothing with it.
func (h *Host) Clone() Host { return cloneHost(*h) }
