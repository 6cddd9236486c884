package openflow

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// message is one framed OpenFlow message.
type message struct {
	version uint8
	typ     uint8
	xid     uint32
	body    []byte // after the 8-byte header
}

// errBadLength is returned by readMessage for a header whose length is
// below the header size.
var errBadLength = errors.New("message length below 8")

// readMessage reads one framed message.
func readMessage(r io.Reader) (message, error) {
	m, length, err := readHeader(r)
	if err != nil {
		return message{}, err
	}
	return readBody(r, m, length)
}

// readHeader reads and checks the 8-byte header; it returns the message
// without body and the total length.
func readHeader(r io.Reader) (message, int, error) {
	var hdr [headerLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return message{}, 0, err
	}
	length := int(be.Uint16(hdr[2:]))
	if length < headerLen {
		return message{}, 0, fmt.Errorf("%w: %d (type %d)", errBadLength, length, hdr[1])
	}
	return message{version: hdr[0], typ: hdr[1], xid: be.Uint32(hdr[4:])}, length, nil
}

// readBody reads the rest of a message whose header said length bytes.
func readBody(r io.Reader, m message, length int) (message, error) {
	if length > headerLen {
		m.body = make([]byte, length-headerLen)
		if _, err := io.ReadFull(r, m.body); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return message{}, fmt.Errorf("message body (type %d, length %d): %w", m.typ, length, err)
		}
	}
	return m, nil
}

// reply is what a waiter receives: the reply message (for multipart
// requests, the bodies of all parts after the multipart header), or the
// switch's error.
type reply struct {
	msg   message
	parts [][]byte
	err   *OFError
}

// waiter waits for the reply to one xid.
type waiter struct {
	multipart bool
	parts     [][]byte
	// stream, when set, gets a multipart reply's parts as they arrive
	// (parts stays empty); ch then gets the final reply without parts.
	stream *partQueue
	ch     chan reply // buffered, receives exactly once
}

// partQueue hands a multipart reply's parts from the reader to the
// requester as they arrive. It never blocks the reader: a requester that
// falls behind only lets parts pile up (as a whole reply would).
type partQueue struct {
	mu     sync.Mutex
	parts  [][]byte
	last   bool          // the final part is in parts (or was taken)
	notify chan struct{} // capacity 1: parts arrived
}

func newPartQueue() *partQueue { return &partQueue{notify: make(chan struct{}, 1)} }

