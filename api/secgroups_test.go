package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// dumpGroups is every security group, rule and membership, to check that
// a refused request changed nothing.
func dumpGroups(st *topology.Store) string {
	var all []any
	st.Read(func(st *topology.State) {
		for _, v := range st.VPCs() {
			all = append(all, st.Hosts(v.Name))
			for _, g := range st.SecurityGroups(v.Name) {
				all = append(all, g, st.RulesOf(v.Name, g.Name))
			}
		}
	})
	out, _ := json.Marshal(all)
	return string(out)
}

const rules = "/v1/vpcs/vpc-a/security-groups/web/rules"

// TestSecurityGroupRoutes: groups, rules and membership over REST; every
// bad request is a 4xx naming the field and changes nothing.
func TestSecurityGroupRoutes(t *testing.T) {
	e := newEnv(t, Options{})
	e.seed()
	r := e.must(201, "POST", "/v1/vpcs/vpc-a/security-groups", `{"name":"web","description":"front ends"}`)
	if g := decode[topology.SecurityGroup](t, r); g.Name != "web" || g.VPC != "vpc-a" || g.ID == 0 || g.Description != "front ends" {
		t.Fatalf("group %s", r.body)
	}
	if loc := r.header.Get("Location"); loc != "/v1/vpcs/vpc-a/security-groups/web" {
		t.Errorf("Location %q", loc)
	}
	e.must(201, "POST", "/v1/vpcs/vpc-a/security-groups", `{"name":"db"}`)
	if gs := decode[[]topology.SecurityGroup](t, e.must(200, "GET", "/v1/vpcs/vpc-a/security-groups", "")); len(gs) != 2 || gs[0].Index == gs[1].Index {
		t.Fatalf("groups %+v", gs)
	}
	e.must(409, "POST", "/v1/vpcs/vpc-a/security-groups", `{"name":"web"}`)
	e.must(404, "GET", "/v1/vpcs/vpc-a/security-groups/nope", "")
	e.must(404, "GET", "/v1/vpcs/nope/security-groups", "")
	if g := decode[topology.SecurityGroup](t, e.must(200, "PUT", "/v1/vpcs/vpc-a/security-groups/web", `{"description":"new"}`)); g.Description != "new" {
		t.Fatalf("description not changed: %+v", g)
	}

	// A rule, with defaults (priority 1, policy accept) and a bare address.
	r = e.must(201, "POST", rules, `{"direction":"ingress","protocol":"tcp","port_range":"22/22","cidr":"10.10.10.11"}`)
	ssh := decode[topology.SecurityGroupRule](t, r)
	if ssh.Priority != 1 || ssh.Policy != "accept" || ssh.CIDR.String() != "10.10.10.11/32" || ssh.Group != "web" {
		t.Fatalf("rule %s", r.body)
	}
	if loc := r.header.Get("Location"); loc != rules+"/"+itoa(ssh.ID) {
		t.Errorf("Location %q", loc)
	}

	before := dumpGroups(e.store)
	bad := []struct {
		body, field string
		status      int
	}{
		{`{"direction":"up","protocol":"tcp","port_range":"22/22","cidr":"10.0.0.0/8"}`, "direction", 400},
		{`{"direction":"ingress","priority":0,"protocol":"tcp","port_range":"22/22","cidr":"10.0.0.0/8"}`, "priority", 400},
		{`{"direction":"ingress","priority":101,"protocol":"tcp","port_range":"22/22","cidr":"10.0.0.0/8"}`, "priority", 400},
		{`{"direction":"ingress","priority":"high","protocol":"tcp","port_range":"22/22","cidr":"10.0.0.0/8"}`, "priority", 400},
		{`{"direction":"ingress","protocol":"tcp","port_range":"-1/-1","cidr":"10.0.0.0/8"}`, "port_range", 400},
		{`{"direction":"ingress","protocol":"icmp","port_range":"1/1","cidr":"10.0.0.0/8"}`, "port_range", 400},
		{`{"direction":"ingress","protocol":"sctp","port_range":"1/1","cidr":"10.0.0.0/8"}`, "protocol", 400},
		{`{"direction":"ingress","protocol":"tcp","port_range":"22/22","cidr":"10.0.0.0/33"}`, "cidr", 400},
		{`{"direction":"ingress","protocol":"tcp","port_range":"22/22"}`, "cidr", 400},
		{`{"direction":"ingress","protocol":"tcp","port_range":"22/22","cidr":"10.0.0.0/8","security_group":"db"}`, "security_group", 400},
		{`{"direction":"ingress","protocol":"tcp","port_range":"22/22","security_group":"nope"}`, "security_group", 404},
		{`{"direction":"ingress","protocol":"tcp","port_range":"22/22","cidr":"10.10.10.11"}`, "", 409},
		{`{"direction":"ingress","protocol":"tcp","port_range":"22/22","cidr":"10.0.0.0/8","port":22}`, "port", 400},
		{`[{"direction":"ingress","protocol":"tcp","port_range":"23/23","cidr":"10.0.0.0/8"},{"direction":"ingress","protocol":"udp","port_range":"0/1","cidr":"10.0.0.0/8"}]`, "[1].port_range", 400},
	}
	for _, b := range bad {
		r := e.do("POST", rules, b.body)
		if r.status != b.status || r.err().Field != b.field {
			t.Errorf("POST %s: %d %s, want %d on field %q", b.body, r.status, r.body, b.status, b.field)
		}
	}
	e.must(404, "POST", "/v1/vpcs/vpc-a/security-groups/nope/rules", `{"direction":"ingress","protocol":"all","cidr":"0.0.0.0/0"}`)
	if r := e.do("GET", "/v1/vpcs/vpc-a/security-groups/nope/rules", ""); r.status != 404 || r.err().Field != "group" {
		t.Errorf("rules of a missing group: %d %s", r.status, r.body)
	}
	if after := dumpGroups(e.store); after != before {
		t.Fatalf("refused rules changed the store:\n%s\n%s", before, after)
	}

	// A batch, then a change, then a delete.
	r = e.must(201, "POST", rules, `[{"direction":"ingress","protocol":"icmp","cidr":"0.0.0.0/0","priority":50},{"direction":"egress","policy":"drop","protocol":"udp","port_range":"53/53","security_group":"db"}]`)
	if rs := decode[[]topology.SecurityGroupRule](t, r); len(rs) != 2 || rs[0].PortRange != "-1/-1" || rs[1].SecurityGroup != "db" {
		t.Fatalf("batch %s", r.body)
	}
	r = e.must(200, "PUT", rules+"/"+itoa(ssh.ID), `{"policy":"drop"}`)
	if x := decode[topology.SecurityGroupRule](t, r); x.Policy != "drop" || x.PortRange != "22/22" || x.Priority != 1 || x.ID != ssh.ID {
		t.Fatalf("changed rule %s", r.body)
	}
	if r := e.do("PUT", rules+"/"+itoa(ssh.ID), `{"direction":"egress"}`); r.status != 400 || r.err().Field != "direction" {
		t.Errorf("direction change: %d %s", r.status, r.body)
	}
	if r := e.do("PUT", rules+"/"+itoa(ssh.ID), `{"priority":0}`); r.status != 400 || r.err().Field != "priority" {
		t.Errorf("priority 0: %d %s", r.status, r.body)
	}
	if r := e.do("GET", rules+"/999", ""); r.status != 404 || r.err().Field != "id" {
		t.Errorf("missing rule: %d %s", r.status, r.body)
	}
	if r := e.do("DELETE", rules+"/x", ""); r.status != 400 || r.err().Field != "id" {
		t.Errorf("bad id: %d %s", r.status, r.body)
	}
	if rs := decode[[]SecurityGroupRule](t, e.must(200, "GET", rules, "")); len(rs) != 3 || rs[0].Hits == nil || rs[0].Hits.Packets != 0 {
		t.Fatalf("list %+v", rs)
	}
	e.must(204, "DELETE", rules+"/"+itoa(ssh.ID), "")
	e.must(404, "GET", rules+"/"+itoa(ssh.ID), "")

	// Membership: PUT a host's security_groups.
	r = e.must(200, "PUT", "/v1/vpcs/vpc-a/hosts/test1", `{"security_groups":["web","db"]}`)
	h := decode[topology.Host](t, r)
	if len(h.SecurityGroups) != 2 || h.CTZone == 0 || h.MAC.String() != "52:58:00:98:c0:81" || h.Bridge != "br-test" {
		t.Fatalf("host after joining %s", r.body)
	}
	before = dumpGroups(e.store)
	for body, field := range map[string]string{
		`{"security_groups":["web","nope"]}`:            "security_groups",
		`{"security_groups":["web","web"]}`:             "security_groups[1]",
		`{"security_groups":["a","b","c","d","e","f"]}`: "security_groups",
		`{"security_groups":"web"}`:                     "security_groups",
		`{"ct_zone":7}`:                                 "ct_zone",
	} {
		if r := e.do("PUT", "/v1/vpcs/vpc-a/hosts/test1", body); r.status/100 != 4 || r.err().Field != field {
			t.Errorf("PUT %s: %d %s, want 4xx on %q", body, r.status, r.body, field)
		}
	}
	// Left out, the groups stay.
	if h := decode[topology.Host](t, e.must(200, "PUT", "/v1/vpcs/vpc-a/hosts/test1", `{"mac":"52:58:00:98:c0:81"}`)); len(h.SecurityGroups) != 2 {
		t.Fatalf("groups lost by a PUT without them: %+v", h)
	}
	if after := dumpGroups(e.store); after != before {
		t.Fatalf("refused membership changed the store")
	}
	// A group with members cannot go, not even with cascade.
	if r := e.do("DELETE", "/v1/vpcs/vpc-a/security-groups/web?cascade=true", ""); r.status != 409 || !strings.Contains(r.err().Error, "member hosts (test1)") {
		t.Errorf("delete of a group with members: %d %s", r.status, r.body)
	}
	if h := decode[topology.Host](t, e.must(200, "PUT", "/v1/vpcs/vpc-a/hosts/test1", `{"security_groups":[]}`)); h.SecurityGroups != nil || h.CTZone != 0 {
		t.Fatalf("host after leaving: %+v", h)
	}
	if r := e.do("DELETE", "/v1/vpcs/vpc-a/security-groups/db", ""); r.status != 409 || !strings.Contains(r.err().Error, "security group rule") {
		t.Errorf("delete of a peer group: %d %s", r.status, r.body)
	}
	e.must(204, "DELETE", "/v1/vpcs/vpc-a/security-groups/db?cascade=true", "")
	if rs := decode[[]SecurityGroupRule](t, e.must(200, "GET", rules, "")); len(rs) != 1 {
		t.Fatalf("cascade left %d rules in web, want the icmp one", len(rs))
	}
}

