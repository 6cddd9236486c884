package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/gorilla/mux"
	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/controller/controllertest"
	"github.com/vpcflow/vpcflow/metrics"
	"github.com/vpcflow/vpcflow/topology"
)

// newFullEnv serves the API with every optional route (metrics, trace)
// over the real controller with a switch connected, and hands back the
// router.
func newFullEnv(t *testing.T) (*testEnv, *mux.Router) {
	t.Helper()
	c, st := newController(t)
	e := &testEnv{t: t, store: st, ctrl: c}
	var router *mux.Router
	m := metrics.New()
	e.serve(c, Options{Metrics: m.Handler(zap.NewNop()), Observer: m, Tracer: c.Controller, Backup: st, Restorer: c.Controller, routerHook: func(r *mux.Router) { router = r }})
	e.dp = controllertest.NewDatapath(1)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { c.Serve(ctx, e.dp); c.Forget(e.dp) }()
	for deadline := time.Now().Add(10 * time.Second); len(c.Switches()) == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("switch not reconciled")
		}
	}
	return e, router
}

// anyStatus accepts whatever status the API answers.
const anyStatus = -1

func loadSpec(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := LoadOpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("api/openapi.yaml is not a valid OpenAPI 3 document: %v", err)
	}
	return doc
}

