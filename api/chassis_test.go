package api

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/vpcflow/vpcflow/controller"
	"github.com/vpcflow/vpcflow/e2e/netlab"
	"github.com/vpcflow/vpcflow/ovsdb"
	"github.com/vpcflow/vpcflow/topology"
)

const node1Body = `{"name":"node1","ovsdb":"tcp:192.168.100.11:6640","bridge":"br-vpc","tunnel_ip":"192.168.100.11","controller":"tcp:192.168.100.254:6653"}`

// seedChassis registers two chassis and, in vpc-a (see seed), host vm1 on
// node1/vnet1 with subnet 172.18.21.0/24, and vm2 on node2/vnet1.
func (e *testEnv) seedChassis() {
	e.t.Helper()
	e.must(201, "POST", "/v1/chassis", node1Body)
	e.must(201, "POST", "/v1/chassis", `{"name":"node2","ovsdb":"tcp:192.168.100.12","bridge":"br-vpc","tunnel_ip":"192.168.100.12"}`)
	e.must(201, "POST", "/v1/vpcs/vpc-a/hosts", `{"name":"vm1","vswitch":"vsw-a","ip":"10.10.10.21","mac":"02:00:00:00:00:21","chassis":"node1","interface":"vnet1"}`)
	e.must(201, "POST", "/v1/vpcs/vpc-a/hosts", `{"name":"vm2","vswitch":"vsw-a","ip":"10.10.10.22","mac":"02:00:00:00:00:22","chassis":"node2","interface":"vnet1"}`)
	e.must(201, "POST", "/v1/vpcs/vpc-a/subnets", `{"cidr":"172.18.21.0/24","host":"vm1"}`)
}

