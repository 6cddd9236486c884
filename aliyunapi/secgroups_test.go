package aliyunapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/vpcflow/vpcflow/topology"
)

// TestInstanceSecurityGroupIds: DescribeInstances lists the Aliyun IDs of
// the security groups an instance (host) is in.
func TestInstanceSecurityGroupIds(t *testing.T) {
	r := newRig(t)
	vpcID := r.v1(VersionVPC, "CreateVpc", map[string]string{"RegionId": "cn-hangzhou", "VpcName": "tenant-a", "CidrBlock": "10.0.0.0/8"}).ok(t).str("VpcId")
	r.v1(VersionVPC, "CreateVSwitch", map[string]string{"RegionId": "cn-hangzhou", "VpcId": vpcID, "ZoneId": "cn-hangzhou-a",
		"CidrBlock": "10.10.10.0/24", "VSwitchName": "vsw-a"}).ok(t)
	r.host("tenant-a", "vsw-a", "test1", "10.10.10.11", "52:58:00:98:c0:81", 1)
	ctx := context.Background()
	out, err := r.ctrl.Apply(ctx, []topology.Op{topology.Create(&topology.SecurityGroup{VPC: "tenant-a", Name: "web"}),
		topology.Create(&topology.SecurityGroup{VPC: "tenant-a", Name: "db"})})
	if err != nil {
		t.Fatal(err)
	}
	web, db := out[0].SecurityGroup(), out[1].SecurityGroup()
	inst := r.v1(VersionECS, "DescribeInstances", map[string]string{"VpcId": vpcID}).ok(t)
	if got := inst.list("Instances.Instance.0.SecurityGroupIds.SecurityGroupId"); len(got) != 0 {
		t.Fatalf("an instance in no group lists %v", got)
	}
	if _, err := r.ctrl.Apply(ctx, []topology.Op{topology.Update(&topology.Host{VPC: "tenant-a", Name: "test1", SecurityGroups: []string{"db", "web"}})}); err != nil {
		t.Fatal(err)
	}
	inst = r.v1(VersionECS, "DescribeInstances", map[string]string{"VpcId": vpcID}).ok(t)
	if inst.str("Instances.Instance.0.SecurityGroupIds.SecurityGroupId.0") != db.AliyunID() ||
		inst.str("Instances.Instance.0.SecurityGroupIds.SecurityGroupId.1") != web.AliyunID() || web.AliyunID() != "sg-vf00000000000000001" {
		t.Fatalf("DescribeInstances: %s (web %s, db %s)", inst.raw, web.AliyunID(), db.AliyunID())
	}
}

// sgRig is a rig with a VPC, a vSwitch, two instances and a second VPC.
type sgRig struct {
	*rig
	vpcID, otherVPC string
	i1, i2          string
}

func newSGRig(t *testing.T) sgRig {
	r := newRig(t)
	s := sgRig{rig: r}
	s.vpcID = r.v1(VersionVPC, "CreateVpc", map[string]string{"VpcName": "tenant-a", "CidrBlock": "10.0.0.0/8"}).ok(t).str("VpcId")
	s.otherVPC = r.v1(VersionVPC, "CreateVpc", map[string]string{"VpcName": "tenant-b", "CidrBlock": "10.0.0.0/8"}).ok(t).str("VpcId")
	r.v1(VersionVPC, "CreateVSwitch", map[string]string{"VpcId": s.vpcID, "ZoneId": "cn-hangzhou-a", "CidrBlock": "10.10.10.0/24", "VSwitchName": "vsw-a"}).ok(t)
	s.i1 = r.host("tenant-a", "vsw-a", "test1", "10.10.10.11", "52:58:00:98:c0:81", 1).AliyunID()
	s.i2 = r.host("tenant-a", "vsw-a", "test2", "10.10.10.12", "52:58:00:98:c0:92", 2).AliyunID()
	return s
}

func (s sgRig) ecs(action string, p map[string]string) answer {
	s.t.Helper()
	return s.v1(VersionECS, action, p)
}

// rules is the state's rules of a group, as JSON, to compare before and
// after a refused request.
func (s sgRig) rules(group string) string {
	var out []topology.SecurityGroupRule
	s.ctrl.Read(func(st *topology.State) { out = st.RulesOf("tenant-a", group) })
	b, _ := json.Marshal(out)
	return string(b)
}

func (s sgRig) groupsOf(host string) []string {
	var h topology.Host
	s.ctrl.Read(func(st *topology.State) { h, _ = st.Host("tenant-a", host) })
	return h.SecurityGroups
}

