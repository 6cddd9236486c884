// Package dhcp is vpcflow's DHCP server, pure: it decodes a DHCP request
// as a VM's NIC sent it (a whole Ethernet frame), decides the answer from
// what is registered for that VM (Config), and encodes the reply frame.
// There is no pool and no state: a VM's address is the one registered for
// it, so a renewal after a controller restart is answered like any other.
package dhcp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// Message types (option 53).
const (
	Discover uint8 = 1
	Offer    uint8 = 2
	Request  uint8 = 3
	Decline  uint8 = 4
	Ack      uint8 = 5
	Nak      uint8 = 6
	Release  uint8 = 7
	Inform   uint8 = 8
)

// Option codes used here.
const (
	optPad          = 0
	optSubnetMask   = 1
	optRouter       = 3
	optDNS          = 6
	optHostname     = 12
	optDomainName   = 15
	optMTU          = 26
	optRequestedIP  = 50
	optLeaseTime    = 51
	optOverload     = 52
	optMessageType  = 53
	optServerID     = 54
	optParamList    = 55
	optMessage      = 56
	optMaxSize      = 57
	optRenewalT1    = 58
	optRebindingT2  = 59
	optClientID     = 61
	optClasslessRts = 121
	optEnd          = 255
)

// Wire layout.
const (
	ethLen      = 14
	ipMinLen    = 20
	udpLen      = 8
	bootpLen    = 236 // fixed BOOTP fields, up to and without the magic cookie
	magicCookie = 0x63825363
	serverPort  = 67
	clientPort  = 68
	flagBcast   = 0x8000
	// minReply is the smallest BOOTP message (fields + options) some
	// clients accept (RFC 1542: 300 bytes).
	minReply = 300
	// MaxFrame bounds what Decode reads: a DHCP request never needs more
	// than the Ethernet MTU.
	MaxFrame = 1514 + 4
)

// Errors Decode returns; every one means "drop and count".
var (
	ErrNotDHCP   = errors.New("not a DHCP request (IPv4/UDP 68→67)")
	ErrMalformed = errors.New("malformed DHCP request")
)

// Packet is a decoded DHCP request.
type Packet struct {
	SrcMAC  net.HardwareAddr // Ethernet source
	SrcIP   netip.Addr
	Op      uint8
	XID     uint32
	Secs    uint16
	Flags   uint16
	CIAddr  netip.Addr
	GIAddr  netip.Addr
	CHAddr  net.HardwareAddr
	Type    uint8 // option 53
	Options map[uint8][]byte
}

// RequestedIP is option 50, if present and 4 bytes.
func (p *Packet) RequestedIP() (netip.Addr, bool) { return p.addrOption(optRequestedIP) }

// ServerID is option 54, if present and 4 bytes.
func (p *Packet) ServerID() (netip.Addr, bool) { return p.addrOption(optServerID) }

func (p *Packet) addrOption(code uint8) (netip.Addr, bool) {
	v, ok := p.Options[code]
	if !ok || len(v) != 4 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4([4]byte(v)), true
}

// wants reports whether the client listed code in its parameter request
// list (option 55).
func (p *Packet) wants(code uint8) bool {
	for _, c := range p.Options[optParamList] {
		if c == code {
			return true
		}
	}
	return false
}

