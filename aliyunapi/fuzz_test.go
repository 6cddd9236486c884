package aliyunapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/topology"
)

// storeBackend applies to a store directly (no switches): what fuzzing
// needs, fast.
type storeBackend struct{ st *topology.Store }

func (b storeBackend) Apply(ctx context.Context, ops []topology.Op) ([]topology.Op, error) {
	return b.st.Apply(ctx, ops)
}
func (b storeBackend) Read(fn func(st *topology.State)) { b.st.Read(fn) }

// FuzzServeHTTP: whatever arrives — query, body, Authorization — the
// answer is Aliyun's JSON envelope with a RequestId, never a panic. The
// seeds include validly signed requests of both kinds, so the fuzzer
// mutates from inside the actions too.
func FuzzServeHTTP(f *testing.F) {
	st, err := topology.NewStore(f.Context(), topology.NewMemory(), zap.NewNop())
	if err != nil {
		f.Fatal(err)
	}
	keys := filepath.Join(f.TempDir(), "keys")
	if err := os.WriteFile(keys, []byte("k s\n"), 0o600); err != nil {
		f.Fatal(err)
	}
	srv, err := New(zap.NewNop(), storeBackend{st}, Options{KeysFile: keys})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(srv.Close)
	f.Add("GET", "Action=DescribeVpcs&Version=2014-05-26", "", "", "")
	f.Add("POST", "Action=CreateVpc&Version=2016-04-28&VpcName=a&CidrBlock=10.0.0.0%2F8", "RegionId=cn-hangzhou", "application/x-www-form-urlencoded", "")
	f.Add("POST", "RouteTableId=vtb-vf00000000000000001&DestinationCidrBlock=1.2.3.4", "", "", "ACS3-HMAC-SHA256 Credential=k,SignedHeaders=host;x-acs-date,Signature=00")
	f.Add("GET", "InstanceIds=%5B%22i-1%22&PageSize=9999999999", "", "", "ACS3-")
	f.Add("GET", "NextToken=-1&MaxResult=0&a=1&a=2", "%zz", "application/x-www-form-urlencoded", "ACS3-HMAC-SHA256 ,,,=")
	for _, action := range []string{"CreateVpc", "CreateVSwitch", "CreateRouteEntry", "DeleteRouteEntry", "DescribeRouteEntryList", "DescribeInstances", "DeleteVpc"} {
		version := VersionVPC
		if action == "DescribeInstances" {
			version = VersionECS
		}
		q := map[string]string{"Action": action, "Version": version, "AccessKeyId": "k", "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0",
			"SignatureNonce": "n-" + action, "Timestamp": time.Now().UTC().Format("2006-01-02T15:04:05Z"), "VpcId": "vpc-vf00000000000000001", "CidrBlock": "10.1.0.0/16",
			"ZoneId": "cn-hangzhou-a", "RouteTableId": "vtb-vf00000000000000001", "DestinationCidrBlock": "172.18.0.0/24", "NextHopId": "i-vf00000000000000001"}
		q["Signature"] = SignV1("GET", "s", q)
		var parts []string
		for k, v := range q {
			parts = append(parts, k+"="+strings.ReplaceAll(percentEncode(v), "%20", "+"))
		}
		f.Add("GET", strings.Join(parts, "&"), "", "", "")
	}
	// The security group actions (ECS API), with rules given both ways.
	for i, action := range []string{"CreateSecurityGroup", "AuthorizeSecurityGroup", "AuthorizeSecurityGroupEgress", "RevokeSecurityGroup",
		"RevokeSecurityGroupEgress", "ModifySecurityGroupRule", "DescribeSecurityGroupAttribute", "DescribeSecurityGroups", "JoinSecurityGroup",
		"LeaveSecurityGroup", "ModifyInstanceAttribute", "ModifySecurityGroupAttribute", "ModifySecurityGroupPolicy", "DeleteSecurityGroup"} {
		q := map[string]string{"Action": action, "Version": VersionECS, "AccessKeyId": "k", "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0",
			"SignatureNonce": "n-sg-" + action, "Timestamp": time.Now().UTC().Format("2006-01-02T15:04:05Z"), "VpcId": "vpc-vf00000000000000001",
			"SecurityGroupId": "sg-vf00000000000000001", "InstanceId": "i-vf00000000000000001", "SecurityGroupRuleId": "sgr-vf00000000000000001",
			"SecurityGroupIds.1": "sg-vf00000000000000001", "MaxResults": "10"}
		if i%2 == 1 {
			q["Permissions.1.IpProtocol"], q["Permissions.1.PortRange"], q["Permissions.1.SourceCidrIp"] = "tcp", "80/80", "10.0.0.0/8"
			q["Permissions.2.IpProtocol"], q["Permissions.2.PortRange"], q["Permissions.2.DestGroupId"] = "ICMP", "-1/-1", "sg-vf00000000000000002"
		} else {
			q["IpProtocol"], q["PortRange"], q["SourceCidrIp"], q["DestCidrIp"], q["Policy"], q["Priority"] = "udp", "53/53", "10.1.2.3", "0.0.0.0/0", "Drop", "7"
		}
		q["Signature"] = SignV1("GET", "s", q)
		var parts []string
		for k, v := range q {
			parts = append(parts, k+"="+strings.ReplaceAll(percentEncode(v), "%20", "+"))
		}
		f.Add("GET", strings.Join(parts, "&"), "", "", "")
	}
	f.Fuzz(func(t *testing.T, method, query, body, contentType, auth string) {
		if !validMethod(method) {
			method = "GET"
		}
		req := httptest.NewRequest(method, "/", strings.NewReader(body))
		req.URL.RawQuery = query
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		var m map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
			t.Fatalf("answer is not JSON (%d): %q", rec.Code, rec.Body.String())
		}
		if id, _ := m["RequestId"].(string); id == "" {
			t.Fatalf("answer without RequestId: %s", rec.Body.String())
		}
		if rec.Code != http.StatusOK {
			if code, _ := m["Code"].(string); code == "" {
				t.Fatalf("error without Code: %s", rec.Body.String())
			}
		}
	})
}

func validMethod(m string) bool {
	if m == "" || len(m) > 16 {
		return false
	}
	for _, c := range m {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}
