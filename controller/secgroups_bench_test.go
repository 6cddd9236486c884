package controller

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"github.com/vpcflow/vpcflow/controller/engine"
	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/topology"
)

// BenchmarkRuleChange is what a security group rule change costs the
// engine (pure: no store, no switch) with bench/vpcbench's shape: 1,000
// hosts in 10 groups of 200 rules, one rule deleted and another added,
// each recomputing its group.
func BenchmarkRuleChange(b *testing.B) {
	ctx := context.Background()
	st, err := topology.NewStore(ctx, topology.NewMemory(), nil)
	if err != nil {
		b.Fatal(err)
	}
	vpc, vsw, hosts, _ := benchTopology(1000)
	ops := []topology.Op{topology.Create(&vpc), topology.Create(&vsw)}
	for g := 0; g < 10; g++ {
		ops = append(ops, topology.Create(&topology.SecurityGroup{VPC: vpc.Name, Name: fmt.Sprintf("g%d", g)}))
	}
	for g := 0; g < 10; g++ {
		for r := 0; r < 199; r++ { // room for the one the benchmark adds
			ops = append(ops, topology.Create(&topology.SecurityGroupRule{VPC: vpc.Name, Group: fmt.Sprintf("g%d", g),
				Direction: []string{"ingress", "egress"}[r%2], Priority: 1 + r%100, Protocol: "tcp",
				PortRange: fmt.Sprintf("%d/%d", 1000+r, 1000+r), CIDR: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(r), 0, 0}), 16)}))
		}
	}
	for i := range hosts {
		h := hosts[i]
		h.ID = 0
		h.SecurityGroups = []string{fmt.Sprintf("g%d", i%10)}
		ops = append(ops, topology.Create(&h))
	}
	if _, err := st.Apply(ctx, ops); err != nil {
		b.Fatal(err)
	}
	e := engine.New(pipeline.Default())
	st.Read(func(s *topology.State) { e.Update(benchSnapshot(s), pipeline.AllOwners(s)) })
	var g topology.SecurityGroup
	st.Read(func(s *topology.State) { g, _ = s.SecurityGroup(vpc.Name, "g3") })
	owner := []pipeline.Owner{{Kind: pipeline.OwnerSecurityGroup, ID: g.ID}}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := &topology.SecurityGroupRule{VPC: vpc.Name, Group: "g3", Direction: "ingress", Priority: 1 + i%100, Protocol: "udp",
			PortRange: fmt.Sprintf("%d/%d", 20000+i%30000, 20000+i%30000), CIDR: netip.MustParsePrefix("192.168.0.0/16")}
		out, err := st.Apply(ctx, []topology.Op{topology.Create(r)})
		if err != nil {
			b.Fatal(err)
		}
		st.Read(func(s *topology.State) { e.Update(benchSnapshot(s), owner) })
		if _, err := st.Apply(ctx, []topology.Op{topology.Delete(out[0].Obj, false)}); err != nil {
			b.Fatal(err)
		}
		st.Read(func(s *topology.State) { e.Update(benchSnapshot(s), owner) })
	}
}
