package api

import (
	"strings"
	"testing"
)

// TestValidationTable is issue 10's table at the API: reserved ranges as
// vSwitch CIDRs, host addresses and route entries, the same MAC twice in
// a VPC, and JSON keys that encoding/json would take case-insensitively
// or twice: each a 4xx naming the field, and nothing stored.
func TestValidationTable(t *testing.T) {
	e := newEnv(t, Options{})
	e.seed()
	// vpc-r has no CIDR, so a vSwitch's range is checked on its own.
	e.must(201, "POST", "/v1/vpcs", `{"name":"vpc-r"}`)
	host := func(ip string) string {
		return `{"name":"h9","vswitch":"vsw-a","ip":"` + ip + `","mac":"02:00:00:00:00:29","dpid":"1","ofport":29}`
	}
	type tc struct {
		name, method, path, body string
		status                   int
		field, msg               string
	}
	var cases []tc
	for _, r := range []struct{ what, cidr, ip, msg string }{
		{"multicast", "224.0.0.0/24", "224.0.0.5", "multicast"},
		{"multicast high", "239.255.0.0/16", "239.255.255.250", "multicast"},
		{"loopback", "127.0.0.0/24", "127.0.0.1", "loopback"},
		{"link-local", "169.254.0.0/24", "169.254.169.254", "link-local"},
		{"this network", "0.0.0.0/24", "0.0.0.7", "this network"},
		{"reserved", "240.0.0.0/24", "240.0.0.9", "reserved"},
		{"broadcast", "255.255.255.248/29", "255.255.255.255", "broadcast"},
	} {
		cases = append(cases,
			tc{r.what + " vSwitch", "POST", "/v1/vpcs/vpc-r/vswitches", `{"name":"w","cidr":"` + r.cidr + `"}`, 400, "cidr", r.msg},
			// A host's address must be inside its vSwitch, which cannot
			// be in a reserved range: that is the reason given.
			tc{r.what + " host", "POST", "/v1/vpcs/vpc-a/hosts", host(r.ip), 400, "ip", "is not inside vSwitch"},
			tc{r.what + " route entry", "POST", "/v1/vpcs/vpc-a/subnets", `{"cidr":"` + r.cidr + `","host":"test1"}`, 400, "cidr", r.msg},
			tc{r.what + " host route", "POST", "/v1/vpcs/vpc-a/subnets", `{"cidr":"` + r.ip + `/32","host":"test1"}`, 400, "cidr", r.msg},
		)
	}
	cases = append(cases,
		tc{"same MAC twice in a VPC", "POST", "/v1/vpcs/vpc-a/hosts",
			`{"name":"h9","vswitch":"vsw-a","ip":"10.10.10.29","mac":"52:58:00:98:c0:81","dpid":"1","ofport":29}`, 409, "mac", `already used by host "test1"`},
		tc{"same MAC in any case", "POST", "/v1/vpcs/vpc-a/hosts",
			`{"name":"h9","vswitch":"vsw-a","ip":"10.10.10.29","mac":"52:58:00:98:C0:81","dpid":"1","ofport":29}`, 409, "mac", `already used by host "test1"`},
		tc{"same MAC twice in a batch", "POST", "/v1/vpcs/vpc-a/hosts",
			`[{"name":"h8","vswitch":"vsw-a","ip":"10.10.10.28","mac":"02:00:00:00:00:28","dpid":"1","ofport":28},` +
				`{"name":"h9","vswitch":"vsw-a","ip":"10.10.10.29","mac":"02:00:00:00:00:28","dpid":"1","ofport":29}]`, 409, "[1].mac", `already used by host "h8"`},
		tc{"same MAC by PUT", "PUT", "/v1/vpcs/vpc-a/hosts/test2", `{"mac":"52:58:00:98:c0:81"}`, 409, "mac", `already used by host "test1"`},
		tc{"key in another case", "POST", "/v1/vpcs/vpc-a/subnets", `{"cidr":"172.18.9.0/24","Host":"test2"}`, 400, "Host", `did you mean "host"`},
		tc{"key twice in two cases", "POST", "/v1/vpcs/vpc-a/subnets", `{"cidr":"172.18.9.0/24","host":"test1","Host":"test2"}`, 400, "Host", `did you mean "host"`},
		tc{"key twice", "POST", "/v1/vpcs/vpc-a/subnets", `{"cidr":"172.18.9.0/24","host":"test1","host":"test2"}`, 400, "host", "given twice"},
		tc{"key twice in a VPC", "POST", "/v1/vpcs", `{"name":"a","name":"b"}`, 400, "name", "given twice"},
		tc{"upper-case name", "POST", "/v1/vpcs", `{"NAME":"a"}`, 400, "NAME", `did you mean "name"`},
		tc{"key twice in a batch element", "POST", "/v1/vpcs/vpc-a/hosts",
			`[{"name":"h9","vswitch":"vsw-a","ip":"10.10.10.29","mac":"02:00:00:00:00:29","dpid":"1","ofport":29,"ofport":30}]`, 400, "[0].ofport", "given twice"},
		tc{"escaped key twice", "POST", "/v1/vpcs", `{"name":"a","n\u0061me":"b"}`, 400, "name", "given twice"},
		tc{"key twice in a PUT", "PUT", "/v1/vpcs/vpc-a/hosts/test1", `{"mac":"52:58:00:98:c0:99","mac":"52:58:00:98:c0:98"}`, 400, "mac", "given twice"},
		tc{"case-folded key in a PUT", "PUT", "/v1/vpcs/vpc-a/subnets/172.18.1.0-24", `{"HOST":"test2"}`, 400, "HOST", `did you mean "host"`},
		tc{"key twice in a chassis", "POST", "/v1/chassis", `{"name":"n","name":"m","ovsdb":"tcp:192.0.2.1:6640","bridge":"br","tunnel_ip":"192.0.2.1"}`, 400, "name", "given twice"},
		tc{"key twice inside a value", "POST", "/v1/vpcs", `{"name":"a","cidr":{"x":1,"x":2}}`, 400, "cidr.x", "given twice"},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.dump()
			r := e.do(c.method, c.path, c.body)
			eb := r.err()
			if r.status != c.status || eb.Field != c.field || !strings.Contains(eb.Error, c.msg) {
				t.Fatalf("got %d %s\nwant %d field %q msg ~%q", r.status, r.body, c.status, c.field, c.msg)
			}
			if e.dump() != before {
				t.Fatal("the store changed")
			}
		})
	}
	// What is still accepted: 0.0.0.0/0 (contains the reserved ranges)
	// and a key given once in its own case.
	e.must(201, "POST", "/v1/vpcs/vpc-a/subnets", `{"cidr":"0.0.0.0/0","host":"test1"}`)
	e.must(201, "POST", "/v1/vpcs/vpc-r/vswitches", `{"name":"w","cidr":"192.168.0.0/24"}`)
}
