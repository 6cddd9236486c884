package pipeline

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

func group(vpc, name string) topology.Op {
	return topology.Create(&topology.SecurityGroup{VPC: vpc, Name: name})
}

func rule(r topology.SecurityGroupRule) topology.Op { return topology.Create(&r) }

func member(vpc, host string, groups ...string) topology.Op {
	return topology.Update(&topology.Host{VPC: vpc, Name: host, SecurityGroups: groups})
}

// sgRules is one rule of every kind in group web of vpc, and one in db.
func sgRules(vpc string) []topology.Op {
	cidr := netip.MustParsePrefix
	return []topology.Op{
		group(vpc, "web"), group(vpc, "db"),
		// ingress: ssh from 10/8 (priority 1), http from anywhere, a port
		// range, udp from the db group, icmp, and a drop at equal priority
		// to an accept.
		rule(topology.SecurityGroupRule{VPC: vpc, Group: "web", Direction: "ingress", Priority: 1, Protocol: "tcp", PortRange: "22/22", CIDR: cidr("10.0.0.0/8")}),
		rule(topology.SecurityGroupRule{VPC: vpc, Group: "web", Direction: "ingress", Priority: 10, Protocol: "tcp", PortRange: "80/80", CIDR: cidr("0.0.0.0/0")}),
		rule(topology.SecurityGroupRule{VPC: vpc, Group: "web", Direction: "ingress", Priority: 10, Protocol: "tcp", PortRange: "8000/8080", CIDR: cidr("0.0.0.0/0")}),
		rule(topology.SecurityGroupRule{VPC: vpc, Group: "web", Direction: "ingress", Priority: 20, Protocol: "udp", PortRange: "53/53", SecurityGroup: "db"}),
		rule(topology.SecurityGroupRule{VPC: vpc, Group: "web", Direction: "ingress", Priority: 50, Protocol: "icmp", CIDR: cidr("10.10.10.0/24")}),
		rule(topology.SecurityGroupRule{VPC: vpc, Group: "web", Direction: "ingress", Policy: "drop", Priority: 50, Protocol: "icmp", CIDR: cidr("10.10.10.12/32")}),
		// egress: nothing to 192.168/16, everything else by default.
		rule(topology.SecurityGroupRule{VPC: vpc, Group: "web", Direction: "egress", Policy: "drop", Priority: 1, Protocol: "all", CIDR: cidr("192.168.0.0/16")}),
		rule(topology.SecurityGroupRule{VPC: vpc, Group: "db", Direction: "ingress", Priority: 1, Protocol: "tcp", PortRange: "5432/5432", SecurityGroup: "web"}),
	}
}

// TestGoldenSecurityGroups pins both stages' flows for the seed scenario
// and the three chassis with groups: test1/vm1 in web, test2/vm2 in web
// and db.
func TestGoldenSecurityGroups(t *testing.T) {
	p := Default()
	seed := mustStore(t, append(append(seedOps(), sgRules("vpc-seed")...), member("vpc-seed", "test1", "web"), member("vpc-seed", "test2", "web", "db"))...)
	multi := mustStore(t, append(append(chassisOps(), sgRules("vpc-a")...), member("vpc-a", "vm1", "web"), member("vpc-a", "vm2", "web", "db"))...)
	for _, f := range p.Features() {
		if !strings.HasPrefix(f.Name(), "sg-") {
			continue
		}
		t.Run(f.Name(), func(t *testing.T) {
			seed.Read(func(st *topology.State) {
				golden(t, f.Name()+".seed-groups.golden", featureText(p, f, seedSnapshot(st)))
			})
			multi.Read(func(st *topology.State) {
				golden(t, f.Name()+".chassis-groups.golden", featureText(p, f, chassisSnapshot(st)))
			})
		})
	}
}

// TestPortMasks: the masks cover exactly lo..hi, for every range of a
// sample and the edges.
func TestPortMasks(t *testing.T) {
	check := func(lo, hi uint16) {
		ms := PortMasks(lo, hi)
		covered := 0
		for _, m := range ms {
			size := int(^m.Mask) + 1
			if int(m.Value)&int(^m.Mask) != 0 {
				t.Fatalf("%d-%d: %v not aligned", lo, hi, m)
			}
			if int(m.Value) < int(lo) || int(m.Value)+size-1 > int(hi) {
				t.Fatalf("%d-%d: %#04x/%#04x outside the range", lo, hi, m.Value, m.Mask)
			}
			covered += size
		}
		if covered != int(hi)-int(lo)+1 {
			t.Fatalf("%d-%d: %d ports covered by %v", lo, hi, covered, ms)
		}
		if len(ms) > 30 {
			t.Fatalf("%d-%d: %d masks", lo, hi, len(ms))
		}
	}
	check(22, 22)
	check(1, 65535)
	check(65535, 65535)
	check(0, 65535)
	check(8000, 8080)
	if n := len(PortMasks(1, 65535)); n != 16 {
		t.Errorf("1-65535 takes %d masks, want 16", n)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		a, b := uint16(r.IntN(65536)), uint16(r.IntN(65536))
		if a > b {
			a, b = b, a
		}
		check(a, b)
	}
}

