package controller

import (
	"context"
	"errors"
	"fmt"
	"github.com/vpcflow/vpcflow/controller/engine"
	"strings"
	"sync"
	"testing"
	"time"

	"net/netip"

	"github.com/vpcflow/vpcflow/controller/controllertest"
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
	"github.com/vpcflow/vpcflow/trace"
)

// route is a subnet (a route entry) to test1 of the seed: flows on dpid 1.
func route(cidr string) topology.Op {
	return topology.Create(&topology.Subnet{VPC: "vpc-seed", CIDR: netip.MustParsePrefix(cidr), Host: "test1"})
}

// replicaRig is the seed on a controller that is a replica.
func replicaRig(t *testing.T, lead Leadership) *rig { return replicaRigWith(t, lead, Options{}) }

// replicaRigWith is replicaRig with more options.
func replicaRigWith(t *testing.T, lead Leadership, opts Options) *rig {
	opts.Leadership, opts.OVSDBEndpoints = lead, []string{"unix:/test/db.sock"}
	r := newRig(t, opts)
	r.c.BridgesChanged("unix:/test/db.sock", seedBridges())
	// Stored before any switch connects: a replica that does not lead
	// and sees no switch cannot say the flows are installed.
	var ue *UnconfirmedError
	if _, err := r.c.Apply(r.ctx, seedOps()); !errors.As(err, &ue) {
		t.Fatalf("seed through a replica connected to no switch: %v, want *UnconfirmedError", err)
	}
	return r
}

// roleDatapath is an in-memory switch that keeps OVS's role rules: the
// largest generation accepted, stale MASTER/SLAVE refused, writes refused
// while SLAVE. It records what was asked of it, in order.
type roleDatapath struct {
	*controllertest.Datapath
	mu     sync.Mutex
	role   openflow.Role
	gen    uint64
	hasGen bool
	events []string
}

func newRoleDatapath(dpid uint64) *roleDatapath {
	return &roleDatapath{Datapath: controllertest.NewDatapath(dpid), role: openflow.RoleEqual}
}

func (d *roleDatapath) log(e string) {
	d.mu.Lock()
	d.events = append(d.events, e)
	d.mu.Unlock()
}

func (d *roleDatapath) Events() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return strings.Join(d.events, " ")
}

func (d *roleDatapath) RequestRole(ctx context.Context, role openflow.Role, gen uint64) (openflow.RoleReply, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.hasGen && int64(gen-d.gen) < 0 {
		d.events = append(d.events, fmt.Sprintf("%s(%d)=stale", role, gen))
		return openflow.RoleReply{}, fmt.Errorf("test switch: %w", openflow.ErrStaleGeneration)
	}
	d.gen, d.hasGen, d.role = gen, true, role
	d.events = append(d.events, fmt.Sprintf("%s(%d)", role, gen))
	return openflow.RoleReply{Role: role, Generation: gen}, nil
}

func (d *roleDatapath) DumpFlows(ctx context.Context) ([]openflow.FlowStats, error) {
	d.log("dump")
	return d.Datapath.DumpFlows(ctx)
}

func (d *roleDatapath) ApplySeq(ctx context.Context, mods openflow.FlowMods) error {
	d.mu.Lock()
	slave := d.role == openflow.RoleSlave
	d.mu.Unlock()
	if slave {
		d.log("apply=refused")
		return &openflow.OFError{Type: 1, Code: 10} // OFPBRC_IS_SLAVE
	}
	d.log(fmt.Sprintf("apply(%d)", mods.Len()))
	return d.Datapath.ApplySeq(ctx, mods)
}

// fakeLeadership is the election as the controller sees it.
type fakeLeadership struct {
	mu        sync.Mutex
	confirmed bool
	bumps     int
	steppedIn []string
}

func (l *fakeLeadership) Confirm(ctx context.Context, gen uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.confirmed {
		return errors.New("not leader")
	}
	return nil
}

func (l *fakeLeadership) BumpEpoch(ctx context.Context, gen uint64) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.bumps++
	return (gen>>48+1)<<48 | gen&genRevMask, nil
}

func (l *fakeLeadership) StepDown(reason string) {
	l.mu.Lock()
	l.steppedIn = append(l.steppedIn, reason)
	l.mu.Unlock()
}

func (l *fakeLeadership) steps() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.steppedIn)
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func serveRole(r *rig, dp *roleDatapath) {
	go func() {
		r.c.Serve(r.ctx, dp)
		r.c.Forget(dp)
	}()
}

