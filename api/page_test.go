package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

// walk lists path (which may have a query of its own) page by page with
// ?limit=n and returns every page's names (as JSON "name" or "dpid" or
// "match" fields) joined, and the number of pages. Every page must say
// the same X-Total-Count, and it must be the number of items walked.
func (e *testEnv) walk(path string, n int, key string) ([]string, int) {
	e.t.Helper()
	var all []string
	tok := ""
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	total := ""
	for pages := 1; ; pages++ {
		q := url.Values{"limit": {fmt.Sprint(n)}}
		if tok != "" {
			q.Set("page_token", tok)
		}
		r := e.must(200, "GET", path+sep+q.Encode(), "")
		if got := r.header.Get(TotalCountHeader); pages == 1 {
			total = got
		} else if got != total {
			e.t.Fatalf("%s: %s %q on page %d, %q on the first", path, TotalCountHeader, got, pages, total)
		}
		var items []map[string]any
		if err := json.Unmarshal(r.body, &items); err != nil {
			e.t.Fatalf("%s: %s", path, r.body)
		}
		if len(items) > n {
			e.t.Fatalf("%s: %d items with limit %d", path, len(items), n)
		}
		for _, it := range items {
			all = append(all, fmt.Sprint(it[key]))
		}
		next := r.header.Get(NextPageHeader)
		if next == "" {
			if r.header.Get("Link") != "" {
				e.t.Fatalf("%s: Link without a next page", path)
			}
			if total != fmt.Sprint(len(all)) {
				e.t.Fatalf("%s: %s %q, %d items walked", path, TotalCountHeader, total, len(all))
			}
			return all, pages
		}
		if link := r.header.Get("Link"); !strings.Contains(link, "page_token="+next) || !strings.HasSuffix(link, `>; rel="next"`) {
			e.t.Fatalf("%s: Link %q", path, link)
		}
		if len(items) != n {
			e.t.Fatalf("%s: a short page (%d) with a next token", path, len(items))
		}
		if pages > 1000 {
			e.t.Fatalf("%s: the next token never ends", path)
		}
		tok = next
	}
}

