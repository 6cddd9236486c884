package trace

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// A live trace (Request.Live) sends the packet the request describes for
// real: the controller injects the frame Inject builds at the sender's
// port, tagged (pipeline.LiveTrace), after installing observation flows
// at the points ProbePoints names — where the simulation says the walk
// ends on the first switch, and the Output stage — and Observe turns the
// packet-in (or its absence) into a Live, compared with the simulation.
// Only the first switch is observed: a packet for another chassis is
// seen leaving by the VXLAN port.

// Live verdicts besides the simulation's.
const (
	// LiveTunnel: the packet left the first switch by VXLAN.
	LiveTunnel = "tunnel"
	// LiveNotObserved: no observation flow saw the packet.
	LiveNotObserved = "not_observed"
)

// Live is what the real packet did.
type Live struct {
	// Observed says an observation flow caught the packet.
	Observed bool   `json:"observed"`
	Verdict  string `json:"verdict"`
	Reason   string `json:"reason,omitempty"`
	Summary  string `json:"summary"`
	// DPID and InPort are where it was injected.
	DPID   topology.DPID `json:"dpid"`
	InPort uint32        `json:"in_port"`
	// Table is where it was caught; OutPort the port it was about to
	// leave by (the Output stage's reg2), when it was.
	Table       uint8  `json:"table"`
	TableName   string `json:"table_name,omitempty"`
	OutPort     uint32 `json:"out_port,omitempty"`
	DeliveredTo string `json:"delivered_to,omitempty"`
	// Packet lists the caught frame's headers ("eth_dst=…", "nw_ttl=…").
	Packet []string `json:"packet,omitempty"`
	// Matches says the real packet did what the simulation says, up to
	// where it was caught; Differences says how it did not.
	Matches     bool     `json:"matches"`
	Differences []string `json:"differences,omitempty"`
	// Millis is how long the packet took from the packet-out to the
	// packet-in (or how long vpcflow waited).
	Millis float64 `json:"millis"`
}

// Injection is the real packet of a live trace: the frame and where it
// enters.
type Injection struct {
	DPID   uint64
	InPort uint32
	Frame  []byte
}

// Inject builds the frame req describes and where it enters: the port of
// host From. A live trace needs a host to send from (not a chassis
// uplink).
func Inject(env *Env, req Request) (Injection, error) {
	if req.From == "" {
		return Injection{}, badf("from", "a live trace sends from a host's port: give from (not from_chassis)")
	}
	sp, err := env.start(req)
	if err != nil {
		return Injection{}, err
	}
	frame, err := sp.pkt.Frame()
	if err != nil {
		return Injection{}, badf("proto", "%v", err)
	}
	return Injection{DPID: sp.dpid, InPort: uint32(sp.pkt.Get(openflow.FieldInPort)), Frame: frame}, nil
}

// ProbePoints are the flows a live trace of res watches on the first
// switch: the flow the walk ends at there (unless it ends in the Output
// stage), and the Output stage, where every packet about to leave by a
// port passes. (pipeline.LiveTrace installs them one priority higher,
// tagged, ending in the trace punt.)
func (r *Result) ProbePoints(p *pipeline.Pipeline) []openflow.Flow {
	var pts []openflow.Flow
	outT := p.OutputTable()
	if len(r.Hops) > 0 && len(r.Hops[0].Steps) > 0 {
		last := r.Hops[0].Steps[len(r.Hops[0].Steps)-1]
		if outT == nil || last.Table != outT.ID {
			if last.matched {
				pts = append(pts, last.flow)
			} else {
				// A table miss with no flow (only on installed tables).
				pts = append(pts, openflow.Flow{Table: last.Table, Priority: 0})
			}
		}
	}
	if outT != nil {
		pts = append(pts, openflow.Flow{Table: outT.ID, Priority: 0xfffe})
	}
	return pts
}

// Observation is a live trace's packet as its probe caught it.
type Observation struct {
	Table   uint8
	OutPort uint32 // reg2, as the packet-in reported it
	Frame   []byte
}

