package api

import (
	"context"
	"net/netip"
	"testing"

	"github.com/vpcflow/vpcflow/topology"
)

// TestDHCPOptionsResource: create, one per VPC, get, list, replace by
// PUT, field errors, delete, and the VPC's cascade takes it along.
func TestDHCPOptionsResource(t *testing.T) {
	e := newEnv(t, Options{})
	e.must(201, "POST", "/v1/vpcs", `{"name":"vpc-a"}`)
	r := e.must(201, "POST", "/v1/vpcs/vpc-a/dhcp-options",
		`{"name":"dopt-1","domain_name":"corp.example","dns_servers":["100.100.2.136","100.100.2.138"],"static_routes":[{"cidr":"192.168.0.0/16","next_hop":"10.10.10.254"}]}`)
	if loc := r.header.Get("Location"); loc != "/v1/vpcs/vpc-a/dhcp-options/dopt-1" {
		t.Errorf("Location %q", loc)
	}
	d := decode[topology.DHCPOptions](t, r)
	if d.ID == 0 || d.DomainName != "corp.example" || len(d.DNSServers) != 2 || d.DNSServers[1] != netip.MustParseAddr("100.100.2.138") ||
		len(d.StaticRoutes) != 1 || d.Lease().Hours() != 24 {
		t.Errorf("created %+v", d)
	}
	// One per VPC.
	r = e.must(409, "POST", "/v1/vpcs/vpc-a/dhcp-options", `{"name":"dopt-2"}`)
	if r.err().Field != "vpc" {
		t.Errorf("second set: %+v", r.err())
	}
	for body, field := range map[string]string{
		`{"name":"x","dns_servers":["1.1.1.1","1.1.1.2","1.1.1.3","1.1.1.4","1.1.1.5"]}`: "dns_servers",
		`{"name":"x","dns_servers":["not-an-ip"]}`:                                       "dns_servers[0]",
		`{"name":"x","dns_servers":["::1"]}`:                                             "dns_servers[0]",
		`{"name":"x","dns_servers":["8.8.8.8","8.8.8.8"]}`:                               "dns_servers[1]",
		`{"name":"x","domain_name":"bad_domain"}`:                                        "domain_name",
		`{"name":"x","domain_name":"-a.example"}`:                                        "domain_name",
		`{"name":"x","lease_time":10}`:                                                   "lease_time",
		`{"name":"x","static_routes":[{"cidr":"10.0.0.1/8","next_hop":"10.0.0.1"}]}`:     "static_routes[0].cidr",
		`{"name":"x","static_routes":[{"cidr":"10.0.0.0/8"}]}`:                           "static_routes[0].next_hop",
		`{"name":"x","dns":["8.8.8.8"]}`:                                                 "dns",
	} {
		e.must(201, "POST", "/v1/vpcs", `{"name":"vpc-x"}`)
		r := e.do("POST", "/v1/vpcs/vpc-x/dhcp-options", body)
		if r.status != 400 || r.err().Field != field {
			t.Errorf("%s: status %d field %q, want 400 on %q: %s", body, r.status, r.err().Field, field, r.body)
		}
		e.must(204, "DELETE", "/v1/vpcs/vpc-x?cascade=true", "")
	}
	// PUT replaces.
	r = e.must(200, "PUT", "/v1/vpcs/vpc-a/dhcp-options/dopt-1", `{"dns_servers":["10.0.0.53"],"lease_time":3600}`)
	d = decode[topology.DHCPOptions](t, r)
	if d.DomainName != "" || len(d.DNSServers) != 1 || d.LeaseTime != 3600 || d.ID == 0 {
		t.Errorf("after PUT %+v", d)
	}
	e.must(400, "PUT", "/v1/vpcs/vpc-a/dhcp-options/dopt-1", `{"name":"other"}`)
	if got := decode[[]topology.DHCPOptions](t, e.must(200, "GET", "/v1/vpcs/vpc-a/dhcp-options", "")); len(got) != 1 {
		t.Errorf("list %+v", got)
	}
	// The client.
	cl, err := NewClient(e.srv.URL, e.srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	got, err := cl.GetDHCPOptions(context.Background(), "vpc-a", "dopt-1")
	if err != nil || got.LeaseTime != 3600 {
		t.Errorf("client get: %+v %v", got, err)
	}
	// A VPC with a DHCP options set is deleted only with --cascade.
	e.must(409, "DELETE", "/v1/vpcs/vpc-a", "")
	e.must(204, "DELETE", "/v1/vpcs/vpc-a?cascade=true", "")
	e.must(404, "GET", "/v1/vpcs/vpc-a/dhcp-options/dopt-1", "")
}
