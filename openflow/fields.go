package openflow

// OXM/NXM field headers. A header is class(16) | field(7) | hasmask(1) |
// length(8); the length counts the value (and the mask, when present).

// OXM classes.
const (
	classNXM0         = 0x0000 // NXM_OF_*
	classNXM1         = 0x0001 // NXM_NX_*
	classOpenFlow     = 0x8000 // OXM_OF_* (OpenFlow basic)
	classExperimenter = 0xffff // header is followed by a 32-bit experimenter id
)

// oxmID is a field's class and field number, without hasmask and length.
type oxmID struct {
	class uint16
	field uint8
}

// wireField is how vpcflow writes a Field on the wire.
type wireField struct {
	id    oxmID
	width int // bytes
}

// wireFields is the encoding of each Field: OpenFlow-basic OXM where one
// exists, Nicira NXM otherwise (registers, tunnel addresses, conntrack
// fields, conj_id, nw_ttl).
var wireFields = [fieldEnd]wireField{
	FieldPktMark:  {oxmID{classNXM1, 33}, 4},
	FieldConjID:   {oxmID{classNXM1, 37}, 4},
	FieldCTState:  {oxmID{classNXM1, 105}, 4},
	FieldCTZone:   {oxmID{classNXM1, 106}, 2},
	FieldCTMark:   {oxmID{classNXM1, 107}, 4},
	FieldCTLabel:  {oxmID{classNXM1, 108}, 16},
	FieldEthType:  {oxmID{classOpenFlow, 5}, 2},
	FieldReg0:     {oxmID{classNXM1, 0}, 4},
	FieldReg1:     {oxmID{classNXM1, 1}, 4},
	FieldReg2:     {oxmID{classNXM1, 2}, 4},
	FieldReg3:     {oxmID{classNXM1, 3}, 4},
	FieldReg4:     {oxmID{classNXM1, 4}, 4},
	FieldReg5:     {oxmID{classNXM1, 5}, 4},
	FieldReg6:     {oxmID{classNXM1, 6}, 4},
	FieldReg7:     {oxmID{classNXM1, 7}, 4},
	FieldTunID:    {oxmID{classOpenFlow, 38}, 8},
	FieldTunSrc:   {oxmID{classNXM1, 31}, 4},
	FieldTunDst:   {oxmID{classNXM1, 32}, 4},
	FieldMetadata: {oxmID{classOpenFlow, 2}, 8},
	FieldInPort:   {oxmID{classOpenFlow, 0}, 4},
	FieldEthSrc:   {oxmID{classOpenFlow, 4}, 6},
	FieldEthDst:   {oxmID{classOpenFlow, 3}, 6},
	FieldIPv4Src:  {oxmID{classOpenFlow, 11}, 4},
	FieldIPv4Dst:  {oxmID{classOpenFlow, 12}, 4},
	FieldArpSpa:   {oxmID{classOpenFlow, 22}, 4},
	FieldArpTpa:   {oxmID{classOpenFlow, 23}, 4},
	FieldIPProto:  {oxmID{classOpenFlow, 10}, 1},
	FieldArpOp:    {oxmID{classOpenFlow, 21}, 2},
	FieldIPTTL:    {oxmID{classNXM1, 29}, 1},
	FieldICMPType: {oxmID{classOpenFlow, 19}, 1},
	FieldICMPCode: {oxmID{classOpenFlow, 20}, 1},
	FieldTCPSrc:   {oxmID{classOpenFlow, 13}, 2},
	FieldTCPDst:   {oxmID{classOpenFlow, 14}, 2},
	FieldUDPSrc:   {oxmID{classOpenFlow, 15}, 2},
	FieldUDPDst:   {oxmID{classOpenFlow, 16}, 2},
	FieldArpSha:   {oxmID{classOpenFlow, 24}, 6},
	FieldArpTha:   {oxmID{classOpenFlow, 25}, 6},
}

// decodedField is one of our fields as found on the wire.
type decodedField struct {
	field Field
	width int // bytes
}

