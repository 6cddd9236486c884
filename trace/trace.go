// Package trace simulates a packet through vpcflow's pipeline, like
// ovn-trace does for OVN's logical flows: a small OpenFlow 1.3 table
// interpreter over the flows vpcflow wants on each switch (the engine's
// desired tables) or over the flows a switch holds, that follows the
// packet across chassis through the VXLAN tunnel and tells the story in
// VPC terms: which feature each table belongs to, which object (host,
// route entry, vSwitch, chassis) each flow exists for, every rewrite, and
// a one-line verdict. Comparing the two simulations shows drift.
//
// The package is pure: the controller gives it an Env (the topology, the
// attachments and the tables) under its lock.
package trace

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// Request is what to trace: a packet from host From of VPC (or, with
// FromChassis, a VXLAN packet arriving from that chassis's uplink) to Dst.
type Request struct {
	VPC string `json:"vpc"`
	// From is the sending host's name; FromChassis instead sends from a
	// chassis's uplink: the packet arrives by VXLAN at the chassis of the
	// host that owns Dst (or ToChassis), as a remote chassis would send it.
	From        string `json:"from,omitempty"`
	FromChassis string `json:"from_chassis,omitempty"`
	ToChassis   string `json:"to_chassis,omitempty"`
	// Dst is the destination IPv4 address (for ARP, the address asked for).
	Dst string `json:"dst"`
	// Src is the source address (default: From's IP); SrcMAC the source
	// MAC (default: From's MAC). Other values show what spoofing gets.
	Src    string `json:"src,omitempty"`
	SrcMAC string `json:"src_mac,omitempty"`
	// Proto is icmp (an echo request, the default), tcp, udp or arp.
	Proto   string `json:"proto,omitempty"`
	SrcPort uint16 `json:"src_port,omitempty"`
	DstPort uint16 `json:"dst_port,omitempty"`
	// TTL is the IPv4 TTL (default 64); Size the frame's length in bytes,
	// Ethernet header included (default 98: a 56-byte ping).
	TTL  uint8 `json:"ttl,omitempty"`
	Size int   `json:"size,omitempty"`
	// Installed also simulates on the flows dumped from the switches and
	// reports any difference as drift.
	Installed bool `json:"installed,omitempty"`
	// Live also sends a real packet, tagged, from From's port and reports
	// where it got to, compared with the simulation (live.go).
	Live bool `json:"live,omitempty"`
}

// Verdicts.
const (
	Delivered   = "delivered"
	Dropped     = "dropped"
	ARPAnswered = "arp_answered"
	ToVPCFlow   = "to_controller"
	// LeftUplink: the packet left the fabric by an uplink (NAT).
	LeftUplink = "left_uplink"
)

// Result is a trace: the verdict, its one-line summary, the path switch by
// switch, and (Request.Installed) the same on the installed flows with
// the differences.
type Result struct {
	Verdict string `json:"verdict"`
	Summary string `json:"summary"`
	// Reason is the drop reason (no_route, spoofed, …) of a drop, or what
	// vpcflow does with a packet sent to it (too_big).
	Reason string `json:"reason,omitempty"`
	// DeliveredTo is the host a delivered packet reaches ("vpc/name").
	DeliveredTo string `json:"delivered_to,omitempty"`
	Hops        []Hop  `json:"hops"`
	// Source is "desired" (vpcflow's own tables) or "installed" (dumped
	// from the switches).
	Source    string  `json:"source"`
	Installed *Result `json:"installed,omitempty"`
	// Drift lists where the installed flows differ along the path.
	Drift []Drift `json:"drift,omitempty"`
	// Live is what the real packet did (Request.Live).
	Live *Live `json:"live,omitempty"`
}

// Hop is the packet's walk through one switch.
type Hop struct {
	DPID    topology.DPID `json:"dpid"`
	Chassis string        `json:"chassis,omitempty"`
	InPort  uint32        `json:"in_port"`
	From    string        `json:"from"` // what the in_port is: "host vpc/name", "VXLAN from chassis X"
	Steps   []Step        `json:"steps"`
	// Out says where the packet left: a host's port, the tunnel, back
	// out of the in_port (ARP reply), or nowhere.
	Out string `json:"out"`
	// end is the packet as it left the switch's pipeline, and out what
	// the pipeline did with it (for the live trace's comparison).
	end Packet
	out outcome
}

