package api

import (
	"context"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/vpcflow/vpcflow/topology"
)

// filterEnv is the seed (vpc-a, vsw-a with test1 and test2, their route
// entries) plus vSwitch vsw-b with hosts b00…b11 (10.10.20.100…111, MACs
// 02:00:00:00:20:00…0b), route entries 172.19.i.0/24 → b0i for i < 4,
// and a VPC vpc-z with a vSwitch of the same name and a host of its own.
func filterEnv(t *testing.T) *testEnv {
	t.Helper()
	e := newEnv(t, Options{})
	e.seed()
	e.must(201, "POST", "/v1/vpcs/vpc-a/vswitches", `{"name":"vsw-b","cidr":"10.10.20.0/24"}`)
	var hosts []string
	for i := range 12 {
		hosts = append(hosts, fmt.Sprintf(`{"name":"b%02d","vswitch":"vsw-b","ip":"10.10.20.%d","mac":"02:00:00:00:20:%02x","dpid":"1","ofport":%d}`, i, 100+i, i, 100+i))
	}
	e.must(201, "POST", "/v1/vpcs/vpc-a/hosts", "["+strings.Join(hosts, ",")+"]")
	for i := range 4 {
		e.must(201, "POST", "/v1/vpcs/vpc-a/subnets", fmt.Sprintf(`{"cidr":"172.19.%d.0/24","host":"b%02d"}`, i, i))
	}
	e.must(201, "POST", "/v1/vpcs", `{"name":"vpc-z"}`)
	e.must(201, "POST", "/v1/vpcs/vpc-z/vswitches", `{"name":"vsw-b","cidr":"10.10.20.0/24"}`)
	e.must(201, "POST", "/v1/vpcs/vpc-z/hosts", `{"name":"b99","vswitch":"vsw-b","ip":"10.10.20.101","mac":"02:00:00:00:20:63","dpid":"1","ofport":99}`)
	return e
}

