package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vpcflow/vpcflow/controller/engine"
	"github.com/vpcflow/vpcflow/openflow"
)

// A follower replica (replicas.go) stores a change but writes no flows:
// the leader does. So that a write through a follower answers as one
// through the leader does — once the switches have the flows — the
// follower watches every switch the change touches, over its own (SLAVE)
// connection, until the flows it computed for the change are installed
// (and the deleted ones gone): flow stats filtered by the changed flows'
// cookies, so the switch answers with a few flows, polled until they are
// right or PushTimeout ends. A switch that did not get there is reported
// like one that did not confirm (202, *UnconfirmedError).

// cookieDumper is a Datapath that asks the switch for flows by cookie.
type cookieDumper interface {
	DumpCookie(ctx context.Context, table uint8, cookie, mask uint64) ([]openflow.FlowStats, error)
}

// followerPoll is how often a follower looks at a switch while it waits
// for the leader's flows.
const followerPoll = 20 * time.Millisecond

// followerWaits starts a watch on every connected switch with changes and
// returns their results, as queueChanges does for the leader. Caller
// holds c.mu.
func (c *Controller) followerWaits(changes map[uint64]*engine.PackedChanges) map[uint64]<-chan error {
	waits := map[uint64]<-chan error{}
	for dpid, p := range changes {
		if p.Len() == 0 {
			continue
		}
		cs := p.Changes()
		done := make(chan error, 1)
		waits[dpid] = done
		sc, ok := c.switches[dpid]
		if !ok {
			// The leader may well have installed it; this replica cannot
			// see (it is starting, or the switch does not list it).
			done <- errors.New("this replica follows and has no connection to the switch, so it cannot see the leader install the change (stored; installed by the leader)")
			continue
		}
		go func(dp Datapath, cs []engine.FlowChange) {
			ctx, cancel := context.WithTimeout(context.Background(), c.opts.PushTimeout)
			defer cancel()
			done <- waitInstalled(ctx, dp, cs, followerPoll)
		}(sc.dp, cs)
	}
	return waits
}

// waitInstalled polls dp every `every` until the flows cs leave behind
// are what dp has, or ctx ends.
func waitInstalled(ctx context.Context, dp Datapath, cs []engine.FlowChange, every time.Duration) error {
	// What the changes leave, by key, in order (a delete then an add of
	// the same key is a replacement).
	want := map[openflow.Key]*openflow.Flow{}
	cookies := map[uint64]bool{}
	for i := range cs {
		k := cs[i].Flow.Key()
		if cs[i].Delete {
			want[k] = nil
		} else {
			want[k] = &cs[i].Flow
		}
		cookies[cs[i].Flow.Cookie] = true
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		missing, err := notInstalled(ctx, dp, want, cookies)
		if err == nil && missing == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("this replica follows and could not read the switch's flows to see the leader install the change: %w", err)
			}
			return fmt.Errorf("this replica follows: the leader had not installed %d of the change's %d flows in time (the change is stored)", missing, len(want))
		case <-t.C:
		}
	}
}

// notInstalled counts the flows of want that dp does not have as wanted
// (a nil flow: one that must be gone).
func notInstalled(ctx context.Context, dp Datapath, want map[openflow.Key]*openflow.Flow, cookies map[uint64]bool) (int, error) {
	have := map[openflow.Key]openflow.Flow{}
	for cookie := range cookies {
		var fss []openflow.FlowStats
		var err error
		if d, ok := dp.(cookieDumper); ok {
			fss, err = d.DumpCookie(ctx, openflow.TableAll, cookie, ^uint64(0))
		} else {
			fss, err = dp.DumpFlows(ctx)
		}
		if err != nil {
			return 0, err
		}
		for i := range fss {
			if f := fss[i].Flow; f.Cookie == cookie {
				have[f.Key()] = f
			}
		}
	}
	missing := 0
	for k, w := range want {
		h, ok := have[k]
		switch {
		case w == nil && ok:
			missing++
		case w != nil && (!ok || !h.SameContent(w)):
			missing++
		}
	}
	return missing, nil
}
