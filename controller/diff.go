package controller

import (
	"cmp"
	"slices"

	"github.com/vpcflow/vpcflow/openflow"
)

// FlowChange is one edit to a datapath's flow table: install (add or
// replace) Flow, or, when Delete is set, remove the entry with Flow's key.
type FlowChange struct {
	Delete bool
	Flow   openflow.Flow
}

// DesiredTable is the complete set of flows vpcflow wants on one datapath.
type DesiredTable map[openflow.Key]openflow.Flow

// isManaged reports whether an installed flow is vpcflow's business: it
// carries vpcflow's cookie or sits in a table vpcflow owns. Flows in other
// tables with foreign cookies (an operator's debug flows, say) are left alone.
func isManaged(f *openflow.Flow) bool {
	return ParseCookie(f.Cookie).Ours || ownsTable(f.Table)
}

// DiffTable compares what a datapath reports with what vpcflow wants and
// returns only the changes needed: missing or different flows are
// installed, managed flows that are not wanted are deleted, and flows that
// are already right are not touched (their duration keeps growing).
// The result is ordered (deletes first, then installs, each by table,
// priority and match) so it is deterministic.
func DiffTable(desired DesiredTable, installed []openflow.Flow) []FlowChange {
	var dels, adds []FlowChange
	found := 0
	for i := range installed {
		f := &installed[i]
		want, ok := desired[f.Key()]
		if !ok {
			if isManaged(f) {
				dels = append(dels, FlowChange{Delete: true, Flow: *f})
			}
			continue
		}
		found++
		if !want.SameContent(f) {
			adds = append(adds, FlowChange{Flow: want})
		}
	}
	// Usually every desired flow is there (a restart with nothing to do):
	// only when some are missing is it worth a set of what was seen.
	if found < len(desired) {
		seen := make(map[openflow.Key]bool, len(installed))
		for i := range installed {
			seen[installed[i].Key()] = true
		}
		for k, f := range desired {
			if !seen[k] {
				adds = append(adds, FlowChange{Flow: f})
			}
		}
	}
	sortChanges(dels)
	sortChanges(adds)
	return append(dels, adds...)
}

// DiffOwner compares the flows an object had with the flows it has now and
// returns the changes per datapath, deletes first.
func DiffOwner(old, new []PlacedFlow) map[uint64][]FlowChange {
	out := diffOwner(old, new)
	for dpid := range out {
		orderDeletesFirst(out[dpid])
	}
	return out
}

// diffOwner is DiffOwner without the ordering: recompute orders a whole
// batch of owners once.
func diffOwner(old, new []PlacedFlow) map[uint64][]FlowChange {
	type slot struct {
		dpid uint64
		key  openflow.Key
	}
	oldBy := make(map[slot]*openflow.Flow, len(old))
	for i := range old {
		oldBy[slot{old[i].DPID, old[i].Flow.Key()}] = &old[i].Flow
	}
	out := map[uint64][]FlowChange{}
	newBy := make(map[slot]bool, len(new))
	for i := range new {
		s := slot{new[i].DPID, new[i].Flow.Key()}
		newBy[s] = true
		if o, ok := oldBy[s]; ok && o.SameContent(&new[i].Flow) {
			continue
		}
		out[s.dpid] = append(out[s.dpid], FlowChange{Flow: new[i].Flow})
	}
	for s, f := range oldBy {
		if !newBy[s] {
			out[s.dpid] = append(out[s.dpid], FlowChange{Delete: true, Flow: *f})
		}
	}
	return out
}

// orderDeletesFirst puts deletes before installs, each sorted, so a batch
// never briefly holds two flows that a route move replaces.
func orderDeletesFirst(cs []FlowChange) {
	slices.SortStableFunc(cs, func(a, b FlowChange) int {
		if a.Delete != b.Delete {
			if a.Delete {
				return -1
			}
			return 1
		}
		return compareFlow(&a.Flow, &b.Flow)
	})
}

func sortChanges(cs []FlowChange) {
	slices.SortFunc(cs, func(a, b FlowChange) int { return compareFlow(&a.Flow, &b.Flow) })
}

// lessFlow is the text order of DesiredFlows (ovs-ofctl files, goldens).
func lessFlow(a, b *openflow.Flow) bool {
	if a.Table != b.Table {
		return a.Table < b.Table
	}
	if a.Priority != b.Priority {
		return a.Priority > b.Priority
	}
	return a.Match.String() < b.Match.String()
}

// compareFlow orders by table, priority (high first), then the match field
// by field, numerically: no text is built.
func compareFlow(a, b *openflow.Flow) int {
	if c := cmp.Compare(a.Table, b.Table); c != 0 {
		return c
	}
	if c := cmp.Compare(b.Priority, a.Priority); c != 0 {
		return c
	}
	for i := 0; i < len(a.Match) && i < len(b.Match); i++ {
		x, y := &a.Match[i], &b.Match[i]
		if c := cmp.Compare(x.Field, y.Field); c != 0 {
			return c
		}
		if c := cmp.Compare(x.Value, y.Value); c != 0 {
			return c
		}
		if c := cmp.Compare(x.Mask, y.Mask); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(a.Match), len(b.Match))
}
