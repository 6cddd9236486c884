package controller

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"

	"github.com/vpcflow/vpcflow/controller/controllertest"
	"github.com/vpcflow/vpcflow/controller/dhcp"
	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// sender records packet-outs, as a switch would receive them.
type sender struct {
	dpid uint64
	mu   sync.Mutex
	outs []packetOut
}

type packetOut struct {
	port  uint32
	frame []byte
}

func (s *sender) DPID() uint64 { return s.dpid }
func (s *sender) PacketOut(_ context.Context, inPort uint32, actions []openflow.Action, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if inPort != openflow.PortController || len(actions) != 1 || actions[0].Type != openflow.ActOutput {
		panic(fmt.Sprintf("unexpected packet-out in_port %d actions %v", inPort, actions))
	}
	s.outs = append(s.outs, packetOut{actions[0].Port, append([]byte(nil), data...)})
	return nil
}

func (s *sender) take() []packetOut {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.outs
	s.outs = nil
	return out
}

var (
	vm1MAC = net.HardwareAddr{0x52, 0x58, 0x00, 0x98, 0xc0, 0x81}
	vm2MAC = net.HardwareAddr{0x52, 0x58, 0x00, 0x98, 0xc0, 0x92}
)

// seedRig is the seed scenario with br-test (dpid 1) connected, vnet1 on
// port 1 and vnet3 on port 2.
func seedRig(t *testing.T) (*rig, *controllertest.Datapath) {
	r := newRig(t, Options{OVSDBEndpoints: []string{"unix:/test/db.sock"}})
	r.c.BridgesChanged("unix:/test/db.sock", seedBridges())
	dp := controllertest.NewDatapath(1)
	r.connect(dp)
	r.apply(seedOps()...)
	return r, dp
}

// dhcpPacketIn is what the DHCP feature's flow for host hostID on port
// sends: the frame with the flow's cookie and userdata.
func dhcpPacketIn(hostID, port uint32, frame []byte) openflow.PacketIn {
	return openflow.PacketIn{Reason: openflow.PacketInAction, Cookie: pipeline.HostCookie(hostID, pipeline.DropNone),
		InPort: port, Data: frame, Userdata: pipeline.ServiceDHCP.Userdata()}
}

func hostID(t *testing.T, r *rig, name string) uint32 {
	var id uint32
	r.store.Read(func(st *topology.State) {
		h, ok := st.Host("vpc-seed", name)
		if !ok {
			t.Fatalf("no host %s", name)
		}
		id = h.ID
	})
	return id
}

