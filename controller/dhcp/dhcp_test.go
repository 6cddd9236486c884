package dhcp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

var (
	vmMAC = net.HardwareAddr{0x52, 0x58, 0x00, 0x98, 0xc0, 0x81}
	gwMAC = net.HardwareAddr{0xee, 0xff, 0xff, 0xff, 0xff, 0xff}
)

func testConfig() Config {
	return Config{ServerMAC: gwMAC, ServerIP: netip.MustParseAddr("10.10.10.1"), ClientMAC: vmMAC,
		IP: netip.MustParseAddr("10.10.10.11"), Prefix: 24, Lease: time.Hour, MTU: 1450,
		DNS:    []netip.Addr{netip.MustParseAddr("100.100.2.136"), netip.MustParseAddr("100.100.2.138")},
		Domain: "corp.example", Hostname: "test1",
		Routes: []Route{{netip.MustParsePrefix("192.168.0.0/16"), netip.MustParseAddr("10.10.10.254")}}}
}

// request builds a client's frame: BOOTREQUEST from src (0.0.0.0 before
// it has an address) with the given options (code, value pairs).
type reqSpec struct {
	typ    uint8
	src    netip.Addr
	ciaddr netip.Addr
	chaddr net.HardwareAddr
	flags  uint16
	opts   [][]byte // each: code, value...
}

func (r reqSpec) frame() []byte {
	if !r.src.IsValid() {
		r.src = netip.IPv4Unspecified()
	}
	if !r.ciaddr.IsValid() {
		r.ciaddr = netip.IPv4Unspecified()
	}
	if r.chaddr == nil {
		r.chaddr = vmMAC
	}
	b := make([]byte, bootpLen+4)
	b[0], b[1], b[2] = 1, 1, 6
	binary.BigEndian.PutUint32(b[4:], 0xdeadbeef)
	binary.BigEndian.PutUint16(b[10:], r.flags)
	ci := r.ciaddr.As4()
	copy(b[12:], ci[:])
	copy(b[28:], r.chaddr)
	binary.BigEndian.PutUint32(b[bootpLen:], magicCookie)
	b = append(b, optMessageType, 1, r.typ)
	for _, o := range r.opts {
		b = append(b, o[0], byte(len(o)-1))
		b = append(b, o[1:]...)
	}
	b = append(b, optEnd)
	dst := netip.AddrFrom4([4]byte{255, 255, 255, 255})
	c := Config{ServerMAC: vmMAC, ServerIP: r.src}
	// Reuse the reply encoder's framing, then turn it into a request.
	out := c.frameRaw(dst, net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, b, clientPort, serverPort)
	return out
}

// frameRaw is frame's wrapping without the BOOTP logic (tests only).
func (c Config) frameRaw(dstIP netip.Addr, dstMAC net.HardwareAddr, payload []byte, sport, dport uint16) []byte {
	out := make([]byte, ethLen+ipMinLen+udpLen+len(payload))
	copy(out[0:6], dstMAC)
	copy(out[6:12], c.ServerMAC)
	binary.BigEndian.PutUint16(out[12:], 0x0800)
	ip := out[ethLen:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(len(out)-ethLen))
	ip[8], ip[9] = 64, 17
	s, d := c.ServerIP.As4(), dstIP.As4()
	copy(ip[12:], s[:])
	copy(ip[16:], d[:])
	udp := ip[ipMinLen:]
	binary.BigEndian.PutUint16(udp, sport)
	binary.BigEndian.PutUint16(udp[2:], dport)
	binary.BigEndian.PutUint16(udp[4:], uint16(udpLen+len(payload)))
	copy(udp[udpLen:], payload)
	return out
}

// reply is a decoded server reply.
type reply struct {
	dstMAC        net.HardwareAddr
	srcIP, dstIP  netip.Addr
	yiaddr        netip.Addr
	ciaddr        netip.Addr
	xid           uint32
	opts          map[uint8][]byte
	checksumsGood bool
}

