package api

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/vpcflow/vpcflow/controller"
	"github.com/vpcflow/vpcflow/e2e/netlab"
	"github.com/vpcflow/vpcflow/topology"
)

// TestAmbiguousBridgeOverRealOVSDB (issue 19.5): two real ovsdb-servers
// both have a bridge br-x. A host naming br-x without its server is
// refused with 400 on "ovsdb" naming both (with or without a MAC); naming
// the server works, and the MAC comes from that server's interface.
func TestAmbiguousBridgeOverRealOVSDB(t *testing.T) {
	a := netlab.NewOVS(t, netlab.WithoutVswitchd())
	b := netlab.NewOVS(t, netlab.WithoutVswitchd())
	for i, o := range []*netlab.OVS{a, b} {
		o.MustVsctl(t, "add-br", "br-x", "--", "add-port", "br-x", "vnet1", "--", "set", "Interface", "vnet1",
			"external_ids:attached-mac=52:54:00:00:00:0"+string(rune('a'+i)))
	}
	st, err := topology.Open(context.Background(), t.TempDir(), zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ctrl := controller.New(zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), st,
		controller.Options{OVSDBEndpoints: []string{a.DBEndpoint(), b.DBEndpoint()}, PortsWait: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ctrl.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	deadline := time.Now().Add(10 * time.Second)
	for len(ctrl.BridgeCandidates("br-x")) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("br-x seen on %v", ctrl.BridgeCandidates("br-x"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	e := &testEnv{t: t, store: st, ctrl: &countingController{Controller: ctrl}}
	e.serve(e.ctrl, Options{})
	e.must(201, "POST", "/v1/vpcs", `{"name":"vpc-a"}`)
	e.must(201, "POST", "/v1/vpcs/vpc-a/vswitches", `{"name":"vsw-a","cidr":"10.10.10.0/24"}`)
	before := e.dump()
	for _, body := range []string{
		`{"name":"h1","vswitch":"vsw-a","ip":"10.10.10.11","bridge":"br-x","interface":"vnet1"}`,
		`{"name":"h1","vswitch":"vsw-a","ip":"10.10.10.11","mac":"02:00:00:00:00:11","bridge":"br-x","interface":"vnet1"}`,
	} {
		r := e.do("POST", "/v1/vpcs/vpc-a/hosts", body)
		if r.status != 400 || r.err().Field != "ovsdb" || !strings.Contains(r.err().Error, a.DBEndpoint()) || !strings.Contains(r.err().Error, b.DBEndpoint()) {
			t.Errorf("POST %s: %d %s, want 400 on ovsdb naming both servers", body, r.status, r.body)
		}
	}
	if e.dump() != before {
		t.Fatal("a refused host was stored")
	}
	r := e.must(201, "POST", "/v1/vpcs/vpc-a/hosts", `{"name":"h1","vswitch":"vsw-a","ip":"10.10.10.11","bridge":"br-x","interface":"vnet1","ovsdb":"`+b.DBEndpoint()+`"}`)
	h := decode[topology.Host](t, r)
	if h.OVSDB != b.DBEndpoint() || h.MAC.String() != "52:54:00:00:00:0b" {
		t.Errorf("host %+v: want B's server and B's interface MAC", h)
	}
}
