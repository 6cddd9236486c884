package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// named is a page of a list as its items' names (their keys' last part:
// "VPC/NAME" or "NAME").
func named[T any, P interface {
	*T
	Key() string
}](items []T, info PageInfo, err error) ([]string, PageInfo, error) {
	var names []string
	for i := range items {
		k := P(&items[i]).Key()
		names = append(names, k[strings.LastIndex(k, "/")+1:])
	}
	return names, info, err
}

// TestClientPageTotal: a *Page call's PageInfo.Total is the number of
// items its filters keep, every page together: walked page by page with
// the Go client, whatever the page size, every page says the same Total
// and it is the number of items walked (and the number the filtered list
// has, asked whole).
func TestClientPageTotal(t *testing.T) {
	e := filterEnv(t)
	c, err := NewClient(e.srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	type lister func(pg Page) ([]string, PageInfo, error)
	hosts := func(vpc string) lister {
		return func(pg Page) ([]string, PageInfo, error) {
			return named(c.ListHostsPage(ctx, vpc, pg))
		}
	}
	subnets := func(pg Page) ([]string, PageInfo, error) { return named(c.ListSubnetsPage(ctx, "vpc-a", pg)) }
	vpcs := func(pg Page) ([]string, PageInfo, error) { return named(c.ListVPCsPage(ctx, pg)) }
	vswitches := func(pg Page) ([]string, PageInfo, error) { return named(c.ListVSwitchesPage(ctx, "vpc-a", pg)) }
	for _, tc := range []struct {
		what string
		list lister
		pg   Page
		want string
	}{
		{"hosts of vsw-b with 10.10.20.10", hosts("vpc-a"), Page{VSwitch: "vsw-b", Query: "10.10.20.10"}, "b00,b01,b02,b03,b04,b05,b06,b07,b08,b09"},
		{"hosts with 11", hosts("vpc-a"), Page{Query: "11"}, "b10,b11,test1"},
		{"hosts of vsw-a", hosts("vpc-a"), Page{VSwitch: "vsw-a"}, "test1,test2"},
		{"hosts of vpc-z's vsw-b", hosts("vpc-z"), Page{VSwitch: "vsw-b"}, "b99"},
		{"hosts matching nothing", hosts("vpc-a"), Page{Query: "nothing-has-this"}, ""},
		{"every host", hosts("vpc-a"), Page{}, "b00,b01,b02,b03,b04,b05,b06,b07,b08,b09,b10,b11,test1,test2"},
		{"route entries to b02", subnets, Page{Host: "b02"}, "172.19.2.0-24"},
		{"route entries with 172.19", subnets, Page{Query: "172.19"}, "172.19.0.0-24,172.19.1.0-24,172.19.2.0-24,172.19.3.0-24"},
		{"VPCs", vpcs, Page{}, "vpc-a,vpc-z"},
		{"vSwitches", vswitches, Page{}, "vsw-a,vsw-b"},
	} {
		whole, info, err := tc.list(tc.pg)
		if err != nil || strings.Join(whole, ",") != tc.want || info.Total != len(whole) || info.Next != "" {
			t.Errorf("%s, whole: %v, %+v, %v; want %s", tc.what, whole, info, err, tc.want)
			continue
		}
		for _, n := range []int{1, 3, 100} {
			pg := tc.pg
			pg.Limit = n
			var walked []string
			total := -2
			for pages := 1; ; pages++ {
				items, info, err := tc.list(pg)
				if err != nil {
					t.Fatalf("%s, limit %d, page %d: %v", tc.what, n, pages, err)
				}
				if pages == 1 {
					total = info.Total
				} else if info.Total != total {
					t.Errorf("%s, limit %d: Total %d on page %d, %d on the first", tc.what, n, info.Total, pages, total)
				}
				walked = append(walked, items...)
				if info.Next == "" {
					break
				}
				if pages > 100 {
					t.Fatalf("%s, limit %d: the pages never end", tc.what, n)
				}
				pg.Token = info.Next
			}
			if strings.Join(walked, ",") != tc.want || total != len(walked) {
				t.Errorf("%s, limit %d: Total %d, %d walked (%v), want %s", tc.what, n, total, len(walked), walked, tc.want)
			}
		}
	}
}

// TestClientPageTotalUnknown: an answer without X-Total-Count, or with
// anything but a whole number of 0 or more in it, gives Total -1; an
// error gives Total -1 too; the next token is read either way.
func TestClientPageTotalUnknown(t *testing.T) {
	header := ""
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/vpcs" {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"error":"no such thing"}`)
			return
		}
		if header != "" {
			w.Header().Set(TotalCountHeader, header)
		}
		w.Header().Set(NextPageHeader, "tok")
		fmt.Fprint(w, `[{"name":"vpc-a"}]`)
	}))
	defer srv.Close()
	c, err := NewClient(srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	for h, want := range map[string]int{"": -1, "x": -1, "-3": -1, "1.5": -1, "0": 0, "7": 7, "100000": 100000} {
		header = h
		vs, info, err := c.ListVPCsPage(context.Background(), Page{Limit: 1})
		if err != nil || len(vs) != 1 || info.Total != want || info.Next != "tok" {
			t.Errorf("%s %q: %+v %v, want Total %d", TotalCountHeader, header, info, err, want)
		}
	}
	if _, info, err := c.ListChassisPage(context.Background(), Page{}); err == nil || info.Total != -1 || info.Next != "" {
		t.Errorf("an error: %+v %v", info, err)
	}
}
