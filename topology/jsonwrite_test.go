package topology

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"testing"
)

// hostByReflection is the host's JSON as encoding/json writes it from the
// struct's tags: what Host.MarshalJSON must equal.
func hostByReflection(t testing.TB, h Host) []byte {
	t.Helper()
	out := struct {
		hostJSON
		AliyunID string `json:"aliyun_id,omitempty"`
	}{hostJSON: hostJSON(h)}
	if h.ID != 0 {
		out.AliyunID = h.AliyunID()
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func subnetByReflection(t testing.TB, s Subnet) []byte {
	t.Helper()
	out := struct {
		subnetJSON
		AliyunID string `json:"aliyun_id,omitempty"`
	}{subnetJSON: subnetJSON(s)}
	if s.ID != 0 {
		out.AliyunID = s.AliyunID()
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func jsonHosts() []Host {
	full := Host{ID: 4294967295, VPC: "vpc-a", Name: "web-1", VSwitch: "vsw", IP: netip.MustParseAddr("10.0.0.2"),
		MAC: MAC{0x52, 0x54, 0, 0xab, 0xcd, 0xef}, Bridge: "br-int", OVSDB: "unix:/run/db.sock", Chassis: "c1",
		Interface: "tap0", DPID: 0xfedcba9876543210, OFPort: 65279, SecurityGroups: []string{"sg-a", "sg-b"}, CTZone: 65535}
	return []Host{
		{},
		full,
		{ID: 1, VPC: "v", Name: "h", VSwitch: "w", IP: netip.MustParseAddr("192.168.1.1"), MAC: MAC{1, 2, 3, 4, 5, 6}, DPID: 1, OFPort: 1},
		{VPC: "a<b>&c", Name: "ünïcödé\u2028\u2029", VSwitch: "tab\there \"q\" \\", Interface: "bad\xffutf8", SecurityGroups: []string{}},
		{Name: "ctl\x00\x1f\x7f", SecurityGroups: []string{"<sg>"}},
	}
}

// TestHostJSONIsMarshal: the hand-written form is byte for byte what
// encoding/json writes, for every field set, unset and with strings it
// escapes; and a field added to Host without being written fails here.
func TestHostJSONIsMarshal(t *testing.T) {
	for _, h := range jsonHosts() {
		got, err := json.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		if want := hostByReflection(t, h); !bytes.Equal(got, want) {
			t.Errorf("host %+v:\n got %s\nwant %s", h, got, want)
		}
		direct, _ := h.MarshalJSON()
		if want := hostByReflection(t, h); !bytes.Equal(direct, want) {
			t.Errorf("host %+v MarshalJSON:\n got %s\nwant %s", h, direct, want)
		}
	}
}

func TestSubnetJSONIsMarshal(t *testing.T) {
	for _, s := range []Subnet{
		{},
		{ID: 7, VPC: "vpc-a", Name: "10.1.0.0-16", CIDR: netip.MustParsePrefix("10.1.0.0/16"), Host: "web-1"},
		{VPC: "x&y", Name: "\u2028", CIDR: netip.MustParsePrefix("0.0.0.0/0"), Host: "bad\xfe"},
	} {
		got, _ := s.MarshalJSON()
		if want := subnetByReflection(t, s); !bytes.Equal(got, want) {
			t.Errorf("subnet %+v:\n got %s\nwant %s", s, got, want)
		}
	}
}

func FuzzHostJSON(f *testing.F) {
	f.Add("vpc", "name", "vsw", "br", "tap", "sg", uint32(1), uint64(2), uint32(3), uint16(4), []byte{1, 2, 3, 4, 5, 6})
	f.Add("<", "\xff", "\u2028", "", "", "", uint32(0), uint64(0), uint32(0), uint16(0), []byte(nil))
	f.Fuzz(func(t *testing.T, vpc, name, vsw, bridge, iface, sg string, id uint32, dpid uint64, port uint32, zone uint16, mac []byte) {
		h := Host{ID: id, VPC: vpc, Name: name, VSwitch: vsw, IP: netip.AddrFrom4([4]byte{byte(id), 2, 3, 4}), MAC: mac,
			Bridge: bridge, Interface: iface, DPID: DPID(dpid), OFPort: port, CTZone: zone}
		if sg != "" {
			h.SecurityGroups = []string{sg, name}
		}
		got, _ := h.MarshalJSON()
		if want := hostByReflection(t, h); !bytes.Equal(got, want) {
			t.Fatalf("host %+v:\n got %s\nwant %s", h, got, want)
		}
		s := Subnet{ID: id, VPC: vpc, Name: name, Host: iface, CIDR: netip.PrefixFrom(h.IP, int(port%33))}
		if got, want := s.AppendJSON(nil), subnetByReflection(t, s); !bytes.Equal(got, want) {
			t.Fatalf("subnet %+v:\n got %s\nwant %s", s, got, want)
		}
	})
}