// Decode parses an Ethernet frame holding a DHCP request (BOOTREQUEST,
// UDP 68→67). Anything else — another protocol, a fragment, truncated or
// inconsistent headers, options running past the end, a missing or
// unknown message type — is an error wrapping ErrNotDHCP or ErrMalformed.
// It never panics.
func Decode(frame []byte) (*Packet, error) {
	if len(frame) > MaxFrame {
		return nil, fmt.Errorf("%w: frame of %d bytes", ErrMalformed, len(frame))
	}
	if len(frame) < ethLen+ipMinLen+udpLen {
		return nil, fmt.Errorf("%w: frame of %d bytes", ErrNotDHCP, len(frame))
	}
	if binary.BigEndian.Uint16(frame[12:]) != 0x0800 {
		return nil, fmt.Errorf("%w: ether type %#04x", ErrNotDHCP, binary.BigEndian.Uint16(frame[12:]))
	}
	ip := frame[ethLen:]
	ihl := int(ip[0]&0x0f) * 4
	if ip[0]>>4 != 4 || ihl < ipMinLen || len(ip) < ihl+udpLen {
		return nil, fmt.Errorf("%w: bad IPv4 header", ErrMalformed)
	}
	total := int(binary.BigEndian.Uint16(ip[2:]))
	if total < ihl+udpLen || total > len(ip) {
		return nil, fmt.Errorf("%w: IPv4 total length %d, %d bytes present", ErrMalformed, total, len(ip))
	}
	ip = ip[:total]
	if ip[9] != 17 {
		return nil, fmt.Errorf("%w: IP protocol %d", ErrNotDHCP, ip[9])
	}
	if binary.BigEndian.Uint16(ip[6:])&0x3fff != 0 {
		return nil, fmt.Errorf("%w: fragment", ErrMalformed)
	}
	udp := ip[ihl:]
	if binary.BigEndian.Uint16(udp) != clientPort || binary.BigEndian.Uint16(udp[2:]) != serverPort {
		return nil, fmt.Errorf("%w: UDP %d→%d", ErrNotDHCP, binary.BigEndian.Uint16(udp), binary.BigEndian.Uint16(udp[2:]))
	}
	ulen := int(binary.BigEndian.Uint16(udp[4:]))
	if ulen < udpLen || ulen > len(udp) {
		return nil, fmt.Errorf("%w: UDP length %d, %d bytes present", ErrMalformed, ulen, len(udp))
	}
	b := udp[udpLen:ulen]
	if len(b) < bootpLen+4 {
		return nil, fmt.Errorf("%w: BOOTP message of %d bytes", ErrMalformed, len(b))
	}
	if b[0] != 1 {
		return nil, fmt.Errorf("%w: BOOTP op %d, not a request", ErrMalformed, b[0])
	}
	if b[1] != 1 || b[2] != 6 {
		return nil, fmt.Errorf("%w: hardware type %d length %d, want Ethernet", ErrMalformed, b[1], b[2])
	}
	if binary.BigEndian.Uint32(b[bootpLen:]) != magicCookie {
		return nil, fmt.Errorf("%w: no DHCP magic cookie", ErrMalformed)
	}
	p := &Packet{
		SrcMAC: net.HardwareAddr(append([]byte(nil), frame[6:12]...)),
		SrcIP:  netip.AddrFrom4([4]byte(ip[12:16])),
		Op:     b[0],
		XID:    binary.BigEndian.Uint32(b[4:]),
		Secs:   binary.BigEndian.Uint16(b[8:]),
		Flags:  binary.BigEndian.Uint16(b[10:]),
		CIAddr: netip.AddrFrom4([4]byte(b[12:16])),
		GIAddr: netip.AddrFrom4([4]byte(b[24:28])),
		CHAddr: net.HardwareAddr(append([]byte(nil), b[28:34]...)),
	}
	opts, err := parseOptions(b[bootpLen+4:])
	if err != nil {
		return nil, err
	}
	p.Options = opts
	t, ok := opts[optMessageType]
	if !ok || len(t) != 1 || t[0] < Discover || t[0] > Inform {
		return nil, fmt.Errorf("%w: missing or bad message type (option 53)", ErrMalformed)
	}
	p.Type = t[0]
	return p, nil
}

// parseOptions reads TLV options up to End. An option that appears more
// than once is concatenated (RFC 3396). Option overload (52) is not
// supported: the sname and file fields are never read as options.
func parseOptions(b []byte) (map[uint8][]byte, error) {
	opts := map[uint8][]byte{}
	for i := 0; i < len(b); {
		code := b[i]
		switch code {
		case optPad:
			i++
			continue
		case optEnd:
			return opts, nil
		}
		if i+1 >= len(b) {
			return nil, fmt.Errorf("%w: option %d has no length", ErrMalformed, code)
		}
		n := int(b[i+1])
		if i+2+n > len(b) {
			return nil, fmt.Errorf("%w: option %d of %d bytes runs past the end", ErrMalformed, code, n)
		}
		opts[code] = append(opts[code], b[i+2:i+2+n]...)
		i += 2 + n
	}
	return nil, fmt.Errorf("%w: options without an end option", ErrMalformed)
}

// Route is one classless static route (option 121).
type Route struct {
	Dst     netip.Prefix
	NextHop netip.Addr
}

// Config is what is registered for the VM whose request it is: its
// address and what it gets with it.
type Config struct {
	ServerMAC net.HardwareAddr // the gateway MAC
	ServerIP  netip.Addr       // the vSwitch gateway: server identifier and router
	ClientMAC net.HardwareAddr // the VM's registered MAC
	IP        netip.Addr       // the VM's registered address
	Prefix    int              // the vSwitch CIDR's length
	Lease     time.Duration
	MTU       uint16 // 0: not sent
	DNS       []netip.Addr
	Domain    string
	Hostname  string
	// Routes, when set, go in option 121 after the default route via
	// ServerIP (a client that takes option 121 ignores option 3).
	Routes []Route
}

