package main

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/vpcflow/vpcflow/api"
	"github.com/vpcflow/vpcflow/controller"
	"github.com/vpcflow/vpcflow/e2e/netlab"
	"github.com/vpcflow/vpcflow/topology"
)

// The chassis commands over the real API and a real store (storeBackend:
// nothing is configured in OVSDB, so this runs anywhere).
func TestChassisCLI(t *testing.T) {
	url := newFixedAPI(t)
	mustCLI(t, url, "vpc", "create", "vpc-a", "--cidr", "10.0.0.0/8")
	mustCLI(t, url, "vpc", "create", "vpc-b")
	mustCLI(t, url, "vswitch", "create", "--vpc", "vpc-a", "vsw-a", "--cidr", "10.10.10.0/24", "--gateway", "10.10.10.1")
	mustCLI(t, url, "vswitch", "create", "--vpc", "vpc-b", "w", "--cidr", "10.1.0.0/24")

	expectOutput(t, mustCLI(t, url, "chassis", "add", "node1", "--ovsdb", "tcp:192.168.100.11:6640", "--bridge", "br-vpc",
		"--tunnel-ip", "192.168.100.11", "--controller", "tcp:192.168.100.254:6653"),
		"NAME   ID  OVSDB                    BRIDGE  TUNNEL_IP       CONTROLLER\n"+
			"node1  1   tcp:192.168.100.11:6640  br-vpc  192.168.100.11  tcp:192.168.100.254:6653\n")
	mustCLI(t, url, "chassis", "add", "--ovsdb=tcp:192.168.100.12", "--bridge=br-vpc", "--tunnel-ip=192.168.100.12", "node2")
	expectOutput(t, mustCLI(t, url, "chassis", "list"),
		"NAME   ID  OVSDB                    BRIDGE  TUNNEL_IP       CONTROLLER\n"+
			"node1  1   tcp:192.168.100.11:6640  br-vpc  192.168.100.11  tcp:192.168.100.254:6653\n"+
			"node2  2   tcp:192.168.100.12:6640  br-vpc  192.168.100.12  -\n")
	var list []topology.Chassis
	if err := json.Unmarshal([]byte(mustCLI(t, url, "chassis", "list", "-o", "json")), &list); err != nil || len(list) != 2 || list[1].OVSDB != "tcp:192.168.100.12:6640" {
		t.Fatalf("chassis list -o json: %+v %v", list, err)
	}

	// Hosts on chassis: MAC given, and from the chassis's OVSDB.
	expectOutput(t, mustCLI(t, url, "host", "add", "vm1", "--vpc", "vpc-a", "--vswitch", "vsw-a", "--ip", "10.10.10.21",
		"--mac", "02:00:00:00:00:21", "--chassis", "node1", "--interface", "vnet1"),
		"NAME  ID  VSWITCH  IP           MAC                ATTACHMENT\n"+
			"vm1   1   vsw-a    10.10.10.21  02:00:00:00:00:21  chassis=node1,interface=vnet1\n")
	expectOutput(t, mustCLI(t, url, "host", "add", "vm7", "--vpc", "vpc-b", "--vswitch", "w", "--ip", "10.1.0.7", "--chassis", "node1", "--interface", "vnet7"),
		"NAME  ID  VSWITCH  IP        MAC                ATTACHMENT\n"+
			"vm7   2   w        10.1.0.7  52:54:00:00:07:01  chassis=node1,interface=vnet7\n")
	mustCLI(t, url, "subnet", "add", "--vpc", "vpc-a", "172.18.21.0/24", "--host", "vm1")

	expectOutput(t, mustCLI(t, url, "chassis", "show", "node1"),
		"name:         node1\n"+
			"id:           1\n"+
			"ovsdb:        tcp:192.168.100.11:6640\n"+
			"bridge:       br-vpc\n"+
			"tunnel_ip:    192.168.100.11\n"+
			"controller:   tcp:192.168.100.254:6653\n"+
			"tunnel port:  vpcflow-vxlan\n"+
			"hosts:        vpc-a/vm1, vpc-b/vm7\n")
	expectOutput(t, mustCLI(t, url, "chassis", "show", "node2"),
		"name:         node2\n"+
			"id:           2\n"+
			"ovsdb:        tcp:192.168.100.12:6640\n"+
			"bridge:       br-vpc\n"+
			"tunnel_ip:    192.168.100.12\n"+
			"controller:   - (vpcflow serve --advertise)\n"+
			"tunnel port:  vpcflow-vxlan\n"+
			"hosts:        -\n")
	var sum struct {
		Name  string   `json:"name"`
		Hosts []string `json:"hosts"`
	}
	if err := json.Unmarshal([]byte(mustCLI(t, url, "chassis", "show", "node2", "-o", "json")), &sum); err != nil || sum.Name != "node2" || sum.Hosts == nil || len(sum.Hosts) != 0 {
		t.Fatalf("chassis show -o json: %+v %v", sum, err)
	}

	// Errors: from the API (exit 1, "error: FIELD: MESSAGE") and usage (exit 2).
	for _, c := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"chassis", "add", "node3", "--ovsdb", "tcp:192.168.100.13:6640", "--bridge", "br-vpc", "--tunnel-ip", "192.168.100.11"}, 1,
			"error: tunnel_ip: 192.168.100.11 is already the tunnel IP of chassis \"node1\"\n"},
		{[]string{"chassis", "add", "node3", "--ovsdb", "unix:db.sock", "--bridge", "br-vpc", "--tunnel-ip", "192.168.100.13"}, 1,
			"error: ovsdb: \"unix:db.sock\": the socket path must be absolute\n"},
		{[]string{"chassis", "add", "node3", "--ovsdb", "tcp:192.168.100.13:6640", "--bridge", "br-vpc", "--tunnel-ip", "fd00::13"}, 1,
			"error: tunnel_ip: fd00::13 must be IPv4 (VXLAN over IPv6 is not supported)\n"},
		{[]string{"chassis", "add", "node3", "--ovsdb", "tcp:192.168.100.13:6640", "--bridge", "br-vpc", "--tunnel-ip", "192.168.100.13", "--controller", "192.168.100.254:6653"}, 1,
			"error: controller: invalid controller target \"192.168.100.254:6653\": unknown method \"192.168.100.254\"; want tcp:, ssl: or unix:\n"},
		{[]string{"chassis", "show", "nope"}, 1, "error: name: chassis \"nope\" does not exist\n"},
		{[]string{"chassis", "delete", "node1"}, 1,
			"error: name: chassis \"node1\" is still used by 2 hosts (vpc-a/vm1, vpc-b/vm7); delete them first (use --cascade to delete them too)\n"},
		{[]string{"host", "add", "x", "--vpc", "vpc-a", "--vswitch", "vsw-a", "--ip", "10.10.10.30", "--chassis", "node9", "--interface", "vnet1"}, 1,
			"error: chassis: chassis \"node9\" does not exist\n"},
		{[]string{"host", "add", "x", "--vpc", "vpc-a", "--vswitch", "vsw-a", "--ip", "10.10.10.30", "--mac", "02:00:00:00:00:30", "--chassis", "node1", "--bridge", "br-vpc", "--interface", "vnet30"}, 1,
			"error: chassis: give either bridge+interface or chassis+interface, not both (bridge \"br-vpc\", chassis \"node1\")\n"},
		{[]string{"chassis", "add", "node3", "--bridge", "br-vpc", "--tunnel-ip", "192.168.100.13"}, 2, "error: --ovsdb is required\n"},
		{[]string{"chassis", "add", "node3", "--ovsdb", "tcp:192.168.100.13:6640", "--tunnel-ip", "192.168.100.13"}, 2, "error: --bridge is required\n"},
		{[]string{"chassis", "add", "node3", "--ovsdb", "tcp:192.168.100.13:6640", "--bridge", "br-vpc"}, 2, "error: --tunnel-ip is required\n"},
		{[]string{"chassis", "add", "--ovsdb", "tcp:192.168.100.13:6640", "--bridge", "br-vpc", "--tunnel-ip", "192.168.100.13"}, 2, "error: missing NAME\n"},
		{[]string{"chassis", "show"}, 2, "error: missing NAME\n"},
		{[]string{"chassis", "list", "extra"}, 2, "error: unexpected argument \"extra\"\n"},
		{[]string{"chassis", "frob"}, 2, "error: unknown command \"chassis frob\""},
	} {
		r := runCLI(t, url, c.args...)
		if r.code != c.code || !strings.HasPrefix(r.stderr, c.stderr) || (c.code == 1 && r.stderr != c.stderr) || r.stdout != "" {
			t.Errorf("vpcflow %s: exit %d, stdout %q, stderr %q; want exit %d, stderr %q", strings.Join(c.args, " "), r.code, r.stdout, r.stderr, c.code, c.stderr)
		}
	}

	expectOutput(t, mustCLI(t, url, "chassis", "delete", "node1", "--cascade"), "deleted chassis node1, with its hosts and their subnets\n")
	expectOutput(t, mustCLI(t, url, "host", "list", "--vpc", "vpc-a"), "NAME  ID  VSWITCH  IP  MAC  ATTACHMENT  STATE  DETAIL\n")
	expectOutput(t, mustCLI(t, url, "host", "list", "--vpc", "vpc-b"), "NAME  ID  VSWITCH  IP  MAC  ATTACHMENT  STATE  DETAIL\n")
	expectOutput(t, mustCLI(t, url, "subnet", "list", "--vpc", "vpc-a"), "NAME  ID  CIDR  HOST\n")
	expectOutput(t, mustCLI(t, url, "chassis", "delete", "node2", "-o", "json"), "")
	expectOutput(t, mustCLI(t, url, "chassis", "list"), "NAME  ID  OVSDB  BRIDGE  TUNNEL_IP  CONTROLLER\n")
}

