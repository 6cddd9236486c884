package openflow

import (
	"bytes"
	"encoding/hex"
	"os/exec"
	"reflect"
	"strings"
	"testing"
)

// encodePacketIn2 encodes pi as OVS 3.1 writes an NXT_PACKET_IN2
// (ofputil_encode_packet_in_private): packet, full_len, buffer_id (only
// when buffered), table_id, cookie (a 64-bit property: 4 bytes of padding
// before the value), reason, metadata, userdata, continuation.
func encodePacketIn2(xid uint32, pi PacketIn) []byte {
	b := appendHeader(nil, typeExperimenter, xid)
	b = appendU32(b, nxExperimenter)
	b = appendU32(b, nxtPacketIn2)
	b = appendProp(b, nxpintPacket, pi.Data)
	if int(pi.TotalLen) != len(pi.Data) {
		b = appendProp(b, nxpintFullLen, appendU32(nil, uint32(pi.TotalLen)))
	}
	if pi.BufferID != noBuffer {
		b = appendProp(b, nxpintBufferID, appendU32(nil, pi.BufferID))
	}
	b = appendProp(b, nxpintTableID, []byte{pi.TableID})
	b = appendProp(b, nxpintCookie, appendU64([]byte{0, 0, 0, 0}, pi.Cookie))
	b = appendProp(b, nxpintReason, []byte{pi.Reason})
	var meta []byte
	for _, fm := range pi.Match {
		meta = appendOXM(meta, fm.Field, fm.Value, fm.Mask, fm.HasMask)
	}
	b = appendProp(b, nxpintMetadata, meta)
	if pi.Userdata != nil {
		b = appendProp(b, nxpintUserdata, pi.Userdata)
	}
	if pi.Continuation != nil {
		b = appendProp(b, nxpintContinuation, pi.Continuation)
	}
	setLength(b, 0)
	return b
}

func samePacketIn2(a, b PacketIn) bool {
	return samePacketIn(a, b) && bytes.Equal(a.Userdata, b.Userdata) && bytes.Equal(a.Continuation, b.Continuation)
}

func packetIn2Seeds(t testing.TB) [][]byte {
	frame := unhex(t, icmpFrame)
	return [][]byte{
		encodePacketIn2(3, PacketIn{Reason: PacketInAction, TableID: 9, Cookie: 0xabc, TotalLen: uint16(len(frame)), BufferID: noBuffer,
			Match: NewMatch().InPort(3).With(FieldTunID, 0x55).Reg(1, 7, 0xffffffff).Metadata(2, ^uint64(0)), Data: frame, Userdata: []byte{1, 2, 3}}),
		encodePacketIn2(4, PacketIn{Reason: PacketInNoMatch, TotalLen: 58, BufferID: 77, Match: NewMatch().InPort(1), Data: frame[:20],
			Userdata: []byte("dhcp"), Continuation: bytes.Repeat([]byte{0xab}, 21)}),
		encodePacketIn2(5, PacketIn{Match: NewMatch().InPort(2).CTState(CTTrk|CTNew, 0).With(FieldCTZone, 3), BufferID: noBuffer}),
		encodePacketIn2(6, PacketIn{Match: NewMatch().With(FieldReg0, 1), BufferID: noBuffer}), // no in_port
	}
}

