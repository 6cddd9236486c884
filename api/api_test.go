package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/vpcflow/vpcflow/controller"
	"github.com/vpcflow/vpcflow/controller/controllertest"
	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/ovsdb"
	"github.com/vpcflow/vpcflow/topology"
)

// The API is served over the real controller (controller.New over a real
// topology.Store, bbolt in a temp dir): it validates, stores and computes
// flows exactly as in production. Its port map is fed through
// BridgesChanged, as the OVSDB monitor does, so MACs come from "OVSDB" the
// real way. Tests that need a connected switch connect an in-memory one
// (controllertest.Datapath) that holds what the controller sends; chassis
// are "configured" by controllertest.Chassis (what configuring a real one
// does is tested against OVS in chassis_test.go and ovsdb/).

// countingController is the real controller, counting the changes it
// accepted.
type countingController struct {
	*controller.Controller
	mu      sync.Mutex
	applies int
}

func (c *countingController) Apply(ctx context.Context, ops []topology.Op) ([]topology.Op, error) {
	out, err := c.Controller.Apply(ctx, ops)
	if err == nil {
		c.mu.Lock()
		c.applies++
		c.mu.Unlock()
	}
	return out, err
}

// testBridges is the port map the tests' "OVSDB" reports: br-test (dpid 1)
// with vnet1 (port 1) and vnet3 (port 3), both with attached-mac.
func testBridges() []ovsdb.Bridge {
	return []ovsdb.Bridge{{Name: "br-test", DPID: 1, Ports: map[string]ovsdb.Port{
		"vnet1": {Name: "vnet1", OFPort: 1, AttachedMAC: net.HardwareAddr{0x52, 0x58, 0x00, 0x98, 0xc0, 0x81}},
		"vnet3": {Name: "vnet3", OFPort: 3, AttachedMAC: net.HardwareAddr{0x52, 0x58, 0x00, 0x98, 0xc0, 0x92}},
	}}}
}

// newController returns the real controller over a fresh store, with the
// test port map.
func newController(t testing.TB) (*countingController, *topology.Store) {
	t.Helper()
	st, err := topology.Open(context.Background(), t.TempDir(), zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	c := controller.New(zap.NewNop(), st, controller.Options{Chassis: &controllertest.Chassis{},
		OVSDBEndpoints: []string{"unix:/test/db.sock"}, PushTimeout: 2 * time.Second, Advertise: "tcp:192.168.100.254:6653"})
	c.BridgesChanged("unix:/test/db.sock", testBridges())
	return &countingController{Controller: c}, st
}

// dumpStore is the whole topology as JSON, to check that a request changed
// nothing.
func dumpStore(st *topology.Store) string {
	var all []any
	st.Read(func(st *topology.State) {
		for _, v := range st.VPCs() {
			all = append(all, v, st.VSwitches(v.Name), st.Hosts(v.Name), st.Subnets(v.Name))
		}
		for _, c := range st.AllChassis() {
			all = append(all, c, st.HostsOnChassis(c.Name))
		}
	})
	out, _ := json.Marshal(all)
	return string(out)
}

type testEnv struct {
	t     *testing.T
	store *topology.Store
	ctrl  *countingController
	dp    *controllertest.Datapath // set by newSwitchEnv
	srv   *httptest.Server
	h     http.Handler
}

// newEnv serves the API over the real controller.
func newEnv(t *testing.T, opts Options) *testEnv {
	t.Helper()
	c, st := newController(t)
	e := &testEnv{t: t, store: st, ctrl: c}
	e.serve(c, opts)
	return e
}

// newSwitchEnv is newEnv with a switch connected: br-test, dpid 1,
// reconciled.
func newSwitchEnv(t *testing.T, opts Options) *testEnv {
	t.Helper()
	e := newEnv(t, opts)
	e.dp = controllertest.NewDatapath(1)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		e.ctrl.Serve(ctx, e.dp)
		e.ctrl.Forget(e.dp)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for len(e.ctrl.Switches()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("switch not reconciled")
		}
		time.Sleep(time.Millisecond)
	}
	return e
}

func (e *testEnv) serve(b Backend, opts Options) {
	e.h = NewServer(zaptest.NewLogger(e.t, zaptest.Level(zap.WarnLevel)), b, opts)
	e.srv = httptest.NewServer(e.h)
	e.t.Cleanup(e.srv.Close)
}

func (e *testEnv) dump() string { return dumpStore(e.store) }

// applies counts the changes the backend accepted.
func (e *testEnv) applies() int {
	e.ctrl.mu.Lock()
	defer e.ctrl.mu.Unlock()
	return e.ctrl.applies
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) err() ErrorBody {
	var e ErrorBody
	_ = json.Unmarshal(r.body, &e)
	return e
}

func (e *testEnv) do(method, path, body string) reply {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
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

// must sends a request and checks its status.
func (e *testEnv) must(status int, method, path, body string) reply {
	e.t.Helper()
	r := e.do(method, path, body)
	if r.status != status {
		e.t.Fatalf("%s %s %s: status %d, want %d: %s", method, path, body, r.status, status, r.body)
	}
	if status != http.StatusNoContent && !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		e.t.Fatalf("%s %s: Content-Type %q", method, path, r.header.Get("Content-Type"))
	}
	return r
}

// newRequest is httptest.NewRequest as a client of the API sends it: to
// 127.0.0.1, with Content-Type: application/json on writes.
func newRequest(method, target string, body io.Reader) *http.Request {
	r := httptest.NewRequest(method, target, body)
	r.Host = "127.0.0.1:8080"
	if writeMethod(method) {
		r.Header.Set("Content-Type", "application/json")
	}
	return r
}

func decode[T any](t *testing.T, r reply) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
	return v
}

// seed creates the seed scenario through the API.
func (e *testEnv) seed() {
	e.t.Helper()
	e.must(201, "POST", "/v1/vpcs", `{"name":"vpc-a","cidr":"10.0.0.0/8","dec_ttl":false}`)
	e.must(201, "POST", "/v1/vpcs/vpc-a/vswitches", `{"name":"vsw-a","cidr":"10.10.10.0/24","gateway":"10.10.10.1"}`)
	e.must(201, "POST", "/v1/vpcs/vpc-a/hosts", `{"name":"test1","vswitch":"vsw-a","ip":"10.10.10.11","mac":"52:58:00:98:c0:81","bridge":"br-test","interface":"vnet1"}`)
	e.must(201, "POST", "/v1/vpcs/vpc-a/hosts", `{"name":"test2","vswitch":"vsw-a","ip":"10.10.10.12","bridge":"br-test","interface":"vnet3"}`)
	e.must(201, "POST", "/v1/vpcs/vpc-a/subnets", `{"cidr":"172.18.1.0/24","host":"test1"}`)
	e.must(201, "POST", "/v1/vpcs/vpc-a/subnets", `{"cidr":"172.18.3.0/24","host":"test2"}`)
}