// The routes and their validation, over the real controller and store; no
// OVSDB is configured (controllertest.Chassis), so this runs anywhere.
func TestChassisRoutes(t *testing.T) {
	e := newEnv(t, Options{})
	e.seed()

	r := e.must(201, "POST", "/v1/chassis", node1Body)
	if got := r.header.Get("Location"); got != "/v1/chassis/node1" {
		t.Errorf("Location %q", got)
	}
	want := `{"id":1,"name":"node1","ovsdb":"tcp:192.168.100.11:6640","bridge":"br-vpc","tunnel_ip":"192.168.100.11","controller":"tcp:192.168.100.254:6653"}`
	if got := strings.TrimSpace(string(r.body)); got != want {
		t.Errorf("POST answer\n%s\nwant\n%s", got, want)
	}
	// Canonical OVSDB endpoint; controller left out.
	r = e.must(201, "POST", "/v1/chassis", `{"name":"node2","ovsdb":"tcp:192.168.100.12","bridge":"br-vpc","tunnel_ip":"192.168.100.12"}`)
	if got := strings.TrimSpace(string(r.body)); got != `{"id":2,"name":"node2","ovsdb":"tcp:192.168.100.12:6640","bridge":"br-vpc","tunnel_ip":"192.168.100.12"}` {
		t.Errorf("POST answer %s", got)
	}
	list := decode[[]topology.Chassis](t, e.must(200, "GET", "/v1/chassis", ""))
	if len(list) != 2 || list[0].Name != "node1" || list[1].Name != "node2" {
		t.Errorf("list %+v", list)
	}
	// GET adds what is actually there: this controller never reached the
	// chassis's OVSDB.
	wantGet := strings.TrimSuffix(want, "}") + `,"status":{"ovsdb":"never-connected","bridge_found":false,"switch_connected":false,"controllers":[],"target":"tcp:192.168.100.254:6653","controller_set":false,"repairs":0,"configured_underlay_mtu":1500}}`
	if got := strings.TrimSpace(string(e.must(200, "GET", "/v1/chassis/node1", "").body)); got != wantGet {
		t.Errorf("GET\n%s\nwant\n%s", got, wantGet)
	}
	if r := e.must(404, "GET", "/v1/chassis/nope", ""); r.err() != (ErrorBody{Error: `chassis "nope" does not exist`, Field: "name"}) {
		t.Errorf("404 body %s", r.body)
	}

	before := e.dump()
	bad := []struct {
		body   string
		status int
		field  string
		msg    string
	}{
		{`{"name":"node1","ovsdb":"tcp:192.168.100.13:6640","bridge":"br-vpc","tunnel_ip":"192.168.100.13"}`, 409, "name", `chassis "node1" already exists`},
		{`{"name":"node3","ovsdb":"tcp:192.168.100.13:6640","bridge":"br-vpc","tunnel_ip":"192.168.100.11"}`, 409, "tunnel_ip", `already the tunnel IP of chassis "node1"`},
		{`{"name":"node3","ovsdb":"tcp:192.168.100.11","bridge":"br-vpc","tunnel_ip":"192.168.100.13"}`, 409, "ovsdb", `already hosts chassis "node1"`},
		{`{"name":"node3","ovsdb":"192.168.100.13:6640","bridge":"br-vpc","tunnel_ip":"192.168.100.13"}`, 400, "ovsdb", "unknown method"},
		{`{"name":"node3","ovsdb":"unix:db.sock","bridge":"br-vpc","tunnel_ip":"192.168.100.13"}`, 400, "ovsdb", "must be absolute"},
		{`{"name":"node3","ovsdb":"pssl:6640","bridge":"br-vpc","tunnel_ip":"192.168.100.13"}`, 400, "ovsdb", "passive"},
		{`{"name":"node3","bridge":"br-vpc","tunnel_ip":"192.168.100.13"}`, 400, "ovsdb", "required"},
		{`{"name":"node3","ovsdb":"tcp:192.168.100.13:6640","tunnel_ip":"192.168.100.13"}`, 400, "bridge", "required"},
		{`{"name":"node3","ovsdb":"tcp:192.168.100.13:6640","bridge":"br:vpc","tunnel_ip":"192.168.100.13"}`, 400, "bridge", "not a valid name"},
		{`{"name":"node3","ovsdb":"tcp:192.168.100.13:6640","bridge":"br-vpc"}`, 400, "tunnel_ip", "required"},
		{`{"name":"node3","ovsdb":"tcp:192.168.100.13:6640","bridge":"br-vpc","tunnel_ip":"node3"}`, 400, "tunnel_ip", "not a valid IP address"},
		{`{"name":"node3","ovsdb":"tcp:192.168.100.13:6640","bridge":"br-vpc","tunnel_ip":"fd00::13"}`, 400, "tunnel_ip", "must be IPv4"},
		{`{"name":"node3","ovsdb":"tcp:192.168.100.13:6640","bridge":"br-vpc","tunnel_ip":"224.0.0.1"}`, 400, "tunnel_ip", "multicast"},
		{`{"name":"node3","ovsdb":"tcp:192.168.100.13:6640","bridge":"br-vpc","tunnel_ip":"192.168.100.13","controller":"6653"}`, 400, "controller", "no method prefix"},
		{`{"name":"node3","ovsdb":"tcp:192.168.100.13:6640","bridge":"br-vpc","tunnel_ip":"192.168.100.13","controller":"tcp:192.168.100.254"}`, 400, "controller", "needs a port"},
		{`{"name":"node/3","ovsdb":"tcp:192.168.100.13:6640","bridge":"br-vpc","tunnel_ip":"192.168.100.13"}`, 400, "name", "not a valid name"},
		{`{"name":"node3","ovsdb":"tcp:192.168.100.13:6640","bridge":"br-vpc","tunnel_ip":"192.168.100.13","vpc":"vpc-a"}`, 400, "vpc", "unknown field"},
		{`{"name":"node3","ovsdb":6640}`, 400, "ovsdb", "wrong type"},
		{`[` + node1Body + `]`, 400, "", "want a JSON object"},
	}
	for _, tc := range bad {
		r := e.do("POST", "/v1/chassis", tc.body)
		eb := r.err()
		if r.status != tc.status || eb.Field != tc.field || !strings.Contains(eb.Error, tc.msg) {
			t.Errorf("POST %s: %d %s, want %d on %q containing %q", tc.body, r.status, r.body, tc.status, tc.field, tc.msg)
		}
		if e.dump() != before {
			t.Fatalf("POST %s changed the store", tc.body)
		}
	}
	e.must(405, "PUT", "/v1/chassis/node1", node1Body)
	if r := e.must(405, "PATCH", "/v1/chassis", `{}`); r.header.Get("Allow") != "GET, POST" {
		t.Errorf("Allow %q", r.header.Get("Allow"))
	}
}

