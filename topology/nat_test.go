package topology

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

// natOps adds to seedOps an uplink on br-test, a NAT gateway of vpc-a with
// three addresses, an SNAT entry for vsw-a and an EIP for test2.
func natOps() []Op {
	return append(seedOps(),
		Create(&Uplink{Name: "up1", Bridge: "br-test", Interface: "eth-up", CIDR: pfx("203.0.113.0/24"), Gateway: ip("203.0.113.1")}),
		Create(&NATGateway{VPC: "vpc-a", Name: "ngw", Uplink: "up1", IPs: []netip.Addr{ip("203.0.113.12"), ip("203.0.113.10"), ip("203.0.113.11")}}),
		Create(&SNATEntry{VPC: "vpc-a", NATGateway: "ngw", VSwitch: "vsw-a", SNATIPs: []netip.Addr{ip("203.0.113.10")}}),
		Create(&EIP{VPC: "vpc-a", Name: "eip1", IP: ip("203.0.113.20"), Uplink: "up1", Host: "test2"}),
	)
}

func natStore(t *testing.T) *Store {
	t.Helper()
	s := newStore(t)
	mustApply(t, s, natOps()...)
	return s
}

// wantErr applies ops and checks the error's kind, field and message.
func wantNATErr(t *testing.T, s *Store, kind ErrorKind, field, msg string, ops ...Op) {
	t.Helper()
	before := dump(s)
	_, err := s.Apply(context.Background(), ops)
	e, ok := AsError(err)
	if !ok {
		t.Fatalf("Apply = %v, want a %d error on %q", err, kind, field)
	}
	if e.Kind != kind || e.Field != field || !strings.Contains(e.Msg, msg) {
		t.Fatalf("Apply = %+v, want kind %d field %q message containing %q", e, kind, field, msg)
	}
	if after := dump(s); after != before {
		t.Fatalf("a refused change changed the store")
	}
}

func TestNATObjectsCreated(t *testing.T) {
	s := natStore(t)
	s.Read(func(st *State) {
		u, _ := st.Uplink("up1")
		if u.MAC.String() != DefaultUplinkMAC("up1").String() || u.MAC[0] != 0x02 {
			t.Errorf("uplink MAC = %s, want the default %s", u.MAC, DefaultUplinkMAC("up1"))
		}
		g, _ := st.NATGatewayOf("vpc-a")
		if fmt.Sprint(g.IPs) != "[203.0.113.10 203.0.113.11 203.0.113.12]" {
			t.Errorf("gateway IPs = %v, want them sorted", g.IPs)
		}
		e, _ := st.EIPOfHost("vpc-a", "test2")
		if g.CTZone < MinNATZone || e.CTZone < MinNATZone || g.CTZone%2 != 0 || e.CTZone%2 != 0 || g.CTZone == e.CTZone {
			t.Errorf("zones: gateway %d, EIP %d; want distinct even zones from %d", g.CTZone, e.CTZone, MinNATZone)
		}
		sn := st.SNATEntriesOf("vpc-a", "ngw")
		if len(sn) != 1 || sn[0].Name != "snat-vswitch-vsw-a" {
			t.Errorf("SNAT entries = %+v, want one named snat-vswitch-vsw-a", sn)
		}
		if p, ok := st.SNATSource(sn[0]); !ok || p != pfx("10.10.10.0/24") {
			t.Errorf("SNAT source = %v %v, want vsw-a's CIDR", p, ok)
		}
		if n := len(st.PublicAddrs("up1")); n != 4 {
			t.Errorf("public addresses on up1: %d, want 4", n)
		}
	})
}

