package netlab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Need is one thing a test needs from the machine it runs on; Require and
// Check take a list of them. The constants cover what the harness itself
// uses; NeedBinary names any other program.
type Need string

const (
	// NeedRoot: the test runs as root (namespaces, veths, OVS daemons).
	NeedRoot Need = "root"
	// NeedIPRoute: iproute2's ip (namespaces, links, addresses).
	NeedIPRoute Need = "iproute2"
	// NeedEthtool: ethtool (checksum offload off on veths into OVS).
	NeedEthtool Need = "ethtool"
	// NeedOVS: the Open vSwitch daemons and tools (ovsdb-tool,
	// ovsdb-server, ovs-vswitchd, ovs-vsctl, ovs-ofctl, ovs-appctl) and the
	// Open_vSwitch schema (OVSSchema).
	NeedOVS Need = "openvswitch"
	// NeedTcpdump: tcpdump (Underlay.Capture).
	NeedTcpdump Need = "tcpdump"
	// NeedLab is everything New needs to build a lab: NeedRoot,
	// NeedIPRoute, NeedEthtool and NeedOVS. Require(t) with no needs means
	// NeedLab.
	NeedLab Need = "lab"
)

// NeedBinary is a Need for a program found in PATH (sbin directories
// included), e.g. NeedBinary("etcd").
func NeedBinary(name string) Need { return Need("bin:" + name) }

// expand turns NeedLab into its parts.
func (n Need) expand() []Need {
	if n == NeedLab {
		return []Need{NeedRoot, NeedIPRoute, NeedEthtool, NeedOVS}
	}
	return []Need{n}
}

// check returns what is missing for n, "" when nothing is.
func (n Need) check() string {
	missingBins := func(install string, bins ...string) string {
		var missing []string
		for _, b := range bins {
			if _, err := exec.LookPath(b); err != nil {
				missing = append(missing, b)
			}
		}
		if len(missing) == 0 {
			return ""
		}
		return "missing " + strings.Join(missing, ", ") + " (apt-get install " + install + ")"
	}
	switch n {
	case NeedRoot:
		if os.Geteuid() != 0 {
			return "not running as root"
		}
		return ""
	case NeedIPRoute:
		return missingBins("iproute2", "ip")
	case NeedEthtool:
		return missingBins("ethtool", "ethtool")
	case NeedTcpdump:
		return missingBins("tcpdump", "tcpdump")
	case NeedOVS:
		msg := missingBins("openvswitch-switch", "ovsdb-tool", "ovsdb-server", "ovs-vswitchd",
			"ovs-vsctl", "ovs-ofctl", "ovs-appctl")
		if _, err := os.Stat(OVSSchema); err != nil {
			if msg != "" {
				msg += "; "
			}
			msg += "missing OVS schema " + OVSSchema
		}
		return msg
	}
	if bin, ok := strings.CutPrefix(string(n), "bin:"); ok && bin != "" {
		if _, err := exec.LookPath(bin); err != nil {
			return "missing " + bin
		}
		return ""
	}
	return fmt.Sprintf("unknown netlab.Need %q", string(n))
}

// Check reports what of needs this machine lacks, or nil when it has
// everything. No needs means NeedLab.
func Check(needs ...Need) error {
	addSbinToPath()
	if len(needs) == 0 {
		needs = []Need{NeedLab}
	}
	var problems []string
	seen := map[Need]bool{}
	for _, need := range needs {
		for _, n := range need.expand() {
			if seen[n] {
				continue
			}
			seen[n] = true
			if msg := n.check(); msg != "" {
				problems = append(problems, msg)
			}
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// Available reports why labs cannot be built here, or nil if they can:
// Check(NeedLab).
func Available() error { return Check(NeedLab) }

// Require is the one check of what a test needs: it skips the test when
// something in needs is missing here, or fails it when VPCFLOW_E2E=1 (so a
// machine that is meant to run everything cannot silently skip). No needs
// means NeedLab, what New needs (New calls Require itself). Tests that do
// not build a lab name what they use:
//
//	netlab.Require(t, netlab.NeedRoot, netlab.NeedOVS)
//	netlab.Require(t, netlab.NeedBinary("ovs-ofctl"))
func Require(t testing.TB, needs ...Need) {
	t.Helper()
	err := Check(needs...)
	if err == nil {
		return
	}
	if os.Getenv(EnvE2E) == "1" {
		t.Fatalf("netlab: this test cannot run here: %v (%s=1 makes this fatal)", err, EnvE2E)
		return
	}
	t.Skipf("netlab: skipping, this test cannot run here: %v (set %s=1 to fail instead)", err, EnvE2E)
}
