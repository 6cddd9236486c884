package topology

import (
	"fmt"
	"net/netip"
	"sort"
)

// NAT conntrack zones. Every NAT gateway and every EIP holds two zones of
// its own: CTZone (even) for SNAT and CTZone+1 for DNAT — one ct action
// cannot do both, so a connection that is DNATed and SNATed (hairpin) is
// tracked once in each. They lie above the security groups' host zones
// (MinHostZone..MaxHostZone), are handed out by the store and kept for the
// object's life, so a controller restart never renumbers a zone (which
// would turn every live NAT connection invalid) and two VPCs with the same
// private addresses never share one.
const (
	MinNATZone = MaxHostZone + 1 // 0xc000
	MaxNATZone = 0xfffe          // the last SNAT zone; its DNAT zone is 0xffff
)

// DNATZone is the DNAT zone of an object whose SNAT zone is z.
func DNATZone(z uint16) uint16 { return z + 1 }

func natZoneValue(z uint16) string { return fmt.Sprint(z) }

// zoneUnique is the zone an object holds, unique within its kind (the
// other NAT kind is checked by assignNATZone).
func zoneUnique(z uint16, title, name, vpc string) []unique {
	if z == 0 {
		return nil
	}
	return []unique{{index: "ct_zone", field: "ct_zone", value: natZoneValue(z), taken: func(o Object) string {
		return fmt.Sprintf("conntrack zone %d is already held by %s %q (VPC %q)", z, title, name, vpc)
	}}}
}

// checkZone checks a stored zone (0: none yet).
func checkZone(z uint16) *Error {
	if z == 0 {
		return nil
	}
	if z < MinNATZone || z > MaxNATZone || z%2 != 0 {
		return Invalid("ct_zone", "%d is not a NAT zone: an even number in %d..%d", z, MinNATZone, MaxNATZone)
	}
	return nil
}

// natZoneTaken reports whether a NAT gateway or an EIP holds zone z.
func natZoneTaken(st *State, z uint16) bool {
	_, a := st.holder(natGatewayKind{}, "ct_zone", natZoneValue(z))
	_, b := st.holder(eipKind{}, "ct_zone", natZoneValue(z))
	return a || b
}

// assignNATZone keeps an object's zone, or hands out the lowest free one.
func assignNATZone(st *State, have uint16, field string) (uint16, *Error) {
	if have != 0 {
		return have, nil
	}
	for z := uint32(MinNATZone); z <= MaxNATZone; z += 2 {
		if !natZoneTaken(st, uint16(z)) {
			return uint16(z), nil
		}
	}
	return 0, Conflict(field, "no NAT conntrack zone left: %d NAT gateways and EIPs exist", (MaxNATZone-MinNATZone)/2+1)
}

// PublicAddr is a public address vpcflow owns on an uplink: one of a NAT
// gateway's or an EIP.
type PublicAddr struct {
	IP  netip.Addr
	VPC string
	// NATGateway or EIP names its owner.
	NATGateway string
	EIP        string
	// Owner describes the owner for messages.
	Owner string
}

// PublicAddrs lists, by address, the public addresses on an uplink.
func (st *State) PublicAddrs(uplink string) []PublicAddr {
	var out []PublicAddr
	for _, g := range st.NATGatewaysOnUplink(uplink) {
		for _, a := range g.IPs {
			out = append(out, PublicAddr{IP: a, VPC: g.VPC, NATGateway: g.Name,
				Owner: fmt.Sprintf("an address of NAT gateway %q (VPC %q)", g.Name, g.VPC)})
		}
	}
	for _, e := range st.EIPsOnUplink(uplink) {
		out = append(out, PublicAddr{IP: e.IP, VPC: e.VPC, EIP: e.Name,
			Owner: fmt.Sprintf("EIP %q (VPC %q)", e.Name, e.VPC)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].IP.Less(out[j].IP) })
	return out
}