func TestHealthz(t *testing.T) {
	e := newEnv(t, Options{})
	r := e.must(200, "GET", "/healthz", "")
	if got := strings.TrimSpace(string(r.body)); got != `{"status":"ok"}` {
		t.Fatalf("healthz body %s", got)
	}
}

func TestSeedScenarioRoutes(t *testing.T) {
	e := newEnv(t, Options{})

	// VPCs.
	r := e.must(201, "POST", "/v1/vpcs", `{"name":"vpc-a","cidr":"10.0.0.0/8","dec_ttl":false}`)
	if v := decode[topology.VPC](t, r); v.ID != 1 || v.Name != "vpc-a" || v.CIDR.String() != "10.0.0.0/8" {
		t.Fatalf("created VPC %+v", v)
	}
	if loc := r.header.Get("Location"); loc != "/v1/vpcs/vpc-a" {
		t.Errorf("Location %q", loc)
	}
	e.must(201, "POST", "/v1/vpcs", `{"name":"vpc-b"}`)
	r = e.must(200, "GET", "/v1/vpcs", "")
	if vs := decode[[]topology.VPC](t, r); len(vs) != 2 || vs[0].Name != "vpc-a" || vs[1].Name != "vpc-b" {
		t.Fatalf("VPC list %s", r.body)
	}
	if !strings.Contains(string(r.body), `"cidr":"10.0.0.0/8"`) || strings.Contains(string(r.body), `"name":"vpc-b","cidr"`) {
		t.Errorf("VPC list JSON %s", r.body)
	}
	e.must(200, "GET", "/v1/vpcs/vpc-b", "")
	e.must(204, "DELETE", "/v1/vpcs/vpc-b", "")
	e.must(404, "GET", "/v1/vpcs/vpc-b", "")
	e.must(404, "DELETE", "/v1/vpcs/vpc-b", "")

	// vSwitches.
	r = e.must(201, "POST", "/v1/vpcs/vpc-a/vswitches", `{"name":"vsw-a","cidr":"10.10.10.0/24","gateway":"10.10.10.1"}`)
	if w := decode[topology.VSwitch](t, r); w.VPC != "vpc-a" || w.Gateway.String() != "10.10.10.1" || w.ID != 1 {
		t.Fatalf("vSwitch %+v", w)
	}
	r = e.must(201, "POST", "/v1/vpcs/vpc-a/vswitches", `{"vpc":"vpc-a","name":"vsw-b","cidr":"10.20.0.0/24"}`)
	if w := decode[topology.VSwitch](t, r); w.Gateway.String() != "10.20.0.253" {
		t.Fatalf("default gateway %+v", w)
	}
	if ws := decode[[]topology.VSwitch](t, e.must(200, "GET", "/v1/vpcs/vpc-a/vswitches", "")); len(ws) != 2 {
		t.Fatalf("vSwitch list %+v", ws)
	}
	e.must(200, "GET", "/v1/vpcs/vpc-a/vswitches/vsw-b", "")
	e.must(204, "DELETE", "/v1/vpcs/vpc-a/vswitches/vsw-b", "")
	e.must(404, "GET", "/v1/vpcs/vpc-a/vswitches/vsw-b", "")
	e.must(404, "GET", "/v1/vpcs/nope/vswitches", "")

	// Hosts: with a MAC, with the MAC from OVSDB, by dpid+ofport.
	e.must(201, "POST", "/v1/vpcs/vpc-a/hosts", `{"name":"test1","vswitch":"vsw-a","ip":"10.10.10.11","mac":"52:58:00:98:c0:81","bridge":"br-test","interface":"vnet1"}`)
	r = e.must(201, "POST", "/v1/vpcs/vpc-a/hosts", `{"name":"test2","vswitch":"vsw-a","ip":"10.10.10.12","bridge":"br-test","interface":"vnet3"}`)
	if h := decode[topology.Host](t, r); h.MAC.String() != "52:58:00:98:c0:92" || h.ID != 2 {
		t.Fatalf("host with MAC from OVSDB: %+v", h)
	}
	r = e.must(201, "POST", "/v1/vpcs/vpc-a/hosts", `{"name":"test3","vswitch":"vsw-a","ip":"10.10.10.13","mac":"52:58:00:98:c0:93","dpid":"0x2a","ofport":4}`)
	if h := decode[topology.Host](t, r); h.DPID != 42 || h.OFPort != 4 || !strings.Contains(string(r.body), `"dpid":"000000000000002a"`) {
		t.Fatalf("host by dpid: %s", r.body)
	}
	e.must(201, "POST", "/v1/vpcs/vpc-a/hosts", `{"name":"test4","vswitch":"vsw-a","ip":"10.10.10.14","mac":"52:58:00:98:c0:94","dpid":42,"ofport":5}`)
	if hs := decode[[]topology.Host](t, e.must(200, "GET", "/v1/vpcs/vpc-a/hosts", "")); len(hs) != 4 || hs[0].Name != "test1" || hs[3].DPID != 42 {
		t.Fatalf("host list %+v", hs)
	}
	if h := decode[topology.Host](t, e.must(200, "GET", "/v1/vpcs/vpc-a/hosts/test1", "")); h.Bridge != "br-test" || h.Interface != "vnet1" {
		t.Fatalf("host %+v", h)
	}
	e.must(404, "GET", "/v1/vpcs/vpc-a/hosts/nope", "")

	// Subnets.
	r = e.must(201, "POST", "/v1/vpcs/vpc-a/subnets", `{"cidr":"172.18.1.0/24","host":"test1"}`)
	if s := decode[topology.Subnet](t, r); s.Name != "172.18.1.0-24" || s.Host != "test1" {
		t.Fatalf("subnet %+v", s)
	}
	if loc := r.header.Get("Location"); loc != "/v1/vpcs/vpc-a/subnets/172.18.1.0-24" {
		t.Errorf("Location %q", loc)
	}
	e.must(201, "POST", "/v1/vpcs/vpc-a/subnets", `{"name":"vm2-containers","cidr":"172.18.3.0/24","host":"test2"}`)
	r = e.must(200, "PUT", "/v1/vpcs/vpc-a/subnets/vm2-containers", `{"host":"test3"}`)
	if s := decode[topology.Subnet](t, r); s.Host != "test3" || s.CIDR.String() != "172.18.3.0/24" {
		t.Fatalf("moved subnet %+v", s)
	}
	e.must(200, "PUT", "/v1/vpcs/vpc-a/subnets/vm2-containers", `{"host":"test2","name":"vm2-containers","cidr":"172.18.3.0/24","vpc":"vpc-a"}`)
	if ss := decode[[]topology.Subnet](t, e.must(200, "GET", "/v1/vpcs/vpc-a/subnets", "")); len(ss) != 2 || ss[1].Host != "test2" {
		t.Fatalf("subnet list %+v", ss)
	}
	e.must(200, "GET", "/v1/vpcs/vpc-a/subnets/172.18.1.0-24", "")

	// Deletes refuse what is in use.
	if r := e.must(409, "DELETE", "/v1/vpcs/vpc-a", ""); r.err().Field != "name" || !strings.Contains(r.err().Error, "is still used by") {
		t.Fatalf("delete non-empty VPC: %s", r.body)
	}
	if r := e.must(409, "DELETE", "/v1/vpcs/vpc-a/hosts/test1", ""); !strings.Contains(r.err().Error, "172.18.1.0-24") {
		t.Fatalf("delete next hop: %s", r.body)
	}
	if r := e.must(409, "DELETE", "/v1/vpcs/vpc-a/vswitches/vsw-a", ""); !strings.Contains(r.err().Error, "test1") {
		t.Fatalf("delete vSwitch in use: %s", r.body)
	}
	e.must(204, "DELETE", "/v1/vpcs/vpc-a/subnets/172.18.1.0-24", "")
	e.must(204, "DELETE", "/v1/vpcs/vpc-a/subnets/vm2-containers", "")
	e.must(404, "DELETE", "/v1/vpcs/vpc-a/subnets/vm2-containers", "")
	for _, h := range []string{"test1", "test2", "test3", "test4"} {
		e.must(204, "DELETE", "/v1/vpcs/vpc-a/hosts/"+h, "")
	}
	e.must(204, "DELETE", "/v1/vpcs/vpc-a/vswitches/vsw-a", "")
	e.must(204, "DELETE", "/v1/vpcs/vpc-a", "")
	if r := e.must(200, "GET", "/v1/vpcs", ""); strings.TrimSpace(string(r.body)) != "[]" {
		t.Fatalf("empty list is %s, want []", r.body)
	}
}

