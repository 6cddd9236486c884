package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vpcflow/vpcflow/api"
	"github.com/vpcflow/vpcflow/trace"
)

// Targets of the observability features at the largest N (issue 15),
// printed next to the results; never asserted.
const (
	targetScrape = 100 * time.Millisecond // GET /metrics
	targetTrace  = 50 * time.Millisecond  // POST /v1/trace
)

// observeResult is what the observability features cost with N present.
type observeResult struct {
	Scrapes     []time.Duration // GET /metrics, one after the other
	FlowRefresh time.Duration   // the collector's dump + sum of every flow (vpcflow_flow_stats_refresh_duration_seconds)
	StatsAge    time.Duration   // vpcflow_flow_stats_age_seconds of the last scrape
	MetricsKB   int             // size of one scrape
	TraceFirst  time.Duration   // first trace: builds the switch's index
	Traces      []time.Duration // then, warm
	PageLoad    time.Duration   // /ui/ and every API call the page makes for its first render
	PageKB      int
	// DuringScrapes are route entry adds and deletes made one after the
	// other (50 ms apart) while the scrapes go on: what a change waits
	// for a dump of the switches' flow statistics.
	DuringScrapes []time.Duration
}

// measureObserve scrapes /metrics, traces and loads what the topology
// page loads, with the bulk load in place.
func measureObserve(ctx context.Context, e *env, n int) (observeResult, error) {
	var res observeResult
	hc := e.phys.HTTPClient()
	base := "http://" + restAddr
	get := func(path string) ([]byte, time.Duration, error) {
		t := time.Now()
		resp, err := hc.Get(base + path)
		if err != nil {
			return nil, 0, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("GET %s: %s", path, resp.Status)
		}
		return b, time.Since(t), err
	}
	// Changes all along the scrapes, one at a time.
	type during struct {
		lat []time.Duration
		err error
	}
	stop := make(chan struct{})
	stopChanges := sync.OnceFunc(func() { close(stop) })
	defer stopChanges()
	changes := make(chan during, 1)
	go func() {
		var d during
		defer func() { changes <- d }()
		for j := 0; ; j++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			t := time.Now()
			sub, err := e.api.CreateSubnet(ctx, benchVPC, api.SubnetRequest{CIDR: subnetCIDR(convergeOctet, j), Host: hostName((j * 7919) % n)})
			if err != nil {
				d.err = fmt.Errorf("route entry add %d during the scrapes: %w", j, err)
				return
			}
			d.lat = append(d.lat, time.Since(t))
			t = time.Now()
			if err := e.api.DeleteSubnet(ctx, benchVPC, sub.Name); err != nil {
				d.err = fmt.Errorf("route entry delete %d during the scrapes: %w", j, err)
				return
			}
			d.lat = append(d.lat, time.Since(t))
		}
	}()
	// Scrapes 2 s apart, as a Prometheus scraping every few seconds would.
	var last []byte
	for i := range 8 {
		b, d, err := get("/metrics")
		if err != nil {
			return res, err
		}
		res.Scrapes = append(res.Scrapes, d)
		last = b
		if i < 7 {
			time.Sleep(2 * time.Second)
		}
	}
	stopChanges()
	d := <-changes
	if d.err != nil {
		return res, d.err
	}
	res.DuringScrapes = d.lat
	res.MetricsKB = len(last) / 1024
	res.FlowRefresh = secs(metricValue(last, "vpcflow_flow_stats_refresh_duration_seconds"))
	res.StatsAge = secs(metricValue(last, "vpcflow_flow_stats_age_seconds"))

	// Traces: host i to host j's route entry, through the whole pipeline;
	// j on i's bridge (the bench's bridges have no tunnels between them).
	for i := range 101 {
		from := (i * 7) % n
		first := from / hostsPerBridge * hostsPerBridge
		to := first + (i*7919+1)%min(hostsPerBridge, n-first)
		req := trace.Request{VPC: benchVPC, From: hostName(from), Dst: strings.TrimSuffix(subnetCIDR(11, to), ".0/24") + ".9",
			Proto: "tcp", DstPort: 80}
		t := time.Now()
		r, err := e.api.Trace(ctx, req)
		if err != nil {
			return res, fmt.Errorf("trace %+v: %w", req, err)
		}
		d := time.Since(t)
		if r.Verdict != trace.Delivered {
			return res, fmt.Errorf("trace %+v: %s", req, r.Summary)
		}
		if i == 0 {
			res.TraceFirst = d
		} else {
			res.Traces = append(res.Traces, d)
		}
	}

	// The page: its files, then what its first render asks the API (a
	// count of the VPC's hosts, a page of route entries, a page of hosts
	// per vSwitch, the trace form's hosts).
	t := time.Now()
	total := 0
	vpc := "/v1/vpcs/" + benchVPC
	paths := []string{"/ui/", "/ui/app.js", "/ui/app.css", "/v1/vpcs", "/v1/chassis", "/v1/switches", "/metrics",
		vpc + "/vswitches", vpc + "/hosts?limit=1", vpc + "/subnets?limit=50", vpc + "/hosts?limit=50"}
	for b := range e.dpids {
		paths = append(paths, vpc+"/hosts?limit=50&vswitch="+vswitchName(b))
	}
	for _, p := range paths {
		b, _, err := get(p)
		if err != nil {
			return res, err
		}
		total += len(b)
	}
	res.PageLoad, res.PageKB = time.Since(t), total/1024
	return res, nil
}

// metricValue is the value of the first sample of an unlabelled metric.
func metricValue(text []byte, name string) float64 {
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			v, _ := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v
		}
	}
	return -1
}