// decodeFields maps every header a switch may use for one of our fields
// (OXM and the older NXM spelling) to the Field and its width on the wire.
// NXM_OF_IN_PORT is 16 bits wide; its value is the same port number.
var decodeFields = map[oxmID]decodedField{
	// OpenFlow basic.
	{classOpenFlow, 0}:  {FieldInPort, 4},
	{classOpenFlow, 2}:  {FieldMetadata, 8},
	{classOpenFlow, 3}:  {FieldEthDst, 6},
	{classOpenFlow, 4}:  {FieldEthSrc, 6},
	{classOpenFlow, 5}:  {FieldEthType, 2},
	{classOpenFlow, 10}: {FieldIPProto, 1},
	{classOpenFlow, 11}: {FieldIPv4Src, 4},
	{classOpenFlow, 12}: {FieldIPv4Dst, 4},
	{classOpenFlow, 13}: {FieldTCPSrc, 2},
	{classOpenFlow, 14}: {FieldTCPDst, 2},
	{classOpenFlow, 15}: {FieldUDPSrc, 2},
	{classOpenFlow, 16}: {FieldUDPDst, 2},
	{classOpenFlow, 19}: {FieldICMPType, 1},
	{classOpenFlow, 20}: {FieldICMPCode, 1},
	{classOpenFlow, 21}: {FieldArpOp, 2},
	{classOpenFlow, 22}: {FieldArpSpa, 4},
	{classOpenFlow, 23}: {FieldArpTpa, 4},
	{classOpenFlow, 24}: {FieldArpSha, 6},
	{classOpenFlow, 25}: {FieldArpTha, 6},
	{classOpenFlow, 38}: {FieldTunID, 8},
	// NXM_OF_*.
	{classNXM0, 0}:  {FieldInPort, 2},
	{classNXM0, 1}:  {FieldEthDst, 6},
	{classNXM0, 2}:  {FieldEthSrc, 6},
	{classNXM0, 3}:  {FieldEthType, 2},
	{classNXM0, 6}:  {FieldIPProto, 1},
	{classNXM0, 7}:  {FieldIPv4Src, 4},
	{classNXM0, 8}:  {FieldIPv4Dst, 4},
	{classNXM0, 9}:  {FieldTCPSrc, 2},
	{classNXM0, 10}: {FieldTCPDst, 2},
	{classNXM0, 11}: {FieldUDPSrc, 2},
	{classNXM0, 12}: {FieldUDPDst, 2},
	{classNXM0, 13}: {FieldICMPType, 1},
	{classNXM0, 14}: {FieldICMPCode, 1},
	{classNXM0, 15}: {FieldArpOp, 2},
	{classNXM0, 16}: {FieldArpSpa, 4},
	{classNXM0, 17}: {FieldArpTpa, 4},
	// NXM_NX_*.
	{classNXM1, 0}:   {FieldReg0, 4},
	{classNXM1, 1}:   {FieldReg1, 4},
	{classNXM1, 2}:   {FieldReg2, 4},
	{classNXM1, 3}:   {FieldReg3, 4},
	{classNXM1, 4}:   {FieldReg4, 4},
	{classNXM1, 5}:   {FieldReg5, 4},
	{classNXM1, 6}:   {FieldReg6, 4},
	{classNXM1, 7}:   {FieldReg7, 4},
	{classNXM1, 16}:  {FieldTunID, 8},
	{classNXM1, 17}:  {FieldArpSha, 6},
	{classNXM1, 18}:  {FieldArpTha, 6},
	{classNXM1, 29}:  {FieldIPTTL, 1},
	{classNXM1, 31}:  {FieldTunSrc, 4},
	{classNXM1, 32}:  {FieldTunDst, 4},
	{classNXM1, 33}:  {FieldPktMark, 4},
	{classNXM1, 37}:  {FieldConjID, 4},
	{classNXM1, 105}: {FieldCTState, 4},
	{classNXM1, 106}: {FieldCTZone, 2},
	{classNXM1, 107}: {FieldCTMark, 4},
	{classNXM1, 108}: {FieldCTLabel, 16},
}

