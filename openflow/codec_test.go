package openflow

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
	"time"
)

// statsEntry turns an encoded flow mod into the ofp_flow_stats entry a
// switch would return for it: same table, priority, cookie, match and
// instructions.
func statsEntry(fm []byte, packets, nbytes uint64, dur time.Duration) []byte {
	rest := fm[flowModFixedLen:]
	b := make([]byte, flowStatsFixLen, flowStatsFixLen+len(rest))
	be.PutUint16(b, uint16(flowStatsFixLen+len(rest)))
	b[2] = fm[24]
	be.PutUint32(b[4:], uint32(dur/time.Second))
	be.PutUint32(b[8:], uint32(dur%time.Second))
	be.PutUint16(b[12:], be.Uint16(fm[30:]))
	copy(b[24:32], fm[8:16])
	be.PutUint64(b[32:], packets)
	be.PutUint64(b[40:], nbytes)
	return append(b, rest...)
}

func mustEncode(t testing.TB, m FlowMod) []byte {
	t.Helper()
	b, err := EncodeFlowMod(42, m)
	if err != nil {
		t.Fatalf("EncodeFlowMod(%s): %v", m, err)
	}
	return b
}

// allFieldsAndActions returns flows that together use every Field (exact
// and masked where the pipeline masks) and every Action type.
func allFieldsAndActions() []Flow {
	var flows []Flow
	prio := uint16(1)
	add := func(m Match, acts ...Action) {
		flows = append(flows, Flow{Table: uint8(prio % 250), Priority: prio, Cookie: 0x7670000000000000 | uint64(prio), Match: m, Actions: acts})
		prio++
	}
	for f := Field(1); f < fieldEnd; f++ {
		v := uint64(0x0123456789abcdef) & f.fullMask()
		add(NewMatch().With(f, v), Output(uint32(f)))
		if fieldInfos[f].maskable {
			add(NewMatch().WithMasked(f, v, f.fullMask()>>1), Output(1))
		}
		if fieldInfos[f].setName != "" && f != FieldCTMark && f != FieldCTLabel {
			add(NewMatch(), SetField(f, ^v), Output(1))
			if hasNXMHeader(f) {
				add(NewMatch(), Load(f, 1, 3, 5))
			}
		}
		for g := Field(1); g < fieldEnd; g++ {
			if g != f && g.Bits() == f.Bits() && g.Bits() <= 64 && fieldInfos[g].setName != "" {
				add(NewMatch().With(FieldEthType, EthTypeARP), Move(f, g))
			}
		}
	}
	add(NewMatch().InPort(1), OutputInPort())
	add(NewMatch().InPort(1), DecTTL(), Action{Type: ActController})
	add(NewMatch().EthType(EthTypeIPv4), CheckPktLarger(1464, FieldReg1, 0), Resubmit(45))
	add(NewMatch().WithMasked(FieldReg1, 1, 1), Resubmit(0), Output(2), Resubmit(254))
	add(NewMatch().WithMasked(FieldReg1, 0x80000000, 0x80000000), CheckPktLarger(0, FieldReg0, 31), CheckPktLarger(0xffff, FieldMetadata, 63),
		CheckPktLarger(1, FieldEthDst, 47), CheckPktLarger(9000, FieldReg1, 17), Resubmit(3), GotoTable(9))
	add(NewMatch().InPort(1), WriteMetadata(0x1, 0xffffffff))
	add(NewMatch().InPort(1), GotoTable(200))
	add(NewMatch().InPort(1), WriteMetadata(0xfffffffffffffff0, ^uint64(0)), GotoTable(200))
	add(NewMatch().InPort(1), SetField(FieldEthSrc, 1), DecTTL(), Output(3), WriteMetadata(3, 3), GotoTable(9))
	add(NewMatch()) // drop, match all
	for _, f := range catalog() {
		add(f.Match, f.Actions...)
	}
	return flows
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	flows := append(allFieldsAndActions(), pipelineFlows()...)
	var body []byte
	for i, f := range flows {
		fm := mustEncode(t, FlowMod{Command: FlowAdd, Flow: f})
		if int(be.Uint16(fm[2:])) != len(fm) || len(fm)%8 != 0 {
			t.Fatalf("flow %d: bad message length %d (%d bytes)", i, be.Uint16(fm[2:]), len(fm))
		}
		body = append(body, statsEntry(fm, uint64(i), uint64(i*100), time.Duration(i)*time.Second+5)...)
	}
	got, err := DecodeFlowStats(body)
	if err != nil {
		t.Fatalf("DecodeFlowStats: %v", err)
	}
	if len(got) != len(flows) {
		t.Fatalf("decoded %d flows, want %d", len(got), len(flows))
	}
	for i := range flows {
		want, fs := &flows[i], &got[i]
		if fs.Flow.Key() != want.Key() || !want.SameContent(&fs.Flow) || fs.Flow.String() != want.String() {
			t.Errorf("round trip %d:\n want %s\n got  %s", i, want, &fs.Flow)
		}
		if fs.Packets != uint64(i) || fs.Bytes != uint64(i*100) || fs.Duration != time.Duration(i)*time.Second+5 {
			t.Errorf("flow %d counters: %d packets, %d bytes, %v", i, fs.Packets, fs.Bytes, fs.Duration)
		}
	}
}