// TestSecurityGroupLifecycle: every security group action over a real
// controller and store, the objects checked in the store, every error
// code, and a refused request changing nothing.
func TestSecurityGroupLifecycle(t *testing.T) {
	s := newSGRig(t)
	t.Run("create", func(t *testing.T) {
		s.v1(VersionVPC, "CreateSecurityGroup", map[string]string{"VpcId": s.vpcID}).refused(t, 404, "InvalidApi.NotFound")
		s.ecs("CreateSecurityGroup", map[string]string{"SecurityGroupName": "web"}).refused(t, 403, "InvalidVpcId.NotFound")
		s.ecs("CreateSecurityGroup", map[string]string{"VpcId": "vpc-nope"}).refused(t, 404, "InvalidVpcId.NotFound")
		s.ecs("CreateSecurityGroup", map[string]string{"VpcId": s.vpcID, "SecurityGroupName": "bad name"}).refused(t, 400, "InvalidSecurityGroupName.Malformed")
		s.ecs("CreateSecurityGroup", map[string]string{"VpcId": s.vpcID, "SecurityGroupType": "enterprise"}).refused(t, 400, "InvalidParameter")
		web := s.ecs("CreateSecurityGroup", map[string]string{"VpcId": s.vpcID, "SecurityGroupName": "web", "Description": "front ends", "ClientToken": "tok-1"}).ok(t).str("SecurityGroupId")
		if again := s.ecs("CreateSecurityGroup", map[string]string{"VpcId": s.vpcID, "SecurityGroupName": "web", "Description": "front ends", "ClientToken": "tok-1"}).ok(t).str("SecurityGroupId"); again != web {
			t.Fatalf("ClientToken: %s then %s", web, again)
		}
		s.ecs("CreateSecurityGroup", map[string]string{"VpcId": s.vpcID, "SecurityGroupName": "web"}).refused(t, 400, "InvalidSecurityGroupName.Duplicate")
		var g topology.SecurityGroup
		s.ctrl.Read(func(st *topology.State) { g, _ = st.SecurityGroup("tenant-a", "web") })
		if g.AliyunID() != web || g.Description != "front ends" {
			t.Fatalf("store has %+v, the API answered %s", g, web)
		}
	})
	var web, db, far string
	s.ctrl.Read(func(st *topology.State) { g, _ := st.SecurityGroup("tenant-a", "web"); web = g.AliyunID() })
	db = s.ecs("CreateSecurityGroup", map[string]string{"VpcId": s.vpcID, "SecurityGroupName": "db"}).ok(t).str("SecurityGroupId")
	far = s.ecs("CreateSecurityGroup", map[string]string{"VpcId": s.otherVPC, "SecurityGroupName": "far"}).ok(t).str("SecurityGroupId")

	t.Run("authorize", func(t *testing.T) {
		base := func(extra map[string]string) map[string]string {
			p := map[string]string{"SecurityGroupId": web, "IpProtocol": "tcp", "PortRange": "80/80", "SourceCidrIp": "10.0.0.0/8"}
			for k, v := range extra {
				if v == "" {
					delete(p, k)
				} else {
					p[k] = v
				}
			}
			return p
		}
		before := s.rules("web")
		for _, c := range []struct {
			p            map[string]string
			status       int
			code, action string
		}{
			{base(map[string]string{"SecurityGroupId": "sg-vf00000000000000099"}), 404, "InvalidSecurityGroupId.NotFound", ""},
			{base(map[string]string{"SecurityGroupId": ""}), 400, "MissingParameter", ""},
			{base(map[string]string{"IpProtocol": "tcpx"}), 400, "InvalidIpProtocol.ValueNotSupported", ""},
			{base(map[string]string{"IpProtocol": "gre", "PortRange": "-1/-1"}), 400, "InvalidIpProtocol.ValueNotSupported", ""},
			{base(map[string]string{"IpProtocol": ""}), 400, "MissingParameter", ""},
			{base(map[string]string{"PortRange": ""}), 400, "InvalidPortRange.Malformed", ""},
			{base(map[string]string{"PortRange": "80-90"}), 400, "InvalidPortRange.Malformed", ""},
			{base(map[string]string{"PortRange": "90/80"}), 400, "InvalidPortRange.Malformed", ""},
			{base(map[string]string{"PortRange": "0/80"}), 400, "InvalidPortRange.Malformed", ""},
			{base(map[string]string{"PortRange": "1/65536"}), 400, "InvalidPortRange.Malformed", ""},
			{base(map[string]string{"PortRange": "-1/-1"}), 400, "OperationDenied", ""},
			{base(map[string]string{"IpProtocol": "icmp", "PortRange": "22/22"}), 400, "OperationDenied", ""},
			{base(map[string]string{"Policy": "allow"}), 400, "InvalidPolicy.Malformed", ""},
			{base(map[string]string{"Priority": "0"}), 400, "InvalidPriority.Malformed", ""},
			{base(map[string]string{"Priority": "101"}), 400, "InvalidPriority.Malformed", ""},
			{base(map[string]string{"Priority": "one"}), 400, "InvalidPriority.Malformed", ""},
			{base(map[string]string{"NicType": "wifi"}), 400, "InvalidNicType.ValueNotSupported", ""},
			{base(map[string]string{"SourceCidrIp": ""}), 400, "MissingParameter.Source", ""},
			{base(map[string]string{"SourceCidrIp": "10.0.0/8"}), 400, "InvalidSourceCidrIp.Malformed", ""},
			{base(map[string]string{"SourceCidrIp": "", "SourceGroupId": "sg-vf00000000000000099"}), 404, "InvalidSourceGroupId.NotFound", ""},
			{base(map[string]string{"SourceCidrIp": "", "SourceGroupId": far}), 400, "InvalidSourceGroupId.Mismatch", ""},
			{base(map[string]string{"Ipv6SourceCidrIp": "2001:db8::/64"}), 400, "InvalidParameter", ""},
			{base(map[string]string{"SourcePortRange": "1000/2000"}), 400, "InvalidParameter", ""},
			{base(map[string]string{"DestCidrIp": "10.10.10.11/32"}), 400, "InvalidParameter", ""},
			{base(map[string]string{"Description": strings.Repeat("x", 513)}), 400, "InvalidSecurityGroupDiscription.Malformed", ""},
			{base(map[string]string{"Permissions.1.IpProtocol": "udp"}), 400, "InvalidParam.Permissions", ""},
			{map[string]string{"SecurityGroupId": web, "DestCidrIp": "10.0.0.0/8", "PortRange": "80/80"}, 400, "MissingParameter", "AuthorizeSecurityGroupEgress"},
			{map[string]string{"SecurityGroupId": web, "IpProtocol": "tcp", "PortRange": "80/80"}, 400, "MissingParameter.Dest", "AuthorizeSecurityGroupEgress"},
			{map[string]string{"SecurityGroupId": web, "IpProtocol": "tcp", "PortRange": "80/80", "DestGroupId": far}, 400, "InvalidDestGroupId.Mismatch", "AuthorizeSecurityGroupEgress"},
			// All or none: the second permission is bad, the first is not added.
			{map[string]string{"SecurityGroupId": web, "Permissions.1.IpProtocol": "udp", "Permissions.1.PortRange": "53/53", "Permissions.1.SourceCidrIp": "10.0.0.0/8",
				"Permissions.2.IpProtocol": "udp", "Permissions.2.PortRange": "53/x", "Permissions.2.SourceCidrIp": "10.0.0.0/8"}, 400, "InvalidPortRange.Malformed", ""},
			{map[string]string{"SecurityGroupId": web, "Permissions.1.IpProtocol": "udp", "Permissions.1.PortRange": "53/53", "Permissions.1.SourceCidrIp": "10.0.0.0/8",
				"Permissions.2.IpProtocol": "UDP", "Permissions.2.PortRange": "53/53", "Permissions.2.SourceCidrIp": "10.0.0.0/8"}, 400, "InvalidParam.DuplicatePermissions", ""},
			{map[string]string{"SecurityGroupId": web, "Permissions.101.IpProtocol": "udp"}, 400, "InvalidParameter", ""},
		} {
			action := cmpOr(c.action, "AuthorizeSecurityGroup")
			s.ecs(action, c.p).refused(t, c.status, c.code)
			if after := s.rules("web"); after != before {
				t.Fatalf("%s %v refused with %s changed the rules:\n%s\n→ %s", action, c.p, c.code, before, after)
			}
		}
		// Defaults: Policy accept, Priority 1; an address is a /32; the
		// same rule again succeeds and adds nothing.
		s.ecs("AuthorizeSecurityGroup", base(map[string]string{"IpProtocol": "TCP", "SourceCidrIp": "10.10.10.11", "NicType": "intranet"})).ok(t)
		s.ecs("AuthorizeSecurityGroup", base(map[string]string{"IpProtocol": "tcp", "SourceCidrIp": "10.10.10.11/32", "Description": "from test1"})).ok(t)
		s.ecs("AuthorizeSecurityGroup", map[string]string{"SecurityGroupId": web,
			"Permissions.1.IpProtocol": "icmp", "Permissions.1.PortRange": "-1/-1", "Permissions.1.SourceGroupId": db,
			"Permissions.2.IpProtocol": "all", "Permissions.2.PortRange": "-1/-1", "Permissions.2.SourceCidrIp": "192.168.0.0/16", "Permissions.2.Policy": "Drop", "Permissions.2.Priority": "7"}).ok(t)
		s.ecs("AuthorizeSecurityGroupEgress", map[string]string{"SecurityGroupId": web, "IpProtocol": "udp", "PortRange": "53/53", "DestGroupId": db, "Policy": "drop"}).ok(t)
		var rules []topology.SecurityGroupRule
		s.ctrl.Read(func(st *topology.State) { rules = st.RulesOf("tenant-a", "web") })
		if len(rules) != 4 {
			t.Fatalf("want 4 rules, got %+v", rules)
		}
		want := []topology.SecurityGroupRule{
			{Direction: "ingress", Policy: "accept", Priority: 1, Protocol: "tcp", PortRange: "80/80", CIDR: netip.MustParsePrefix("10.10.10.11/32"), Description: "from test1"},
			{Direction: "ingress", Policy: "accept", Priority: 1, Protocol: "icmp", PortRange: "-1/-1", SecurityGroup: "db"},
			{Direction: "ingress", Policy: "drop", Priority: 7, Protocol: "all", PortRange: "-1/-1", CIDR: netip.MustParsePrefix("192.168.0.0/16")},
			{Direction: "egress", Policy: "drop", Priority: 1, Protocol: "udp", PortRange: "53/53", SecurityGroup: "db"},
		}
		for i, w := range want {
			g := rules[i]
			w.ID, w.VPC, w.Group = g.ID, "tenant-a", "web"
			if g != w {
				t.Errorf("rule %d: %+v, want %+v", i, g, w)
			}
		}
	})

	t.Run("describe", func(t *testing.T) {
		a := s.ecs("DescribeSecurityGroupAttribute", map[string]string{"SecurityGroupId": web}).ok(t)
		if a.str("SecurityGroupName") != "web" || a.str("VpcId") != s.vpcID || a.str("Description") != "front ends" || a.str("InnerAccessPolicy") != "Accept" ||
			len(a.list("Permissions.Permission")) != 4 || a.str("NextToken") != "" {
			t.Fatalf("DescribeSecurityGroupAttribute: %s", a.raw)
		}
		p0, p1, p3 := "Permissions.Permission.0.", "Permissions.Permission.1.", "Permissions.Permission.3."
		if a.str(p0+"Direction") != "ingress" || a.str(p0+"IpProtocol") != "TCP" || a.str(p0+"PortRange") != "80/80" || a.str(p0+"SourceCidrIp") != "10.10.10.11/32" ||
			a.str(p0+"Policy") != "Accept" || a.str(p0+"Priority") != "1" || a.str(p0+"NicType") != "intranet" || a.str(p0+"Description") != "from test1" ||
			!strings.HasPrefix(a.str(p0+"SecurityGroupRuleId"), "sgr-vf") || a.str(p0+"CreateTime") == "" ||
			a.str(p1+"SourceGroupId") != db || a.str(p1+"SourceGroupName") != "db" ||
			a.str(p3+"Direction") != "egress" || a.str(p3+"DestGroupId") != db || a.str(p3+"Policy") != "Drop" {
			t.Fatalf("permissions: %s", a.raw)
		}
		if e := s.ecs("DescribeSecurityGroupAttribute", map[string]string{"SecurityGroupId": web, "Direction": "egress"}).ok(t); len(e.list("Permissions.Permission")) != 1 {
			t.Fatalf("Direction egress: %s", e.raw)
		}
		s.ecs("DescribeSecurityGroupAttribute", map[string]string{"SecurityGroupId": "sg-nope"}).refused(t, 404, "InvalidSecurityGroupId.NotFound")
		s.ecs("DescribeSecurityGroupAttribute", map[string]string{"SecurityGroupId": web, "Direction": "up"}).refused(t, 400, "InvalidParameter")
		// NextToken paging that ends.
		var got []any
		token := ""
		for n := 0; ; n++ {
			if n > 5 {
				t.Fatal("paging does not end")
			}
			p := map[string]string{"SecurityGroupId": web, "MaxResults": "10"}
			if token != "" {
				p["NextToken"] = token
			}
			pg := s.ecs("DescribeSecurityGroupAttribute", p).ok(t)
			got = append(got, pg.list("Permissions.Permission")...)
			if token = pg.str("NextToken"); token == "" {
				break
			}
		}
		if len(got) != 4 {
			t.Fatalf("paged through %d permissions", len(got))
		}

		d := s.ecs("DescribeSecurityGroups", map[string]string{"VpcId": s.vpcID}).ok(t)
		if d.get("TotalCount") != float64(2) || d.str("SecurityGroups.SecurityGroup.0.SecurityGroupId") != web ||
			d.get("SecurityGroups.SecurityGroup.0.RuleCount") != float64(4) || d.get("SecurityGroups.SecurityGroup.0.GroupToGroupRuleCount") != float64(2) ||
			d.str("SecurityGroups.SecurityGroup.1.SecurityGroupName") != "db" || d.str("SecurityGroups.SecurityGroup.0.SecurityGroupType") != "normal" {
			t.Fatalf("DescribeSecurityGroups: %s", d.raw)
		}
		if all := s.ecs("DescribeSecurityGroups", nil).ok(t); all.get("TotalCount") != float64(3) {
			t.Fatalf("all groups: %s", all.raw)
		}
		if one := s.ecs("DescribeSecurityGroups", map[string]string{"SecurityGroupIds": `["` + db + `"]`}).ok(t); one.get("TotalCount") != float64(1) ||
			one.str("SecurityGroups.SecurityGroup.0.SecurityGroupId") != db {
			t.Fatalf("by IDs: %s", one.raw)
		}
		if pg := s.ecs("DescribeSecurityGroups", map[string]string{"PageSize": "2", "PageNumber": "2"}).ok(t); len(pg.list("SecurityGroups.SecurityGroup")) != 1 {
			t.Fatalf("page 2: %s", pg.raw)
		}
	})

	t.Run("modify", func(t *testing.T) {
		var r0 topology.SecurityGroupRule
		s.ctrl.Read(func(st *topology.State) { r0 = st.RulesOf("tenant-a", "web")[0] })
		rid := ruleAliyunID(r0)
		s.ecs("ModifySecurityGroupRule", map[string]string{"SecurityGroupId": web, "SecurityGroupRuleId": "sgr-vf00000000000000099", "Policy": "drop"}).refused(t, 404, "InvalidSecurityGroupRuleId.NotFound")
		s.ecs("ModifySecurityGroupEgressRule", map[string]string{"SecurityGroupId": web, "SecurityGroupRuleId": rid, "Policy": "drop"}).refused(t, 404, "InvalidSecurityGroupRuleId.NotFound")
		s.ecs("ModifySecurityGroupRule", map[string]string{"SecurityGroupId": web, "SecurityGroupRuleId": rid, "SourceGroupId": db}).refused(t, 400, "InvalidOperation.ModifySgRuleEntityType")
		s.ecs("ModifySecurityGroupRule", map[string]string{"SecurityGroupId": web, "SecurityGroupRuleId": rid, "Priority": "200"}).refused(t, 400, "InvalidPriority.Malformed")
		s.ecs("ModifySecurityGroupRule", map[string]string{"SecurityGroupId": web, "SecurityGroupRuleId": rid, "Policy": "drop", "Priority": "5", "PortRange": "8080/8081"}).ok(t)
		var r topology.SecurityGroupRule
		s.ctrl.Read(func(st *topology.State) { r, _ = st.SecurityGroupRuleByID(r0.ID) })
		if r.Policy != "drop" || r.Priority != 5 || r.PortRange != "8080/8081" || r.CIDR != r0.CIDR || r.Description != "from test1" {
			t.Fatalf("modified rule: %+v", r)
		}
		s.ecs("ModifySecurityGroupRule", map[string]string{"SecurityGroupId": web, "SecurityGroupRuleId": rid, "IpProtocol": "icmp"}).ok(t)
		s.ctrl.Read(func(st *topology.State) { r, _ = st.SecurityGroupRuleByID(r0.ID) })
		if r.Protocol != "icmp" || r.PortRange != "-1/-1" {
			t.Fatalf("protocol changed to icmp: %+v", r)
		}
		s.ecs("ModifySecurityGroupRule", map[string]string{"SecurityGroupId": web, "SecurityGroupRuleId": rid, "IpProtocol": "tcp"}).refused(t, 400, "InvalidPortRange.Malformed")
		s.ecs("ModifySecurityGroupRule", map[string]string{"SecurityGroupId": web, "SecurityGroupRuleId": rid, "IpProtocol": "tcp", "PortRange": "80/80", "Policy": "accept", "Priority": "1"}).ok(t)
	})

	t.Run("revoke", func(t *testing.T) {
		before := s.rules("web")
		// Nothing matches (another port): success, nothing changes.
		s.ecs("RevokeSecurityGroup", map[string]string{"SecurityGroupId": web, "IpProtocol": "tcp", "PortRange": "81/81", "SourceCidrIp": "10.10.10.11/32"}).ok(t)
		s.ecs("RevokeSecurityGroup", map[string]string{"SecurityGroupId": web, "SecurityGroupRuleId.1": "sgr-vf00000000000000099"}).refused(t, 404, "InvalidSecurityGroupRuleId.NotFound")
		s.ecs("RevokeSecurityGroup", map[string]string{"SecurityGroupId": web, "SecurityGroupRuleId.1": "rule-7"}).refused(t, 400, "InvalidParam.SecurityGroupRuleId")
		s.ecs("RevokeSecurityGroup", map[string]string{"SecurityGroupId": web, "IpProtocol": "tcp", "PortRange": "80/80"}).refused(t, 400, "MissingParameter.Source")
		s.ecs("RevokeSecurityGroup", map[string]string{"SecurityGroupId": "sg-vf00000000000000099", "IpProtocol": "tcp", "PortRange": "80/80", "SourceCidrIp": "10.10.10.11"}).refused(t, 404, "InvalidSecurityGroupId.NotFound")
		// A drop rule is revoked only with Policy drop.
		s.ecs("RevokeSecurityGroup", map[string]string{"SecurityGroupId": web, "IpProtocol": "all", "PortRange": "-1/-1", "SourceCidrIp": "192.168.0.0/16"}).ok(t)
		if after := s.rules("web"); after != before {
			t.Fatalf("revokes that match nothing changed the rules:\n%s\n→ %s", before, after)
		}
		s.ecs("RevokeSecurityGroup", map[string]string{"SecurityGroupId": web, "IpProtocol": "ALL", "PortRange": "-1/-1", "SourceCidrIp": "192.168.0.0/16", "Policy": "drop"}).ok(t)
		s.ecs("RevokeSecurityGroup", map[string]string{"SecurityGroupId": web, "IpProtocol": "tcp", "PortRange": "80/80", "SourceCidrIp": "10.10.10.11"}).ok(t)
		var rules []topology.SecurityGroupRule
		s.ctrl.Read(func(st *topology.State) { rules = st.RulesOf("tenant-a", "web") })
		if len(rules) != 2 || rules[0].Protocol != "icmp" || rules[1].Direction != "egress" {
			t.Fatalf("after revokes: %+v", rules)
		}
		s.ecs("RevokeSecurityGroupEgress", map[string]string{"SecurityGroupId": web, "SecurityGroupRuleId.1": ruleAliyunID(rules[1])}).ok(t)
		s.ctrl.Read(func(st *topology.State) { rules = st.RulesOf("tenant-a", "web") })
		if len(rules) != 1 {
			t.Fatalf("after revoking by ID: %+v", rules)
		}
	})

	t.Run("membership", func(t *testing.T) {
		s.ecs("JoinSecurityGroup", map[string]string{"SecurityGroupId": web}).refused(t, 400, "MissingParameter")
		s.ecs("JoinSecurityGroup", map[string]string{"InstanceId": s.i1}).refused(t, 400, "MissingParameter")
		s.ecs("JoinSecurityGroup", map[string]string{"InstanceId": "i-vf00000000000000099", "SecurityGroupId": web}).refused(t, 404, "InvalidInstanceId.NotFound")
		s.ecs("JoinSecurityGroup", map[string]string{"InstanceId": s.i1, "SecurityGroupId": "sg-vf00000000000000099"}).refused(t, 404, "InvalidSecurityGroupId.NotFound")
		s.ecs("JoinSecurityGroup", map[string]string{"InstanceId": s.i1, "SecurityGroupId": far}).refused(t, 400, "InvalidInstanceId.Mismatch")
		if g := s.groupsOf("test1"); len(g) != 0 {
			t.Fatalf("refused joins changed test1's groups: %v", g)
		}
		s.ecs("JoinSecurityGroup", map[string]string{"InstanceId": s.i1, "SecurityGroupId": web}).ok(t)
		s.ecs("JoinSecurityGroup", map[string]string{"NetworkInterfaceId": "eni-" + strings.TrimPrefix(s.i1, "i-"), "SecurityGroupId": db}).ok(t)
		s.ecs("JoinSecurityGroup", map[string]string{"InstanceId": s.i1, "SecurityGroupId": web}).refused(t, 403, "InvalidInstanceId.AlreadyExists")
		if g := s.groupsOf("test1"); !slices.Equal(g, []string{"web", "db"}) {
			t.Fatalf("test1 in %v", g)
		}
		inst := s.ecs("DescribeInstances", map[string]string{"InstanceIds": `["` + s.i1 + `"]`}).ok(t)
		if ids := inst.list("Instances.Instance.0.SecurityGroupIds.SecurityGroupId"); len(ids) != 2 {
			t.Fatalf("DescribeInstances: %s", inst.raw)
		}
		s.ecs("LeaveSecurityGroup", map[string]string{"InstanceId": s.i2, "SecurityGroupId": web}).refused(t, 403, "InstanceNotInSecurityGroup")
		s.ecs("LeaveSecurityGroup", map[string]string{"InstanceId": s.i1, "SecurityGroupId": web}).ok(t)
		s.ecs("LeaveSecurityGroup", map[string]string{"InstanceId": s.i1, "SecurityGroupId": db}).refused(t, 403, "InstanceLastSecurityGroup")
		if g := s.groupsOf("test1"); !slices.Equal(g, []string{"db"}) {
			t.Fatalf("test1 in %v", g)
		}
		// ModifyInstanceAttribute replaces the set.
		s.ecs("ModifyInstanceAttribute", map[string]string{"InstanceId": s.i2, "InstanceName": "renamed"}).refused(t, 400, "InvalidParameter")
		s.ecs("ModifyInstanceAttribute", map[string]string{"InstanceId": s.i2, "SecurityGroupIds.1": web, "SecurityGroupIds.2": far}).refused(t, 400, "InvalidInstanceId.Mismatch")
		s.ecs("ModifyInstanceAttribute", map[string]string{"InstanceId": s.i2, "SecurityGroupIds.1": web, "SecurityGroupIds.2": web}).refused(t, 400, "InvalidParameter")
		many := map[string]string{"InstanceId": s.i2}
		for i := 1; i <= 6; i++ {
			many[fmt.Sprintf("SecurityGroupIds.%d", i)] = web
		}
		s.ecs("ModifyInstanceAttribute", many).refused(t, 400, "InstanceSecurityGroupLimitExceeded")
		if g := s.groupsOf("test2"); len(g) != 0 {
			t.Fatalf("refused changes changed test2's groups: %v", g)
		}
		s.ecs("ModifyInstanceAttribute", map[string]string{"InstanceId": s.i2, "SecurityGroupIds.2": web, "SecurityGroupIds.1": db}).ok(t)
		if g := s.groupsOf("test2"); !slices.Equal(g, []string{"db", "web"}) {
			t.Fatalf("test2 in %v", g)
		}
	})

	t.Run("attribute", func(t *testing.T) {
		s.ecs("ModifySecurityGroupAttribute", map[string]string{"SecurityGroupId": db, "SecurityGroupName": "database"}).refused(t, 400, "InvalidParameter")
		s.ecs("ModifySecurityGroupAttribute", map[string]string{"SecurityGroupId": "sg-nope", "Description": "x"}).refused(t, 404, "InvalidSecurityGroupId.NotFound")
		s.ecs("ModifySecurityGroupAttribute", map[string]string{"SecurityGroupId": db, "Description": "bad\x01"}).refused(t, 400, "InvalidDescription.Malformed")
		s.ecs("ModifySecurityGroupAttribute", map[string]string{"SecurityGroupId": db, "SecurityGroupName": "db", "Description": "databases"}).ok(t)
		var g topology.SecurityGroup
		s.ctrl.Read(func(st *topology.State) { g, _ = st.SecurityGroup("tenant-a", "db") })
		if g.Description != "databases" {
			t.Fatalf("description %q", g.Description)
		}
		s.ecs("ModifySecurityGroupPolicy", map[string]string{"SecurityGroupId": db, "InnerAccessPolicy": "Accept"}).ok(t)
		s.ecs("ModifySecurityGroupPolicy", map[string]string{"SecurityGroupId": db, "InnerAccessPolicy": "Drop"}).refused(t, 400, "InvalidParameter")
		s.ecs("ModifySecurityGroupPolicy", map[string]string{"SecurityGroupId": db}).refused(t, 400, "MissingParameter")
	})

	t.Run("delete", func(t *testing.T) {
		s.ecs("DeleteSecurityGroup", map[string]string{"SecurityGroupId": "sg-vf00000000000000099"}).refused(t, 404, "InvalidSecurityGroupId.NotFound")
		s.ecs("DeleteSecurityGroup", map[string]string{"SecurityGroupId": web}).refused(t, 403, "DependencyViolation") // test2 is in it
		s.ecs("ModifyInstanceAttribute", map[string]string{"InstanceId": s.i2, "SecurityGroupIds.1": db}).ok(t)
		s.ecs("DeleteSecurityGroup", map[string]string{"SecurityGroupId": db}).refused(t, 403, "DependencyViolation") // members, and web's rule names it
		// web has a rule naming db: web goes with its rules.
		s.ecs("DeleteSecurityGroup", map[string]string{"SecurityGroupId": web}).ok(t)
		var n int
		s.ctrl.Read(func(st *topology.State) { n = len(st.SecurityGroups("tenant-a")) })
		if n != 1 {
			t.Fatalf("%d groups left in tenant-a", n)
		}
		s.ecs("DescribeSecurityGroupAttribute", map[string]string{"SecurityGroupId": web}).refused(t, 404, "InvalidSecurityGroupId.NotFound")
	})
}

