package openflow

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// roleRecorder is a recorder that also takes role status messages.
type roleRecorder struct {
	*recorder
	status chan RoleStatus
}

func (r *roleRecorder) SwitchRoleStatus(sw *Switch, st RoleStatus) {
	select {
	case r.status <- st:
	default:
	}
}

// TestOVSRoles runs two controllers against one real bridge: MASTER with
// a generation id, a stale MASTER request refused, a SLAVE refused flow
// changes (bundle and plain), a newer MASTER demoting the old one (which
// gets a role status), and a reconnecting old master refused as stale:
// what OVS 3.1 does, as vpcflow's replicas rely on it.
func TestOVSRoles(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	lab := newOVSLab(t, ctx)
	recA := &roleRecorder{recorder: newRecorder(), status: make(chan RoleStatus, 8)}
	recB := &roleRecorder{recorder: newRecorder(), status: make(chan RoleStatus, 8)}
	addrA := lab.startServer(t, recA, ServerOptions{})
	addrB := lab.startServer(t, recB, ServerOptions{})
	const br, dpid = "vpcrole0", uint64(0x00000000cafe0042)
	lab.addBridge(t, ctx, br, dpid)
	if err := lab.ovs.SetController(ctx, br, "tcp:"+addrA, "tcp:"+addrB); err != nil {
		t.Fatal(err)
	}
	a := recA.waitConnected(t, dpid, 20*time.Second)
	b := recB.waitConnected(t, dpid, 20*time.Second)

	flow := func(prio uint16) []FlowMod {
		return []FlowMod{{Command: FlowAdd, Flow: Flow{Table: 3, Priority: prio, Cookie: testCookie}}}
	}
	const genA, genB = uint64(7)<<48 | 100, uint64(7)<<48 | 200

	rep, err := a.RequestRole(ctx, RoleMaster, genA)
	if err != nil {
		t.Fatalf("A MASTER: %v", err)
	}
	if rep.Role != RoleMaster || rep.Generation != genA {
		t.Fatalf("A MASTER answered %+v", rep)
	}
	if _, err := b.RequestRole(ctx, RoleSlave, genA); err != nil {
		t.Fatalf("B SLAVE with the master's generation: %v", err)
	}
	if err := a.Apply(ctx, flow(10)); err != nil {
		t.Fatalf("master's bundle refused: %v", err)
	}
	err = b.Apply(ctx, flow(11))
	if err == nil || !IsSlaveError(err) {
		t.Fatalf("slave's bundle: want IS_SLAVE, got %v", err)
	}
	if b.noBundles.Load() {
		t.Error("a slave's refused bundle made the switch look bundle-less")
	}
	// A slave reads by cookie (a follower replica watching the leader's
	// flows): the switch answers with those flows only.
	other := []FlowMod{{Command: FlowAdd, Flow: Flow{Table: 3, Priority: 20, Cookie: testCookie + 1}}}
	if err := a.Apply(ctx, other); err != nil {
		t.Fatalf("master's second bundle: %v", err)
	}
	got, err := b.DumpCookie(ctx, TableAll, testCookie, ^uint64(0))
	if err != nil || len(got) != 1 || got[0].Flow.Priority != 10 || got[0].Flow.Cookie != testCookie {
		t.Fatalf("slave's dump by cookie 0x%x: %+v %v; want the priority 10 flow only", testCookie, got, err)
	}
	if got, err := b.DumpCookie(ctx, 3, testCookie, ^uint64(3)); err != nil || len(got) != 2 {
		t.Fatalf("dump of table 3 by cookie under a mask: %d flows, %v; want 2", len(got), err)
	}
	if _, err := b.RequestRole(ctx, RoleMaster, genA-1); !errors.Is(err, ErrStaleGeneration) {
		t.Fatalf("B MASTER with an older generation: want stale, got %v", err)
	}

	// B becomes master with a newer generation: A is demoted and told.
	if rep, err := b.RequestRole(ctx, RoleMaster, genB); err != nil || rep.Role != RoleMaster {
		t.Fatalf("B MASTER newer: %+v %v", rep, err)
	}
	select {
	case st := <-recA.status:
		if st.Role != RoleSlave || st.Reason != RoleReasonMasterRequest || st.Generation != genB {
			t.Errorf("A's role status: %+v", st)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("A got no role status after B became master")
	}
	if err := a.Apply(ctx, flow(12)); !IsSlaveError(err) {
		t.Fatalf("demoted master's bundle: want IS_SLAVE, got %v", err)
	}
	if err := b.Apply(ctx, flow(13)); err != nil {
		t.Fatalf("new master's bundle: %v", err)
	}
	// ovs-vswitchd copies the roles into OVSDB with its status, a
	// little later.
	var out string
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		out, err = lab.ovs.Vsctl(ctx, "--columns=target,role", "list", "controller")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Count(out, "master") == 1 && strings.Count(out, "slave") == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("want one master and one slave:\n%s", out)
		}
	}

	// A's connection drops and comes back EQUAL: its old generation is
	// refused, so a zombie that asks first never writes.
	a.Close()
	recA.waitDisconnected(t, a, 10*time.Second)
	a2 := recA.waitConnected(t, dpid, 20*time.Second)
	rep, err = a2.RequestRole(ctx, RoleNoChange, 0)
	if err != nil || rep.Role != RoleEqual || rep.Generation != genB {
		t.Errorf("reconnected A starts as %+v (%v), want equal with generation %#x", rep, err, genB)
	}
	if _, err := a2.RequestRole(ctx, RoleMaster, genA); !errors.Is(err, ErrStaleGeneration) {
		t.Fatalf("reconnected A MASTER with its old generation: want stale, got %v", err)
	}
	dump, err := lab.ofctl(ctx, br, "dump-flows", "--no-stats")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(dump, "priority=10") || !strings.Contains(dump, "priority=13") ||
		strings.Contains(dump, "priority=11") || strings.Contains(dump, "priority=12") {
		t.Errorf("only the masters' flows must be there:\n%s", dump)
	}
}

func TestRoleCodec(t *testing.T) {
	b := appendRoleRequest(nil, 9, RoleMaster, 0x0001000000000abc)
	if len(b) != roleRequestLen {
		t.Fatalf("role request is %d bytes", len(b))
	}
	rep, err := decodeRoleReply(b[headerLen:])
	if err != nil || rep.Role != RoleMaster || rep.Generation != 0x0001000000000abc {
		t.Fatalf("round trip: %+v %v", rep, err)
	}
	if _, err := decodeRoleReply(b[headerLen : headerLen+5]); err == nil {
		t.Error("short reply decoded")
	}
	body := []byte{0x4f, 0x4e, 0x46, 0x00, 0, 0, 0x07, 0x77, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9}
	st, err := DecodeRoleStatus(body)
	if err != nil || st.Role != RoleSlave || st.Reason != RoleReasonMasterRequest || st.Generation != 9 {
		t.Fatalf("role status: %+v %v", st, err)
	}
	if _, err := DecodeRoleStatus(body[:12]); err == nil {
		t.Error("short role status decoded")
	}
}
