package openflow

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Switch is one connected OpenFlow 1.3 switch. Its methods are safe for
// concurrent use; requests on one switch never wait for another switch.
type Switch struct {
	c           *conn
	dpid        uint64
	remote      string
	connectedAt time.Time
	cert        *[sha256.Size]byte // the TLS certificate's SHA-256; nil over plain TCP
	gone        chan struct{}      // closed after SwitchDisconnected returned

	noBundles atomic.Bool   // set after the switch refused a bundle
	bundleID  atomic.Uint32 // last bundle id used
}

// DPID is the switch's datapath id.
func (s *Switch) DPID() uint64 { return s.dpid }

// RemoteAddr is the address the switch connected from.
func (s *Switch) RemoteAddr() string { return s.remote }

// ConnectedAt is when the handshake completed.
func (s *Switch) ConnectedAt() time.Time { return s.connectedAt }

// CertificateSHA256 is the SHA-256 (hex) of the TLS certificate the
// switch presented, "" over plain TCP.
func (s *Switch) CertificateSHA256() string {
	if s.cert == nil {
		return ""
	}
	return hex.EncodeToString(s.cert[:])
}

// Close closes the connection; the server then reports the switch as
// disconnected.
func (s *Switch) Close() { s.c.close(errors.New("closed by the controller")) }

// String names the switch for logs.
func (s *Switch) String() string { return fmt.Sprintf("switch %016x (%s)", s.dpid, s.remote) }

// Barrier sends a barrier request and waits for its reply: every message
// sent before it has been processed by the switch.
func (s *Switch) Barrier(ctx context.Context) error {
	r, err := s.c.request(ctx, false, func(b []byte, xid uint32) []byte {
		b = appendHeader(b, typeBarrierRequest, xid)
		setLength(b, 0)
		return b
	})
	if err != nil {
		return fmt.Errorf("%s: barrier: %w", s, err)
	}
	if r.err != nil {
		return fmt.Errorf("%s: barrier: %w", s, r.err)
	}
	return nil
}

// DumpFlows returns every flow in every table of the switch.
func (s *Switch) DumpFlows(ctx context.Context) ([]FlowStats, error) {
	r, err := s.c.request(ctx, true, appendFlowStatsRequest)
	if err != nil {
		return nil, fmt.Errorf("%s: dump flows: %w", s, err)
	}
	if r.err != nil {
		return nil, fmt.Errorf("%s: dump flows: %w", s, r.err)
	}
	var out []FlowStats
	for i, part := range r.parts {
		fs, err := DecodeFlowStats(part)
		if err != nil {
			return nil, fmt.Errorf("%s: dump flows: reply part %d: %w", s, i, err)
		}
		out = append(out, fs...)
	}
	return out, nil
}

// DumpFlowsFunc dumps every flow in every table of the switch, calling fn
// with each as the reply parts arrive (the first flows are handled while
// the switch is still sending the last). fs is reused from one flow to the
// next: fn copies what it keeps (openflow.CloneFlow). It stops at fn's
// first error and returns it.
func (s *Switch) DumpFlowsFunc(ctx context.Context, fn func(fs *FlowStats) error) error {
	return s.dumpStream(ctx, "dump flows", appendFlowStatsRequest, fn)
}

// DumpTableFunc is DumpFlowsFunc for the flows of one table (TableAll:
// every table) whose cookie equals cookie under mask (0: any cookie): the
// switch filters them.
func (s *Switch) DumpTableFunc(ctx context.Context, table uint8, cookie, mask uint64, fn func(fs *FlowStats) error) error {
	what := fmt.Sprintf("dump table %d", table)
	if mask != 0 {
		what = fmt.Sprintf("dump table %d cookie 0x%x/0x%x", table, cookie, mask)
	}
	return s.dumpStream(ctx, what, appendFilteredFlowStatsRequest(table, cookie, mask), fn)
}

// dumpStream sends a flow stats request and calls fn with each flow of
// the reply parts as they arrive.
func (s *Switch) dumpStream(ctx context.Context, what string, enc func(b []byte, xid uint32) []byte, fn func(fs *FlowStats) error) error {
	var fs FlowStats
	i := 0
	var ferr error
	err := s.c.requestStream(ctx, enc, func(part []byte) error {
		i++
		if err := EachFlowStats(part, &fs, func(fs *FlowStats) error {
			if err := fn(fs); err != nil {
				ferr = err
				return err
			}
			return nil
		}); err != nil {
			if ferr != nil {
				return ferr
			}
			return fmt.Errorf("reply part %d: %w", i, err)
		}
		return nil
	})
	if err != nil {
		if ferr != nil && errors.Is(err, ferr) {
			return err
		}
		return fmt.Errorf("%s: %s: %w", s, what, err)
	}
	return nil
}

