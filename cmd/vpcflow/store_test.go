package main

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vpcflow/vpcflow/topology"
)

// runBin runs the vpcflow binary and returns its exit code and output.
func runBin(t *testing.T, args ...string) (int, string) {
	t.Helper()
	return runBinWith(t, []string{"PATH=" + os.Getenv("PATH"), configEnv + "=/dev/null"}, args...)
}

// runBinWith runs the binary with exactly env.
func runBinWith(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(vpcflowBinary(t), args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

// storeWithVPCs makes a store holding n VPCs in dir.
func storeWithVPCs(t *testing.T, dir string, n int) string {
	t.Helper()
	st, err := topology.Open(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ops []topology.Op
	for i := 0; i < n; i++ {
		ops = append(ops, topology.Create(&topology.VPC{Name: fmt.Sprintf("vpc-%04d-%s", i, strings.Repeat("x", 40))}))
	}
	if _, err := st.Apply(context.Background(), ops); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, topology.DBFileName)
}

// An empty or wrong store never becomes an empty fabric: serve without
// --init refuses a missing directory or file (exit 3) and a truncated,
// random or damaged file (exit 4) with a message saying what is wrong,
// never a panic; `vpcflow init` creates a store once; serve opens it.
func TestServeStoreErrors(t *testing.T) {
	base := t.TempDir()
	serveArgs := func(dir string) []string {
		return []string{"serve", "--data-dir", dir, "--openflow", "127.0.0.1:0", "--listen", "127.0.0.1:0"}
	}
	rng := rand.New(rand.NewSource(7))
	random := make([]byte, 32<<10)
	rng.Read(random)

	cases := []struct {
		name  string
		setup func(dir string)
		code  int
		want  string
	}{
		{"mistyped data dir", func(string) {}, exitNoStore, "the data directory %DIR% does not exist (a mistyped --data-dir?"},
		{"directory without a store", func(dir string) { mustT(t, os.MkdirAll(dir, 0o700)) }, exitNoStore, "%DIR%/vpcflow.db does not exist"},
		{"empty file", func(dir string) {
			mustT(t, os.MkdirAll(dir, 0o700))
			mustT(t, os.WriteFile(filepath.Join(dir, "vpcflow.db"), nil, 0o600))
		}, exitBadStore, "is empty (0 bytes)"},
		{"truncated", func(dir string) {
			// A third of the pages in use (bbolt grows the file ahead of
			// them: a third of the file could still hold them all).
			p := storeWithVPCs(t, dir, 300)
			used, err := topology.InUse(p)
			mustT(t, err)
			mustT(t, os.Truncate(p, used/3))
		}, exitBadStore, "is truncated"},
		{"random bytes", func(dir string) {
			mustT(t, os.MkdirAll(dir, 0o700))
			mustT(t, os.WriteFile(filepath.Join(dir, "vpcflow.db"), random, 0o600))
		}, exitBadStore, "is not a bbolt file"},
		{"damaged pages", func(dir string) {
			p := storeWithVPCs(t, dir, 300)
			f, err := os.OpenFile(p, os.O_RDWR, 0)
			mustT(t, err)
			fi, err := f.Stat()
			mustT(t, err)
			// Garbage over every page but the two meta pages: bbolt's own
			// reader panics in a goroutine on this.
			junk := make([]byte, fi.Size()-8192)
			rng.Read(junk)
			_, err = f.WriteAt(junk, 8192)
			mustT(t, err)
			mustT(t, f.Close())
		}, exitBadStore, "the vpcflow store is damaged"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(base, strings.ReplaceAll(tc.name, " ", "-"), "data")
			tc.setup(dir)
			before, _ := os.ReadFile(filepath.Join(dir, "vpcflow.db"))
			want := strings.ReplaceAll(tc.want, "%DIR%", dir)
			code, out := runBin(t, serveArgs(dir)...)
			if code != tc.code || !strings.Contains(out, want) {
				t.Errorf("serve: exit %d, want %d and %q:\n%s", code, tc.code, want, out)
			}
			if strings.Contains(out, "goroutine ") {
				t.Errorf("serve printed a stack trace:\n%s", out)
			}
			after, _ := os.ReadFile(filepath.Join(dir, "vpcflow.db"))
			if string(before) != string(after) {
				t.Error("serve changed the store file")
			}
			if tc.code == exitNoStore {
				if _, err := os.Stat(filepath.Join(dir, "vpcflow.db")); !os.IsNotExist(err) {
					t.Errorf("serve created a store: %v", err)
				}
			}
			if code, out := runBin(t, "store", "check", "--data-dir", dir); code != tc.code {
				t.Errorf("store check: exit %d, want %d:\n%s", code, tc.code, out)
			}
			if tc.code == exitBadStore {
				// init does not paper over a damaged store either.
				if code, out := runBin(t, "init", "--data-dir", dir); code != exitBadStore {
					t.Errorf("init on a damaged store: exit %d, want %d:\n%s", code, exitBadStore, out)
				}
			}
		})
	}

	t.Run("init then serve", func(t *testing.T) {
		dir := filepath.Join(base, "ok", "data")
		code, out := runBin(t, "init", "--data-dir", dir)
		if code != 0 || !strings.Contains(out, "created an empty store "+dir+"/vpcflow.db (schema "+topology.SchemaVersion+")") {
			t.Fatalf("init: %d %s", code, out)
		}
		if code, out := runBin(t, "init", "--data-dir", dir); code != 0 || !strings.Contains(out, "exists already (0 VPCs") {
			t.Errorf("second init: %d %s", code, out)
		}
		if code, out := runBin(t, "store", "check", "--data-dir", dir); code != 0 || !strings.Contains(out, ": ok (") {
			t.Errorf("store check: %d %s", code, out)
		}
		n := newNotifySocket(t, t.TempDir())
		d := startDaemon(t, []string{"PATH=" + os.Getenv("PATH"), "NOTIFY_SOCKET=" + n.path, configEnv + "=/dev/null"}, false, serveArgs(dir)[1:]...)
		n.wait("READY=1", 20*time.Second)
		if err := d.stop(); err != nil {
			t.Errorf("serve on an initialised store: %v\n%s", err, d.log())
		}
	})
}
