package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"net"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/vpcflow/vpcflow/api"
	"github.com/vpcflow/vpcflow/controller"
	"github.com/vpcflow/vpcflow/e2e/netlab"
	"github.com/vpcflow/vpcflow/ovsdb"
	"github.com/vpcflow/vpcflow/topology"
)

// storeBackend serves the CLI tests that render a connected switch's data
// (switches, flows, drops): the real API over a real topology.Store (bbolt
// in a temp dir), with switches, flows, drop counters and OVSDB MACs as
// fixed data. Every other test runs over the real controller (newAPI).
type storeBackend struct {
	store *topology.Store
}

func (b storeBackend) Apply(ctx context.Context, ops []topology.Op) ([]topology.Op, error) {
	return b.store.Apply(ctx, ops)
}

func (b storeBackend) Read(fn func(st *topology.State)) { b.store.Read(fn) }

func (b storeBackend) Switches() []controller.SwitchInfo {
	return []controller.SwitchInfo{
		{DPID: 0xbeef, Bridge: "br-other", Remote: "10.0.0.2:51000", ConnectedSince: time.Date(2024, 5, 1, 12, 30, 0, 0, time.UTC)},
		// Connected over OpenFlow, but no OVSDB reports its dpid.
		{DPID: 0x99, Remote: "10.0.0.3:51001", ConnectedSince: time.Date(2024, 5, 1, 12, 40, 0, 0, time.UTC),
			CertificateSHA256: "0783d6d1f4c5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5"},
		{DPID: 1, Bridge: "br-test", Remote: "127.0.0.1:40000", ConnectedSince: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC),
			Ports: []controller.PortInfo{{Name: "vnet3", OFPort: 3}, {Name: "vnet1", OFPort: 1, MAC: "52:58:00:98:c0:81"}}},
	}
}

func (b storeBackend) Flows(ctx context.Context, dpid topology.DPID, fn func(e *controller.FlowEntry) error) error {
	if dpid != 1 {
		return controller.ErrUnknownSwitch
	}
	for _, e := range []controller.FlowEntry{
		{Table: 0, Priority: 0, Cookie: "0x0", Actions: "drop"},
		{Table: 20, Priority: 124, Cookie: "0x2000000000000001", Match: "ip,metadata=0x1,nw_dst=172.18.1.0/24", Actions: "set_field:ee:ff:ff:ff:ff:ff->eth_src,set_field:52:58:00:98:c0:81->eth_dst,output:1", Packets: 3, Bytes: 294},
		{Table: 0, Priority: 100, Cookie: "0x1000000000000001", Match: "in_port=1,dl_src=52:58:00:98:c0:81", Actions: "write_metadata:0x1/0xffffffff,goto_table:10", Packets: 12, Bytes: 1008},
	} {
		if err := fn(&e); err != nil {
			return err
		}
	}
	return nil
}

func (b storeBackend) Drops(ctx context.Context) (controller.DropReport, error) {
	// Unsorted, as a backend may answer: the CLI sorts.
	return controller.DropReport{
		Switches: []controller.SwitchDrops{
			{DPID: 0xabc, Drops: controller.DropCounters{"other": 2}},
			{DPID: 1, Bridge: "br-test", Drops: controller.DropCounters{"spoofed": 3, "no_route": 1, "unknown_source": 12}},
		},
		Hosts: []controller.HostDrops{
			{VPC: "vpc-b", Name: "x", DPID: 0xabc, Drops: controller.DropCounters{"arp_not_answered": 1}},
			{VPC: "vpc-a", Name: "test2", DPID: 1},
			{VPC: "vpc-a", Name: "test1", DPID: 1, Drops: controller.DropCounters{"spoofed": 3}},
		},
	}, nil
}

func (b storeBackend) Status(ctx context.Context) controller.Status {
	return controller.Status{Switches: []controller.SwitchStatus{}}
}

// HostAttachments: hosts on br-test/vnet1 are attached, the rest not found.
func (b storeBackend) HostAttachments(hosts []topology.Host) []controller.HostAttachment {
	out := make([]controller.HostAttachment, len(hosts))
	for i, h := range hosts {
		if h.Bridge == "br-test" && h.Interface == "vnet1" {
			out[i] = controller.HostAttachment{State: controller.AttachedState, DPID: 1, OFPort: 1}
		} else {
			out[i] = controller.HostAttachment{State: controller.PortNotFoundState, Detail: "fixed test data"}
		}
	}
	return out
}

