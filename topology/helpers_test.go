package topology

import (
	"context"
	"encoding/json"
	"net/netip"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

func openStore(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dir, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return s
}

func newStore(t testing.TB) *Store {
	t.Helper()
	s := openStore(t, t.TempDir())
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func mustApply(t testing.TB, s *Store, ops ...Op) []Op {
	t.Helper()
	out, err := s.Apply(context.Background(), ops)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return out
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func ip(s string) netip.Addr    { return netip.MustParseAddr(s) }
func mac(s string) MAC {
	m, err := ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func createVPC(v VPC) Op         { return Op{Kind: OpCreate, Obj: &v} }
func createVSwitch(w VSwitch) Op { return Op{Kind: OpCreate, Obj: &w} }
func createHost(h Host) Op       { return Op{Kind: OpCreate, Obj: &h} }
func createSubnet(s Subnet) Op   { return Op{Kind: OpCreate, Obj: &s} }
func deleteVPC(name string) Op   { return Op{Kind: OpDelete, Obj: &VPC{Name: name}} }
func deleteVSwitch(vpc, name string) Op {
	return Op{Kind: OpDelete, Obj: &VSwitch{VPC: vpc, Name: name}}
}
func deleteHost(vpc, name string) Op { return Op{Kind: OpDelete, Obj: &Host{VPC: vpc, Name: name}} }
func createChassis(c Chassis) Op     { return Op{Kind: OpCreate, Obj: &c} }
func deleteChassis(name string) Op   { return Op{Kind: OpDelete, Obj: &Chassis{Name: name}} }
func deleteSubnet(vpc, name string) Op {
	return Op{Kind: OpDelete, Obj: &Subnet{VPC: vpc, Name: name}}
}
func moveSubnet(vpc, name, host string) Op {
	return Op{Kind: OpUpdate, Obj: &Subnet{VPC: vpc, Name: name, Host: host}}
}

// seedOps is the seed scenario plus a little more: VPC vpc-a (10.0.0.0/8)
// with vSwitch vsw-a (10.10.10.0/24, gateway 10.10.10.1), hosts test1
// (br-test/vnet1) and test2 (dpid 1 port 3), subnets 172.18.1.0/24 → test1
// and 10.99.1.0/24 → test2; and an empty VPC vpc-b without a CIDR.
func seedOps() []Op {
	return []Op{
		createVPC(VPC{Name: "vpc-a", CIDR: pfx("10.0.0.0/8")}),
		createVPC(VPC{Name: "vpc-b"}),
		createVSwitch(VSwitch{VPC: "vpc-a", Name: "vsw-a", CIDR: pfx("10.10.10.0/24"), Gateway: ip("10.10.10.1")}),
		createHost(Host{VPC: "vpc-a", Name: "test1", VSwitch: "vsw-a", IP: ip("10.10.10.11"), MAC: mac("52:58:00:98:c0:81"), Bridge: "br-test", Interface: "vnet1"}),
		createHost(Host{VPC: "vpc-a", Name: "test2", VSwitch: "vsw-a", IP: ip("10.10.10.12"), MAC: mac("52:58:00:98:c0:92"), DPID: 1, OFPort: 3}),
		createSubnet(Subnet{VPC: "vpc-a", CIDR: pfx("172.18.1.0/24"), Host: "test1"}),
		createSubnet(Subnet{VPC: "vpc-a", Name: "ten-99", CIDR: pfx("10.99.1.0/24"), Host: "test2"}),
	}
}

func seededStore(t testing.TB) *Store {
	t.Helper()
	s := newStore(t)
	mustApply(t, s, seedOps()...)
	return s
}

// dump is the whole state (and the ID counters) as JSON, for comparing
// states.
func dump(s *Store) string {
	type vpcDump struct {
		VPC       VPC
		VSwitches []VSwitch
		Hosts     []Host
		Subnets   []Subnet
		ByHost    map[string][]Subnet
	}
	var all struct {
		VPCs    []vpcDump
		Chassis []Chassis
		Certs   []SwitchCertificate
		OnCh    map[string][]Host
		LastID  map[string]uint32
		Attach  int
		Indexes int
	}
	s.Read(func(st *State) {
		all.Chassis = st.AllChassis()
		all.Certs = st.SwitchCertificates()
		all.OnCh = map[string][]Host{}
		for _, c := range all.Chassis {
			all.OnCh[c.Name] = st.HostsOnChassis(c.Name)
		}
		for _, t := range st.tables {
			all.Attach += t.byKey.Len() + t.byID.len()
			for _, m := range t.unique {
				all.Indexes += m.Len()
			}
		}
		for _, l := range st.referrers {
			l.each(func(refEntry) bool { all.Indexes++; return true })
		}
		for _, v := range st.VPCs() {
			d := vpcDump{VPC: v, VSwitches: st.VSwitches(v.Name), Hosts: st.Hosts(v.Name), Subnets: st.Subnets(v.Name), ByHost: map[string][]Subnet{}}
			for _, h := range d.Hosts {
				d.ByHost[h.Name] = st.SubnetsOfHost(v.Name, h.Name)
			}
			all.VPCs = append(all.VPCs, d)
		}
		all.LastID = map[string]uint32{}
		for k, v := range st.lastID {
			if v != 0 {
				all.LastID[k] = v
			}
		}
	})
	b, err := json.MarshalIndent(all, "", " ")
	if err != nil {
		panic(err)
	}
	return string(b)
}

// target names an op's object: its kind, key and the object.
func target(op Op) (string, string, Object) { return KindOf(op.Obj), op.Obj.Key(), op.Obj }