// A follower asks for SLAVE and writes nothing; when it leads it asks for
// MASTER before anything else, then reconciles.
func TestReplicaFollowerThenLeader(t *testing.T) {
	lead := &fakeLeadership{confirmed: true}
	r := replicaRig(t, lead)
	dp := newRoleDatapath(1)
	serveRole(r, dp)
	time.Sleep(50 * time.Millisecond)
	if ev := dp.Events(); ev != "" {
		t.Fatalf("before the election spoke the switch got: %s", ev)
	}
	gen1 := uint64(1)<<48 | 10
	r.c.SetRole(Role{Generation: gen1, LeaderName: "other"})
	waitUntil(t, "SLAVE", func() bool { return dp.Events() == "slave(281474976710666)" })
	// Stored, not written: no leader installs it here, so the write is
	// answered as unconfirmed once the push timeout ends.
	ctx, cancel := context.WithTimeout(r.ctx, 300*time.Millisecond)
	_, err := r.c.Apply(ctx, []topology.Op{route("172.18.7.0/24")})
	cancel()
	var ue *UnconfirmedError
	if !errors.As(err, &ue) {
		t.Fatalf("a follower's write nobody installs: %v, want *UnconfirmedError", err)
	}
	if ev := dp.Events(); ev != "slave(281474976710666)" || dp.Mods() != 0 {
		t.Fatalf("a follower wrote: %s (%d mods)", ev, dp.Mods())
	}

	gen2 := uint64(1)<<48 | 20
	r.c.SetRole(Role{Leader: true, Generation: gen2, LeaderName: "me"})
	waitUntil(t, "MASTER then reconcile", func() bool { return strings.Contains(dp.Events(), "apply(") })
	ev := dp.Events()
	if !strings.HasPrefix(ev, "slave(281474976710666) master(281474976710676) dump apply(") {
		t.Fatalf("leader's order: %s", ev)
	}
	r.exact()
}

// followingSwitch connects an in-memory switch (dpid 1) to r, which
// follows another leader, and waits until r asked it for SLAVE.
func followingSwitch(t *testing.T, r *rig) *roleDatapath {
	t.Helper()
	dp := newRoleDatapath(1)
	serveRole(r, dp)
	r.c.SetRole(Role{Generation: uint64(1)<<48 | 10, LeaderName: "other"})
	waitUntil(t, "SLAVE", func() bool { return strings.Contains(dp.Events(), "slave(") })
	return dp
}

// A write through a follower answers once the leader's flows are on the
// switch (followerconfirm.go): the follower watches over its SLAVE
// connection, asking for the changed flows by cookie.
func TestReplicaFollowerWriteWaitsForTheLeader(t *testing.T) {
	r := replicaRig(t, &fakeLeadership{confirmed: true})
	dp := followingSwitch(t, r)

	// The leader, played by the test: once this replica's engine has the
	// change (it is stored), it waits 100 ms and installs what the engine
	// wants.
	desired := func() engine.DesiredTable { return r.c.engineDesired(1) }
	seedFlows := len(desired())
	installed := make(chan time.Time, 1)
	go func() {
		for len(desired()) == seedFlows {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond)
		for _, f := range desired() {
			dp.Put(f)
		}
		installed <- time.Now()
	}()
	start := time.Now()
	if _, err := r.c.Apply(r.ctx, []topology.Op{route("172.18.7.0/24")}); err != nil {
		t.Fatalf("follower write with the leader installing it: %v", err)
	}
	answered := time.Now()
	at := <-installed
	if answered.Before(at) {
		t.Fatalf("the follower answered %v after the write, before the leader installed the flows (%v)", answered.Sub(start), at.Sub(start))
	}
	if dp.Mods() != 0 {
		t.Fatalf("the follower wrote %d flow-mods", dp.Mods())
	}
	t.Logf("answered %v after the write, %v after the leader's install", answered.Sub(start), answered.Sub(at))

	// A delete: answered once the leader removed the flows.
	before := desired()
	go func() {
		for len(desired()) == len(before) {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond)
		after := desired()
		for k, f := range before {
			if _, ok := after[k]; !ok {
				dp.Remove(f)
			}
		}
	}()
	if _, err := r.c.Apply(r.ctx, []topology.Op{topology.Delete(&topology.Subnet{VPC: "vpc-seed", Name: "172.18.7.0-24"}, false)}); err != nil {
		t.Fatalf("follower delete with the leader removing it: %v", err)
	}
	r.exact()
}

// A big write through a follower waits as long for the leader's flows as
// the leader's push of them has: PushTimeout plus flowModAllowance a
// flow-mod (pushdeadline.go), not PushTimeout alone.
func TestReplicaFollowerWaitsForABigWrite(t *testing.T) {
	r := replicaRigWith(t, &fakeLeadership{confirmed: true}, Options{PushTimeout: 100 * time.Millisecond})
	dp := followingSwitch(t, r)

	// The leader, played by the test: a small change installed at once,
	// a big one (thousands of flows) 150 ms after it is computed: after
	// PushTimeout, within its allowance (1,000 hosts, ~10,000 flows: 1 s).
	desired := func() engine.DesiredTable { return r.c.engineDesired(1) }
	stop := make(chan struct{})
	defer close(stop)
	have := len(desired())
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			want := desired()
			if len(want) == have {
				continue
			}
			if len(want)-have > 1000 {
				time.Sleep(150 * time.Millisecond)
			}
			for _, f := range want {
				dp.Put(f)
			}
			have = len(want)
		}
	}()
	if _, err := r.c.Apply(r.ctx, []topology.Op{topology.Create(&topology.VSwitch{VPC: "vpc-seed", Name: "vsw-big",
		CIDR: netip.MustParsePrefix("10.20.0.0/16"), Gateway: netip.MustParseAddr("10.20.0.1")})}); err != nil {
		t.Fatalf("a small write through the follower: %v", err)
	}
	start := time.Now()
	if _, err := r.c.Apply(r.ctx, bulkHostsIn("vsw-big", 20, 1, 1000)); err != nil {
		t.Fatalf("1,000 hosts through the follower, the leader installing them after 150 ms (100 ms PushTimeout): %v", err)
	}
	t.Logf("answered %v after the write", time.Since(start))
	if dp.Mods() != 0 {
		t.Fatalf("the follower wrote %d flow-mods", dp.Mods())
	}
}