// TestDHCPAnsweredFromRegistration: a DISCOVER from test1's port gets an
// OFFER of test1's address out of that port, with the VPC's DHCP options
// set; a REQUEST for another address a NAK; a request naming another
// chaddr nothing (counted dhcp_bad); a request that arrives on test2's
// port with test1's cookie nothing (counted dhcp_unregistered).
func TestDHCPAnsweredFromRegistration(t *testing.T) {
	r, _ := seedRig(t)
	r.apply(topology.Create(&topology.DHCPOptions{VPC: "vpc-seed", Name: "dopt", DomainName: "seed.example",
		DNSServers: []netip.Addr{netip.MustParseAddr("10.10.10.53")}, LeaseTime: 600}))
	id1 := hostID(t, r, "test1")
	sw := &sender{dpid: 1}
	ip1 := netip.MustParseAddr("10.10.10.11")

	r.c.punt(sw, dhcpPacketIn(id1, 1, dhcp.RequestFrame(vm1MAC, 1, dhcp.Discover, netip.Addr{}, netip.Addr{}, netip.Addr{})))
	outs := sw.take()
	if len(outs) != 1 || outs[0].port != 1 {
		t.Fatalf("packet-outs %+v, want one to port 1", outs)
	}
	typ, yi, opts, ok := dhcp.ReplyOf(outs[0].frame)
	if !ok || typ != dhcp.Offer || yi != ip1 {
		t.Fatalf("reply type %d yiaddr %s ok %v", typ, yi, ok)
	}
	if string(opts[15]) != "seed.example" || netip.AddrFrom4([4]byte(opts[6])) != netip.MustParseAddr("10.10.10.53") ||
		netip.AddrFrom4([4]byte(opts[3])) != netip.MustParseAddr("10.10.10.1") || opts[26][0] != 0x05 || opts[26][1] != 0xdc ||
		opts[51][2] != 0x02 || opts[51][3] != 0x58 {
		t.Errorf("options %v", opts)
	}

	r.c.punt(sw, dhcpPacketIn(id1, 1, dhcp.RequestFrame(vm1MAC, 2, dhcp.Request, netip.Addr{}, netip.MustParseAddr("10.10.10.99"), netip.Addr{})))
	if outs := sw.take(); len(outs) != 1 {
		t.Fatalf("NAK: %d packet-outs", len(outs))
	} else if typ, _, _, _ := dhcp.ReplyOf(outs[0].frame); typ != dhcp.Nak {
		t.Errorf("request for another address answered %d, want NAK", typ)
	}

	r.c.punt(sw, dhcpPacketIn(id1, 1, dhcp.RequestFrame(net.HardwareAddr{2, 0, 0, 0, 0, 9}, 3, dhcp.Discover, netip.Addr{}, netip.Addr{}, netip.Addr{})))
	r.c.punt(sw, dhcpPacketIn(id1, 1, []byte("garbage")))
	r.c.punt(sw, dhcpPacketIn(id1, 2, dhcp.RequestFrame(vm2MAC, 4, dhcp.Discover, netip.Addr{}, netip.Addr{}, netip.Addr{})))
	if outs := sw.take(); len(outs) != 0 {
		t.Fatalf("answered what must not be: %d packet-outs", len(outs))
	}
	report, err := r.c.Drops(r.ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]DropCounters{}
	for _, h := range report.Hosts {
		got[h.Name] = h.Drops
	}
	if got["test1"]["dhcp_bad"] != 2 || got["test2"]["dhcp_unregistered"] != 1 {
		t.Errorf("host drops %v", got)
	}
}

// TestPuntBudgetPerSource: a flood from one port is cut at its budget; a
// request from another port in the middle of it is still answered, and
// the flood is counted as punt_limited against the flooding host.
func TestPuntBudgetPerSource(t *testing.T) {
	r, _ := seedRig(t)
	id1, id2 := hostID(t, r, "test1"), hostID(t, r, "test2")
	sw := &sender{dpid: 1}
	flood := dhcp.RequestFrame(vm1MAC, 1, dhcp.Discover, netip.Addr{}, netip.Addr{}, netip.Addr{})
	const n = 5000
	for i := 0; i < n; i++ {
		r.c.punt(sw, dhcpPacketIn(id1, 1, flood))
	}
	answered := len(sw.take())
	if answered < puntBurst || answered > n/10 {
		t.Errorf("flooding port answered %d times out of %d, want about its burst (%d)", answered, n, puntBurst)
	}
	r.c.punt(sw, dhcpPacketIn(id2, 2, dhcp.RequestFrame(vm2MAC, 2, dhcp.Discover, netip.Addr{}, netip.Addr{}, netip.Addr{})))
	if outs := sw.take(); len(outs) != 1 || outs[0].port != 2 {
		t.Fatalf("the other VM was not answered during the flood: %+v", outs)
	}
	report, err := r.c.Drops(r.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range report.Hosts {
		if h.Name == "test1" && h.Drops["punt_limited"] != uint64(n-answered) {
			t.Errorf("test1 punt_limited %d, want %d", h.Drops["punt_limited"], n-answered)
		}
		if h.Name == "test2" && h.Drops["punt_limited"] != 0 {
			t.Errorf("test2 punt_limited %d", h.Drops["punt_limited"])
		}
	}
}

// TestMeterDropsReported: what the switch's meters dropped is reported as
// punt_limited for the switch.
func TestMeterDropsReported(t *testing.T) {
	r, dp := seedRig(t)
	if !dp.CountMeter(pipeline.MeterDHCP, 1000, 700) || !dp.CountMeter(pipeline.MeterTooBig, 10, 5) {
		t.Fatal("meters not installed")
	}
	report, err := r.c.Drops(r.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(report.Switches) != 1 || report.Switches[0].Drops["punt_limited"] != 705 {
		t.Errorf("switch drops %+v, want punt_limited 705", report.Switches)
	}
}
