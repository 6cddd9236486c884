package openflow

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Handler receives switch lifecycle events from a Server. A Handler that
// also implements PacketInHandler receives the switches' packet-ins.
type Handler interface {
	// SwitchConnected is called after the handshake, in its own goroutine;
	// it may block (e.g. to reconcile). ctx is cancelled when the switch
	// disconnects or the server stops.
	SwitchConnected(ctx context.Context, sw *Switch)
	// SwitchDisconnected is called once per connected switch, after its
	// connection closed and its SwitchConnected call returned. When a
	// switch reconnects with the same datapath id, the old connection is
	// closed and its SwitchDisconnected returns before the new
	// connection's SwitchConnected is called.
	SwitchDisconnected(sw *Switch)
}

// ServerOptions tunes a Server. Zero values take the defaults.
type ServerOptions struct {
	// HandshakeTimeout bounds HELLO + FEATURES (default 10s).
	HandshakeTimeout time.Duration
	// EchoInterval is how often the controller sends echo requests
	// (default 5s).
	EchoInterval time.Duration
	// EchoTimeout closes a connection on which nothing, not even an echo
	// reply, arrived for this long (default 15s).
	EchoTimeout time.Duration
	// PacketInQueue is how many packet-ins per switch may wait for the
	// PacketInHandler before further ones are dropped (default 256).
	PacketInQueue int
	// MaxHandshakes caps the connections that have not finished their
	// handshake; further ones are closed at once (default 256; negative:
	// no cap). Connected switches do not count.
	MaxHandshakes int
	// MaxHandshakesPerSource caps them per remote address (default 32;
	// negative: no cap).
	MaxHandshakesPerSource int
	// MaxAcceptBackoff is the longest wait before accepting again after
	// an accept error such as EMFILE (default 1s).
	MaxAcceptBackoff time.Duration
	// Observer, when set, is told about connections, messages, errors and
	// echo round trips (metrics).
	Observer Observer
}

func (o ServerOptions) withDefaults() ServerOptions {
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = 10 * time.Second
	}
	if o.EchoInterval <= 0 {
		o.EchoInterval = 5 * time.Second
	}
	if o.EchoTimeout <= 0 {
		o.EchoTimeout = 15 * time.Second
	}
	if o.PacketInQueue <= 0 {
		o.PacketInQueue = 256
	}
	if o.MaxHandshakes == 0 {
		o.MaxHandshakes = 256
	}
	if o.MaxHandshakesPerSource == 0 {
		o.MaxHandshakesPerSource = 32
	}
	if o.MaxAcceptBackoff <= 0 {
		o.MaxAcceptBackoff = time.Second
	}
	return o
}

// Server accepts OpenFlow 1.3 connections from switches.
type Server struct {
	log  *zap.Logger
	h    Handler
	opts ServerOptions

	mu       sync.Mutex
	switches map[uint64]*Switch // by datapath id, after the handshake
	conns    map[*conn]struct{} // every open connection
	wg       sync.WaitGroup

	admission *admission      // connections in their handshake
	warnings  *rateLimitedLog // handshake failures and refusals
	addrs     *regexp.Regexp  // addresses in error texts (see errorClass)
}

// NewServer returns a server that reports switches to h.
func NewServer(log *zap.Logger, h Handler, opts ServerOptions) *Server {
	s := &Server{
		log:      log,
		h:        h,
		opts:     opts.withDefaults(),
		switches: make(map[uint64]*Switch),
		conns:    make(map[*conn]struct{}),
	}
	s.admission = newAdmission(s.opts.MaxHandshakes, s.opts.MaxHandshakesPerSource)
	s.warnings = newRateLimitedLog(10*time.Second, 5)
	s.addrs = addrPattern()
	return s
}

// HandshakeStats are the connections in their handshake now and those
// refused so far because too many were.
func (s *Server) HandshakeStats() (pending int, refused uint64) { return s.admission.counts() }

// Serve accepts switch connections on ln until ctx is done (it then returns
// nil) or ln is closed by someone else. A failed accept (too many open
// files, …) is retried after a growing pause (up to MaxAcceptBackoff), so
// a flood never stops the listener; connections beyond the handshake caps
// are closed at once. Before returning it closes ln and every switch
// connection, and waits for their handler calls to return.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer func() {
		stop()
		cancel()
		_ = ln.Close()
		s.closeAll()
		s.wg.Wait()
	}()
	failures := 0
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("accept switch connection: %w", err)
			}
			failures++
			wait := acceptBackoff(failures, s.opts.MaxAcceptBackoff)
			if s.warnings.allow(s.log, "accept") {
				s.log.Warn("accepting a switch connection failed; retrying", zap.Error(err), zap.Duration("in", wait))
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
			continue
		}
		failures = 0
		src := sourceOf(nc.RemoteAddr())
		if ok, why := s.admission.admit(src); !ok {
			_ = nc.Close()
			if s.warnings.allow(s.log, "refused") {
				pending, refused := s.admission.counts()
				s.log.Warn("switch connection refused", zap.String("remote", src), zap.String("reason", why),
					zap.Int("handshakes", pending), zap.Uint64("refused_total", refused))
			}
			continue
		}
		s.wg.Add(1)
		go s.serveConn(ctx, nc, src)
	}
}

