// Package topology is vpcflow's desired state: VPCs, vSwitches, hosts and
// subnets (VPC route entries), their validation with Aliyun's rules, and the
// embedded on-disk store that keeps them across restarts.
package topology

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// GatewayMAC is the MAC the fabric answers every ARP with, as on Aliyun.
var GatewayMAC = net.HardwareAddr{0xee, 0xff, 0xff, 0xff, 0xff, 0xff}

// GatewayMACString is GatewayMAC as text.
const GatewayMACString = "ee:ff:ff:ff:ff:ff"

// DefaultGateway is the CIDR's broadcast address minus 2.
func DefaultGateway(p netip.Prefix) netip.Addr {
	p = p.Masked()
	b := p.Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	hostBits := 32 - p.Bits()
	bcast := v | uint32((uint64(1)<<hostBits)-1)
	g := bcast - 2
	return netip.AddrFrom4([4]byte{byte(g >> 24), byte(g >> 16), byte(g >> 8), byte(g)})
}

// MAC is a hardware address that reads and writes as "52:58:00:98:c0:81".
type MAC net.HardwareAddr

// ParseMAC parses a 6-byte Ethernet MAC.
func ParseMAC(s string) (MAC, error) {
	hw, err := net.ParseMAC(s)
	if err != nil {
		return nil, fmt.Errorf("invalid MAC %q", s)
	}
	if len(hw) != 6 {
		return nil, fmt.Errorf("invalid MAC %q: not a 6-byte Ethernet address", s)
	}
	return MAC(hw), nil
}

// String prints the MAC in lower case with colons.
func (m MAC) String() string { return net.HardwareAddr(m).String() }

// AppendTo appends m as String writes it (no allocation when b has room).
func (m MAC) AppendTo(b []byte) []byte {
	const hex = "0123456789abcdef"
	for i, c := range m {
		if i > 0 {
			b = append(b, ':')
		}
		b = append(b, hex[c>>4], hex[c&0xf])
	}
	return b
}

// HW returns the MAC as net.HardwareAddr.
func (m MAC) HW() net.HardwareAddr { return net.HardwareAddr(m) }

// MarshalText implements encoding.TextMarshaler.
func (m MAC) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (m *MAC) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*m = nil
		return nil
	}
	v, err := ParseMAC(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// DPID is an OpenFlow datapath id. It is written as 16 hex digits, as
// `ovs-ofctl show` prints it, and read from that form, from "0x…", or from a
// JSON number.
type DPID uint64

// String prints the DPID as 16 hex digits.
func (d DPID) String() string { return fmt.Sprintf("%016x", uint64(d)) }

// ParseDPID reads "000012345678abcd", "0x12345678abcd" or a decimal number
// written as a JSON number.
func ParseDPID(s string) (DPID, error) {
	s = strings.TrimSpace(s)
	t := strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	if t == "" || len(t) > 16 {
		return 0, fmt.Errorf("invalid dpid %q: want up to 16 hex digits", s)
	}
	v, err := strconv.ParseUint(t, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid dpid %q: want up to 16 hex digits", s)
	}
	return DPID(v), nil
}

// MarshalJSON writes the DPID as a 16-hex-digit string.
func (d DPID) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a hex string or a JSON number.
func (d *DPID) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := ParseDPID(s)
		if err != nil {
			return err
		}
		*d = v
		return nil
	}
	var n uint64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("invalid dpid %s: want a hex string or a non-negative number", string(b))
	}
	*d = DPID(n)
	return nil
}