// Observe compares what the real packet did (obs; nil when nothing caught
// it within the wait) with the simulation res, on the first switch.
func Observe(env *Env, res *Result, inj Injection, obs *Observation, took time.Duration) *Live {
	tr := &tracer{env: env, res: &Result{}, tables: tableNames(env.Pipe)}
	live := &Live{DPID: topology.DPID(inj.DPID), InPort: inj.InPort, Millis: float64(took.Microseconds()) / 1000}
	if len(res.Hops) == 0 {
		live.Verdict, live.Summary = LiveNotObserved, "the simulation has no path"
		return live
	}
	sim := &res.Hops[0]
	last := sim.Steps[len(sim.Steps)-1]
	outT := env.Pipe.OutputTable()
	if obs == nil {
		live.Verdict = LiveNotObserved
		if outT != nil && last.Table == outT.ID {
			live.Summary = fmt.Sprintf("not observed: the packet never reached the Output stage, where the simulation has it leave %s; "+
				"it was dropped on the way", tr.switchName(inj.DPID))
		} else {
			live.Summary = fmt.Sprintf("not observed: the packet reached neither the flow the simulation ends at (%s, table %d) nor the Output stage "+
				"of %s; it was dropped elsewhere", last.TableName, last.Table, tr.switchName(inj.DPID))
		}
		live.Differences = []string{"the simulation's end was not reached"}
		return live
	}
	live.Observed, live.Table, live.TableName = true, obs.Table, tr.tables[obs.Table]
	got, err := ParseFrame(obs.Frame)
	if err != nil {
		live.Differences = append(live.Differences, "the caught frame does not parse: "+err.Error())
	}
	live.Packet = got.headers()
	switch {
	case outT != nil && obs.Table == outT.ID:
		live.OutPort = obs.OutPort
		port := obs.OutPort
		if h, ok := env.HostAt(inj.DPID, port); ok {
			live.Verdict, live.DeliveredTo = Delivered, h.VPC+"/"+h.Name
			live.Summary = fmt.Sprintf("delivered to host %s/%s (%s) on %s port %d", h.VPC, h.Name, h.IP, tr.switchName(inj.DPID), port)
		} else if isTunnelPort(env, inj.DPID, port) {
			// The VXLAN port is one for every remote chassis (remote_ip
			// is set per packet), and the packet-in does not say which:
			// the next chassis is the simulation's.
			live.Verdict = LiveTunnel
			live.Summary = fmt.Sprintf("left %s by its VXLAN port %d", tr.switchName(inj.DPID), port)
			if len(res.Hops) > 1 && res.Hops[1].Chassis != "" {
				live.Summary += fmt.Sprintf(" (the simulation has it go on to chassis %s)", res.Hops[1].Chassis)
			}
		} else {
			live.Verdict, live.Reason = Dropped, "no_port"
			live.Summary = fmt.Sprintf("output to port %d of %s, where no host is attached", port, tr.switchName(inj.DPID))
		}
		switch {
		case sim.out.controller || len(sim.out.outputs) == 0:
			live.Differences = append(live.Differences, fmt.Sprintf("the real packet was about to leave by port %d; the simulation: %s", port, res.Summary))
		case sim.out.outputs[0] != port:
			live.Differences = append(live.Differences, fmt.Sprintf("the real packet was about to leave by port %d, the simulated one by port %d", port, sim.out.outputs[0]))
		}
	case obs.Table == last.Table:
		// The flow the simulation ends at (its tagged copy) caught it.
		live.Verdict, live.Reason = res.Verdict, res.Reason
		if len(res.Hops) > 1 {
			live.Verdict, live.Reason = LiveTunnel, ""
		}
		live.DeliveredTo = res.DeliveredTo
		live.Summary = fmt.Sprintf("reached the flow the simulation ends at on %s: %s, table %d (%s)", tr.switchName(inj.DPID), last.TableName, last.Table, last.Object)
		if res.Verdict == Dropped {
			live.Summary = fmt.Sprintf("dropped: %s at %s (table %d) on %s, by %s", res.Reason, last.TableName, last.Table, tr.switchName(inj.DPID), last.Object)
		}
	default:
		live.Verdict = "caught"
		live.Summary = fmt.Sprintf("caught in table %d (%s), which no observation flow of this trace is in", obs.Table, live.TableName)
		live.Differences = append(live.Differences, live.Summary)
	}
	if err == nil {
		live.Differences = append(live.Differences, compareHeaders(&sim.end, &got)...)
	}
	live.Matches = len(live.Differences) == 0
	return live
}

// isTunnelPort says whether port is the VXLAN port of the chassis whose
// switch is dpid.
func isTunnelPort(env *Env, dpid uint64, port uint32) bool {
	for _, c := range env.Chassis {
		if c.DPID == dpid && c.TunnelPort == port {
			return true
		}
	}
	return false
}

// compareHeaders lists the header fields where the caught frame differs
// from the simulated packet at the end of the first switch.
func compareHeaders(sim, got *Packet) []string {
	fields := []openflow.Field{openflow.FieldEthSrc, openflow.FieldEthDst, openflow.FieldEthType}
	switch sim.Get(openflow.FieldEthType) {
	case openflow.EthTypeIPv4:
		fields = append(fields, openflow.FieldIPv4Src, openflow.FieldIPv4Dst, openflow.FieldIPTTL, openflow.FieldIPProto)
	case openflow.EthTypeARP:
		fields = append(fields, openflow.FieldArpOp, openflow.FieldArpSpa, openflow.FieldArpTpa, openflow.FieldArpSha)
	}
	var out []string
	for _, f := range fields {
		if a, b := sim.Get(f), got.Get(f); a != b {
			out = append(out, fmt.Sprintf("%s: real %s, simulated %s", f.Name(), f.FormatValue(b), f.FormatValue(a)))
		}
	}
	return out
}

