package main

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"

	"github.com/vpcflow/vpcflow/api"
	"github.com/vpcflow/vpcflow/controller"
	"github.com/vpcflow/vpcflow/openflow"
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

// flowCounts is what the pipeline installs per datapath, per host and per
// route entry (9, 2 and 4 today, docs/pipeline.md), taken from the
// controller package so the bench follows the pipeline as it changes.
func flowCounts() (pipeline, perHost, perSubnet int) {
	vpc := topology.VPC{ID: 1, Name: benchVPC}
	vsw := topology.VSwitch{ID: 1, VPC: benchVPC, Name: benchVSwitch, CIDR: netip.MustParsePrefix(vswitchCIDR)}
	h := topology.Host{ID: 1, VPC: benchVPC, Name: hostName(0), VSwitch: benchVSwitch,
		IP: netip.MustParseAddr("10.0.0.1"), MAC: topology.MAC{0x52, 0x54, 0, 0, 0, 1}, DPID: 1, OFPort: 1}
	s := topology.Subnet{ID: 1, VPC: benchVPC, Name: "s", CIDR: netip.MustParsePrefix(subnetCIDR(11, 0)), Host: h.Name}
	at := controller.Attachment{DPID: 1, OFPort: 1}
	return len(controller.PipelineFlows()), len(controller.HostFlows(vpc, vsw, h, at)), len(controller.SubnetFlows(vpc, s, h, at))
}

// expectedFlows is the size of the table with n hosts, one route entry each.
func expectedFlows(n int) int {
	p, h, s := flowCounts()
	return p + n*(h+s)
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
// (controller.PipelineFlows/HostFlows/SubnetFlows over the objects the REST
// API returned) in ovs-ofctl add-flows syntax, and returns how many.
func writeFlowFile(path string, vpc topology.VPC, vsw topology.VSwitch, hosts []topology.Host, subnets []topology.Subnet) (int, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	n := 0
	put := func(fl []openflow.Flow) {
		for i := range fl {
			w.WriteString(fl[i].String())
			w.WriteByte('\n')
			n++
		}
	}
	put(controller.PipelineFlows())
	byName := make(map[string]topology.Host, len(hosts))
	for _, h := range hosts {
		byName[h.Name] = h
		put(controller.HostFlows(vpc, vsw, h, controller.Attachment{DPID: uint64(h.DPID), OFPort: h.OFPort}))
	}
	for _, s := range subnets {
		h, ok := byName[s.Host]
		if !ok {
			return 0, fmt.Errorf("subnet %s: unknown host %s", s.Name, s.Host)
		}
		put(controller.SubnetFlows(vpc, s, h, controller.Attachment{DPID: uint64(h.DPID), OFPort: h.OFPort}))
	}
	if err := w.Flush(); err != nil {
		return 0, err
	}
	return n, f.Close()
}
