package topology

import (
	"context"
	"net/netip"
	"strings"
	"testing"
)

// ruleCase is one change applied to the seeded store (see seedOps).
type ruleCase struct {
	name  string
	ops   []Op
	kind  ErrorKind // 0: must succeed
	field string
	msg   string // substring of the error message
}

func runRuleCases(t *testing.T, cases []ruleCase) {
	t.Helper()
	runRuleCasesOn(t, seededStore, cases)
}

// runRuleCasesOn runs each case on a fresh store from setup.
func runRuleCasesOn(t *testing.T, setup func(testing.TB) *Store, cases []ruleCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := setup(t)
			before := dump(s)
			out, err := s.Apply(context.Background(), c.ops)
			if c.kind == 0 {
				if err != nil {
					t.Fatalf("want success, got %v", err)
				}
				if len(out) != len(c.ops) {
					t.Fatalf("got %d ops back, want %d", len(out), len(c.ops))
				}
				return
			}
			if err == nil {
				t.Fatalf("want error %d on %q, got success: %+v", c.kind, c.field, out)
			}
			e, ok := AsError(err)
			if !ok {
				t.Fatalf("want *Error, got %T %v", err, err)
			}
			if e.Kind != c.kind || e.Field != c.field || !strings.Contains(e.Msg, c.msg) {
				t.Fatalf("got kind=%d field=%q msg=%q; want kind=%d field=%q msg containing %q", e.Kind, e.Field, e.Msg, c.kind, c.field, c.msg)
			}
			if after := dump(s); after != before {
				t.Fatalf("rejected change altered the state:\nbefore %s\nafter %s", before, after)
			}
		})
	}
}

func TestVPCRules(t *testing.T) {
	long := strings.Repeat("a", 63)
	runRuleCases(t, []ruleCase{
		{name: "ok minimal", ops: []Op{createVPC(VPC{Name: "vpc-c"})}},
		{name: "ok full", ops: []Op{createVPC(VPC{Name: "vpc-c", CIDR: pfx("172.16.0.0/12"), DecTTL: true})}},
		{name: "ok 63 chars, dots, underscores", ops: []Op{createVPC(VPC{Name: long}), createVPC(VPC{Name: "A.b_c-9"})}},
		{name: "empty name", ops: []Op{createVPC(VPC{})}, kind: ErrInvalid, field: "name", msg: "required"},
		{name: "64 chars", ops: []Op{createVPC(VPC{Name: long + "a"})}, kind: ErrInvalid, field: "name", msg: "too long"},
		{name: "slash", ops: []Op{createVPC(VPC{Name: "a/b"})}, kind: ErrInvalid, field: "name", msg: "not a valid name"},
		{name: "dotdot", ops: []Op{createVPC(VPC{Name: ".."})}, kind: ErrInvalid, field: "name", msg: "not a valid name"},
		{name: "leading dash", ops: []Op{createVPC(VPC{Name: "-a"})}, kind: ErrInvalid, field: "name"},
		{name: "leading dot", ops: []Op{createVPC(VPC{Name: ".a"})}, kind: ErrInvalid, field: "name"},
		{name: "space", ops: []Op{createVPC(VPC{Name: "a b"})}, kind: ErrInvalid, field: "name"},
		{name: "unicode", ops: []Op{createVPC(VPC{Name: "vpcé"})}, kind: ErrInvalid, field: "name"},
		{name: "duplicate", ops: []Op{createVPC(VPC{Name: "vpc-a"})}, kind: ErrConflict, field: "name", msg: "already exists"},
		{name: "ipv6 cidr", ops: []Op{createVPC(VPC{Name: "v6", CIDR: pfx("fd00::/8")})}, kind: ErrInvalid, field: "cidr", msg: "must be IPv4"},
		{name: "4in6 cidr", ops: []Op{createVPC(VPC{Name: "v6", CIDR: pfx("::ffff:10.0.0.0/104")})}, kind: ErrInvalid, field: "cidr", msg: "must be IPv4"},
		{name: "non-canonical cidr", ops: []Op{createVPC(VPC{Name: "v", CIDR: pfx("10.1.2.3/8")})}, kind: ErrInvalid, field: "cidr", msg: "did you mean 10.0.0.0/8"},
		{name: "cidr too wide", ops: []Op{createVPC(VPC{Name: "v", CIDR: pfx("0.0.0.0/0")})}, kind: ErrInvalid, field: "cidr", msg: "between /8 and /29"},
	})
}

