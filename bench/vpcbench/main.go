// Command vpcbench measures vpcflow against a real Open vSwitch: bulk
// programming, single-change convergence, resync after a controller or
// ovs-vswitchd restart, and controller memory, at N hosts (one route entry
// each), side by side with what ovs-ofctl needs for the same flows.
//
// It needs root (network namespaces, a private OVS on the userspace
// datapath, see e2e/netlab) and a built bin/vpcflow. `make bench` runs it.
//
//	BENCH_N=1000,10000,50000 vpcbench -bin bin/vpcflow [-markdown]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vpcflow/vpcflow/api"
	"github.com/vpcflow/vpcflow/e2e/netlab"
	"github.com/vpcflow/vpcflow/topology"
)

// result is one column of the table.
type result struct {
	N     int
	Flows int

	BulkTook      time.Duration // first REST call → last REST call returned (flows committed)
	BulkVerified  bool          // dump-aggregate showed every flow afterwards
	OfctlBundle   time.Duration // ovs-ofctl --bundle add-flows, same flows, fresh bridge
	SameFlowsDiff int           // lines of ovs-ofctl diff-flows between the two bridges (-1: not run)

	AddLat, DelLat []time.Duration

	// Controller restart with N present.
	RestartREST      time.Duration // process start → REST API answers (store loaded, flows computed)
	RestartTotal     time.Duration // process start → switch listed as reconciled
	RestartTook      time.Duration // controller's "took": dump + diff + apply
	RestartConnect   time.Duration // "switch connected" → "switch reconciled" (log times)
	RestartFlowMods  int           // added + deleted after the restart
	RestartInstalled int
	OfctlDump        time.Duration // ovs-ofctl dump-flows of the same table
	DumpLines        int

	// ovs-vswitchd restart with N present.
	VswitchdTotal   time.Duration // StartVswitchd called → every flow back
	VswitchdTook    time.Duration // controller's "took": dump + diff + apply
	VswitchdConnect time.Duration // "switch connected" → "switch reconciled" (log times)
	VswitchdMods    int

	RSSEmpty, RSSBulk, RSSRestart, HWMBulk int64

	Obs observeResult // metrics scrape, trace and topology page with N present

	Load string // /proc/loadavg (1, 5 min) when the size started: other work on the machine skews results
}

