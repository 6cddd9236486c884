package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vpcflow/vpcflow/api"
	"github.com/vpcflow/vpcflow/e2e/netlab"
)

// The NAT scenario: one VM (client) opens TCP connections as fast as it
// can — connect, then close with RST so no TIME_WAIT holds its ports —
// to a VM of its own VPC (routed, no NAT) and to a server behind the
// uplink (through SNAT, stateful in OVS conntrack), in turns, in the same
// lab and run. The number is connections completed per second (the
// handshake's SYN-ACK came back through the fabric).
const (
	natBenchPublic = "203.0.113.0/24"
	natBenchRouter = "203.0.113.1"
	natBenchSNATIP = "203.0.113.10"
	natBenchInet   = "198.51.100.10"
	natBenchInside = "10.10.10.12"
	natBenchPort   = 8000
)

// natResult is what the scenario measured.
type natResult struct {
	Seconds   time.Duration // per pass
	Workers   int
	Plain     []float64 // connections per second to the VM, per pass
	SNAT      []float64 // through SNAT, per pass
	Errors    [2]int64  // failed connects: plain, SNAT
	SeenFrom  string    // the source address the outside server saw
	Conntrack int       // entries in the NAT gateway's zone after the run
	Load      string
}

// runNAT builds the lab and measures passes × (plain, SNAT).
func runNAT(ctx context.Context, bin string, seconds time.Duration, workers, passes int, verbose bool, serveArgs []string) (res natResult, err error) {
	res = natResult{Seconds: seconds, Workers: workers, Load: loadAvg()}
	e, err := newEnv(ctx, "vpcbench-nat", bin, serveArgs, verbose, 1)
	if err != nil {
		return res, err
	}
	defer func() {
		if cerr := e.close(); err == nil {
			err = cerr
		}
	}()
	defer func() { _ = e.stopController() }()
	lab := e.lab
	node := func(name, port, ip, mac string) (*netlab.Node, error) {
		n, err := lab.AddNode(name)
		if err != nil {
			return nil, err
		}
		if _, err := lab.LinkToOVS(ctx, n, "ens8", mac, e.phys, e.ovs, bridgeName(0), port, true); err != nil {
			return nil, err
		}
		if err := n.AddAddr(ctx, "ens8", ip+"/24"); err != nil {
			return nil, err
		}
		if _, err := n.Cmd(ctx, "ip", "route", "add", "default", "via", "10.10.10.1"); err != nil {
			return nil, err
		}
		return n, nil
	}
	client, err := node("client", "vnet1", "10.10.10.11", "52:58:00:98:c0:81")
	if err != nil {
		return res, err
	}
	// Every port for the client, so that a pass rarely reuses a source
	// port of an earlier connection still in conntrack.
	if err := client.SetSysctl("net.ipv4.ip_local_port_range", "1024\t65535"); err != nil {
		return res, err
	}
	inside, err := node("inside", "vnet2", natBenchInside, "52:58:00:98:c0:82")
	if err != nil {
		return res, err
	}
	rtr, err := lab.AddNode("rtr")
	if err != nil {
		return res, err
	}
	inet, err := lab.AddNode("inet")
	if err != nil {
		return res, err
	}
	if _, err := lab.LinkToOVS(ctx, rtr, "eth0", "52:54:00:aa:00:01", e.phys, e.ovs, bridgeName(0), "eth-up", false); err != nil {
		return res, err
	}
	if err := lab.LinkNodes(ctx, rtr, "eth1", inet, "eth0"); err != nil {
		return res, err
	}
	for _, s := range []struct {
		n       *netlab.Node
		ifc, ip string
	}{{rtr, "eth0", natBenchRouter + "/24"}, {rtr, "eth1", "198.51.100.1/24"}, {inet, "eth0", natBenchInet + "/24"}} {
		if err := s.n.AddAddr(ctx, s.ifc, s.ip); err != nil {
			return res, err
		}
	}
	if err := rtr.EnableIPForward(); err != nil {
		return res, err
	}
	if err := inet.AddRoute(ctx, natBenchPublic, "198.51.100.1", ""); err != nil {
		return res, err
	}

	c := e.api
	steps := []func() error{
		func() error { _, err := c.CreateVPC(ctx, api.VPCRequest{Name: "vpc-a"}); return err },
		func() error {
			_, err := c.CreateVSwitch(ctx, "vpc-a", api.VSwitchRequest{Name: "vsw-a", CIDR: "10.10.10.0/24", Gateway: "10.10.10.1"})
			return err
		},
		func() error {
			_, err := c.CreateHost(ctx, "vpc-a", api.HostRequest{Name: "client", VSwitch: "vsw-a", IP: "10.10.10.11", Bridge: bridgeName(0), Interface: "vnet1"})
			return err
		},
		func() error {
			_, err := c.CreateHost(ctx, "vpc-a", api.HostRequest{Name: "inside", VSwitch: "vsw-a", IP: natBenchInside, Bridge: bridgeName(0), Interface: "vnet2"})
			return err
		},
		func() error {
			_, err := c.CreateUplink(ctx, api.UplinkRequest{Name: "up1", Bridge: bridgeName(0), Interface: "eth-up", CIDR: natBenchPublic, Gateway: natBenchRouter})
			return err
		},
		func() error {
			_, err := c.CreateNATGateway(ctx, "vpc-a", api.NATGatewayRequest{Name: "ngw", Uplink: "up1", IPs: []string{natBenchSNATIP}})
			return err
		},
		func() error {
			_, err := c.CreateSNATEntry(ctx, "vpc-a", api.SNATEntryRequest{VSwitch: "vsw-a", SNATIPs: []string{natBenchSNATIP}})
			return err
		},
	}
	for i, f := range steps {
		if err := f(); err != nil {
			return res, fmt.Errorf("nat scenario setup step %d: %w", i+1, err)
		}
	}
	if err := e.poll(ctx, "the router's MAC learned", 30*time.Second, 50*time.Millisecond, func() (bool, error) {
		u, err := c.GetUplink(ctx, "up1")
		return err == nil && len(u.RouterMAC) != 0, nil
	}); err != nil {
		return res, err
	}

	// Servers that accept and forget; the outside one remembers the last
	// source address.
	var lastFrom atomic.Value
	lastFrom.Store("")
	serve := func(n *netlab.Node, addr string, remember bool) (net.Listener, error) {
		ln, err := n.Listen("tcp", addr)
		if err != nil {
			return nil, err
		}
		go func() {
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				if remember {
					h, _, _ := net.SplitHostPort(conn.RemoteAddr().String())
					lastFrom.Store(h)
				}
				_ = conn.Close()
			}
		}()
		return ln, nil
	}
	for _, s := range []struct {
		n        *netlab.Node
		addr     string
		remember bool
	}{{inside, natBenchInside, false}, {inet, natBenchInet, true}} {
		ln, err := serve(s.n, fmt.Sprintf("%s:%d", s.addr, natBenchPort), s.remember)
		if err != nil {
			return res, err
		}
		defer ln.Close()
	}

	// One pass: workers dial target for d; connections completed per
	// second and failures.
	pass := func(target string, d time.Duration) (float64, int64) {
		var ok, bad atomic.Int64
		pctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for pctx.Err() == nil {
					dctx, dcancel := context.WithTimeout(pctx, 2*time.Second)
					conn, err := client.Dial(dctx, "tcp", target)
					dcancel()
					if err != nil {
						if pctx.Err() == nil {
							bad.Add(1)
						}
						continue
					}
					_ = conn.(*net.TCPConn).SetLinger(0)
					_ = conn.Close()
					ok.Add(1)
				}
			}()
		}
		wg.Wait()
		return float64(ok.Load()) / d.Seconds(), bad.Load()
	}
	plain := fmt.Sprintf("%s:%d", natBenchInside, natBenchPort)
	out := fmt.Sprintf("%s:%d", natBenchInet, natBenchPort)
	// Both ways work before anything is timed.
	for _, t := range []string{plain, out} {
		if err := e.poll(ctx, "a connection to "+t, 15*time.Second, 100*time.Millisecond, func() (bool, error) {
			dctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			conn, err := client.Dial(dctx, "tcp", t)
			if err != nil {
				return false, nil
			}
			return true, conn.Close()
		}); err != nil {
			return res, err
		}
	}
	for range passes {
		cps, bad := pass(plain, seconds)
		res.Plain = append(res.Plain, cps)
		res.Errors[0] += bad
		cps, bad = pass(out, seconds)
		res.SNAT = append(res.SNAT, cps)
		res.Errors[1] += bad
	}
	res.SeenFrom = lastFrom.Load().(string)
	if g, err := c.GetNATGateway(ctx, "vpc-a", "ngw"); err == nil {
		if dump, err := e.ovs.Appctl(ctx, "dpctl/dump-conntrack", fmt.Sprintf("zone=%d", g.CTZone)); err == nil {
			res.Conntrack = countLines(dump)
		}
	}
	return res, nil
}