// TestRuleLevels: priority 1 above 100, drop above accept at equal
// priority, all between the state checks and the common-group default.
func TestRuleLevels(t *testing.T) {
	l := func(p int, pol string) uint16 {
		return ruleLevel(&topology.SecurityGroupRule{Priority: p, Policy: pol})
	}
	if !(l(1, "accept") > l(2, "drop") && l(5, "drop") > l(5, "accept") && l(100, "accept") > prioSGSameGroup && l(1, "drop") < prioSGBlockedRelated) {
		t.Fatalf("levels: 1 accept %d, 2 drop %d, 5 drop %d, 5 accept %d, 100 accept %d", l(1, "accept"), l(2, "drop"), l(5, "drop"), l(5, "accept"), l(100, "accept"))
	}
}

// sgScale builds one VPC on one switch with `hosts` hosts in `groups`
// groups (round robin) of `rules` rules each, and counts the distinct
// flows of both stages.
func sgScale(t *testing.T, hosts, groups, rules int) int {
	ops := []topology.Op{
		topology.Create(&topology.VPC{Name: "v"}),
		topology.Create(&topology.VSwitch{VPC: "v", Name: "w", CIDR: netip.MustParsePrefix("10.0.0.0/16")}),
	}
	for g := 0; g < groups; g++ {
		ops = append(ops, group("v", fmt.Sprintf("g%d", g)))
	}
	for g := 0; g < groups; g++ {
		for r := 0; r < rules; r++ {
			rr := topology.SecurityGroupRule{VPC: "v", Group: fmt.Sprintf("g%d", g), Direction: "ingress", Priority: 1 + r%100, Protocol: "tcp",
				PortRange: fmt.Sprintf("%d/%d", 1000+r, 1000+r), CIDR: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(r % 200), 0, 0}), 16)}
			switch r % 4 {
			case 1:
				rr.Direction = "egress"
			case 2:
				rr.CIDR, rr.SecurityGroup = netip.Prefix{}, fmt.Sprintf("g%d", (g+1)%groups)
			case 3:
				rr.Policy = "drop"
			}
			ops = append(ops, rule(rr))
		}
	}
	for h := 0; h < hosts; h++ {
		ops = append(ops, topology.Create(&topology.Host{VPC: "v", Name: fmt.Sprintf("h%d", h), VSwitch: "w",
			IP: netip.AddrFrom4([4]byte{10, 0, byte(1 + h/250), byte(1 + h%250)}), MAC: mac(fmt.Sprintf("02:00:00:00:%02x:%02x", h/256, h%256)),
			DPID: 1, OFPort: uint32(h + 1), SecurityGroups: []string{fmt.Sprintf("g%d", h%groups)}}))
	}
	st := mustStore(t, ops...)
	p := Default()
	keys := map[openflow.Key]bool{}
	st.Read(func(s *topology.State) {
		snap := &Snapshot{Topo: s, Ports: portTable{}, Chassis: map[string]ChassisPlace{}, UnderlayMTU: 1500}
		for _, o := range AllOwners(s) {
			for _, pf := range p.Flows(snap, o) {
				if pf.Flow.Table >= tableSGEgress && pf.Flow.Table <= tableSGEgressDrop || pf.Flow.Table >= tableSGIngress && pf.Flow.Table <= tableSGIngressDrop {
					keys[pf.Flow.Key()] = true
				}
			}
		}
	})
	return len(keys)
}

// TestFlowCountIsRulesPlusMembers: the flows grow with rules + members:
// adding members adds a constant per member whatever the rules, adding
// rules a constant per rule whatever the members.
func TestFlowCountIsRulesPlusMembers(t *testing.T) {
	a := sgScale(t, 100, 4, 40)
	moreHosts := sgScale(t, 200, 4, 40)
	moreRules := sgScale(t, 100, 4, 80)
	both := sgScale(t, 200, 4, 80)
	perHost := float64(moreHosts-a) / 100
	perRule := float64(moreRules-a) / (4 * 40)
	t.Logf("100 hosts × 160 rules: %d flows; +100 hosts: +%d (%.1f per host); +160 rules: +%d (%.1f per rule); both: %d",
		a, moreHosts-a, perHost, moreRules-a, perRule, both)
	if both != a+(moreHosts-a)+(moreRules-a) {
		t.Errorf("not additive: %d flows with both, want %d", both, a+(moreHosts-a)+(moreRules-a))
	}
	if perHost > 6 || perRule > 4 { // entry, peer and drop per stage; peer, ports and conj_id per rule
		t.Errorf("%.1f flows per host, %.1f per rule: want a few of each", perHost, perRule)
	}
}