// TestPagination: every list takes ?limit and ?page_token; the pages
// together are the whole list, in the same order, and the last one has
// no next token.
func TestPagination(t *testing.T) {
	e := newSwitchEnv(t, Options{})
	e.seed()
	for i := 0; i < 7; i++ {
		e.must(201, "POST", "/v1/vpcs", fmt.Sprintf(`{"name":"p%d"}`, 6-i))
		e.must(201, "POST", "/v1/vpcs/vpc-a/vswitches", fmt.Sprintf(`{"name":"w%d","cidr":"10.%d.0.0/24"}`, i, 100+i))
		e.must(201, "POST", "/v1/vpcs/vpc-a/hosts", fmt.Sprintf(`{"name":"h%d","vswitch":"vsw-a","ip":"10.10.10.%d","mac":"02:00:00:00:00:%02x","dpid":"1","ofport":%d}`, i, 30+i, 0x30+i, 30+i))
		e.must(201, "POST", "/v1/vpcs/vpc-a/subnets", fmt.Sprintf(`{"cidr":"172.19.%d.0/24","host":"test1"}`, i))
		e.must(201, "POST", "/v1/chassis", fmt.Sprintf(`{"name":"node%d","ovsdb":"tcp:192.168.100.%d:6640","bridge":"br-vpc","tunnel_ip":"192.168.100.%d","controller":"tcp:192.168.100.254:6653"}`, i, 10+i, 10+i))
	}
	for _, c := range []struct{ path, key string }{
		{"/v1/vpcs", "name"}, {"/v1/vpcs/vpc-a/vswitches", "name"}, {"/v1/vpcs/vpc-a/hosts", "name"},
		{"/v1/vpcs/vpc-a/subnets", "name"}, {"/v1/chassis", "name"}, {"/v1/switches", "dpid"},
		{"/v1/switches/0000000000000001/flows", "match"},
	} {
		var whole []map[string]any
		if err := json.Unmarshal(e.must(200, "GET", c.path, "").body, &whole); err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, it := range whole {
			want = append(want, fmt.Sprint(it[c.key]))
		}
		if r := e.must(200, "GET", c.path, ""); r.header.Get(TotalCountHeader) != fmt.Sprint(len(want)) {
			t.Fatalf("%s: %s %q for %d items", c.path, TotalCountHeader, r.header.Get(TotalCountHeader), len(want))
		}
		for _, n := range []int{1, 2, 3, len(want), len(want) + 1} {
			got, pages := e.walk(c.path, n, c.key)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("%s limit %d:\n%s\nwant\n%s", c.path, n, strings.Join(got, ","), strings.Join(want, ","))
			}
			if wantPages := max(1, (len(want)+n-1)/n); pages != wantPages {
				t.Fatalf("%s limit %d: %d pages for %d items", c.path, n, pages, len(want))
			}
		}
	}
	// Names are in order; what is created or deleted between pages
	// neither repeats nor shifts what follows.
	r := e.must(200, "GET", "/v1/vpcs?limit=3", "")
	if got := names(t, r.body); got != "p0,p1,p2" {
		t.Fatalf("first page %s", got)
	}
	e.must(201, "POST", "/v1/vpcs", `{"name":"a-before"}`)
	e.must(201, "POST", "/v1/vpcs", `{"name":"z-after"}`)
	e.must(204, "DELETE", "/v1/vpcs/p3", "")
	r = e.must(200, "GET", "/v1/vpcs?limit=3&page_token="+r.header.Get(NextPageHeader), "")
	if got := names(t, r.body); got != "p4,p5,p6" {
		t.Fatalf("second page %s", got)
	}
	r = e.must(200, "GET", "/v1/vpcs?limit=3&page_token="+r.header.Get(NextPageHeader), "")
	if got := names(t, r.body); got != "vpc-a,z-after" || r.header.Get(NextPageHeader) != "" {
		t.Fatalf("last page %s, next %q", got, r.header.Get(NextPageHeader))
	}

	// Bad parameters name themselves.
	for _, q := range []string{"limit=0", "limit=-1", "limit=10001", "limit=x", "limit=1&limit=2"} {
		if r := e.must(400, "GET", "/v1/vpcs?"+q, ""); r.err().Field != "limit" {
			t.Fatalf("%s: %s", q, r.body)
		}
	}
	for _, q := range []string{"page_token=%21%21", "page_token=" + url.QueryEscape("eyJ4IjoxfQ"), "page_token="} {
		if r := e.must(400, "GET", "/v1/vpcs/vpc-a/hosts?"+q, ""); r.err().Field != "page_token" {
			t.Fatalf("%s: %s", q, r.body)
		}
	}

	// The Go client.
	c, err := NewClient(e.srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	pg := Page{Limit: 4}
	for {
		hs, info, err := c.ListHostsPage(context.Background(), "vpc-a", pg)
		if err != nil {
			t.Fatal(err)
		}
		if info.Total != 9 {
			t.Fatalf("client page %d: Total %d, want 9", len(got)/4+1, info.Total)
		}
		for _, h := range hs {
			got = append(got, h.Name)
		}
		if info.Next == "" {
			break
		}
		pg.Token = info.Next
	}
	if strings.Join(got, ",") != "h0,h1,h2,h3,h4,h5,h6,test1,test2" {
		t.Fatalf("client pages: %v", got)
	}
	whole, err := c.Flows(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	fl, info, err := c.FlowsPage(context.Background(), 1, Page{Limit: 2})
	if err != nil || len(fl) != 2 || info.Next == "" || info.Total != len(whole) {
		t.Fatalf("FlowsPage: %d %+v %v (%d flows)", len(fl), info, err, len(whole))
	}
	if sw, info, err := c.SwitchesPage(context.Background(), Page{Limit: 1}); err != nil || len(sw) != 1 || info.Total != 1 || info.Next != "" {
		t.Fatalf("SwitchesPage: %+v %+v %v", sw, info, err)
	}
}

func names(t *testing.T, body []byte) string {
	t.Helper()
	var items []struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(body, &items); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, it := range items {
		out = append(out, it.Name)
	}
	return strings.Join(out, ",")
}
