package pipeline

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// overlapOps: two VPCs with the same addresses on one bridge, a VM in
// each at 10.10.10.11 (vnet1 and vnet3 of br-test).
func overlapOps() []topology.Op {
	var ops []topology.Op
	for i, vpc := range []string{"vpc-a", "vpc-b"} {
		ops = append(ops,
			topology.Create(&topology.VPC{Name: vpc}),
			topology.Create(&topology.VSwitch{VPC: vpc, Name: "vsw", CIDR: netip.MustParsePrefix("10.10.10.0/24"), Gateway: netip.MustParseAddr("10.10.10.1")}),
			topology.Create(&topology.Host{VPC: vpc, Name: "vm", VSwitch: "vsw", IP: netip.MustParseAddr("10.10.10.11"),
				MAC: mac(fmt.Sprintf("52:58:00:98:c0:%02x", 0x81+i)), Bridge: "br-test", Interface: []string{"vnet1", "vnet3"}[i]}))
	}
	return ops
}

// aliyunServiceFlows is what the AliyunService feature installs for every
// host of st (ovs-ofctl text, by host), with the metadata port at ofport 9
// of dpid 1 when meta, and the service address svc.
func aliyunServiceFlows(t *testing.T, st *topology.State, meta bool, svc netip.Addr) map[string]string {
	t.Helper()
	p := Default()
	var f Feature
	for _, g := range p.Features() {
		if g.Name() == "aliyun-service" {
			f = g
		}
	}
	if f == nil {
		t.Fatal("no aliyun-service feature in the default pipeline")
	}
	s := seedSnapshot(st)
	if meta {
		s.MetadataPorts = map[uint64]MetadataPort{seedDPID: {OFPort: 9, MAC: mac("02:00:00:00:00:fe").HW()}}
	}
	s.AliyunServiceIP = svc
	out := map[string]string{}
	for _, h := range st.AllHosts() {
		set := &FlowSet{p: p, feature: f}
		f.Flows(s, Owner{Kind: OwnerHost, ID: h.ID}, set)
		var fs []openflow.Flow
		for _, pf := range set.flows {
			if pf.DPID != seedDPID {
				t.Errorf("%s/%s: flow on dpid %d", h.VPC, h.Name, pf.DPID)
			}
			fs = append(fs, pf.Flow)
		}
		out[h.VPC] = text(fs)
	}
	return out
}

// TestAliyunServiceOverlappingVPCs: a VM of each of two VPCs with the same
// address asks the service address; each request leaves by the metadata
// port from that VM's own link address, to the API listener's port, and
// the answers to each link address go back to that VM alone, from the
// service address and port 80.
func TestAliyunServiceOverlappingVPCs(t *testing.T) {
	st := mustStore(t, overlapOps()...)
	st.Read(func(s *topology.State) {
		for _, svc := range []netip.Addr{DefaultAliyunServiceIP, netip.MustParseAddr("100.100.0.5")} {
			got := aliyunServiceFlows(t, s, true, svc)
			links := map[netip.Addr]string{}
			for i, vpc := range []string{"vpc-a", "vpc-b"} {
				h, ok := s.Host(vpc, "vm")
				if !ok {
					t.Fatalf("no host in %s", vpc)
				}
				link, ok := MetadataLinkAddr(h.ID)
				if !ok {
					t.Fatalf("%s: no link address for host id %d", vpc, h.ID)
				}
				if other, dup := links[link]; dup {
					t.Fatalf("%s and %s share link address %s", vpc, other, link)
				}
				links[link] = vpc
				port := i + 1 // vnet1 is ofport 1, vnet3 ofport 2 (seedPorts)
				want := []string{
					fmt.Sprintf("table=17, priority=100, cookie=%#x, tcp,in_port=%d,nw_dst=%s,tp_dst=80 actions=set_field:ee:ff:ff:ff:ff:ff->eth_src,set_field:02:00:00:00:00:fe->eth_dst,set_field:%s->ip_src,set_field:169.254.169.254->ip_dst,set_field:8090->tcp_dst,output:9",
						HostCookie(h.ID, DropNone), port, svc, link),
					fmt.Sprintf("table=0, priority=130, cookie=%#x, tcp,in_port=9,nw_src=169.254.169.254,nw_dst=%s,tp_src=8090 actions=set_field:ee:ff:ff:ff:ff:ff->eth_src,set_field:%s->eth_dst,set_field:%s->ip_src,set_field:10.10.10.11->ip_dst,set_field:80->tcp_src,output:%d",
						HostCookie(h.ID, DropNone), link, h.MAC, svc, port),
				}
				lines := strings.Split(strings.TrimSpace(got[vpc]), "\n")
				if len(lines) != len(want) {
					t.Fatalf("%s (service %s): %d flows, want %d:\n%s", vpc, svc, len(lines), len(want), got[vpc])
				}
				for _, w := range want {
					if !strings.Contains(got[vpc], w+"\n") {
						t.Errorf("%s (service %s): missing\n  %s\nin\n%s", vpc, svc, w, got[vpc])
					}
				}
			}
		}
	})
}

// TestAliyunServiceOff: no service address (the API is not served in the
// fabric) or no metadata port on the VM's bridge: no flows, the table only
// goes on.
func TestAliyunServiceOff(t *testing.T) {
	st := mustStore(t, overlapOps()...)
	st.Read(func(s *topology.State) {
		for name, got := range map[string]map[string]string{
			"no service address": aliyunServiceFlows(t, s, true, netip.Addr{}),
			"no metadata port":   aliyunServiceFlows(t, s, false, DefaultAliyunServiceIP),
		} {
			for vpc, fs := range got {
				if fs != "" {
					t.Errorf("%s: %s has flows:\n%s", name, vpc, fs)
				}
			}
		}
	})
	p := Default()
	for _, m := range p.Misses() {
		if m.Table == 17 && !strings.Contains(m.String(), "goto_table:") {
			t.Errorf("AliyunService's miss does not go on: %s", m.String())
		}
	}
}

// TestAliyunServiceBesideMetadata: with both services on a bridge, every
// flow of the whole pipeline has its own match (the two services' answers
// differ by their server port), so neither overrides the other.
func TestAliyunServiceBesideMetadata(t *testing.T) {
	st := mustStore(t, overlapOps()...)
	st.Read(func(s *topology.State) {
		snap := seedSnapshot(s)
		snap.MetadataPorts = map[uint64]MetadataPort{seedDPID: {OFPort: 9, MAC: mac("02:00:00:00:00:fe").HW()}}
		snap.AliyunServiceIP = DefaultAliyunServiceIP
		p := Default()
		seen := map[openflow.Key]string{}
		n := 0
		for _, o := range AllOwners(s) {
			for _, pf := range p.Flows(snap, o) {
				s := pf.Flow.String()
				if prev, dup := seen[pf.Flow.Key()]; dup && prev != s {
					t.Errorf("two flows with one match:\n  %s\n  %s", prev, s)
				}
				seen[pf.Flow.Key()] = s
				if strings.Contains(s, "tp_src=8090") || strings.Contains(s, "tp_dst=80 ") {
					n++
				}
			}
		}
		// Per VM: the metadata request, the API request and answer (the
		// metadata answer matches tp_src=80).
		if n != 2*3 {
			t.Errorf("%d service flows, want 6", n)
		}
	})
}
