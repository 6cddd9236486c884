package controller

// Benchmarks for `make bench` (run with -benchmem). Targets are printed by
// `make bench` and docs/performance.md, never asserted here.
//
//	BenchmarkSubnetChange  one route entry added or deleted through
//	                       Controller.Apply with N hosts present: store write
//	                       (one bbolt fsync), recompute, diff, queue and the
//	                       (fake) switch's confirmation. Must not grow with N
//	                       (cpu-µs/op; ns/op is mostly the fsync);
//	                       flowmods/op is the subnet's flow count.
//	BenchmarkDesiredFlows  the full desired set for N hosts: the engine fed
//	                       every owner, pure.
//	BenchmarkDesiredTable  the same flows keyed into a DesiredTable, what a
//	                       (re)connecting switch is diffed against.
//	BenchmarkDiffTable     DiffTable against an installed set of the same size:
//	                       nochange (controller restart) and empty (ovs-vswitchd
//	                       restart: everything is added).
//	BenchmarkNew           controller.New over a store holding N hosts: the
//	                       start-up cost before the REST API answers.
//	BenchmarkHeapPerHost   the heap the store and controller keep per host
//	                       after a restart and after a bulk load: live and
//	                       in use (partly empty spans included).
//	BenchmarkBulkApply     one bulk load as bench/vpcbench's REST batches
//	                       make it: N hosts, then their N route entries,
//	                       through Controller.Apply into an empty controller
//	                       (store validate and commit, flow computation,
//	                       the fake switch's confirmation): the
//	                       controller's share of the 1,000-host bulk.
//	BenchmarkPortEvent     an OVSDB port-map update that concerns no host (a
//	                       port added to another bridge), with N hosts: what
//	                       every port event costs, under the controller lock.
//	BenchmarkCascadeDelete the store's part of deleting a VPC of N hosts and
//	                       their route entries (?cascade), and the longest a
//	                       reader waited for the store meanwhile.

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/controller/controllertest"
	"github.com/vpcflow/vpcflow/controller/engine"
	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/ovsdb"
	"github.com/vpcflow/vpcflow/topology"
)

const benchDPID = 0xbe7c

var benchSizes = []int{1000, 10000, 50000}

func benchAddr(base uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(base >> 24), byte(base >> 16), byte(base >> 8), byte(base)})
}

// benchTopology is the workload of bench/vpcbench: one VPC, one vSwitch
// 10.0.0.0/16, host i at 10.0.0.0+i+1 on dpid benchDPID port i+1, and one
// route entry 11.0.0.0+i*256/24 per host.
func benchTopology(n int) (topology.VPC, topology.VSwitch, []topology.Host, []topology.Subnet) {
	vpc := topology.VPC{ID: 1, Name: "vpc-bench"}
	vsw := topology.VSwitch{ID: 1, VPC: vpc.Name, Name: "vsw-bench",
		CIDR: netip.MustParsePrefix("10.0.0.0/16"), Gateway: netip.MustParseAddr("10.0.255.253")}
	hosts := make([]topology.Host, n)
	subnets := make([]topology.Subnet, n)
	for i := range n {
		v := uint32(i + 1)
		hosts[i] = topology.Host{ID: v, VPC: vpc.Name, Name: fmt.Sprintf("h%06d", i), VSwitch: vsw.Name,
			IP: benchAddr(10<<24 + v), MAC: topology.MAC{0x52, 0x54, 0, byte(v >> 16), byte(v >> 8), byte(v)},
			DPID: benchDPID, OFPort: v}
		subnets[i] = topology.Subnet{ID: v, VPC: vpc.Name, Name: fmt.Sprintf("s%06d", i),
			CIDR: netip.PrefixFrom(benchAddr(11<<24+uint32(i)*256), 24), Host: hosts[i].Name}
	}
	return vpc, vsw, hosts, subnets
}

// benchFlows is the full desired table for n hosts, from the pipeline and
// the engine.
func benchFlows(b *testing.B, n int) []openflow.Flow {
	st := loadBench(b, topology.NewMemory(), n)
	e := engine.New(pipeline.Default())
	st.Read(func(s *topology.State) { e.Update(benchSnapshot(s), pipeline.AllOwners(s)) })
	return engine.Sorted(e.Desired(benchDPID))
}

