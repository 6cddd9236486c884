package pipeline

import (
	"net/netip"

	"github.com/vpcflow/vpcflow/topology"
)

// Snapshot is everything flows are computed from: the topology, where
// hosts are attached, and where the chassis are. It is read-only.
type Snapshot struct {
	Topo  *topology.State
	Ports Ports
	// Chassis are the chassis whose bridge and tunnel port are known, by
	// name; a chassis missing here has no tunnel flows yet.
	Chassis map[string]ChassisPlace
	// UnderlayMTU is the MTU of the network between chassis.
	UnderlayMTU int
	// MetadataPorts are the bridges' metadata ports, by dpid (metadata.go).
	MetadataPorts map[uint64]MetadataPort
	// Probes are the running live traces' observation flows, by trace id
	// (livetrace.go).
	Probes map[uint32]Probe
	// AliyunServiceIP is where VMs reach the Aliyun API (aliyunsvc.go),
	// behind the metadata ports; the zero Addr when it is not served.
	AliyunServiceIP netip.Addr

	// seen is the last host resolved while one owner's flows are computed
	// (Pipeline.Flows): every feature asks for the owner's
	// host in turn, and copying it, its VPC and vSwitch out of the store
	// nine times was a third of computing a host's flows.
	seen struct {
		id     uint32
		v      hostView
		ok, at bool // at: seen holds a lookup
	}
}

// Ports resolves hosts to ports.
type Ports interface {
	// Attachment is where host h is attached, if it is.
	Attachment(h topology.Host) (Attachment, bool)
}

// Attachment is where a host's NIC is on a datapath.
type Attachment struct {
	DPID   uint64
	OFPort uint32
}

// ChassisPlace is a chassis as far as its OVSDB has told: the dpid of its
// bridge and the ofport of its VXLAN port.
type ChassisPlace struct {
	Chassis    topology.Chassis
	DPID       uint64
	TunnelPort uint32
}

// hostView is a host with what its flows need: its VPC, vSwitch and
// attachment. ok is false when any is missing (the host has no flows).
type hostView struct {
	h   topology.Host
	vpc topology.VPC
	vsw topology.VSwitch
	at  Attachment
}

// host resolves host id in s.
func (s *Snapshot) host(id uint32) (hostView, bool) {
	if s.seen.at && s.seen.id == id {
		return s.seen.v, s.seen.ok
	}
	h, ok := s.Topo.HostByID(id)
	if !ok {
		return hostView{}, false
	}
	return s.viewOf(h)
}

// viewOf resolves host h (remembering the last one, see seen).
func (s *Snapshot) viewOf(h topology.Host) (hostView, bool) {
	if s.seen.at && s.seen.id == h.ID {
		return s.seen.v, s.seen.ok
	}
	v, ok := s.resolve(h)
	s.seen.id, s.seen.v, s.seen.ok, s.seen.at = h.ID, v, ok, true
	return v, ok
}

func (s *Snapshot) resolve(h topology.Host) (hostView, bool) {
	vpc, ok1 := s.Topo.VPC(h.VPC)
	vsw, ok2 := s.Topo.VSwitch(h.VPC, h.VSwitch)
	if !ok1 || !ok2 {
		return hostView{}, false
	}
	at, ok := s.Ports.Attachment(h)
	if !ok {
		return hostView{}, false
	}
	return hostView{h: h, vpc: vpc, vsw: vsw, at: at}, true
}

// subnet resolves route entry id and its next hop.
func (s *Snapshot) subnet(id uint32) (topology.Subnet, hostView, bool) {
	sub, ok := s.Topo.SubnetByID(id)
	if !ok {
		return topology.Subnet{}, hostView{}, false
	}
	h, ok := s.Topo.Host(sub.VPC, sub.Host)
	if !ok {
		return topology.Subnet{}, hostView{}, false
	}
	v, ok := s.viewOf(h)
	return sub, v, ok
}

// remote is another chassis from which a host's chassis is reached
// through VXLAN.
type remote struct {
	dpid       uint64     // the other chassis's bridge
	tunnelPort uint32     // its VXLAN port
	dst        netip.Addr // the host's chassis's tunnel IP
}

// remotes lists the chassis other than host v's own from which it is
// reached by VXLAN; none for a host that is not on a chassis.
func (s *Snapshot) remotes(v hostView) []remote {
	home, ok := s.Chassis[v.h.Chassis]
	if v.h.Chassis == "" || !ok {
		return nil
	}
	var out []remote
	for name, peer := range s.Chassis {
		if name == v.h.Chassis || peer.DPID == v.at.DPID {
			continue
		}
		out = append(out, remote{dpid: peer.DPID, tunnelPort: peer.TunnelPort, dst: home.Chassis.TunnelIP})
	}
	return out
}
