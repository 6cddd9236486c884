package openflow

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Packet-in reasons (ofp_packet_in_reason).
const (
	PacketInNoMatch    uint8 = 0 // OFPR_NO_MATCH: table miss
	PacketInAction     uint8 = 1 // OFPR_ACTION: an output to OFPP_CONTROLLER (ToController)
	PacketInInvalidTTL uint8 = 2 // OFPR_INVALID_TTL
)

// PacketIn is a packet the switch sent to the controller: an
// OFPT_PACKET_IN, or Nicira's NXT_PACKET_IN2, which OVS sends once the
// server has asked for it (it does so for every switch when the handler
// takes packet-ins) and which alone carries a controller action's userdata.
type PacketIn struct {
	Reason  uint8  // PacketInNoMatch, PacketInAction, …
	TableID uint8  // the table whose flow sent the packet
	Cookie  uint64 // that flow's cookie
	InPort  uint32 // the packet's ingress port (the in_port of Match)
	// Match holds the pipeline fields of the packet as the switch
	// reported them: in_port, and metadata, registers and tunnel fields
	// when they are set. Fields vpcflow does not know appear as Field 0
	// entries (see DecodeFlowStats).
	Match Match
	// Data is the frame, starting with its Ethernet header; it may be
	// shorter than TotalLen if the switch truncated it. The receiver owns
	// it.
	Data     []byte
	TotalLen uint16 // length of the whole frame
	BufferID uint32 // OFP_NO_BUFFER (0xffffffff) unless the switch buffered the packet
	// Userdata is the userdata of the controller action that sent the
	// packet (ControllerWith), nil for other packet-ins. The receiver
	// owns it.
	Userdata []byte
	// Continuation is set when that action paused the pipeline
	// (Controller.Pause): Switch.Resume hands it back to the switch to
	// carry on. The receiver owns it.
	Continuation []byte
}

// PacketInHandler receives packet-ins. When the Handler given to
// NewServer also implements it, PacketIn is called for every well-formed
// OFPT_PACKET_IN a switch sends, in the order the switch sent them, from
// one goroutine per switch.
//
// Packet-ins are queued between the connection's reader and that
// goroutine (ServerOptions.PacketInQueue); while the queue is full, new
// packet-ins are dropped and counted (Switch.PacketInStats), so a slow
// handler never holds up the replies to the switch's other requests.
// Delivery starts when SwitchConnected is called (it runs concurrently
// with it) and stops when the connection closes: packet-ins still queued
// then are discarded, and SwitchDisconnected is called only after the
// last PacketIn call for the switch returned. A PacketIn that never
// returns therefore holds up SwitchDisconnected and Server.Serve.
type PacketInHandler interface {
	PacketIn(sw *Switch, pi PacketIn)
}

// PacketInStats counts a switch's packet-ins.
type PacketInStats struct {
	Queued    uint64 // well-formed, queued for the handler
	Delivered uint64 // handed to the handler (calls that returned or panicked)
	Dropped   uint64 // well-formed, dropped because the queue was full
	Malformed uint64 // ignored because they could not be decoded
}

// errNotPacketIn is returned by DecodePacketIn for other messages.
var errNotPacketIn = errors.New("not an OpenFlow 1.3 packet-in")

// DecodePacketIn decodes a complete OFPT_PACKET_IN message (header
// included) of OpenFlow 1.3: header, buffer_id, total_len, reason,
// table_id, cookie, an OXM ofp_match padded to 8 bytes, 2 bytes of
// padding, and the frame. The match must hold in_port, as the spec
// requires. The result's Data aliases msg.
func DecodePacketIn(msg []byte) (PacketIn, error) {
	if len(msg) < headerLen {
		return PacketIn{}, fmt.Errorf("packet-in header: %w", errTruncated)
	}
	if msg[0] != Version || msg[1] != typePacketIn {
		return PacketIn{}, fmt.Errorf("%w: version 0x%02x, type %d", errNotPacketIn, msg[0], msg[1])
	}
	if l := int(be.Uint16(msg[2:])); l != len(msg) {
		return PacketIn{}, fmt.Errorf("packet-in: header length %d, message %d bytes", l, len(msg))
	}
	return decodePacketIn(msg[headerLen:])
}