func TestConflictsAndNotFound(t *testing.T) {
	e := newEnv(t, Options{})
	e.seed()
	cases := []struct {
		method, path, body string
		status             int
		field, msg         string
	}{
		{"POST", "/v1/vpcs", `{"name":"vpc-a"}`, 409, "name", "already exists"},
		{"POST", "/v1/vpcs/nope/vswitches", `{"name":"w","cidr":"10.1.0.0/24"}`, 404, "vpc", "does not exist"},
		{"POST", "/v1/vpcs/vpc-a/vswitches", `{"name":"w","cidr":"10.10.0.0/16"}`, 409, "cidr", `overlaps vSwitch "vsw-a"`},
		{"POST", "/v1/vpcs/vpc-a/hosts", `{"name":"x","vswitch":"vsw-a","ip":"10.10.10.11","mac":"02:00:00:00:00:01","dpid":1,"ofport":1}`, 409, "ip", `host "test1"`},
		{"POST", "/v1/vpcs/vpc-a/hosts", `{"name":"x","vswitch":"nope","ip":"10.10.10.21","mac":"02:00:00:00:00:01","dpid":1,"ofport":1}`, 404, "vswitch", ""},
		{"POST", "/v1/vpcs/vpc-a/hosts", `{"name":"x","vswitch":"vsw-a","ip":"10.10.10.21","bridge":"br-test","interface":"vnet1"}`, 409, "interface", `host "test1"`},
		{"POST", "/v1/vpcs/vpc-a/subnets", `{"cidr":"172.18.1.0/24","host":"test2","name":"dup"}`, 409, "cidr", "already exists"},
		{"POST", "/v1/vpcs/vpc-a/subnets", `{"cidr":"172.18.9.0/24","host":"nope"}`, 404, "host", ""},
		{"POST", "/v1/vpcs/vpc-a/subnets", `{"cidr":"10.10.10.0/25","host":"test1"}`, 400, "cidr", "overlaps"},
		{"PUT", "/v1/vpcs/vpc-a/subnets/nope", `{"host":"test1"}`, 404, "name", ""},
		{"PUT", "/v1/vpcs/vpc-a/subnets/172.18.1.0-24", `{"host":"nope"}`, 404, "host", ""},
		{"DELETE", "/v1/vpcs/vpc-a/hosts/nope", "", 404, "name", ""},
		{"DELETE", "/v1/vpcs/nope/hosts/test1", "", 404, "vpc", ""},
		{"GET", "/v1/vpcs/nope/hosts", "", 404, "vpc", ""},
		{"GET", "/v1/vpcs/nope/subnets", "", 404, "vpc", ""},
		{"GET", "/v1/vpcs/vpc-a/subnets/nope", "", 404, "name", ""},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path+" "+c.body, func(t *testing.T) {
			before := e.dump()
			r := e.do(c.method, c.path, c.body)
			eb := r.err()
			if r.status != c.status || eb.Field != c.field || !strings.Contains(eb.Error, c.msg) {
				t.Fatalf("got %d %s; want %d field %q msg ~%q", r.status, r.body, c.status, c.field, c.msg)
			}
			if e.dump() != before {
				t.Fatal("store changed")
			}
		})
	}
}