func TestVSwitchRules(t *testing.T) {
	vsw := func(vpc, name, cidr, gw string) Op {
		w := VSwitch{VPC: vpc, Name: name}
		if cidr != "" {
			w.CIDR = pfx(cidr)
		}
		if gw != "" {
			w.Gateway = ip(gw)
		}
		return createVSwitch(w)
	}
	runRuleCases(t, []ruleCase{
		{name: "ok", ops: []Op{vsw("vpc-a", "vsw-b", "10.20.0.0/24", "")}},
		{name: "loopback", ops: []Op{vsw("vpc-b", "lo", "127.0.0.0/24", "")}, kind: ErrInvalid, field: "cidr", msg: "loopback (127.0.0.0/8)"},
		{name: "link-local", ops: []Op{vsw("vpc-b", "ll", "169.254.1.0/24", "")}, kind: ErrInvalid, field: "cidr", msg: "link-local"},
		{name: "multicast", ops: []Op{vsw("vpc-b", "mc", "224.1.0.0/16", "")}, kind: ErrInvalid, field: "cidr", msg: "multicast"},
		{name: "this network", ops: []Op{vsw("vpc-b", "zero", "0.0.1.0/24", "")}, kind: ErrInvalid, field: "cidr", msg: "this network"},
		{name: "reserved", ops: []Op{vsw("vpc-b", "res", "250.0.0.0/24", "")}, kind: ErrInvalid, field: "cidr", msg: "240.0.0.0/4"},
		{name: "limited broadcast", ops: []Op{vsw("vpc-b", "bc", "255.255.255.0/24", "")}, kind: ErrInvalid, field: "cidr", msg: "240.0.0.0/4"},
		{name: "ok /16 and /29", ops: []Op{vsw("vpc-a", "b", "10.20.0.0/16", ""), vsw("vpc-a", "c", "10.30.0.0/29", "")}},
		{name: "ok anything in a VPC without cidr", ops: []Op{vsw("vpc-b", "b", "192.168.7.0/24", "192.168.7.200")}},
		{name: "ok same cidr in another VPC", ops: []Op{vsw("vpc-b", "b", "10.10.10.0/24", "")}},
		{name: "missing vpc", ops: []Op{vsw("nope", "b", "10.20.0.0/24", "")}, kind: ErrNotFound, field: "vpc", msg: "does not exist"},
		{name: "empty vpc", ops: []Op{vsw("", "b", "10.20.0.0/24", "")}, kind: ErrInvalid, field: "vpc", msg: "required"},
		{name: "bad name", ops: []Op{vsw("vpc-a", "b/c", "10.20.0.0/24", "")}, kind: ErrInvalid, field: "name"},
		{name: "duplicate name", ops: []Op{vsw("vpc-a", "vsw-a", "10.20.0.0/24", "")}, kind: ErrConflict, field: "name", msg: "already exists"},
		{name: "no cidr", ops: []Op{vsw("vpc-a", "b", "", "")}, kind: ErrInvalid, field: "cidr", msg: "required"},
		{name: "ipv6 cidr", ops: []Op{vsw("vpc-b", "b", "fd00::/64", "")}, kind: ErrInvalid, field: "cidr", msg: "must be IPv4"},
		{name: "non-canonical", ops: []Op{vsw("vpc-a", "b", "10.20.0.1/24", "")}, kind: ErrInvalid, field: "cidr", msg: "did you mean 10.20.0.0/24"},
		{name: "/15", ops: []Op{vsw("vpc-a", "b", "10.20.0.0/15", "")}, kind: ErrInvalid, field: "cidr", msg: "between /16 and /29"},
		{name: "/30", ops: []Op{vsw("vpc-a", "b", "10.20.0.0/30", "")}, kind: ErrInvalid, field: "cidr", msg: "between /16 and /29"},
		{name: "outside VPC cidr", ops: []Op{vsw("vpc-a", "b", "192.168.0.0/24", "")}, kind: ErrInvalid, field: "cidr", msg: "not inside the VPC CIDR 10.0.0.0/8"},
		{name: "contains another", ops: []Op{vsw("vpc-a", "b", "10.10.0.0/16", "")}, kind: ErrConflict, field: "cidr", msg: `overlaps vSwitch "vsw-a"`},
		{name: "inside another", ops: []Op{vsw("vpc-a", "b", "10.10.10.128/25", "")}, kind: ErrConflict, field: "cidr", msg: `overlaps vSwitch "vsw-a"`},
		{name: "equal to another", ops: []Op{vsw("vpc-a", "b", "10.10.10.0/24", "")}, kind: ErrConflict, field: "cidr", msg: `vsw-a`},
		{name: "contains a subnet", ops: []Op{vsw("vpc-a", "b", "10.99.0.0/16", "")}, kind: ErrConflict, field: "cidr", msg: `subnet (route entry) "ten-99" (10.99.1.0/24)`},
		{name: "inside a subnet is allowed (the route contains it; host /32s win)", ops: []Op{vsw("vpc-a", "b", "10.99.1.16/28", "")}},
		{name: "equal to a subnet", ops: []Op{vsw("vpc-a", "b", "10.99.1.0/24", "")}, kind: ErrConflict, field: "cidr", msg: `"ten-99"`},
		{name: "gateway outside", ops: []Op{vsw("vpc-a", "b", "10.20.0.0/24", "10.20.1.1")}, kind: ErrInvalid, field: "gateway", msg: "not inside"},
		{name: "gateway network", ops: []Op{vsw("vpc-a", "b", "10.20.0.0/24", "10.20.0.0")}, kind: ErrInvalid, field: "gateway", msg: "network address"},
		{name: "gateway broadcast", ops: []Op{vsw("vpc-a", "b", "10.20.0.0/24", "10.20.0.255")}, kind: ErrInvalid, field: "gateway", msg: "broadcast address"},
		{name: "gateway ipv6", ops: []Op{vsw("vpc-a", "b", "10.20.0.0/24", "fd00::1")}, kind: ErrInvalid, field: "gateway", msg: "must be IPv4"},
	})
}

