package api

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vpcflow/vpcflow/topology"
)

// newStoreEnv serves the API with GET /v1/backup and POST /v1/restore
// over the real store and controller, behind the token "tok".
func newStoreEnv(t *testing.T) *testEnv {
	t.Helper()
	c, st := newController(t)
	e := &testEnv{t: t, store: st, ctrl: c}
	e.serve(c, Options{Token: "tok", Backup: st, Restorer: c.Controller})
	return e
}

// send is raw with a content type and an Authorization header ("" for
// none).
func (e *testEnv) send(method, url, ctype, auth, body string) (int, string) {
	e.t.Helper()
	h := map[string]string{}
	if ctype != "" {
		h["Content-Type"] = ctype
	}
	if auth != "" {
		h["Authorization"] = auth
	}
	r := e.raw(method, url, "", body, h)
	return r.status, string(r.body)
}

// The restore endpoint's refusals: no token, wrong method, not JSON, a
// body that is not a snapshot, a snapshot that is not a valid store, a
// bad dry_run; none changes the store. Then a dry run changes nothing and
// the valid one replaces vpc-a by vpc-b with the snapshot's ID.
func TestRestoreRefusesAndApplies(t *testing.T) {
	e := newStoreEnv(t)
	if _, err := e.store.Apply(context.Background(), []topology.Op{topology.Create(&topology.VPC{Name: "vpc-a"})}); err != nil {
		t.Fatal(err)
	}
	valid := `{"records":[{"kind":"vpc","key":"vpc-b","value":{"id":7,"name":"vpc-b"}}]}`
	for _, tc := range []struct {
		name, method, url, ctype, auth, body string
		code                                 int
		msg                                  string
	}{
		{"no token", "POST", "/v1/restore", "application/json", "", valid, 401, "bearer token"},
		{"GET", "GET", "/v1/restore", "", "Bearer tok", "", 405, "not allowed"},
		{"text/plain", "POST", "/v1/restore", "text/plain", "Bearer tok", valid, 415, "application/json"},
		{"not a snapshot", "POST", "/v1/restore", "application/json", "Bearer tok", `{"vpcs":[]}`, 400, "vpcs"},
		{"dangling reference", "POST", "/v1/restore", "application/json", "Bearer tok",
			`{"records":[{"kind":"vswitch","key":"vpc-x/w","value":{"id":1,"vpc":"vpc-x","name":"w","cidr":"10.0.0.0/24"}}]}`, 400, "not a valid store"},
		{"unknown kind", "POST", "/v1/restore", "application/json", "Bearer tok", `{"records":[{"kind":"gizmo","key":"g","value":{}}]}`, 400, "unknown kind"},
		{"bad dry_run", "POST", "/v1/restore?dry_run=maybe", "application/json", "Bearer tok", valid, 400, "dry_run"},
		{"backup without token", "GET", "/v1/backup", "", "", "", 401, "bearer token"},
	} {
		code, body := e.send(tc.method, tc.url, tc.ctype, tc.auth, tc.body)
		if code != tc.code || !strings.Contains(body, tc.msg) {
			t.Errorf("%s: %d %s; want %d with %q", tc.name, code, body, tc.code, tc.msg)
		}
	}
	vpcs := func() []topology.VPC {
		var out []topology.VPC
		e.store.Read(func(s *topology.State) { out = s.VPCs() })
		return out
	}
	if v := vpcs(); len(v) != 1 || v[0].Name != "vpc-a" {
		t.Errorf("a refused restore changed the store: %v", v)
	}
	code, body := e.send("POST", "/v1/restore?dry_run=true", "application/json", "Bearer tok", valid)
	if code != 200 || !strings.Contains(body, `"dry_run":true,"created":1,"updated":0,"deleted":1,"unchanged":0`) {
		t.Fatalf("dry run: %d %s", code, body)
	}
	if v := vpcs(); len(v) != 1 || v[0].Name != "vpc-a" {
		t.Errorf("a dry run changed the store: %v", v)
	}
	code, body = e.send("POST", "/v1/restore", "application/json", "Bearer tok", valid)
	if code != 200 || !strings.Contains(body, `"created":1,"updated":0,"deleted":1`) {
		t.Fatalf("restore: %d %s", code, body)
	}
	if v := vpcs(); len(v) != 1 || v[0].Name != "vpc-b" || v[0].ID != 7 {
		t.Errorf("after the restore: %v", v)
	}
}

// GET /v1/backup is a store file that opens with what was stored, and
// POST /v1/restore of its content brings the store back to it after
// changes (the objects created since are deleted, the deleted ones come
// back with their IDs, the unchanged ones are counted as such).
func TestBackupThenRestoreRoundTrip(t *testing.T) {
	e := newStoreEnv(t)
	ctx := context.Background()
	if _, err := e.store.Apply(ctx, []topology.Op{
		topology.Create(&topology.VPC{Name: "vpc-a"}), topology.Create(&topology.VPC{Name: "vpc-b"}),
	}); err != nil {
		t.Fatal(err)
	}
	before := e.dump()
	code, file := e.send("GET", "/v1/backup", "", "Bearer tok", "")
	if code != 200 {
		t.Fatalf("backup: %d %s", code, file)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, topology.DBFileName), []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := topology.OpenBolt(ctx, dir, nil, topology.Existing())
	if err != nil {
		t.Fatalf("the backup does not open as a store: %v", err)
	}
	snap, err := b.Load(ctx)
	_ = b.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Apply(ctx, []topology.Op{topology.Delete(&topology.VPC{Name: "vpc-b"}, false), topology.Create(&topology.VPC{Name: "vpc-c"})}); err != nil {
		t.Fatal(err)
	}
	if e.dump() == before {
		t.Fatal("the changes did not change the store")
	}
	var recs []string
	for _, r := range snap.Records {
		recs = append(recs, `{"kind":"`+r.Kind+`","key":"`+r.Key+`","value":`+string(r.Value)+`}`)
	}
	req := `{"records":[` + strings.Join(recs, ",") + `]}`
	code, body := e.send("POST", "/v1/restore", "application/json", "Bearer tok", req)
	if code != 200 || !strings.Contains(body, `"created":1,"updated":0,"deleted":1,"unchanged":1`) {
		t.Fatalf("restore: %d %s", code, body)
	}
	if after := e.dump(); after != before {
		t.Errorf("after the restore:\n%s\nwant\n%s", after, before)
	}
}
