package controller

import (
	"bytes"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/ovsdb"
	"github.com/vpcflow/vpcflow/topology"
)

// natRigOps puts vpc-seed behind uplink up1 (br-test/eth-up): a NAT
// gateway on 203.0.113.10 with an SNAT entry for vsw-a.
func natRigOps() []topology.Op {
	return []topology.Op{
		topology.Create(&topology.Uplink{Name: "up1", Bridge: "br-test", Interface: "eth-up", CIDR: netip.MustParsePrefix("203.0.113.0/24"),
			Gateway: netip.MustParseAddr("203.0.113.1")}),
		topology.Create(&topology.NATGateway{VPC: "vpc-seed", Name: "ngw", Uplink: "up1", IPs: []netip.Addr{netip.MustParseAddr("203.0.113.10")}}),
		topology.Create(&topology.SNATEntry{VPC: "vpc-seed", NATGateway: "ngw", VSwitch: "vsw-a", SNATIPs: []netip.Addr{netip.MustParseAddr("203.0.113.10")}}),
	}
}

func withUplinkPort(bs []ovsdb.Bridge) []ovsdb.Bridge {
	bs[0].Ports["eth-up"] = ovsdb.Port{Name: "eth-up", OFPort: 9}
	return bs
}

func flowsMatching(fs []openflow.Flow, table uint8, s string) []openflow.Flow {
	var out []openflow.Flow
	for _, f := range fs {
		if f.Table == table && strings.Contains(f.String(), s) {
			out = append(out, f)
		}
	}
	return out
}

// An uplink whose port appears later gets its flows then, with everything
// that depends on where it is; a port that goes takes them away.
func TestUplinkFollowsItsPort(t *testing.T) {
	r, dp := seedRig(t)
	r.apply(natRigOps()...)
	if got := flowsMatching(dp.Flows(), 0, "arp_tpa=203.0.113.10"); len(got) != 0 {
		t.Fatalf("ARP answered before the uplink's port is known: %v", got)
	}
	r.c.BridgesChanged("unix:/test/db.sock", withUplinkPort(seedBridges()))
	waitFor(t, "the uplink's flows", func() bool {
		return len(flowsMatching(dp.Flows(), 0, "in_port=9,arp_tpa=203.0.113.10")) == 1 &&
			len(flowsMatching(dp.Flows(), 34, "nw_src=10.10.10.0/24 actions=ct(commit,table=35,zone=49152,nat(src=203.0.113.10))")) == 1
	})
	r.exact()
	// No router MAC yet: what would leave by the uplink is dropped, and
	// says why.
	up := flowsMatching(dp.Flows(), 35, "nw_src=203.0.113.0/24")
	if len(up) != 1 || len(up[0].Actions) != 0 || pipeline.ParseCookie(up[0].Cookie).Reason != pipeline.DropUplinkUnresolved {
		t.Fatalf("uplink flow before the router is known: %v", up)
	}
	r.c.BridgesChanged("unix:/test/db.sock", seedBridges())
	waitFor(t, "the uplink's flows to go", func() bool { return len(flowsMatching(dp.Flows(), 0, "arp_tpa=203.0.113.10")) == 0 })
	r.exact()
}

// The router's ARP, punted from the uplink's port, is learned: stored with
// the uplink, and the uplink flow then sends to it. ARP from elsewhere, or
// from another address, is not.
func TestRouterMACLearned(t *testing.T) {
	r, dp := seedRig(t)
	r.apply(natRigOps()...)
	r.c.BridgesChanged("unix:/test/db.sock", withUplinkPort(seedBridges()))
	waitFor(t, "the uplink's flows", func() bool { return len(flowsMatching(dp.Flows(), 0, "arp_spa=203.0.113.1")) == 1 })
	router := net.HardwareAddr{0x52, 0x54, 0, 0xaa, 0, 1}
	reply := arpReply(router, netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.10"))
	sw := &sender{dpid: 1}
	in := func(port uint32, frame []byte) {
		r.c.punt(sw, openflow.PacketIn{Reason: openflow.PacketInAction, InPort: port, Data: frame, Userdata: pipeline.ServiceUplinkARP.Userdata()})
	}
	in(1, reply) // from a VM's port
	in(9, arpReply(router, netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("203.0.113.10")))
	in(9, reply[:30]) // short
	time.Sleep(100 * time.Millisecond)
	if m := routerMAC(r); m != nil {
		t.Fatalf("learned %s from the wrong port, address or a broken frame", m)
	}
	in(9, reply)
	waitFor(t, "the router MAC stored", func() bool { return bytes.Equal(routerMAC(r), router) })
	waitFor(t, "the uplink flow to the router", func() bool {
		return len(flowsMatching(dp.Flows(), 35, "set_field:52:54:00:aa:00:01->eth_dst,set_field:0x9->reg2")) == 1
	})
	r.exact()
	// A new MAC (router failover, gratuitous ARP) replaces it.
	router2 := net.HardwareAddr{0x52, 0x54, 0, 0xaa, 0, 2}
	in(9, arpReply(router2, netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.1")))
	waitFor(t, "the new router MAC", func() bool { return bytes.Equal(routerMAC(r), router2) })
}

func routerMAC(r *rig) net.HardwareAddr {
	var m net.HardwareAddr
	r.store.Read(func(st *topology.State) {
		u, _ := st.Uplink("up1")
		m = u.RouterMAC.HW()
	})
	return m
}

// arpReply is "spa is at sha" sent to tpa.
func arpReply(sha net.HardwareAddr, spa, tpa netip.Addr) []byte {
	b := ARPRequest(sha, spa, tpa)
	b[14+7] = 2
	return b
}

func TestARPRequestParses(t *testing.T) {
	mac := net.HardwareAddr{2, 0x76, 0x70, 1, 2, 3}
	b := ARPRequest(mac, netip.MustParseAddr("203.0.113.10"), netip.MustParseAddr("203.0.113.1"))
	spa, sha, err := ParseARPSender(b)
	if err != nil || spa != netip.MustParseAddr("203.0.113.10") || !bytes.Equal(sha, mac) {
		t.Fatalf("ParseARPSender = %v %v %v", spa, sha, err)
	}
	if !bytes.Equal(b[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}) || b[14+7] != 1 || !bytes.Equal(b[14+24:14+28], []byte{203, 0, 113, 1}) {
		t.Fatalf("request %x", b)
	}
	for _, bad := range [][]byte{nil, b[:41], append(append([]byte{}, b[:12]...), append([]byte{8, 0}, b[14:]...)...)} {
		if _, _, err := ParseARPSender(bad); err == nil {
			t.Errorf("ParseARPSender(%x) accepted it", bad)
		}
	}
	bcast := ARPRequest(net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.1"))
	if _, _, err := ParseARPSender(bcast); err == nil {
		t.Error("a broadcast sender MAC was accepted")
	}
}

func FuzzParseARPSender(f *testing.F) {
	f.Add(ARPRequest(net.HardwareAddr{2, 0, 0, 0, 0, 1}, netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")))
	f.Add([]byte{})
	f.Add(make([]byte, 42))
	f.Fuzz(func(t *testing.T, b []byte) {
		spa, sha, err := ParseARPSender(b)
		if err == nil && (!spa.Is4() || len(sha) != 6) {
			t.Fatalf("accepted %x as %v %v", b, spa, sha)
		}
	})
}