// headers prints the fields ParseFrame reads.
func (p *Packet) headers() []string {
	fields := []openflow.Field{openflow.FieldEthSrc, openflow.FieldEthDst}
	switch p.Get(openflow.FieldEthType) {
	case openflow.EthTypeIPv4:
		fields = append(fields, openflow.FieldIPv4Src, openflow.FieldIPv4Dst, openflow.FieldIPTTL, openflow.FieldIPProto)
	case openflow.EthTypeARP:
		fields = append(fields, openflow.FieldArpOp, openflow.FieldArpSpa, openflow.FieldArpSha, openflow.FieldArpTpa)
	default:
		fields = append(fields, openflow.FieldEthType)
	}
	out := make([]string, 0, len(fields))
	for _, f := range fields {
		out = append(out, f.Name()+"="+f.FormatValue(p.Get(f)))
	}
	return out
}

// Frame builds the packet as an Ethernet frame of p.Len bytes: an ARP
// request, or IPv4 with an ICMP echo request, a TCP SYN or a UDP datagram,
// checksums filled in.
func (p *Packet) Frame() ([]byte, error) {
	mac := func(f openflow.Field) []byte { return openflow.Uint64ToMAC(p.Get(f)) }
	eth := make([]byte, 0, max(p.Len, 60))
	eth = append(eth, mac(openflow.FieldEthDst)...)
	eth = append(eth, mac(openflow.FieldEthSrc)...)
	eth = binary.BigEndian.AppendUint16(eth, uint16(p.Get(openflow.FieldEthType)))
	switch p.Get(openflow.FieldEthType) {
	case openflow.EthTypeARP:
		eth = append(eth, 0, 1, 8, 0, 6, 4)
		eth = binary.BigEndian.AppendUint16(eth, uint16(p.Get(openflow.FieldArpOp)))
		eth = append(eth, mac(openflow.FieldArpSha)...)
		eth = binary.BigEndian.AppendUint32(eth, uint32(p.Get(openflow.FieldArpSpa)))
		eth = append(eth, mac(openflow.FieldArpTha)...)
		eth = binary.BigEndian.AppendUint32(eth, uint32(p.Get(openflow.FieldArpTpa)))
		return pad(eth, 60), nil
	case openflow.EthTypeIPv4:
	default:
		return nil, errors.New("only ARP and IPv4 packets can be sent")
	}
	proto := uint8(p.Get(openflow.FieldIPProto))
	var l4 []byte
	switch proto {
	case openflow.IPProtoICMP:
		l4 = []byte{uint8(p.Get(openflow.FieldICMPType)), uint8(p.Get(openflow.FieldICMPCode)), 0, 0, 0x76, 0x74, 0, 1}
	case openflow.IPProtoTCP:
		l4 = binary.BigEndian.AppendUint16(nil, uint16(p.Get(openflow.FieldTCPSrc)))
		l4 = binary.BigEndian.AppendUint16(l4, uint16(p.Get(openflow.FieldTCPDst)))
		l4 = append(l4, 0, 0, 0x76, 0x74, 0, 0, 0, 0, 0x50, 0x02, 0xfa, 0xf0, 0, 0, 0, 0) // seq, ack, offset 5, SYN, window
	case openflow.IPProtoUDP:
		l4 = binary.BigEndian.AppendUint16(nil, uint16(p.Get(openflow.FieldUDPSrc)))
		l4 = binary.BigEndian.AppendUint16(l4, uint16(p.Get(openflow.FieldUDPDst)))
		l4 = append(l4, 0, 0, 0, 0)
	default:
		return nil, fmt.Errorf("IP protocol %d cannot be sent", proto)
	}
	total := max(p.Len, 14+20+len(l4))
	if proto != openflow.IPProtoTCP { // payload up to the frame length
		l4 = append(l4, make([]byte, total-14-20-len(l4))...)
	}
	src := binary.BigEndian.AppendUint32(nil, uint32(p.Get(openflow.FieldIPv4Src)))
	dst := binary.BigEndian.AppendUint32(nil, uint32(p.Get(openflow.FieldIPv4Dst)))
	switch proto {
	case openflow.IPProtoICMP:
		binary.BigEndian.PutUint16(l4[2:], checksum(l4, 0))
	case openflow.IPProtoTCP, openflow.IPProtoUDP:
		if proto == openflow.IPProtoUDP {
			binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
		}
		pseudo := append(append(append([]byte{}, src...), dst...), 0, proto)
		pseudo = binary.BigEndian.AppendUint16(pseudo, uint16(len(l4)))
		at := 16
		if proto == openflow.IPProtoUDP {
			at = 6
		}
		binary.BigEndian.PutUint16(l4[at:], checksum(l4, sum(pseudo)))
	}
	ip := []byte{0x45, 0, 0, 0, 0x76, 0x74, 0x40, 0, uint8(p.Get(openflow.FieldIPTTL)), proto, 0, 0}
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(l4)))
	ip = append(append(ip, src...), dst...)
	binary.BigEndian.PutUint16(ip[10:], checksum(ip, 0))
	return pad(append(append(eth, ip...), l4...), 60), nil
}

