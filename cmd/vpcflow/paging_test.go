package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/vpcflow/vpcflow/api"
)

// TestPagingCLIFilteredTotal: a filtered list walked page by page (the
// filters are the server's) says on every page the total of the filtered
// list, and it is the number of rows walked, whatever the page size.
func TestPagingCLIFilteredTotal(t *testing.T) {
	url := newAPI(t)
	mustCLI(t, url, "vpc", "create", "vpc-a")
	mustCLI(t, url, "vswitch", "create", "--vpc", "vpc-a", "vsw-a", "--cidr", "10.10.10.0/24")
	mustCLI(t, url, "vswitch", "create", "--vpc", "vpc-a", "vsw-b", "--cidr", "10.20.0.0/24")
	// vsw-a: a0…a3 (10.10.10.10…13); vsw-b: b0…b6 (10.20.0.10…16).
	for i := range 4 {
		mustCLI(t, url, "host", "add", fmt.Sprintf("a%d", i), "--vpc", "vpc-a", "--vswitch", "vsw-a", "--ip", fmt.Sprintf("10.10.10.%d", 10+i),
			"--mac", fmt.Sprintf("02:00:00:00:0a:%02x", i), "--dpid", "1", "--ofport", strconv.Itoa(10+i))
	}
	for i := range 7 {
		mustCLI(t, url, "host", "add", fmt.Sprintf("b%d", i), "--vpc", "vpc-a", "--vswitch", "vsw-b", "--ip", fmt.Sprintf("10.20.0.%d", 10+i),
			"--mac", fmt.Sprintf("02:00:00:00:0b:%02x", i), "--dpid", "1", "--ofport", strconv.Itoa(20+i))
	}
	for i := range 3 {
		mustCLI(t, url, "subnet", "add", fmt.Sprintf("172.19.%d.0/24", i), "--vpc", "vpc-a", "--host", "b1")
	}
	mustCLI(t, url, "subnet", "add", "172.20.0.0/24", "--vpc", "vpc-a", "--host", "a0")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"host", "list", "--vpc", "vpc-a"}, "a0,a1,a2,a3,b0,b1,b2,b3,b4,b5,b6"},
		{[]string{"host", "list", "--vpc", "vpc-a", "--vswitch", "vsw-b"}, "b0,b1,b2,b3,b4,b5,b6"},
		{[]string{"host", "list", "--vpc", "vpc-a", "--vswitch", "vsw-a"}, "a0,a1,a2,a3"},
		{[]string{"host", "list", "--vpc", "vpc-a", "--filter", "10.20.0.1"}, "b0,b1,b2,b3,b4,b5,b6"},
		{[]string{"host", "list", "--vpc", "vpc-a", "--vswitch", "vsw-b", "--filter", "0B:0"}, "b0,b1,b2,b3,b4,b5,b6"},
		{[]string{"host", "list", "--vpc", "vpc-a", "--filter", "0b:05"}, "b5"},
		{[]string{"host", "list", "--vpc", "vpc-a", "--vswitch", "vsw-a", "--filter", "10.20"}, ""},
		{[]string{"subnet", "list", "--vpc", "vpc-a", "--host", "b1"}, "172.19.0.0-24,172.19.1.0-24,172.19.2.0-24"},
		{[]string{"subnet", "list", "--vpc", "vpc-a", "--filter", "172.20"}, "172.20.0.0-24"},
	} {
		for _, n := range []int{1, 2, 3, 50} {
			got, total := walkCLI(t, url, n, c.args...)
			if strings.Join(got, ",") != c.want || total != strconv.Itoa(len(got)) {
				t.Errorf("%v, --limit %d: %v, total %s; want %s", c.args, n, got, total, c.want)
			}
		}
	}
}

// TestPagingCLITotalFromServer: the total is the server's X-Total-Count,
// written with thousands separated; a server that does not say prints
// "?" (and no "total" with -o json).
func TestPagingCLITotalFromServer(t *testing.T) {
	count := ""
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if count != "" {
			w.Header().Set(api.TotalCountHeader, count)
		}
		w.Header().Set(api.NextPageHeader, "tok")
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `[{"name":"vpc-a","id":1},{"name":"vpc-b","id":2}]`)
	}))
	defer srv.Close()
	for _, c := range []struct{ count, stderr, json string }{
		{"100000", "showing 2 of 100,000; more: --page-token tok\n", `"total": 100000`},
		{"1234567", "showing 2 of 1,234,567; more: --page-token tok\n", `"total": 1234567`},
		{"999", "showing 2 of 999; more: --page-token tok\n", `"total": 999`},
		{"", "showing 2 of ?; more: --page-token tok\n", ""},
		{"lots", "showing 2 of ?; more: --page-token tok\n", ""},
	} {
		count = c.count
		r := runCLI(t, srv.URL, "vpc", "list", "--limit", "2")
		if r.code != 0 || r.stderr != c.stderr || strings.Count(r.stdout, "\n") != 3 {
			t.Errorf("X-Total-Count %q: %d %q %q, want %q", c.count, r.code, r.stdout, r.stderr, c.stderr)
		}
		r = runCLI(t, srv.URL, "vpc", "list", "--limit", "2", "-o", "json")
		var page map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &page); err != nil || r.stderr != "" || page["next_page_token"] != "tok" {
			t.Errorf("X-Total-Count %q, -o json: %q %q %v", c.count, r.stdout, r.stderr, err)
		}
		if _, has := page["total"]; has != (c.json != "") || !strings.Contains(r.stdout, c.json) {
			t.Errorf("X-Total-Count %q, -o json: %s, want %s", c.count, r.stdout, c.json)
		}
	}
}
