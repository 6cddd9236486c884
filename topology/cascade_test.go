package topology

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

func cascade(op Op) Op {
	op.Cascade = true
	return op
}

// describeOps prints resolved ops as "delete host vpc-a/test1 #1", one per
// line, checking on the way that every delete carries its whole object and
// an Old equal to it.
func describeOps(t *testing.T, ops []Op) string {
	t.Helper()
	var b strings.Builder
	for i, op := range ops {
		k, key, obj := target(op)
		var id uint32
		switch o := obj.(type) {
		case *VPC:
			id = o.ID
			if old, ok := op.Old.(*VPC); op.Kind == OpDelete && (!ok || *old != *o) {
				t.Errorf("op %d: Old %#v, want the deleted VPC %#v", i, op.Old, o)
			}
		case *VSwitch:
			id = o.ID
			if old, ok := op.Old.(*VSwitch); op.Kind == OpDelete && (!ok || *old != *o || !o.CIDR.IsValid()) {
				t.Errorf("op %d: Old %#v, want the whole deleted vSwitch %#v", i, op.Old, o)
			}
		case *Host:
			id = o.ID
			if old, ok := op.Old.(*Host); op.Kind == OpDelete && (!ok || old.Name != o.Name || old.IP != o.IP || old.MAC.String() != o.MAC.String() || !o.IP.IsValid() || len(o.MAC) != 6) {
				t.Errorf("op %d: Old %#v, want the whole deleted host %#v", i, op.Old, o)
			}
		case *Chassis:
			id = o.ID
			if old, ok := op.Old.(*Chassis); op.Kind == OpDelete && (!ok || *old != *o || !o.TunnelIP.IsValid()) {
				t.Errorf("op %d: Old %#v, want the whole deleted chassis %#v", i, op.Old, o)
			}
		case *Subnet:
			id = o.ID
			if old, ok := op.Old.(*Subnet); op.Kind == OpDelete && (!ok || *old != *o || !o.CIDR.IsValid() || o.Host == "") {
				t.Errorf("op %d: Old %#v, want the whole deleted subnet %#v", i, op.Old, o)
			}
		}
		fmt.Fprintf(&b, "%s %s %s #%d\n", op.Kind, k, key, id)
	}
	return b.String()
}

// bigOps adds to the seed a second vSwitch vsw-b with host test3 (subnet
// 172.18.3.0/24) and a host test4 in vsw-a that is no next hop.
func bigOps() []Op {
	return append(seedOps(),
		createVSwitch(VSwitch{VPC: "vpc-a", Name: "vsw-b", CIDR: pfx("10.20.0.0/24")}),
		createHost(Host{VPC: "vpc-a", Name: "test3", VSwitch: "vsw-b", IP: ip("10.20.0.3"), MAC: mac("02:00:00:00:00:03"), Bridge: "br-test", Interface: "vnet5"}),
		createSubnet(Subnet{VPC: "vpc-a", CIDR: pfx("172.18.3.0/24"), Host: "test3"}),
		createHost(Host{VPC: "vpc-a", Name: "test4", VSwitch: "vsw-a", IP: ip("10.10.10.14"), MAC: mac("02:00:00:00:00:04"), DPID: 1, OFPort: 4}),
	)
}

