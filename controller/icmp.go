package controller

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// errNoICMP says a frame must be dropped without an ICMP answer (RFC 1812
// 4.3.2.7: never answer an ICMP error, a fragment other than the first, or
// a packet from a broadcast or multicast source; and a packet without DF
// may not be answered with "fragmentation needed").
var errNoICMP = errors.New("no ICMP answer for this frame")

const (
	etherTypeIPv4   = 0x0800
	ipProtoICMP     = 1
	ipFlagDF        = 0x4000
	ipFragOffset    = 0x1fff
	icmpDestUnreach = 3
	icmpFragNeeded  = 4
)

// FragNeededReply builds the Ethernet frame with which the gateway answers
// an IPv4 packet too big for the tunnel: ICMP destination unreachable,
// fragmentation needed, next-hop MTU mtu, from the vSwitch gateway (gw,
// gwMAC) to the VM that sent it (vmMAC), quoting the packet's IP header
// and first 8 payload bytes as RFC 792 asks. frame is the packet as the
// switch sent it to the controller (its MACs already rewritten).
func FragNeededReply(frame []byte, gw netip.Addr, gwMAC, vmMAC net.HardwareAddr, mtu uint16) ([]byte, error) {
	if len(frame) < 14+20 {
		return nil, fmt.Errorf("frame of %d bytes is too short for IPv4", len(frame))
	}
	if binary.BigEndian.Uint16(frame[12:14]) != etherTypeIPv4 {
		return nil, fmt.Errorf("ether type %#04x is not IPv4", binary.BigEndian.Uint16(frame[12:14]))
	}
	ip := frame[14:]
	ihl := int(ip[0]&0x0f) * 4
	if ip[0]>>4 != 4 || ihl < 20 || len(ip) < ihl {
		return nil, fmt.Errorf("malformed IPv4 header")
	}
	flags := binary.BigEndian.Uint16(ip[6:8])
	if flags&ipFlagDF == 0 || flags&ipFragOffset != 0 {
		return nil, errNoICMP
	}
	src := netip.AddrFrom4([4]byte(ip[12:16]))
	if !src.IsGlobalUnicast() { // broadcast, multicast, unspecified, loopback
		return nil, errNoICMP
	}
	if ip[9] == ipProtoICMP && len(ip) > ihl {
		switch ip[ihl] {
		case 0, 8, 13, 14, 15, 16, 17, 18: // queries and replies may be answered
		default:
			return nil, errNoICMP
		}
	}
	quote := ihl + 8
	if quote > len(ip) {
		quote = len(ip)
	}
	icmpLen := 8 + quote
	out := make([]byte, 14+20+icmpLen)
	copy(out[0:6], vmMAC)
	copy(out[6:12], gwMAC)
	binary.BigEndian.PutUint16(out[12:14], etherTypeIPv4)
	h := out[14:34]
	h[0] = 0x45
	h[1] = 0xc0 // internetwork control, as routers send ICMP errors
	binary.BigEndian.PutUint16(h[2:4], uint16(20+icmpLen))
	h[8] = 64
	h[9] = ipProtoICMP
	g := gw.As4()
	copy(h[12:16], g[:])
	copy(h[16:20], ip[12:16])
	binary.BigEndian.PutUint16(h[10:12], checksum(h))
	icmp := out[34:]
	icmp[0] = icmpDestUnreach
	icmp[1] = icmpFragNeeded
	binary.BigEndian.PutUint16(icmp[6:8], mtu)
	copy(icmp[8:], ip[:quote])
	binary.BigEndian.PutUint16(icmp[2:4], checksum(icmp))
	return out, nil
}

// checksum is the Internet checksum (RFC 1071) of b.
func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