func (b storeBackend) InterfaceMAC(bridge, iface string) (net.HardwareAddr, bool) {
	if bridge == "br-test" && iface == "vnet1" {
		return net.HardwareAddr{0x52, 0x58, 0x00, 0x98, 0xc0, 0x81}, true
	}
	return nil, false
}

func (b storeBackend) ChassisInterfaceMAC(chassis, iface string) (net.HardwareAddr, bool) {
	if chassis == "node1" && iface == "vnet7" {
		return net.HardwareAddr{0x52, 0x54, 0x00, 0x00, 0x07, 0x01}, true
	}
	return nil, false
}

// newAPI starts the real API over the real controller (no switch
// connected) and a fresh store, and returns its URL. The controller's port
// map says br-test (dpid 1) has vnet1 (port 1, attached-mac
// 52:58:00:98:c0:81), as the OVSDB monitor would.
func newAPI(t *testing.T) string {
	t.Helper()
	return newAPIWith(t, api.Options{})
}

func newAPIWith(t *testing.T, opts api.Options) string {
	t.Helper()
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	st := openStore(t)
	ctrl := controller.New(zap.NewNop(), st, controller.Options{})
	ctrl.BridgesChanged("unix:/test/db.sock", []ovsdb.Bridge{{Name: "br-test", DPID: 1, Ports: map[string]ovsdb.Port{
		"vnet1": {Name: "vnet1", OFPort: 1, AttachedMAC: net.HardwareAddr{0x52, 0x58, 0x00, 0x98, 0xc0, 0x81}},
	}}})
	srv := httptest.NewServer(api.NewServer(log, ctrl, opts))
	t.Cleanup(srv.Close)
	return srv.URL
}

