package topology

import (
	"context"
	"encoding/json"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// chassisSeedOps is the seed plus two chassis and hosts on them:
//
//	node1  tcp:192.168.100.11:6640  br-vpc  192.168.100.11
//	node2  unix:/var/run/openvswitch/db.sock  br-vpc  192.168.100.12  controller tcp:192.168.100.254:6653
//	vpc-a/vm1  node1/vnet1  10.10.10.21  (next hop of 172.18.21.0/24)
//	vpc-a/vm2  node2/vnet1  10.10.10.22
//	vpc-b/vm9  node1/vnet9  10.1.0.9     (next hop of vm9-net 172.18.9.0/24, in vSwitch vpc-b/w)
func chassisSeedOps() []Op {
	return append(seedOps(),
		createChassis(Chassis{Name: "node1", OVSDB: "tcp:192.168.100.11:6640", Bridge: "br-vpc", TunnelIP: ip("192.168.100.11")}),
		createChassis(Chassis{Name: "node2", OVSDB: "unix:/var/run/openvswitch/db.sock", Bridge: "br-vpc", TunnelIP: ip("192.168.100.12"), Controller: "tcp:192.168.100.254:6653"}),
		createHost(Host{VPC: "vpc-a", Name: "vm1", VSwitch: "vsw-a", IP: ip("10.10.10.21"), MAC: mac("02:00:00:00:00:21"), Chassis: "node1", Interface: "vnet1"}),
		createHost(Host{VPC: "vpc-a", Name: "vm2", VSwitch: "vsw-a", IP: ip("10.10.10.22"), MAC: mac("02:00:00:00:00:22"), Chassis: "node2", Interface: "vnet1"}),
		createSubnet(Subnet{VPC: "vpc-a", CIDR: pfx("172.18.21.0/24"), Host: "vm1"}),
		createVSwitch(VSwitch{VPC: "vpc-b", Name: "w", CIDR: pfx("10.1.0.0/24")}),
		createHost(Host{VPC: "vpc-b", Name: "vm9", VSwitch: "w", IP: ip("10.1.0.9"), MAC: mac("02:00:00:00:00:09"), Chassis: "node1", Interface: "vnet9"}),
		createSubnet(Subnet{VPC: "vpc-b", Name: "vm9-net", CIDR: pfx("172.18.9.0/24"), Host: "vm9"}),
	)
}

func chassisStore(t testing.TB) *Store {
	t.Helper()
	s := newStore(t)
	mustApply(t, s, chassisSeedOps()...)
	return s
}

func TestChassisRules(t *testing.T) {
	base := func() Chassis {
		return Chassis{Name: "node3", OVSDB: "tcp:192.168.100.13:6640", Bridge: "br-vpc", TunnelIP: ip("192.168.100.13")}
	}
	with := func(f func(c *Chassis)) []Op {
		c := base()
		f(&c)
		return []Op{createChassis(c)}
	}
	long := strings.Repeat("a", MaxIfaceNameLen+1)
	runRuleCasesOn(t, chassisStore, []ruleCase{
		{name: "ok", ops: with(func(c *Chassis) {})},
		{name: "ok with controller", ops: with(func(c *Chassis) { c.Controller = "tcp:192.168.100.254:6653" })},
		{name: "ok ssl controller", ops: with(func(c *Chassis) { c.Controller = "ssl:ctl.example.com:6653" })},
		{name: "ok unix controller", ops: with(func(c *Chassis) { c.Controller = "unix:/var/run/vpcflow.sock" })},
		{name: "ok unix ovsdb", ops: with(func(c *Chassis) { c.OVSDB = "unix:/run/node3/db.sock" })},
		{name: "ok tcp ovsdb without port", ops: with(func(c *Chassis) { c.OVSDB = "tcp:node3.example.com" })},
		{name: "ok ssl ovsdb", ops: with(func(c *Chassis) { c.OVSDB = "ssl:192.168.100.13:6640" })},
		{name: "ok ssl ovsdb without port", ops: with(func(c *Chassis) { c.OVSDB = "ssl:node3.example.com" })},
		{name: "same ovsdb, other bridge", ops: with(func(c *Chassis) { c.OVSDB = "tcp:192.168.100.11:6640"; c.Bridge = "br-other" }), kind: ErrConflict, field: "ovsdb", msg: `already hosts chassis "node1" (bridge "br-vpc"): one Open vSwitch hosts one chassis`},
		{name: "ok same bridge, other ovsdb", ops: with(func(c *Chassis) { c.Bridge = "br-vpc" })},
		{name: "ok link-local tunnel ip", ops: with(func(c *Chassis) { c.TunnelIP = ip("169.254.0.13") })},

		{name: "no name", ops: with(func(c *Chassis) { c.Name = "" }), kind: ErrInvalid, field: "name", msg: "required"},
		{name: "bad name", ops: with(func(c *Chassis) { c.Name = "../x" }), kind: ErrInvalid, field: "name", msg: "not a valid name"},
		{name: "long name", ops: with(func(c *Chassis) { c.Name = strings.Repeat("n", 64) }), kind: ErrInvalid, field: "name", msg: "too long"},
		{name: "duplicate name", ops: with(func(c *Chassis) { c.Name = "node1" }), kind: ErrConflict, field: "name", msg: `chassis "node1" already exists`},

		{name: "no ovsdb", ops: with(func(c *Chassis) { c.OVSDB = "" }), kind: ErrInvalid, field: "ovsdb", msg: "required"},
		{name: "garbage ovsdb", ops: with(func(c *Chassis) { c.OVSDB = "192.168.100.13:6640" }), kind: ErrInvalid, field: "ovsdb", msg: "unknown method"},
		{name: "relative unix ovsdb", ops: with(func(c *Chassis) { c.OVSDB = "unix:db.sock" }), kind: ErrInvalid, field: "ovsdb", msg: "must be absolute"},
		{name: "empty unix ovsdb", ops: with(func(c *Chassis) { c.OVSDB = "unix:" }), kind: ErrInvalid, field: "ovsdb", msg: "needs a socket path"},
		{name: "ssl ovsdb without port", ops: with(func(c *Chassis) { c.OVSDB = "ssl:node3.example.com:" }), kind: ErrInvalid, field: "ovsdb", msg: "not a number"},
		{name: "passive ovsdb", ops: with(func(c *Chassis) { c.OVSDB = "ptcp:6640" }), kind: ErrInvalid, field: "ovsdb", msg: "passive"},
		{name: "bad port ovsdb", ops: with(func(c *Chassis) { c.OVSDB = "tcp:192.168.100.13:99999" }), kind: ErrInvalid, field: "ovsdb", msg: "not a number"},
		{name: "unbracketed ipv6 ovsdb", ops: with(func(c *Chassis) { c.OVSDB = "tcp:fd00::13:6640" }), kind: ErrInvalid, field: "ovsdb", msg: "brackets"},

		{name: "no bridge", ops: with(func(c *Chassis) { c.Bridge = "" }), kind: ErrInvalid, field: "bridge", msg: "required"},
		{name: "bridge with slash", ops: with(func(c *Chassis) { c.Bridge = "br/x" }), kind: ErrInvalid, field: "bridge", msg: "not a valid name"},
		{name: "bridge too long", ops: with(func(c *Chassis) { c.Bridge = long }), kind: ErrInvalid, field: "bridge", msg: "too long"},
		{name: "bridge pair taken", ops: with(func(c *Chassis) { c.OVSDB = "tcp:192.168.100.11:6640" }), kind: ErrConflict, field: "ovsdb", msg: `already hosts chassis "node1"`},
		{name: "bridge pair taken, ovsdb written otherwise", ops: with(func(c *Chassis) { c.OVSDB = "tcp:192.168.100.11" }), kind: ErrConflict, field: "ovsdb", msg: `already hosts chassis "node1"`},
		{name: "bridge pair taken, unix path written otherwise", ops: with(func(c *Chassis) { c.OVSDB = "unix:/var/run//openvswitch/./db.sock" }), kind: ErrConflict, field: "ovsdb", msg: `already hosts chassis "node2"`},

		{name: "no tunnel ip", ops: with(func(c *Chassis) { c.TunnelIP = netip.Addr{} }), kind: ErrInvalid, field: "tunnel_ip", msg: "required"},
		{name: "ipv6 tunnel ip", ops: with(func(c *Chassis) { c.TunnelIP = ip("fd00::13") }), kind: ErrInvalid, field: "tunnel_ip", msg: "must be IPv4"},
		{name: "4in6 tunnel ip", ops: with(func(c *Chassis) { c.TunnelIP = ip("::ffff:192.168.100.13") }), kind: ErrInvalid, field: "tunnel_ip", msg: "must be IPv4"},
		{name: "unspecified tunnel ip", ops: with(func(c *Chassis) { c.TunnelIP = ip("0.0.0.0") }), kind: ErrInvalid, field: "tunnel_ip", msg: "unspecified"},
		{name: "loopback tunnel ip", ops: with(func(c *Chassis) { c.TunnelIP = ip("127.0.0.1") }), kind: ErrInvalid, field: "tunnel_ip", msg: "loopback"},
		{name: "multicast tunnel ip", ops: with(func(c *Chassis) { c.TunnelIP = ip("239.1.1.1") }), kind: ErrInvalid, field: "tunnel_ip", msg: "multicast"},
		{name: "broadcast tunnel ip", ops: with(func(c *Chassis) { c.TunnelIP = ip("255.255.255.255") }), kind: ErrInvalid, field: "tunnel_ip", msg: "broadcast"},
		{name: "reserved tunnel ip", ops: with(func(c *Chassis) { c.TunnelIP = ip("240.0.0.1") }), kind: ErrInvalid, field: "tunnel_ip", msg: "reserved"},
		{name: "tunnel ip taken", ops: with(func(c *Chassis) { c.TunnelIP = ip("192.168.100.12") }), kind: ErrConflict, field: "tunnel_ip", msg: `192.168.100.12 is already the tunnel IP of chassis "node2"`},

		{name: "controller without method", ops: with(func(c *Chassis) { c.Controller = "192.168.100.254:6653" }), kind: ErrInvalid, field: "controller", msg: "unknown method"},
		{name: "controller without port", ops: with(func(c *Chassis) { c.Controller = "tcp:192.168.100.254" }), kind: ErrInvalid, field: "controller", msg: "needs a port"},
		{name: "passive controller", ops: with(func(c *Chassis) { c.Controller = "ptcp:6653" }), kind: ErrInvalid, field: "controller", msg: "passive"},
		{name: "controller with space", ops: with(func(c *Chassis) { c.Controller = "tcp:192.168.100.254:6653 " }), kind: ErrInvalid, field: "controller", msg: "whitespace"},

		{name: "update", ops: []Op{{Kind: OpUpdate, Obj: &Chassis{Name: "node1"}}}, kind: ErrInvalid, msg: "a chassis cannot be updated"},
		{name: "cascade on create", ops: []Op{{Kind: OpCreate, Obj: &Chassis{Name: "node3"}, Cascade: true}}, kind: ErrInvalid, field: "cascade"},
		{name: "delete unknown", ops: []Op{deleteChassis("nope")}, kind: ErrNotFound, field: "name", msg: `chassis "nope" does not exist`},
		{name: "delete with hosts", ops: []Op{deleteChassis("node1")}, kind: ErrConflict, field: "name",
			msg: `chassis "node1" is still used by 2 hosts (vpc-a/vm1, vpc-b/vm9); delete them first (use ?cascade=true to delete them too)`},
		{name: "batch: duplicate tunnel ip in one batch", ops: []Op{
			createChassis(base()),
			createChassis(Chassis{Name: "node4", OVSDB: "tcp:192.168.100.14:6640", Bridge: "br-vpc", TunnelIP: ip("192.168.100.13")}),
		}, kind: ErrConflict, field: "[1].tunnel_ip", msg: `chassis "node3"`},
		{name: "ok delete after its hosts", ops: []Op{
			deleteSubnet("vpc-a", "172.18.21.0-24"), deleteHost("vpc-a", "vm1"),
			deleteSubnet("vpc-b", "vm9-net"), deleteHost("vpc-b", "vm9"),
			deleteChassis("node1"),
			createChassis(Chassis{Name: "node1b", OVSDB: "tcp:192.168.100.11:6640", Bridge: "br-vpc", TunnelIP: ip("192.168.100.11")}),
		}},
	})
}

func TestChassisCanonicalForm(t *testing.T) {
	s := chassisStore(t)
	out := mustApply(t, s, createChassis(Chassis{Name: "node3", OVSDB: "tcp:192.168.100.13", Bridge: "br-vpc",
		TunnelIP: ip("192.168.100.13"), Controller: "tcp:[fd00::fe]:6653"}))
	c := out[0].Chassis()
	if c.OVSDB != "tcp:192.168.100.13:6640" || c.Controller != "tcp:[fd00::fe]:6653" || c.ID != 3 {
		t.Fatalf("created chassis = %+v", c)
	}
	out = mustApply(t, s, createChassis(Chassis{Name: "node4", OVSDB: "unix:/run//node4/../node4/db.sock", Bridge: "br-vpc", TunnelIP: ip("192.168.100.14")}))
	if got := out[0].Chassis().OVSDB; got != "unix:/run/node4/db.sock" {
		t.Fatalf("unix endpoint stored as %q", got)
	}
	s.Read(func(st *State) {
		if got, _ := st.Chassis("node3"); got != *c {
			t.Errorf("stored %+v, returned %+v", got, *c)
		}
	})
}

func TestChassisHostRules(t *testing.T) {
	base := func() Host {
		return Host{VPC: "vpc-a", Name: "vm3", VSwitch: "vsw-a", IP: ip("10.10.10.23"), MAC: mac("02:00:00:00:00:23"), Chassis: "node1", Interface: "vnet3"}
	}
	with := func(f func(h *Host)) []Op {
		h := base()
		f(&h)
		return []Op{createHost(h)}
	}
	runRuleCasesOn(t, chassisStore, []ruleCase{
		{name: "ok", ops: with(func(h *Host) {})},
		{name: "ok same interface on another chassis", ops: with(func(h *Host) { h.Chassis = "node2"; h.Interface = "vnet9" })},
		{name: "ok same interface name as a bridge host", ops: with(func(h *Host) { h.Interface = "vnet5" })},
		{name: "ok bridge host with a chassis host's interface", ops: with(func(h *Host) { h.Chassis = ""; h.Bridge = "br-vpc"; h.Interface = "vnet1" })},
		{name: "missing chassis", ops: with(func(h *Host) { h.Chassis = "node9" }), kind: ErrNotFound, field: "chassis", msg: `chassis "node9" does not exist`},
		{name: "bad chassis name", ops: with(func(h *Host) { h.Chassis = "node/1" }), kind: ErrInvalid, field: "chassis", msg: "not a valid name"},
		{name: "chassis without interface", ops: with(func(h *Host) { h.Interface = "" }), kind: ErrInvalid, field: "interface", msg: `required with chassis "node1"`},
		{name: "chassis and bridge", ops: with(func(h *Host) { h.Bridge = "br-vpc" }), kind: ErrInvalid, field: "chassis", msg: "not both"},
		{name: "chassis and dpid+ofport", ops: with(func(h *Host) { h.DPID, h.OFPort = 1, 9 }), kind: ErrInvalid, field: "dpid", msg: "chassis+interface or dpid+ofport, not both"},
		{name: "chassis and ofport", ops: with(func(h *Host) { h.OFPort = 9 }), kind: ErrInvalid, field: "ofport", msg: "not both"},
		{name: "interface with space", ops: with(func(h *Host) { h.Interface = "vnet 3" }), kind: ErrInvalid, field: "interface"},
		{name: "interface taken on the chassis", ops: with(func(h *Host) { h.Interface = "vnet1" }), kind: ErrConflict, field: "interface",
			msg: `interface "vnet1" of chassis "node1" is already attached as host "vm1" in VPC "vpc-a"`},
		{name: "interface taken across VPCs", ops: []Op{
			createVSwitch(VSwitch{VPC: "vpc-b", Name: "w2", CIDR: pfx("10.2.0.0/24")}),
			createHost(Host{VPC: "vpc-b", Name: "x", VSwitch: "w2", IP: ip("10.2.0.5"), MAC: mac("02:00:00:00:00:55"), Chassis: "node2", Interface: "vnet1"}),
		}, kind: ErrConflict, field: "[1].interface", msg: `host "vm2" in VPC "vpc-a"`},
		{name: "chassis created in the same batch", ops: []Op{
			createChassis(Chassis{Name: "node3", OVSDB: "tcp:192.168.100.13:6640", Bridge: "br-vpc", TunnelIP: ip("192.168.100.13")}),
			createHost(Host{VPC: "vpc-a", Name: "vm3", VSwitch: "vsw-a", IP: ip("10.10.10.23"), MAC: mac("02:00:00:00:00:23"), Chassis: "node3", Interface: "vnet1"}),
		}},
		{name: "chassis deleted earlier in the batch", ops: []Op{
			deleteChassis("node2"),
		}, kind: ErrConflict, field: "name", msg: "vpc-a/vm2"},
		{name: "interface freed earlier in the batch", ops: []Op{
			deleteHost("vpc-a", "vm2"),
			createHost(Host{VPC: "vpc-a", Name: "vm2b", VSwitch: "vsw-a", IP: ip("10.10.10.24"), MAC: mac("02:00:00:00:00:24"), Chassis: "node2", Interface: "vnet1"}),
		}},
	})
}

func TestChassisAccessors(t *testing.T) {
	s := chassisStore(t)
	s.Read(func(st *State) {
		var names []string
		for _, c := range st.AllChassis() {
			names = append(names, c.Name)
		}
		for _, h := range st.HostsOnChassis("node1") {
			names = append(names, h.VPC+"/"+h.Name)
		}
		for _, h := range st.HostsOnChassis("node2") {
			names = append(names, h.VPC+"/"+h.Name)
		}
		if got, want := strings.Join(names, " "), "node1 node2 vpc-a/vm1 vpc-b/vm9 vpc-a/vm2"; got != want {
			t.Errorf("got %q, want %q", got, want)
		}
		c, ok := st.Chassis("node2")
		if !ok || c.ID != 2 || c.Controller != "tcp:192.168.100.254:6653" || c.TunnelIP != ip("192.168.100.12") {
			t.Errorf("Chassis(node2) = %+v, %v", c, ok)
		}
		if _, ok := st.Chassis("nope"); ok {
			t.Error("unknown chassis found")
		}
		if hs := st.HostsOnChassis("nope"); hs == nil || len(hs) != 0 {
			t.Errorf("HostsOnChassis(nope) = %#v, want empty", hs)
		}
		// Hosts on a chassis are ordinary hosts everywhere else.
		if h, ok := st.Host("vpc-a", "vm1"); !ok || h.Chassis != "node1" || h.Interface != "vnet1" || h.Bridge != "" || h.DPID != 0 {
			t.Errorf("Host(vm1) = %+v", h)
		}
		hs := st.HostsOnChassis("node1")
		hs[0].MAC[0] = 0xff
		if h, _ := st.Host("vpc-a", "vm1"); h.MAC[0] != 0x02 {
			t.Error("HostsOnChassis returned shared MAC storage")
		}
	})
	empty := newStore(t)
	empty.Read(func(st *State) {
		if cs := st.AllChassis(); cs == nil || len(cs) != 0 {
			t.Errorf("AllChassis of an empty store = %#v, want empty", cs)
		}
	})
}

func TestChassisCascade(t *testing.T) {
	cases := []struct {
		name string
		op   Op
		want string
		left string // chassis: hosts on them
	}{{
		name: "chassis with hosts in two VPCs",
		op:   cascade(deleteChassis("node1")),
		want: "delete chassis node1 #1\n" +
			"delete subnet vpc-a/172.18.21.0-24 #3\n" +
			"delete subnet vpc-b/vm9-net #4\n" +
			"delete host vpc-a/vm1 #3\n" +
			"delete host vpc-b/vm9 #5\n",
		left: "node2: vpc-a/vm2",
	}, {
		name: "chassis with a host without subnets",
		op:   cascade(deleteChassis("node2")),
		want: "delete chassis node2 #2\n" +
			"delete host vpc-a/vm2 #4\n",
		left: "node1: vpc-a/vm1 vpc-b/vm9",
	}, {
		name: "VPC cascade frees the chassis",
		op:   cascade(deleteVPC("vpc-b")),
		want: "delete vpc vpc-b #2\n" +
			"delete subnet vpc-b/vm9-net #4\n" +
			"delete host vpc-b/vm9 #5\n" +
			"delete vswitch vpc-b/w #2\n",
		left: "node1: vpc-a/vm1; node2: vpc-a/vm2",
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openStore(t, dir)
			mustApply(t, s, chassisSeedOps()...)
			out := mustApply(t, s, tc.op)
			if got := describeOps(t, out); got != tc.want {
				t.Fatalf("resolved ops:\n%s\nwant:\n%s", got, tc.want)
			}
			if got := chassisLeft(s); got != tc.left {
				t.Fatalf("left %q, want %q", got, tc.left)
			}
			before := dump(s)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openStore(t, dir)
			defer s.Close()
			if after := dump(s); after != before {
				t.Fatalf("after reopen:\n%s\nwant:\n%s", after, before)
			}
		})
	}

	// After a cascade, the chassis's tunnel IP, OVSDB bridge and
	// interfaces are free again; its ID is not reused.
	s := chassisStore(t)
	mustApply(t, s, cascade(deleteChassis("node1")))
	out := mustApply(t, s,
		createChassis(Chassis{Name: "node1", OVSDB: "tcp:192.168.100.11:6640", Bridge: "br-vpc", TunnelIP: ip("192.168.100.11")}),
		createHost(Host{VPC: "vpc-a", Name: "vm1", VSwitch: "vsw-a", IP: ip("10.10.10.21"), MAC: mac("02:00:00:00:00:21"), Chassis: "node1", Interface: "vnet1"}),
	)
	if out[0].Chassis().ID != 3 {
		t.Errorf("re-created chassis ID = %d, want 3", out[0].Chassis().ID)
	}
	// Without cascade, an emptied chassis goes.
	mustApply(t, s, deleteHost("vpc-a", "vm1"))
	out = mustApply(t, s, deleteChassis("node1"))
	if old, ok := out[0].Old.(*Chassis); !ok || *old != *out[0].Chassis() || out[0].Chassis().TunnelIP != ip("192.168.100.11") {
		t.Errorf("delete result %+v, old %+v", out[0].Chassis(), out[0].Old)
	}
}

