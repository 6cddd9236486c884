package openflow

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// dumpLine is how `ovs-ofctl -O OpenFlow13 --no-stats dump-flows` prints
// an installed flow: "cookie=0xC, table=T, priority=P,MATCH actions=A"
// (OVS leaves out a zero cookie and table 0).
func dumpLine(f *Flow) string {
	var b strings.Builder
	if f.Cookie != 0 {
		fmt.Fprintf(&b, "cookie=0x%x, ", f.Cookie)
	}
	if f.Table != 0 {
		fmt.Fprintf(&b, "table=%d, ", f.Table)
	}
	fmt.Fprintf(&b, "priority=%d", f.Priority)
	if len(f.Match) > 0 {
		b.WriteString("," + f.Match.String())
	}
	b.WriteString(" actions=" + f.ActionsString())
	return b.String()
}

// TestOVSEveryFieldAndAction installs the catalog (every Field and every
// Action vpcflow encodes, with the meters it uses) on a real OVS with our
// encoding, and checks the round trip the reconciler relies on: dump →
// decode gives back exactly the flows built (key, content and text), and
// `ovs-ofctl dump-flows` prints each flow exactly as Flow.String does.
// Then the other way: OVS's own encoding of our text (ovs-ofctl
// add-flows) dumps and decodes to the same flows.
func TestOVSEveryFieldAndAction(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	lab := newOVSLab(t, ctx)
	rec := newRecorder()
	addr := lab.startServer(t, rec, ServerOptions{})
	const br, dpid = "vpcofcat", uint64(0x00000000cafe0009)
	lab.addBridge(t, ctx, br, dpid)
	lab.setController(t, ctx, br, addr)
	sw := rec.waitConnected(t, dpid, 20*time.Second)

	desired := catalog()
	for _, id := range catalogMeters {
		if err := sw.AddMeter(ctx, MeterConfig{ID: id, Rate: 1000 * id, Burst: 100}); err != nil {
			t.Fatalf("AddMeter: %v", err)
		}
	}

	checkDump := func(t *testing.T, how string) {
		t.Helper()
		got := installedByKey(t, ctx, sw)
		if len(got) != len(desired) {
			t.Errorf("%s: switch has %d flows, want %d", how, len(got), len(desired))
		}
		for i := range desired {
			want := &desired[i]
			fs, ok := got[want.Key()]
			switch {
			case !ok:
				t.Errorf("%s: flow not found by key: %s", how, want)
			case !want.SameContent(&fs.Flow):
				t.Errorf("%s: decoded content differs:\n want %s\n got  %s", how, want, &fs.Flow)
			case fs.Flow.String() != want.String():
				t.Errorf("%s: decoded text differs:\n want %s\n got  %s", how, want, &fs.Flow)
			}
		}
	}
	checkOfctlText := func(t *testing.T) {
		t.Helper()
		lines, err := lab.ovs.OfctlDumpFlows(ctx, br, "--no-stats")
		if err != nil {
			t.Fatal(err)
		}
		want := make([]string, len(desired))
		for i := range desired {
			want[i] = dumpLine(&desired[i])
		}
		missing, extra := diffLines(want, lines)
		for _, l := range missing {
			t.Errorf("ovs-ofctl dump-flows lacks our text:\n %s", l)
		}
		for _, l := range extra {
			t.Errorf("ovs-ofctl dump-flows prints a line we do not:\n %s", l)
		}
	}
	flowsFile := func(t *testing.T) string {
		var b strings.Builder
		for i := range desired {
			b.WriteString(desired[i].String() + "\n")
		}
		file := filepath.Join(t.TempDir(), "flows.txt")
		if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return file
	}

	t.Run("our encoding", func(t *testing.T) {
		if err := sw.Apply(ctx, addMods(desired)); err != nil {
			t.Fatalf("Apply: %v", err)
		}
		checkDump(t, "installed with our encoding")
		checkOfctlText(t)
		if out, err := lab.ofctl(ctx, br, "diff-flows", flowsFile(t)); err != nil || strings.TrimSpace(out) != "" {
			t.Errorf("ovs-ofctl diff-flows against our text: %v\n%s", err, out)
		}
	})

	t.Run("OVS's encoding of our text", func(t *testing.T) {
		if out, err := lab.ofctl(ctx, br, "del-flows"); err != nil {
			t.Fatalf("del-flows: %v\n%s", err, out)
		}
		if out, err := lab.ofctl(ctx, br, "add-flows", flowsFile(t)); err != nil {
			t.Fatalf("ovs-ofctl add-flows of our text: %v\n%s", err, out)
		}
		checkDump(t, "installed by ovs-ofctl add-flows")
		checkOfctlText(t)
	})

	t.Run("meters", func(t *testing.T) {
		testMeters(t, ctx, lab, br, sw)
	})
}