// Step is one table lookup.
type Step struct {
	Table     uint8  `json:"table"`
	TableName string `json:"table_name"`
	Feature   string `json:"feature"`
	// Flow is the matched flow in ovs-ofctl syntax; empty when none
	// matched (the table-miss drop of OpenFlow 1.3).
	Flow     string `json:"flow,omitempty"`
	Priority uint16 `json:"priority"`
	Cookie   string `json:"cookie,omitempty"` // "0x…"
	Match    string `json:"match,omitempty"`  // ovs-ofctl syntax
	// Object is what the flow exists for, from its cookie.
	Object   string   `json:"object"`
	Rewrites []string `json:"rewrites,omitempty"`
	Drop     string   `json:"drop,omitempty"`
	key      openflow.Key
	flow     openflow.Flow
	matched  bool
}

// Drift is a difference between the desired and the installed flows on
// the packet's path.
type Drift struct {
	DPID topology.DPID `json:"dpid"`
	// Kind: missing (a desired flow is not installed), modified (it is,
	// with other actions or cookie), unexpected (an installed flow vpcflow
	// does not want decided instead), verdict (the outcomes differ).
	Kind      string `json:"kind"`
	Table     uint8  `json:"table"`
	Desired   string `json:"desired,omitempty"`
	Installed string `json:"installed,omitempty"`
}

// Env is what a trace reads: the pipeline, the topology and where things
// are, and each switch's tables.
type Env struct {
	Pipe    *pipeline.Pipeline
	Topo    *topology.State
	Ports   pipeline.Ports
	Chassis map[string]pipeline.ChassisPlace
	// HostAt names the host attached at a port.
	HostAt func(dpid uint64, port uint32) (topology.Host, bool)
	// Tables returns a switch's tables.
	Tables func(dpid uint64) (Tables, error)
}

// Error is a request the trace cannot run (unknown host, bad address);
// Field names the request field at fault.
type Error struct {
	Field string
	Msg   string
	// Missing: the request names something that does not exist.
	Missing bool
}

func (e *Error) Error() string { return e.Field + ": " + e.Msg }

func badf(field, format string, args ...any) error {
	return &Error{Field: field, Msg: fmt.Sprintf(format, args...)}
}

func missingf(field, format string, args ...any) error {
	return &Error{Field: field, Msg: fmt.Sprintf(format, args...), Missing: true}
}

// maxSteps bounds a walk (resubmit loops, long tunnels).
const maxSteps = 64

// Run traces req in env.
func Run(env *Env, req Request, source string) (*Result, error) {
	start, err := env.start(req)
	if err != nil {
		return nil, err
	}
	tr := &tracer{env: env, res: &Result{Source: source, Hops: []Hop{}}, features: featureOf(env.Pipe),
		tables: tableNames(env.Pipe)}
	tr.walk(start.dpid, start.pkt, start.from)
	return tr.res, nil
}

type startPoint struct {
	dpid uint64
	pkt  *Packet
	from string
}

