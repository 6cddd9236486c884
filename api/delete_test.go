package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/topology"
)

// owners lists the objects that own flows the controller wants on dpid 1,
// as "host 1", "subnet 2", sorted.
func (e *testEnv) owners() string {
	e.t.Helper()
	var out []string
	for _, f := range e.ctrl.DesiredFlows(1) {
		ck := pipeline.ParseCookie(f.Cookie)
		if ck.Owner == pipeline.OwnerPipeline {
			continue
		}
		out = append(out, fmt.Sprintf("%s %d", ck.Owner, ck.ID))
	}
	sort.Strings(out)
	// Each object owns several flows.
	uniq := out[:0]
	for i, o := range out {
		if i == 0 || o != out[i-1] {
			uniq = append(uniq, o)
		}
	}
	return strings.Join(uniq, ",")
}

// names lists the names of a VPC's objects of one kind.
func (e *testEnv) names(kind, vpc string) string {
	e.t.Helper()
	r := e.do("GET", "/v1/vpcs/"+vpc+"/"+kind, "")
	if r.status == 404 {
		return "gone"
	}
	var objs []struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(r.body, &objs); err != nil {
		e.t.Fatalf("GET %s: %v %s", kind, err, r.body)
	}
	var out []string
	for _, o := range objs {
		out = append(out, o.Name)
	}
	return strings.Join(out, ",")
}

// seedMore adds vSwitch vsw-b with host test3 (dpid 1 port 7) and its
// subnet 172.18.7.0/24 to the seed.
func (e *testEnv) seedMore() {
	e.t.Helper()
	e.seed()
	e.must(201, "POST", "/v1/vpcs/vpc-a/vswitches", `{"name":"vsw-b","cidr":"10.20.0.0/24"}`)
	e.must(201, "POST", "/v1/vpcs/vpc-a/hosts", `{"name":"test3","vswitch":"vsw-b","ip":"10.20.0.3","mac":"02:00:00:00:00:03","dpid":"1","ofport":7}`)
	e.must(201, "POST", "/v1/vpcs/vpc-a/subnets", `{"cidr":"172.18.7.0/24","host":"test3"}`)
}

func TestCascadeDeletes(t *testing.T) {
	e := newEnv(t, Options{})
	e.seedMore()
	if got := e.owners(); got != "host 1,host 2,host 3,subnet 1,subnet 2,subnet 3,vswitch 1,vswitch 2" {
		t.Fatalf("flows before: %s", got)
	}

	// Without cascade: 409, naming what is in use and the way out.
	for _, c := range []struct{ path, msg string }{
		{"/v1/vpcs/vpc-a", `VPC "vpc-a" is still used by 2 vSwitches (vsw-a, vsw-b), 3 hosts (test1, test2, test3) and 3 subnets (172.18.1.0-24, 172.18.3.0-24, 172.18.7.0-24); delete them first (use ?cascade=true to delete them too)`},
		{"/v1/vpcs/vpc-a?cascade=false", "(use ?cascade=true to delete them too)"},
		{"/v1/vpcs/vpc-a/vswitches/vsw-a", `vSwitch "vsw-a" is still used by 2 hosts (test1, test2); delete them first (use ?cascade=true to delete them too)`},
		{"/v1/vpcs/vpc-a/hosts/test1", `host "test1" is still used by 1 subnet (172.18.1.0-24); delete them first (use ?cascade=true to delete them too)`},
	} {
		before := e.dump()
		r := e.must(409, "DELETE", c.path, "")
		if eb := r.err(); eb.Field != "name" || !strings.Contains(eb.Error, c.msg) {
			t.Fatalf("DELETE %s: %s, want ~%q", c.path, r.body, c.msg)
		}
		if e.dump() != before {
			t.Fatalf("DELETE %s changed the store", c.path)
		}
	}

	// A host takes its subnets with it, and their flows go too.
	e.must(204, "DELETE", "/v1/vpcs/vpc-a/hosts/test1?cascade=true", "")
	if got := e.names("hosts", "vpc-a") + " / " + e.names("subnets", "vpc-a"); got != "test2,test3 / 172.18.3.0-24,172.18.7.0-24" {
		t.Fatalf("after host cascade: %s", got)
	}
	if got := e.owners(); got != "host 2,host 3,subnet 2,subnet 3,vswitch 1,vswitch 2" {
		t.Fatalf("flows after host cascade: %s", got)
	}
	// A subnet accepts cascade and has nothing to take along.
	e.must(204, "DELETE", "/v1/vpcs/vpc-a/subnets/172.18.3.0-24?cascade=true", "")
	e.must(201, "POST", "/v1/vpcs/vpc-a/subnets", `{"cidr":"172.18.3.0/24","host":"test2"}`)
	// A vSwitch takes its hosts and their subnets; the other vSwitch stays.
	e.must(204, "DELETE", "/v1/vpcs/vpc-a/vswitches/vsw-a?cascade=true", "")
	if got := e.names("vswitches", "vpc-a") + " / " + e.names("hosts", "vpc-a") + " / " + e.names("subnets", "vpc-a"); got != "vsw-b / test3 / 172.18.7.0-24" {
		t.Fatalf("after vSwitch cascade: %s", got)
	}
	if got := e.owners(); got != "host 3,subnet 3,vswitch 2" {
		t.Fatalf("flows after vSwitch cascade: %s", got)
	}
	// A VPC takes everything.
	e.must(204, "DELETE", "/v1/vpcs/vpc-a?cascade=true", "")
	e.must(404, "GET", "/v1/vpcs/vpc-a", "")
	if got := e.owners(); got != "" {
		t.Fatalf("flows after VPC cascade: %s", got)
	}
	if got := e.dump(); got != "null" {
		t.Fatalf("store after VPC cascade: %s", got)
	}
	// Unknown objects are still 404 with cascade.
	e.must(404, "DELETE", "/v1/vpcs/vpc-a?cascade=true", "")
	e.must(404, "DELETE", "/v1/vpcs/vpc-a/hosts/test3?cascade=true", "")

	// Everything can be registered again (new IDs).
	e.seed()
	if got := e.owners(); got != "host 4,host 5,subnet 5,subnet 6,vswitch 3" {
		t.Fatalf("flows after re-seeding: %s", got)
	}
}

