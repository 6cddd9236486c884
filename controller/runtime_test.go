package controller

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/vpcflow/vpcflow/controller/controllertest"
	"github.com/vpcflow/vpcflow/controller/engine"
	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/ovsdb"
	"github.com/vpcflow/vpcflow/topology"
)

// rig is a controller over a real (bbolt) store with in-memory switches
// connected, driven as the runtime is: Apply, port maps, (re)connects.
type rig struct {
	t       *testing.T
	ctx     context.Context
	store   *topology.Store
	c       *Controller
	chassis *controllertest.Chassis
	cancels map[uint64]context.CancelFunc
	dps     map[uint64]*controllertest.Datapath
}

func newRig(t *testing.T, opts Options) *rig {
	t.Helper()
	st, err := topology.Open(context.Background(), t.TempDir(), zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return newRigOn(t, st, opts)
}

func newRigOn(t *testing.T, st *topology.Store, opts Options) *rig {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch := &controllertest.Chassis{}
	opts.Chassis = ch
	if opts.PushTimeout == 0 {
		opts.PushTimeout = 5 * time.Second
	}
	r := &rig{t: t, ctx: ctx, store: st, chassis: ch, c: New(zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), st, opts),
		cancels: map[uint64]context.CancelFunc{}, dps: map[uint64]*controllertest.Datapath{}}
	return r
}

// connect connects dp and waits until it is reconciled.
func (r *rig) connect(dp *controllertest.Datapath) {
	r.t.Helper()
	ctx, cancel := context.WithCancel(r.ctx)
	r.cancels[dp.DPID()] = cancel
	r.dps[dp.DPID()] = dp
	go func() {
		r.c.Serve(ctx, dp)
		r.c.Forget(dp)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, s := range r.c.Switches() {
			if uint64(s.DPID) == dp.DPID() {
				return
			}
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("switch %x not reconciled", dp.DPID())
		}
		time.Sleep(time.Millisecond)
	}
}

func (r *rig) disconnect(dpid uint64) {
	r.cancels[dpid]()
	deadline := time.Now().Add(5 * time.Second)
	for r.connected(dpid) {
		if time.Now().After(deadline) {
			r.t.Fatalf("switch %x still listed after disconnecting", dpid)
		}
		time.Sleep(time.Millisecond)
	}
}

func (r *rig) connected(dpid uint64) bool {
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	_, ok := r.c.switches[dpid]
	return ok
}

func (r *rig) apply(ops ...topology.Op) []topology.Op {
	r.t.Helper()
	out, err := r.c.Apply(r.ctx, ops)
	if err != nil {
		r.t.Fatalf("Apply: %v", err)
	}
	return out
}

// exact checks that every connected switch holds exactly what the engine
// wants on it.
func (r *rig) exact() {
	r.t.Helper()
	for dpid, dp := range r.dps {
		if !r.connected(dpid) {
			continue
		}
		want := engine.Sorted(r.c.engineDesired(dpid))
		got := dp.Flows()
		if text(want) != text(got) {
			r.t.Fatalf("switch %x holds\n%s\nwant\n%s", dpid, text(got), text(want))
		}
	}
}

func (c *Controller) engineDesired(dpid uint64) engine.DesiredTable {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.engine.Desired(dpid)
}

func text(fs []openflow.Flow) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString(f.String())
		b.WriteByte('\n')
	}
	return b.String()
}