// Answer is the reply to a request, or none.
type Answer struct {
	Type  uint8 // Offer, Ack or Nak; 0: no reply
	Frame []byte
	// Why says, when Type is 0 or Nak, what was wrong.
	Why string
}

// Respond decides the answer to req for the VM that c describes, as RFC
// 2131 says a server with one fixed address per client does: DISCOVER →
// OFFER; REQUEST → ACK for the VM's address, NAK for another; INFORM →
// ACK without a lease; RELEASE and DECLINE → nothing (the address is the
// VM's whatever it says). A request whose client hardware address is not
// the VM's gets nothing.
func Respond(req *Packet, c Config) Answer {
	if !equalMAC(req.CHAddr, c.ClientMAC) {
		return Answer{Why: fmt.Sprintf("chaddr %s is not the VM's MAC %s", req.CHAddr, c.ClientMAC)}
	}
	switch req.Type {
	case Discover:
		return Answer{Type: Offer, Frame: c.reply(req, Offer, c.IP, true)}
	case Request:
		if sid, ok := req.ServerID(); ok && sid != c.ServerIP {
			return Answer{Why: fmt.Sprintf("the client chose server %s", sid)}
		}
		want, ok := req.RequestedIP()
		if !ok {
			want = req.CIAddr // renewing or rebinding
		}
		if want != c.IP {
			return Answer{Type: Nak, Frame: c.nak(req), Why: fmt.Sprintf("requested %s, the VM's address is %s", want, c.IP)}
		}
		return Answer{Type: Ack, Frame: c.reply(req, Ack, c.IP, true)}
	case Inform:
		return Answer{Type: Ack, Frame: c.reply(req, Ack, netip.IPv4Unspecified(), false)}
	}
	return Answer{Why: fmt.Sprintf("message type %d needs no answer", req.Type)}
}

func equalMAC(a, b net.HardwareAddr) bool { return len(a) == 6 && string(a) == string(b) }

// reply builds an OFFER or ACK; lease says whether lease options go in
// (not for INFORM).
func (c Config) reply(req *Packet, typ uint8, yiaddr netip.Addr, lease bool) []byte {
	var o options
	o.add(optMessageType, typ)
	o.addr(optServerID, c.ServerIP)
	if lease {
		secs := uint32(c.Lease / time.Second)
		o.u32(optLeaseTime, secs)
		o.u32(optRenewalT1, secs/2)
		o.u32(optRebindingT2, secs/8*7)
	}
	mask := net.CIDRMask(c.Prefix, 32)
	o.add(optSubnetMask, mask...)
	o.addr(optRouter, c.ServerIP)
	if len(c.DNS) > 0 {
		var b []byte
		for _, a := range c.DNS {
			a4 := a.As4()
			b = append(b, a4[:]...)
		}
		o.add(optDNS, b...)
	}
	if c.Domain != "" {
		o.add(optDomainName, []byte(c.Domain)...)
	}
	if c.MTU != 0 {
		o.add(optMTU, byte(c.MTU>>8), byte(c.MTU))
	}
	if c.Hostname != "" && req.wants(optHostname) {
		o.add(optHostname, []byte(c.Hostname)...)
	}
	if len(c.Routes) > 0 {
		o.add(optClasslessRts, classless(append([]Route{{netip.PrefixFrom(netip.IPv4Unspecified(), 0), c.ServerIP}}, c.Routes...))...)
	}
	return c.frame(req, typ, yiaddr, o)
}

// nak builds a DHCPNAK: server identifier and a message only.
func (c Config) nak(req *Packet) []byte {
	var o options
	o.add(optMessageType, Nak)
	o.addr(optServerID, c.ServerIP)
	o.add(optMessage, []byte("requested address is not this VM's")...)
	return c.frame(req, Nak, netip.IPv4Unspecified(), o)
}

// classless encodes routes as option 121: prefix length, the significant
// octets of the destination, the router.
func classless(rs []Route) []byte {
	var b []byte
	for _, r := range rs {
		d := r.Dst.Masked().Addr().As4()
		nh := r.NextHop.As4()
		b = append(b, byte(r.Dst.Bits()))
		b = append(b, d[:(r.Dst.Bits()+7)/8]...)
		b = append(b, nh[:]...)
	}
	return b
}