func TestBatches(t *testing.T) {
	e := newEnv(t, Options{})
	e.seed()
	r := e.must(201, "POST", "/v1/vpcs/vpc-a/hosts", `[
		{"name":"b1","vswitch":"vsw-a","ip":"10.10.10.21","mac":"02:00:00:00:00:21","dpid":"1","ofport":21},
		{"name":"b2","vswitch":"vsw-a","ip":"10.10.10.22","mac":"02:00:00:00:00:22","dpid":"1","ofport":22}
	]`)
	if hs := decode[[]topology.Host](t, r); len(hs) != 2 || hs[0].Name != "b1" || hs[1].ID != 4 {
		t.Fatalf("batch result %s", r.body)
	}
	r = e.must(201, "POST", "/v1/vpcs/vpc-a/subnets", `[{"cidr":"172.18.21.0/24","host":"b1"},{"cidr":"172.18.22.0/24","host":"b2"}]`)
	if ss := decode[[]topology.Subnet](t, r); len(ss) != 2 || ss[1].Name != "172.18.22.0-24" {
		t.Fatalf("batch result %s", r.body)
	}

	applies := e.applies()
	cases := []struct {
		path, body string
		status     int
		field      string
	}{
		// Rejected by the store: the whole batch is refused.
		{"/v1/vpcs/vpc-a/hosts", `[{"name":"b3","vswitch":"vsw-a","ip":"10.10.10.23","mac":"02:00:00:00:00:23","dpid":"1","ofport":23},{"name":"b4","vswitch":"vsw-a","ip":"10.10.10.23","mac":"02:00:00:00:00:24","dpid":"1","ofport":24}]`, 409, "[1].ip"},
		{"/v1/vpcs/vpc-a/hosts", `[{"name":"b3","vswitch":"vsw-a","ip":"10.10.10.255","mac":"02:00:00:00:00:23","dpid":"1","ofport":23}]`, 400, "[0].ip"},
		{"/v1/vpcs/vpc-a/subnets", `[{"cidr":"172.18.31.0/24","host":"b1"},{"cidr":"172.18.32.0/24","host":"gone"}]`, 404, "[1].host"},
		// Rejected by the API before the store sees it.
		{"/v1/vpcs/vpc-a/hosts", `[{"name":"b3","vswitch":"vsw-a","ip":"10.10.10.23","mac":"02:00:00:00:00:23","dpid":"1","ofport":23},{"name":"b4","ip":"not-an-ip"}]`, 400, "[1].ip"},
		{"/v1/vpcs/vpc-a/hosts", `[{"name":"b3"},{"name":"b4","id":7}]`, 400, "[1].id"},
		{"/v1/vpcs/vpc-a/hosts", `[{"name":"b3"},{"ofport":"x"}]`, 400, "[1].ofport"},
		{"/v1/vpcs/vpc-a/hosts", `[{"name":"b3"}, 5]`, 400, "[1]"},
		{"/v1/vpcs/vpc-a/hosts", `[]`, 400, ""},
		{"/v1/vpcs/vpc-a/hosts", `[{"name":"b3"}`, 400, ""},
		{"/v1/vpcs/vpc-a/hosts", `[{"name":"b3"}] []`, 400, ""},
		{"/v1/vpcs/vpc-a/subnets", `[{"cidr":"172.18.31.0/24","host":"b1","vpc":"vpc-b"}]`, 400, "[0].vpc"},
	}
	for _, c := range cases {
		before := e.dump()
		r := e.do("POST", c.path, c.body)
		if r.status != c.status || r.err().Field != c.field || r.err().Error == "" {
			t.Errorf("POST %s %s: got %d %s; want %d field %q", c.path, c.body, r.status, r.body, c.status, c.field)
		}
		if e.dump() != before {
			t.Errorf("POST %s %s changed the store", c.path, c.body)
		}
	}
	if n := e.applies(); n != applies {
		t.Errorf("%d rejected batches reached the backend as successful applies", n-applies)
	}
}

