package aliyunapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/topology"
)

func TestAuthentication(t *testing.T) {
	r := newRig(t)
	// Both signatures pass.
	r.v1(VersionECS, "DescribeVpcs", nil).ok(t)
	r.acs3("DescribeVpcs", map[string]string{"RegionId": "cn-hangzhou"}, nil).ok(t)

	// Wrong secret, unknown key, no signature at all.
	a := r.v1With(testAK, "wrong", VersionECS, "DescribeVpcs", nil, nil).refused(t, 400, "SignatureDoesNotMatch")
	if !strings.Contains(a.str("Message"), "GET&%2F&AccessKeyId%3D"+testAK) {
		t.Errorf("message does not give the server's string to sign: %s", a.raw)
	}
	r.v1With("nobody", "x", VersionECS, "DescribeVpcs", nil, nil).refused(t, 404, "InvalidAccessKeyId.NotFound")
	r.do("GET", "/?Action=DescribeVpcs&Version=2014-05-26", nil, nil).refused(t, 400, "IncompleteSignature")

	// A parameter changed after signing.
	vals := url.Values{}
	q := map[string]string{"Action": "DescribeVpcs", "Version": VersionECS, "AccessKeyId": testAK, "SignatureMethod": "HMAC-SHA1",
		"SignatureVersion": "1.0", "SignatureNonce": "tamper-1", "Timestamp": time.Now().UTC().Format("2006-01-02T15:04:05Z")}
	q["Signature"] = SignV1("GET", testSecret, q)
	for k, v := range q {
		vals.Set(k, v)
	}
	vals.Set("VpcId", "vpc-added")
	r.do("GET", "/?"+vals.Encode(), nil, nil).refused(t, 400, "SignatureDoesNotMatch")

	// The timestamp window, both ways, and a malformed timestamp.
	r.v1With(testAK, testSecret, VersionECS, "DescribeVpcs", nil, func(q map[string]string) {
		q["Timestamp"] = time.Now().Add(-16 * time.Minute).UTC().Format("2006-01-02T15:04:05Z")
	}).refused(t, 400, "InvalidTimeStamp.Expired")
	r.v1With(testAK, testSecret, VersionECS, "DescribeVpcs", nil, func(q map[string]string) {
		q["Timestamp"] = time.Now().Add(16 * time.Minute).UTC().Format("2006-01-02T15:04:05Z")
	}).refused(t, 400, "InvalidTimeStamp.Expired")
	r.v1With(testAK, testSecret, VersionECS, "DescribeVpcs", nil, func(q map[string]string) {
		q["Timestamp"] = time.Now().Add(-14 * time.Minute).UTC().Format("2006-01-02T15:04:05Z")
	}).ok(t)
	r.v1With(testAK, testSecret, VersionECS, "DescribeVpcs", nil, func(q map[string]string) { q["Timestamp"] = "yesterday" }).
		refused(t, 400, "InvalidTimeStamp.Format")

	// A nonce is used once; a request replayed as it was is refused.
	fixed := func(q map[string]string) { q["SignatureNonce"] = "same-nonce" }
	r.v1With(testAK, testSecret, VersionECS, "DescribeVpcs", nil, fixed).ok(t)
	r.v1With(testAK, testSecret, VersionECS, "DescribeVpcs", nil, fixed).refused(t, 400, "SignatureNonceUsed")
	// ... also when the server's clock moved on 20 minutes (still inside
	// the window of a request signed then, seen from the other side).
	r.skewNs.Store(int64(14 * time.Minute))
	r.v1With(testAK, testSecret, VersionECS, "DescribeVpcs", nil, fixed).refused(t, 400, "SignatureNonceUsed")
	r.skewNs.Store(0)
	// An unsigned request does not burn a nonce.
	r.v1With(testAK, "wrong", VersionECS, "DescribeVpcs", nil, func(q map[string]string) { q["SignatureNonce"] = "fresh" }).
		refused(t, 400, "SignatureDoesNotMatch")
	r.v1With(testAK, testSecret, VersionECS, "DescribeVpcs", nil, func(q map[string]string) { q["SignatureNonce"] = "fresh" }).ok(t)

	// ACS3: a header added unsigned, a changed signed header, a body that
	// is not the one hashed, another algorithm.
	r.acs3("DescribeVpcs", nil, func(req *http.Request) { req.Header.Set("x-acs-extra", "1") }).refused(t, 400, "IncompleteSignature")
	r.acs3("DescribeVpcs", nil, func(req *http.Request) { req.Header.Set("x-acs-action", "DescribeVSwitches") }).
		refused(t, 400, "SignatureDoesNotMatch")
	r.acs3("DescribeVpcs", nil, func(req *http.Request) {
		req.Body = ioNopCloser("VpcId=vpc-x")
		req.ContentLength = int64(len("VpcId=vpc-x"))
	}).refused(t, 400, "SignatureDoesNotMatch")
	r.acs3("DescribeVpcs", nil, func(req *http.Request) {
		req.Header.Set("Authorization", strings.Replace(req.Header.Get("Authorization"), "ACS3-HMAC-SHA256", "ACS3-HMAC-SM3", 1))
	}).refused(t, 400, "InvalidSignatureMethod")
	r.acs3("DescribeVpcs", nil, func(req *http.Request) {
		req.Header.Set("Authorization", "ACS3-HMAC-SHA256 Credential="+testAK)
	}).refused(t, 400, "IncompleteSignature")
	r.acs3("DescribeVpcs", nil, func(req *http.Request) {
		req.Header.Set("x-acs-date", time.Now().Add(-time.Hour).UTC().Format("2006-01-02T15:04:05Z"))
	}).refused(t, 400, "InvalidTimeStamp.Expired")

	// Action and version.
	r.v1(VersionECS, "RunInstances", nil).refused(t, 404, "InvalidApi.NotFound")
	r.v1(VersionECS, "DescribeRouteEntryList", nil).refused(t, 404, "InvalidApi.NotFound") // a VPC API action
	r.v1("2099-01-01", "DescribeVpcs", nil).refused(t, 400, "InvalidVersion")
	r.v1(VersionVPC, "DescribeVpcs", map[string]string{"Format": "XML"}).refused(t, 400, "InvalidParameter")
	r.do("PUT", "/", nil, nil).refused(t, 405, "UnsupportedHTTPMethod")
	r.do("GET", "/v1/vpcs", nil, nil).refused(t, 404, "InvalidApi.NotFound")
}