func TestVSwitchDefaultGateway(t *testing.T) {
	s := seededStore(t)
	out := mustApply(t, s, createVSwitch(VSwitch{VPC: "vpc-a", Name: "vsw-b", CIDR: pfx("10.19.128.0/20")}))
	if got, want := out[0].VSwitch().Gateway, ip("10.19.143.253"); got != want {
		t.Fatalf("default gateway = %s, want %s (broadcast − 2)", got, want)
	}
	s.Read(func(st *State) {
		w, ok := st.VSwitch("vpc-a", "vsw-b")
		if !ok || w.Gateway != ip("10.19.143.253") || w.ID == 0 {
			t.Fatalf("stored vSwitch = %+v, %v", w, ok)
		}
	})
}

func TestHostRules(t *testing.T) {
	base := func() Host {
		return Host{VPC: "vpc-a", Name: "test3", VSwitch: "vsw-a", IP: ip("10.10.10.13"), MAC: mac("52:58:00:98:c0:93"), Bridge: "br-test", Interface: "vnet5"}
	}
	with := func(f func(h *Host)) []Op {
		h := base()
		f(&h)
		return []Op{createHost(h)}
	}
	byPort := func(h *Host) { h.Bridge, h.Interface, h.DPID, h.OFPort = "", "", 2, 7 }
	runRuleCases(t, []ruleCase{
		{name: "ok bridge+interface", ops: with(func(h *Host) {})},
		{name: "ok dpid+ofport", ops: with(byPort)},
		{name: "MAC of another host in the VPC", ops: with(func(h *Host) { h.MAC = mac("52:58:00:98:c0:81") }), kind: ErrConflict, field: "mac", msg: `already used by host "test1"`},
		{name: "ok MAC of a host in another VPC", ops: []Op{
			createVSwitch(VSwitch{VPC: "vpc-b", Name: "w", CIDR: pfx("10.10.10.0/24")}),
			createHost(Host{VPC: "vpc-b", Name: "twin", VSwitch: "w", IP: ip("10.10.10.11"), MAC: mac("52:58:00:98:c0:81"), DPID: 9, OFPort: 1}),
		}},
		{name: "ok max ofport", ops: with(func(h *Host) { byPort(h); h.OFPort = 0xfffffeff })},
		{name: "ok same interface on another bridge", ops: with(func(h *Host) { h.Bridge = "br-other"; h.Interface = "vnet1" })},
		{name: "ok same port on another dpid", ops: with(func(h *Host) { byPort(h); h.DPID, h.OFPort = 9, 3 })},
		{name: "missing vpc", ops: with(func(h *Host) { h.VPC = "nope" }), kind: ErrNotFound, field: "vpc"},
		{name: "bad name", ops: with(func(h *Host) { h.Name = "../etc" }), kind: ErrInvalid, field: "name"},
		{name: "duplicate name", ops: with(func(h *Host) { h.Name = "test1" }), kind: ErrConflict, field: "name", msg: "already exists"},
		{name: "missing vswitch", ops: with(func(h *Host) { h.VSwitch = "nope" }), kind: ErrNotFound, field: "vswitch", msg: "does not exist"},
		{name: "empty vswitch", ops: with(func(h *Host) { h.VSwitch = "" }), kind: ErrInvalid, field: "vswitch", msg: "required"},
		{name: "vswitch of another VPC", ops: with(func(h *Host) { h.VPC = "vpc-b" }), kind: ErrNotFound, field: "vswitch"},
		{name: "no ip", ops: with(func(h *Host) { h.IP = netip.Addr{} }), kind: ErrInvalid, field: "ip", msg: "required"},
		{name: "ipv6 ip", ops: with(func(h *Host) { h.IP = ip("fd00::13") }), kind: ErrInvalid, field: "ip", msg: "must be IPv4"},
		{name: "4in6 ip", ops: with(func(h *Host) { h.IP = ip("::ffff:10.10.10.13") }), kind: ErrInvalid, field: "ip", msg: "must be IPv4"},
		{name: "ip outside vswitch", ops: with(func(h *Host) { h.IP = ip("10.10.11.13") }), kind: ErrInvalid, field: "ip", msg: `not inside vSwitch "vsw-a"`},
		{name: "ip network", ops: with(func(h *Host) { h.IP = ip("10.10.10.0") }), kind: ErrInvalid, field: "ip", msg: "network address"},
		{name: "ip broadcast", ops: with(func(h *Host) { h.IP = ip("10.10.10.255") }), kind: ErrInvalid, field: "ip", msg: "broadcast address"},
		{name: "ip gateway", ops: with(func(h *Host) { h.IP = ip("10.10.10.1") }), kind: ErrInvalid, field: "ip", msg: "gateway"},
		{name: "ip taken", ops: with(func(h *Host) { h.IP = ip("10.10.10.11") }), kind: ErrConflict, field: "ip", msg: `already used by host "test1"`},
		{name: "no mac", ops: with(func(h *Host) { h.MAC = nil }), kind: ErrInvalid, field: "mac", msg: "required"},
		{name: "multicast mac", ops: with(func(h *Host) { h.MAC = mac("01:00:5e:00:00:01") }), kind: ErrInvalid, field: "mac", msg: "multicast"},
		{name: "broadcast mac", ops: with(func(h *Host) { h.MAC = mac("ff:ff:ff:ff:ff:ff") }), kind: ErrInvalid, field: "mac", msg: "multicast/broadcast"},
		{name: "zero mac", ops: with(func(h *Host) { h.MAC = mac("00:00:00:00:00:00") }), kind: ErrInvalid, field: "mac", msg: "all-zero"},
		{name: "gateway mac", ops: with(func(h *Host) { h.MAC = mac("ee:ff:ff:ff:ff:ff") }), kind: ErrInvalid, field: "mac", msg: "gateway MAC"},
		{name: "8-byte mac", ops: with(func(h *Host) { h.MAC = MAC{2, 0, 0, 0, 0, 0, 0, 1} }), kind: ErrInvalid, field: "mac", msg: "6-byte"},
		{name: "no attachment", ops: with(func(h *Host) { h.Bridge, h.Interface = "", "" }), kind: ErrInvalid, field: "bridge", msg: "bridge+interface, chassis+interface or dpid+ofport"},
		{name: "bridge without interface", ops: with(func(h *Host) { h.Interface = "" }), kind: ErrInvalid, field: "interface", msg: "required with bridge"},
		{name: "interface without bridge", ops: with(func(h *Host) { h.Bridge = "" }), kind: ErrInvalid, field: "bridge", msg: "required with interface"},
		{name: "dpid without ofport", ops: with(func(h *Host) { byPort(h); h.OFPort = 0 }), kind: ErrInvalid, field: "ofport", msg: "required with dpid"},
		{name: "ofport without dpid", ops: with(func(h *Host) { byPort(h); h.DPID = 0 }), kind: ErrInvalid, field: "dpid", msg: "required with ofport"},
		{name: "both attachments", ops: with(func(h *Host) { h.DPID, h.OFPort = 2, 7 }), kind: ErrInvalid, field: "dpid", msg: "not both"},
		{name: "bridge and ofport", ops: with(func(h *Host) { h.OFPort = 7 }), kind: ErrInvalid, field: "ofport", msg: "not both"},
		{name: "ofport reserved", ops: with(func(h *Host) { byPort(h); h.OFPort = 0xfffffffe }), kind: ErrInvalid, field: "ofport", msg: "out of range"},
		{name: "bridge with slash", ops: with(func(h *Host) { h.Bridge = "br/x" }), kind: ErrInvalid, field: "bridge"},
		{name: "interface with space", ops: with(func(h *Host) { h.Interface = "vnet 1" }), kind: ErrInvalid, field: "interface"},
		{name: "interface taken", ops: with(func(h *Host) { h.Interface = "vnet1" }), kind: ErrConflict, field: "interface", msg: `br-test/vnet1 is already attached as host "test1" in VPC "vpc-a"`},
		{name: "port taken", ops: with(func(h *Host) { byPort(h); h.DPID, h.OFPort = 1, 3 }), kind: ErrConflict, field: "ofport", msg: `host "test2"`},
		{name: "ok bridge+interface on a named ovsdb", ops: with(func(h *Host) { h.OVSDB = "tcp:192.0.2.1" })},
		{name: "ok same interface on another ovsdb's bridge", ops: []Op{
			createHost(Host{VPC: "vpc-a", Name: "a", VSwitch: "vsw-a", IP: ip("10.10.10.31"), MAC: mac("02:00:00:00:00:31"), Bridge: "br-x", Interface: "vnet1", OVSDB: "tcp:192.0.2.1"}),
			createHost(Host{VPC: "vpc-a", Name: "b", VSwitch: "vsw-a", IP: ip("10.10.10.32"), MAC: mac("02:00:00:00:00:32"), Bridge: "br-x", Interface: "vnet1", OVSDB: "tcp:192.0.2.2"}),
		}},
		{name: "interface taken on one ovsdb", ops: []Op{
			createHost(Host{VPC: "vpc-a", Name: "a", VSwitch: "vsw-a", IP: ip("10.10.10.31"), MAC: mac("02:00:00:00:00:31"), Bridge: "br-x", Interface: "vnet1", OVSDB: "tcp:192.0.2.1"}),
			createHost(Host{VPC: "vpc-a", Name: "b", VSwitch: "vsw-a", IP: ip("10.10.10.32"), MAC: mac("02:00:00:00:00:32"), Bridge: "br-x", Interface: "vnet1", OVSDB: "tcp:192.0.2.1:6640"}),
		}, kind: ErrConflict, field: "[1].interface", msg: `br-x/vnet1 on tcp:192.0.2.1:6640 is already attached as host "a"`},
		{name: "ovsdb without bridge", ops: with(func(h *Host) { byPort(h); h.OVSDB = "tcp:192.0.2.1" }), kind: ErrInvalid, field: "ovsdb", msg: "only with bridge+interface"},
		{name: "bad ovsdb", ops: with(func(h *Host) { h.OVSDB = "192.0.2.1:6640" }), kind: ErrInvalid, field: "ovsdb", msg: "unknown method"},
		{name: "interface taken in another VPC", ops: []Op{
			createVSwitch(VSwitch{VPC: "vpc-b", Name: "b", CIDR: pfx("10.10.10.0/24")}),
			createHost(Host{VPC: "vpc-b", Name: "x", VSwitch: "b", IP: ip("10.10.10.11"), MAC: mac("52:58:00:98:c0:81"), Bridge: "br-test", Interface: "vnet1"}),
		}, kind: ErrConflict, field: "[1].interface", msg: `in VPC "vpc-a"`},
	})
}

