package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vpcflow/vpcflow/controller"
	"github.com/vpcflow/vpcflow/topology"
)

// ofctl runs ovs-ofctl -O OpenFlow13 against br-test's management socket.
func (s *seed) ofctl(args ...string) string {
	s.t.Helper()
	full := append([]string{"-O", "OpenFlow13"}, args[0], s.ovs.MgmtTarget("br-test"))
	full = append(full, args[1:]...)
	out, err := exec.Command("ovs-ofctl", full...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("ovs-ofctl %v: %v: %s", args, err, out)
	}
	return string(out)
}

func (f *fabric) drift() controller.DriftReport {
	f.t.Helper()
	var rep controller.DriftReport
	must(f.t, json.Unmarshal(f.rest("GET", "/v1/drift", nil, 200), &rep))
	return rep
}

// TestDriftRepairedWhileConnected (issue 19.2) edits br-test by hand while
// vpcflow stays connected: a route entry's flow deleted (test1's
// containers lose test2's), a foreign higher-priority flow in a vpcflow
// table that black-holes test2, another route's actions replaced by drop.
// The periodic check finds all three, repairs them by diff, and counts them
// (missing, unexpected, modified); traffic comes back by itself.
func TestDriftRepairedWhileConnected(t *testing.T) {
	s := newSeed(t, "--drift-interval", "500ms")
	ping(t, s.vm1.container, "172.18.3.4", 2)
	s.assertSwitchHoldsDesired()
	var vpc topology.VPC
	must(t, json.Unmarshal(s.rest("GET", "/v1/vpcs/vpc-seed", nil, 200), &vpc))
	before := s.drift().Total

	route := func(cidr string) string {
		return fmt.Sprintf("table=30,priority=124,ip,metadata=0x%x/0xffffffff,nw_dst=%s", vpc.ID, cidr)
	}
	s.ofctl("del-flows", "--strict", route("172.18.3.0/24"))
	s.ofctl("add-flow", "cookie=0x1,table=30,priority=500,ip,nw_dst=10.10.10.12,actions=drop")
	s.ofctl("mod-flows", "--strict", route("172.18.1.0/24")+",actions=drop")
	edited := time.Now()
	if _, err := s.vm1.container.Cmd(testCtx(t), "ping", "-n", "-c", "1", "-W", "1", "172.18.3.4"); err == nil {
		t.Log("the hand edit was already repaired before the first ping")
	}

	s.eventually("br-test repaired", 10*time.Second, func() error { return s.diffDesired(s.desiredFlows()) })
	repaired := time.Since(edited)
	ping(t, s.vm1.container, "172.18.3.4", 2)
	ping(t, s.vm2.container, "172.18.1.3", 2)
	ping(t, s.vm1.node, "10.10.10.12", 2)

	var sw controller.SwitchDrift
	s.eventually("drift counted", 5*time.Second, func() error {
		rep := s.drift()
		for _, x := range rep.Switches {
			if uint64(x.DPID) == s.dpid {
				sw = x
			}
		}
		if got := sw.Missing + sw.Unexpected + sw.Modified; got < 3 {
			return fmt.Errorf("counters %+v", sw.DriftCounters)
		}
		return nil
	})
	d := sw.DriftCounters
	if d.Missing-before.Missing != 1 || d.Unexpected-before.Unexpected != 1 || d.Modified-before.Modified != 1 || d.RepairedFlows-before.RepairedFlows != 3 {
		t.Errorf("drift counters %+v (before %+v): want one missing, one unexpected, one modified, 3 flow-mods", d, before)
	}
	if sw.Bridge != "br-test" || !sw.Connected || d.Checks == 0 || d.Errors != 0 {
		t.Errorf("switch drift report %+v", sw)
	}
	log := s.controllerLog()
	if !strings.Contains(log, "drift repaired") {
		t.Error("no 'drift repaired' line in the controller's log")
	}
	t.Logf("hand edits repaired %s after they were made (interval 500ms): %d checks, %d tables dumped, missing=%d unexpected=%d modified=%d, flows per table %v",
		ms(repaired), d.Checks, d.TablesDumped, d.Missing, d.Unexpected, d.Modified, sw.Installed)

	// Nothing changes now: checks go on, and send nothing.
	n := s.drift().Total
	time.Sleep(2 * time.Second)
	m := s.drift().Total
	if m.Checks <= n.Checks || m.RepairedFlows != n.RepairedFlows {
		t.Errorf("idle: checks %d → %d, repaired flows %d → %d", n.Checks, m.Checks, n.RepairedFlows, m.RepairedFlows)
	}
	s.assertSwitchHoldsDesired()
}