func countLines(s string) int {
	n := 0
	for _, c := range s {
		if c == '\n' {
			n++
		}
	}
	return n
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

func printNAT(w io.Writer, r natResult, markdown bool) {
	each := func(xs []float64) string {
		s := ""
		for i, x := range xs {
			if i > 0 {
				s += ", "
			}
			s += fmt.Sprintf("%.0f", x)
		}
		return s
	}
	ratio := "-"
	if mean(r.Plain) > 0 {
		ratio = fmt.Sprintf("%.2f×", mean(r.SNAT)/mean(r.Plain))
	}
	rows := [][2]string{
		{"new TCP connections/s, VM → VM of its VPC (no NAT), per pass", each(r.Plain)},
		{"new TCP connections/s, VM → outside through SNAT, per pass", each(r.SNAT)},
		{"mean: no NAT / SNAT (SNAT ÷ no NAT)", fmt.Sprintf("%.0f / %.0f (%s)", mean(r.Plain), mean(r.SNAT), ratio)},
		{"failed connects: no NAT / SNAT", fmt.Sprintf("%d / %d", r.Errors[0], r.Errors[1])},
		{"source address the outside server saw", r.SeenFrom},
		{"conntrack entries in the NAT gateway's zone afterwards", num(r.Conntrack)},
		{"machine load average (1, 5 min) at start", r.Load},
	}
	title := fmt.Sprintf("NAT: new connections per second, %d workers, %v passes in turn", r.Workers, r.Seconds)
	if markdown {
		fmt.Fprintf(w, "\n| %s | |\n|---|---:|\n", title)
		for _, x := range rows {
			fmt.Fprintf(w, "| %s | %s |\n", x[0], x[1])
		}
		return
	}
	width := len([]rune(title))
	for _, x := range rows {
		width = max(width, len([]rune(x[0])))
	}
	fmt.Fprintf(w, "\n%s\n", title)
	for _, x := range rows {
		fmt.Fprintf(w, "  %-*s  %s\n", width, x[0], x[1])
	}
}