// TestDeleteSecurityGroupNamedByAnother: a group another group's rule
// names as its peer is not deleted.
func TestDeleteSecurityGroupNamedByAnother(t *testing.T) {
	s := newSGRig(t)
	a := s.ecs("CreateSecurityGroup", map[string]string{"VpcId": s.vpcID, "SecurityGroupName": "a"}).ok(t).str("SecurityGroupId")
	b := s.ecs("CreateSecurityGroup", map[string]string{"VpcId": s.vpcID, "SecurityGroupName": "b"}).ok(t).str("SecurityGroupId")
	s.ecs("AuthorizeSecurityGroup", map[string]string{"SecurityGroupId": a, "IpProtocol": "tcp", "PortRange": "22/22", "SourceGroupId": b}).ok(t)
	// A rule naming its own group goes with the group.
	s.ecs("AuthorizeSecurityGroup", map[string]string{"SecurityGroupId": a, "IpProtocol": "udp", "PortRange": "53/53", "SourceGroupId": a}).ok(t)
	s.ecs("DeleteSecurityGroup", map[string]string{"SecurityGroupId": b}).refused(t, 403, "DependencyViolation")
	s.ecs("DeleteSecurityGroup", map[string]string{"SecurityGroupId": a}).ok(t)
	s.ecs("DeleteSecurityGroup", map[string]string{"SecurityGroupId": b}).ok(t)
	var groups, rules int
	s.ctrl.Read(func(st *topology.State) {
		groups = len(st.SecurityGroups("tenant-a"))
		for _, g := range st.AllSecurityGroups() {
			rules += len(st.RulesOf(g.VPC, g.Name))
		}
	})
	if groups != 0 || rules != 0 {
		t.Fatalf("%d groups and %d rules left", groups, rules)
	}
}