// start builds the packet the request describes and where it enters.
func (env *Env) start(req Request) (startPoint, error) {
	vpc, ok := env.Topo.VPC(req.VPC)
	if !ok {
		return startPoint{}, missingf("vpc", "VPC %q does not exist", req.VPC)
	}
	dst, err := netip.ParseAddr(req.Dst)
	if err != nil || !dst.Is4() {
		return startPoint{}, badf("dst", "%q is not an IPv4 address", req.Dst)
	}
	p := &Packet{Len: 98}
	if req.Size > 0 {
		if req.Size < 42 || req.Size > 65535 {
			return startPoint{}, badf("size", "%d is not a frame length (42..65535)", req.Size)
		}
		p.Len = req.Size
	}
	proto := req.Proto
	if proto == "" {
		proto = "icmp"
	}
	var src netip.Addr
	var srcMAC net.HardwareAddr
	var sp startPoint
	switch {
	case req.From != "" && req.FromChassis != "":
		return startPoint{}, badf("from_chassis", "give from (a host) or from_chassis (an uplink), not both")
	case req.From != "":
		h, ok := env.Topo.Host(req.VPC, req.From)
		if !ok {
			return startPoint{}, missingf("from", "host %q does not exist in VPC %q", req.From, req.VPC)
		}
		at, ok := env.Ports.Attachment(h)
		if !ok {
			return startPoint{}, badf("from", "host %q is not attached to a connected port yet", req.From)
		}
		src, srcMAC = h.IP, h.MAC.HW()
		p.Set(openflow.FieldInPort, uint64(at.OFPort))
		p.Set(openflow.FieldEthDst, openflow.MACToUint64(topology.GatewayMAC))
		sp = startPoint{dpid: at.DPID, pkt: p, from: "host " + req.VPC + "/" + h.Name}
	case req.FromChassis != "":
		from, ok := env.Chassis[req.FromChassis]
		if !ok {
			return startPoint{}, badf("from_chassis", "chassis %q does not exist or its bridge is not known yet", req.FromChassis)
		}
		to := req.ToChassis
		dstHost, hasDst := env.Topo.HostByIP(req.VPC, dst)
		if to == "" {
			if !hasDst || dstHost.Chassis == "" {
				return startPoint{}, badf("to_chassis", "%s is not a host on a chassis: name the chassis the packet arrives at", dst)
			}
			to = dstHost.Chassis
		}
		place, ok := env.Chassis[to]
		if !ok {
			return startPoint{}, badf("to_chassis", "chassis %q does not exist or its bridge is not known yet", to)
		}
		srcMAC = topology.GatewayMAC
		if hasDst {
			p.Set(openflow.FieldEthDst, openflow.MACToUint64(dstHost.MAC.HW()))
		}
		p.Set(openflow.FieldInPort, uint64(place.TunnelPort))
		p.Set(openflow.FieldTunSrc, uint64(openflow.AddrToUint32(from.Chassis.TunnelIP)))
		p.Set(openflow.FieldTunDst, uint64(openflow.AddrToUint32(place.Chassis.TunnelIP)))
		p.Set(openflow.FieldTunID, uint64(vpc.ID))
		sp = startPoint{dpid: place.DPID, pkt: p, from: "VXLAN from chassis " + req.FromChassis}
		if req.Src == "" {
			return startPoint{}, badf("src", "a packet from a chassis uplink needs its source address")
		}
	default:
		return startPoint{}, badf("from", "give from (a host of the VPC) or from_chassis")
	}
	if req.Src != "" {
		if src, err = netip.ParseAddr(req.Src); err != nil || !src.Is4() {
			return startPoint{}, badf("src", "%q is not an IPv4 address", req.Src)
		}
	}
	if req.SrcMAC != "" {
		m, err := net.ParseMAC(req.SrcMAC)
		if err != nil || len(m) != 6 {
			return startPoint{}, badf("src_mac", "%q is not a MAC address", req.SrcMAC)
		}
		srcMAC = m
	}
	p.Set(openflow.FieldEthSrc, openflow.MACToUint64(srcMAC))
	switch proto {
	case "arp":
		p.Set(openflow.FieldEthType, openflow.EthTypeARP)
		p.Set(openflow.FieldEthDst, openflow.MACToUint64(net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}))
		p.Set(openflow.FieldArpOp, 1)
		p.Set(openflow.FieldArpSpa, uint64(openflow.AddrToUint32(src)))
		p.Set(openflow.FieldArpSha, openflow.MACToUint64(srcMAC))
		p.Set(openflow.FieldArpTpa, uint64(openflow.AddrToUint32(dst)))
		p.Len = 42
	case "icmp", "tcp", "udp":
		p.Set(openflow.FieldEthType, openflow.EthTypeIPv4)
		p.Set(openflow.FieldIPv4Src, uint64(openflow.AddrToUint32(src)))
		p.Set(openflow.FieldIPv4Dst, uint64(openflow.AddrToUint32(dst)))
		ttl := req.TTL
		if ttl == 0 {
			ttl = 64
		}
		p.Set(openflow.FieldIPTTL, uint64(ttl))
		switch proto {
		case "icmp":
			p.Set(openflow.FieldIPProto, openflow.IPProtoICMP)
			p.Set(openflow.FieldICMPType, 8)
		case "tcp":
			p.Set(openflow.FieldIPProto, openflow.IPProtoTCP)
			p.Set(openflow.FieldTCPSrc, uint64(cmpOr(req.SrcPort, 40000)))
			p.Set(openflow.FieldTCPDst, uint64(req.DstPort))
		case "udp":
			p.Set(openflow.FieldIPProto, openflow.IPProtoUDP)
			p.Set(openflow.FieldUDPSrc, uint64(cmpOr(req.SrcPort, 40000)))
			p.Set(openflow.FieldUDPDst, uint64(req.DstPort))
		}
	default:
		return startPoint{}, badf("proto", "%q: want icmp, tcp, udp or arp", proto)
	}
	return sp, nil
}