// parseReply checks a reply frame's headers (lengths, both checksums) and
// reads its BOOTP fields and options.
func parseReply(t testing.TB, f []byte) reply {
	t.Helper()
	if len(f) < ethLen+ipMinLen+udpLen+bootpLen+4 {
		t.Fatalf("reply of %d bytes", len(f))
	}
	ip := f[ethLen:]
	if int(binary.BigEndian.Uint16(ip[2:])) != len(ip) || ip[9] != 17 {
		t.Fatalf("reply IP header wrong: % x", ip[:20])
	}
	udp := ip[ipMinLen:]
	if binary.BigEndian.Uint16(udp) != serverPort || binary.BigEndian.Uint16(udp[2:]) != clientPort || int(binary.BigEndian.Uint16(udp[4:])) != len(udp) {
		t.Fatalf("reply UDP header wrong: % x", udp[:8])
	}
	var pseudo uint32
	for i := 12; i < 20; i += 2 {
		pseudo += uint32(ip[i])<<8 | uint32(ip[i+1])
	}
	pseudo += 17 + uint32(len(udp))
	r := reply{
		dstMAC: net.HardwareAddr(f[0:6]), srcIP: netip.AddrFrom4([4]byte(ip[12:16])), dstIP: netip.AddrFrom4([4]byte(ip[16:20])),
		checksumsGood: checksum(ip[:ipMinLen], 0) == 0 && checksum(udp, pseudo) == 0,
	}
	b := udp[udpLen:]
	if b[0] != 2 || binary.BigEndian.Uint32(b[bootpLen:]) != magicCookie || len(b) < minReply {
		t.Fatalf("not a BOOTREPLY of at least %d bytes (%d)", minReply, len(b))
	}
	r.xid = binary.BigEndian.Uint32(b[4:])
	r.ciaddr = netip.AddrFrom4([4]byte(b[12:16]))
	r.yiaddr = netip.AddrFrom4([4]byte(b[16:20]))
	opts, err := parseOptions(b[bootpLen+4:])
	if err != nil {
		t.Fatal(err)
	}
	r.opts = opts
	return r
}

func u32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }

var (
	vmIP    = netip.MustParseAddr("10.10.10.11")
	otherIP = netip.MustParseAddr("10.10.10.99")
	bcast   = netip.MustParseAddr("255.255.255.255")
)

func ip4(a netip.Addr) []byte { b := a.As4(); return b[:] }

func TestDiscoverOfferHasEveryOption(t *testing.T) {
	req, err := Decode(reqSpec{typ: Discover, opts: [][]byte{{optParamList, 1, 3, 6, 12, 15, 26, 121}}}.frame())
	if err != nil {
		t.Fatal(err)
	}
	a := Respond(req, testConfig())
	if a.Type != Offer {
		t.Fatalf("answer %d (%s)", a.Type, a.Why)
	}
	r := parseReply(t, a.Frame)
	if !r.checksumsGood {
		t.Error("bad IP or UDP checksum")
	}
	if r.yiaddr != vmIP || r.xid != 0xdeadbeef || r.srcIP != netip.MustParseAddr("10.10.10.1") {
		t.Errorf("yiaddr %s xid %x src %s", r.yiaddr, r.xid, r.srcIP)
	}
	if r.dstIP != vmIP || !bytes.Equal(r.dstMAC, vmMAC) {
		t.Errorf("unicast offer to %s at %s, want %s at %s", r.dstIP, r.dstMAC, vmIP, vmMAC)
	}
	want := map[uint8][]byte{
		optMessageType: {Offer}, optServerID: {10, 10, 10, 1}, optSubnetMask: {255, 255, 255, 0}, optRouter: {10, 10, 10, 1},
		optLeaseTime: {0, 0, 0x0e, 0x10}, optRenewalT1: {0, 0, 0x07, 0x08}, optRebindingT2: {0, 0, 0x0c, 0x4e},
		optDNS: {100, 100, 2, 136, 100, 100, 2, 138}, optDomainName: []byte("corp.example"), optMTU: {0x05, 0xaa},
		optHostname: []byte("test1"),
		// 0.0.0.0/0 via 10.10.10.1, then 192.168.0.0/16 via 10.10.10.254.
		optClasslessRts: {0, 10, 10, 10, 1, 16, 192, 168, 10, 10, 10, 254},
	}
	for code, v := range want {
		if !bytes.Equal(r.opts[code], v) {
			t.Errorf("option %d = %v, want %v", code, r.opts[code], v)
		}
	}
}

