package openflow

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"
	"unsafe"
)

func TestActionStaysSmallAndComparable(t *testing.T) {
	if n := unsafe.Sizeof(Action{}); n > 48 {
		t.Errorf("Action is %d bytes, want at most 48", n)
	}
	a := netip.MustParseAddr
	build := func() Action {
		return ConnTrack(CT{Commit: true, Zone: 5, NAT: &NAT{Kind: NATSrc, Min: a("10.0.0.1"), MinPort: 80}, Exec: []Action{SetField(FieldCTMark, 1)}})
	}
	x, y := build(), build()
	if x != y || !x.Equal(y) {
		t.Error("two ConnTrack actions built from the same spec differ")
	}
	if x == ConnTrack(CT{Commit: true, Zone: 6}) {
		t.Error("different ct actions are equal")
	}
	// A single address or port written as a range is the same action.
	z := ConnTrack(CT{Commit: true, Zone: 5, NAT: &NAT{Kind: NATSrc, Min: a("10.0.0.1"), Max: a("10.0.0.1"), MinPort: 80, MaxPort: 80},
		Exec: []Action{SetField(FieldCTMark, 1)}})
	if z != x {
		t.Errorf("%s != %s", z, x)
	}
	u := ControllerWith(Controller{Userdata: []byte{1, 2}, MeterID: 4})
	if u != ControllerWith(Controller{Userdata: []byte{1, 2}, MeterID: 4}) || u == ControllerWith(Controller{Userdata: []byte{1, 3}, MeterID: 4}) {
		t.Error("controller actions do not compare by content")
	}
}

func TestCTSpecRoundTrip(t *testing.T) {
	a := netip.MustParseAddr
	specs := []CT{
		{},
		{Commit: true, Force: true, Zone: 65535},
		{Recirc: true, Table: 0, ZoneField: FieldReg3, ZoneOfs: 16},
		{Commit: true, NAT: &NAT{Kind: NATDst, Min: a("192.0.2.1"), Max: a("192.0.2.9"), MinPort: 1, MaxPort: 2, Persistent: true, Hash: true}},
		{NAT: &NAT{}},
		{Commit: true, Exec: []Action{Load(FieldCTLabel, 63, 1, 1), SetField(FieldCTMark, 0xffffffff)}},
	}
	for _, c := range specs {
		act := ConnTrack(c)
		if act.Type != ActCT {
			t.Fatalf("ConnTrack(%+v) = %s", c, act)
		}
		got, ok := act.CT()
		if !ok || got.String() != c.String() {
			t.Errorf("CT() of %s = %+v, %v", act, got, ok)
		}
		// Decoding the bytes gives the same action.
		acts, err := decodeActions(nil, []byte(act.ext))
		if err != nil || len(acts) != 1 || acts[0] != act {
			t.Errorf("decoding %s: %v %v", act, acts, err)
		}
	}
	if _, ok := Output(1).CT(); ok {
		t.Error("Output has a CT")
	}
}

// String prints the spec as the action would, for comparisons.
func (c CT) String() string { return ConnTrack(c).String() }

