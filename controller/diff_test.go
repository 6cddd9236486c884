package controller

import (
	"strings"
	"testing"

	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/ovsdb"
)

func changesText(cs []FlowChange) string {
	var b strings.Builder
	for _, c := range cs {
		if c.Delete {
			b.WriteString("delete ")
		} else {
			b.WriteString("install ")
		}
		b.WriteString(c.Flow.String())
		b.WriteByte('\n')
	}
	return b.String()
}

func desiredOf(flows []openflow.Flow) DesiredTable {
	t := DesiredTable{}
	for _, f := range flows {
		t[f.Key()] = f
	}
	return t
}

func TestDiffTableNothingToDoWhenEqual(t *testing.T) {
	vpc, _, _, _, _ := seedTopology(t)
	flows := seedFlows(t, vpc)
	if cs := DiffTable(desiredOf(flows), flows); len(cs) != 0 {
		t.Fatalf("equal tables gave changes:\n%s", changesText(cs))
	}
}

func TestDiffTableRepairsDrift(t *testing.T) {
	vpc, _, _, _, _ := seedTopology(t)
	flows := seedFlows(t, vpc)
	desired := desiredOf(flows)

	installed := append([]openflow.Flow(nil), flows...)
	// 1: a flow deleted by hand.
	missing := installed[3]
	installed = append(installed[:3], installed[4:]...)
	// 2: a flow whose actions were changed by hand.
	var changedKey openflow.Key
	for i := range installed {
		if installed[i].Table == TableL3Forwarding.ID && len(installed[i].Actions) > 0 {
			installed[i].Actions = []openflow.Action{openflow.Output(9)}
			changedKey = installed[i].Key()
			break
		}
	}
	// 3: a foreign flow in a vpcflow table, 4: a stale vpcflow flow in a
	// table vpcflow no longer uses, 5: an operator's flow elsewhere.
	foreign := openflow.Flow{Table: TableL3Forwarding.ID, Priority: 500, Cookie: 0x1,
		Match: openflow.NewMatch().EthType(openflow.EthTypeIPv4)}
	stale := openflow.Flow{Table: 99, Priority: 5, Cookie: HostCookie(42, DropNone)}
	operator := openflow.Flow{Table: 200, Priority: 1, Cookie: 0xbeef}
	installed = append(installed, foreign, stale, operator)

	cs := DiffTable(desired, installed)
	got := map[string]bool{}
	for _, c := range cs {
		got[changeID(c)] = true
	}
	want := []FlowChange{
		{Flow: missing},
		{Flow: desired[changedKey]},
		{Delete: true, Flow: foreign},
		{Delete: true, Flow: stale},
	}
	if len(cs) != len(want) {
		t.Errorf("got %d changes, want %d:\n%s", len(cs), len(want), changesText(cs))
	}
	for _, w := range want {
		if !got[changeID(w)] {
			t.Errorf("missing change: %s", changesText([]FlowChange{w}))
		}
	}
	if got[changeID(FlowChange{Delete: true, Flow: operator})] {
		t.Error("an operator's flow in a table vpcflow does not own was deleted")
	}
	if !cs[0].Delete {
		t.Errorf("deletes must come first:\n%s", changesText(cs))
	}
}

func changeID(c FlowChange) string {
	if c.Delete {
		return "del " + c.Flow.String()
	}
	return "add " + c.Flow.String()
}

// Moving a route entry to another VM rewrites its route in place (same
// key, new actions) and moves its source allowance to the new port.
func TestDiffOwnerMovedSubnet(t *testing.T) {
	vpc, _, hosts, subnets, at := seedTopology(t)
	s := subnets[1] // 172.18.3.0/24 → test2
	place := func(fs []openflow.Flow, dpid uint64) []PlacedFlow {
		out := make([]PlacedFlow, len(fs))
		for i, f := range fs {
			out[i] = PlacedFlow{DPID: dpid, Flow: f}
		}
		return out
	}
	old := place(SubnetFlows(vpc, s, hosts[1], at["test2"]), 0xabc)
	s.Host = "test1"
	now := place(SubnetFlows(vpc, s, hosts[0], at["test1"]), 0xabc)
	got := changesText(DiffOwner(old, now)[0xabc])
	// Deletes first; within each group by table, priority, then the match
	// numerically (ip's ether type 0x0800 before arp's 0x0806).
	want := "delete table=10, priority=100, cookie=0x7670030000000002, ip,in_port=2,nw_src=172.18.3.0/24 actions=goto_table:30\n" +
		"delete table=10, priority=100, cookie=0x7670030000000002, arp,in_port=2,arp_spa=172.18.3.0/24,arp_sha=52:58:00:98:c0:92 actions=goto_table:20\n" +
		"install table=10, priority=100, cookie=0x7670030000000002, ip,in_port=1,nw_src=172.18.3.0/24 actions=goto_table:30\n" +
		"install table=10, priority=100, cookie=0x7670030000000002, arp,in_port=1,arp_spa=172.18.3.0/24,arp_sha=52:58:00:98:c0:81 actions=goto_table:20\n" +
		"install table=30, priority=124, cookie=0x7670030000000002, ip,metadata=0x1/0xffffffff,nw_dst=172.18.3.0/24 actions=set_field:ee:ff:ff:ff:ff:ff->eth_src,set_field:52:58:00:98:c0:81->eth_dst,output:1\n"
	if got != want {
		t.Errorf("got:\n%swant:\n%s", got, want)
	}
	if cs := DiffOwner(now, now); len(cs) != 0 {
		t.Errorf("no change gave %v", cs)
	}
}

func TestKeepKnownDPIDsOverOVSDBRestart(t *testing.T) {
	old := []ovsdb.Bridge{{Name: "br-test", DPID: 0xabc}, {Name: "br-gone", DPID: 0x1}}
	now := []ovsdb.Bridge{{Name: "br-test"}, {Name: "br-new"}, {Name: "br-gone", DPID: 0x2}}
	got := keepKnownDPIDs(old, now)
	if got[0].DPID != 0xabc {
		t.Errorf("br-test lost its dpid over an empty datapath_id: %#x", got[0].DPID)
	}
	if got[1].DPID != 0 {
		t.Errorf("br-new got a dpid it never had: %#x", got[1].DPID)
	}
	if got[2].DPID != 0x2 {
		t.Errorf("br-gone's new dpid was overridden: %#x", got[2].DPID)
	}
}
