package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// runBinEnv is runBin with extra environment.
func runBinEnv(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	return runBinWith(t, append([]string{"PATH=" + os.Getenv("PATH"), configEnv + "=/dev/null"}, env...), args...)
}

// Online backup of a running vpcflow (with a token), then restore with
// serve stopped: the restored store has what the backup had and nothing
// added after it; a damaged backup is refused.
func TestBackupRestore(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if code, out := runBin(t, "init", "--data-dir", data); code != 0 {
		t.Fatalf("init: %s", out)
	}
	tokFile := writeFile(t, dir, "token", "tok\n")
	rest := freeAddr(t)
	start := func() *daemon {
		n := newNotifySocket(t, t.TempDir())
		d := startDaemon(t, []string{"PATH=" + os.Getenv("PATH"), "NOTIFY_SOCKET=" + n.path, configEnv + "=/dev/null"}, false,
			"--data-dir", data, "--openflow", "127.0.0.1:0", "--listen", rest, "--api-token-file", tokFile)
		n.wait("READY=1", 20*time.Second)
		return d
	}
	env := []string{"VPCFLOW_API=http://" + rest, "VPCFLOW_API_TOKEN=tok"}
	d := start()
	for _, v := range []string{"vpc-a", "vpc-b"} {
		if code, out := runBinEnv(t, env, "vpc", "create", v); code != 0 {
			t.Fatalf("vpc create %s: %s", v, out)
		}
	}
	file := filepath.Join(dir, "backup.db")
	if code, out := runBinEnv(t, []string{"VPCFLOW_API=http://" + rest}, "backup", file); code != 1 || !strings.Contains(out, "401") {
		t.Errorf("backup without the token: %d %s", code, out)
	}
	code, out := runBinEnv(t, env, "backup", file)
	if code != 0 || !strings.Contains(out, "saved "+file) {
		t.Fatalf("backup: %d %s", code, out)
	}
	if code, out := runBinEnv(t, env, "vpc", "create", "vpc-after"); code != 0 {
		t.Fatalf("vpc create: %s", out)
	}
	if code, out := runBinEnv(t, env, "vpc", "delete", "vpc-b"); code != 0 {
		t.Fatalf("vpc delete: %s", out)
	}
	if code, out := runBin(t, "restore", file, "--data-dir", data); code == 0 || !strings.Contains(out, "restore online") {
		t.Errorf("offline restore while serve runs: %d %s", code, out)
	}
	// Online: a dry run changes nothing, then the restore deletes
	// vpc-after, brings vpc-b back with its ID and leaves vpc-a alone.
	if code, out := runBinEnv(t, []string{"VPCFLOW_API=http://" + rest}, "restore", file); code != 1 || !strings.Contains(out, "401") {
		t.Errorf("online restore without the token: %d %s", code, out)
	}
	code, out = runBinEnv(t, env, "restore", file, "--dry-run")
	if code != 0 || !strings.Contains(out, "would restore "+file+": 1 created, 0 updated, 1 deleted, 1 unchanged") {
		t.Errorf("restore --dry-run: %d %s", code, out)
	}
	if _, list := runBinEnv(t, env, "vpc", "list"); !strings.Contains(list, "vpc-after") || strings.Contains(list, "vpc-b") {
		t.Errorf("a dry run changed the store: %s", list)
	}
	code, out = runBinEnv(t, env, "restore", file)
	if code != 0 || !strings.Contains(out, "restored "+file+": 1 created, 0 updated, 1 deleted, 1 unchanged; 0 flow-mods to 0 switches") ||
		!regexp.MustCompile(`delete\s+vpc\s+vpc-after\s+3`).MatchString(out) || !regexp.MustCompile(`create\s+vpc\s+vpc-b\s+2`).MatchString(out) {
		t.Errorf("online restore: %d %s", code, out)
	}
	if _, show := runBinEnv(t, env, "vpc", "show", "vpc-b", "-o", "json"); !strings.Contains(show, `"id": 2,`) {
		t.Errorf("vpc-b came back without its ID: %s", show)
	}
	if code, out := runBinEnv(t, env, "restore", file, "-o", "json"); code != 0 || !strings.Contains(out, `"unchanged":2`) || !strings.Contains(out, `"changes":[]`) {
		t.Errorf("second online restore: %d %s", code, out)
	}
	if code, out := runBinEnv(t, env, "vpc", "create", "vpc-after"); code != 0 {
		t.Fatalf("vpc create: %s", out)
	}
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	// A damaged backup is refused and the store is left alone.
	bad := filepath.Join(dir, "bad.db")
	b, err := os.ReadFile(file)
	mustT(t, err)
	mustT(t, os.WriteFile(bad, b[:len(b)/2], 0o600))
	if code, out := runBin(t, "restore", bad, "--data-dir", data); code != exitBadStore || !strings.Contains(out, "is truncated") {
		t.Errorf("restore of a truncated backup: %d %s", code, out)
	}
	if code, out := runBinEnv(t, env, "restore", bad); code != exitBadStore || !strings.Contains(out, "is truncated") {
		t.Errorf("online restore of a truncated backup: %d %s", code, out)
	}
	code, out = runBin(t, "restore", "--offline", file, "--data-dir", data)
	if code != 0 || !strings.Contains(out, "restored "+data+"/vpcflow.db") {
		t.Fatalf("restore: %d %s", code, out)
	}
	if _, err := os.Stat(filepath.Join(data, "vpcflow.db.before-restore")); err != nil {
		t.Errorf("the replaced store was not kept: %v", err)
	}
	if _, err := os.Stat(filepath.Join(data, "vpcflow.db-wal.before-restore")); err != nil {
		t.Errorf("the replaced store's write-ahead log was not moved with it: %v", err)
	}
	d = start()
	_, list := runBinEnv(t, env, "vpc", "list")
	if !strings.Contains(list, "vpc-a") || !strings.Contains(list, "vpc-b") || strings.Contains(list, "vpc-after") {
		t.Errorf("after restore: %s", list)
	}
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
}