func TestChassisHosts(t *testing.T) {
	e := newEnv(t, Options{})
	e.seed()
	e.seedChassis()

	// node1's OVSDB knows vnet7's MAC.
	e.ctrl.BridgesChanged("tcp:192.168.100.11:6640", []ovsdb.Bridge{{Name: "br-vpc", DPID: 0x11, Ports: map[string]ovsdb.Port{
		"vnet7": {Name: "vnet7", OFPort: 7, AttachedMAC: net.HardwareAddr{0x52, 0x54, 0x00, 0x00, 0x07, 0x01}}}}})
	h := decode[topology.Host](t, e.must(200, "GET", "/v1/vpcs/vpc-a/hosts/vm1", ""))
	if h.Chassis != "node1" || h.Interface != "vnet1" || h.Bridge != "" || h.DPID != 0 {
		t.Errorf("vm1 = %+v", h)
	}
	// The MAC from the chassis's OVSDB.
	r := e.must(201, "POST", "/v1/vpcs/vpc-a/hosts", `{"name":"vm7","vswitch":"vsw-a","ip":"10.10.10.27","chassis":"node1","interface":"vnet7"}`)
	if got := strings.TrimSpace(string(r.body)); got != `{"id":5,"vpc":"vpc-a","name":"vm7","vswitch":"vsw-a","ip":"10.10.10.27","mac":"52:54:00:00:07:01","chassis":"node1","interface":"vnet7","aliyun_id":"i-vf00000000000000005"}` {
		t.Errorf("host answer %s", got)
	}
	// In a batch, too; the bridge lookup does not answer for a chassis.
	e.must(201, "POST", "/v1/vpcs/vpc-a/hosts", `[{"name":"vm8","vswitch":"vsw-a","ip":"10.10.10.28","mac":"02:00:00:00:00:28","chassis":"node2","interface":"vnet8"},
		{"name":"vm9","vswitch":"vsw-a","ip":"10.10.10.29","mac":"02:00:00:00:00:29","chassis":"node2","interface":"vnet9"}]`)

	before := e.dump()
	bad := []struct {
		body   string
		status int
		field  string
		msg    string
	}{
		{`{"name":"x","vswitch":"vsw-a","ip":"10.10.10.30","chassis":"node1","interface":"vnet30"}`, 400, "mac", `the OVSDB of chassis "node1" has no external_ids:attached-mac for interface "vnet30"`},
		{`{"name":"x","vswitch":"vsw-a","ip":"10.10.10.30","chassis":"node9","interface":"vnet7"}`, 404, "chassis", `chassis "node9" does not exist`},
		{`{"name":"x","vswitch":"vsw-a","ip":"10.10.10.30","mac":"02:00:00:00:00:30","chassis":"node9","interface":"vnet7"}`, 404, "chassis", `chassis "node9" does not exist`},
		{`{"name":"x","vswitch":"vsw-a","ip":"10.10.10.30","mac":"02:00:00:00:00:30","chassis":"node1","interface":"vnet1"}`, 409, "interface", `interface "vnet1" of chassis "node1" is already attached as host "vm1"`},
		{`{"name":"x","vswitch":"vsw-a","ip":"10.10.10.30","mac":"02:00:00:00:00:30","chassis":"node1","bridge":"br-vpc","interface":"vnet30"}`, 400, "chassis", "not both"},
		{`{"name":"x","vswitch":"vsw-a","ip":"10.10.10.30","mac":"02:00:00:00:00:30","chassis":"node1"}`, 400, "interface", `required with chassis "node1"`},
		{`{"name":"x","vswitch":"vsw-a","ip":"10.10.10.30","mac":"02:00:00:00:00:30","chassis":"node1","interface":"vnet30","dpid":1,"ofport":3}`, 400, "dpid", "not both"},
		{`{"name":"x","vswitch":"vsw-a","ip":"10.10.10.30","mac":"02:00:00:00:00:30","interface":"vnet30"}`, 400, "bridge", "give bridge (or chassis)"},
		{`{"name":"x","vswitch":"vsw-a","ip":"10.10.10.30","mac":"02:00:00:00:00:30"}`, 400, "bridge", "bridge+interface, chassis+interface or dpid+ofport"},
		{`[{"name":"x","vswitch":"vsw-a","ip":"10.10.10.30","chassis":"node1","interface":"vnet7"},{"name":"y","vswitch":"vsw-a","ip":"10.10.10.31","chassis":"node1","interface":"vnet31"}]`, 400, "[1].mac", "has no external_ids:attached-mac"},
	}
	for _, tc := range bad {
		r := e.do("POST", "/v1/vpcs/vpc-a/hosts", tc.body)
		eb := r.err()
		if r.status != tc.status || eb.Field != tc.field || !strings.Contains(eb.Error, tc.msg) {
			t.Errorf("POST %s: %d %s, want %d on %q containing %q", tc.body, r.status, r.body, tc.status, tc.field, tc.msg)
		}
		if e.dump() != before {
			t.Fatalf("POST %s changed the store", tc.body)
		}
	}
}

