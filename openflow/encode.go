package openflow

import (
	"encoding"
	"errors"
	"fmt"

	ofp13 "github.com/contiv/libOpenflow/openflow13"
)

// FlowModCommand is what a FlowMod does to the switch's flow table.
type FlowModCommand uint8

// Flow-mod commands.
const (
	// FlowAdd installs Flow, replacing the entry with the same table,
	// priority and match (its cookie and actions are overwritten).
	FlowAdd FlowModCommand = iota
	// FlowModifyStrict replaces the actions of the entry with the same
	// table, priority and match. OpenFlow 1.3 leaves the cookie of the
	// entry as it was (use FlowAdd to change a cookie); a non-zero
	// CookieMask restricts it to entries whose cookie matches.
	FlowModifyStrict
	// FlowDeleteStrict removes the entry with the same table, priority and
	// match (restricted by cookie when CookieMask is non-zero).
	FlowDeleteStrict
	// FlowDeleteByCookie removes every entry, in all tables, whose cookie
	// equals Flow.Cookie under CookieMask. Only Flow.Cookie is used.
	FlowDeleteByCookie
)

// String names the command.
func (c FlowModCommand) String() string {
	switch c {
	case FlowAdd:
		return "add"
	case FlowModifyStrict:
		return "modify-strict"
	case FlowDeleteStrict:
		return "delete-strict"
	case FlowDeleteByCookie:
		return "delete-by-cookie"
	default:
		return fmt.Sprintf("command%d", uint8(c))
	}
}

// FlowMod is one change to a switch's flow table.
type FlowMod struct {
	Command    FlowModCommand
	Flow       Flow
	CookieMask uint64 // cookie filter for the modify and delete commands
}

// String describes the flow mod for logs and errors.
func (m FlowMod) String() string {
	if m.Command == FlowDeleteByCookie {
		return fmt.Sprintf("delete-by-cookie cookie=0x%x/0x%x", m.Flow.Cookie, m.CookieMask)
	}
	return m.Command.String() + " " + m.Flow.String()
}

// EncodeFlowMod returns the OpenFlow 1.3 OFPT_FLOW_MOD message for m.
func EncodeFlowMod(xid uint32, m FlowMod) ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	return appendFlowMod(nil, xid, &m), nil
}

// validate checks that m can be encoded: known command, known fields,
// masks only where OVS takes them, actions in the order meter,
// apply-actions, write_metadata, goto_table.
func (m *FlowMod) validate() error {
	switch m.Command {
	case FlowDeleteByCookie:
		return nil
	case FlowAdd, FlowModifyStrict, FlowDeleteStrict:
	default:
		return fmt.Errorf("unknown flow-mod command %d", m.Command)
	}
	for _, fm := range m.Flow.Match {
		if !validField(fm.Field) {
			return fmt.Errorf("flow %q: match on unknown field %d", m.Flow.String(), fm.Field)
		}
		if fm.HasMask && !fieldInfos[fm.Field].maskable {
			return fmt.Errorf("flow %q: OVS takes no mask on %s", m.Flow.String(), fm.Field.Name())
		}
	}
	if m.Command == FlowDeleteStrict {
		return nil
	}
	if err := validateActions(m.Flow.Actions); err != nil {
		return fmt.Errorf("flow %q: %w", m.Flow.String(), err)
	}
	return nil
}

// maxMeterID is OFPM_MAX, the last meter id a flow may use.
const maxMeterID = 0xffff0000

func validateActions(acts []Action) error {
	stage := 0 // 0: start (meter allowed), 1: apply-actions, 2: after write_metadata, 3: after goto_table
	conj, other := false, false
	for i, a := range acts {
		switch a.Type {
		case ActMeter:
			if i != 0 {
				return errors.New("the meter instruction must come first")
			}
			if a.Value == 0 || a.Value > maxMeterID {
				return fmt.Errorf("meter id %d outside 1..%d", a.Value, uint32(maxMeterID))
			}
			other = true
			continue
		case ActWriteMetadata:
			if stage >= 2 {
				return errors.New("write_metadata must come once, after the actions and before goto_table")
			}
			stage = 2
			other = true
			continue
		case ActGotoTable:
			if stage >= 3 {
				return errors.New("goto_table must come once, last")
			}
			stage = 3
			other = true
			continue
		}
		if stage >= 2 {
			return fmt.Errorf("action %s after an instruction", a)
		}
		stage = 1
		if err := validateOne(a); err != nil {
			return err
		}
		if (a.Type == ActSetField || a.Type == ActLoad) && (a.Field == FieldCTMark || a.Field == FieldCTLabel) {
			return fmt.Errorf("%s: OVS sets ct_mark and ct_label only inside ct(commit,exec(...))", a)
		}
		if a.Type == ActConjunction {
			conj = true
		} else {
			other = true
		}
	}
	if conj && other {
		return errors.New("OVS allows no other action or instruction in a flow with conjunction actions")
	}
	return nil
}

