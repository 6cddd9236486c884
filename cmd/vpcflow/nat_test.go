package main

import (
	"strings"
	"testing"
)

// TestNATCLI drives `vpcflow uplink|nat|eip …` against the real API and
// controller.
func TestNATCLI(t *testing.T) {
	url := newAPI(t)
	mustCLI(t, url, "vpc", "create", "vpc-a")
	mustCLI(t, url, "vswitch", "create", "--vpc", "vpc-a", "vsw-a", "--cidr", "10.10.10.0/24")
	mustCLI(t, url, "host", "add", "--vpc", "vpc-a", "test1", "--vswitch", "vsw-a", "--ip", "10.10.10.11", "--mac", "52:58:00:98:c0:81", "--bridge", "br-test", "--interface", "vnet1")
	mustCLI(t, url, "host", "add", "--vpc", "vpc-a", "test2", "--vswitch", "vsw-a", "--ip", "10.10.10.12", "--mac", "52:58:00:98:c0:92", "--bridge", "br-test", "--interface", "vnet3")

	expectOutput(t, mustCLI(t, url, "uplink", "add", "up1", "--bridge", "br-test", "--interface", "eth-up", "--cidr", "203.0.113.0/24", "--gateway", "203.0.113.1", "--mac", "02:76:70:00:00:01"),
		"NAME  ID  ATTACHED        CIDR            GATEWAY      MAC                ROUTER_MAC\n"+
			"up1   1   br-test/eth-up  203.0.113.0/24  203.0.113.1  02:76:70:00:00:01  -\n")
	expectOutput(t, mustCLI(t, url, "nat", "gateway", "create", "--vpc", "vpc-a", "ngw", "--uplink", "up1", "--ips", "203.0.113.11, 203.0.113.10"),
		"NAME  ID  UPLINK  IPS                        CT_ZONES     ALIYUN_ID\n"+
			"ngw   1   up1     203.0.113.10,203.0.113.11  49152,49153  ngw-vf00000000000000001\n")
	expectOutput(t, mustCLI(t, url, "nat", "snat", "add", "--vpc", "vpc-a", "--vswitch", "vsw-a", "--snat-ips", "203.0.113.10"),
		"NAME                ID  SCOPE          SNAT_IPS      ALIYUN_ID\n"+
			"snat-vswitch-vsw-a  1   vswitch vsw-a  203.0.113.10  snat-vf00000000000000001\n")
	expectOutput(t, mustCLI(t, url, "nat", "dnat", "add", "--vpc", "vpc-a", "--external-ip", "203.0.113.11", "--protocol", "tcp", "--external-port", "8080", "--internal-ip", "10.10.10.11", "--internal-port", "80"),
		"NAME                        ID  PROTOCOL  EXTERNAL           INTERNAL        ALIYUN_ID\n"+
			"dnat-tcp-203.0.113.11-8080  1   tcp       203.0.113.11:8080  10.10.10.11:80  fwd-vf00000000000000001\n")
	expectOutput(t, mustCLI(t, url, "eip", "create", "--vpc", "vpc-a", "eip1", "--ip", "203.0.113.20", "--uplink", "up1", "--host", "test2"),
		"NAME  ID  IP            UPLINK  HOST   CT_ZONES     ALIYUN_ID\n"+
			"eip1  1   203.0.113.20  up1     test2  49154,49155  eip-vf00000000000000001\n")
	out := mustCLI(t, url, "uplink", "show", "up1")
	if !strings.Contains(out, "203.0.113.20  vpc-a  EIP eip1") || !strings.Contains(out, "203.0.113.10  vpc-a  NAT gateway ngw") {
		t.Errorf("uplink show:\n%s", out)
	}
	out = mustCLI(t, url, "nat", "gateway", "show", "--vpc", "vpc-a", "ngw")
	if !strings.Contains(out, "snat-vswitch-vsw-a") || !strings.Contains(out, "dnat-tcp-203.0.113.11-8080") {
		t.Errorf("nat gateway show:\n%s", out)
	}
	if out := mustCLI(t, url, "eip", "unbind", "--vpc", "vpc-a", "eip1"); !strings.Contains(out, "eip1  1   203.0.113.20  up1     -") {
		t.Errorf("eip unbind:\n%s", out)
	}
	mustCLI(t, url, "eip", "bind", "--vpc", "vpc-a", "eip1", "--host", "test2")
	for _, c := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"nat", "dnat", "add", "--vpc", "vpc-a", "--external-ip", "203.0.113.11", "--protocol", "tcp", "--external-port", "8080", "--internal-ip", "10.10.10.13", "--internal-port", "80"}, 1, "error: external_port:"},
		{[]string{"nat", "dnat", "add", "--vpc", "vpc-a", "--external-ip", "203.0.113.10", "--protocol", "any", "--internal-ip", "10.10.10.12"}, 1, "error: internal_ip:"},
		{[]string{"nat", "snat", "add", "--vpc", "vpc-a", "--host", "test1", "--snat-ips", "203.0.113.10,203.0.113.12"}, 1, "error: snat_ips"},
		{[]string{"nat", "snat", "add", "--vpc", "vpc-a", "--host", "test1"}, 2, "--snat-ips is required"},
		{[]string{"eip", "create", "--vpc", "vpc-a", "eip2", "--ip", "203.0.113.10", "--uplink", "up1"}, 1, "error: ip: 203.0.113.10 is already an address of NAT gateway"},
		{[]string{"uplink", "delete", "up1"}, 1, "use --cascade"},
	} {
		r := runCLI(t, url, c.args...)
		if r.code != c.code || !strings.Contains(r.stderr, c.err) {
			t.Errorf("vpcflow %s: exit %d, stderr %q; want %d and %q", strings.Join(c.args, " "), r.code, r.stderr, c.code, c.err)
		}
	}
	mustCLI(t, url, "nat", "dnat", "delete", "--vpc", "vpc-a", "dnat-tcp-203.0.113.11-8080")
	mustCLI(t, url, "uplink", "delete", "up1", "--cascade")
	if out := mustCLI(t, url, "eip", "list", "--vpc", "vpc-a"); strings.Contains(out, "eip1") {
		t.Errorf("the cascade left the EIP:\n%s", out)
	}
}