// Zones are the store's: kept across a reopen and an update, never reused
// while held, and the lowest free one is handed out again once released.
func TestNATZonesPersist(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	mustApply(t, s, natOps()...)
	var gz, ez uint16
	s.Read(func(st *State) {
		g, _ := st.NATGatewayOf("vpc-a")
		e, _ := st.EIP("vpc-a", "eip1")
		gz, ez = g.CTZone, e.CTZone
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir)
	defer s.Close()
	mustApply(t, s, Update(&EIP{VPC: "vpc-a", Name: "eip1", Host: ""}),
		Update(&NATGateway{VPC: "vpc-a", Name: "ngw", IPs: []netip.Addr{ip("203.0.113.10"), ip("203.0.113.11")}}))
	s.Read(func(st *State) {
		g, _ := st.NATGatewayOf("vpc-a")
		e, _ := st.EIP("vpc-a", "eip1")
		if g.CTZone != gz || e.CTZone != ez {
			t.Errorf("zones after reopen and update: %d %d, want %d %d", g.CTZone, e.CTZone, gz, ez)
		}
		if e.Host != "" {
			t.Errorf("EIP still bound to %q", e.Host)
		}
	})
	mustApply(t, s, Delete(&EIP{VPC: "vpc-a", Name: "eip1"}, false),
		Create(&EIP{VPC: "vpc-a", Name: "eip2", IP: ip("203.0.113.21"), Uplink: "up1"}))
	s.Read(func(st *State) {
		e, _ := st.EIP("vpc-a", "eip2")
		if e.CTZone != ez {
			t.Errorf("a new EIP got zone %d, want the released %d", e.CTZone, ez)
		}
	})
}

func TestNATValidation(t *testing.T) {
	s := natStore(t)
	up := func(u Uplink) Op { return Create(&u) }
	gw := func(g NATGateway) Op { return Create(&g) }
	sn := func(e SNATEntry) Op { return Create(&e) }
	dn := func(d DNATEntry) Op { return Create(&d) }
	eip := func(e EIP) Op { return Create(&e) }
	addrs := func(ss ...string) []netip.Addr {
		var out []netip.Addr
		for _, x := range ss {
			out = append(out, ip(x))
		}
		return out
	}
	mustApply(t, s, createVPC(VPC{Name: "vpc-c"}),
		createVSwitch(VSwitch{VPC: "vpc-c", Name: "w", CIDR: pfx("10.10.10.0/24")}),
		createHost(Host{VPC: "vpc-c", Name: "c1", VSwitch: "w", IP: ip("10.10.10.11"), MAC: mac("52:58:00:00:00:01"), DPID: 1, OFPort: 9}))

	// Uplinks.
	wantNATErr(t, s, ErrInvalid, "gateway", "not inside", up(Uplink{Name: "u2", Bridge: "br", Interface: "x", CIDR: pfx("198.51.100.0/24"), Gateway: ip("203.0.113.1")}))
	wantNATErr(t, s, ErrInvalid, "gateway", "broadcast", up(Uplink{Name: "u2", Bridge: "br", Interface: "x", CIDR: pfx("198.51.100.0/24"), Gateway: ip("198.51.100.255")}))
	wantNATErr(t, s, ErrConflict, "cidr", "overlaps uplink \"up1\"", up(Uplink{Name: "u2", Bridge: "br", Interface: "x", CIDR: pfx("203.0.112.0/23"), Gateway: ip("203.0.112.1")}))
	wantNATErr(t, s, ErrConflict, "interface", "already attached as host \"test1\"", up(Uplink{Name: "u2", Bridge: "br-test", Interface: "vnet1", CIDR: pfx("198.51.100.0/24"), Gateway: ip("198.51.100.1")}))
	wantNATErr(t, s, ErrInvalid, "mac", "gateway MAC", up(Uplink{Name: "u2", Bridge: "br", Interface: "x", CIDR: pfx("198.51.100.0/24"), Gateway: ip("198.51.100.1"), MAC: mac(GatewayMACString)}))
	wantNATErr(t, s, ErrNotFound, "chassis", "chassis \"nope\"", up(Uplink{Name: "u2", Chassis: "nope", Interface: "x", CIDR: pfx("198.51.100.0/24"), Gateway: ip("198.51.100.1")}))
	wantNATErr(t, s, ErrConflict, "gateway", "NAT gateway \"ngw\"", Update(&Uplink{Name: "up1", Gateway: ip("203.0.113.10")}))

	// NAT gateways.
	wantNATErr(t, s, ErrConflict, "vpc", "already has a NAT gateway", gw(NATGateway{VPC: "vpc-a", Name: "ngw2", Uplink: "up1", IPs: addrs("203.0.113.30")}))
	wantNATErr(t, s, ErrInvalid, "ips[0]", "not a usable address of uplink", gw(NATGateway{VPC: "vpc-c", Name: "g", Uplink: "up1", IPs: addrs("198.51.100.7")}))
	wantNATErr(t, s, ErrInvalid, "ips[0]", "router", gw(NATGateway{VPC: "vpc-c", Name: "g", Uplink: "up1", IPs: addrs("203.0.113.1")}))
	wantNATErr(t, s, ErrConflict, "ips[0]", "already an address of NAT gateway \"ngw\"", gw(NATGateway{VPC: "vpc-c", Name: "g", Uplink: "up1", IPs: addrs("203.0.113.11")}))
	wantNATErr(t, s, ErrConflict, "ips[0]", "already EIP \"eip1\"", gw(NATGateway{VPC: "vpc-c", Name: "g", Uplink: "up1", IPs: addrs("203.0.113.20")}))
	wantNATErr(t, s, ErrInvalid, "ips[1]", "given twice", gw(NATGateway{VPC: "vpc-c", Name: "g", Uplink: "up1", IPs: addrs("203.0.113.30", "203.0.113.30")}))
	wantNATErr(t, s, ErrInvalid, "ips", "required", gw(NATGateway{VPC: "vpc-c", Name: "g", Uplink: "up1"}))
	wantNATErr(t, s, ErrNotFound, "uplink", "uplink \"nope\"", gw(NATGateway{VPC: "vpc-c", Name: "g", Uplink: "nope", IPs: addrs("203.0.113.30")}))
	wantNATErr(t, s, ErrConflict, "ips", "still used by SNAT entry", Update(&NATGateway{VPC: "vpc-a", Name: "ngw", IPs: addrs("203.0.113.11")}))

	// SNAT entries.
	wantNATErr(t, s, ErrInvalid, "source_cidr", "exactly one scope", sn(SNATEntry{VPC: "vpc-a", NATGateway: "ngw", VSwitch: "vsw-a", Host: "test1", SNATIPs: addrs("203.0.113.10")}))
	wantNATErr(t, s, ErrInvalid, "source_cidr", "exactly one scope", sn(SNATEntry{VPC: "vpc-a", NATGateway: "ngw", SNATIPs: addrs("203.0.113.10")}))
	wantNATErr(t, s, ErrInvalid, "snat_ips", "not consecutive", sn(SNATEntry{VPC: "vpc-a", NATGateway: "ngw", Host: "test1", SNATIPs: addrs("203.0.113.10", "203.0.113.12")}))
	wantNATErr(t, s, ErrInvalid, "snat_ips[0]", "not an address of NAT gateway", sn(SNATEntry{VPC: "vpc-a", NATGateway: "ngw", Host: "test1", SNATIPs: addrs("203.0.113.20")}))
	wantNATErr(t, s, ErrConflict, "source_cidr", "already covered by SNAT entry", sn(SNATEntry{VPC: "vpc-a", NATGateway: "ngw", SourceCIDR: pfx("10.10.10.0/24"), SNATIPs: addrs("203.0.113.11")}))
	wantNATErr(t, s, ErrConflict, "vswitch", "already covered by SNAT entry", sn(SNATEntry{VPC: "vpc-a", Name: "other", NATGateway: "ngw", VSwitch: "vsw-a", SNATIPs: addrs("203.0.113.11")}))
	wantNATErr(t, s, ErrInvalid, "source_cidr", "not inside VPC", sn(SNATEntry{VPC: "vpc-a", NATGateway: "ngw", SourceCIDR: pfx("192.168.0.0/16"), SNATIPs: addrs("203.0.113.11")}))
	wantNATErr(t, s, ErrNotFound, "host", "host \"nope\"", sn(SNATEntry{VPC: "vpc-a", NATGateway: "ngw", Host: "nope", SNATIPs: addrs("203.0.113.11")}))

	// DNAT entries.
	d := func(proto, ext, in, intPort string) DNATEntry {
		return DNATEntry{VPC: "vpc-a", NATGateway: "ngw", ExternalIP: ip("203.0.113.11"), Protocol: proto, ExternalPort: ext, InternalIP: ip(in), InternalPort: intPort}
	}
	mustApply(t, s, dn(d("tcp", "8080", "10.10.10.11", "80")), dn(d("tcp", "9000/9009", "10.10.10.11", "9000/9009")))
	wantNATErr(t, s, ErrInvalid, "internal_port", "same size", dn(d("tcp", "7000/7009", "10.10.10.13", "80/88")))
	wantNATErr(t, s, ErrInvalid, "external_port", "at most 256 can be shifted", dn(d("tcp", "20000/21000", "10.10.10.13", "30000/31000")))
	wantNATErr(t, s, ErrInvalid, "external_port", "not a port", dn(d("udp", "0", "10.10.10.13", "80")))
	wantNATErr(t, s, ErrInvalid, "external_port", "ends before", dn(d("udp", "90/80", "10.10.10.13", "80")))
	wantNATErr(t, s, ErrInvalid, "protocol", "not a protocol", dn(d("icmp", "80", "10.10.10.13", "80")))
	wantNATErr(t, s, ErrInvalid, "external_port", "only for protocol any", dn(d("tcp", "any", "10.10.10.13", "80")))
	wantNATErr(t, s, ErrConflict, "external_port", "public side must be unique", dn(d("tcp", "9005/9020", "10.10.10.13", "9005/9020")))
	wantNATErr(t, s, ErrConflict, "external_port", "public side must be unique", dn(d("any", "", "10.10.10.13", "")))
	wantNATErr(t, s, ErrConflict, "internal_port", "private side must be unique", dn(d("tcp", "8081", "10.10.10.11", "80")))
	wantNATErr(t, s, ErrConflict, "internal_ip", "has EIP \"eip1\"", dn(d("tcp", "8082", "10.10.10.12", "80")))
	wantNATErr(t, s, ErrInvalid, "external_ip", "not an address of NAT gateway", dn(DNATEntry{VPC: "vpc-a", NATGateway: "ngw", ExternalIP: ip("203.0.113.20"), Protocol: "udp", ExternalPort: "53", InternalIP: ip("10.10.10.11"), InternalPort: "53"}))
	mustApply(t, s, dn(d("udp", "8080", "10.10.10.11", "80"))) // another protocol: both sides free
	mustApply(t, s, dn(d("tcp", "8081", "10.10.10.13", "80"))) // no host there: Aliyun maps addresses
	wantNATErr(t, s, ErrInvalid, "external_ip", "cannot be changed", Update(&DNATEntry{VPC: "vpc-a", Name: "dnat-tcp-203.0.113.11-8081", ExternalPort: "8082"}))
	mustApply(t, s, Update(&DNATEntry{VPC: "vpc-a", Name: "dnat-tcp-203.0.113.11-8081", InternalPort: "81"}))

	// EIPs.
	wantNATErr(t, s, ErrConflict, "ip", "already an address of NAT gateway", eip(EIP{VPC: "vpc-a", Name: "e2", IP: ip("203.0.113.10"), Uplink: "up1"}))
	wantNATErr(t, s, ErrConflict, "ip", "already EIP \"eip1\"", eip(EIP{VPC: "vpc-c", Name: "e2", IP: ip("203.0.113.20"), Uplink: "up1"}))
	wantNATErr(t, s, ErrConflict, "host", "already has EIP", eip(EIP{VPC: "vpc-a", Name: "e2", IP: ip("203.0.113.21"), Uplink: "up1", Host: "test2"}))
	wantNATErr(t, s, ErrConflict, "host", "target of DNAT entry", eip(EIP{VPC: "vpc-a", Name: "e2", IP: ip("203.0.113.21"), Uplink: "up1", Host: "test1"}))
	wantNATErr(t, s, ErrInvalid, "ip", "not a usable address", eip(EIP{VPC: "vpc-a", Name: "e2", IP: ip("198.51.100.1"), Uplink: "up1"}))
	wantNATErr(t, s, ErrInvalid, "ip", "cannot be changed", Update(&EIP{VPC: "vpc-a", Name: "eip1", IP: ip("203.0.113.21")}))
	// Overlapping VPCs use separate public addresses, the same private ones.
	mustApply(t, s, gw(NATGateway{VPC: "vpc-c", Name: "g", Uplink: "up1", IPs: addrs("203.0.113.30")}),
		sn(SNATEntry{VPC: "vpc-c", NATGateway: "g", SourceCIDR: pfx("0.0.0.0/0"), SNATIPs: addrs("203.0.113.30")}),
		eip(EIP{VPC: "vpc-c", Name: "e", IP: ip("203.0.113.31"), Uplink: "up1", Host: "c1"}))
	// A batch that fails late changes nothing.
	wantNATErr(t, s, ErrConflict, "[1].ip", "already EIP", eip(EIP{VPC: "vpc-c", Name: "e3", IP: ip("203.0.113.40"), Uplink: "up1"}),
		eip(EIP{VPC: "vpc-c", Name: "e4", IP: ip("203.0.113.31"), Uplink: "up1"}))
}

func TestDNATLimit(t *testing.T) {
	s := natStore(t)
	var ops []Op
	for i := 0; i < MaxDNATEntries; i++ {
		ops = append(ops, Create(&DNATEntry{VPC: "vpc-a", NATGateway: "ngw", ExternalIP: ip("203.0.113.12"), Protocol: "tcp",
			ExternalPort: fmt.Sprint(1000 + i), InternalIP: ip("10.10.10.11"), InternalPort: fmt.Sprint(1000 + i)}))
	}
	mustApply(t, s, ops...)
	wantNATErr(t, s, ErrConflict, "nat_gateway", "already has 100 DNAT entries",
		Create(&DNATEntry{VPC: "vpc-a", NATGateway: "ngw", ExternalIP: ip("203.0.113.12"), Protocol: "udp", ExternalPort: "1", InternalIP: ip("10.10.10.11"), InternalPort: "1"}))
}

func TestNATDeletes(t *testing.T) {
	s := natStore(t)
	wantNATErr(t, s, ErrConflict, "name", "still used by", Delete(&Uplink{Name: "up1"}, false))
	wantNATErr(t, s, ErrConflict, "name", "1 EIP (eip1)", Delete(&Host{VPC: "vpc-a", Name: "test2"}, false))
	wantNATErr(t, s, ErrConflict, "name", "1 SNAT entry (snat-vswitch-vsw-a)", Delete(&VSwitch{VPC: "vpc-a", Name: "vsw-a"}, false))
	out := mustApply(t, s, Delete(&VPC{Name: "vpc-a"}, true))
	kinds := map[string]int{}
	for _, op := range out {
		kinds[KindOf(op.Obj)]++
	}
	if kinds["natgateway"] != 1 || kinds["snatentry"] != 1 || kinds["eip"] != 1 {
		t.Errorf("cascade deleted %v, want the NAT gateway, its SNAT entry and the EIP", kinds)
	}
	mustApply(t, s, Delete(&Uplink{Name: "up1"}, false))
}

func TestUplinkUpdate(t *testing.T) {
	s := natStore(t)
	mustApply(t, s, Update(&Uplink{Name: "up1", RouterMAC: mac("52:54:00:00:00:01")}))
	mustApply(t, s, Update(&Uplink{Name: "up1", MAC: mac("52:54:00:00:00:99")}))
	s.Read(func(st *State) {
		u, _ := st.Uplink("up1")
		if u.RouterMAC.String() != "52:54:00:00:00:01" || u.MAC.String() != "52:54:00:00:00:99" || u.Interface != "eth-up" {
			t.Errorf("after updates: %+v", u)
		}
	})
	// A new router: the learned MAC is forgotten.
	mustApply(t, s, Update(&Uplink{Name: "up1", Gateway: ip("203.0.113.2")}))
	s.Read(func(st *State) {
		u, _ := st.Uplink("up1")
		if u.RouterMAC != nil || u.Gateway != ip("203.0.113.2") {
			t.Errorf("after a new gateway: %+v", u)
		}
	})
	wantNATErr(t, s, ErrInvalid, "cidr", "cannot be changed", Update(&Uplink{Name: "up1", CIDR: pfx("203.0.113.0/25")}))
	wantNATErr(t, s, ErrInvalid, "interface", "cannot be changed", Update(&Uplink{Name: "up1", Bridge: "br-test", Interface: "other"}))
	wantNATErr(t, s, ErrInvalid, "mac", "MAC the fabric tunnels NAT traffic to", Update(&Uplink{Name: "up1", MAC: NATTunnelMAC}))
}

// FuzzValidateDNATEntry decodes arbitrary JSON into a DNAT entry and runs
// it through validation as a create and an update: never a panic or an
// error that is not an *Error, and what is accepted has ports the
// datapath can express (tcp/udp: 1..65535, ranges of the same size; any:
// none).
func FuzzValidateDNATEntry(f *testing.F) {
	for _, s := range []string{
		`{"vpc":"vpc-a","name":"web","nat_gateway":"ngw","external_ip":"203.0.113.12","protocol":"tcp","external_port":"8080","internal_ip":"10.10.10.11","internal_port":"80"}`,
		`{"vpc":"vpc-a","name":"r","nat_gateway":"ngw","external_ip":"203.0.113.12","protocol":"udp","external_port":"9000/9002","internal_ip":"10.10.10.11","internal_port":"9100/9102"}`,
		`{"vpc":"vpc-a","name":"m","nat_gateway":"ngw","external_ip":"203.0.113.11","protocol":"any","external_port":"any","internal_ip":"10.10.10.11","internal_port":"any"}`,
		`{"vpc":"vpc-a","name":"x","nat_gateway":"ngw","external_ip":"203.0.113.12","protocol":"TCP","external_port":"0/65536","internal_ip":"10.10.10.11","internal_port":"-1/5"}`,
		`{"vpc":"vpc-a","name":"y","nat_gateway":"ngw","external_ip":"203.0.113.12","protocol":"tcp","external_port":"99999999999999999999","internal_ip":"::1","internal_port":"1-2"}`,
		`{"vpc":"vpc-a","name":"z","nat_gateway":"ngw","external_ip":"203.0.113.12","protocol":"udp","external_port":"10/1","internal_ip":"10.10.10.12","internal_port":"1/65535"}`,
		`{}`,
	} {
		f.Add([]byte(s))
	}
	s := newStore(f)
	if _, err := s.Apply(context.Background(), natOps()); err != nil {
		f.Fatal(err)
	}
	before := dump(s)
	f.Fuzz(func(t *testing.T, data []byte) {
		var d DNATEntry
		if err := json.Unmarshal(data, &d); err != nil {
			return
		}
		for _, kind := range []OpKind{OpCreate, OpUpdate} {
			dc := d
			out, err := s.Check(context.Background(), []Op{{Kind: kind, Obj: &dc}})
			if err != nil {
				if _, ok := AsError(err); !ok {
					t.Fatalf("%s: non-*Error from validation: %v", kind, err)
				}
				continue
			}
			got := out[0].DNATEntry()
			elo, ehi := got.ExternalPorts()
			ilo, ihi := got.InternalPorts()
			if got.IPMapping() {
				if elo != 0 || ehi != 0 || ilo != 0 || ihi != 0 {
					t.Fatalf("an IP mapping with ports: %+v", got)
				}
				continue
			}
			if got.Protocol != ProtocolTCP && got.Protocol != ProtocolUDP || elo == 0 || ehi < elo || ilo == 0 || ihi < ilo || ehi-elo != ihi-ilo {
				t.Fatalf("accepted %+v (ports %d-%d → %d-%d)", got, elo, ehi, ilo, ihi)
			}
		}
		if after := dump(s); after != before {
			t.Fatal("Check changed the store")
		}
	})
}