// benchSnapshot resolves the bench's hosts (attached by dpid+ofport).
func benchSnapshot(st *topology.State) *pipeline.Snapshot {
	return &pipeline.Snapshot{Topo: st, Ports: portMap{st: st}, Chassis: map[string]pipeline.ChassisPlace{}, UnderlayMTU: 1500}
}

// benchStore opens a store in a temp dir and loads n hosts and subnets
// into it (5,000 per transaction, as the bench's REST batches).
func benchStore(b testing.TB, n int) *topology.Store {
	b.Helper()
	bk, err := topology.OpenBolt(context.Background(), b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	return loadBench(b, bk, n)
}

// loadBench loads the bench topology into a store over backend.
func loadBench(b testing.TB, backend topology.Backend, n int) *topology.Store {
	b.Helper()
	ctx := context.Background()
	st, err := topology.NewStore(ctx, backend, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	vpc, vsw, hosts, subnets := benchTopology(n)
	vpc.ID, vsw.ID = 0, 0
	if _, err := st.Apply(ctx, []topology.Op{topology.Create(&vpc), topology.Create(&vsw)}); err != nil {
		b.Fatal(err)
	}
	const batch = 5000
	for i := 0; i < n; i += batch {
		var ops []topology.Op
		for j := i; j < min(i+batch, n); j++ {
			h := hosts[j]
			h.ID = 0
			ops = append(ops, topology.Create(&h))
		}
		if _, err := st.Apply(ctx, ops); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < n; i += batch {
		var ops []topology.Op
		for j := i; j < min(i+batch, n); j++ {
			s := subnets[j]
			s.ID = 0
			ops = append(ops, topology.Create(&s))
		}
		if _, err := st.Apply(ctx, ops); err != nil {
			b.Fatal(err)
		}
	}
	return st
}

// benchDatapath is a switch that accepts everything at once and counts
// the flow-mods it gets. Its dump returns the flows it was created with.
type benchDatapath struct {
	*controllertest.Datapath // for its meters only
	table                    []openflow.FlowStats
	mods                     atomic.Int64
}

func (d *benchDatapath) DPID() uint64              { return benchDPID }
func (d *benchDatapath) RemoteAddr() string        { return "bench" }
func (d *benchDatapath) ConnectedAt() time.Time    { return time.Time{} }
func (d *benchDatapath) CertificateSHA256() string { return "" }
func (d *benchDatapath) Close()                    {}
func (d *benchDatapath) DumpFlows(context.Context) ([]openflow.FlowStats, error) {
	return d.table, nil
}
func (d *benchDatapath) DumpTable(context.Context, uint8) ([]openflow.FlowStats, error) {
	return nil, nil
}
func (d *benchDatapath) TableStats(context.Context) ([]openflow.TableStats, error) { return nil, nil }
func (d *benchDatapath) ApplySeq(_ context.Context, mods openflow.FlowMods) error {
	var m openflow.FlowMod
	for i := range mods.Len() { // read as the switch does
		if err := mods.At(i, &m); err != nil {
			return err
		}
	}
	d.mods.Add(int64(mods.Len()))
	return nil
}

// benchController is a controller with the fake switch connected and
// reconciled, over a store with n hosts and subnets. The switch already
// holds every flow, so the reconciliation sends nothing.
func benchController(b *testing.B, n int) (*Controller, *benchDatapath) {
	b.Helper()
	st := benchStore(b, n)
	c := New(zap.NewNop(), st, Options{})
	dp := &benchDatapath{Datapath: controllertest.NewDatapath(benchDPID)}
	for _, f := range benchFlows(b, n) {
		dp.table = append(dp.table, openflow.FlowStats{Flow: f})
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	go c.Serve(ctx, dp)
	deadline := time.Now().Add(5 * time.Minute)
	for len(c.Switches()) == 0 {
		if time.Now().After(deadline) {
			b.Fatal("fake switch not reconciled")
		}
		time.Sleep(time.Millisecond)
	}
	if m := dp.mods.Load(); m != 0 {
		b.Fatalf("reconciling the fake switch sent %d flow-mods, want 0 (bench topology != store)", m)
	}
	return c, dp
}

// BenchmarkSubnetChange is one route entry added or deleted (alternately)
// with N hosts present, through Controller.Apply to a fake switch.
func BenchmarkSubnetChange(b *testing.B) {
	for _, n := range []int{1000, 50000} {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			c, dp := benchController(b, n)
			ctx := context.Background()
			host := fmt.Sprintf("h%06d", n/2)
			cidr := netip.MustParsePrefix("12.0.0.0/24")
			before := dp.mods.Load()
			cpu0 := cpuTime()
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				var op topology.Op
				if i%2 == 0 {
					op = topology.Create(&topology.Subnet{VPC: "vpc-bench", Name: "extra", CIDR: cidr, Host: host})
				} else {
					op = topology.Delete(&topology.Subnet{VPC: "vpc-bench", Name: "extra"}, false)
				}
				if _, err := c.Apply(ctx, []topology.Op{op}); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(dp.mods.Load()-before)/float64(i), "flowmods/op")
			// Wall time is mostly the store's fdatasync (disk-bound, noisy on
			// a busy machine); the CPU the process spent per change is what
			// must not grow with N.
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(i), "cpu-µs/op")
		})
	}
}

