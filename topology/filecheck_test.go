package topology

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// storeWithData creates a store in dir holding a few VPCs and closes it.
func storeWithData(t *testing.T, dir string) string {
	t.Helper()
	s, err := Open(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"vpc-a", "vpc-b", "vpc-c"} {
		if _, err := s.Apply(context.Background(), []Op{createVPC(VPC{Name: n})}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, DBFileName)
}

// The happy path: Existing opens an initialised store and finds its data.
func TestOpenExisting(t *testing.T) {
	dir := t.TempDir()
	storeWithData(t, dir)
	s, err := Open(context.Background(), dir, nil, Existing())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := 0
	s.Read(func(st *State) { n, _, _, _ = st.Counts() })
	if n != 3 {
		t.Errorf("%d VPCs, want 3", n)
	}
	if err := Verify(filepath.Join(dir, DBFileName)); err == nil || !strings.Contains(err.Error(), "locked") {
		t.Errorf("Verify on an open store: %v, want locked", err)
	}
}

// A store that is not there is never created implicitly with Existing: a
// missing directory (a mistyped --data-dir) and a missing file are
// ErrNoStore, and nothing is created.
func TestOpenExistingMissing(t *testing.T) {
	base := t.TempDir()
	missingDir := filepath.Join(base, "vpcflow-dtaa")
	_, err := Open(context.Background(), missingDir, nil, Existing())
	if !errors.Is(err, ErrNoStore) || !strings.Contains(err.Error(), "the data directory "+missingDir+" does not exist") {
		t.Errorf("missing dir: %v", err)
	}
	if _, err := os.Stat(missingDir); !os.IsNotExist(err) {
		t.Errorf("the missing directory was created: %v", err)
	}
	_, err = Open(context.Background(), base, nil, Existing())
	if !errors.Is(err, ErrNoStore) || !strings.Contains(err.Error(), "vpcflow init") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(base, DBFileName)); !os.IsNotExist(err) {
		t.Errorf("the store file was created: %v", err)
	}
	// Without Existing, both are created (vpcflow init, serve --init).
	s, err := Open(context.Background(), missingDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}

// Damaged files are ErrCorrupt with what is wrong, with or without
// Existing, and Open never panics or takes them for an empty store.
func TestOpenCorrupt(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	random := make([]byte, 64<<10)
	rng.Read(random)
	cases := []struct {
		name   string
		damage func(t *testing.T, path string)
		want   string
	}{
		{"empty file", func(t *testing.T, p string) { must(t, os.Truncate(p, 0)) }, "is empty (0 bytes)"},
		{"truncated to half", func(t *testing.T, p string) {
			// Half of what its last transaction needs: the file itself
			// is longer, bbolt grows it ahead in steps.
			head := make([]byte, 4096)
			f, err := os.Open(p)
			must(t, err)
			_, err = io.ReadFull(f, head)
			must(t, err)
			must(t, f.Close())
			m, err := parseMeta(head)
			must(t, err)
			must(t, os.Truncate(p, int64(m.pgid)*int64(m.pageSize)/2))
		}, "is truncated"},
		{"truncated to 100 bytes", func(t *testing.T, p string) { must(t, os.Truncate(p, 100)) }, "is truncated: 100 bytes"},
		{"random bytes", func(t *testing.T, p string) { must(t, os.WriteFile(p, random, 0o600)) }, "is not a bbolt file"},
		{"text", func(t *testing.T, p string) { must(t, os.WriteFile(p, []byte("hello\n"), 0o600)) }, "is not a bbolt file"},
		{"first meta page damaged", func(t *testing.T, p string) {
			f, err := os.OpenFile(p, os.O_RDWR, 0)
			must(t, err)
			_, err = f.WriteAt([]byte{0xff, 0xff, 0xff, 0xff}, 16+40) // meta 0's pgid: checksum fails
			must(t, err)
			must(t, f.Close())
		}, ""}, // bbolt falls back to the second meta page: opens fine
		{"a directory", func(t *testing.T, p string) {
			must(t, os.Remove(p))
			must(t, os.Mkdir(p, 0o700))
		}, "is not a regular file"},
	}
	for _, tc := range cases {
		for _, existing := range []bool{true, false} {
			t.Run(tc.name+map[bool]string{true: "/existing", false: "/create"}[existing], func(t *testing.T) {
				dir := t.TempDir()
				path := storeWithData(t, dir)
				tc.damage(t, path)
				var opts []OpenOption
				if existing {
					opts = append(opts, Existing())
				}
				s, err := Open(context.Background(), dir, nil, opts...)
				if tc.want == "" {
					if err != nil {
						t.Fatalf("want it to open: %v", err)
					}
					s.Close()
					return
				}
				if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error %v, want ErrCorrupt …%s", err, tc.want)
				}
				if err := Verify(path); !errors.Is(err, ErrCorrupt) {
					t.Errorf("Verify: %v, want ErrCorrupt", err)
				}
			})
		}
	}
}