func ioNopCloser(s string) *nopCloser { return &nopCloser{strings.NewReader(s)} }

type nopCloser struct{ *strings.Reader }

func (nopCloser) Close() error { return nil }

func TestNoKeysNoServer(t *testing.T) {
	if _, err := New(zap.NewNop(), nil, Options{}); err == nil || !strings.Contains(err.Error(), "--aliyun-keys-file") {
		t.Fatalf("New without keys file: %v", err)
	}
}

// TestVPCLifecycle drives VPC, vSwitch, route entries and instances
// through the API, checks what REST sees (the same store), the async
// route entry states against a switch that holds its confirmations, and
// the action-specific errors.
func TestVPCLifecycle(t *testing.T) {
	r := newRig(t)
	vpcA := r.v1(VersionVPC, "CreateVpc", map[string]string{"RegionId": "cn-hangzhou", "VpcName": "tenant-a", "CidrBlock": "10.0.0.0/8"}).ok(t)
	vpcID, vrt, vtb := vpcA.str("VpcId"), vpcA.str("VRouterId"), vpcA.str("RouteTableId")
	var stored topology.VPC
	r.ctrl.Read(func(st *topology.State) { stored, _ = st.VPC("tenant-a") })
	if stored.AliyunID() != vpcID || stored.AliyunVRouterID() != vrt || stored.AliyunRouteTableID() != vtb || stored.CIDR.String() != "10.0.0.0/8" {
		t.Fatalf("CreateVpc answered %s, stored %+v", vpcA.raw, stored)
	}
	r.v1(VersionVPC, "CreateVpc", map[string]string{"VpcName": "tenant-a"}).refused(t, 400, "InvalidVpcName.Duplicate")
	r.v1(VersionVPC, "CreateVpc", map[string]string{"VpcName": "bad name"}).refused(t, 400, "InvalidVpcName.Malformed")
	r.v1(VersionVPC, "CreateVpc", map[string]string{"CidrBlock": "10.0.0.0/33"}).refused(t, 400, "InvalidCidrBlock.Malformed")
	unnamed := r.v1(VersionVPC, "CreateVpc", nil).ok(t).str("VpcId")

	// vSwitches: the zone of the region, inside the VPC, no overlap.
	r.v1(VersionVPC, "CreateVSwitch", map[string]string{"VpcId": vpcID, "ZoneId": "cn-hangzhou-i", "CidrBlock": "10.10.10.0/24"}).
		refused(t, 400, "InvalidZoneId.NotFound")
	r.v1(VersionVPC, "CreateVSwitch", map[string]string{"VpcId": vpcID, "CidrBlock": "10.10.10.0/24"}).refused(t, 400, "MissingParameter")
	r.v1(VersionVPC, "CreateVSwitch", map[string]string{"VpcId": "vpc-vf00000000000009999", "ZoneId": "cn-hangzhou-a", "CidrBlock": "10.10.10.0/24"}).
		refused(t, 404, "InvalidVpcId.NotFound")
	r.v1(VersionVPC, "CreateVSwitch", map[string]string{"VpcId": vpcID, "ZoneId": "cn-hangzhou-a", "CidrBlock": "192.168.0.0/24"}).
		refused(t, 400, "InvalidCidrBlock.Malformed") // outside the VPC
	vswA := r.v1(VersionVPC, "CreateVSwitch", map[string]string{"RegionId": "cn-hangzhou", "VpcId": vpcID, "ZoneId": "cn-hangzhou-a",
		"CidrBlock": "10.10.10.0/24", "VSwitchName": "vsw-a"}).ok(t).str("VSwitchId")
	r.v1(VersionVPC, "CreateVSwitch", map[string]string{"VpcId": vpcID, "ZoneId": "cn-hangzhou-a", "CidrBlock": "10.10.10.128/25"}).
		refused(t, 400, "InvalidCidrBlock.Overlapped")
	// Another region sees the same VPCs and has its own zone.
	r.v1(VersionVPC, "CreateVSwitch", map[string]string{"RegionId": "cn-beijing", "VpcId": vpcID, "ZoneId": "cn-beijing-a",
		"CidrBlock": "10.20.0.0/16", "VSwitchName": "vsw-b"}).ok(t)

	// Hosts come from REST (or the controller); they are ECS instances.
	h1 := r.host("tenant-a", "vsw-a", "test1", "10.10.10.11", "52:58:00:98:c0:81", 1)
	h2 := r.host("tenant-a", "vsw-a", "test2", "10.10.10.12", "52:58:00:98:c0:92", 2)
	inst := r.v1(VersionECS, "DescribeInstances", map[string]string{"RegionId": "cn-hangzhou", "VpcId": vpcID}).ok(t)
	if inst.get("TotalCount") != float64(2) || inst.str("Instances.Instance.0.InstanceId") != h1.AliyunID() ||
		inst.str("Instances.Instance.0.VpcAttributes.VSwitchId") != vswA ||
		inst.str("Instances.Instance.0.VpcAttributes.PrivateIpAddress.IpAddress.0") != "10.10.10.11" ||
		inst.str("Instances.Instance.1.NetworkInterfaces.NetworkInterface.0.MacAddress") != "52:58:00:98:c0:92" ||
		inst.str("Instances.Instance.0.Status") != "Running" {
		t.Fatalf("DescribeInstances: %s", inst.raw)
	}
	one := r.v1(VersionECS, "DescribeInstances", map[string]string{"InstanceIds": `["` + h2.AliyunID() + `"]`}).ok(t)
	if one.get("TotalCount") != float64(1) || one.str("Instances.Instance.0.InstanceName") != "test2" {
		t.Fatalf("DescribeInstances by ID: %s", one.raw)
	}

	// ECS's NextToken paging ends, one instance a page.
	var names []string
	for token, n := "", 0; ; n++ {
		if n > 5 {
			t.Fatal("DescribeInstances NextToken does not end")
		}
		p := map[string]string{"MaxResults": "1"}
		if token != "" {
			p["NextToken"] = token
		}
		a := r.v1(VersionECS, "DescribeInstances", p).ok(t)
		for _, in := range a.list("Instances.Instance") {
			names = append(names, in.(map[string]any)["InstanceName"].(string))
		}
		if token = a.str("NextToken"); token == "" {
			break
		}
	}
	if strings.Join(names, ",") != "test1,test2" {
		t.Fatalf("paged through instances %v", names)
	}

	// A route entry through a switch that holds its confirmation: Pending,
	// the table busy, then Available once the switch confirmed.
	r.dp.hold()
	create := r.acs3("CreateRouteEntry", map[string]string{"RegionId": "cn-hangzhou", "RouteTableId": vtb,
		"DestinationCidrBlock": "172.18.3.0/24", "NextHopType": "Instance", "NextHopId": h2.AliyunID()}, nil).ok(t)
	rte := create.str("RouteEntryId")
	var sub topology.Subnet
	r.ctrl.Read(func(st *topology.State) { sub, _ = st.Subnet("tenant-a", "172.18.3.0-24") })
	if sub.AliyunID() != rte || sub.Host != "test2" {
		t.Fatalf("CreateRouteEntry answered %s; stored %+v", create.raw, sub)
	}
	if got := entryStatus(t, r, vtb, rte); got != "Pending" {
		t.Fatalf("route entry %s is %s while the switch has not confirmed", rte, got)
	}
	r.v1(VersionVPC, "CreateRouteEntry", map[string]string{"RouteTableId": vtb, "DestinationCidrBlock": "172.18.1.0/24", "NextHopId": h1.AliyunID()}).
		refused(t, 400, "IncorrectRouteEntryStatus")
	r.v1(VersionVPC, "DeleteRouteEntry", map[string]string{"RouteEntryId": rte}).refused(t, 400, "IncorrectRouteEntryStatus")
	if r.dp.held.Load() == 0 {
		t.Fatal("the switch holds no change")
	}
	r.dp.release()
	waitStatus(t, r, vtb, rte, "Available")

	// Aliyun's rules and error codes.
	for _, c := range []struct {
		p      map[string]string
		status int
		code   string
	}{
		{map[string]string{"DestinationCidrBlock": "172.18.3.0/24", "NextHopId": h2.AliyunID()}, 400, "InvalidRouteEntry.Duplicate"},
		{map[string]string{"DestinationCidrBlock": "172.18.3.0/24", "NextHopId": h1.AliyunID()}, 400, "InvalidCIDRBlock.Duplicate"},
		{map[string]string{"DestinationCidrBlock": "10.10.10.0/25", "NextHopId": h1.AliyunID()}, 400, "InvalidCidrBlock"},
		{map[string]string{"DestinationCidrBlock": "100.64.1.0/24", "NextHopId": h1.AliyunID()}, 400, "InvalidCidrBlock"},
		{map[string]string{"DestinationCidrBlock": "nonsense", "NextHopId": h1.AliyunID()}, 400, "InvalidCidrBlock.Malformed"},
		{map[string]string{"DestinationCidrBlock": "172.18.5.0/24", "NextHopId": "i-vf00000000000000999"}, 404, "InvalidNextHopId.NotFound"},
		{map[string]string{"DestinationCidrBlock": "172.18.5.0/24", "NextHopType": "HaVip", "NextHopId": "havip-1"}, 400, "InvalidNextHopType"},
		{map[string]string{"DestinationCidrBlock": "172.18.5.0/24"}, 400, "MissingParameter"},
		{map[string]string{"RouteTableId": "vtb-vf00000000000009999", "DestinationCidrBlock": "172.18.5.0/24", "NextHopId": h1.AliyunID()}, 404, "InvalidRouteTableId.NotFound"},
	} {
		p := map[string]string{"RouteTableId": vtb}
		for k, v := range c.p {
			p[k] = v
		}
		a := r.v1(VersionVPC, "CreateRouteEntry", p)
		if a.status != c.status || a.code() != c.code {
			t.Errorf("CreateRouteEntry %v: want %d %s, got %d %s", c.p, c.status, c.code, a.status, a.raw)
		}
	}
	// A bare IP is a /32; a non-canonical CIDR is masked, as on Aliyun.
	host32 := r.v1(VersionVPC, "CreateRouteEntry", map[string]string{"RouteTableId": vtb, "DestinationCidrBlock": "192.168.7.7",
		"NextHopId": h1.AliyunID(), "RouteEntryName": "to-seven"}).ok(t).str("RouteEntryId")
	waitStatus(t, r, vtb, host32, "Available")
	r.ctrl.Read(func(st *topology.State) {
		if s, ok := st.Subnet("tenant-a", "to-seven"); !ok || s.CIDR.String() != "192.168.7.7/32" {
			t.Errorf("bare IP entry stored as %+v", s)
		}
	})

	// The route table: a system entry per vSwitch, the custom entries.
	tables := r.v1(VersionECS, "DescribeRouteTables", map[string]string{"VRouterId": vrt, "RouteTableId": vtb}).ok(t)
	entries := tables.list("RouteTables.RouteTable.0.RouteEntrys.RouteEntry")
	if len(entries) != 4 {
		t.Fatalf("want 2 system + 2 custom entries: %s", tables.raw)
	}
	sys := entries[0].(map[string]any)
	if sys["Type"] != "System" || sys["DestinationCidrBlock"] != "10.10.10.0/24" || sys["Status"] != "Available" || sys["NextHopType"] != "local" {
		t.Errorf("system entry: %v", sys)
	}
	custom := entries[2].(map[string]any)
	if custom["Type"] != "Custom" || custom["InstanceId"] != h2.AliyunID() || custom["NextHopId"] != h2.AliyunID() || custom["RouteTableId"] != vtb {
		t.Errorf("custom entry: %v", custom)
	}
	// The system entry cannot be deleted.
	r.v1(VersionVPC, "DeleteRouteEntry", map[string]string{"RouteTableId": vtb, "DestinationCidrBlock": "10.10.10.0/24"}).refused(t, 400, "OperationDenied")
	r.v1(VersionVPC, "DeleteRouteEntry", map[string]string{"RouteEntryId": sys["RouteEntryId"].(string)}).refused(t, 400, "OperationDenied")

	// DescribeRouteEntryList: filters and NextToken paging that ends.
	custOnly := r.v1(VersionVPC, "DescribeRouteEntryList", map[string]string{"RouteTableId": vtb, "RouteEntryType": "Custom"}).ok(t)
	if n := len(custOnly.list("RouteEntrys.RouteEntry")); n != 2 || custOnly.str("NextToken") != "" {
		t.Fatalf("custom entries: %s", custOnly.raw)
	}
	var ids []string
	token := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("NextToken paging does not end")
		}
		p := map[string]string{"RouteTableId": vtb, "MaxResult": "1"}
		if token != "" {
			p["NextToken"] = token
		}
		a := r.v1(VersionVPC, "DescribeRouteEntryList", p).ok(t)
		for _, e := range a.list("RouteEntrys.RouteEntry") {
			ids = append(ids, e.(map[string]any)["RouteEntryId"].(string))
		}
		if token = a.str("NextToken"); token == "" {
			break
		}
	}
	if len(ids) != 4 {
		t.Fatalf("paged through %v", ids)
	}
	r.v1(VersionVPC, "DescribeRouteEntryList", map[string]string{"RouteTableId": vtb, "NextToken": "junk"}).refused(t, 400, "InvalidNextToken")

	// DescribeVpcs pages that end, VpcId filters (a list).
	for i := 0; i < 3; i++ {
		r.v1(VersionVPC, "CreateVpc", map[string]string{"VpcName": fmt.Sprintf("extra-%d", i)}).ok(t)
	}
	seen := map[string]bool{}
	for pg := 1; ; pg++ {
		a := r.v1(VersionVPC, "DescribeVpcs", map[string]string{"PageSize": "2", "PageNumber": fmt.Sprint(pg)}).ok(t)
		vs := a.list("Vpcs.Vpc")
		if a.get("TotalCount") != float64(5) || a.get("PageNumber") != float64(pg) || a.get("PageSize") != float64(2) {
			t.Fatalf("page %d: %s", pg, a.raw)
		}
		for _, v := range vs {
			seen[v.(map[string]any)["VpcId"].(string)] = true
		}
		if len(vs) < 2 {
			break
		}
	}
	if len(seen) != 5 {
		t.Fatalf("paged through %d VPCs", len(seen))
	}
	r.v1(VersionVPC, "DescribeVpcs", map[string]string{"PageSize": "51"}).refused(t, 400, "InvalidParameter")
	two := r.v1(VersionVPC, "DescribeVpcs", map[string]string{"VpcId": vpcID + "," + unnamed}).ok(t)
	if two.get("TotalCount") != float64(2) || two.str("Vpcs.Vpc.0.VRouterId") != vrt || two.str("Vpcs.Vpc.0.VSwitchIds.VSwitchId.0") != vswA ||
		two.str("Vpcs.Vpc.0.CreationTime") == "" || two.str("Vpcs.Vpc.0.Status") != "Available" {
		t.Fatalf("DescribeVpcs by IDs: %s", two.raw)
	}
	if _, err := time.Parse("2006-01-02T15:04:05Z", two.str("Vpcs.Vpc.0.CreationTime")); err != nil {
		t.Errorf("CreationTime: %v", err)
	}

	// Deletes: dependencies first, as Aliyun.
	r.v1(VersionVPC, "DeleteVpc", map[string]string{"VpcId": vpcID}).refused(t, 400, "DependencyViolation.RouteEntry")
	r.v1(VersionVPC, "DeleteVSwitch", map[string]string{"VSwitchId": vswA}).refused(t, 400, "DependencyViolation")
	// aliyungo's form: table, destination and next hop.
	r.v1(VersionECS, "DeleteRouteEntry", map[string]string{"RouteTableId": vtb, "DestinationCidrBlock": "172.18.3.0/24", "NextHopId": h1.AliyunID()}).
		refused(t, 400, "InvalidRouteEntry.NotFound")
	r.v1(VersionECS, "DeleteRouteEntry", map[string]string{"RouteTableId": vtb, "DestinationCidrBlock": "172.18.3.0/24", "NextHopId": h2.AliyunID()}).ok(t)
	waitGone(t, r, vtb, rte)
	r.v1(VersionVPC, "DeleteRouteEntry", map[string]string{"RouteEntryId": host32}).ok(t)
	waitGone(t, r, vtb, host32)
	r.v1(VersionVPC, "DeleteRouteEntry", map[string]string{"RouteEntryId": host32}).refused(t, 400, "InvalidRouteEntryId.NotFound")
	r.ctrl.Read(func(st *topology.State) {
		if n := len(st.Subnets("tenant-a")); n != 0 {
			t.Errorf("%d subnets left", n)
		}
	})
	for _, h := range []string{"test1", "test2"} {
		if _, err := r.ctrl.Apply(context.Background(), []topology.Op{topology.Delete(&topology.Host{VPC: "tenant-a", Name: h}, false)}); err != nil {
			t.Fatal(err)
		}
	}
	r.v1(VersionVPC, "DeleteVpc", map[string]string{"VpcId": vpcID}).refused(t, 400, "DependencyViolation.VSwitch")
	r.v1(VersionVPC, "DeleteVSwitch", map[string]string{"VSwitchId": vswA}).ok(t)
	r.v1(VersionVPC, "DeleteVSwitch", map[string]string{"VSwitchId": vswA}).refused(t, 404, "InvalidVSwitchId.NotFound")
	vswB := r.v1(VersionVPC, "DescribeVSwitches", map[string]string{"VpcId": vpcID}).ok(t).str("VSwitches.VSwitch.0.VSwitchId")
	r.v1(VersionVPC, "DeleteVSwitch", map[string]string{"VSwitchId": vswB}).ok(t)
	r.v1(VersionVPC, "DeleteVpc", map[string]string{"VpcId": vpcID}).ok(t)
	r.v1(VersionVPC, "DeleteVpc", map[string]string{"VpcId": vpcID}).refused(t, 404, "InvalidVpcId.NotFound")
	r.ctrl.Read(func(st *topology.State) {
		if _, ok := st.VPC("tenant-a"); ok {
			t.Error("VPC still stored after DeleteVpc")
		}
	})
}

