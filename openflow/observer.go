package openflow

import (
	"strings"
	"sync/atomic"
	"time"
)

// Observer is told what the connection layer does, for metrics
// (ServerOptions.Observer; nil means nobody listens). Its methods are
// called on the connections' own goroutines: they must be quick, must not
// block and must be safe for concurrent use.
type Observer interface {
	// SwitchConnected: a switch finished its handshake.
	SwitchConnected(dpid uint64)
	// SwitchDisconnected: a connected switch's connection closed.
	SwitchDisconnected(dpid uint64)
	// HandshakeFailed: a connection closed before its handshake finished.
	HandshakeFailed()
	// Messages: n messages of kind (MessageKinds) were received (in) or
	// sent.
	Messages(in bool, kind string, n int)
	// Error: the switch sent an OFPT_ERROR of this type (an OFPET_ name
	// in lower case without the prefix: "bad_action", or "experimenter").
	Error(errType string)
	// EchoRTT: the round trip of a keepalive echo.
	EchoRTT(rtt time.Duration)
}

// Message kinds, as Observer.Messages names them.
const (
	kindHello = iota
	kindError
	kindEchoRequest
	kindEchoReply
	kindExperimenter
	kindFeaturesRequest
	kindFeaturesReply
	kindPacketIn
	kindFlowRemoved
	kindPortStatus
	kindPacketOut
	kindFlowMod
	kindMultipartRequest
	kindMultipartReply
	kindBarrierRequest
	kindBarrierReply
	kindBundleControl
	kindBundleAdd
	kindPacketIn2
	kindOther
	kindCount
)

var kindNames = [kindCount]string{
	"hello", "error", "echo_request", "echo_reply", "experimenter", "features_request",
	"features_reply", "packet_in", "flow_removed", "port_status", "packet_out", "flow_mod",
	"multipart_request", "multipart_reply", "barrier_request", "barrier_reply",
	"bundle_control", "bundle_add", "packet_in2", "other",
}

// MessageKinds lists every kind Observer.Messages may name.
func MessageKinds() []string { return append([]string(nil), kindNames[:]...) }

var kindOfType = map[uint8]int{
	typeHello: kindHello, typeError: kindError, typeEchoRequest: kindEchoRequest,
	typeEchoReply: kindEchoReply, typeFeaturesRequest: kindFeaturesRequest,
	typeFeaturesReply: kindFeaturesReply, typePacketIn: kindPacketIn, typeFlowRemoved: kindFlowRemoved,
	typePortStatus: kindPortStatus, typePacketOut: kindPacketOut, typeFlowMod: kindFlowMod,
	typeMultipartReq: kindMultipartRequest, typeMultipartReply: kindMultipartReply,
	typeBarrierRequest: kindBarrierRequest, typeBarrierReply: kindBarrierReply,
}

// messageKind classifies a message by its type and, for experimenter
// messages, by what they carry (bundles, packet-in2).
func messageKind(typ uint8, body []byte) int {
	if typ == typeExperimenter {
		if len(body) >= 8 {
			exp, sub := be.Uint32(body), be.Uint32(body[4:])
			switch {
			case exp == onfExperimenter && sub == onfBundleControl:
				return kindBundleControl
			case exp == onfExperimenter && sub == onfBundleAdd:
				return kindBundleAdd
			case exp == nxExperimenter && sub == nxtPacketIn2:
				return kindPacketIn2
			}
		}
		return kindExperimenter
	}
	if k, ok := kindOfType[typ]; ok {
		return k
	}
	return kindOther
}

// ErrorTypeName is the name of an OFPT_ERROR type as Observer.Error gives
// it: "bad_action" for OFPET_BAD_ACTION.
func ErrorTypeName(t uint16) string {
	if t == 0xffff {
		return "experimenter"
	}
	if n, ok := errorTypeNames[t]; ok {
		return strings.ToLower(strings.TrimPrefix(n, "OFPET_"))
	}
	return "unknown"
}

// sentCounts counts the messages of one write by kind, reported once the
// write is done (a bundle of 100k flow-mods is one report, not 100k).
type sentCounts [kindCount]int

func (s *sentCounts) add(b []byte) {
	if len(b) >= headerLen {
		s[messageKind(b[1], b[headerLen:])]++
	}
}

func (s *sentCounts) report(o Observer) {
	for k, n := range s {
		if n > 0 {
			o.Messages(false, kindNames[k], n)
		}
	}
}

// echoProbe remembers the last keepalive echo sent, to time its reply.
type echoProbe struct {
	xid  atomic.Uint32
	sent atomic.Int64 // unix nanoseconds
}

// observeSent is called by the keepalive after writing echo xid.
func (c *conn) observeEchoSent(xid uint32) {
	if c.opts.Observer == nil {
		return
	}
	c.echo.sent.Store(time.Now().UnixNano())
	c.echo.xid.Store(xid)
}

// observeReceived reports a message read from the switch.
func (c *conn) observeReceived(m message) {
	o := c.opts.Observer
	if o == nil {
		return
	}
	o.Messages(true, kindNames[messageKind(m.typ, m.body)], 1)
	switch m.typ {
	case typeError:
		t := uint16(0xfffe)
		if len(m.body) >= 2 {
			t = be.Uint16(m.body)
		}
		o.Error(ErrorTypeName(t))
	case typeEchoReply:
		if x := c.echo.xid.Load(); x != 0 && x == m.xid {
			o.EchoRTT(time.Duration(time.Now().UnixNano() - c.echo.sent.Load()))
		}
	}
}