func cmpOr(v, d uint16) uint16 {
	if v == 0 {
		return d
	}
	return v
}

type tracer struct {
	env      *Env
	res      *Result
	features map[uint8]string
	tables   map[uint8]string
	steps    int
}

func featureOf(p *pipeline.Pipeline) map[uint8]string {
	out := map[uint8]string{}
	for _, f := range p.Features() {
		for _, t := range f.Tables() {
			out[t.ID] = f.Name()
		}
	}
	return out
}

func tableNames(p *pipeline.Pipeline) map[uint8]string {
	out := map[uint8]string{}
	for _, t := range p.Tables() {
		out[t.ID] = t.Name
	}
	return out
}

// outcome of one switch's pipeline.
type outcome struct {
	outputs    []uint32 // ports, in order
	controller bool
	drop       string // reason of the last drop flow
	tooMany    bool
}

// walk runs the packet through dpid's pipeline and follows it out.
func (tr *tracer) walk(dpid uint64, p *Packet, from string) {
	hop := Hop{DPID: topology.DPID(dpid), InPort: uint32(p.Get(openflow.FieldInPort)), From: from, Steps: []Step{}}
	for name, c := range tr.env.Chassis {
		if c.DPID == dpid {
			hop.Chassis = name
		}
	}
	tables, err := tr.env.Tables(dpid)
	if err != nil {
		hop.Out = "nowhere: " + err.Error()
		tr.res.Hops = append(tr.res.Hops, hop)
		tr.finish(Dropped, "switch_unavailable", fmt.Sprintf("dropped: switch %s: %v", topology.DPID(dpid), err), "")
		return
	}
	var out outcome
	tr.lookup(tables, &hop, 0, p, &out)
	hop.end, hop.out = *p, out
	idx := len(tr.res.Hops)
	tr.res.Hops = append(tr.res.Hops, hop)
	tr.follow(idx, dpid, p, &out)
}