// FlowMods is a batch of flow-mods that Apply reads one at a time, so a
// batch of 65,000 need not be held as Go values (~300 bytes each with
// their matches and actions) while it is sent: a controller can keep it
// packed (issue 17).
type FlowMods interface {
	Len() int
	// At reads the i-th flow-mod into m, whose Match and Actions it may
	// reuse (so m's are only good until the next call). Reading in order
	// is the fast path.
	At(i int, m *FlowMod) error
}

// ListOf reads every flow-mod of mods into a list of their own (for a
// switch that is not one: test doubles, which keep what they are sent).
func ListOf(mods FlowMods) ([]FlowMod, error) {
	out := make([]FlowMod, mods.Len())
	for i := range out {
		var m FlowMod
		if err := mods.At(i, &m); err != nil {
			return nil, fmt.Errorf("flow-mod #%d: %w", i, err)
		}
		out[i] = FlowMod{Command: m.Command, Flow: CloneFlow(&m.Flow), CookieMask: m.CookieMask}
	}
	return out, nil
}

// ModList is a FlowMods held as values.
type ModList []FlowMod

// Len is the number of flow-mods.
func (l ModList) Len() int { return len(l) }

// At reads the i-th flow-mod.
func (l ModList) At(i int, m *FlowMod) error { *m = l[i]; return nil }

// Apply sends mods and returns once the switch has processed them all
// (ApplySeq of the list).
func (s *Switch) Apply(ctx context.Context, mods []FlowMod) error {
	return s.ApplySeq(ctx, ModList(mods))
}

