package topology

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

func createGroup(vpc, name string) Op { return Create(&SecurityGroup{VPC: vpc, Name: name}) }

func createRule(r SecurityGroupRule) Op { return Create(&r) }

// sshRule is an ingress accept of tcp 22 from 10.0.0.0/8 in group g.
func sshRule(g string) SecurityGroupRule {
	return SecurityGroupRule{VPC: "vpc-a", Group: g, Direction: "ingress", Policy: "accept", Priority: 1,
		Protocol: "tcp", PortRange: "22/22", CIDR: pfx("10.0.0.0/8")}
}

func setGroups(t testing.TB, s *Store, host string, groups ...string) Host {
	t.Helper()
	h := Host{VPC: "vpc-a", Name: host, SecurityGroups: append([]string{}, groups...)}
	out := mustApply(t, s, Update(&h))
	return *out[0].Obj.(*Host)
}

func wantErr(t *testing.T, err error, kind ErrorKind, field, contains string) {
	t.Helper()
	te, ok := AsError(err)
	if !ok {
		t.Fatalf("got %v, want a topology error on %q", err, field)
	}
	if te.Kind != kind || te.Field != field || !strings.Contains(te.Msg, contains) {
		t.Fatalf("got %v (kind %d field %q), want kind %d field %q containing %q", te, te.Kind, te.Field, kind, field, contains)
	}
}

// TestRuleValidation: every bad rule is refused naming the field, and
// nothing is stored.
func TestRuleValidation(t *testing.T) {
	s := seededStore(t)
	mustApply(t, s, createGroup("vpc-a", "web"), createGroup("vpc-b", "other"))
	before := dump(s)
	ok := sshRule("web")
	cases := []struct {
		name    string
		mod     func(r *SecurityGroupRule)
		kind    ErrorKind
		field   string
		message string
	}{
		{"no direction", func(r *SecurityGroupRule) { r.Direction = "" }, ErrInvalid, "direction", "required"},
		{"bad direction", func(r *SecurityGroupRule) { r.Direction = "inbound" }, ErrInvalid, "direction", "ingress or egress"},
		{"bad policy", func(r *SecurityGroupRule) { r.Policy = "allow" }, ErrInvalid, "policy", "accept or drop"},
		{"priority 0", func(r *SecurityGroupRule) { r.Priority = 0 }, ErrInvalid, "priority", "1..100"},
		{"priority 101", func(r *SecurityGroupRule) { r.Priority = 101 }, ErrInvalid, "priority", "1..100"},
		{"bad protocol", func(r *SecurityGroupRule) { r.Protocol = "gre" }, ErrInvalid, "protocol", "tcp, udp, icmp or all"},
		{"no protocol", func(r *SecurityGroupRule) { r.Protocol = "" }, ErrInvalid, "protocol", "required"},
		{"tcp without ports", func(r *SecurityGroupRule) { r.PortRange = "" }, ErrInvalid, "port_range", "required"},
		{"tcp -1/-1", func(r *SecurityGroupRule) { r.PortRange = "-1/-1" }, ErrInvalid, "port_range", "icmp and all"},
		{"tcp port 0", func(r *SecurityGroupRule) { r.PortRange = "0/22" }, ErrInvalid, "port_range", "1..65535"},
		{"tcp port 65536", func(r *SecurityGroupRule) { r.PortRange = "22/65536" }, ErrInvalid, "port_range", "1..65535"},
		{"reversed ports", func(r *SecurityGroupRule) { r.PortRange = "80/22" }, ErrInvalid, "port_range", "after the end"},
		{"not a range", func(r *SecurityGroupRule) { r.PortRange = "22" }, ErrInvalid, "port_range", "start/end"},
		{"letters", func(r *SecurityGroupRule) { r.PortRange = "a/b" }, ErrInvalid, "port_range", "numbers"},
		{"icmp with ports", func(r *SecurityGroupRule) { r.Protocol = "icmp"; r.PortRange = "1/2" }, ErrInvalid, "port_range", "-1/-1"},
		{"all with ports", func(r *SecurityGroupRule) { r.Protocol = "all"; r.PortRange = "22/22" }, ErrInvalid, "port_range", "-1/-1"},
		{"no peer", func(r *SecurityGroupRule) { r.CIDR = zeroPrefix() }, ErrInvalid, "cidr", "required"},
		{"two peers", func(r *SecurityGroupRule) { r.SecurityGroup = "web" }, ErrInvalid, "security_group", "not both"},
		{"host bits", func(r *SecurityGroupRule) { r.CIDR = pfx("10.0.0.1/8") }, ErrInvalid, "cidr", "canonical"},
		{"IPv6", func(r *SecurityGroupRule) { r.CIDR = pfx("fd00::/8") }, ErrInvalid, "cidr", "IPv4"},
		{"missing peer group", func(r *SecurityGroupRule) { r.CIDR = zeroPrefix(); r.SecurityGroup = "nope" }, ErrNotFound, "security_group", "peer security group \"nope\""},
		{"peer group of another VPC", func(r *SecurityGroupRule) { r.CIDR = zeroPrefix(); r.SecurityGroup = "other" }, ErrNotFound, "security_group", "in VPC \"vpc-a\""},
		{"missing group", func(r *SecurityGroupRule) { r.Group = "nope" }, ErrNotFound, "group", "security group \"nope\""},
		{"long description", func(r *SecurityGroupRule) { r.Description = strings.Repeat("x", 513) }, ErrInvalid, "description", "too long"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := ok
			c.mod(&r)
			_, err := s.Apply(context.Background(), []Op{createRule(r)})
			wantErr(t, err, c.kind, c.field, c.message)
			if after := dump(s); after != before {
				t.Fatalf("a refused rule changed the store")
			}
		})
	}
	// Defaults: policy accept, icmp/all port range -1/-1, case folded.
	out := mustApply(t, s, createRule(SecurityGroupRule{VPC: "vpc-a", Group: "web", Direction: "Ingress", Priority: 5, Protocol: "ICMP", CIDR: pfx("0.0.0.0/0")}))
	r := out[0].Obj.(*SecurityGroupRule)
	if r.Policy != "accept" || r.PortRange != "-1/-1" || r.Protocol != "icmp" || r.Direction != "ingress" || r.ID == 0 {
		t.Fatalf("defaults not filled in: %+v", r)
	}
	// A duplicate is a conflict; the same rule with another policy is not.
	mustApply(t, s, createRule(ok))
	_, err := s.Apply(context.Background(), []Op{createRule(ok)})
	wantErr(t, err, ErrConflict, "", "already has this rule")
	dropped := ok
	dropped.Policy = "drop"
	mustApply(t, s, createRule(dropped))
}

