package topology

import (
	"fmt"
	"net/netip"
	"strings"
)

// Name and attachment limits.
const (
	// MaxNameLen is the longest VPC, vSwitch, host or subnet name.
	MaxNameLen = 63
	// MaxIfaceNameLen is the longest bridge or interface name accepted.
	// Linux kernel devices stop at 15, but OVS internal and DPDK ports may
	// be longer.
	MaxIfaceNameLen = 64
	// MaxOFPort is the highest usable OpenFlow 1.3 port number
	// (OFPP_MAX).
	MaxOFPort = 0xfffffeff
	// MinVSwitchBits and MaxVSwitchBits bound a vSwitch CIDR's prefix
	// length, as on Aliyun.
	MinVSwitchBits = 16
	MaxVSwitchBits = 29
)

// ValidateName checks a VPC, vSwitch, host or subnet name: 1–63 characters,
// letters, digits, '.', '_' and '-', starting with a letter or digit. Such
// names are safe in URL paths and store keys (no '/', no "..").
func ValidateName(field, name string) *Error {
	if name == "" {
		return Invalid(field, "required")
	}
	if len(name) > MaxNameLen {
		return Invalid(field, "%s is too long: at most %d characters", quote(name), MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
		if alnum || (i > 0 && (c == '.' || c == '_' || c == '-')) {
			continue
		}
		return Invalid(field, "%s is not a valid name: use letters, digits, '.', '_' and '-', starting with a letter or digit", quote(name))
	}
	return nil
}

// validateIfaceName checks an OVS bridge or interface name.
func validateIfaceName(field, name string) *Error {
	if name == "" {
		return Invalid(field, "required")
	}
	if len(name) > MaxIfaceNameLen {
		return Invalid(field, "%s is too long: at most %d characters", quote(name), MaxIfaceNameLen)
	}
	if name == "." || name == ".." {
		return Invalid(field, "%s is not a valid name", quote(name))
	}
	for _, r := range name {
		if r <= ' ' || r == 0x7f || r == '/' || r == '\\' || r == ':' || r > 0x7e {
			return Invalid(field, "%s is not a valid name: no '/', ':', spaces or control characters", quote(name))
		}
	}
	return nil
}

// quote quotes s for an error message, cutting it short if it is long.
func quote(s string) string {
	const max = 64
	if len(s) > max {
		return fmt.Sprintf("%q…", s[:max])
	}
	return fmt.Sprintf("%q", s)
}

// ValidatePrefix checks that p is a canonical IPv4 prefix whose length is
// within [minBits, maxBits].
func ValidatePrefix(field string, p netip.Prefix, minBits, maxBits int) *Error {
	if !p.IsValid() {
		return Invalid(field, "required")
	}
	if !p.Addr().Is4() {
		return Invalid(field, "%s must be IPv4", p)
	}
	if m := p.Masked(); m != p {
		return Invalid(field, "%s is not a canonical CIDR: host bits must be zero (did you mean %s?)", p, m)
	}
	if p.Bits() < minBits || p.Bits() > maxBits {
		return Invalid(field, "prefix length of %s must be between /%d and /%d", p, minBits, maxBits)
	}
	return nil
}

// reservedNetworks are IPv4 ranges no vSwitch, host or route entry may
// sit in: "this network", loopback, link-local, multicast, reserved
// (240.0.0.0/4, with the limited broadcast address).
func reservedNetworks() [5]reservedNetwork {
	return [...]reservedNetwork{
		{netip.PrefixFrom(netip.AddrFrom4([4]byte{0, 0, 0, 0}), 8), "\"this network\" (0.0.0.0/8)"},
		{netip.PrefixFrom(netip.AddrFrom4([4]byte{127, 0, 0, 0}), 8), "loopback (127.0.0.0/8)"},
		{netip.PrefixFrom(netip.AddrFrom4([4]byte{169, 254, 0, 0}), 16), "link-local (169.254.0.0/16)"},
		{netip.PrefixFrom(netip.AddrFrom4([4]byte{224, 0, 0, 0}), 4), "multicast (224.0.0.0/4)"},
		{netip.PrefixFrom(netip.AddrFrom4([4]byte{240, 0, 0, 0}), 4), "reserved (240.0.0.0/4, with the broadcast address)"},
	}
}

type reservedNetwork struct {
	p    netip.Prefix
	what string
}

// checkReserved refuses a prefix that equals or sits inside a reserved
// range; one that contains a reserved range (0.0.0.0/0) is fine.
func checkReserved(field string, p netip.Prefix) *Error {
	for _, r := range reservedNetworks() {
		if r.p.Overlaps(p) && p.Bits() >= r.p.Bits() {
			return Invalid(field, "%s is inside the %s range, which a VPC cannot use", p, r.what)
		}
	}
	return nil
}

// ValidateNetwork checks a vSwitch or VPC CIDR: a canonical IPv4 prefix
// of [minBits, maxBits] bits outside the reserved ranges.
func ValidateNetwork(field string, p netip.Prefix, minBits, maxBits int) *Error {
	if err := ValidatePrefix(field, p, minBits, maxBits); err != nil {
		return err
	}
	return checkReserved(field, p)
}

// ValidateRoute checks a route entry's destination: a canonical IPv4
// prefix outside the reserved ranges (0.0.0.0/0 is allowed).
func ValidateRoute(field string, p netip.Prefix) *Error {
	if err := ValidatePrefix(field, p, 0, 32); err != nil {
		return err
	}
	return checkReserved(field, p)
}

// validateIPv4 checks that a is set and IPv4.
func validateIPv4(field string, a netip.Addr) *Error {
	if !a.IsValid() {
		return Invalid(field, "required")
	}
	if !a.Is4() {
		return Invalid(field, "%s must be IPv4", a)
	}
	return nil
}

// Broadcast is the last address of an IPv4 prefix.
func Broadcast(p netip.Prefix) netip.Addr {
	p = p.Masked()
	b := p.Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= uint32((uint64(1) << (32 - p.Bits())) - 1)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// ValidateMAC checks that m is a usable unicast host MAC: six bytes, not
// multicast or broadcast, not all zero, not the fabric's gateway MAC.
func ValidateMAC(field string, m MAC) *Error {
	if len(m) == 0 {
		return Invalid(field, "required")
	}
	if len(m) != 6 {
		return Invalid(field, "%s is not a 6-byte Ethernet MAC", m)
	}
	if m[0]&1 != 0 {
		return Invalid(field, "%s is a multicast/broadcast MAC; a host needs a unicast MAC", m)
	}
	if m[0]|m[1]|m[2]|m[3]|m[4]|m[5] == 0 {
		return Invalid(field, "%s is the all-zero MAC", m)
	}
	if m.String() == GatewayMACString {
		return Invalid(field, "%s is the fabric's gateway MAC", m)
	}
	if m.String() == NATTunnelMACString {
		return Invalid(field, "%s is the MAC the fabric tunnels NAT traffic to", m)
	}
	return nil
}

// describeNames lists up to max names, then how many more there are.
func describeNames(names []string, max int) string {
	if len(names) <= max {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:max], ", "), len(names)-max)
}