// `chassis add` end to end: CLI → API → real controller → a real
// ovsdb-server, whose bridge gets the controller and the VXLAN port.
func TestChassisAddRealOVSDB(t *testing.T) {
	o := netlab.NewOVS(t, netlab.WithoutVswitchd())
	o.MustVsctl(t, "add-br", "br-vpc")
	st := openStore(t)
	ctrl := controller.New(zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), st, controller.Options{Advertise: "tcp:192.0.2.254:6653"})
	srv := httptest.NewServer(api.NewServer(zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), ctrl, api.Options{}))
	t.Cleanup(srv.Close)

	out := mustCLI(t, srv.URL, "chassis", "add", "node1", "--ovsdb", o.DBEndpoint(), "--bridge", "br-vpc", "--tunnel-ip", "192.168.100.11")
	if !strings.Contains(out, "node1  1   "+o.DBEndpoint()+"  br-vpc  192.168.100.11  -\n") {
		t.Errorf("chassis add printed:\n%s", out)
	}
	for _, c := range []struct{ want, args string }{
		{"vxlan", "get Interface vpcflow-vxlan type"},
		{"{key=flow, remote_ip=flow}", "get Interface vpcflow-vxlan options"},
		{"tcp:192.0.2.254:6653", "get-controller br-vpc"},
	} {
		if got := o.MustVsctl(t, strings.Fields(c.args)...); got != c.want {
			t.Errorf("ovs-vsctl %s = %s, want %s", c.args, got, c.want)
		}
	}
	o2 := netlab.NewOVS(t, netlab.WithoutVswitchd())
	r := runCLI(t, srv.URL, "chassis", "add", "node2", "--ovsdb", o2.DBEndpoint(), "--bridge", "br-missing", "--tunnel-ip", "192.168.100.12")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "error: ovsdb: cannot configure chassis \"node2\"") || !strings.Contains(r.stderr, `"br-missing"`) {
		t.Errorf("chassis on a missing bridge: exit %d, stderr %q", r.code, r.stderr)
	}
	r = runCLI(t, srv.URL, "chassis", "add", "node3", "--ovsdb", o.DBEndpoint(), "--bridge", "br-other", "--tunnel-ip", "192.168.100.13")
	if r.code != 1 || !strings.Contains(r.stderr, "one Open vSwitch hosts one chassis") {
		t.Errorf("second chassis on one OVSDB: exit %d, stderr %q", r.code, r.stderr)
	}
	// chassis show says what is there: this controller does not run its
	// monitors (no Run), so the OVSDB was never reached.
	show := mustCLI(t, srv.URL, "chassis", "show", "node1")
	flat := strings.Join(strings.Fields(show), " ")
	for _, want := range []string{"ovsdb state: never-connected", "bridge found: no", "controller set: no", "tunnel port ok: no (missing)", "underlay mtu: unknown"} {
		if !strings.Contains(flat, want) {
			t.Errorf("chassis show lacks %q:\n%s", want, show)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cl, err := api.NewClient(srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if list, err := cl.ListChassis(ctx); err != nil || len(list) != 1 {
		t.Errorf("after a refused chassis: %+v %v", list, err)
	}
}
