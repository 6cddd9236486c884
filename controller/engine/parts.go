package engine

import (
	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/openflow"
)

// Parts in which UpdateParts computes the owners that are removed or
// have no flows yet: the first is small, so a switch starts taking flows
// after ~1 ms of computation; each next one doubles, up to the last size,
// so a bulk load of 5,000 hosts is a dozen parts, and so is its cascade
// delete.
const (
	firstPartOwners = 64
	maxPartOwners   = 1024
)

// UpdateParts is UpdatePacked in parts, each given to emit as soon as it
// is computed, so that a switch takes a bulk load's first flows while the
// engine computes the rest (issue 17: OVS idled until a whole bundle was
// computed, ~17 ms of a 1,000-host load's ~170). Each part's changes are
// the net difference from the table the parts before it left, so a switch
// that applies the parts in order, as one bundle (openflow.ModParts),
// ends with the table UpdatePacked's changes would leave.
//
// An owner's own flows are installed and deleted as it is computed, so a
// part must not delete a key that an earlier part installed for another
// owner (a host's address given to a new host in the same batch). The
// parts come in this order:
//
//   - the owners that have flows now and are removed (removed: the
//     objects the batch deletes; a cascade), firstPartOwners and then twice
//     as many at a time: they only delete (their own flows, or a shared
//     one's variant);
//   - the other owners that have flows now, in one part: their changes may
//     delete and install, and within a part deletes go first;
//   - the owners that have no flows yet, in growing parts as the removed
//     ones: they only install (their own flows, or the first variant of a
//     shared one), never delete.
//
// A part that changes nothing is not emitted; more says whether owners
// are left to compute after the part (a batch of one part is emitted with
// more false, and may be sent as UpdatePacked's changes are).
func (e *Engine) UpdateParts(s *pipeline.Snapshot, owners []pipeline.Owner, removed map[pipeline.Owner]bool, emit func(part map[uint64]*PackedChanges, more bool)) {
	seen := make(map[pipeline.Owner]bool, len(owners))
	var gone, had, fresh []pipeline.Owner
	for _, o := range owners {
		if seen[o] {
			continue
		}
		seen[o] = true
		switch _, ok := e.recs.get(o); {
		case ok && removed[o]:
			gone = append(gone, o)
		case ok:
			had = append(had, o)
		default:
			fresh = append(fresh, o)
		}
	}
	part := func(os []pipeline.Owner, more bool) {
		if len(os) == 0 {
			return
		}
		out := &changeSet{packing: map[uint64]*packing{}, pk: e.pk}
		e.updateAll(s, os, out)
		if cs := out.packed(); len(cs) > 0 {
			emit(cs, more)
		}
	}
	growing := func(os []pipeline.Owner, after int) {
		for n := firstPartOwners; len(os) > 0; n = min(2*n, maxPartOwners) {
			k := min(n, len(os))
			part(os[:k], len(os) > k || after > 0)
			os = os[k:]
		}
	}
	growing(gone, len(had)+len(fresh))
	part(had, len(fresh) > 0)
	growing(fresh, 0)
}

// PackedParts is one datapath's changes from UpdateParts, part by part as
// they are computed: an openflow.ModParts (openflow.PartQueue), so that a
// switch sends each part while the next is computed.
type PackedParts struct {
	*openflow.PartQueue[*PackedChanges]
}

// NewPackedParts is an empty PackedParts, waiting for its first part.
func NewPackedParts() PackedParts {
	return PackedParts{openflow.NewPartQueue[*PackedChanges]()}
}

// Parts is the number of parts (it waits for Close).
func (p PackedParts) Parts() int { return len(p.All()) }

// Counts is how many changes install and how many delete, in every part
// (it waits for Close).
func (p PackedParts) Counts() (adds, dels int) {
	for _, c := range p.All() {
		a, d := c.Counts()
		adds, dels = adds+a, dels+d
	}
	return adds, dels
}
