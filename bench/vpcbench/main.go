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
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vpcflow/vpcflow/api"
	"github.com/vpcflow/vpcflow/e2e/netlab"
	"github.com/vpcflow/vpcflow/topology"
)

// result is one column of the table.
type result struct {
	N       int
	Bridges int
	Flows   int

	BulkTook      time.Duration // first REST call → last REST call returned (flows committed), batches of -batch
	BulkSmallTook time.Duration // the same in batches of -batch-small, into a fresh controller and OVS
	BulkVerified  bool          // dump-aggregate showed every flow afterwards
	OfctlBundle   time.Duration // ovs-ofctl --bundle add-flows, same flows, fresh bridges
	SameFlowsDiff int           // lines of ovs-ofctl diff-flows between the two bridges (-1: not run)
	// BulkCPU and OfctlCPU: the CPU time of each process during the
	// -batch load and during ovs-ofctl's.
	BulkCPU, OfctlCPU loadCPU

	Fsync          []time.Duration // 4 KB write + fdatasync in the store's directory: the disk's floor
	AddLat, DelLat []time.Duration
	// AloneAddLat, AloneDelLat: the same changes' flow-mods, sent by the
	// bench in one bundle a bridge (ovsalone.go): OVS's share.
	AloneAddLat, AloneDelLat []time.Duration

	// Controller restart with N present.
	RestartREST      time.Duration // process start → REST API answers (store loaded, flows computed)
	RestartTotal     time.Duration // process start → every switch listed as reconciled
	Restart          resync        // "switch connected" → "switch reconciled" (log times)
	OfctlDump        time.Duration // ovs-ofctl dump-flows of the same tables (one per bridge, at once)
	RestartInstalled int

	// ovs-vswitchd restart with N present.
	VswitchdTotal time.Duration // StartVswitchd called → every flow back
	Vswitchd      resync

	MemEmpty, MemBulk, MemBulkSmall, MemRestart memInfo

	// The VPC deleted with everything in it (?cascade=true) at the end:
	// REST call → returned (every switch confirmed), and the RSS after.
	Teardown    time.Duration
	MemTeardown memInfo

	Obs observeResult // metrics scrape, trace and topology page with N present

	Load string // /proc/loadavg (1, 5 min) when the size started: other work on the machine skews results
}