// TestDriftRepairedInSlices (issue 17) runs the seed with
// --dump-slice-flows 2, so that every table of more than two flows is read
// a slice by cookie at a time, as a table of more than 16,384 flows is by
// default, against a real OVS (it filters each slice by cookie mask):
//   - the flow list over REST, read a table per request and a big table a
//     slice per request, is every flow of br-test exactly once
//     (ovs-ofctl diff-flows against the list, and the same count);
//   - a route's actions edited in place leave its table's count alone, so
//     only its slice's turn can find it: the slice differs, its whole
//     table is checked and repaired, and traffic comes back by itself.
func TestDriftRepairedInSlices(t *testing.T) {
	s := newSeed(t, "--drift-interval", "100ms", "--dump-slice-flows", "2")
	ping(t, s.vm1.container, "172.18.3.4", 1)
	s.assertSwitchHoldsDesired()

	listed := s.switchFlows(s.dpid)
	dumped := s.flowDump("br-test")
	if len(listed) != len(dumped) {
		t.Errorf("the flow list read in slices has %d flows, ovs-ofctl dump-flows %d", len(listed), len(dumped))
	}
	var b strings.Builder
	for _, e := range listed {
		fmt.Fprintf(&b, "cookie=%s,table=%d,priority=%d", e.Cookie, e.Table, e.Priority)
		if e.Match != "" {
			b.WriteString("," + e.Match)
		}
		b.WriteString(" actions=" + e.Actions + "\n")
	}
	file := filepath.Join(s.lab.Dir(), "listed-br-test.flows")
	must(t, os.WriteFile(file, []byte(b.String()), 0o644))
	if out, err := exec.Command("ovs-ofctl", "-O", "OpenFlow13", "diff-flows", file, s.ovs.MgmtTarget("br-test")).CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("the flow list read in slices is not br-test (%v):\n%s", err, out)
	}

	var vpc topology.VPC
	must(t, json.Unmarshal(s.rest("GET", "/v1/vpcs/vpc-seed", nil, 200), &vpc))
	route := fmt.Sprintf("table=30,priority=124,ip,metadata=0x%x/0xffffffff,nw_dst=172.18.3.0/24", vpc.ID)
	before := s.drift().Total
	from := len(s.controllerLog())
	s.ofctl("mod-flows", "--strict", route+",actions=drop")
	s.eventually("br-test repaired", 30*time.Second, func() error { return s.diffDesired(s.desiredFlows()) })
	ping(t, s.vm1.container, "172.18.3.4", 2)

	after := s.drift().Total
	if after.Modified-before.Modified != 1 || after.Missing != before.Missing || after.Unexpected != before.Unexpected {
		t.Errorf("drift counters %+v (before %+v): want one modified flow and nothing else", after, before)
	}
	sliced := regexp.MustCompile(`drift check: a slice differs; checking its whole table.*"table": 30`)
	if !sliced.MatchString(s.controllerLog()[from:]) {
		t.Errorf("the edit was not found in a slice of table 30 (no %q in the controller's log)", sliced)
	}
	t.Logf("%d flows listed in slices; edit in place repaired after %d checks, %d tables or slices dumped",
		len(listed), after.Checks-before.Checks, after.TablesDumped-before.TablesDumped)
}

// TestBridgeDeleteIsNotAnError (issue 19.10): deleting a bridge vpcflow
// manages (its switch disconnects, its ports go) is an operator's action:
// logged, but not at ERROR level.
func TestBridgeDeleteIsNotAnError(t *testing.T) {
	s := newSeed(t)
	ping(t, s.vm1.container, "172.18.3.4", 1)
	from := len(s.controllerLog())
	_, err := s.ovs.Vsctl(testCtx(t), "del-br", "br-test")
	must(t, err)
	s.eventually("br-test gone from the switches", 10*time.Second, func() error {
		var sws []switchJSON
		must(t, json.Unmarshal(s.rest("GET", "/v1/switches", nil, 200), &sws))
		if len(sws) != 0 {
			return fmt.Errorf("switches %+v", sws)
		}
		return nil
	})
	time.Sleep(time.Second)
	after := s.controllerLog()[from:]
	for _, l := range strings.Split(after, "\n") {
		if strings.Contains(l, "ERROR") {
			t.Errorf("deleting a bridge logged an error: %s", l)
		}
	}
	t.Logf("controller log after del-br:\n%s", grepOut(after, "libovsdb"))
}
