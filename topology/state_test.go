package topology

import (
	"context"
	"fmt"
	"net/netip"
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
