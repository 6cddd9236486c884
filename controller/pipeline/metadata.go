package pipeline

import (
	"net"
	"net/netip"

	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// Metadata steers a VM's requests to the metadata service,
// 100.100.100.200:80, to vpcflow's metadata server behind the bridge's
// metadata port (an OVS port named MetadataPortName whose other end, in a
// namespace of its own, holds MetadataServerIP; see docs/pipeline.md).
// VPCs may overlap, so the server cannot tell VMs apart by their
// addresses: on the way there each VM's source address is rewritten to
// one that is its own on the whole fabric, MetadataLinkAddr(host id), and
// back again on the way back — stateless, one to one. The request is
// matched after the SpoofGuard (the VM's own address from its own port
// and MAC), so the link address, and with it what the server answers,
// follows from the port the request came in by, never from what it
// claims. The metadata port's ARP requests (for the link addresses) are
// answered with the gateway MAC.
type Metadata struct {
	table *Table
}

// Metadata service addresses.
var (
	// MetadataServiceIP is where VMs ask, as on Aliyun.
	MetadataServiceIP = netip.MustParseAddr("100.100.100.200")
	// MetadataServerIP is the metadata server's address behind the
	// metadata port.
	MetadataServerIP = netip.MustParseAddr("169.254.169.254")
	// metadataLinkBase + host id is the address a VM's requests come
	// from at the server: 100.64.0.0/10, 4,194,303 hosts.
	metadataLinkBase = netip.MustParsePrefix("100.64.0.0/10")
)

// MetadataPortName is the name of the OVS port the metadata server is
// behind, on every bridge that offers the service.
const MetadataPortName = "vpcflow-meta"

// metadataPort is the TCP port of the service.
const metadataPort = 80

// MetadataLinkAddr is the address the requests of host id come from at
// the metadata server; false for ids beyond the link range.
func MetadataLinkAddr(id uint32) (netip.Addr, bool) {
	if id == 0 || id >= 1<<(32-metadataLinkBase.Bits()) {
		return netip.Addr{}, false
	}
	return openflow.Uint32ToAddr(openflow.AddrToUint32(metadataLinkBase.Addr()) + id), true
}

// MetadataHostOf is the host id whose link address a is.
func MetadataHostOf(a netip.Addr) (uint32, bool) {
	if !a.Is4() || !metadataLinkBase.Contains(a) {
		return 0, false
	}
	id := openflow.AddrToUint32(a) - openflow.AddrToUint32(metadataLinkBase.Addr())
	return id, id != 0
}

// MetadataPort is a bridge's metadata port as OVSDB reports it: its
// ofport and the MAC of the server's interface behind it (the port's
// external_ids:attached-mac).
type MetadataPort struct {
	OFPort uint32
	MAC    net.HardwareAddr
}

// NewMetadata declares the Metadata feature.
func NewMetadata() *Metadata {
	return &Metadata{table: &Table{ID: 16, Name: "Metadata", Handles: IPv4,
		Why:  "a VM's TCP to 100.100.100.200:80 goes to the metadata server behind the bridge's metadata port, its source rewritten to the VM's own link address (100.64.0.0/10 + host id) so the server knows the VM by its port; the rest goes on",
		Miss: Miss{Continue: true}}}
}

// Priorities of the metadata flows.
const (
	priorityMetadata      = 100
	priorityMetadataReply = 130 // in the first table, above the Classifier's admission
)

func (m *Metadata) Name() string                                  { return "metadata" }
func (m *Metadata) Tables() []*Table                              { return []*Table{m.table} }
func (m *Metadata) Registers() []Register                         { return nil }
func (m *Metadata) Cookies() []OwnerKind                          { return []OwnerKind{OwnerPipeline, OwnerHost} }
func (m *Metadata) Drops() []DropReasonInfo                       { return nil }
func (m *Metadata) Affected(*topology.State, topology.Op) []Owner { return nil }

// Flows for a host on a bridge with a metadata port: its requests there,
// the server's answers back, and (shared) the ARP answer to the server.
func (m *Metadata) Flows(s *Snapshot, o Owner, out *FlowSet) {
	if o.Kind != OwnerHost {
		return
	}
	v, ok := s.host(o.ID)
	if !ok {
		return
	}
	mp, ok := s.MetadataPorts[v.at.DPID]
	if !ok || len(mp.MAC) != 6 {
		return
	}
	link, ok := MetadataLinkAddr(v.h.ID)
	if !ok {
		return
	}
	ck := HostCookie(v.h.ID, DropNone)
	tcp := openflow.NewMatch().EthType(openflow.EthTypeIPv4).With(openflow.FieldIPProto, openflow.IPProtoTCP)
	out.On(v.at.DPID, m.table).Priority(priorityMetadata).Cookie(ck).
		Match(tcp.InPort(v.at.OFPort).Addr(openflow.FieldIPv4Dst, MetadataServiceIP).With(openflow.FieldTCPDst, metadataPort)).
		Actions(openflow.SetMAC(openflow.FieldEthSrc, topology.GatewayMAC), openflow.SetMAC(openflow.FieldEthDst, mp.MAC),
			openflow.SetAddr(openflow.FieldIPv4Src, link), openflow.SetAddr(openflow.FieldIPv4Dst, MetadataServerIP),
			openflow.Output(mp.OFPort)).
		Do()
	out.On(v.at.DPID, out.First()).Priority(priorityMetadataReply).Cookie(ck).
		Match(tcp.InPort(mp.OFPort).Addr(openflow.FieldIPv4Src, MetadataServerIP).With(openflow.FieldTCPSrc, metadataPort).
			Addr(openflow.FieldIPv4Dst, link)).
		Actions(openflow.SetMAC(openflow.FieldEthSrc, topology.GatewayMAC), openflow.SetMAC(openflow.FieldEthDst, v.h.MAC.HW()),
			openflow.SetAddr(openflow.FieldIPv4Src, MetadataServiceIP), openflow.SetAddr(openflow.FieldIPv4Dst, v.h.IP),
			openflow.Output(v.at.OFPort)).
		Do()
	// The server's kernel asks for the link addresses: every one is at
	// the gateway MAC (reg0 is scratch, as in the ARPResponder's reply).
	out.On(v.at.DPID, out.First()).Priority(priorityMetadataReply).Cookie(PipelineCookie(DropNone)).
		Match(openflow.NewMatch().InPort(mp.OFPort).EthType(openflow.EthTypeARP).With(openflow.FieldArpOp, 1).
			Prefix(openflow.FieldArpTpa, metadataLinkBase)).
		Actions(ARPReplyActions()...).Do()
}