// ApplySeq sends mods and returns once the switch has processed them all.
// When the switch supports bundles (OVS does) the mods go in one atomic,
// ordered bundle: either all apply or none. Otherwise they are sent in
// order followed by a barrier, and the ones the switch accepted stay
// applied. Mods the switch rejects make it return an error that names
// them (errors.As finds a *FlowModError for each of the first few).
// Every mod is read and checked before any is sent; for ModParts, every
// mod of a part before that part is sent (a bad part discards the
// bundle, so nothing of it applies either).
//
// OVS puts no limit on the number of messages in a bundle that matters
// here: 100k flow mods commit as one bundle (see the OVS tests), so
// batches are never split.
//
// If ctx ends while mods are being written the connection is closed, as
// half a message may be on the wire.
func (s *Switch) ApplySeq(ctx context.Context, mods FlowMods) error {
	_, parted := mods.(ModParts)
	if !parted {
		if mods.Len() == 0 {
			return nil
		}
		if err := check(mods, 0); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	if !s.noBundles.Load() {
		fallback, err := s.applyBundle(ctx, mods)
		if !fallback {
			return err
		}
		s.c.log.Warn("switch refused a bundle; using plain flow mods and barriers from now on", zap.Error(err))
		s.noBundles.Store(true)
	}
	if parted {
		// Len waits for the last part.
		if err := check(mods, 0); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return s.applyPlain(ctx, mods)
}

// check reads and validates every mod of mods, numbered from first in
// its errors.
func check(mods FlowMods, first int) error {
	var m FlowMod
	for i := range mods.Len() {
		if err := mods.At(i, &m); err != nil {
			return fmt.Errorf("flow-mod #%d: %w", first+i, err)
		}
		if err := m.validate(); err != nil {
			return fmt.Errorf("flow-mod #%d: %w", first+i, err)
		}
	}
	return nil
}

// appendMods appends the mods, each encoded by enc, to the message
// writer. A mod that reads back differently than when it was checked
// cannot happen (FlowMods are read the same way each time); if it does,
// it is skipped and the error returned, so the caller does not commit.
func appendMods(mw *msgWriter, mods FlowMods, enc func(b []byte, i int, m *FlowMod) []byte) error {
	var m FlowMod
	var first error
	for i := range mods.Len() {
		if err := mods.At(i, &m); err != nil {
			if first == nil {
				first = fmt.Errorf("flow-mod #%d: %w", i, err)
			}
			continue
		}
		mw.buf = enc(mw.buf[:0], i, &m)
		mw.put(mw.buf)
	}
	return first
}

// applyPlain writes the mods and a barrier, then waits for the barrier
// reply; errors for the mods arrive before it.
func (s *Switch) applyPlain(ctx context.Context, mods FlowMods) error {
	n := uint32(mods.Len())
	base := s.c.nextXIDs(n + 1)
	barrierXID := base + n
	sink := s.c.addSink(base, n, 0)
	defer s.c.removeSink(sink)
	w := s.c.register(barrierXID, false)
	var rerr error
	err := s.c.send(ctx, func(mw *msgWriter) {
		rerr = appendMods(mw, mods, func(b []byte, i int, m *FlowMod) []byte {
			return appendFlowMod(b, base+uint32(i), m)
		})
		mw.buf = appendHeader(mw.buf[:0], typeBarrierRequest, barrierXID)
		setLength(mw.buf, 0)
		mw.put(mw.buf)
	})
	if err != nil {
		s.c.unregister(barrierXID)
		return fmt.Errorf("%s: apply %d flow mods: %w", s, n, err)
	}
	r, err := s.c.wait(ctx, barrierXID, w)
	if err != nil {
		return fmt.Errorf("%s: apply %d flow mods: waiting for barrier: %w", s, n, err)
	}
	if r.err != nil {
		return fmt.Errorf("%s: apply %d flow mods: barrier: %w", s, n, r.err)
	}
	if err := s.sinkErrors([]*errSink{sink}, mods); err != nil {
		return fmt.Errorf("%s: %w", s, err)
	}
	if rerr != nil {
		return fmt.Errorf("%s: %w", s, rerr)
	}
	return nil
}

// applyBundle applies the mods in one atomic ordered bundle. It writes the
// open request, every add and a barrier (in one go, unless mods come in
// parts: then each part as it comes); after the barrier reply all add
// errors are in, and the bundle is committed only if there were none (OVS
// leaves a bundle open and committable after a rejected add, so
// committing blindly would not be all-or-nothing). fallback reports that
// the switch does not do bundles and the caller should use plain mods.
func (s *Switch) applyBundle(ctx context.Context, mods FlowMods) (fallback bool, err error) {
	c := s.c
	id := s.bundleID.Add(1)
	parts, parted := mods.(ModParts)
	openXID := c.nextXIDs(1)
	wOpen := c.register(openXID, false)
	var barrierXID uint32
	var wBarrier *waiter
	// One error sink per part, each numbering its mods from the part's
	// first in the whole batch (mods.At reads them).
	var sinks []*errSink
	defer func() {
		for _, sink := range sinks {
			c.removeSink(sink)
		}
	}()
	n, opened := 0, false
	var rerr error
	// send writes in one go the open request (before the first part),
	// part's adds (nil: none) and, when last, the barrier.
	send := func(part FlowMods, last bool) error {
		k, base := 0, uint32(0)
		if part != nil {
			k = part.Len()
			base = c.nextXIDs(uint32(k))
			sinks = append(sinks, c.addSink(base, uint32(k), n))
		}
		if last {
			barrierXID = c.nextXIDs(1)
			wBarrier = c.register(barrierXID, false)
		}
		err := c.send(ctx, func(mw *msgWriter) {
			if !opened {
				mw.buf = appendBundleControl(mw.buf[:0], openXID, id, bundleOpenRequest)
				mw.put(mw.buf)
			}
			if part != nil {
				if perr := appendMods(mw, part, func(b []byte, i int, m *FlowMod) []byte {
					return appendBundleAdd(b, base+uint32(i), id, m)
				}); perr != nil && rerr == nil {
					rerr = perr
				}
			}
			if last {
				mw.buf = appendHeader(mw.buf[:0], typeBarrierRequest, barrierXID)
				setLength(mw.buf, 0)
				mw.put(mw.buf)
			}
		})
		if err != nil {
			c.unregister(openXID)
			if last {
				c.unregister(barrierXID)
			}
			return fmt.Errorf("%s: apply %d flow mods in bundle %d: %w", s, n+k, id, err)
		}
		opened = true
		n += k
		return nil
	}
	if !parted {
		if err := send(mods, true); err != nil {
			return false, err
		}
	} else {
		for i := 0; ; i++ {
			p, ok, perr := parts.Part(ctx, i)
			if perr == nil && ok {
				perr = check(p, n)
			}
			if perr != nil {
				c.unregister(openXID)
				if opened {
					s.discardBundle(ctx, id)
				}
				return false, fmt.Errorf("%s: bundle %d: part %d: %w", s, id, i, perr)
			}
			if !ok {
				break
			}
			if err := send(p, false); err != nil {
				return false, err
			}
		}
		if err := send(nil, true); err != nil {
			return false, err
		}
	}
	rOpen, err := c.wait(ctx, openXID, wOpen)
	if err != nil {
		c.unregister(barrierXID)
		return false, fmt.Errorf("%s: bundle %d: waiting for open reply: %w", s, id, err)
	}
	rBarrier, err := c.wait(ctx, barrierXID, wBarrier)
	if err != nil {
		return false, fmt.Errorf("%s: bundle %d: waiting for barrier: %w", s, id, err)
	}
	if rOpen.err != nil {
		s.discardBundle(ctx, id)
		if rOpen.err.Type == errTypeBadRequest && rOpen.err.Code == errCodeIsSlave {
			// Refused because this connection is a slave, not because
			// the switch lacks bundles: plain flow-mods would be refused
			// too (IsSlaveError finds it).
			return false, fmt.Errorf("%s: open bundle: %w", s, rOpen.err)
		}
		return true, fmt.Errorf("%s: open bundle: %w", s, rOpen.err)
	}
	if rBarrier.err != nil {
		s.discardBundle(ctx, id)
		return false, fmt.Errorf("%s: bundle %d: barrier: %w", s, id, rBarrier.err)
	}
	if err := s.sinkErrors(sinks, mods); err != nil {
		s.discardBundle(ctx, id)
		return false, fmt.Errorf("%s: bundle %d discarded: %w", s, id, err)
	}
	if rerr != nil {
		s.discardBundle(ctx, id)
		return false, fmt.Errorf("%s: bundle %d discarded: %w", s, id, rerr)
	}

	rCommit, err := c.request(ctx, false, func(b []byte, xid uint32) []byte {
		return appendBundleControl(b, xid, id, bundleCommitRequest)
	})
	if err != nil {
		return false, fmt.Errorf("%s: bundle %d: commit: %w", s, id, err)
	}
	if err := s.sinkErrors(sinks, mods); err != nil {
		return false, fmt.Errorf("%s: bundle %d not committed: %w", s, id, err)
	}
	if rCommit.err != nil {
		// Not caused by a particular flow: try again without bundles,
		// nothing was applied.
		return true, fmt.Errorf("%s: bundle %d: commit: %w", s, id, rCommit.err)
	}
	return false, nil
}

// discardBundle drops an open bundle, best effort.
func (s *Switch) discardBundle(ctx context.Context, id uint32) {
	r, err := s.c.request(ctx, false, func(b []byte, xid uint32) []byte {
		return appendBundleControl(b, xid, id, bundleDiscardRequest)
	})
	if err == nil && r.err != nil {
		err = r.err
	}
	if err != nil {
		s.c.log.Debug("discarding bundle failed", zap.Uint32("bundle", id), zap.Error(err))
	}
}

// sinkErrors turns the errors the sinks collected into one error naming
// the flows (mods is the whole batch).
func (s *Switch) sinkErrors(sinks []*errSink, mods FlowMods) error {
	total := 0
	var errs []*FlowModError
	for _, sink := range sinks {
		n, first := sink.result()
		total += n
		for _, e := range first {
			if len(errs) == maxKeptErrors {
				break
			}
			fe := &FlowModError{Index: e.index, Err: e.err}
			if e.index >= 0 && e.index < mods.Len() {
				_ = mods.At(e.index, &fe.Mod) // read into its own Mod: kept
			}
			errs = append(errs, fe)
		}
	}
	if total == 0 {
		return nil
	}
	return joinFlowModErrors(errs, total)
}

// PacketInStats counts the switch's packet-ins; all zero when the
// server's handler does not take packet-ins.
func (s *Switch) PacketInStats() PacketInStats {
	if s.c.packetIns == nil {
		return PacketInStats{}
	}
	return s.c.packetIns.stats()
}
