package pipeline

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// TestDefaultPipeline checks the declarations: New accepts them, every
// table's miss is computable, every in-line stage has a next stage for
// what it handles (but the last), and tables ascend.
func TestDefaultPipeline(t *testing.T) {
	p := Default()
	if len(p.Misses()) != len(p.Tables()) {
		t.Fatalf("%d misses for %d tables", len(p.Misses()), len(p.Tables()))
	}
	if p.First().ID != 0 {
		t.Fatalf("first table %d, want 0", p.First().ID)
	}
	last := p.Tables()[len(p.Tables())-1]
	for _, tb := range p.Tables() {
		if tb == last {
			continue
		}
		for _, proto := range []Proto{ARP, IPv4} {
			if tb.Handles&proto == 0 {
				continue
			}
			if _, err := p.next(tb, proto); err != nil && proto == IPv4 {
				t.Errorf("%s: %v", tb.Name, err)
			}
		}
	}
	if !p.Owns(0) || !p.Owns(50) || p.Owns(60) {
		t.Errorf("Owns: 0 %v, 50 %v, 60 %v", p.Owns(0), p.Owns(50), p.Owns(60))
	}
	seen := map[string]bool{}
	for _, d := range p.DropReasons() {
		if seen[d.Name] || d.Reason == DropNone {
			t.Errorf("drop reason %d %q declared twice or as none", d.Reason, d.Name)
		}
		seen[d.Name] = true
	}
	for _, want := range []string{"spoofed", "no_route", "arp_not_answered", "unknown_source", "other", "too_big"} {
		if !seen[want] {
			t.Errorf("drop reason %s not declared", want)
		}
	}
}

// fakeFeature declares whatever a test needs.
type fakeFeature struct {
	name   string
	tables []*Table
	regs   []Register
	drops  []DropReasonInfo
	flows  func(s *Snapshot, o Owner, out *FlowSet)
}

func (f *fakeFeature) Name() string            { return f.name }
func (f *fakeFeature) Tables() []*Table        { return f.tables }
func (f *fakeFeature) Registers() []Register   { return f.regs }
func (f *fakeFeature) Cookies() []OwnerKind    { return nil }
func (f *fakeFeature) Drops() []DropReasonInfo { return f.drops }
func (f *fakeFeature) Flows(s *Snapshot, o Owner, out *FlowSet) {
	if f.flows != nil {
		f.flows(s, o, out)
	}
}
func (f *fakeFeature) Affected(*topology.State, topology.Op) []Owner { return nil }

// TestNewRefusesBadDeclarations: tables out of order, clashing registers
// and a reason declared twice are errors.
func TestNewRefusesBadDeclarations(t *testing.T) {
	a := &fakeFeature{name: "a", tables: []*Table{{ID: 10, Name: "A", Handles: Any}},
		regs: []Register{{Field: openflow.FieldReg2, Lo: 0, Hi: 15}}, drops: []DropReasonInfo{{Reason: 9, Name: "x"}}}
	for _, tc := range []struct {
		name string
		b    *fakeFeature
		want string
	}{
		{"table before", &fakeFeature{name: "b", tables: []*Table{{ID: 5, Name: "B"}}}, "must come after table 10"},
		{"same table id", &fakeFeature{name: "b", tables: []*Table{{ID: 10, Name: "B"}}}, "must come after table 10"},
		{"register clash", &fakeFeature{name: "b", regs: []Register{{Field: openflow.FieldReg2, Lo: 15, Hi: 31}}}, "overlaps reg2[0..15] of a"},
		{"reason twice", &fakeFeature{name: "b", drops: []DropReasonInfo{{Reason: 9, Name: "y"}}}, "already declared by a"},
	} {
		_, err := New(a, tc.b)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, err := New(a, &fakeFeature{name: "b", regs: []Register{{Field: openflow.FieldReg2, Lo: 16, Hi: 31}}}); err != nil {
		t.Errorf("disjoint bits refused: %v", err)
	}
}

// TestNewStageGoesBeforeOutput: a feature put in the pipeline before
// Output is reached by Next from the stage before it, without editing it.
func TestNewStageGoesBeforeOutput(t *testing.T) {
	stage := &Table{ID: 48, Name: "Extra", Handles: IPv4, Miss: Miss{Continue: true}}
	p, err := New(NewClassifier(), NewSpoofGuard(), NewARPResponder(), NewL3Forwarding(), NewTunnel(),
		&fakeFeature{name: "extra", tables: []*Table{stage}}, NewOutput())
	if err != nil {
		t.Fatal(err)
	}
	st := mustStore(t, seedOps()...)
	st.Read(func(s *topology.State) {
		h, _ := s.Host("vpc-seed", "test1")
		for _, pf := range p.Flows(seedSnapshot(s), Owner{OwnerHost, h.ID}) {
			if pf.Flow.Table == 30 && pf.Flow.Priority == 132 {
				if got := pf.Flow.Actions[len(pf.Flow.Actions)-1]; got != openflow.GotoTable(45) {
					t.Errorf("route ends in %s", got)
				}
			}
		}
	})
	var tooBigMiss, extraMiss openflow.Flow
	for _, d := range p.Defaults() {
		switch d.Table {
		case 46:
			tooBigMiss = d
		case 48:
			extraMiss = d
		}
	}
	if tooBigMiss.ActionsString() != "goto_table:48" || extraMiss.ActionsString() != "goto_table:50" {
		t.Errorf("misses: table 46 %s, table 48 %s", tooBigMiss.ActionsString(), extraMiss.ActionsString())
	}
}

// TestFeatureMayNotUseAnothersTable: adding a flow to another feature's
// table (other than the first) or jumping into one panics.
func TestFeatureMayNotUseAnothersTable(t *testing.T) {
	l3 := NewL3Forwarding()
	rogue := &fakeFeature{name: "rogue", tables: []*Table{{ID: 60, Name: "Rogue", Handles: IPv4}}}
	for name, fn := range map[string]func(s *Snapshot, o Owner, out *FlowSet){
		"add":  func(_ *Snapshot, _ Owner, out *FlowSet) { out.On(1, l3.table).Drop() },
		"jump": func(_ *Snapshot, _ Owner, out *FlowSet) { out.On(1, out.First()).Jump(l3.table) },
	} {
		rogue.flows = fn
		p, err := New(NewClassifier(), l3, NewOutput(), rogue)
		if err != nil {
			t.Fatal(err)
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s into another feature's table did not panic", name)
				}
			}()
			p.Flows(&Snapshot{}, Owner{OwnerHost, 1})
		}()
	}
}

