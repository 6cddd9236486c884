package openflow

import (
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

// PacketIn is an OFPT_PACKET_IN: a packet the switch sent to the
// controller.
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
	pi, err := decodePacketIn(m.body)
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
