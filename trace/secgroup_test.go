package trace_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/vpcflow/vpcflow/topology"
	"github.com/vpcflow/vpcflow/trace"
)

// TestTraceSecurityGroups: traces through the security group stages tell
// which rule decided (conjunctions resolved as OVS does), and the drops.
func TestTraceSecurityGroups(t *testing.T) {
	r := newRig(t)
	pfx := netip.MustParsePrefix
	r.apply(&topology.SecurityGroup{VPC: "vpc-seed", Name: "web"})
	r.apply(&topology.SecurityGroupRule{VPC: "vpc-seed", Group: "web", Direction: "ingress", Priority: 10, Protocol: "tcp", PortRange: "80/80", CIDR: pfx("10.10.10.0/24")},
		&topology.SecurityGroupRule{VPC: "vpc-seed", Group: "web", Direction: "ingress", Priority: 10, Protocol: "tcp", PortRange: "8000/8080", CIDR: pfx("0.0.0.0/0")},
		&topology.SecurityGroupRule{VPC: "vpc-seed", Group: "web", Direction: "egress", Policy: "drop", Priority: 1, Protocol: "tcp", PortRange: "22/22", CIDR: pfx("10.10.10.11/32")})
	if _, err := r.c.Apply(r.ctx, []topology.Op{topology.Update(&topology.Host{VPC: "vpc-seed", Name: "test2", SecurityGroups: []string{"web"}})}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		req     trace.Request
		verdict string
		reason  string
		says    []string
	}{
		{"allowed by a rule", trace.Request{VPC: "vpc-seed", From: "test1", Dst: "10.10.10.12", Proto: "tcp", DstPort: 80, Installed: true},
			trace.Delivered, "", []string{"SGIngressRules", "security group rule vpc-seed/web #1 (ingress accept tcp 80/80, peer 10.10.10.0/24, priority 10)", "SGIngressVerdict"}},
		{"allowed by a port range", trace.Request{VPC: "vpc-seed", From: "test1", Dst: "10.10.10.12", Proto: "tcp", DstPort: 8042},
			trace.Delivered, "", []string{"security group rule vpc-seed/web #2"}},
		{"no rule: ingress denied", trace.Request{VPC: "vpc-seed", From: "test1", Dst: "10.10.10.12", Proto: "tcp", DstPort: 81},
			trace.Dropped, "security_group", []string{"dropped: security_group at SGIngressDrop (table 54)", "host vpc-seed/test2"}},
		{"egress rule", trace.Request{VPC: "vpc-seed", From: "test2", Dst: "10.10.10.11", Proto: "tcp", DstPort: 22},
			trace.Dropped, "security_group", []string{"security group rule vpc-seed/web #3", "SGEgressDrop (table 25)"}},
		{"egress default", trace.Request{VPC: "vpc-seed", From: "test2", Dst: "10.10.10.11", Proto: "tcp", DstPort: 23},
			trace.Delivered, "", []string{"SGEgressVerdict"}},
		{"unfiltered host to unfiltered", trace.Request{VPC: "vpc-b", From: "test1", Dst: "10.10.10.11", Proto: "arp"},
			trace.Dropped, "arp_not_answered", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := r.trace(c.req)
			text := res.Text()
			if res.Verdict != c.verdict || res.Reason != c.reason {
				t.Fatalf("verdict %q reason %q, want %q %q:\n%s", res.Verdict, res.Reason, c.verdict, c.reason, text)
			}
			for _, s := range c.says {
				if !strings.Contains(text, s) {
					t.Errorf("the trace does not say %q:\n%s", s, text)
				}
			}
			if c.req.Installed && (res.Installed == nil || len(res.Drift) != 0 || res.Installed.Verdict != res.Verdict) {
				t.Errorf("on the installed flows: %+v, drift %+v", res.Installed, res.Drift)
			}
		})
	}
}

// TestTraceSecurityGroupText shows a trace through both stages (go test
// -run TestTraceSecurityGroupText -v).
func TestTraceSecurityGroupText(t *testing.T) {
	r := newRig(t)
	r.apply(&topology.SecurityGroup{VPC: "vpc-seed", Name: "web"})
	r.apply(&topology.SecurityGroupRule{VPC: "vpc-seed", Group: "web", Direction: "ingress", Priority: 10, Protocol: "tcp", PortRange: "80/80", CIDR: netip.MustParsePrefix("10.10.10.0/24")})
	if _, err := r.c.Apply(r.ctx, []topology.Op{topology.Update(&topology.Host{VPC: "vpc-seed", Name: "test2", SecurityGroups: []string{"web"}})}); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", r.trace(trace.Request{VPC: "vpc-seed", From: "test1", Dst: "10.10.10.12", Proto: "tcp", DstPort: 80}).Text())
}