// chassisLeft describes every chassis and the hosts on it.
func chassisLeft(s *Store) string {
	var parts []string
	s.Read(func(st *State) {
		for _, c := range st.AllChassis() {
			var hs []string
			for _, h := range st.HostsOnChassis(c.Name) {
				hs = append(hs, h.VPC+"/"+h.Name)
			}
			parts = append(parts, c.Name+": "+strings.Join(hs, " "))
		}
	})
	return strings.Join(parts, "; ")
}

func TestChassisBatchAllOrNothing(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	mustApply(t, s, chassisSeedOps()...)
	before := dump(s)
	_, err := s.Apply(context.Background(), []Op{
		createChassis(Chassis{Name: "node3", OVSDB: "tcp:192.168.100.13:6640", Bridge: "br-vpc", TunnelIP: ip("192.168.100.13")}),
		createHost(Host{VPC: "vpc-a", Name: "vm3", VSwitch: "vsw-a", IP: ip("10.10.10.23"), MAC: mac("02:00:00:00:00:23"), Chassis: "node3", Interface: "vnet1"}),
		cascade(deleteChassis("node1")),
		deleteChassis("node2"), // vm2 is still on it
	})
	e, ok := AsError(err)
	if !ok || e.Kind != ErrConflict || e.Field != "[3].name" {
		t.Fatalf("got %v, want [3].name conflict", err)
	}
	if after := dump(s); after != before {
		t.Fatalf("state changed by a rejected batch:\nbefore %s\nafter %s", before, after)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir)
	defer s.Close()
	if after := dump(s); after != before {
		t.Fatalf("state on disk changed by a rejected batch:\nbefore %s\nafter %s", before, after)
	}
	out := mustApply(t, s, createChassis(Chassis{Name: "node3", OVSDB: "tcp:192.168.100.13:6640", Bridge: "br-vpc", TunnelIP: ip("192.168.100.13")}))
	if out[0].Chassis().ID != 3 {
		t.Fatalf("chassis ID = %d, want 3 (IDs of a rejected batch are not consumed)", out[0].Chassis().ID)
	}
}

