package api

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/vpcflow/vpcflow/controller"
	"github.com/vpcflow/vpcflow/ovsdb"
)

// TestHostAttachmentState: GET (list and item) says where each host is
// attached now, and why not when it is not.
func TestHostAttachmentState(t *testing.T) {
	e := newSwitchEnv(t, Options{}) // br-test (dpid 1) connected: vnet1 port 1, vnet3 port 3
	e.seed()
	for _, b := range []string{
		`{"name":"no-iface","vswitch":"vsw-a","ip":"10.10.10.21","mac":"02:00:00:00:00:21","bridge":"br-test","interface":"vnet9"}`,
		`{"name":"no-bridge","vswitch":"vsw-a","ip":"10.10.10.22","mac":"02:00:00:00:00:22","bridge":"br-nope","interface":"vnet1"}`,
		`{"name":"other-switch","vswitch":"vsw-a","ip":"10.10.10.23","mac":"02:00:00:00:00:23","dpid":"2","ofport":5}`,
		`{"name":"no-port","vswitch":"vsw-a","ip":"10.10.10.24","mac":"02:00:00:00:00:24","dpid":"1","ofport":77}`,
		`{"name":"by-port","vswitch":"vsw-a","ip":"10.10.10.25","mac":"02:00:00:00:00:25","dpid":"1","ofport":3}`,
	} {
		e.must(201, "POST", "/v1/vpcs/vpc-a/hosts", b)
	}
	want := map[string]controller.HostAttachment{
		"test1":        {State: "attached", DPID: 1, OFPort: 1},
		"test2":        {State: "attached", DPID: 1, OFPort: 3},
		"by-port":      {State: "attached", DPID: 1, OFPort: 3},
		"no-iface":     {State: "port not found", Detail: "bridge br-test has no interface vnet9"},
		"no-bridge":    {State: "port not found", Detail: "no OVSDB reports a bridge br-nope"},
		"other-switch": {State: "bridge not connected", Detail: "switch 0000000000000002 is not connected to vpcflow over OpenFlow", DPID: 2, OFPort: 5},
		"no-port":      {State: "port not found", Detail: "bridge br-test (dpid 0000000000000001, OVSDB unix:/test/db.sock) has no port 77", DPID: 1, OFPort: 77},
	}
	list := decode[[]HostInfo](t, e.must(200, "GET", "/v1/vpcs/vpc-a/hosts", ""))
	if len(list) != len(want) {
		t.Fatalf("%d hosts listed", len(list))
	}
	for _, h := range list {
		if h.Attachment != want[h.Name] {
			t.Errorf("list: %s: %+v, want %+v", h.Name, h.Attachment, want[h.Name])
		}
		one := decode[HostInfo](t, e.must(200, "GET", "/v1/vpcs/vpc-a/hosts/"+h.Name, ""))
		if one.Attachment != want[h.Name] || one.IP != h.IP {
			t.Errorf("item: %s: %+v, want %+v", h.Name, one.Attachment, want[h.Name])
		}
	}
	if r := e.must(200, "GET", "/v1/vpcs/vpc-a/hosts/test1", ""); !strings.Contains(string(r.body), `"attachment":{"state":"attached","dpid":"0000000000000001","ofport":1}`) {
		t.Fatalf("wire format: %s", r.body)
	}

	// The interface appears in OVSDB: attached.
	bridges := testBridges()
	bridges[0].Ports["vnet9"] = ovsdb.Port{Name: "vnet9", OFPort: 9, AttachedMAC: net.HardwareAddr{2, 0, 0, 0, 0, 0x21}}
	e.ctrl.BridgesChanged("unix:/test/db.sock", bridges)
	if h := decode[HostInfo](t, e.must(200, "GET", "/v1/vpcs/vpc-a/hosts/no-iface", "")); h.Attachment.State != "attached" || h.Attachment.OFPort != 9 {
		t.Fatalf("after vnet9 appeared: %+v", h.Attachment)
	}
	// The switch goes: its hosts are "bridge not connected".
	e.dp.Close()
	e.ctrl.Forget(e.dp)
	if h := decode[HostInfo](t, e.must(200, "GET", "/v1/vpcs/vpc-a/hosts/test1", "")); h.Attachment.State != "bridge not connected" {
		t.Fatalf("after the switch left: %+v", h.Attachment)
	}

	// The Go client.
	c, err := NewClient(e.srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	hi, err := c.GetHostInfo(context.Background(), "vpc-a", "no-bridge")
	if err != nil || hi.Attachment.State != "port not found" || hi.Name != "no-bridge" {
		t.Fatalf("GetHostInfo: %+v %v", hi, err)
	}
	hs, info, err := c.ListHostsPage(context.Background(), "vpc-a", Page{})
	if err != nil || info.Next != "" || info.Total != 7 || len(hs) != 7 || hs[0].Name != "by-port" || hs[0].Attachment.State != "bridge not connected" {
		t.Fatalf("ListHostsPage: %+v %+v %v", hs, info, err)
	}
}

// TestHostUpdateKeepsIDAndRoutes: PUT changes a host's MAC and attachment;
// its id and route entries stay.
func TestHostUpdateKeepsIDAndRoutes(t *testing.T) {
	e := newSwitchEnv(t, Options{})
	e.seed()
	bridges := testBridges()
	bridges[0].Ports["vnet5"] = ovsdb.Port{Name: "vnet5", OFPort: 5}
	e.ctrl.BridgesChanged("unix:/test/db.sock", bridges)
	before := decode[HostInfo](t, e.must(200, "GET", "/v1/vpcs/vpc-a/hosts/test1", ""))
	r := e.must(200, "PUT", "/v1/vpcs/vpc-a/hosts/test1", `{"bridge":"br-test","interface":"vnet5","mac":"52:58:00:98:c0:99"}`)
	after := decode[HostInfo](t, r)
	if after.ID != before.ID || after.Interface != "vnet5" || after.MAC.String() != "52:58:00:98:c0:99" || after.IP != before.IP {
		t.Fatalf("PUT: %+v", after)
	}
	if got := e.names("subnets", "vpc-a"); got != "172.18.1.0-24,172.18.3.0-24" {
		t.Fatalf("route entries after PUT: %s", got)
	}
	if !strings.Contains(e.dp.Text(), "in_port=5,dl_src=52:58:00:98:c0:99") {
		t.Fatalf("the new MAC is not in the switch's flows:\n%s", e.dp.Text())
	}
	// The IP cannot change; a different name in the body is refused.
	e.must(400, "PUT", "/v1/vpcs/vpc-a/hosts/test1", `{"ip":"10.10.10.99"}`)
	e.must(400, "PUT", "/v1/vpcs/vpc-a/hosts/test1", `{"name":"other","mac":"52:58:00:98:c0:98"}`)
	e.must(404, "PUT", "/v1/vpcs/vpc-a/hosts/nope", `{"mac":"52:58:00:98:c0:98"}`)
}
