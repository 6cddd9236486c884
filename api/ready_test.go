package api

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/vpcflow/vpcflow/controller"
	"github.com/vpcflow/vpcflow/controller/controllertest"
	"github.com/vpcflow/vpcflow/e2e/netlab"
	"github.com/vpcflow/vpcflow/topology"
)

// runController starts a real controller (with its OVSDB monitors) over a
// fresh store, watching endpoints, and serves the API over it.
func runController(t *testing.T, opts Options, endpoints ...string) *testEnv {
	t.Helper()
	st, err := topology.Open(context.Background(), t.TempDir(), zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ctrl := controller.New(zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel)), st, controller.Options{
		OVSDBEndpoints: endpoints, PortsWait: 200 * time.Millisecond, Chassis: &controllertest.Chassis{}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ctrl.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("controller did not stop")
		}
	})
	e := &testEnv{t: t, store: st, ctrl: &countingController{Controller: ctrl}}
	e.serve(e.ctrl, opts)
	return e
}

// readyz polls GET /readyz until ok accepts it.
func (e *testEnv) readyz(what string, ok func(status int, b ReadyBody) bool) ReadyBody {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := e.do("GET", "/readyz", "")
		var b ReadyBody
		if err := json.Unmarshal(r.body, &b); err != nil {
			e.t.Fatalf("readyz %d %s: %v", r.status, r.body, err)
		}
		if ok(r.status, b) {
			return b
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("readyz never %s: %d %s", what, r.status, r.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReadyzUnreachableOVSDB: an --ovsdb that cannot be reached leaves
// /healthz "ok" (the process answers) but /readyz 503, saying which
// endpoint and why.
func TestReadyzUnreachableOVSDB(t *testing.T) {
	ep := "unix:" + filepath.Join(t.TempDir(), "nothing.sock")
	e := runController(t, Options{}, ep)
	if r := e.must(200, "GET", "/healthz", ""); strings.TrimSpace(string(r.body)) != `{"status":"ok"}` {
		t.Fatalf("healthz %s", r.body)
	}
	b := e.readyz("naming the endpoint's error", func(status int, b ReadyBody) bool {
		return status == 503 && len(b.Reasons) == 1 && strings.Contains(b.Reasons[0], "no such file")
	})
	if b.Status != "not ready" || b.Store != "open" || len(b.OVSDB) != 1 || b.OVSDB[0].Endpoint != ep ||
		b.OVSDB[0].State != "never-connected" || !b.OVSDB[0].Flag ||
		!strings.HasPrefix(b.Reasons[0], "OVSDB "+ep+" is not connected: never-connected: ") {
		t.Fatalf("readyz %+v", b)
	}
	if r := e.do("HEAD", "/readyz", ""); r.status != 503 {
		t.Fatalf("HEAD /readyz %d", r.status)
	}
}

// TestReadyzRealOVSDB: ready once the real ovsdb-server is connected; a
// switch connected over OpenFlow that no OVSDB reports makes it not
// ready (and `switches` says "not resolved"); an OVSDB that goes away is
// reported down. Without the token, only the verdict is given.
func TestReadyzRealOVSDB(t *testing.T) {
	o := netlab.NewOVS(t, netlab.WithoutVswitchd())
	o.MustVsctl(t, "add-br", "br-test")
	e := runController(t, Options{Token: "s3cret"}, o.DBEndpoint())
	auth := "Bearer s3cret"
	get := func() (int, ReadyBody) {
		r := e.doAuth("GET", "/readyz", "", auth)
		var b ReadyBody
		if err := json.Unmarshal(r.body, &b); err != nil {
			t.Fatalf("%d %s", r.status, r.body)
		}
		return r.status, b
	}
	wait := func(what string, ok func(int, ReadyBody) bool) ReadyBody {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			status, b := get()
			if ok(status, b) {
				return b
			}
			if time.Now().After(deadline) {
				t.Fatalf("readyz never %s: %d %+v", what, status, b)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	b := wait("ready", func(s int, b ReadyBody) bool { return s == 200 })
	if b.Status != "ready" || len(b.Reasons) != 0 || len(b.OVSDB) != 1 || b.OVSDB[0].State != "connected" || b.OVSDB[0].Since.IsZero() {
		t.Fatalf("ready body %+v", b)
	}
	// Without the token: the verdict only.
	if r := e.do("GET", "/readyz", ""); r.status != 200 || strings.TrimSpace(string(r.body)) != `{"status":"ready"}` {
		t.Fatalf("readyz without token: %d %s", r.status, r.body)
	}

	// A switch whose dpid no OVSDB reports.
	dp := controllertest.NewDatapath(0x99)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		e.ctrl.Serve(ctx, dp)
		e.ctrl.Forget(dp)
	}()
	// (Reconciled comes a moment after the switch is listed: wait for both.)
	b = wait("naming the unresolved switch", func(s int, b ReadyBody) bool {
		return s == 503 && len(b.Reasons) == 1 && len(b.Switches) == 1 && b.Switches[0].Reconciled
	})
	if !strings.Contains(b.Reasons[0], "switch 0000000000000099 (from memory:0000000000000099) is connected over OpenFlow but no OVSDB reports a bridge with this datapath id") ||
		len(b.Switches) != 1 || b.Switches[0].Bridge != "" || !b.Switches[0].Reconciled {
		t.Fatalf("readyz %+v", b)
	}
	r := e.doAuth("GET", "/v1/switches", "", auth)
	if r.status != 200 || !strings.Contains(string(r.body), `"dpid":"0000000000000099"`) || !strings.Contains(string(r.body), `"ovsdb_resolved":false`) {
		t.Fatalf("switches %d %s", r.status, r.body)
	}
	// OVSDB learns the bridge: resolved, ready.
	// Without ovs-vswitchd, write the datapath id as it would.
	o.MustVsctl(t, "add-br", "br-99", "--", "set", "bridge", "br-99", "datapath_id=0000000000000099")
	wait("ready with br-99", func(s int, b ReadyBody) bool {
		return s == 200 && len(b.Switches) == 1 && b.Switches[0].Bridge == "br-99"
	})
	if r := e.doAuth("GET", "/v1/switches", "", auth); !strings.Contains(string(r.body), `"bridge":"br-99"`) || !strings.Contains(string(r.body), `"ovsdb_resolved":true`) {
		t.Fatalf("switches %s", r.body)
	}

	// The OVSDB goes away.
	if err := o.StopOVSDB(); err != nil {
		t.Fatal(err)
	}
	b = wait("down", func(s int, b ReadyBody) bool { return s == 503 })
	if len(b.OVSDB) != 1 || b.OVSDB[0].State != "down" || !strings.Contains(b.Reasons[0], "OVSDB "+o.DBEndpoint()+" is not connected: down") {
		t.Fatalf("readyz %+v", b)
	}
}
