package pipeline

import (
	"context"
	"net/netip"
	"testing"

	"github.com/vpcflow/vpcflow/topology"
)

// portTable resolves hosts from a fixed map: bridge/interface or
// chassis/interface → attachment, dpid+ofport as given.
type portTable map[string]Attachment

func (p portTable) Attachment(h topology.Host) (Attachment, bool) {
	switch {
	case h.Bridge != "":
		a, ok := p[h.Bridge+"/"+h.Interface]
		return a, ok
	case h.Chassis != "":
		a, ok := p[h.Chassis+"/"+h.Interface]
		return a, ok
	}
	return Attachment{DPID: uint64(h.DPID), OFPort: h.OFPort}, true
}

func mustStore(t testing.TB, ops ...topology.Op) *topology.Store {
	t.Helper()
	st, err := topology.NewStore(context.Background(), topology.NewMemory(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Apply(context.Background(), ops); err != nil {
		t.Fatal(err)
	}
	return st
}

func mac(s string) topology.MAC {
	m, err := topology.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// seedOps is the seed scenario registered as the e2e test and `make demo`
// do it, in the same order (so the IDs, and the cookies, are the same).
func seedOps() []topology.Op {
	return []topology.Op{
		topology.Create(&topology.VPC{Name: "vpc-seed"}),
		topology.Create(&topology.VSwitch{VPC: "vpc-seed", Name: "vsw-a", CIDR: netip.MustParsePrefix("10.10.10.0/24"), Gateway: netip.MustParseAddr("10.10.10.1")}),
		topology.Create(&topology.Host{VPC: "vpc-seed", Name: "test1", VSwitch: "vsw-a", IP: netip.MustParseAddr("10.10.10.11"), MAC: mac("52:58:00:98:c0:81"), Bridge: "br-test", Interface: "vnet1"}),
		topology.Create(&topology.Subnet{VPC: "vpc-seed", CIDR: netip.MustParsePrefix("172.18.1.0/24"), Host: "test1"}),
		topology.Create(&topology.Host{VPC: "vpc-seed", Name: "test2", VSwitch: "vsw-a", IP: netip.MustParseAddr("10.10.10.12"), MAC: mac("52:58:00:98:c0:92"), Bridge: "br-test", Interface: "vnet3"}),
		topology.Create(&topology.Subnet{VPC: "vpc-seed", CIDR: netip.MustParsePrefix("172.18.3.0/24"), Host: "test2"}),
	}
}

// seedPorts: br-test is dpid 1, vnet1 port 1, vnet3 port 2 (as OVS numbers
// them when the e2e plugs them in that order).
var seedDPID uint64 = 1

func seedPorts() portTable {
	return portTable{"br-test/vnet1": {seedDPID, 1}, "br-test/vnet3": {seedDPID, 2}}
}

// chassisOps is one VPC over three chassis: vm1 on node1, vm2 on node2,
// a container subnet behind each, nothing yet on node3.
func chassisOps() []topology.Op {
	ch := func(n int) *topology.Chassis {
		ip := netip.AddrFrom4([4]byte{192, 168, 100, byte(10 + n)})
		return &topology.Chassis{Name: "node" + string(rune('0'+n)), OVSDB: "tcp:" + ip.String() + ":6640", Bridge: "br-vpc", TunnelIP: ip, Controller: "tcp:192.168.100.254:6653"}
	}
	return []topology.Op{
		topology.Create(ch(1)), topology.Create(ch(2)), topology.Create(ch(3)),
		topology.Create(&topology.VPC{Name: "vpc-a"}),
		topology.Create(&topology.VSwitch{VPC: "vpc-a", Name: "vsw-a", CIDR: netip.MustParsePrefix("10.10.10.0/24")}),
		topology.Create(&topology.Host{VPC: "vpc-a", Name: "vm1", VSwitch: "vsw-a", IP: netip.MustParseAddr("10.10.10.21"), MAC: mac("02:00:00:00:00:21"), Chassis: "node1", Interface: "vnet1"}),
		topology.Create(&topology.Host{VPC: "vpc-a", Name: "vm2", VSwitch: "vsw-a", IP: netip.MustParseAddr("10.10.10.22"), MAC: mac("02:00:00:00:00:22"), Chassis: "node2", Interface: "vnet1"}),
		topology.Create(&topology.Subnet{VPC: "vpc-a", CIDR: netip.MustParsePrefix("172.18.21.0/24"), Host: "vm1"}),
		topology.Create(&topology.Subnet{VPC: "vpc-a", CIDR: netip.MustParsePrefix("172.18.22.0/24"), Host: "vm2"}),
	}
}

// chassisSnapshot resolves the three chassis: node N is dpid 0x1N with its
// VXLAN port at 10 and its VM at port 1.
func chassisSnapshot(st *topology.State) *Snapshot {
	places := map[string]ChassisPlace{}
	for _, ch := range st.AllChassis() {
		n := uint64(ch.Name[len(ch.Name)-1] - '0')
		places[ch.Name] = ChassisPlace{Chassis: ch, DPID: 0x10 + n, TunnelPort: 10}
	}
	ports := portTable{"node1/vnet1": {0x11, 1}, "node2/vnet1": {0x12, 1}}
	// node1 offers the metadata service behind port 20.
	meta := map[uint64]MetadataPort{0x11: {OFPort: 20, MAC: mac("02:00:00:00:00:20").HW()}}
	// node1 also serves the Aliyun API there, at the default address.
	return &Snapshot{Topo: st, Ports: ports, Chassis: places, UnderlayMTU: 1500, MetadataPorts: meta, AliyunServiceIP: DefaultAliyunServiceIP}
}

func seedSnapshot(st *topology.State) *Snapshot {
	return &Snapshot{Topo: st, Ports: seedPorts(), Chassis: map[string]ChassisPlace{}, UnderlayMTU: 1500}
}
