package openflow

import (
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"time"
)

// FlowStats is one installed flow as a switch reports it.
type FlowStats struct {
	Flow     Flow
	Packets  uint64
	Bytes    uint64
	Duration time.Duration
}

// errTruncated is wrapped by every decoding error caused by short input.
var errTruncated = errors.New("truncated")

// DecodeFlowStats parses the body of an OFPMP_FLOW multipart reply (the
// bytes after the 16-byte multipart header; bodies of several reply parts
// may be concatenated). Fields, actions and instructions vpcflow does not
// know decode into values that never equal a desired flow (a match on
// Field 0, an ActUnknown action) rather than failing the dump; structurally
// broken input returns an error.
func DecodeFlowStats(body []byte) ([]FlowStats, error) {
	var out []FlowStats
	for off := 0; off < len(body); {
		rest := body[off:]
		if len(rest) < flowStatsFixLen+8 {
			return out, fmt.Errorf("flow stats entry at offset %d: %w (%d bytes left)", off, errTruncated, len(rest))
		}
		length := int(be.Uint16(rest))
		if length < flowStatsFixLen+8 || length > len(rest) || length%8 != 0 {
			return out, fmt.Errorf("flow stats entry at offset %d: bad length %d (%d bytes left)", off, length, len(rest))
		}
		fs, err := decodeFlowStatsEntry(rest[:length])
		if err != nil {
			return out, fmt.Errorf("flow stats entry at offset %d: %w", off, err)
		}
		out = append(out, fs)
		off += length
	}
	return out, nil
}

// EachFlowStats decodes the entries of an OFPMP_FLOW reply body (as
// DecodeFlowStats) one by one into fs and calls fn with each, stopping at
// fn's first error. fs's Match and Actions storage is reused from one
// entry to the next, so a dump of a million flows allocates next to
// nothing: fn copies (CloneFlow) what it keeps.
func EachFlowStats(body []byte, fs *FlowStats, fn func(*FlowStats) error) error {
	for off := 0; off < len(body); {
		rest := body[off:]
		if len(rest) < flowStatsFixLen+8 {
			return fmt.Errorf("flow stats entry at offset %d: %w (%d bytes left)", off, errTruncated, len(rest))
		}
		length := int(be.Uint16(rest))
		if length < flowStatsFixLen+8 || length > len(rest) || length%8 != 0 {
			return fmt.Errorf("flow stats entry at offset %d: bad length %d (%d bytes left)", off, length, len(rest))
		}
		if err := decodeFlowStatsInto(rest[:length], fs); err != nil {
			return fmt.Errorf("flow stats entry at offset %d: %w", off, err)
		}
		if err := fn(fs); err != nil {
			return err
		}
		off += length
	}
	return nil
}

// decodeFlowStatsEntry parses one ofp_flow_stats of exactly len(b) bytes.
func decodeFlowStatsEntry(b []byte) (FlowStats, error) {
	var fs FlowStats
	err := decodeFlowStatsInto(b, &fs)
	return fs, err
}

// decodeFlowStatsInto parses one ofp_flow_stats of exactly len(b) bytes
// into fs, reusing the storage of fs.Flow.Match and fs.Flow.Actions (nil:
// fresh storage).
func decodeFlowStatsInto(b []byte, fs *FlowStats) error {
	fs.Flow.Table = b[2]
	sec, nsec := be.Uint32(b[4:]), be.Uint32(b[8:])
	fs.Duration = time.Duration(sec)*time.Second + time.Duration(nsec)
	fs.Flow.Priority = be.Uint16(b[12:])
	fs.Flow.Cookie = be.Uint64(b[24:])
	fs.Packets = be.Uint64(b[32:])
	fs.Bytes = be.Uint64(b[40:])

	match, n, err := decodeMatchInto(fs.Flow.Match, b[flowStatsFixLen:])
	if err != nil {
		return err
	}
	fs.Flow.Match = match
	acts, err := decodeInstructionsInto(fs.Flow.Actions, b[flowStatsFixLen+n:])
	if err != nil {
		return err
	}
	fs.Flow.Actions = acts
	return nil
}

