package topology

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"unsafe"
)

// TestSlabSizesToTheBatch: a slab array is as long as the objects still to
// come, at most size; a batch of one gets an array of one.
func TestSlabSizesToTheBatch(t *testing.T) {
	s := slab[Host]{left: 1, size: hostSlabLen}
	s.next()
	if len(s.free) != 0 || cap(s.free) != 0 {
		t.Fatalf("a batch of one left %d spare hosts", cap(s.free))
	}
	s = slab[Host]{left: hostSlabLen + 3, size: hostSlabLen}
	first := s.next()
	if len(s.free) != hostSlabLen-1 {
		t.Fatalf("the first array has %d hosts left, want %d", len(s.free), hostSlabLen-1)
	}
	for range hostSlabLen - 1 {
		s.next()
	}
	s.next()
	if len(s.free) != 2 {
		t.Fatalf("the last array has %d hosts left, want 2", len(s.free))
	}
	if got := int(unsafe.Sizeof(Host{})) * hostSlabLen; got > 8192 {
		t.Fatalf("a host slab is %d bytes, more than a span", got)
	}
	_ = first
}

// TestBatchHostsShareSlabs: the hosts one Apply and one load store sit
// next to each other in memory, in slabs of hostSlabLen, and the caller's
// copies are not the stored ones.
func TestBatchHostsShareSlabs(t *testing.T) {
	ctx := context.Background()
	s, backend := slabStore(t)
	n := hostSlabLen + 5
	var ops []Op
	for i := range n {
		ops = append(ops, Create(&Host{VPC: "v", Name: fmt.Sprintf("h%03d", i), VSwitch: "w",
			IP: netip.AddrFrom4([4]byte{10, 0, 1, byte(i)}), MAC: MAC{2, 0, 0, 0, 1, byte(i)}, DPID: 1, OFPort: uint32(i + 1)}))
	}
	mustApply(t, s, ops...)
	adjacent := func(s *Store) {
		t.Helper()
		s.Read(func(st *State) {
			var addrs []uintptr
			for i := range n {
				o, _ := st.get(hostKind{}, vpcKey("v", fmt.Sprintf("h%03d", i)))
				if o == ops[i].Obj {
					t.Fatal("the state keeps the caller's host")
				}
				addrs = append(addrs, uintptr(unsafe.Pointer(o.(*Host))))
			}
			slices.Sort(addrs)
			together := 0
			for i := 1; i < len(addrs); i++ {
				if addrs[i]-addrs[i-1] == unsafe.Sizeof(Host{}) {
					together++
				}
			}
			// Two slabs: one break between them.
			if together != n-2 {
				t.Errorf("%d of %d hosts follow another in memory, want %d", together, n-1, n-2)
			}
		})
	}
	adjacent(s)
	// A load decodes into slabs too.
	s2, err := NewStore(ctx, backend, nil)
	if err != nil {
		t.Fatal(err)
	}
	adjacent(s2)
}

// TestBatchTextIsPacked: a batch's host names and MACs are copied one
// after the other into one array (not each into its own tiny block among
// the request's garbage), owned by the state: the caller's MAC changing
// later changes nothing stored. A load packs them the same way.
func TestBatchTextIsPacked(t *testing.T) {
	ctx := context.Background()
	s, backend := slabStore(t)
	const n = 40
	var ops []Op
	for i := range n {
		ops = append(ops, Create(&Host{VPC: "v", Name: fmt.Sprintf("h%03d", i), VSwitch: "w",
			IP: netip.AddrFrom4([4]byte{10, 0, 1, byte(i)}), MAC: MAC{2, 0, 0, 0, 1, byte(i)}, DPID: 1, OFPort: uint32(i + 1)}))
	}
	mustApply(t, s, ops...)
	ops[3].Host().MAC[5] = 0xff
	var entries []Op // named by their CIDR (DefaultSubnetName) once checked
	for i := range n {
		entries = append(entries, Create(&Subnet{VPC: "v", Host: fmt.Sprintf("h%03d", i), CIDR: netip.MustParsePrefix(fmt.Sprintf("11.0.%d.0/24", i))}))
	}
	mustApply(t, s, entries...)
	packed := func(what string, s *Store) {
		t.Helper()
		s.Read(func(st *State) {
			lo, hi, total := ^uintptr(0), uintptr(0), uintptr(0)
			for i := range n {
				o, ok := st.get(hostKind{}, vpcKey("v", fmt.Sprintf("h%03d", i)))
				if !ok {
					t.Fatalf("%s: host h%03d missing", what, i)
				}
				h := o.(*Host)
				if h.MAC[5] != byte(i) {
					t.Fatalf("%s: stored MAC of h%03d is %s: it shares the caller's bytes", what, i, h.MAC)
				}
				if cap(h.MAC) != len(h.MAC) {
					t.Fatalf("%s: h%03d's MAC has room to grow into its neighbour's bytes", what, i)
				}
				name := uintptr(unsafe.Pointer(unsafe.StringData(h.Name)))
				mac := uintptr(unsafe.Pointer(&h.MAC[0]))
				lo = min(lo, name, mac)
				hi = max(hi, name+uintptr(len(h.Name)), mac+uintptr(len(h.MAC)))
				total += uintptr(len(h.Name) + len(h.MAC))
			}
			if hi-lo != total {
				t.Errorf("%s: the hosts' %d bytes of names and MACs span %d bytes, want one array of exactly them", what, total, hi-lo)
			}
			lo, hi, total = ^uintptr(0), 0, 0
			for i := range n {
				o, ok := st.get(subnetKind{}, vpcKey("v", fmt.Sprintf("11.0.%d.0-24", i)))
				if !ok {
					t.Fatalf("%s: route entry 11.0.%d.0-24 missing", what, i)
				}
				name := o.(*Subnet).Name
				at := uintptr(unsafe.Pointer(unsafe.StringData(name)))
				lo, hi, total = min(lo, at), max(hi, at+uintptr(len(name))), total+uintptr(len(name))
			}
			if hi-lo != total {
				t.Errorf("%s: the route entries' %d bytes of names span %d bytes, want one array of exactly them", what, total, hi-lo)
			}
		})
	}
	packed("after the batch", s)
	s2, err := NewStore(ctx, backend, nil)
	if err != nil {
		t.Fatal(err)
	}
	packed("after a load", s2)
}

// slabStore is a store in memory with VPC v and its vSwitch w.
func slabStore(t *testing.T) (*Store, Backend) {
	t.Helper()
	backend := NewMemory()
	s, err := NewStore(context.Background(), backend, nil)
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, s, Create(&VPC{Name: "v"}), Create(&VSwitch{VPC: "v", Name: "w", CIDR: netip.MustParsePrefix("10.0.0.0/16")}))
	return s, backend
}
