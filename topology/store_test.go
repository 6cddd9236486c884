package topology

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestBadBatchLeavesStoreUnchanged(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	mustApply(t, s, seedOps()...)
	before := dump(s)

	bad := []Op{
		createVSwitch(VSwitch{VPC: "vpc-a", Name: "vsw-b", CIDR: pfx("10.20.0.0/24")}),
		createHost(Host{VPC: "vpc-a", Name: "test3", VSwitch: "vsw-b", IP: ip("10.20.0.3"), MAC: mac("02:00:00:00:00:03"), DPID: 4, OFPort: 1}),
		moveSubnet("vpc-a", "ten-99", "test3"),
		deleteSubnet("vpc-a", "172.18.1.0-24"),
		deleteHost("vpc-a", "test1"),
		// test1 is gone, so this IP is free, but the MAC is the gateway's.
		createHost(Host{VPC: "vpc-a", Name: "test1", VSwitch: "vsw-a", IP: ip("10.10.10.11"), MAC: mac("ee:ff:ff:ff:ff:ff"), DPID: 4, OFPort: 2}),
	}
	_, err := s.Apply(context.Background(), bad)
	e, ok := AsError(err)
	if !ok || e.Kind != ErrInvalid || e.Field != "[5].mac" {
		t.Fatalf("got %v, want [5].mac invalid", err)
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
	// IDs handed out during the rejected batch were not consumed.
	out := mustApply(t, s, createVSwitch(VSwitch{VPC: "vpc-a", Name: "vsw-b", CIDR: pfx("10.20.0.0/24")}))
	if out[0].VSwitch().ID != 2 {
		t.Fatalf("vSwitch ID = %d, want 2", out[0].VSwitch().ID)
	}
}

func TestReopenRestoresEverything(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	mustApply(t, s, seedOps()...)
	mustApply(t, s,
		createHost(Host{VPC: "vpc-a", Name: "test3", VSwitch: "vsw-a", IP: ip("10.10.10.13"), MAC: mac("02:00:00:00:00:03"), Bridge: "br-test", Interface: "vnet5"}),
		createSubnet(Subnet{VPC: "vpc-a", CIDR: pfx("172.18.5.0/24"), Host: "test3"}),
		createVPC(VPC{Name: "vpc-c", CIDR: pfx("192.168.0.0/16"), DecTTL: true}),
	)
	// Delete the newest of each kind: their IDs must not come back.
	mustApply(t, s,
		deleteSubnet("vpc-a", "172.18.5.0-24"),
		deleteHost("vpc-a", "test3"),
		deleteVPC("vpc-c"),
	)
	mustApply(t, s, moveSubnet("vpc-a", "ten-99", "test1"))
	before := dump(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(context.Background(), []Op{createVPC(VPC{Name: "late"})}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Apply after Close: %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	s = openStore(t, dir)
	defer s.Close()
	if after := dump(s); after != before {
		t.Fatalf("reopened state differs:\nbefore %s\nafter %s", before, after)
	}
	s.Read(func(st *State) {
		if sub, _ := st.Subnet("vpc-a", "ten-99"); sub.Host != "test1" {
			t.Errorf("moved subnet lost its new host: %+v", sub)
		}
		h, ok := st.Host("vpc-a", "test2")
		if !ok || h.DPID != 1 || h.OFPort != 3 || h.MAC.String() != "52:58:00:98:c0:92" {
			t.Errorf("test2 after reopen = %+v", h)
		}
	})
	// Indexes were rebuilt: conflicts are still detected.
	_, err := s.Apply(context.Background(), []Op{createHost(Host{VPC: "vpc-a", Name: "x", VSwitch: "vsw-a", IP: ip("10.10.10.12"), MAC: mac("02:00:00:00:00:09"), DPID: 9, OFPort: 9})})
	if e, ok := AsError(err); !ok || e.Kind != ErrConflict || e.Field != "ip" {
		t.Fatalf("IP index not rebuilt: %v", err)
	}
	out := mustApply(t, s,
		createVPC(VPC{Name: "vpc-d"}),
		createHost(Host{VPC: "vpc-a", Name: "test4", VSwitch: "vsw-a", IP: ip("10.10.10.14"), MAC: mac("02:00:00:00:00:04"), Bridge: "br-test", Interface: "vnet5"}),
		createSubnet(Subnet{VPC: "vpc-a", CIDR: pfx("172.18.6.0/24"), Host: "test4"}),
	)
	if out[0].VPC().ID != 4 || out[1].Host().ID != 4 || out[2].Subnet().ID != 4 {
		t.Fatalf("IDs after reopen: vpc %d host %d subnet %d, want 4 4 4 (never reused)", out[0].VPC().ID, out[1].Host().ID, out[2].Subnet().ID)
	}
}

func TestBatchSeesEarlierOps(t *testing.T) {
	s := newStore(t)
	out := mustApply(t, s, seedOps()...)
	if len(out) != 7 {
		t.Fatalf("got %d ops", len(out))
	}
	wantIDs := []uint32{1, 2, 1, 1, 2, 1, 2}
	for i, op := range out {
		_, _, obj := target(op)
		var id uint32
		switch o := obj.(type) {
		case *VPC:
			id = o.ID
		case *VSwitch:
			id = o.ID
		case *Host:
			id = o.ID
		case *Subnet:
			id = o.ID
		}
		if id != wantIDs[i] || op.Kind != OpCreate || op.Old != nil {
			t.Errorf("op %d: id %d kind %s old %v; want id %d create nil", i, id, op.Kind, op.Old, wantIDs[i])
		}
	}
	// Delete and re-create in one batch: the new object gets a new ID.
	out = mustApply(t, s,
		deleteSubnet("vpc-a", "ten-99"),
		createSubnet(Subnet{VPC: "vpc-a", Name: "ten-99", CIDR: pfx("10.99.2.0/24"), Host: "test1"}),
	)
	if old, ok := out[0].Old.(*Subnet); !ok || old.ID != 2 || out[0].Subnet().CIDR != pfx("10.99.1.0/24") {
		t.Fatalf("delete result: %+v old %+v", out[0].Subnet(), out[0].Old)
	}
	if out[1].Subnet().ID != 3 {
		t.Fatalf("re-created subnet ID = %d, want 3", out[1].Subnet().ID)
	}
	// A delete carries the whole object.
	out = mustApply(t, s, deleteSubnet("vpc-a", "ten-99"), deleteHost("vpc-a", "test2"))
	h := out[1].Host()
	if h.IP != ip("10.10.10.12") || h.MAC.String() != "52:58:00:98:c0:92" || h.ID != 2 || out[1].Old.(*Host).Name != "test2" {
		t.Fatalf("deleted host = %+v", h)
	}
	// Later ops see earlier ones within a batch: the IP is free again.
	mustApply(t, s, createHost(Host{VPC: "vpc-a", Name: "test2b", VSwitch: "vsw-a", IP: ip("10.10.10.12"), MAC: mac("02:00:00:00:00:12"), DPID: 1, OFPort: 3}))
}

func TestReturnedOpsAreCopies(t *testing.T) {
	s := seededStore(t)
	h := Host{VPC: "vpc-a", Name: "test3", VSwitch: "vsw-a", IP: ip("10.10.10.13"), MAC: mac("02:00:00:00:00:03"), DPID: 4, OFPort: 1}
	op := createHost(h)
	out := mustApply(t, s, op)
	op.Host().MAC[5] = 0x77
	out[0].Host().MAC[5] = 0x66
	out[0].Host().Name = "mutated"
	s.Read(func(st *State) {
		got, ok := st.Host("vpc-a", "test3")
		if !ok || got.MAC.String() != "02:00:00:00:00:03" {
			t.Fatalf("stored host changed through a caller's pointer: %+v", got)
		}
		got.MAC[0] = 0xff
	})
	s.Read(func(st *State) {
		if got, _ := st.Host("vpc-a", "test3"); got.MAC[0] != 0x02 {
			t.Fatal("accessor returned shared MAC storage")
		}
	})
}

func TestAccessors(t *testing.T) {
	s := seededStore(t)
	mustApply(t, s,
		createVSwitch(VSwitch{VPC: "vpc-b", Name: "w", CIDR: pfx("10.1.0.0/24")}),
		createHost(Host{VPC: "vpc-b", Name: "a", VSwitch: "w", IP: ip("10.1.0.5"), MAC: mac("02:00:00:00:00:05"), DPID: 5, OFPort: 5}),
	)
	s.Read(func(st *State) {
		var names []string
		for _, v := range st.VPCs() {
			names = append(names, v.Name)
		}
		for _, h := range st.AllHosts() {
			names = append(names, h.VPC+"/"+h.Name)
		}
		for _, x := range st.Subnets("vpc-a") {
			names = append(names, x.Name)
		}
		if got, want := strings.Join(names, " "), "vpc-a vpc-b vpc-a/test1 vpc-a/test2 vpc-b/a 172.18.1.0-24 ten-99"; got != want {
			t.Errorf("got %q\nwant %q", got, want)
		}
		if len(st.Hosts("nope")) != 0 || len(st.VSwitches("nope")) != 0 || len(st.Subnets("nope")) != 0 || len(st.SubnetsOfHost("nope", "x")) != 0 {
			t.Error("lists of an unknown VPC are not empty")
		}
		if st.Hosts("nope") == nil {
			t.Error("list of an unknown VPC is nil, want empty")
		}
		if _, ok := st.VPC("nope"); ok {
			t.Error("unknown VPC found")
		}
		if _, ok := st.VSwitch("vpc-a", "nope"); ok {
			t.Error("unknown vSwitch found")
		}
		if h, ok := st.HostByIP("vpc-a", ip("10.10.10.12")); !ok || h.Name != "test2" {
			t.Errorf("HostByIP = %+v %v", h, ok)
		}
		if hs := st.HostsOfVSwitch("vpc-a", "vsw-a"); len(hs) != 2 || hs[0].Name != "test1" {
			t.Errorf("HostsOfVSwitch = %+v", hs)
		}
		if n, none := st.HostCountOfVSwitch("vpc-a", "vsw-a"), st.HostCountOfVSwitch("vpc-a", "nope"); n != 2 || none != 0 {
			t.Errorf("HostCountOfVSwitch = %d (want 2), of an unknown vSwitch %d", n, none)
		}
		if v, w, h, n := st.Counts(); v != 2 || w != 2 || h != 3 || n != 2 {
			t.Errorf("Counts = %d %d %d %d", v, w, h, n)
		}
	})
}

func TestCheckDoesNotStore(t *testing.T) {
	s := seededStore(t)
	before := dump(s)
	out, err := s.Check(context.Background(), []Op{createVPC(VPC{Name: "vpc-c"})})
	if err != nil || out[0].VPC().ID != 3 {
		t.Fatalf("Check = %+v, %v", out, err)
	}
	if dump(s) != before {
		t.Fatal("Check changed the state")
	}
}

func TestCancelledContext(t *testing.T) {
	s := seededStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Apply(ctx, []Op{createVPC(VPC{Name: "vpc-c"})}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Apply with cancelled ctx: %v", err)
	}
	if _, err := Open(ctx, t.TempDir(), nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Open with cancelled ctx: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	mustApply(t, s, seedOps()...)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Unsupported schema.
	db, err := bolt.Open(filepath.Join(dir, DBFileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketMeta)).Put([]byte(metaSchema), []byte("99"))
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), dir, nil); err == nil || !strings.Contains(err.Error(), `schema version "99"`) {
		t.Fatalf("Open of a v99 store: %v", err)
	}

	// A host whose VPC is missing.
	dir2 := t.TempDir()
	s = openStore(t, dir2)
	mustApply(t, s, seedOps()...)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = bolt.Open(filepath.Join(dir2, DBFileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("host")).Put([]byte("ghost/h"), []byte(`{"id":9,"vpc":"ghost","name":"h","vswitch":"w","ip":"10.0.0.1","mac":"02:00:00:00:00:01","dpid":"0000000000000001","ofport":1}`))
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), dir2, nil); err == nil || !strings.Contains(err.Error(), `missing VPC "ghost"`) {
		t.Fatalf("Open of a store with a dangling host: %v", err)
	}

	// A path that cannot be a directory.
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), filepath.Join(f, "sub"), nil); err == nil {
		t.Fatal("Open under a regular file succeeded")
	}
}