// checkSubfield checks that bits ofs..ofs+nbits-1 lie in f (in its low 64
// bits for ct_label, the part vpcflow models).
func checkSubfield(f Field, ofs, nbits uint8) error {
	if !validField(f) {
		return fmt.Errorf("unknown field %d", f)
	}
	if nbits == 0 || uint(ofs)+uint(nbits) > f.valueBits() {
		return fmt.Errorf("bits %d..%d outside the %d-bit field %s", ofs, int(ofs)+int(nbits)-1, f.valueBits(), f.Name())
	}
	return nil
}

// validateOne checks one apply-action.
func validateOne(a Action) error {
	switch a.Type {
	case ActOutput, ActInPort, ActDecTTL, ActController, ActCTClear:
	case ActSetField:
		if !validField(a.Field) {
			return fmt.Errorf("set_field of unknown field %d", a.Field)
		}
		if fieldInfos[a.Field].setName == "" {
			return fmt.Errorf("OVS cannot set %s", a.Field.Name())
		}
	case ActLoad:
		if err := checkSubfield(a.Field, a.Ofs, a.NBits); err != nil {
			return fmt.Errorf("load: %w", err)
		}
		if fieldInfos[a.Field].setName == "" || !hasNXMHeader(a.Field) {
			return fmt.Errorf("load: OVS cannot load %s (use set_field or write_metadata)", a.Field.Name())
		}
		if a.NBits < 64 && a.Value>>a.NBits != 0 {
			return fmt.Errorf("%s: value does not fit in %d bits", a, a.NBits)
		}
	case ActMove:
		if !validField(a.Field) || !validField(a.Src) {
			return fmt.Errorf("move between unknown fields %d and %d", a.Src, a.Field)
		}
		if err := checkSubfield(a.Src, a.SrcOfs, a.NBits); err != nil {
			return fmt.Errorf("move source: %w", err)
		}
		if err := checkSubfield(a.Field, a.Ofs, a.NBits); err != nil {
			return fmt.Errorf("move destination: %w", err)
		}
		if fieldInfos[a.Field].setName == "" {
			return fmt.Errorf("move: OVS cannot write %s", a.Field.Name())
		}
	case ActOutputReg:
		if err := checkSubfield(a.Field, a.Ofs, a.NBits); err != nil {
			return fmt.Errorf("output: %w", err)
		}
		if a.NBits > 32 {
			return fmt.Errorf("%s: a port number has at most 32 bits", a)
		}
	case ActCheckPktLarger:
		if !validField(a.Field) {
			return fmt.Errorf("check_pkt_larger into unknown field %d", a.Field)
		}
		if uint(a.Bit) >= a.Field.valueBits() {
			return fmt.Errorf("%s: bit %d outside the %d-bit field", a, a.Bit, a.Field.valueBits())
		}
		if a.Value > 0xffff {
			return fmt.Errorf("check_pkt_larger: length %d does not fit in 16 bits", a.Value)
		}
	case ActResubmit:
		if a.Table == TableAll {
			// On the wire, table 255 means "the current table".
			return fmt.Errorf("resubmit to table %d", a.Table)
		}
	case ActCT:
		if len(a.ext) < nxCTLen {
			return errors.New("ct action not made by ConnTrack")
		}
	case ActController2:
		if len(a.ext) < nxController2Len {
			return errors.New("controller action not made by ControllerWith")
		}
	case ActConjunction:
		if a.NBits < 2 || a.NBits > 64 || a.Ofs < 1 || a.Ofs > a.NBits || a.Value > 0xffffffff {
			return fmt.Errorf("%s: want conjunction(id,k/n) with 2 <= n <= 64 and 1 <= k <= n", a)
		}
	case actInvalid:
		return errors.New(a.ext)
	default:
		return fmt.Errorf("cannot encode action type %d (%s)", a.Type, a)
	}
	return nil
}

