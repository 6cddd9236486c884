package main

import (
	"context"
	"fmt"
	"io"

	"github.com/vpcflow/vpcflow/api"
	"github.com/vpcflow/vpcflow/trace"
)

func (c *cli) trace(args []string) int {
	k := c.command("trace", "--vpc VPC (--from HOST | --from-chassis CHASSIS) DST",
		"Simulate a packet through vpcflow's pipeline, as ovn-trace does: from host\n"+
			"HOST (or arriving by VXLAN from CHASSIS's uplink) to address DST. It runs\n"+
			"on the flows vpcflow wants on each switch, follows the packet through the\n"+
			"tunnel to other chassis, and prints every table with the feature, the\n"+
			"object (host, route entry, vSwitch, chassis) the matching flow exists for\n"+
			"and each rewrite, under a one-line verdict: delivered to host Z, dropped\n"+
			"(reason), ARP answered, or sent to vpcflow. --installed runs it again on\n"+
			"the flows dumped from the switches and reports any difference as drift.\n"+
			"--live then sends the packet for real: injected at HOST's port with a tag\n"+
			"(pkt_mark) and caught by a packet-in where the simulation says its walk ends\n"+
			"on that switch (or wherever it was about to leave by a port); it says where\n"+
			"the real packet got to and whether that matches the simulation (exit 1 when\n"+
			"it does not). The tagged packet is never delivered.",
		"vpcflow trace --vpc vpc-seed --from test1 172.18.3.4\n"+
			"vpcflow trace --vpc vpc-seed --from test1 --proto tcp --dst-port 80 10.10.10.12\n"+
			"vpcflow trace --vpc vpc-seed --from test1 --src 10.10.10.12 10.10.10.13   # spoofed\n"+
			"vpcflow trace --vpc vpc-seed --from test1 --proto arp 10.10.10.1\n"+
			"vpcflow trace --vpc vpc-a --from-chassis node1 --src 10.10.10.21 10.10.10.22\n"+
			"vpcflow trace --vpc vpc-seed --from test1 --installed 172.18.3.4 -o json\n"+
			"vpcflow trace --vpc vpc-seed --from test1 --live 10.10.10.99           # real packet: no_route").withAPI()
	var req trace.Request
	k.fs.StringVar(&req.VPC, "vpc", "", "the VPC (required)")
	k.fs.StringVar(&req.From, "from", "", "the sending host")
	k.fs.StringVar(&req.FromChassis, "from-chassis", "", "send from this chassis's uplink (VXLAN) instead of a host")
	k.fs.StringVar(&req.ToChassis, "to-chassis", "", "with --from-chassis: the chassis it arrives at (default: DST's host's)")
	k.fs.StringVar(&req.Src, "src", "", "source address (default: the host's IP)")
	k.fs.StringVar(&req.SrcMAC, "src-mac", "", "source MAC (default: the host's MAC)")
	k.fs.StringVar(&req.Proto, "proto", "icmp", "icmp, tcp, udp or arp")
	srcPort := k.fs.Uint("src-port", 0, "TCP/UDP source port (default 40000)")
	dstPort := k.fs.Uint("dst-port", 0, "TCP/UDP destination port")
	ttl := k.fs.Uint("ttl", 64, "IPv4 TTL")
	k.fs.IntVar(&req.Size, "size", 98, "frame length in bytes, Ethernet header included")
	k.fs.BoolVar(&req.Installed, "installed", false, "also trace on the flows installed in the switches and report drift")
	k.fs.BoolVar(&req.Live, "live", false, "also send the packet for real from the host's port and compare where it got to")
	pos, code, ok := k.parse(args, "DST")
	if !ok {
		return code
	}
	if code, ok := k.required("vpc"); !ok {
		return code
	}
	if *srcPort > 65535 || *dstPort > 65535 || *ttl > 255 {
		return k.usageError("--src-port and --dst-port are 0..65535, --ttl 0..255")
	}
	req.Dst, req.SrcPort, req.DstPort, req.TTL = pos[0], uint16(*srcPort), uint16(*dstPort), uint8(*ttl)
	var res *trace.Result
	code = k.call(func(ctx context.Context, cl *api.Client) (any, error) {
		r, err := cl.Trace(ctx, req)
		res = r
		return r, err
	}, func(w io.Writer, v any) { fmt.Fprint(w, v.(*trace.Result).Text()) })
	if code == exitOK && res != nil && res.Live != nil && !res.Live.Matches {
		return exitError
	}
	return code
}
