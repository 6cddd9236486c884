package openflow

import "encoding/binary"

// OpenFlow 1.3 wire constants used by vpcflow. Names follow the spec with
// the OFP prefix dropped.

// Version is the only OpenFlow version vpcflow speaks.
const Version = 0x04

// headerLen is the length of the common OpenFlow header.
const headerLen = 8

// maxMessageLen is the largest OpenFlow message (the length field is 16 bits).
const maxMessageLen = 0xffff

// Message types (ofp_type).
const (
	typeHello           = 0
	typeError           = 1
	typeEchoRequest     = 2
	typeEchoReply       = 3
	typeExperimenter    = 4
	typeFeaturesRequest = 5
	typeFeaturesReply   = 6
	typePacketIn        = 10
	typeFlowRemoved     = 11
	typePortStatus      = 12
	typePacketOut       = 13
	typeFlowMod         = 14
	typeMultipartReq    = 18
	typeMultipartReply  = 19
	typeBarrierRequest  = 20
	typeBarrierReply    = 21
)

// Hello elements.
const helloElemVersionBitmap = 1

// Multipart.
const (
	multipartFlow      = 1      // OFPMP_FLOW
	multipartReplyMore = 0x0001 // OFPMPF_REPLY_MORE
)

// Reserved ports, groups, tables and buffers.
const (
	PortInPort     uint32 = 0xfffffff8 // OFPP_IN_PORT
	PortTable      uint32 = 0xfffffff9 // OFPP_TABLE: a packet-out's frame goes through the flow tables
	PortController uint32 = 0xfffffffd // OFPP_CONTROLLER
	PortAny        uint32 = 0xffffffff // OFPP_ANY
	groupAny       uint32 = 0xffffffff // OFPG_ANY
	TableAll       uint8  = 0xff       // OFPTT_ALL
	noBuffer       uint32 = 0xffffffff // OFP_NO_BUFFER
	maxLenNoBuffer uint16 = 0xffff     // OFPCML_NO_BUFFER
)

// Flow-mod commands on the wire (ofp_flow_mod_command).
const (
	wireAdd          = 0
	wireModify       = 1
	wireModifyStrict = 2
	wireDelete       = 3
	wireDeleteStrict = 4
)

// Action types (ofp_action_type).
const (
	actTypeOutput       = 0
	actTypeDecNwTTL     = 24
	actTypeSetField     = 25
	actTypeExperimenter = 0xffff
)

// Instruction types (ofp_instruction_type).
const (
	instGotoTable     = 1
	instWriteMetadata = 2
	instApplyActions  = 4
	instMeter         = 6
)

// Nicira extension actions.
const (
	nxExperimenter      = 0x00002320
	nxastRegLoad        = 7
	nxastRegMove        = 6
	nxastResubmitTable  = 14 // NXAST_RESUBMIT_TABLE
	nxastDecTTL         = 18
	nxastRegLoad2       = 33
	nxastCheckPktLarger = 49 // NXAST_CHECK_PKT_LARGER
	nxRegMoveLen        = 24 // with two 4-byte field headers
	nxResubmitLen       = 16 // struct nx_action_resubmit
	nxCheckPktLargerLen = 24 // struct nx_action_check_pkt_larger, 4-byte dst header
	nxastOutputReg      = 15 // NXAST_OUTPUT_REG
	nxastConjunction    = 34 // NXAST_CONJUNCTION
	nxastCTClear        = 43 // NXAST_CT_CLEAR
	nxCTClearLen        = 16
	nxConjunctionLen    = 16
	nxOutputRegLen      = 24
	nxRegLoadLen        = 24
	nxInPort16          = 0xfff8 // OFPP_IN_PORT in 16 bits: "keep the in_port"
	onfExperimenter     = 0x4f4e4600
	matchTypeOXM        = 1
	flowModFixedLen     = 48 // ofp_flow_mod without match
	flowStatsFixLen     = 48 // ofp_flow_stats without match
	multipartHdrLen     = 16 // header + type, flags, pad
	flowStatsReqLen     = 40 // ofp_flow_stats_request with empty match
	featuresReplyLen    = 32
	packetInFixedLen    = 24 // ofp_packet_in up to the match
	packetOutFixedLen   = 24 // ofp_packet_out without actions and data
)

var be = binary.BigEndian

// appendHeader appends an OpenFlow header with a placeholder length; call
// setLength once the message is complete.
func appendHeader(b []byte, typ uint8, xid uint32) []byte {
	return append(b, Version, typ, 0, 0, byte(xid>>24), byte(xid>>16), byte(xid>>8), byte(xid))
}

// setLength writes len(b)-start into the length field of the message that
// starts at b[start].
func setLength(b []byte, start int) {
	be.PutUint16(b[start+2:], uint16(len(b)-start))
}

func appendU16(b []byte, v uint16) []byte { return append(b, byte(v>>8), byte(v)) }

func appendU32(b []byte, v uint32) []byte {
	return append(b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

func appendU64(b []byte, v uint64) []byte {
	return append(b, byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32),
		byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// appendUintN appends the low n bytes of v, big-endian.
func appendUintN(b []byte, v uint64, n int) []byte {
	for i := n - 1; i >= 0; i-- {
		b = append(b, byte(v>>(8*uint(i))))
	}
	return b
}

// readUintN reads n ≤ 8 bytes big-endian.
func readUintN(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

// pad8 pads b (measured from start) with zeros to a multiple of 8 bytes.
func pad8(b []byte, start int) []byte {
	for (len(b)-start)%8 != 0 {
		b = append(b, 0)
	}
	return b
}

// simpleMessage encodes a message that is only a header plus body.
func simpleMessage(typ uint8, xid uint32, body []byte) []byte {
	b := make([]byte, 0, headerLen+len(body))
	b = appendHeader(b, typ, xid)
	b = append(b, body...)
	setLength(b, 0)
	return b
}
