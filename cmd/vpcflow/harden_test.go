package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/vpcflow/vpcflow/api"
	"github.com/vpcflow/vpcflow/controller"
	"github.com/vpcflow/vpcflow/controller/controllertest"
	"github.com/vpcflow/vpcflow/ovsdb"
)

// TestHostUpdateCLI: `host update` changes a host's MAC or attachment;
// its id and route entries stay, and `host show` says where it is now.
func TestHostUpdateCLI(t *testing.T) {
	url := newAPI(t)
	mustCLI(t, url, "vpc", "create", "vpc-a")
	mustCLI(t, url, "vswitch", "create", "--vpc", "vpc-a", "vsw-a", "--cidr", "10.10.10.0/24")
	mustCLI(t, url, "host", "add", "test1", "--vpc", "vpc-a", "--vswitch", "vsw-a", "--ip", "10.10.10.11", "--bridge", "br-test", "--interface", "vnet1")
	mustCLI(t, url, "subnet", "add", "172.18.1.0/24", "--vpc", "vpc-a", "--host", "test1")

	expectOutput(t, mustCLI(t, url, "host", "update", "test1", "--vpc", "vpc-a", "--mac", "52:58:00:98:c0:99"),
		"NAME   ID  VSWITCH  IP           MAC                ATTACHMENT\n"+
			"test1  1   vsw-a    10.10.10.11  52:58:00:98:c0:99  br-test/vnet1\n")
	expectOutput(t, mustCLI(t, url, "host", "update", "--vpc", "vpc-a", "test1", "--dpid", "0x1", "--ofport", "7"),
		"NAME   ID  VSWITCH  IP           MAC                ATTACHMENT\n"+
			"test1  1   vsw-a    10.10.10.11  52:58:00:98:c0:99  dpid=0000000000000001,ofport=7\n")
	expectOutput(t, mustCLI(t, url, "host", "show", "--vpc", "vpc-a", "test1"),
		"NAME   ID  VSWITCH  IP           MAC                ATTACHMENT                      STATE           DETAIL\n"+
			"test1  1   vsw-a    10.10.10.11  52:58:00:98:c0:99  dpid=0000000000000001,ofport=7  port not found  bridge br-test (dpid 0000000000000001, OVSDB unix:/test/db.sock) has no port 7\n")
	// Back by interface: the MAC comes from OVSDB when not given.
	mustCLI(t, url, "host", "update", "--vpc", "vpc-a", "test1", "--bridge", "br-test", "--interface", "vnet1", "--mac", "52:58:00:98:c0:81")
	expectOutput(t, mustCLI(t, url, "subnet", "list", "--vpc", "vpc-a"),
		"NAME           ID  CIDR           HOST\n"+
			"172.18.1.0-24  1   172.18.1.0/24  test1\n")
	var h api.HostInfo
	if err := json.Unmarshal([]byte(mustCLI(t, url, "host", "show", "--vpc", "vpc-a", "test1", "-o", "json")), &h); err != nil ||
		h.ID != 1 || h.Interface != "vnet1" || h.Attachment.State != "bridge not connected" {
		t.Fatalf("host show -o json: %+v %v", h, err)
	}

	for _, c := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"host", "update", "--vpc", "vpc-a", "test1"}, 2, "error: nothing to change"},
		{[]string{"host", "update", "test1", "--mac", "02:00:00:00:00:01"}, 2, "error: --vpc is required"},
		{[]string{"host", "update", "--vpc", "vpc-a", "test1", "--ip", "10.10.10.12"}, 2, "error: flag provided but not defined: -ip"},
		{[]string{"host", "update", "--vpc", "vpc-a", "test1", "--ofport", "4294967296", "--dpid", "1"}, 2, "error: --ofport 4294967296 is out of range"},
		{[]string{"host", "update", "--vpc", "vpc-a", "nope", "--mac", "02:00:00:00:00:01"}, 1, "error: name: host \"nope\" does not exist in VPC \"vpc-a\"\n"},
		{[]string{"host", "update", "--vpc", "vpc-a", "test1", "--interface", "vnet3"}, 1, "error: bridge: required with interface \"vnet3\""},
	} {
		r := runCLI(t, url, c.args...)
		if r.code != c.code || !strings.HasPrefix(r.stderr, c.stderr) || r.stdout != "" {
			t.Errorf("vpcflow %s: exit %d %q %q; want %d %q", strings.Join(c.args, " "), r.code, r.stdout, r.stderr, c.code, c.stderr)
		}
	}
}

