package openflow

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// requireOfctl skips the test when ovs-ofctl is not installed, or fails it
// when VPCFLOW_E2E=1. ovs-ofctl's parse-flow and ofp-print need no switch
// and no root: they are OVS's own parser, encoder and printer.
func requireOfctl(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("ovs-ofctl"); err != nil {
		if os.Getenv("VPCFLOW_E2E") == "1" {
			t.Fatal("VPCFLOW_E2E=1 but ovs-ofctl is not installed (apt-get install openvswitch-switch)")
		}
		t.Skip("ovs-ofctl not installed")
	}
}

func runOfctl(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ovs-ofctl", append([]string{"-O", "OpenFlow13"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ovs-ofctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

var (
	ofpPrintLineRe = regexp.MustCompile(`(?m)^OFPT_FLOW_MOD \(OF1\.3\) \(xid=0x[0-9a-f]+\): (.*)$`)
	hexDumpLineRe  = regexp.MustCompile(`(?m)^[0-9a-f]{8}  ((?:[0-9a-f]{2}[ -]){0,15}[0-9a-f]{2})`)
)

// ofctlLine is how ovs-ofctl's ofp-print and parse-flow print an add of f:
// "ADD table:T priority=P,MATCH cookie:0xC actions=ACTIONS".
func ofctlLine(f *Flow) string {
	var b strings.Builder
	b.WriteString("ADD ")
	if f.Table != 0 {
		fmt.Fprintf(&b, "table:%d ", f.Table)
	}
	fmt.Fprintf(&b, "priority=%d", f.Priority)
	if len(f.Match) > 0 {
		b.WriteString("," + f.Match.String())
	}
	if f.Cookie != 0 {
		fmt.Fprintf(&b, " cookie:0x%x", f.Cookie)
	}
	b.WriteString(" actions=" + f.ActionsString())
	return b.String()
}

// ofctlParse feeds text to `ovs-ofctl parse-flow` and returns OVS's print
// of it and OVS's own OpenFlow 1.3 encoding.
func ofctlParse(t *testing.T, text string) (string, []byte) {
	t.Helper()
	out := runOfctl(t, "-mmmmm", "parse-flow", text)
	m := ofpPrintLineRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("parse-flow %q printed no flow mod:\n%s", text, out)
	}
	var hx strings.Builder
	for _, l := range hexDumpLineRe.FindAllStringSubmatch(out, -1) {
		hx.WriteString(strings.NewReplacer(" ", "", "-", "").Replace(l[1]))
	}
	raw, err := hex.DecodeString(hx.String())
	if err != nil || len(raw) < flowModFixedLen || int(be.Uint16(raw[2:])) != len(raw) {
		t.Fatalf("parse-flow %q: bad hex dump (%v):\n%s", text, err, out)
	}
	return strings.TrimSpace(m[1]), raw
}

// ofctlPrint runs `ovs-ofctl ofp-print` on an encoded flow mod.
func ofctlPrint(t *testing.T, msg []byte) string {
	t.Helper()
	out := runOfctl(t, "ofp-print", hex.EncodeToString(msg))
	m := ofpPrintLineRe.FindStringSubmatch(out)
	if m == nil || strings.Contains(out, "***") {
		t.Fatalf("ofp-print could not decode our bytes:\n%s", out)
	}
	return strings.TrimSpace(m[1])
}

// TestCatalogAgainstOVSOfctl checks every Field and Action of the catalog
// against OVS 3.1's own code, offline: OVS prints our text as we do; OVS
// reads our bytes as our text; OVS's encoding of our text decodes to our
// flow.
func TestCatalogAgainstOVSOfctl(t *testing.T) {
	requireOfctl(t)
	for _, f := range catalog() {
		t.Run(fmt.Sprintf("%d-%d", f.Table, f.Priority), func(t *testing.T) { checkAgainstOfctl(t, f) })
	}
}

// knownDifference is the one way our bytes differ from OVS's for the same
// text: OVS writes max_len 0 in an output to a normal port, vpcflow always
// OFPCML_NO_BUFFER (the field matters only for the controller port).
var knownDifference = regexp.MustCompile(`00000010([0-9a-f]{8})(?:ffff|0000)(000000000000)`)

// natSinglePort reports the other: a NAT to a single port, which vpcflow
// encodes as the range port-port (see buildNAT: libOpenflow cannot encode
// a minimum port alone).
func natSinglePort(f *Flow) bool {
	for _, a := range f.Actions {
		if c, ok := a.CT(); ok && c.NAT != nil && c.NAT.MinPort != 0 && c.NAT.normalize().MaxPort == 0 {
			return true
		}
	}
	return false
}

func checkAgainstOfctl(t *testing.T, f Flow) {
	{
		want := ofctlLine(&f)
		printed, raw := ofctlParse(t, f.String())
		if printed != want {
			t.Errorf("ovs-ofctl prints our text differently:\n ours %s\n ovs  %s", want, printed)
		}
		ours := mustEncode(t, FlowMod{Command: FlowAdd, Flow: f})
		if got := ofctlPrint(t, ours); got != want {
			t.Errorf("ovs-ofctl reads our bytes as something else:\n ours %s\n ovs  %s", want, got)
		}
		fs, err := DecodeFlowStats(statsEntry(raw, 0, 0, 0))
		if err != nil || len(fs) != 1 || fs[0].Flow.Key() != f.Key() || !f.SameContent(&fs[0].Flow) {
			t.Errorf("OVS's encoding of our text decodes to something else (%v):\n want %s\n got  %v", err, &f, fs)
		}
		ourInst, ovsInst := instructionsOf(t, ours), instructionsOf(t, raw)
		norm := func(b []byte) string {
			return knownDifference.ReplaceAllStringFunc(hex.EncodeToString(b), func(m string) string {
				if m[8:16] == "fffffffd" { // the controller port: max_len matters
					return m
				}
				return m[:16] + "xxxx" + m[20:]
			})
		}
		if norm(ourInst) != norm(ovsInst) && !natSinglePort(&f) {
			t.Errorf("instructions differ from OVS's bytes for %s:\n ours %x\n ovs  %x", f.ActionsString(), ourInst, ovsInst)
		}
	}
}

// instructionsOf returns the instructions of an encoded flow mod.
func instructionsOf(t *testing.T, fm []byte) []byte {
	t.Helper()
	_, n, err := decodeMatch(fm[flowModFixedLen:])
	if err != nil {
		t.Fatal(err)
	}
	return fm[flowModFixedLen+n:]
}
