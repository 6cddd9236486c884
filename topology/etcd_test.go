package topology

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/vpcflow/vpcflow/internal/etcdtest"
)

// replica is one Store over the shared etcd store, following the others.
type replica struct {
	*Store
	etcd *Etcd
	mu   sync.Mutex
	seen [][]Op // what subscribers were told, change by change
}

func openReplica(t *testing.T, eps []string, prefix string) *replica {
	t.Helper()
	ctx := context.Background()
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	b, err := OpenEtcd(ctx, EtcdOptions{Endpoints: eps, Prefix: prefix, Init: true}, log)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewStore(ctx, b, log)
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{Store: s, etcd: b}
	s.Subscribe(func(ops []Op) {
		r.mu.Lock()
		r.seen = append(r.seen, ops)
		r.mu.Unlock()
	})
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Follow(fctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Follow: %v", err)
		}
		_ = s.Close()
	})
	return r
}

// told waits until the replica's subscriber has been told at least n
// changes, and returns a copy of what it was told. A replica publishes a
// change before it tells its subscribers, so a state that matches can be
// seen first (reading seen then, a test found it empty, panicked holding
// mu, and the subscriber waited for mu forever).
func (r *replica) told(t *testing.T, n int) [][]Op {
	t.Helper()
	var seen [][]Op
	eventually(t, fmt.Sprintf("the subscriber is told %d changes", n), func() error {
		r.mu.Lock()
		seen = append([][]Op(nil), r.seen...)
		r.mu.Unlock()
		if len(seen) < n {
			return fmt.Errorf("told %d so far", len(seen))
		}
		return nil
	})
	return seen
}

// names lists the VPCs a store holds.
func vpcNames(s *Store) map[string]bool {
	out := map[string]bool{}
	s.Read(func(st *State) {
		for _, v := range st.VPCs() {
			out[v.Name] = true
		}
	})
	return out
}