// TestListFilters: ?vswitch, ?q and ?host keep what they say, before
// paging, and X-Total-Count counts what they keep.
func TestListFilters(t *testing.T) {
	e := filterEnv(t)
	for _, c := range []struct{ path, want string }{
		{"/v1/vpcs/vpc-a/hosts", "b00,b01,b02,b03,b04,b05,b06,b07,b08,b09,b10,b11,test1,test2"},
		{"/v1/vpcs/vpc-a/hosts?vswitch=vsw-b", "b00,b01,b02,b03,b04,b05,b06,b07,b08,b09,b10,b11"},
		{"/v1/vpcs/vpc-a/hosts?vswitch=vsw-a", "test1,test2"},
		{"/v1/vpcs/vpc-z/hosts?vswitch=vsw-b", "b99"},
		// By name, ignoring case.
		{"/v1/vpcs/vpc-a/hosts?q=b1", "b10,b11"},
		{"/v1/vpcs/vpc-a/hosts?q=TEST", "test1,test2"},
		// By IP: 10.10.20.100…109, not .110 or 10.10.10.x.
		{"/v1/vpcs/vpc-a/hosts?q=10.10.20.10", "b00,b01,b02,b03,b04,b05,b06,b07,b08,b09"},
		{"/v1/vpcs/vpc-a/hosts?q=10.10.10.", "test1,test2"},
		// By MAC, as written in any case.
		{"/v1/vpcs/vpc-a/hosts?q=20:0A", "b10"},
		{"/v1/vpcs/vpc-a/hosts?q=" + url.QueryEscape("52:58:00:98:c0:81"), "test1"},
		// Both filters.
		{"/v1/vpcs/vpc-a/hosts?vswitch=vsw-b&q=11", "b10,b11"}, // 10.10.20.110
		{"/v1/vpcs/vpc-a/hosts?vswitch=vsw-a&q=10.10.20", ""},
		{"/v1/vpcs/vpc-a/hosts?q=nothing-has-this", ""},
		// Route entries: by name, destination CIDR, next hop.
		{"/v1/vpcs/vpc-a/subnets", "172.18.1.0-24,172.18.3.0-24,172.19.0.0-24,172.19.1.0-24,172.19.2.0-24,172.19.3.0-24"},
		{"/v1/vpcs/vpc-a/subnets?q=1.0-2", "172.18.1.0-24,172.19.1.0-24"},
		{"/v1/vpcs/vpc-a/subnets?q=" + url.QueryEscape("19.2.0/24"), "172.19.2.0-24"},
		{"/v1/vpcs/vpc-a/subnets?q=Test2", "172.18.3.0-24"},
		{"/v1/vpcs/vpc-a/subnets?host=b02", "172.19.2.0-24"},
		{"/v1/vpcs/vpc-a/subnets?host=b07", ""},
		{"/v1/vpcs/vpc-a/subnets?host=b02&q=172.18", ""},
	} {
		r := e.must(200, "GET", c.path, "")
		if got := names(t, r.body); got != c.want {
			t.Errorf("%s: %q, want %q", c.path, got, c.want)
		}
		if c.want == "" && strings.TrimSpace(string(r.body)) != "[]" {
			t.Errorf("%s: %s, want []", c.path, r.body)
		}
		n := 0
		if c.want != "" {
			n = strings.Count(c.want, ",") + 1
		}
		if got := r.header.Get(TotalCountHeader); got != fmt.Sprint(n) {
			t.Errorf("%s: %s %q, want %d", c.path, TotalCountHeader, got, n)
		}
	}
	// The count is of every page; a page has at most limit items.
	r := e.must(200, "GET", "/v1/vpcs/vpc-a/hosts?vswitch=vsw-b&limit=1", "")
	if got := names(t, r.body); got != "b00" || r.header.Get(TotalCountHeader) != "12" || r.header.Get(NextPageHeader) == "" {
		t.Errorf("limit=1: %s, %s %q, next %q", got, TotalCountHeader, r.header.Get(TotalCountHeader), r.header.Get(NextPageHeader))
	}
	// The Go client.
	c, err := NewClient(e.srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	hp, info, err := c.ListHostsPage(context.Background(), "vpc-a", Page{Limit: 2, VSwitch: "vsw-b", Query: "10.10.20.10"})
	if err != nil || len(hp) != 2 || hp[0].Name != "b00" || hp[1].Name != "b01" || info.Next == "" || info.Total != 10 {
		t.Errorf("ListHostsPage: %+v, %+v, %v", hp, info, err)
	}
	sp, info, err := c.ListSubnetsPage(context.Background(), "vpc-a", Page{Host: "b02", Query: "172"})
	if err != nil || len(sp) != 1 || sp[0].Name != "172.19.2.0-24" || info.Next != "" || info.Total != 1 {
		t.Errorf("ListSubnetsPage: %+v, %+v, %v", sp, info, err)
	}
	if _, info, err := c.ListSubnetsPage(context.Background(), "vpc-a", Page{VSwitch: "vsw-a"}); err == nil || !strings.Contains(err.Error(), "vswitch") || info.Total != -1 {
		t.Errorf("ListSubnetsPage by vSwitch: %v, %+v", err, info)
	}
	// Hosts still say where they are attached.
	hs := decode[[]HostInfo](t, e.must(200, "GET", "/v1/vpcs/vpc-a/hosts?q=b00", ""))
	if len(hs) != 1 || hs[0].IP.String() != "10.10.20.100" || hs[0].Attachment.State == "" {
		t.Errorf("q=b00: %+v", hs)
	}
}

// TestListFiltersWithPaging: a filtered list walked page by page is the
// filtered list, whatever the page size; the Link of the next page keeps
// the filters; a token stays good while hosts come and go.
func TestListFiltersWithPaging(t *testing.T) {
	e := filterEnv(t)
	for _, c := range []struct{ path, want string }{
		{"/v1/vpcs/vpc-a/hosts?vswitch=vsw-b&q=10.10.20.10", "b00,b01,b02,b03,b04,b05,b06,b07,b08,b09"},
		{"/v1/vpcs/vpc-a/hosts?vswitch=vsw-b", "b00,b01,b02,b03,b04,b05,b06,b07,b08,b09,b10,b11"},
		{"/v1/vpcs/vpc-a/hosts?q=11", "b10,b11,test1"}, // by IP, name and IP, IP
		{"/v1/vpcs/vpc-a/subnets?q=172.19", "172.19.0.0-24,172.19.1.0-24,172.19.2.0-24,172.19.3.0-24"},
	} {
		for _, n := range []int{1, 2, 3, 4, 100} {
			got, pages := e.walk(c.path, n, "name")
			if strings.Join(got, ",") != c.want {
				t.Errorf("%s limit %d: %s, want %s", c.path, n, strings.Join(got, ","), c.want)
			}
			if want := max(1, (len(got)+n-1)/n); pages != want {
				t.Errorf("%s limit %d: %d pages, want %d", c.path, n, pages, want)
			}
		}
	}
	r := e.must(200, "GET", "/v1/vpcs/vpc-a/hosts?vswitch=vsw-b&q=10.10.20.10&limit=3", "")
	if got := names(t, r.body); got != "b00,b01,b02" {
		t.Fatalf("first page %s", got)
	}
	link := r.header.Get("Link")
	if !strings.Contains(link, "vswitch=vsw-b") || !strings.Contains(link, "q=10.10.20.10") || !strings.Contains(link, "limit=3") {
		t.Errorf("Link %q does not keep the filters", link)
	}
	// Between two pages: one that matched is deleted before the token
	// and one after it, one that matches is created before it.
	e.must(204, "DELETE", "/v1/vpcs/vpc-a/hosts/b01?cascade=true", "")
	e.must(204, "DELETE", "/v1/vpcs/vpc-a/hosts/b04", "")
	e.must(201, "POST", "/v1/vpcs/vpc-a/hosts", `{"name":"b00z","vswitch":"vsw-b","ip":"10.10.20.10","mac":"02:00:00:00:20:fe","dpid":"1","ofport":200}`)
	r = e.must(200, "GET", "/v1/vpcs/vpc-a/hosts?vswitch=vsw-b&q=10.10.20.10&limit=3&page_token="+url.QueryEscape(r.header.Get(NextPageHeader)), "")
	if got := names(t, r.body); got != "b03,b05,b06" || r.header.Get(TotalCountHeader) != "9" {
		t.Errorf("second page %s, %s %q", got, TotalCountHeader, r.header.Get(TotalCountHeader))
	}
	// A token from before lists in a VPC were keyed by name ("VPC/NAME")
	// goes on where it was.
	r = e.must(200, "GET", "/v1/vpcs/vpc-a/hosts?vswitch=vsw-b&limit=2&page_token="+encodePageToken("vpc-a/b06"), "")
	if got := names(t, r.body); got != "b07,b08" {
		t.Errorf("after an old token: %s", got)
	}
}

// TestListFilterErrors: a filter that is given twice, empty, too long,
// not a name, or on a list that does not take it is a 400 naming it; a
// vSwitch or host that does not exist is a 404 naming it.
func TestListFilterErrors(t *testing.T) {
	e := filterEnv(t)
	long := strings.Repeat("a", 64)
	for _, c := range []struct {
		path   string
		status int
		field  string
	}{
		{"/v1/vpcs/vpc-a/hosts?vswitch=nope", 404, "vswitch"},
		{"/v1/vpcs/vpc-z/hosts?vswitch=vsw-a", 404, "vswitch"}, // vsw-a is vpc-a's
		{"/v1/vpcs/nope/hosts?vswitch=vsw-a", 404, "vpc"},
		{"/v1/vpcs/vpc-a/hosts?vswitch=vsw-a&vswitch=vsw-b", 400, "vswitch"},
		{"/v1/vpcs/vpc-a/hosts?vswitch=", 400, "vswitch"},
		{"/v1/vpcs/vpc-a/hosts?vswitch=" + long, 400, "vswitch"},
		{"/v1/vpcs/vpc-a/hosts?vswitch=a%2Fb", 400, "vswitch"},
		{"/v1/vpcs/vpc-a/hosts?q=a&q=b", 400, "q"},
		{"/v1/vpcs/vpc-a/hosts?q=", 400, "q"},
		{"/v1/vpcs/vpc-a/hosts?q=" + long, 400, "q"},
		{"/v1/vpcs/vpc-a/hosts?host=test1", 400, "host"},
		{"/v1/vpcs/vpc-a/subnets?host=nope", 404, "host"},
		{"/v1/vpcs/vpc-a/subnets?host=b99", 404, "host"}, // vpc-z's
		{"/v1/vpcs/vpc-a/subnets?host=", 400, "host"},
		{"/v1/vpcs/vpc-a/subnets?vswitch=vsw-a", 400, "vswitch"},
		{"/v1/vpcs/vpc-a/subnets?q=", 400, "q"},
		{"/v1/vpcs?q=vpc", 400, "q"},
		{"/v1/vpcs/vpc-a/vswitches?q=vsw", 400, "q"},
		{"/v1/chassis?host=x", 400, "host"},
		{"/v1/vpcs/vpc-a/hosts?q=x&limit=0", 400, "limit"},
	} {
		r := e.must(c.status, "GET", c.path, "")
		if got := r.err(); got.Field != c.field || got.Error == "" {
			t.Errorf("%s: %s, want field %q", c.path, r.body, c.field)
		}
	}
	if r := e.must(404, "GET", "/v1/vpcs/vpc-a/hosts?vswitch=nope", ""); !strings.Contains(r.err().Error, `vSwitch "nope" does not exist in VPC "vpc-a"`) {
		t.Errorf("vswitch=nope: %s", r.body)
	}
	// Exactly the longest accepted.
	e.must(200, "GET", "/v1/vpcs/vpc-a/hosts?q="+long[:MaxQueryLen], "")
}

// TestHostPageCopiesOnlyThePage: a page of 50 hosts out of 10,000 (all of
// one vSwitch), with or without a text filter matching all of them, is
// found without copying the others: the allocations do not grow with the
// list.
func TestHostPageCopiesOnlyThePage(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 hosts")
	}
	st, err := topology.Open(context.Background(), t.TempDir(), zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	const n = 10000
	ops := []topology.Op{
		topology.Create(&topology.VPC{Name: "vpc-a"}),
		topology.Create(&topology.VSwitch{VPC: "vpc-a", Name: "vsw-a", CIDR: netip.MustParsePrefix("10.1.0.0/16")}),
		topology.Create(&topology.VSwitch{VPC: "vpc-a", Name: "vsw-b", CIDR: netip.MustParsePrefix("10.2.0.0/16")}),
	}
	for i := range n {
		ops = append(ops, topology.Create(&topology.Host{VPC: "vpc-a", Name: fmt.Sprintf("h%05d", n-i), VSwitch: "vsw-a",
			IP: netip.MustParseAddr(fmt.Sprintf("10.1.%d.%d", i/200, 10+i%200)), MAC: topology.MAC{2, 0, 0, 1, byte(i >> 8), byte(i)},
			DPID: 1, OFPort: uint32(10 + i)}))
	}
	if _, err := st.Apply(context.Background(), ops); err != nil {
		t.Fatal(err)
	}
	rs := hostResource()
	v := map[string]string{"vpc": "vpc-a"}
	for _, c := range []struct {
		name  string
		f     listFilter
		after string
		first string
		total int
	}{
		{"whole VPC", listFilter{}, "", "h00001", n},
		{"vSwitch", listFilter{vswitch: "vsw-a"}, "", "h00001", n},
		{"vSwitch, q", listFilter{vswitch: "vsw-a", q: "10.1."}, "", "h00001", n},
		{"q, page 3", listFilter{q: "02:00:00:01"}, "h00100", "h00101", n},
		{"empty vSwitch", listFilter{vswitch: "vsw-b"}, "", "", 0},
	} {
		var allocs float64
		st.Read(func(s *topology.State) {
			items, total, last, err := rs.page(s, v, c.f, pageQuery{limit: 50, after: c.after})
			hosts := items.([]topology.Host)
			if err != nil || total != c.total || (c.total > 0 && (len(hosts) != 50 || hosts[0].Name != c.first || last != hosts[49].Name)) {
				t.Errorf("%s: %d hosts, total %d, last %q, %v", c.name, len(hosts), total, last, err)
			}
			allocs = testing.AllocsPerRun(3, func() { _, _, _, _ = rs.page(s, v, c.f, pageQuery{limit: 50, after: c.after}) })
		})
		t.Logf("%s: %.0f allocations", c.name, allocs)
		// 50 hosts: the page's pointers, its copies and their MACs.
		if allocs > 200 {
			t.Errorf("%s: %.0f allocations for a page of 50 out of %d hosts", c.name, allocs, n)
		}
	}
}
