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
// exists, Nicira NXM otherwise (reg0, reg1, tun_src, tun_dst).
var wireFields = [fieldEnd]wireField{
	FieldEthType:  {oxmID{classOpenFlow, 5}, 2},
	FieldMetadata: {oxmID{classOpenFlow, 2}, 8},
	FieldReg0:     {oxmID{classNXM1, 0}, 4},
	FieldReg1:     {oxmID{classNXM1, 1}, 4},
	FieldReg2:     {oxmID{classNXM1, 2}, 4},
	FieldInPort:   {oxmID{classOpenFlow, 0}, 4},
	FieldTunID:    {oxmID{classOpenFlow, 38}, 8},
	FieldTunSrc:   {oxmID{classNXM1, 31}, 4},
	FieldTunDst:   {oxmID{classNXM1, 32}, 4},
	FieldEthSrc:   {oxmID{classOpenFlow, 4}, 6},
	FieldEthDst:   {oxmID{classOpenFlow, 3}, 6},
	FieldArpOp:    {oxmID{classOpenFlow, 21}, 2},
	FieldArpSpa:   {oxmID{classOpenFlow, 22}, 4},
	FieldArpTpa:   {oxmID{classOpenFlow, 23}, 4},
	FieldArpSha:   {oxmID{classOpenFlow, 24}, 6},
	FieldArpTha:   {oxmID{classOpenFlow, 25}, 6},
	FieldIPProto:  {oxmID{classOpenFlow, 10}, 1},
	FieldIPv4Src:  {oxmID{classOpenFlow, 11}, 4},
	FieldIPv4Dst:  {oxmID{classOpenFlow, 12}, 4},
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
	{classNXM0, 15}: {FieldArpOp, 2},
	{classNXM0, 16}: {FieldArpSpa, 4},
	{classNXM0, 17}: {FieldArpTpa, 4},
	// NXM_NX_*.
	{classNXM1, 0}:  {FieldReg0, 4},
	{classNXM1, 1}:  {FieldReg1, 4},
	{classNXM1, 2}:  {FieldReg2, 4},
	{classNXM1, 16}: {FieldTunID, 8},
	{classNXM1, 17}: {FieldArpSha, 6},
	{classNXM1, 18}: {FieldArpTha, 6},
	{classNXM1, 31}: {FieldTunSrc, 4},
	{classNXM1, 32}: {FieldTunDst, 4},
}

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
// ok is false when the field is not one vpcflow knows or its length does
// not fit.
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
		value = readUintN(e.payload[:w])
		mask = readUintN(e.payload[w:])
		if mask != bytesMask(w) {
			return f, value & mask, mask, true, true
		}
		return f, value, 0, false, true
	}
	if len(e.payload) != w {
		return 0, 0, 0, false, false
	}
	return f, readUintN(e.payload), 0, false, true
}

// bytesMask is the all-ones value n bytes wide.
func bytesMask(n int) uint64 {
	if n >= 8 {
		return ^uint64(0)
	}
	return uint64(1)<<(8*uint(n)) - 1
}