// appendFlowMod appends the encoding of a validated flow mod to b.
func appendFlowMod(b []byte, xid uint32, m *FlowMod) []byte {
	start := len(b)
	b = appendHeader(b, typeFlowMod, xid)
	f := &m.Flow
	table, command, cookieMask := f.Table, uint8(wireAdd), m.CookieMask
	switch m.Command {
	case FlowModifyStrict:
		command = wireModifyStrict
	case FlowDeleteStrict:
		command = wireDeleteStrict
	case FlowDeleteByCookie:
		command, table = wireDelete, TableAll
	default:
		cookieMask = 0
	}
	b = appendU64(b, f.Cookie)
	b = appendU64(b, cookieMask)
	b = append(b, table, command)
	b = appendU16(b, 0) // idle_timeout
	b = appendU16(b, 0) // hard_timeout
	if m.Command == FlowDeleteByCookie {
		b = appendU16(b, 0)
	} else {
		b = appendU16(b, f.Priority)
	}
	b = appendU32(b, noBuffer)
	b = appendU32(b, PortAny)  // out_port
	b = appendU32(b, groupAny) // out_group
	b = appendU16(b, 0)        // flags
	b = appendU16(b, 0)        // pad
	if m.Command == FlowDeleteByCookie {
		b = appendMatch(b, nil)
	} else {
		b = appendMatch(b, f.Match)
	}
	if m.Command == FlowAdd || m.Command == FlowModifyStrict {
		b = appendInstructions(b, f.Actions)
	}
	setLength(b, start)
	return b
}

// appendMatch appends an ofp_match of type OXM, padded to 8 bytes.
func appendMatch(b []byte, m Match) []byte {
	start := len(b)
	b = appendU16(b, matchTypeOXM)
	b = appendU16(b, 0) // length, set below
	for _, fm := range m {
		b = appendOXM(b, fm.Field, fm.Value, fm.Mask, fm.HasMask)
	}
	be.PutUint16(b[start+2:], uint16(len(b)-start)) // length excludes padding
	return pad8(b, start)
}

// appendOXM appends one OXM TLV.
func appendOXM(b []byte, f Field, value, mask uint64, hasMask bool) []byte {
	w := wireFields[f].width
	b = appendU32(b, oxmHeader(f, hasMask))
	b = appendUintN(b, value, w)
	if hasMask {
		b = appendUintN(b, mask, w)
	}
	return b
}

// appendInstructions appends the meter instruction, apply-actions (when
// there are actions), then write_metadata and goto_table instructions. An
// empty list means drop.
func appendInstructions(b []byte, acts []Action) []byte {
	if len(acts) > 0 && acts[0].Type == ActMeter {
		b = appendMarshaled(b, ofp13.NewInstrMeter(uint32(acts[0].Value)))
		acts = acts[1:]
	}
	n := 0
	for n < len(acts) && acts[n].Type != ActWriteMetadata && acts[n].Type != ActGotoTable {
		n++
	}
	if n > 0 {
		start := len(b)
		b = appendU16(b, instApplyActions)
		b = appendU16(b, 0)
		b = appendU32(b, 0) // pad
		for i := range acts[:n] {
			b = appendAction(b, &acts[i])
		}
		be.PutUint16(b[start+2:], uint16(len(b)-start))
	}
	for _, a := range acts[n:] {
		switch a.Type {
		case ActWriteMetadata:
			b = appendU16(b, instWriteMetadata)
			b = appendU16(b, 24)
			b = appendU32(b, 0)
			b = appendU64(b, a.Value)
			b = appendU64(b, a.Mask)
		case ActGotoTable:
			b = appendU16(b, instGotoTable)
			b = appendU16(b, 8)
			b = append(b, a.Table, 0, 0, 0)
		}
	}
	return b
}

// appendMarshaled appends a libOpenflow message's encoding. Its
// MarshalBinary methods fail only for broken inputs the validation has
// already refused; should one fail anyway, nothing is appended and the
// switch will reject the message for its bad length rather than vpcflow
// panicking.
func appendMarshaled(b []byte, m encoding.BinaryMarshaler) []byte {
	data, err := m.MarshalBinary()
	if err != nil {
		return b
	}
	return append(b, data...)
}

// ofsNbits is the NX encoding of a bit range: ofs << 6 | (nbits - 1).
func ofsNbits(ofs, nbits uint8) uint16 { return uint16(ofs)<<6 | uint16(nbits-1) }