// decodeMatch parses an ofp_match and returns it with its padded length.
func decodeMatch(b []byte) (Match, int, error) { return decodeMatchInto(nil, b) }

// decodeMatchInto is decodeMatch reusing dst's storage (nil: fresh).
func decodeMatchInto(dst Match, b []byte) (Match, int, error) {
	if len(b) < 4 {
		return nil, 0, fmt.Errorf("match: %w", errTruncated)
	}
	typ, length := be.Uint16(b), int(be.Uint16(b[2:]))
	padded := (length + 7) &^ 7
	if length < 4 || padded > len(b) {
		return nil, 0, fmt.Errorf("match: bad length %d (%d bytes left)", length, len(b))
	}
	if typ != matchTypeOXM {
		return append(dst[:0], unknownFieldMatch(uint32(typ)<<16, b[:length])), padded, nil
	}
	m, err := decodeOXMListInto(dst, b[4:length])
	if err != nil {
		return nil, 0, err
	}
	return m, padded, nil
}

// unknownFieldMatch stands for a match field vpcflow does not know: Field 0
// (printed "field0"), the header as value and a hash of the bytes as mask,
// so distinct unknown fields stay distinct and never equal a desired match.
func unknownFieldMatch(header uint32, raw []byte) FieldMatch {
	return FieldMatch{Field: 0, Value: uint64(header), Mask: hash64(raw), HasMask: true}
}

func hash64(b []byte) uint64 {
	h := fnv.New64a()
	_, _ = h.Write(b)
	return h.Sum64()
}

func unknownAction(raw []byte) Action {
	return Action{Type: ActUnknown, Value: hash64(raw), ext: hex.EncodeToString(raw)}
}

// decodeInstructions parses the instruction list and flattens it into our
// action order: meter, apply-actions, write_metadata, goto_table, and then
// unknown instructions, whatever their order on the wire.
func decodeInstructions(b []byte) ([]Action, error) { return decodeInstructionsInto(nil, b) }

// decodeInstructionsInto is decodeInstructions reusing dst's storage (nil:
// fresh; no instructions give nil then).
func decodeInstructionsInto(dst []Action, b []byte) ([]Action, error) {
	out := dst[:0] // the apply-actions
	var tailArr, meterArr [4]Action
	tail, meters := tailArr[:0], meterArr[:0] // the instructions that are not apply-actions
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, fmt.Errorf("instruction: %w", errTruncated)
		}
		typ, length := be.Uint16(b), int(be.Uint16(b[2:]))
		if length < 4 || length > len(b) {
			return nil, fmt.Errorf("instruction type %d: bad length %d (%d bytes left)", typ, length, len(b))
		}
		in := b[:length]
		switch {
		case typ == instApplyActions && length >= 8:
			if cap(out) == 0 {
				out = make([]Action, 0, length/16+2)
			}
			var err error
			if out, err = decodeActions(out, in[8:]); err != nil {
				return nil, err
			}
		case typ == instWriteMetadata && length == 24:
			tail = append(tail, Action{Type: ActWriteMetadata, Value: be.Uint64(in[8:]), Mask: be.Uint64(in[16:])})
		case typ == instGotoTable && length == 8:
			tail = append(tail, GotoTable(in[4]))
		case typ == instMeter && length == 8:
			meters = append(meters, Meter(be.Uint32(in[4:])))
		default:
			tail = append(tail, unknownAction(in))
		}
		b = b[length:]
	}
	if len(tail) > 1 {
		slices.SortStableFunc(tail, func(x, y Action) int { return instructionRank(x) - instructionRank(y) })
	}
	if len(meters) > 0 {
		n := len(out)
		out = append(out, meters...)
		copy(out[len(meters):], out[:n])
		copy(out, meters)
	}
	if len(tail) == 0 && len(out) == 0 && dst == nil {
		return nil, nil
	}
	return append(out, tail...), nil
}

