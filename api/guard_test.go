package api

import (
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
)

// raw sends a request to the test server over real TCP with the given
// Host and headers (nil values: header left out), and no defaults added.
func (e *testEnv) raw(method, path, host, body string, headers map[string]string) reply {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for k, v := range headers {
		req.Header.Set(k, v)
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

// TestCrossSiteRequests is the attack from issue 10: a web page the
// operator opens makes the browser POST text/plain to the API, with the
// page's Origin, and (DNS rebinding) with the page's own name as Host.
// Nothing of it may reach the store.
func TestCrossSiteRequests(t *testing.T) {
	e := newEnv(t, Options{})
	e.seed()
	before := e.dump()
	vpc := `{"name":"evil"}`
	cases := []struct {
		name    string
		method  string
		host    string
		headers map[string]string
		status  int
		msg     string
	}{
		{"text/plain with foreign Origin and Host (DNS rebinding)", "POST", "evil.example:8080",
			map[string]string{"Content-Type": "text/plain", "Origin": "http://evil.example:8080"}, 403, `does not answer to Host "evil.example:8080"`},
		{"text/plain with foreign Origin to 127.0.0.1", "POST", "",
			map[string]string{"Content-Type": "text/plain;charset=UTF-8", "Origin": "http://evil.example"}, 403, "cross-origin requests are not allowed"},
		{"text/plain without Origin (old browser)", "POST", "",
			map[string]string{"Content-Type": "text/plain"}, 415, `Content-Type must be application/json (got "text/plain")`},
		{"form post", "POST", "",
			map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415, "Content-Type must be application/json"},
		{"multipart post", "POST", "",
			map[string]string{"Content-Type": "multipart/form-data; boundary=x"}, 415, "Content-Type must be application/json"},
		{"no Content-Type", "POST", "", nil, 415, "(got none)"},
		{"JSON from a foreign Origin", "POST", "",
			map[string]string{"Content-Type": "application/json", "Origin": "https://evil.example"}, 403, "cross-origin"},
		{"JSON with Origin null (sandboxed page)", "POST", "",
			map[string]string{"Content-Type": "application/json", "Origin": "null"}, 403, "cross-origin"},
		{"JSON to a rebound name", "POST", "evil.example",
			map[string]string{"Content-Type": "application/json"}, 403, "does not answer to Host"},
		{"PUT text/plain", "PUT", "", map[string]string{"Content-Type": "text/plain"}, 415, "application/json"},
		{"rebound read", "GET", "evil.example:8080", nil, 403, "does not answer to Host"},
		{"rebound delete", "DELETE", "evil.example", nil, 403, "does not answer to Host"},
		{"empty Host", "GET", " ", nil, 403, "does not answer to Host"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := "/v1/vpcs"
			body := vpc
			switch c.method {
			case "PUT":
				path, body = "/v1/vpcs/vpc-a/subnets/172.18.1.0-24", `{"host":"test2"}`
			case "GET":
				body = ""
			case "DELETE":
				path, body = "/v1/vpcs/vpc-a/subnets/172.18.1.0-24", ""
			}
			r := e.raw(c.method, path, c.host, body, c.headers)
			if r.status != c.status || !strings.Contains(r.err().Error, c.msg) {
				t.Fatalf("got %d %s, want %d ~%q", r.status, r.body, c.status, c.msg)
			}
			for k := range r.header {
				if strings.HasPrefix(k, "Access-Control-") {
					t.Fatalf("CORS header %s in %v", k, r.header)
				}
			}
			if e.dump() != before {
				t.Fatal("the store changed")
			}
		})
	}

	// A CORS preflight is never answered, from any origin.
	for _, origin := range []string{"http://evil.example", "http://127.0.0.1:3000"} {
		r := e.raw("OPTIONS", "/v1/vpcs", "", "", map[string]string{"Origin": origin,
			"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"})
		if r.status < 400 {
			t.Fatalf("preflight from %s: %d", origin, r.status)
		}
		for k := range r.header {
			if strings.HasPrefix(k, "Access-Control-") {
				t.Fatalf("preflight from %s answered with %s", origin, k)
			}
		}
	}

	// What a client sends still works: the CLI and curl send no Origin;
	// a charset parameter is fine; the API's own names are accepted.
	hostname, _ := os.Hostname()
	for i, host := range []string{"", "localhost:8080", "LOCALHOST.", "[::1]:8080", hostname} {
		r := e.raw("POST", "/v1/vpcs", host, `{"name":"ok`+string(rune('a'+i))+`"}`, map[string]string{"Content-Type": "application/json; charset=utf-8"})
		if r.status != 201 {
			t.Fatalf("Host %q: %d %s", host, r.status, r.body)
		}
	}
	if r := e.raw("GET", "/v1/vpcs", "", "", map[string]string{"Origin": "http://localhost:8080"}); r.status != 200 {
		t.Fatalf("same-machine Origin: %d %s", r.status, r.body)
	}
}

// TestAllowedHosts: --allowed-hosts replaces the default names; the
// address the request came in on is always accepted; "*" accepts any.
func TestAllowedHosts(t *testing.T) {
	e := newEnv(t, Options{AllowedHosts: []string{"vpcflow.example.net", "10.9.8.7"}})
	for _, c := range []struct {
		host   string
		status int
	}{
		{"vpcflow.example.net", 200}, {"VPCflow.Example.Net.:8080", 200}, {"10.9.8.7:8080", 200},
		{"", 200}, // 127.0.0.1:PORT, the address the connection came in on
		{"localhost", 403}, {"evil.example", 403}, {"10.9.8.6", 403},
	} {
		if r := e.raw("GET", "/v1/vpcs", c.host, "", nil); r.status != c.status {
			t.Errorf("Host %q: %d %s, want %d", c.host, r.status, r.body, c.status)
		}
	}
	e = newEnv(t, Options{AllowedHosts: []string{"*"}})
	if r := e.raw("GET", "/v1/vpcs", "anything.example", "", nil); r.status != 200 {
		t.Errorf("*: %d %s", r.status, r.body)
	}
	// "*" does not lift the Content-Type rule.
	if r := e.raw("POST", "/v1/vpcs", "anything.example", `{"name":"x"}`, map[string]string{"Content-Type": "text/plain"}); r.status != 415 {
		t.Errorf("* text/plain: %d %s", r.status, r.body)
	}
}

func TestDefaultAllowedHosts(t *testing.T) {
	got := strings.Join(DefaultAllowedHosts("192.0.2.5:8080"), ",")
	if !strings.HasPrefix(got, "localhost,127.0.0.1,::1,") || !strings.HasSuffix(got, ",192.0.2.5") {
		t.Fatalf("DefaultAllowedHosts = %s", got)
	}
	if h, _ := os.Hostname(); h != "" && !strings.Contains(got, ","+h+",") {
		t.Fatalf("DefaultAllowedHosts = %s, no host name %s", got, h)
	}
	for _, listen := range []string{"0.0.0.0:8080", "[::]:8080", ":8080"} {
		if got := DefaultAllowedHosts(listen); strings.Contains(strings.Join(got, ","), "0.0.0.0") || got[len(got)-1] == "" || got[len(got)-1] == "::" {
			t.Fatalf("DefaultAllowedHosts(%s) = %v", listen, got)
		}
	}
}
