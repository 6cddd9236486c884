package controller

import (
	"fmt"
	"sort"
	"testing"

	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/ovsdb"
)

func TestChangedPorts(t *testing.T) {
	old := []ovsdb.Bridge{
		{Name: "br-test", DPID: 1, Ports: map[string]ovsdb.Port{"vnet1": {OFPort: 1}, "vnet3": {OFPort: 2}, "gone": {OFPort: 4}}},
		{Name: "br-old", DPID: 2, Ports: map[string]ovsdb.Port{"a": {OFPort: 1}}},
		{Name: "br-re", DPID: 3, Ports: map[string]ovsdb.Port{"x": {OFPort: 1}}},
	}
	now := []ovsdb.Bridge{
		{Name: "br-test", DPID: 1, Ports: map[string]ovsdb.Port{"vnet1": {OFPort: 1}, "vnet3": {OFPort: 12}, "new": {OFPort: 0}}},
		{Name: "br-re", DPID: 9, Ports: map[string]ovsdb.Port{"x": {OFPort: 1}}},
	}
	var got []string
	for _, p := range changedPorts(old, now) {
		got = append(got, p.bridge+"/"+p.iface)
	}
	sort.Strings(got)
	want := "[br-old/a br-re/x br-re/x br-test/gone br-test/new br-test/vnet3]"
	if fmt.Sprint(got) != want {
		t.Errorf("changedPorts = %v, want %s", got, want)
	}
	if n := len(changedPorts(now, now)); n != 0 {
		t.Errorf("an unchanged port map reported %d changes", n)
	}
}

func TestPortIndex(t *testing.T) {
	p := newPortIndex()
	h := pipeline.Owner{Kind: pipeline.OwnerHost, ID: 7}
	k := portKey{bridge: "br", iface: "vnet1"}
	p.set(h, k, true)
	if got := p.lookup(k); len(got) != 1 || got[0] != h {
		t.Fatalf("lookup = %v", got)
	}
	k2 := portKey{endpoint: "unix:/db", bridge: "br", iface: "vnet1"}
	p.set(h, k2, true) // the host moved
	if len(p.lookup(k)) != 0 || len(p.lookup(k2)) != 1 {
		t.Errorf("move not reflected: %v / %v", p.lookup(k), p.lookup(k2))
	}
	p.set(h, portKey{}, false)
	if len(p.hosts) != 0 || len(p.keyOf) != 0 {
		t.Errorf("index not empty after forgetting: %v %v", p.hosts, p.keyOf)
	}
}