// TestPacketIn2PrintedByOVS: OVS's own decoder reads our encoding of an
// NXT_PACKET_IN2 as we mean it (so the encoder the tests and the fuzzer use
// is OVS's format).
func TestPacketIn2PrintedByOVS(t *testing.T) {
	requireOfctl(t)
	frame := unhex(t, icmpFrame)
	seeds := [][]byte{packetIn2Seeds(t)[0],
		// OVS parses a continuation's contents, so none here.
		encodePacketIn2(4, PacketIn{Reason: PacketInNoMatch, TotalLen: 58, BufferID: 77, Match: NewMatch().InPort(1), Data: frame[:20], Userdata: []byte("dhcp")})}
	for i, want := range []string{
		"NXT_PACKET_IN2 (OF1.3) (xid=0x3): table_id=9 cookie=0xabc total_len=58 reg1=0x7,tun_id=0x55,metadata=0x2,in_port=3 (via action) data_len=58 (unbuffered)\n userdata=01.02.03",
		"NXT_PACKET_IN2 (OF1.3) (xid=0x4): cookie=0x0 total_len=58 in_port=1 (via no_match) data_len=20 buffer=0x0000004d\n userdata=64.68.63.70",
	} {
		out, err := exec.Command("ovs-ofctl", "ofp-print", hex.EncodeToString(seeds[i])).CombinedOutput()
		if err != nil {
			t.Fatalf("ovs-ofctl ofp-print: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), want) {
			t.Errorf("ovs-ofctl ofp-print:\n%s\nwant it to contain\n%s", out, want)
		}
	}
}

func TestDecodePacketIn2(t *testing.T) {
	frame := unhex(t, icmpFrame)
	want := PacketIn{Reason: PacketInAction, TableID: 9, Cookie: 0xabc, InPort: 3, TotalLen: uint16(len(frame)), BufferID: noBuffer,
		Match: NewMatch().InPort(3).With(FieldTunID, 0x55).Reg(1, 7, 0xffffffff).Metadata(2, ^uint64(0)), Data: frame, Userdata: []byte{1, 2, 3}}
	got, err := DecodePacketIn2(packetIn2Seeds(t)[0])
	if err != nil || !samePacketIn2(got, want) {
		t.Fatalf("DecodePacketIn2: %v\n got  %+v\n want %+v", err, got, want)
	}
	got, err = DecodePacketIn2(packetIn2Seeds(t)[1])
	if err != nil || got.BufferID != 77 || got.TotalLen != 58 || len(got.Data) != 20 || string(got.Userdata) != "dhcp" ||
		len(got.Continuation) != 21 || got.Reason != PacketInNoMatch {
		t.Fatalf("buffered, paused packet-in2: %v %+v", err, got)
	}
	got, err = DecodePacketIn2(packetIn2Seeds(t)[2])
	if err != nil || got.Userdata != nil || got.Continuation != nil || got.TotalLen != 0 ||
		!reflect.DeepEqual(got.Match, NewMatch().InPort(2).CTState(CTTrk|CTNew, 0).With(FieldCTZone, 3)) {
		t.Fatalf("packet-in2 with conntrack metadata: %v %+v", err, got)
	}
	if _, err := DecodePacketIn2(packetIn2Seeds(t)[3]); err == nil {
		t.Error("packet-in2 without in_port decoded")
	}
	// Not a packet-in2, truncations, bad lengths.
	good := packetIn2Seeds(t)[0]
	if _, err := DecodePacketIn2(encodePacketIn(1, want)); err == nil {
		t.Error("OFPT_PACKET_IN decoded as a packet-in2")
	}
	for n := 0; n < len(good); n++ {
		cut := append([]byte(nil), good[:n]...)
		if len(cut) >= 4 {
			be.PutUint16(cut[2:], uint16(n))
		}
		if pi, err := DecodePacketIn2(cut); err == nil && n < 16+8+len(frame) {
			t.Errorf("cut at %d decoded: %+v", n, pi)
		}
	}
	for i := 16; i < len(good); i++ {
		b := append([]byte(nil), good...)
		b[i] ^= 0xff
		_, _ = DecodePacketIn2(b) // must not panic
	}
}

// FuzzDecodePacketIn2: the decoder never panics, and what decodes into
// known fields encodes (as OVS would) back to the same packet-in.
func FuzzDecodePacketIn2(f *testing.F) {
	for _, s := range packetIn2Seeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		pi, err := DecodePacketIn2(b)
		if err != nil {
			return
		}
		_ = pi.Match.String()
		if fm, ok := pi.Match.Get(FieldInPort); !ok || fm.HasMask || uint32(fm.Value) != pi.InPort {
			t.Fatalf("in_port %d, match %s", pi.InPort, pi.Match)
		}
		if len(pi.Data)+len(pi.Userdata)+len(pi.Continuation) > len(b) {
			t.Fatalf("more payload than message")
		}
		for _, fm := range pi.Match {
			if !validField(fm.Field) {
				return
			}
		}
		again, err := DecodePacketIn2(encodePacketIn2(0, pi))
		if err != nil || !samePacketIn2(again, pi) {
			t.Fatalf("re-encoding changed the packet-in2 (%v):\n %+v\n %+v", err, pi, again)
		}
	})
}
