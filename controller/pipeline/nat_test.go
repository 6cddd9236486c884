package pipeline

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

// natOps puts vpc on the internet through uplink up1 (at where): a NAT
// gateway with 203.0.113.10–12, an SNAT entry for vsw-a on .10, one for
// host h1 on .11 (more specific), an EIP .20 on h2, and DNAT entries on
// .12: tcp 8080→h1:80, udp 9000/9009 kept, tcp 7000/7002→h1:81/83.
func natOps(vpc, h1, h2 string, where topology.Uplink, routerMAC string) []topology.Op {
	where.Name, where.CIDR, where.Gateway = "up1", netip.MustParsePrefix("203.0.113.0/24"), netip.MustParseAddr("203.0.113.1")
	where.MAC = mac("02:76:70:00:00:01")
	if routerMAC != "" {
		where.RouterMAC = mac(routerMAC)
	}
	h1IP := map[string]string{"test1": "10.10.10.11", "vm1": "10.10.10.21"}[h1]
	dnat := func(proto, ext, in string) topology.Op {
		return topology.Create(&topology.DNATEntry{VPC: vpc, NATGateway: "ngw", ExternalIP: netip.MustParseAddr("203.0.113.12"), Protocol: proto,
			ExternalPort: ext, InternalIP: netip.MustParseAddr(h1IP), InternalPort: in})
	}
	return []topology.Op{
		topology.Create(&where),
		topology.Create(&topology.NATGateway{VPC: vpc, Name: "ngw", Uplink: "up1", IPs: addrs("203.0.113.10", "203.0.113.11", "203.0.113.12")}),
		topology.Create(&topology.SNATEntry{VPC: vpc, NATGateway: "ngw", VSwitch: "vsw-a", SNATIPs: addrs("203.0.113.10")}),
		topology.Create(&topology.SNATEntry{VPC: vpc, NATGateway: "ngw", Host: h1, SNATIPs: addrs("203.0.113.11")}),
		topology.Create(&topology.EIP{VPC: vpc, Name: "eip", IP: netip.MustParseAddr("203.0.113.20"), Uplink: "up1", Host: h2}),
		dnat("tcp", "8080", "80"), dnat("udp", "9000/9009", "9000/9009"), dnat("tcp", "7000/7002", "81/83"),
	}
}

// natSeed is the seed scenario with the uplink on br-test port 9.
func natSeed(t *testing.T) (*topology.Store, func(*topology.State) *Snapshot) {
	st := mustStore(t, append(seedOps(), natOps("vpc-seed", "test1", "test2", topology.Uplink{Bridge: "br-test", Interface: "eth-up"}, "52:54:00:00:00:01")...)...)
	return st, func(s *topology.State) *Snapshot {
		snap := seedSnapshot(s)
		ports := seedPorts()
		ports["br-test/eth-up"] = Attachment{seedDPID, 9}
		snap.Ports = ports
		return snap
	}
}

// natChassis is the three chassis with the uplink on node3 port 9.
func natChassis(t *testing.T) (*topology.Store, func(*topology.State) *Snapshot) {
	st := mustStore(t, append(chassisOps(), natOps("vpc-a", "vm1", "vm2", topology.Uplink{Chassis: "node3", Interface: "eth-up"}, "52:54:00:00:00:01")...)...)
	return st, func(s *topology.State) *Snapshot {
		snap := chassisSnapshot(s)
		ports := snap.Ports.(portTable)
		ports["node3/eth-up"] = Attachment{0x13, 9}
		return snap
	}
}

// TestGoldenNAT pins both NAT stages' flows, and the uplink's in the first
// table, on one bridge and over three chassis (the gateway on node3).
func TestGoldenNAT(t *testing.T) {
	p := Default()
	for _, c := range []struct {
		name string
		make func(*testing.T) (*topology.Store, func(*topology.State) *Snapshot)
	}{{"seed-nat", natSeed}, {"chassis-nat", natChassis}} {
		st, snap := c.make(t)
		for _, f := range p.Features() {
			if !strings.HasPrefix(f.Name(), "nat-") {
				continue
			}
			st.Read(func(s *topology.State) { golden(t, f.Name()+"."+c.name+".golden", featureText(p, f, snap(s))) })
		}
	}
}

// flowsOn is every flow of every owner on dpid.
func flowsOn(p *Pipeline, s *Snapshot, dpid uint64) []openflow.Flow {
	var out []openflow.Flow
	for _, o := range AllOwners(s.Topo) {
		for _, pf := range p.Flows(s, o) {
			if pf.DPID == dpid {
				out = append(out, pf.Flow)
			}
		}
	}
	return dedupe(out)
}

func find(fs []openflow.Flow, table uint8, match string) []openflow.Flow {
	var out []openflow.Flow
	for _, f := range fs {
		if f.Table == table && strings.Contains(f.Match.String(), match) {
			out = append(out, f)
		}
	}
	return out
}