func pad(b []byte, n int) []byte {
	if len(b) < n {
		b = append(b, make([]byte, n-len(b))...)
	}
	return b
}

// sum is the ones' complement sum of b's 16-bit words, not folded.
func sum(b []byte) uint32 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	return s
}

// checksum is the Internet checksum of b, with initial sum s.
func checksum(b []byte, s uint32) uint16 {
	s += sum(b)
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// ParseFrame reads the Ethernet, ARP and IPv4 headers of a frame (and
// the ICMP type and the TCP/UDP ports) into a Packet.
func ParseFrame(b []byte) (Packet, error) {
	var p Packet
	p.Len = len(b)
	if len(b) < 14 {
		return p, fmt.Errorf("%d bytes: shorter than an Ethernet header", len(b))
	}
	p.Set(openflow.FieldEthDst, openflow.MACToUint64(b[0:6]))
	p.Set(openflow.FieldEthSrc, openflow.MACToUint64(b[6:12]))
	et := binary.BigEndian.Uint16(b[12:14])
	p.Set(openflow.FieldEthType, uint64(et))
	b = b[14:]
	switch et {
	case openflow.EthTypeARP:
		if len(b) < 28 {
			return p, errors.New("short ARP packet")
		}
		p.Set(openflow.FieldArpOp, uint64(binary.BigEndian.Uint16(b[6:8])))
		p.Set(openflow.FieldArpSha, openflow.MACToUint64(b[8:14]))
		p.Set(openflow.FieldArpSpa, uint64(binary.BigEndian.Uint32(b[14:18])))
		p.Set(openflow.FieldArpTha, openflow.MACToUint64(b[18:24]))
		p.Set(openflow.FieldArpTpa, uint64(binary.BigEndian.Uint32(b[24:28])))
	case openflow.EthTypeIPv4:
		if len(b) < 20 || b[0]>>4 != 4 || int(b[0]&0xf)*4 < 20 || len(b) < int(b[0]&0xf)*4 {
			return p, errors.New("short or bad IPv4 header")
		}
		ihl := int(b[0]&0xf) * 4
		p.Set(openflow.FieldIPTTL, uint64(b[8]))
		p.Set(openflow.FieldIPProto, uint64(b[9]))
		p.Set(openflow.FieldIPv4Src, uint64(binary.BigEndian.Uint32(b[12:16])))
		p.Set(openflow.FieldIPv4Dst, uint64(binary.BigEndian.Uint32(b[16:20])))
		l4 := b[ihl:]
		switch b[9] {
		case openflow.IPProtoICMP:
			if len(l4) >= 2 {
				p.Set(openflow.FieldICMPType, uint64(l4[0]))
				p.Set(openflow.FieldICMPCode, uint64(l4[1]))
			}
		case openflow.IPProtoTCP, openflow.IPProtoUDP:
			if len(l4) >= 4 {
				sp, dp := openflow.FieldTCPSrc, openflow.FieldTCPDst
				if b[9] == openflow.IPProtoUDP {
					sp, dp = openflow.FieldUDPSrc, openflow.FieldUDPDst
				}
				p.Set(sp, uint64(binary.BigEndian.Uint16(l4[0:2])))
				p.Set(dp, uint64(binary.BigEndian.Uint16(l4[2:4])))
			}
		}
	}
	return p, nil
}

// writeLive prints a live trace.
func (l *Live) write(b *strings.Builder) {
	fmt.Fprintf(b, "\nlive: %s", l.Summary)
	if l.Observed {
		fmt.Fprintf(b, " (%.1f ms)", l.Millis)
	}
	b.WriteByte('\n')
	if len(l.Packet) > 0 {
		fmt.Fprintf(b, "  caught in table %d (%s): %s\n", l.Table, l.TableName, strings.Join(l.Packet, " "))
	}
	if l.Matches {
		fmt.Fprintf(b, "  the real packet did what the simulation says\n")
		return
	}
	fmt.Fprintf(b, "  MISMATCH with the simulation:\n")
	for _, d := range l.Differences {
		fmt.Fprintf(b, "    %s\n", d)
	}
}
