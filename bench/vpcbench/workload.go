package main

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"

	"github.com/vpcflow/vpcflow/api"
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// The workload: one VPC; host i (0-based) on bridge b = i/hostsPerBridge,
// in vSwitch b (10.b.0.0/16) at 10.b.0.0+k+1 (k = i%hostsPerBridge) with
// MAC 52:54:00 + (i+1), attached by dpid + ofport k+1; and one route
// entry 11.0.0.0+i*256/24 per host. Convergence adds and deletes route
// entries out of 14.0.0.0/8.
const (
	benchVPC = "vpc-bench"
	// hostsPerBridge: OVS takes OpenFlow port numbers up to 0xfeff only,
	// and an Aliyun vSwitch is at most a /16, so more hosts than this are
	// spread over several bridges (switches) of the same OVS, one vSwitch
	// each, as they would be over several hypervisors.
	hostsPerBridge = 50000
	// convergeOctet is the first octet of the route entries single
	// changes add (the bulk's take 11.0.0.0 up to 12.134.160.0 at 100,000
	// hosts).
	convergeOctet = 14
)

// bridgesFor is how many bridges (and vSwitches) n hosts are spread over.
func bridgesFor(n int) int { return max(1, (n+hostsPerBridge-1)/hostsPerBridge) }

// placement is the bridge (index) and ofport of host i.
func placement(i int) (bridge int, port uint32) {
	return i / hostsPerBridge, uint32(i%hostsPerBridge + 1)
}

func vswitchName(b int) string { return fmt.Sprintf("vsw-bench%d", b) }

func vswitchCIDR(b int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(b), 0, 0}), 16)
}

// benchVPCObj and benchVSwitchObj are the VPC and vSwitch b as the REST
// API creates them in a fresh store (the vSwitches in order).
func benchVPCObj() topology.VPC { return topology.VPC{ID: 1, Name: benchVPC} }
func benchVSwitchObj(b int) topology.VSwitch {
	return topology.VSwitch{ID: uint32(b + 1), VPC: benchVPC, Name: vswitchName(b), CIDR: vswitchCIDR(b),
		Gateway: netip.AddrFrom4([4]byte{10, byte(b), 255, 253})}
}

// expectedFlows is the size of the tables with n hosts, one route entry
// each, as vpcflow's own pipeline computes it.
func expectedFlows(n int) int {
	fixed, perPair := tableShape(bridgesFor(n))
	return fixed + n*perPair
}

// tableShape is the fixed part of the bench's tables over the given
// number of bridges (defaults and flows shared by a vSwitch's hosts on a
// switch) and the part per host with its route entry, from the pipeline.
func tableShape(bridges int) (fixed, perPair int) {
	size := func(k int) int {
		vpc := benchVPCObj()
		var vsws []topology.VSwitch
		var hosts []topology.Host
		var subnets []topology.Subnet
		dpids := make([]topology.DPID, bridges)
		for b := range bridges {
			dpids[b] = topology.DPID(b + 1)
			vsws = append(vsws, benchVSwitchObj(b))
		}
		for b := range bridges {
			for j := range k {
				i := b*hostsPerBridge + j
				h := hostObj(i, dpids)
				h.ID = uint32(len(hosts) + 1)
				hosts = append(hosts, h)
				subnets = append(subnets, topology.Subnet{ID: uint32(len(subnets) + 1), VPC: benchVPC, Name: fmt.Sprintf("s%d", i),
					CIDR: netip.MustParsePrefix(subnetCIDR(11, i)), Host: h.Name})
			}
		}
		t, err := referenceTables(vpc, vsws, hosts, subnets)
		if err != nil {
			panic(err)
		}
		total := 0
		for _, fs := range t {
			total += len(fs)
		}
		return total
	}
	one, two := size(1), size(2)
	return one - (two - one), (two - one) / bridges
}

func addrFrom(base uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(base >> 24), byte(base >> 16), byte(base >> 8), byte(base)})
}

func hostName(i int) string { return fmt.Sprintf("h%06d", i) }

// hostRequest is host i, on its bridge (dpids[bridge]) and port.
func hostRequest(i int, dpids []topology.DPID) api.HostRequest {
	v := uint32(i + 1)
	b, port := placement(i)
	return api.HostRequest{
		Name:    hostName(i),
		VSwitch: vswitchName(b),
		IP:      addrFrom(10<<24 + uint32(b)<<16 + port).String(),
		MAC:     fmt.Sprintf("52:54:00:%02x:%02x:%02x", byte(v>>16), byte(v>>8), byte(v)),
		DPID:    dpids[b].String(),
		OFPort:  port,
	}
}

// hostObj is host i as the store keeps it (without its ID).
func hostObj(i int, dpids []topology.DPID) topology.Host {
	r := hostRequest(i, dpids)
	m, _ := topology.ParseMAC(r.MAC)
	b, _ := placement(i)
	return topology.Host{VPC: benchVPC, Name: r.Name, VSwitch: r.VSwitch, IP: netip.MustParseAddr(r.IP), MAC: m,
		DPID: dpids[b], OFPort: r.OFPort}
}

func subnetCIDR(first byte, i int) string {
	return netip.PrefixFrom(addrFrom(uint32(first)<<24+uint32(i)*256), 24).String()
}

func subnetRequest(i int) api.SubnetRequest {
	return api.SubnetRequest{CIDR: subnetCIDR(11, i), Host: hostName(i)}
}

// writeFlowFiles writes the very flows vpcflow computes for the topology
// (its pipeline and engine over the objects the REST API returned) in
// ovs-ofctl add-flows syntax, one file per bench bridge (paths[b] for
// dpids[b]), and returns how many in all.
func writeFlowFiles(paths []string, dpids []topology.DPID, vpc topology.VPC, vsws []topology.VSwitch, hosts []topology.Host, subnets []topology.Subnet) (int, error) {
	tables, err := referenceTables(vpc, vsws, hosts, subnets)
	if err != nil {
		return 0, err
	}
	total := 0
	for b, d := range dpids {
		n, err := writeFlowFile(paths[b], tables[uint64(d)])
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

func writeFlowFile(path string, flows []openflow.Flow) (int, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	for i := range flows {
		w.WriteString(flows[i].String())
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		return 0, err
	}
	return len(flows), f.Close()
}

// subnetFlowCount is how many flows one more route entry (as convergence
// adds them) brings.
func subnetFlowCount() int {
	dpids := []topology.DPID{1}
	h := hostObj(0, dpids)
	h.ID = 1
	sub := func(first byte) topology.Subnet {
		return topology.Subnet{ID: uint32(first), VPC: benchVPC, Name: fmt.Sprintf("s%d", first), CIDR: netip.MustParsePrefix(subnetCIDR(first, 0)), Host: h.Name}
	}
	vsws := []topology.VSwitch{benchVSwitchObj(0)}
	a, err1 := referenceTables(benchVPCObj(), vsws, []topology.Host{h}, []topology.Subnet{sub(11)})
	b, err2 := referenceTables(benchVPCObj(), vsws, []topology.Host{h}, []topology.Subnet{sub(11), sub(convergeOctet)})
	if err1 != nil || err2 != nil {
		panic(fmt.Sprint(err1, err2))
	}
	return len(b[1]) - len(a[1])
}
