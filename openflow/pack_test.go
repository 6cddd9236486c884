package openflow

import (
	"reflect"
	"testing"
)

// packRecord packs flows as one record and reads them back.
func packRecord(t *testing.T, p *Packer, flows []Flow) ([]byte, []Flow) {
	t.Helper()
	return packRead(t, p, p, flows)
}

// packRead packs with w and reads back with r.
func packRead(t *testing.T, w, r *Packer, flows []Flow) ([]byte, []Flow) {
	t.Helper()
	p := w
	var st PackState
	var b []byte
	for i := range flows {
		b = p.AppendFlow(b, &st, &flows[i])
	}
	st.Reset()
	var out []Flow
	var f Flow
	rest := b
	for len(rest) > 0 {
		var err error
		if rest, err = r.ReadFlow(rest, &st, &f); err != nil {
			t.Fatalf("reading flow %d back: %v", len(out), err)
		}
		out = append(out, CloneFlow(&f))
	}
	// The same record read as a string, in place, gives the same flows.
	st.Reset()
	rs := string(b)
	for i := 0; len(rs) > 0; i++ {
		var err error
		if rs, err = r.ReadFlowString(rs, &st, &f); err != nil {
			t.Fatalf("reading flow %d back from a string: %v", i, err)
		}
		if i >= len(out) || !f.SameContent(&out[i]) || f.Key() != out[i].Key() {
			t.Fatalf("flow %d read from a string differs: %s", i, f.String())
		}
	}
	return b, out
}

// TestPackRoundTrip: every field and action of the catalog comes back
// from a packed record exactly, one record at a time and all in one, and
// also when read with a frozen copy of the packer.
func TestPackRoundTrip(t *testing.T) {
	flows := catalog()
	p := NewPacker()
	_, got := packRecord(t, p, flows)
	if len(got) != len(flows) {
		t.Fatalf("read %d flows back, packed %d", len(got), len(flows))
	}
	for i := range flows {
		want := CloneFlow(&flows[i])
		if !reflect.DeepEqual(got[i], want) {
			t.Errorf("flow %d:\n got %s\nwant %s", i, got[i].String(), want.String())
		}
	}
	// One record per flow, after the shapes are known: the prototypes are
	// the first flows, so these pack against themselves.
	for i := range flows {
		var st PackState
		b := p.AppendFlow(nil, &st, &flows[i])
		frozen := p.Freeze()
		st.Reset()
		var f Flow
		if _, err := frozen.ReadFlow(b, &st, &f); err != nil {
			t.Fatalf("flow %d alone: %v", i, err)
		}
		one := []Flow{CloneFlow(&f)}
		if want := CloneFlow(&flows[i]); !reflect.DeepEqual(one[0], want) {
			t.Errorf("flow %d alone:\n got %s\nwant %s", i, one[0].String(), want.String())
		}
	}
}

// TestPackSmall: flows of the same shapes as earlier ones, differing in
// a few values, pack into a few bytes each, and values shared between the
// flows of a record (a MAC, a port) are written once.
func TestPackSmall(t *testing.T) {
	host := func(port uint32, mac uint64, ip uint32) []Flow {
		m := NewMatch().InPort(port).With(FieldEthSrc, mac)
		return []Flow{
			{Table: 0, Priority: 100, Cookie: 0x7670020000000000 | uint64(port), Match: m,
				Actions: []Action{WriteMetadata(0x100000001, ^uint64(0)), GotoTable(10)}},
			{Table: 10, Priority: 132, Cookie: 0x7670020000000000 | uint64(port),
				Match: NewMatch().EthType(EthTypeIPv4).InPort(port).With(FieldIPv4Src, uint64(ip)), Actions: []Action{GotoTable(15)}},
			{Table: 30, Priority: 132, Cookie: 0x7670020000000000 | uint64(port),
				Match:   NewMatch().EthType(EthTypeIPv4).Metadata(1, 0xffffffff).With(FieldIPv4Dst, uint64(ip)),
				Actions: []Action{SetField(FieldEthSrc, 0xeeffffffffff), SetField(FieldEthDst, mac), SetField(FieldReg2, uint64(port)), GotoTable(45)}},
		}
	}
	p := NewPacker()
	packRecord(t, p, host(1, 0x525400000001, 0x0a000002))
	b, got := packRecord(t, p, host(4242, 0x52540000a0b1, 0x0a00a0b2))
	want := host(4242, 0x52540000a0b1, 0x0a00a0b2)
	for i := range want {
		if w := CloneFlow(&want[i]); !reflect.DeepEqual(got[i], w) {
			t.Errorf("flow %d:\n got %s\nwant %s", i, got[i].String(), w.String())
		}
	}
	if len(b) > 30 {
		t.Errorf("three flows of known shapes packed into %d bytes, want at most 30: % x", len(b), b)
	}
}

// TestPackRejectsGarbage: truncated or corrupt records are an error,
// never a panic.
func TestPackRejectsGarbage(t *testing.T) {
	p := NewPacker()
	b, _ := packRecord(t, p, catalog())
	var st PackState
	var f Flow
	for cut := range len(b) {
		st.Reset()
		rest := b[:cut]
		for len(rest) > 0 {
			var err error
			if rest, err = p.ReadFlow(rest, &st, &f); err != nil {
				break
			}
		}
	}
	if _, err := p.ReadFlow([]byte{0xff, 0xff, 0xff, 0x7f}, &st, &f); err == nil {
		t.Error("an unknown shape was read")
	}
}

func FuzzReadFlow(f *testing.F) {
	p := NewPacker()
	var st PackState
	var b []byte
	flows := catalog()
	for i := range flows {
		b = p.AppendFlow(b, &st, &flows[i])
	}
	f.Add(b)
	f.Add(b[:len(b)/2])
	f.Fuzz(func(t *testing.T, data []byte) {
		var st PackState
		var fl Flow
		for len(data) > 0 {
			var err error
			if data, err = p.ReadFlow(data, &st, &fl); err != nil {
				return
			}
		}
	})
}