func TestBuildersRefuseWhatOVSRefuses(t *testing.T) {
	a := netip.MustParseAddr
	bad := map[string]Action{
		"exec without commit":      ConnTrack(CT{Exec: []Action{SetField(FieldCTMark, 1)}}),
		"nat(src) without commit":  ConnTrack(CT{NAT: &NAT{Kind: NATSrc, Min: a("10.0.0.1")}}),
		"force without commit":     ConnTrack(CT{Force: true}),
		"exec of another field":    ConnTrack(CT{Commit: true, Exec: []Action{SetField(FieldReg0, 1)}}),
		"exec of an output":        ConnTrack(CT{Commit: true, Exec: []Action{Output(1)}}),
		"zone field and zone":      ConnTrack(CT{Zone: 1, ZoneField: FieldReg0}),
		"zone bits outside":        ConnTrack(CT{ZoneField: FieldReg0, ZoneOfs: 17}),
		"zone from ct_zone 16+1":   ConnTrack(CT{ZoneField: FieldCTZone, ZoneOfs: 1}),
		"recirc to table 255":      ConnTrack(CT{Recirc: true, Table: 255}),
		"bare nat with an address": ConnTrack(CT{NAT: &NAT{Min: a("10.0.0.1")}}),
		"nat IPv6":                 ConnTrack(CT{Commit: true, NAT: &NAT{Kind: NATSrc, Min: a("2001:db8::1")}}),
		"nat max below min":        ConnTrack(CT{Commit: true, NAT: &NAT{Kind: NATSrc, Min: a("10.0.0.9"), Max: a("10.0.0.1")}}),
		"nat ports without addr":   ConnTrack(CT{Commit: true, NAT: &NAT{Kind: NATSrc, MinPort: 1}}),
		"nat port range reversed":  ConnTrack(CT{Commit: true, NAT: &NAT{Kind: NATSrc, Min: a("10.0.0.1"), MinPort: 9, MaxPort: 1}}),
		"nat hash and random":      ConnTrack(CT{Commit: true, NAT: &NAT{Kind: NATSrc, Min: a("10.0.0.1"), Hash: true, Random: true}}),
		"nat flags without addr":   ConnTrack(CT{Commit: true, NAT: &NAT{Kind: NATSrc, Persistent: true}}),
		"nat kind":                 ConnTrack(CT{Commit: true, NAT: &NAT{Kind: 7, Min: a("10.0.0.1")}}),
		"controller reason":        ControllerWith(Controller{Reason: 9, Userdata: []byte{1}}),
		"controller userdata size": ControllerWith(Controller{Userdata: make([]byte, MaxUserdata+1)}),
		"move of unequal widths":   Move(FieldEthSrc, FieldReg0),
	}
	for name, act := range bad {
		_, err := EncodeFlowMod(1, FlowMod{Flow: Flow{Match: NewMatch().EthType(EthTypeIPv4), Actions: []Action{act}}})
		if act.Type != actInvalid || err == nil {
			t.Errorf("%s: built %s, encoding error %v", name, act, err)
		} else if !strings.HasPrefix(act.String(), "invalid(") {
			t.Errorf("%s: text %q", name, act)
		}
	}
	ip := NewMatch().EthType(EthTypeIPv4)
	badFlows := map[string]Flow{
		"set ct_mark outside ct":           {Match: ip, Actions: []Action{SetField(FieldCTMark, 1)}},
		"load ct_label outside ct":         {Match: ip, Actions: []Action{Load(FieldCTLabel, 0, 1, 1)}},
		"set conj_id":                      {Actions: []Action{SetField(FieldConjID, 1)}},
		"set ct_state":                     {Actions: []Action{SetField(FieldCTState, 1)}},
		"set in_port":                      {Actions: []Action{SetField(FieldInPort, 1)}},
		"load metadata":                    {Actions: []Action{Load(FieldMetadata, 0, 8, 1)}},
		"load value too wide":              {Actions: []Action{Load(FieldReg0, 0, 4, 16)}},
		"load past the field":              {Actions: []Action{Load(FieldReg0, 30, 4, 1)}},
		"load of 0 bits":                   {Actions: []Action{Load(FieldReg0, 0, 0, 0)}},
		"load ct_label high bits":          {Actions: []Action{ConnTrack(CT{Commit: true, Exec: []Action{Load(FieldCTLabel, 64, 1, 1)}})}},
		"move past the field":              {Actions: []Action{MoveBits(FieldReg0, 24, FieldReg1, 0, 16)}},
		"move into conj_id":                {Actions: []Action{MoveBits(FieldReg0, 0, FieldConjID, 0, 16)}},
		"output_reg past the field":        {Actions: []Action{OutputReg(FieldReg0, 16, 32)}},
		"output_reg of 64 bits":            {Actions: []Action{OutputReg(FieldMetadata, 0, 64)}},
		"conjunction k 0":                  {Actions: []Action{Conjunction(1, 0, 2)}},
		"conjunction k > n":                {Actions: []Action{Conjunction(1, 3, 2)}},
		"conjunction of 1 clause":          {Actions: []Action{Conjunction(1, 1, 1)}},
		"conjunction of 65 clauses":        {Actions: []Action{Conjunction(1, 1, 65)}},
		"conjunction with an output":       {Actions: []Action{Conjunction(1, 1, 2), Output(1)}},
		"conjunction with goto_table":      {Actions: []Action{Conjunction(1, 1, 2), GotoTable(3)}},
		"meter not first":                  {Actions: []Action{Output(1), Meter(1)}},
		"meter 0":                          {Actions: []Action{Meter(0)}},
		"meter above OFPM_MAX":             {Actions: []Action{Meter(0xffff0001)}},
		"two meters":                       {Actions: []Action{Meter(1), Meter(2)}},
		"mask on ct_zone":                  {Match: NewMatch().WithMasked(FieldCTZone, 1, 1)},
		"mask on conj_id":                  {Match: NewMatch().WithMasked(FieldConjID, 1, 1)},
		"mask on in_port":                  {Match: NewMatch().WithMasked(FieldInPort, 1, 1)},
		"mask on icmp_type":                {Match: NewMatch().ICMP().WithMasked(FieldICMPType, 1, 1)},
		"a ct action not made by builder":  {Match: ip, Actions: []Action{{Type: ActCT}}},
		"a controller not made by builder": {Actions: []Action{{Type: ActController2}}},
	}
	for name, f := range badFlows {
		if _, err := EncodeFlowMod(1, FlowMod{Flow: f}); err == nil {
			t.Errorf("%s: EncodeFlowMod accepted %s", name, &f)
		}
	}
}