// decodePacketIn decodes the body (after the header) of a packet-in. Data
// is a sub-slice of body.
func decodePacketIn(body []byte) (PacketIn, error) {
	const fixed = packetInFixedLen - headerLen
	if len(body) < fixed {
		return PacketIn{}, fmt.Errorf("packet-in: %w (%d bytes)", errTruncated, len(body)+headerLen)
	}
	pi := PacketIn{
		BufferID: be.Uint32(body),
		TotalLen: be.Uint16(body[4:]),
		Reason:   body[6],
		TableID:  body[7],
		Cookie:   be.Uint64(body[8:]),
	}
	rest := body[fixed:]
	if len(rest) >= 2 && be.Uint16(rest) != matchTypeOXM {
		return PacketIn{}, fmt.Errorf("packet-in: match type %d, want OXM", be.Uint16(rest))
	}
	m, n, err := decodeMatch(rest)
	if err != nil {
		return PacketIn{}, fmt.Errorf("packet-in: %w", err)
	}
	rest = rest[n:]
	if len(rest) < 2 {
		return PacketIn{}, fmt.Errorf("packet-in: padding after the match: %w", errTruncated)
	}
	fm, ok := m.Get(FieldInPort)
	if !ok || fm.HasMask {
		return PacketIn{}, errors.New("packet-in: match has no exact in_port")
	}
	pi.InPort = uint32(fm.Value)
	pi.Match = m
	pi.Data = rest[2:]
	return pi, nil
}

// packetInQueue carries one switch's packet-ins from the reader goroutine
// to the goroutine that calls the handler.
type packetInQueue struct {
	ch chan PacketIn

	queued, delivered, dropped, malformed atomic.Uint64

	// Used only by the reader goroutine.
	dropLog, badLog logLimiter
}

func newPacketInQueue(size int) *packetInQueue {
	return &packetInQueue{ch: make(chan PacketIn, size)}
}

func (q *packetInQueue) stats() PacketInStats {
	return PacketInStats{
		Queued:    q.queued.Load(),
		Delivered: q.delivered.Load(),
		Dropped:   q.dropped.Load(),
		Malformed: q.malformed.Load(),
	}
}

// logLimiter lets a message be logged at most once per second and counts
// the occurrences in between.
type logLimiter struct {
	last       time.Time
	suppressed uint64
}

// allow reports whether to log now and how many occurrences were not
// logged since the last time.
func (l *logLimiter) allow(now time.Time) (bool, uint64) {
	if !l.last.IsZero() && now.Sub(l.last) < time.Second {
		l.suppressed++
		return false, 0
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	return true, n
}

// handlePacketIn decodes and queues a packet-in, on the reader goroutine.
// It never blocks.
func (c *conn) handlePacketIn(m message) {
	q := c.packetIns
	if q == nil {
		c.log.Debug("ignoring packet-in: no packet-in handler", zap.Uint32("xid", m.xid))
		return
	}
	var pi PacketIn
	var err error
	if m.typ == typeExperimenter {
		pi, err = decodePacketIn2(m.body)
	} else {
		pi, err = decodePacketIn(m.body)
	}
	if err != nil {
		n := q.malformed.Add(1)
		if ok, skipped := q.badLog.allow(time.Now()); ok {
			c.log.Warn("ignoring malformed packet-in", zap.Error(err), zap.Int("len", len(m.body)+headerLen),
				zap.Uint64("malformed_total", n), zap.Uint64("not_logged", skipped))
		}
		return
	}
	select {
	case q.ch <- pi:
		q.queued.Add(1)
	default:
		n := q.dropped.Add(1)
		if ok, skipped := q.dropLog.allow(time.Now()); ok {
			c.log.Warn("packet-in queue full, dropping packet-ins", zap.Int("queue", cap(q.ch)),
				zap.Uint64("dropped_total", n), zap.Uint64("not_logged", skipped))
		}
	}
}

// deliverPacketIns calls h for each queued packet-in, from when start is
// closed until the connection closes.
func (c *conn) deliverPacketIns(sw *Switch, h PacketInHandler, start <-chan struct{}) {
	q := c.packetIns
	select {
	case <-start:
	case <-c.done:
		return
	}
	for {
		select {
		case <-c.done:
			return
		default:
		}
		select {
		case pi := <-q.ch:
			c.callPacketIn(sw, h, pi)
			q.delivered.Add(1)
		case <-c.done:
			return
		}
	}
}

func (c *conn) callPacketIn(sw *Switch, h PacketInHandler, pi PacketIn) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("panic in PacketIn", zap.Any("panic", p), zap.Stack("stack"))
		}
	}()
	h.PacketIn(sw, pi)
}