// lookup runs table and what it leads to (goto_table, resubmit, ct).
func (tr *tracer) lookup(tables Tables, hop *Hop, table uint8, p *Packet, out *outcome) {
	for {
		tr.steps++
		if tr.steps > maxSteps {
			out.tooMany = true
			return
		}
		st := Step{Table: table, TableName: tr.tables[table], Feature: tr.features[table]}
		if st.TableName == "" {
			st.TableName = fmt.Sprintf("table %d", table)
			st.Feature = "not vpcflow's"
		}
		f, ok := tables.Lookup(table, p)
		if !ok {
			st.Object = "no flow matched"
			st.Drop = "table_miss"
			hop.Steps = append(hop.Steps, st)
			out.drop = "table_miss"
			return
		}
		st.Flow, st.Priority, st.key, st.flow, st.matched = f.String(), f.Priority, f.Key(), f, true
		st.Cookie, st.Match = fmt.Sprintf("%#x", f.Cookie), f.Match.String()
		st.Object = tr.object(f.Cookie)
		ck := pipeline.ParseCookie(f.Cookie)
		owner, hasOwner := tr.ownerHost(ck)
		next := -1
		for _, a := range f.Actions {
			switch a.Type {
			case openflow.ActSetField:
				p.Set(a.Field, a.Value)
				st.Rewrites = append(st.Rewrites, tr.describeSet(a.Field, a.Value, owner, hasOwner))
			case openflow.ActLoad:
				p.setBits(a.Field, a.Ofs, a.NBits, a.Value)
				st.Rewrites = append(st.Rewrites, a.String())
			case openflow.ActMove:
				p.setBits(a.Field, a.Ofs, a.NBits, p.getBits(a.Src, a.SrcOfs, a.NBits))
				st.Rewrites = append(st.Rewrites, a.String())
			case openflow.ActWriteMetadata:
				p.Set(openflow.FieldMetadata, p.Get(openflow.FieldMetadata)&^a.Mask|a.Value&a.Mask)
				st.Rewrites = append(st.Rewrites, tr.describeMetadata(p.Get(openflow.FieldMetadata)))
			case openflow.ActDecTTL:
				ttl := p.Get(openflow.FieldIPTTL)
				if ttl <= 1 {
					st.Drop = "ttl_exceeded"
					hop.Steps = append(hop.Steps, st)
					out.drop = "ttl_exceeded"
					out.outputs = nil
					return
				}
				p.Set(openflow.FieldIPTTL, ttl-1)
				st.Rewrites = append(st.Rewrites, fmt.Sprintf("ttl := %d", ttl-1))
			case openflow.ActCheckPktLarger:
				bit := uint64(0)
				if p.Len > int(a.Value) {
					bit = 1
				}
				p.setBits(a.Field, a.Bit, 1, bit)
				st.Rewrites = append(st.Rewrites, fmt.Sprintf("frame of %d bytes larger than %d: %v", p.Len, a.Value, bit == 1))
			case openflow.ActOutput:
				out.outputs = append(out.outputs, a.Port)
			case openflow.ActInPort:
				out.outputs = append(out.outputs, openflow.PortInPort)
			case openflow.ActOutputReg:
				out.outputs = append(out.outputs, uint32(p.getBits(a.Field, a.Ofs, a.NBits)))
			case openflow.ActController, openflow.ActController2:
				out.controller = true
			case openflow.ActGotoTable:
				next = int(a.Table)
			case openflow.ActResubmit:
				hop.Steps = append(hop.Steps, st)
				st = Step{Table: table, TableName: st.TableName, Feature: st.Feature, Object: "(after resubmit)"}
				tr.lookup(tables, hop, a.Table, p, out)
			case openflow.ActCTClear:
				p.Set(openflow.FieldCTState, 0)
			case openflow.ActCT:
				// Connection tracking is simulated as a new connection; a
				// commit without recirculation leaves the state alone.
				c, ok := a.CT()
				if ok && c.Commit && c.NAT != nil {
					st.Rewrites = append(st.Rewrites, natRewrite(p, c.NAT))
				}
				if ok && c.Commit && !c.Recirc {
					st.Rewrites = append(st.Rewrites, "ct: the connection is committed ("+a.String()+")")
					break
				}
				p.Set(openflow.FieldCTState, uint64(openflow.CTTrk|openflow.CTNew))
				st.Rewrites = append(st.Rewrites, "ct: assumed a new connection (ct_state=+trk+new)")
				if ok && c.Recirc {
					next = int(c.Table)
				}
			default:
				st.Rewrites = append(st.Rewrites, a.String()+" (not simulated)")
			}
		}
		if len(f.Actions) == 0 {
			st.Drop = tr.reason(ck)
			out.drop = st.Drop
		}
		hop.Steps = append(hop.Steps, st)
		if next < 0 {
			return
		}
		table = uint8(next)
	}
}

