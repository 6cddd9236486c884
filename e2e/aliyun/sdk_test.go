package aliyun

// The official Go SDKs (vpc-20160428/v6, ecs-20140526/v7 over
// darabonba-openapi/v2), unmodified, against vpcflow: both signature
// algorithms, every served action, the async route entry states, paging,
// the errors as SDK errors, and the objects seen through REST.

import (
	"errors"
	"fmt"
	"testing"
	"time"

	openapiutil "github.com/alibabacloud-go/darabonba-openapi/v2/utils"
	ecs "github.com/alibabacloud-go/ecs-20140526/v7/client"
	"github.com/alibabacloud-go/tea/tea"
	vpc "github.com/alibabacloud-go/vpc-20160428/v6/client"
)

func str(s string) *string { return &s }
func i32(n int32) *int32   { return &n }

// sdkConfig points an SDK at vpcflow: Endpoint host:port, Protocol http.
// algorithm "" is the SDK's default (ACS3-HMAC-SHA256); "v2" makes it sign
// with HMAC-SHA1 signature v1.
func sdkConfig(endpoint, secret, algorithm string) *openapiutil.Config {
	c := &openapiutil.Config{AccessKeyId: str(testAK), AccessKeySecret: str(secret), Endpoint: str(endpoint),
		Protocol: str("http"), RegionId: str(testRegion)}
	if algorithm != "" {
		c.SignatureAlgorithm = str(algorithm)
	}
	return c
}

// sdkCode is the Code of an SDK error, and its HTTP status.
func sdkCode(t *testing.T, err error) (string, int) {
	t.Helper()
	if err == nil {
		t.Fatal("want an SDK error, got success")
	}
	var se *tea.SDKError
	if !errors.As(err, &se) {
		t.Fatalf("want a *tea.SDKError, got %T: %v", err, err)
	}
	return tea.StringValue(se.Code), tea.IntValue(se.StatusCode)
}

func wantCode(t *testing.T, err error, status int, code string) {
	t.Helper()
	got, st := sdkCode(t, err)
	if got != code || st != status {
		t.Fatalf("want SDK error %d %s, got %d %s: %v", status, code, st, got, err)
	}
}

func TestOfficialSDK(t *testing.T) {
	for _, alg := range []struct{ name, algorithm string }{{"ACS3-HMAC-SHA256", ""}, {"HMAC-SHA1-v1", "v2"}} {
		t.Run(alg.name, func(t *testing.T) { testSDK(t, alg.algorithm) })
	}
}

