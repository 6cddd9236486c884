package openflow

// Bundles in OpenFlow 1.3 are the ONF extension EXT-230 (what OpenFlow 1.4
// made standard): experimenter messages with experimenter 0x4F4E4600 and
// exp_type 2300 (bundle control) or 2301 (bundle add).

const (
	onfBundleControl = 2300
	onfBundleAdd     = 2301

	bundleOpenRequest    = 0
	bundleOpenReply      = 1
	bundleCommitRequest  = 4
	bundleCommitReply    = 5
	bundleDiscardRequest = 6
	bundleDiscardReply   = 7

	bundleAtomic  = 1
	bundleOrdered = 2
	bundleFlags   = bundleAtomic | bundleOrdered

	bundleCtrlLen = 24 // experimenter header (16) + id, type, flags
	bundleAddHdr  = 24 // experimenter header (16) + id, pad, flags
)

// appendBundleControl appends a bundle control request.
func appendBundleControl(b []byte, xid, id uint32, typ uint16) []byte {
	start := len(b)
	b = appendHeader(b, typeExperimenter, xid)
	b = appendU32(b, onfExperimenter)
	b = appendU32(b, onfBundleControl)
	b = appendU32(b, id)
	b = appendU16(b, typ)
	b = appendU16(b, bundleFlags)
	setLength(b, start)
	return b
}

// appendBundleAdd appends a bundle add message carrying the flow mod, with
// the same xid outside and inside (OVS requires them to be equal).
func appendBundleAdd(b []byte, xid, id uint32, m *FlowMod) []byte {
	start := len(b)
	b = appendHeader(b, typeExperimenter, xid)
	b = appendU32(b, onfExperimenter)
	b = appendU32(b, onfBundleAdd)
	b = appendU32(b, id)
	b = appendU16(b, 0) // pad
	b = appendU16(b, bundleFlags)
	b = appendFlowMod(b, xid, m)
	setLength(b, start)
	return b
}

// bundleControlReply parses a bundle control message body (after the
// 8-byte header) and returns the bundle id and control type.
func bundleControlReply(body []byte) (id uint32, typ uint16, ok bool) {
	if len(body) < bundleCtrlLen-headerLen ||
		be.Uint32(body) != onfExperimenter || be.Uint32(body[4:]) != onfBundleControl {
		return 0, 0, false
	}
	return be.Uint32(body[8:]), be.Uint16(body[12:]), true
}
