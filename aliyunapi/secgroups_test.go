package aliyunapi

import (
	"context"
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
