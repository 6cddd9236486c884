package topology

import (
	"encoding/json"
	"math"
	"net/netip"
	"strings"
	"testing"
)

func TestAliyunIDRoundTrip(t *testing.T) {
	for _, id := range []uint32{1, 7, 1234567, math.MaxUint32} {
		for _, p := range []string{AliyunVPCPrefix, AliyunVSwitchPrefix, AliyunVRouterPrefix, AliyunRouteTablePrefix, AliyunRouteEntryPrefix, AliyunInstancePrefix} {
			s := AliyunID(p, id)
			if !strings.HasPrefix(s, p+"-vf") || len(s) != len(p)+1+2+aliyunIDDigits {
				t.Fatalf("AliyunID(%s, %d) = %q", p, id, s)
			}
			got, ok := ParseAliyunID(p, s)
			if !ok || got != id {
				t.Fatalf("ParseAliyunID(%q) = %d, %v; want %d", s, got, ok, id)
			}
		}
		sys := AliyunSystemRouteEntryID(id)
		if got, ok := ParseAliyunSystemRouteEntryID(sys); !ok || got != id {
			t.Fatalf("system entry %q parsed as %d, %v", sys, got, ok)
		}
		if _, ok := ParseAliyunID(AliyunRouteEntryPrefix, sys); ok {
			t.Fatalf("system entry %q parsed as a subnet's entry", sys)
		}
	}
	if got := AliyunID("vpc", 7); got != "vpc-vf00000000000000007" {
		t.Fatalf("AliyunID(vpc, 7) = %q", got)
	}
	for _, bad := range []string{"", "vpc-", "vpc-vf", "vsw-vf00000000000000007", "vpc-vf0000000000000007", "vpc-vf000000000000000007",
		"vpc-vf00000000000000000", "vpc-vf0000000000000000x", "vpc-vf99999999999999999", "vpc-vf-0000000000000007", "VPC-vf00000000000000007"} {
		if id, ok := ParseAliyunID("vpc", bad); ok {
			t.Errorf("ParseAliyunID(vpc, %q) = %d, want refusal", bad, id)
		}
	}
}

func TestAliyunIDInJSON(t *testing.T) {
	v := VPC{ID: 3, Name: "a", CIDR: netip.MustParsePrefix("10.0.0.0/8")}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":3,"name":"a","cidr":"10.0.0.0/8","dec_ttl":false,"aliyun_id":"vpc-vf00000000000000003","aliyun_vrouter_id":"vrt-vf00000000000000003","aliyun_route_table_id":"vtb-vf00000000000000003"}`
	if string(b) != want {
		t.Fatalf("VPC JSON\n%s\nwant\n%s", b, want)
	}
	var back VPC
	if err := json.Unmarshal(b, &back); err != nil || back != v {
		t.Fatalf("decoded %+v (%v), want %+v", back, err, v)
	}
	// Not created yet: no ID, no Aliyun ID.
	if b, _ := json.Marshal(Subnet{Name: "x"}); strings.Contains(string(b), "aliyun") {
		t.Fatalf("subnet without ID: %s", b)
	}
	h := Host{ID: 9, VPC: "a", Name: "h", MAC: MAC{2, 0, 0, 0, 0, 1}, DPID: 1, OFPort: 2}
	b, _ = json.Marshal(&h)
	if !strings.Contains(string(b), `"mac":"02:00:00:00:00:01"`) || !strings.Contains(string(b), `"dpid":"0000000000000001"`) || !strings.HasSuffix(string(b), `"aliyun_id":"i-vf00000000000000009"}`) {
		t.Fatalf("host JSON: %s", b)
	}
	w := VSwitch{ID: 4}
	s := Subnet{ID: 5}
	for _, c := range []struct {
		v    any
		want string
	}{{w, `"aliyun_id":"vsw-vf00000000000000004"`}, {s, `"aliyun_id":"rte-vf00000000000000005"`}} {
		b, _ := json.Marshal(c.v)
		if !strings.Contains(string(b), c.want) {
			t.Fatalf("%T JSON %s lacks %s", c.v, b, c.want)
		}
	}
}