// The scopes of table 33 are ordered EIP > IP mapping > SNAT entries by
// prefix length, and each commits to its own addresses in its own zone.
func TestNATScopes(t *testing.T) {
	p := Default()
	st, snap := natSeed(t)
	st.Read(func(s *topology.State) {
		fs := flowsOn(p, snap(s), seedDPID)
		g, _ := s.NATGatewayOf("vpc-seed")
		e, _ := s.EIP("vpc-seed", "eip")
		prio := func(src string) (uint16, string) {
			got := find(fs, tableNATSNATCommit, "nw_src="+src)
			if len(got) != 1 {
				t.Fatalf("table 34 for %s: %v", src, got)
			}
			return got[0].Priority, got[0].Actions[0].String()
		}
		pe, ae := prio("10.10.10.12")
		ph, ah := prio("10.10.10.11")
		pv, av := prio("10.10.10.0/24")
		if !(pe > ph && ph > pv) {
			t.Errorf("priorities: EIP %d, host scope %d, vSwitch scope %d; want decreasing", pe, ph, pv)
		}
		for _, c := range []struct{ got, want string }{
			{ae, "nat(src=203.0.113.20)"}, {ah, "nat(src=203.0.113.11)"}, {av, "nat(src=203.0.113.10)"},
		} {
			if !strings.Contains(c.got, c.want) {
				t.Errorf("commit %s, want %s", c.got, c.want)
			}
		}
		if !strings.Contains(ae, "zone="+strconv.Itoa(int(e.CTZone))) || !strings.Contains(ah, "zone="+strconv.Itoa(int(g.CTZone))) {
			t.Errorf("zones: EIP commits %s (zone %d), SNAT %s (zone %d)", ae, e.CTZone, ah, g.CTZone)
		}
		// Shifted DNAT ports: one commit per port, port for port.
		shifted := find(fs, tableNATDNATCommit, "tp_dst=700")
		if len(shifted) != 3 || !strings.Contains(shifted[2].Actions[0].String(), "nat(dst=10.10.10.11:83)") {
			t.Errorf("shifted DNAT commits: %v", shifted)
		}
	})
}

// Over chassis: vm1 (node1) leaves through VXLAN to node3 with the NAT
// MAC; vm2 (node2, EIP) too, by its own higher-priority flow; node3 admits
// both from the other chassis and takes them into the NAT tables.
func TestNATOverChassis(t *testing.T) {
	p := Default()
	st, snap := natChassis(t)
	st.Read(func(s *topology.State) {
		sn := snap(s)
		n1 := find(flowsOn(p, sn, 0x11), tableNATRoute, "reg2=0")
		if len(n1) != 1 || !strings.Contains(n1[0].String(), "set_field:192.168.100.13->tun_dst") || !strings.Contains(n1[0].String(), "ee:ff:ff:ff:ff:fe->eth_dst") {
			t.Errorf("node1's way out: %v", n1)
		}
		n2 := find(flowsOn(p, sn, 0x12), tableNATRoute, "reg2=0")
		if len(n2) != 2 {
			t.Errorf("node2's ways out (the VPC's and vm2's EIP): %v", n2)
		}
		n3 := flowsOn(p, sn, 0x13)
		adm := find(n3, 0, "dl_dst=ee:ff:ff:ff:ff:fe")
		if len(adm) != 2 {
			t.Errorf("node3 admits NAT traffic from node1 and node2: %v", adm)
		}
		if got := find(n3, tableNATRoute, "reg2=0,metadata"); len(got) != 2 || !slices.ContainsFunc(got, func(f openflow.Flow) bool {
			return strings.Contains(f.String(), "goto_table:32")
		}) {
			t.Errorf("node3 takes both into the NAT tables: %v", got)
		}
	})
}

// Without the router's MAC nothing leaves by the uplink: a drop that says
// why.
func TestUplinkUnresolved(t *testing.T) {
	p := Default()
	st := mustStore(t, append(seedOps(), natOps("vpc-seed", "test1", "test2", topology.Uplink{Bridge: "br-test", Interface: "eth-up"}, "")...)...)
	st.Read(func(s *topology.State) {
		sn := seedSnapshot(s)
		ports := seedPorts()
		ports["br-test/eth-up"] = Attachment{seedDPID, 9}
		sn.Ports = ports
		got := find(flowsOn(p, sn, seedDPID), tableNATUplink, "nw_src=203.0.113.0/24")
		if len(got) != 1 || len(got[0].Actions) != 0 || ParseCookie(got[0].Cookie).Reason != DropUplinkUnresolved {
			t.Errorf("uplink flow without a router MAC: %v", got)
		}
	})
}

// A host's move recomputes its VPC's gateway and its EIP; an uplink's, all
// on it; a new chassis every NAT owner.
func TestNATAffected(t *testing.T) {
	p := Default()
	st, _ := natChassis(t)
	st.Read(func(s *topology.State) {
		vm2, _ := s.Host("vpc-a", "vm2")
		g, _ := s.NATGatewayOf("vpc-a")
		e, _ := s.EIP("vpc-a", "eip")
		deps := p.Dependents(s, Owner{OwnerHost, vm2.ID})
		if !slices.Contains(deps, Owner{OwnerNATGateway, g.ID}) || !slices.Contains(deps, Owner{OwnerEIP, e.ID}) {
			t.Errorf("dependents of vm2: %v", deps)
		}
		u, _ := s.Uplink("up1")
		deps = p.Dependents(s, Owner{OwnerUplink, u.ID})
		if len(deps) != 1+2+3+1 {
			t.Errorf("dependents of the uplink (gateway, 2 SNAT, 3 DNAT, EIP): %v", deps)
		}
		ch, _ := s.Chassis("node1")
		aff := p.Affected(s, []topology.Op{{Kind: topology.OpCreate, Obj: &ch}})
		if !slices.Contains(aff, Owner{OwnerEIP, e.ID}) || !slices.Contains(aff, Owner{OwnerUplink, u.ID}) {
			t.Errorf("a chassis change recomputes %v", aff)
		}
	})
}
