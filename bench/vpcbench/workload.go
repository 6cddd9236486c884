package main

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"

	"github.com/vpcflow/vpcflow/api"
	"github.com/vpcflow/vpcflow/topology"
)

// The workload: one VPC, one vSwitch 10.0.0.0/16, host i (0-based) at
// 10.0.0.0+i+1 with MAC 52:54:00 + (i+1), attached by dpid + ofport i+1,
// and one route entry 11.0.0.0+i*256/24 per host. Convergence adds and
// deletes route entries out of 12.0.0.0/8.
const (
	benchVPC     = "vpc-bench"
	benchVSwitch = "vsw-bench"
	vswitchCIDR  = "10.0.0.0/16"
)

// expectedFlows is the size of the table with n hosts, one route entry
// each, as vpcflow's own pipeline computes it: a fixed part (defaults and
// flows shared by the vSwitch) plus a part per host and route entry.
func expectedFlows(n int) int {
	fixed, perPair := tableShape()
	return fixed + n*perPair
}

// tableShape is the fixed part of the bench's table and the part per host
// with its route entry.
func tableShape() (fixed, perPair int) {
	size := func(k int) int {
		var hosts []topology.Host
		var subnets []topology.Subnet
		for i := 0; i < k; i++ {
			r := hostRequest(i, 1)
			m, _ := topology.ParseMAC(r.MAC)
			hosts = append(hosts, topology.Host{ID: uint32(i + 1), VPC: benchVPC, Name: r.Name, VSwitch: benchVSwitch,
				IP: netip.MustParseAddr(r.IP), MAC: m, DPID: 1, OFPort: r.OFPort})
			subnets = append(subnets, topology.Subnet{ID: uint32(i + 1), VPC: benchVPC, Name: fmt.Sprintf("s%d", i), CIDR: netip.MustParsePrefix(subnetCIDR(11, i)), Host: r.Name})
		}
		t, err := referenceTable(1, topology.VPC{ID: 1, Name: benchVPC}, topology.VSwitch{ID: 1, VPC: benchVPC, Name: benchVSwitch, CIDR: netip.MustParsePrefix(vswitchCIDR), Gateway: netip.MustParseAddr("10.0.255.253")}, hosts, subnets)
		if err != nil {
			panic(err)
		}
		return len(t)
	}
	return flowCounts(size)
}

// flowCounts splits a table's size into the fixed part and the part per
// host with its route entry, from the sizes with one and two hosts.
func flowCounts(size func(k int) int) (fixed, perPair int) {
	one, two := size(1), size(2)
	return one - (two - one), two - one
}

func addrFrom(base uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(base >> 24), byte(base >> 16), byte(base >> 8), byte(base)})
}

func hostName(i int) string { return fmt.Sprintf("h%06d", i) }

func hostRequest(i int, dpid topology.DPID) api.HostRequest {
	v := uint32(i + 1)
	return api.HostRequest{
		Name:    hostName(i),
		VSwitch: benchVSwitch,
		IP:      addrFrom(10<<24 + v).String(),
		MAC:     fmt.Sprintf("52:54:00:%02x:%02x:%02x", byte(v>>16), byte(v>>8), byte(v)),
		DPID:    dpid.String(),
		OFPort:  v,
	}
}

func subnetCIDR(first byte, i int) string {
	return netip.PrefixFrom(addrFrom(uint32(first)<<24+uint32(i)*256), 24).String()
}

func subnetRequest(i int) api.SubnetRequest {
	return api.SubnetRequest{CIDR: subnetCIDR(11, i), Host: hostName(i)}
}

// writeFlowFile writes the very flows vpcflow computes for the topology
// (its pipeline and engine over the objects the REST API returned) in
// ovs-ofctl add-flows syntax, and returns how many.
func writeFlowFile(path string, vpc topology.VPC, vsw topology.VSwitch, hosts []topology.Host, subnets []topology.Subnet) (int, error) {
	var dpid uint64
	if len(hosts) > 0 {
		dpid = uint64(hosts[0].DPID)
	}
	flows, err := referenceTable(dpid, vpc, vsw, hosts, subnets)
	if err != nil {
		return 0, err
	}
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

// subnetFlowCount is how many flows one more route entry (out of
// 12.0.0.0/8, as convergence adds them) brings.
func subnetFlowCount() int {
	r := hostRequest(0, 1)
	m, _ := topology.ParseMAC(r.MAC)
	h := topology.Host{ID: 1, VPC: benchVPC, Name: r.Name, VSwitch: benchVSwitch, IP: netip.MustParseAddr(r.IP), MAC: m, DPID: 1, OFPort: r.OFPort}
	vpc := topology.VPC{ID: 1, Name: benchVPC}
	vsw := topology.VSwitch{ID: 1, VPC: benchVPC, Name: benchVSwitch, CIDR: netip.MustParsePrefix(vswitchCIDR), Gateway: netip.MustParseAddr("10.0.255.253")}
	sub := func(first byte) topology.Subnet {
		return topology.Subnet{ID: uint32(first), VPC: benchVPC, Name: fmt.Sprintf("s%d", first), CIDR: netip.MustParsePrefix(subnetCIDR(first, 0)), Host: h.Name}
	}
	a, err1 := referenceTable(1, vpc, vsw, []topology.Host{h}, []topology.Subnet{sub(11)})
	b, err2 := referenceTable(1, vpc, vsw, []topology.Host{h}, []topology.Subnet{sub(11), sub(12)})
	if err1 != nil || err2 != nil {
		panic(fmt.Sprint(err1, err2))
	}
	return len(b) - len(a)
}