// TestClientToken: the same token and parameters give the first answer;
// other parameters are refused.
func TestClientToken(t *testing.T) {
	r := newRig(t)
	p := map[string]string{"VpcName": "tok", "ClientToken": "abc-123"}
	first := r.v1(VersionVPC, "CreateVpc", p).ok(t)
	again := r.v1(VersionVPC, "CreateVpc", p).ok(t)
	if first.str("VpcId") != again.str("VpcId") {
		t.Fatalf("same token, two VPCs: %s / %s", first.raw, again.raw)
	}
	r.v1(VersionVPC, "CreateVpc", map[string]string{"VpcName": "tok2", "ClientToken": "abc-123"}).refused(t, 400, "IdempotentParameterMismatch")
}

func entryStatus(t *testing.T, r *rig, vtb, id string) string {
	t.Helper()
	a := r.v1(VersionVPC, "DescribeRouteEntryList", map[string]string{"RouteTableId": vtb, "RouteEntryId": id}).ok(t)
	return a.str("RouteEntrys.RouteEntry.0.Status")
}

func waitStatus(t *testing.T, r *rig, vtb, id, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := entryStatus(t, r, vtb, id)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("route entry %s is %q, want %s", id, got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitGone(t *testing.T, r *rig, vtb, id string) {
	t.Helper()
	waitStatus(t, r, vtb, id, "")
	// and the table is free again
	deadline := time.Now().Add(10 * time.Second)
	for r.srv.routes.busy("tenant-a") {
		if time.Now().After(deadline) {
			t.Fatal("route table still busy")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