func (q *partQueue) push(part []byte, last bool) {
	q.mu.Lock()
	q.parts = append(q.parts, part)
	q.last = q.last || last
	q.mu.Unlock()
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

// take returns the parts that arrived since the last take, and whether
// the final one is among them (or was taken before).
func (q *partQueue) take(buf [][]byte) ([][]byte, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	buf = append(buf[:0], q.parts...)
	clear(q.parts)
	q.parts = q.parts[:0]
	return buf, q.last
}

// errSink collects the errors for a range of xids (the flow mods of a
// batch), so a batch of 100k mods needs no per-mod bookkeeping.
type errSink struct {
	lo, n  uint32
	first0 int // the index in its batch of the mod sent with xid lo

	mu    sync.Mutex
	total int
	first []xidError // the first maxKeptErrors
}

type xidError struct {
	index int
	err   *OFError
}

const maxKeptErrors = 10

func (s *errSink) add(xid uint32, e *OFError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total++
	if len(s.first) < maxKeptErrors {
		s.first = append(s.first, xidError{index: s.first0 + int(xid-s.lo), err: e})
	}
}

func (s *errSink) result() (int, []xidError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total, append([]xidError(nil), s.first...)
}

// conn is one switch connection: an ordered reader, serialized writes,
// xid-matched requests and keepalive.
type conn struct {
	nc   net.Conn
	br   *bufio.Reader
	log  *zap.Logger
	opts ServerOptions

	wlock   chan struct{} // holds one token: serializes writes, waitable with a context
	bw      *bufio.Writer
	scratch []byte

	xid atomic.Uint32

	pmu     sync.Mutex
	pending map[uint32]*waiter
	sinks   []*errSink

	echoReplies chan []byte // from the reader to the keepalive goroutine
	echoesSeen  atomic.Uint64
	echo        echoProbe // the last keepalive echo, for Observer.EchoRTT

	// packetIns is set, before the reader starts, when the handler takes
	// packet-ins; nil otherwise.
	packetIns *packetInQueue
	// packetInFormatXID is the xid of our NXT_SET_PACKET_IN_FORMAT (0:
	// none sent), so that a switch's refusal is recognised.
	packetInFormatXID atomic.Uint32
	// roleStatus, set before the reader starts when the handler takes
	// role changes, gets the role status messages (role.go).
	roleStatus func(RoleStatus)

	closeOnce sync.Once
	done      chan struct{}
	closeErr  error // set before done is closed
}

const ioBufferSize = 64 << 10

func newConn(nc net.Conn, log *zap.Logger, opts ServerOptions) *conn {
	return &conn{
		nc:          nc,
		br:          bufio.NewReaderSize(nc, ioBufferSize),
		bw:          bufio.NewWriterSize(nc, ioBufferSize),
		log:         log,
		opts:        opts,
		pending:     make(map[uint32]*waiter),
		echoReplies: make(chan []byte, 16),
		done:        make(chan struct{}),
		wlock:       make(chan struct{}, 1),
	}
}

// lockWrite takes the write lock, giving up when ctx ends or the
// connection closes.
func (c *conn) lockWrite(ctx context.Context) error {
	select {
	case c.wlock <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
		return c.closedError()
	}
}

func (c *conn) unlockWrite() { <-c.wlock }

// close closes the connection once, recording why.
func (c *conn) close(why error) {
	c.closeOnce.Do(func() {
		c.closeErr = why
		close(c.done)
		_ = c.nc.Close()
	})
}

// closedError describes why the connection is closed.
func (c *conn) closedError() error {
	<-c.done
	if c.closeErr == nil {
		return ErrClosed
	}
	return fmt.Errorf("%w: %w", ErrClosed, c.closeErr)
}

func (c *conn) isClosed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// nextXIDs reserves n consecutive xids and returns the first.
func (c *conn) nextXIDs(n uint32) uint32 {
	return c.xid.Add(n) - n + 1
}

// register prepares to receive the reply to xid; call it before sending.
func (c *conn) register(xid uint32, multipart bool) *waiter {
	w := &waiter{multipart: multipart, ch: make(chan reply, 1)}
	c.pmu.Lock()
	c.pending[xid] = w
	c.pmu.Unlock()
	return w
}

func (c *conn) unregister(xid uint32) {
	c.pmu.Lock()
	delete(c.pending, xid)
	c.pmu.Unlock()
}

// addSink collects the errors of the n messages sent with xids from lo,
// the mods of a batch from its first0-th.
func (c *conn) addSink(lo, n uint32, first0 int) *errSink {
	s := &errSink{lo: lo, n: n, first0: first0}
	c.pmu.Lock()
	c.sinks = append(c.sinks, s)
	c.pmu.Unlock()
	return s
}

func (c *conn) removeSink(s *errSink) {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	for i, x := range c.sinks {
		if x == s {
			c.sinks = append(c.sinks[:i], c.sinks[i+1:]...)
			return
		}
	}
}

// wait waits for the reply to xid, the context, or the connection closing.
func (c *conn) wait(ctx context.Context, xid uint32, w *waiter) (reply, error) {
	select {
	case r := <-w.ch:
		return r, nil
	case <-ctx.Done():
		c.unregister(xid)
		return reply{}, ctx.Err()
	case <-c.done:
		select {
		case r := <-w.ch:
			return r, nil
		default:
		}
		c.unregister(xid)
		return reply{}, c.closedError()
	}
}

// msgWriter streams encoded messages into the connection's buffer.
type msgWriter struct {
	bw   *bufio.Writer
	buf  []byte // scratch for encoding one message
	err  error
	sent *sentCounts // messages by kind, when an Observer listens
}

func (w *msgWriter) put(b []byte) {
	if w.err == nil {
		_, w.err = w.bw.Write(b)
		if w.sent != nil {
			w.sent.add(b)
		}
	}
}

// send writes the messages produced by fill and flushes once. Writes are
// serialized; the context's deadline or cancellation aborts a write. A
// failed write may have left half a message on the wire, so it closes the
// connection.
//
// The socket gets no write deadline of its own: only the context ends a
// write. A deadline copied from ctx.Deadline() would race with the
// context's own timer — the socket's deadline can fire first, and the
// caller would then see "i/o timeout" with ctx.Err() still nil instead of
// context.DeadlineExceeded. The AfterFunc below runs only once ctx is
// done (ctx.Err() is set by then), so a write it aborts always reports the
// context's error.
func (c *conn) send(ctx context.Context, fill func(w *msgWriter)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := c.lockWrite(ctx); err != nil {
		return err
	}
	defer c.unlockWrite()
	if c.isClosed() {
		return c.closedError()
	}
	// Clear whatever deadline sendControl left.
	if err := c.nc.SetWriteDeadline(time.Time{}); err != nil {
		return fmt.Errorf("set write deadline: %w", err)
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(fired)
		_ = c.nc.SetWriteDeadline(time.Unix(1, 0))
	})
	w := &msgWriter{bw: c.bw, buf: c.scratch[:0]}
	if c.opts.Observer != nil {
		w.sent = &sentCounts{}
		defer w.sent.report(c.opts.Observer)
	}
	fill(w)
	if w.err == nil {
		w.err = c.bw.Flush()
	}
	c.scratch = w.buf[:0]
	if !stop() {
		<-fired // do not let it touch the deadline of a later write
	}
	if w.err != nil {
		c.close(fmt.Errorf("write: %w", w.err))
		if ctx.Err() != nil {
			return fmt.Errorf("write to switch: %w", ctx.Err())
		}
		return fmt.Errorf("write to switch: %w", w.err)
	}
	return nil
}

