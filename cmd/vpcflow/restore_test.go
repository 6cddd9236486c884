package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/api"
	"github.com/vpcflow/vpcflow/controller"
	"github.com/vpcflow/vpcflow/topology"
)

// The restore endpoint's refusals: no token, wrong method, not JSON, a
// body that is not a snapshot, a snapshot that is not a valid store, a
// bad dry_run; none changes the store.
func TestRestoreHandlerRefuses(t *testing.T) {
	st, err := topology.Open(context.Background(), t.TempDir(), nil)
	mustT(t, err)
	defer st.Close()
	if _, err := st.Apply(context.Background(), []topology.Op{topology.Create(&topology.VPC{Name: "vpc-a"})}); err != nil {
		t.Fatal(err)
	}
	ctl := controller.New(zap.NewNop(), st, controller.Options{})
	h := api.Guard(zap.NewNop(), api.Options{}, restoreHandler(zap.NewNop(), ctl, time.Second, func() string { return "tok" }))
	valid := `{"records":[{"kind":"vpc","key":"vpc-b","value":{"id":7,"name":"vpc-b"}}]}`
	for _, tc := range []struct {
		name, method, url, ctype, auth, body string
		code                                 int
		msg                                  string
	}{
		{"no token", "POST", "/v1/restore", "application/json", "", valid, 401, "bearer token"},
		{"GET", "GET", "/v1/restore", "", "Bearer tok", "", 405, "not allowed"},
		{"text/plain", "POST", "/v1/restore", "text/plain", "Bearer tok", valid, 415, "application/json"},
		{"not a snapshot", "POST", "/v1/restore", "application/json", "Bearer tok", `{"vpcs":[]}`, 400, "unknown field"},
		{"dangling reference", "POST", "/v1/restore", "application/json", "Bearer tok",
			`{"records":[{"kind":"vswitch","key":"vpc-x/w","value":{"id":1,"vpc":"vpc-x","name":"w","cidr":"10.0.0.0/24"}}]}`, 400, "not a valid store"},
		{"unknown kind", "POST", "/v1/restore", "application/json", "Bearer tok", `{"records":[{"kind":"gizmo","key":"g","value":{}}]}`, 400, "unknown kind"},
		{"bad dry_run", "POST", "/v1/restore?dry_run=maybe", "application/json", "Bearer tok", valid, 400, "dry_run"},
	} {
		req := httptest.NewRequest(tc.method, "http://127.0.0.1:8080"+tc.url, strings.NewReader(tc.body))
		if tc.ctype != "" {
			req.Header.Set("Content-Type", tc.ctype)
		}
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.msg) {
			t.Errorf("%s: %d %s; want %d with %q", tc.name, rec.Code, rec.Body.String(), tc.code, tc.msg)
		}
	}
	st.Read(func(s *topology.State) {
		if v := s.VPCs(); len(v) != 1 || v[0].Name != "vpc-a" {
			t.Errorf("a refused restore changed the store: %v", v)
		}
	})
	// The valid one replaces vpc-a by vpc-b, ID 7.
	req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:8080/v1/restore", strings.NewReader(valid))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer tok")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"created":1,"updated":0,"deleted":1`) {
		t.Fatalf("restore: %d %s", rec.Code, rec.Body.String())
	}
	st.Read(func(s *topology.State) {
		if v := s.VPCs(); len(v) != 1 || v[0].Name != "vpc-b" || v[0].ID != 7 {
			t.Errorf("after the restore: %v", v)
		}
	})
}