func TestSubnetRules(t *testing.T) {
	sub := func(name, cidr, host string) []Op {
		s := Subnet{VPC: "vpc-a", Name: name, Host: host}
		if cidr != "" {
			s.CIDR = pfx(cidr)
		}
		return []Op{createSubnet(s)}
	}
	runRuleCases(t, []ruleCase{
		{name: "ok", ops: sub("", "172.18.3.0/24", "test2")},
		{name: "ok overlapping another route", ops: sub("", "172.18.0.0/16", "test2")},
		{name: "ok default route containing reserved ranges", ops: sub("", "0.0.0.0/0", "test2")},
		{name: "loopback route", ops: sub("", "127.0.0.1/32", "test2"), kind: ErrInvalid, field: "cidr", msg: "loopback"},
		{name: "multicast route", ops: sub("", "239.1.1.0/24", "test2"), kind: ErrInvalid, field: "cidr", msg: "multicast"},
		{name: "link-local route", ops: sub("", "169.254.169.254/32", "test2"), kind: ErrInvalid, field: "cidr", msg: "link-local"},
		{name: "broadcast route", ops: sub("", "255.255.255.255/32", "test2"), kind: ErrInvalid, field: "cidr", msg: "240.0.0.0/4"},
		{name: "this-network route", ops: sub("", "0.0.0.0/8", "test2"), kind: ErrInvalid, field: "cidr", msg: "this network"},
		{name: "ok /32 and /0 in a VPC without vSwitches", ops: []Op{
			createVSwitch(VSwitch{VPC: "vpc-b", Name: "w", CIDR: pfx("10.1.0.0/24")}),
			createHost(Host{VPC: "vpc-b", Name: "h", VSwitch: "w", IP: ip("10.1.0.5"), MAC: mac("02:00:00:00:00:05"), DPID: 5, OFPort: 5}),
			createSubnet(Subnet{VPC: "vpc-b", CIDR: pfx("10.2.0.7/32"), Host: "h"}),
		}},
		{name: "missing vpc", ops: []Op{createSubnet(Subnet{VPC: "nope", CIDR: pfx("172.18.3.0/24"), Host: "test1"})}, kind: ErrNotFound, field: "vpc"},
		{name: "no cidr", ops: sub("x", "", "test1"), kind: ErrInvalid, field: "cidr", msg: "required"},
		{name: "non-canonical", ops: sub("", "172.18.3.1/24", "test1"), kind: ErrInvalid, field: "cidr", msg: "did you mean 172.18.3.0/24"},
		{name: "ipv6", ops: sub("", "fd00::/64", "test1"), kind: ErrInvalid, field: "cidr", msg: "must be IPv4"},
		{name: "equals vswitch", ops: sub("", "10.10.10.0/24", "test1"), kind: ErrInvalid, field: "cidr", msg: `destination 10.10.10.0/24 overlaps vSwitch "vsw-a" (10.10.10.0/24): it equals`},
		{name: "inside vswitch", ops: sub("", "10.10.10.0/25", "test1"), kind: ErrInvalid, field: "cidr", msg: `overlaps vSwitch "vsw-a" (10.10.10.0/24): it is inside`},
		{name: "containing a vswitch is allowed as on Aliyun", ops: sub("", "10.0.0.0/8", "test1")},
		{name: "inside vswitch", ops: sub("", "10.10.10.64/26", "test1"), kind: ErrInvalid, field: "cidr", msg: `overlaps vSwitch "vsw-a" (10.10.10.0/24): it is inside`},
		{name: "default route to an instance is allowed", ops: sub("default", "0.0.0.0/0", "test1")},
		{name: "missing host", ops: sub("", "172.18.3.0/24", "nope"), kind: ErrNotFound, field: "host", msg: "does not exist"},
		{name: "empty host", ops: sub("", "172.18.3.0/24", ""), kind: ErrInvalid, field: "host", msg: "required"},
		{name: "duplicate cidr", ops: sub("other", "172.18.1.0/24", "test2"), kind: ErrConflict, field: "cidr", msg: `subnet "172.18.1.0-24"`},
		{name: "duplicate name", ops: sub("ten-99", "172.18.9.0/24", "test2"), kind: ErrConflict, field: "name", msg: "already exists"},
		{name: "bad name", ops: sub("a/b", "172.18.9.0/24", "test2"), kind: ErrInvalid, field: "name"},
		{name: "move", ops: []Op{moveSubnet("vpc-a", "172.18.1.0-24", "test2")}},
		{name: "move unknown subnet", ops: []Op{moveSubnet("vpc-a", "nope", "test2")}, kind: ErrNotFound, field: "name"},
		{name: "move to unknown host", ops: []Op{moveSubnet("vpc-a", "ten-99", "nope")}, kind: ErrNotFound, field: "host"},
		{name: "move in unknown vpc", ops: []Op{moveSubnet("nope", "ten-99", "test1")}, kind: ErrNotFound, field: "vpc"},
		{name: "update changing cidr", ops: []Op{{Kind: OpUpdate, Obj: &Subnet{VPC: "vpc-a", Name: "ten-99", CIDR: pfx("10.99.2.0/24"), Host: "test1"}}}, kind: ErrInvalid, field: "cidr", msg: "cannot be changed"},
		{name: "update of a host's IP", ops: []Op{{Kind: OpUpdate, Obj: &Host{VPC: "vpc-a", Name: "test1", IP: ip("10.10.10.99")}}}, kind: ErrInvalid, field: "ip", msg: "cannot be changed"},
		{name: "update of a host's vSwitch", ops: []Op{{Kind: OpUpdate, Obj: &Host{VPC: "vpc-a", Name: "test1", VSwitch: "vsw-b"}}}, kind: ErrInvalid, field: "vswitch", msg: "cannot be changed"},
		{name: "update of a host to a taken MAC", ops: []Op{{Kind: OpUpdate, Obj: &Host{VPC: "vpc-a", Name: "test1", MAC: mac("52:58:00:98:c0:92")}}}, kind: ErrConflict, field: "mac", msg: `already used by host "test2"`},
		{name: "update of a missing host", ops: []Op{{Kind: OpUpdate, Obj: &Host{VPC: "vpc-a", Name: "nope"}}}, kind: ErrNotFound, field: "name", msg: `host "nope" does not exist in VPC "vpc-a"`},
		{name: "update of a vpc", ops: []Op{{Kind: OpUpdate, Obj: &VPC{Name: "vpc-a"}}}, kind: ErrInvalid, msg: "cannot be updated"},
	})
}

