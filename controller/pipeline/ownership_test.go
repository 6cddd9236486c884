package pipeline

import (
	"fmt"
	"testing"

	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// TestCookieNamesSoleOwner pins what the engine relies on to keep only a
// compact record per owner (controller/engine): a flow whose cookie names
// the owner that produces it is produced by that owner alone — no other
// owner wants a flow with the same datapath, table, priority and match.
// Flows with any other cookie may be shared (the engine counts those).
// A new feature that breaks this fails here, in every scenario of the
// golden files.
func TestCookieNamesSoleOwner(t *testing.T) {
	p := Default()
	scenarios := map[string]struct {
		store *topology.Store
		snap  func(*topology.State) *Snapshot
	}{
		"seed":           {mustStore(t, seedOps()...), seedSnapshot},
		"chassis":        {mustStore(t, chassisOps()...), chassisSnapshot},
		"seed-groups":    {mustStore(t, append(append(seedOps(), sgRules("vpc-seed")...), member("vpc-seed", "test1", "web"), member("vpc-seed", "test2", "web", "db"))...), seedSnapshot},
		"chassis-groups": {mustStore(t, append(append(chassisOps(), sgRules("vpc-a")...), member("vpc-a", "vm1", "web"), member("vpc-a", "vm2", "web", "db"))...), chassisSnapshot},
	}
	type slot struct {
		dpid uint64
		key  openflow.Key
	}
	for name, sc := range scenarios {
		sc.store.Read(func(st *topology.State) {
			snap := sc.snap(st)
			producers := map[slot][]Owner{}
			private := map[slot]bool{}
			flows := 0
			for _, o := range AllOwners(st) {
				for _, pf := range p.Flows(snap, o) {
					sl := slot{pf.DPID, pf.Flow.Key()}
					if ps := producers[sl]; len(ps) == 0 || ps[len(ps)-1] != o {
						producers[sl] = append(ps, o)
					}
					ck := ParseCookie(pf.Flow.Cookie)
					if ck.Ours && ck.Owner == o.Kind && ck.ID == o.ID {
						private[sl] = true
					}
					flows++
				}
			}
			if flows == 0 {
				t.Fatalf("%s: no flows", name)
			}
			for sl := range private {
				if ps := producers[sl]; len(ps) != 1 {
					t.Errorf("%s: dpid %x table %d priority %d: a flow whose cookie names its owner is produced by %s",
						name, sl.dpid, sl.key.Table, sl.key.Priority, fmt.Sprint(ps))
				}
			}
		})
	}
}