// pageLineRE is the line a paged list prints on stderr.
var pageLineRE = regexp.MustCompile(`^showing ([0-9,]+) of ([0-9,]+|\?)(?:; more: --page-token (\S+))?\n$`)

// walkCLI runs a list command (args, without --limit) page by page with
// --limit n and returns the first column of every row, and the total
// every page's stderr line said (the same on each page; its count of
// shown items must be the page's rows).
func walkCLI(t *testing.T, url string, n int, args ...string) (names []string, total string) {
	t.Helper()
	token := ""
	for pages := 1; ; pages++ {
		if pages > 20 {
			t.Fatalf("%v: the pages never end", args)
		}
		a := append(append([]string(nil), args...), "--limit", fmt.Sprint(n))
		if token != "" {
			a = append(a, "--page-token", token)
		}
		r := runCLI(t, url, a...)
		if r.code != 0 {
			t.Fatalf("%v: %d %s", a, r.code, r.stderr)
		}
		m := pageLineRE.FindStringSubmatch(r.stderr)
		if m == nil {
			t.Fatalf("%v: stderr %q", a, r.stderr)
		}
		rows := 0
		if out := strings.TrimSpace(r.stdout); out != "" {
			for _, l := range strings.Split(out, "\n")[1:] {
				names = append(names, strings.Fields(l)[0])
				rows++
			}
		}
		if m[1] != fmt.Sprint(rows) || rows > n {
			t.Fatalf("%v: %q for %d rows", a, r.stderr, rows)
		}
		if pages == 1 {
			total = m[2]
		} else if m[2] != total {
			t.Fatalf("%v: total %s on page %d, %s on the first", a, m[2], pages, total)
		}
		if token = m[3]; token == "" {
			return names, total
		}
	}
}