// A bbolt file vpcflow never initialised is refused with Existing; a
// newer schema is refused with a message saying so.
func TestOpenForeignAndNewer(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, DBFileName)
	db, err := bolt.Open(path, 0o600, nil)
	must(t, err)
	must(t, db.Close())
	_, err = Open(context.Background(), dir, nil, Existing())
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "never initialised by vpcflow") {
		t.Errorf("foreign bbolt file: %v", err)
	}
	if err := Verify(path); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "not a vpcflow store") {
		t.Errorf("Verify foreign: %v", err)
	}

	dir = t.TempDir()
	path = storeWithData(t, dir)
	db, err = bolt.Open(path, 0o600, nil)
	must(t, err)
	must(t, db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte(bucketMeta)).Put([]byte(metaSchema), []byte("9")) }))
	must(t, db.Close())
	_, err = Open(context.Background(), dir, nil, Existing())
	if err == nil || !strings.Contains(err.Error(), `schema version "9", written by a newer vpcflow`) {
		t.Errorf("newer schema: %v", err)
	}
}

// A schema 1 store is backed up before it is upgraded.
func TestOpenUpgradeBacksUp(t *testing.T) {
	dir := t.TempDir()
	path := storeWithData(t, dir)
	db, err := bolt.Open(path, 0o600, nil)
	must(t, err)
	must(t, db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket([]byte("chassis")); err != nil {
			return err
		}
		return tx.Bucket([]byte(bucketMeta)).Put([]byte(metaSchema), []byte(schemaV1))
	}))
	must(t, db.Close())
	s, err := Open(context.Background(), dir, nil, Existing())
	must(t, err)
	s.Close()
	backup := path + ".schema1.bak"
	b, err := Open(context.Background(), t.TempDir(), nil) // a scratch store to compare against
	must(t, err)
	b.Close()
	db, err = bolt.Open(backup, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("no readable backup at %s: %v", backup, err)
	}
	defer db.Close()
	must(t, db.View(func(tx *bolt.Tx) error {
		if v := string(tx.Bucket([]byte(bucketMeta)).Get([]byte(metaSchema))); v != schemaV1 {
			t.Errorf("backup has schema %q, want %q", v, schemaV1)
		}
		if n := tx.Bucket([]byte("vpc")).Stats().KeyN; n != 3 {
			t.Errorf("backup has %d VPCs, want 3", n)
		}
		return nil
	}))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A schema 2 store (before security groups and DHCP options) is backed up