// TestAuthorizeClientToken: the same ClientToken gives the first answer
// again; with other parameters it is refused and changes nothing.
func TestAuthorizeClientToken(t *testing.T) {
	s := newSGRig(t)
	g := s.ecs("CreateSecurityGroup", map[string]string{"VpcId": s.vpcID, "SecurityGroupName": "a"}).ok(t).str("SecurityGroupId")
	p := map[string]string{"SecurityGroupId": g, "IpProtocol": "tcp", "PortRange": "22/22", "SourceCidrIp": "10.0.0.0/8", "ClientToken": "t-1"}
	first := s.ecs("AuthorizeSecurityGroup", p).ok(t).str("RequestId")
	if again := s.ecs("AuthorizeSecurityGroup", p).ok(t).str("RequestId"); again != first {
		t.Fatalf("same token, another answer: %s then %s", first, again)
	}
	p["PortRange"] = "23/23"
	s.ecs("AuthorizeSecurityGroup", p).refused(t, 400, "IdempotentParameterMismatch")
	if n := len(s.rulesOf("a")); n != 1 {
		t.Fatalf("%d rules", n)
	}
}

func (s sgRig) rulesOf(group string) []topology.SecurityGroupRule {
	var out []topology.SecurityGroupRule
	s.ctrl.Read(func(st *topology.State) { out = st.RulesOf("tenant-a", group) })
	return out
}