func TestSubnetDefaultNameAndMove(t *testing.T) {
	s := seededStore(t)
	out := mustApply(t, s, createSubnet(Subnet{VPC: "vpc-a", CIDR: pfx("172.18.3.0/24"), Host: "test2"}))
	if got := out[0].Subnet().Name; got != "172.18.3.0-24" {
		t.Fatalf("default name = %q", got)
	}
	out = mustApply(t, s, moveSubnet("vpc-a", "172.18.3.0-24", "test1"))
	old, ok := out[0].Old.(*Subnet)
	if !ok || old.Host != "test2" || out[0].Subnet().Host != "test1" || out[0].Subnet().ID != old.ID || out[0].Subnet().CIDR != old.CIDR {
		t.Fatalf("update result = %+v old=%+v", out[0].Subnet(), out[0].Old)
	}
	s.Read(func(st *State) {
		if n := len(st.SubnetsOfHost("vpc-a", "test2")); n != 1 { // ten-99 only
			t.Errorf("test2 has %d subnets, want 1", n)
		}
		if n := len(st.SubnetsOfHost("vpc-a", "test1")); n != 2 {
			t.Errorf("test1 has %d subnets, want 2", n)
		}
	})
}

func TestDeleteRules(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{name: "unknown vpc", ops: []Op{deleteVPC("nope")}, kind: ErrNotFound, field: "name"},
		{name: "unknown vswitch", ops: []Op{deleteVSwitch("vpc-a", "nope")}, kind: ErrNotFound, field: "name"},
		{name: "vswitch in unknown vpc", ops: []Op{deleteVSwitch("nope", "vsw-a")}, kind: ErrNotFound, field: "vpc"},
		{name: "unknown host", ops: []Op{deleteHost("vpc-a", "nope")}, kind: ErrNotFound, field: "name"},
		{name: "host in other vpc", ops: []Op{deleteHost("vpc-b", "test1")}, kind: ErrNotFound, field: "name"},
		{name: "unknown subnet", ops: []Op{deleteSubnet("vpc-a", "nope")}, kind: ErrNotFound, field: "name"},
		{name: "non-empty vpc", ops: []Op{deleteVPC("vpc-a")}, kind: ErrConflict, field: "name", msg: "1 vSwitch (vsw-a), 2 hosts (test1, test2) and 2 subnets (172.18.1.0-24, ten-99)"},
		{name: "vswitch with hosts", ops: []Op{deleteVSwitch("vpc-a", "vsw-a")}, kind: ErrConflict, field: "name", msg: "2 hosts (test1, test2)"},
		{name: "host with subnets", ops: []Op{deleteHost("vpc-a", "test1")}, kind: ErrConflict, field: "name", msg: "is still used by 1 subnet (172.18.1.0-24)"},
		{name: "ok empty vpc", ops: []Op{deleteVPC("vpc-b")}},
		{name: "ok everything in order", ops: []Op{
			deleteSubnet("vpc-a", "172.18.1.0-24"), deleteSubnet("vpc-a", "ten-99"),
			deleteHost("vpc-a", "test1"), deleteHost("vpc-a", "test2"),
			deleteVSwitch("vpc-a", "vsw-a"), deleteVPC("vpc-a"),
		}},
		{name: "everything in the wrong order", ops: []Op{
			deleteSubnet("vpc-a", "172.18.1.0-24"),
			deleteHost("vpc-a", "test1"), deleteHost("vpc-a", "test2"),
		}, kind: ErrConflict, field: "[2].name", msg: "ten-99"},
	})
}

