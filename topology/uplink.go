package topology

import (
	"fmt"
	"hash/fnv"
	"net/netip"
)

// Uplink is a bridge's external interface toward an outside network: the
// way out of the fabric for NAT gateways and EIPs (natgateway.go, eip.go).
// It is attached like a host (Chassis+Interface, Bridge+Interface or
// DPID+OFPort). CIDR is the public prefix on that link, from which NAT
// gateway and EIP addresses come; Gateway is the next-hop router on it.
// vpcflow answers ARP on the uplink for the public addresses it owns, with
// MAC, and learns the router's MAC (RouterMAC) by ARP; the learned MAC is
// stored, so a restarted controller forwards at once.
type Uplink struct {
	ID        uint32 `json:"id"`
	Name      string `json:"name"`
	Chassis   string `json:"chassis,omitempty"`
	Bridge    string `json:"bridge,omitempty"`
	OVSDB     string `json:"ovsdb,omitempty"`
	Interface string `json:"interface,omitempty"`
	DPID      DPID   `json:"dpid,omitzero"`
	OFPort    uint32 `json:"ofport,omitempty"`
	// CIDR is the public prefix on the link (e.g. 203.0.113.0/24).
	CIDR netip.Prefix `json:"cidr"`
	// Gateway is the next-hop router's address, inside CIDR.
	Gateway netip.Addr `json:"gateway"`
	// MAC is the source of everything vpcflow sends on the uplink and the
	// answer to ARP for the public addresses it owns; default: one
	// derived from the name (02:76:70:…).
	MAC MAC `json:"mac"`
	// RouterMAC is the router's MAC as last learned by ARP (or as given);
	// until it is known nothing leaves by the uplink.
	RouterMAC MAC `json:"router_mac,omitempty"`
}

// NATTunnelMACString is the destination MAC of the packets a chassis sends
// through VXLAN to the chassis of their VPC's NAT gateway or EIP (the
// gateway chassis, where the uplink is); no host may have it.
const NATTunnelMACString = "ee:ff:ff:ff:ff:fe"

// NATTunnelMAC is NATTunnelMACString as a MAC.
var NATTunnelMAC = MAC{0xee, 0xff, 0xff, 0xff, 0xff, 0xfe}

// Key is the uplink's name.
func (u *Uplink) Key() string      { return u.Name }
func (u *Uplink) ObjectID() uint32 { return u.ID }
func (u *Uplink) kind() kind       { return uplinkKind{} }
func (u *Uplink) setID(id uint32)  { u.ID = id }
func (u *Uplink) clone() Object {
	c := *u
	c.MAC = append(MAC(nil), u.MAC...)
	c.RouterMAC = append(MAC(nil), u.RouterMAC...)
	if len(u.RouterMAC) == 0 {
		c.RouterMAC = nil
	}
	return &c
}

// Uplink is the op's object when it is an uplink, else nil.
func (op Op) Uplink() *Uplink { u, _ := op.Obj.(*Uplink); return u }

// AsHost is the uplink's attachment written as a host's, for resolving it
// to a port the way hosts are.
func (u *Uplink) AsHost() Host {
	return Host{Name: u.Name, Chassis: u.Chassis, Bridge: u.Bridge, OVSDB: u.OVSDB, Interface: u.Interface, DPID: u.DPID, OFPort: u.OFPort}
}

// DefaultUplinkMAC is the MAC an uplink gets when none is given: locally
// administered, 02:76:70 and three bytes of a hash of its name.
func DefaultUplinkMAC(name string) MAC {
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	v := h.Sum32()
	return MAC{0x02, 0x76, 0x70, byte(v >> 16), byte(v >> 8), byte(v)}
}

// uplinkKind declares uplinks: global, optionally on a chassis; NAT
// gateways and EIPs refer to them. An update may change the MACs and the
// next-hop router; the attachment and the prefix stay.
type uplinkKind struct{}

func (uplinkKind) name() string                    { return "uplink" }
func (uplinkKind) title() string                   { return "uplink" }
func (uplinkKind) plural() string                  { return "uplinks" }
func (uplinkKind) vpcOf(Object) string             { return "" }
func (uplinkKind) decode(b []byte) (Object, error) { return decodeJSON[Uplink](b) }

func (uplinkKind) keyOf(o Object) (string, *Error) {
	u := o.(*Uplink)
	return u.Name, ValidateName("name", u.Name)
}

func (uplinkKind) refs(o Object) []ref {
	u := o.(*Uplink)
	if u.Chassis == "" {
		return nil
	}
	return []ref{{field: "chassis", to: chassisKind{}, key: u.Chassis, what: func() string { return fmt.Sprintf("chassis %q", u.Chassis) }}}
}

// attachmentValue is the uplink's attachment as the hosts' "attachment"
// index writes it, so that one interface is never both.
func (u *Uplink) attachmentValue() string {
	switch {
	case u.Bridge != "":
		return "b\x00" + u.OVSDB + "\x00" + u.Bridge + "\x00" + u.Interface
	case u.Chassis != "":
		return "c\x00" + u.Chassis + "\x00" + u.Interface
	}
	return fmt.Sprintf("p\x00%d\x00%d", u.DPID, u.OFPort)
}

