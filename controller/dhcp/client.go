package dhcp

import (
	"encoding/binary"
	"net"
	"net/netip"
)

// RequestFrame builds a client's request as a VM's NIC sends it, for
// tests and tools: a BOOTREQUEST of type typ from mac, broadcast (from
// 0.0.0.0 unless ciaddr is set, then unicast from ciaddr to server), with
// option 50 when requested is valid.
func RequestFrame(mac net.HardwareAddr, xid uint32, typ uint8, ciaddr, requested, server netip.Addr) []byte {
	if !ciaddr.IsValid() {
		ciaddr = netip.IPv4Unspecified()
	}
	b := make([]byte, bootpLen+4, bootpLen+64)
	b[0], b[1], b[2] = 1, 1, 6
	binary.BigEndian.PutUint32(b[4:], xid)
	ci := ciaddr.As4()
	copy(b[12:], ci[:])
	copy(b[28:], mac)
	binary.BigEndian.PutUint32(b[bootpLen:], magicCookie)
	b = append(b, optMessageType, 1, typ)
	if requested.IsValid() {
		r := requested.As4()
		b = append(b, optRequestedIP, 4, r[0], r[1], r[2], r[3])
	}
	b = append(b, optParamList, 6, optSubnetMask, optRouter, optDNS, optDomainName, optMTU, optClasslessRts, optEnd)

	dst, dstMAC := netip.AddrFrom4([4]byte{255, 255, 255, 255}), net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	if ciaddr != netip.IPv4Unspecified() && server.IsValid() {
		dst = server
		dstMAC = net.HardwareAddr{0xee, 0xff, 0xff, 0xff, 0xff, 0xff}
	}
	out := make([]byte, ethLen+ipMinLen+udpLen+len(b))
	copy(out[0:6], dstMAC)
	copy(out[6:12], mac)
	binary.BigEndian.PutUint16(out[12:], 0x0800)
	ip := out[ethLen:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(len(out)-ethLen))
	ip[8], ip[9] = 64, 17
	s, d := ciaddr.As4(), dst.As4()
	copy(ip[12:], s[:])
	copy(ip[16:], d[:])
	binary.BigEndian.PutUint16(ip[10:], checksum(ip[:ipMinLen], 0))
	udp := ip[ipMinLen:]
	binary.BigEndian.PutUint16(udp, clientPort)
	binary.BigEndian.PutUint16(udp[2:], serverPort)
	binary.BigEndian.PutUint16(udp[4:], uint16(udpLen+len(b)))
	copy(udp[udpLen:], b)
	return out
}

// ReplyOf reads a server reply frame: its message type, yiaddr and
// options; ok is false for anything that is not a BOOTREPLY in UDP 67→68
// with good checksums. For tests and tools.
func ReplyOf(frame []byte) (typ uint8, yiaddr netip.Addr, opts map[uint8][]byte, ok bool) {
	if len(frame) < ethLen+ipMinLen+udpLen+bootpLen+4 || binary.BigEndian.Uint16(frame[12:]) != 0x0800 {
		return 0, netip.Addr{}, nil, false
	}
	ip := frame[ethLen:]
	if ip[0] != 0x45 || ip[9] != 17 || int(binary.BigEndian.Uint16(ip[2:])) != len(ip) || checksum(ip[:ipMinLen], 0) != 0 {
		return 0, netip.Addr{}, nil, false
	}
	udp := ip[ipMinLen:]
	var pseudo uint32
	for i := 12; i < 20; i += 2 {
		pseudo += uint32(ip[i])<<8 | uint32(ip[i+1])
	}
	pseudo += 17 + uint32(len(udp))
	if binary.BigEndian.Uint16(udp) != serverPort || binary.BigEndian.Uint16(udp[2:]) != clientPort || checksum(udp, pseudo) != 0 {
		return 0, netip.Addr{}, nil, false
	}
	b := udp[udpLen:]
	if b[0] != 2 || binary.BigEndian.Uint32(b[bootpLen:]) != magicCookie {
		return 0, netip.Addr{}, nil, false
	}
	o, err := parseOptions(b[bootpLen+4:])
	if err != nil || len(o[optMessageType]) != 1 {
		return 0, netip.Addr{}, nil, false
	}
	return o[optMessageType][0], netip.AddrFrom4([4]byte(b[16:20])), o, true
}