// Nicira packet-in2 (OVS's NXT_PACKET_IN2) and the messages around it.
// libOpenflow (v0.0.0-20210609050114) has no decoder for NXT_PACKET_IN2
// and no encoder for NXT_SET_PACKET_IN_FORMAT or NXT_RESUME (it only
// defines the Type_SetPacketInFormat and Type_Resume constants), so vpcflow
// writes them itself.
const (
	nxtSetPacketInFormat = 16
	nxtResume            = 28
	nxtPacketIn2         = 30
	nxPacketInFormat2    = 2  // NXPIF_NXT_PACKET_IN2
	nxtHeaderLen         = 16 // ofp_header + experimenter + subtype

	nxpintPacket       = 0
	nxpintFullLen      = 1
	nxpintBufferID     = 2
	nxpintTableID      = 3
	nxpintCookie       = 4
	nxpintReason       = 5
	nxpintMetadata     = 6
	nxpintUserdata     = 7
	nxpintContinuation = 8
)

// appendSetPacketInFormat2 appends NXT_SET_PACKET_IN_FORMAT asking for
// NXT_PACKET_IN2.
func appendSetPacketInFormat2(b []byte, xid uint32) []byte {
	start := len(b)
	b = appendHeader(b, typeExperimenter, xid)
	b = appendU32(b, nxExperimenter)
	b = appendU32(b, nxtSetPacketInFormat)
	b = appendU32(b, nxPacketInFormat2)
	setLength(b, start)
	return b
}

// isPacketIn2 reports whether an experimenter message body is an
// NXT_PACKET_IN2.
func isPacketIn2(body []byte) bool {
	return len(body) >= nxtHeaderLen-headerLen && be.Uint32(body) == nxExperimenter && be.Uint32(body[4:]) == nxtPacketIn2
}

// DecodePacketIn2 decodes a complete NXT_PACKET_IN2 message (header
// included) into a PacketIn. The metadata must hold in_port, as OVS's
// always does. Data, Userdata and Continuation alias msg.
func DecodePacketIn2(msg []byte) (PacketIn, error) {
	if len(msg) < headerLen {
		return PacketIn{}, fmt.Errorf("packet-in2 header: %w", errTruncated)
	}
	if msg[0] != Version || msg[1] != typeExperimenter || !isPacketIn2(msg[headerLen:]) {
		return PacketIn{}, fmt.Errorf("%w: not an NXT_PACKET_IN2", errNotPacketIn)
	}
	if l := int(be.Uint16(msg[2:])); l != len(msg) {
		return PacketIn{}, fmt.Errorf("packet-in2: header length %d, message %d bytes", l, len(msg))
	}
	return decodePacketIn2(msg[headerLen:])
}

// decodePacketIn2 decodes the body (after the OpenFlow header) of an
// NXT_PACKET_IN2: experimenter, subtype and a list of properties.
// Properties it does not know are skipped, as OVS may add some.
func decodePacketIn2(body []byte) (PacketIn, error) {
	pi := PacketIn{BufferID: noBuffer}
	var havePacket, haveMeta, haveFullLen bool
	for p := body[nxtHeaderLen-headerLen:]; len(p) > 0; {
		if len(p) < 4 {
			return PacketIn{}, fmt.Errorf("packet-in2 property: %w", errTruncated)
		}
		typ, l := be.Uint16(p), int(be.Uint16(p[2:]))
		padded := (l + 7) &^ 7
		if l < 4 || padded > len(p) {
			if l >= 4 && l <= len(p) && len(p) < padded {
				padded = len(p) // the last property may go without padding
			} else {
				return PacketIn{}, fmt.Errorf("packet-in2 property %d: bad length %d (%d bytes left)", typ, l, len(p))
			}
		}
		v := p[4:l]
		bad := func() error { return fmt.Errorf("packet-in2 property %d: bad length %d", typ, l) }
		switch typ {
		case nxpintPacket:
			pi.Data, havePacket = v, true
		case nxpintFullLen:
			if len(v) != 4 {
				return PacketIn{}, bad()
			}
			full := be.Uint32(v)
			if full > 0xffff {
				full = 0xffff
			}
			pi.TotalLen, haveFullLen = uint16(full), true
		case nxpintBufferID:
			if len(v) != 4 {
				return PacketIn{}, bad()
			}
			pi.BufferID = be.Uint32(v)
		case nxpintTableID:
			if len(v) != 1 {
				return PacketIn{}, bad()
			}
			pi.TableID = v[0]
		case nxpintCookie:
			// 64-bit properties carry 4 bytes of padding before the value.
			if len(v) != 12 {
				return PacketIn{}, bad()
			}
			pi.Cookie = be.Uint64(v[4:])
		case nxpintReason:
			if len(v) != 1 {
				return PacketIn{}, bad()
			}
			pi.Reason = v[0]
		case nxpintMetadata:
			m, err := decodeOXMList(v)
			if err != nil {
				return PacketIn{}, fmt.Errorf("packet-in2 metadata: %w", err)
			}
			pi.Match, haveMeta = m, true
		case nxpintUserdata:
			pi.Userdata = v
		case nxpintContinuation:
			pi.Continuation = v
		}
		p = p[padded:]
	}
	if !havePacket {
		return PacketIn{}, errors.New("packet-in2 without a packet")
	}
	if !haveFullLen {
		pi.TotalLen = uint16(min(len(pi.Data), 0xffff))
	}
	fm, ok := pi.Match.Get(FieldInPort)
	if !haveMeta || !ok || fm.HasMask {
		return PacketIn{}, errors.New("packet-in2: metadata has no exact in_port")
	}
	pi.InPort = uint32(fm.Value)
	return pi, nil
}

