package openflow

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"regexp"
	"sync"
	"sync/atomic"
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
	// connection closed and its SwitchConnected call returned. A new
	// connection with the datapath id of a connected switch replaces it
	// only when the old one no longer answers an echo (see claim); the old
	// connection is then closed and its SwitchDisconnected returns before
	// the new connection's SwitchConnected is called. A refused claimant
	// is never reported.
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
	// ClaimProbeTimeout bounds the echo sent to a connected switch when
	// another connection claims its datapath id (default 3s): the
	// established connection is kept if it answers in time.
	ClaimProbeTimeout time.Duration
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
	if o.ClaimProbeTimeout <= 0 {
		o.ClaimProbeTimeout = 3 * time.Second
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
	// claiming marks the dpids whose established connection is being
	// probed because another connection claims them.
	claiming map[uint64]bool
	// certs binds a dpid to the TLS certificate (SHA-256 of the leaf)
	// that first presented it; other certificates claiming it are refused.
	// The handler's (CertificateBinder) or the server's own in memory.
	certs     CertificateBinder
	conflicts atomic.Uint64

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
		claiming: make(map[uint64]bool),
	}
	if b, ok := h.(CertificateBinder); ok {
		s.certs = b
	} else {
		s.certs = &memoryBinder{bound: make(map[uint64][sha256.Size]byte)}
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
	// Nothing is sent to the switch, nor read from it, before its claim
	// on the dpid is accepted.
	if cert := peerCertificate(nc); cert != nil {
		sum := sha256.Sum256(cert)
		sw.cert = &sum
	}
	old, ok := s.claim(ctx, sw)
	if !ok {
		c.close(errors.New("datapath id already connected"))
		return
	}

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

	if rh, ok := s.h.(RoleStatusHandler); ok {
		c.roleStatus = func(st RoleStatus) { rh.SwitchRoleStatus(sw, st) }
	}

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
			// claim closed it: it did not answer.
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

// A connection that finishes its handshake claims a datapath id. It does
// not silently win over one that is connected with that id (a hostile or
// misconfigured peer could otherwise take a bridge's place, receive its
// flows, and keep the real bridge off by reconnecting): the established
// connection is asked for an echo, and kept if it answers within
// ClaimProbeTimeout; the claimant is then refused, logged and counted
// (DPIDConflicts), and gets nothing. Only an established connection that
// does not answer is replaced. Over TLS a dpid is bound to the certificate
// that first presented it and won its claim (CertificateBinder: in the
// handler's keeping, else in memory for as long as the server runs);
// another certificate claiming it is refused before its claim is weighed,
// even when the dpid is not connected.
// Over plain TCP nothing proves who a switch is: the network is trusted.

// DPIDConflicts is the number of connections refused because they claimed
// the datapath id of a connected switch that still answered, or one bound
// to another TLS certificate.
func (s *Server) DPIDConflicts() uint64 { return s.conflicts.Load() }

// claim registers sw as the connection of its dpid, or refuses it (false).
// It returns the connection sw replaces, which it has closed.
func (s *Server) claim(ctx context.Context, sw *Switch) (*Switch, bool) {
	dpid := sw.dpid
	refuse := func(why string, fields ...zap.Field) (*Switch, bool) {
		n := s.conflicts.Add(1)
		if s.warnings.allow(s.log, fmt.Sprintf("dpid conflict %016x", dpid)) {
			s.log.Warn("refused a connection claiming the datapath id of another switch: "+why,
				append(fields, zap.String("dpid", fmt.Sprintf("%016x", dpid)), zap.String("remote", sw.remote),
					zap.Uint64("conflicts_total", n))...)
		}
		return nil, false
	}
	bound := false
	if sw.cert != nil {
		fp, ok, err := s.certs.BoundCertificate(ctx, dpid)
		switch {
		case err != nil:
			return refuse("its TLS certificate's binding could not be read", zap.Error(err),
				zap.String("presented_certificate_sha256", sw.CertificateSHA256()))
		case ok && fp != *sw.cert:
			return refuse("the datapath id is bound to another TLS certificate",
				zap.String("bound_certificate_sha256", hex.EncodeToString(fp[:])),
				zap.String("presented_certificate_sha256", sw.CertificateSHA256()))
		}
		bound = ok
	}
	old, ok := s.weigh(ctx, sw, refuse)
	if !ok || sw.cert == nil || bound {
		return old, ok
	}
	// First use, once the claim is won: a claim that loses (to a
	// connected switch that answers, over TLS or plain TCP) binds nothing.
	fp, err := s.certs.BindCertificate(ctx, dpid, *sw.cert, sw.remote)
	if err == nil && fp == *sw.cert {
		return old, true
	}
	s.mu.Lock()
	if s.switches[dpid] == sw {
		delete(s.switches, dpid)
	}
	s.mu.Unlock()
	if err != nil {
		return refuse("its TLS certificate could not be bound to it", zap.Error(err),
			zap.String("presented_certificate_sha256", sw.CertificateSHA256()))
	}
	return refuse("the datapath id was bound to another TLS certificate meanwhile",
		zap.String("bound_certificate_sha256", hex.EncodeToString(fp[:])),
		zap.String("presented_certificate_sha256", sw.CertificateSHA256()))
}

// weigh registers sw as the connection of its dpid unless a connected
// switch with that dpid still answers (then it refuses, false). It
// returns the connection sw replaces, which it has closed.
func (s *Server) weigh(ctx context.Context, sw *Switch, refuse func(why string, fields ...zap.Field) (*Switch, bool)) (*Switch, bool) {
	dpid := sw.dpid
	s.mu.Lock()
	old := s.switches[dpid]
	if old == nil {
		s.switches[dpid] = sw
		s.mu.Unlock()
		return nil, true
	}
	if s.claiming[dpid] {
		s.mu.Unlock()
		return refuse("another connection's claim is being checked", zap.String("connected_remote", old.remote))
	}
	s.claiming[dpid] = true
	s.mu.Unlock()

	pctx, cancel := context.WithTimeout(ctx, s.opts.ClaimProbeTimeout)
	err := old.c.sendEcho(pctx)
	cancel()

	s.mu.Lock()
	delete(s.claiming, dpid)
	cur := s.switches[dpid]
	switch {
	case ctx.Err() != nil:
		s.mu.Unlock()
		return nil, false
	case cur != nil && cur != old:
		s.mu.Unlock()
		return refuse("another connection took it meanwhile", zap.String("connected_remote", cur.remote))
	case cur == old && err == nil:
		s.mu.Unlock()
		return refuse("the connected switch still answers", zap.String("connected_remote", old.remote))
	}
	s.switches[dpid] = sw
	s.mu.Unlock()
	sw.c.log.Info("switch reconnected; its old connection did not answer and is closed",
		zap.String("old_remote", old.remote), zap.NamedError("echo", err))
	old.c.close(errors.New("replaced by a new connection from the same datapath (this one did not answer an echo)"))
	return old, true
}

// peerCertificate is the DER of the certificate a TLS peer presented, nil
// over plain TCP.
func peerCertificate(nc net.Conn) []byte {
	tc, ok := nc.(interface{ ConnectionState() tls.ConnectionState })
	if !ok {
		return nil
	}
	st := tc.ConnectionState()
	if len(st.PeerCertificates) == 0 {
		return nil
	}
	return st.PeerCertificates[0].Raw
}