func zeroPrefix() (p netip.Prefix) { return }

// TestRuleLimits: 200 rules per group, 5 groups per host, 32 groups per VPC.
func TestRuleLimits(t *testing.T) {
	s := seededStore(t)
	mustApply(t, s, createGroup("vpc-a", "web"))
	var ops []Op
	for i := 0; i < MaxRulesPerGroup; i++ {
		r := sshRule("web")
		r.PortRange = fmt.Sprintf("%d/%d", 1000+i, 1000+i)
		ops = append(ops, createRule(r))
	}
	mustApply(t, s, ops...)
	_, err := s.Apply(context.Background(), []Op{createRule(sshRule("web"))})
	wantErr(t, err, ErrConflict, "group", "200 rules")

	var groups []string
	var gops []Op
	for i := 0; i < 6; i++ {
		name := fmt.Sprintf("g%d", i)
		gops = append(gops, createGroup("vpc-a", name))
		groups = append(groups, name)
	}
	mustApply(t, s, gops...)
	_, err = s.Apply(context.Background(), []Op{Update(&Host{VPC: "vpc-a", Name: "test1", SecurityGroups: groups})})
	wantErr(t, err, ErrInvalid, "security_groups", "at most 5")
	_, err = s.Apply(context.Background(), []Op{Update(&Host{VPC: "vpc-a", Name: "test1", SecurityGroups: []string{"g1", "g1"}})})
	wantErr(t, err, ErrInvalid, "security_groups[1]", "twice")
	_, err = s.Apply(context.Background(), []Op{Update(&Host{VPC: "vpc-a", Name: "test1", SecurityGroups: []string{"g1", "nope"}})})
	wantErr(t, err, ErrNotFound, "security_groups", "security group \"nope\"")

	gops = nil
	for i := 6; i < MaxGroupsPerVPC-1; i++ {
		gops = append(gops, createGroup("vpc-a", fmt.Sprintf("g%d", i)))
	}
	mustApply(t, s, gops...)
	_, err = s.Apply(context.Background(), []Op{createGroup("vpc-a", "one-too-many")})
	wantErr(t, err, ErrConflict, "vpc", "32 security groups")
	// Another VPC has its own 32.
	mustApply(t, s, createGroup("vpc-b", "web"))
	// Indexes are unique per VPC and reused once free.
	seen := map[uint8]bool{}
	s.Read(func(st *State) {
		for _, g := range st.SecurityGroups("vpc-a") {
			if seen[g.Index] {
				t.Errorf("index %d given twice", g.Index)
			}
			seen[g.Index] = true
		}
	})
	mustApply(t, s, Delete(&SecurityGroup{VPC: "vpc-a", Name: "g3"}, false))
	out := mustApply(t, s, createGroup("vpc-a", "again"))
	var g3 SecurityGroup
	s.Read(func(st *State) { g3, _ = st.SecurityGroup("vpc-a", "g4") })
	if got := out[0].Obj.(*SecurityGroup).Index; got != g3.Index-1 {
		t.Errorf("the new group got index %d, want the freed %d", got, g3.Index-1)
	}
}

