package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

const testToken = "s3cret-token"

// doAuth sends a request with an Authorization header ("" for none).
func (e *testEnv) doAuth(method, path, body, auth string) reply {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if writeMethod(method) {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: data}
}

func TestBearerToken(t *testing.T) {
	e := newEnv(t, Options{Token: testToken})
	good := "Bearer " + testToken

	// The health check stays open, for load balancers and probes.
	if r := e.doAuth("GET", "/healthz", "", ""); r.status != 200 {
		t.Fatalf("GET /healthz without token: %d %s", r.status, r.body)
	}
	if r := e.doAuth("HEAD", "/healthz", "", ""); r.status != 200 {
		t.Fatalf("HEAD /healthz without token: %d", r.status)
	}

	// Everything else needs the token, existing routes or not.
	requests := []struct{ method, path, body string }{
		{"GET", "/v1/vpcs", ""},
		{"POST", "/v1/vpcs", `{"name":"vpc-x"}`},
		{"GET", "/v1/vpcs/vpc-a", ""},
		{"DELETE", "/v1/vpcs/vpc-a?cascade=true", ""},
		{"POST", "/v1/vpcs/vpc-a/hosts", `{"name":"h","vswitch":"vsw-a","ip":"10.10.10.40","mac":"02:00:00:00:00:40","dpid":"1","ofport":40}`},
		{"PUT", "/v1/vpcs/vpc-a/subnets/172.18.1.0-24", `{"host":"test2"}`},
		{"DELETE", "/v1/vpcs/vpc-a/subnets/172.18.1.0-24", ""},
		{"GET", "/v1/switches", ""},
		{"GET", "/v1/switches/1/flows", ""},
		{"GET", "/v1/drops", ""},
		{"POST", "/healthz", ""},
		{"GET", "/healthz/", ""},
		{"PATCH", "/v1/vpcs", "{}"},
		{"GET", "/nowhere", ""},
	}
	bad := []string{
		"",
		"Bearer",
		"Bearer ",
		"Bearer wrong",
		"Bearer " + testToken + "x",
		"Bearer " + testToken[:len(testToken)-1],
		"Basic " + testToken,
		"Token " + testToken,
		testToken,
		"Bearer" + testToken,
	}
	e.seedWith(good)
	before := e.dump()
	for _, rq := range requests {
		for _, auth := range bad {
			r := e.doAuth(rq.method, rq.path, rq.body, auth)
			if r.status != http.StatusUnauthorized {
				t.Fatalf("%s %s with %q: %d %s, want 401", rq.method, rq.path, auth, r.status, r.body)
			}
			if got := strings.TrimSpace(string(r.body)); got != `{"error":"missing or invalid bearer token"}` {
				t.Fatalf("%s %s: 401 body %s", rq.method, rq.path, got)
			}
			if got := r.header.Get("WWW-Authenticate"); got != "Bearer" {
				t.Fatalf("%s %s: WWW-Authenticate %q", rq.method, rq.path, got)
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Fatalf("%s %s: Content-Type %q", rq.method, rq.path, ct)
			}
		}
	}
	if e.dump() != before {
		t.Fatal("unauthenticated requests changed the store")
	}

	// With the token, requests go through (the scheme is case-insensitive).
	for _, auth := range []string{good, "bearer " + testToken, "BEARER  " + testToken + " "} {
		if r := e.doAuth("GET", "/v1/vpcs", "", auth); r.status != 200 || !strings.Contains(string(r.body), "vpc-a") {
			t.Fatalf("GET /v1/vpcs with %q: %d %s", auth, r.status, r.body)
		}
	}
	if r := e.doAuth("GET", "/nowhere", "", good); r.status != 404 {
		t.Fatalf("unknown route with the token: %d", r.status)
	}
	if r := e.doAuth("PATCH", "/v1/vpcs", "{}", good); r.status != 405 {
		t.Fatalf("wrong method with the token: %d", r.status)
	}
	if r := e.doAuth("DELETE", "/v1/vpcs/vpc-a?cascade=true", "", good); r.status != 204 {
		t.Fatalf("DELETE with the token: %d %s", r.status, r.body)
	}
}

// seedWith creates the seed scenario, sending auth.
func (e *testEnv) seedWith(auth string) {
	e.t.Helper()
	for _, rq := range []struct{ path, body string }{
		{"/v1/vpcs", `{"name":"vpc-a","cidr":"10.0.0.0/8"}`},
		{"/v1/vpcs/vpc-a/vswitches", `{"name":"vsw-a","cidr":"10.10.10.0/24","gateway":"10.10.10.1"}`},
		{"/v1/vpcs/vpc-a/hosts", `{"name":"test1","vswitch":"vsw-a","ip":"10.10.10.11","bridge":"br-test","interface":"vnet1"}`},
		{"/v1/vpcs/vpc-a/hosts", `{"name":"test2","vswitch":"vsw-a","ip":"10.10.10.12","bridge":"br-test","interface":"vnet3"}`},
		{"/v1/vpcs/vpc-a/subnets", `{"cidr":"172.18.1.0/24","host":"test1"}`},
	} {
		if r := e.doAuth("POST", rq.path, rq.body, auth); r.status != 201 {
			e.t.Fatalf("POST %s: %d %s", rq.path, r.status, r.body)
		}
	}
}

func TestNoTokenMeansOpen(t *testing.T) {
	e := newEnv(t, Options{})
	// A client that sends a token to a server without one is fine.
	if r := e.doAuth("GET", "/v1/vpcs", "", "Bearer whatever"); r.status != 200 || r.header.Get("WWW-Authenticate") != "" {
		t.Fatalf("open server: %d %v", r.status, r.header)
	}
	if r := e.doAuth("GET", "/v1/vpcs", "", ""); r.status != 200 {
		t.Fatalf("open server without a token: %d", r.status)
	}
}

func TestClientToken(t *testing.T) {
	e := newEnv(t, Options{Token: testToken})
	ctx := context.Background()

	anon, err := NewClient(e.srv.URL, e.srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	if err := anon.Health(ctx); err != nil {
		t.Fatalf("Health needs no token: %v", err)
	}
	var ae *Error
	if _, err := anon.ListVPCs(ctx); !errors.As(err, &ae) || ae.Status != 401 || ae.Msg != "missing or invalid bearer token" {
		t.Fatalf("ListVPCs without a token: %#v", err)
	}
	wrong, _ := NewClient(e.srv.URL, e.srv.Client(), WithToken("nope"))
	if _, err := wrong.CreateVPC(ctx, VPCRequest{Name: "vpc-a"}); !errors.As(err, &ae) || ae.Status != 401 {
		t.Fatalf("CreateVPC with a wrong token: %v", err)
	}

	// Whitespace around the token (a token file's newline) is ignored.
	c, err := NewClient(e.srv.URL, e.srv.Client(), WithToken(" "+testToken+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateVPC(ctx, VPCRequest{Name: "vpc-a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Drops(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteVPC(ctx, "vpc-a", Cascade(true)); err != nil {
		t.Fatal(err)
	}
}
