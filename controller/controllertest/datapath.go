// Package controllertest has what tests of the controller (and of the
// packages above it) need in place of a connected Open vSwitch: a
// Datapath that keeps its flow table in memory, applying flow-mods as OVS
// does, and a chassis configurer that configures nothing. Tests that are
// about OVS itself use a real one (e2e/netlab).
package controllertest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// Datapath is an in-memory switch: Apply applies flow-mods to its table
// (all or nothing, as a bundle), DumpFlows returns it with counters.
type Datapath struct {
	dpid   uint64
	since  time.Time
	closed chan struct{}
	once   sync.Once

	mu     sync.Mutex
	table  map[openflow.Key]*installed
	meters map[uint32]*meter
	mods   int // flow-mods applied so far
	// meterMods counts meter-mods applied so far.
	meterMods  int
	batches    int // Apply calls that changed something
	tableStats int // table-stats requests answered
	dumps      int // flow dumps answered
	wholeDumps int // of those, of every flow (not by table or cookie)
	// failWith, when set, fails every Apply (nothing is changed).
	failWith error
	// hang, when set, makes Apply and DumpFlows wait for ctx (a switch
	// that stopped answering).
	hang bool
	// streamed counts the batches in parts (openflow.ModParts) whose
	// first part came while the rest were still being computed.
	streamed int
}

type installed struct {
	flow    openflow.Flow
	packets uint64
	added   time.Time
}

// NewDatapath returns an empty switch with datapath id dpid.
func NewDatapath(dpid uint64) *Datapath {
	return &Datapath{dpid: dpid, since: time.Now(), closed: make(chan struct{}), table: map[openflow.Key]*installed{},
		meters: map[uint32]*meter{}}
}

func (d *Datapath) DPID() uint64           { return d.dpid }
func (d *Datapath) RemoteAddr() string     { return fmt.Sprintf("memory:%s", topology.DPID(d.dpid)) }
func (d *Datapath) ConnectedAt() time.Time { return d.since }

// CertificateSHA256 is "": an in-memory switch connects without TLS.
func (d *Datapath) CertificateSHA256() string { return "" }

// Close disconnects the switch.
func (d *Datapath) Close() { d.once.Do(func() { close(d.closed) }) }

// Closed is closed once the controller (or the test) disconnected it.
func (d *Datapath) Closed() <-chan struct{} { return d.closed }

// FailApply makes every later Apply fail with err (nil: succeed again).
func (d *Datapath) FailApply(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.failWith = err
}

// Hang makes the switch stop answering (true) or answer again.
func (d *Datapath) Hang(on bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.hang = on
}

func (d *Datapath) wait(ctx context.Context) error {
	d.mu.Lock()
	hang := d.hang
	d.mu.Unlock()
	if !hang {
		return nil
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-d.closed:
		return errors.New("switch connection closed")
	}
}

// DumpFlows returns the table.
func (d *Datapath) DumpFlows(ctx context.Context) ([]openflow.FlowStats, error) {
	return d.dump(ctx, true)
}

// dump answers a flow dump: every flow, which the caller may filter
// (whole: it does not).
func (d *Datapath) dump(ctx context.Context, whole bool) ([]openflow.FlowStats, error) {
	if err := d.wait(ctx); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dumps++
	if whole {
		d.wholeDumps++
	}
	out := make([]openflow.FlowStats, 0, len(d.table))
	for _, in := range d.table {
		out = append(out, openflow.FlowStats{Flow: in.flow, Packets: in.packets, Bytes: in.packets * 100, Duration: time.Since(in.added)})
	}
	return out, nil
}

// DumpTable returns the flows of one table.
func (d *Datapath) DumpTable(ctx context.Context, table uint8) ([]openflow.FlowStats, error) {
	all, err := d.dump(ctx, table == openflow.TableAll)
	if err != nil || table == openflow.TableAll {
		return all, err
	}
	out := all[:0]
	for _, fs := range all {
		if fs.Flow.Table == table {
			out = append(out, fs)
		}
	}
	return out, nil
}

// DumpCookie returns the flows of table (TableAll: every table) whose
// cookie equals cookie under mask, as OVS filters a flow stats request.
func (d *Datapath) DumpCookie(ctx context.Context, table uint8, cookie, mask uint64) ([]openflow.FlowStats, error) {
	all, err := d.dump(ctx, false)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, fs := range all {
		if fs.Flow.Cookie&mask == cookie&mask && (table == openflow.TableAll || fs.Flow.Table == table) {
			out = append(out, fs)
		}
	}
	return out, nil
}