// Switches returns the switches connected now.
func (s *Server) Switches() []*Switch {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Switch, 0, len(s.switches))
	for _, sw := range s.switches {
		out = append(out, sw)
	}
	return out
}

func (s *Server) closeAll() {
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.close(errors.New("server stopped"))
	}
}

// serveConn runs one connection: handshake, registration, reader, and the
// handler calls.
func (s *Server) serveConn(ctx context.Context, nc net.Conn, src string) {
	defer s.wg.Done()
	admitted := true
	release := func() {
		if admitted {
			admitted = false
			s.admission.done(src)
		}
	}
	defer release()
	log := s.log.With(zap.String("remote", nc.RemoteAddr().String()))
	c := newConn(nc, log, s.opts)
	defer func() {
		if p := recover(); p != nil {
			log.Error("panic serving switch", zap.Any("panic", p), zap.Stack("stack"))
			c.close(fmt.Errorf("panic: %v", p))
		}
	}()
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	if ctx.Err() != nil { // Serve is returning; closeAll may have missed us
		c.close(ctx.Err())
		return
	}

	dpid, err := c.handshake(ctx, s.opts.HandshakeTimeout)
	release()
	if err != nil {
		if s.warnings.allow(s.log, "switch handshake failed from "+src+": "+errorClass(s.addrs, err)) {
			log.Warn("switch handshake failed", zap.Error(err))
		}
		c.close(fmt.Errorf("handshake: %w", err))
		if s.opts.Observer != nil {
			s.opts.Observer.HandshakeFailed()
		}
		return
	}
	if s.opts.Observer != nil {
		s.opts.Observer.SwitchConnected(dpid)
		defer s.opts.Observer.SwitchDisconnected(dpid)
	}
	c.log = log.With(zap.String("dpid", fmt.Sprintf("%016x", dpid)))
	sw := &Switch{c: c, dpid: dpid, remote: nc.RemoteAddr().String(), connectedAt: time.Now(), gone: make(chan struct{})}
	defer close(sw.gone)

	// Packet-ins are delivered from their own goroutine, from when
	// SwitchConnected is called until the connection closes.
	startPacketIns := make(chan struct{})
	packetInsDone := make(chan struct{})
	if pih, ok := s.h.(PacketInHandler); ok {
		c.packetIns = newPacketInQueue(s.opts.PacketInQueue)
		go func() {
			defer close(packetInsDone)
			c.deliverPacketIns(sw, pih, startPacketIns)
		}()
	} else {
		close(packetInsDone)
	}

	s.mu.Lock()
	old := s.switches[dpid]
	s.switches[dpid] = sw
	s.mu.Unlock()

	swCtx, cancel := context.WithCancel(ctx)
	go func() { // cancel the switch's context as soon as the connection closes
		select {
		case <-c.done:
		case <-swCtx.Done():
		}
		cancel()
	}()
	connectedDone := make(chan struct{})
	called := false // written before connectedDone closes
	go func() {
		defer close(connectedDone)
		defer func() {
			if p := recover(); p != nil {
				c.log.Error("panic in SwitchConnected", zap.Any("panic", p), zap.Stack("stack"))
			}
		}()
		if old != nil {
			c.log.Info("switch reconnected; closing its old connection", zap.String("old_remote", old.remote))
			old.c.close(errors.New("replaced by a new connection from the same datapath"))
			<-old.gone
		}
		if swCtx.Err() != nil {
			return
		}
		if c.packetIns != nil {
			// Ask for NXT_PACKET_IN2, the only packet-in that carries a
			// controller action's userdata. Switches handle messages in
			// order, so every flow the handler installs from now on sends
			// packet-in2s; a switch that refuses keeps sending
			// OFPT_PACKET_IN, which is decoded as before.
			if err := c.setPacketInFormat2(swCtx); err != nil {
				c.log.Warn("asking for NXT_PACKET_IN2 failed", zap.Error(err))
			}
		}
		c.log.Info("switch connected")
		called = true
		close(startPacketIns)
		s.h.SwitchConnected(swCtx, sw)
	}()
	go c.keepalive()

	c.readLoop()
	cancel()
	<-connectedDone
	<-packetInsDone

	s.mu.Lock()
	if s.switches[dpid] == sw {
		delete(s.switches, dpid)
	}
	s.mu.Unlock()
	c.log.Info("switch disconnected", zap.NamedError("reason", c.closeErr))
	if !called {
		return
	}
	func() {
		defer func() {
			if p := recover(); p != nil {
				c.log.Error("panic in SwitchDisconnected", zap.Any("panic", p), zap.Stack("stack"))
			}
		}()
		s.h.SwitchDisconnected(sw)
	}()
}