func itoa(id uint32) string { return strconv.FormatUint(uint64(id), 10) }

func uintString(v uint32) string { return itoa(v) }

// TestSecurityGroupFlowsAndHits: a host joining a group gets its stages'
// flows on the switch; a rule's hits are its conj_id flows' counters.
func TestSecurityGroupFlowsAndHits(t *testing.T) {
	e := newSwitchEnv(t, Options{})
	e.seed()
	e.must(201, "POST", "/v1/vpcs/vpc-a/security-groups", `{"name":"web"}`)
	rule := decode[topology.SecurityGroupRule](t, e.must(201, "POST", rules, `{"direction":"ingress","protocol":"tcp","port_range":"80/80","cidr":"0.0.0.0/0"}`))
	if strings.Contains(e.dp.Text(), "conj_id=") {
		t.Fatalf("rules on the switch before any member:\n%s", e.dp.Text())
	}
	h := decode[topology.Host](t, e.must(200, "PUT", "/v1/vpcs/vpc-a/hosts/test2", `{"security_groups":["web"]}`))
	text := e.dp.Text()
	for _, want := range []string{
		"ct(table=51,zone=" + uintString(uint32(h.CTZone)) + ")",
		"conj_id=" + uintString(rule.ID) + ",ip",
		"conjunction(" + uintString(rule.ID) + ",2/2)",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("switch lacks %q after test2 joined web:\n%s", want, text)
		}
	}
	var conj openflow.Flow
	for _, f := range e.dp.Flows() {
		if f.Cookie == pipeline.RuleCookie(rule.ID) {
			conj = f
		}
	}
	if !e.dp.Count(conj, 42) {
		t.Fatalf("no conj_id flow for rule %d", rule.ID)
	}
	// The counters are asked for by the rules' cookies: the switch is not
	// asked for every flow (at 100,000 hosts, 1.3 million).
	whole0 := e.dp.WholeDumps()
	rs := decode[[]SecurityGroupRule](t, e.must(200, "GET", rules, ""))
	if len(rs) != 1 || rs[0].Hits == nil || rs[0].Hits.Packets != 42 {
		t.Fatalf("hits %s", e.do("GET", rules, "").body)
	}
	one := decode[SecurityGroupRule](t, e.must(200, "GET", rules+"/"+uintString(rule.ID), ""))
	if one.Hits == nil || one.Hits.Packets != 42 {
		t.Fatalf("hits of one rule %+v", one)
	}
	if whole := e.dp.WholeDumps(); whole != whole0 {
		t.Errorf("reading rule hits dumped every flow of the switch %d times", whole-whole0)
	}
	// Leaving takes the flows away.
	e.must(200, "PUT", "/v1/vpcs/vpc-a/hosts/test2", `{"security_groups":[]}`)
	if text := e.dp.Text(); strings.Contains(text, "conj_id=") || strings.Contains(text, "ct(") {
		t.Fatalf("flows left after the last member left:\n%s", text)
	}
}

