package main

import (
	"encoding/json"
	"testing"

	"github.com/vpcflow/vpcflow/controller"
)

func TestDropsCLI(t *testing.T) {
	// The counters of connected switches: storeBackend's fixed report.
	url := newFixedAPI(t)
	mustCLI(t, url, "vpc", "create", "vpc-a")
	mustCLI(t, url, "vpc", "create", "vpc-b")
	expectOutput(t, mustCLI(t, url, "drops"),
		"DPID              BRIDGE   SPOOFED  NO_ROUTE  ARP_NOT_ANSWERED  UNKNOWN_SOURCE  OTHER  TOO_BIG  SECURITY_GROUP  PUNT_LIMITED  DHCP_UNREGISTERED  DHCP_FORGED_SERVER  DHCP_BAD  NAT_NO_ENTRY  NAT_INVALID  NAT_EXHAUSTED  UPLINK_UNRESOLVED\n"+
			"0000000000000001  br-test  3        1         0                 12              0      0        0               0             0                  0                   0         0             0            0              0\n"+
			"0000000000000abc  -        0        0         0                 0               2      0        0               0             0                  0                   0         0             0            0              0\n"+
			"\n"+
			"VPC    HOST   DPID              SPOOFED  NO_ROUTE  ARP_NOT_ANSWERED  UNKNOWN_SOURCE  OTHER  TOO_BIG  SECURITY_GROUP  PUNT_LIMITED  DHCP_UNREGISTERED  DHCP_FORGED_SERVER  DHCP_BAD  NAT_NO_ENTRY  NAT_INVALID  NAT_EXHAUSTED  UPLINK_UNRESOLVED\n"+
			"vpc-a  test1  0000000000000001  3        0         0                 0               0      0        0               0             0                  0                   0         0             0            0              0\n"+
			"vpc-a  test2  0000000000000001  0        0         0                 0               0      0        0               0             0                  0                   0         0             0            0              0\n"+
			"vpc-b  x      0000000000000abc  0        0         1                 0               0      0        0               0             0                  0                   0         0             0            0              0\n")
	expectOutput(t, mustCLI(t, url, "drops", "--vpc", "vpc-b"),
		"DPID              BRIDGE   SPOOFED  NO_ROUTE  ARP_NOT_ANSWERED  UNKNOWN_SOURCE  OTHER  TOO_BIG  SECURITY_GROUP  PUNT_LIMITED  DHCP_UNREGISTERED  DHCP_FORGED_SERVER  DHCP_BAD  NAT_NO_ENTRY  NAT_INVALID  NAT_EXHAUSTED  UPLINK_UNRESOLVED\n"+
			"0000000000000001  br-test  3        1         0                 12              0      0        0               0             0                  0                   0         0             0            0              0\n"+
			"0000000000000abc  -        0        0         0                 0               2      0        0               0             0                  0                   0         0             0            0              0\n"+
			"\n"+
			"VPC    HOST  DPID              SPOOFED  NO_ROUTE  ARP_NOT_ANSWERED  UNKNOWN_SOURCE  OTHER  TOO_BIG  SECURITY_GROUP  PUNT_LIMITED  DHCP_UNREGISTERED  DHCP_FORGED_SERVER  DHCP_BAD  NAT_NO_ENTRY  NAT_INVALID  NAT_EXHAUSTED  UPLINK_UNRESOLVED\n"+
			"vpc-b  x     0000000000000abc  0        0         1                 0               0      0        0               0             0                  0                   0         0             0            0              0\n")

	var rep controller.DropReport
	if err := json.Unmarshal([]byte(mustCLI(t, url, "drops", "--vpc=vpc-a", "-o", "json")), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Switches) != 2 || len(rep.Hosts) != 2 || rep.Hosts[0].Name != "test1" || rep.Hosts[0].Drops["spoofed"] != 3 || rep.Switches[0].Drops["unknown_source"] != 12 {
		t.Fatalf("drops -o json: %+v", rep)
	}

	// The real controller with no switch connected: two empty tables.
	url = newAPI(t)
	expectOutput(t, mustCLI(t, url, "drops"),
		"DPID  BRIDGE  SPOOFED  NO_ROUTE  ARP_NOT_ANSWERED  UNKNOWN_SOURCE  OTHER  TOO_BIG  SECURITY_GROUP  PUNT_LIMITED  DHCP_UNREGISTERED  DHCP_FORGED_SERVER  DHCP_BAD  NAT_NO_ENTRY  NAT_INVALID  NAT_EXHAUSTED  UPLINK_UNRESOLVED\n"+
			"\n"+
			"VPC  HOST  DPID  SPOOFED  NO_ROUTE  ARP_NOT_ANSWERED  UNKNOWN_SOURCE  OTHER  TOO_BIG  SECURITY_GROUP  PUNT_LIMITED  DHCP_UNREGISTERED  DHCP_FORGED_SERVER  DHCP_BAD  NAT_NO_ENTRY  NAT_INVALID  NAT_EXHAUSTED  UPLINK_UNRESOLVED\n")
	expectOutput(t, mustCLI(t, url, "drops", "-o", "json"), "{\n  \"switches\": [],\n  \"hosts\": []\n}\n")
}