// appendAction appends one validated action. New Nicira actions use
// libOpenflow's encoders (reg_load, output_reg, conjunction; ct and nat
// through ConnTrack); ct_clear and controller2, which libOpenflow lacks,
// and the actions vpcflow encoded before it used libOpenflow (output,
// set_field, reg_move, dec_ttl, resubmit, check_pkt_larger) are written
// here without allocating.
func appendAction(b []byte, a *Action) []byte {
	switch a.Type {
	case ActOutput:
		return appendOutput(b, a.Port)
	case ActInPort:
		return appendOutput(b, PortInPort)
	case ActController:
		return appendOutput(b, PortController)
	case ActDecTTL:
		b = appendU16(b, actTypeDecNwTTL)
		b = appendU16(b, 8)
		return appendU32(b, 0)
	case ActSetField:
		start := len(b)
		b = appendU16(b, actTypeSetField)
		b = appendU16(b, 0)
		b = appendOXM(b, a.Field, a.Value, 0, false)
		b = pad8(b, start)
		be.PutUint16(b[start+2:], uint16(len(b)-start))
		return b
	case ActLoad:
		return appendMarshaled(b, ofp13.NewNXActionRegLoad(ofsNbits(a.Ofs, a.NBits), nxHeader(a.Field), a.Value))
	case ActMove:
		b = appendU16(b, actTypeExperimenter)
		b = appendU16(b, nxRegMoveLen)
		b = appendU32(b, nxExperimenter)
		b = appendU16(b, nxastRegMove)
		b = appendU16(b, uint16(a.NBits)) // n_bits
		b = appendU16(b, uint16(a.SrcOfs))
		b = appendU16(b, uint16(a.Ofs))
		b = appendU32(b, nxHeaderWord(a.Src))
		return appendU32(b, nxHeaderWord(a.Field))
	case ActOutputReg:
		return appendMarshaled(b, ofp13.NewOutputFromField(nxHeader(a.Field), ofsNbits(a.Ofs, a.NBits)))
	case ActCheckPktLarger:
		// struct nx_action_check_pkt_larger: header, pkt_len, offset (the
		// destination bit), the destination field header, zeros to 24.
		b = appendU16(b, actTypeExperimenter)
		b = appendU16(b, nxCheckPktLargerLen)
		b = appendU32(b, nxExperimenter)
		b = appendU16(b, nxastCheckPktLarger)
		b = appendU16(b, uint16(a.Value)) // pkt_len
		b = appendU16(b, uint16(a.Bit))   // offset
		b = appendU32(b, nxHeaderWord(a.Field))
		return append(b, 0, 0, 0, 0, 0, 0)
	case ActResubmit:
		// struct nx_action_resubmit as NXAST_RESUBMIT_TABLE, in_port
		// OFPP_IN_PORT (keep the packet's in_port).
		b = appendU16(b, actTypeExperimenter)
		b = appendU16(b, nxResubmitLen)
		b = appendU32(b, nxExperimenter)
		b = appendU16(b, nxastResubmitTable)
		b = appendU16(b, nxInPort16)
		return append(b, a.Table, 0, 0, 0)
	case ActCT, ActController2:
		return append(b, a.ext...)
	case ActCTClear:
		// libOpenflow has no ct_clear encoder (its DecodeNxAction lists
		// NXAST_CT_CLEAR with no type): nx_action_header plus 6 zero bytes.
		b = appendU16(b, actTypeExperimenter)
		b = appendU16(b, nxCTClearLen)
		b = appendU32(b, nxExperimenter)
		b = appendU16(b, nxastCTClear)
		return append(b, 0, 0, 0, 0, 0, 0)
	case ActConjunction:
		// On the wire the clause is 0-based: conjunction(id,k/n) is
		// clause k-1.
		return appendMarshaled(b, ofp13.NewNXActionConjunction(a.Ofs-1, a.NBits, uint32(a.Value)))
	}
	return b
}

func appendOutput(b []byte, port uint32) []byte {
	b = appendU16(b, actTypeOutput)
	b = appendU16(b, 16)
	b = appendU32(b, port)
	b = appendU16(b, maxLenNoBuffer)
	return append(b, 0, 0, 0, 0, 0, 0)
}

// Other requests.

// encodeHello is HELLO with a version bitmap offering only 1.3.
func encodeHello(xid uint32) []byte {
	b := appendHeader(nil, typeHello, xid)
	b = appendU16(b, helloElemVersionBitmap)
	b = appendU16(b, 8)
	b = appendU32(b, 1<<Version)
	setLength(b, 0)
	return b
}

// appendFlowStatsRequest appends an OFPMP_FLOW request for every flow.
func appendFlowStatsRequest(b []byte, xid uint32) []byte {
	start := len(b)
	b = appendHeader(b, typeMultipartReq, xid)
	b = appendU16(b, multipartFlow)
	b = appendU16(b, 0) // flags
	b = appendU32(b, 0) // pad
	b = append(b, TableAll, 0, 0, 0)
	b = appendU32(b, PortAny)
	b = appendU32(b, groupAny)
	b = appendU32(b, 0) // pad
	b = appendU64(b, 0) // cookie
	b = appendU64(b, 0) // cookie_mask
	b = appendMatch(b, nil)
	setLength(b, start)
	return b
}
