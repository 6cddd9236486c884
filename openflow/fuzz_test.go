package openflow

import (
	"bytes"
	"net"
	"net/netip"
	"testing"

	"go.uber.org/zap"
)

func flowStatsSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	var all []byte
	for _, f := range append(pipelineFlows(), allFieldsAndActions()...) {
		b, err := EncodeFlowMod(1, FlowMod{Flow: f})
		if err != nil {
			t.Fatal(err)
		}
		e := statsEntry(b, 1, 2, 3)
		seeds = append(seeds, e)
		all = append(all, e...)
	}
	return append(seeds, all, nil, make([]byte, 56), []byte{0, 56, 0xff})
}

// FuzzDecodeFlowStats: the decoder never panics, and whatever decodes into
// known fields and actions encodes back to the same flow.
func FuzzDecodeFlowStats(f *testing.F) {
	for _, s := range flowStatsSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		stats, err := DecodeFlowStats(b)
		if err != nil {
			return
		}
		for i := range stats {
			fl := &stats[i].Flow
			_ = fl.String()
			_ = fl.Key()
			enc, err := EncodeFlowMod(1, FlowMod{Flow: *fl})
			if err != nil {
				continue // unknown parts: not something we would install
			}
			again, err := DecodeFlowStats(statsEntry(enc, 0, 0, 0))
			if err != nil || len(again) != 1 {
				t.Fatalf("re-decoding %s: %v", fl, err)
			}
			if again[0].Flow.Key() != fl.Key() || !fl.SameContent(&again[0].Flow) {
				t.Fatalf("re-encoding changed the flow:\n %s\n %s", fl, &again[0].Flow)
			}
		}
	})
}

// FuzzReadMessage feeds arbitrary bytes through framing and dispatch with
// requests pending, as the reader goroutine does (without its recover, so
// a panic fails the fuzz run).
func FuzzReadMessage(f *testing.F) {
	entries := bytes.Join(flowStatsSeeds(f)[:4], nil)
	msgs := [][]byte{
		encodeHello(1),
		simpleMessage(typeEchoRequest, 5, []byte("x")),
		multipartReply(1, true, entries),
		multipartReply(1, false, entries[:56]),
		errorMsg(2, 1, 2),
		errorMsg(7, 2, 4),
		simpleMessage(typeBarrierReply, 2, nil),
		appendBundleControl(nil, 2, 9, bundleOpenReply),
		simpleMessage(typeMultipartReply, 1, []byte{0, 1}),
		{4, 1, 0, 8, 0, 0, 0, 3},
		{4, 1, 0, 4, 0, 0, 0, 3},
	}
	msgs = append(msgs, packetInSeeds(f)...)
	for _, m := range msgs {
		f.Add(m)
	}
	f.Add(bytes.Join(msgs, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		c := newConn(a, zap.NewNop(), ServerOptions{}.withDefaults())
		c.packetIns = newPacketInQueue(4) // small: also exercises dropping
		w1 := c.register(1, true)
		c.register(2, false)
		sink := c.addSink(3, 100, 0)
		r := bytes.NewReader(data)
		for {
			m, err := readMessage(r)
			if err != nil {
				break
			}
			_ = helloOffers13(m)
			_ = parseError(m.body).Error()
			c.dispatch(m)
		}
		select {
		case rep := <-w1.ch:
			for _, p := range rep.parts {
				_, _ = DecodeFlowStats(p)
			}
		default:
		}
		_, _ = sink.result()
		for len(c.packetIns.ch) > 0 {
			pi := <-c.packetIns.ch
			if fm, ok := pi.Match.Get(FieldInPort); !ok || uint32(fm.Value) != pi.InPort {
				t.Fatalf("queued packet-in with in_port %d and match %s", pi.InPort, pi.Match)
			}
		}
		st := c.packetIns.stats()
		if st.Queued > 4 || st.Delivered != 0 {
			t.Fatalf("packet-in stats %+v", st)
		}
	})
}

func packetInSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	for _, c := range ovsPacketIns {
		seeds = append(seeds, unhex(t, c.msg))
	}
	frame := unhex(t, icmpFrame)
	seeds = append(seeds,
		encodePacketIn(3, PacketIn{Reason: PacketInNoMatch, Cookie: 1, Match: NewMatch().InPort(1).With(FieldTunID, 5).
			Addr(FieldTunSrc, netip.MustParseAddr("192.0.2.1")).WithMasked(FieldReg0, 1, 1), Data: frame, TotalLen: 58, BufferID: noBuffer}),
		encodePacketIn(4, PacketIn{Match: NewMatch().InPort(2)}),
		encodePacketIn(5, PacketIn{Match: NewMatch().With(FieldReg1, 2), Data: frame[:20]}),
		simpleMessage(typePacketIn, 6, make([]byte, 26)),
	)
	return append(seeds, packetIn2Seeds(t)...)
}

// FuzzDecodePacketIn: the decoder never panics, and what decodes into
// known fields encodes (as a switch would) back to the same packet-in.
func FuzzDecodePacketIn(f *testing.F) {
	for _, s := range packetInSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		pi, err := DecodePacketIn(b)
		if err != nil {
			return
		}
		_ = pi.Match.String()
		if fm, ok := pi.Match.Get(FieldInPort); !ok || fm.HasMask || uint32(fm.Value) != pi.InPort {
			t.Fatalf("in_port %d, match %s", pi.InPort, pi.Match)
		}
		if len(pi.Data) > len(b) {
			t.Fatalf("%d bytes of data from a %d-byte message", len(pi.Data), len(b))
		}
		for _, fm := range pi.Match {
			if !validField(fm.Field) {
				return // unknown fields cannot be re-encoded
			}
		}
		again, err := DecodePacketIn(encodePacketIn(0, pi))
		if err != nil || !samePacketIn(again, pi) {
			t.Fatalf("re-encoding changed the packet-in (%v):\n %+v\n %+v", err, pi, again)
		}
	})
}