func TestEncodeGolden(t *testing.T) {
	f := Flow{Table: 30, Priority: 124, Cookie: 0x7670020000000001,
		Match:   NewMatch().EthType(EthTypeIPv4).Metadata(1, 0xffffffff).WithMasked(FieldIPv4Dst, 0xac120300, 0xffffff00),
		Actions: []Action{SetMAC(FieldEthDst, macVM2), Move(FieldArpTpa, FieldReg0), DecTTL(), OutputInPort(), GotoTable(40)}}
	got := hex.EncodeToString(mustEncode(t, FlowMod{Command: FlowAdd, Flow: f}))
	want := strings.Join([]string{
		"040e", "00b0", "0000002a", // header: v1.3 FLOW_MOD, length 176, xid 42
		"7670020000000001", "0000000000000000", // cookie, cookie_mask
		"1e", "00", "0000", "0000", "007c", // table 30, ADD, timeouts, priority 124
		"ffffffff", "ffffffff", "ffffffff", "0000", "0000", // buffer, out_port, out_group, flags, pad
		"0001", "002a", // OXM match, length 42
		"80000a02", "0800", // eth_type
		"80000510", "0000000000000001", "00000000ffffffff", // metadata/mask
		"80001908", "ac120300", "ffffff00", // ipv4_dst/mask
		"000000000000",             // match padding
		"0004", "0048", "00000000", // apply-actions, 72 bytes
		"0019", "0010", "80000606", "52580098c092", "0000", // set_field eth_dst, padded
		"ffff", "0018", "00002320", "0006", "0020", "0000", "0000", "00002204", "00010004", // reg_move NXM_OF_ARP_TPA -> NXM_NX_REG0, as OVS writes it
		"0018", "0008", "00000000", // dec_nw_ttl
		"0000", "0010", "fffffff8", "ffff", "000000000000", // output IN_PORT, max_len NO_BUFFER
		"0001", "0008", "28000000", // goto_table 40
	}, "")
	if got != want {
		t.Errorf("flow mod bytes:\n got  %s\n want %s", got, want)
	}

	del := FlowMod{Command: FlowDeleteByCookie, Flow: Flow{Cookie: 0x7670020000000000, Table: 3, Priority: 9}, CookieMask: 0xffffff0000000000}
	got = hex.EncodeToString(mustEncode(t, del))
	want = strings.Join([]string{
		"040e", "0038", "0000002a",
		"7670020000000000", "ffffff0000000000",
		"ff", "03", "0000", "0000", "0000", // OFPTT_ALL, DELETE, timeouts, priority
		"ffffffff", "ffffffff", "ffffffff", "0000", "0000",
		"0001", "0004", "00000000", // empty match
	}, "")
	if got != want {
		t.Errorf("delete-by-cookie bytes:\n got  %s\n want %s", got, want)
	}

	ds := FlowMod{Command: FlowDeleteStrict, Flow: f}
	b := mustEncode(t, ds)
	if b[25] != wireDeleteStrict || b[24] != 30 || be.Uint16(b[30:]) != 124 || len(b) != flowModFixedLen+48 {
		t.Errorf("delete-strict: command %d table %d priority %d len %d", b[25], b[24], be.Uint16(b[30:]), len(b))
	}
	ms := FlowMod{Command: FlowModifyStrict, Flow: f}
	if b := mustEncode(t, ms); b[25] != wireModifyStrict || len(b) != 176 {
		t.Errorf("modify-strict: command %d len %d", b[25], len(b))
	}
}

