package pipeline

import (
	"net/netip"

	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// AliyunService steers a VM's requests to the Aliyun API's service
// address (Snapshot.AliyunServiceIP, TCP 80; an address of Aliyun's
// internal-endpoint range 100.100.0.0/16, 100.100.80.1 unless configured)
// to vpcflow's Aliyun API listener behind the bridge's metadata port, at
// MetadataServerIP:AliyunServerPort in the metadata server's namespace
// (see docs/pipeline.md, "AliyunService"). It is the Metadata feature's
// path with a second service: the same port, the same per-VM link source
// address (MetadataLinkAddr), so VPCs may overlap and the server knows the
// asking host by the port the request came in by, and the same stateless
// one-to-one rewrite back (the TCP port too: 80 ⇄ AliyunServerPort). The
// server's ARP requests for the link addresses are answered by the
// Metadata feature's flow, which every host on a bridge with a metadata
// port has. With no AliyunServiceIP (the API is not served in the fabric)
// it installs nothing and its table only goes on.
type AliyunService struct {
	table *Table
}

// AliyunServerPort is the TCP port of the Aliyun API listener behind the
// metadata port (at MetadataServerIP), where AliyunService steers the
// requests VMs make to the service address's port 80.
const AliyunServerPort = 8090

// aliyunServicePort is the TCP port VMs ask the service address on.
const aliyunServicePort = 80

// AliyunServiceRange is where Aliyun's internal endpoints are, and so
// where a service address is expected.
var AliyunServiceRange = netip.MustParsePrefix("100.100.0.0/16")

// DefaultAliyunServiceIP is the default service address of the Aliyun API.
var DefaultAliyunServiceIP = netip.MustParseAddr("100.100.80.1")

// NewAliyunService declares the AliyunService feature.
func NewAliyunService() *AliyunService {
	return &AliyunService{table: &Table{ID: 17, Name: "AliyunService", Handles: IPv4,
		Why:  "a VM's TCP to the Aliyun API's service address (--aliyun-service-ip, 100.100.80.1):80 goes to vpcflow's Aliyun API behind the bridge's metadata port (169.254.169.254:8090), its source rewritten to the VM's own link address as for the metadata service; the rest goes on",
		Miss: Miss{Continue: true}}}
}

// Priorities of the Aliyun API service flows.
const (
	priorityAliyunService      = 100
	priorityAliyunServiceReply = 130 // in the first table, above the Classifier's admission
)

func (a *AliyunService) Name() string                                  { return "aliyun-service" }
func (a *AliyunService) Tables() []*Table                              { return []*Table{a.table} }
func (a *AliyunService) Registers() []Register                         { return nil }
func (a *AliyunService) Cookies() []OwnerKind                          { return []OwnerKind{OwnerHost} }
func (a *AliyunService) Drops() []DropReasonInfo                       { return nil }
func (a *AliyunService) Affected(*topology.State, topology.Op) []Owner { return nil }

// Flows for a host on a bridge with a metadata port, when the service is
// offered: its requests to the service address there, and the server's
// answers back.
func (a *AliyunService) Flows(s *Snapshot, o Owner, out *FlowSet) {
	if o.Kind != OwnerHost || !s.AliyunServiceIP.Is4() {
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
	out.On(v.at.DPID, a.table).Priority(priorityAliyunService).Cookie(ck).
		Match(tcp.InPort(v.at.OFPort).Addr(openflow.FieldIPv4Dst, s.AliyunServiceIP).With(openflow.FieldTCPDst, aliyunServicePort)).
		Actions(openflow.SetMAC(openflow.FieldEthSrc, topology.GatewayMAC), openflow.SetMAC(openflow.FieldEthDst, mp.MAC),
			openflow.SetAddr(openflow.FieldIPv4Src, link), openflow.SetAddr(openflow.FieldIPv4Dst, MetadataServerIP),
			openflow.SetField(openflow.FieldTCPDst, AliyunServerPort),
			openflow.Output(mp.OFPort)).
		Do()
	out.On(v.at.DPID, out.First()).Priority(priorityAliyunServiceReply).Cookie(ck).
		Match(tcp.InPort(mp.OFPort).Addr(openflow.FieldIPv4Src, MetadataServerIP).With(openflow.FieldTCPSrc, AliyunServerPort).
			Addr(openflow.FieldIPv4Dst, link)).
		Actions(openflow.SetMAC(openflow.FieldEthSrc, topology.GatewayMAC), openflow.SetMAC(openflow.FieldEthDst, v.h.MAC.HW()),
			openflow.SetAddr(openflow.FieldIPv4Src, s.AliyunServiceIP), openflow.SetAddr(openflow.FieldIPv4Dst, v.h.IP),
			openflow.SetField(openflow.FieldTCPSrc, aliyunServicePort),
			openflow.Output(v.at.OFPort)).
		Do()
}
