package aliyun

// The official ECS SDK (ecs-20140526/v7), unmodified, drives vpcflow's
// security groups, and real traffic between the seed scenario's two VMs
// on real Open vSwitch shows what each call did.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ecs "github.com/alibabacloud-go/ecs-20140526/v7/client"
	"github.com/alibabacloud-go/tea/tea"
	vpc "github.com/alibabacloud-go/vpc-20160428/v6/client"

	"github.com/vpcflow/vpcflow/e2e/netlab"
)

// TestSDKSecurityGroupsSeed: vpcflow (`vpcflow serve --aliyun-listen`)
// on real OVS with the seed's two VMs; the official SDKs create the VPC,
// the vSwitch, two security groups and their rules, and put the VMs in
// them; pings and TCP connections between the VMs' network namespaces
// show each rule open and each revoke close the path. The SDK signs with
// its default, ACS3-HMAC-SHA256.
func TestSDKSecurityGroupsSeed(t *testing.T) {
	lab := netlab.New(t)
	vpcflowBin := buildBinary(t, "vpcflow")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	phys, err := lab.AddNode("phys")
	must(t, err)
	ovs, err := phys.StartOVS(ctx)
	must(t, err)
	keys := filepath.Join(lab.Dir(), "aliyun-keys")
	must(t, os.WriteFile(keys, []byte(testAK+" "+testSecret+"\n"), 0o600))
	cfgFile := filepath.Join(lab.Dir(), "vpcflow.yaml")
	must(t, os.WriteFile(cfgFile, nil, 0o600))
	logPath := filepath.Join(lab.Dir(), "vpcflow.log")
	ctrl, err := phys.Start(context.Background(), logPath, vpcflowBin, "serve", "--init", "--config", cfgFile,
		"--data-dir", filepath.Join(lab.Dir(), "data"), "--listen", physREST, "--openflow", physOF, "--ovsdb", ovs.DBEndpoint(),
		"--aliyun-listen", physAliyun, "--aliyun-keys-file", keys)
	must(t, err)
	t.Cleanup(func() {
		_ = ctrl.Stop()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("vpcflow log:\n%s", lastLines(string(b), 60))
		}
	})
	rest := restIn(t, phys)
	eventually(t, "vpcflow REST up", 20*time.Second, func() error {
		resp, err := phys.HTTPClient().Get("http://" + physREST + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err
	})

	// The SDKs reach vpcflow's Aliyun listener (in phys) through a
	// forwarder on this process's loopback.
	endpoint := forwardToNode(t, phys, physAliyun)
	ec, err := ecs.NewClient(sdkConfig(endpoint, testSecret, ""))
	must(t, err)
	vc, err := vpc.NewClient(sdkConfig(endpoint, testSecret, ""))
	must(t, err)

	cv, err := vc.CreateVpc(&vpc.CreateVpcRequest{RegionId: str(testRegion), VpcName: str("vpc-sg"), CidrBlock: str("10.0.0.0/8")})
	must(t, err)
	vpcID := tea.StringValue(cv.Body.VpcId)
	_, err = vc.CreateVSwitch(&vpc.CreateVSwitchRequest{RegionId: str(testRegion), VpcId: str(vpcID), ZoneId: str(testRegion + "-a"),
		CidrBlock: str("10.10.10.0/24"), VSwitchName: str("vsw-a")})
	must(t, err)

	// The fabric: br-test and the seed's two VMs, registered over REST
	// (the Aliyun API has no RunInstances).
	must(t, ovs.AddBridge(ctx, "br-test"))
	must(t, ovs.SetController(ctx, "br-test", "tcp:"+physOF))
	vms := make([]*netlab.Node, len(seedVMs))
	inst := make([]string, len(seedVMs))
	for i, s := range seedVMs {
		vms[i], err = lab.AddNode(s.name)
		must(t, err)
		_, err = lab.LinkToOVS(ctx, vms[i], "ens8", s.mac, phys, ovs, "br-test", s.port, true)
		must(t, err)
		vms[i].MustCmd(t, "ip", "addr", "add", s.ip+"/24", "dev", "ens8")
		h := rest("POST", "/v1/vpcs/vpc-sg/hosts", fmt.Sprintf(`{"name":%q,"vswitch":"vsw-a","ip":%q,"mac":%q,"bridge":"br-test","interface":%q}`,
			s.name, s.ip, s.mac, s.port), 201)
		inst[i] = h["aliyun_id"].(string)
	}
	vm1, vm2 := vms[0], vms[1]
	ip2 := seedVMs[1].ip
	settle := func() {
		t.Helper()
		for i := 0; i < 2; i++ {
			_, err := ovs.Appctl(ctx, "revalidator/wait")
			must(t, err)
		}
	}
	// In no group, the VMs are unfiltered.
	eventually(t, "test1 pings test2 (no security group yet)", 30*time.Second, func() error {
		if !pingPasses(t, vm1, ip2) {
			return fmt.Errorf("no answer")
		}
		return nil
	})
	expect(t, "TCP test1 → test2:8080 before any group", true, tcpOpens(t, vm2, vm1, ip2, 8080))

	// Two groups: test2 in "web", test1 in "client". test2 now refuses
	// what no rule accepts (ingress denied by default; the VMs share no
	// group).
	web := createGroup(t, ec, vpcID, "web", "front ends")
	cli := createGroup(t, ec, vpcID, "client", "")
	_, err = ec.JoinSecurityGroup(&ecs.JoinSecurityGroupRequest{RegionId: str(testRegion), InstanceId: str(inst[1]), SecurityGroupId: str(web)})
	must(t, err)
	_, err = ec.JoinSecurityGroup(&ecs.JoinSecurityGroupRequest{RegionId: str(testRegion), InstanceId: str(inst[0]), SecurityGroupId: str(cli)})
	must(t, err)
	settle()
	expect(t, "ping test1 → test2, test2 in web without rules", false, pingPasses(t, vm1, ip2))
	expect(t, "TCP test1 → test2:8080, test2 in web without rules", false, tcpOpens(t, vm2, vm1, ip2, 8080))

	// A TCP rule from test1's address opens 8080, and only 8080.
	_, err = ec.AuthorizeSecurityGroup(&ecs.AuthorizeSecurityGroupRequest{RegionId: str(testRegion), SecurityGroupId: str(web),
		IpProtocol: str("tcp"), PortRange: str("8080/8080"), SourceCidrIp: str(seedVMs[0].ip), Description: str("app from test1")})
	must(t, err)
	settle()
	expect(t, "TCP test1 → test2:8080 after AuthorizeSecurityGroup tcp 8080", true, tcpOpens(t, vm2, vm1, ip2, 8080))
	expect(t, "TCP test1 → test2:8081 (no rule)", false, tcpOpens(t, vm2, vm1, ip2, 8081))
	expect(t, "ping test1 → test2 (no ICMP rule)", false, pingPasses(t, vm1, ip2))

	// ICMP from the members of "client", as Permissions.N.
	_, err = ec.AuthorizeSecurityGroup(&ecs.AuthorizeSecurityGroupRequest{RegionId: str(testRegion), SecurityGroupId: str(web),
		Permissions: []*ecs.AuthorizeSecurityGroupRequestPermissions{{IpProtocol: str("ICMP"), PortRange: str("-1/-1"), SourceGroupId: str(cli)}}})
	must(t, err)
	settle()
	expect(t, "ping test1 → test2 after authorizing ICMP from group client", true, pingPasses(t, vm1, ip2))

	// The describe calls return what was set; REST shows the same rules.
	attr, err := ec.DescribeSecurityGroupAttribute(&ecs.DescribeSecurityGroupAttributeRequest{RegionId: str(testRegion), SecurityGroupId: str(web)})
	must(t, err)
	if tea.StringValue(attr.Body.SecurityGroupName) != "web" || tea.StringValue(attr.Body.VpcId) != vpcID || tea.StringValue(attr.Body.Description) != "front ends" ||
		len(attr.Body.Permissions.Permission) != 2 {
		t.Fatalf("DescribeSecurityGroupAttribute: %s", attr.Body)
	}
	p0, p1 := attr.Body.Permissions.Permission[0], attr.Body.Permissions.Permission[1]
	if tea.StringValue(p0.Direction) != "ingress" || tea.StringValue(p0.IpProtocol) != "TCP" || tea.StringValue(p0.PortRange) != "8080/8080" ||
		tea.StringValue(p0.SourceCidrIp) != seedVMs[0].ip+"/32" || tea.StringValue(p0.Policy) != "Accept" || tea.StringValue(p0.Priority) != "1" ||
		tea.StringValue(p0.NicType) != "intranet" || tea.StringValue(p0.Description) != "app from test1" ||
		tea.StringValue(p1.IpProtocol) != "ICMP" || tea.StringValue(p1.SourceGroupId) != cli || tea.StringValue(p1.SourceGroupName) != "client" {
		t.Fatalf("permissions: %s", attr.Body)
	}
	restRules := restList(t, phys, "/v1/vpcs/vpc-sg/security-groups/web/rules")
	if len(restRules) != 2 || restRules[0]["port_range"] != "8080/8080" || restRules[1]["security_group"] != "client" {
		t.Fatalf("REST rules of web: %v", restRules)
	}
	dg, err := ec.DescribeSecurityGroups(&ecs.DescribeSecurityGroupsRequest{RegionId: str(testRegion), VpcId: str(vpcID)})
	must(t, err)
	if tea.Int32Value(dg.Body.TotalCount) != 2 || tea.StringValue(dg.Body.SecurityGroups.SecurityGroup[0].SecurityGroupId) != web ||
		tea.Int32Value(dg.Body.SecurityGroups.SecurityGroup[0].EcsCount) != 1 || tea.Int32Value(dg.Body.SecurityGroups.SecurityGroup[0].RuleCount) != 2 {
		t.Fatalf("DescribeSecurityGroups: %s", dg.Body)
	}
	di, err := ec.DescribeInstances(&ecs.DescribeInstancesRequest{RegionId: str(testRegion), InstanceIds: str(`["` + inst[1] + `"]`)})
	must(t, err)
	if ids := di.Body.Instances.Instance[0].SecurityGroupIds.SecurityGroupId; len(ids) != 1 || tea.StringValue(ids[0]) != web {
		t.Fatalf("DescribeInstances: %s", di.Body)
	}

	// An outbound drop on test1's group stops the same connection at the
	// sender; revoking it lets it through again.
	egress := func(do func() error) {
		t.Helper()
		must(t, do())
		settle()
	}
	egress(func() error {
		_, err := ec.AuthorizeSecurityGroupEgress(&ecs.AuthorizeSecurityGroupEgressRequest{RegionId: str(testRegion), SecurityGroupId: str(cli),
			IpProtocol: str("tcp"), PortRange: str("8080/8080"), DestCidrIp: str(ip2), Policy: str("drop")})
		return err
	})
	expect(t, "TCP test1 → test2:8080 with an egress drop on client", false, tcpOpens(t, vm2, vm1, ip2, 8080))
	egress(func() error {
		_, err := ec.RevokeSecurityGroupEgress(&ecs.RevokeSecurityGroupEgressRequest{RegionId: str(testRegion), SecurityGroupId: str(cli),
			IpProtocol: str("tcp"), PortRange: str("8080/8080"), DestCidrIp: str(ip2), Policy: str("drop")})
		return err
	})
	expect(t, "TCP test1 → test2:8080 after RevokeSecurityGroupEgress", true, tcpOpens(t, vm2, vm1, ip2, 8080))

	// Wrong parameters are SDK errors with Aliyun's codes, and change
	// nothing.
	_, err = ec.AuthorizeSecurityGroup(&ecs.AuthorizeSecurityGroupRequest{RegionId: str(testRegion), SecurityGroupId: str(web),
		IpProtocol: str("tcp"), PortRange: str("8080-8090"), SourceCidrIp: str("0.0.0.0/0")})
	wantCode(t, err, 400, "InvalidPortRange.Malformed")
	_, err = ec.AuthorizeSecurityGroup(&ecs.AuthorizeSecurityGroupRequest{RegionId: str(testRegion), SecurityGroupId: str(web),
		IpProtocol: str("tcpx"), PortRange: str("22/22"), SourceCidrIp: str("0.0.0.0/0")})
	wantCode(t, err, 400, "InvalidIpProtocol.ValueNotSupported")
	_, err = ec.AuthorizeSecurityGroup(&ecs.AuthorizeSecurityGroupRequest{RegionId: str(testRegion), SecurityGroupId: str(web),
		IpProtocol: str("tcp"), PortRange: str("-1/-1"), SourceCidrIp: str("0.0.0.0/0")})
	wantCode(t, err, 400, "OperationDenied")
	_, err = ec.AuthorizeSecurityGroup(&ecs.AuthorizeSecurityGroupRequest{RegionId: str(testRegion), SecurityGroupId: str("sg-vf00000000000000099"),
		IpProtocol: str("tcp"), PortRange: str("22/22"), SourceCidrIp: str("0.0.0.0/0")})
	wantCode(t, err, 404, "InvalidSecurityGroupId.NotFound")
	_, err = ec.JoinSecurityGroup(&ecs.JoinSecurityGroupRequest{RegionId: str(testRegion), InstanceId: str(inst[1]), SecurityGroupId: str(web)})
	wantCode(t, err, 403, "InvalidInstanceId.AlreadyExists")
	_, err = ec.LeaveSecurityGroup(&ecs.LeaveSecurityGroupRequest{RegionId: str(testRegion), InstanceId: str(inst[1]), SecurityGroupId: str(web)})
	wantCode(t, err, 403, "InstanceLastSecurityGroup")
	if again := restList(t, phys, "/v1/vpcs/vpc-sg/security-groups/web/rules"); len(again) != 2 {
		t.Fatalf("refused calls changed web's rules: %v", again)
	}
	expect(t, "TCP test1 → test2:8080 after the refused calls", true, tcpOpens(t, vm2, vm1, ip2, 8080))

	// Revoking the TCP rule closes 8080; ICMP stays open.
	_, err = ec.RevokeSecurityGroup(&ecs.RevokeSecurityGroupRequest{RegionId: str(testRegion), SecurityGroupId: str(web),
		IpProtocol: str("tcp"), PortRange: str("8080/8080"), SourceCidrIp: str(seedVMs[0].ip)})
	must(t, err)
	settle()
	expect(t, "TCP test1 → test2:8080 after RevokeSecurityGroup", false, tcpOpens(t, vm2, vm1, ip2, 8080))
	expect(t, "ping test1 → test2 after revoking the TCP rule", true, pingPasses(t, vm1, ip2))

	// ModifyInstanceAttribute moves test2 into client: members of a group
	// reach each other (Aliyun's basic group), without any rule.
	_, err = ec.ModifyInstanceAttribute(&ecs.ModifyInstanceAttributeRequest{InstanceId: str(inst[1]), SecurityGroupIds: []*string{str(cli)}})
	must(t, err)
	settle()
	expect(t, "TCP test1 → test2:8080 with both in group client", true, tcpOpens(t, vm2, vm1, ip2, 8080))

	// web has no members now and goes with its rules; client has members.
	_, err = ec.DeleteSecurityGroup(&ecs.DeleteSecurityGroupRequest{RegionId: str(testRegion), SecurityGroupId: str(cli)})
	wantCode(t, err, 403, "DependencyViolation")
	_, err = ec.DeleteSecurityGroup(&ecs.DeleteSecurityGroupRequest{RegionId: str(testRegion), SecurityGroupId: str(web)})
	must(t, err)
	rest("GET", "/v1/vpcs/vpc-sg/security-groups/web", "", 404)
	_, err = ec.DescribeSecurityGroupAttribute(&ecs.DescribeSecurityGroupAttributeRequest{RegionId: str(testRegion), SecurityGroupId: str(web)})
	wantCode(t, err, 404, "InvalidSecurityGroupId.NotFound")
}