func TestCascadeDelete(t *testing.T) {
	cases := []struct {
		name string
		op   Op
		want string // the resolved ops
		left string // what is left of vpc-a: vSwitches; hosts; subnets
	}{{
		name: "host",
		op:   cascade(deleteHost("vpc-a", "test1")),
		want: "delete host vpc-a/test1 #1\n" +
			"delete subnet vpc-a/172.18.1.0-24 #1\n",
		left: "vsw-a vsw-b; test2 test3 test4; 172.18.3.0-24 ten-99",
	}, {
		name: "host without subnets",
		op:   cascade(deleteHost("vpc-a", "test4")),
		want: "delete host vpc-a/test4 #4\n",
		left: "vsw-a vsw-b; test1 test2 test3; 172.18.1.0-24 172.18.3.0-24 ten-99",
	}, {
		name: "vswitch",
		op:   cascade(deleteVSwitch("vpc-a", "vsw-a")),
		want: "delete vswitch vpc-a/vsw-a #1\n" +
			"delete subnet vpc-a/172.18.1.0-24 #1\n" +
			"delete subnet vpc-a/ten-99 #2\n" +
			"delete host vpc-a/test1 #1\n" +
			"delete host vpc-a/test2 #2\n" +
			"delete host vpc-a/test4 #4\n",
		left: "vsw-b; test3; 172.18.3.0-24",
	}, {
		name: "vswitch without hosts",
		op:   cascade(deleteVSwitch("vpc-a", "vsw-b")),
		want: "delete vswitch vpc-a/vsw-b #2\n" +
			"delete subnet vpc-a/172.18.3.0-24 #3\n" +
			"delete host vpc-a/test3 #3\n",
		left: "vsw-a; test1 test2 test4; 172.18.1.0-24 ten-99",
	}, {
		name: "vpc",
		op:   cascade(deleteVPC("vpc-a")),
		want: "delete vpc vpc-a #1\n" +
			"delete subnet vpc-a/172.18.1.0-24 #1\n" +
			"delete subnet vpc-a/172.18.3.0-24 #3\n" +
			"delete subnet vpc-a/ten-99 #2\n" +
			"delete host vpc-a/test1 #1\n" +
			"delete host vpc-a/test2 #2\n" +
			"delete host vpc-a/test3 #3\n" +
			"delete host vpc-a/test4 #4\n" +
			"delete vswitch vpc-a/vsw-a #1\n" +
			"delete vswitch vpc-a/vsw-b #2\n",
		left: "gone",
	}, {
		name: "empty vpc",
		op:   cascade(deleteVPC("vpc-b")),
		want: "delete vpc vpc-b #2\n",
		left: "vsw-a vsw-b; test1 test2 test3 test4; 172.18.1.0-24 172.18.3.0-24 ten-99",
	}, {
		name: "subnet: nothing to cascade",
		op:   cascade(deleteSubnet("vpc-a", "ten-99")),
		want: "delete subnet vpc-a/ten-99 #2\n",
		left: "vsw-a vsw-b; test1 test2 test3 test4; 172.18.1.0-24 172.18.3.0-24",
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openStore(t, dir)
			mustApply(t, s, bigOps()...)

			checked, err := s.Check(context.Background(), []Op{c.op})
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			out := mustApply(t, s, c.op)
			if got := describeOps(t, out); got != c.want {
				t.Fatalf("result:\n%s\nwant:\n%s", got, c.want)
			}
			if got := describeOps(t, checked); got != c.want {
				t.Fatalf("Check result:\n%s\nwant:\n%s", got, c.want)
			}
			if !out[0].Cascade {
				t.Error("the requested op lost its Cascade")
			}
			for i, op := range out[1:] {
				if op.Kind != OpDelete || op.Cascade {
					t.Errorf("dependent %d: kind %s cascade %v", i, op.Kind, op.Cascade)
				}
			}
			if got := leftOf(s, "vpc-a"); got != c.left {
				t.Fatalf("left in vpc-a: %q, want %q", got, c.left)
			}
			before := dump(s)

			// What was deleted is gone on disk too, and nothing else.
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openStore(t, dir)
			defer s.Close()
			if after := dump(s); after != before {
				t.Fatalf("reopened state differs:\nbefore %s\nafter %s", before, after)
			}
			// The indexes forgot the deleted objects: their names, IPs,
			// attachments and CIDRs can be used again, with new IDs.
			if c.left == "gone" {
				mustApply(t, s, createVPC(VPC{Name: "vpc-a"}))
			}
			if _, ok := vswitchOf(s, "vpc-a", "vsw-a"); !ok {
				mustApply(t, s, createVSwitch(VSwitch{VPC: "vpc-a", Name: "vsw-a", CIDR: pfx("10.10.10.0/24")}))
			}
			recreated := mustApply(t, s, createHost(Host{VPC: "vpc-a", Name: "new", VSwitch: "vsw-a", IP: ip("10.10.10.20"), MAC: mac("02:00:00:00:00:20"), Bridge: "br-test", Interface: "vnet9"}))
			if recreated[0].Host().ID != 5 {
				t.Errorf("new host ID %d, want 5 (IDs are never reused)", recreated[0].Host().ID)
			}
		})
	}
}