func TestManyHostsInVSwitchMessage(t *testing.T) {
	s := seededStore(t)
	var ops []Op
	for i := 20; i < 30; i++ {
		ops = append(ops, createHost(Host{VPC: "vpc-a", Name: "h" + string(rune('a'+i-20)), VSwitch: "vsw-a", IP: ipN("10.10.10.0", i), MAC: MAC{2, 0, 0, 0, 0, byte(i)}, DPID: 7, OFPort: uint32(i)}))
	}
	mustApply(t, s, ops...)
	_, err := s.Apply(context.Background(), []Op{deleteVSwitch("vpc-a", "vsw-a")})
	e, ok := AsError(err)
	if !ok || e.Kind != ErrConflict || !strings.Contains(e.Msg, "12 hosts (ha, hb, hc and 9 more)") {
		t.Fatalf("got %v", err)
	}
}

func ipN(base string, n int) netip.Addr {
	a := ip(base)
	for range n {
		a = a.Next()
	}
	return a
}

func TestOpShape(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{name: "no object", ops: []Op{{Kind: OpCreate}}, kind: ErrInvalid, msg: "must carry an object"},
		{name: "no kind", ops: []Op{{Obj: &VPC{Name: "x"}}}, kind: ErrInvalid, msg: "unknown change kind"},
		{name: "field-less error in a batch", ops: []Op{createVPC(VPC{Name: "x"}), {Kind: OpCreate}}, kind: ErrInvalid, field: "[1]", msg: "must carry an object"},
	})
}

