package pipeline

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./controller/pipeline -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs (run go test ./controller/pipeline -update after checking the change):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// featureText is what one feature contributes for every owner of a
// snapshot — its flows, and its tables' defaults — as ovs-ofctl
// add-flows text per datapath, in ovs-ofctl order.
func featureText(p *Pipeline, f Feature, s *Snapshot) string {
	by := map[uint64][]openflow.Flow{}
	set := &FlowSet{p: p, feature: f}
	for _, o := range AllOwners(s.Topo) {
		f.Flows(s, o, set)
	}
	dpids := map[uint64]bool{}
	for _, pf := range set.flows {
		by[pf.DPID] = append(by[pf.DPID], pf.Flow)
		dpids[pf.DPID] = true
	}
	var defaults []openflow.Flow
	for _, d := range p.Misses() {
		for _, t := range f.Tables() {
			if d.Table == t.ID {
				defaults = append(defaults, d)
			}
		}
	}
	defaults = append(defaults, p.DatapathFlowsOf(f)...)
	var b strings.Builder
	fmt.Fprintf(&b, "# defaults (every switch)\n%s", text(dedupe(defaults)))
	var order []uint64
	for d := range dpids {
		order = append(order, d)
	}
	sort.Slice(order, func(i, j int) bool { return order[i] < order[j] })
	for _, d := range order {
		fmt.Fprintf(&b, "# dpid %s\n%s", topology.DPID(d), text(dedupe(by[d])))
	}
	return b.String()
}

// dedupe keeps one flow per key (shared flows are produced by each owner).
func dedupe(fs []openflow.Flow) []openflow.Flow {
	seen := map[openflow.Key]bool{}
	var out []openflow.Flow
	for _, f := range fs {
		if !seen[f.Key()] {
			seen[f.Key()] = true
			out = append(out, f)
		}
	}
	return out
}

func text(fs []openflow.Flow) string {
	sort.Slice(fs, func(i, j int) bool {
		a, b := &fs[i], &fs[j]
		if a.Table != b.Table {
			return a.Table < b.Table
		}
		if a.Priority != b.Priority {
			return a.Priority > b.Priority
		}
		return a.Match.String() < b.Match.String()
	})
	var b strings.Builder
	for _, f := range fs {
		b.WriteString(f.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// TestGoldenFeatures pins every feature's flows, in ovs-ofctl text, for
// the seed scenario on one bridge and for one VPC over three chassis.
func TestGoldenFeatures(t *testing.T) {
	p := Default()
	seed := mustStore(t, seedOps()...)
	multi := mustStore(t, chassisOps()...)
	for _, f := range p.Features() {
		t.Run(f.Name(), func(t *testing.T) {
			seed.Read(func(st *topology.State) {
				golden(t, f.Name()+".seed.golden", featureText(p, f, seedSnapshot(st)))
			})
			multi.Read(func(st *topology.State) {
				golden(t, f.Name()+".chassis.golden", featureText(p, f, chassisSnapshot(st)))
			})
		})
	}
}

// SeedTable is the whole table of br-test in the seed scenario, as the
// engine computes it; testdata/seed.golden holds it, and the e2e seed test
// checks that OVS holds exactly that.
func seedTable(t *testing.T) string {
	st := mustStore(t, seedOps()...)
	var out string
	st.Read(func(s *topology.State) {
		snap := seedSnapshot(s)
		p := Default()
		var flows []openflow.Flow
		flows = append(flows, p.Defaults()...)
		for _, o := range AllOwners(s) {
			for _, pf := range p.Flows(snap, o) {
				if pf.DPID == seedDPID {
					flows = append(flows, pf.Flow)
				}
			}
		}
		out = text(dedupe(flows))
	})
	return out
}

func TestGoldenSeedTable(t *testing.T) {
	golden(t, "seed.golden", seedTable(t))
}

const (
	docBegin = "<!-- begin: generated from the declarations (go test ./controller/pipeline -update) -->\n"
	docEnd   = "<!-- end: generated -->\n"
)

// TestDocsMatchDeclarations: docs/pipeline.md lists exactly the tables,
// registers, cookie kinds and drop reasons the features declare.
func TestDocsMatchDeclarations(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "pipeline.md")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i, j := strings.Index(doc, docBegin), strings.Index(doc, docEnd)
	if i < 0 || j < i {
		t.Fatalf("%s has no generated section (%q … %q)", path, docBegin, docEnd)
	}
	want := Default().Reference()
	got := doc[i+len(docBegin) : j]
	if got == want {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(doc[:i+len(docBegin)]+want+doc[j:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s is out of date with the declarations (go test ./controller/pipeline -update):\n--- got\n%s\n--- want\n%s", path, got, want)
}
