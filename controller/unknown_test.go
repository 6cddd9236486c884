package controller

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/ovsdb"
	"github.com/vpcflow/vpcflow/topology"
)

// chassisEndpoint is node n's OVSDB in threeChassis.
func chassisEndpoint(n int) string { return "tcp:192.168.100.1" + string(rune('0'+n)) + ":6640" }

func chassisBridges(n int) []ovsdb.Bridge {
	return []ovsdb.Bridge{{Name: "br-vpc", DPID: 0x10 + uint64(n), Ports: map[string]ovsdb.Port{
		topology.TunnelPortName: {Name: topology.TunnelPortName, OFPort: 10},
		"vnet1":                 {Name: "vnet1", OFPort: 1},
	}}}
}

// TestUnknownOVSDBKeepsFlows (issue 19.6): vpcflow restarts while node2's
// OVSDB does not answer (down, a TLS error). Its switches reconnect after
// the startup wait: node2's own flows, and the tunnel routes to vm2 on the
// other chassis, must stay — unknown is not absent. When node2's OVSDB
// answers, everything is as desired.
func TestUnknownOVSDBKeepsFlows(t *testing.T) {
	a := threeChassis(t)
	before := map[uint64]string{}
	for dpid, dp := range a.dps {
		before[dpid] = dp.Text()
		a.disconnect(dpid)
	}
	if !strings.Contains(before[0x11], "192.168.100.12->tun_dst") {
		t.Fatalf("node1 has no tunnel route to vm2 on node2:\n%s", before[0x11])
	}

	// The restarted controller: node1's and node3's OVSDB answer, node2's
	// does not.
	b := newRigOn(t, a.store, Options{Advertise: "tcp:192.168.100.254:6653", PortsWait: 50 * time.Millisecond})
	b.c.BridgesChanged(chassisEndpoint(1), chassisBridges(1))
	b.c.BridgesChanged(chassisEndpoint(3), chassisBridges(3))
	go func() {
		// Run only for the startup wait: no real OVSDB monitors here, the
		// port maps come from the test.
		select {
		case <-time.After(b.c.opts.PortsWait):
			b.c.portsReadyOnce.Do(func() { close(b.c.portsReady) })
		case <-b.ctx.Done():
		}
	}()
	for dpid := uint64(0x11); dpid <= 0x13; dpid++ {
		b.connect(a.dps[dpid])
	}
	for dpid, dp := range a.dps {
		if got := dp.Text(); got != before[dpid] {
			t.Errorf("switch %x changed while node2's OVSDB is unknown:\nnow\n%s\nwas\n%s", dpid, got, before[dpid])
		}
	}

	// node2's OVSDB answers: as desired, and nothing to change.
	mods := a.dps[0x12].Mods()
	_, dumps := a.dps[0x12].Requests()
	b.c.BridgesChanged(chassisEndpoint(2), chassisBridges(2))
	deadline := time.Now().Add(5 * time.Second)
	for {
		// Reconciled again: a full dump.
		if _, d := a.dps[0x12].Requests(); d > dumps {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("node2 not reconciled again once its OVSDB answered")
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	b.exact()
	if n := a.dps[0x12].Mods() - mods; n != 0 {
		t.Errorf("node2's OVSDB answering sent %d flow-mods to node2, want 0", n)
	}
	// A host deleted meanwhile on node2 is no longer kept.
	b.apply(topology.Delete(&topology.Host{VPC: "vpc-a", Name: "vm2"}, true))
	b.exact()
}

// TestUnderlayMTUWarning (issue 19.7): the chassis's OVSDB shows its
// uplink (a system interface on another bridge, e.g. br-phy's NIC) with
// MTU 1500 while vpcflow was told --underlay-mtu 9000: the chassis's
// status says so (the bridge's own internal interface, always 1500 in
// OVS, is not taken for the uplink).
func TestUnderlayMTUWarning(t *testing.T) {
	r := newRig(t, Options{Advertise: "tcp:192.168.100.254:6653", UnderlayMTU: 9000})
	ep := chassisEndpoint(1)
	r.apply(topology.Create(&topology.Chassis{Name: "node1", OVSDB: ep, Bridge: "br-vpc", TunnelIP: netip.MustParseAddr("192.168.100.11")}))
	bridges := append(chassisBridges(1), ovsdb.Bridge{Name: "br-phy", DPID: 0x99, Ports: map[string]ovsdb.Port{
		"br-phy": {Name: "br-phy", Type: "internal", OFPort: 65534, MTU: 9000},
		"ul0":    {Name: "ul0", OFPort: 1, MTU: 1500},
		"vx":     {Name: "vx", Type: "vxlan", OFPort: 2, MTU: 9000},
	}})
	r.c.BridgesChanged(ep, bridges)
	st, ok := r.c.ChassisStatus("node1")
	if !ok {
		t.Fatal("no status")
	}
	if st.UnderlayMTU != 1500 || st.UnderlayInterface != "ul0" || !strings.Contains(st.MTUWarning, "--underlay-mtu 9000 is larger than the MTU of ul0 (1500") {
		t.Errorf("status %+v", st)
	}
	// Big enough: no warning.
	p := bridges[1].Ports["ul0"]
	p.MTU = 9000
	bridges[1].Ports["ul0"] = p
	r.c.BridgesChanged(ep, bridges)
	if st, _ := r.c.ChassisStatus("node1"); st.MTUWarning != "" || st.UnderlayMTU != 9000 {
		t.Errorf("status %+v", st)
	}
}

// TestDeletedChassisHoldsNothing: once a chassis is deleted, its OVSDB is
// no longer awaited, so its bridge (still connected) is not "unknown":
// a stale flow on it is deleted when it reconnects.
func TestDeletedChassisHoldsNothing(t *testing.T) {
	a := threeChassis(t)
	for dpid := range a.dps {
		a.disconnect(dpid)
	}
	// vpcflow restarted: the chassis are in its store (their OVSDBs are
	// awaited).
	r := newRigOn(t, a.store, Options{Advertise: "tcp:192.168.100.254:6653"})
	for n := 1; n <= 3; n++ {
		r.c.BridgesChanged(chassisEndpoint(n), chassisBridges(n))
	}
	for dpid := uint64(0x11); dpid <= 0x13; dpid++ {
		r.connect(a.dps[dpid])
	}
	ctx, cancel := context.WithCancel(r.ctx)
	done := make(chan error, 1)
	go func() { done <- r.c.Run(ctx) }() // monitors of unreachable endpoints: the maps came from the test
	t.Cleanup(func() {
		cancel()
		<-done
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.c.mu.Lock()
		running := r.c.monitors != nil
		r.c.mu.Unlock()
		if running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run did not start")
		}
		time.Sleep(time.Millisecond)
	}
	r.apply(topology.Delete(&topology.Chassis{Name: "node3"}, true))
	r.exact()
	dp := r.dps[0x13]
	r.disconnect(0x13)
	stale := openflow.Flow{Table: 30, Priority: 132, Cookie: pipeline.HostCookie(99, pipeline.DropNone),
		Match: openflow.NewMatch().EthType(openflow.EthTypeIPv4)}
	dp.Put(stale)
	r.connect(dp)
	for _, f := range dp.Flows() {
		if f.Key() == stale.Key() {
			t.Fatalf("a stale flow on a deleted chassis's bridge was kept:\n%s", dp.Text())
		}
	}
}