// TestZonesPersist: a host gets a conntrack zone when it joins a group,
// keeps it through updates and a reopen of the store, and gives it up
// when it leaves every group.
func TestZonesPersist(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	mustApply(t, s, seedOps()...)
	mustApply(t, s, createGroup("vpc-a", "web"), createGroup("vpc-a", "db"))
	h1 := setGroups(t, s, "test1", "web")
	h2 := setGroups(t, s, "test2", "web", "db")
	if h1.CTZone == 0 || h2.CTZone == 0 || h1.CTZone == h2.CTZone {
		t.Fatalf("zones %d and %d: want two different ones", h1.CTZone, h2.CTZone)
	}
	// A PUT that does not mention the groups keeps them and the zone.
	out := mustApply(t, s, Update(&Host{VPC: "vpc-a", Name: "test1", MAC: mac("52:58:00:98:c0:99")}))
	if h := out[0].Obj.(*Host); h.CTZone != h1.CTZone || len(h.SecurityGroups) != 1 {
		t.Fatalf("after a MAC change: %+v, want zone %d and group web", h, h1.CTZone)
	}
	// A host cannot take a zone by itself.
	_, err := s.Apply(context.Background(), []Op{Update(&Host{VPC: "vpc-a", Name: "test1", CTZone: h2.CTZone})})
	if err != nil {
		t.Fatal(err)
	}
	s.Read(func(st *State) {
		h, _ := st.Host("vpc-a", "test1")
		if h.CTZone != h1.CTZone {
			t.Errorf("zone changed to %d by a request", h.CTZone)
		}
	})
	must(t, s.Close())

	s = openStore(t, dir)
	defer s.Close()
	s.Read(func(st *State) {
		a, _ := st.Host("vpc-a", "test1")
		b, _ := st.Host("vpc-a", "test2")
		if a.CTZone != h1.CTZone || b.CTZone != h2.CTZone {
			t.Errorf("zones after reopen %d/%d, want %d/%d", a.CTZone, b.CTZone, h1.CTZone, h2.CTZone)
		}
		if m := st.GroupMask(&b); m != 0b11 {
			t.Errorf("mask of test2 %b, want 11", m)
		}
	})
	if h := setGroups(t, s, "test1"); h.CTZone != 0 || h.SecurityGroups != nil {
		t.Fatalf("out of every group: %+v, want no zone", h)
	}
	// A third host's zone never collides, whatever the IDs say.
	h3 := Host{VPC: "vpc-a", Name: "test3", VSwitch: "vsw-a", IP: ip("10.10.10.13"), MAC: mac("52:58:00:98:c0:13"), DPID: 1, OFPort: 7, SecurityGroups: []string{"db"}}
	out = mustApply(t, s, createHost(h3))
	if z := out[0].Obj.(*Host).CTZone; z == 0 || z == h2.CTZone {
		t.Fatalf("test3 got zone %d", z)
	}
}

