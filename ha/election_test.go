package ha

import (
	"context"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/vpcflow/vpcflow/internal/etcdtest"
)

type member struct {
	name   string
	cli    *clientv3.Client
	el     *Elector
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	role   Role
}

func (m *member) get() Role {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.role
}

func startMember(t *testing.T, c *etcdtest.Cluster, name string) *member {
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	m := &member{name: name, cli: cli, done: make(chan struct{})}
	m.el = New(Config{Client: cli, Prefix: "/ha", Name: name, TTL: time.Second, Log: zaptest.NewLogger(t).Named(name)})
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go func() {
		defer close(m.done)
		_ = m.el.Run(ctx, func(r Role) {
			m.mu.Lock()
			m.role = r
			m.mu.Unlock()
		})
	}()
	t.Cleanup(func() { m.stop(); cli.Close() })
	return m
}

func (m *member) stop() {
	m.cancel()
	<-m.done
}

// leaderOf waits until exactly one of ms leads and every other one knows
// its generation, and returns it.
func leaderOf(t *testing.T, ms ...*member) *member {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var leaders []*member
		for _, m := range ms {
			if m.get().Leader {
				leaders = append(leaders, m)
			}
		}
		if len(leaders) == 1 {
			gen := leaders[0].get().Generation
			agreed := true
			for _, m := range ms {
				if r := m.get(); r.Generation != gen || r.LeaderName != leaders[0].name {
					agreed = false
				}
			}
			if agreed {
				return leaders[0]
			}
		}
		if len(leaders) > 1 {
			t.Fatalf("%d leaders at once", len(leaders))
		}
		if time.Now().After(deadline) {
			t.Fatalf("no agreed leader: %+v %+v %+v", ms[0].get(), ms[1].get(), ms[len(ms)-1].get())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestElection(t *testing.T) {
	c := etcdtest.Start(t, 1)
	a, b, d := startMember(t, c, "a"), startMember(t, c, "b"), startMember(t, c, "d")
	all := []*member{a, b, d}
	l1 := leaderOf(t, all...)
	g1 := l1.get().Generation
	if g1>>48 != 1 {
		t.Errorf("generation %#x: want epoch 1", g1)
	}
	ctx := context.Background()
	if err := l1.el.Confirm(ctx, g1); err != nil {
		t.Errorf("Confirm: %v", err)
	}

	// The leader's process dies (no resign): another leads once its
	// session expires, with a higher generation.
	start := time.Now()
	l1.cancel()
	l1.cli.Close() // keepalives stop; the lease is not revoked
	<-l1.done
	var rest []*member
	for _, m := range all {
		if m != l1 {
			rest = append(rest, m)
		}
	}
	l2 := leaderOf(t, rest...)
	took := time.Since(start)
	g2 := l2.get().Generation
	t.Logf("leader %s died; %s leads after %s with generation %#x (was %#x)", l1.name, l2.name, took, g2, g1)
	if g2 <= g1 {
		t.Errorf("generation did not grow: %#x → %#x", g1, g2)
	}
	if err := l1.el.Confirm(ctx, g1); err == nil {
		t.Error("the dead leader confirms")
	}

	// Stepping down hands over; the epoch bump raises the generation.
	g3, err := l2.el.BumpEpoch(ctx, g2)
	if err != nil {
		t.Fatal(err)
	}
	if g3>>48 != 2 || g3&(1<<48-1) != g2&(1<<48-1) {
		t.Errorf("bumped generation %#x from %#x", g3, g2)
	}
	l2.el.StepDown("test")
	var other *member
	for _, m := range rest {
		if m != l2 {
			other = m
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for !other.get().Leader {
		if time.Now().After(deadline) {
			t.Fatal("no takeover after step-down")
		}
		time.Sleep(10 * time.Millisecond)
	}
	l3 := leaderOf(t, rest...)
	if l3 != other || l3.get().Generation>>48 != 2 || l3.get().Generation <= g3 {
		t.Errorf("after step-down: %s leads with %#x", l3.name, l3.get().Generation)
	}
}