func main() {
	bin := flag.String("bin", "bin/vpcflow", "vpcflow binary to run")
	sizes := flag.String("n", envOr("BENCH_N", "1000,10000,50000,100000"), "host counts, comma separated (env BENCH_N); none: skip this scenario")
	batch := flag.Int("batch", 5000, "objects per REST request in the bulk load")
	batchSmall := flag.Int("batch-small", 1000, "objects per REST request in the second bulk load (0: skip it)")
	inflight := flag.Int("inflight", 2, "REST requests of the bulk load in flight at once (1: one after the other)")
	ops := flag.Int("ops", 200, "single-change operations per kind (add, delete) for the latency percentiles")
	markdown := flag.Bool("markdown", false, "print the table as Markdown")
	verbose := flag.Bool("v", false, "log every command the lab runs")
	diff := flag.Bool("diff", true, "check with ovs-ofctl diff-flows that vpcflow installed exactly the ovs-ofctl file")
	keepLogs := flag.String("keep-logs", "", "copy the controller's and OVS's logs of each size to this directory")
	logLevel := flag.String("ctrl-log-level", "info", "vpcflow --log-level (debug logs every push with its duration)")
	var ctrlFlags stringList
	flag.Var(&ctrlFlags, "ctrl-flag", "one more flag for vpcflow serve, e.g. -ctrl-flag=--drift-interval=1s (repeatable; the table's figures are then not the defaults')")
	profile := flag.String("profile", "", "write CPU and heap profiles of each phase here (needs a profiling build of vpcflow, see docs/performance.md)")
	sg := flag.Bool("sg", true, "also measure security groups (-sg-hosts hosts in -sg-groups groups of -sg-rules rules)")
	sgHosts := flag.Int("sg-hosts", 1000, "hosts of the security group scenario (at most 50,000)")
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
	if *sgHosts < 1 || *sgHosts > hostsPerBridge {
		fatalf("-sg-hosts %d: want 1..%d", *sgHosts, hostsPerBridge)
	}
	if *batch < 1 || *batchSmall < 0 || *inflight < 1 {
		fatalf("-batch, -batch-small and -inflight must be positive")
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

	cfg := runConfig{bin: binPath, batch: *batch, batchSmall: *batchSmall, inflight: *inflight, ops: *ops, diff: *diff,
		verbose: *verbose, serveArgs: append([]string{"--log-level", *logLevel}, ctrlFlags...), keepLogs: *keepLogs}
	start := time.Now()
	var results []result
	for _, n := range ns {
		fmt.Fprintf(os.Stderr, "== N=%d hosts on %d bridge(s) (%d flows)\n", n, bridgesFor(n), expectedFlows(n))
		prof, err := newProfiler(*profile, n)
		if err != nil {
			fatalf("%v", err)
		}
		r, err := runOne(ctx, cfg, n, prof)
		if err != nil {
			_ = netlab.CloseAll()
			fatalf("N=%d: %v", n, err)
		}
		results = append(results, r)
	}
	var sgRes *sgResult
	if *sg {
		fmt.Fprintf(os.Stderr, "== security groups: %d hosts, %d groups × %d rules\n", *sgHosts, *sgGroups, *sgRules)
		r, err := runSecurityGroups(ctx, binPath, *sgHosts, *sgGroups, *sgRules, *ops, *diff, *verbose, cfg.serveArgs, *keepLogs)
		if err != nil {
			_ = netlab.CloseAll()
			fatalf("security groups: %v", err)
		}
		sgRes = &r
	}
	var natRes *natResult
	if *natRun {
		fmt.Fprintf(os.Stderr, "== NAT: new connections per second, %d × (%v without NAT, %v through SNAT)\n", *natPasses, *natSecs, *natSecs)
		r, err := runNAT(ctx, binPath, *natSecs, *natWorkers, *natPasses, *verbose, cfg.serveArgs)
		if err != nil {
			_ = netlab.CloseAll()
			fatalf("nat: %v", err)
		}
		natRes = &r
	}
	fmt.Fprintf(os.Stderr, "== done in %v\n\n", time.Since(start).Round(time.Second))
	if len(results) > 0 {
		printTable(os.Stdout, results, cfg, *markdown)
	}
	if sgRes != nil {
		printSecurityGroups(os.Stdout, *sgRes, *markdown)
	}
	if natRes != nil {
		printNAT(os.Stdout, *natRes, *markdown)
	}
}

// settle is how long after a phase the controller's memory is read: it
// hands the garbage of big batches back to the OS once idle for 0.2 s.
const settle = 500 * time.Millisecond

// runConfig is what every size runs with.
type runConfig struct {
	bin                         string
	batch, batchSmall, inflight int
	ops                         int
	diff, verbose               bool
	serveArgs                   []string
	keepLogs                    string
}

func step(f string, a ...any) { fmt.Fprintf(os.Stderr, "   "+f+"\n", a...) }

func runOne(ctx context.Context, cfg runConfig, n int, prof *profiler) (res result, err error) {
	res = result{N: n, Bridges: bridgesFor(n), Flows: expectedFlows(n), SameFlowsDiff: -1, Load: loadAvg()}
	step("load average %s", res.Load)

	e, err := newEnv(ctx, fmt.Sprintf("vpcbench-%d", n), cfg.bin, cfg.serveArgs, cfg.verbose, res.Bridges)
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
		if cfg.keepLogs != "" {
			if kerr := e.copyLogs(cfg.keepLogs); kerr != nil {
				fmt.Fprintf(os.Stderr, "   keeping logs: %v\n", kerr)
			}
		}
		if cerr := e.close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	time.Sleep(500 * time.Millisecond) // let the empty controller settle
	if res.MemEmpty, err = memOf(e.ctrl.Pid); err != nil {
		return res, err
	}
	prof.mem(ctx, e, "empty")

	// ---- 1. bulk ----
	prof.start(ctx, e, "bulk")
	cpu := startCPU(e.ctrl.Pid, e.ovs.VswitchdPID())
	bl, err := bulkLoad(ctx, e, n, cfg.batch, cfg.inflight)
	if err != nil {
		return res, err
	}
	res.BulkTook = bl.took
	procs, self, _ := cpu.stop()
	res.BulkCPU = loadCPU{Loader: procs[0], Vswitchd: procs[1], Client: self}
	prof.stop(ctx, e)
	got, err := e.flowCount(ctx)
	if err != nil {
		return res, err
	}
	if got != res.Flows {
		return res, fmt.Errorf("after the bulk load the switches have %d flows, want %d", got, res.Flows)
	}
	res.BulkVerified = true
	time.Sleep(settle)
	res.MemBulk, _ = memOf(e.ctrl.Pid)
	prof.mem(ctx, e, "bulk")
	prof.heap(ctx, e, "bulk")
	step("bulk (%d/request, %d in flight): %v (%.0f flows/s), RSS %s", cfg.batch, cfg.inflight, res.BulkTook.Round(time.Millisecond),
		float64(res.Flows)/res.BulkTook.Seconds(), mib(res.MemBulk.RSS))

	// The same flows with ovs-ofctl --bundle add-flows into fresh bridges
	// (one ovs-ofctl per bridge, all at once).
	files := make([]string, res.Bridges)
	for b := range files {
		files[b] = filepath.Join(e.lab.Dir(), fmt.Sprintf("flows%d.txt", b))
	}
	nf, err := writeFlowFiles(files, e.dpids, bl.vpc, bl.vsws, bl.hosts, bl.subnets)
	if err != nil {
		return res, err
	}
	if nf != res.Flows {
		return res, fmt.Errorf("flow files have %d flows, want %d", nf, res.Flows)
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
	refTargets := make([]string, res.Bridges)
	for b := range refTargets {
		if err := refOVS.AddBridge(ctx, refBridgeName(b)); err != nil {
			return res, err
		}
		refTargets[b] = refOVS.MgmtTarget(refBridgeName(b))
	}
	cpu = startCPU(refOVS.VswitchdPID())
	if res.OfctlBundle, err = ofctlAll(ctx, refTargets, func(b int) ([]string, string, []string) {
		return []string{"--bundle"}, "add-flows", []string{files[b]}
	}); err != nil {
		return res, err
	}
	procs, _, ofctls := cpu.stop()
	res.OfctlCPU = loadCPU{Loader: ofctls, Vswitchd: procs[0]}
	total := 0
	for _, t := range refTargets {
		got, err := flowCount(ctx, t)
		if err != nil {
			return res, err
		}
		total += got
	}
	if total != res.Flows {
		return res, fmt.Errorf("ovs-ofctl loaded %d flows, want %d", total, res.Flows)
	}
	step("ovs-ofctl --bundle add-flows: %v", res.OfctlBundle.Round(time.Millisecond))
	step("CPU during the loads: vpcflow %s, its ovs-vswitchd %s, REST client %s; ovs-ofctl %s, its ovs-vswitchd %s",
		dur(res.BulkCPU.Loader), dur(res.BulkCPU.Vswitchd), dur(res.BulkCPU.Client), dur(res.OfctlCPU.Loader), dur(res.OfctlCPU.Vswitchd))
	if cfg.diff {
		// diff-flows exits 1 when the tables differ; count its lines.
		res.SameFlowsDiff = 0
		for b := range refTargets {
			var lc lineCounter
			_, derr := ofctl(ctx, &lc, e.target(b), nil, "diff-flows", refTargets[b])
			res.SameFlowsDiff += lc.n
			if derr != nil && lc.n == 0 {
				return res, derr
			}
		}
		step("diff-flows vpcflow's bridges, ovs-ofctl's: %d lines", res.SameFlowsDiff)
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
	// The page's own scrape started a dump of every flow's statistics in
	// the background (2.5 s at 100,000 hosts, OVS answering nothing else
	// meanwhile): let it end, so the single changes below measure the
	// change path, not a flow dump they queue behind.
	time.Sleep(time.Second + res.Obs.FlowRefresh)

	// ---- 2. convergence: single subnet add / delete ----
	if res.Fsync, err = fsyncLatency(e.dataDir, cfg.ops); err != nil {
		return res, err
	}
	prof.start(ctx, e, "converge")
	// The client's own collector must not pause the timings: collect
	// now, then not at all until the changes are done (they allocate a
	// few MB). It held the bench's 1.3 million-flow reference tables and
	// paused the loop at 100,000 hosts; the controller's log showed every
	// change under 1.5 ms where the client measured 2.5 ms.
	runtime.GC()
	gcPercent := debug.SetGCPercent(-1)
	restoreGC := sync.OnceFunc(func() { debug.SetGCPercent(gcPercent) })
	defer restoreGC() // also when a change fails
	perSubnet := subnetFlowCount()
	names := make([]string, cfg.ops)
	for j := range cfg.ops {
		req := api.SubnetRequest{CIDR: subnetCIDR(convergeOctet, j), Host: hostName((j * 7919) % n)}
		t := time.Now()
		s, err := e.api.CreateSubnet(ctx, benchVPC, req)
		if err != nil {
			return res, fmt.Errorf("subnet add %d: %w", j, err)
		}
		res.AddLat = append(res.AddLat, time.Since(t))
		names[j] = s.Name
	}
	if got, err := e.flowCount(ctx); err != nil || got != res.Flows+cfg.ops*perSubnet {
		return res, fmt.Errorf("after %d subnet adds the switches have %d flows, want %d (%v)", cfg.ops, got, res.Flows+cfg.ops*perSubnet, err)
	}
	for j, name := range names {
		t := time.Now()
		if err := e.api.DeleteSubnet(ctx, benchVPC, name); err != nil {
			return res, fmt.Errorf("subnet delete %d: %w", j, err)
		}
		res.DelLat = append(res.DelLat, time.Since(t))
	}
	if got, err := e.flowCount(ctx); err != nil || got != res.Flows {
		return res, fmt.Errorf("after %d subnet deletes the switches have %d flows, want %d (%v)", cfg.ops, got, res.Flows, err)
	}
	restoreGC()
	prof.stop(ctx, e)
	step("single add p50 %v p99 %v; delete p50 %v p99 %v; fdatasync p50 %v p99 %v",
		pct(res.AddLat, 50), pct(res.AddLat, 99), pct(res.DelLat, 50), pct(res.DelLat, 99), pct(res.Fsync, 50), pct(res.Fsync, 99))
	// The same changes' flow-mods sent by the bench itself: OVS alone.
	if res.AloneAddLat, res.AloneDelLat, err = ovsAloneLatency(ctx, e, n, cfg.ops); err != nil {
		return res, err
	}
	if got, err := e.flowCount(ctx); err != nil || got != res.Flows {
		return res, fmt.Errorf("after the OVS-alone baseline the switches have %d flows, want %d (%v)", got, res.Flows, err)
	}
	step("OVS alone, the same flow-mods: add p50 %v p99 %v; delete p50 %v p99 %v",
		pct(res.AloneAddLat, 50), pct(res.AloneAddLat, 99), pct(res.AloneDelLat, 50), pct(res.AloneDelLat, 99))

	// ---- 3a. resync after a controller restart ----
	if res.OfctlDump, err = ofctlAll(ctx, e.targets(), func(int) ([]string, string, []string) { return nil, "dump-flows", nil }); err != nil {
		return res, err
	}
	if err := e.stopController(); err != nil {
		return res, err
	}
	prof.fromStart("restart")
	t0 := time.Now()
	if err := e.startController(ctx); err != nil {
		return res, err
	}
	res.RestartREST = time.Since(t0)
	if err := e.waitSwitch(ctx, t0, 3*time.Minute); err != nil {
		return res, err
	}
	res.RestartTotal = time.Since(t0)
	prof.stop(ctx, e)
	evs, err := switchEvents(e.logPath)
	if err != nil {
		return res, err
	}
	var ok bool
	if res.Restart, ok = resyncOf(evs, 0, e.dpids); !ok {
		return res, fmt.Errorf("no \"switch reconciled\" line of every switch in %s", e.logPath)
	}
	if got, err := e.flowCount(ctx); err != nil || got != res.Flows {
		return res, fmt.Errorf("after the controller restart the switches have %d flows, want %d (%v)", got, res.Flows, err)
	}
	time.Sleep(settle)
	res.MemRestart, _ = memOf(e.ctrl.Pid)
	prof.mem(ctx, e, "restart")
	prof.heap(ctx, e, "restart")
	step("controller restart: REST up %v, reconciled after %v (connect→reconciled %v, took %v, %d flow-mods); dump-flows %v; RSS %s",
		res.RestartREST.Round(time.Millisecond), res.RestartTotal.Round(time.Millisecond), res.Restart.FromConnect,
		res.Restart.Took.Round(time.Millisecond), res.Restart.FlowMods, res.OfctlDump.Round(time.Millisecond), mib(res.MemRestart.RSS))

	// ---- 3b. ovs-vswitchd restart: every flow is gone and comes back ----
	before := len(evs)
	if err := e.ovs.StopVswitchd(); err != nil {
		return res, err
	}
	prof.start(ctx, e, "vswitchd")
	t0 = time.Now()
	if err := e.ovs.StartVswitchd(ctx); err != nil {
		return res, err
	}
	err = e.poll(ctx, "flows back after ovs-vswitchd restart", 3*time.Minute, 5*time.Millisecond, func() (bool, error) {
		evs, err := switchEvents(e.logPath)
		if err != nil {
			return false, err
		}
		res.Vswitchd, ok = resyncOf(evs, before, e.dpids)
		return ok, nil
	})
	if err != nil {
		return res, err
	}
	res.VswitchdTotal = time.Since(t0)
	prof.stop(ctx, e)
	prof.heap(ctx, e, "vswitchd")
	if got, err := e.flowCount(ctx); err != nil || got != res.Flows {
		return res, fmt.Errorf("after the ovs-vswitchd restart the switches have %d flows, want %d (%v)", got, res.Flows, err)
	}
	step("ovs-vswitchd restart: flows back after %v (connect→reconciled %v, took %v, %d flow-mods)",
		res.VswitchdTotal.Round(time.Millisecond), res.Vswitchd.FromConnect, res.Vswitchd.Took.Round(time.Millisecond), res.Vswitchd.FlowMods)

	// ---- 4. the bulk load again in smaller requests, into a fresh
	// controller and OVS ----
	if cfg.batchSmall > 0 {
		if cfg.keepLogs != "" {
			if kerr := e.copyLogs(cfg.keepLogs); kerr != nil {
				fmt.Fprintf(os.Stderr, "   keeping logs: %v\n", kerr)
			}
		}
		if err := e.close(); err != nil {
			return res, err
		}
		e2, err := newEnv(ctx, fmt.Sprintf("vpcbench-%d-b", n), cfg.bin, cfg.serveArgs, cfg.verbose, res.Bridges)
		if err != nil {
			return res, err
		}
		e = e2 // closed by the deferred function
		time.Sleep(500 * time.Millisecond)
		bl, err := bulkLoad(ctx, e, n, cfg.batchSmall, cfg.inflight)
		if err != nil {
			return res, err
		}
		res.BulkSmallTook = bl.took
		if got, err := e.flowCount(ctx); err != nil || got != res.Flows {
			return res, fmt.Errorf("after the bulk load in batches of %d the switches have %d flows, want %d (%v)", cfg.batchSmall, got, res.Flows, err)
		}
		time.Sleep(settle)
		res.MemBulkSmall, _ = memOf(e.ctrl.Pid)
		step("bulk (%d/request, %d in flight): %v (%.0f flows/s), RSS %s", cfg.batchSmall, cfg.inflight, res.BulkSmallTook.Round(time.Millisecond),
			float64(res.Flows)/res.BulkSmallTook.Seconds(), mib(res.MemBulkSmall.RSS))
	}

	// ---- 5. teardown: the VPC deleted with its hosts and route entries ----
	t0 = time.Now()
	if err := e.api.DeleteVPC(ctx, benchVPC, api.Cascade(true)); err != nil {
		return res, fmt.Errorf("deleting the VPC with its %d hosts: %w", n, err)
	}
	res.Teardown = time.Since(t0)
	if got, err := e.flowCount(ctx); err != nil || got != e.emptyFlows {
		return res, fmt.Errorf("after the VPC was deleted the switches have %d flows, want %d (an empty fabric's) (%v)", got, e.emptyFlows, err)
	}
	time.Sleep(settle)
	res.MemTeardown, _ = memOf(e.ctrl.Pid)
	step("teardown: DELETE the VPC ?cascade=true %v, RSS %s (file-backed %s)", res.Teardown.Round(time.Millisecond), mib(res.MemTeardown.RSS), mib(res.MemTeardown.File))
	return res, nil
}

// bulk is what a bulk load created.
type bulk struct {
	took    time.Duration
	vpc     topology.VPC
	vsws    []topology.VSwitch
	hosts   []topology.Host
	subnets []topology.Subnet
}

// bulkLoad creates the VPC and vSwitch, then the n hosts and n route
// entries in REST requests of batch objects, inflight requests at once (a
// bulk importer keeps the controller busy while it waits for the
// switches); a route entry's request waits for its hosts' request to
// return. took is from the first host request to the last return.
func bulkLoad(ctx context.Context, e *env, n, batch, inflight int) (bulk, error) {
	var bl bulk
	var err error
	if bl.vpc, err = e.api.CreateVPC(ctx, api.VPCRequest{Name: benchVPC}); err != nil {
		return bl, err
	}
	for b := range e.dpids {
		vsw, err := e.api.CreateVSwitch(ctx, benchVPC, api.VSwitchRequest{Name: vswitchName(b), CIDR: vswitchCIDR(b).String()})
		if err != nil {
			return bl, err
		}
		bl.vsws = append(bl.vsws, vsw)
	}
	type req struct {
		lo, hi int
		subnet bool
		after  chan struct{} // closed when the hosts this request needs exist
		done   chan struct{}
	}
	var reqs []*req
	var hostDone []chan struct{}
	for i := 0; i < n; i += batch {
		r := &req{lo: i, hi: min(i+batch, n), done: make(chan struct{})}
		reqs = append(reqs, r)
		hostDone = append(hostDone, r.done)
	}
	for k, i := 0, 0; i < n; k, i = k+1, i+batch {
		reqs = append(reqs, &req{lo: i, hi: min(i+batch, n), subnet: true, after: hostDone[k], done: make(chan struct{})})
	}
	hosts := make([][]topology.Host, len(hostDone))
	subnets := make([][]topology.Subnet, len(hostDone))
	sem := make(chan struct{}, inflight)
	errs := make(chan error, len(reqs))
	t0 := time.Now()
	for k, r := range reqs {
		if r.after != nil {
			<-r.after
		}
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; close(r.done) }()
			if !r.subnet {
				hr := make([]api.HostRequest, 0, r.hi-r.lo)
				for i := r.lo; i < r.hi; i++ {
					hr = append(hr, hostRequest(i, e.dpids))
				}
				hs, err := e.api.CreateHosts(ctx, benchVPC, hr)
				if err != nil {
					errs <- fmt.Errorf("bulk hosts [%d:%d]: %w", r.lo, r.hi, err)
					return
				}
				hosts[k] = hs
				return
			}
			sr := make([]api.SubnetRequest, 0, r.hi-r.lo)
			for i := r.lo; i < r.hi; i++ {
				sr = append(sr, subnetRequest(i))
			}
			ss, err := e.api.CreateSubnets(ctx, benchVPC, sr)
			if err != nil {
				errs <- fmt.Errorf("bulk subnets [%d:%d]: %w", r.lo, r.hi, err)
				return
			}
			subnets[k-len(hostDone)] = ss
		}()
		select {
		case err := <-errs:
			return bl, err
		default:
		}
	}
	for range inflight {
		sem <- struct{}{}
	}
	bl.took = time.Since(t0)
	select {
	case err := <-errs:
		return bl, err
	default:
	}
	for k := range hosts {
		bl.hosts = append(bl.hosts, hosts[k]...)
		bl.subnets = append(bl.subnets, subnets[k]...)
	}
	return bl, nil
}

// fsyncLatency is what the disk under dir takes to make 4 KB durable
// (write + fdatasync, as bbolt commits), ops times: the floor under a
// single change's latency.
func fsyncLatency(dir string, ops int) ([]time.Duration, error) {
	f, err := os.CreateTemp(dir, "fsync-probe-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 4096)
	var out []time.Duration
	for i := range ops {
		buf[0] = byte(i)
		t := time.Now()
		if _, err := f.WriteAt(buf, int64(i%16)*4096); err != nil {
			return nil, err
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			return nil, err
		}
		out = append(out, time.Since(t))
	}
	return out, nil
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
		if err != nil || v < 1 || v > 1_000_000 {
			return nil, fmt.Errorf("BENCH_N: %q is not a host count in 1..1000000", f)
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

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, " ") }
func (l *stringList) Set(s string) error { *l = append(*l, s); return nil }