// follow turns a switch's outcome into the next hop or the verdict.
func (tr *tracer) follow(idx int, dpid uint64, p *Packet, out *outcome) {
	hop := &tr.res.Hops[idx]
	last := hop.Steps[len(hop.Steps)-1]
	switch {
	case out.tooMany:
		hop.Out = "nowhere"
		tr.finish(Dropped, "loop", "dropped: more than 64 table lookups (a loop?)", "")
		return
	case out.controller:
		reason := tr.reason(pipeline.ParseCookie(last.flow.Cookie))
		hop.Out = "to vpcflow (packet-in)"
		what := "sent to vpcflow"
		if reason == "too_big" {
			what = fmt.Sprintf("too big for the VXLAN underlay (%d-byte frame): vpcflow answers ICMP fragmentation-needed from the gateway", p.Len)
		}
		tr.finish(ToVPCFlow, reason, what+" ("+last.TableName+", table "+fmt.Sprint(last.Table)+")", "")
		return
	case len(out.outputs) == 0:
		hop.Out = "nowhere"
		why := out.drop
		if why == "" {
			why = "no_output"
		}
		tr.finish(Dropped, why, fmt.Sprintf("dropped: %s at %s (table %d) on %s, by %s", why, last.TableName, last.Table, tr.switchName(dpid), last.Object), "")
		return
	}
	port := out.outputs[0]
	inPort := uint32(p.Get(openflow.FieldInPort))
	if port == openflow.PortInPort || port == inPort {
		hop.Out = fmt.Sprintf("back out of port %d (the port it came in on)", inPort)
		if p.Get(openflow.FieldEthType) == openflow.EthTypeARP && p.Get(openflow.FieldArpOp) == 2 {
			tr.finish(ARPAnswered, "", fmt.Sprintf("ARP answered: %s is at %s (by %s)",
				openflow.Uint32ToAddr(uint32(p.Get(openflow.FieldArpSpa))), openflow.Uint64ToMAC(p.Get(openflow.FieldArpSha)), last.Object), "")
			return
		}
		tr.finish(Delivered, "", "sent back to its sender", "")
		return
	}
	if h, ok := tr.env.HostAt(dpid, port); ok {
		hop.Out = fmt.Sprintf("port %d: host %s/%s", port, h.VPC, h.Name)
		tr.finish(Delivered, "", fmt.Sprintf("delivered to host %s/%s (%s) on %s port %d", h.VPC, h.Name, h.IP, tr.switchName(dpid), port), h.VPC+"/"+h.Name)
		return
	}
	for name, c := range tr.env.Chassis {
		if c.DPID != dpid || c.TunnelPort != port {
			continue
		}
		dstIP := openflow.Uint32ToAddr(uint32(p.Get(openflow.FieldTunDst)))
		for rname, rc := range tr.env.Chassis {
			if rc.Chassis.TunnelIP != dstIP || rname == name {
				continue
			}
			hop.Out = fmt.Sprintf("VXLAN (VNI %d) to chassis %s (%s)", p.Get(openflow.FieldTunID), rname, dstIP)
			next := *p
			next.resetPipelineFields()
			next.Set(openflow.FieldInPort, uint64(rc.TunnelPort))
			next.Set(openflow.FieldTunSrc, uint64(openflow.AddrToUint32(c.Chassis.TunnelIP)))
			tr.walk(rc.DPID, &next, "VXLAN from chassis "+name)
			return
		}
		hop.Out = fmt.Sprintf("VXLAN to %s: no chassis has that tunnel IP", dstIP)
		tr.finish(Dropped, "no_chassis", "dropped: "+hop.Out, "")
		return
	}
	for _, u := range tr.env.Topo.AllUplinks() {
		if at, ok := tr.env.Ports.Attachment(u.AsHost()); !ok || at.DPID != dpid || at.OFPort != port {
			continue
		}
		hop.Out = fmt.Sprintf("port %d: uplink %s", port, u.Name)
		tr.finish(LeftUplink, "", fmt.Sprintf("left by uplink %s on %s port %d: %s → %s, to the router %s (%s)", u.Name, tr.switchName(dpid), port,
			openflow.Uint32ToAddr(uint32(p.Get(openflow.FieldIPv4Src))), openflow.Uint32ToAddr(uint32(p.Get(openflow.FieldIPv4Dst))),
			u.Gateway, openflow.Uint64ToMAC(p.Get(openflow.FieldEthDst))), "")
		return
	}
	hop.Out = fmt.Sprintf("port %d (no host attached)", port)
	tr.finish(Dropped, "no_port", fmt.Sprintf("dropped: output to port %d of %s, where no host is attached", port, tr.switchName(dpid)), "")
}

