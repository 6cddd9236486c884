package openflow

import (
	"errors"
	"fmt"
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
// actions in the order apply-actions, write_metadata, goto_table.
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
	}
	if m.Command == FlowDeleteStrict {
		return nil
	}
	if err := validateActions(m.Flow.Actions); err != nil {
		return fmt.Errorf("flow %q: %w", m.Flow.String(), err)
	}
	return nil
}

func validateActions(acts []Action) error {
	stage := 0 // 0: apply-actions, 1: after write_metadata, 2: after goto_table
	for _, a := range acts {
		switch a.Type {
		case ActWriteMetadata:
			if stage >= 1 {
				return errors.New("write_metadata must come once, after the actions and before goto_table")
			}
			stage = 1
		case ActGotoTable:
			if stage >= 2 {
				return errors.New("goto_table must come once, last")
			}
			stage = 2
		case ActOutput, ActInPort, ActDecTTL, ActController:
			if stage > 0 {
				return fmt.Errorf("action %s after an instruction", a)
			}
		case ActOutputReg:
			if stage > 0 {
				return fmt.Errorf("action %s after an instruction", a)
			}
			if !validField(a.Field) || a.Field.Bits() != 32 {
				return fmt.Errorf("output_reg from %s: want a 32-bit register", a.Field.Name())
			}
		case ActSetField:
			if stage > 0 {
				return fmt.Errorf("action %s after an instruction", a)
			}
			if !validField(a.Field) {
				return fmt.Errorf("set_field of unknown field %d", a.Field)
			}
		case ActMove:
			if stage > 0 {
				return fmt.Errorf("action %s after an instruction", a)
			}
			if !validField(a.Field) || !validField(a.Src) {
				return fmt.Errorf("move between unknown fields %d and %d", a.Src, a.Field)
			}
			if a.Src.Bits() != a.Field.Bits() {
				return fmt.Errorf("%s: fields differ in width", a)
			}
		case ActCheckPktLarger:
			if stage > 0 {
				return fmt.Errorf("action %s after an instruction", a)
			}
			if !validField(a.Field) {
				return fmt.Errorf("check_pkt_larger into unknown field %d", a.Field)
			}
			if uint(a.Bit) >= a.Field.Bits() {
				return fmt.Errorf("%s: bit %d outside the %d-bit field", a, a.Bit, a.Field.Bits())
			}
			if a.Value > 0xffff {
				return fmt.Errorf("check_pkt_larger: length %d does not fit in 16 bits", a.Value)
			}
		case ActResubmit:
			if stage > 0 {
				return fmt.Errorf("action %s after an instruction", a)
			}
			if a.Table == TableAll {
				// On the wire, table 255 means "the current table".
				return fmt.Errorf("resubmit to table %d", a.Table)
			}
		default:
			return fmt.Errorf("cannot encode action type %d (%s)", a.Type, a)
		}
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

// appendInstructions appends apply-actions (when there are actions), then
// write_metadata and goto_table instructions. An empty list means drop.
func appendInstructions(b []byte, acts []Action) []byte {
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

// appendAction appends one validated action.
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
	case ActMove:
		b = appendU16(b, actTypeExperimenter)
		b = appendU16(b, nxRegMoveLen)
		b = appendU32(b, nxExperimenter)
		b = appendU16(b, nxastRegMove)
		b = appendU16(b, uint16(a.Field.Bits())) // n_bits
		b = appendU16(b, 0)                      // src_ofs
		b = appendU16(b, 0)                      // dst_ofs
		b = appendU32(b, oxmHeader(a.Src, false))
		return appendU32(b, oxmHeader(a.Field, false))
	case ActCheckPktLarger:
		// struct nx_action_check_pkt_larger: header, pkt_len, offset (the
		// destination bit), the destination field header, zeros to 24.
		b = appendU16(b, actTypeExperimenter)
		b = appendU16(b, nxCheckPktLargerLen)
		b = appendU32(b, nxExperimenter)
		b = appendU16(b, nxastCheckPktLarger)
		b = appendU16(b, uint16(a.Value)) // pkt_len
		b = appendU16(b, uint16(a.Bit))   // offset
		b = appendU32(b, oxmHeader(a.Field, false))
		return append(b, 0, 0, 0, 0, 0, 0)
	case ActOutputReg:
		// struct nx_action_output_reg: header, ofs_nbits (whole field:
		// offset 0, 32 bits), the source field header, max_len, zeros.
		b = appendU16(b, actTypeExperimenter)
		b = appendU16(b, nxOutputRegLen)
		b = appendU32(b, nxExperimenter)
		b = appendU16(b, nxastOutputReg)
		b = appendU16(b, uint16(a.Field.Bits()-1)) // ofs 0, n_bits-1
		b = appendU32(b, oxmHeader(a.Field, false))
		b = appendU16(b, 0) // max_len: only for the controller port
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