// sendControl writes one small message with a fixed timeout (keepalive).
func (c *conn) sendControl(b []byte) {
	if c.lockWrite(context.Background()) != nil {
		return
	}
	defer c.unlockWrite()
	if c.isClosed() {
		return
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.opts.EchoTimeout))
	_, err := c.bw.Write(b)
	if err == nil {
		err = c.bw.Flush()
	}
	if err != nil {
		c.close(fmt.Errorf("write: %w", err))
		return
	}
	if c.opts.Observer != nil {
		c.opts.Observer.Messages(false, kindNames[messageKind(b[1], b[headerLen:])], 1)
	}
}

// request sends one message built by enc and waits for its reply.
func (c *conn) request(ctx context.Context, multipart bool, enc func(b []byte, xid uint32) []byte) (reply, error) {
	xid := c.nextXIDs(1)
	w := c.register(xid, multipart)
	err := c.send(ctx, func(mw *msgWriter) {
		mw.buf = enc(mw.buf[:0], xid)
		mw.put(mw.buf)
	})
	if err != nil {
		c.unregister(xid)
		return reply{}, err
	}
	return c.wait(ctx, xid, w)
}

// readLoop reads and dispatches messages in order until the connection
// fails or closes. A switch that sends nothing (not even an echo reply)
// for EchoTimeout is considered dead.
func (c *conn) readLoop() {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("panic in switch reader", zap.Any("panic", p), zap.Stack("stack"))
			c.close(fmt.Errorf("reader panic: %v", p))
		}
	}()
	for {
		if err := c.nc.SetReadDeadline(time.Now().Add(c.opts.EchoTimeout)); err != nil {
			c.close(fmt.Errorf("set read deadline: %w", err))
			return
		}
		m, err := readMessage(c.br)
		if err != nil {
			c.logReadError(err)
			c.close(fmt.Errorf("read: %w", err))
			return
		}
		c.observeReceived(m)
		c.dispatch(m)
	}
}

