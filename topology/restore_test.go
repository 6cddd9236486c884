package topology

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
)

// records lists what the backend holds, one "kind key value" line each,
// sorted.
func records(t *testing.T, s *Store) []string {
	t.Helper()
	snap, err := s.Backend().Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range snap.Records {
		out = append(out, r.Kind+" "+r.Key+" "+string(r.Value))
	}
	sort.Strings(out)
	return out
}

// memRecords lists the in-memory state the same way.
func memRecords(s *Store) []string {
	var out []string
	s.Read(func(st *State) {
		for _, k := range kinds() {
			for o := range st.tables[k.name()].byID.all() {
				key := o.Key()
				b, _ := marshalObject(o)
				out = append(out, k.name()+" "+key+" "+string(b))
			}
		}
	})
	sort.Strings(out)
	return out
}

func opLines(ops []Op) []string {
	var out []string
	for _, op := range ops {
		out = append(out, fmt.Sprintf("%s %s %s#%d", op.Kind, KindOf(op.Obj), op.Obj.Key(), op.Obj.ObjectID()))
	}
	return out
}

// An online restore brings the store back to a snapshot: the objects
// changed since are put back (IDs included), the ones created since go,
// the deleted ones return, in one commit and in dependency order; the
// objects that did not change get no op at all.
func TestApplySnapshot(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir)
	mustApply(t, s, seedOps()...)
	mustApply(t, s, Op{Kind: OpCreate, Obj: &SecurityGroup{VPC: "vpc-a", Name: "sg-web"}})
	mustApply(t, s, Op{Kind: OpUpdate, Obj: &Host{VPC: "vpc-a", Name: "test1", VSwitch: "vsw-a", IP: ip("10.10.10.11"),
		MAC: mac("52:58:00:98:c0:81"), Bridge: "br-test", Interface: "vnet1", SecurityGroups: []string{"sg-web"}}})
	snap, err := s.Backend().Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := records(t, s)

	// Changes after the backup: test2's MAC, a new host with a route
	// entry, a route entry deleted and one re-created under the same name
	// (another ID), a VPC deleted, another created.
	mustApply(t, s,
		Op{Kind: OpUpdate, Obj: &Host{VPC: "vpc-a", Name: "test2", VSwitch: "vsw-a", IP: ip("10.10.10.12"), MAC: mac("52:58:00:98:c0:99"), DPID: 1, OFPort: 3}},
		createHost(Host{VPC: "vpc-a", Name: "test3", VSwitch: "vsw-a", IP: ip("10.10.10.13"), MAC: mac("52:58:00:98:c0:a3"), DPID: 1, OFPort: 4}),
		createSubnet(Subnet{VPC: "vpc-a", Name: "to-3", CIDR: pfx("172.18.9.0/24"), Host: "test3"}),
		deleteSubnet("vpc-a", "172.18.1.0-24"),
		deleteSubnet("vpc-a", "ten-99"),
		createSubnet(Subnet{VPC: "vpc-a", Name: "ten-99", CIDR: pfx("10.99.1.0/24"), Host: "test2"}),
		deleteVPC("vpc-b"),
		createVPC(VPC{Name: "vpc-c"}),
	)
	lastBefore := s.lastIDs()

	// A dry run says what would change and changes nothing.
	before := records(t, s)
	dry, unchanged, err := s.ApplySnapshot(ctx, snap, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := records(t, s); strings.Join(got, "\n") != strings.Join(before, "\n") {
		t.Fatal("a dry run changed the store")
	}
	ops, unchanged2, err := s.ApplySnapshot(ctx, snap, false)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(opLines(dry), "\n") != strings.Join(opLines(ops), "\n") || unchanged != unchanged2 {
		t.Errorf("dry run %v (%d unchanged) and run %v (%d) differ", opLines(dry), unchanged, opLines(ops), unchanged2)
	}
	wantOps := []string{
		"delete subnet vpc-a/ten-99#4", // re-created since: another ID
		"delete subnet vpc-a/to-3#3",
		"delete host vpc-a/test3#3",
		"delete vpc vpc-c#3",
		"create vpc vpc-b#2",
		"update host vpc-a/test2#2",
		"create subnet vpc-a/172.18.1.0-24#1",
		"create subnet vpc-a/ten-99#2",
	}
	if got := opLines(ops); strings.Join(got, "\n") != strings.Join(wantOps, "\n") {
		t.Errorf("ops:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantOps, "\n"))
	}
	// vpc-a, vsw-a, test1, sg-web.
	if unchanged != 4 {
		t.Errorf("unchanged = %d, want 4", unchanged)
	}
	for _, op := range ops {
		if op.Kind != OpCreate && op.Old == nil {
			t.Errorf("%s: Old not set", op.Kind)
		}
	}
	if got := records(t, s); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("on disk after the restore:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := memRecords(s); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("in memory after the restore:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// IDs are never handed out twice: the counters are the larger.
	for k, v := range lastBefore {
		if got := s.lastIDs()[k]; got < v {
			t.Errorf("last %s ID went back from %d to %d", k, v, got)
		}
	}
	out := mustApply(t, s, createVPC(VPC{Name: "vpc-d"}))
	if out[0].Obj.ObjectID() != 4 {
		t.Errorf("a VPC created after the restore got ID %d, want 4", out[0].Obj.ObjectID())
	}
	// The indexes were rebuilt: test3's IP is free again, test2's old MAC
	// is taken.
	mustApply(t, s, createHost(Host{VPC: "vpc-a", Name: "test3", VSwitch: "vsw-a", IP: ip("10.10.10.13"), MAC: mac("52:58:00:98:c0:a3"), DPID: 1, OFPort: 4}))
	if _, err := s.Apply(ctx, []Op{createHost(Host{VPC: "vpc-a", Name: "test4", VSwitch: "vsw-a", IP: ip("10.10.10.14"), MAC: mac("52:58:00:98:c0:92"), DPID: 1, OFPort: 5})}); err == nil {
		t.Error("test2's MAC from the backup is not indexed after the restore")
	}
	// What is on disk opens to the same.
	mem := memRecords(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir)
	defer s.Close()
	if got := memRecords(s); strings.Join(got, "\n") != strings.Join(mem, "\n") {
		t.Errorf("reopened:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(mem, "\n"))
	}
	// The same snapshot again changes nothing.
	ops, _, err = s.ApplySnapshot(ctx, snap, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != 2 { // vpc-d and test3, created since
		t.Errorf("ops %v, want the deletes of vpc-d and test3", opLines(ops))
	}
	if ops, _, err := s.ApplySnapshot(ctx, snap, false); err != nil || len(ops) != 0 {
		t.Errorf("second restore of the same snapshot: %v %v", opLines(ops), err)
	}
}

// A snapshot that does not load (a dangling reference, a duplicate
// unique value, an unknown kind) is refused and nothing changes.
func TestApplySnapshotRefusesInvalid(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	mustApply(t, s, seedOps()...)
	snap, err := s.Backend().Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before := records(t, s)
	for name, mutate := range map[string]func(Snapshot) Snapshot{
		"dangling reference": func(sn Snapshot) Snapshot {
			var out Snapshot
			for _, r := range sn.Records {
				if r.Kind != "vswitch" {
					out.Records = append(out.Records, r)
				}
			}
			return out
		},
		"unknown kind": func(sn Snapshot) Snapshot {
			sn.Records = append(append([]Record{}, sn.Records...), Record{Kind: "gizmo", Key: "x", Value: []byte(`{}`)})
			return sn
		},
		"bad JSON": func(sn Snapshot) Snapshot {
			sn.Records = append(append([]Record{}, sn.Records...), Record{Kind: "vpc", Key: "vpc-z", Value: []byte(`{"id":`)})
			return sn
		},
		"wrong key": func(sn Snapshot) Snapshot {
			sn.Records = append(append([]Record{}, sn.Records...), Record{Kind: "vpc", Key: "vpc-z", Value: []byte(`{"id":9,"name":"vpc-y"}`)})
			return sn
		},
	} {
		if _, _, err := s.ApplySnapshot(ctx, mutate(snap), false); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
		if got := records(t, s); strings.Join(got, "\n") != strings.Join(before, "\n") {
			t.Fatalf("%s: the store changed", name)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ApplySnapshot(ctx, snap, false); err == nil {
		t.Error("a closed store accepted a snapshot")
	}
}