// TestGroupDelete: a group in use is refused; cascade takes its rules and
// the rules naming it as their peer, but never its members.
func TestGroupDelete(t *testing.T) {
	s := seededStore(t)
	mustApply(t, s, createGroup("vpc-a", "web"), createGroup("vpc-a", "db"))
	mustApply(t, s, createRule(sshRule("web")))
	peer := sshRule("db")
	peer.CIDR, peer.SecurityGroup = zeroPrefix(), "web"
	mustApply(t, s, createRule(peer))
	setGroups(t, s, "test1", "web")

	_, err := s.Apply(context.Background(), []Op{Delete(&SecurityGroup{VPC: "vpc-a", Name: "web"}, false)})
	wantErr(t, err, ErrConflict, "name", "still used by 2 security group rules")
	_, err = s.Apply(context.Background(), []Op{Delete(&SecurityGroup{VPC: "vpc-a", Name: "web"}, true)})
	wantErr(t, err, ErrConflict, "name", "member hosts (test1)")

	setGroups(t, s, "test1")
	out := mustApply(t, s, Delete(&SecurityGroup{VPC: "vpc-a", Name: "web"}, true))
	if len(out) != 3 {
		t.Fatalf("cascade deleted %d objects, want the group and 2 rules: %v", len(out), out)
	}
	s.Read(func(st *State) {
		if n := len(st.RulesOf("vpc-a", "db")); n != 0 {
			t.Errorf("db still has %d rules", n)
		}
		if _, ok := st.Host("vpc-a", "test1"); !ok {
			t.Errorf("test1 was deleted")
		}
	})
	// Deleting the VPC with cascade takes groups, rules and members.
	mustApply(t, s, createGroup("vpc-a", "web"), createRule(sshRule("web")))
	setGroups(t, s, "test2", "web")
	mustApply(t, s, Delete(&VPC{Name: "vpc-a"}, true))
}

// TestRuleUpdate: an update changes what it gives and keeps the rest; the
// direction cannot change.
func TestRuleUpdate(t *testing.T) {
	s := seededStore(t)
	mustApply(t, s, createGroup("vpc-a", "web"))
	out := mustApply(t, s, createRule(sshRule("web")))
	id := out[0].Obj.(*SecurityGroupRule).ID

	out = mustApply(t, s, Update(&SecurityGroupRule{VPC: "vpc-a", Group: "web", ID: id, Policy: "drop"}))
	r := out[0].Obj.(*SecurityGroupRule)
	if r.Policy != "drop" || r.PortRange != "22/22" || r.CIDR != pfx("10.0.0.0/8") || r.Priority != 1 || r.ID != id {
		t.Fatalf("after policy change: %+v", r)
	}
	out = mustApply(t, s, Update(&SecurityGroupRule{VPC: "vpc-a", Group: "web", ID: id, Protocol: "icmp"}))
	if r := out[0].Obj.(*SecurityGroupRule); r.PortRange != "-1/-1" {
		t.Fatalf("icmp kept ports %q", r.PortRange)
	}
	_, err := s.Apply(context.Background(), []Op{Update(&SecurityGroupRule{VPC: "vpc-a", Group: "web", ID: id, Direction: "egress"})})
	wantErr(t, err, ErrInvalid, "direction", "cannot be changed")
	_, err = s.Apply(context.Background(), []Op{Update(&SecurityGroupRule{VPC: "vpc-a", Group: "web", ID: id + 100, Policy: "drop"})})
	wantErr(t, err, ErrNotFound, "name", "does not exist")
	mustApply(t, s, Delete(&SecurityGroupRule{VPC: "vpc-a", Group: "web", ID: id}, false))
}