// and upgraded to 3, and keeps its objects.
func TestOpenUpgradeFromSchema2(t *testing.T) {
	dir := t.TempDir()
	path := storeWithData(t, dir)
	db, err := bolt.Open(path, 0o600, nil)
	must(t, err)
	must(t, db.Update(func(tx *bolt.Tx) error {
		for _, b := range []string{"secgroup", "secgrouprule", "dhcp_options"} {
			if tx.Bucket([]byte(b)) != nil {
				if err := tx.DeleteBucket([]byte(b)); err != nil {
					return err
				}
			}
		}
		return tx.Bucket([]byte(bucketMeta)).Put([]byte(metaSchema), []byte(schemaV2))
	}))
	must(t, db.Close())
	s, err := Open(context.Background(), dir, nil, Existing())
	must(t, err)
	var vpcs int
	s.Read(func(st *State) { vpcs = len(st.VPCs()) })
	must(t, s.Close())
	if vpcs != 3 {
		t.Errorf("after the upgrade %d VPCs, want 3", vpcs)
	}
	if _, err := os.Stat(path + ".schema2.bak"); err != nil {
		t.Errorf("no backup of the schema 2 store: %v", err)
	}
	db, err = bolt.Open(path, 0o600, nil)
	must(t, err)
	defer db.Close()
	must(t, db.View(func(tx *bolt.Tx) error {
		if v := string(tx.Bucket([]byte(bucketMeta)).Get([]byte(metaSchema))); v != SchemaVersion {
			t.Errorf("schema after the upgrade %q, want %q", v, SchemaVersion)
		}
		return nil
	}))
}

// A schema 3 store (before the NAT kinds) is backed up and upgraded to 4,
// keeps its objects and gets the NAT kinds' buckets.
func TestOpenUpgradeFromSchema3(t *testing.T) {
	dir := t.TempDir()
	path := storeWithData(t, dir)
	db, err := bolt.Open(path, 0o600, nil)
	must(t, err)
	must(t, db.Update(func(tx *bolt.Tx) error {
		for _, b := range []string{"uplink", "natgateway", "snatentry", "dnatentry", "eip"} {
			if tx.Bucket([]byte(b)) == nil {
				return fmt.Errorf("no bucket %q: the kind names changed, fix the test", b)
			}
			if err := tx.DeleteBucket([]byte(b)); err != nil {
				return err
			}
		}
		return tx.Bucket([]byte(bucketMeta)).Put([]byte(metaSchema), []byte(schemaV3))
	}))
	must(t, db.Close())
	s, err := Open(context.Background(), dir, nil, Existing())
	must(t, err)
	var vpcs int
	s.Read(func(st *State) { vpcs = len(st.VPCs()) })
	if vpcs != 3 {
		t.Errorf("after the upgrade %d VPCs, want 3", vpcs)
	}
	if _, err := os.Stat(path + ".schema3.bak"); err != nil {
		t.Errorf("no backup of the schema 3 store: %v", err)
	}
	must(t, s.Close())
	db, err = bolt.Open(path, 0o600, nil)
	must(t, err)
	defer db.Close()
	must(t, db.View(func(tx *bolt.Tx) error {
		if v := string(tx.Bucket([]byte(bucketMeta)).Get([]byte(metaSchema))); v != "4" {
			t.Errorf("schema after the upgrade %q, want 4", v)
		}
		for _, b := range []string{"uplink", "natgateway", "snatentry", "dnatentry", "eip"} {
			if tx.Bucket([]byte(b)) == nil {
				t.Errorf("no bucket %q after the upgrade", b)
			}
		}
		return nil
	}))
}

// TestInUseIsWhatTheLastTransactionNeeds: bbolt grows the file ahead of
// its pages; InUse is the part in use (what a copy would hold), and a file
// cut below it is refused as CheckFile refuses it.
func TestInUseIsWhatTheLastTransactionNeeds(t *testing.T) {
	path := storeWithData(t, t.TempDir())
	fi, err := os.Stat(path)
	must(t, err)
	used, err := InUse(path)
	must(t, err)
	if used <= 0 || used%4096 != 0 || used >= fi.Size() {
		t.Fatalf("in use %d of a %d-byte file: want whole pages, fewer than the file's", used, fi.Size())
	}
	must(t, os.Truncate(path, used))
	if again, err := InUse(path); err != nil || again != used {
		t.Fatalf("cut to what is in use: InUse %d, %v; want %d", again, err, used)
	}
	must(t, os.Truncate(path, used-4096))
	if _, err := InUse(path); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("cut below what is in use: %v, want ErrCorrupt", err)
	}
}