func main() {
	bin := flag.String("bin", "bin/vpcflow", "vpcflow binary to run")
	sizes := flag.String("n", envOr("BENCH_N", "1000,10000,50000"), "host counts, comma separated (env BENCH_N); none: skip this scenario")
	batch := flag.Int("batch", 5000, "objects per REST request in the bulk load")
	ops := flag.Int("ops", 200, "single-change operations per kind (add, delete) for the latency percentiles")
	markdown := flag.Bool("markdown", false, "print the table as Markdown")
	verbose := flag.Bool("v", false, "log every command the lab runs")
	diff := flag.Bool("diff", true, "check with ovs-ofctl diff-flows that vpcflow installed exactly the ovs-ofctl file")
	keepLogs := flag.String("keep-logs", "", "copy the controller's and OVS's logs of each size to this directory")
	logLevel := flag.String("ctrl-log-level", "info", "vpcflow --log-level (debug logs every push with its duration)")
	profile := flag.String("profile", "", "write CPU and heap profiles of each phase here (needs a profiling build of vpcflow, see docs/performance.md)")
	sg := flag.Bool("sg", true, "also measure security groups (-sg-hosts hosts in -sg-groups groups of -sg-rules rules)")
	sgHosts := flag.Int("sg-hosts", 1000, "hosts of the security group scenario")
	sgGroups := flag.Int("sg-groups", 10, "security groups of the scenario (1..32)")
	sgRules := flag.Int("sg-rules", 200, "rules per group (1..200)")
	natRun := flag.Bool("nat", true, "also measure new connections per second through SNAT next to the same traffic without NAT")
	natSecs := flag.Duration("nat-seconds", 5*time.Second, "length of one NAT scenario pass")
	natWorkers := flag.Int("nat-workers", 8, "concurrent connecting goroutines in the NAT scenario")
	natPasses := flag.Int("nat-passes", 2, "NAT scenario passes (each: no NAT, then SNAT)")
	flag.Parse()

	ns, err := parseSizes(*sizes)
	if err != nil {
		fatalf("%v", err)
	}
	if err := netlab.Available(); err != nil {
		fatalf("%v", err)
	}
	binPath, err := filepath.Abs(*bin)
	if err != nil {
		fatalf("%v", err)
	}
	if _, err := os.Stat(binPath); err != nil {
		fatalf("%v (run make build)", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	start := time.Now()
	var results []result
	for _, n := range ns {
		fmt.Fprintf(os.Stderr, "== N=%d hosts (%d flows)\n", n, expectedFlows(n))
		prof, err := newProfiler(*profile, n)
		if err != nil {
			fatalf("%v", err)
		}
		r, err := runOne(ctx, binPath, n, *batch, *ops, *diff, *verbose, *logLevel, *keepLogs, prof)
		if err != nil {
			_ = netlab.CloseAll()
			fatalf("N=%d: %v", n, err)
		}
		results = append(results, r)
	}
	var sgRes *sgResult
	if *sg {
		fmt.Fprintf(os.Stderr, "== security groups: %d hosts, %d groups × %d rules\n", *sgHosts, *sgGroups, *sgRules)
		r, err := runSecurityGroups(ctx, binPath, *sgHosts, *sgGroups, *sgRules, *ops, *diff, *verbose, *logLevel, *keepLogs)
		if err != nil {
			_ = netlab.CloseAll()
			fatalf("security groups: %v", err)
		}
		sgRes = &r
	}
	var natRes *natResult
	if *natRun {
		fmt.Fprintf(os.Stderr, "== NAT: new connections per second, %d × (%v without NAT, %v through SNAT)\n", *natPasses, *natSecs, *natSecs)
		r, err := runNAT(ctx, binPath, *natSecs, *natWorkers, *natPasses, *verbose, *logLevel)
		if err != nil {
			_ = netlab.CloseAll()
			fatalf("nat: %v", err)
		}
		natRes = &r
	}
	fmt.Fprintf(os.Stderr, "== done in %v\n\n", time.Since(start).Round(time.Second))
	if len(results) > 0 {
		printTable(os.Stdout, results, *markdown)
	}
	if sgRes != nil {
		printSecurityGroups(os.Stdout, *sgRes, *markdown)
	}
	if natRes != nil {
		printNAT(os.Stdout, *natRes, *markdown)
	}
}

func runOne(ctx context.Context, bin string, n, batch, ops int, diff, verbose bool, logLevel, keepLogs string, prof *profiler) (res result, err error) {
	res = result{N: n, Flows: expectedFlows(n), SameFlowsDiff: -1, Load: loadAvg()}
	step := func(f string, a ...any) { fmt.Fprintf(os.Stderr, "   "+f+"\n", a...) }
	step("load average %s", res.Load)

	e, err := newEnv(ctx, fmt.Sprintf("vpcbench-%d", n), bin, logLevel, verbose)
	if err != nil {
		return res, err
	}
	defer func() {
		if err != nil {
			fmt.Fprintf(os.Stderr, "controller log %s (tail):\n%s\n", e.logPath, tailFile(e.logPath, 15))
		}
		for _, w := range e.logProblems(10) {
			fmt.Fprintf(os.Stderr, "   controller said: %s\n", w)
		}
		if keepLogs != "" {
			if kerr := e.copyLogs(keepLogs, n); kerr != nil {
				fmt.Fprintf(os.Stderr, "   keeping logs: %v\n", kerr)
			}
		}
		if cerr := e.close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	time.Sleep(500 * time.Millisecond) // let the empty controller settle
	if res.RSSEmpty, _, err = rss(e.ctrl.Pid); err != nil {
		return res, err
	}

	// ---- 1. bulk ----
	vpc, err := e.api.CreateVPC(ctx, api.VPCRequest{Name: benchVPC})
	if err != nil {
		return res, err
	}
	vsw, err := e.api.CreateVSwitch(ctx, benchVPC, api.VSwitchRequest{Name: benchVSwitch, CIDR: vswitchCIDR})
	if err != nil {
		return res, err
	}
	hostReqs := make([]api.HostRequest, n)
	subReqs := make([]api.SubnetRequest, n)
	for i := range n {
		hostReqs[i] = hostRequest(i, e.dpid)
		subReqs[i] = subnetRequest(i)
	}
	hosts := make([]topology.Host, 0, n)
	subnets := make([]topology.Subnet, 0, n)
	prof.start(ctx, e, "bulk")
	t0 := time.Now()
	for i := 0; i < n; i += batch {
		hs, err := e.api.CreateHosts(ctx, benchVPC, hostReqs[i:min(i+batch, n)])
		if err != nil {
			return res, fmt.Errorf("bulk hosts [%d:]: %w", i, err)
		}
		hosts = append(hosts, hs...)
	}
	for i := 0; i < n; i += batch {
		ss, err := e.api.CreateSubnets(ctx, benchVPC, subReqs[i:min(i+batch, n)])
		if err != nil {
			return res, fmt.Errorf("bulk subnets [%d:]: %w", i, err)
		}
		subnets = append(subnets, ss...)
	}
	res.BulkTook = time.Since(t0)
	prof.stop(ctx, e)
	got, err := flowCount(ctx, e.target())
	if err != nil {
		return res, err
	}
	if got != res.Flows {
		return res, fmt.Errorf("after the bulk load the switch has %d flows, want %d", got, res.Flows)
	}
	res.BulkVerified = true
	res.RSSBulk, res.HWMBulk, _ = rss(e.ctrl.Pid)
	prof.heap(ctx, e, "bulk")
	step("bulk: %v (%.0f flows/s), RSS %s", res.BulkTook.Round(time.Millisecond),
		float64(res.Flows)/res.BulkTook.Seconds(), mib(res.RSSBulk))

	// The same flows with ovs-ofctl --bundle add-flows into a fresh bridge.
	flowFile := filepath.Join(e.lab.Dir(), "flows.txt")
	nf, err := writeFlowFile(flowFile, vpc, vsw, hosts, subnets)
	if err != nil {
		return res, err
	}
	if nf != res.Flows {
		return res, fmt.Errorf("flow file has %d flows, want %d", nf, res.Flows)
	}
	// A second, fresh OVS in its own namespace, so that ovs-ofctl loads into
	// an ovs-vswitchd holding nothing else (as vpcflow's bulk load did), and
	// removing those flows afterwards does not load the bench's OVS.
	refNode, err := e.lab.AddNode("ref")
	if err != nil {
		return res, err
	}
	refOVS, err := refNode.StartOVS(ctx)
	if err != nil {
		return res, err
	}
	if err := refOVS.AddBridge(ctx, refBridge); err != nil {
		return res, err
	}
	refTarget := refOVS.MgmtTarget(refBridge)
	if res.OfctlBundle, err = ofctl(ctx, nil, refTarget, []string{"--bundle"}, "add-flows", flowFile); err != nil {
		return res, err
	}
	if got, err := flowCount(ctx, refTarget); err != nil || got != res.Flows {
		return res, fmt.Errorf("ovs-ofctl loaded %d flows, want %d (%v)", got, res.Flows, err)
	}
	step("ovs-ofctl --bundle add-flows: %v", res.OfctlBundle.Round(time.Millisecond))
	if diff {
		// diff-flows exits 1 when the tables differ; count its lines.
		var lc lineCounter
		_, derr := ofctl(ctx, &lc, e.target(), nil, "diff-flows", refTarget)
		res.SameFlowsDiff = lc.n
		if derr != nil && lc.n == 0 {
			return res, derr
		}
		step("diff-flows vpcflow's %s, ovs-ofctl's %s: %d lines", bridge, refBridge, lc.n)
	}
	if err := refOVS.StopVswitchd(); err != nil {
		return res, err
	}
	if err := refOVS.StopOVSDB(); err != nil {
		return res, err
	}
	time.Sleep(time.Second) // let the machine settle before measuring latency

	// ---- observability: /metrics, trace, the topology page ----
	if res.Obs, err = measureObserve(ctx, e, n); err != nil {
		return res, fmt.Errorf("metrics, trace and page: %w", err)
	}
	step("scrape p50 %v (flow stats refreshed in %v), trace first %v then p50 %v, page %v (%d KB)",
		pct(res.Obs.Scrapes, 50).Round(time.Millisecond), res.Obs.FlowRefresh.Round(time.Millisecond),
		res.Obs.TraceFirst.Round(time.Millisecond), pct(res.Obs.Traces, 50).Round(time.Microsecond),
		res.Obs.PageLoad.Round(time.Millisecond), res.Obs.PageKB)
	time.Sleep(time.Second)

	// ---- 2. convergence: single subnet add / delete ----
	prof.start(ctx, e, "converge")
	perSubnet := subnetFlowCount()
	names := make([]string, ops)
	for j := range ops {
		req := api.SubnetRequest{CIDR: subnetCIDR(12, j), Host: hostName((j * 7919) % n)}
		t := time.Now()
		s, err := e.api.CreateSubnet(ctx, benchVPC, req)
		if err != nil {
			return res, fmt.Errorf("subnet add %d: %w", j, err)
		}
		res.AddLat = append(res.AddLat, time.Since(t))
		names[j] = s.Name
	}
	if got, err := flowCount(ctx, e.target()); err != nil || got != res.Flows+ops*perSubnet {
		return res, fmt.Errorf("after %d subnet adds the switch has %d flows, want %d (%v)", ops, got, res.Flows+ops*perSubnet, err)
	}
	for j, name := range names {
		t := time.Now()
		if err := e.api.DeleteSubnet(ctx, benchVPC, name); err != nil {
			return res, fmt.Errorf("subnet delete %d: %w", j, err)
		}
		res.DelLat = append(res.DelLat, time.Since(t))
	}
	if got, err := flowCount(ctx, e.target()); err != nil || got != res.Flows {
		return res, fmt.Errorf("after %d subnet deletes the switch has %d flows, want %d (%v)", ops, got, res.Flows, err)
	}
	prof.stop(ctx, e)
	step("single add p50 %v p99 %v; delete p50 %v p99 %v",
		pct(res.AddLat, 50), pct(res.AddLat, 99), pct(res.DelLat, 50), pct(res.DelLat, 99))

	// ---- 3a. resync after a controller restart ----
	var lc lineCounter
	if res.OfctlDump, err = ofctl(ctx, &lc, e.target(), nil, "dump-flows"); err != nil {
		return res, err
	}
	res.DumpLines = lc.n
	if err := e.stopController(); err != nil {
		return res, err
	}
	prof.fromStart("restart")
	t0 = time.Now()
	if err := e.startController(ctx); err != nil {
		return res, err
	}
	res.RestartREST = time.Since(t0)
	if _, err := e.waitSwitch(ctx, t0, 2*time.Minute); err != nil {
		return res, err
	}
	res.RestartTotal = time.Since(t0)
	prof.stop(ctx, e)
	rl, err := reconciledLines(e.logPath)
	if err != nil || len(rl) == 0 {
		return res, fmt.Errorf("no \"switch reconciled\" line in %s (%v)", e.logPath, err)
	}
	last := rl[len(rl)-1]
	res.RestartTook = secs(last.Took)
	res.RestartConnect = last.FromConnect
	res.RestartFlowMods = last.Added + last.Deleted
	res.RestartInstalled = last.Installed
	if got, err := flowCount(ctx, e.target()); err != nil || got != res.Flows {
		return res, fmt.Errorf("after the controller restart the switch has %d flows, want %d (%v)", got, res.Flows, err)
	}
	time.Sleep(500 * time.Millisecond)
	res.RSSRestart, _, _ = rss(e.ctrl.Pid)
	prof.heap(ctx, e, "restart")
	step("controller restart: REST up %v, reconciled after %v (connect→reconciled %v, took %v, %d flow-mods); dump-flows %v",
		res.RestartREST.Round(time.Millisecond), res.RestartTotal.Round(time.Millisecond), res.RestartConnect,
		res.RestartTook.Round(time.Millisecond), res.RestartFlowMods, res.OfctlDump.Round(time.Millisecond))

	// ---- 3b. ovs-vswitchd restart: every flow is gone and comes back ----
	before := len(rl)
	if err := e.ovs.StopVswitchd(); err != nil {
		return res, err
	}
	prof.start(ctx, e, "vswitchd")
	t0 = time.Now()
	if err := e.ovs.StartVswitchd(ctx); err != nil {
		return res, err
	}
	var back reconciled
	err = e.poll(ctx, "flows back after ovs-vswitchd restart", 3*time.Minute, 5*time.Millisecond, func() (bool, error) {
		rl, err := reconciledLines(e.logPath)
		if err != nil {
			return false, err
		}
		if len(rl) > before {
			back = rl[len(rl)-1]
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return res, err
	}
	res.VswitchdTotal = time.Since(t0)
	prof.stop(ctx, e)
	prof.heap(ctx, e, "vswitchd")
	res.VswitchdTook = secs(back.Took)
	res.VswitchdConnect = back.FromConnect
	res.VswitchdMods = back.Added + back.Deleted
	if got, err := flowCount(ctx, e.target()); err != nil || got != res.Flows {
		return res, fmt.Errorf("after the ovs-vswitchd restart the switch has %d flows, want %d (%v)", got, res.Flows, err)
	}
	step("ovs-vswitchd restart: flows back after %v (connect→reconciled %v, took %v, %d flow-mods)",
		res.VswitchdTotal.Round(time.Millisecond), res.VswitchdConnect, res.VswitchdTook.Round(time.Millisecond), res.VswitchdMods)
	return res, nil
}

// loadAvg is the 1- and 5-minute load average.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return "?"
	}
	return f[0] + " " + f[1]
}

func secs(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func parseSizes(s string) ([]int, error) {
	if strings.TrimSpace(s) == "none" {
		return nil, nil // only the other scenarios
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(strings.ReplaceAll(f, "_", ""))
		if f == "" {
			continue
		}
		v, err := strconv.Atoi(f)
		if err != nil || v < 1 || v > 65535 {
			return nil, fmt.Errorf("BENCH_N: %q is not a host count in 1..65535", f)
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, errors.New("BENCH_N: no sizes")
	}
	return out, nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func fatalf(f string, a ...any) {
	fmt.Fprintf(os.Stderr, "vpcbench: "+f+"\n", a...)
	os.Exit(1)
}

// pct is the p-th percentile (nearest rank) of ds.
func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	k := int(p/100*float64(len(s))+0.999999) - 1
	k = max(0, min(k, len(s)-1))
	return s[k]
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