// instructionRank orders the non-apply instructions as a Flow keeps them.
func instructionRank(a Action) int {
	switch a.Type {
	case ActWriteMetadata:
		return 1
	case ActGotoTable:
		return 2
	default:
		return 3
	}
}

// decodeActions parses an action list and appends it to out.
func decodeActions(out []Action, b []byte) ([]Action, error) {
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, fmt.Errorf("action: %w", errTruncated)
		}
		typ, length := be.Uint16(b), int(be.Uint16(b[2:]))
		if length < 4 || length > len(b) {
			return nil, fmt.Errorf("action type %d: bad length %d (%d bytes left)", typ, length, len(b))
		}
		out = append(out, decodeAction(typ, b[:length]))
		b = b[length:]
	}
	return out, nil
}

// decodeAction decodes one action of known length; anything it does not
// understand becomes ActUnknown.
func decodeAction(typ uint16, a []byte) Action {
	switch typ {
	case actTypeOutput:
		if len(a) != 16 {
			break
		}
		port, maxLen := be.Uint32(a[4:]), be.Uint16(a[8:])
		switch port {
		case PortInPort:
			return OutputInPort()
		case PortController:
			if maxLen == maxLenNoBuffer {
				return Action{Type: ActController}
			}
		default:
			return Output(port)
		}
	case actTypeDecNwTTL:
		if len(a) == 8 {
			return DecTTL()
		}
	case actTypeSetField:
		if act, ok := decodeSetField(a[4:]); ok {
			return act
		}
	case actTypeExperimenter:
		if len(a) >= 10 && be.Uint32(a[4:]) == nxExperimenter {
			if act, ok := decodeNX(be.Uint16(a[8:]), a); ok {
				return act
			}
		}
	}
	return unknownAction(a)
}

// decodeSetField decodes the OXM TLV of a set_field (followed by padding).
func decodeSetField(b []byte) (Action, bool) {
	e, hl, ok := parseOXMHeader(b)
	if !ok {
		return Action{}, false
	}
	pl := e.payloadLen()
	if pl < 0 || hl+pl > len(b) {
		return Action{}, false
	}
	e.payload = b[hl : hl+pl]
	f, v, _, hasMask, ok := e.known()
	if !ok || hasMask {
		return Action{}, false
	}
	return SetField(f, v), true
}

