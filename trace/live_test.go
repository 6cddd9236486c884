package trace

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

func livePacket(proto string) *Packet {
	p := &Packet{Len: 98}
	p.Set(openflow.FieldEthSrc, openflow.MACToUint64(topology.GatewayMAC))
	p.Set(openflow.FieldEthDst, 0x52580098c092)
	if proto == "arp" {
		p.Set(openflow.FieldEthType, openflow.EthTypeARP)
		p.Set(openflow.FieldArpOp, 1)
		p.Set(openflow.FieldArpSha, 0x52580098c081)
		p.Set(openflow.FieldArpSpa, 0x0a0a0a0b)
		p.Set(openflow.FieldArpTpa, 0x0a0a0a0c)
		return p
	}
	p.Set(openflow.FieldEthType, openflow.EthTypeIPv4)
	p.Set(openflow.FieldIPv4Src, 0xac120103)
	p.Set(openflow.FieldIPv4Dst, 0xac120304)
	p.Set(openflow.FieldIPTTL, 64)
	switch proto {
	case "icmp":
		p.Set(openflow.FieldIPProto, openflow.IPProtoICMP)
		p.Set(openflow.FieldICMPType, 8)
	case "tcp":
		p.Set(openflow.FieldIPProto, openflow.IPProtoTCP)
		p.Set(openflow.FieldTCPSrc, 40000)
		p.Set(openflow.FieldTCPDst, 80)
	case "udp":
		p.Set(openflow.FieldIPProto, openflow.IPProtoUDP)
		p.Set(openflow.FieldUDPSrc, 40000)
		p.Set(openflow.FieldUDPDst, 53)
	}
	return p
}

// The frames a live trace sends read back as the packet they were built
// from, with valid IPv4, ICMP, TCP and UDP checksums, at least 60 bytes.
func TestFrameRoundTrip(t *testing.T) {
	for _, proto := range []string{"icmp", "tcp", "udp", "arp"} {
		p := livePacket(proto)
		b, err := p.Frame()
		if err != nil {
			t.Fatalf("%s: %v", proto, err)
		}
		if len(b) < 60 || (proto == "icmp" && len(b) != 98) {
			t.Errorf("%s: %d bytes", proto, len(b))
		}
		got, err := ParseFrame(b)
		if err != nil {
			t.Fatalf("%s: %v", proto, err)
		}
		for _, f := range []openflow.Field{openflow.FieldEthSrc, openflow.FieldEthDst, openflow.FieldEthType, openflow.FieldIPv4Src,
			openflow.FieldIPv4Dst, openflow.FieldIPTTL, openflow.FieldIPProto, openflow.FieldICMPType, openflow.FieldTCPSrc,
			openflow.FieldTCPDst, openflow.FieldUDPSrc, openflow.FieldUDPDst, openflow.FieldArpOp, openflow.FieldArpSha,
			openflow.FieldArpSpa, openflow.FieldArpTpa} {
			if got.Get(f) != p.Get(f) {
				t.Errorf("%s: %s read back as %#x, built %#x", proto, f.Name(), got.Get(f), p.Get(f))
			}
		}
		if proto == "arp" {
			continue
		}
		ip := b[14:34]
		if checksum(ip, 0) != 0 {
			t.Errorf("%s: bad IPv4 header checksum", proto)
		}
		l4 := b[34 : 14+(int(ip[2])<<8|int(ip[3]))]
		var pseudo []byte
		if proto != "icmp" {
			pseudo = append(append(append([]byte{}, ip[12:20]...), 0, ip[9]), byte(len(l4)>>8), byte(len(l4)))
		}
		if checksum(l4, sum(pseudo)) != 0 {
			t.Errorf("%s: bad %s checksum", proto, proto)
		}
	}
	if _, err := (&Packet{Len: 60}).Frame(); err == nil {
		t.Error("a frame of no known type was built")
	}
	for _, b := range [][]byte{nil, make([]byte, 13), append(make([]byte, 12), 8, 0, 0x45), append(make([]byte, 12), 8, 6, 0)} {
		if _, err := ParseFrame(b); err == nil {
			t.Errorf("ParseFrame(%x): no error", b)
		}
	}
}

