package topology

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// TestUniqueIndexSurvivesHashCollisions: the unique indexes find holders by
// a hash of the value; with every value hashing alike, conflicts are
// still found exactly (no false conflict between different values, no
// missed one between equal values), and deletes and updates keep the
// index right.
func TestUniqueIndexSurvivesHashCollisions(t *testing.T) {
	ctx := context.Background()
	s, err := NewStore(ctx, NewMemory(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s.st.hash = func(string) uint64 { return 42 }
	must := func(ops ...Op) {
		t.Helper()
		if _, err := s.Apply(ctx, ops); err != nil {
			t.Fatal(err)
		}
	}
	host := func(i int) *Host {
		return &Host{VPC: "v", Name: fmt.Sprintf("h%d", i), VSwitch: "w", IP: netip.AddrFrom4([4]byte{10, 0, 0, byte(10 + i)}),
			MAC: MAC{2, 0, 0, 0, 0, byte(i)}, DPID: 1, OFPort: uint32(i + 1)}
	}
	must(Create(&VPC{Name: "v"}), Create(&VSwitch{VPC: "v", Name: "w", CIDR: netip.MustParsePrefix("10.0.0.0/24")}))
	for i := range 5 {
		must(Create(host(i)))
	}
	dup := host(7)
	dup.IP = host(3).IP
	if _, err := s.Apply(ctx, []Op{Create(dup)}); err == nil {
		t.Fatal("a host with another's address was stored")
	}
	must(Delete(&Host{VPC: "v", Name: "h0"}, false)) // the first holder of the hash
	s.Read(func(st *State) {
		for i := 1; i < 5; i++ {
			h, ok := st.HostByIP("v", host(i).IP)
			if !ok || h.Name != host(i).Name {
				t.Errorf("HostByIP(%s) = %q %v, want %s", host(i).IP, h.Name, ok, host(i).Name)
			}
		}
		if _, ok := st.HostByIP("v", host(0).IP); ok {
			t.Error("a deleted host's address still has a holder")
		}
	})
	if _, err := s.Apply(ctx, []Op{Create(dup)}); err == nil {
		t.Fatal("a host with another's address was stored after a delete")
	}
	must(Create(host(0))) // its address is free again
	moved := host(2)
	moved.OFPort = 99
	must(Update(moved))
	taken := host(8)
	taken.OFPort = 99
	if _, err := s.Apply(ctx, []Op{Create(taken)}); err == nil {
		t.Fatal("a host on a port another moved to was stored")
	}
	taken.OFPort = 3 // h2's old port: free since the update
	must(Create(taken))
}

// TestReplaceRemovesReferrersFirst: another replica's change applied as
// one (State.replace) that deletes a host and updates its VPC, then one
// that deletes a vSwitch with its host while the VPC changes again,
// leaves the reference index exact: no entry of a removed object under
// an object that stays (the index finds a referrer's entry through the
// object it refers to, so referrers must go out first).
func TestReplaceRemovesReferrersFirst(t *testing.T) {
	ctx := context.Background()
	s, err := NewStore(ctx, NewMemory(), nil)
	if err != nil {
		t.Fatal(err)
	}
	host := func(i int) *Host {
		return &Host{VPC: "v", Name: fmt.Sprintf("h%d", i), VSwitch: "w", IP: netip.AddrFrom4([4]byte{10, 0, 0, byte(10 + i)}),
			MAC: MAC{2, 0, 0, 0, 0, byte(i)}, DPID: 1, OFPort: uint32(i + 1)}
	}
	if _, err := s.Apply(ctx, []Op{Create(&VPC{Name: "v"}), Create(&VSwitch{VPC: "v", Name: "w", CIDR: netip.MustParsePrefix("10.0.0.0/24")}),
		Create(host(1)), Create(host(2))}); err != nil {
		t.Fatal(err)
	}
	check := func(step string) {
		t.Helper()
		for tg, l := range s.st.referrers {
			from := s.st.order[tg.from]
			l.each(func(id refEntry) bool {
				if _, ok := s.st.getByID(from, id); !ok {
					t.Errorf("%s: the index lists %s %d, which is gone, as a referrer", step, from.name(), id)
				}
				return true
			})
		}
	}
	vpc, _ := s.st.get(vpcKind{}, "v")
	h1, _ := s.st.get(hostKind{}, "v/h1")
	changed := vpc.clone().(*VPC)
	changed.DecTTL = !changed.DecTTL
	s.mu.Lock()
	s.st.replace([]Op{{Kind: OpDelete, Obj: h1.clone(), Old: h1.clone()}, {Kind: OpUpdate, Obj: changed, Old: vpc.clone()}})
	s.mu.Unlock()
	check("host deleted, VPC updated")
	s.Read(func(st *State) {
		if got := st.referrersOf(vpcKind{}, "v", hostKind{}); len(got) != 1 || got[0] != "v/h2" {
			t.Errorf("the VPC's hosts: %v, want [v/h2]", got)
		}
	})
	w, _ := s.st.get(vswitchKind{}, "v/w")
	h2, _ := s.st.get(hostKind{}, "v/h2")
	again := changed.clone().(*VPC)
	again.DecTTL = !again.DecTTL
	s.mu.Lock()
	s.st.replace([]Op{{Kind: OpDelete, Obj: h2.clone(), Old: h2.clone()}, {Kind: OpDelete, Obj: w.clone(), Old: w.clone()},
		{Kind: OpUpdate, Obj: again, Old: changed.clone()}})
	s.mu.Unlock()
	check("vSwitch and host deleted, VPC updated")
	if len(s.st.referrers) != 0 {
		t.Errorf("the reference index keeps %d lists with only the VPC left", len(s.st.referrers))
	}
}

// TestMACAppendToIsString: the unique index keys a host's MAC as String
// writes it; AppendTo must write the same bytes.
func TestMACAppendToIsString(t *testing.T) {
	for _, m := range []MAC{nil, {0xee}, {0x52, 0x54, 0, 0xab, 0xcd, 0xef}, {0, 0, 0, 0, 0, 0, 0, 0xff}} {
		if got, want := string(m.AppendTo([]byte("x"))), "x"+m.String(); got != want {
			t.Errorf("AppendTo(%v) = %q, want %q", []byte(m), got, want)
		}
	}
}

// TestEachHostAndSubnet: the visitors see exactly what the copying
// accessors list (a VPC's hosts, a vSwitch's, a VPC's route entries, a
// host's), and stop when told to.
func TestEachHostAndSubnet(t *testing.T) {
	s := newStore(t)
	mustApply(t, s, seedOps()...)
	mustApply(t, s,
		createVSwitch(VSwitch{VPC: "vpc-a", Name: "vsw-b", CIDR: pfx("10.10.20.0/24")}),
		createHost(Host{VPC: "vpc-a", Name: "test3", VSwitch: "vsw-b", IP: ip("10.10.20.3"), MAC: mac("52:58:00:98:c0:a3"), DPID: 1, OFPort: 4}),
		createSubnet(Subnet{VPC: "vpc-a", CIDR: pfx("172.18.3.0/24"), Host: "test3"}))
	hosts := func(vpc, vswitch string) string {
		var out []string
		s.Read(func(st *State) {
			st.EachHost(vpc, vswitch, func(h *Host) bool { out = append(out, h.Name); return true })
		})
		slices.Sort(out)
		return strings.Join(out, ",")
	}
	subnets := func(vpc, host string) string {
		var out []string
		s.Read(func(st *State) {
			st.EachSubnet(vpc, host, func(sn *Subnet) bool { out = append(out, sn.Name); return true })
		})
		slices.Sort(out)
		return strings.Join(out, ",")
	}
	for _, c := range []struct{ got, want string }{
		{hosts("vpc-a", ""), "test1,test2,test3"},
		{hosts("vpc-a", "vsw-a"), "test1,test2"},
		{hosts("vpc-a", "vsw-b"), "test3"},
		{hosts("vpc-a", "nope"), ""},
		{hosts("vpc-b", ""), ""},
		{subnets("vpc-a", ""), "172.18.1.0-24,172.18.3.0-24,ten-99"},
		{subnets("vpc-a", "test3"), "172.18.3.0-24"},
		{subnets("vpc-a", "nope"), ""},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	n := 0
	s.Read(func(st *State) { st.EachHost("vpc-a", "", func(*Host) bool { n++; return false }) })
	if n != 1 {
		t.Errorf("EachHost went on after false: %d calls", n)
	}
	// Clone shares nothing with the stored host.
	s.Read(func(st *State) {
		st.EachHost("vpc-a", "vsw-b", func(h *Host) bool {
			c := h.Clone()
			c.MAC[0] = 0xff
			if h.MAC[0] == 0xff {
				t.Error("Clone shares the MAC")
			}
			return true
		})
	})
}
