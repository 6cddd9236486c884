package engine

import (
	"context"
	"sync"

	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/openflow"
)

// Parts in which UpdateParts computes the owners that have no flows yet:
// the first is small, so a switch starts taking flows after ~1 ms of
// computation; each next one doubles, up to the last size, so a bulk load
// of 5,000 hosts is a dozen parts.
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
// The owners that have flows now come first, in one part: their changes
// may delete what another owner's install replaces (a host's address
// given to a new host in the same batch), and within a part deletes go
// first. The owners that have no flows yet follow, firstPartOwners and
// then twice as many at a time: they only install (their own flows, or
// the first variant of a shared one), never delete. A part that changes
// nothing is not emitted; more says whether owners are left to compute
// after the part (a batch of one part is emitted with more false, and may
// be sent as UpdatePacked's changes are).
func (e *Engine) UpdateParts(s *pipeline.Snapshot, owners []pipeline.Owner, emit func(part map[uint64]*PackedChanges, more bool)) {
	seen := make(map[pipeline.Owner]bool, len(owners))
	var had, fresh []pipeline.Owner
	for _, o := range owners {
		if seen[o] {
			continue
		}
		seen[o] = true
		if _, ok := e.recs.get(o); ok {
			had = append(had, o)
		} else {
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
	part(had, len(fresh) > 0)
	for n := firstPartOwners; len(fresh) > 0; n = min(2*n, maxPartOwners) {
		k := min(n, len(fresh))
		part(fresh[:k], len(fresh) > k)
		fresh = fresh[k:]
	}
}

// PackedParts is one datapath's changes from UpdateParts, part by part as
// they are computed: an openflow.ModParts, so that a switch sends each
// part while the next is computed. Read as a FlowMods it is every part in
// order; Len, At and Counts wait until Close.
type PackedParts struct {
	mu     sync.Mutex
	parts  []*PackedChanges
	ends   []int // ends[i]: the changes in parts 0..i
	closed bool
	failed error         // set by Abort: Part returns it
	more   chan struct{} // closed (and replaced) by the next Add or Close

	cur int // the part the last At read from
}

// NewPackedParts is an empty PackedParts, waiting for its first part.
func NewPackedParts() *PackedParts { return &PackedParts{more: make(chan struct{})} }

// Add appends a part. It must not be called after Close.
func (p *PackedParts) Add(c *PackedChanges) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ends = append(p.ends, p.end()+c.Len())
	p.parts = append(p.parts, c)
	close(p.more)
	p.more = make(chan struct{})
}

// Close says there are no more parts. Closing twice is harmless.
func (p *PackedParts) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.closed = true
		close(p.more)
	}
}

// Abort ends the parts with err, which Part returns instead of saying
// there are no more: a switch discards the bundle rather than commit what
// came before (the computation of the rest failed).
func (p *PackedParts) Abort(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.closed, p.failed = true, err
		close(p.more)
	}
}

func (p *PackedParts) end() int {
	if len(p.ends) == 0 {
		return 0
	}
	return p.ends[len(p.ends)-1]
}

// Part waits for the i-th part, or for Close (ok false), Abort (its
// error) or ctx.
func (p *PackedParts) Part(ctx context.Context, i int) (openflow.FlowMods, bool, error) {
	for {
		p.mu.Lock()
		if i < len(p.parts) {
			c := p.parts[i]
			p.mu.Unlock()
			return c, true, nil
		}
		closed, failed, more := p.closed, p.failed, p.more
		p.mu.Unlock()
		if closed {
			return nil, false, failed
		}
		select {
		case <-more:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}

// wait waits for Close.
func (p *PackedParts) wait() {
	for {
		p.mu.Lock()
		closed, more := p.closed, p.more
		p.mu.Unlock()
		if closed {
			return
		}
		<-more
	}
}

// Len is the number of changes in every part (it waits for Close).
func (p *PackedParts) Len() int {
	p.wait()
	return p.end()
}

// At reads the i-th change of the parts together (it waits for Close).
// In order it reads on from the last.
func (p *PackedParts) At(i int, m *openflow.FlowMod) error {
	p.wait()
	if i < 0 || i >= p.end() {
		return errPackedChange
	}
	if p.cur >= len(p.parts) || i >= p.ends[p.cur] || (p.cur > 0 && i < p.ends[p.cur-1]) {
		p.cur = 0
		for i >= p.ends[p.cur] {
			p.cur++
		}
	}
	start := 0
	if p.cur > 0 {
		start = p.ends[p.cur-1]
	}
	return p.parts[p.cur].At(i-start, m)
}

// Parts is the number of parts (it waits for Close).
func (p *PackedParts) Parts() int {
	p.wait()
	return len(p.parts)
}

// Counts is how many changes install and how many delete, in every part
// (it waits for Close).
func (p *PackedParts) Counts() (adds, dels int) {
	p.wait()
	for _, c := range p.parts {
		a, d := c.Counts()
		adds, dels = adds+a, dels+d
	}
	return adds, dels
}