// TestPagingCLI: every list command takes --limit and --page-token; a
// page says on stderr how many rows it shows, how many the list has and
// the next page's token (with -o json, "total" and "next_page_token" in
// the JSON); the last page has no token.
func TestPagingCLI(t *testing.T) {
	url := newAPI(t)
	for _, n := range []string{"e", "c", "a", "d", "b"} {
		mustCLI(t, url, "vpc", "create", "vpc-"+n)
	}
	if got, total := walkCLI(t, url, 2, "vpc", "list"); strings.Join(got, ",") != "vpc-a,vpc-b,vpc-c,vpc-d,vpc-e" || total != "5" {
		t.Fatalf("pages: %v, total %s", got, total)
	}
	r := runCLI(t, url, "vpc", "list", "--limit", "2")
	if m := pageLineRE.FindStringSubmatch(r.stderr); m == nil || !strings.HasPrefix(r.stderr, "showing 2 of 5; more: --page-token ") {
		t.Fatalf("first page's stderr %q", r.stderr)
	}
	var page struct {
		Items []struct {
			Name string `json:"name"`
		} `json:"items"`
		Total *int   `json:"total"`
		Next  string `json:"next_page_token"`
	}
	if err := json.Unmarshal([]byte(mustCLI(t, url, "vpc", "list", "--limit", "3", "-o", "json")), &page); err != nil || len(page.Items) != 3 || page.Next == "" || page.Total == nil || *page.Total != 5 {
		t.Fatalf("-o json page: %+v %v", page, err)
	}
	r = runCLI(t, url, "vpc", "list", "--limit", "3", "-o", "json", "--page-token", page.Next)
	page.Next, page.Total = "", nil
	if err := json.Unmarshal([]byte(r.stdout), &page); r.code != 0 || err != nil || len(page.Items) != 2 || page.Next != "" || page.Items[1].Name != "vpc-e" || page.Total == nil || *page.Total != 5 || r.stderr != "" {
		t.Fatalf("-o json last page: %+v %v %q", page, err, r.stderr)
	}
	// An empty list: "total": 0, not left out.
	if out := mustCLI(t, url, "chassis", "list", "--limit", "5", "-o", "json"); !strings.Contains(out, `"total": 0`) {
		t.Errorf("an empty list's page: %s", out)
	}
	// Without --limit or --page-token the list is whole and stderr empty.
	if r := runCLI(t, url, "vpc", "list"); r.code != 0 || r.stderr != "" || strings.Count(r.stdout, "\n") != 6 {
		t.Errorf("vpc list: %d %q %q", r.code, r.stdout, r.stderr)
	}
	// Every list command has the flags.
	mustCLI(t, url, "vswitch", "create", "--vpc", "vpc-a", "w1", "--cidr", "10.1.0.0/24")
	mustCLI(t, url, "vswitch", "create", "--vpc", "vpc-a", "w2", "--cidr", "10.2.0.0/24")
	for _, args := range [][]string{
		{"vswitch", "list", "--vpc", "vpc-a"}, {"host", "list", "--vpc", "vpc-a"}, {"subnet", "list", "--vpc", "vpc-a"},
		{"chassis", "list"}, {"switches"},
	} {
		r := runCLI(t, url, append(args, "--limit", "1")...)
		if r.code != 0 {
			t.Errorf("%v --limit 1: %d %s", args, r.code, r.stderr)
		}
	}
	if r := runCLI(t, url, "vswitch", "list", "--vpc", "vpc-a", "--limit", "1"); !strings.HasPrefix(r.stderr, "showing 1 of 2; more: --page-token ") {
		t.Errorf("vswitch list --limit 1: %q", r.stderr)
	}
	if r := runCLI(t, url, "vswitch", "list", "--vpc", "vpc-a", "--limit", "5"); r.stderr != "showing 2 of 2\n" {
		t.Errorf("vswitch list --limit 5: %q", r.stderr)
	}
	for _, c := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"vpc", "list", "--limit", "-1"}, 2, "error: --limit -1: want 1 to 10000"},
		{[]string{"vpc", "list", "--limit", "10001"}, 2, "error: --limit 10001"},
		{[]string{"vpc", "list", "--limit", "x"}, 2, "error: invalid value \"x\" for flag -limit"},
		{[]string{"vpc", "list", "--page-token", "garbage!"}, 1, "error: page_token: \"garbage!\" is not a page token of this API"},
	} {
		r := runCLI(t, url, c.args...)
		if r.code != c.code || !strings.HasPrefix(r.stderr, c.stderr) {
			t.Errorf("%v: %d %q", c.args, r.code, r.stderr)
		}
	}
}

// newSwitchAPI serves the API over the real controller with an in-memory
// switch (br-test, dpid 1) connected and reconciled.
func newSwitchAPI(t *testing.T) (string, *controllertest.Datapath) {
	t.Helper()
	st := openStore(t)
	ctrl := controller.New(zap.NewNop(), st, controller.Options{PushTimeout: 30 * time.Second})
	ctrl.BridgesChanged("unix:/test/db.sock", []ovsdb.Bridge{{Name: "br-test", DPID: 1, Ports: map[string]ovsdb.Port{
		"vnet1": {Name: "vnet1", OFPort: 1, AttachedMAC: net.HardwareAddr{0x52, 0x58, 0x00, 0x98, 0xc0, 0x81}},
	}}})
	dp := controllertest.NewDatapath(1)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		ctrl.Serve(ctx, dp)
		ctrl.Forget(dp)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for len(ctrl.Switches()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("switch not reconciled")
		}
		time.Sleep(time.Millisecond)
	}
	srv := httptest.NewServer(api.NewServer(zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel)), ctrl, api.Options{}))
	t.Cleanup(srv.Close)
	return srv.URL, dp
}

