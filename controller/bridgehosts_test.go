package controller

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/vpcflow/vpcflow/ovsdb"
	"github.com/vpcflow/vpcflow/topology"
)

func brX(dpid uint64) []ovsdb.Bridge {
	return []ovsdb.Bridge{{Name: "br-x", DPID: dpid, Ports: map[string]ovsdb.Port{
		"vnet1": {Name: "vnet1", OFPort: 1}, "vnet2": {Name: "vnet2", OFPort: 2}, "vnet3": {Name: "vnet3", OFPort: 3},
	}}}
}

func (r *rig) attachedAt(vpc, name string) (uint64, bool) {
	r.t.Helper()
	var id uint32
	r.store.Read(func(st *topology.State) {
		h, ok := st.Host(vpc, name)
		if !ok {
			r.t.Fatalf("no host %s", name)
		}
		id = h.ID
	})
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	at, ok := r.c.attached.Get(id)
	return at.DPID, ok
}

// TestAmbiguousBridgeName (issue 19.5): two --ovsdb servers with a bridge
// of the same name. A host naming that bridge must name its server (400 on
// "ovsdb" naming both); a host created while only one server had the
// bridge is given that server and stays there when the other one shows
// up; a host from an older store (no server) found on one server stays
// on it as the other reconnects.
func TestAmbiguousBridgeName(t *testing.T) {
	const epA, epB = "unix:/a/db.sock", "unix:/b/db.sock"
	r := newRig(t, Options{OVSDBEndpoints: []string{epA, epB}})
	r.apply(topology.Create(&topology.VPC{Name: "v"}),
		topology.Create(&topology.VSwitch{VPC: "v", Name: "w", CIDR: netip.MustParsePrefix("10.0.0.0/24")}))
	host := func(name, iface, ep string, last byte) *topology.Host {
		return &topology.Host{VPC: "v", Name: name, VSwitch: "w", IP: netip.AddrFrom4([4]byte{10, 0, 0, last}),
			MAC: mac("02:00:00:00:00:0" + string(rune('0'+last%10))), Bridge: "br-x", Interface: iface, OVSDB: ep}
	}

	// A legacy host: registered before any server had br-x (no server of
	// its own), then found on B first.
	r.apply(topology.Create(host("old", "vnet3", "", 3)))
	r.c.BridgesChanged(epB, brX(0xb))
	if dpid, ok := r.attachedAt("v", "old"); !ok || dpid != 0xb {
		t.Fatalf("old host at %x (%v), want B's br-x", dpid, ok)
	}
	// Only B has br-x: a new host is given B for good.
	out := r.apply(topology.Create(host("h1", "vnet1", "", 1)))
	if got := out[0].Host().OVSDB; got != epB {
		t.Fatalf("host created on B's br-x stored with ovsdb %q", got)
	}
	// A gets a br-x too: h1 and the legacy host stay on B.
	r.c.BridgesChanged(epA, brX(0xa))
	for _, n := range []string{"h1", "old"} {
		if dpid, ok := r.attachedAt("v", n); !ok || dpid != 0xb {
			t.Errorf("%s moved to %x (%v) when A got a br-x too", n, dpid, ok)
		}
	}
	// B reconnects (the same map again, then with a port renumbered):
	// nothing flips.
	r.c.BridgesChanged(epB, brX(0xb))
	bs := brX(0xb)
	bs[0].Ports["vnet3"] = ovsdb.Port{Name: "vnet3", OFPort: 13}
	r.c.BridgesChanged(epB, bs)
	if dpid, ok := r.attachedAt("v", "old"); !ok || dpid != 0xb {
		t.Errorf("old host at %x (%v) after B reconnected", dpid, ok)
	}
	// Now br-x is ambiguous: a host naming it without a server is refused,
	// naming both.
	_, err := r.c.Apply(r.ctx, []topology.Op{topology.Create(host("h2", "vnet2", "", 2))})
	e, ok := topology.AsError(err)
	if !ok || e.Kind != topology.ErrInvalid || e.Field != "ovsdb" || !strings.Contains(e.Msg, epA) || !strings.Contains(e.Msg, epB) {
		t.Fatalf("ambiguous bridge: %v, want 400 on ovsdb naming %s and %s", err, epA, epB)
	}
	// Naming the server works, on that server's bridge.
	r.apply(topology.Create(host("h2", "vnet2", epA, 2)))
	if dpid, ok := r.attachedAt("v", "h2"); !ok || dpid != 0xa {
		t.Errorf("h2 at %x (%v), want A's br-x", dpid, ok)
	}
	// A server vpcflow does not watch is refused.
	_, err = r.c.Apply(r.ctx, []topology.Op{topology.Create(host("h4", "vnet2", "unix:/c/db.sock", 4))})
	if e, ok := topology.AsError(err); !ok || e.Field != "ovsdb" || !strings.Contains(e.Msg, "not one of the OVSDB servers") {
		t.Errorf("unknown server: %v", err)
	}
	r.exact()
}