// nxActionFields is how vpcflow names a field inside Nicira actions (move,
// load, output_reg, check_pkt_larger, the ct zone): by its NXM header
// where OVS has one of the same width, as OVS 3.1 itself encodes them, so
// that our bytes are OVS's bytes. in_port (NXM_OF_IN_PORT is 16 bits,
// vpcflow's in_port 32) and metadata (no NXM header) keep their OXM
// header.
var nxActionFields = [fieldEnd]wireField{
	FieldPktMark:  {oxmID{classNXM1, 33}, 4},
	FieldConjID:   {oxmID{classNXM1, 37}, 4},
	FieldCTState:  {oxmID{classNXM1, 105}, 4},
	FieldCTZone:   {oxmID{classNXM1, 106}, 2},
	FieldCTMark:   {oxmID{classNXM1, 107}, 4},
	FieldCTLabel:  {oxmID{classNXM1, 108}, 16},
	FieldEthType:  {oxmID{classNXM0, 3}, 2},
	FieldReg0:     {oxmID{classNXM1, 0}, 4},
	FieldReg1:     {oxmID{classNXM1, 1}, 4},
	FieldReg2:     {oxmID{classNXM1, 2}, 4},
	FieldReg3:     {oxmID{classNXM1, 3}, 4},
	FieldReg4:     {oxmID{classNXM1, 4}, 4},
	FieldReg5:     {oxmID{classNXM1, 5}, 4},
	FieldReg6:     {oxmID{classNXM1, 6}, 4},
	FieldReg7:     {oxmID{classNXM1, 7}, 4},
	FieldTunID:    {oxmID{classNXM1, 16}, 8},
	FieldTunSrc:   {oxmID{classNXM1, 31}, 4},
	FieldTunDst:   {oxmID{classNXM1, 32}, 4},
	FieldMetadata: {oxmID{classOpenFlow, 2}, 8},
	FieldInPort:   {oxmID{classOpenFlow, 0}, 4},
	FieldEthSrc:   {oxmID{classNXM0, 2}, 6},
	FieldEthDst:   {oxmID{classNXM0, 1}, 6},
	FieldIPv4Src:  {oxmID{classNXM0, 7}, 4},
	FieldIPv4Dst:  {oxmID{classNXM0, 8}, 4},
	FieldArpSpa:   {oxmID{classNXM0, 16}, 4},
	FieldArpTpa:   {oxmID{classNXM0, 17}, 4},
	FieldIPProto:  {oxmID{classNXM0, 6}, 1},
	FieldArpOp:    {oxmID{classNXM0, 15}, 2},
	FieldIPTTL:    {oxmID{classNXM1, 29}, 1},
	FieldICMPType: {oxmID{classNXM0, 13}, 1},
	FieldICMPCode: {oxmID{classNXM0, 14}, 1},
	FieldTCPSrc:   {oxmID{classNXM0, 9}, 2},
	FieldTCPDst:   {oxmID{classNXM0, 10}, 2},
	FieldUDPSrc:   {oxmID{classNXM0, 11}, 2},
	FieldUDPDst:   {oxmID{classNXM0, 12}, 2},
	FieldArpSha:   {oxmID{classNXM1, 17}, 6},
	FieldArpTha:   {oxmID{classNXM1, 18}, 6},
}

// nxHeaderWord is f's header inside Nicira actions (see nxActionFields).
func nxHeaderWord(f Field) uint32 {
	w := nxActionFields[f]
	return uint32(w.id.class)<<16 | uint32(w.id.field)<<9 | uint32(w.width)
}

// hasNXMHeader reports whether OVS has an NXM header for f, which
// NXAST_REG_LOAD needs (OVS re-encodes a load of a field without one, such
// as metadata, as a masked NXAST_REG_LOAD2 and prints that back as
// set_field:V/M, not load:).
func hasNXMHeader(f Field) bool { return f != FieldMetadata }

// validField reports whether f is one of the fields vpcflow can encode.
func validField(f Field) bool { return f > 0 && f < fieldEnd }

