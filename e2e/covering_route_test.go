package e2e

// Issue 10 item 4: a route entry that covers a vSwitch (10.10.0.0/16 →
// test1, allowed as 0.0.0.0/0 is) gives test1 neither the other VMs'
// addresses nor the vSwitch's unassigned ones: on Alibaba Cloud the
// vSwitch's system route is more specific and wins, and so it does here —
// for the source check and for routing, with real packets on real OVS.

import (
	"encoding/json"
	"testing"

	"github.com/vpcflow/vpcflow/topology"
	"github.com/vpcflow/vpcflow/trace"
)

// TestCoveringRouteEntryKeepsVSwitchAddresses: with 10.10.0.0/16 → test1
// in the seed,
//   - the route entry works outside the vSwitch: test2 reaches
//     10.10.99.5 at test1, and test1 may send from it (controls);
//   - test1 cannot send from 10.10.10.12, test2's address: its pings get
//     no answer, test2 sees none of them, and they are counted as spoofed
//     by test1's route entry's source check (the flow the trace ends at),
//     and charged to test1 in GET /v1/drops;
//   - traffic to 10.10.10.99, an address of the vSwitch no host has, is
//     not delivered to test1: test1 sees none of it, and it is counted
//     as no_route at vsw-a's system route (per switch in GET /v1/drops:
//     a drop by destination is charged to no sender);
//
// and the live trace's real packets say the same.
func TestCoveringRouteEntryKeepsVSwitchAddresses(t *testing.T) {
	s := newSeed(t)
	ping(t, s.vm1.container, "172.18.3.4", 1)
	var test1 topology.Host
	must(t, json.Unmarshal(s.rest("GET", "/v1/vpcs/vpc-seed/hosts/test1", nil, 200), &test1))
	var vsw topology.VSwitch
	must(t, json.Unmarshal(s.rest("GET", "/v1/vpcs/vpc-seed/vswitches/vsw-a", nil, 200), &vsw))
	cover := s.createSubnet("vpc-seed", "10.10.0.0/16", "test1")
	t.Logf("route entry %s → %s (id %d)", cover.CIDR, cover.Host, cover.ID)

	// Controls: the route entry is in force outside the vSwitch.
	addDummy(t, s.vm1.node, "10.10.99.5/32")
	// test1 must never need to ARP from a borrowed address.
	s.vm1.node.MustCmd(t, "ip", "neigh", "replace", "10.10.10.1", "lladdr", topology.GatewayMACString, "dev", "ens8", "nud", "permanent")
	s.agree(trace.Request{VPC: "vpc-seed", From: "test2", Dst: "10.10.99.5"}, trace.Delivered, "", "vpc-seed/test1", 3,
		func() { ping(t, s.vm2.node, "10.10.99.5", 3) })
	s.agree(trace.Request{VPC: "vpc-seed", From: "test1", Src: "10.10.99.5", Dst: "172.18.3.4"}, trace.Delivered, "", "vpc-seed/test2", 3,
		func() {
			out, err := s.vm1.node.Cmd(testCtx(t), "ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", "-I", "10.10.99.5", "172.18.3.4")
			if err != nil {
				t.Errorf("test1 sending from 10.10.99.5 (its route entry's): %v\n%s", err, out)
			}
		})

	// test1 sending from test2's address.
	s.vm1.node.MustCmd(t, "ip", "addr", "add", "10.10.10.12/32", "dev", "stub0")
	capTest2 := s.startCapture(s.vm2.node, "icmp", "and", "src", "host", "10.10.10.12")
	before := s.drops()
	s.agree(trace.Request{VPC: "vpc-seed", From: "test1", Src: "10.10.10.12", Dst: "172.18.3.4"}, trace.Dropped, "spoofed", "", 3,
		func() {
			out, err := s.vm1.node.Cmd(testCtx(t), "ping", "-n", "-c", "3", "-i", "0.2", "-W", "1", "-I", "10.10.10.12", "172.18.3.4")
			if err == nil {
				t.Errorf("test1 got answers from 172.18.3.4 while sending from 10.10.10.12:\n%s", out)
			}
		})
	s.syncStats()
	after := s.drops()
	if d := hostDrops(after, "vpc-seed", "test1")["spoofed"] - hostDrops(before, "vpc-seed", "test1")["spoofed"]; d < 3 {
		t.Errorf("GET /v1/drops: test1 spoofed +%d, want at least 3 (its packets, dropped by its route entry's flow)", d)
	}
	if d := switchDrops(after, s.dpid)["spoofed"] - switchDrops(before, s.dpid)["spoofed"]; d < 3 {
		t.Errorf("GET /v1/drops: br-test spoofed +%d, want at least 3", d)
	}
	captureSettle()
	if n := len(capTest2.packets()); n != 0 {
		t.Errorf("test2 received %d packets from its own address sent by test1: %v", n, capTest2.packets())
	}

	// Traffic to an unassigned address of the vSwitch.
	capTest1 := s.startCapture(s.vm1.node, "host", "10.10.10.99")
	before = s.drops()
	res := s.agree(trace.Request{VPC: "vpc-seed", From: "test2", Dst: "10.10.10.99"}, trace.Dropped, "no_route", "", 3,
		func() {
			for _, from := range []string{"", "container"} {
				n := s.vm2.node
				if from != "" {
					n = s.vm2.container
				}
				out, err := n.Cmd(testCtx(t), "ping", "-n", "-c", "2", "-i", "0.2", "-W", "1", "10.10.10.99")
				if err == nil {
					t.Errorf("an answer from 10.10.10.99:\n%s", out)
				}
			}
		})
	sel := vswitchRouteDrop(vsw)
	if _, last := lastFlow(t, res); last.table != sel.table || last.priority != sel.priority || last.cookie != sel.cookie {
		t.Errorf("no_route at %s, want vsw-a's system route %s", last, sel)
	}
	s.syncStats()
	after = s.drops()
	if d := switchDrops(after, s.dpid)["no_route"] - switchDrops(before, s.dpid)["no_route"]; d < 4 {
		t.Errorf("GET /v1/drops: br-test no_route +%d, want at least 4", d)
	}
	captureSettle()
	if n := len(capTest1.packets()); n != 0 {
		t.Errorf("test1 received %d packets for 10.10.10.99: %v", n, capTest1.packets())
	}

	// The live trace's real packets agree.
	for _, c := range []struct {
		req            trace.Request
		verdict, table string
	}{
		{trace.Request{VPC: "vpc-seed", From: "test1", Src: "10.10.10.12", Dst: "172.18.3.4"}, trace.Dropped, "SpoofGuard"},
		{trace.Request{VPC: "vpc-seed", From: "test2", Dst: "10.10.10.99"}, trace.Dropped, "L3Forwarding"},
		{trace.Request{VPC: "vpc-seed", From: "test2", Dst: "10.10.99.5"}, trace.Delivered, "Output"},
	} {
		l := s.liveTrace(c.req).Live
		if !l.Matches || l.Verdict != c.verdict || l.TableName != c.table {
			t.Errorf("live %+v: %+v", c.req, *l)
		}
	}
}
