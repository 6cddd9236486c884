package controller

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/vpcflow/vpcflow/controller/controllertest"
	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// bulkHosts is n new hosts on switch dpid (ports 100, 101, ...) in vsw-a
// of vpc-seed (10.10.0.0/16).
func bulkHosts(dpid uint64, n int) []topology.Op { return bulkHostsIn("vsw-a", 10, dpid, n) }

// bulkHostsIn is n new hosts on switch dpid (ports 100, 101, ...) in
// vSwitch vsw of vpc-seed, 10.b.0.0/16.
func bulkHostsIn(vsw string, b byte, dpid uint64, n int) []topology.Op {
	ops := make([]topology.Op, 0, n)
	for i := range n {
		ops = append(ops, topology.Create(&topology.Host{VPC: "vpc-seed", Name: fmt.Sprintf("bulk-%05d", i), VSwitch: vsw,
			IP:   netip.AddrFrom4([4]byte{10, b, byte(1 + i/250), byte(2 + i%250)}),
			MAC:  topology.MAC{0x02, 0, 0, b, byte(i >> 8), byte(i)},
			DPID: topology.DPID(dpid), OFPort: uint32(100 + i)}))
	}
	return ops
}

// TestBulkBatchReachesTheSwitchWhileComputed: a batch of thousands of new
// hosts reaches the switch part by part, the first part while the engine
// still computes the rest (issue 17), and leaves the switch with exactly
// the desired table.
func TestBulkBatchReachesTheSwitchWhileComputed(t *testing.T) {
	r := newRig(t, Options{})
	dp := controllertest.NewDatapath(1)
	r.connect(dp)
	r.apply(topology.Create(&topology.VPC{Name: "vpc-seed"}),
		topology.Create(&topology.VSwitch{VPC: "vpc-seed", Name: "vsw-a", CIDR: netip.MustParsePrefix("10.10.0.0/16"), Gateway: netip.MustParseAddr("10.10.0.1")}))
	start := time.Now()
	r.apply(bulkHosts(1, 5000)...)
	t.Logf("5,000 hosts applied in %v", time.Since(start))
	if n := dp.Streamed(); n != 1 {
		t.Fatalf("%d batches reached the switch while they were computed, want 1 (the switch waited for the whole batch)", n)
	}
	r.exact()
}

// TestPushDeadlineGrowsWithFlowMods: a push's context ends its timeout
// after it began plus flowModAllowance for each flow-mod given to the
// switch (a batch in parts: as each part is taken), or with its parent,
// or when released; Err says which.
func TestPushDeadlineGrowsWithFlowMods(t *testing.T) {
	start := time.Now()
	d, cancel := newPushDeadline(context.Background(), 20*time.Millisecond)
	defer cancel()
	first, _ := d.Deadline()

	// A batch in parts: nothing added until a part is taken.
	q := openflow.NewPartQueue[openflow.ModList]()
	mods := stretchFor(d, q)
	if at, _ := d.Deadline(); at != first {
		t.Fatalf("a batch in parts moved the deadline before any part was taken: %v", at.Sub(first))
	}
	q.Add(make(openflow.ModList, 400))
	q.Add(make(openflow.ModList, 600))
	q.Close()
	for i := 0; ; i++ {
		_, ok, err := mods.(openflow.ModParts).Part(d, i)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
	}
	if at, _ := d.Deadline(); at.Sub(first) != 1000*flowModAllowance {
		t.Fatalf("1,000 flow-mods in two parts moved the deadline by %v, want %v", at.Sub(first), 1000*flowModAllowance)
	}
	<-d.Done()
	if took := time.Since(start); took < 20*time.Millisecond+1000*flowModAllowance {
		t.Errorf("the push ended after %v, before its stretched deadline", took)
	}
	if !errors.Is(d.Err(), context.DeadlineExceeded) {
		t.Errorf("Err %v, want DeadlineExceeded", d.Err())
	}
	d.stretch(1000) // after the end: nothing changes
	if d.Err() != context.DeadlineExceeded {
		t.Errorf("a stretch after the end changed Err to %v", d.Err())
	}

	// A whole batch: its allowance at once.
	d2, cancel2 := newPushDeadline(context.Background(), time.Hour)
	at0, _ := d2.Deadline()
	stretchFor(d2, make(openflow.ModList, 3))
	if at, _ := d2.Deadline(); at.Sub(at0) != 3*flowModAllowance {
		t.Errorf("3 flow-mods moved the deadline by %v", at.Sub(at0))
	}
	cancel2()
	<-d2.Done()
	if !errors.Is(d2.Err(), context.Canceled) {
		t.Errorf("released: Err %v, want Canceled", d2.Err())
	}

	// Ends with its parent.
	parent, stop := context.WithCancel(context.Background())
	d3, cancel3 := newPushDeadline(parent, time.Hour)
	defer cancel3()
	stop()
	select {
	case <-d3.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the push did not end with its parent")
	}
	if !errors.Is(d3.Err(), context.Canceled) {
		t.Errorf("parent cancelled: Err %v", d3.Err())
	}

	// A parent already done, and a deadline already due: ended at once,
	// while being made.
	for _, base := range []time.Duration{time.Hour, 0} {
		p := parent
		if base == 0 {
			p = context.Background()
		}
		d4, cancel4 := newPushDeadline(p, base)
		select {
		case <-d4.Done():
		case <-time.After(5 * time.Second):
			t.Fatalf("base %v: not ended", base)
		}
		cancel4()
	}
}

