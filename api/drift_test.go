package api

import (
	"strings"
	"testing"

	"github.com/vpcflow/vpcflow/controller"
)

// GET /v1/drift and POST /v1/switches/{dpid}/flush over the real
// controller with a connected switch.
func TestDriftAndFlushRoutes(t *testing.T) {
	e := newSwitchEnv(t, Options{})
	e.seed()
	rep := decode[controller.DriftReport](t, e.must(200, "GET", "/v1/drift", ""))
	if rep.Interval <= 0 || rep.Switches == nil {
		t.Errorf("drift report %+v", rep)
	}
	res := decode[controller.ReconcileResult](t, e.must(200, "POST", "/v1/switches/0000000000000001/flush", "{}"))
	if res.DPID != 1 || res.Installed == 0 || res.Added != 0 || res.Deleted != 0 {
		t.Errorf("flush of a switch that is as desired: %+v", res)
	}
	if r := e.do("POST", "/v1/switches/0000000000000009/flush", "{}"); r.status != 404 || r.err().Field != "dpid" {
		t.Errorf("flush of an unknown switch: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/switches/xyz/flush", "{}"); r.status != 400 {
		t.Errorf("flush of a bad dpid: %d %s", r.status, r.body)
	}
}

// A flush without a JSON body (a form a foreign page could post) is
// refused: 415, like every write.
func TestFlushNeedsJSON(t *testing.T) {
	e := newSwitchEnv(t, Options{})
	resp, err := e.srv.Client().Post(e.srv.URL+"/v1/switches/0000000000000001/flush", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 415 {
		t.Errorf("flush posted as text/plain: %d", resp.StatusCode)
	}
}