func (tr *tracer) finish(verdict, reason, summary, to string) {
	tr.res.Verdict, tr.res.Reason, tr.res.Summary, tr.res.DeliveredTo = verdict, reason, summary, to
}

func (tr *tracer) switchName(dpid uint64) string {
	for name, c := range tr.env.Chassis {
		if c.DPID == dpid {
			return "chassis " + name
		}
	}
	return "switch " + topology.DPID(dpid).String()
}

// reason names a cookie's drop reason.
func (tr *tracer) reason(ck pipeline.ParsedCookie) string {
	if !ck.Ours {
		return "foreign_flow"
	}
	for _, d := range tr.env.Pipe.DropReasons() {
		if d.Reason == ck.Reason {
			return d.Name
		}
	}
	return "drop"
}

// object names what a flow exists for, from its cookie.
func (tr *tracer) object(cookie uint64) string {
	ck := pipeline.ParseCookie(cookie)
	st := tr.env.Topo
	if !ck.Ours {
		return fmt.Sprintf("not vpcflow's (cookie %#x)", cookie)
	}
	switch ck.Owner {
	case pipeline.OwnerPipeline:
		return "pipeline default"
	case pipeline.OwnerHost:
		if h, ok := st.HostByID(ck.ID); ok {
			return fmt.Sprintf("host %s/%s (%s, %s)", h.VPC, h.Name, h.IP, h.MAC)
		}
	case pipeline.OwnerSubnet:
		if s, ok := st.SubnetByID(ck.ID); ok {
			return fmt.Sprintf("route entry %s/%s (%s → host %s)", s.VPC, s.Name, s.CIDR, s.Host)
		}
	case pipeline.OwnerVSwitch:
		if w, ok := st.VSwitchByID(ck.ID); ok {
			return fmt.Sprintf("vSwitch %s/%s (%s, gateway %s)", w.VPC, w.Name, w.CIDR, w.Gateway)
		}
	case pipeline.OwnerChassis:
		if c, ok := st.ChassisByID(ck.ID); ok {
			return fmt.Sprintf("chassis %s (tunnel %s)", c.Name, c.TunnelIP)
		}
	case pipeline.OwnerSecurityGroup:
		if g, ok := st.SecurityGroupByID(ck.ID); ok {
			return fmt.Sprintf("security group %s/%s", g.VPC, g.Name)
		}
	case pipeline.OwnerSGRule:
		if r, ok := st.SecurityGroupRuleByID(ck.ID); ok {
			peer := r.SecurityGroup
			if r.CIDR.IsValid() {
				peer = r.CIDR.String()
			} else {
				peer = "group " + peer
			}
			return fmt.Sprintf("security group rule %s/%s #%d (%s %s %s %s, peer %s, priority %d)",
				r.VPC, r.Group, r.ID, r.Direction, r.Policy, r.Protocol, r.PortRange, peer, r.Priority)
		}
	case pipeline.OwnerUplink:
		if u, ok := st.UplinkByID(ck.ID); ok {
			return fmt.Sprintf("uplink %s (%s, router %s)", u.Name, u.CIDR, u.Gateway)
		}
	case pipeline.OwnerNATGateway:
		if g, ok := st.NATGatewayByID(ck.ID); ok {
			return fmt.Sprintf("NAT gateway %s/%s (zones %d, %d)", g.VPC, g.Name, g.CTZone, topology.DNATZone(g.CTZone))
		}
	case pipeline.OwnerSNATEntry:
		if e, ok := st.SNATEntryByID(ck.ID); ok {
			return fmt.Sprintf("SNAT entry %s/%s (→ %v)", e.VPC, e.Name, e.SNATIPs)
		}
	case pipeline.OwnerDNATEntry:
		if d, ok := st.DNATEntryByID(ck.ID); ok {
			return fmt.Sprintf("DNAT entry %s/%s (%s %s:%s → %s:%s)", d.VPC, d.Name, d.Protocol, d.ExternalIP, d.ExternalPort, d.InternalIP, d.InternalPort)
		}
	case pipeline.OwnerEIP:
		if e, ok := st.EIPByID(ck.ID); ok {
			return fmt.Sprintf("EIP %s/%s (%s ↔ host %s)", e.VPC, e.Name, e.IP, e.Host)
		}
	}
	return fmt.Sprintf("%s #%d (gone)", ck.Owner, ck.ID)
}