// TestMalformedBodies: every malformed request is a 4xx with a JSON error
// naming the field where there is one, leaves the store unchanged, and
// does not panic.
func TestMalformedBodies(t *testing.T) {
	e := newEnv(t, Options{MaxBodyBytes: 4096})
	e.seed()
	host := func(extra string) string {
		return `{"name":"h9","vswitch":"vsw-a","ip":"10.10.10.29","mac":"02:00:00:00:00:29","dpid":"1","ofport":29` + extra + `}`
	}
	hostWith := func(field, value string) string {
		m := map[string]any{"name": "h9", "vswitch": "vsw-a", "ip": "10.10.10.29", "mac": "02:00:00:00:00:29", "dpid": "1", "ofport": 29}
		if value == "<omit>" {
			delete(m, field)
		} else {
			m[field] = json.RawMessage(value)
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	big := `{"name":"` + strings.Repeat("a", 5000) + `"}`
	cases := []struct {
		name, method, path, body string
		status                   int
		field, msg               string
	}{
		{"invalid JSON", "POST", "/v1/vpcs", `{"name":`, 400, "", "invalid JSON"},
		{"invalid JSON unquoted key", "POST", "/v1/vpcs", `{name:"x"}`, 400, "", "invalid JSON"},
		{"empty body", "POST", "/v1/vpcs", ``, 400, "", "empty body"},
		{"null body", "POST", "/v1/vpcs", `null`, 400, "", "want a JSON object"},
		{"array for an object", "POST", "/v1/vpcs", `[{"name":"x"}]`, 400, "", "want a JSON object"},
		{"string body", "POST", "/v1/vpcs/vpc-a/vswitches", `"x"`, 400, "", "want a JSON object"},
		{"trailing garbage", "POST", "/v1/vpcs", `{"name":"x"} garbage`, 400, "", "after the JSON value"},
		{"two objects", "POST", "/v1/vpcs", `{"name":"x"}{"name":"y"}`, 400, "", "after the JSON value"},
		{"unknown field", "POST", "/v1/vpcs", `{"name":"x","color":"red"}`, 400, "color", "unknown field; allowed: name, cidr, dec_ttl"},
		{"id field", "POST", "/v1/vpcs", `{"name":"x","id":5}`, 400, "id", "unknown field"},
		{"id field on a host", "POST", "/v1/vpcs/vpc-a/hosts", host(`,"id":5`), 400, "id", "unknown field"},
		{"wrong type name", "POST", "/v1/vpcs", `{"name":5}`, 400, "name", "want a string"},
		{"wrong type dec_ttl", "POST", "/v1/vpcs", `{"name":"x","dec_ttl":"yes"}`, 400, "dec_ttl", "true or false"},
		{"wrong type ofport", "POST", "/v1/vpcs/vpc-a/hosts", hostWith("ofport", `"29"`), 400, "ofport", "whole number"},
		{"negative ofport", "POST", "/v1/vpcs/vpc-a/hosts", hostWith("ofport", `-1`), 400, "ofport", "whole number"},
		{"huge ofport", "POST", "/v1/vpcs/vpc-a/hosts", hostWith("ofport", `4294967296`), 400, "ofport", ""},
		{"reserved ofport", "POST", "/v1/vpcs/vpc-a/hosts", hostWith("ofport", `4294967294`), 400, "ofport", "out of range"},
		{"bad dpid string", "POST", "/v1/vpcs/vpc-a/hosts", hostWith("dpid", `"xyz"`), 400, "dpid", "16 hex digits"},
		{"bad dpid type", "POST", "/v1/vpcs/vpc-a/hosts", hostWith("dpid", `true`), 400, "dpid", ""},
		{"dpid too long", "POST", "/v1/vpcs/vpc-a/hosts", hostWith("dpid", `"00000000000000001"`), 400, "dpid", ""},
		{"dpid zero", "POST", "/v1/vpcs/vpc-a/hosts", hostWith("dpid", `0`), 400, "dpid", ""},
		{"oversize body", "POST", "/v1/vpcs", big, 413, "", "larger than 4096 bytes"},
		{"oversize batch", "POST", "/v1/vpcs/vpc-a/hosts", "[" + strings.Repeat(host("")+",", 40) + host("") + "]", 413, "", "larger than"},
		{"cidr garbage", "POST", "/v1/vpcs", `{"name":"x","cidr":"abc"}`, 400, "cidr", "not a valid CIDR"},
		{"cidr /33", "POST", "/v1/vpcs/vpc-a/vswitches", `{"name":"w","cidr":"10.1.0.0/33"}`, 400, "cidr", "not a valid CIDR"},
		{"cidr non-canonical", "POST", "/v1/vpcs/vpc-a/vswitches", `{"name":"w","cidr":"10.1.0.1/24"}`, 400, "cidr", "did you mean 10.1.0.0/24"},
		{"cidr IPv6 vpc", "POST", "/v1/vpcs", `{"name":"x","cidr":"fd00::/8"}`, 400, "cidr", "must be IPv4"},
		{"cidr IPv6 vswitch", "POST", "/v1/vpcs/vpc-a/vswitches", `{"name":"w","cidr":"fd00::/64"}`, 400, "cidr", "must be IPv4"},
		{"cidr IPv6 subnet", "POST", "/v1/vpcs/vpc-a/subnets", `{"cidr":"fd00::/64","host":"test1"}`, 400, "cidr", "must be IPv4"},
		{"cidr wrong type", "POST", "/v1/vpcs/vpc-a/subnets", `{"cidr":["172.18.9.0/24"],"host":"test1"}`, 400, "cidr", "want a string"},
		{"gateway garbage", "POST", "/v1/vpcs/vpc-a/vswitches", `{"name":"w","cidr":"10.1.0.0/24","gateway":"10.1.0"}`, 400, "gateway", "not a valid IP"},
		{"ip garbage", "POST", "/v1/vpcs/vpc-a/hosts", hostWith("ip", `"10.10.10.300"`), 400, "ip", "not a valid IP"},
		{"ip IPv6", "POST", "/v1/vpcs/vpc-a/hosts", hostWith("ip", `"fd00::29"`), 400, "ip", "must be IPv4"},
		{"ip missing", "POST", "/v1/vpcs/vpc-a/hosts", hostWith("ip", `<omit>`), 400, "ip", "required"},
		{"mac garbage", "POST", "/v1/vpcs/vpc-a/hosts", hostWith("mac", `"zz:zz"`), 400, "mac", "not a valid MAC"},
		{"mac EUI-64", "POST", "/v1/vpcs/vpc-a/hosts", hostWith("mac", `"02:00:00:00:00:00:00:01"`), 400, "mac", "not a valid MAC"},
		{"mac multicast", "POST", "/v1/vpcs/vpc-a/hosts", hostWith("mac", `"01:00:5e:00:00:01"`), 400, "mac", "multicast"},
		{"mac gateway", "POST", "/v1/vpcs/vpc-a/hosts", hostWith("mac", `"EE:FF:FF:FF:FF:FF"`), 400, "mac", "gateway MAC"},
		{"mac missing with dpid", "POST", "/v1/vpcs/vpc-a/hosts", hostWith("mac", `<omit>`), 400, "mac", "required"},
		{"mac unknown to OVSDB", "POST", "/v1/vpcs/vpc-a/hosts", `{"name":"h9","vswitch":"vsw-a","ip":"10.10.10.29","bridge":"br-test","interface":"vnet9"}`, 400, "mac", "required: OVSDB has no external_ids:attached-mac for br-test/vnet9"},
		{"bridge and dpid", "POST", "/v1/vpcs/vpc-a/hosts", host(`,"bridge":"br-test","interface":"vnet9"`), 400, "dpid", "not both"},
		{"no attachment", "POST", "/v1/vpcs/vpc-a/hosts", `{"name":"h9","vswitch":"vsw-a","ip":"10.10.10.29","mac":"02:00:00:00:00:29"}`, 400, "bridge", "required"},
		{"name with slash", "POST", "/v1/vpcs", `{"name":"a/b"}`, 400, "name", "not a valid name"},
		{"name dotdot", "POST", "/v1/vpcs/vpc-a/hosts", hostWith("name", `"../../etc"`), 400, "name", "not a valid name"},
		{"name dotdot alone", "POST", "/v1/vpcs/vpc-a/vswitches", `{"name":"..","cidr":"10.1.0.0/24"}`, 400, "name", "not a valid name"},
		{"name too long", "POST", "/v1/vpcs", `{"name":"` + strings.Repeat("n", 64) + `"}`, 400, "name", "too long"},
		{"name with NUL", "POST", "/v1/vpcs", `{"name":"a\u0000b"}`, 400, "name", ""},
		{"subnet name with slash", "POST", "/v1/vpcs/vpc-a/subnets", `{"name":"a/b","cidr":"172.18.9.0/24","host":"test1"}`, 400, "name", ""},
		{"vpc disagrees", "POST", "/v1/vpcs/vpc-a/hosts", hostWith("vpc", `"vpc-b"`), 400, "vpc", `URL says "vpc-a"`},
		{"vpc disagrees vswitch", "POST", "/v1/vpcs/vpc-a/vswitches", `{"vpc":"other","name":"w","cidr":"10.1.0.0/24"}`, 400, "vpc", ""},
		{"subnet rename", "PUT", "/v1/vpcs/vpc-a/subnets/172.18.1.0-24", `{"host":"test2","name":"other"}`, 400, "name", "cannot be renamed"},
		{"subnet cidr change", "PUT", "/v1/vpcs/vpc-a/subnets/172.18.1.0-24", `{"host":"test2","cidr":"172.18.2.0/24"}`, 400, "cidr", "cannot be changed"},
		{"subnet move bad JSON", "PUT", "/v1/vpcs/vpc-a/subnets/172.18.1.0-24", `{"host":}`, 400, "", "invalid JSON"},
		{"subnet move no host", "PUT", "/v1/vpcs/vpc-a/subnets/172.18.1.0-24", `{}`, 400, "host", "required"},
		{"bad dpid in URL", "GET", "/v1/switches/not-hex/flows", ``, 400, "dpid", ""},
		{"encoded slash in name", "GET", "/v1/vpcs/vpc-a/hosts/a%2Fb", ``, 404, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.dump()
			r := e.do(c.method, c.path, c.body)
			eb := r.err()
			if r.status != c.status || eb.Field != c.field || !strings.Contains(eb.Error, c.msg) || eb.Error == "" {
				t.Fatalf("got %d %s\nwant %d field %q msg ~%q", r.status, r.body, c.status, c.field, c.msg)
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Fatalf("Content-Type %q", ct)
			}
			if e.dump() != before {
				t.Fatal("store changed")
			}
		})
	}
}

func TestMethodsAndRoutes(t *testing.T) {
	e := newEnv(t, Options{})
	e.seed()
	r := e.must(405, "PATCH", "/v1/vpcs", `{}`)
	if got := r.header.Get("Allow"); got != "GET, POST" {
		t.Errorf("Allow %q", got)
	}
	if r.err().Error == "" {
		t.Errorf("405 without JSON error: %s", r.body)
	}
	r = e.must(405, "PUT", "/v1/vpcs/vpc-a", `{}`)
	if got := r.header.Get("Allow"); got != "GET, DELETE" {
		t.Errorf("Allow %q", got)
	}
	e.must(405, "POST", "/v1/vpcs/vpc-a/subnets/172.18.1.0-24", `{}`)
	e.must(405, "DELETE", "/v1/switches", ``)
	if r := e.must(405, "POST", "/healthz", ``); r.header.Get("Allow") != "GET, HEAD" {
		t.Errorf("Allow on /healthz: %q", r.header.Get("Allow"))
	}
	e.must(200, "HEAD", "/healthz", ``)
	r = e.must(404, "GET", "/v2/vpcs", ``)
	if r.err().Error == "" {
		t.Errorf("404 without JSON error: %s", r.body)
	}
	e.must(404, "GET", "/v1/vpcs/vpc-a/routers", ``)
}

// TestSwitchesAndFlows renders a connected switch's data, then checks
// what the controller answers with no switch connected.
func TestSwitchesAndFlows(t *testing.T) {
	e := newSwitchEnv(t, Options{})
	e.seed()
	r := e.must(200, "GET", "/v1/switches", "")
	sws := decode[[]controller.SwitchInfo](t, r)
	if len(sws) != 1 || sws[0].DPID != 1 || sws[0].Bridge != "br-test" || len(sws[0].Ports) != 2 || !strings.Contains(string(r.body), `"dpid":"0000000000000001"`) {
		t.Fatalf("switches %s", r.body)
	}
	installed := e.dp.Flows()
	for _, p := range []string{"0000000000000001", "0x1", "1"} {
		r = e.must(200, "GET", "/v1/switches/"+p+"/flows", "")
		if fs := decode[[]controller.FlowEntry](t, r); len(fs) != len(installed) || fs[0].Table != 0 || fs[len(fs)-1].Table != 70 ||
			r.header.Get(TotalCountHeader) != fmt.Sprint(len(installed)) {
			t.Fatalf("flows (%s %q) %s", TotalCountHeader, r.header.Get(TotalCountHeader), r.body)
		}
	}
	// Every flow at once (sorted in place) comes in the order of the pages
	// (by page key).
	all := decode[[]controller.FlowEntry](t, e.must(200, "GET", "/v1/switches/1/flows", ""))
	var paged []controller.FlowEntry
	for tok := ""; ; {
		r = e.must(200, "GET", "/v1/switches/1/flows?limit=7"+tok, "")
		paged = append(paged, decode[[]controller.FlowEntry](t, r)...)
		if r.header.Get(NextPageHeader) == "" {
			break
		}
		tok = "&page_token=" + url.QueryEscape(r.header.Get(NextPageHeader))
	}
	if len(paged) != len(all) {
		t.Fatalf("%d flows in pages of 7, %d at once", len(paged), len(all))
	}
	for i := range all {
		if flowKey(&all[i]) != flowKey(&paged[i]) {
			t.Fatalf("flow %d at once: %s; in pages: %s", i, flowKey(&all[i]), flowKey(&paged[i]))
		}
	}
	// Traffic: test1 spoofed 3 packets, 7 found no route, 1 was IPv6.
	for _, f := range installed {
		ck := pipeline.ParseCookie(f.Cookie)
		switch {
		case ck.Owner == pipeline.OwnerHost && ck.Reason == pipeline.DropSpoofed && f.Table == 0 && ck.ID == 1:
			e.dp.Count(f, 3)
		case ck.Owner == pipeline.OwnerPipeline && ck.Reason == pipeline.DropNoRoute && f.Table == 31:
			e.dp.Count(f, 7)
		case ck.Owner == pipeline.OwnerPipeline && ck.Reason == pipeline.DropOther:
			e.dp.Count(f, 1)
		}
	}
	r = e.must(200, "GET", "/v1/drops", "")
	if d := decode[controller.DropReport](t, r); len(d.Switches) != 1 || d.Switches[0].Drops["spoofed"] != 3 || d.Switches[0].Drops["no_route"] != 7 ||
		d.Switches[0].Drops["other"] != 1 || len(d.Hosts) != 2 || d.Hosts[0].Name != "test1" || d.Hosts[0].Drops["spoofed"] != 3 || d.Hosts[1].Drops["spoofed"] != 0 {
		t.Fatalf("drops %s", r.body)
	}
	if !strings.Contains(string(r.body), `"too_big":0`) || !strings.Contains(string(r.body), `"arp_not_answered":0`) {
		t.Errorf("drops do not list every reason: %s", r.body)
	}

	// The same routes on the real controller, no switch connected.
	e = newEnv(t, Options{})
	if r := e.must(200, "GET", "/v1/switches", ""); strings.TrimSpace(string(r.body)) != "[]" {
		t.Fatalf("no switches: %s", r.body)
	}
	r = e.must(404, "GET", "/v1/switches/00000000000000ff/flows", "")
	if eb := r.err(); eb.Field != "dpid" || !strings.Contains(eb.Error, "00000000000000ff is not connected") {
		t.Fatalf("unknown switch: %s", r.body)
	}
	if r := e.must(200, "GET", "/v1/drops", ""); strings.TrimSpace(string(r.body)) != `{"switches":[],"hosts":[]}` {
		t.Fatalf("drops without switches: %s", r.body)
	}
}

// TestBackendErrors: a switch that does not confirm a change.
func TestBackendErrors(t *testing.T) {
	// A change stored but refused or not confirmed by a switch is a 202:
	// TestUnconfirmedIs202.

	// A topology error wrapped by the backend keeps its status.
	c, _ := newController(t)
	h := NewServer(zap.NewNop(), wrappingBackend{c}, Options{})
	for i, want := range []int{201, 409} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, newRequest("POST", "/v1/vpcs", strings.NewReader(`{"name":"vpc-a"}`)))
		if rec.Code != want || (want == 409 && !strings.Contains(rec.Body.String(), `"field":"name"`)) {
			t.Fatalf("wrapped request %d: %d %s, want %d", i, rec.Code, rec.Body, want)
		}
	}
}

