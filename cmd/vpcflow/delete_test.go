package main

import (
	"strings"
	"testing"
)

func TestCascadeCLI(t *testing.T) {
	url := newAPI(t)
	mustCLI(t, url, "vpc", "create", "vpc-a", "--cidr", "10.0.0.0/8")
	mustCLI(t, url, "vswitch", "create", "--vpc", "vpc-a", "vsw-a", "--cidr", "10.10.10.0/24", "--gateway", "10.10.10.1")
	mustCLI(t, url, "vswitch", "create", "--vpc", "vpc-a", "vsw-b", "--cidr", "10.20.0.0/24")
	mustCLI(t, url, "host", "add", "test1", "--vpc", "vpc-a", "--vswitch", "vsw-a", "--ip", "10.10.10.11", "--bridge", "br-test", "--interface", "vnet1")
	mustCLI(t, url, "host", "add", "test2", "--vpc", "vpc-a", "--vswitch", "vsw-a", "--ip", "10.10.10.12", "--mac", "52:58:00:98:c0:92", "--dpid", "1", "--ofport", "3")
	mustCLI(t, url, "host", "add", "test3", "--vpc", "vpc-a", "--vswitch", "vsw-b", "--ip", "10.20.0.3", "--mac", "02:00:00:00:00:03", "--dpid", "1", "--ofport", "7")
	mustCLI(t, url, "subnet", "add", "172.18.1.0/24", "--vpc", "vpc-a", "--host", "test1")
	mustCLI(t, url, "subnet", "add", "172.18.3.0/24", "--vpc", "vpc-a", "--host", "test2")
	mustCLI(t, url, "subnet", "add", "172.18.7.0/24", "--vpc", "vpc-a", "--host", "test3")
	names := func(kind string) string {
		t.Helper()
		var out []string
		for _, line := range strings.Split(strings.TrimSpace(mustCLI(t, url, kind, "list", "--vpc", "vpc-a")), "\n")[1:] {
			out = append(out, strings.Fields(line)[0])
		}
		return strings.Join(out, ",")
	}

	// Refused without --cascade, with the advice in CLI terms; --cascade=false
	// is the same.
	r := runCLI(t, url, "host", "delete", "--vpc", "vpc-a", "test1", "--cascade=false")
	if r.code != 1 || !strings.HasSuffix(r.stderr, "delete them first (use --cascade to delete them too)\n") {
		t.Fatalf("host delete without cascade: %d %q", r.code, r.stderr)
	}

	expectOutput(t, mustCLI(t, url, "host", "delete", "--vpc", "vpc-a", "test1", "--cascade"),
		"deleted host test1 from VPC vpc-a, with its subnets\n")
	if got := names("host") + " / " + names("subnet"); got != "test2,test3 / 172.18.3.0-24,172.18.7.0-24" {
		t.Fatalf("after host --cascade: %s", got)
	}
	expectOutput(t, mustCLI(t, url, "vswitch", "delete", "--cascade", "--vpc", "vpc-a", "vsw-a"),
		"deleted vSwitch vsw-a from VPC vpc-a, with its hosts and their subnets\n")
	if got := names("vswitch") + " / " + names("host") + " / " + names("subnet"); got != "vsw-b / test3 / 172.18.7.0-24" {
		t.Fatalf("after vswitch --cascade: %s", got)
	}
	// -o json prints nothing on success, as for every delete.
	expectOutput(t, mustCLI(t, url, "vpc", "delete", "vpc-a", "--cascade", "-o", "json"), "")
	expectOutput(t, mustCLI(t, url, "vpc", "list"), "NAME  ID  CIDR  DEC_TTL\n")

	// An empty VPC with --cascade, and a missing one.
	mustCLI(t, url, "vpc", "create", "vpc-b")
	expectOutput(t, mustCLI(t, url, "vpc", "delete", "--cascade", "vpc-b"), "deleted VPC vpc-b and all its vSwitches, hosts and subnets\n")
	r = runCLI(t, url, "vpc", "delete", "--cascade", "vpc-b")
	if r.code != 1 || r.stderr != "error: name: VPC \"vpc-b\" does not exist\n" {
		t.Fatalf("cascade of a missing VPC: %d %q", r.code, r.stderr)
	}
}