func createGroup(t *testing.T, ec *ecs.Client, vpcID, name, desc string) string {
	t.Helper()
	req := &ecs.CreateSecurityGroupRequest{RegionId: str(testRegion), VpcId: str(vpcID), SecurityGroupName: str(name)}
	if desc != "" {
		req.Description = str(desc)
	}
	out, err := ec.CreateSecurityGroup(req)
	must(t, err)
	id := tea.StringValue(out.Body.SecurityGroupId)
	if !strings.HasPrefix(id, "sg-vf") {
		t.Fatalf("CreateSecurityGroup answered %s", out.Body)
	}
	return id
}

// restIn returns a REST caller for vpcflow in node n.
func restIn(t *testing.T, n *netlab.Node) func(method, path, body string, want int) map[string]any {
	restc := n.HTTPClient()
	return func(method, path, body string, want int) map[string]any {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+physREST+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := restc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, b)
		}
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		return m
	}
}

// restList GETs a REST list.
func restList(t *testing.T, n *netlab.Node, path string) []map[string]any {
	t.Helper()
	resp, err := n.HTTPClient().Get("http://" + physREST + path)
	must(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var l []map[string]any
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return l
}

// forwardToNode listens on this process's loopback and forwards each
// connection to addr inside node n; it returns the local host:port once
// addr accepts connections (vpcflow serve opens its Aliyun listener just
// after the REST API the tests wait for: a first SDK call in between got
// EOF from the forwarder).
func forwardToNode(t *testing.T, n *netlab.Node, addr string) string {
	t.Helper()
	eventually(t, addr+" listening", 20*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c, err := n.Dial(ctx, "tcp", addr)
		if err == nil {
			c.Close()
		}
		return err
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				up, err := n.Dial(ctx, "tcp", addr)
				cancel()
				if err != nil {
					return
				}
				defer up.Close()
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
				go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
				<-done
			}()
		}
	}()
	return ln.Addr().String()
}