// BenchmarkDesiredFlows computes the full desired set for N hosts.
func BenchmarkDesiredFlows(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			st := loadBench(b, topology.NewMemory(), n)
			b.ReportAllocs()
			var flows int
			for b.Loop() {
				e := engine.New(pipeline.Default())
				st.Read(func(s *topology.State) { e.Update(benchSnapshot(s), pipeline.AllOwners(s)) })
				flows = e.Size()
			}
			b.ReportMetric(float64(flows), "flows")
		})
	}
}

// BenchmarkDesiredTable keys the full desired set, as a switch
// reconciliation does.
func BenchmarkDesiredTable(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			flows := benchFlows(b, n)
			b.ReportAllocs()
			for b.Loop() {
				t := make(engine.DesiredTable, len(flows))
				for i := range flows {
					t[flows[i].Key()] = flows[i]
				}
			}
			b.ReportMetric(float64(len(flows)), "flows")
		})
	}
}

// BenchmarkDiffTable diffs the desired table against an installed set of
// the same flows (nochange: a controller restart) and against an empty
// switch (empty: an ovs-vswitchd restart, every flow is added).
func BenchmarkDiffTable(b *testing.B) {
	for _, n := range benchSizes {
		flows := benchFlows(b, n)
		desired := make(engine.DesiredTable, len(flows))
		for i := range flows {
			desired[flows[i].Key()] = flows[i]
		}
		// What a dump decodes to: equal flows in their own memory.
		installed := make([]openflow.Flow, len(flows))
		for i, f := range flows {
			f.Match = append(openflow.Match(nil), f.Match...)
			f.Actions = append([]openflow.Action(nil), f.Actions...)
			installed[i] = f
		}
		for _, c := range []struct {
			name      string
			installed []openflow.Flow
			want      int
		}{{"nochange", installed, 0}, {"empty", nil, len(flows)}} {
			b.Run(fmt.Sprintf("%s/hosts=%d", c.name, n), func(b *testing.B) {
				b.ReportAllocs()
				var got int
				for b.Loop() {
					got = len(engine.DiffTable(pipeline.Default(), desired, c.installed))
				}
				if got != c.want {
					b.Fatalf("DiffTable: %d changes, want %d", got, c.want)
				}
				b.ReportMetric(float64(len(flows)), "flows")
			})
		}
	}
}

// BenchmarkNew is controller.New over a store holding N hosts and subnets:
// every object's flows computed and cached before the API answers. It also
// reports the live heap the controller keeps per host (its flow cache; the
// store's own state is not counted), measured after a GC.
func BenchmarkNew(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			st := benchStore(b, n)
			b.ReportAllocs()
			var c *Controller
			for b.Loop() {
				c = New(zap.NewNop(), st, Options{})
			}
			b.StopTimer()
			c = nil
			before := liveHeap()
			c = New(zap.NewNop(), st, Options{})
			after := liveHeap()
			runtime.KeepAlive(c)
			b.ReportMetric(float64(after-before)/float64(n), "live-B/host")
		})
	}
}