type wrappingBackend struct{ Backend }

func (b wrappingBackend) Apply(ctx context.Context, ops []topology.Op) ([]topology.Op, error) {
	out, err := b.Backend.Apply(ctx, ops)
	if err != nil {
		return nil, fmt.Errorf("controller: %w", err)
	}
	return out, nil
}

// panickyBackend fails inside Read, to check that a handler panic becomes
// a logged 500 and not a dropped connection.
type panickyBackend struct{ Backend }

func (panickyBackend) Read(func(st *topology.State)) { panic("boom") }

func TestPanicIs500(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	c, _ := newController(t)
	h := NewServer(zap.New(core), panickyBackend{c}, Options{})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, newRequest("GET", "/v1/vpcs", nil))
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), "internal error") {
		t.Fatalf("got %d %s", rec.Code, rec.Body)
	}
	if logs.FilterMessage("panic in HTTP handler").Len() != 1 {
		t.Fatalf("panic not logged: %+v", logs.All())
	}
}

func TestRequestLogging(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	c, _ := newController(t)
	h := NewServer(zap.New(core), c, Options{})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, newRequest("POST", "/v1/vpcs", strings.NewReader(`{"name":"vpc-a"}`)))
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, newRequest("GET", "/nowhere", nil))
	entries := logs.FilterMessage("http request").All()
	if len(entries) != 2 {
		t.Fatalf("%d request log entries", len(entries))
	}
	want := []struct {
		method, path string
		status       int64
	}{{"POST", "/v1/vpcs", 201}, {"GET", "/nowhere", 404}}
	for i, en := range entries {
		f := en.ContextMap()
		if f["method"] != want[i].method || f["path"] != want[i].path || f["status"] != want[i].status {
			t.Errorf("log entry %d: %v", i, f)
		}
		if _, ok := f["duration"]; !ok {
			t.Errorf("log entry %d has no duration: %v", i, f)
		}
	}
}

