package controller

import (
	"context"
	"sync"
	"time"

	"github.com/vpcflow/vpcflow/openflow"
)

// DefaultPushTimeout is Options.PushTimeout unless it says otherwise.
const DefaultPushTimeout = 10 * time.Second

// flowModAllowance is the time a switch is given to confirm a change for
// each of its flow-mods, on top of Options.PushTimeout. OVS takes a
// bundle at 75,000–110,000 flow-mods a second on the bench machine
// (docs/performance.md); a switch ten times slower still confirms in
// time. Without it a big batch (a VPC of 100,000 hosts deleted: 650,000
// flow-mods a bridge, 7.6 s of the 10 s) timed out on a slow day, and
// its switch was disconnected and reconciled from a full dump.
const flowModAllowance = 100 * time.Microsecond

// flowModsAllowance is flowModAllowance for n flow-mods.
func flowModsAllowance(n int) time.Duration { return time.Duration(max(n, 0)) * flowModAllowance }

// pushDeadline is the context of one push: it ends PushTimeout after the
// push began plus flowModAllowance for each flow-mod given to the switch
// so far, or with its parent. A batch in parts (openflow.ModParts) moves
// the deadline as each part is handed to the switch (stretchParts), so a
// bulk load's deadline grows with what it sends, not with how long the
// engine computes.
type pushDeadline struct {
	context.Context // the parent: values, and ending with it

	done  chan struct{}
	stop  func() bool // stops watching the parent
	mu    sync.Mutex
	err   error
	at    time.Time
	timer *time.Timer
}

// newPushDeadline is a context that ends base from now (plus what stretch
// adds), or with parent. cancel releases it.
func newPushDeadline(parent context.Context, base time.Duration) (*pushDeadline, context.CancelFunc) {
	d := &pushDeadline{Context: parent, done: make(chan struct{}), at: time.Now().Add(base)}
	// Both callbacks end d under d.mu: they wait until d is whole (a
	// parent already done calls its function at once).
	d.mu.Lock()
	defer d.mu.Unlock()
	d.timer = time.AfterFunc(base, d.expire)
	d.stop = context.AfterFunc(parent, func() { d.end(parent.Err()) })
	return d, func() { d.end(context.Canceled) }
}

// stretch gives the push flowModAllowance more for each of n flow-mods.
func (d *pushDeadline) stretch(n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil || n <= 0 {
		return
	}
	d.at = d.at.Add(flowModsAllowance(n))
	d.timer.Reset(time.Until(d.at))
}

// expire ends the push if its deadline passed (a timer that fired just
// before a stretch finds it moved).
func (d *pushDeadline) expire() {
	d.mu.Lock()
	if wait := time.Until(d.at); wait > 0 && d.err == nil {
		d.timer.Reset(wait)
		d.mu.Unlock()
		return
	}
	d.mu.Unlock()
	d.end(context.DeadlineExceeded)
}

func (d *pushDeadline) end(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return
	}
	d.err = err
	d.timer.Stop()
	d.stop()
	close(d.done)
}

func (d *pushDeadline) Deadline() (time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.at, true
}

func (d *pushDeadline) Done() <-chan struct{} { return d.done }

func (d *pushDeadline) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// stretchParts is a batch in parts whose push deadline grows by each
// part's flow-mods as the switch takes it.
type stretchParts struct {
	openflow.ModParts
	d *pushDeadline
}

func (p stretchParts) Part(ctx context.Context, i int) (openflow.FlowMods, bool, error) {
	part, ok, err := p.ModParts.Part(ctx, i)
	if ok {
		p.d.stretch(part.Len())
	}
	return part, ok, err
}

// stretchFor gives the push d of mods its allowance: at once for a whole
// batch, part by part (the mods the switch is to read) for one in parts.
func stretchFor(d *pushDeadline, mods openflow.FlowMods) openflow.FlowMods {
	if p, ok := mods.(openflow.ModParts); ok {
		return stretchParts{p, d}
	}
	d.stretch(mods.Len())
	return mods
}