// TestCookieDumpsCoverEveryCookie: a follower looks at a switch with one
// flow-stats request a cookie when the change's cookies are few or their
// ids far apart, and with at most maxCookieDumps ranges of neighbouring
// ids (the drop reason ignored) when they are many and close; every
// cookie of the change is under one of them.
func TestCookieDumpsCoverEveryCookie(t *testing.T) {
	covered := func(ds []cookieDump, c uint64) bool {
		for _, d := range ds {
			if c&d.mask == d.cookie&d.mask {
				return true
			}
		}
		return false
	}
	for _, tc := range []struct {
		name    string
		cookies []uint64
		exact   bool
	}{
		{"three hosts", []uint64{pipeline.HostCookie(7, 0), pipeline.HostCookie(9, 3), pipeline.SubnetCookie(7, 0)}, true},
		{"1,000 new hosts and their route entries", func() []uint64 {
			var cs []uint64
			for id := uint32(5000); id < 6000; id++ {
				cs = append(cs, pipeline.HostCookie(id, 0), pipeline.HostCookie(id, 2), pipeline.SubnetCookie(id+100, 0))
			}
			return cs
		}(), false},
		{"ids far apart: no range over the table between them", func() []uint64 {
			var cs []uint64
			for i := uint32(0); i < 100; i++ {
				cs = append(cs, pipeline.HostCookie(i*1000, 0), pipeline.RuleCookie(i*977))
			}
			return cs
		}(), true},
	} {
		set := map[uint64]bool{}
		for _, c := range tc.cookies {
			set[c] = true
		}
		ds := cookieDumps(set, maxCookieDumps)
		exact := len(ds) == len(set)
		for _, d := range ds {
			exact = exact && d.mask == ^uint64(0)
		}
		if exact != tc.exact {
			t.Errorf("%s: one request a cookie %v, want %v (%d requests for %d cookies)", tc.name, exact, tc.exact, len(ds), len(set))
		}
		if !exact && len(ds) > maxCookieDumps {
			t.Errorf("%s: %d ranges, want at most %d", tc.name, len(ds), maxCookieDumps)
		}
		for c := range set {
			if !covered(ds, c) {
				t.Errorf("%s: cookie %#x is in no request %v", tc.name, c, ds)
			}
		}
		t.Logf("%s: %d cookies in %d requests", tc.name, len(set), len(ds))
	}
}