// diffLines returns the lines of want missing from got and those of got
// not in want.
func diffLines(want, got []string) (missing, extra []string) {
	w, g := slices.Clone(want), slices.Clone(got)
	slices.Sort(w)
	slices.Sort(g)
	for _, l := range w {
		if _, found := slices.BinarySearch(g, l); !found {
			missing = append(missing, l)
		}
	}
	for _, l := range g {
		if _, found := slices.BinarySearch(w, l); !found {
			extra = append(extra, l)
		}
	}
	return missing, extra
}

// testMeters checks the meter API against OVS (the catalog's meters 1, 3
// and 7 exist, the catalog's flows use them).
func testMeters(t *testing.T, ctx context.Context, lab *ovsLab, br string, sw *Switch) {
	got, err := sw.DumpMeters(ctx, MeterAll)
	if err != nil {
		t.Fatalf("DumpMeters: %v", err)
	}
	want := []MeterConfig{{ID: 1, Rate: 1000, Burst: 100}, {ID: 3, Rate: 3000, Burst: 100}, {ID: 7, Rate: 7000, Burst: 100}}
	slices.SortFunc(got, func(a, b MeterConfig) int { return int(a.ID) - int(b.ID) })
	if !slices.Equal(got, want) {
		t.Errorf("DumpMeters = %+v, want %+v", got, want)
	}
	out, err := lab.ofctl(ctx, br, "dump-meters")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ovs-ofctl dump-meters:\n%s", out)
	for _, m := range want {
		if !strings.Contains(out, m.String()) {
			t.Errorf("ovs-ofctl dump-meters does not show %q", m.String())
		}
	}
	if err := sw.AddMeter(ctx, MeterConfig{ID: 1, Rate: 5}); err == nil {
		t.Error("AddMeter of an existing meter succeeded")
	} else {
		t.Logf("AddMeter of an existing meter: %v", err)
	}
	if err := sw.ModifyMeter(ctx, MeterConfig{ID: 3, Rate: 10, KBPS: true}); err != nil {
		t.Fatalf("ModifyMeter: %v", err)
	}
	if got, err := sw.DumpMeters(ctx, 3); err != nil || len(got) != 1 || got[0] != (MeterConfig{ID: 3, Rate: 10, KBPS: true}) {
		t.Errorf("after ModifyMeter: %+v, %v", got, err)
	}
	stats, err := sw.MeterStats(ctx, MeterAll)
	if err != nil || len(stats) != 3 {
		t.Fatalf("MeterStats: %+v, %v", stats, err)
	}
	for _, st := range stats {
		if len(st.Bands) != 1 || st.FlowCount == 0 {
			t.Errorf("meter stats %+v: want one band and the catalog's flows", st)
		}
	}
	// Deleting a meter deletes the flows that use it.
	before := len(installedByKey(t, ctx, sw))
	if err := sw.DeleteMeter(ctx, 7); err != nil {
		t.Fatalf("DeleteMeter: %v", err)
	}
	if got, err := sw.DumpMeters(ctx, MeterAll); err != nil || len(got) != 2 {
		t.Errorf("after DeleteMeter: %+v, %v", got, err)
	}
	if after := len(installedByKey(t, ctx, sw)); after != before-1 {
		t.Errorf("DeleteMeter(7) left %d of %d flows, want one fewer", after, before)
	}
	if err := sw.DeleteMeter(ctx, 4242); err != nil {
		t.Errorf("DeleteMeter of a meter that does not exist: %v", err)
	}
	if err := sw.AddMeter(ctx, MeterConfig{ID: 0, Rate: 1}); err == nil {
		t.Error("AddMeter accepted meter id 0")
	}
}