func mac(s string) topology.MAC {
	m, err := topology.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// seedBridges is br-test (dpid 1) with vnet1 on port 1 and vnet3 on 2.
func seedBridges() []ovsdb.Bridge {
	return []ovsdb.Bridge{{Name: "br-test", DPID: 1, Ports: map[string]ovsdb.Port{
		"vnet1": {Name: "vnet1", OFPort: 1, AttachedMAC: net.HardwareAddr{0x52, 0x58, 0, 0x98, 0xc0, 0x81}},
		"vnet3": {Name: "vnet3", OFPort: 2},
	}}}
}

// seedOps registers the seed scenario as the e2e test and the demo do.
func seedOps() []topology.Op {
	return []topology.Op{
		topology.Create(&topology.VPC{Name: "vpc-seed"}),
		topology.Create(&topology.VSwitch{VPC: "vpc-seed", Name: "vsw-a", CIDR: netip.MustParsePrefix("10.10.10.0/24"), Gateway: netip.MustParseAddr("10.10.10.1")}),
		topology.Create(&topology.Host{VPC: "vpc-seed", Name: "test1", VSwitch: "vsw-a", IP: netip.MustParseAddr("10.10.10.11"), MAC: mac("52:58:00:98:c0:81"), Bridge: "br-test", Interface: "vnet1"}),
		topology.Create(&topology.Subnet{VPC: "vpc-seed", CIDR: netip.MustParsePrefix("172.18.1.0/24"), Host: "test1"}),
		topology.Create(&topology.Host{VPC: "vpc-seed", Name: "test2", VSwitch: "vsw-a", IP: netip.MustParseAddr("10.10.10.12"), MAC: mac("52:58:00:98:c0:92"), Bridge: "br-test", Interface: "vnet3"}),
		topology.Create(&topology.Subnet{VPC: "vpc-seed", CIDR: netip.MustParsePrefix("172.18.3.0/24"), Host: "test2"}),
	}
}

// TestApplyInstallsTheGoldenSeedTable: the seed registered through Apply
// leaves the connected switch holding exactly the pipeline's golden seed
// table (controller/pipeline/testdata/seed.golden).
func TestApplyInstallsTheGoldenSeedTable(t *testing.T) {
	r := newRig(t, Options{OVSDBEndpoints: []string{"unix:/test/db.sock"}})
	r.c.BridgesChanged("unix:/test/db.sock", seedBridges())
	dp := controllertest.NewDatapath(1)
	r.connect(dp)
	for _, op := range seedOps() {
		r.apply(op)
	}
	want, err := os.ReadFile("pipeline/testdata/seed.golden")
	if err != nil {
		t.Fatal(err)
	}
	if got := dp.Text(); got != string(want) {
		t.Fatalf("switch holds\n%s\nwant (seed.golden)\n%s", got, want)
	}
	// A reconnect with the same table sends nothing.
	before := dp.Mods()
	r.disconnect(1)
	r.connect(dp)
	if n := dp.Mods() - before; n != 0 {
		t.Fatalf("reconnect sent %d flow-mods, want 0", n)
	}
}

// TestReconnectRepairsDrift: flows removed or added by hand while the
// controller was away are put right on reconnect, and only they.
func TestReconnectRepairsDrift(t *testing.T) {
	r := newRig(t, Options{})
	dp := controllertest.NewDatapath(1)
	r.connect(dp)
	ops := seedOps()
	ops[2].Host().Bridge, ops[2].Host().Interface, ops[2].Host().DPID, ops[2].Host().OFPort = "", "", 1, 1
	ops[4].Host().Bridge, ops[4].Host().Interface, ops[4].Host().DPID, ops[4].Host().OFPort = "", "", 1, 2
	r.apply(ops...)
	r.exact()
	r.disconnect(1)
	flows := dp.Flows()
	dp.Remove(flows[0])
	foreign := openflow.Flow{Table: 30, Priority: 500, Cookie: 0x1, Match: openflow.NewMatch().EthType(openflow.EthTypeIPv4)}
	dp.Put(foreign)
	before := dp.Mods()
	r.connect(dp)
	if n := dp.Mods() - before; n != 2 {
		t.Errorf("repair sent %d flow-mods, want 2 (re-add one, delete the foreign one)", n)
	}
	r.exact()
}

// TestPortEventMovesFlows: a port renumbered in OVSDB moves the host's
// flows (and its route entry's) to the new port.
func TestPortEventMovesFlows(t *testing.T) {
	r := newRig(t, Options{OVSDBEndpoints: []string{"unix:/test/db.sock"}})
	r.c.BridgesChanged("unix:/test/db.sock", seedBridges())
	dp := controllertest.NewDatapath(1)
	r.connect(dp)
	r.apply(seedOps()...)
	// Each update is a new port map, as the monitor sends.
	bs := seedBridges()
	bs[0].Ports["vnet3"] = ovsdb.Port{Name: "vnet3", OFPort: 12}
	r.c.BridgesChanged("unix:/test/db.sock", bs)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(dp.Text(), "in_port=12") || strings.Contains(dp.Text(), "in_port=2,") {
		if time.Now().After(deadline) {
			t.Fatalf("flows did not move to port 12:\n%s", dp.Text())
		}
		time.Sleep(time.Millisecond)
	}
	if !strings.Contains(dp.Text(), "set_field:0xc->reg2") {
		t.Errorf("routes to test2 do not output to port 12:\n%s", dp.Text())
	}
	r.exact()
	// The port goes away: test2 has no flows, test1 keeps its own.
	bs = seedBridges()
	delete(bs[0].Ports, "vnet3")
	r.c.BridgesChanged("unix:/test/db.sock", bs)
	deadline = time.Now().Add(5 * time.Second)
	for strings.Contains(dp.Text(), "in_port=12") {
		if time.Now().After(deadline) {
			t.Fatalf("flows of a port that is gone stayed:\n%s", dp.Text())
		}
		time.Sleep(time.Millisecond)
	}
	r.exact()
}

// threeChassis registers node1..3 (dpid 0x11..0x13, VXLAN port 10) and a
// VPC with vm1 on node1 and vm2 on node2, each with a container subnet.
func threeChassis(t *testing.T) *rig {
	r := newRig(t, Options{Advertise: "tcp:192.168.100.254:6653"})
	for n := uint64(1); n <= 3; n++ {
		ep := "tcp:192.168.100.1" + string(rune('0'+n)) + ":6640"
		r.c.BridgesChanged(ep, []ovsdb.Bridge{{Name: "br-vpc", DPID: 0x10 + n, Ports: map[string]ovsdb.Port{
			topology.TunnelPortName: {Name: topology.TunnelPortName, OFPort: 10},
			"vnet1":                 {Name: "vnet1", OFPort: 1},
		}}})
		r.connect(controllertest.NewDatapath(0x10 + n))
	}
	for n := 1; n <= 3; n++ {
		ip := netip.AddrFrom4([4]byte{192, 168, 100, byte(10 + n)})
		r.apply(topology.Create(&topology.Chassis{Name: "node" + string(rune('0'+n)), OVSDB: "tcp:" + ip.String() + ":6640", Bridge: "br-vpc", TunnelIP: ip}))
	}
	r.apply(
		topology.Create(&topology.VPC{Name: "vpc-a"}),
		topology.Create(&topology.VSwitch{VPC: "vpc-a", Name: "vsw-a", CIDR: netip.MustParsePrefix("10.10.10.0/24")}),
		topology.Create(&topology.Host{VPC: "vpc-a", Name: "vm1", VSwitch: "vsw-a", IP: netip.MustParseAddr("10.10.10.21"), MAC: mac("02:00:00:00:00:21"), Chassis: "node1", Interface: "vnet1"}),
		topology.Create(&topology.Host{VPC: "vpc-a", Name: "vm2", VSwitch: "vsw-a", IP: netip.MustParseAddr("10.10.10.22"), MAC: mac("02:00:00:00:00:22"), Chassis: "node2", Interface: "vnet1"}),
		topology.Create(&topology.Subnet{VPC: "vpc-a", CIDR: netip.MustParsePrefix("172.18.21.0/24"), Host: "vm1"}),
		topology.Create(&topology.Subnet{VPC: "vpc-a", CIDR: netip.MustParsePrefix("172.18.22.0/24"), Host: "vm2"}),
	)
	r.exact()
	return r
}

// TestChassisCascadeRemovesEveryFlow (issue 19.1): deleting a chassis with
// its hosts removes their flows everywhere — on the chassis and the tunnel
// routes to them on every other chassis — and a chassis re-added with
// another tunnel IP leaves no route to the old one.
func TestChassisCascadeRemovesEveryFlow(t *testing.T) {
	r := threeChassis(t)
	if !strings.Contains(r.dps[0x13].Text(), "192.168.100.11->tun_dst") {
		t.Fatalf("node3 has no tunnel route to node1's VM:\n%s", r.dps[0x13].Text())
	}
	r.apply(topology.Delete(&topology.Chassis{Name: "node1"}, true))
	r.exact()
	for dpid, dp := range r.dps {
		if txt := dp.Text(); strings.Contains(txt, "192.168.100.11") || strings.Contains(txt, "10.10.10.21") || strings.Contains(txt, "172.18.21.0") {
			t.Errorf("switch %x still holds flows of node1 or vm1:\n%s", dpid, txt)
		}
	}
	// Re-added with another tunnel IP, with a VM again.
	r.apply(topology.Create(&topology.Chassis{Name: "node1", OVSDB: "tcp:192.168.100.11:6640", Bridge: "br-vpc", TunnelIP: netip.MustParseAddr("192.168.100.111")}),
		topology.Create(&topology.Host{VPC: "vpc-a", Name: "vm1", VSwitch: "vsw-a", IP: netip.MustParseAddr("10.10.10.21"), MAC: mac("02:00:00:00:00:21"), Chassis: "node1", Interface: "vnet1"}))
	r.exact()
	for dpid, dp := range r.dps {
		if txt := dp.Text(); strings.Contains(txt, "192.168.100.11->") || strings.Contains(txt, "tun_src=192.168.100.11,") {
			t.Errorf("switch %x still routes to the old tunnel IP:\n%s", dpid, txt)
		}
	}
	if !strings.Contains(r.dps[0x12].Text(), "192.168.100.111->tun_dst") {
		t.Errorf("node2 has no route to the re-added node1:\n%s", r.dps[0x12].Text())
	}
}

// TestCascadeDeletesRemoveExactly: each cascading delete (host, vSwitch,
// VPC) leaves every switch with exactly the engine's table, and at the end
// only the pipeline's defaults.
func TestCascadeDeletesRemoveExactly(t *testing.T) {
	r := threeChassis(t)
	r.apply(topology.Delete(&topology.Host{VPC: "vpc-a", Name: "vm2"}, true))
	r.exact()
	if strings.Contains(r.dps[0x11].Text(), "172.18.22.0") {
		t.Errorf("vm2's route entry survived its host:\n%s", r.dps[0x11].Text())
	}
	r.apply(topology.Delete(&topology.VSwitch{VPC: "vpc-a", Name: "vsw-a"}, true))
	r.exact()
	r.apply(topology.Delete(&topology.VPC{Name: "vpc-a"}, true))
	r.exact()
	for dpid, dp := range r.dps {
		for _, f := range dp.Flows() {
			if ck := pipeline.ParseCookie(f.Cookie); ck.Owner == pipeline.OwnerHost || ck.Owner == pipeline.OwnerSubnet || ck.Owner == pipeline.OwnerVSwitch {
				t.Errorf("switch %x keeps %s", dpid, f.String())
			}
		}
	}
}

// failingBackend refuses commits while fail is set.
type failingBackend struct {
	topology.Backend
	fail bool
}

func (b *failingBackend) Commit(ctx context.Context, c topology.Commit) error {
	if b.fail {
		return errors.New("disk full")
	}
	return b.Backend.Commit(ctx, c)
}

// TestChassisSetupUndoneWhenStoreRefuses: the chassis's OVSDB is set up
// only once the change is valid, and undone when the store cannot keep it.
func TestChassisSetupUndoneWhenStoreRefuses(t *testing.T) {
	b, err := topology.OpenBolt(context.Background(), t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	fb := &failingBackend{Backend: b}
	st, err := topology.NewStore(context.Background(), fb, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	r := newRigOn(t, st, Options{Advertise: "tcp:127.0.0.1:6653"})
	ch := &topology.Chassis{Name: "node1", OVSDB: "tcp:192.168.100.11:6640", Bridge: "br-vpc", TunnelIP: netip.MustParseAddr("192.168.100.11")}
	// Invalid: nothing is set up.
	bad := *ch
	bad.TunnelIP = netip.MustParseAddr("127.0.0.1")
	if _, err := r.c.Apply(r.ctx, []topology.Op{topology.Create(&bad)}); err == nil {
		t.Fatal("loopback tunnel IP accepted")
	}
	if setup, _ := r.chassis.Setups(); len(setup) != 0 {
		t.Fatalf("an invalid chassis was set up: %v", setup)
	}
	// Valid, but the store cannot commit: set up, then undone.
	fb.fail = true
	if _, err := r.c.Apply(r.ctx, []topology.Op{topology.Create(ch)}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Apply = %v, want the store's error", err)
	}
	if setup, undone := r.chassis.Setups(); len(setup) != 1 || len(undone) != 1 {
		t.Fatalf("setups %v, undone %v: want node1 set up and undone", setup, undone)
	}
	fb.fail = false
	r.apply(topology.Create(ch))
	if setup, undone := r.chassis.Setups(); len(setup) != 2 || len(undone) != 1 {
		t.Fatalf("setups %v, undone %v", setup, undone)
	}
}

// TestSwitchThatFailsIsDisconnected: a switch that refuses a change makes
// Apply report it (the change is stored), and is disconnected to resync.
func TestSwitchThatFailsIsDisconnected(t *testing.T) {
	r := newRig(t, Options{})
	dp := controllertest.NewDatapath(1)
	r.connect(dp)
	r.apply(topology.Create(&topology.VPC{Name: "v"}), topology.Create(&topology.VSwitch{VPC: "v", Name: "w", CIDR: netip.MustParsePrefix("10.0.0.0/24")}))
	dp.FailApply(errors.New("OFPBRC_EPERM"))
	_, err := r.c.Apply(r.ctx, []topology.Op{topology.Create(&topology.Host{VPC: "v", Name: "h", VSwitch: "w", IP: netip.MustParseAddr("10.0.0.5"), MAC: mac("02:00:00:00:00:05"), DPID: 1, OFPort: 3})})
	if err == nil || !strings.Contains(err.Error(), "did not confirm") {
		t.Fatalf("Apply = %v", err)
	}
	select {
	case <-dp.Closed():
	case <-time.After(5 * time.Second):
		t.Fatal("failing switch not disconnected")
	}
	r.store.Read(func(st *topology.State) {
		if _, ok := st.Host("v", "h"); !ok {
			t.Error("change not stored")
		}
	})
}

// TestStoreCommitDoesNotHoldTheControllerLock: while the store commits,
// switch and port events go on.
func TestStoreCommitDoesNotHoldTheControllerLock(t *testing.T) {
	b, err := topology.OpenBolt(context.Background(), t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	sb := &slowBackend{Backend: b, gate: gate, entered: make(chan struct{}, 1)}
	st, err := topology.NewStore(context.Background(), sb, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	r := newRigOn(t, st, Options{})
	done := make(chan error, 1)
	go func() {
		_, err := r.c.Apply(r.ctx, []topology.Op{topology.Create(&topology.VPC{Name: "v"})})
		done <- err
	}()
	<-sb.entered
	// The commit is stuck; the controller lock must be free.
	locked := make(chan struct{})
	go func() {
		r.c.BridgesChanged("unix:/x", nil)
		close(locked)
	}()
	select {
	case <-locked:
	case <-time.After(5 * time.Second):
		t.Fatal("a port event waited for the store's commit")
	}
	close(gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

type slowBackend struct {
	topology.Backend
	gate    chan struct{}
	entered chan struct{}
}

func (b *slowBackend) Commit(ctx context.Context, c topology.Commit) error {
	select {
	case b.entered <- struct{}{}:
	default:
	}
	<-b.gate
	return b.Backend.Commit(ctx, c)
}