// newFixedAPI starts the real API over storeBackend, for the tests that
// need a connected switch's data.
func newFixedAPI(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(api.NewServer(zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), storeBackend{openStore(t)}, api.Options{}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func openStore(t *testing.T) *topology.Store {
	t.Helper()
	st, err := topology.Open(context.Background(), t.TempDir(), zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

type result struct {
	code           int
	stdout, stderr string
}

// runCLI runs the command line with VPCFLOW_API pointing at url.
func runCLI(t *testing.T, url string, args ...string) result {
	t.Helper()
	return runCLIEnv(t, map[string]string{"VPCFLOW_API": url}, args...)
}

// runCLIEnv runs the command line with exactly the environment env.
func runCLIEnv(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := runEnv(context.Background(), args, &out, &errb, func(k string) string { return env[k] })
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

func mustCLI(t *testing.T, url string, args ...string) string {
	t.Helper()
	r := runCLI(t, url, args...)
	if r.code != 0 {
		t.Fatalf("vpcflow %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

func expectOutput(t *testing.T, got, want string) {
	t.Helper()
	if got != want {
		t.Fatalf("output:\n%s\nwant:\n%s", got, want)
	}
}

func TestSeedScenarioCLI(t *testing.T) {
	url := newAPI(t)

	expectOutput(t, mustCLI(t, url, "vpc", "create", "vpc-a", "--cidr", "10.0.0.0/8"),
		"NAME   ID  CIDR        DEC_TTL\n"+
			"vpc-a  1   10.0.0.0/8  false\n")
	mustCLI(t, url, "vpc", "create", "--dec-ttl", "vpc-b")
	expectOutput(t, mustCLI(t, url, "vpc", "list"),
		"NAME   ID  CIDR        DEC_TTL\n"+
			"vpc-a  1   10.0.0.0/8  false\n"+
			"vpc-b  2   -           true\n")

	expectOutput(t, mustCLI(t, url, "vswitch", "create", "--vpc", "vpc-a", "vsw-a", "--cidr", "10.10.10.0/24", "--gateway", "10.10.10.1"),
		"NAME   ID  CIDR           GATEWAY\n"+
			"vsw-a  1   10.10.10.0/24  10.10.10.1\n")
	mustCLI(t, url, "vswitch", "create", "vsw-b", "--vpc=vpc-a", "--cidr=10.20.0.0/24")
	expectOutput(t, mustCLI(t, url, "vswitch", "list", "--vpc", "vpc-a"),
		"NAME   ID  CIDR           GATEWAY      HOSTS\n"+
			"vsw-a  1   10.10.10.0/24  10.10.10.1   0\n"+
			"vsw-b  2   10.20.0.0/24   10.20.0.253  0\n")

	// Flags after the positional, MAC from OVSDB.
	mustCLI(t, url, "host", "add", "test1", "--vpc", "vpc-a", "--vswitch", "vsw-a", "--ip", "10.10.10.11", "--bridge", "br-test", "--interface", "vnet1")
	mustCLI(t, url, "host", "add", "--vpc", "vpc-a", "test2", "--vswitch", "vsw-a", "--ip", "10.10.10.12", "--mac", "52:58:00:98:c0:92", "--dpid", "0x1", "--ofport", "3")
	// No switch is connected; OVSDB knows br-test's vnet1 only.
	expectOutput(t, mustCLI(t, url, "host", "list", "--vpc", "vpc-a"),
		"NAME   ID  VSWITCH  IP           MAC                ATTACHMENT                      STATE                 DETAIL\n"+
			"test1  1   vsw-a    10.10.10.11  52:58:00:98:c0:81  br-test/vnet1                   bridge not connected  switch 0000000000000001 is not connected to vpcflow over OpenFlow\n"+
			"test2  2   vsw-a    10.10.10.12  52:58:00:98:c0:92  dpid=0000000000000001,ofport=3  port not found        bridge br-test (dpid 0000000000000001, OVSDB unix:/test/db.sock) has no port 3\n")
	expectOutput(t, mustCLI(t, url, "vswitch", "show", "--vpc", "vpc-a", "vsw-a"),
		"NAME   ID  CIDR           GATEWAY     HOSTS\n"+
			"vsw-a  1   10.10.10.0/24  10.10.10.1  2\n")
	expectOutput(t, mustCLI(t, url, "host", "show", "--vpc", "vpc-a", "test2"),
		"NAME   ID  VSWITCH  IP           MAC                ATTACHMENT                      STATE           DETAIL\n"+
			"test2  2   vsw-a    10.10.10.12  52:58:00:98:c0:92  dpid=0000000000000001,ofport=3  port not found  bridge br-test (dpid 0000000000000001, OVSDB unix:/test/db.sock) has no port 3\n")

	mustCLI(t, url, "subnet", "add", "172.18.1.0/24", "--vpc", "vpc-a", "--host", "test1")
	expectOutput(t, mustCLI(t, url, "subnet", "add", "--vpc", "vpc-a", "172.18.3.0/24", "--host", "test2", "--name", "vm2"),
		"NAME  ID  CIDR           HOST\n"+
			"vm2   2   172.18.3.0/24  test2\n")
	expectOutput(t, mustCLI(t, url, "subnet", "move", "--vpc", "vpc-a", "vm2", "--host", "test1"),
		"NAME  ID  CIDR           HOST\n"+
			"vm2   2   172.18.3.0/24  test1\n")
	expectOutput(t, mustCLI(t, url, "subnet", "list", "--vpc", "vpc-a"),
		"NAME           ID  CIDR           HOST\n"+
			"172.18.1.0-24  1   172.18.1.0/24  test1\n"+
			"vm2            2   172.18.3.0/24  test1\n")
	// Filtered by the server.
	var filtered struct {
		Items []topology.Host `json:"items"`
		Total int             `json:"total"`
	}
	if err := json.Unmarshal([]byte(mustCLI(t, url, "host", "list", "--vpc", "vpc-a", "--vswitch", "vsw-a", "--filter", "C0:92", "-o", "json", "--limit", "5")), &filtered); err != nil ||
		len(filtered.Items) != 1 || filtered.Items[0].Name != "test2" || filtered.Total != 1 {
		t.Fatalf("host list --vswitch vsw-a --filter C0:92: %+v %v", filtered, err)
	}
	expectOutput(t, mustCLI(t, url, "subnet", "list", "--vpc", "vpc-a", "--host", "test1", "--filter", "VM"),
		"NAME  ID  CIDR           HOST\n"+
			"vm2   2   172.18.3.0/24  test1\n")
	mustCLI(t, url, "subnet", "show", "--vpc", "vpc-a", "vm2")
	mustCLI(t, url, "vswitch", "show", "--vpc", "vpc-a", "vsw-a")

	expectOutput(t, mustCLI(t, url, "vpc", "show", "vpc-a"),
		"name:       vpc-a\n"+
			"id:         1\n"+
			"cidr:       10.0.0.0/8\n"+
			"dec_ttl:    false\n"+
			"vswitches:  2\n"+
			"hosts:      2\n"+
			"subnets:    2\n")

	// -o json prints the API's objects.
	var hosts []topology.Host
	if err := json.Unmarshal([]byte(mustCLI(t, url, "host", "list", "--vpc", "vpc-a", "-o", "json")), &hosts); err != nil || len(hosts) != 2 || hosts[1].OFPort != 3 {
		t.Fatalf("host list -o json: %+v %v", hosts, err)
	}
	var sum struct {
		Name  string `json:"name"`
		Hosts int    `json:"hosts"`
	}
	if err := json.Unmarshal([]byte(mustCLI(t, url, "vpc", "show", "vpc-a", "-o", "json")), &sum); err != nil || sum.Name != "vpc-a" || sum.Hosts != 2 {
		t.Fatalf("vpc show -o json: %+v %v", sum, err)
	}
	if out := mustCLI(t, url, "subnet", "delete", "--vpc", "vpc-a", "vm2", "-o", "json"); out != "" {
		t.Fatalf("delete -o json printed %q", out)
	}

	expectOutput(t, mustCLI(t, url, "subnet", "delete", "--vpc", "vpc-a", "172.18.1.0-24"), "deleted subnet 172.18.1.0-24 from VPC vpc-a\n")
	expectOutput(t, mustCLI(t, url, "host", "delete", "test1", "--vpc", "vpc-a"), "deleted host test1 from VPC vpc-a\n")
	mustCLI(t, url, "host", "delete", "--vpc", "vpc-a", "test2")
	expectOutput(t, mustCLI(t, url, "vswitch", "delete", "--vpc", "vpc-a", "vsw-b"), "deleted vSwitch vsw-b from VPC vpc-a\n")
	mustCLI(t, url, "vswitch", "delete", "--vpc", "vpc-a", "vsw-a")
	expectOutput(t, mustCLI(t, url, "vpc", "delete", "vpc-a"), "deleted VPC vpc-a\n")
	expectOutput(t, mustCLI(t, url, "vpc", "list", "-o", "json"), "[\n  {\n    \"id\": 2,\n    \"name\": \"vpc-b\",\n    \"dec_ttl\": true,\n"+
		"    \"aliyun_id\": \"vpc-vf00000000000000002\",\n    \"aliyun_vrouter_id\": \"vrt-vf00000000000000002\",\n"+
		"    \"aliyun_route_table_id\": \"vtb-vf00000000000000002\"\n  }\n]\n")
}

func TestCLIErrors(t *testing.T) {
	url := newAPI(t)
	mustCLI(t, url, "vpc", "create", "vpc-a", "--cidr", "10.0.0.0/8")
	mustCLI(t, url, "vswitch", "create", "--vpc", "vpc-a", "vsw-a", "--cidr", "10.10.10.0/24", "--gateway", "10.10.10.1")
	mustCLI(t, url, "host", "add", "test1", "--vpc", "vpc-a", "--vswitch", "vsw-a", "--ip", "10.10.10.11", "--bridge", "br-test", "--interface", "vnet1")
	mustCLI(t, url, "subnet", "add", "172.18.1.0/24", "--vpc", "vpc-a", "--host", "test1")

	cases := []struct {
		args   []string
		code   int
		stderr string // exact for API errors (exit 1), prefix for usage errors
	}{
		// API errors: "error: FIELD: MESSAGE", exit 1.
		{[]string{"host", "add", "x", "--vpc", "vpc-a", "--vswitch", "vsw-a", "--ip", "10.10.10.11", "--mac", "02:00:00:00:00:01", "--dpid", "1", "--ofport", "2"}, 1,
			"error: ip: 10.10.10.11 is already used by host \"test1\"\n"},
		{[]string{"host", "add", "x", "--vpc", "vpc-a", "--vswitch", "vsw-a", "--ip", "10.10.10.12", "--bridge", "br-test", "--interface", "vnet9"}, 1,
			"error: mac: required: OVSDB has no external_ids:attached-mac for br-test/vnet9\n"},
		{[]string{"vswitch", "list", "--vpc", "nope"}, 1, "error: vpc: VPC \"nope\" does not exist\n"},
		{[]string{"vpc", "create", "bad/name"}, 1, "error: name: \"bad/name\" is not a valid name: use letters, digits, '.', '_' and '-', starting with a letter or digit\n"},
		{[]string{"vpc", "create", "v6", "--cidr", "fd00::/8"}, 1, "error: cidr: fd00::/8 must be IPv4\n"},
		{[]string{"vpc", "delete", "vpc-a"}, 1, "error: name: VPC \"vpc-a\" is still used by 1 vSwitch (vsw-a), 1 host (test1) and 1 subnet (172.18.1.0-24); delete them first (use --cascade to delete them too)\n"},
		{[]string{"host", "delete", "--vpc", "vpc-a", "test1"}, 1, "error: name: host \"test1\" is still used by 1 subnet (172.18.1.0-24); delete them first (use --cascade to delete them too)\n"},
		{[]string{"vswitch", "delete", "--vpc", "vpc-a", "vsw-a"}, 1, "error: name: vSwitch \"vsw-a\" is still used by 1 host (test1); delete them first (use --cascade to delete them too)\n"},
		{[]string{"drops", "--vpc", "nope"}, 1, "error: vpc: VPC \"nope\" does not exist\n"},
		{[]string{"subnet", "add", "--vpc", "vpc-a", "10.10.10.0/25", "--host", "test1"}, 1, "error: cidr: destination 10.10.10.0/25 overlaps vSwitch \"vsw-a\" (10.10.10.0/24): it is inside the vSwitch CIDR, and a route entry may not equal or sit inside one\n"},
		{[]string{"subnet", "move", "--vpc", "vpc-a", "nope", "--host", "test1"}, 1, "error: name: subnet \"nope\" does not exist in VPC \"vpc-a\"\n"},
		{[]string{"flows", "00000000000000ff"}, 1, "error: dpid: switch 00000000000000ff is not connected\n"},
		{[]string{"--api", "http://127.0.0.1:1", "vpc", "list"}, 1, "error: GET http://127.0.0.1:1/v1/vpcs: dial tcp 127.0.0.1:1: connect: connection refused\nIs `vpcflow serve` running there? Point --api or VPCFLOW_API at it.\n"},
		{[]string{"vpc", "list", "--api", "not a url"}, 1, "error: API URL"},
		// Usage errors: exit 2.
		{[]string{"vpc", "create"}, 2, "error: missing NAME\n"},
		{[]string{"vpc", "create", "a", "b"}, 2, "error: unexpected argument \"b\"\n"},
		{[]string{"vpc", "create", "a", "--colour", "red"}, 2, "error: flag provided but not defined: -colour\n"},
		{[]string{"vpc", "list", "-o", "yaml"}, 2, "error: -o: want table or json"},
		{[]string{"vswitch", "list"}, 2, "error: --vpc is required\n"},
		{[]string{"vswitch", "create", "--vpc", "vpc-a", "w"}, 2, "error: --cidr is required\n"},
		{[]string{"host", "add", "--vpc", "vpc-a", "h", "--vswitch", "vsw-a"}, 2, "error: --ip is required\n"},
		{[]string{"host", "add", "--vpc", "vpc-a", "h", "--vswitch", "vsw-a", "--ip", "10.10.10.20", "--ofport", "x"}, 2, "error: invalid value \"x\" for flag -ofport"},
		{[]string{"host", "add", "--vpc", "vpc-a", "h", "--vswitch", "vsw-a", "--ip", "10.10.10.20", "--ofport", "4294967296"}, 2, "error: --ofport 4294967296 is out of range\n"},
		{[]string{"subnet", "add", "--vpc", "vpc-a", "172.18.9.0/24"}, 2, "error: --host is required\n"},
		{[]string{"flows"}, 2, "error: missing DPID\n"},
		{[]string{"flows", "xyz"}, 2, "error: invalid dpid \"xyz\""},
		{[]string{"drops", "extra"}, 2, "error: unexpected argument \"extra\"\n"},
		{[]string{"vpc", "delete", "vpc-a", "--cascade=maybe"}, 2, "error: invalid boolean value \"maybe\" for -cascade"},
		{[]string{"vpc", "frobnicate"}, 2, "error: unknown command \"vpc frobnicate\""},
		{[]string{"vpc"}, 2, "usage: vpcflow vpc COMMAND"},
		{[]string{"frobnicate"}, 2, "error: unknown command \"frobnicate\""},
		{[]string{}, 2, "usage: vpcflow [--api URL]"},
		{[]string{"--bogus"}, 2, "error: flag provided but not defined: -bogus"},
		{[]string{"bridge", "setup", "br-test"}, 2, "error: --controller is required"},
		{[]string{"bridge", "setup", "--controller", "tcp:127.0.0.1:6653"}, 2, "error: missing BRIDGE\n"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			r := runCLI(t, url, c.args...)
			if r.code != c.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, c.code, r.stdout, r.stderr)
			}
			if c.code == 1 && strings.HasSuffix(c.stderr, "\n") {
				if r.stderr != c.stderr {
					t.Fatalf("stderr:\n%q\nwant\n%q", r.stderr, c.stderr)
				}
			} else if !strings.HasPrefix(r.stderr, c.stderr) {
				t.Fatalf("stderr:\n%q\nwant prefix\n%q", r.stderr, c.stderr)
			}
			if r.stdout != "" {
				t.Fatalf("stdout on error: %q", r.stdout)
			}
		})
	}
}

// TestHelp: every command answers --help with its usage and an example, on
// stdout, exit 0.
func TestHelp(t *testing.T) {
	url := newAPI(t)
	cmds := [][]string{
		{"vpc", "create"}, {"vpc", "list"}, {"vpc", "show"}, {"vpc", "delete"},
		{"vswitch", "create"}, {"vswitch", "list"}, {"vswitch", "show"}, {"vswitch", "delete"},
		{"host", "add"}, {"host", "update"}, {"host", "list"}, {"host", "show"}, {"host", "delete"},
		{"subnet", "add"}, {"subnet", "move"}, {"subnet", "list"}, {"subnet", "show"}, {"subnet", "delete"},
		{"chassis", "add"}, {"chassis", "list"}, {"chassis", "show"}, {"chassis", "delete"},
		{"switches"}, {"flows"}, {"drops"}, {"bridge", "setup"},
	}
	for _, cmd := range cmds {
		for _, h := range []string{"--help", "-h", "-help"} {
			args := append(append([]string{}, cmd...), "x", h)
			r := runCLI(t, url, args...)
			name := strings.Join(cmd, " ")
			if r.code != 0 || !strings.HasPrefix(r.stdout, "usage: vpcflow "+name) ||
				!strings.Contains(r.stdout, "\nExample:\n  vpcflow "+name) || !strings.Contains(r.stdout, "\nFlags:\n") {
				t.Errorf("vpcflow %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
			}
		}
	}
	for _, g := range []string{"vpc", "vswitch", "host", "subnet", "chassis", "bridge"} {
		r := runCLI(t, url, g, "--help")
		if r.code != 0 || !strings.HasPrefix(r.stdout, "usage: vpcflow "+g+" COMMAND") {
			t.Errorf("vpcflow %s --help: %d %s %s", g, r.code, r.stdout, r.stderr)
		}
	}
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		r := runCLI(t, url, args...)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "usage: vpcflow [--api URL] [--api-token TOKEN] [--timeout DUR] COMMAND") || !strings.Contains(r.stdout, "Example") {
			t.Errorf("vpcflow %v: %d %s", args, r.code, r.stdout)
		}
	}
	r := runCLI(t, url, "help", "host", "add")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "usage: vpcflow host add ") {
		t.Errorf("vpcflow help host add: %d %s %s", r.code, r.stdout, r.stderr)
	}
	// "--" ends flags: a literal "--help" after it is an argument.
	r = runCLI(t, url, "vpc", "show", "--", "--help")
	if r.code != 1 || !strings.Contains(r.stderr, "does not exist") {
		t.Errorf("vpc show -- --help: %d %q %q", r.code, r.stdout, r.stderr)
	}
}

func TestSwitchesAndFlowsCLI(t *testing.T) {
	url := newFixedAPI(t)
	expectOutput(t, mustCLI(t, url, "switches"),
		"DPID              BRIDGE    OVSDB         REMOTE           SINCE                 CERT              PORTS\n"+
			"0000000000000001  br-test   resolved      127.0.0.1:40000  2024-05-01T12:00:00Z  -                 vnet1:1,vnet3:3\n"+
			"0000000000000099  -         not resolved  10.0.0.3:51001   2024-05-01T12:40:00Z  0783d6d1f4c5a6b7  -\n"+
			"000000000000beef  br-other  resolved      10.0.0.2:51000   2024-05-01T12:30:00Z  -                 -\n")
	var sws []api.SwitchView
	if err := json.Unmarshal([]byte(mustCLI(t, url, "switches", "-o", "json")), &sws); err != nil || len(sws) != 3 || sws[1].OVSDBResolved || !sws[0].OVSDBResolved {
		t.Fatalf("switches -o json: %v %v", sws, err)
	}
	want := " cookie=0x1000000000000001, table=0, n_packets=12, n_bytes=1008, priority=100,in_port=1,dl_src=52:58:00:98:c0:81 actions=write_metadata:0x1/0xffffffff,goto_table:10\n" +
		" cookie=0x0, table=0, n_packets=0, n_bytes=0, priority=0 actions=drop\n" +
		" cookie=0x2000000000000001, table=20, n_packets=3, n_bytes=294, priority=124,ip,metadata=0x1,nw_dst=172.18.1.0/24 actions=set_field:ee:ff:ff:ff:ff:ff->eth_src,set_field:52:58:00:98:c0:81->eth_dst,output:1\n"
	for _, d := range []string{"0000000000000001", "0x1", "1"} {
		expectOutput(t, mustCLI(t, url, "flows", d), want)
	}
	expectOutput(t, mustCLI(t, url, "flows", "--no-stats", "0x1"),
		" cookie=0x1000000000000001, table=0, priority=100,in_port=1,dl_src=52:58:00:98:c0:81 actions=write_metadata:0x1/0xffffffff,goto_table:10\n"+
			" cookie=0x0, table=0, priority=0 actions=drop\n"+
			" cookie=0x2000000000000001, table=20, priority=124,ip,metadata=0x1,nw_dst=172.18.1.0/24 actions=set_field:ee:ff:ff:ff:ff:ff->eth_src,set_field:52:58:00:98:c0:81->eth_dst,output:1\n")
}

func TestAPISelection(t *testing.T) {
	url := newAPI(t)
	other := newAPI(t)
	mustCLI(t, other, "vpc", "create", "only-in-other")
	// The environment picks url; --api before the command or on it wins.
	if out := mustCLI(t, url, "vpc", "list"); strings.Contains(out, "only-in-other") {
		t.Fatalf("VPCFLOW_API not used: %s", out)
	}
	if out := mustCLI(t, url, "--api", other, "vpc", "list"); !strings.Contains(out, "only-in-other") {
		t.Fatalf("global --api not used: %s", out)
	}
	if out := mustCLI(t, url, "vpc", "list", "--api="+other); !strings.Contains(out, "only-in-other") {
		t.Fatalf("command --api not used: %s", out)
	}
	// Without the environment the default is 127.0.0.1:8080.
	var out, errb bytes.Buffer
	code := runEnv(context.Background(), []string{"vpc", "list", "--help"}, &out, &errb, func(string) string { return "" })
	if code != 0 || !strings.Contains(out.String(), defaultAPI) {
		t.Fatalf("default API not shown: %s", out.String())
	}
}

func TestParseInterspersed(t *testing.T) {
	cases := []struct {
		args []string
		pos  []string
		vpc  string
		yes  bool
		n    int
	}{
		{[]string{"a", "--vpc", "v", "b"}, []string{"a", "b"}, "v", false, 0},
		{[]string{"--vpc=v", "a", "--yes", "b"}, []string{"a", "b"}, "v", true, 0},
		{[]string{"a", "-yes", "-n", "3"}, []string{"a"}, "", true, 3},
		{[]string{"a", "--", "--vpc", "x"}, []string{"a", "--vpc", "x"}, "", false, 0},
		{[]string{"-", "--yes=false"}, []string{"-"}, "", false, 0},
		{[]string{"--vpc", "-weird-name", "a"}, []string{"a"}, "-weird-name", false, 0},
	}
	for _, c := range cases {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		vpc := fs.String("vpc", "", "")
		yes := fs.Bool("yes", false, "")
		n := fs.Int("n", 0, "")
		pos, err := parseInterspersed(fs, c.args)
		if err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		if !reflect.DeepEqual(pos, c.pos) && !(len(pos) == 0 && len(c.pos) == 0) || *vpc != c.vpc || *yes != c.yes || *n != c.n {
			t.Errorf("%v: pos %q vpc %q yes %v n %d", c.args, pos, *vpc, *yes, *n)
		}
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(&bytes.Buffer{})
	fs.String("vpc", "", "")
	if _, err := parseInterspersed(fs, []string{"a", "--vpc"}); err == nil {
		t.Error("flag without its value accepted")
	}
}

// TestBridgeSetup runs `vpcflow bridge setup` against a private
// ovsdb-server (netlab) when Open vSwitch is installed and we are root.
func TestBridgeSetup(t *testing.T) {
	r := runCLI(t, "", "bridge", "setup", "br-test", "--ovsdb", "bogus", "--controller", "tcp:127.0.0.1:6653")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "error: ") || !strings.Contains(r.stderr, "bogus") {
		t.Fatalf("bad endpoint: %d %q", r.code, r.stderr)
	}
	o := netlab.NewOVS(t, netlab.WithoutVswitchd())
	sock := o.DBSock

	// Missing bridge without --create: an error from OVSDB's side.
	r = runCLI(t, "", "bridge", "setup", "br-test", "--ovsdb", "unix:"+sock, "--controller", "tcp:127.0.0.1:6653")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "error: ") {
		t.Fatalf("missing bridge: %d %q %q", r.code, r.stdout, r.stderr)
	}
	out := mustCLI(t, "", "bridge", "setup", "br-test", "--ovsdb", "unix:"+sock, "--controller", "tcp:127.0.0.1:6653", "--create", "--datapath-type", "netdev")
	if !strings.Contains(out, "bridge br-test is set up") {
		t.Fatalf("output %q", out)
	}
	vsctl := func(args ...string) string { return o.MustVsctl(t, args...) }
	if got := vsctl("get", "Bridge", "br-test", "protocols"); got != `[OpenFlow13]` {
		t.Errorf("protocols %s", got)
	}
	if got := vsctl("get", "Bridge", "br-test", "fail_mode"); got != "secure" {
		t.Errorf("fail_mode %s", got)
	}
	if got := vsctl("get", "Bridge", "br-test", "datapath_type"); got != "netdev" {
		t.Errorf("datapath_type %s", got)
	}
	if got := vsctl("get-controller", "br-test"); got != "tcp:127.0.0.1:6653" {
		t.Errorf("controller %s", got)
	}
	// Idempotent.
	mustCLI(t, "", "bridge", "setup", "--ovsdb", "unix:"+sock, "br-test", "--controller", "tcp:127.0.0.1:6653")
	// Three replicas: a comma-separated list, or the flag repeated.
	mustCLI(t, "", "bridge", "setup", "--ovsdb", "unix:"+sock, "br-test", "--controller", "tcp:127.0.0.1:6653,tcp:127.0.0.1:6654",
		"--controller", "tcp:127.0.0.1:6655")
	if got := vsctl("get-controller", "br-test"); got != "tcp:127.0.0.1:6653\ntcp:127.0.0.1:6654\ntcp:127.0.0.1:6655" {
		t.Errorf("controllers %q", got)
	}
	if got := vsctl("--columns=connection_mode", "--bare", "list", "controller"); strings.Count(got, "out-of-band") != 3 {
		t.Errorf("connection modes %q", got)
	}
}