// TestSecurityGroupClient drives the Go client.
func TestSecurityGroupClient(t *testing.T) {
	e := newEnv(t, Options{})
	e.seed()
	c, err := NewClient(e.srv.URL, http.DefaultClient)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.CreateSecurityGroup(ctx, "vpc-a", SecurityGroupRequest{Name: "web"}); err != nil {
		t.Fatal(err)
	}
	r, err := c.CreateSecurityGroupRule(ctx, "vpc-a", "web", SecurityGroupRuleRequest{Direction: "ingress", Protocol: "tcp", PortRange: "80/80", CIDR: "0.0.0.0/0"})
	if err != nil || r.Priority != 1 {
		t.Fatalf("%+v %v", r, err)
	}
	rs, err := c.CreateSecurityGroupRules(ctx, "vpc-a", "web", []SecurityGroupRuleRequest{{Direction: "egress", Protocol: "all", CIDR: "192.168.0.0/16", Policy: "drop", Priority: 2}})
	if err != nil || len(rs) != 1 {
		t.Fatalf("%+v %v", rs, err)
	}
	if _, err := c.UpdateSecurityGroupRule(ctx, "vpc-a", "web", r.ID, SecurityGroupRuleRequest{Policy: "drop"}); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetSecurityGroupRule(ctx, "vpc-a", "web", r.ID)
	if err != nil || got.Policy != "drop" {
		t.Fatalf("%+v %v", got, err)
	}
	h, err := c.SetHostSecurityGroups(ctx, "vpc-a", "test1", []string{"web"})
	if err != nil || h.CTZone == 0 {
		t.Fatalf("%+v %v", h, err)
	}
	if h, err = c.SetHostSecurityGroups(ctx, "vpc-a", "test1", nil); err != nil || h.SecurityGroups != nil {
		t.Fatalf("%+v %v", h, err)
	}
	var ae *Error
	_, err = c.CreateSecurityGroupRule(ctx, "vpc-a", "web", SecurityGroupRuleRequest{Direction: "ingress", Protocol: "tcp", CIDR: "0.0.0.0/0"})
	if !errors.As(err, &ae) || ae.Field != "port_range" {
		t.Fatalf("missing port range: %v", err)
	}
	list, err := c.ListSecurityGroupRules(ctx, "vpc-a", "web")
	if err != nil || len(list) != 2 {
		t.Fatalf("%+v %v", list, err)
	}
	if err := c.DeleteSecurityGroupRule(ctx, "vpc-a", "web", r.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteSecurityGroup(ctx, "vpc-a", "web", Cascade(true)); err != nil {
		t.Fatal(err)
	}
	if gs, err := c.ListSecurityGroups(ctx, "vpc-a"); err != nil || len(gs) != 0 {
		t.Fatalf("%+v %v", gs, err)
	}
}