func TestCascadeParam(t *testing.T) {
	e := newEnv(t, Options{})
	e.seed()
	paths := []string{
		"/v1/vpcs/vpc-a",
		"/v1/vpcs/vpc-a/vswitches/vsw-a",
		"/v1/vpcs/vpc-a/hosts/test1",
		"/v1/vpcs/vpc-a/subnets/172.18.1.0-24",
	}
	for _, p := range paths {
		for _, q := range []string{"cascade=yes", "cascade=1", "cascade=TRUE", "cascade=", "cascade", "cascade=true&cascade=true"} {
			before := e.dump()
			r := e.must(400, "DELETE", p+"?"+q, "")
			if eb := r.err(); eb.Field != "cascade" || eb.Error == "" {
				t.Errorf("DELETE %s?%s: %s", p, q, r.body)
			}
			if e.dump() != before {
				t.Fatalf("DELETE %s?%s changed the store", p, q)
			}
		}
	}
	// Other parameters are ignored, as before.
	e.must(204, "DELETE", "/v1/vpcs/vpc-a/subnets/172.18.1.0-24?cascade=false&pretty=1", "")
}

func TestClientCascade(t *testing.T) {
	e := newEnv(t, Options{})
	e.seedMore()
	ctx := context.Background()
	c, err := NewClient(e.srv.URL, e.srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	var ae *Error
	if err := c.DeleteHost(ctx, "vpc-a", "test1", Cascade(false)); !errors.As(err, &ae) || ae.Status != 409 {
		t.Fatalf("DeleteHost without cascade: %v", err)
	}
	if err := c.DeleteHost(ctx, "vpc-a", "test1", Cascade(true)); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteVSwitch(ctx, "vpc-a", "vsw-b"); !errors.As(err, &ae) || ae.Status != 409 || !strings.Contains(ae.Msg, "cascade") {
		t.Fatalf("DeleteVSwitch without cascade: %v", err)
	}
	if err := c.DeleteVSwitch(ctx, "vpc-a", "vsw-b", Cascade(true)); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteVPC(ctx, "vpc-a", Cascade(true)); err != nil {
		t.Fatal(err)
	}
	if l, err := c.ListVPCs(ctx); err != nil || len(l) != 0 {
		t.Fatalf("ListVPCs: %+v %v", l, err)
	}
	e.store.Read(func(st *topology.State) {
		if v, w, h, s := st.Counts(); v+w+h+s != 0 {
			t.Errorf("left: %d %d %d %d", v, w, h, s)
		}
	})
}