func TestMatchText(t *testing.T) {
	for m, want := range map[string]Match{
		"ct_state=-new+est+trk":            NewMatch().CTState(CTTrk|CTEst, CTNew),
		"ct_state=new|trk":                 NewMatch().CTState(CTNew|CTTrk, 0xff),
		"ct_state=0":                       NewMatch().CTState(0, 0xff),
		"ct_label=0x5/0xffffffffffffffff":  NewMatch().WithMasked(FieldCTLabel, 5, ^uint64(0)),
		"ct_label=0":                       NewMatch().With(FieldCTLabel, 0),
		"reg0=0/0x1,reg7=0":                NewMatch().Reg(7, 0, 0xffffffff).Reg(0, 0, 1),
		"tcp,tp_src=0x400/0xff00":          NewMatch().TCP().WithMasked(FieldTCPSrc, 0x400, 0xff00),
		"udp,tp_dst=53":                    NewMatch().UDP().With(FieldUDPDst, 53),
		"icmp,icmp_type=8":                 NewMatch().ICMP().With(FieldICMPType, 8),
		"ip,nw_src=10.0.0.0/8,nw_proto=47": NewMatch().IPProto(47).Prefix(FieldIPv4Src, netip.MustParsePrefix("10.0.0.0/8")),
		"in_port=1,dl_type=0x88cc":         NewMatch().EthType(0x88cc).InPort(1),
		"ipv6,in_port=1":                   NewMatch().EthType(0x86dd).InPort(1),
		"tcp6":                             NewMatch().EthType(0x86dd).With(FieldIPProto, 6),
		"nw_proto=6":                       NewMatch().With(FieldIPProto, 6),
		"conj_id=7,ip":                     NewMatch().EthType(EthTypeIPv4).With(FieldConjID, 7),
	} {
		if got := want.String(); got != m {
			t.Errorf("match text %q, want %q", got, m)
		}
	}
	if Reg(8) != 0 || Reg(-1) != 0 || Reg(3) != FieldReg3 {
		t.Error("Reg")
	}
}

