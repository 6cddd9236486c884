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
// right or PushTimeout ends (plus flowModAllowance a flow-mod, as the
// leader's push has). A switch that did not get there is reported
// like one that did not confirm (202, *UnconfirmedError).

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
			// As long as the leader's push of the same changes has.
			ctx, cancel := context.WithTimeout(context.Background(), c.opts.PushTimeout+flowModsAllowance(len(cs)))
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
	cookies := map[uint64]bool{}              // of every change: a flow counts under these
	keyCookies := map[openflow.Key][]uint64{} // of the changes to each key
	for i := range cs {
		k := cs[i].Flow.Key()
		if cs[i].Delete {
			want[k] = nil
		} else {
			want[k] = &cs[i].Flow
		}
		cookies[cs[i].Flow.Cookie] = true
		keyCookies[k] = append(keyCookies[k], cs[i].Flow.Cookie)
	}
	total := len(want)
	asked := cookies // the cookies to ask the switch for: those of the keys not there yet
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		missing, err := notInstalled(ctx, dp, want, cookies, cookieDumps(asked, maxCookieDumps))
		if err == nil && missing == 0 {
			return nil
		}
		if err == nil {
			asked = map[uint64]bool{}
			for k := range want {
				for _, c := range keyCookies[k] {
					asked[c] = true
				}
			}
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("this replica follows and could not read the switch's flows to see the leader install the change: %w", err)
			}
			return fmt.Errorf("this replica follows: the leader had not installed %d of the change's %d flows in time (the change is stored)", missing, total)
		case <-t.C:
		}
	}
}

// maxCookieDumps is the most flow-stats requests one look at a switch
// makes for a change whose objects have neighbouring ids: a change of
// 1,000 new hosts has 1,000 owners' cookies, and was 1,000 requests every
// followerPoll.
const maxCookieDumps = 16

// maxOverFetch bounds how many more object ids the ranges of cookieDumps
// may cover than the change has: ids far apart are asked one by one
// instead, as a range over them would read most of a big switch's
// table every followerPoll.
const maxOverFetch = 8

// cookieDump is one flow-stats request: the flows whose cookie&mask is
// cookie&mask.
type cookieDump struct{ cookie, mask uint64 }

// cookieDumps covers cookies with flow-stats requests: one each when
// they are at most max, or when their ids are far apart; else at most max
// ranges of neighbouring ids, the drop reason ignored (new objects get
// neighbouring ids, so a bulk load is a few ranges). The switch then
// answers some flows that were not asked for; they are not looked at.
func cookieDumps(cookies map[uint64]bool, max int) []cookieDump {
	exact := func() []cookieDump {
		out := make([]cookieDump, 0, len(cookies))
		for c := range cookies {
			out = append(out, cookieDump{c, ^uint64(0)})
		}
		return out
	}
	if len(cookies) <= max {
		return exact()
	}
	const reasonBits = uint64(0xff) << 32
	bases := map[uint64]bool{}
	for c := range cookies {
		bases[c&^reasonBits] = true
	}
	for shift := 0; shift <= 32; shift++ {
		mask := ^uint64(0) &^ reasonBits &^ (uint64(1)<<shift - 1)
		groups := map[uint64]bool{}
		for b := range bases {
			if groups[b&mask] = true; len(groups) > max {
				break
			}
		}
		if len(groups) > max {
			continue
		}
		if len(groups)<<shift > maxOverFetch*len(bases) {
			return exact() // far apart
		}
		out := make([]cookieDump, 0, len(groups))
		for g := range groups {
			out = append(out, cookieDump{g, mask})
		}
		return out
	}
	return exact()
}

// notInstalled counts the flows of want that dp does not have as wanted
// (a nil flow: one that must be gone), looking at dp's flows whose cookie
// is one of cookies (the change's) in the answers to dumps. The keys that
// are as wanted are taken out of want: later looks skip them.
func notInstalled(ctx context.Context, dp Datapath, want map[openflow.Key]*openflow.Flow, cookies map[uint64]bool, dumps []cookieDump) (int, error) {
	have := map[openflow.Key]openflow.Flow{}
	for _, d := range dumps {
		fss, err := dp.DumpCookie(ctx, openflow.TableAll, d.cookie, d.mask)
		if err != nil {
			return 0, err
		}
		for i := range fss {
			if f := fss[i].Flow; cookies[f.Cookie] {
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
		default:
			delete(want, k) // there as wanted: not asked again
		}
	}
	return missing, nil
}
