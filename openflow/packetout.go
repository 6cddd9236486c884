package openflow

import (
	"context"
	"errors"
	"fmt"
)

// PacketOut makes the switch send data (a whole frame, Ethernet header
// first) through actions, as if it had arrived on inPort: an
// OFPT_PACKET_OUT with buffer_id OFP_NO_BUFFER. inPort is usually
// PortController; OutputInPort sends the frame out of inPort. Actions
// are those of an apply-actions list (Output, OutputInPort, SetField,
// Resubmit, ConnTrack…); the instructions Meter, WriteMetadata and
// GotoTable are refused.
//
// PacketOut is fire-and-forget: it returns once the message is written,
// without waiting for the switch to act on it, and an error the switch
// sends back later is only logged. It shares the write lock with the
// other requests: ctx bounds the wait for the lock and the write, and if
// ctx ends during the write the connection is closed (half a message may
// be on the wire).
func (s *Switch) PacketOut(ctx context.Context, inPort uint32, actions []Action, data []byte) error {
	if err := validatePacketOut(actions, data); err != nil {
		return fmt.Errorf("%s: packet-out: %w", s, err)
	}
	xid := s.c.nextXIDs(1)
	err := s.c.send(ctx, func(mw *msgWriter) {
		mw.buf = appendPacketOut(mw.buf[:0], xid, inPort, actions, data)
		mw.put(mw.buf)
	})
	if err != nil {
		return fmt.Errorf("%s: packet-out: %w", s, err)
	}
	return nil
}

// EncodePacketOut returns the OpenFlow 1.3 OFPT_PACKET_OUT message that
// PacketOut sends.
func EncodePacketOut(xid, inPort uint32, actions []Action, data []byte) ([]byte, error) {
	if err := validatePacketOut(actions, data); err != nil {
		return nil, err
	}
	return appendPacketOut(nil, xid, inPort, actions, data), nil
}

// validatePacketOut checks that the actions can be encoded as an action
// list and that the message fits in 64 KiB.
func validatePacketOut(actions []Action, data []byte) error {
	if len(data) == 0 {
		return errors.New("no frame to send")
	}
	if err := validateActions(actions); err != nil {
		return err
	}
	n := packetOutFixedLen + len(data)
	for i := range actions {
		switch actions[i].Type {
		case ActWriteMetadata, ActGotoTable, ActMeter:
			return fmt.Errorf("instruction %s in a packet-out", actions[i])
		}
		n += len(appendAction(nil, &actions[i]))
	}
	if n > maxMessageLen {
		return fmt.Errorf("packet-out of %d bytes (%d-byte frame) exceeds the %d-byte message limit", n, len(data), maxMessageLen)
	}
	return nil
}

// appendPacketOut appends a validated packet-out: header, buffer_id,
// in_port, actions_len, 6 bytes of padding, the actions and the frame.
func appendPacketOut(b []byte, xid, inPort uint32, actions []Action, data []byte) []byte {
	start := len(b)
	b = appendHeader(b, typePacketOut, xid)
	b = appendU32(b, noBuffer)
	b = appendU32(b, inPort)
	b = appendU16(b, 0) // actions_len, set below
	b = append(b, 0, 0, 0, 0, 0, 0)
	acts := len(b)
	for i := range actions {
		b = appendAction(b, &actions[i])
	}
	be.PutUint16(b[start+16:], uint16(len(b)-acts))
	b = append(b, data...)
	setLength(b, start)
	return b
}
