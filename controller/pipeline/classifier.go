package pipeline

import (
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// Classifier admits only registered (in_port, eth_src) pairs and tags the
// packet with its VPC and vSwitch in metadata. Other features may add
// flows here to classify what enters by other ports (the tunnel does).
type Classifier struct {
	table *Table
}

// NewClassifier declares the Classifier.
func NewClassifier() *Classifier {
	return &Classifier{table: &Table{ID: 0, Name: "Classifier", Handles: Any,
		Why:  "admit only registered (in_port, eth_src) pairs and tag the packet with its VPC id (and vSwitch id) in metadata",
		Miss: Miss{Drop: DropUnknownSource}}}
}

// Drop reasons the Classifier declares.
const (
	// DropUnknownSource: a packet from a port no host is attached to (or,
	// on a tunnel port, from an address that is not a registered chassis).
	DropUnknownSource DropReason = 4
)

// Metadata layout, written by the Classifier.
const (
	metadataVPCMask     = 0x00000000ffffffff
	metadataVSwitchMask = 0xffffffff00000000
	metadataAll         = metadataVPCMask | metadataVSwitchMask
)

// vpcMetadata is the metadata value of a VPC (matched under metadataVPCMask).
func vpcMetadata(vpc uint32) uint64 { return uint64(vpc) }

// hostMetadata is the metadata of a packet from a host: VPC and vSwitch.
func hostMetadata(vpc, vsw uint32) uint64 { return uint64(vsw)<<32 | uint64(vpc) }

// Priorities in the Classifier.
const (
	priorityAdmit    = 100
	priorityCatchAll = 10
)

func (c *Classifier) Name() string     { return "classifier" }
func (c *Classifier) Tables() []*Table { return []*Table{c.table} }
func (c *Classifier) Registers() []Register {
	return []Register{
		{Field: openflow.FieldMetadata, Lo: 0, Hi: 31, Name: "VPC id", Why: "the packet's VPC (also the VXLAN VNI); every later stage matches it"},
		{Field: openflow.FieldMetadata, Lo: 32, Hi: 63, Name: "vSwitch id", Why: "the sender's vSwitch, for flows shared by a vSwitch's hosts"},
	}
}
func (c *Classifier) Cookies() []OwnerKind { return []OwnerKind{OwnerPipeline, OwnerHost} }
func (c *Classifier) Drops() []DropReasonInfo {
	return []DropReasonInfo{{DropUnknownSource, "unknown_source", "packet from a port no host is attached to, or VXLAN from an address that is not a registered chassis"}}
}

// Flows: the host's MAC on its port enters the VPC; any other source MAC on
// that port is spoofed.
func (c *Classifier) Flows(s *Snapshot, o Owner, out *FlowSet) {
	if o.Kind != OwnerHost {
		return
	}
	v, ok := s.host(o.ID)
	if !ok {
		return
	}
	port := openflow.NewMatch().InPort(v.at.OFPort)
	out.On(v.at.DPID, c.table).Priority(priorityAdmit).Cookie(HostCookie(v.h.ID, DropNone)).
		Match(port.With(openflow.FieldEthSrc, openflow.MACToUint64(v.h.MAC.HW()))).
		Actions(openflow.WriteMetadata(hostMetadata(v.vpc.ID, v.vsw.ID), metadataAll)).
		Next(Any)
	out.On(v.at.DPID, c.table).Priority(priorityCatchAll).Cookie(HostCookie(v.h.ID, DropSpoofed)).
		Match(port).Drop()
}

func (c *Classifier) Affected(*topology.State, topology.Op) []Owner { return nil }