func (c *conn) logReadError(err error) {
	var ne net.Error
	switch {
	case c.isClosed():
	case errors.Is(err, io.EOF):
		c.log.Info("switch closed the connection")
	case errors.As(err, &ne) && ne.Timeout():
		c.log.Warn("switch silent for too long, closing", zap.Duration("echo_timeout", c.opts.EchoTimeout))
	case errors.Is(err, errBadLength):
		c.log.Warn("malformed message from switch, closing", zap.Error(err))
	default:
		c.log.Warn("reading from switch failed, closing", zap.Error(err))
	}
}

// dispatch handles one message on the reader goroutine. It never blocks on
// writes: echo replies are handed to the keepalive goroutine.
func (c *conn) dispatch(m message) {
	if m.version != Version {
		c.log.Debug("ignoring message with other version", zap.Uint8("version", m.version), zap.Uint8("type", m.typ))
		return
	}
	switch m.typ {
	case typeEchoRequest:
		c.echoesSeen.Add(1)
		select {
		case c.echoReplies <- simpleMessage(typeEchoReply, m.xid, m.body):
		default:
			c.log.Warn("dropping echo reply: keepalive writer is behind")
		}
	case typeError:
		c.deliverError(m)
	case typeBarrierReply, typeFeaturesReply, typeRoleReply:
		c.deliver(m, reply{msg: m})
	case typeEchoReply:
		// Echo requests of the keepalive have no waiter; those of Echo do.
		c.pmu.Lock()
		w := c.pending[m.xid]
		c.pmu.Unlock()
		if w != nil {
			c.deliver(m, reply{msg: m})
		}
	case typeMultipartReply:
		c.deliverMultipart(m)
	case typeExperimenter:
		if _, _, ok := bundleControlReply(m.body); ok {
			c.deliver(m, reply{msg: m})
			return
		}
		if isPacketIn2(m.body) {
			c.handlePacketIn(m)
			return
		}
		if isRoleStatus(m.body) {
			c.handleRoleStatus(m)
			return
		}
		c.log.Debug("ignoring experimenter message", zap.Int("len", len(m.body)))
	case typePacketIn:
		c.handlePacketIn(m)
	case typeHello, typeFlowRemoved, typePortStatus:
		c.log.Debug("ignoring message", zap.Uint8("type", m.typ), zap.Uint32("xid", m.xid))
	default:
		c.log.Debug("ignoring unknown message type", zap.Uint8("type", m.typ), zap.Uint32("xid", m.xid))
	}
}

// deliver completes the waiter for m.xid, if any.
func (c *conn) deliver(m message, r reply) {
	c.pmu.Lock()
	w := c.pending[m.xid]
	if w != nil {
		delete(c.pending, m.xid)
	}
	c.pmu.Unlock()
	if w == nil {
		c.log.Debug("reply nobody waits for", zap.Uint8("type", m.typ), zap.Uint32("xid", m.xid))
		return
	}
	w.ch <- r
}

