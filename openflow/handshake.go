package openflow

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// OFPET_HELLO_FAILED / OFPHFC_INCOMPATIBLE.
const (
	maxHelloLen              = 1024
	errTypeHelloFailed       = 0
	errCodeHelloIncompatible = 0
)

// handshake exchanges HELLOs, negotiates OpenFlow 1.3 and asks for the
// datapath id. It runs before the reader goroutine starts and is bounded by
// timeout and ctx.
func (c *conn) handshake(ctx context.Context, timeout time.Duration) (uint64, error) {
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := c.nc.SetDeadline(deadline); err != nil {
		return 0, fmt.Errorf("set deadline: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if _, err := c.nc.Write(encodeHello(c.nextXIDs(1))); err != nil {
		return 0, fmt.Errorf("send hello: %w", err)
	}
	// Check the header before waiting for a body, so that a peer that is
	// not an OpenFlow switch is turned away at once.
	m, length, err := readHeader(c.br)
	if err != nil {
		return 0, fmt.Errorf("read hello: %w", err)
	}
	if m.typ != typeHello || m.version == 0 || length > maxHelloLen {
		return 0, fmt.Errorf("not an OpenFlow hello: version 0x%02x, type %d, length %d", m.version, m.typ, length)
	}
	if m, err = readBody(c.br, m, length); err != nil {
		return 0, fmt.Errorf("read hello: %w", err)
	}
	if !helloOffers13(m) {
		msg := simpleMessage(typeError, m.xid, append([]byte{0, errTypeHelloFailed, 0, errCodeHelloIncompatible},
			"vpcflow speaks only OpenFlow 1.3"...))
		_, _ = c.nc.Write(msg)
		return 0, fmt.Errorf("switch does not offer OpenFlow 1.3 (hello version 0x%02x)", m.version)
	}

	xid := c.nextXIDs(1)
	if _, err := c.nc.Write(simpleMessage(typeFeaturesRequest, xid, nil)); err != nil {
		return 0, fmt.Errorf("send features request: %w", err)
	}
	for {
		m, err := readMessage(c.br)
		if err != nil {
			return 0, fmt.Errorf("read features reply: %w", err)
		}
		switch {
		case m.version != Version:
			return 0, fmt.Errorf("switch sent version 0x%02x after negotiating 1.3", m.version)
		case m.typ == typeEchoRequest:
			if _, err := c.nc.Write(simpleMessage(typeEchoReply, m.xid, m.body)); err != nil {
				return 0, fmt.Errorf("send echo reply: %w", err)
			}
		case m.typ == typeError:
			return 0, fmt.Errorf("features request: %w", parseError(m.body))
		case m.typ == typeFeaturesReply && m.xid == xid:
			if len(m.body) < featuresReplyLen-headerLen {
				return 0, errors.New("short features reply")
			}
			if err := c.nc.SetDeadline(time.Time{}); err != nil {
				return 0, fmt.Errorf("clear deadline: %w", err)
			}
			return be.Uint64(m.body), nil
		default:
			c.log.Debug("ignoring message during handshake", zap.Uint8("type", m.typ))
		}
	}
}

// helloOffers13 reports whether the peer's HELLO allows OpenFlow 1.3: its
// version bitmap includes 1.3, or, without a bitmap, its version is 1.3 or
// later (it then accepts the lower of the two versions, as the spec says).
func helloOffers13(m message) bool {
	for b := m.body; len(b) >= 4; {
		typ, length := be.Uint16(b), int(be.Uint16(b[2:]))
		if length < 4 || length > len(b) {
			break
		}
		if typ == helloElemVersionBitmap {
			bm := b[4:length]
			return len(bm) >= 4 && be.Uint32(bm)&(1<<Version) != 0
		}
		next := (length + 7) &^ 7
		if next > len(b) {
			break
		}
		b = b[next:]
	}
	return m.version >= Version
}
