package topology

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
)

// NATGateway is a VPC's way to the outside world, as Alibaba Cloud's NAT
// gateway: a pool of public addresses (IPs, from its uplink's prefix) that
// its SNAT entries (snatentry.go) send from and its DNAT entries
// (dnatentry.go) receive on. A VPC has at most one. It holds two
// conntrack zones, CTZone for SNAT and CTZone+1 for DNAT, assigned by the
// store and kept for its life (zones.go).
type NATGateway struct {
	ID     uint32       `json:"id"`
	VPC    string       `json:"vpc"`
	Name   string       `json:"name"`
	Uplink string       `json:"uplink"`
	IPs    []netip.Addr `json:"ips"`
	CTZone uint16       `json:"ct_zone"`
}

// NAT gateway limits.
const (
	// MaxNATGatewayIPs is how many public addresses a NAT gateway holds.
	MaxNATGatewayIPs = 20
)

// Key is "VPC/NAME".
func (g *NATGateway) Key() string      { return vpcKey(g.VPC, g.Name) }
func (g *NATGateway) ObjectID() uint32 { return g.ID }
func (g *NATGateway) kind() kind       { return natGatewayKind{} }
func (g *NATGateway) setID(id uint32)  { g.ID = id }
func (g *NATGateway) clone() Object {
	c := *g
	c.IPs = slices.Clone(g.IPs)
	return &c
}

// NATGateway is the op's object when it is a NAT gateway, else nil.
func (op Op) NATGateway() *NATGateway { g, _ := op.Obj.(*NATGateway); return g }

// AliyunNATGatewayPrefix is the prefix of NAT gateways' Alibaba Cloud IDs.
const AliyunNATGatewayPrefix = "ngw"

// AliyunID is the NAT gateway's Aliyun ID.
func (g NATGateway) AliyunID() string { return AliyunID(AliyunNATGatewayPrefix, g.ID) }

type natGatewayJSON NATGateway

// MarshalJSON writes the NAT gateway with aliyun_id (once it has an ID).
func (g NATGateway) MarshalJSON() ([]byte, error) {
	out := struct {
		natGatewayJSON
		AliyunID string `json:"aliyun_id,omitempty"`
	}{natGatewayJSON: natGatewayJSON(g)}
	if g.ID != 0 {
		out.AliyunID = g.AliyunID()
	}
	return json.Marshal(out)
}

// HasIP reports whether a is one of the gateway's addresses.
func (g *NATGateway) HasIP(a netip.Addr) bool { return slices.Contains(g.IPs, a) }

// natGatewayKind declares NAT gateways: in a VPC (one each), on an uplink;
// their addresses are unique among every NAT gateway's and EIP's. An
// update may change the addresses, except those an entry uses.
type natGatewayKind struct{}

func (natGatewayKind) name() string                    { return "natgateway" }
func (natGatewayKind) title() string                   { return "NAT gateway" }
func (natGatewayKind) plural() string                  { return "NAT gateways" }
func (natGatewayKind) vpcOf(o Object) string           { return o.(*NATGateway).VPC }
func (natGatewayKind) decode(b []byte) (Object, error) { return decodeJSON[NATGateway](b) }

func (natGatewayKind) keyOf(o Object) (string, *Error) {
	g := o.(*NATGateway)
	return keyInVPC(g.VPC, g.Name)
}

func (natGatewayKind) refs(o Object) []ref {
	g := o.(*NATGateway)
	return []ref{vpcRef(g.VPC), {field: "uplink", to: uplinkKind{}, key: g.Uplink, what: func() string { return fmt.Sprintf("uplink %q", g.Uplink) }}}
}

func (natGatewayKind) uniques(o Object) []unique {
	g := o.(*NATGateway)
	out := []unique{{index: "vpc", field: "vpc", value: g.VPC, taken: func(h Object) string {
		return fmt.Sprintf("VPC %q already has a NAT gateway: %q (a VPC has one)", g.VPC, h.(*NATGateway).Name)
	}}}
	for i, a := range g.IPs {
		out = append(out, unique{index: "ip", field: fmt.Sprintf("ips[%d]", i), value: a.String(), taken: func(h Object) string {
			return fmt.Sprintf("%s is already an address of NAT gateway %q (VPC %q)", a, h.(*NATGateway).Name, h.(*NATGateway).VPC)
		}})
	}
	return append(out, zoneUnique(g.CTZone, "NAT gateway", g.Name, g.VPC)...)
}