func TestClient(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	c, err := NewClient(e.srv.URL+"/", e.srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Health(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateVPC(ctx, VPCRequest{Name: "vpc-a", CIDR: "10.0.0.0/8", DecTTL: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateVSwitch(ctx, "vpc-a", VSwitchRequest{Name: "vsw-a", CIDR: "10.10.10.0/24", Gateway: "10.10.10.1"}); err != nil {
		t.Fatal(err)
	}
	h, err := c.CreateHost(ctx, "vpc-a", HostRequest{Name: "test1", VSwitch: "vsw-a", IP: "10.10.10.11", Bridge: "br-test", Interface: "vnet1"})
	if err != nil || h.MAC.String() != "52:58:00:98:c0:81" {
		t.Fatalf("CreateHost: %+v %v", h, err)
	}
	hs, err := c.CreateHosts(ctx, "vpc-a", []HostRequest{
		{Name: "test2", VSwitch: "vsw-a", IP: "10.10.10.12", MAC: "52:58:00:98:c0:92", DPID: "0x1", OFPort: 3},
		{Name: "test3", VSwitch: "vsw-a", IP: "10.10.10.13", MAC: "52:58:00:98:c0:93", DPID: "0000000000000001", OFPort: 4},
	})
	if err != nil || len(hs) != 2 || hs[1].OFPort != 4 {
		t.Fatalf("CreateHosts: %+v %v", hs, err)
	}
	if _, err := c.CreateSubnet(ctx, "vpc-a", SubnetRequest{CIDR: "172.18.1.0/24", Host: "test1"}); err != nil {
		t.Fatal(err)
	}
	ss, err := c.CreateSubnets(ctx, "vpc-a", []SubnetRequest{{CIDR: "172.18.3.0/24", Host: "test2"}, {Name: "n", CIDR: "172.18.4.0/24", Host: "test3"}})
	if err != nil || len(ss) != 2 {
		t.Fatalf("CreateSubnets: %+v %v", ss, err)
	}
	s, err := c.MoveSubnet(ctx, "vpc-a", "n", "test1")
	if err != nil || s.Host != "test1" {
		t.Fatalf("MoveSubnet: %+v %v", s, err)
	}
	if v, err := c.GetVPC(ctx, "vpc-a"); err != nil || !v.DecTTL {
		t.Fatalf("GetVPC: %+v %v", v, err)
	}
	if l, err := c.ListVPCs(ctx); err != nil || len(l) != 1 {
		t.Fatalf("ListVPCs: %+v %v", l, err)
	}
	// The host counts, as the three hosts' page would total.
	if w, err := c.GetVSwitch(ctx, "vpc-a", "vsw-a"); err != nil || w.Gateway.String() != "10.10.10.1" || w.HostCount != 3 {
		t.Fatalf("GetVSwitch: %+v %v", w, err)
	}
	if l, err := c.ListVSwitches(ctx, "vpc-a"); err != nil || len(l) != 1 || l[0].HostCount != 3 || l[0].AliyunID() == "" {
		t.Fatalf("ListVSwitches: %+v %v", l, err)
	}
	if h, err := c.GetHost(ctx, "vpc-a", "test2"); err != nil || h.DPID != 1 {
		t.Fatalf("GetHost: %+v %v", h, err)
	}
	if l, err := c.ListHosts(ctx, "vpc-a"); err != nil || len(l) != 3 {
		t.Fatalf("ListHosts: %+v %v", l, err)
	}
	if s, err := c.GetSubnet(ctx, "vpc-a", "172.18.1.0-24"); err != nil || s.Host != "test1" {
		t.Fatalf("GetSubnet: %+v %v", s, err)
	}
	if l, err := c.ListSubnets(ctx, "vpc-a"); err != nil || len(l) != 3 {
		t.Fatalf("ListSubnets: %+v %v", l, err)
	}
	// No switch is connected to the real controller here; see
	// TestClientSwitchData for a connected one.
	if l, err := c.Switches(ctx); err != nil || len(l) != 0 {
		t.Fatalf("Switches: %+v %v", l, err)
	}
	if d, err := c.Drops(ctx); err != nil || d.Switches == nil || len(d.Switches) != 0 || len(d.Hosts) != 0 {
		t.Fatalf("Drops: %+v %v", d, err)
	}

	// Errors come back as *Error with status and field.
	_, err = c.CreateHost(ctx, "vpc-a", HostRequest{Name: "x", VSwitch: "vsw-a", IP: "10.10.10.11", MAC: "02:00:00:00:00:01", DPID: "9", OFPort: 1})
	var ae *Error
	if !errors.As(err, &ae) || ae.Status != 409 || ae.Field != "ip" || !strings.HasPrefix(err.Error(), "ip: ") {
		t.Fatalf("conflict error: %#v", err)
	}
	_, err = c.Flows(ctx, 99)
	if !errors.As(err, &ae) || ae.Status != 404 || ae.Field != "dpid" {
		t.Fatalf("unknown switch error: %#v", err)
	}
	if err := c.DeleteVPC(ctx, "vpc-a"); !errors.As(err, &ae) || ae.Status != 409 {
		t.Fatalf("DeleteVPC non-empty: %v", err)
	}
	for _, n := range []string{"172.18.1.0-24", "172.18.3.0-24", "n"} {
		if err := c.DeleteSubnet(ctx, "vpc-a", n); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"test1", "test2", "test3"} {
		if err := c.DeleteHost(ctx, "vpc-a", n); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.DeleteVSwitch(ctx, "vpc-a", "vsw-a"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteVPC(ctx, "vpc-a"); err != nil {
		t.Fatal(err)
	}
	// Names are escaped in paths: no route escapes its segment.
	if _, err := c.GetHost(ctx, "vpc-a", "../../vpcs"); !errors.As(err, &ae) || ae.Status != 404 {
		t.Fatalf("escaped name: %v", err)
	}

	for _, bad := range []string{"", "localhost:8080", "ftp://x", "http://"} {
		if _, err := NewClient(bad, nil); err == nil {
			t.Errorf("NewClient(%q) accepted", bad)
		}
	}
	// A server that is down is a plain error, not *Error.
	dead, _ := NewClient("http://127.0.0.1:1", nil)
	if err := dead.Health(ctx); err == nil || errors.As(err, &ae) {
		t.Fatalf("dead server: %v", err)
	}
}

// TestClientSwitchData decodes a connected switch's data.
func TestClientSwitchData(t *testing.T) {
	e := newSwitchEnv(t, Options{})
	e.seed()
	ctx := context.Background()
	c, err := NewClient(e.srv.URL, e.srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	if l, err := c.Switches(ctx); err != nil || len(l) != 1 || l[0].Ports[0].MAC != "52:58:00:98:c0:81" {
		t.Fatalf("Switches: %+v %v", l, err)
	}
	if l, err := c.Flows(ctx, 1); err != nil || len(l) != len(e.dp.Flows()) {
		t.Fatalf("Flows: %d %v, want %d", len(l), err, len(e.dp.Flows()))
	}
	d, err := c.Drops(ctx)
	if err != nil || len(d.Switches) != 1 || d.Switches[0].DPID != 1 || len(d.Switches[0].Drops) != len(pipeline.Default().DropReasons()) {
		t.Fatalf("Drops: %+v %v", d, err)
	}
}

// FuzzCreateHostBody posts arbitrary bytes as a host (or batch of hosts):
// the answer is always 201 or a 4xx with a JSON error, never a panic or
// a 5xx, and a rejected body changes nothing.
func FuzzCreateHostBody(f *testing.F) {
	for _, s := range []string{
		`{"name":"h9","vswitch":"vsw-a","ip":"10.10.10.29","mac":"02:00:00:00:00:29","dpid":"1","ofport":29}`,
		`{"name":"h9","vswitch":"vsw-a","ip":"10.10.10.29","bridge":"br-test","interface":"vnet3"}`,
		`[{"name":"h9","vswitch":"vsw-a","ip":"10.10.10.29","mac":"02:00:00:00:00:29","dpid":1,"ofport":29}]`,
		`{"name":"h9","vswitch":"vsw-a","ip":"10.10.10.29","mac":"02:00:00:00:00:29","dpid":"0xffffffffffffffff","ofport":4294967039}`,
		`{"name":"../x","ip":"fd00::1","mac":"ee:ff:ff:ff:ff:ff","dpid":-1}`,
		`{"id":1}`, `[]`, `[1,2]`, `null`, `{"name":"a"} {}`, "\x00\xff", `{"dpid":1e400}`, `{"ofport":1.5}`,
		`{"name":"h9","Name":"h8","vswitch":"vsw-a","ip":"10.10.10.29","mac":"02:00:00:00:00:29","dpid":"1","ofport":29}`,
		`{"name":"h9","vswitch":"vsw-a","ip":"10.10.10.29","ip":"10.10.10.30","mac":"02:00:00:00:00:29","dpid":{"a":1,"a":2},"ofport":29}`,
		`[{"name":"h9","vswitch":"vsw-a","ip":"10.10.10.29","mac":"02:00:00:00:00:29","dpid":1,"ofport":29},{"NAME":"x"}]`,
	} {
		f.Add([]byte(s))
	}
	ctrl, st := newController(f)
	h := NewServer(zap.NewNop(), ctrl, Options{MaxBodyBytes: 1 << 16})
	for _, body := range []string{
		`{"name":"vpc-a","cidr":"10.0.0.0/8"}`,
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, newRequest("POST", "/v1/vpcs", strings.NewReader(body)))
		if rec.Code != 201 {
			f.Fatal(rec.Body.String())
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, newRequest("POST", "/v1/vpcs/vpc-a/vswitches", strings.NewReader(`{"name":"vsw-a","cidr":"10.10.10.0/24"}`)))
	if rec.Code != 201 {
		f.Fatal(rec.Body.String())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		before := dumpStore(st)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, newRequest("POST", "/v1/vpcs/vpc-a/hosts", bytes.NewReader(data)))
		switch {
		case rec.Code == 201:
			var created []topology.Host
			if isArray(data) {
				if err := json.Unmarshal(rec.Body.Bytes(), &created); err != nil {
					t.Fatalf("201 with a bad array: %s", rec.Body)
				}
			} else {
				var one topology.Host
				if err := json.Unmarshal(rec.Body.Bytes(), &one); err != nil {
					t.Fatalf("201 with a bad object: %s", rec.Body)
				}
				created = []topology.Host{one}
			}
			// Undo, so every input starts from the same store.
			ops := make([]topology.Op, len(created))
			for i, c := range created {
				ops[i] = topology.Op{Kind: topology.OpDelete, Obj: &topology.Host{VPC: "vpc-a", Name: c.Name}}
			}
			if _, err := ctrl.Apply(context.Background(), ops); err != nil {
				t.Fatalf("deleting created hosts: %v", err)
			}
		case rec.Code >= 400 && rec.Code < 500:
			var eb ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error == "" {
				t.Fatalf("%d without a JSON error: %q", rec.Code, rec.Body)
			}
			if dumpStore(st) != before {
				t.Fatalf("rejected body changed the store: %q", data)
			}
		default:
			t.Fatalf("status %d for %q: %s", rec.Code, data, rec.Body)
		}
	})
}