func TestRequestAckNak(t *testing.T) {
	c := testConfig()
	for _, tc := range []struct {
		name string
		spec reqSpec
		want uint8
		dst  netip.Addr
	}{
		{"selecting", reqSpec{typ: Request, opts: [][]byte{append([]byte{optRequestedIP}, ip4(vmIP)...), append([]byte{optServerID}, 10, 10, 10, 1)}}, Ack, vmIP},
		{"selecting broadcast flag", reqSpec{typ: Request, flags: flagBcast, opts: [][]byte{append([]byte{optRequestedIP}, ip4(vmIP)...)}}, Ack, bcast},
		{"init-reboot other address", reqSpec{typ: Request, opts: [][]byte{append([]byte{optRequestedIP}, ip4(otherIP)...)}}, Nak, bcast},
		{"renewing", reqSpec{typ: Request, src: vmIP, ciaddr: vmIP}, Ack, vmIP},
		{"renewing other address", reqSpec{typ: Request, src: otherIP, ciaddr: otherIP}, Nak, bcast},
		{"other server chosen", reqSpec{typ: Request, opts: [][]byte{append([]byte{optRequestedIP}, ip4(vmIP)...), append([]byte{optServerID}, 10, 10, 10, 2)}}, 0, netip.Addr{}},
		{"inform", reqSpec{typ: Inform, src: vmIP, ciaddr: vmIP}, Ack, vmIP},
		{"release", reqSpec{typ: Release, src: vmIP, ciaddr: vmIP}, 0, netip.Addr{}},
		{"decline", reqSpec{typ: Decline}, 0, netip.Addr{}},
		{"other chaddr", reqSpec{typ: Discover, chaddr: net.HardwareAddr{2, 0, 0, 0, 0, 1}}, 0, netip.Addr{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := Decode(tc.spec.frame())
			if err != nil {
				t.Fatal(err)
			}
			a := Respond(req, c)
			if a.Type != tc.want {
				t.Fatalf("answer %d (%s), want %d", a.Type, a.Why, tc.want)
			}
			if a.Type == 0 {
				if a.Frame != nil || a.Why == "" {
					t.Errorf("no answer must have no frame and a reason: %+v", a)
				}
				return
			}
			r := parseReply(t, a.Frame)
			if r.dstIP != tc.dst || !r.checksumsGood {
				t.Errorf("to %s (checksums good %v), want %s", r.dstIP, r.checksumsGood, tc.dst)
			}
			if r.opts[optMessageType][0] != tc.want {
				t.Errorf("message type %v", r.opts[optMessageType])
			}
			switch {
			case tc.want == Nak:
				if r.opts[optLeaseTime] != nil || r.opts[optRouter] != nil || r.yiaddr != netip.IPv4Unspecified() {
					t.Errorf("NAK with lease, router or yiaddr: %v %s", r.opts, r.yiaddr)
				}
			case req.Type == Inform:
				if r.opts[optLeaseTime] != nil || r.yiaddr != netip.IPv4Unspecified() || r.opts[optRouter] == nil {
					t.Errorf("INFORM ACK: lease %v yiaddr %s router %v", r.opts[optLeaseTime], r.yiaddr, r.opts[optRouter])
				}
			default:
				if r.yiaddr != vmIP || u32(r.opts[optLeaseTime]) != 3600 {
					t.Errorf("ACK yiaddr %s lease %v", r.yiaddr, r.opts[optLeaseTime])
				}
			}
		})
	}
}