func TestChassisReopen(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	mustApply(t, s, chassisSeedOps()...)
	mustApply(t, s, createChassis(Chassis{Name: "node3", OVSDB: "tcp:192.168.100.13:6640", Bridge: "br-vpc", TunnelIP: ip("192.168.100.13")}))
	mustApply(t, s, deleteChassis("node3"))
	before := dump(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir)
	defer s.Close()
	if after := dump(s); after != before {
		t.Fatalf("reopened state differs:\nbefore %s\nafter %s", before, after)
	}
	// Indexes were rebuilt.
	for _, tc := range []struct {
		op    Op
		field string
	}{
		{createChassis(Chassis{Name: "x", OVSDB: "tcp:192.168.100.99:6640", Bridge: "br-vpc", TunnelIP: ip("192.168.100.11")}), "tunnel_ip"},
		{createChassis(Chassis{Name: "x", OVSDB: "unix:/var/run/openvswitch/db.sock", Bridge: "br-vpc", TunnelIP: ip("192.168.100.99")}), "ovsdb"},
		{createHost(Host{VPC: "vpc-a", Name: "x", VSwitch: "vsw-a", IP: ip("10.10.10.99"), MAC: mac("02:00:00:00:00:99"), Chassis: "node1", Interface: "vnet1"}), "interface"},
		{deleteChassis("node1"), "name"},
	} {
		_, err := s.Apply(context.Background(), []Op{tc.op})
		if e, ok := AsError(err); !ok || e.Kind != ErrConflict || e.Field != tc.field {
			t.Errorf("after reopen, %+v: %v, want a conflict on %s", tc.op, err, tc.field)
		}
	}
	out := mustApply(t, s, createChassis(Chassis{Name: "node3", OVSDB: "tcp:192.168.100.13:6640", Bridge: "br-vpc", TunnelIP: ip("192.168.100.13")}))
	if out[0].Chassis().ID != 4 {
		t.Fatalf("chassis ID after reopen = %d, want 4 (never reused)", out[0].Chassis().ID)
	}
}