// oxmHeader builds the 32-bit header of f, with or without a mask.
func oxmHeader(f Field, hasMask bool) uint32 {
	w := wireFields[f]
	length := uint32(w.width)
	hm := uint32(0)
	if hasMask {
		length *= 2
		hm = 1
	}
	return uint32(w.id.class)<<16 | uint32(w.id.field)<<9 | hm<<8 | length
}

// oxmEntry is one parsed TLV: its header fields and payload.
type oxmEntry struct {
	header       uint32
	id           oxmID
	hasMask      bool
	experimenter uint32 // for classExperimenter
	payload      []byte // value, then mask when hasMask
}

// parseOXMHeader reads a header (4 bytes, or 8 for the experimenter class)
// from b and returns the entry without payload and the header length.
func parseOXMHeader(b []byte) (oxmEntry, int, bool) {
	if len(b) < 4 {
		return oxmEntry{}, 0, false
	}
	h := be.Uint32(b)
	e := oxmEntry{
		header:  h,
		id:      oxmID{class: uint16(h >> 16), field: uint8(h>>9) & 0x7f},
		hasMask: h&0x100 != 0,
	}
	n := 4
	if e.id.class == classExperimenter {
		if len(b) < 8 {
			return oxmEntry{}, 0, false
		}
		e.experimenter = be.Uint32(b[4:])
		n = 8
	}
	return e, n, true
}

// payloadLen is the length of the value (plus mask) that follows the
// header, excluding the experimenter id that is counted in the length.
func (e oxmEntry) payloadLen() int {
	l := int(e.header & 0xff)
	if e.id.class == classExperimenter {
		l -= 4
	}
	return l
}

// known maps the entry to one of our fields and returns its value and mask.
// ok is false when the field is not one vpcflow knows, its length does not
// fit, or its value or mask has bits vpcflow's model of the field cannot
// hold (ct_state bits above 0xff, the high 64 bits of ct_label).
func (e oxmEntry) known() (f Field, value, mask uint64, hasMask, ok bool) {
	if e.id.class == classExperimenter {
		return 0, 0, 0, false, false
	}
	wf, found := decodeFields[e.id]
	if !found {
		return 0, 0, 0, false, false
	}
	f = wf.field
	w := wf.width
	if e.hasMask {
		if len(e.payload) != 2*w {
			return 0, 0, 0, false, false
		}
		v, vHigh := readWide(e.payload[:w])
		m, mHigh := readWide(e.payload[w:])
		full := m == bytesMask(w) && (w <= 8 || mHigh == ^uint64(0))
		switch {
		case full:
			if vHigh != 0 || v&^f.fullMask() != 0 {
				return 0, 0, 0, false, false
			}
			return f, v, 0, false, true
		case mHigh != 0 || v&m&^f.fullMask() != 0 || m&^f.fullMask() != 0:
			// A mask over bits the model has no room for.
			return 0, 0, 0, false, false
		case f.exactMask(m):
			// Full in the model (ct_state's 0xff): an exact match.
			return f, v & m, 0, false, true
		case m == 0:
			return 0, 0, 0, false, false
		}
		return f, v & m, m, true, true
	}
	if len(e.payload) != w {
		return 0, 0, 0, false, false
	}
	v, vHigh := readWide(e.payload)
	if vHigh != 0 || v&^f.fullMask() != 0 {
		return 0, 0, 0, false, false
	}
	return f, v, 0, false, true
}

// readWide reads a big-endian value of up to 16 bytes: its low 64 bits and
// its high 64 bits (zero for 8 bytes or fewer).
func readWide(b []byte) (low, high uint64) {
	if len(b) <= 8 {
		return readUintN(b), 0
	}
	return readUintN(b[len(b)-8:]), readUintN(b[:len(b)-8])
}

// bytesMask is the all-ones value n bytes wide.
func bytesMask(n int) uint64 {
	if n >= 8 {
		return ^uint64(0)
	}
	return uint64(1)<<(8*uint(n)) - 1
}
