package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vpcflow/vpcflow/api"
	"github.com/vpcflow/vpcflow/controller/engine"
	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// The security group workload: H hosts (as the main workload attaches
// them) spread round robin over G groups of R rules each, every host in
// one group. A group's rules mix every kind: tcp and udp port ranges,
// icmp and all, CIDR and peer-group peers, accept and drop, ingress and
// egress, priorities 1..100.

// sgResult is what the security group scenario measured.
type sgResult struct {
	Hosts, Groups, Rules int

	Flows          int // in the switch with the groups, rules and members
	FlowsNoSG      int // the same hosts without security groups (the pipeline's own count)
	PerMember      int // flows per member, from the pipeline
	PerRule        float64
	Product        int           // members × rules (what a cross product would install)
	Program        time.Duration // first REST call of groups, rules and hosts → last returned
	ProgramRules   time.Duration // of which the groups and their rules (no member yet: no flows)
	OfctlBundle    time.Duration // ovs-ofctl --bundle add-flows of the same table, fresh bridge
	SameFlowsDiff  int
	AddLat, DelLat []time.Duration
	SubnetAddLat   []time.Duration // single subnet adds on the same table, the baseline
	// ListLat: GET …/rules of a full group with its hits (read from the
	// switch), one group after another.
	ListLat []time.Duration
	Load    string
}

func sgGroupName(g int) string { return fmt.Sprintf("sg%02d", g) }

// sgRuleRequest is rule r of group g.
func sgRuleRequest(g, r, groups int) api.SecurityGroupRuleRequest {
	req := api.SecurityGroupRuleRequest{Priority: 1 + r%100, Direction: "ingress", Policy: "accept",
		Description: fmt.Sprintf("bench rule %d", r)}
	switch r % 5 {
	case 0:
		req.Protocol, req.PortRange = "tcp", fmt.Sprintf("%d/%d", 1000+r, 1000+r)
		req.CIDR = fmt.Sprintf("10.%d.0.0/16", r%200)
	case 1:
		req.Direction, req.Protocol, req.PortRange = "egress", "udp", fmt.Sprintf("%d/%d", 2000+r*8, 2007+r*8)
		req.CIDR = fmt.Sprintf("172.%d.0.0/16", 16+r%16)
	case 2:
		req.Protocol, req.PortRange = "tcp", fmt.Sprintf("%d/%d", 3000+r, 3000+r)
		req.SecurityGroup = sgGroupName((g + 1) % groups)
	case 3:
		req.Protocol, req.Policy = "icmp", "drop"
		req.CIDR = fmt.Sprintf("192.168.%d.0/24", r)
	case 4:
		req.Direction, req.Protocol, req.Policy = "egress", "all", "drop"
		req.CIDR = fmt.Sprintf("100.64.%d.0/24", r)
	}
	return req
}

