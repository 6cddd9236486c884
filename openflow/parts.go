package openflow

import (
	"context"
	"fmt"
	"sync"
)

// ModParts is a FlowMods that arrives in parts, for a sender that goes on
// computing a batch while the switch takes its first parts (issue 17: a
// bulk load's bundle waited for all of it to be computed while OVS
// idled). Read as a FlowMods it is its parts one after the other, and Len
// waits for the last. A Switch's ApplySeq sends each part as soon as Part
// returns it, into the same bundle, and commits once Part says there are
// no more: the switch applies the parts in order, all or nothing, as one
// batch.
type ModParts interface {
	FlowMods
	// Part waits for the i-th part (from 0); ok is false once every part
	// was given.
	Part(ctx context.Context, i int) (part FlowMods, ok bool, err error)
}

// PartQueue is a ModParts that a producer fills: Add a part as soon as it
// is computed, then Close (or Abort, when computing the rest failed). A
// switch reads each part as it is added; read as a FlowMods it is every
// part in order, and Len and At wait until Close. P is the parts' type,
// so that the producer can read its own parts back (All).
type PartQueue[P FlowMods] struct {
	mu     sync.Mutex
	parts  []P
	ends   []int // ends[i]: the mods in parts 0..i
	closed bool
	failed error         // set by Abort: Part returns it
	more   chan struct{} // closed (and replaced) by the next Add or Close

	cur int // the part the last At read from
}

// NewPartQueue is an empty PartQueue, waiting for its first part.
func NewPartQueue[P FlowMods]() *PartQueue[P] {
	return &PartQueue[P]{more: make(chan struct{})}
}

// Add appends a part. It must not be called after Close or Abort.
func (q *PartQueue[P]) Add(part P) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.ends = append(q.ends, q.end()+part.Len())
	q.parts = append(q.parts, part)
	q.wake()
}

// Close says there are no more parts. Closing twice is harmless.
func (q *PartQueue[P]) Close() { q.finish(nil) }

// Abort ends the parts with err, which Part returns instead of saying
// there are no more: a switch discards the bundle rather than commit what
// came before (the computation of the rest failed).
func (q *PartQueue[P]) Abort(err error) { q.finish(err) }

func (q *PartQueue[P]) finish(err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed, q.failed = true, err
		q.wake()
	}
}

// wake tells every waiter that something changed. Caller holds q.mu.
func (q *PartQueue[P]) wake() {
	close(q.more)
	q.more = make(chan struct{})
}

func (q *PartQueue[P]) end() int {
	if len(q.ends) == 0 {
		return 0
	}
	return q.ends[len(q.ends)-1]
}

// Part waits for the i-th part, or for Close (ok false), Abort (its
// error) or ctx.
func (q *PartQueue[P]) Part(ctx context.Context, i int) (FlowMods, bool, error) {
	for {
		q.mu.Lock()
		if i < len(q.parts) {
			part := q.parts[i]
			q.mu.Unlock()
			return part, true, nil
		}
		closed, failed, more := q.closed, q.failed, q.more
		q.mu.Unlock()
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

// All waits for Close and is every part, in order.
func (q *PartQueue[P]) All() []P {
	for {
		q.mu.Lock()
		closed, more, parts := q.closed, q.more, q.parts
		q.mu.Unlock()
		if closed {
			return parts
		}
		<-more
	}
}

// Len is the number of mods in every part (it waits for Close).
func (q *PartQueue[P]) Len() int {
	q.All()
	return q.end()
}

// At reads the i-th mod of the parts together (it waits for Close). In
// order it reads on from the last.
func (q *PartQueue[P]) At(i int, m *FlowMod) error {
	q.All()
	if i < 0 || i >= q.end() {
		return fmt.Errorf("flow-mod #%d of %d in parts: out of range", i, q.end())
	}
	if q.cur >= len(q.parts) || i >= q.ends[q.cur] || (q.cur > 0 && i < q.ends[q.cur-1]) {
		q.cur = 0
		for i >= q.ends[q.cur] {
			q.cur++
		}
	}
	start := 0
	if q.cur > 0 {
		start = q.ends[q.cur-1]
	}
	return q.parts[q.cur].At(i-start, m)
}
