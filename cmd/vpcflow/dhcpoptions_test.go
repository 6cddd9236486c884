package main

import (
	"strings"
	"testing"
)

func TestDHCPOptionsCLI(t *testing.T) {
	url := newAPI(t)
	mustCLI(t, url, "vpc", "create", "vpc-a")
	expectOutput(t, mustCLI(t, url, "dhcp-options", "create", "--vpc", "vpc-a", "dopt-a", "--domain", "corp.example",
		"--dns", "100.100.2.136, 100.100.2.138", "--routes", "192.168.0.0/16=10.10.10.254"),
		"NAME    ID  DOMAIN        DNS_SERVERS                  LEASE_S  STATIC_ROUTES\n"+
			"dopt-a  1   corp.example  100.100.2.136,100.100.2.138  86400    192.168.0.0/16=10.10.10.254\n")
	expectOutput(t, mustCLI(t, url, "dhcp-options", "update", "--vpc", "vpc-a", "dopt-a", "--dns", "10.0.0.53", "--lease", "3600"),
		"NAME    ID  DOMAIN  DNS_SERVERS  LEASE_S  STATIC_ROUTES\n"+
			"dopt-a  1   -       10.0.0.53    3600     -\n")
	if out := mustCLI(t, url, "dhcp-options", "list", "--vpc", "vpc-a"); !strings.Contains(out, "dopt-a") {
		t.Errorf("list: %s", out)
	}
	if out := mustCLI(t, url, "dhcp-options", "show", "--vpc", "vpc-a", "dopt-a", "-o", "json"); !strings.Contains(out, `"dns_servers": [`) {
		t.Errorf("show -o json: %s", out)
	}
	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"dhcp-options", "create", "--vpc", "vpc-a", "dopt-b"}, 1, "error: vpc: VPC \"vpc-a\" already has a DHCP options set: \"dopt-a\" (update or delete it)\n"},
		{[]string{"dhcp-options", "update", "--vpc", "vpc-a", "dopt-a", "--dns", "1.1.1.1,2.2.2.2,3.3.3.3,4.4.4.4,5.5.5.5"}, 1, "error: dns_servers: 5 servers: at most 4\n"},
		{[]string{"dhcp-options", "update", "--vpc", "vpc-a", "dopt-a", "--routes", "10.0.0.0/8"}, 2, "error: --routes: \"10.0.0.0/8\" is not CIDR=NEXTHOP\n"},
		{[]string{"dhcp-options", "create", "dopt-b"}, 2, "error: --vpc is required\n"},
	} {
		r := runCLI(t, url, tc.args...)
		if r.code != tc.code || !strings.HasPrefix(r.stderr, tc.err) {
			t.Errorf("vpcflow %s: exit %d, stderr %q; want %d, %q", strings.Join(tc.args, " "), r.code, r.stderr, tc.code, tc.err)
		}
	}
	expectOutput(t, mustCLI(t, url, "dhcp-options", "delete", "--vpc", "vpc-a", "dopt-a"), "deleted DHCP options set dopt-a from VPC vpc-a\n")
}