// BenchmarkHeapPerHost is the heap the store and the controller keep per
// host with N hosts and their route entries, after a full GC: loaded from
// bbolt (a restart) and applied in batches of 5,000 through
// Controller.Apply (a bulk load, as the REST API would). live-B/host is
// HeapAlloc, inuse-B/host HeapInuse: the spans that hold it, partly empty
// ones included (what RSS pays for; the difference is the fragmentation
// issue 17 cut with slabs and staged records).
func BenchmarkHeapPerHost(b *testing.B) {
	for _, n := range []int{10000, 50000} {
		heap := func() runtime.MemStats {
			runtime.GC()
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			return ms
		}
		report := func(b *testing.B, before, after runtime.MemStats) {
			b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(n), "live-B/host")
			b.ReportMetric(float64(int64(after.HeapInuse)-int64(before.HeapInuse))/float64(n), "inuse-B/host")
		}
		b.Run(fmt.Sprintf("restart/hosts=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			bk, err := topology.OpenBolt(context.Background(), dir, nil)
			if err != nil {
				b.Fatal(err)
			}
			loadBench(b, bk, n).Close()
			for b.Loop() {
				before := heap()
				bk, err := topology.OpenBolt(context.Background(), dir, nil)
				if err != nil {
					b.Fatal(err)
				}
				st, err := topology.NewStore(context.Background(), bk, nil)
				if err != nil {
					b.Fatal(err)
				}
				c := New(zap.NewNop(), st, Options{})
				report(b, before, heap())
				runtime.KeepAlive(c)
				st.Close()
			}
		})
		b.Run(fmt.Sprintf("bulk/hosts=%d", n), func(b *testing.B) {
			ctx := context.Background()
			for b.Loop() {
				before := heap()
				bk, err := topology.OpenBolt(ctx, b.TempDir(), nil)
				if err != nil {
					b.Fatal(err)
				}
				st, err := topology.NewStore(ctx, bk, nil)
				if err != nil {
					b.Fatal(err)
				}
				c := New(zap.NewNop(), st, Options{})
				vpc, vsw, hosts, subnets := benchTopology(n)
				vpc.ID, vsw.ID = 0, 0
				if _, err := c.Apply(ctx, []topology.Op{topology.Create(&vpc), topology.Create(&vsw)}); err != nil {
					b.Fatal(err)
				}
				const batch = 5000
				apply := func(op func(i int) topology.Op) {
					for i := 0; i < n; i += batch {
						var ops []topology.Op
						for j := i; j < min(i+batch, n); j++ {
							ops = append(ops, op(j))
						}
						if _, err := c.Apply(ctx, ops); err != nil {
							b.Fatal(err)
						}
					}
				}
				// Each object a fresh copy with its own name, as decoded
				// from a request.
				apply(func(j int) topology.Op {
					h := hosts[j]
					h.ID, h.Name = 0, strings.Clone(h.Name)
					return topology.Create(&h)
				})
				apply(func(j int) topology.Op {
					s := subnets[j]
					s.ID, s.Name = 0, strings.Clone(s.Name)
					return topology.Create(&s)
				})
				hosts, subnets = nil, nil
				report(b, before, heap())
				runtime.KeepAlive(c)
				st.Close()
			}
		})
	}
}

// cpuTime is the CPU (user + system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// liveHeap is the heap in use after a full GC.
func liveHeap() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// BenchmarkPortEvent feeds the controller an OVSDB port map in which a
// bridge no host uses gains a port, alternately; no flow changes.
func BenchmarkPortEvent(b *testing.B) {
	for _, n := range []int{1000, 50000} {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			c, dp := benchController(b, n)
			before := dp.mods.Load()
			maps := [2][]ovsdb.Bridge{
				{{Name: "br-other", DPID: 0x0123, Ports: map[string]ovsdb.Port{"p1": {Name: "p1", OFPort: 1}}}},
				{{Name: "br-other", DPID: 0x0123, Ports: map[string]ovsdb.Port{"p1": {Name: "p1", OFPort: 1}, "p2": {Name: "p2", OFPort: 2}}}},
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				c.BridgesChanged("unix:bench", maps[i%2])
				i++
			}
			if m := dp.mods.Load() - before; m != 0 {
				b.Fatalf("%d flow-mods for an unrelated port", m)
			}
		})
	}
}