// FuzzValidateRule decodes arbitrary JSON into a rule and runs it through
// the store's validation as a create, an update and a delete. Validation
// must never panic or change the state, and what it accepts must be a
// rule the datapath can express.
func FuzzValidateRule(f *testing.F) {
	for _, s := range []string{
		`{"vpc":"vpc-a","group":"web","direction":"ingress","priority":1,"protocol":"tcp","port_range":"22/22","cidr":"10.0.0.0/8"}`,
		`{"vpc":"vpc-a","group":"web","direction":"egress","policy":"drop","priority":100,"protocol":"all","port_range":"-1/-1","cidr":"0.0.0.0/0"}`,
		`{"vpc":"vpc-a","group":"web","direction":"INGRESS","priority":50,"protocol":"UDP","port_range":"1/65535","security_group":"db"}`,
		`{"vpc":"vpc-a","group":"web","direction":"ingress","priority":0,"protocol":"icmp","port_range":"1/1","cidr":"1.2.3.4/32","security_group":"db"}`,
		`{"vpc":"vpc-a","group":"web","direction":"ingress","priority":7,"protocol":"tcp","port_range":"+1/0x10","cidr":"10.0.0.0/8"}`,
		`{"vpc":"vpc-a","group":"web","direction":"ingress","priority":-3,"protocol":"tcp","port_range":"99999999999999999999/1","cidr":"10.0.0.0/8"}`,
		`{"id":1,"vpc":"vpc-a","group":"web","policy":"drop"}`,
		`{"vpc":"vpc-a","group":"../x","direction":"ingress","priority":1,"protocol":"tcp","port_range":" 22/22","cidr":"::/0"}`,
		`{}`,
	} {
		f.Add([]byte(s))
	}
	s := newStore(f)
	if _, err := s.Apply(context.Background(), append(seedOps(), createGroup("vpc-a", "web"), createGroup("vpc-a", "db"),
		createRule(sshRule("web")))); err != nil {
		f.Fatal(err)
	}
	before := dump(s) + dumpRules(s)
	f.Fuzz(func(t *testing.T, data []byte) {
		var r SecurityGroupRule
		if err := json.Unmarshal(data, &r); err != nil {
			return
		}
		ctx := context.Background()
		for _, kind := range []OpKind{OpCreate, OpUpdate, OpDelete} {
			rc := r
			if kind == OpUpdate && rc.ID == 0 {
				rc.ID = 1
			}
			out, err := s.Check(ctx, []Op{{Kind: kind, Obj: &rc}})
			if err != nil {
				if _, ok := AsError(err); !ok {
					t.Fatalf("%s: non-*Error from validation: %v", kind, err)
				}
				continue
			}
			if kind == OpDelete {
				continue
			}
			got := out[0].SecurityGroupRule()
			lo, hi := got.Ports()
			tcpudp := got.Protocol == ProtocolTCP || got.Protocol == ProtocolUDP
			if got.Direction != DirectionIngress && got.Direction != DirectionEgress ||
				got.Policy != PolicyAccept && got.Policy != PolicyDrop ||
				got.Priority < MinRulePriority || got.Priority > MaxRulePriority ||
				tcpudp && (lo == 0 || hi < lo) || !tcpudp && (got.PortRange != AnyPort || got.Protocol != ProtocolICMP && got.Protocol != ProtocolAll) ||
				got.CIDR.IsValid() == (got.SecurityGroup != "") || got.CIDR.IsValid() && (!got.CIDR.Addr().Is4() || got.CIDR.Masked() != got.CIDR) ||
				got.ID == 0 {
				t.Fatalf("%s accepted a rule the datapath cannot express: %+v", kind, got)
			}
		}
		if after := dump(s) + dumpRules(s); after != before {
			t.Fatalf("Check changed the state")
		}
	})
}

func dumpRules(s *Store) string {
	var out []any
	s.Read(func(st *State) {
		for _, g := range st.AllSecurityGroups() {
			out = append(out, g, st.RulesOf(g.VPC, g.Name))
		}
	})
	b, _ := json.Marshal(out)
	return string(b)
}