// TableStats counts the flows of every table, as OVS answers OFPMP_TABLE
// (every table, empty ones included).
func (d *Datapath) TableStats(ctx context.Context) ([]openflow.TableStats, error) {
	if err := d.wait(ctx); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.tableStats++
	out := make([]openflow.TableStats, 255)
	for i := range out {
		out[i].Table = uint8(i)
	}
	for _, in := range d.table {
		out[in.flow.Table].Active++
	}
	return out, nil
}

// Modify replaces the actions (and cookie) of the flow with f's key, as an
// operator would by hand (ovs-ofctl mod-flows --strict).
func (d *Datapath) Modify(f openflow.Flow) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	in, ok := d.table[f.Key()]
	if ok {
		in.flow.Actions, in.flow.Cookie = f.Actions, f.Cookie
	}
	return ok
}

// Requests counts the table-stats requests and flow dumps (whole, one
// table or by cookie) answered so far.
func (d *Datapath) Requests() (tableStats, dumps int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.tableStats, d.dumps
}

// WholeDumps counts the dumps of every flow (not of one table, not by
// cookie) answered so far.
func (d *Datapath) WholeDumps() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.wholeDumps
}

// ApplySeq applies mods in order, all or nothing.
func (d *Datapath) ApplySeq(ctx context.Context, seq openflow.FlowMods) error {
	if err := d.wait(ctx); err != nil {
		return err
	}
	if p, ok := seq.(openflow.ModParts); ok {
		// As a switch does: take the first part as soon as it comes,
		// then see whether the batch was complete by then.
		if _, ok, err := p.Part(ctx, 0); err != nil {
			return err
		} else if ok && !partsComplete(ctx, p) {
			d.mu.Lock()
			d.streamed++
			d.mu.Unlock()
		}
	}
	mods, err := openflow.ListOf(seq) // waits for every part
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failWith != nil {
		return d.failWith
	}
	for _, m := range mods {
		if _, err := openflow.EncodeFlowMod(1, m); err != nil {
			return fmt.Errorf("flow-mod the switch would refuse: %w", err)
		}
	}
	now := time.Now()
	for _, m := range mods {
		k := m.Flow.Key()
		switch m.Command {
		case openflow.FlowAdd:
			d.table[k] = &installed{flow: m.Flow, added: now}
		case openflow.FlowModifyStrict:
			if in, ok := d.table[k]; ok {
				in.flow.Actions, in.flow.Cookie = m.Flow.Actions, m.Flow.Cookie
			}
		case openflow.FlowDeleteStrict:
			delete(d.table, k)
		case openflow.FlowDeleteByCookie:
			for key, in := range d.table {
				if in.flow.Cookie&m.CookieMask == m.Flow.Cookie&m.CookieMask {
					delete(d.table, key)
				}
			}
		}
	}
	d.mods += len(mods)
	if len(mods) > 0 {
		d.batches++
	}
	return nil
}

// partsComplete says, without waiting, whether p was given all its parts.
func partsComplete(ctx context.Context, p openflow.ModParts) bool {
	now, cancel := context.WithCancel(ctx)
	cancel()
	_, _, err := p.Part(now, math.MaxInt)
	return err == nil // closed; ctx's error: more may come
}

// Streamed is the number of batches in parts whose first part this
// switch took while the rest were still being computed.
func (d *Datapath) Streamed() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.streamed
}

// Flows is the table in ovs-ofctl order (table, priority high first, match).
func (d *Datapath) Flows() []openflow.Flow {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]openflow.Flow, 0, len(d.table))
	for _, in := range d.table {
		out = append(out, in.flow)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := &out[i], &out[j]
		if a.Table != b.Table {
			return a.Table < b.Table
		}
		if a.Priority != b.Priority {
			return a.Priority > b.Priority
		}
		return a.Match.String() < b.Match.String()
	})
	return out
}

// Text is the table as ovs-ofctl add-flows lines, one per flow.
func (d *Datapath) Text() string {
	var s string
	for _, f := range d.Flows() {
		s += f.String() + "\n"
	}
	return s
}

// Mods is how many flow-mods the switch applied so far.
func (d *Datapath) Mods() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.mods
}

// Put installs a flow as an operator would by hand (ovs-ofctl add-flow).
func (d *Datapath) Put(f openflow.Flow) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.table[f.Key()] = &installed{flow: f, added: time.Now()}
}

// Remove deletes the flow with f's key, as an operator would by hand.
func (d *Datapath) Remove(f openflow.Flow) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.table, f.Key())
}

// Count sets the packet counter of the flow with f's key, as traffic would.
func (d *Datapath) Count(f openflow.Flow, packets uint64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	in, ok := d.table[f.Key()]
	if ok {
		in.packets = packets
	}
	return ok
}

// Batches is how many Apply calls (bundles) changed something so far.
func (d *Datapath) Batches() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.batches
}