// TestOpenAPIMatchesRoutes: every route the server registers is in
// api/openapi.yaml with its method, and every operation there is served.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc := loadSpec(t)
	_, router := newFullEnv(t)
	registered := map[string]bool{}
	err := router.Walk(func(r *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		p, err := r.GetPathTemplate()
		if err != nil {
			return err
		}
		ms, err := r.GetMethods()
		if err != nil {
			return err
		}
		for _, m := range ms {
			registered[m+" "+p] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for p, item := range doc.Paths.Map() {
		for m := range item.Operations() {
			documented[m+" "+p] = true
		}
	}
	for _, k := range sortedKeys(registered) {
		if !documented[k] {
			t.Errorf("%s is served but not in api/openapi.yaml", k)
		}
	}
	for _, k := range sortedKeys(documented) {
		if !registered[k] {
			t.Errorf("%s is in api/openapi.yaml but not served", k)
		}
	}
	if len(registered) < 30 {
		t.Fatalf("only %d routes registered: %v", len(registered), sortedKeys(registered))
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestOpenAPIValidatesRealResponses drives every operation of the document
// against the real server and checks each request and each answer
// (status, headers, body) against it.
func TestOpenAPIValidatesRealResponses(t *testing.T) {
	doc := loadSpec(t)
	oaRouter, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := newFullEnv(t)
	covered := map[string]map[int]bool{}
	call := func(method, path string, body any, want int, badInput bool) []byte {
		t.Helper()
		var rd io.Reader
		var raw []byte
		if body != nil {
			if s, ok := body.(string); ok {
				raw = []byte(s)
			} else {
				raw, _ = json.Marshal(body)
			}
			rd = bytes.NewReader(raw)
		}
		req, err := http.NewRequest(method, e.srv.URL+path, rd)
		if err != nil {
			t.Fatal(err)
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		route, params, err := oaRouter.FindRoute(req)
		if err != nil {
			t.Fatalf("%s %s: not in the document: %v", method, path, err)
		}
		in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
		if !badInput {
			if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
				t.Errorf("%s %s: the request does not follow the document: %v", method, path, err)
			}
			if raw != nil {
				req.Body = io.NopCloser(bytes.NewReader(raw))
			}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		got, _ := io.ReadAll(resp.Body)
		if want != anyStatus && resp.StatusCode != want {
			t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, got)
		}
		out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
			Options: &openapi3filter.Options{IncludeResponseStatus: true}}
		out.SetBodyBytes(got)
		if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
			t.Errorf("%s %s → %d does not follow the document: %v\n%s", method, path, resp.StatusCode, err, got)
		}
		op := method + " " + route.Path
		if covered[op] == nil {
			covered[op] = map[int]bool{}
		}
		covered[op][resp.StatusCode] = true
		return got
	}

	call("GET", "/healthz", nil, 200, false)
	call("HEAD", "/healthz", nil, 200, false)
	// Ready or not (the test's OVSDB endpoint has no monitor running): the
	// answer follows the document either way.
	call("GET", "/readyz", nil, anyStatus, false)
	call("HEAD", "/readyz", nil, anyStatus, false)
	call("GET", "/v1/openapi.json", nil, 200, false)
	call("POST", "/v1/vpcs", map[string]any{"name": "vpc-a", "cidr": "10.0.0.0/8"}, 201, false)
	call("POST", "/v1/vpcs", map[string]any{"name": "vpc-a"}, 409, false)
	call("POST", "/v1/vpcs", `{"name": "x", "color": "red"}`, 400, true)
	call("GET", "/v1/vpcs", nil, 200, false)
	call("GET", "/v1/vpcs/vpc-a", nil, 200, false)
	call("GET", "/v1/vpcs/nope", nil, 404, false)
	call("POST", "/v1/vpcs/vpc-a/vswitches", map[string]any{"name": "vsw-a", "cidr": "10.10.10.0/24", "gateway": "10.10.10.1"}, 201, false)
	call("GET", "/v1/vpcs/vpc-a/vswitches", nil, 200, false)
	call("GET", "/v1/vpcs/vpc-a/vswitches/vsw-a", nil, 200, false)
	call("POST", "/v1/vpcs/vpc-a/hosts", map[string]any{"name": "test1", "vswitch": "vsw-a", "ip": "10.10.10.11",
		"bridge": "br-test", "interface": "vnet1"}, 201, false)
	call("POST", "/v1/vpcs/vpc-a/hosts", []map[string]any{{"name": "test2", "vswitch": "vsw-a", "ip": "10.10.10.12",
		"mac": "52:58:00:98:c0:92", "bridge": "br-test", "interface": "vnet3"}, {"name": "test3", "vswitch": "vsw-a",
		"ip": "10.10.10.13", "mac": "52:58:00:98:c0:93", "dpid": "0000000000000001", "ofport": 7}}, 201, false)
	call("GET", "/v1/vpcs/vpc-a/hosts", nil, 200, false)
	if got := call("GET", "/v1/vpcs/vpc-a/hosts?vswitch=vsw-a&q=TEST&limit=1", nil, 200, false); !strings.Contains(string(got), `"name":"test1"`) {
		t.Errorf("hosts?vswitch=vsw-a&q=TEST&limit=1: %s", got)
	}
	call("GET", "/v1/vpcs/vpc-a/hosts?vswitch=nope", nil, 404, false)
	call("GET", "/v1/vpcs/vpc-a/hosts?q=a&q=b", nil, 400, true)
	call("GET", "/v1/vpcs?limit=0", nil, 400, true)
	call("GET", "/v1/vpcs/vpc-a/hosts/test1", nil, 200, false)
	call("PUT", "/v1/vpcs/vpc-a/hosts/test3", map[string]any{"mac": "52:58:00:98:c0:99"}, 200, false)
	call("POST", "/v1/vpcs/vpc-a/subnets", map[string]any{"cidr": "172.18.1.0/24", "host": "test1"}, 201, false)
	call("POST", "/v1/vpcs/vpc-a/subnets", []map[string]any{{"cidr": "172.18.3.0/24", "host": "test2"}}, 201, false)
	call("GET", "/v1/vpcs/vpc-a/subnets", nil, 200, false)
	call("GET", "/v1/vpcs/vpc-a/subnets?host=test1&q=172.18&limit=5", nil, 200, false)
	call("GET", "/v1/vpcs/vpc-a/subnets?host=nope", nil, 404, false)
	call("GET", "/v1/vpcs/vpc-a/subnets/172.18.1.0-24", nil, 200, false)
	call("PUT", "/v1/vpcs/vpc-a/subnets/172.18.1.0-24", map[string]any{"host": "test3"}, 200, false)
	call("POST", "/v1/vpcs/vpc-a/dhcp-options", map[string]any{"name": "dopt-a", "domain_name": "vpc.example",
		"dns_servers": []string{"10.10.10.2"}, "static_routes": []map[string]any{{"cidr": "192.168.0.0/16", "next_hop": "10.10.10.11"}}}, 201, false)
	call("GET", "/v1/vpcs/vpc-a/dhcp-options", nil, 200, false)
	call("GET", "/v1/vpcs/vpc-a/dhcp-options/dopt-a", nil, 200, false)
	call("PUT", "/v1/vpcs/vpc-a/dhcp-options/dopt-a", map[string]any{"dns_servers": []string{"10.10.10.3", "10.10.10.4"}}, 200, false)
	call("DELETE", "/v1/vpcs/vpc-a/dhcp-options/dopt-a", nil, 204, false)
	call("POST", "/v1/chassis", map[string]any{"name": "node1", "ovsdb": "tcp:192.0.2.11:6640", "bridge": "br-vpc",
		"tunnel_ip": "192.0.2.11"}, 201, false)
	call("GET", "/v1/chassis", nil, 200, false)
	call("GET", "/v1/chassis/node1", nil, 200, false)
	// Security groups, their rules and membership.
	call("POST", "/v1/vpcs/vpc-a/security-groups", map[string]any{"name": "web", "description": "front ends"}, 201, false)
	call("POST", "/v1/vpcs/vpc-a/security-groups", map[string]any{"name": "web"}, 409, false)
	call("GET", "/v1/vpcs/vpc-a/security-groups", nil, 200, false)
	call("GET", "/v1/vpcs/vpc-a/security-groups/web", nil, 200, false)
	call("GET", "/v1/vpcs/vpc-a/security-groups/nope", nil, 404, false)
	call("PUT", "/v1/vpcs/vpc-a/security-groups/web", map[string]any{"description": "web servers"}, 200, false)
	call("POST", "/v1/vpcs/vpc-a/security-groups/web/rules", map[string]any{"direction": "ingress", "protocol": "tcp",
		"port_range": "80/80", "cidr": "0.0.0.0/0"}, 201, false)
	call("POST", "/v1/vpcs/vpc-a/security-groups/web/rules", []map[string]any{{"direction": "egress", "policy": "drop", "priority": 5,
		"protocol": "all", "cidr": "192.168.0.0/16"}, {"direction": "ingress", "protocol": "icmp", "security_group": "web"}}, 201, false)
	call("POST", "/v1/vpcs/vpc-a/security-groups/web/rules", map[string]any{"direction": "ingress", "protocol": "tcp",
		"port_range": "-1/-1", "cidr": "0.0.0.0/0"}, 400, false)
	call("PUT", "/v1/vpcs/vpc-a/hosts/test1", map[string]any{"security_groups": []string{"web"}}, 200, false)
	call("GET", "/v1/vpcs/vpc-a/security-groups/web/rules", nil, 200, false)
	call("GET", "/v1/vpcs/vpc-a/security-groups/web/rules/1", nil, 200, false)
	call("GET", "/v1/vpcs/vpc-a/security-groups/web/rules/99", nil, 404, false)
	call("PUT", "/v1/vpcs/vpc-a/security-groups/web/rules/1", map[string]any{"policy": "drop"}, 200, false)
	call("DELETE", "/v1/vpcs/vpc-a/security-groups/web/rules/2", nil, 204, false)
	call("DELETE", "/v1/vpcs/vpc-a/security-groups/web?cascade=true", nil, 409, false)
	call("PUT", "/v1/vpcs/vpc-a/hosts/test1", map[string]any{"security_groups": []string{}}, 200, false)
	call("DELETE", "/v1/vpcs/vpc-a/security-groups/web?cascade=true", nil, 204, false)
	// NAT: an uplink, the VPC's NAT gateway, SNAT and DNAT entries, an EIP.
	call("POST", "/v1/uplinks", map[string]any{"name": "up1", "bridge": "br-test", "interface": "eth-up", "cidr": "203.0.113.0/24", "gateway": "203.0.113.1"}, 201, false)
	call("POST", "/v1/uplinks", map[string]any{"name": "up2", "bridge": "br-test", "interface": "eth-up", "cidr": "198.51.100.0/24", "gateway": "198.51.100.1"}, 409, false)
	call("GET", "/v1/uplinks", nil, 200, false)
	call("PUT", "/v1/uplinks/up1", map[string]any{"router_mac": "52:54:00:00:00:01"}, 200, false)
	call("POST", "/v1/vpcs/vpc-a/nat-gateways", map[string]any{"name": "ngw", "uplink": "up1", "ips": []string{"203.0.113.10", "203.0.113.11"}}, 201, false)
	call("GET", "/v1/vpcs/vpc-a/nat-gateways", nil, 200, false)
	call("GET", "/v1/vpcs/vpc-a/nat-gateways/ngw", nil, 200, false)
	call("PUT", "/v1/vpcs/vpc-a/nat-gateways/ngw", map[string]any{"ips": []string{"203.0.113.10", "203.0.113.11", "203.0.113.12"}}, 200, false)
	call("POST", "/v1/vpcs/vpc-a/snat-entries", map[string]any{"vswitch": "vsw-a", "snat_ips": []string{"203.0.113.10"}}, 201, false)
	call("POST", "/v1/vpcs/vpc-a/snat-entries", []map[string]any{{"name": "all", "source_cidr": "0.0.0.0/0", "snat_ips": []string{"203.0.113.11"}}}, 201, false)
	call("GET", "/v1/vpcs/vpc-a/snat-entries", nil, 200, false)
	call("GET", "/v1/vpcs/vpc-a/snat-entries/all", nil, 200, false)
	call("PUT", "/v1/vpcs/vpc-a/snat-entries/all", map[string]any{"snat_ips": []string{"203.0.113.11", "203.0.113.12"}}, 200, false)
	call("POST", "/v1/vpcs/vpc-a/dnat-entries", map[string]any{"name": "web", "external_ip": "203.0.113.12", "protocol": "tcp", "external_port": "8080", "internal_ip": "10.10.10.11", "internal_port": "80"}, 201, false)
	call("POST", "/v1/vpcs/vpc-a/dnat-entries", []map[string]any{{"external_ip": "203.0.113.12", "protocol": "udp", "external_port": "5000/5009", "internal_ip": "10.10.10.11", "internal_port": "5000/5009"}}, 201, false)
	call("POST", "/v1/vpcs/vpc-a/dnat-entries", map[string]any{"external_ip": "203.0.113.12", "protocol": "tcp", "external_port": "8080", "internal_ip": "10.10.10.13", "internal_port": "80"}, 409, false)
	call("GET", "/v1/vpcs/vpc-a/dnat-entries", nil, 200, false)
	call("GET", "/v1/vpcs/vpc-a/dnat-entries/web", nil, 200, false)
	call("PUT", "/v1/vpcs/vpc-a/dnat-entries/web", map[string]any{"internal_port": "8080"}, 200, false)
	call("POST", "/v1/vpcs/vpc-a/eips", map[string]any{"name": "eip1", "ip": "203.0.113.20", "uplink": "up1", "host": "test2"}, 201, false)
	call("GET", "/v1/vpcs/vpc-a/eips", nil, 200, false)
	call("GET", "/v1/vpcs/vpc-a/eips/eip1", nil, 200, false)
	call("PUT", "/v1/vpcs/vpc-a/eips/eip1", map[string]any{"host": ""}, 200, false)
	call("GET", "/v1/uplinks/up1", nil, 200, false)
	call("DELETE", "/v1/vpcs/vpc-a/eips/eip1", nil, 204, false)
	call("DELETE", "/v1/vpcs/vpc-a/dnat-entries/web", nil, 204, false)
	call("DELETE", "/v1/vpcs/vpc-a/snat-entries/all", nil, 204, false)
	call("DELETE", "/v1/vpcs/vpc-a/nat-gateways/ngw", nil, 409, false)
	call("DELETE", "/v1/vpcs/vpc-a/nat-gateways/ngw?cascade=true", nil, 204, false)
	call("DELETE", "/v1/uplinks/up1", nil, 204, false)
	fp := strings.Repeat("ab", 32)
	call("POST", "/v1/switch-certificates", map[string]any{"dpid": "00000000000000aa", "sha256": fp}, 201, false)
	call("POST", "/v1/switch-certificates", map[string]any{"dpid": "aa", "sha256": fp}, 409, false)
	call("POST", "/v1/switch-certificates", map[string]any{"dpid": "00000000000000ab", "sha256": "ab:cd"}, 400, false)
	call("GET", "/v1/switch-certificates", nil, 200, false)
	call("GET", "/v1/switch-certificates/00000000000000aa", nil, 200, false)
	call("GET", "/v1/switch-certificates/00000000000000ab", nil, 404, false)
	call("GET", "/v1/switch-certificates/zz", nil, 400, false)
	call("DELETE", "/v1/switch-certificates/zz", nil, 400, false)
	call("DELETE", "/v1/switch-certificates/00000000000000aa", nil, 204, false)
	call("GET", "/v1/switches", nil, 200, false)
	call("GET", "/v1/switches/0000000000000001/flows", nil, 200, false)
	call("GET", "/v1/drift", nil, 200, false)
	call("POST", "/v1/switches/0000000000000001/flush", map[string]any{}, 200, false)
	call("GET", "/v1/switches/zz/flows", nil, 400, false)
	call("GET", "/v1/switches/00000000000000ff/flows", nil, 404, false)
	call("GET", "/v1/drops", nil, 200, false)
	tr := call("POST", "/v1/trace", map[string]any{"vpc": "vpc-a", "from": "test1", "dst": "172.18.3.4", "installed": true}, 200, false)
	if !strings.Contains(string(tr), `"delivered_to":"vpc-a/test2"`) {
		t.Errorf("trace: %s", tr)
	}
	call("POST", "/v1/trace", map[string]any{"vpc": "vpc-a", "from": "test1", "dst": "10.10.10.99", "proto": "udp", "dst_port": 53}, 200, false)
	call("POST", "/v1/trace", map[string]any{"vpc": "vpc-a", "from": "test1", "dst": "not-an-ip"}, 400, false)
	call("POST", "/v1/trace", map[string]any{"vpc": "vpc-a", "from": "nobody", "dst": "10.10.10.12"}, 404, false)
	metricsText := call("GET", "/metrics", nil, 200, false)
	if !strings.Contains(string(metricsText), `vpcflow_http_requests_total{code="201",method="POST",route="/v1/vpcs/{vpc}/hosts"} 2`) {
		t.Errorf("/metrics does not count the host POSTs by route template")
	}
	// A backup now, restored (dry run, then for real) once everything
	// is deleted below.
	snapshot := restoreBody(t, call("GET", "/v1/backup", nil, 200, false))
	call("POST", "/v1/restore", `{"records":[{"kind":"gizmo","key":"g","value":{}}]}`, 400, false)
	call("DELETE", "/v1/vpcs/vpc-a/subnets/172.18.3.0-24", nil, 204, false)
	call("DELETE", "/v1/vpcs/vpc-a/hosts/test2", nil, 204, false)
	call("DELETE", "/v1/vpcs/vpc-a/hosts/test3?cascade=true", nil, 204, false)
	call("DELETE", "/v1/vpcs/vpc-a/vswitches/vsw-a", nil, 409, false)
	call("DELETE", "/v1/vpcs/vpc-a/vswitches/vsw-a?cascade=true", nil, 204, false)
	call("DELETE", "/v1/chassis/node1", nil, 204, false)
	call("DELETE", "/v1/vpcs/vpc-a?cascade=maybe", nil, 400, true)
	call("DELETE", "/v1/vpcs/vpc-a", nil, 204, false)
	call("POST", "/v1/restore?dry_run=true", snapshot, 200, false)
	if got := call("POST", "/v1/restore", snapshot, 200, false); !strings.Contains(string(got), `"deleted":0`) || strings.Contains(string(got), `"created":0`) {
		t.Errorf("restore after deleting everything: %s", got)
	}

	for p, item := range doc.Paths.Map() {
		for m := range item.Operations() {
			if covered[m+" "+p] == nil {
				t.Errorf("%s %s was never called", m, p)
			}
		}
	}
}

// restoreBody is the POST /v1/restore body of a backup file's content.
func restoreBody(t *testing.T, file []byte) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, topology.DBFileName), file, 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := topology.OpenBolt(context.Background(), dir, nil, topology.Existing())
	if err != nil {
		t.Fatalf("the backup does not open as a store: %v", err)
	}
	defer b.Close()
	snap, err := b.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	req := RestoreRequest{LastIDs: snap.LastIDs}
	for _, r := range snap.Records {
		req.Records = append(req.Records, RestoreRecord{Kind: r.Kind, Key: r.Key, Value: r.Value})
	}
	out, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}