// runSecurityGroups programs hosts, groups and rules into a fresh lab and
// measures the table, the time to program it next to ovs-ofctl, and
// single rule adds and deletes next to single route-entry adds.
func runSecurityGroups(ctx context.Context, bin string, hosts, groups, rules, ops int, diff, verbose bool, serveArgs []string, keepLogs string) (res sgResult, err error) {
	res = sgResult{Hosts: hosts, Groups: groups, Rules: rules, SameFlowsDiff: -1, Load: loadAvg()}
	step := func(f string, a ...any) { fmt.Fprintf(os.Stderr, "   "+f+"\n", a...) }
	e, err := newEnv(ctx, "vpcbench-sg", bin, serveArgs, verbose, bridgesFor(hosts))
	if err != nil {
		return res, err
	}
	defer func() {
		if err != nil {
			fmt.Fprintf(os.Stderr, "controller log %s (tail):\n%s\n", e.logPath, tailFile(e.logPath, 15))
		}
		if keepLogs != "" {
			if kerr := e.copyLogs(keepLogs); kerr != nil {
				fmt.Fprintf(os.Stderr, "   keeping logs: %v\n", kerr)
			}
		}
		if cerr := e.close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	time.Sleep(500 * time.Millisecond)

	if _, err := e.api.CreateVPC(ctx, api.VPCRequest{Name: benchVPC}); err != nil {
		return res, err
	}
	if _, err := e.api.CreateVSwitch(ctx, benchVPC, api.VSwitchRequest{Name: vswitchName(0), CIDR: vswitchCIDR(0).String()}); err != nil {
		return res, err
	}
	hostReqs := make([]api.HostRequest, hosts)
	for i := range hostReqs {
		hostReqs[i] = hostRequest(i, e.dpids)
		hostReqs[i].SecurityGroups = []string{sgGroupName(i % groups)}
	}

	// ---- program: groups, their rules (one request per group), then the
	// hosts with their groups (one request) ----
	t0 := time.Now()
	for g := range groups {
		if _, err := e.api.CreateSecurityGroup(ctx, benchVPC, api.SecurityGroupRequest{Name: sgGroupName(g)}); err != nil {
			return res, err
		}
	}
	for g := range groups {
		reqs := make([]api.SecurityGroupRuleRequest, rules)
		for r := range reqs {
			reqs[r] = sgRuleRequest(g, r, groups)
		}
		if _, err := e.api.CreateSecurityGroupRules(ctx, benchVPC, sgGroupName(g), reqs); err != nil {
			return res, fmt.Errorf("rules of %s: %w", sgGroupName(g), err)
		}
	}
	res.ProgramRules = time.Since(t0)
	for i := 0; i < hosts; i += 5000 {
		if _, err := e.api.CreateHosts(ctx, benchVPC, hostReqs[i:min(i+5000, hosts)]); err != nil {
			return res, fmt.Errorf("hosts [%d:]: %w", i, err)
		}
	}
	res.Program = time.Since(t0)

	objs, err := restObjects(ctx, e.api)
	if err != nil {
		return res, err
	}
	want, err := referenceObjects(uint64(e.dpids[0]), objs)
	if err != nil {
		return res, err
	}
	if res.Flows, err = flowCount(ctx, e.target(0)); err != nil {
		return res, err
	}
	if res.Flows != len(want) {
		return res, fmt.Errorf("the switch has %d flows, the pipeline wants %d", res.Flows, len(want))
	}
	res.FlowsNoSG = expectedFlows(hosts) - hosts*subnetFlowCount() // hosts only: no route entries here
	res.PerMember, res.PerRule = sgShape(groups)
	res.Product = hosts * rules // each member meets its group's rules
	step("security groups: %d hosts, %d groups × %d rules programmed in %v: %d flows (%d without groups)",
		hosts, groups, rules, res.Program.Round(time.Millisecond), res.Flows, res.FlowsNoSG)

	// ---- the same table with ovs-ofctl, into a fresh OVS ----
	file := filepath.Join(e.lab.Dir(), "sg-flows.txt")
	if err := writeFlows(file, want); err != nil {
		return res, err
	}
	refNode, err := e.lab.AddNode("ref")
	if err != nil {
		return res, err
	}
	refOVS, err := refNode.StartOVS(ctx)
	if err != nil {
		return res, err
	}
	if err := refOVS.AddBridge(ctx, refBridge); err != nil {
		return res, err
	}
	refTarget := refOVS.MgmtTarget(refBridge)
	if res.OfctlBundle, err = ofctl(ctx, nil, refTarget, []string{"--bundle"}, "add-flows", file); err != nil {
		return res, err
	}
	if diff {
		var lc lineCounter
		_, derr := ofctl(ctx, &lc, e.target(0), nil, "diff-flows", refTarget)
		res.SameFlowsDiff = lc.n
		if derr != nil && lc.n == 0 {
			return res, derr
		}
	}
	if err := refOVS.StopVswitchd(); err != nil {
		return res, err
	}
	if err := refOVS.StopOVSDB(); err != nil {
		return res, err
	}
	step("ovs-ofctl --bundle add-flows of the same table: %v; diff-flows: %d lines", res.OfctlBundle.Round(time.Millisecond), res.SameFlowsDiff)
	time.Sleep(time.Second)

	// ---- single rule changes in full groups: delete one rule, add
	// another, so every group keeps its 200; next to single route-entry
	// adds ----
	byGroup := map[string][]topology.SecurityGroupRule{}
	for _, o := range objs {
		if r, ok := o.(*topology.SecurityGroupRule); ok {
			byGroup[r.Group] = append(byGroup[r.Group], *r)
		}
	}
	for j := range ops {
		g := sgGroupName(j % groups)
		victim := byGroup[g][(j/groups)%len(byGroup[g])]
		t := time.Now()
		if err := e.api.DeleteSecurityGroupRule(ctx, benchVPC, g, victim.ID); err != nil {
			return res, fmt.Errorf("rule delete %d: %w", j, err)
		}
		res.DelLat = append(res.DelLat, time.Since(t))
		req := api.SecurityGroupRuleRequest{Direction: "ingress", Priority: 1 + j%100, Protocol: "tcp",
			PortRange: fmt.Sprintf("%d/%d", 40000+j, 40000+j), CIDR: fmt.Sprintf("10.%d.%d.0/24", 200+j/256, j%256)}
		t = time.Now()
		r, err := e.api.CreateSecurityGroupRule(ctx, benchVPC, g, req)
		if err != nil {
			return res, fmt.Errorf("rule add %d: %w", j, err)
		}
		res.AddLat = append(res.AddLat, time.Since(t))
		byGroup[g][(j/groups)%len(byGroup[g])] = r
	}
	objs, err = restObjects(ctx, e.api)
	if err != nil {
		return res, err
	}
	if want, err = referenceObjects(uint64(e.dpids[0]), objs); err != nil {
		return res, err
	}
	if got, err := flowCount(ctx, e.target(0)); err != nil || got != len(want) {
		return res, fmt.Errorf("after %d rule changes the switch has %d flows, want %d (%v)", ops, got, len(want), err)
	}
	for j := range ops {
		t := time.Now()
		if _, err := e.api.CreateSubnet(ctx, benchVPC, api.SubnetRequest{CIDR: subnetCIDR(convergeOctet, j), Host: hostName((j * 7919) % hosts)}); err != nil {
			return res, fmt.Errorf("subnet add %d: %w", j, err)
		}
		res.SubnetAddLat = append(res.SubnetAddLat, time.Since(t))
	}
	step("rule add p50 %v p99 %v; rule delete p50 %v p99 %v; subnet add (baseline) p50 %v p99 %v",
		pct(res.AddLat, 50), pct(res.AddLat, 99), pct(res.DelLat, 50), pct(res.DelLat, 99), pct(res.SubnetAddLat, 50), pct(res.SubnetAddLat, 99))
	for j := range 2 * groups {
		t := time.Now()
		rs, err := e.api.ListSecurityGroupRules(ctx, benchVPC, sgGroupName(j%groups))
		if err != nil {
			return res, fmt.Errorf("rule list %d: %w", j, err)
		}
		res.ListLat = append(res.ListLat, time.Since(t))
		if len(rs) != rules || rs[0].Hits == nil {
			return res, fmt.Errorf("rule list %d: %d rules, want %d, with hits", j, len(rs), rules)
		}
	}
	step("rule list with hits p50 %v max %v", pct(res.ListLat, 50), pct(res.ListLat, 100))
	return res, nil
}

// restObjects reads every object of the bench's VPC back from the API, in
// an order Restore takes.
func restObjects(ctx context.Context, c *api.Client) ([]topology.Object, error) {
	vpc, err := c.GetVPC(ctx, benchVPC)
	if err != nil {
		return nil, err
	}
	vsws, err := c.ListVSwitches(ctx, benchVPC)
	if err != nil {
		return nil, err
	}
	groups, err := c.ListSecurityGroups(ctx, benchVPC)
	if err != nil {
		return nil, err
	}
	hosts, err := c.ListHosts(ctx, benchVPC)
	if err != nil {
		return nil, err
	}
	subnets, err := c.ListSubnets(ctx, benchVPC)
	if err != nil {
		return nil, err
	}
	objs := []topology.Object{&vpc}
	for i := range vsws {
		objs = append(objs, &vsws[i])
	}
	for i := range groups {
		objs = append(objs, &groups[i])
	}
	for _, g := range groups {
		rs, err := c.ListSecurityGroupRules(ctx, benchVPC, g.Name)
		if err != nil {
			return nil, err
		}
		for i := range rs {
			objs = append(objs, &rs[i].SecurityGroupRule)
		}
	}
	for i := range hosts {
		objs = append(objs, &hosts[i])
	}
	for i := range subnets {
		objs = append(objs, &subnets[i])
	}
	return objs, nil
}

// referenceObjects is the table vpcflow's pipeline and engine want on
// dpid for the given objects.
func referenceObjects(dpid uint64, objs []topology.Object) ([]openflow.Flow, error) {
	ctx := context.Background()
	st, err := topology.NewStore(ctx, topology.NewMemory(), nil)
	if err != nil {
		return nil, err
	}
	if err := st.Restore(ctx, objs); err != nil {
		return nil, fmt.Errorf("reference topology: %w", err)
	}
	e := engine.New(pipeline.Default())
	st.Read(func(s *topology.State) {
		e.Update(&pipeline.Snapshot{Topo: s, Ports: byPort{}, Chassis: map[string]pipeline.ChassisPlace{}, UnderlayMTU: 1500},
			pipeline.AllOwners(s))
	})
	return engine.Sorted(e.Desired(dpid)), nil
}

func writeFlows(path string, flows []openflow.Flow) error {
	var b strings.Builder
	for i := range flows {
		b.WriteString(flows[i].String())
		b.WriteByte('\n')
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// sgShape is the flows one more member and one more rule bring, from the
// pipeline itself: members and rules add up, they do not multiply.
func sgShape(groups int) (perMember int, perRule float64) {
	size := func(hosts, rules int) int {
		vpc, vsw := benchVPCObj(), benchVSwitchObj(0)
		objs := []topology.Object{&vpc, &vsw}
		id := uint32(0)
		for g := range groups {
			objs = append(objs, &topology.SecurityGroup{ID: uint32(g + 1), VPC: benchVPC, Name: sgGroupName(g), Index: uint8(g)})
		}
		for g := range groups {
			for r := range rules {
				req := sgRuleRequest(g, r, groups)
				id++
				rule := &topology.SecurityGroupRule{ID: id, VPC: benchVPC, Group: sgGroupName(g), Direction: req.Direction, Policy: req.Policy,
					Priority: req.Priority, Protocol: req.Protocol, PortRange: req.PortRange, SecurityGroup: req.SecurityGroup}
				if req.PortRange == "" {
					rule.PortRange = topology.AnyPort
				}
				if req.CIDR != "" {
					rule.CIDR = netip.MustParsePrefix(req.CIDR)
				}
				objs = append(objs, rule)
			}
		}
		for i := range hosts {
			h := hostObj(i, []topology.DPID{1})
			h.ID, h.SecurityGroups, h.CTZone = uint32(i+1), []string{sgGroupName(i % groups)}, uint16(i+1)
			objs = append(objs, &h)
		}
		t, err := referenceObjects(1, objs)
		if err != nil {
			panic(err)
		}
		return len(t)
	}
	a := size(groups*2, 50)
	perMember = (size(groups*4, 50) - a) / (groups * 2)
	perRule = float64(size(groups*2, 100)-a) / float64(groups*50)
	return perMember, perRule
}

func printSecurityGroups(w io.Writer, r sgResult, markdown bool) {
	rows := [][2]string{
		{"flows in the switch", num(r.Flows)},
		{"of which the hosts without security groups", num(r.FlowsNoSG)},
		{"flows per member (every stage) / per rule, from the pipeline", fmt.Sprintf("%d / %.1f", r.PerMember, r.PerRule)},
		{"members × rules of their group (a cross product)", num(r.Product)},
		{"program: groups, rules (1 request/group), hosts with groups (1 request)", dur(r.Program)},
		{"of which groups and rules, before any member (no flows yet)", dur(r.ProgramRules)},
		{"ovs-ofctl --bundle add-flows, same table (baseline)", dur(r.OfctlBundle)},
		{"ratio vpcflow / ovs-ofctl", fmt.Sprintf("%.2f×", r.Program.Seconds()/r.OfctlBundle.Seconds())},
		{"diff-flows vpcflow vs ovs-ofctl bridge (lines)", diffCell(r.SameFlowsDiff)},
		{fmt.Sprintf("single rule add to a full group p50 / p99 / max (%d ops)", len(r.AddLat)), lat(r.AddLat)},
		{fmt.Sprintf("single rule delete p50 / p99 / max (%d ops)", len(r.DelLat)), lat(r.DelLat)},
		{"single subnet add p50 / p99 / max, same table (baseline)", lat(r.SubnetAddLat)},
		{fmt.Sprintf("GET …/rules of a group, with hits, p50 / p99 / max (%d)", len(r.ListLat)), lat(r.ListLat)},
		{"machine load average (1, 5 min) at start", r.Load},
	}
	title := fmt.Sprintf("security groups: %s hosts in %d groups of %d rules (one group each)", num(r.Hosts), r.Groups, r.Rules)
	if markdown {
		fmt.Fprintf(w, "\n| %s | |\n|---|---:|\n", title)
		for _, x := range rows {
			fmt.Fprintf(w, "| %s | %s |\n", x[0], x[1])
		}
		return
	}
	width := len([]rune(title))
	for _, x := range rows {
		width = max(width, len([]rune(x[0])))
	}
	fmt.Fprintf(w, "\n%s\n", title)
	for _, x := range rows {
		fmt.Fprintf(w, "  %-*s  %s\n", width, x[0], x[1])
	}
}

func diffCell(n int) string {
	if n < 0 {
		return "-"
	}
	return num(n)
}