func eventually(t *testing.T, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sameState compares two stores object by object (and their counters).
func sameState(a, b *Store) error {
	dump := func(s *Store) (string, error) {
		var out []byte
		var err error
		s.Read(func(st *State) {
			m := map[string]any{"ids": st.lastID}
			for _, k := range kinds() {
				objs := map[string]json.RawMessage{}
				for o := range st.tables[k.name()].byID.all() {
					key := o.Key()
					b, e := marshalObject(o)
					if e != nil {
						err = e
					}
					objs[key] = b
				}
				m[k.name()] = objs
			}
			out, _ = json.Marshal(m)
		})
		return string(out), err
	}
	da, err := dump(a)
	if err != nil {
		return err
	}
	db, err := dump(b)
	if err != nil {
		return err
	}
	if da != db {
		return fmt.Errorf("states differ:\n%s\n%s", da, db)
	}
	return nil
}

func TestEtcdOpen(t *testing.T) {
	c := etcdtest.Start(t, 1)
	ctx := context.Background()
	_, err := OpenEtcd(ctx, EtcdOptions{Endpoints: c.Endpoints(), Prefix: "/none"}, nil)
	if !errors.Is(err, ErrNoStore) {
		t.Fatalf("no store, no init: want ErrNoStore, got %v", err)
	}
	b, err := OpenEtcd(ctx, EtcdOptions{Endpoints: c.Endpoints(), Prefix: "/x", Init: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	cli := c.Client()
	if _, err := cli.Put(ctx, "/x/schema", "99"); err != nil {
		t.Fatal(err)
	}
	_, err = OpenEtcd(ctx, EtcdOptions{Endpoints: c.Endpoints(), Prefix: "/x"}, nil)
	if !errors.Is(err, ErrVersion) {
		t.Fatalf("newer schema: want ErrVersion, got %v", err)
	}
	if _, err := cli.Put(ctx, "/x/schema", "2"); err != nil {
		t.Fatal(err)
	}
	b, err = OpenEtcd(ctx, EtcdOptions{Endpoints: c.Endpoints(), Prefix: "/x"}, nil)
	if err != nil {
		t.Fatalf("older schema: %v", err)
	}
	b.Close()
	if g, _ := cli.Get(ctx, "/x/schema"); string(g.Kvs[0].Value) != SchemaVersion {
		t.Errorf("older schema not upgraded: %s", g.Kvs[0].Value)
	}
	start := time.Now()
	_, err = OpenEtcd(ctx, EtcdOptions{Endpoints: []string{"http://127.0.0.1:1"}, DialTimeout: time.Second}, nil)
	if err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("unreachable etcd: %v after %s", err, time.Since(start))
	}
	t.Logf("unreachable etcd: %v", err)
}

// TestEtcdReplicas: two stores over one etcd store; what one commits the
// other has (and its subscribers are told), both can write, and a write
// validated against a state another replica has moved on from is
// validated again.
func TestEtcdReplicas(t *testing.T) {
	c := etcdtest.Start(t, 1)
	a := openReplica(t, c.Endpoints(), "/r")
	b := openReplica(t, c.Endpoints(), "/r")
	mustApply(t, a.Store, seedOps()...)
	eventually(t, "b has the seed", func() error { return sameState(a.Store, b.Store) })
	if seen := b.told(t, 1); len(seen) != 1 || len(seen[0]) != len(seedOps()) {
		t.Errorf("b's subscriber was told %d changes, want 1 of %d ops", len(seen), len(seedOps()))
	}

	// b writes; a follows. Updates and deletes carry Old.
	mustApply(t, b.Store, moveSubnet("vpc-a", "ten-99", "test1"), deleteVPC("vpc-b"))
	eventually(t, "a has b's change", func() error { return sameState(a.Store, b.Store) })
	seen := a.told(t, 1)
	last := seen[len(seen)-1]
	if len(last) != 2 || last[0].Kind != OpDelete || last[0].Old == nil || last[1].Kind != OpUpdate || last[1].Old == nil {
		t.Errorf("a was told %+v", last)
	}

	// Concurrent writers: every create lands once, IDs stay unique.
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := 0; i < 20; i++ {
		for _, r := range []*replica{a, b} {
			wg.Add(1)
			go func(r *replica, i int) {
				defer wg.Done()
				name := fmt.Sprintf("vpc-%p-%d", r, i)
				_, err := r.Apply(context.Background(), []Op{createVPC(VPC{Name: name})})
				errs <- err
			}(r, i)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent create: %v", err)
		}
	}
	eventually(t, "both have every VPC", func() error { return sameState(a.Store, b.Store) })
	if n := len(vpcNames(a.Store)); n != 41 {
		t.Errorf("%d VPCs, want 41", n)
	}
	ids := map[uint32]string{}
	a.Read(func(st *State) {
		for _, v := range st.VPCs() {
			if o, dup := ids[v.ID]; dup {
				t.Errorf("VPCs %s and %s share ID %d", o, v.Name, v.ID)
			}
			ids[v.ID] = v.Name
		}
	})

	// The same name from both: one wins, the other gets a conflict.
	var got [2]error
	wg.Add(2)
	for i, r := range []*replica{a, b} {
		go func(i int, r *replica) {
			defer wg.Done()
			_, got[i] = r.Apply(context.Background(), []Op{createVPC(VPC{Name: "contested"})})
		}(i, r)
	}
	wg.Wait()
	if (got[0] == nil) == (got[1] == nil) {
		t.Fatalf("contested create: %v / %v", got[0], got[1])
	}
	for _, err := range got {
		if e, ok := AsError(err); err != nil && (!ok || e.Kind != ErrConflict) {
			t.Errorf("loser: want a conflict, got %v", err)
		}
	}
}

// TestEtcdLargeCommit: a change far above etcd's 128 operations per
// transaction is staged and arrives at the other replica whole, in one
// notification.
func TestEtcdLargeCommit(t *testing.T) {
	c := etcdtest.Start(t, 1)
	a := openReplica(t, c.Endpoints(), "/big")
	b := openReplica(t, c.Endpoints(), "/big")
	var ops []Op
	for i := 0; i < 600; i++ {
		ops = append(ops, createVPC(VPC{Name: fmt.Sprintf("v%04d", i)}))
	}
	mustApply(t, a.Store, ops...)
	eventually(t, "b has all 600", func() error { return sameState(a.Store, b.Store) })
	if seen := b.told(t, 1); len(seen) != 1 || len(seen[0]) != 600 {
		t.Errorf("b was told %d changes (first of %d ops), want one of 600", len(seen), len(seen[0]))
	}
	// Nothing is left staged, and a cascading delete of them all is
	// staged too.
	cli := c.Client()
	if g, _ := cli.Get(context.Background(), "/big/stage/", clientv3.WithPrefix(), clientv3.WithCountOnly()); g.Count != 0 {
		t.Errorf("%d stage keys left", g.Count)
	}
	del := make([]Op, 0, 600)
	for i := 0; i < 600; i++ {
		del = append(del, deleteVPC(fmt.Sprintf("v%04d", i)))
	}
	mustApply(t, b.Store, del...)
	eventually(t, "a has none", func() error { return sameState(a.Store, b.Store) })
	if n := len(vpcNames(a.Store)); n != 0 {
		t.Errorf("a still has %d VPCs", n)
	}
}

// TestEtcdPendingCommitFinished: a large commit whose writer died after
// deciding it (before rolling it forward) is seen whole by a replica that
// loads, and finished by the next writer.
func TestEtcdPendingCommitFinished(t *testing.T) {
	c := etcdtest.Start(t, 1)
	ctx := context.Background()
	a := openReplica(t, c.Endpoints(), "/p")
	mustApply(t, a.Store, createVPC(VPC{Name: "before"}))
	// Decide a commit of 300 VPCs by hand, as a writer would just before
	// it died: staged, P/pending and P/rev written, nothing rolled forward.
	var recs []stagedRecord
	ids := map[string]uint32{}
	a.Read(func(st *State) { ids = copyIDs(st.lastID) })
	for i := 0; i < 300; i++ {
		ids["vpc"]++
		v := &VPC{Name: fmt.Sprintf("p%03d", i), ID: ids["vpc"]}
		b, _ := marshalObject(v)
		recs = append(recs, stagedRecord{Kind: "vpc", Key: v.Name, Value: b})
	}
	chunk, _ := json.Marshal(recs)
	cli := c.Client()
	id := newCommitID()
	if _, err := cli.Put(ctx, "/p/stage/"+id+"/000000", string(chunk)); err != nil {
		t.Fatal(err)
	}
	pc, _ := json.Marshal(pendingCommit{ID: id, Chunks: 1})
	if _, err := cli.Txn(ctx).Then(clientv3.OpPut("/p/pending", string(pc)), clientv3.OpPut("/p/rev", "p "+id),
		clientv3.OpPut("/p/last_id/vpc", fmt.Sprint(ids["vpc"]))).Commit(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a sees the decided commit", func() error {
		if n := len(vpcNames(a.Store)); n != 301 {
			return fmt.Errorf("%d VPCs", n)
		}
		return nil
	})
	b := openReplica(t, c.Endpoints(), "/p") // loads with the commit pending
	if err := sameState(a.Store, b.Store); err != nil {
		t.Fatal(err)
	}
	mustApply(t, b.Store, createVPC(VPC{Name: "after"})) // finishes it first
	eventually(t, "a has b's write", func() error { return sameState(a.Store, b.Store) })
	if g, _ := cli.Get(ctx, "/p/obj/vpc/", clientv3.WithPrefix(), clientv3.WithCountOnly()); g.Count != 302 {
		t.Errorf("%d VPCs rolled forward into etcd, want 302", g.Count)
	}
	if g, _ := cli.Get(ctx, "/p/pending"); len(g.Kvs) != 0 {
		t.Error("the pending commit is still pending")
	}
}

// TestEtcdCompactionRelist: a replica whose watch starts behind etcd's
// compaction reads the store again and ends equal, deletes included.
func TestEtcdCompactionRelist(t *testing.T) {
	c := etcdtest.Start(t, 1)
	ctx := context.Background()
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	a := openReplica(t, c.Endpoints(), "/cmp")
	mustApply(t, a.Store, seedOps()...)
	bb, err := OpenEtcd(ctx, EtcdOptions{Endpoints: c.Endpoints(), Prefix: "/cmp"}, log)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewStore(ctx, bb, log)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var told []Op
	var mu sync.Mutex
	b.Subscribe(func(ops []Op) { mu.Lock(); told = append(told, ops...); mu.Unlock() })
	mustApply(t, a.Store, deleteVPC("vpc-b"), createVPC(VPC{Name: "vpc-c"}))
	mustApply(t, a.Store, moveSubnet("vpc-a", "ten-99", "test1"))
	resp, err := c.Client().Get(ctx, "/cmp/rev")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client().Compact(ctx, resp.Header.Revision); err != nil {
		t.Fatal(err)
	}
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- b.Follow(fctx) }()
	eventually(t, "b relisted", func() error { return sameState(a.Store, b) })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(told) != 3 { // vpc-b deleted, vpc-c created, ten-99 updated
		t.Errorf("b was told %d ops, want 3: %+v", len(told), told)
	}
}

