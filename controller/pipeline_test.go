package controller

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// seedTopology is the seed scenario of DESIGN.md: one vSwitch, two VMs on
// br-test ports 1 and 2, and each VM's container /24 routed to it.
func seedTopology(t *testing.T) (topology.VPC, topology.VSwitch, []topology.Host, []topology.Subnet, map[string]Attachment) {
	t.Helper()
	mac := func(s string) topology.MAC {
		m, err := topology.ParseMAC(s)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	vpc := topology.VPC{ID: 1, Name: "vpc-seed"}
	vsw := topology.VSwitch{ID: 1, VPC: "vpc-seed", Name: "vsw-a",
		CIDR: netip.MustParsePrefix("10.10.10.0/24"), Gateway: netip.MustParseAddr("10.10.10.1")}
	hosts := []topology.Host{
		{ID: 1, VPC: "vpc-seed", Name: "test1", VSwitch: "vsw-a", IP: netip.MustParseAddr("10.10.10.11"),
			MAC: mac("52:58:00:98:c0:81"), Bridge: "br-test", Interface: "vnet1"},
		{ID: 2, VPC: "vpc-seed", Name: "test2", VSwitch: "vsw-a", IP: netip.MustParseAddr("10.10.10.12"),
			MAC: mac("52:58:00:98:c0:92"), Bridge: "br-test", Interface: "vnet3"},
	}
	subnets := []topology.Subnet{
		{ID: 1, VPC: "vpc-seed", Name: "172.18.1.0-24", CIDR: netip.MustParsePrefix("172.18.1.0/24"), Host: "test1"},
		{ID: 2, VPC: "vpc-seed", Name: "172.18.3.0-24", CIDR: netip.MustParsePrefix("172.18.3.0/24"), Host: "test2"},
	}
	at := map[string]Attachment{"test1": {DPID: 0xabc, OFPort: 1}, "test2": {DPID: 0xabc, OFPort: 2}}
	return vpc, vsw, hosts, subnets, at
}

func seedFlows(t *testing.T, vpc topology.VPC) []openflow.Flow {
	_, vsw, hosts, subnets, at := seedTopology(t)
	flows := PipelineFlows()
	byName := map[string]topology.Host{}
	for _, h := range hosts {
		byName[h.Name] = h
		flows = append(flows, HostFlows(vpc, vsw, h, at[h.Name])...)
	}
	for _, s := range subnets {
		flows = append(flows, SubnetFlows(vpc, s, byName[s.Host], at[s.Host])...)
	}
	sort.SliceStable(flows, func(i, j int) bool { return lessFlow(&flows[i], &flows[j]) })
	return flows
}

func flowText(flows []openflow.Flow) string {
	var b strings.Builder
	for i := range flows {
		b.WriteString(flows[i].String())
		b.WriteByte('\n')
	}
	return b.String()
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run go test -update once to create it): %v", err)
	}
	if got != string(want) {
		t.Errorf("flows differ from %s (go test ./controller -update rewrites it)\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// TestSeedPipelineFlows pins the whole seed-scenario table as ovs-ofctl text.
// The e2e test proves the same text is what OVS ends up holding.
func TestSeedPipelineFlows(t *testing.T) {
	vpc, _, _, _, _ := seedTopology(t)
	checkGolden(t, "seed_flows.txt", flowText(seedFlows(t, vpc)))
}

func TestSeedPipelineFlowsDecTTL(t *testing.T) {
	vpc, _, _, _, _ := seedTopology(t)
	vpc.DecTTL = true
	for _, f := range seedFlows(t, vpc) {
		if f.Table != TableL3Forwarding.ID || len(f.Actions) == 0 {
			continue
		}
		if !strings.Contains(f.ActionsString(), "dec_ttl,output:") {
			t.Errorf("route without dec_ttl in a dec_ttl VPC: %s", f.String())
		}
	}
}

func TestRoutePriorityIsPrefixLength(t *testing.T) {
	vpc, _, hosts, _, at := seedTopology(t)
	wide := topology.Subnet{ID: 7, VPC: vpc.Name, Name: "w", CIDR: netip.MustParsePrefix("172.16.0.0/12"), Host: "test1"}
	narrow := topology.Subnet{ID: 8, VPC: vpc.Name, Name: "n", CIDR: netip.MustParsePrefix("172.18.3.0/24"), Host: "test2"}
	prio := func(s topology.Subnet, h topology.Host) uint16 {
		for _, f := range SubnetFlows(vpc, s, h, at[h.Name]) {
			if f.Table == TableL3Forwarding.ID {
				return f.Priority
			}
		}
		t.Fatalf("no route for %s", s.Name)
		return 0
	}
	if pw, pn := prio(wide, hosts[0]), prio(narrow, hosts[1]); pn <= pw {
		t.Errorf("/24 priority %d not above /12 priority %d", pn, pw)
	}
	if p := prio(wide, hosts[0]); p != 112 {
		t.Errorf("/12 route priority = %d, want 112", p)
	}
}

func TestOwnAddressARPIsNotAnswered(t *testing.T) {
	vpc, vsw, hosts, _, at := seedTopology(t)
	var own, answer *openflow.Flow
	flows := HostFlows(vpc, vsw, hosts[0], at["test1"])
	for i := range flows {
		f := &flows[i]
		if f.Table != TableARPResponder.ID {
			continue
		}
		if len(f.Actions) == 0 {
			own = f
		} else {
			answer = f
		}
	}
	if own == nil || answer == nil {
		t.Fatalf("want a drop and an answer in ARPResponder, got %s", flowText(flows))
	}
	if own.Priority <= answer.Priority {
		t.Errorf("own-address drop (prio %d) must beat the responder (prio %d)", own.Priority, answer.Priority)
	}
	if got := own.Match.String(); got != "arp,in_port=1,arp_tpa=10.10.10.11,arp_op=1" {
		t.Errorf("own-address match = %q", got)
	}
	if r := ParseCookie(own.Cookie); r.Reason != DropARPNotAnswered || r.Owner != OwnerHost || r.ID != 1 {
		t.Errorf("own-address drop cookie %#x parses as %+v", own.Cookie, r)
	}
}

func TestCookieRoundTrip(t *testing.T) {
	c := HostCookie(0xdeadbeef, DropSpoofed)
	p := ParseCookie(c)
	if !p.Ours || p.Owner != OwnerHost || p.Reason != DropSpoofed || p.ID != 0xdeadbeef {
		t.Errorf("ParseCookie(%#x) = %+v", c, p)
	}
	if ParseCookie(0x1234).Ours {
		t.Error("a foreign cookie parsed as ours")
	}
}

// TestPipelineDocListsEveryTable keeps docs/pipeline.md in step with
// Tables(): every table has its section, named as in the code.
func TestPipelineDocListsEveryTable(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "pipeline.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range Tables() {
		head := fmt.Sprintf("## Table %d — %s", tb.ID, tb.Name)
		if !strings.Contains(string(doc), head) {
			t.Errorf("docs/pipeline.md has no section %q", head)
		}
	}
}
