package controller

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"
)

// ipv4Frame builds an Ethernet+IPv4 frame of total IP length n with the
// given protocol, flags and first payload byte.
func ipv4Frame(n int, proto byte, flags uint16, firstPayload byte, src string) []byte {
	f := make([]byte, 14+n)
	copy(f[0:6], []byte{0x52, 0x58, 0, 0x98, 0xc0, 0x92})
	copy(f[6:12], []byte{0xee, 0xff, 0xff, 0xff, 0xff, 0xff})
	binary.BigEndian.PutUint16(f[12:14], etherTypeIPv4)
	ip := f[14:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:4], uint16(n))
	binary.BigEndian.PutUint16(ip[4:6], 0x1234)
	binary.BigEndian.PutUint16(ip[6:8], flags)
	ip[8] = 63
	ip[9] = proto
	s := netip.MustParseAddr(src).As4()
	copy(ip[12:16], s[:])
	copy(ip[16:20], []byte{172, 18, 3, 4})
	binary.BigEndian.PutUint16(ip[10:12], checksum(ip[:20]))
	ip[20] = firstPayload
	for i := 21; i < n; i++ {
		ip[i] = byte(i)
	}
	return f
}

func TestFragNeededReply(t *testing.T) {
	gwMAC := net.HardwareAddr{0xee, 0xff, 0xff, 0xff, 0xff, 0xff}
	vmMAC := net.HardwareAddr{0x52, 0x58, 0x00, 0x98, 0xc0, 0x81}
	in := ipv4Frame(1500, ipProtoICMP, ipFlagDF, 8, "172.18.1.3")
	out, err := FragNeededReply(in, netip.MustParseAddr("10.10.10.1"), gwMAC, vmMAC, 1450)
	if err != nil {
		t.Fatal(err)
	}
	if got := net.HardwareAddr(out[0:6]).String(); got != vmMAC.String() {
		t.Errorf("eth dst %s, want the sending VM %s", got, vmMAC)
	}
	if got := net.HardwareAddr(out[6:12]).String(); got != gwMAC.String() {
		t.Errorf("eth src %s, want the gateway MAC", got)
	}
	ip := out[14:34]
	if checksum(ip) != 0 {
		t.Error("bad IPv4 header checksum")
	}
	if src, dst := netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20])); src.String() != "10.10.10.1" || dst.String() != "172.18.1.3" {
		t.Errorf("ICMP %s → %s, want 10.10.10.1 → 172.18.1.3", src, dst)
	}
	if int(binary.BigEndian.Uint16(ip[2:4])) != len(out)-14 {
		t.Errorf("IPv4 total length %d, frame carries %d", binary.BigEndian.Uint16(ip[2:4]), len(out)-14)
	}
	icmp := out[34:]
	if icmp[0] != 3 || icmp[1] != 4 {
		t.Errorf("ICMP type/code %d/%d, want 3/4", icmp[0], icmp[1])
	}
	if mtu := binary.BigEndian.Uint16(icmp[6:8]); mtu != 1450 {
		t.Errorf("next-hop MTU %d, want 1450", mtu)
	}
	if checksum(icmp) != 0 {
		t.Error("bad ICMP checksum")
	}
	if got, want := icmp[8:], in[14:14+28]; string(got) != string(want) {
		t.Errorf("quote is not the original IP header + 8 bytes")
	}
}

func TestFragNeededReplyRefuses(t *testing.T) {
	gw := netip.MustParseAddr("10.10.10.1")
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	for _, c := range []struct {
		name  string
		frame []byte
	}{
		{"no DF: the sender allows fragmentation", ipv4Frame(1500, 6, 0, 0, "10.10.10.11")},
		{"later fragment", ipv4Frame(1500, 6, ipFlagDF|0x10, 0, "10.10.10.11")},
		{"an ICMP error itself", ipv4Frame(1500, ipProtoICMP, ipFlagDF, 3, "10.10.10.11")},
		{"broadcast source", ipv4Frame(1500, 6, ipFlagDF, 0, "255.255.255.255")},
	} {
		if _, err := FragNeededReply(c.frame, gw, mac, mac, 1450); !errors.Is(err, errNoICMP) {
			t.Errorf("%s: got %v, want errNoICMP", c.name, err)
		}
	}
	for _, bad := range [][]byte{nil, make([]byte, 20), ipv4Frame(1500, 6, ipFlagDF, 0, "10.0.0.1")[:30]} {
		if _, err := FragNeededReply(bad, gw, mac, mac, 1450); err == nil {
			t.Errorf("malformed frame of %d bytes accepted", len(bad))
		}
	}
}

func FuzzFragNeededReply(f *testing.F) {
	f.Add(ipv4Frame(1500, ipProtoICMP, ipFlagDF, 8, "172.18.1.3"))
	f.Add([]byte{})
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	f.Fuzz(func(t *testing.T, frame []byte) {
		out, err := FragNeededReply(frame, netip.MustParseAddr("10.10.10.1"), mac, mac, 1450)
		if err == nil && (checksum(out[14:34]) != 0 || checksum(out[34:]) != 0) {
			t.Fatal("reply with a bad checksum")
		}
	})
}