// options accumulates encoded options; a value longer than 255 bytes is
// split into several options of the same code (RFC 3396).
type options struct{ b []byte }

func (o *options) add(code uint8, v ...byte) {
	for first := true; first || len(v) > 0; first = false {
		n := min(len(v), 255)
		o.b = append(o.b, code, byte(n))
		o.b = append(o.b, v[:n]...)
		v = v[n:]
	}
}

func (o *options) addr(code uint8, a netip.Addr) {
	a4 := a.As4()
	o.add(code, a4[:]...)
}

func (o *options) u32(code uint8, v uint32) {
	o.add(code, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// frame wraps a BOOTREPLY in UDP, IPv4 and Ethernet, addressed as RFC
// 2131 4.1 says: a NAK, or a reply to a client that asked for broadcast,
// to 255.255.255.255 and ff:ff:ff:ff:ff:ff; a reply to a client with an
// address (renewing, INFORM) to that address; else to yiaddr at chaddr.
// It is sent straight out of the VM's port, so no other VM sees it.
func (c Config) frame(req *Packet, typ uint8, yiaddr netip.Addr, o options) []byte {
	bootp := make([]byte, bootpLen+4, bootpLen+4+len(o.b)+1+minReply)
	bootp[0] = 2 // BOOTREPLY
	bootp[1], bootp[2] = 1, 6
	binary.BigEndian.PutUint32(bootp[4:], req.XID)
	binary.BigEndian.PutUint16(bootp[10:], req.Flags)
	if typ != Nak {
		ci := req.CIAddr.As4()
		copy(bootp[12:16], ci[:])
	}
	yi := yiaddr.As4()
	copy(bootp[16:20], yi[:])
	gi := req.GIAddr.As4()
	copy(bootp[24:28], gi[:])
	copy(bootp[28:34], req.CHAddr)
	binary.BigEndian.PutUint32(bootp[bootpLen:], magicCookie)
	bootp = append(bootp, o.b...)
	bootp = append(bootp, optEnd)
	for len(bootp) < minReply {
		bootp = append(bootp, optPad)
	}

	dstIP, dstMAC := yiaddr, req.CHAddr
	switch {
	case typ == Nak || req.Flags&flagBcast != 0:
		dstIP, dstMAC = netip.AddrFrom4([4]byte{255, 255, 255, 255}), net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	case req.CIAddr != netip.IPv4Unspecified():
		dstIP = req.CIAddr
	}
	out := make([]byte, ethLen+ipMinLen+udpLen+len(bootp))
	copy(out[0:6], dstMAC)
	copy(out[6:12], c.ServerMAC)
	binary.BigEndian.PutUint16(out[12:], 0x0800)
	ip := out[ethLen : ethLen+ipMinLen]
	ip[0] = 0x45
	ip[1] = 0x10 // low delay, as DHCP servers send
	binary.BigEndian.PutUint16(ip[2:], uint16(len(out)-ethLen))
	ip[8] = 64
	ip[9] = 17
	src, dst := c.ServerIP.As4(), dstIP.As4()
	copy(ip[12:16], src[:])
	copy(ip[16:20], dst[:])
	binary.BigEndian.PutUint16(ip[10:], checksum(ip, 0))
	udp := out[ethLen+ipMinLen:]
	binary.BigEndian.PutUint16(udp[0:], serverPort)
	binary.BigEndian.PutUint16(udp[2:], clientPort)
	binary.BigEndian.PutUint16(udp[4:], uint16(len(udp)))
	copy(udp[udpLen:], bootp)
	// The UDP checksum covers a pseudo header: addresses, protocol, length.
	var pseudo uint32
	for i := 0; i < 4; i += 2 {
		pseudo += uint32(src[i])<<8 | uint32(src[i+1])
		pseudo += uint32(dst[i])<<8 | uint32(dst[i+1])
	}
	pseudo += 17 + uint32(len(udp))
	sum := checksum(udp, pseudo)
	if sum == 0 {
		sum = 0xffff
	}
	binary.BigEndian.PutUint16(udp[6:], sum)
	return out
}

// checksum is the Internet checksum of b with initial sum (RFC 1071).
func checksum(b []byte, sum uint32) uint16 {
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

// TypeName names a message type for logs.
func TypeName(t uint8) string {
	names := [...]string{"", "DISCOVER", "OFFER", "REQUEST", "DECLINE", "ACK", "NAK", "RELEASE", "INFORM"}
	if int(t) < len(names) && t != 0 {
		return names[t]
	}
	return fmt.Sprintf("type%d", t)
}