func TestChassisDelete(t *testing.T) {
	e := newEnv(t, Options{})
	e.seed()
	e.seedChassis()
	before := e.dump()

	r := e.must(409, "DELETE", "/v1/chassis/node1", "")
	if got := r.err(); got.Field != "name" || got.Error != `chassis "node1" is still used by 1 host (vpc-a/vm1); delete them first (use ?cascade=true to delete them too)` {
		t.Errorf("409 body %s", r.body)
	}
	e.must(404, "DELETE", "/v1/chassis/nope", "")
	if r := e.must(400, "DELETE", "/v1/chassis/node1?cascade=yes", ""); r.err().Field != "cascade" {
		t.Errorf("bad cascade: %s", r.body)
	}
	if e.dump() != before {
		t.Fatal("a refused delete changed the store")
	}

	e.must(204, "DELETE", "/v1/chassis/node1?cascade=true", "")
	e.must(404, "GET", "/v1/chassis/node1", "")
	e.must(404, "GET", "/v1/vpcs/vpc-a/hosts/vm1", "")
	e.must(404, "GET", "/v1/vpcs/vpc-a/subnets/172.18.21.0-24", "")
	e.must(200, "GET", "/v1/vpcs/vpc-a/hosts/vm2", "")
	e.must(200, "GET", "/v1/vpcs/vpc-a/hosts/test1", "")
	// Its tunnel IP is free again.
	e.must(201, "POST", "/v1/chassis", node1Body)

	// A chassis without hosts goes without cascade; with hosts removed
	// first, too.
	e.must(204, "DELETE", "/v1/chassis/node1", "")
	e.must(204, "DELETE", "/v1/vpcs/vpc-a/hosts/vm2", "")
	e.must(204, "DELETE", "/v1/chassis/node2?cascade=false", "")
	if got := strings.TrimSpace(string(e.must(200, "GET", "/v1/chassis", "").body)); got != "[]" {
		t.Errorf("list after deleting all: %s", got)
	}
}