// Observe compares the caught packet with the simulation: the output
// port, the table, the rewritten headers; nothing caught is a mismatch.
func TestObserve(t *testing.T) {
	pipe := pipeline.Default()
	outT := pipe.OutputTable().ID
	test2 := topology.Host{VPC: "vpc-seed", Name: "test2", IP: netip.MustParseAddr("10.10.10.12")}
	env := &Env{Pipe: pipe, HostAt: func(dpid uint64, port uint32) (topology.Host, bool) { return test2, dpid == 1 && port == 2 }}
	inj := Injection{DPID: 1, InPort: 1}
	end := livePacket("icmp")
	frame, err := end.Frame()
	if err != nil {
		t.Fatal(err)
	}
	delivered := &Result{Verdict: Delivered, DeliveredTo: "vpc-seed/test2", Summary: "delivered",
		Hops: []Hop{{Steps: []Step{{Table: 30}, {Table: outT, TableName: "Output"}}, end: *end, out: outcome{outputs: []uint32{2}}}}}
	dropped := &Result{Verdict: Dropped, Reason: "no_route", Summary: "dropped",
		Hops: []Hop{{Steps: []Step{{Table: 30, TableName: "L3Forwarding"}}, end: *end, out: outcome{drop: "no_route"}}}}
	other := append([]byte{}, frame...)
	other[5] = 0x99 // another eth_dst
	for _, c := range []struct {
		name    string
		res     *Result
		obs     *Observation
		verdict string
		matches bool
		diff    string
	}{
		{"delivered", delivered, &Observation{Table: outT, OutPort: 2, Frame: frame}, Delivered, true, ""},
		{"another port", delivered, &Observation{Table: outT, OutPort: 7, Frame: frame}, Dropped, false, "port 7, the simulated one by port 2"},
		{"another header", delivered, &Observation{Table: outT, OutPort: 2, Frame: other}, Delivered, false, "dl_dst: real 52:58:00:98:c0:99, simulated 52:58:00:98:c0:92"},
		{"not caught", delivered, nil, LiveNotObserved, false, "not reached"},
		{"dropped as simulated", dropped, &Observation{Table: 30, Frame: frame}, Dropped, true, ""},
		{"delivered, not dropped", dropped, &Observation{Table: outT, OutPort: 2, Frame: frame}, Delivered, false, "leave by port 2; the simulation: dropped"},
		{"caught elsewhere", dropped, &Observation{Table: 10, Frame: frame}, "caught", false, "no observation flow"},
	} {
		l := Observe(env, c.res, inj, c.obs, 0)
		if l.Verdict != c.verdict || l.Matches != c.matches || (c.diff != "" && !strings.Contains(strings.Join(l.Differences, "; "), c.diff)) {
			t.Errorf("%s: %+v; want verdict %s, matches %v, a difference with %q", c.name, *l, c.verdict, c.matches, c.diff)
		}
		var b strings.Builder
		l.write(&b)
		if !c.matches && !strings.Contains(b.String(), "MISMATCH") {
			t.Errorf("%s: text %q", c.name, b.String())
		}
	}
}

// ProbePoints: the flow the first switch's walk ends at, unless that is
// the Output stage, and always the Output stage.
func TestProbePoints(t *testing.T) {
	pipe := pipeline.Default()
	outT := pipe.OutputTable().ID
	drop := openflow.Flow{Table: 30, Priority: 124, Match: openflow.NewMatch().EthType(openflow.EthTypeIPv4)}
	res := &Result{Hops: []Hop{{Steps: []Step{{Table: 0}, {Table: 30, matched: true, flow: drop}}}}}
	pts := res.ProbePoints(pipe)
	if len(pts) != 2 || pts[0].Table != 30 || pts[0].Priority != 124 || pts[1].Table != outT {
		t.Errorf("points %v", pts)
	}
	res = &Result{Hops: []Hop{{Steps: []Step{{Table: 30, matched: true, flow: drop}, {Table: outT, matched: true}}}}}
	if pts := res.ProbePoints(pipe); len(pts) != 1 || pts[0].Table != outT {
		t.Errorf("points of a delivered packet %v", pts)
	}
	res = &Result{Hops: []Hop{{Steps: []Step{{Table: 20}}}}}
	if pts := res.ProbePoints(pipe); len(pts) != 2 || pts[0].Table != 20 || pts[0].Priority != 0 || len(pts[0].Match) != 0 {
		t.Errorf("points of a table miss %v", pts)
	}
}