// TestRoutePriorityIsPrefixLength: longer prefixes win by priority alone,
// and a vSwitch CIDR beats a route entry that contains it.
func TestRoutePriorityIsPrefixLength(t *testing.T) {
	ops := append(seedOps(), topology.Create(&topology.Subnet{VPC: "vpc-seed", Name: "cover", CIDR: netip.MustParsePrefix("10.10.0.0/16"), Host: "test1"}))
	st := mustStore(t, ops...)
	p := Default()
	st.Read(func(s *topology.State) {
		prio := map[string]uint16{}
		for _, o := range AllOwners(s) {
			for _, pf := range p.Flows(seedSnapshot(s), o) {
				if pf.Flow.Table != 30 {
					continue
				}
				dst, _ := pf.Flow.Match.Get(openflow.FieldIPv4Dst)
				prio[openflow.Uint32ToAddr(uint32(dst.Value)).String()+"/"+pf.Flow.ActionsString()[:3]] = pf.Flow.Priority
			}
		}
		if prio["10.10.10.11/set"] != 132 || prio["10.10.10.0/dro"] != 124 || prio["10.10.0.0/set"] != 116 {
			t.Errorf("priorities %v: want host 132 > vSwitch system route 124 > covering entry 116", prio)
		}
	})
}

// TestCoveringRouteDoesNotAllowVSwitchSources: with 10.10.0.0/16 → test1,
// test1 may send from 10.10.x (outside the vSwitch) but not from another
// address of its vSwitch; its own address still goes.
func TestCoveringRouteDoesNotAllowVSwitchSources(t *testing.T) {
	ops := append(seedOps(), topology.Create(&topology.Subnet{VPC: "vpc-seed", Name: "cover", CIDR: netip.MustParsePrefix("10.10.0.0/16"), Host: "test1"}))
	st := mustStore(t, ops...)
	p := Default()
	st.Read(func(s *topology.State) {
		sub, _ := s.Subnet("vpc-seed", "cover")
		var got []string
		for _, pf := range p.Flows(seedSnapshot(s), Owner{OwnerSubnet, sub.ID}) {
			if pf.Flow.Table == 10 {
				got = append(got, pf.Flow.String())
			}
		}
		want := []string{
			"table=10, priority=116, cookie=0x7670030000000003, arp,in_port=1,arp_spa=10.10.0.0/16,arp_sha=52:58:00:98:c0:81 actions=goto_table:20",
			"table=10, priority=116, cookie=0x7670030000000003, ip,in_port=1,nw_src=10.10.0.0/16 actions=goto_table:15",
			"table=10, priority=124, cookie=0x7670030100000003, arp,in_port=1,arp_spa=10.10.10.0/24 actions=drop",
			"table=10, priority=124, cookie=0x7670030100000003, ip,in_port=1,nw_src=10.10.10.0/24 actions=drop",
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("spoof guard of the covering entry:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}

func TestCookieRoundTrip(t *testing.T) {
	for _, c := range []uint64{HostCookie(7, DropSpoofed), SubnetCookie(9, DropNone), ChassisCookie(3, DropTooBig), VSwitchCookie(1<<31, DropNoRoute), PipelineCookie(DropOther)} {
		p := ParseCookie(c)
		if !p.Ours || MakeCookie(p.Owner, p.Reason, p.ID) != c {
			t.Errorf("cookie %#x parsed as %+v", c, p)
		}
	}
	if ParseCookie(0x1).Ours {
		t.Error("foreign cookie parsed as ours")
	}
}