func (uplinkKind) uniques(o Object) []unique {
	u := o.(*Uplink)
	return []unique{{index: "attachment", field: "interface", value: u.attachmentValue(), taken: func(h Object) string {
		return fmt.Sprintf("that interface is already uplink %q", h.(*Uplink).Name)
	}}}
}

func (uplinkKind) check(o, old Object) *Error {
	u := o.(*Uplink)
	if err := ValidateName("name", u.Name); err != nil {
		return err
	}
	if old != nil {
		was := old.(*Uplink)
		if u.Bridge == "" && u.OVSDB == "" && u.Chassis == "" && u.Interface == "" && u.DPID == 0 && u.OFPort == 0 {
			u.Bridge, u.OVSDB, u.Chassis, u.Interface, u.DPID, u.OFPort = was.Bridge, was.OVSDB, was.Chassis, was.Interface, was.DPID, was.OFPort
		}
		if u.attachmentValue() != was.attachmentValue() {
			return Invalid("interface", "the attachment of uplink %q cannot be changed; delete and re-create it", u.Name)
		}
		if !u.CIDR.IsValid() {
			u.CIDR = was.CIDR
		}
		if u.CIDR != was.CIDR {
			return Invalid("cidr", "the prefix of uplink %q cannot be changed (%s → %s); delete and re-create it", u.Name, was.CIDR, u.CIDR)
		}
		if !u.Gateway.IsValid() {
			u.Gateway = was.Gateway
		}
		if len(u.MAC) == 0 {
			u.MAC = append(MAC(nil), was.MAC...)
		}
		if len(u.RouterMAC) == 0 && u.Gateway == was.Gateway {
			u.RouterMAC = append(MAC(nil), was.RouterMAC...)
		}
	}
	h := u.AsHost()
	if err := validateAttachment(&h); err != nil {
		return err
	}
	u.OVSDB = h.OVSDB
	if err := ValidateNetwork("cidr", u.CIDR, 8, 30); err != nil {
		return err
	}
	if err := validateIPv4("gateway", u.Gateway); err != nil {
		return err
	}
	if err := checkOnLink("gateway", u.CIDR, u.Gateway); err != nil {
		return err
	}
	if len(u.MAC) == 0 {
		u.MAC = DefaultUplinkMAC(u.Name)
	}
	if err := ValidateMAC("mac", u.MAC); err != nil {
		return err
	}
	if len(u.RouterMAC) == 0 {
		u.RouterMAC = nil
		return nil
	}
	return ValidateMAC("router_mac", u.RouterMAC)
}

// checkOnLink checks that a is a usable address of prefix p: inside it, not
// its network or broadcast address.
func checkOnLink(field string, p netip.Prefix, a netip.Addr) *Error {
	switch {
	case !p.Contains(a):
		return Invalid(field, "%s is not inside %s", a, p)
	case a == p.Addr():
		return Invalid(field, "%s is the network address of %s", a, p)
	case a == Broadcast(p):
		return Invalid(field, "%s is the broadcast address of %s", a, p)
	}
	return nil
}

// validate: two uplinks may not share addresses (what leaves is sent by
// the uplink whose prefix holds its source); the interface is not a
// host's; a new router address forgets the learned MAC; the addresses in
// use must stay usable.
func (uplinkKind) validate(st *State, o, old Object) *Error {
	u := o.(*Uplink)
	for _, x := range st.AllUplinks() {
		if x.Name != u.Name && x.CIDR.Overlaps(u.CIDR) {
			return Conflict("cidr", "%s overlaps uplink %q (%s)", u.CIDR, x.Name, x.CIDR)
		}
	}
	if h, ok := st.holder(hostKind{}, "attachment", u.attachmentValue()); ok {
		hh := h.(*Host)
		return Conflict("interface", "that interface is already attached as host %q in VPC %q", hh.Name, hh.VPC)
	}
	if old != nil {
		for _, a := range st.PublicAddrs(u.Name) {
			if a.IP == u.Gateway {
				return Conflict("gateway", "%s is %s", a.IP, a.Owner)
			}
		}
	}
	return nil
}

// ---- accessors ----

// AllUplinks lists every uplink, sorted by name.
func (st *State) AllUplinks() []Uplink {
	return allAs(st, uplinkKind{}, func(a, b *Uplink) bool { return a.Name < b.Name })
}

// Uplink returns the named uplink.
func (st *State) Uplink(name string) (Uplink, bool) { return getAs[Uplink](st, uplinkKind{}, name) }

// UplinkByID returns the uplink with an ID.
func (st *State) UplinkByID(id uint32) (Uplink, bool) { return getAsByID[Uplink](st, uplinkKind{}, id) }

// UplinksOnChassis lists the uplinks on the named chassis, sorted by name.
func (st *State) UplinksOnChassis(name string) []Uplink {
	return childrenAs[Uplink](st, chassisKind{}, name, uplinkKind{})
}