// leftOf lists a VPC's vSwitches, hosts and subnets, or "gone".
func leftOf(s *Store, vpc string) string {
	var out string
	s.Read(func(st *State) {
		if _, ok := st.VPC(vpc); !ok {
			out = "gone"
			return
		}
		var ws, hs, ss []string
		for _, w := range st.VSwitches(vpc) {
			ws = append(ws, w.Name)
		}
		for _, h := range st.Hosts(vpc) {
			hs = append(hs, h.Name)
		}
		for _, x := range st.Subnets(vpc) {
			ss = append(ss, x.Name)
		}
		out = strings.Join(ws, " ") + "; " + strings.Join(hs, " ") + "; " + strings.Join(ss, " ")
	})
	return out
}

// TestCascadeFreesAttachments: after a cascade the deleted hosts' IPs and
// attachments (bridge+interface and dpid+port) are free again.
func TestCascadeFreesAttachments(t *testing.T) {
	s := newStore(t)
	mustApply(t, s, bigOps()...)
	mustApply(t, s, cascade(deleteVSwitch("vpc-a", "vsw-a")))
	mustApply(t, s,
		createVSwitch(VSwitch{VPC: "vpc-a", Name: "vsw-a", CIDR: pfx("10.10.10.0/24")}),
		createHost(Host{VPC: "vpc-a", Name: "test1", VSwitch: "vsw-a", IP: ip("10.10.10.11"), MAC: mac("52:58:00:98:c0:81"), Bridge: "br-test", Interface: "vnet1"}),
		createHost(Host{VPC: "vpc-a", Name: "test2", VSwitch: "vsw-a", IP: ip("10.10.10.12"), MAC: mac("52:58:00:98:c0:92"), DPID: 1, OFPort: 3}),
		createSubnet(Subnet{VPC: "vpc-a", Name: "ten-99", CIDR: pfx("10.99.1.0/24"), Host: "test2"}),
	)
	s.Read(func(st *State) {
		if n := len(st.SubnetsOfHost("vpc-a", "test3")); n != 1 {
			t.Errorf("test3 (in the other vSwitch) has %d subnets, want 1", n)
		}
	})
}

func TestCascadeWithoutFlagStillRefuses(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{name: "vpc", ops: []Op{deleteVPC("vpc-a")}, kind: ErrConflict, field: "name", msg: "; delete them first (use ?cascade=true to delete them too)"},
		{name: "vswitch", ops: []Op{deleteVSwitch("vpc-a", "vsw-a")}, kind: ErrConflict, field: "name", msg: "is still used by 2 hosts (test1, test2); delete them first (use ?cascade=true to delete them too)"},
		{name: "host", ops: []Op{deleteHost("vpc-a", "test1")}, kind: ErrConflict, field: "name", msg: "is still used by 1 subnet (172.18.1.0-24); delete them first (use ?cascade=true to delete them too)"},
		{name: "cascade on a create", ops: []Op{cascade(createVPC(VPC{Name: "vpc-c"}))}, kind: ErrInvalid, field: "cascade", msg: "only a delete can cascade"},
		{name: "cascade on an update", ops: []Op{cascade(moveSubnet("vpc-a", "ten-99", "test1"))}, kind: ErrInvalid, field: "cascade", msg: "only a delete can cascade"},
		{name: "cascade of an unknown vpc", ops: []Op{cascade(deleteVPC("nope"))}, kind: ErrNotFound, field: "name"},
		{name: "cascade of an unknown host", ops: []Op{cascade(deleteHost("vpc-a", "nope"))}, kind: ErrNotFound, field: "name"},
		{name: "cascade of a vswitch in an unknown vpc", ops: []Op{cascade(deleteVSwitch("nope", "vsw-a"))}, kind: ErrNotFound, field: "vpc"},
	})
}

