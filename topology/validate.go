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
	return nil
}

// validateVPC checks a VPC on its own (no state needed).
func validateVPC(v *VPC) *Error {
	if err := ValidateName("name", v.Name); err != nil {
		return err
	}
	if v.CIDR.IsValid() {
		if err := ValidatePrefix("cidr", v.CIDR, 8, 29); err != nil {
			return err
		}
	} else if v.CIDR != (netip.Prefix{}) {
		return Invalid("cidr", "invalid CIDR")
	}
	return nil
}

// validateVSwitch checks a vSwitch on its own and fills in the default
// gateway.
func validateVSwitch(w *VSwitch) *Error {
	if err := ValidateName("vpc", w.VPC); err != nil {
		return err
	}
	if err := ValidateName("name", w.Name); err != nil {
		return err
	}
	if err := ValidatePrefix("cidr", w.CIDR, MinVSwitchBits, MaxVSwitchBits); err != nil {
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

// validateHost checks a host on its own: names, IP form, MAC and
// attachment. Checks against the vSwitch and other hosts need the state.
func validateHost(h *Host) *Error {
	if err := ValidateName("vpc", h.VPC); err != nil {
		return err
	}
	if err := ValidateName("name", h.Name); err != nil {
		return err
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
	return validateAttachment(h)
}

// validateAttachment checks that the host is attached in exactly one way:
// bridge+interface, chassis+interface or dpid+ofport.
func validateAttachment(h *Host) *Error {
	const how = "bridge+interface, chassis+interface or dpid+ofport"
	byBridge := h.Bridge != ""
	byChassis := h.Chassis != ""
	byPort := h.DPID != 0 || h.OFPort != 0
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

// validateSubnet checks a subnet on its own and fills in the default name.
func validateSubnet(s *Subnet) *Error {
	if err := ValidateName("vpc", s.VPC); err != nil {
		return err
	}
	if err := ValidatePrefix("cidr", s.CIDR, 0, 32); err != nil {
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

// describeNames lists up to max names, then how many more there are.
func describeNames(names []string, max int) string {
	if len(names) <= max {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:max], ", "), len(names)-max)
}
