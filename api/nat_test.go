package api

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/vpcflow/vpcflow/topology"
)

// dumpNAT is every NAT object, to check that a refused request changed
// nothing.
func dumpNAT(st *topology.Store) string {
	var all []any
	st.Read(func(st *topology.State) {
		all = append(all, st.AllUplinks())
		for _, v := range st.VPCs() {
			all = append(all, st.NATGateways(v.Name), st.SNATEntries(v.Name), st.DNATEntries(v.Name), st.EIPs(v.Name))
		}
	})
	out, _ := json.Marshal(all)
	return string(out)
}

// TestNATRoutes: uplinks, NAT gateways, SNAT and DNAT entries and EIPs over
// REST; every bad request is a 4xx naming the field and changes nothing.
func TestNATRoutes(t *testing.T) {
	e := newEnv(t, Options{})
	e.seed()
	r := e.must(201, "POST", "/v1/uplinks", `{"name":"up1","bridge":"br-test","interface":"eth-up","cidr":"203.0.113.0/24","gateway":"203.0.113.1"}`)
	if u := decode[topology.Uplink](t, r); u.MAC.String() != topology.DefaultUplinkMAC("up1").String() || r.header.Get("Location") != "/v1/uplinks/up1" {
		t.Fatalf("uplink %s (Location %s)", r.body, r.header.Get("Location"))
	}
	e.must(201, "POST", "/v1/vpcs/vpc-a/nat-gateways", `{"name":"ngw","uplink":"up1","ips":["203.0.113.11","203.0.113.10"]}`)
	// An entry naming no gateway belongs to the VPC's.
	r = e.must(201, "POST", "/v1/vpcs/vpc-a/snat-entries", `[{"vswitch":"vsw-a","snat_ips":["203.0.113.10"]},{"host":"test1","snat_ips":["203.0.113.10","203.0.113.11"],"nat_gateway":"ngw"}]`)
	if strings.Count(string(r.body), `"nat_gateway":"ngw"`) != 2 {
		t.Fatalf("SNAT entries %s", r.body)
	}
	e.must(201, "POST", "/v1/vpcs/vpc-a/dnat-entries", `{"nat_gateway":"ngw","external_ip":"203.0.113.11","protocol":"TCP","external_port":"8000/8010","internal_ip":"10.10.10.11","internal_port":"8000/8010"}`)
	r = e.must(201, "POST", "/v1/vpcs/vpc-a/eips", `{"name":"eip1","ip":"203.0.113.20","uplink":"up1","host":"test2"}`)
	if ei := decode[topology.EIP](t, r); ei.Host != "test2" || ei.CTZone < topology.MinNATZone || !strings.Contains(string(r.body), `"aliyun_id":"eip-vf`) {
		t.Fatalf("EIP %s", r.body)
	}
	d := decode[topology.DNATEntry](t, e.must(200, "GET", "/v1/vpcs/vpc-a/dnat-entries/dnat-tcp-203.0.113.11-8000-8010", ""))
	if d.Protocol != "tcp" || d.ExternalPort != "8000/8010" {
		t.Fatalf("DNAT entry %+v", d)
	}
	u := e.must(200, "GET", "/v1/uplinks/up1", "")
	if !strings.Contains(string(u.body), `"addresses":[{"ip":"203.0.113.10","vpc":"vpc-a","nat_gateway":"ngw"},{"ip":"203.0.113.11","vpc":"vpc-a","nat_gateway":"ngw"},{"ip":"203.0.113.20","vpc":"vpc-a","eip":"eip1"}]`) {
		t.Fatalf("uplink detail %s", u.body)
	}

	before := dumpNAT(e.store)
	for _, c := range []struct {
		status       int
		method, path string
		body, field  string
	}{
		{400, "POST", "/v1/uplinks", `{"name":"u2","bridge":"br","interface":"x","cidr":"198.51.100.0/24","gateway":"nope"}`, "gateway"},
		{400, "POST", "/v1/uplinks", `{"name":"u2","bridge":"br","interface":"x","cidr":"198.51.100.0/24","gateway":"198.51.100.1","mac":"zz"}`, "mac"},
		{409, "POST", "/v1/uplinks", `{"name":"u2","bridge":"br","interface":"x","cidr":"203.0.113.128/25","gateway":"203.0.113.129"}`, "cidr"},
		{400, "POST", "/v1/uplinks", `{"name":"u2","bridge":"br","interface":"x","cidr":"198.51.100.0/24","gateway":"198.51.100.1","colour":"red"}`, "colour"},
		{409, "POST", "/v1/vpcs/vpc-a/nat-gateways", `{"name":"ngw2","uplink":"up1","ips":["203.0.113.30"]}`, "vpc"},
		{400, "POST", "/v1/vpcs/vpc-a/nat-gateways", `{"name":"ngw2","uplink":"up1","ips":["x"]}`, "ips[0]"},
		{409, "PUT", "/v1/vpcs/vpc-a/nat-gateways/ngw", `{"ips":["203.0.113.11"]}`, "ips"},
		{404, "POST", "/v1/vpcs/vpc-a/snat-entries", `{"nat_gateway":"nope","vswitch":"vsw-a","snat_ips":["203.0.113.10"]}`, "nat_gateway"},
		{400, "POST", "/v1/vpcs/vpc-a/snat-entries", `[{"nat_gateway":"ngw","source_cidr":"10.10.0.0/16","snat_ips":["203.0.113.10"]},{"nat_gateway":"ngw","source_cidr":"10.0.0.0/8","snat_ips":["203.0.113.20"]}]`, "[1].snat_ips[0]"},
		{409, "POST", "/v1/vpcs/vpc-a/dnat-entries", `{"nat_gateway":"ngw","external_ip":"203.0.113.11","protocol":"tcp","external_port":"8010","internal_ip":"10.10.10.13","internal_port":"80"}`, "external_port"},
		{400, "POST", "/v1/vpcs/vpc-a/dnat-entries", `{"nat_gateway":"ngw","external_ip":"203.0.113.11","protocol":"tcp","external_port":"90/99","internal_ip":"10.10.10.13","internal_port":"80"}`, "internal_port"},
		{409, "POST", "/v1/vpcs/vpc-a/dnat-entries", `{"nat_gateway":"ngw","external_ip":"203.0.113.10","protocol":"any","internal_ip":"10.10.10.12"}`, "internal_ip"},
		{409, "POST", "/v1/vpcs/vpc-a/eips", `{"name":"eip2","ip":"203.0.113.10","uplink":"up1"}`, "ip"},
		{400, "PUT", "/v1/vpcs/vpc-a/eips/eip1", `{"host":7}`, "host"},
		{409, "DELETE", "/v1/uplinks/up1", ``, "name"},
		{409, "DELETE", "/v1/vpcs/vpc-a/hosts/test2", ``, "name"},
	} {
		got := e.must(c.status, c.method, c.path, c.body)
		if f := got.err().Field; f != c.field {
			t.Errorf("%s %s %s: field %q, want %q (%s)", c.method, c.path, c.body, f, c.field, got.body)
		}
	}
	if after := dumpNAT(e.store); after != before {
		t.Fatalf("refused requests changed the store:\n%s\n%s", before, after)
	}

	// PUT: the router MAC by hand; the EIP unbound, then bound again.
	if u := decode[topology.Uplink](t, e.must(200, "PUT", "/v1/uplinks/up1", `{"router_mac":"52:54:00:00:00:01"}`)); u.RouterMAC.String() != "52:54:00:00:00:01" || u.Gateway.String() != "203.0.113.1" {
		t.Fatalf("uplink after PUT %+v", u)
	}
	if ei := decode[topology.EIP](t, e.must(200, "PUT", "/v1/vpcs/vpc-a/eips/eip1", `{"host":""}`)); ei.Host != "" {
		t.Fatalf("EIP not unbound: %+v", ei)
	}
	if ei := decode[topology.EIP](t, e.must(200, "PUT", "/v1/vpcs/vpc-a/eips/eip1", `{}`)); ei.Host != "" {
		t.Fatalf("a PUT without host bound it: %+v", ei)
	}
	if ei := decode[topology.EIP](t, e.must(200, "PUT", "/v1/vpcs/vpc-a/eips/eip1", `{"host":"test2"}`)); ei.Host != "test2" {
		t.Fatalf("EIP not bound: %+v", ei)
	}
	// The client.
	c, err := NewClient(e.srv.URL, e.srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if es, err := c.ListEIPs(ctx, "vpc-a"); err != nil || len(es) != 1 {
		t.Fatalf("ListEIPs = %v, %v", es, err)
	}
	if _, err := c.BindEIP(ctx, "vpc-a", "eip1", ""); err != nil {
		t.Fatal(err)
	}
	if d, err := c.GetUplink(ctx, "up1"); err != nil || len(d.Addresses) != 3 {
		t.Fatalf("GetUplink = %+v, %v", d, err)
	}
	if sn, err := c.ListSNATEntries(ctx, "vpc-a"); err != nil || len(sn) != 2 {
		t.Fatalf("ListSNATEntries = %v, %v", sn, err)
	}
	// Cascade: the uplink takes its gateway, the entries and the EIP.
	e.must(204, "DELETE", "/v1/uplinks/up1?cascade=true", "")
	if n := dumpNAT(e.store); n != `[[],[],[],[],[]]` {
		t.Fatalf("after the cascade: %s", n)
	}
}