// ownerHost is the host a flow exists for: its own, or a route entry's
// next hop.
func (tr *tracer) ownerHost(ck pipeline.ParsedCookie) (topology.Host, bool) {
	switch {
	case !ck.Ours:
	case ck.Owner == pipeline.OwnerHost:
		return tr.env.Topo.HostByID(ck.ID)
	case ck.Owner == pipeline.OwnerSubnet:
		if s, ok := tr.env.Topo.SubnetByID(ck.ID); ok {
			return tr.env.Topo.Host(s.VPC, s.Host)
		}
	}
	return topology.Host{}, false
}

// describeSet says what a set_field means in VPC terms; owner is the host
// the flow exists for, when there is one.
func (tr *tracer) describeSet(f openflow.Field, v uint64, owner topology.Host, hasOwner bool) string {
	s := f.SetFieldName() + " := " + f.FormatValue(v)
	switch f {
	case openflow.FieldEthSrc, openflow.FieldEthDst:
		mac := openflow.Uint64ToMAC(v)
		if mac.String() == topology.GatewayMACString {
			return s + " (the gateway MAC)"
		}
		if hasOwner && owner.MAC.String() == mac.String() {
			return s + " (host " + owner.VPC + "/" + owner.Name + ")"
		}
	case openflow.FieldTunID:
		if vpc, ok := tr.env.Topo.VPCByID(uint32(v)); ok {
			return fmt.Sprintf("VNI := %d (VPC %s)", v, vpc.Name)
		}
	case openflow.FieldTunDst:
		a := openflow.Uint32ToAddr(uint32(v))
		for name, c := range tr.env.Chassis {
			if c.Chassis.TunnelIP == a {
				return "tunnel to := " + a.String() + " (chassis " + name + ")"
			}
		}
	case openflow.FieldReg2:
		return fmt.Sprintf("output port := %d", v)
	}
	return s
}

// describeMetadata reads the Classifier's metadata: VPC id in the low 32
// bits, vSwitch id in the high 32 bits.
func (tr *tracer) describeMetadata(md uint64) string {
	var parts []string
	if vpc, ok := tr.env.Topo.VPCByID(uint32(md)); ok {
		parts = append(parts, "VPC "+vpc.Name)
	}
	if w, ok := tr.env.Topo.VSwitchByID(uint32(md >> 32)); ok {
		parts = append(parts, "vSwitch "+w.Name)
	}
	if len(parts) == 0 {
		return fmt.Sprintf("metadata := %#x", md)
	}
	return fmt.Sprintf("metadata := %#x (%s)", md, strings.Join(parts, ", "))
}

// natRewrite applies what a committed ct(nat(src=…)) or ct(nat(dst=…))
// does to a new connection's packet: the first address of the range (and,
// for DNAT, the first port; SNAT keeps the source port when it is free),
// and says so.
func natRewrite(p *Packet, n *openflow.NAT) string {
	field, what := openflow.FieldIPv4Src, "source"
	if n.Kind == openflow.NATDst {
		field, what = openflow.FieldIPv4Dst, "destination"
	}
	if n.Kind != openflow.NATSrc && n.Kind != openflow.NATDst {
		return "ct: nat (a reply or related packet would be un-NATed; not simulated)"
	}
	p.Set(field, uint64(openflow.AddrToUint32(n.Min)))
	text := fmt.Sprintf("ct: %s NAT to %s", what, n.Min)
	if n.Kind == openflow.NATDst && n.MinPort != 0 {
		switch p.Get(openflow.FieldIPProto) {
		case uint64(openflow.IPProtoTCP):
			p.Set(openflow.FieldTCPDst, uint64(n.MinPort))
		case uint64(openflow.IPProtoUDP):
			p.Set(openflow.FieldUDPDst, uint64(n.MinPort))
		}
		text += fmt.Sprintf(" port %d", n.MinPort)
	}
	return text
}