// decodeNX decodes the Nicira extension actions a switch may return for
// what vpcflow installs: reg_move, reg_load, reg_load2 (unmasked), dec_ttl,
// resubmit(,table), check_pkt_larger, output_reg, ct, ct_clear,
// conjunction and controller2. Other forms stay unknown.
func decodeNX(subtype uint16, a []byte) (Action, bool) {
	switch subtype {
	case nxastRegMove:
		if len(a) != nxRegMoveLen {
			return Action{}, false
		}
		nBits, srcOfs, dstOfs := be.Uint16(a[10:]), be.Uint16(a[12:]), be.Uint16(a[14:])
		p := a[16:]
		src, n1, ok1 := parseOXMHeader(p)
		if !ok1 {
			return Action{}, false
		}
		dst, _, ok2 := parseOXMHeader(p[n1:])
		if !ok2 {
			return Action{}, false
		}
		sf, sw, okS := headerField(src)
		df, dw, okD := headerField(dst)
		if !okS || !okD || nBits == 0 || nBits > 0xff || srcOfs > 0xff || dstOfs > 0xff ||
			int(srcOfs+nBits) > 8*sw || int(dstOfs+nBits) > 8*dw {
			return Action{}, false
		}
		act := MoveBits(sf, uint8(srcOfs), df, uint8(dstOfs), uint8(nBits))
		if validateOne(act) != nil {
			return Action{}, false
		}
		return act, true
	case nxastRegLoad:
		if len(a) != nxRegLoadLen {
			return Action{}, false
		}
		on := be.Uint16(a[10:])
		ofs, nBits := on>>6, on&0x3f+1
		e, _, ok := parseOXMHeader(a[12:16])
		if !ok {
			return Action{}, false
		}
		f, w, ok := headerField(e)
		if !ok || ofs > 0xff || int(ofs+nBits) > 8*w {
			return Action{}, false
		}
		act := Load(f, uint8(ofs), uint8(nBits), be.Uint64(a[16:]))
		if validateOne(act) != nil {
			return Action{}, false
		}
		return act, true
	case nxastRegLoad2:
		// A set_field in Nicira clothing; a mask is accepted only when full.
		if len(a) >= 10 {
			return decodeSetField(a[10:])
		}
	case nxastDecTTL:
		if len(a) == 16 {
			return DecTTL(), true
		}
	case nxastResubmitTable:
		// Only the form vpcflow installs: keep the in_port, a real table,
		// zero padding. Another in_port, table 255 ("this table") or the
		// conntrack variant (subtype 44) stay unknown.
		if len(a) != nxResubmitLen || be.Uint16(a[10:]) != nxInPort16 || a[12] == TableAll || !allZero(a[13:]) {
			return Action{}, false
		}
		return Resubmit(a[12]), true
	case nxastCheckPktLarger:
		if len(a) != nxCheckPktLargerLen {
			return Action{}, false
		}
		pktLen, ofs := be.Uint16(a[10:]), be.Uint16(a[12:])
		e, hl, ok := parseOXMHeader(a[14:])
		if !ok || !allZero(a[14+hl:]) {
			return Action{}, false
		}
		f, w, ok := headerField(e)
		// The bit must lie within the field both as it is on the wire and
		// in our model (NXM_OF_IN_PORT is 16 bits, OXM_OF_IN_PORT 32).
		if !ok || int(ofs) >= 8*w || uint(ofs) >= f.valueBits() {
			return Action{}, false
		}
		return CheckPktLarger(pktLen, f, uint8(ofs)), true
	case nxastOutputReg:
		// Only max_len OFPCML_NO_BUFFER, as vpcflow writes it (OVS keeps
		// and returns it, and does not print it).
		if len(a) != nxOutputRegLen || be.Uint16(a[16:]) != maxLenNoBuffer || !allZero(a[18:]) {
			return Action{}, false
		}
		on := be.Uint16(a[10:])
		ofs, nBits := on>>6, on&0x3f+1
		e, _, ok := parseOXMHeader(a[12:16])
		if !ok {
			return Action{}, false
		}
		f, w, ok := headerField(e)
		if !ok || ofs > 0xff || int(ofs+nBits) > 8*w {
			return Action{}, false
		}
		act := OutputReg(f, uint8(ofs), uint8(nBits))
		if validateOne(act) != nil {
			return Action{}, false
		}
		return act, true
	case nxastCT:
		return decodeCT(a)
	case nxastCTClear:
		if len(a) == nxCTClearLen && allZero(a[10:]) {
			return CTClear(), true
		}
	case nxastConjunction:
		if len(a) != nxConjunctionLen {
			return Action{}, false
		}
		act := Conjunction(be.Uint32(a[12:]), a[10]+1, a[11])
		if a[10] == 0xff || validateOne(act) != nil {
			return Action{}, false
		}
		return act, true
	case nxastController2:
		return decodeController2(a)
	}
	return Action{}, false
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// headerField maps a bare field header (as in reg_move) to our field and
// its width on the wire.
func headerField(e oxmEntry) (Field, int, bool) {
	if e.id.class == classExperimenter || e.hasMask {
		return 0, 0, false
	}
	wf, ok := decodeFields[e.id]
	if !ok || int(e.header&0xff) != wf.width {
		return 0, 0, false
	}
	return wf.field, wf.width, true
}
