package controller

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/vpcflow/vpcflow/controller/controllertest"
	"github.com/vpcflow/vpcflow/topology"
	"github.com/vpcflow/vpcflow/trace"
)

// TestTraceIndexFollowsTheEngine: once a switch was traced, its index is
// kept up to date from the engine's changes and stays equal to the
// desired table through creates, moves and cascading deletes.
func TestTraceIndexFollowsTheEngine(t *testing.T) {
	r := newRig(t, Options{})
	r.connect(controllertest.NewDatapath(1))
	mac := func(i int) topology.MAC { m, _ := topology.ParseMAC(fmt.Sprintf("52:58:00:00:01:%02x", i)); return m }
	r.apply(topology.Create(&topology.VPC{Name: "v"}))
	r.apply(topology.Create(&topology.VSwitch{VPC: "v", Name: "w", CIDR: netip.MustParsePrefix("10.0.0.0/24")}))
	host := func(i int) *topology.Host {
		return &topology.Host{VPC: "v", Name: fmt.Sprintf("h%d", i), VSwitch: "w", IP: netip.AddrFrom4([4]byte{10, 0, 0, byte(10 + i)}),
			MAC: mac(i), DPID: 1, OFPort: uint32(i)}
	}
	r.apply(topology.Create(host(1)), topology.Create(host(2)))
	if _, err := r.c.Trace(r.ctx, trace.Request{VPC: "v", From: "h1", Dst: "10.0.0.12"}); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		r.c.mu.Lock()
		defer r.c.mu.Unlock()
		x := r.c.trace.idx[1]
		desired := r.c.engine.Desired(1)
		if x == nil || x.Len() != len(desired) {
			t.Fatalf("%s: index holds %d flows, desired %d", when, x.Len(), len(desired))
		}
		for k, f := range desired {
			g, ok := x.Get(k)
			if !ok || !g.SameContent(&f) {
				t.Fatalf("%s: index has %v for desired %s", when, g.String(), f.String())
			}
		}
	}
	check("after the first trace")
	r.apply(topology.Create(host(3)), topology.Create(&topology.Subnet{VPC: "v", CIDR: netip.MustParsePrefix("172.16.0.0/16"), Host: "h3"}))
	check("after creates")
	r.apply(topology.Update(&topology.Subnet{VPC: "v", Name: "172.16.0.0-16", Host: "h2"}))
	check("after a move")
	r.apply(topology.Delete(&topology.Host{VPC: "v", Name: "h2"}, true))
	check("after a cascading delete")
	res, err := r.c.Trace(r.ctx, trace.Request{VPC: "v", From: "h1", Dst: "172.16.1.1"})
	if err != nil || res.Verdict != trace.Dropped || res.Reason != "no_route" {
		t.Fatalf("route entry deleted with h2: %+v %v", res, err)
	}
}

// BenchmarkTrace is one warm trace (host to another host's route entry,
// through the whole pipeline) with N hosts and N route entries present:
// the switch's desired table is indexed once, then kept current.
// first-ms and first-alloc-MB are that first trace's time and allocation.
func BenchmarkTrace(b *testing.B) {
	for _, n := range []int{1000, 50000} {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			c, _ := benchController(b, n)
			ctx := context.Background()
			req := func(i int) trace.Request {
				return trace.Request{VPC: "vpc-bench", From: fmt.Sprintf("h%06d", i%n), Proto: "tcp", DstPort: 80,
					Dst: benchAddr(11<<24 + uint32((i*7919+1)%n)*256 + 9).String()}
			}
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			t0 := time.Now()
			if res, err := c.Trace(ctx, req(0)); err != nil || res.Verdict != trace.Delivered {
				b.Fatalf("%+v %v", res, err)
			}
			first := time.Since(t0)
			runtime.ReadMemStats(&m1)
			b.ReportAllocs()
			b.ResetTimer()
			i := 1
			for b.Loop() {
				if _, err := c.Trace(ctx, req(i)); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(first.Milliseconds()), "first-ms")
			// What indexing the desired table allocated (the first trace's
			// transient heap).
			b.ReportMetric(float64(m1.TotalAlloc-m0.TotalAlloc)/(1<<20), "first-alloc-MB")
		})
	}
}

// TestIdleTraceIndexIsDropped: an index nobody traced through for the
// idle time is dropped by the sweep, without waiting for another trace
// (at 100,000 hosts it holds hundreds of MB); a trace builds it again.
func TestIdleTraceIndexIsDropped(t *testing.T) {
	r := newRig(t, Options{})
	r.c.mu.Lock()
	r.c.trace.idle = 100 * time.Millisecond
	r.c.mu.Unlock()
	r.connect(controllertest.NewDatapath(1))
	r.apply(topology.Create(&topology.VPC{Name: "v"}))
	r.apply(topology.Create(&topology.VSwitch{VPC: "v", Name: "w", CIDR: netip.MustParsePrefix("10.0.0.0/24")}))
	m, _ := topology.ParseMAC("52:58:00:00:01:01")
	r.apply(topology.Create(&topology.Host{VPC: "v", Name: "h1", VSwitch: "w", IP: netip.MustParseAddr("10.0.0.11"), MAC: m, DPID: 1, OFPort: 1}))
	indexed := func() bool {
		r.c.mu.Lock()
		defer r.c.mu.Unlock()
		return r.c.trace.idx[1] != nil
	}
	// Building an index and dropping one leave garbage: each tells the
	// memory release (memrelease.go), which hands it back when quiet.
	noted := func() time.Time {
		r.c.release.mu.Lock()
		defer r.c.release.mu.Unlock()
		return r.c.release.last
	}
	for round := range 2 {
		before := noted()
		if _, err := r.c.Trace(r.ctx, trace.Request{VPC: "v", From: "h1", Dst: "10.0.0.12"}); err != nil {
			t.Fatal(err)
		}
		if !indexed() {
			t.Fatalf("round %d: no index after a trace", round)
		}
		built := noted()
		if !built.After(before) {
			t.Errorf("round %d: building the index did not tell the memory release", round)
		}
		deadline := time.Now().Add(5 * time.Second)
		for indexed() {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: the index is still kept 5 s after its last use (idle 100 ms)", round)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if !noted().After(built) {
			t.Errorf("round %d: dropping the index did not tell the memory release", round)
		}
	}
}