func testSDK(t *testing.T, algorithm string) {
	s := newStack(t)
	vc, err := vpc.NewClient(sdkConfig(s.aliyun, testSecret, algorithm))
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecs.NewClient(sdkConfig(s.aliyun, testSecret, algorithm))
	if err != nil {
		t.Fatal(err)
	}

	// A wrong secret is an SDK error, SignatureDoesNotMatch.
	bad, err := vpc.NewClient(sdkConfig(s.aliyun, "not-the-secret", algorithm))
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.DescribeVpcs(&vpc.DescribeVpcsRequest{RegionId: str(testRegion)})
	wantCode(t, err, 400, "SignatureDoesNotMatch")
	badECS, _ := ecs.NewClient(sdkConfig(s.aliyun, "not-the-secret", algorithm))
	_, err = badECS.DescribeInstances(&ecs.DescribeInstancesRequest{RegionId: str(testRegion)})
	wantCode(t, err, 400, "SignatureDoesNotMatch")

	// VPC and vSwitch; the same objects through REST.
	cv, err := vc.CreateVpc(&vpc.CreateVpcRequest{RegionId: str(testRegion), VpcName: str("sdk-vpc"), CidrBlock: str("10.0.0.0/8")})
	if err != nil {
		t.Fatal(err)
	}
	vpcID, vtb, vrt := tea.StringValue(cv.Body.VpcId), tea.StringValue(cv.Body.RouteTableId), tea.StringValue(cv.Body.VRouterId)
	if rv := s.restJSON("GET", "/v1/vpcs/sdk-vpc", "", 200); rv["aliyun_id"] != vpcID || rv["aliyun_route_table_id"] != vtb || rv["aliyun_vrouter_id"] != vrt {
		t.Fatalf("REST shows %v, the SDK got %s %s %s", rv, vpcID, vtb, vrt)
	}
	_, err = vc.CreateVpc(&vpc.CreateVpcRequest{RegionId: str(testRegion), VpcName: str("sdk-vpc")})
	wantCode(t, err, 400, "InvalidVpcName.Duplicate")
	cw, err := vc.CreateVSwitch(&vpc.CreateVSwitchRequest{RegionId: str(testRegion), VpcId: str(vpcID), ZoneId: str(testRegion + "-a"),
		CidrBlock: str("10.10.10.0/24"), VSwitchName: str("vsw-a")})
	if err != nil {
		t.Fatal(err)
	}
	vswID := tea.StringValue(cw.Body.VSwitchId)
	if rw := s.restJSON("GET", "/v1/vpcs/sdk-vpc/vswitches/vsw-a", "", 200); rw["aliyun_id"] != vswID || rw["gateway"] != "10.10.10.253" {
		t.Fatalf("REST shows %v, the SDK got %s", rw, vswID)
	}
	_, err = vc.CreateVSwitch(&vpc.CreateVSwitchRequest{RegionId: str(testRegion), VpcId: str("vpc-nope"), ZoneId: str(testRegion + "-a"), CidrBlock: str("10.11.0.0/24")})
	wantCode(t, err, 404, "InvalidVpcId.NotFound")
	dw, err := vc.DescribeVSwitches(&vpc.DescribeVSwitchesRequest{RegionId: str(testRegion), VpcId: str(vpcID)})
	if err != nil {
		t.Fatal(err)
	}
	if tea.Int32Value(dw.Body.TotalCount) != 1 || tea.StringValue(dw.Body.VSwitches.VSwitch[0].CidrBlock) != "10.10.10.0/24" ||
		tea.StringValue(dw.Body.VSwitches.VSwitch[0].RouteTable.RouteTableId) != vtb || tea.Int64Value(dw.Body.VSwitches.VSwitch[0].AvailableIpAddressCount) != 253 {
		t.Fatalf("DescribeVSwitches: %s", dw.Body)
	}

	// Instances are the hosts registered over REST.
	s.addHost("sdk-vpc", "vsw-a", "test1", "10.10.10.11", "52:58:00:98:c0:81", 1)
	s.addHost("sdk-vpc", "vsw-a", "test2", "10.10.10.12", "52:58:00:98:c0:92", 2)
	di, err := ec.DescribeInstances(&ecs.DescribeInstancesRequest{RegionId: str(testRegion), VpcId: str(vpcID)})
	if err != nil {
		t.Fatal(err)
	}
	if tea.Int32Value(di.Body.TotalCount) != 2 {
		t.Fatalf("DescribeInstances: %s", di.Body)
	}
	inst := map[string]string{} // IP → instance ID
	for _, in := range di.Body.Instances.Instance {
		inst[tea.StringValue(in.VpcAttributes.PrivateIpAddress.IpAddress[0])] = tea.StringValue(in.InstanceId)
		if tea.StringValue(in.VpcAttributes.VSwitchId) != vswID || tea.StringValue(in.Status) != "Running" {
			t.Fatalf("instance %s", in)
		}
	}
	i1, i2 := inst["10.10.10.11"], inst["10.10.10.12"]
	if rh := s.restJSON("GET", "/v1/vpcs/sdk-vpc/hosts/test1", "", 200); rh["aliyun_id"] != i1 || i1 == "" {
		t.Fatalf("REST host %v, instance %s", rh, i1)
	}
	one, err := ec.DescribeInstances(&ecs.DescribeInstancesRequest{RegionId: str(testRegion), InstanceIds: str(`["` + i2 + `"]`)})
	if err != nil || tea.Int32Value(one.Body.TotalCount) != 1 || tea.StringValue(one.Body.Instances.Instance[0].InstanceName) != "test2" {
		t.Fatalf("DescribeInstances by ID: %v %v", one, err)
	}

	// A route entry is Pending until the switch confirmed its flows.
	s.sw.hold()
	ce, err := vc.CreateRouteEntry(&vpc.CreateRouteEntryRequest{RegionId: str(testRegion), RouteTableId: str(vtb),
		DestinationCidrBlock: str("172.18.3.0/24"), NextHopType: str("Instance"), NextHopId: str(i2)})
	if err != nil {
		t.Fatal(err)
	}
	rte := tea.StringValue(ce.Body.RouteEntryId)
	if got := entryStatus(t, vc, vtb, rte); got != "Pending" {
		t.Fatalf("route entry %s is %q before the switch confirmed", rte, got)
	}
	_, err = vc.CreateRouteEntry(&vpc.CreateRouteEntryRequest{RegionId: str(testRegion), RouteTableId: str(vtb),
		DestinationCidrBlock: str("172.18.1.0/24"), NextHopType: str("Instance"), NextHopId: str(i1)})
	wantCode(t, err, 400, "IncorrectRouteEntryStatus")
	s.sw.release()
	waitEntry(t, vc, vtb, rte, "Available")
	if rs := s.restJSON("GET", "/v1/vpcs/sdk-vpc/subnets/172.18.3.0-24", "", 200); rs["aliyun_id"] != rte || rs["host"] != "test2" {
		t.Fatalf("REST subnet %v, route entry %s", rs, rte)
	}
	ce1, err := vc.CreateRouteEntry(&vpc.CreateRouteEntryRequest{RegionId: str(testRegion), RouteTableId: str(vtb),
		DestinationCidrBlock: str("172.18.1.0/24"), NextHopType: str("Instance"), NextHopId: str(i1), RouteEntryName: str("vm1-containers")})
	if err != nil {
		t.Fatal(err)
	}
	rte1 := tea.StringValue(ce1.Body.RouteEntryId)
	waitEntry(t, vc, vtb, rte1, "Available")
	_, err = vc.CreateRouteEntry(&vpc.CreateRouteEntryRequest{RegionId: str(testRegion), RouteTableId: str(vtb),
		DestinationCidrBlock: str("172.18.1.0/24"), NextHopType: str("Instance"), NextHopId: str(i2)})
	wantCode(t, err, 400, "InvalidCIDRBlock.Duplicate")
	_, err = vc.CreateRouteEntry(&vpc.CreateRouteEntryRequest{RegionId: str(testRegion), RouteTableId: str(vtb),
		DestinationCidrBlock: str("10.10.10.0/26"), NextHopType: str("Instance"), NextHopId: str(i2)})
	wantCode(t, err, 400, "InvalidCidrBlock")

	// The vRouter and its route table, as both APIs show them.
	vr, err := vc.DescribeVRouters(&vpc.DescribeVRoutersRequest{RegionId: str(testRegion), VRouterId: str(vrt)})
	if err != nil || len(vr.Body.VRouters.VRouter) != 1 || tea.StringValue(vr.Body.VRouters.VRouter[0].RouteTableIds.RouteTableId[0]) != vtb {
		t.Fatalf("DescribeVRouters: %v %v", vr, err)
	}
	tl, err := vc.DescribeRouteTableList(&vpc.DescribeRouteTableListRequest{RegionId: str(testRegion), VpcId: str(vpcID)})
	if err != nil || tea.Int32Value(tl.Body.TotalCount) != 1 || tea.StringValue(tl.Body.RouterTableList.RouterTableListType[0].RouteTableId) != vtb ||
		tea.StringValue(tl.Body.RouterTableList.RouterTableListType[0].VSwitchIds.VSwitchId[0]) != vswID {
		t.Fatalf("DescribeRouteTableList: %v %v", tl, err)
	}
	rt, err := vc.DescribeRouteTables(&vpc.DescribeRouteTablesRequest{RegionId: str(testRegion), VRouterId: str(vrt)})
	if err != nil {
		t.Fatal(err)
	}
	if es := rt.Body.RouteTables.RouteTable[0].RouteEntrys.RouteEntry; len(es) != 3 || tea.StringValue(es[0].Type) != "System" ||
		tea.StringValue(es[1].InstanceId) != i2 || tea.StringValue(es[2].RouteEntryName) != "vm1-containers" {
		t.Fatalf("DescribeRouteTables: %s", rt.Body)
	}
	ert, err := ec.DescribeRouteTables(&ecs.DescribeRouteTablesRequest{RegionId: str(testRegion), RouteTableId: str(vtb)})
	if err != nil || len(ert.Body.RouteTables.RouteTable[0].RouteEntrys.RouteEntry) != 3 {
		t.Fatalf("ECS DescribeRouteTables: %v %v", ert, err)
	}

	// Paging that ends: DescribeVpcs by pages, DescribeRouteEntryList by
	// NextToken.
	for i := 0; i < 4; i++ {
		if _, err := vc.CreateVpc(&vpc.CreateVpcRequest{RegionId: str(testRegion), VpcName: str(fmt.Sprintf("more-%d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	for pg := int32(1); ; pg++ {
		if pg > 10 {
			t.Fatal("DescribeVpcs pages do not end")
		}
		d, err := vc.DescribeVpcs(&vpc.DescribeVpcsRequest{RegionId: str(testRegion), PageSize: i32(2), PageNumber: i32(pg)})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range d.Body.Vpcs.Vpc {
			seen[tea.StringValue(v.VpcId)] = true
		}
		if tea.Int32Value(d.Body.PageNumber)*tea.Int32Value(d.Body.PageSize) >= tea.Int32Value(d.Body.TotalCount) {
			break
		}
	}
	if len(seen) != 5 || !seen[vpcID] {
		t.Fatalf("paged through %d VPCs: %v", len(seen), seen)
	}
	var ids []string
	var token *string
	for n := 0; ; n++ {
		if n > 10 {
			t.Fatal("DescribeRouteEntryList NextToken does not end")
		}
		d, err := vc.DescribeRouteEntryList(&vpc.DescribeRouteEntryListRequest{RegionId: str(testRegion), RouteTableId: str(vtb), MaxResult: i32(1), NextToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range d.Body.RouteEntrys.RouteEntry {
			ids = append(ids, tea.StringValue(e.RouteEntryId))
		}
		if tea.StringValue(d.Body.NextToken) == "" {
			break
		}
		token = d.Body.NextToken
	}
	if len(ids) != 3 {
		t.Fatalf("paged through %v", ids)
	}

	// Deletes, dependencies first; route entries go away asynchronously.
	_, err = vc.DeleteVpc(&vpc.DeleteVpcRequest{RegionId: str(testRegion), VpcId: str(vpcID)})
	wantCode(t, err, 400, "DependencyViolation.RouteEntry")
	if _, err := vc.DeleteRouteEntry(&vpc.DeleteRouteEntryRequest{RegionId: str(testRegion), RouteEntryId: str(rte)}); err != nil {
		t.Fatal(err)
	}
	waitEntry(t, vc, vtb, rte, "")
	eventually(t, "route table free", 10*time.Second, func() error {
		_, err := vc.DeleteRouteEntry(&vpc.DeleteRouteEntryRequest{RegionId: str(testRegion), RouteTableId: str(vtb), DestinationCidrBlock: str("172.18.1.0/24")})
		return err
	})
	waitEntry(t, vc, vtb, rte1, "")
	s.restJSON("DELETE", "/v1/vpcs/sdk-vpc/hosts/test1", "", 204)
	s.restJSON("DELETE", "/v1/vpcs/sdk-vpc/hosts/test2", "", 204)
	if _, err := vc.DeleteVSwitch(&vpc.DeleteVSwitchRequest{RegionId: str(testRegion), VSwitchId: str(vswID)}); err != nil {
		t.Fatal(err)
	}
	if _, err := vc.DeleteVpc(&vpc.DeleteVpcRequest{RegionId: str(testRegion), VpcId: str(vpcID)}); err != nil {
		t.Fatal(err)
	}
	s.restJSON("GET", "/v1/vpcs/sdk-vpc", "", 404)
	d, err := vc.DescribeVpcs(&vpc.DescribeVpcsRequest{RegionId: str(testRegion), VpcId: str(vpcID)})
	if err != nil || tea.Int32Value(d.Body.TotalCount) != 0 {
		t.Fatalf("DescribeVpcs of the deleted VPC: %v %v", d, err)
	}
}

// entryStatus is a route entry's Status by DescribeRouteEntryList; "" when
// it is not there.
func entryStatus(t *testing.T, vc *vpc.Client, vtb, id string) string {
	t.Helper()
	d, err := vc.DescribeRouteEntryList(&vpc.DescribeRouteEntryListRequest{RegionId: str(testRegion), RouteTableId: str(vtb), RouteEntryId: str(id)})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Body.RouteEntrys.RouteEntry) == 0 {
		return ""
	}
	return tea.StringValue(d.Body.RouteEntrys.RouteEntry[0].Status)
}

// waitEntry polls, as clients do, until the entry has the status ("":
// gone).
func waitEntry(t *testing.T, vc *vpc.Client, vtb, id, want string) {
	t.Helper()
	eventually(t, "route entry "+id+" "+want, 20*time.Second, func() error {
		if got := entryStatus(t, vc, vtb, id); got != want {
			return fmt.Errorf("status %q", got)
		}
		return nil
	})
}