// TestSecurityGroupOwners: a rule change recomputes its group; a host
// joining or leaving recomputes its groups, old and new; a host moved by
// a port event recomputes its groups too; every group is an owner.
func TestSecurityGroupOwners(t *testing.T) {
	st := mustStore(t, append(append(seedOps(), sgRules("vpc-seed")...), member("vpc-seed", "test1", "web"))...)
	p := Default()
	st.Read(func(s *topology.State) {
		web, _ := s.SecurityGroup("vpc-seed", "web")
		db, _ := s.SecurityGroup("vpc-seed", "db")
		h1, _ := s.Host("vpc-seed", "test1")
		r := s.RulesOf("vpc-seed", "web")[0]
		has := func(os []Owner, want ...Owner) bool {
			for _, w := range want {
				found := false
				for _, o := range os {
					found = found || o == w
				}
				if !found {
					return false
				}
			}
			return true
		}
		gw, gd := Owner{OwnerSecurityGroup, web.ID}, Owner{OwnerSecurityGroup, db.ID}
		if got := p.Affected(s, []topology.Op{{Kind: topology.OpUpdate, Obj: &r, Old: &r}}); !has(got, gw) || has(got, gd) {
			t.Errorf("rule change affects %v", got)
		}
		moved := h1
		moved.SecurityGroups = []string{"db"}
		if got := p.Affected(s, []topology.Op{{Kind: topology.OpUpdate, Obj: &moved, Old: &h1}}); !has(got, gw, gd, Owner{OwnerHost, h1.ID}) {
			t.Errorf("membership change affects %v", got)
		}
		if got := p.Dependents(s, Owner{OwnerHost, h1.ID}); !has(got, gw) || len(got) != 1 {
			t.Errorf("dependents of test1: %v", got)
		}
		if got := AllOwners(s); !has(got, gw, gd) {
			t.Errorf("AllOwners lacks the groups: %v", got)
		}
		if o, ok := OwnerOf(&web); !ok || o != gw {
			t.Errorf("OwnerOf(web) = %v %v", o, ok)
		}
	})
}

// TestUnfilteredHostHasNoFlows: a host in no group gets nothing from
// either stage, and a group without attached members is nowhere.
func TestUnfilteredHostHasNoFlows(t *testing.T) {
	st := mustStore(t, append(seedOps(), sgRules("vpc-seed")...)...)
	p := Default()
	st.Read(func(s *topology.State) {
		for _, o := range AllOwners(s) {
			for _, pf := range p.Flows(seedSnapshot(s), o) {
				if tb := pf.Flow.Table; tb >= tableSGEgress && tb <= tableSGEgressDrop || tb >= tableSGIngress && tb <= tableSGIngressDrop {
					t.Errorf("%s wants %s", o, pf.Flow.String())
				}
			}
		}
	})
}

// BenchmarkGroupFlows is the cost of recomputing one group of 200 rules
// with members on one switch (what a rule change costs the pipeline).
func BenchmarkGroupFlows(b *testing.B) {
	ops := []topology.Op{
		topology.Create(&topology.VPC{Name: "v"}),
		topology.Create(&topology.VSwitch{VPC: "v", Name: "w", CIDR: netip.MustParsePrefix("10.0.0.0/16")}),
		group("v", "g0"), group("v", "g1"),
	}
	for r := 0; r < 200; r++ {
		ops = append(ops, rule(topology.SecurityGroupRule{VPC: "v", Group: "g0", Direction: []string{"ingress", "egress"}[r%2], Priority: 1 + r%100, Protocol: "tcp",
			PortRange: fmt.Sprintf("%d/%d", 1000+r, 1000+r), CIDR: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(r), 0, 0}), 16)}))
	}
	for h := 0; h < 100; h++ {
		ops = append(ops, topology.Create(&topology.Host{VPC: "v", Name: fmt.Sprintf("h%d", h), VSwitch: "w",
			IP: netip.AddrFrom4([4]byte{10, 0, 1, byte(1 + h)}), MAC: mac(fmt.Sprintf("02:00:00:00:01:%02x", h)),
			DPID: 1, OFPort: uint32(h + 1), SecurityGroups: []string{"g0"}}))
	}
	st := mustStore(b, ops...)
	p := Default()
	st.Read(func(s *topology.State) {
		g, _ := s.SecurityGroup("v", "g0")
		snap := &Snapshot{Topo: s, Ports: portTable{}, Chassis: map[string]ChassisPlace{}, UnderlayMTU: 1500}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			p.Flows(snap, Owner{OwnerSecurityGroup, g.ID})
		}
	})
}
