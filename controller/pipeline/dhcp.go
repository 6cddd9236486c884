package pipeline

import (
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// DHCP sends every DHCP request of a registered VM — UDP 68→67 from its
// port and MAC, whatever the addresses, so renewals and INFORM too — to
// vpcflow, which answers from what is registered (controller/dhcp) by a
// packet-out to the VM's port: no other VM ever sees them. The flows are
// in the first table, ahead of the Classifier's admission, because a
// DISCOVER comes from 0.0.0.0, which the SpoofGuard would drop. DHCP from
// anything else (a port no host is attached to, another MAC on a VM's
// port) is dropped and counted as dhcp_unregistered; a DHCP server's
// answer (UDP 67→68) from a VM's port is a forged server, dropped and
// counted as dhcp_forged_server. The punt goes through the dhcp meter.
type DHCP struct {
	meter *Meter
}

// NewDHCP declares the DHCP feature.
func NewDHCP() *DHCP {
	return &DHCP{meter: &Meter{ID: MeterDHCP, Name: "dhcp", Service: ServiceDHCP, Rate: 100, Burst: 200,
		Why: "DHCP requests sent to vpcflow (a VM asks a few times a day; its renewals, DISCOVERs and INFORMs are all answered by vpcflow)"}}
}

// MeterDHCP is the meter of the DHCP punt.
const MeterDHCP uint32 = 2

// Drop reasons the DHCP feature declares.
const (
	// DropDHCPUnregistered: a DHCP request from a source that is not a
	// registered host (port and MAC).
	DropDHCPUnregistered DropReason = 17
	// DropDHCPForgedServer: a DHCP server answer sent from a VM's port.
	DropDHCPForgedServer DropReason = 18
	// DropDHCPBad: a DHCP request vpcflow does not answer (malformed,
	// another client MAC, an unknown message type); counted by vpcflow.
	DropDHCPBad DropReason = 19
)

// Priorities in the first table: above the Classifier's admission (100),
// the forged-server drop above the punt; the unregistered drop above the
// Classifier's per-port catch-all (10) and below the rest.
const (
	priorityDHCPForged       = 120
	priorityDHCPRequest      = 110
	priorityDHCPUnregistered = 20
)

// DHCP's UDP ports.
const (
	dhcpServerPort = 67
	dhcpClientPort = 68
)

func (d *DHCP) Name() string                                  { return "dhcp" }
func (d *DHCP) Tables() []*Table                              { return nil }
func (d *DHCP) Registers() []Register                         { return nil }
func (d *DHCP) Cookies() []OwnerKind                          { return []OwnerKind{OwnerPipeline, OwnerHost} }
func (d *DHCP) Meters() []*Meter                              { return []*Meter{d.meter} }
func (d *DHCP) Affected(*topology.State, topology.Op) []Owner { return nil }
func (d *DHCP) Drops() []DropReasonInfo {
	return []DropReasonInfo{
		{DropDHCPUnregistered, "dhcp_unregistered", "a DHCP request from a source that is not a registered host (its port and MAC): it gets no answer"},
		{DropDHCPForgedServer, "dhcp_forged_server", "a DHCP server's answer (UDP 67→68) sent from a VM's port"},
		{DropDHCPBad, "dhcp_bad", "a DHCP request vpcflow does not answer: malformed, for another client MAC, or of a type that needs no answer (counted by vpcflow)"},
	}
}

// dhcpRequest matches DHCP client → server.
func dhcpRequest() openflow.Match {
	return openflow.NewMatch().EthType(openflow.EthTypeIPv4).With(openflow.FieldIPProto, openflow.IPProtoUDP).
		With(openflow.FieldUDPSrc, dhcpClientPort).With(openflow.FieldUDPDst, dhcpServerPort)
}

// Flows for a host: its DHCP requests to vpcflow; DHCP server answers
// from its port dropped.
func (d *DHCP) Flows(s *Snapshot, o Owner, out *FlowSet) {
	if o.Kind != OwnerHost {
		return
	}
	v, ok := s.host(o.ID)
	if !ok {
		return
	}
	out.On(v.at.DPID, out.First()).Priority(priorityDHCPForged).Cookie(HostCookie(v.h.ID, DropDHCPForgedServer)).
		Match(openflow.NewMatch().InPort(v.at.OFPort).EthType(openflow.EthTypeIPv4).With(openflow.FieldIPProto, openflow.IPProtoUDP).
			With(openflow.FieldUDPSrc, dhcpServerPort).With(openflow.FieldUDPDst, dhcpClientPort)).
		Drop()
	out.On(v.at.DPID, out.First()).Priority(priorityDHCPRequest).Cookie(HostCookie(v.h.ID, DropNone)).
		Match(dhcpRequest().InPort(v.at.OFPort).With(openflow.FieldEthSrc, openflow.MACToUint64(v.h.MAC.HW()))).
		Punt(d.meter)
}

// DatapathFlows: DHCP from any other source is dropped and counted.
func (d *DHCP) DatapathFlows(out *FlowSet) {
	out.On(0, out.First()).Priority(priorityDHCPUnregistered).Cookie(PipelineCookie(DropDHCPUnregistered)).
		Match(dhcpRequest()).Drop()
}