// decodeOXMList parses a list of OXM/NXM entries (a match without the
// ofp_match header) into a normalized Match, unknown entries as Field 0.
func decodeOXMList(p []byte) (Match, error) { return decodeOXMListInto(nil, p) }

// decodeOXMListInto is decodeOXMList reusing m's storage (nil: fresh).
func decodeOXMListInto(m Match, p []byte) (Match, error) {
	if m == nil {
		m = make(Match, 0, len(p)/8+1)
	}
	m = m[:0]
	for len(p) > 0 {
		e, hl, ok := parseOXMHeader(p)
		if !ok {
			return nil, fmt.Errorf("match field header: %w", errTruncated)
		}
		pl := e.payloadLen()
		if pl < 0 || hl+pl > len(p) {
			return nil, fmt.Errorf("match field 0x%08x: bad length %d", e.header, pl)
		}
		e.payload = p[hl : hl+pl]
		if f, v, mask, hasMask, ok := e.known(); ok {
			m = append(m, FieldMatch{Field: f, Value: v, Mask: mask, HasMask: hasMask})
		} else {
			m = append(m, unknownFieldMatch(e.header, p[:hl+pl]))
		}
		p = p[hl+pl:]
	}
	m.Normalize()
	return m, nil
}

// Resume makes the switch carry on with a packet that a pausing controller
// action (Controller.Pause) sent: an NXT_RESUME with the packet-in's frame
// (pi.Data, which the caller may have changed), its metadata and its
// continuation. Like PacketOut it returns once the message is written.
func (s *Switch) Resume(ctx context.Context, pi PacketIn) error {
	if len(pi.Continuation) == 0 {
		return fmt.Errorf("%s: resume: the packet-in has no continuation (its controller action did not pause)", s)
	}
	for _, fm := range pi.Match {
		if !validField(fm.Field) {
			return fmt.Errorf("%s: resume: metadata holds a field vpcflow cannot encode", s)
		}
	}
	if n := 64 + len(pi.Data) + len(pi.Continuation) + 24*len(pi.Match); n > maxMessageLen {
		return fmt.Errorf("%s: resume: message of about %d bytes exceeds the %d-byte limit", s, n, maxMessageLen)
	}
	xid := s.c.nextXIDs(1)
	err := s.c.send(ctx, func(mw *msgWriter) {
		mw.buf = appendResume(mw.buf[:0], xid, &pi)
		mw.put(mw.buf)
	})
	if err != nil {
		return fmt.Errorf("%s: resume: %w", s, err)
	}
	return nil
}

// appendResume appends an NXT_RESUME: the packet, the metadata (as OXM
// entries) and the continuation, each a padded property.
func appendResume(b []byte, xid uint32, pi *PacketIn) []byte {
	start := len(b)
	b = appendHeader(b, typeExperimenter, xid)
	b = appendU32(b, nxExperimenter)
	b = appendU32(b, nxtResume)
	b = appendProp(b, nxpintPacket, pi.Data)
	meta := make([]byte, 0, 24*len(pi.Match))
	for _, fm := range pi.Match {
		meta = appendOXM(meta, fm.Field, fm.Value, fm.Mask, fm.HasMask)
	}
	b = appendProp(b, nxpintMetadata, meta)
	b = appendProp(b, nxpintContinuation, pi.Continuation)
	setLength(b, start)
	return b
}

// setPacketInFormat2 sends NXT_SET_PACKET_IN_FORMAT(NXT_PACKET_IN2) without
// waiting: a refusal arrives as an error for its xid, which deliverError
// logs.
func (c *conn) setPacketInFormat2(ctx context.Context) error {
	xid := c.nextXIDs(1)
	c.packetInFormatXID.Store(xid)
	return c.send(ctx, func(mw *msgWriter) {
		mw.buf = appendSetPacketInFormat2(mw.buf[:0], xid)
		mw.put(mw.buf)
	})
}