// A stale MASTER refusal while etcd no longer confirms the leadership:
// nothing is written and the replica steps down. While etcd confirms it:
// the epoch is raised and MASTER asked again.
func TestReplicaStaleMaster(t *testing.T) {
	lead := &fakeLeadership{confirmed: false}
	r := replicaRig(t, lead)
	dp := newRoleDatapath(1)
	dp.gen, dp.hasGen = uint64(1)<<48|50, true // a newer leader was there
	serveRole(r, dp)
	r.c.SetRole(Role{Leader: true, Generation: uint64(1)<<48 | 30})
	waitUntil(t, "step down", func() bool { return lead.steps() == 1 })
	time.Sleep(50 * time.Millisecond)
	if ev := dp.Events(); strings.Contains(ev, "apply") || strings.Contains(ev, "dump") {
		t.Fatalf("a refused leader wrote: %s", ev)
	}

	// etcd rebuilt: the switch holds a generation from the old etcd.
	lead2 := &fakeLeadership{confirmed: true}
	r2 := replicaRig(t, lead2)
	dp2 := newRoleDatapath(1)
	dp2.gen, dp2.hasGen = uint64(1)<<48|900, true
	serveRole(r2, dp2)
	r2.c.SetRole(Role{Leader: true, Generation: uint64(1)<<48 | 3})
	waitUntil(t, "reconciled after the epoch bump", func() bool { return strings.Contains(dp2.Events(), "apply(") })
	if lead2.bumps != 1 || !strings.HasPrefix(dp2.Events(), "master(281474976710659)=stale master(562949953421315) dump apply(") {
		t.Fatalf("bumps %d, events %s", lead2.bumps, dp2.Events())
	}
}

// A leader demoted on the switch (IS_SLAVE on a push) stops writing and
// steps down once.
func TestReplicaRefusedAsSlaveStepsDown(t *testing.T) {
	lead := &fakeLeadership{confirmed: true}
	r := replicaRig(t, lead)
	dp := newRoleDatapath(1)
	serveRole(r, dp)
	r.c.SetRole(Role{Leader: true, Generation: uint64(1)<<48 | 5})
	waitUntil(t, "reconciled", func() bool { return strings.Contains(dp.Events(), "apply(") })
	dp.mu.Lock()
	dp.role = openflow.RoleSlave // another controller took MASTER
	dp.mu.Unlock()
	_, _ = r.c.Apply(r.ctx, []topology.Op{route("172.18.8.0/24")})
	_, _ = r.c.Apply(r.ctx, []topology.Op{route("172.18.9.0/24")})
	waitUntil(t, "step down", func() bool { return lead.steps() >= 1 })
	time.Sleep(50 * time.Millisecond)
	if n := lead.steps(); n != 1 {
		t.Errorf("stepped down %d times", n)
	}
	if strings.Count(dp.Events(), "apply=refused") > 1 {
		t.Errorf("kept writing after IS_SLAVE: %s", dp.Events())
	}
}

// A follower refuses a live trace (it writes no observation flow and
// hears no packet-in), naming the leader, and sends nothing; the
// simulation alone still runs there.
func TestReplicaFollowerRefusesLiveTrace(t *testing.T) {
	r := replicaRig(t, &fakeLeadership{confirmed: true})
	dp := newRoleDatapath(1)
	serveRole(r, dp)
	r.c.SetRole(Role{Generation: uint64(1)<<48 | 10, LeaderName: "replica-b"})
	waitUntil(t, "SLAVE", func() bool { return strings.Contains(dp.Events(), "slave(") })
	_, err := r.c.Trace(r.ctx, trace.Request{VPC: "vpc-seed", From: "test1", Dst: "10.10.10.99", Live: true})
	var te *trace.Error
	if !errors.As(err, &te) || te.Field != "live" || !strings.Contains(te.Msg, "leader: replica-b") {
		t.Fatalf("live trace on a follower: %v", err)
	}
	if dp.Mods() != 0 {
		t.Errorf("a follower's live trace sent %d flow-mods", dp.Mods())
	}
	res, err := r.c.Trace(r.ctx, trace.Request{VPC: "vpc-seed", From: "test1", Dst: "10.10.10.99"})
	if err != nil || res.Reason != "no_route" {
		t.Errorf("simulated trace on a follower: %v %+v", err, res)
	}
}
