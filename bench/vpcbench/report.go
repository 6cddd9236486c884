package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Targets (2-core machine, issue 17), printed next to the results; never
// asserted.
const (
	targetBulkRatio     = 1.0                  // bulk time ≤ 1.0 × ovs-ofctl --bundle add-flows, every N and batch size
	targetP99           = 2 * time.Millisecond // single change p99 at the largest N, flat in N
	targetResyncRatio   = 1.1                  // no-change resync ≤ 1.1 × ovs-ofctl dump-flows
	targetVswitchdRatio = 1.0                  // flows back ≤ 1.0 × ovs-ofctl --bundle add-flows
	targetBytesPerHost  = 1024                 // RSS above the empty controller, after bulk and after restart
)

type row struct {
	name   string
	cells  []string
	target string
}

func printTable(w io.Writer, rs []result, cfg runConfig, markdown bool) {
	var rows []row
	add := func(name, target string, f func(r result) string) {
		c := make([]string, len(rs))
		for i, r := range rs {
			c[i] = f(r)
		}
		rows = append(rows, row{name, c, target})
	}
	last := rs[len(rs)-1]
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	ratioVerdict := func(get func(r result) float64, limit float64) string {
		ok := true
		for _, r := range rs {
			ok = ok && get(r) <= limit
		}
		return verdict(ok)
	}
	ratio := func(a, b time.Duration) float64 { return a.Seconds() / b.Seconds() }

	fixed, perPair := tableShape(1)
	add(fmt.Sprintf("flows in the switches (%d per host with its route entry + %d per bridge)", perPair, fixed), "", func(r result) string { return num(r.Flows) })
	add(fmt.Sprintf("bridges (at most %s hosts each: OVS ports end at 0xfeff)", num(hostsPerBridge)), "", func(r result) string { return num(r.Bridges) })
	bulkRow := func(batch int, took func(r result) time.Duration) {
		add(fmt.Sprintf("bulk: REST (%s/request, %d in flight) → all flows committed", num(batch), cfg.inflight), "", func(r result) string { return dur(took(r)) })
		add(fmt.Sprintf("bulk: ratio to ovs-ofctl, %s/request", num(batch)),
			fmt.Sprintf("≤ %.1f× (%s)", targetBulkRatio, ratioVerdict(func(r result) float64 { return ratio(took(r), r.OfctlBundle) }, targetBulkRatio)),
			func(r result) string { return fmt.Sprintf("%.2f×", ratio(took(r), r.OfctlBundle)) })
	}
	bulkRow(cfg.batch, func(r result) time.Duration { return r.BulkTook })
	if cfg.batchSmall > 0 {
		bulkRow(cfg.batchSmall, func(r result) time.Duration { return r.BulkSmallTook })
	}
	add("bulk: ovs-ofctl --bundle add-flows, same flows (baseline)", "", func(r result) string { return dur(r.OfctlBundle) })
	add(fmt.Sprintf("  CPU during the %s/request load: vpcflow · its ovs-vswitchd · REST client", num(cfg.batch)), "", func(r result) string {
		return dur(r.BulkCPU.Loader) + " · " + dur(r.BulkCPU.Vswitchd) + " · " + dur(r.BulkCPU.Client)
	})
	add("  CPU during the baseline: ovs-ofctl · its ovs-vswitchd", "", func(r result) string {
		return dur(r.OfctlCPU.Loader) + " · " + dur(r.OfctlCPU.Vswitchd)
	})
	add("bulk: vpcflow / ovs-ofctl flows/s", "", func(r result) string {
		return num(int(float64(r.Flows)/r.BulkTook.Seconds())) + " / " + num(int(float64(r.Flows)/r.OfctlBundle.Seconds()))
	})
	add("bulk: diff-flows vpcflow vs ovs-ofctl bridges (lines)", "0", func(r result) string {
		if r.SameFlowsDiff < 0 {
			return "-"
		}
		return num(r.SameFlowsDiff)
	})
	flat := pct(last.AddLat, 99) < targetP99 && pct(last.DelLat, 99) < targetP99
	add(fmt.Sprintf("subnet add p50 / p99 / max (%d ops)", len(last.AddLat)),
		fmt.Sprintf("p99 < %v at N=%s (%s)", targetP99, num(last.N), verdict(flat)),
		func(r result) string { return lat(r.AddLat) })
	add(fmt.Sprintf("subnet delete p50 / p99 / max (%d ops)", len(last.DelLat)), "", func(r result) string { return lat(r.DelLat) })
	add("  the disk: 4 KB write + fdatasync p50 / p99 / max (baseline)", "", func(r result) string { return lat(r.Fsync) })
	add("  OVS alone: the same flow-mods, add p50 / p99 / max (baseline)", "", func(r result) string { return lat(r.AloneAddLat) })
	add("  OVS alone: the same flow-mods, delete p50 / p99 / max (baseline)", "", func(r result) string { return lat(r.AloneDelLat) })
	add("ctrl restart: process start → REST up", "", func(r result) string { return dur(r.RestartREST) })
	add("ctrl restart: process start → reconciled", "", func(r result) string { return dur(r.RestartTotal) })
	add("ctrl restart: switch connect → reconciled", "", func(r result) string { return dur(r.Restart.FromConnect) })
	add("ctrl restart: of which dump + diff + apply (took)", "", func(r result) string { return dur(r.Restart.Took) })
	allZero := true
	for _, r := range rs {
		allZero = allZero && r.Restart.FlowMods == 0
	}
	add("ctrl restart: flow-mods sent", "0 ("+verdict(allZero)+")", func(r result) string { return num(r.Restart.FlowMods) })
	add("ctrl restart: ovs-ofctl dump-flows, same tables (baseline)", "", func(r result) string { return dur(r.OfctlDump) })
	resyncRatio := func(r result) float64 { return ratio(r.Restart.FromConnect, r.OfctlDump) }
	add("ctrl restart: ratio connect→reconciled / dump-flows", fmt.Sprintf("≤ %.1f× (%s)", targetResyncRatio, ratioVerdict(resyncRatio, targetResyncRatio)),
		func(r result) string { return fmt.Sprintf("%.2f×", resyncRatio(r)) })
	add("vswitchd restart: start → every flow back", "", func(r result) string { return dur(r.VswitchdTotal) })
	add("vswitchd restart: switch connect → reconciled", "", func(r result) string { return dur(r.Vswitchd.FromConnect) })
	add("vswitchd restart: of which dump + diff + apply (took)", "", func(r result) string { return dur(r.Vswitchd.Took) })
	vsRatio := func(r result) float64 { return ratio(r.Vswitchd.FromConnect, r.OfctlBundle) }
	add("vswitchd restart: ratio connect→reconciled / bundle add-flows",
		fmt.Sprintf("≤ %.1f× (%s)", targetVswitchdRatio, ratioVerdict(vsRatio, targetVswitchdRatio)),
		func(r result) string { return fmt.Sprintf("%.2f×", vsRatio(r)) })
	add("controller RSS empty", "", func(r result) string { return mib(r.MemEmpty.RSS) })
	add("controller RSS after bulk (peak)", "", func(r result) string { return mib(r.MemBulk.RSS) + " (" + mib(r.MemBulk.HWM) + ")" })
	add("controller RSS after restart", "", func(r result) string { return mib(r.MemRestart.RSS) })
	add("  of which file-backed (binary, bbolt's mmap): empty / bulk / restart", "", func(r result) string {
		return mib(r.MemEmpty.File) + " / " + mib(r.MemBulk.File) + " / " + mib(r.MemRestart.File)
	})
	perHost := func(r result, v int64) int64 { return (v - r.MemEmpty.RSS) / int64(r.N) }
	bphOK := true
	for _, r := range rs {
		bphOK = bphOK && perHost(r, r.MemBulk.RSS) <= targetBytesPerHost && perHost(r, r.MemRestart.RSS) <= targetBytesPerHost
		if cfg.batchSmall > 0 {
			bphOK = bphOK && perHost(r, r.MemBulkSmall.RSS) <= targetBytesPerHost
		}
	}
	bphName := "bytes/host above empty: after bulk / after restart"
	if cfg.batchSmall > 0 {
		bphName = fmt.Sprintf("bytes/host above empty: after bulk / after restart / after bulk of %s/request", num(cfg.batchSmall))
	}
	add(bphName, fmt.Sprintf("≤ %d B (%s)", targetBytesPerHost, verdict(bphOK)),
		func(r result) string {
			s := fmt.Sprintf("%s / %s", num(int(perHost(r, r.MemBulk.RSS))), num(int(perHost(r, r.MemRestart.RSS))))
			if cfg.batchSmall > 0 {
				s += " / " + num(int(perHost(r, r.MemBulkSmall.RSS)))
			}
			return s
		})

	// What one more host costs, fixed costs left out: the binary's pages
	// and the runtime's first spans of each size, which an empty
	// controller has not touched yet, count in full against N=1,000.
	if len(rs) > 1 {
		prev := map[int]result{}
		for i := 1; i < len(rs); i++ {
			prev[rs[i].N] = rs[i-1]
		}
		add("  bytes/host from the previous N (the slope): after bulk / after restart", "", func(r result) string {
			p, ok := prev[r.N]
			if !ok || r.N <= p.N {
				return "—"
			}
			slope := func(a, b int64) string { return num(int((a - b) / int64(r.N-p.N))) }
			return slope(r.MemBulk.RSS, p.MemBulk.RSS) + " / " + slope(r.MemRestart.RSS, p.MemRestart.RSS)
		})
	}

	add("teardown: DELETE the VPC ?cascade=true → every flow gone (RSS after)", "",
		func(r result) string { return dur(r.Teardown) + " (" + mib(r.MemTeardown.RSS) + ")" })

	scrapeOK := pct(last.Obs.Scrapes, 99) < targetScrape
	add(fmt.Sprintf("GET /metrics p50 / p99 / max (%d scrapes)", len(last.Obs.Scrapes)),
		fmt.Sprintf("< %v at N=%s (%s)", targetScrape, num(last.N), verdict(scrapeOK)), func(r result) string { return lat(r.Obs.Scrapes) })
	add("  flow statistics behind it: dump + sum (background), age at scrape", "",
		func(r result) string { return dur(r.Obs.FlowRefresh) + ", " + dur(r.Obs.StatsAge) })
	add("  scrape size", "", func(r result) string { return num(r.Obs.MetricsKB) + " KB" })
	add("  route entry add / delete meanwhile, 50 ms apart: p50 / p99 / max (ops)", "",
		func(r result) string { return lat(r.Obs.DuringScrapes) + " (" + num(len(r.Obs.DuringScrapes)) + ")" })
	traceOK := pct(last.Obs.Traces, 99) < targetTrace
	add(fmt.Sprintf("POST /v1/trace p50 / p99 / max (%d, warm)", len(last.Obs.Traces)),
		fmt.Sprintf("< %v at N=%s (%s)", targetTrace, num(last.N), verdict(traceOK)), func(r result) string { return lat(r.Obs.Traces) })
	add("  first trace (indexes the switch's desired table)", "", func(r result) string { return dur(r.Obs.TraceFirst) })
	add("/ui first render: files + every API call it makes", "usable (the server pages: 50 hosts per vSwitch page)",
		func(r result) string { return dur(r.Obs.PageLoad) + " (" + num(r.Obs.PageKB) + " KB)" })
	add("machine load average (1, 5 min) at start", "", func(r result) string { return r.Load })

	header := []string{"metric"}
	for _, r := range rs {
		header = append(header, "N="+num(r.N))
	}
	header = append(header, "target")
	if markdown {
		fmt.Fprintln(w, "| "+strings.Join(header, " | ")+" |")
		seps := make([]string, len(header))
		for i := range seps {
			seps[i] = "---"
			if i > 0 && i < len(header)-1 {
				seps[i] = "---:"
			}
		}
		fmt.Fprintln(w, "|"+strings.Join(seps, "|")+"|")
		for _, r := range rows {
			fmt.Fprintln(w, "| "+strings.Join(append(append([]string{r.name}, r.cells...), r.target), " | ")+" |")
		}
		return
	}
	widths := make([]int, len(header))
	for i, h := range header {
		widths[i] = len([]rune(h))
	}
	for _, r := range rows {
		for i, c := range append(append([]string{r.name}, r.cells...), r.target) {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	line := func(cells []string) {
		var b strings.Builder
		for i, c := range cells {
			pad := widths[i] - len([]rune(c))
			if i > 0 && i < len(cells)-1 {
				b.WriteString(strings.Repeat(" ", pad) + c)
			} else {
				b.WriteString(c + strings.Repeat(" ", pad))
			}
			b.WriteString("  ")
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	line(header)
	for _, r := range rows {
		line(append(append([]string{r.name}, r.cells...), r.target))
	}
}

func num(v int) string {
	s := fmt.Sprint(v)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func dur(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	}
}

func lat(ds []time.Duration) string {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond)) }
	return ms(pct(ds, 50)) + " / " + ms(pct(ds, 99)) + " / " + ms(pct(ds, 100)) + " ms"
}