func TestConcurrentReadersAndWriters(t *testing.T) {
	s := seededStore(t)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				name := fmt.Sprintf("h%d-%d", w, i)
				_, err := s.Apply(context.Background(), []Op{createHost(Host{VPC: "vpc-a", Name: name, VSwitch: "vsw-a", IP: ipN("10.10.10.0", 20+w*20+i), MAC: MAC{2, 0, 0, 0, byte(w), byte(i)}, DPID: DPID(100 + w), OFPort: uint32(i + 1)})})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				s.Read(func(st *State) {
					for _, h := range st.Hosts("vpc-a") {
						if _, ok := st.VSwitch("vpc-a", h.VSwitch); !ok {
							t.Errorf("host %s without vSwitch", h.Name)
						}
					}
				})
			}
		}()
	}
	wg.Wait()
	s.Read(func(st *State) {
		if n := len(st.Hosts("vpc-a")); n != 82 {
			t.Fatalf("%d hosts, want 82", n)
		}
	})
}

// TestScale50k loads 50,000 hosts, each with a subnet, in one Apply, then
// checks that single-op changes do not get slower with the number of hosts.
func TestScale50k(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	const n = 50000
	dir := t.TempDir()
	s := openStore(t, dir)
	defer func() { _ = s.Close() }()
	mustApply(t, s,
		createVPC(VPC{Name: "big", CIDR: pfx("10.0.0.0/8")}),
		createVSwitch(VSwitch{VPC: "big", Name: "w", CIDR: pfx("10.128.0.0/16")}),
	)
	ops := make([]Op, 0, 2*n)
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("h%05d", i)
		ops = append(ops,
			createHost(Host{VPC: "big", Name: name, VSwitch: "w", IP: netip.AddrFrom4([4]byte{10, 128, byte((i + 1) >> 8), byte(i + 1)}), MAC: MAC{2, 0, 0, byte(i >> 16), byte(i >> 8), byte(i)}, Bridge: "br-int", Interface: "vnet" + name}),
			createSubnet(Subnet{VPC: "big", CIDR: netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(16 + i>>16), byte(i >> 8), byte(i)}), 32), Host: name}),
		)
	}
	start := time.Now()
	if _, err := s.Check(context.Background(), ops); err != nil {
		t.Fatal(err)
	}
	validate := time.Since(start)
	start = time.Now()
	mustApply(t, s, ops...)
	total := time.Since(start)
	t.Logf("%d ops: Check (validate, perform and undo in memory) %v, Apply (validate + bbolt tx) %v", len(ops), validate, total)

	one := func(i int) []Op {
		name := fmt.Sprintf("x%d", i)
		return []Op{createHost(Host{VPC: "big", Name: name, VSwitch: "w", IP: netip.AddrFrom4([4]byte{10, 128, 250, byte(i)}), MAC: MAC{2, 1, 0, 0, 0, byte(i)}, DPID: 1, OFPort: uint32(i + 1)})}
	}
	start = time.Now()
	const reps = 200
	for i := 0; i < reps; i++ {
		if _, err := s.Check(context.Background(), one(i)); err != nil {
			t.Fatal(err)
		}
	}
	per := time.Since(start) / reps
	t.Logf("single-op validation with %d hosts: %v", n, per)
	// A vSwitch overlap check against 50k subnets. (Timings are logged;
	// BenchmarkCheck measures them.)
	start = time.Now()
	_, err := s.Check(context.Background(), []Op{createVSwitch(VSwitch{VPC: "big", Name: "w2", CIDR: pfx("10.129.0.0/16")})})
	if err != nil {
		t.Errorf("vSwitch create check: %v", err)
	}
	t.Logf("vSwitch create check with %d subnets: %v", n, time.Since(start))
	_, err = s.Check(context.Background(), []Op{deleteHost("big", "h00007")})
	if e, ok := AsError(err); !ok || e.Kind != ErrConflict {
		t.Errorf("delete of a next hop: %v", err)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	s = openStore(t, dir)
	t.Logf("reopen with %d hosts and subnets: %v", n, time.Since(start))
	s.Read(func(st *State) {
		if _, _, h, sn := st.Counts(); h != n || sn != n {
			t.Fatalf("after reopen: %d hosts, %d subnets", h, sn)
		}
	})
}