func TestClientChassis(t *testing.T) {
	e := newEnv(t, Options{})
	e.seed()
	ctx := context.Background()
	c, err := NewClient(e.srv.URL, e.srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	e.ctrl.BridgesChanged("tcp:192.168.100.11:6640", []ovsdb.Bridge{{Name: "br-vpc", DPID: 0x11, Ports: map[string]ovsdb.Port{
		"vnet7": {Name: "vnet7", OFPort: 7, AttachedMAC: net.HardwareAddr{0x52, 0x54, 0x00, 0x00, 0x07, 0x01}}}}})
	ch, err := c.CreateChassis(ctx, ChassisRequest{Name: "node1", OVSDB: "tcp:192.168.100.11", Bridge: "br-vpc", TunnelIP: "192.168.100.11", Controller: "tcp:192.168.100.254:6653"})
	if err != nil || ch.ID != 1 || ch.OVSDB != "tcp:192.168.100.11:6640" || ch.TunnelIP.String() != "192.168.100.11" {
		t.Fatalf("CreateChassis = %+v, %v", ch, err)
	}
	_, err = c.CreateChassis(ctx, ChassisRequest{Name: "node2", OVSDB: "tcp:192.168.100.12:6640", Bridge: "br-vpc", TunnelIP: "192.168.100.11"})
	var ae *Error
	if !errors.As(err, &ae) || ae.Status != http.StatusConflict || ae.Field != "tunnel_ip" {
		t.Fatalf("duplicate tunnel IP: %v", err)
	}
	if got, err := c.Chassis(ctx, "node1"); err != nil || got != ch {
		t.Fatalf("Chassis = %+v, %v", got, err)
	}
	if _, err := c.Chassis(ctx, "nope"); !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
		t.Fatalf("Chassis(nope) = %v", err)
	}
	h, err := c.CreateHost(ctx, "vpc-a", HostRequest{Name: "vm7", VSwitch: "vsw-a", IP: "10.10.10.27", Chassis: "node1", Interface: "vnet7"})
	if err != nil || h.Chassis != "node1" || h.MAC.String() != "52:54:00:00:07:01" {
		t.Fatalf("CreateHost on a chassis = %+v, %v", h, err)
	}
	if err := c.DeleteChassis(ctx, "node1"); !errors.As(err, &ae) || ae.Status != http.StatusConflict || !strings.Contains(ae.Msg, "vpc-a/vm7") {
		t.Fatalf("DeleteChassis with a host = %v", err)
	}
	if err := c.DeleteChassis(ctx, "node1", Cascade(true)); err != nil {
		t.Fatal(err)
	}
	list, err := c.ListChassis(ctx)
	if err != nil || len(list) != 0 {
		t.Fatalf("ListChassis = %+v, %v", list, err)
	}
	if _, err := c.GetHost(ctx, "vpc-a", "vm7"); !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
		t.Fatalf("host of a cascaded chassis: %v", err)
	}
}

// Over the real controller, a chassis whose OVSDB cannot be configured is
// refused with 400 on "ovsdb" and nothing is stored.
func TestChassisUnreachableOVSDB(t *testing.T) {
	st, err := topology.Open(context.Background(), t.TempDir(), zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	// The real chassis configurer, talking to an OVSDB that is not there.
	ctrl := controller.New(zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), st, controller.Options{})
	ctrl.BridgesChanged("unix:/test/db.sock", testBridges())
	e := &testEnv{t: t, store: st, ctrl: &countingController{Controller: ctrl}}
	e.serve(e.ctrl, Options{})
	e.seed()
	before := e.dump()
	r := e.do("POST", "/v1/chassis", `{"name":"node1","ovsdb":"unix:/nonexistent/vpcflow-test/db.sock","bridge":"br-vpc","tunnel_ip":"192.168.100.11","controller":"tcp:192.168.100.254:6653"}`)
	if r.status != 400 || r.err().Field != "ovsdb" || !strings.Contains(r.err().Error, "node1") {
		t.Fatalf("got %d %s, want 400 on ovsdb naming the chassis", r.status, r.body)
	}
	t.Logf("answer: %s", r.body)
	if e.dump() != before {
		t.Fatal("a chassis that could not be configured was stored")
	}
	// Bad input is still a 400 about the input, not about OVSDB.
	r = e.do("POST", "/v1/chassis", `{"name":"node1","ovsdb":"unix:/nonexistent/vpcflow-test/db.sock","bridge":"br-vpc","tunnel_ip":"fd00::1","controller":"tcp:192.168.100.254:6653"}`)
	if r.status != 400 || r.err().Field != "tunnel_ip" {
		t.Fatalf("got %d %s, want 400 on tunnel_ip", r.status, r.body)
	}
}