// TestCascadeInBatch: a cascade is part of its batch: later ops see it,
// and a batch that fails after a cascade leaves the store (in memory and
// on disk) as it was, IDs included.
func TestCascadeInBatch(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	mustApply(t, s, bigOps()...)
	before := dump(s)

	bad := [][]Op{
		// The dependents are gone for the ops after the cascade.
		{cascade(deleteHost("vpc-a", "test1")), deleteSubnet("vpc-a", "172.18.1.0-24")},
		{cascade(deleteVPC("vpc-a")), createHost(Host{VPC: "vpc-a", Name: "x", VSwitch: "vsw-a", IP: ip("10.10.10.30"), MAC: mac("02:00:00:00:00:30"), DPID: 9, OFPort: 9})},
		// A later op fails on its own.
		{cascade(deleteVSwitch("vpc-a", "vsw-a")), createVPC(VPC{Name: "vpc-c"}), createVPC(VPC{Name: "bad/name"})},
		// Two cascades, the second fails.
		{cascade(deleteVSwitch("vpc-a", "vsw-b")), cascade(deleteVSwitch("vpc-a", "vsw-b"))},
	}
	wantField := []string{"[1].name", "[1].vpc", "[2].name", "[1].name"}
	for i, ops := range bad {
		_, err := s.Apply(context.Background(), ops)
		e, ok := AsError(err)
		if !ok || e.Field != wantField[i] {
			t.Fatalf("batch %d: got %v, want an error on %s", i, err, wantField[i])
		}
		if after := dump(s); after != before {
			t.Fatalf("batch %d changed the state:\nbefore %s\nafter %s", i, before, after)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir)
	defer s.Close()
	if after := dump(s); after != before {
		t.Fatalf("state on disk changed by rejected batches:\nbefore %s\nafter %s", before, after)
	}

	// A good batch: cascade a VPC away and build it again at once. The
	// result has the cascade's dependents right after it, before the ops
	// that follow.
	out := mustApply(t, s,
		cascade(deleteHost("vpc-a", "test3")),
		cascade(deleteVPC("vpc-a")),
		createVPC(VPC{Name: "vpc-a"}),
		createVSwitch(VSwitch{VPC: "vpc-a", Name: "vsw-a", CIDR: pfx("10.10.10.0/24")}),
		createHost(Host{VPC: "vpc-a", Name: "test1", VSwitch: "vsw-a", IP: ip("10.10.10.11"), MAC: mac("52:58:00:98:c0:81"), Bridge: "br-test", Interface: "vnet1"}),
	)
	want := "delete host vpc-a/test3 #3\n" +
		"delete subnet vpc-a/172.18.3.0-24 #3\n" +
		"delete vpc vpc-a #1\n" +
		"delete subnet vpc-a/172.18.1.0-24 #1\n" +
		"delete subnet vpc-a/ten-99 #2\n" +
		"delete host vpc-a/test1 #1\n" +
		"delete host vpc-a/test2 #2\n" +
		"delete host vpc-a/test4 #4\n" +
		"delete vswitch vpc-a/vsw-a #1\n" +
		"delete vswitch vpc-a/vsw-b #2\n" +
		"create vpc vpc-a #3\n" +
		"create vswitch vpc-a/vsw-a #3\n" +
		"create host vpc-a/test1 #5\n"
	if got := describeOps(t, out); got != want {
		t.Fatalf("result:\n%s\nwant:\n%s", got, want)
	}
	after := dump(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir)
	defer s.Close()
	if got := dump(s); got != after {
		t.Fatalf("reopened state differs:\nbefore %s\nafter %s", after, got)
	}
	if got := leftOf(s, "vpc-a"); got != "vsw-a; test1; " {
		t.Fatalf("vpc-a after rebuild: %q", got)
	}
}

func TestNotEmptyMessagePlurals(t *testing.T) {
	s := newStore(t)
	mustApply(t, s, bigOps()...)
	_, err := s.Apply(context.Background(), []Op{deleteVPC("vpc-a")})
	want := `VPC "vpc-a" is still used by 2 vSwitches (vsw-a, vsw-b), 4 hosts (test1, test2, test3 and 1 more) and 3 subnets (172.18.1.0-24, 172.18.3.0-24, ten-99); delete them first (use ?cascade=true to delete them too)`
	if e, ok := AsError(err); !ok || e.Msg != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}