// BenchmarkBulkApply is what one REST bulk load of N hosts and then their
// N route entries costs the controller through Controller.Apply (store
// validate + commit, flow computation, queueing to a fake switch that
// confirms at once), as bench/vpcbench's 1,000-per-request load does.
func BenchmarkBulkApply(b *testing.B) {
	for _, n := range []int{1000} {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			c, _ := benchController(b, 0)
			ctx := context.Background()
			_, _, hosts, subnets := benchTopology(n)
			b.ReportAllocs()
			var cpu time.Duration
			for b.Loop() {
				cpu0 := cpuTime()
				ops := make([]topology.Op, 0, n)
				for j := range hosts {
					h := hosts[j]
					h.ID, h.Name, h.VPC, h.VSwitch = 0, strings.Clone(h.Name), "vpc-bench", "vsw-bench"
					ops = append(ops, topology.Create(&h))
				}
				if _, err := c.Apply(ctx, ops); err != nil {
					b.Fatal(err)
				}
				ops = ops[:0]
				for j := range subnets {
					s := subnets[j]
					s.ID, s.Name = 0, strings.Clone(s.Name)
					ops = append(ops, topology.Create(&s))
				}
				if _, err := c.Apply(ctx, ops); err != nil {
					b.Fatal(err)
				}
				cpu += cpuTime() - cpu0
				b.StopTimer()
				ops = ops[:0]
				for j := range hosts {
					ops = append(ops, topology.Delete(&topology.Host{VPC: "vpc-bench", Name: hosts[j].Name}, true))
				}
				if _, err := c.Apply(ctx, ops); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			// The process's CPU (both cores, GC included) per load: ns/op
			// is partly the two fsyncs.
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}

// BenchmarkDriftTableUnderLock is what a drift check held the
// controller's lock for to take the desired side of table 0 (the
// classifier, 4 flows a host) with N hosts — the whole table copied
// (DesiredIn: every check did this until issue 17) — next to one slice
// of 16 taken as checks now take it (TableSlice, locked-µs/op; the flows
// are read after the lock, counted in ns/op).
func BenchmarkDriftTableUnderLock(b *testing.B) {
	for _, n := range []int{50000} {
		c, _ := benchController(b, n)
		b.Run(fmt.Sprintf("hosts=%d/whole", n), func(b *testing.B) {
			for b.Loop() {
				c.mu.Lock()
				d := c.engine.DesiredIn(benchDPID, 0)
				c.mu.Unlock()
				b.ReportMetric(float64(len(d)), "flows")
			}
		})
		b.Run(fmt.Sprintf("hosts=%d/slice", n), func(b *testing.B) {
			k := uint64(0)
			var locked time.Duration
			for b.Loop() {
				start := time.Now()
				c.mu.Lock()
				t := c.engine.TableSlice(benchDPID, 0, k%16, 15)
				c.mu.Unlock()
				locked += time.Since(start)
				k++
				flows := 0
				t.Each(func(*openflow.Flow) { flows++ })
				b.ReportMetric(float64(flows), "flows")
			}
			b.ReportMetric(float64(locked.Microseconds())/float64(b.N), "locked-µs/op")
		})
	}
}

// BenchmarkCascadeDelete is the store's part of deleting the bench's VPC
// with its N hosts and route entries (`DELETE /v1/vpcs/vpc-bench?cascade`):
// ns/op the whole Store.Apply, readers-held-ms the longest a reader
// polling every millisecond waited for the store's lock meanwhile.
func BenchmarkCascadeDelete(b *testing.B) {
	for _, n := range []int{50000} {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			var worst time.Duration
			for b.Loop() {
				b.StopTimer()
				st := benchStore(b, n)
				stop := make(chan struct{})
				polled := make(chan time.Duration)
				go func() {
					var w time.Duration
					for {
						select {
						case <-stop:
							polled <- w
							return
						case <-time.After(time.Millisecond):
						}
						t0 := time.Now()
						st.Read(func(*topology.State) {})
						w = max(w, time.Since(t0))
					}
				}()
				b.StartTimer()
				if _, err := st.Apply(context.Background(), []topology.Op{topology.Delete(&topology.VPC{Name: "vpc-bench"}, true)}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				close(stop)
				worst = max(worst, <-polled)
				b.StartTimer()
			}
			b.ReportMetric(float64(worst.Microseconds())/1000, "readers-held-ms")
		})
	}
}
