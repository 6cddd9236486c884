package topology

import (
	"context"
	"encoding/json"
	"testing"
)

// FuzzValidateHost decodes arbitrary JSON into a Host and runs it through
// the store's validation as a create, a delete and (as a subnet next hop)
// an update, against the seed topology. Validation must never panic, must
// leave the state unchanged (Check), and anything it accepts must satisfy
// the invariants the datapath relies on.
func FuzzValidateHost(f *testing.F) {
	seeds := []string{
		`{"vpc":"vpc-a","name":"test3","vswitch":"vsw-a","ip":"10.10.10.13","mac":"52:58:00:98:c0:93","bridge":"br-test","interface":"vnet5"}`,
		`{"vpc":"vpc-a","name":"test3","vswitch":"vsw-a","ip":"10.10.10.13","mac":"52:58:00:98:c0:93","dpid":"0000000000000002","ofport":7}`,
		`{"vpc":"vpc-a","name":"test3","vswitch":"vsw-a","ip":"10.10.10.13","mac":"52:58:00:98:c0:93","dpid":2,"ofport":4294967039}`,
		`{"vpc":"vpc-a","name":"test1","vswitch":"vsw-a","ip":"10.10.10.11","mac":"52:58:00:98:c0:81","bridge":"br-test","interface":"vnet1"}`,
		`{"vpc":"vpc-a","name":"x","vswitch":"vsw-a","ip":"::ffff:10.10.10.13","mac":"01:00:5e:00:00:01"}`,
		`{"vpc":"vpc-b","name":"..","vswitch":"","ip":"fe80::1%eth0","mac":"ee:ff:ff:ff:ff:ff","bridge":"a/b"}`,
		`{"vpc":"vpc-a","name":"x","vswitch":"vsw-a","ip":"10.10.10.255","mac":"00:00:00:00:00:00","dpid":"0x0","ofport":0}`,
		`{"id":4294967295,"vpc":"vpc-a","name":"x","mac":"02:00:00:00:00:01:02:03"}`,
		`{"vpc":"vpc-a","name":"test3","vswitch":"vsw-a","ip":"10.10.10.13","mac":"52:58:00:98:c0:93","chassis":"node1","interface":"vnet9"}`,
		`{"vpc":"vpc-a","name":"test3","vswitch":"vsw-a","ip":"10.10.10.13","mac":"52:58:00:98:c0:93","chassis":"node1","interface":"vnet1"}`,
		`{"vpc":"vpc-a","name":"test3","vswitch":"vsw-a","ip":"10.10.10.13","mac":"52:58:00:98:c0:93","chassis":"nope","interface":"vnet1"}`,
		`{"vpc":"vpc-a","name":"test3","vswitch":"vsw-a","ip":"10.10.10.13","mac":"52:58:00:98:c0:93","chassis":"node1","bridge":"br-vpc","interface":"vnet1"}`,
		`{"vpc":"vpc-a","name":"test3","vswitch":"vsw-a","ip":"10.10.10.13","mac":"52:58:00:98:c0:93","chassis":"node1","dpid":1,"ofport":9}`,
		`{"vpc":"vpc-a","name":"test3","vswitch":"vsw-a","ip":"10.10.10.13","mac":"52:58:00:98:c0:93","dpid":2,"ofport":7,"security_groups":["web","web"],"ct_zone":65535}`,
		`{"vpc":"vpc-a","name":"test1","security_groups":[],"ct_zone":1}`,
		`{}`,
		`null`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	s := newStore(f)
	if _, err := s.Apply(context.Background(), chassisSeedOps()); err != nil {
		f.Fatal(err)
	}
	before := dump(s)
	f.Fuzz(func(t *testing.T, data []byte) {
		var h Host
		if err := json.Unmarshal(data, &h); err != nil {
			return
		}
		ctx := context.Background()
		hc := h
		out, err := s.Check(ctx, []Op{{Kind: OpCreate, Obj: &hc}})
		if err == nil {
			got := out[0].Host()
			w, ok := vswitchOf(s, got.VPC, got.VSwitch)
			if !ok || !w.CIDR.Contains(got.IP) || got.IP == w.Gateway || ValidateMAC("mac", got.MAC) != nil ||
				ValidateName("name", got.Name) != nil || got.ID == 0 ||
				attachments(got) != 1 || (got.Chassis != "" && !chassisExists(s, got.Chassis)) {
				t.Fatalf("accepted an invalid host: %+v", got)
			}
		} else if _, ok := AsError(err); !ok {
			t.Fatalf("non-*Error from validation: %v", err)
		}
		hd := h
		if _, err := s.Check(ctx, []Op{{Kind: OpDelete, Obj: &hd}}); err != nil {
			if _, ok := AsError(err); !ok {
				t.Fatalf("non-*Error from delete validation: %v", err)
			}
		}
		hc2 := h
		if _, err := s.Check(ctx, []Op{{Kind: OpDelete, Obj: &hc2, Cascade: true}}); err != nil {
			if _, ok := AsError(err); !ok {
				t.Fatalf("non-*Error from cascading delete validation: %v", err)
			}
		}
		_, _ = s.Check(ctx, []Op{{Kind: OpDelete, Obj: &VSwitch{VPC: h.VPC, Name: h.VSwitch}, Cascade: true}})
		_, _ = s.Check(ctx, []Op{{Kind: OpDelete, Obj: &Chassis{Name: h.Chassis}, Cascade: true}})
		hu := h
		_, _ = s.Check(ctx, []Op{{Kind: OpUpdate, Obj: &hu}})
		_, _ = s.Check(ctx, []Op{{Kind: OpUpdate, Obj: &Subnet{VPC: h.VPC, Name: h.Name, Host: h.VSwitch}}})
		hb := h
		_, _ = s.Check(ctx, []Op{{Kind: OpDelete, Obj: &Subnet{VPC: h.VPC, Name: "ten-99"}}, {Kind: OpCreate, Obj: &hb}})
		if after := dump(s); after != before {
			t.Fatalf("Check changed the state")
		}
	})
}

// attachments counts the ways a host is attached.
func attachments(h *Host) int {
	n := 0
	for _, set := range []bool{h.Bridge != "", h.Chassis != "", h.DPID != 0 || h.OFPort != 0} {
		if set {
			n++
		}
	}
	return n
}

func chassisExists(s *Store, name string) (ok bool) {
	s.Read(func(st *State) { _, ok = st.Chassis(name) })
	return ok
}

func vswitchOf(s *Store, vpc, name string) (w VSwitch, ok bool) {
	s.Read(func(st *State) { w, ok = st.VSwitch(vpc, name) })
	return w, ok
}