// TestEncodeMatchesOVS compares our flow mods with the bytes ovs-ofctl
// (Open vSwitch 3.1.0) itself encodes for the same text:
//
//	ovs-ofctl -O OpenFlow13 -mmmmm parse-flow "table=30, priority=100, ip actions=check_pkt_larger(1464)->NXM_NX_REG1[0],resubmit(,45)"
//	ovs-ofctl -O OpenFlow13 -mmmmm parse-flow "table=45,priority=100,reg1=0x1/0x1 actions=drop"
func TestEncodeMatchesOVS(t *testing.T) {
	cases := []struct {
		flow Flow
		text string
		ovs  []string // hex dump lines printed by ovs-ofctl
	}{
		{
			flow: Flow{Table: 30, Priority: 100, Match: NewMatch().EthType(EthTypeIPv4),
				Actions: []Action{CheckPktLarger(1464, FieldReg1, 0), Resubmit(45)}},
			text: "table=30, priority=100, cookie=0x0, ip actions=check_pkt_larger(1464)->NXM_NX_REG1[0],resubmit(,45)",
			ovs: []string{
				"04 0e 00 70 00 00 00 01-00 00 00 00 00 00 00 00",
				"00 00 00 00 00 00 00 00-1e 00 00 00 00 00 00 64",
				"ff ff ff ff ff ff ff ff-ff ff ff ff 00 00 00 00",
				"00 01 00 0a 80 00 0a 02-08 00 00 00 00 00 00 00",
				"00 04 00 30 00 00 00 00-ff ff 00 18 00 00 23 20", // apply-actions; check_pkt_larger: len 24, NX
				"00 31 05 b8 00 00 00 01-02 04 00 00 00 00 00 00", // subtype 49, pkt_len 1464, offset 0, NXM_NX_REG1, pad
				"ff ff 00 10 00 00 23 20-00 0e ff f8 2d 00 00 00", // resubmit_table: in_port OFPP_IN_PORT, table 45
			},
		},
		{
			flow: Flow{Table: 45, Priority: 100, Match: NewMatch().WithMasked(FieldReg1, 1, 1)},
			text: "table=45, priority=100, cookie=0x0, reg1=0x1/0x1 actions=drop",
			ovs: []string{
				"04 0e 00 40 00 00 00 01-00 00 00 00 00 00 00 00",
				"00 00 00 00 00 00 00 00-2d 00 00 00 00 00 00 64",
				"ff ff ff ff ff ff ff ff-ff ff ff ff 00 00 00 00",
				"00 01 00 10 00 01 03 08-00 00 00 01 00 00 00 01", // NXM_NX_REG1_W value 1 mask 1
			},
		},
	}
	for _, c := range cases {
		if got := c.flow.String(); got != c.text {
			t.Errorf("text:\n got  %s\n want %s", got, c.text)
		}
		want := strings.NewReplacer(" ", "", "-", "").Replace(strings.Join(c.ovs, ""))
		b, err := EncodeFlowMod(1, FlowMod{Command: FlowAdd, Flow: c.flow})
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(b); got != want {
			t.Errorf("%s:\n got  %s\n want %s (ovs-ofctl)", &c.flow, got, want)
		}
		// And OVS's bytes decode to the flow.
		raw, _ := hex.DecodeString(want)
		fs, err := DecodeFlowStats(statsEntry(raw, 0, 0, 0))
		if err != nil || len(fs) != 1 || fs[0].Flow.Key() != c.flow.Key() || !c.flow.SameContent(&fs[0].Flow) {
			t.Errorf("decoding ovs-ofctl's bytes: %v %v, want %s", err, fs, &c.flow)
		}
	}
}