// tcpOpens reports whether client opens a TCP connection to
// serverIP:port in server and gets an echo back; a security group drops
// the SYN silently, so a refused connection is one not made within the
// dial timeout.
func tcpOpens(t *testing.T, server, client *netlab.Node, serverIP string, port int) bool {
	t.Helper()
	ln, err := server.Listen("tcp", fmt.Sprintf("%s:%d", serverIP, port))
	must(t, err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	c, err := client.Dial(ctx, "tcp", fmt.Sprintf("%s:%d", serverIP, port))
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("hello")); err != nil {
		return false
	}
	buf := make([]byte, 5)
	_, err = io.ReadFull(c, buf)
	return err == nil && string(buf) == "hello"
}

// pingPasses reports whether at least one of three pings is answered.
func pingPasses(t *testing.T, n *netlab.Node, dst string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, _ := n.Cmd(ctx, "ping", "-n", "-c", "3", "-i", "0.2", "-W", "1", dst)
	return strings.Contains(out, " received") && !strings.Contains(out, " 0 received")
}

// expect fails the test when what happened is not what was wanted.
func expect(t *testing.T, what string, want, got bool) {
	t.Helper()
	verb := map[bool]string{true: "passes", false: "is refused"}
	if want != got {
		t.Fatalf("%s: %s, want it %s", what, verb[got], verb[want])
	}
	t.Logf("ok: %s %s", what, verb[got])
}