func (natGatewayKind) check(o, old Object) *Error {
	g := o.(*NATGateway)
	if err := ValidateName("vpc", g.VPC); err != nil {
		return err
	}
	if err := ValidateName("name", g.Name); err != nil {
		return err
	}
	if old != nil {
		was := old.(*NATGateway)
		if g.Uplink == "" {
			g.Uplink = was.Uplink
		}
		if g.Uplink != was.Uplink {
			return Invalid("uplink", "the uplink of NAT gateway %q cannot be changed; delete and re-create it", g.Name)
		}
		if g.IPs == nil {
			g.IPs = slices.Clone(was.IPs)
		}
		g.CTZone = was.CTZone
	}
	if err := ValidateName("uplink", g.Uplink); err != nil {
		return err
	}
	if len(g.IPs) == 0 {
		return Invalid("ips", "required: at least one public address from the uplink's prefix")
	}
	if len(g.IPs) > MaxNATGatewayIPs {
		return Invalid("ips", "%d addresses: a NAT gateway holds at most %d", len(g.IPs), MaxNATGatewayIPs)
	}
	for i, a := range g.IPs {
		if err := validateIPv4(fmt.Sprintf("ips[%d]", i), a); err != nil {
			return err
		}
		if slices.Contains(g.IPs[:i], a) {
			return Invalid(fmt.Sprintf("ips[%d]", i), "%s is given twice", a)
		}
	}
	slices.SortFunc(g.IPs, func(a, b netip.Addr) int { return a.Compare(b) })
	return checkZone(g.CTZone)
}

// validate: the addresses are on the uplink and no EIP's; an address an
// entry uses stays; the zones are assigned.
func (natGatewayKind) validate(st *State, o, old Object) *Error {
	g := o.(*NATGateway)
	u, _ := st.Uplink(g.Uplink)
	for i, a := range g.IPs {
		field := fmt.Sprintf("ips[%d]", i)
		if err := checkPublicAddr(st, field, u, a); err != nil {
			return err
		}
		if e, ok := st.holder(eipKind{}, "ip", a.String()); ok {
			return Conflict(field, "%s is already EIP %q (VPC %q)", a, e.(*EIP).Name, e.(*EIP).VPC)
		}
	}
	if old != nil {
		for _, s := range st.SNATEntriesOf(g.VPC, g.Name) {
			for _, a := range s.SNATIPs {
				if !g.HasIP(a) {
					return Conflict("ips", "%s is still used by SNAT entry %q", a, s.Name)
				}
			}
		}
		for _, d := range st.DNATEntriesOf(g.VPC, g.Name) {
			if !g.HasIP(d.ExternalIP) {
				return Conflict("ips", "%s is still used by DNAT entry %q", d.ExternalIP, d.Name)
			}
		}
	}
	z, err := assignNATZone(st, g.CTZone, "ips")
	if err != nil {
		return err
	}
	g.CTZone = z
	return nil
}

// checkPublicAddr checks that a is a usable address of uplink u's prefix:
// not its network, broadcast or router address.
func checkPublicAddr(_ *State, field string, u Uplink, a netip.Addr) *Error {
	if err := checkOnLink(field, u.CIDR, a); err != nil {
		return Invalid(field, "%s is not a usable address of uplink %q (%s): %s", a, u.Name, u.CIDR, err.Msg)
	}
	if a == u.Gateway {
		return Invalid(field, "%s is uplink %q's router", a, u.Name)
	}
	return nil
}

// ---- accessors ----

// NATGateways lists a VPC's NAT gateways (at most one), sorted by name.
func (st *State) NATGateways(vpc string) []NATGateway {
	return childrenAs[NATGateway](st, vpcKind{}, vpc, natGatewayKind{})
}

// NATGateway returns one NAT gateway.
func (st *State) NATGateway(vpc, name string) (NATGateway, bool) {
	return getAs[NATGateway](st, natGatewayKind{}, vpcKey(vpc, name))
}

// NATGatewayOf returns the VPC's NAT gateway, if it has one.
func (st *State) NATGatewayOf(vpc string) (NATGateway, bool) {
	o, ok := st.holder(natGatewayKind{}, "vpc", vpc)
	if !ok {
		return NATGateway{}, false
	}
	return *(o.clone().(*NATGateway)), true
}

// NATGatewayByID returns the NAT gateway with an ID.
func (st *State) NATGatewayByID(id uint32) (NATGateway, bool) {
	return getAsByID[NATGateway](st, natGatewayKind{}, id)
}

// AllNATGateways lists the NAT gateways of every VPC, sorted by VPC.
func (st *State) AllNATGateways() []NATGateway {
	return allAs(st, natGatewayKind{}, func(a, b *NATGateway) bool { return a.VPC < b.VPC })
}

// NATGatewaysOnUplink lists the NAT gateways on an uplink, by key.
func (st *State) NATGatewaysOnUplink(uplink string) []NATGateway {
	return childrenAs[NATGateway](st, uplinkKind{}, uplink, natGatewayKind{})
}

func (g *NATGateway) keyParts() (vpc, name string) { return g.VPC, g.Name }