// The whole path over the real controller and a real ovsdb-server: the
// chassis's bridge is configured before the chassis is stored, and a host
// on it takes its MAC from that OVSDB.
func TestChassisOverRealOVSDB(t *testing.T) {
	o := netlab.NewOVS(t, netlab.WithoutVswitchd())
	o.MustVsctl(t, "add-br", "br-vpc")
	st, err := topology.Open(context.Background(), t.TempDir(), zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ctrl := controller.New(zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), st, controller.Options{PortsWait: time.Second})
	ctrl.BridgesChanged("unix:/test/db.sock", testBridges()) // for the seed's br-test hosts
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
	e.serve(e.ctrl, Options{})
	e.seed()

	body := `{"name":"node1","ovsdb":"` + o.DBEndpoint() + `","bridge":"br-vpc","tunnel_ip":"192.168.100.11","controller":"tcp:192.168.100.254:6653"}`
	e.must(201, "POST", "/v1/chassis", body)
	for _, c := range []struct{ want, args string }{
		{"vxlan", "get Interface vpcflow-vxlan type"},
		{"{key=flow, remote_ip=flow}", "get Interface vpcflow-vxlan options"},
		{"br-vpc", "port-to-br vpcflow-vxlan"},
		{"tcp:192.168.100.254:6653", "get-controller br-vpc"},
		{"secure", "get Bridge br-vpc fail_mode"},
		{"[OpenFlow13]", "get Bridge br-vpc protocols"},
	} {
		if got := o.MustVsctl(t, strings.Fields(c.args)...); got != c.want {
			t.Errorf("ovs-vsctl %s = %s, want %s", c.args, got, c.want)
		}
	}

	// A second chassis in the same OVSDB (port names are unique in an
	// OVSDB, so it cannot have its own vpcflow-vxlan): refused on "ovsdb"
	// with 409, whatever its bridge, nothing stored and nothing touched.
	before := e.dump()
	o.MustVsctl(t, "add-br", "br-two")
	rows := o.MustVsctl(t, "list", "Bridge")
	for _, c := range []struct{ body, msg string }{
		{`{"name":"node2","ovsdb":"` + o.DBEndpoint() + `","bridge":"br-missing","tunnel_ip":"192.168.100.12","controller":"tcp:192.168.100.254:6653"}`, `one Open vSwitch hosts one chassis`},
		{`{"name":"node2","ovsdb":"` + o.DBEndpoint() + `","bridge":"br-two","tunnel_ip":"192.168.100.12","controller":"tcp:192.168.100.254:6653"}`, `already hosts chassis \"node1\"`},
	} {
		r := e.do("POST", "/v1/chassis", c.body)
		if r.status != 409 || r.err().Field != "ovsdb" || !strings.Contains(string(r.body), c.msg) {
			t.Errorf("POST %s: %d %s, want 409 on ovsdb containing %s", c.body, r.status, r.body, c.msg)
		}
	}
	if got := o.MustVsctl(t, "list", "Bridge"); got != rows {
		t.Errorf("a refused chassis changed the bridges:\n%s\nwas\n%s", got, rows)
	}
	if e.dump() != before {
		t.Fatal("a chassis that could not be configured was stored")
	}

	// A VM's port appears on the chassis with the MAC libvirt would set;
	// the host is registered without a MAC once the monitor has seen it.
	o.MustVsctl(t, "add-port", "br-vpc", "vnet7", "--", "set", "Interface", "vnet7", "external_ids:attached-mac=52:54:00:00:07:01")
	hostBody := `{"name":"vm7","vswitch":"vsw-a","ip":"10.10.10.27","chassis":"node1","interface":"vnet7"}`
	deadline := time.Now().Add(10 * time.Second)
	var r reply
	for {
		r = e.do("POST", "/v1/vpcs/vpc-a/hosts", hostBody)
		if r.status != 400 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r.status != 201 {
		t.Fatalf("host on the chassis: %d %s", r.status, r.body)
	}
	if h := decode[topology.Host](t, r); h.MAC.String() != "52:54:00:00:07:01" || h.Chassis != "node1" {
		t.Fatalf("host %+v", h)
	}

	e.must(409, "DELETE", "/v1/chassis/node1", "")
	e.must(204, "DELETE", "/v1/chassis/node1?cascade=true", "")
	e.must(404, "GET", "/v1/vpcs/vpc-a/hosts/vm7", "")
}