// TestDecodeNXUnknownForms: forms of resubmit and check_pkt_larger that
// vpcflow does not install decode as ActUnknown, never as a desired action.
func TestDecodeNXUnknownForms(t *testing.T) {
	h := func(s string) []byte {
		b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	known := map[string]Action{
		"ffff 0010 00002320 000e fff8 2d 000000":                  Resubmit(45),
		"ffff 0018 00002320 0031 05b8 0000 00010204 000000000000": CheckPktLarger(1464, FieldReg1, 0),
		"ffff 0018 00002320 0031 03e8 001f 00010004 000000000000": CheckPktLarger(1000, FieldReg0, 31),
		"ffff 0018 00002320 0031 0000 000f 00000002 000000000000": CheckPktLarger(0, FieldInPort, 15), // NXM_OF_IN_PORT, 16 bits
		"ffff 0018 00002320 0031 0001 003f 80000408 000000000000": CheckPktLarger(1, FieldMetadata, 63),
	}
	unknown := []string{
		"ffff 0010 00002320 000e 0003 2d 000000",                                   // resubmit(3,45): another in_port
		"ffff 0010 00002320 000e fff8 ff 000000",                                   // table 255: the current table
		"ffff 0010 00002320 000e fff8 2d 000100",                                   // non-zero pad
		"ffff 0010 00002320 002c fff8 2d 000000",                                   // resubmit(,45,ct)
		"ffff 0010 00002320 0001 fff8 000000 00",                                   // resubmit:IN_PORT (NXAST_RESUBMIT)
		"ffff 0018 00002320 000e fff8 2d 000000 0000000000000000",                  // resubmit of the wrong length
		"ffff 0018 00002320 0031 05b8 0020 00010204 000000000000",                  // bit 32 of a 32-bit register
		"ffff 0018 00002320 0031 05b8 0010 00000002 000000000000",                  // bit 16 of the 16-bit NXM in_port
		"ffff 0018 00002320 0031 05b8 0000 00010308 000000000000",                  // masked header
		"ffff 0018 00002320 0031 05b8 0000 00010204 000000000100",                  // non-zero pad
		"ffff 0018 00002320 0031 05b8 0000 00011004 000000000000",                  // NXM_NX_REG8: not ours
		"ffff 0018 00002320 0031 05b8 0000 ffff0108 00002320 0000",                 // experimenter header
		"ffff 0020 00002320 0031 05b8 0000 00010204 000000000000 0000000000000000", // too long
	}
	for in, want := range known {
		acts, err := decodeActions(nil, h(in))
		if err != nil || len(acts) != 1 || acts[0] != want {
			t.Errorf("%s: decoded %v (%v), want %s", in, acts, err, want)
		}
	}
	for _, in := range unknown {
		acts, err := decodeActions(nil, h(in))
		if err != nil || len(acts) != 1 || acts[0].Type != ActUnknown {
			t.Errorf("%s: decoded %v (%v), want one unknown action", in, acts, err)
		}
	}
}

func TestEncodeRejectsInvalid(t *testing.T) {
	bad := []Flow{
		{Match: Match{{Field: 0, Value: 1}}},
		{Match: Match{{Field: fieldEnd, Value: 1}}},
		{Actions: []Action{GotoTable(3), Output(1)}},
		{Actions: []Action{GotoTable(3), WriteMetadata(1, 1)}},
		{Actions: []Action{WriteMetadata(1, 1), WriteMetadata(1, 1)}},
		{Actions: []Action{Move(FieldEthSrc, FieldReg0)}},
		{Actions: []Action{SetField(0, 1)}},
		{Actions: []Action{{Type: ActUnknown, ext: "00"}}},
		{Actions: []Action{CheckPktLarger(1000, FieldReg1, 32)}},
		{Actions: []Action{CheckPktLarger(1000, FieldIPProto, 8)}},
		{Actions: []Action{CheckPktLarger(1000, 0, 0)}},
		{Actions: []Action{CheckPktLarger(1000, fieldEnd, 0)}},
		{Actions: []Action{{Type: ActCheckPktLarger, Value: 0x10000, Field: FieldReg1}}},
		{Actions: []Action{GotoTable(3), CheckPktLarger(1000, FieldReg1, 0)}},
		{Actions: []Action{Resubmit(TableAll)}},
		{Actions: []Action{WriteMetadata(1, 1), Resubmit(3)}},
		{Actions: []Action{{Type: 0}}},
	}
	for _, f := range bad {
		if _, err := EncodeFlowMod(1, FlowMod{Command: FlowAdd, Flow: f}); err == nil {
			t.Errorf("EncodeFlowMod accepted %s", &f)
		}
	}
	if _, err := EncodeFlowMod(1, FlowMod{Command: 99}); err == nil {
		t.Error("EncodeFlowMod accepted command 99")
	}
}

func TestFlowText(t *testing.T) {
	flows := pipelineFlows()
	want := []string{
		"table=0, priority=100, cookie=0x7670020000000001, in_port=1,dl_src=52:58:00:98:c0:81 actions=write_metadata:0x1/0xffffffff,goto_table:10",
		"table=10, priority=100, cookie=0x7670020000000001, arp,in_port=1,dl_src=52:58:00:98:c0:81,arp_spa=10.10.10.11,arp_sha=52:58:00:98:c0:81 actions=goto_table:20",
		"table=20, priority=100, cookie=0x7670020000000001, arp,in_port=1,arp_tpa=10.10.10.0/24,arp_op=1 actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:ee:ff:ff:ff:ff:ff->eth_src,set_field:2->arp_op,move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],set_field:ee:ff:ff:ff:ff:ff->arp_sha,move:NXM_OF_ARP_TPA[]->NXM_NX_REG0[],move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],move:NXM_NX_REG0[]->NXM_OF_ARP_SPA[],IN_PORT",
		"table=30, priority=124, cookie=0x7670020000000001, ip,metadata=0x1/0xffffffff,nw_dst=172.18.3.0/24 actions=set_field:ee:ff:ff:ff:ff:ff->eth_src,set_field:52:58:00:98:c0:92->eth_dst,dec_ttl,output:2",
		"table=30, priority=132, cookie=0x7670020000000001, ip,metadata=0x1,nw_dst=10.10.10.12 actions=set_field:ee:ff:ff:ff:ff:ff->eth_src,set_field:52:58:00:98:c0:92->eth_dst,output:2",
		"table=30, priority=0, cookie=0x7670020000000001 actions=drop",
	}
	for i, w := range want {
		if got := flows[i].String(); got != w {
			t.Errorf("flow %d text:\n got  %s\n want %s", i, got, w)
		}
	}
	mv := Move(FieldInPort, FieldReg0).String()
	if mv != "move:OXM_OF_IN_PORT[]->NXM_NX_REG0[]" {
		t.Errorf("in_port move text %q", mv)
	}
	for a, w := range map[Action]string{
		CheckPktLarger(1464, FieldReg1, 0):      "check_pkt_larger(1464)->NXM_NX_REG1[0]",
		CheckPktLarger(0, FieldReg0, 31):        "check_pkt_larger(0)->NXM_NX_REG0[31]",
		CheckPktLarger(9000, FieldMetadata, 63): "check_pkt_larger(9000)->OXM_OF_METADATA[63]",
		Resubmit(45):                            "resubmit(,45)",
		Resubmit(0):                             "resubmit(,0)",
	} {
		if got := a.String(); got != w {
			t.Errorf("action text %q, want %q", got, w)
		}
	}
	m := NewMatch().EthType(EthTypeIPv4).WithMasked(FieldReg1, 1, 1).WithMasked(FieldReg0, 2, 2).InPort(3).String()
	if m != "ip,reg0=0x2/0x2,reg1=0x1/0x1,in_port=3" {
		t.Errorf("match text %q", m)
	}
}

// TestDecodeOVSSpellings feeds an entry written the ways a switch may
// re-encode what we installed: NXM instead of OXM headers, full masks,
// reg_load and NX dec_ttl, instructions out of order.
func TestDecodeOVSSpellings(t *testing.T) {
	h := func(s string) []byte {
		b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	match := h("0001 002e" +
		"00000002 0005" + // NXM_OF_IN_PORT (16 bit) = 5
		"00000406 525800 98c081" + // NXM_OF_ETH_SRC
		"00010108 0000000a ffffffff" + // NXM_NX_REG0 with a full mask
		"00000602 0806" + // NXM_OF_ETH_TYPE
		"80002e04 0a0a0a0b" + // OXM_OF_ARP_TPA
		"0000")
	acts := h("ffff 0018 00002320 0006 0030 0000 0000 80000806 00000206" + // reg_move, OXM eth_src -> NXM eth_dst
		"ffff 0018 00002320 0007 001f 00010004 0000000000000007" + // reg_load 7 -> reg0[0..31]
		"ffff 0010 00002320 0012 000000000000" + // NX dec_ttl
		"ffff 0018 00002320 0021 80002a02 0002 0000000000000000") // reg_load2 (set_field) arp_op
	apply := append(h("0004"), 0, 0, 0, 0, 0, 0)
	be.PutUint16(apply[2:], uint16(8+len(acts)))
	apply = append(apply, acts...)
	instr := append(h("0001 0008 0a000000"), h("0002 0018 00000000 0000000000000001 00000000ffffffff")...)
	instr = append(instr, apply...)
	entry := make([]byte, flowStatsFixLen)
	entry[2] = 7
	be.PutUint16(entry[12:], 33)
	be.PutUint64(entry[24:], 0xabc)
	entry = append(entry, match...)
	entry = append(entry, instr...)
	be.PutUint16(entry, uint16(len(entry)))

	got, err := DecodeFlowStats(entry)
	if err != nil {
		t.Fatalf("DecodeFlowStats: %v", err)
	}
	want := Flow{Table: 7, Priority: 33, Cookie: 0xabc,
		Match: NewMatch().InPort(5).EthSrc(macVM1).With(FieldReg0, 10).EthType(EthTypeARP).With(FieldArpTpa, 0x0a0a0a0b),
		Actions: []Action{Move(FieldEthSrc, FieldEthDst), Load(FieldReg0, 0, 32, 7), DecTTL(), SetField(FieldArpOp, 2),
			WriteMetadata(1, 0xffffffff), GotoTable(10)}}
	if len(got) != 1 || got[0].Flow.Key() != want.Key() || !want.SameContent(&got[0].Flow) {
		t.Fatalf("decoded\n %v\nwant\n %s", got, &want)
	}
}

// TestDecodeUnknown checks that what we do not know never looks like a
// desired flow and never fails the dump.
func TestDecodeUnknown(t *testing.T) {
	base := Flow{Table: 1, Priority: 10, Cookie: 1, Match: NewMatch().InPort(1), Actions: []Action{Output(2)}}
	fm := mustEncode(t, FlowMod{Command: FlowAdd, Flow: base})
	good := statsEntry(fm, 0, 0, 0)

	mutate := map[string]func([]byte) []byte{
		"unknown match field": func(b []byte) []byte {
			// Replace in_port (OXM 0x80000004) with vlan_vid (0x80000c02 + 2 bytes pad-free value).
			m := bytes.Replace(b, []byte{0x80, 0, 0, 4, 0, 0, 0, 1}, []byte{0x80, 0, 0x0c, 2, 0x10, 0x05, 0, 0}, 1)
			return fixMatchLen(m, 4+6)
		},
		"experimenter match field": func(b []byte) []byte {
			m := bytes.Replace(b, []byte{0x80, 0, 0, 4, 0, 0, 0, 1}, []byte{0xff, 0xff, 0, 4, 0, 0, 0x23, 0x20}, 1)
			return fixMatchLen(m, 4+8)
		},
		"unknown action": func(b []byte) []byte {
			// output -> group action (type 22)
			i := bytes.Index(b, []byte{0, 0, 0, 0x10, 0, 0, 0, 2})
			b[i+1] = 22
			return b
		},
		"output to controller, short max_len": func(b []byte) []byte {
			i := bytes.Index(b, []byte{0, 0, 0, 0x10, 0, 0, 0, 2})
			copy(b[i+4:], []byte{0xff, 0xff, 0xff, 0xfd, 0, 128})
			return b
		},
		"unknown instruction": func(b []byte) []byte {
			i := bytes.Index(b, []byte{0, 4, 0, 0x18})
			b[i+1] = 3 // write-actions
			return b
		},
	}
	for name, mut := range mutate {
		t.Run(name, func(t *testing.T) {
			b := mut(append([]byte(nil), good...))
			got, err := DecodeFlowStats(b)
			if err != nil || len(got) != 1 {
				t.Fatalf("DecodeFlowStats: %v (%d flows)", err, len(got))
			}
			f := &got[0].Flow
			if f.Key() == base.Key() && base.SameContent(f) {
				t.Errorf("odd entry decoded equal to the desired flow: %s", f)
			}
			t.Logf("decoded as: %s", f)
			_ = f.String() // must not panic
		})
	}
}

// fixMatchLen rewrites the match and entry lengths after a mutation that
// changed the match's unpadded length to newLen (the padded length is kept
// at 16 bytes for these tests).
func fixMatchLen(entry []byte, newLen int) []byte {
	be.PutUint16(entry[flowStatsFixLen+2:], uint16(newLen))
	return entry
}

func TestDecodeTruncated(t *testing.T) {
	var body []byte
	for _, f := range pipelineFlows() {
		body = append(body, statsEntry(mustEncode(t, FlowMod{Command: FlowAdd, Flow: f}), 1, 2, 3)...)
	}
	if _, err := DecodeFlowStats(body); err != nil {
		t.Fatal(err)
	}
	boundary := map[int]bool{}
	for off := 0; off < len(body); off += int(be.Uint16(body[off:])) {
		boundary[off] = true
	}
	for n := 1; n < len(body); n++ {
		got, err := DecodeFlowStats(body[:n])
		if (err == nil) != boundary[n] {
			t.Errorf("cut at %d: err=%v, %d flows", n, err, len(got))
		}
	}
	// Corrupt inner lengths.
	for i := 0; i < len(body); i++ {
		b := append([]byte(nil), body...)
		b[i] ^= 0xff
		_, _ = DecodeFlowStats(b)
	}
}

func TestFlowModErrorText(t *testing.T) {
	f := Flow{Table: 5, Priority: 1, Actions: []Action{GotoTable(1)}}
	err := joinFlowModErrors([]*FlowModError{{Index: 3, Mod: FlowMod{Flow: f}, Err: &OFError{Type: 3, Code: 2}}}, 4)
	msg := err.Error()
	for _, s := range []string{"4 of the flow mods rejected", "flow-mod #3", "OFPET_BAD_INSTRUCTION/BAD_TABLE_ID", f.String(), "and 3 more"} {
		if !strings.Contains(msg, s) {
			t.Errorf("%q does not contain %q", msg, s)
		}
	}
}