// TestEtcdSchemaChangeStopsFollow: another vpcflow version taking the store
// over stops a replica's Follow with ErrVersion.
func TestEtcdSchemaChangeStopsFollow(t *testing.T) {
	c := etcdtest.Start(t, 1)
	ctx := context.Background()
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	b, err := OpenEtcd(ctx, EtcdOptions{Endpoints: c.Endpoints(), Prefix: "/s", Init: true}, log)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewStore(ctx, b, log)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	done := make(chan error, 1)
	go func() { done <- s.Follow(ctx) }()
	time.Sleep(200 * time.Millisecond)
	if _, err := c.Client().Put(ctx, "/s/schema", "99"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrVersion) {
			t.Fatalf("want ErrVersion, got %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Follow went on")
	}
}

// TestEtcdAmbiguousCommit: a transaction whose answer was lost is found
// in P/rev's history: applied (even when another commit came after it),
// not applied (send it again), or another writer's came first.
func TestEtcdAmbiguousCommit(t *testing.T) {
	c := etcdtest.Start(t, 1)
	ctx := context.Background()
	b, err := OpenEtcd(ctx, EtcdOptions{Endpoints: c.Endpoints(), Prefix: "/amb", Init: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	g, _ := b.cli.Get(ctx, "/amb/rev")
	base := g.Kvs[0].ModRevision
	cause := errors.New("lost")
	if _, applied, again := b.ambiguous(ctx, "c mine", base, 1, cause); applied || !again {
		t.Errorf("nothing written: applied=%v again=%v", applied, again)
	}
	r1, err := b.cli.Put(ctx, "/amb/rev", "c mine")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.CommitAt(ctx, Commit{Records: []Record{{Kind: "vpc", Key: "x", Value: []byte(`{"id":1,"name":"x"}`)}}}, r1.Header.Revision); err != nil {
		t.Fatal(err)
	}
	rev, applied, again := b.ambiguous(ctx, "c mine", base, 1, cause)
	if !applied || again || rev != r1.Header.Revision {
		t.Errorf("applied then overtaken: rev=%d applied=%v again=%v", rev, applied, again)
	}
	if _, applied, again := b.ambiguous(ctx, "c other", base, 1, cause); applied || again {
		t.Errorf("another writer first: applied=%v again=%v", applied, again)
	}
}

// TestEtcdApplySnapshot: an online restore over the shared store (from a
// replica that may not have seen another's last change yet: its commit
// is then refused as stale and the diff made again) leaves the store
// exactly the snapshot, in etcd and on every replica.
func TestEtcdApplySnapshot(t *testing.T) {
	ctx := context.Background()
	c := etcdtest.Start(t, 1)
	a := openReplica(t, c.Endpoints(), "/snap")
	b := openReplica(t, c.Endpoints(), "/snap")
	mustApply(t, a.Store, seedOps()...)
	eventually(t, "b has the seed", func() error { return sameState(a.Store, b.Store) })
	snap, err := a.Backend().Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join(memRecords(a.Store), "\n")

	// b changes the store; a restores at once.
	mustApply(t, b.Store, deleteVPC("vpc-b"), createVPC(VPC{Name: "vpc-c"}))
	ops, unchanged, err := a.ApplySnapshot(ctx, snap, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("restore from a: %v, %d unchanged", opLines(ops), unchanged)
	if got := strings.Join(opLines(ops), " "); !strings.Contains(got, "delete vpc vpc-c") || !strings.Contains(got, "create vpc vpc-b") {
		t.Errorf("restore ops %s: want vpc-c deleted and vpc-b created", got)
	}
	if got := strings.Join(memRecords(a.Store), "\n"); got != want {
		t.Errorf("a after the restore:\n%s\nwant\n%s", got, want)
	}
	if got := strings.Join(records(t, a.Store), "\n"); got != want {
		t.Errorf("etcd after the restore:\n%s\nwant\n%s", got, want)
	}
	eventually(t, "b has the restore", func() error { return sameState(a.Store, b.Store) })
}

// TestEtcdBackup: the backup of a store in etcd is a bbolt store file
// with the same objects and counters.
func TestEtcdBackup(t *testing.T) {
	ctx := context.Background()
	c := etcdtest.Start(t, 1)
	a := openReplica(t, c.Endpoints(), "/bak")
	mustApply(t, a.Store, seedOps()...)
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, DBFileName))
	if err != nil {
		t.Fatal(err)
	}
	n, err := a.Backup(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil || n == 0 {
		t.Fatalf("backup: %d bytes, %v", n, err)
	}
	s, err := Open(ctx, dir, nil, Existing())
	if err != nil {
		t.Fatalf("the backup does not open: %v", err)
	}
	defer s.Close()
	if got, want := strings.Join(memRecords(s), "\n"), strings.Join(memRecords(a.Store), "\n"); got != want {
		t.Errorf("the backup holds\n%s\nwant\n%s", got, want)
	}
	if got, want := s.lastIDs(), a.lastIDs(); !sameIDs(got, want) {
		t.Errorf("the backup's counters %v, want %v", got, want)
	}
}