// TestUpdateHostKeepsIDAndRoutes: a PUT changes a host's MAC and
// attachment; its ID, IP and the route entries whose next hop it is stay.
func TestUpdateHostKeepsIDAndRoutes(t *testing.T) {
	s := seededStore(t)
	var before Host
	s.Read(func(st *State) { before, _ = st.Host("vpc-a", "test1") })
	out := mustApply(t, s, Op{Kind: OpUpdate, Obj: &Host{VPC: "vpc-a", Name: "test1", MAC: mac("02:aa:00:00:00:01"), Bridge: "br-test", Interface: "vnet9"}})
	h := out[0].Host()
	old := out[0].Old.(*Host)
	if h.ID != before.ID || h.IP != before.IP || h.VSwitch != before.VSwitch || h.MAC.String() != "02:aa:00:00:00:01" || h.Interface != "vnet9" {
		t.Fatalf("updated host = %+v (was %+v)", h, before)
	}
	if old.MAC.String() != before.MAC.String() || old.Interface != "vnet1" {
		t.Fatalf("Old = %+v, want the host as it was", old)
	}
	// Only the MAC: the attachment stays.
	out = mustApply(t, s, Op{Kind: OpUpdate, Obj: &Host{VPC: "vpc-a", Name: "test1", MAC: mac("02:aa:00:00:00:02")}})
	if h := out[0].Host(); h.Interface != "vnet9" || h.Bridge != "br-test" {
		t.Fatalf("MAC-only update moved the host: %+v", h)
	}
	s.Read(func(st *State) {
		if subs := st.SubnetsOfHost("vpc-a", "test1"); len(subs) != 1 || subs[0].Name != "172.18.1.0-24" {
			t.Errorf("route entries of test1 after update: %+v", subs)
		}
		// The old attachment is free again, the new one taken.
		if _, err := st.prepare(createHost(Host{VPC: "vpc-a", Name: "x", VSwitch: "vsw-a", IP: ip("10.10.10.50"), MAC: mac("02:bb:00:00:00:01"), Bridge: "br-test", Interface: "vnet1"})); err != nil {
			t.Errorf("old attachment still taken: %v", err)
		}
		if _, err := st.prepare(createHost(Host{VPC: "vpc-a", Name: "x", VSwitch: "vsw-a", IP: ip("10.10.10.50"), MAC: mac("02:bb:00:00:00:01"), Bridge: "br-test", Interface: "vnet9"})); err == nil || err.Field != "interface" {
			t.Errorf("new attachment free: %v", err)
		}
	})
}