// TestNoRoutesNoOption121 and no MTU/DNS/domain when not configured; the
// hostname only when asked for.
func TestOptionalOptionsLeftOut(t *testing.T) {
	c := testConfig()
	c.Routes, c.DNS, c.Domain, c.MTU = nil, nil, "", 0
	req, _ := Decode(reqSpec{typ: Discover}.frame())
	r := parseReply(t, Respond(req, c).Frame)
	for _, code := range []uint8{optClasslessRts, optDNS, optDomainName, optMTU, optHostname} {
		if _, ok := r.opts[code]; ok {
			t.Errorf("option %d present: %v", code, r.opts[code])
		}
	}
}

func TestDecodeRefuses(t *testing.T) {
	good := reqSpec{typ: Discover}.frame()
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for name, tc := range map[string]struct {
		frame []byte
		want  error
	}{
		"empty":          {nil, ErrNotDHCP},
		"ARP":            {mut(func(b []byte) []byte { b[12], b[13] = 8, 6; return b }), ErrNotDHCP},
		"TCP":            {mut(func(b []byte) []byte { b[ethLen+9] = 6; return b }), ErrNotDHCP},
		"server port":    {mut(func(b []byte) []byte { b[ethLen+20+1] = 67; b[ethLen+20+3] = 68; return b }), ErrNotDHCP},
		"truncated":      {good[:ethLen+20+8+100], ErrMalformed},
		"ip total long":  {mut(func(b []byte) []byte { binary.BigEndian.PutUint16(b[ethLen+2:], 9000); return b }), ErrMalformed},
		"udp len long":   {mut(func(b []byte) []byte { binary.BigEndian.PutUint16(b[ethLen+24:], 9000); return b }), ErrMalformed},
		"fragment":       {mut(func(b []byte) []byte { b[ethLen+6] = 0x20; return b }), ErrMalformed},
		"reply op":       {mut(func(b []byte) []byte { b[ethLen+28] = 2; return b }), ErrMalformed},
		"no cookie":      {mut(func(b []byte) []byte { b[ethLen+28+bootpLen] = 0; return b }), ErrMalformed},
		"no end":         {mut(func(b []byte) []byte { return fixLens(b[:len(b)-1]) }), ErrMalformed},
		"option overrun": {mut(func(b []byte) []byte { b[len(b)-1] = 12; return fixLens(append(b, 200, 'x')) }), ErrMalformed},
		"no type":        {mut(func(b []byte) []byte { b[ethLen+28+bootpLen+4+2] = 0; return b }), ErrMalformed},
		"huge":           {make([]byte, MaxFrame+1), ErrMalformed},
	} {
		if _, err := Decode(tc.frame); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
}

// fixLens rewrites the IPv4 and UDP lengths after a test changed a frame's
// size.
func fixLens(b []byte) []byte {
	binary.BigEndian.PutUint16(b[ethLen+2:], uint16(len(b)-ethLen))
	binary.BigEndian.PutUint16(b[ethLen+24:], uint16(len(b)-ethLen-20))
	return b
}

// FuzzDecode: no input makes Decode or Respond panic, and every answer is
// a well-formed frame with good checksums.
func FuzzDecode(f *testing.F) {
	f.Add(reqSpec{typ: Discover, opts: [][]byte{{optParamList, 1, 3, 6, 121}}}.frame())
	f.Add(reqSpec{typ: Request, opts: [][]byte{append([]byte{optRequestedIP}, ip4(vmIP)...)}}.frame())
	f.Add(reqSpec{typ: Request, src: vmIP, ciaddr: vmIP}.frame())
	f.Add(reqSpec{typ: Inform, src: vmIP, ciaddr: vmIP}.frame())
	f.Add([]byte{})
	c := testConfig()
	f.Fuzz(func(t *testing.T, frame []byte) {
		req, err := Decode(frame)
		if err != nil {
			if !errors.Is(err, ErrNotDHCP) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v wraps neither ErrNotDHCP nor ErrMalformed", err)
			}
			return
		}
		a := Respond(req, c)
		if a.Type == 0 {
			return
		}
		r := parseReply(t, a.Frame)
		if !r.checksumsGood {
			t.Fatal("reply with bad checksums")
		}
	})
}