func (c *conn) deliverMultipart(m message) {
	c.pmu.Lock()
	w := c.pending[m.xid]
	if w == nil || !w.multipart {
		c.pmu.Unlock()
		c.log.Debug("multipart reply nobody waits for", zap.Uint32("xid", m.xid))
		return
	}
	if len(m.body) < multipartHdrLen-headerLen {
		delete(c.pending, m.xid)
		c.pmu.Unlock()
		c.log.Warn("short multipart reply", zap.Int("len", len(m.body)))
		w.ch <- reply{msg: m, err: &OFError{Type: 0xfffe, Data: m.body}}
		return
	}
	part := m.body[multipartHdrLen-headerLen:]
	more := be.Uint16(m.body[2:])&multipartReplyMore != 0
	if w.stream == nil {
		w.parts = append(w.parts, part)
	}
	if !more {
		delete(c.pending, m.xid)
	}
	c.pmu.Unlock()
	if w.stream != nil {
		w.stream.push(part, !more)
	}
	if !more {
		w.ch <- reply{msg: m, parts: w.parts}
	}
}

// requestStream sends one multipart request built by enc and calls fn
// with each reply part's body, in order, as it arrives, on the caller's
// goroutine. It returns once the last part was handled, at fn's first
// error, or when the switch answers with an error, ctx ends or the
// connection closes.
func (c *conn) requestStream(ctx context.Context, enc func(b []byte, xid uint32) []byte, fn func(part []byte) error) error {
	xid := c.nextXIDs(1)
	q := newPartQueue()
	w := &waiter{multipart: true, stream: q, ch: make(chan reply, 1)}
	c.pmu.Lock()
	c.pending[xid] = w
	c.pmu.Unlock()
	err := c.send(ctx, func(mw *msgWriter) {
		mw.buf = enc(mw.buf[:0], xid)
		mw.put(mw.buf)
	})
	if err != nil {
		c.unregister(xid)
		return err
	}
	var buf [][]byte
	for {
		parts, last := q.take(buf)
		for _, p := range parts {
			if err := fn(p); err != nil {
				c.unregister(xid)
				return err
			}
		}
		clear(parts)
		buf = parts
		if last {
			return nil
		}
		select {
		case <-q.notify:
		case r := <-w.ch:
			if r.err != nil {
				return r.err
			}
			// The last part was pushed before this reply: take it next.
			select {
			case q.notify <- struct{}{}:
			default:
			}
		case <-ctx.Done():
			c.unregister(xid)
			return ctx.Err()
		case <-c.done:
			c.unregister(xid)
			// Parts that arrived before the close are still handed over.
			if parts, last := q.take(nil); last {
				for _, p := range parts {
					if err := fn(p); err != nil {
						return err
					}
				}
				return nil
			}
			return c.closedError()
		}
	}
}

func (c *conn) deliverError(m message) {
	e := parseError(m.body)
	c.pmu.Lock()
	w := c.pending[m.xid]
	if w != nil {
		delete(c.pending, m.xid)
		c.pmu.Unlock()
		w.ch <- reply{msg: m, err: e}
		return
	}
	if x := c.packetInFormatXID.Load(); x != 0 && m.xid == x {
		c.pmu.Unlock()
		c.log.Info("switch refused NXT_PACKET_IN2; its packet-ins carry no controller userdata", zap.String("error", e.Error()))
		return
	}
	var sink *errSink
	for _, s := range c.sinks {
		if m.xid-s.lo < s.n {
			sink = s
			break
		}
	}
	c.pmu.Unlock()
	if sink != nil {
		sink.add(m.xid, e)
		return
	}
	c.log.Warn("error from switch for no pending request", zap.Uint32("xid", m.xid), zap.String("error", e.Error()))
}

// keepalive sends echo requests every EchoInterval and writes the echo
// replies the reader queued, until the connection closes.
func (c *conn) keepalive() {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("panic in switch keepalive", zap.Any("panic", p), zap.Stack("stack"))
			c.close(fmt.Errorf("keepalive panic: %v", p))
		}
	}()
	t := time.NewTicker(c.opts.EchoInterval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case b := <-c.echoReplies:
			c.sendControl(b)
		case <-t.C:
			xid := c.nextXIDs(1)
			c.observeEchoSent(xid)
			c.sendControl(simpleMessage(typeEchoRequest, xid, nil))
		}
	}
}