// TestOpenSchemaV1 opens a store as vpcflow with schema 1 left it: no
// chassis bucket, no chassis counter. It opens, is upgraded to schema 2,
// keeps everything, and takes chassis.
func TestOpenSchemaV1(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	mustApply(t, s, seedOps()...)
	before := dump(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, DBFileName)
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket([]byte("chassis")); err != nil {
			return err
		}
		meta := tx.Bucket([]byte(bucketMeta))
		if err := meta.Delete([]byte(metaLastID + "chassis")); err != nil {
			return err
		}
		return meta.Put([]byte(metaSchema), []byte("1"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s = openStore(t, dir)
	if after := dump(s); after != before {
		t.Fatalf("v1 store read differently:\nbefore %s\nafter %s", before, after)
	}
	out := mustApply(t, s,
		createChassis(Chassis{Name: "node1", OVSDB: "tcp:192.168.100.11:6640", Bridge: "br-vpc", TunnelIP: ip("192.168.100.11")}),
		createHost(Host{VPC: "vpc-a", Name: "vm1", VSwitch: "vsw-a", IP: ip("10.10.10.21"), MAC: mac("02:00:00:00:00:21"), Chassis: "node1", Interface: "vnet1"}),
	)
	if out[0].Chassis().ID != 1 || out[1].Host().ID != 3 {
		t.Fatalf("IDs after upgrade: chassis %d host %d, want 1 and 3", out[0].Chassis().ID, out[1].Host().ID)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	var schema string
	var stored []byte
	_ = db.View(func(tx *bolt.Tx) error {
		schema = string(tx.Bucket([]byte(bucketMeta)).Get([]byte(metaSchema)))
		stored = append(stored, tx.Bucket([]byte("chassis")).Get([]byte("node1"))...)
		return nil
	})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if schema != SchemaVersion || SchemaVersion != "4" {
		t.Errorf("schema after upgrade = %q, want %q", schema, "4")
	}
	var c Chassis
	if err := json.Unmarshal(stored, &c); err != nil || c.Name != "node1" || c.TunnelIP != ip("192.168.100.11") {
		t.Errorf("stored chassis %s: %+v, %v", stored, c, err)
	}
	s = openStore(t, dir)
	defer s.Close()
	s.Read(func(st *State) {
		if hs := st.HostsOnChassis("node1"); len(hs) != 1 || hs[0].Name != "vm1" {
			t.Errorf("after reopen, hosts on node1 = %+v", hs)
		}
	})
}

// TestOpenRejectsBadChassisData checks that what the store loads is held
// to the same rules as what it accepts.
func TestOpenRejectsBadChassisData(t *testing.T) {
	cases := []struct {
		name   string
		bucket string
		key    string
		val    string
		want   string
	}{
		{"host on a missing chassis", "host", "vpc-a/ghost",
			`{"id":9,"vpc":"vpc-a","name":"ghost","vswitch":"vsw-a","ip":"10.10.10.99","mac":"02:00:00:00:00:99","chassis":"nope","interface":"vnet1"}`,
			`refers to missing chassis "nope"`},
		{"host on a chassis and a bridge", "host", "vpc-a/ghost",
			`{"id":9,"vpc":"vpc-a","name":"ghost","vswitch":"vsw-a","ip":"10.10.10.99","mac":"02:00:00:00:00:99","chassis":"node1","bridge":"br-vpc","interface":"vnet1"}`,
			"invalid: chassis: give either"},
		{"host on a taken chassis interface", "host", "vpc-a/zz",
			`{"id":9,"vpc":"vpc-a","name":"zz","vswitch":"vsw-a","ip":"10.10.10.99","mac":"02:00:00:00:00:99","chassis":"node1","interface":"vnet1"}`,
			"already attached as host \"vm1\" in VPC \"vpc-a\""},
		{"chassis under the wrong key", "chassis", "other",
			`{"id":9,"name":"node9","ovsdb":"tcp:192.168.100.19:6640","bridge":"br-vpc","tunnel_ip":"192.168.100.19"}`,
			"wrong key"},
		{"chassis with a duplicate tunnel IP", "chassis", "node9",
			`{"id":9,"name":"node9","ovsdb":"tcp:192.168.100.19:6640","bridge":"br-vpc","tunnel_ip":"192.168.100.11"}`,
			"is already the tunnel IP of chassis"},
		{"chassis with a taken bridge", "chassis", "node9",
			`{"id":9,"name":"node9","ovsdb":"tcp:192.168.100.11:6640","bridge":"br-vpc","tunnel_ip":"192.168.100.19"}`,
			`already hosts chassis "node1"`},
		{"chassis that is not JSON", "chassis", "node9", `{`, "decode"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openStore(t, dir)
			mustApply(t, s, chassisSeedOps()...)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			db, err := bolt.Open(filepath.Join(dir, DBFileName), 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(func(tx *bolt.Tx) error {
				return tx.Bucket([]byte(tc.bucket)).Put([]byte(tc.key), []byte(tc.val))
			}); err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			_, err = Open(context.Background(), dir, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// FuzzValidateChassis runs arbitrary chassis through validation against
// the chassis seed. It must never panic or change the state, and what it
// accepts must be usable: a canonical endpoint, a unicast IPv4 tunnel IP,
// unique names, tunnel IPs and OVSDB bridges.
func FuzzValidateChassis(f *testing.F) {
	for _, s := range []string{
		`{"name":"node3","ovsdb":"tcp:192.168.100.13:6640","bridge":"br-vpc","tunnel_ip":"192.168.100.13"}`,
		`{"name":"node3","ovsdb":"tcp:192.168.100.13","bridge":"br-vpc","tunnel_ip":"192.168.100.13","controller":"tcp:1.2.3.4:6653"}`,
		`{"name":"node3","ovsdb":"unix:rel.sock","bridge":"br-vpc","tunnel_ip":"192.168.100.13"}`,
		`{"name":"node1","ovsdb":"tcp:[::1]:6640","bridge":"br vpc","tunnel_ip":"fe80::1"}`,
		`{"name":"node3","ovsdb":"tcp:192.168.100.11:6640","bridge":"br-vpc","tunnel_ip":"192.168.100.12","controller":"ptcp:1"}`,
		`{}`,
	} {
		f.Add([]byte(s))
	}
	s := newStore(f)
	if _, err := s.Apply(context.Background(), chassisSeedOps()); err != nil {
		f.Fatal(err)
	}
	before := dump(s)
	f.Fuzz(func(t *testing.T, data []byte) {
		var c Chassis
		if err := json.Unmarshal(data, &c); err != nil {
			return
		}
		ctx := context.Background()
		cc := c
		out, err := s.Check(ctx, []Op{{Kind: OpCreate, Obj: &cc}})
		if err == nil {
			got := out[0].Chassis()
			canon, verr := ValidateOVSDB("ovsdb", got.OVSDB)
			if verr != nil || canon != got.OVSDB || ValidateTunnelIP("tunnel_ip", got.TunnelIP) != nil ||
				ValidateName("name", got.Name) != nil || validateIfaceName("bridge", got.Bridge) != nil || got.ID == 0 {
				t.Fatalf("accepted an invalid chassis: %+v", got)
			}
			s.Read(func(st *State) {
				for _, o := range st.AllChassis() {
					if o.Name == got.Name || o.TunnelIP == got.TunnelIP || (o.OVSDB == got.OVSDB && o.Bridge == got.Bridge) {
						t.Fatalf("accepted a chassis that clashes with %+v: %+v", o, got)
					}
				}
			})
		} else if _, ok := AsError(err); !ok {
			t.Fatalf("non-*Error from validation: %v", err)
		}
		cd := c
		if _, err := s.Check(ctx, []Op{{Kind: OpDelete, Obj: &cd, Cascade: true}}); err != nil {
			if _, ok := AsError(err); !ok {
				t.Fatalf("non-*Error from delete validation: %v", err)
			}
		}
		if after := dump(s); after != before {
			t.Fatalf("Check changed the state")
		}
	})
}

// ValidateOVSDB writes every accepted endpoint the one way vpcflow keys its
// OVSDB connections by; ssl: like tcp:.
func TestValidateOVSDBCanonical(t *testing.T) {
	for in, want := range map[string]string{
		"tcp:192.168.100.13":      "tcp:192.168.100.13:6640",
		"ssl:192.168.100.13":      "ssl:192.168.100.13:6640",
		"ssl:node3.example.com":   "ssl:node3.example.com:6640",
		"ssl:[fd00::13]":          "ssl:[fd00::13]:6640",
		"ssl:192.168.100.13:6641": "ssl:192.168.100.13:6641",
		"unix:/run/db.sock":       "unix:/run/db.sock",
	} {
		got, err := ValidateOVSDB("ovsdb", in)
		if err != nil || got != want {
			t.Errorf("ValidateOVSDB(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