func TestDecodeCTLabelHighBits(t *testing.T) {
	// ct_label exact with a high bit set, and masked with a mask that
	// covers high bits: never one of our matches.
	h := func(s string) []byte {
		b := unhex(t, s)
		return b
	}
	cases := map[string]bool{
		"0001d810 00000000000000010000000000000005":                                  false, // high bit 64 set
		"0001d810 00000000000000000000000000000005":                                  true,
		"0001d920 00000000000000000000000000000005 0000000000000000ffffffffffffffff": true,  // low-64 mask
		"0001d920 00000000000000000000000000000005 00000000000000010000000000000000": false, // mask on a high bit
		"0001d920 00000000000000000000000000000005 ffffffffffffffffffffffffffffffff": true,  // full mask: exact
		"0001d920 00000000000000010000000000000005 ffffffffffffffffffffffffffffffff": false, // full mask, high value
		"0001d308 0000012100000121":                                                  false, // ct_state bit 8
		"0001d308 00000021000000ff":                                                  true,
	}
	for in, ours := range cases {
		m, err := decodeOXMList(h(in))
		if err != nil || len(m) != 1 {
			t.Fatalf("%s: %v %v", in, m, err)
		}
		if known := m[0].Field != 0; known != ours {
			t.Errorf("%s decoded as %s, want known=%v", in, m, ours)
		}
	}
}

func TestMeterDecoders(t *testing.T) {
	st := unhex(t, "00000003 0038 000000000000 00000002 0000000000000064 0000000000001f40 00000005 00000007 000000000000000a 0000000000000320")
	got, err := DecodeMeterStats(append(st, st...))
	want := MeterStats{ID: 3, FlowCount: 2, Packets: 100, Bytes: 8000, Duration: 5*time.Second + 7, Bands: []MeterBandStats{{10, 800}}}
	if err != nil || len(got) != 2 || got[0].ID != want.ID || got[0].FlowCount != 2 || got[0].Packets != 100 || got[0].Bytes != 8000 ||
		got[0].Duration != want.Duration || len(got[0].Bands) != 1 || got[0].Bands[0] != want.Bands[0] {
		t.Fatalf("DecodeMeterStats = %+v, %v", got, err)
	}
	for n := 1; n < len(st); n++ {
		if _, err := DecodeMeterStats(st[:n]); err == nil {
			t.Errorf("meter stats cut at %d decoded", n)
		}
	}
	conf := unhex(t, "0018 000e 00000007 0001 0010 00000064 0000000a 00000000")
	mc, err := DecodeMeterConfigs(conf)
	if err != nil || len(mc) != 1 || mc[0] != (MeterConfig{ID: 7, Rate: 100, Burst: 10}) {
		t.Fatalf("DecodeMeterConfigs = %+v, %v", mc, err)
	}
	dscp := bytes.Clone(conf)
	dscp[9] = 2 // band type DSCP remark
	if _, err := DecodeMeterConfigs(dscp); err == nil {
		t.Error("a DSCP band decoded")
	}
	b, err := encodeMeterMod(9, 0, MeterConfig{ID: 7, Rate: 100, Burst: 10})
	if err != nil || !bytes.Equal(b, unhex(t, "041d0020 00000009 0000 000e 00000007 0001 0010 00000064 0000000a 00000000")) {
		t.Errorf("meter mod %x, %v", b, err)
	}
}

// FuzzDecodeMeters: the meter decoders never panic.
func FuzzDecodeMeters(f *testing.F) {
	f.Add(unhex(f, "00000003 0038 000000000000 00000002 0000000000000064 0000000000001f40 00000005 00000007 000000000000000a 0000000000000320"))
	f.Add(unhex(f, "0018 000e 00000007 0001 0010 00000064 0000000a 00000000"))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, _ := DecodeMeterStats(b)
		for _, s := range st {
			if len(s.Bands)*meterBandStatsLen+meterStatsLen > len(b) {
				t.Fatalf("%d bands from %d bytes", len(s.Bands), len(b))
			}
		}
		mc, _ := DecodeMeterConfigs(b)
		for _, m := range mc {
			_ = m.String()
		}
	})
}