// TestUnconfirmedCLI: a change stored but not confirmed by a switch within
// --timeout prints what was stored, says which switch and why, and exits
// 5, before the client's own timeout.
func TestUnconfirmedCLI(t *testing.T) {
	url, dp := newSwitchAPI(t)
	mustCLI(t, url, "vpc", "create", "vpc-a")
	mustCLI(t, url, "vswitch", "create", "--vpc", "vpc-a", "vsw-a", "--cidr", "10.10.10.0/24")
	mustCLI(t, url, "host", "add", "test1", "--vpc", "vpc-a", "--vswitch", "vsw-a", "--ip", "10.10.10.11", "--bridge", "br-test", "--interface", "vnet1")
	dp.Hang(true)
	defer dp.Hang(false)
	start := time.Now()
	r := runCLI(t, url, "subnet", "add", "172.18.1.0/24", "--vpc", "vpc-a", "--host", "test1", "--timeout", "1s")
	if took := time.Since(start); r.code != exitUnconfirmed || took > 1500*time.Millisecond {
		t.Fatalf("exit %d after %s: %q %q", r.code, took, r.stdout, r.stderr)
	}
	expectOutput(t, r.stdout, "NAME           ID  CIDR           HOST\n172.18.1.0-24  1   172.18.1.0/24  test1\n")
	if r.stderr != "warning: the change is stored, but not every switch confirmed it:\n"+
		"  switch 0000000000000001 (br-test): no confirmation before the request's deadline; the change stays queued for the switch\n"+
		"Each gets it when its queue catches up, or when it reconnects and is reconciled.\n" {
		t.Fatalf("stderr %q", r.stderr)
	}
	r = runCLI(t, url, "subnet", "delete", "--vpc", "vpc-a", "172.18.1.0-24", "--timeout", "1s")
	if r.code != exitUnconfirmed || r.stdout != "deleted subnet 172.18.1.0-24 from VPC vpc-a\n" || !strings.Contains(r.stderr, "switch 0000000000000001 (br-test)") {
		t.Fatalf("delete: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := runCLI(t, url, "--help"); !strings.Contains(r.stdout, "5 the change\nis stored but not every switch confirmed it") {
		t.Fatalf("main usage does not document exit status 5:\n%s", r.stdout)
	}
}

// TestServeRefusesCrossSiteRequests: the real `vpcflow serve` refuses the
// browser's text/plain POST and a rebound Host on the API and on the
// backup it serves beside it, and honours --allowed-hosts.
func TestServeRefusesCrossSiteRequests(t *testing.T) {
	dir := t.TempDir()
	rest, of := freeAddr(t), freeAddr(t)
	data := filepath.Join(dir, "data")
	env := []string{"PATH=" + os.Getenv("PATH")}
	d := startDaemon(t, env, false, "--init", "--data-dir", data, "--listen", rest, "--openflow", of,
		"--allowed-hosts", "vpcflow.example.net", "--request-timeout", "5s")
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + rest + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve never answered: %v\n%s", err, d.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	send := func(method, path, host, ctype, origin, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+rest+path, strings.NewReader(body))
		if host != "" {
			req.Host = host
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, c := range []struct {
		method, path, host, ctype, origin string
		status                            int
	}{
		{"POST", "/v1/vpcs", "evil.example:8080", "text/plain", "http://evil.example:8080", 403},
		{"POST", "/v1/vpcs", "", "text/plain", "http://evil.example", 403},
		{"POST", "/v1/vpcs", "", "text/plain", "", 415},
		{"GET", "/v1/backup", "evil.example", "", "", 403},
		{"GET", "/v1/backup", "", "", "http://evil.example", 403},
		{"GET", "/v1/vpcs", "localhost", "", "", 403}, // not in --allowed-hosts
		{"GET", "/v1/vpcs", "vpcflow.example.net:8080", "", "", 200},
		{"GET", "/v1/backup", "", "", "", 200},
		{"OPTIONS", "/v1/vpcs", "", "", "http://evil.example", 403},
		{"POST", "/v1/vpcs", "", "application/json", "", 201},
	} {
		status, body := send(c.method, c.path, c.host, c.ctype, c.origin, `{"name":"vpc-a"}`)
		if status != c.status {
			t.Errorf("%s %s Host %q Content-Type %q Origin %q: %d %s, want %d", c.method, c.path, c.host, c.ctype, c.origin, status, body, c.status)
		}
	}
	if status, body := send("GET", "/v1/vpcs", "", "", "", ""); status != 200 || strings.Count(body, `"name"`) != 1 {
		t.Fatalf("only the JSON POST may have created a VPC: %d %s", status, body)
	}
	if status, body := send("GET", "/readyz", "", "", "", ""); status != 200 || !strings.Contains(body, `"status":"ready"`) {
		t.Fatalf("readyz: %d %s", status, body)
	}
	if err := d.stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}
}

// TestAllowedHostsConfig: --allowed-hosts is a list in the file, comma-
// separated in the environment, repeatable on the command line (each
// source replacing the one before); --request-timeout is bounded,
// --dump-slice-flows at least 1 and --push-timeout at least 10ms.
func TestAllowedHostsConfig(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "vpcflow.yaml", "ovsdb:\n  - unix:/a.sock\nallowed-hosts:\n  - api.example.net\n  - 10.0.0.5\nrequest-timeout: 45s\n")
	for _, c := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{map[string]string{}, nil, "api.example.net,10.0.0.5"},
		{map[string]string{"VPCFLOW_ALLOWED_HOSTS": "a.example, b.example"}, nil, "a.example,b.example"},
		{map[string]string{"VPCFLOW_ALLOWED_HOSTS": "a.example"}, []string{"--allowed-hosts", "c.example", "--allowed-hosts", "*"}, "c.example,*"},
	} {
		c.env[configEnv] = file
		lc, err := loadServeConfig(c.args, envMap(c.env))
		if err != nil {
			t.Fatal(err)
		}
		if got := lc.opts.AllowedHosts.String(); got != c.want {
			t.Errorf("%v %v: allowed-hosts %q, want %q", c.env, c.args, got, c.want)
		}
		if lc.opts.OVSDB.String() != "unix:/a.sock" || lc.opts.RequestTimeout != 45*time.Second {
			t.Errorf("ovsdb %q request-timeout %s", lc.opts.OVSDB.String(), lc.opts.RequestTimeout)
		}
		if _, err := lc.resolve(zap.NewNop(), envMap(nil)); err != nil {
			t.Errorf("resolve: %v", err)
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--request-timeout", "0s"}, "--request-timeout: 0s: want a duration above 0 and at most 1m50s"},
		{[]string{"--request-timeout", "5m"}, "--request-timeout: 5m0s: want a duration above 0"},
		{[]string{"--allowed-hosts", "http://x/"}, `--allowed-hosts: "http://x/": want a host name, an address or *`},
		{[]string{"--dump-slice-flows", "0"}, "--dump-slice-flows: 0: want 1 or more"},
		{[]string{"--push-timeout", "1ms"}, "--push-timeout: 1ms: want at least 10ms"},
	} {
		lc, err := loadServeConfig(append([]string{"--config", writeFile(t, dir, "empty.yaml", "")}, c.args...), envMap(nil))
		if err == nil {
			_, err = lc.resolve(zap.NewNop(), envMap(nil))
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %s", c.args, err, c.want)
		}
	}
}
