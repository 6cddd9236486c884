package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/vpcflow/vpcflow/api"
)

// TestSecurityGroupCLI drives `vpcflow sg …` against the real API and
// controller.
func TestSecurityGroupCLI(t *testing.T) {
	url := newAPI(t)
	mustCLI(t, url, "vpc", "create", "vpc-a")
	mustCLI(t, url, "vswitch", "create", "--vpc", "vpc-a", "vsw-a", "--cidr", "10.10.10.0/24")
	mustCLI(t, url, "host", "add", "--vpc", "vpc-a", "test1", "--vswitch", "vsw-a", "--ip", "10.10.10.11", "--bridge", "br-test", "--interface", "vnet1")

	expectOutput(t, mustCLI(t, url, "sg", "create", "--vpc", "vpc-a", "web", "--description", "front ends"),
		"NAME  ID  INDEX  DESCRIPTION\nweb   1   0      front ends\n")
	mustCLI(t, url, "sg", "create", "--vpc", "vpc-a", "db")
	expectOutput(t, mustCLI(t, url, "sg", "rule", "add", "--vpc", "vpc-a", "--group", "web", "--direction", "ingress",
		"--protocol", "tcp", "--port-range", "80/80", "--cidr", "0.0.0.0/0"),
		"ID  DIRECTION  PRIORITY  POLICY  PROTOCOL  PORTS  PEER       HITS (PACKETS/BYTES)  DESCRIPTION\n"+
			"1   ingress    1         accept  tcp       80/80  0.0.0.0/0  -                     -\n")
	mustCLI(t, url, "sg", "rule", "add", "--vpc", "vpc-a", "--group", "db", "--direction", "ingress", "--priority", "5",
		"--protocol", "tcp", "--port-range", "5432/5432", "--peer-group", "web")
	expectOutput(t, mustCLI(t, url, "sg", "rule", "change", "--vpc", "vpc-a", "--group", "web", "1", "--policy", "drop"),
		"ID  DIRECTION  PRIORITY  POLICY  PROTOCOL  PORTS  PEER       HITS (PACKETS/BYTES)  DESCRIPTION\n"+
			"1   ingress    1         drop    tcp       80/80  0.0.0.0/0  -                     -\n")
	expectOutput(t, mustCLI(t, url, "sg", "rule", "list", "--vpc", "vpc-a", "--group", "db"),
		"ID  DIRECTION  PRIORITY  POLICY  PROTOCOL  PORTS      PEER       HITS (PACKETS/BYTES)  DESCRIPTION\n"+
			"2   ingress    5         accept  tcp       5432/5432  group web  0/0                   -\n")
	expectOutput(t, mustCLI(t, url, "sg", "assign", "--vpc", "vpc-a", "test1", "web", "db"),
		"HOST   GROUPS  CT_ZONE\ntest1  web,db  1\n")
	out := mustCLI(t, url, "sg", "show", "--vpc", "vpc-a", "web")
	if !strings.Contains(out, "test1 (zone 1)") || !strings.Contains(out, "80/80") {
		t.Errorf("sg show:\n%s", out)
	}

	// Refusals name the field; the exit code is 1 (API) or 2 (usage).
	for _, c := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"sg", "rule", "add", "--vpc", "vpc-a", "--group", "web", "--direction", "ingress", "--protocol", "tcp", "--cidr", "0.0.0.0/0"}, 1, "error: port_range: required"},
		{[]string{"sg", "rule", "add", "--vpc", "vpc-a", "--group", "web", "--direction", "ingress", "--protocol", "tcp", "--port-range", "1/2", "--cidr", "1.2.3.0/24", "--priority", "101"}, 1, "error: priority:"},
		{[]string{"sg", "rule", "add", "--vpc", "vpc-a", "--group", "web", "--protocol", "tcp"}, 2, "--direction is required"},
		{[]string{"sg", "rule", "change", "--vpc", "vpc-a", "--group", "web", "x"}, 2, "rule id \"x\""},
		{[]string{"sg", "assign", "--vpc", "vpc-a", "test1", "nope"}, 1, "error: security_groups: security group \"nope\""},
		{[]string{"sg", "delete", "--vpc", "vpc-a", "web", "--cascade"}, 1, "member hosts (test1)"},
		{[]string{"sg", "delete", "--vpc", "vpc-a", "db"}, 1, "use --cascade"},
	} {
		r := runCLI(t, url, c.args...)
		if r.code != c.code || !strings.Contains(r.stderr, c.err) {
			t.Errorf("vpcflow %s: exit %d, stderr %q; want %d and %q", strings.Join(c.args, " "), r.code, r.stderr, c.code, c.err)
		}
	}

	var rules []api.SecurityGroupRule
	if err := json.Unmarshal([]byte(mustCLI(t, url, "sg", "rule", "list", "--vpc", "vpc-a", "--group", "web", "-o", "json")), &rules); err != nil || len(rules) != 1 || rules[0].Hits == nil {
		t.Fatalf("rule list -o json: %+v %v", rules, err)
	}
	expectOutput(t, mustCLI(t, url, "sg", "assign", "--vpc", "vpc-a", "test1"), "HOST   GROUPS  CT_ZONE\ntest1  -       -\n")
	expectOutput(t, mustCLI(t, url, "sg", "rule", "delete", "--vpc", "vpc-a", "--group", "web", "1"), "deleted rule 1 of security group web\n")
	expectOutput(t, mustCLI(t, url, "sg", "delete", "--vpc", "vpc-a", "web", "--cascade"), "deleted security group web from VPC vpc-a, with its rules\n")
	expectOutput(t, mustCLI(t, url, "sg", "list", "--vpc", "vpc-a"), "NAME  ID  INDEX  DESCRIPTION\ndb    2   1      -\n")

	// Every command has its help.
	for _, cmd := range [][]string{{"sg", "create"}, {"sg", "list"}, {"sg", "show"}, {"sg", "delete"}, {"sg", "assign"},
		{"sg", "rule", "add"}, {"sg", "rule", "list"}, {"sg", "rule", "change"}, {"sg", "rule", "delete"}} {
		r := runCLI(t, url, append(cmd, "--help")...)
		name := strings.Join(cmd, " ")
		if r.code != 0 || !strings.HasPrefix(r.stdout, "usage: vpcflow "+name) || !strings.Contains(r.stdout, "\nExample:\n  vpcflow "+name) {
			t.Errorf("vpcflow %s --help: %d\n%s%s", name, r.code, r.stdout, r.stderr)
		}
	}
	for _, g := range [][]string{{"sg"}, {"sg", "rule"}} {
		if r := runCLI(t, url, append(g, "--help")...); r.code != 0 || !strings.HasPrefix(r.stdout, "usage: vpcflow "+strings.Join(g, " ")+" COMMAND") {
			t.Errorf("vpcflow %v --help: %d %s", g, r.code, r.stdout)
		}
	}
}
