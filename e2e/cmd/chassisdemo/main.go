// Command chassisdemo is `make demo-chassis`: one VPC spread over three
// physical hosts ("chassis", each a network namespace with its own Open
// vSwitch), joined by VXLAN over an underlay segment, narrated step by step
// in the style of scripts/demo.sh. Every command is shown before it runs,
// followed by its real output.
//
// It builds everything with the e2e/netlab harness (the topology of
// TestVXLANThreeChassis), touches nothing outside the namespaces it creates,
// and removes them all at the end — also on an error, on Ctrl-C or SIGTERM
// (and, through netlab's reaper, even when it is killed).
//
//	go run ./e2e/cmd/chassisdemo --bin bin/vpcflow
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vpcflow/vpcflow/api"
	"github.com/vpcflow/vpcflow/e2e/netlab"
)

const (
	underlayCIDR = "192.168.100.0/24"
	ctrlIP       = "192.168.100.254"
	restAddr     = "127.0.0.1:8080"
	bridge       = "br-vpc"
	tunnelPort   = "vpcflow-vxlan"
	vmMTU        = "1450"
)

// vmSpec is one VM of the seed scenario: its NIC (ens8, plugged into a
// chassis's br-vpc as port), a Linux bridge and a container behind it.
type vmSpec struct {
	name, chassis, port, ip, mac string
	bridge, bridgeCIDR, subnet   string
	container, ctrIP, ctrGW      string
}

var vms = []vmSpec{
	{"vm1", "node1", "vnet1", "10.10.10.11", "52:58:00:98:c0:81", "vpc1", "172.18.1.1/24", "172.18.1.0/24", "ctr1", "172.18.1.3", "172.18.1.1"},
	{"vm2", "node2", "vnet2", "10.10.10.12", "52:58:00:98:c0:92", "vpc2", "172.18.3.1/24", "172.18.3.0/24", "ctr2", "172.18.3.4", "172.18.3.1"},
	{"vm3", "node3", "vnet3", "10.10.10.13", "52:58:00:98:c0:a3", "vpc3", "172.18.5.1/24", "172.18.5.0/24", "ctr3", "172.18.5.4", "172.18.5.1"},
}

var chassisNames = []string{"node1", "node2", "node3"}

func tunnelIP(i int) string { return fmt.Sprintf("192.168.100.%d", 11+i) }

// ---- output ----

var (
	colors      bool
	interrupted atomic.Bool
	outMu       sync.Mutex
)

func style(code, s string) string {
	if !colors {
		return s
	}
	return "\033[" + code + "m" + s + "\033[0m"
}

func printf(format string, a ...any) {
	outMu.Lock()
	defer outMu.Unlock()
	fmt.Printf(format, a...)
}

func bold(format string, a ...any) { printf("\n%s\n", style("1", "== "+fmt.Sprintf(format, a...))) }
func say(format string, a ...any)  { printf("%s\n", fmt.Sprintf(format, a...)) }

// ring keeps the last lines netlab logged (it runs quiet; the lines are
// printed only when something fails, or live with -v).
type ring struct {
	mu    sync.Mutex
	lines []string
	live  bool
}

func (r *ring) logf(format string, a ...any) {
	line := fmt.Sprintf(format, a...)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.live {
		fmt.Fprintln(os.Stderr, line)
	}
	if l := strings.Split(line, "\n"); len(l) > 4 {
		line = strings.Join(l[:4], "\n") + "\n…"
	}
	r.lines = append(r.lines, line)
	if len(r.lines) > 30 {
		r.lines = r.lines[len(r.lines)-30:]
	}
}

func (r *ring) tail() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.lines, "\n")
}

// ---- the demo ----

type demo struct {
	ctx   context.Context
	lab   *netlab.Lab
	bin   string
	nodes map[string]*netlab.Node // by short name: underlay, node1.., vm1.., ctr1..
	ul    *netlab.Underlay
	ch    map[string]*netlab.Chassis
	api   *api.Client
	log   string // vpcflow serve's log
}

// failure carries an error out of the narrated steps (see must).
type failure struct{ err error }

func (d *demo) must(err error) {
	if err != nil {
		panic(failure{err})
	}
}

// display renders a command as one would type it: the vpcflow binary as
// "vpcflow", the lab directory as $LAB.
func (d *demo) display(argv []string) string {
	parts := make([]string, len(argv))
	for i, a := range argv {
		if a == d.bin {
			a = "vpcflow"
		}
		a = strings.ReplaceAll(a, d.lab.Dir(), "$LAB")
		if strings.ContainsAny(a, " \t\"'|;&()<>*?[]{}!") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		parts[i] = a
	}
	return strings.Join(parts, " ")
}

func (d *demo) show(where string, argv []string, suffix string) {
	prompt := "$ "
	if where != "" {
		prompt = "[" + where + "]$ "
	}
	printf("%s\n", style("36", prompt+d.display(argv)+suffix))
}

// exec runs argv inside node n (ip netns exec) and returns its output.
func (d *demo) exec(n *netlab.Node, argv ...string) (string, error) {
	return n.Cmd(d.ctx, argv...)
}

// run shows argv as run in node `where`, runs it there and prints its
// output (without blank lines). A failure stops the demo.
func (d *demo) run(where string, argv ...string) string {
	out, err := d.runMaybe(where, argv...)
	d.must(err)
	return out
}

// runMaybe is run for a command that may fail (its output is shown either way).
func (d *demo) runMaybe(where string, argv ...string) (string, error) {
	d.show(where, argv, "")
	out, err := d.exec(d.nodes[where], argv...)
	printOutput(out)
	if err != nil {
		// netlab's error repeats the output just printed: name the command.
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("[%s]$ %s: %v", where, d.display(argv), ee)
		}
	}
	return out, err
}

func printOutput(out string) {
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if strings.TrimSpace(line) != "" {
			printf("%s\n", strings.TrimRight(line, " "))
		}
	}
}

// ctl runs the vpcflow CLI inside the underlay namespace, where the REST
// API listens on 127.0.0.1:8080.
func (d *demo) ctl(args ...string) string {
	return d.run("underlay", append([]string{d.bin}, args...)...)
}

// vsctl and ofctl run ovs-vsctl / ovs-ofctl against a chassis's private OVS
// (inside the chassis's namespace; the OVS sockets are in $LAB).
func (d *demo) vsctlArgv(chassis string, args ...string) []string {
	return append([]string{"ovs-vsctl", "--db=" + d.ch[chassis].OVS.DBEndpoint()}, args...)
}

func (d *demo) ofctlArgv(chassis string, sub string, args ...string) []string {
	o := d.ch[chassis].OVS
	return append([]string{"ovs-ofctl", "-O", "OpenFlow13", "--names", sub, o.MgmtTarget(d.ch[chassis].Bridge)}, args...)
}

// eventually polls f every 100ms until it succeeds or timeout passes.
func (d *demo) eventually(what string, timeout time.Duration, f func() error) {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if d.ctx.Err() != nil {
			d.must(d.ctx.Err())
		}
		if time.Now().After(deadline) {
			d.must(fmt.Errorf("%s: not after %v: %w", what, timeout, err))
		}
		select {
		case <-d.ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (d *demo) play() (err error) {
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(failure)
			if !ok {
				panic(r)
			}
			err = f.err
		}
	}()
	d.step1Underlay()
	d.step2Controller()
	d.step3Chassis()
	d.step4VMs()
	d.step5Traffic()
	d.step6Move()
	return nil
}

func (d *demo) step1Underlay() {
	ctx := d.ctx
	bold("1. The underlay %s and three chassis, each with its own Open vSwitch", underlayCIDR)
	say("   Every box below is a network namespace named %s-<name>; [name]$ runs a command in it.", d.lab.ID())
	say("   LAB=%s holds the OVS databases, sockets and logs.", d.lab.Dir())
	var err error
	d.ul, err = d.lab.AddUnderlay(ctx, "underlay", underlayCIDR)
	d.must(err)
	d.nodes["underlay"] = d.ul.Node
	d.must(d.ul.Node.AddAddr(ctx, netlab.UnderlayBridge, ctrlIP+"/24"))
	for i, name := range chassisNames {
		c, err := d.ul.AddChassis(ctx, name, tunnelIP(i), bridge)
		d.must(err)
		// vpcflow creates its own flow-based VXLAN port (vpcflow-vxlan):
		// remove the one netlab adds.
		_, err = c.OVS.Vsctl(ctx, "del-port", bridge, netlab.VXLANPort)
		d.must(err)
		d.ch[name] = c
		d.nodes[name] = c.Node
	}
	say("   underlay: Linux bridge %s (the physical switch) with %s/24, where vpcflow will listen", netlab.UnderlayBridge, ctrlIP)
	for i, name := range chassisNames {
		say("   %s: NIC %s (plugged into %s) on OVS bridge %s, tunnel IP %s on %s; integration bridge %s",
			name, netlab.ChassisUnderlayIf, netlab.UnderlayBridge, netlab.PhyBridge, tunnelIP(i), netlab.PhyBridge, bridge)
	}
	d.run("underlay", "ip", "-br", "link", "show", "master", netlab.UnderlayBridge)
	d.run("node1", "ip", "-br", "addr", "show", "dev", netlab.PhyBridge)
	d.run("node1", d.vsctlArgv("node1", "show")...)
	say("   br-vpc has no port yet: vpcflow adds its own VXLAN port when the chassis is registered.")
	d.run("node1", "ping", "-c", "1", "-W", "2", tunnelIP(2))
}

func (d *demo) step2Controller() {
	bold("2. vpcflow serve in the underlay namespace, at %s", ctrlIP)
	d.log = filepath.Join(d.lab.Dir(), "vpcflow.log")
	argv := []string{d.bin, "serve", "--init", "--openflow", ctrlIP + ":6653", "--advertise", "tcp:" + ctrlIP + ":6653",
		"--listen", restAddr, "--data-dir", filepath.Join(d.lab.Dir(), "vpcflow-data")}
	d.show("underlay", argv, " &")
	p, err := d.ul.Node.Start(context.Background(), d.log, argv...)
	d.must(err)
	say("   (pid %d, log $LAB/vpcflow.log) — the chassis will reach it over the underlay,", p.Pid)
	say("   their bridges pointed at the --advertise target tcp:%s:6653", ctrlIP)
	hc := d.ul.Node.HTTPClient()
	hc.Timeout = 5 * time.Second
	d.api, err = api.NewClient("http://"+restAddr, hc)
	d.must(err)
	d.eventually("vpcflow REST API up", 15*time.Second, func() error {
		if p.Exited() {
			return fmt.Errorf("vpcflow serve exited: %v", p.Wait())
		}
		return d.api.Health(d.ctx)
	})
}

func (d *demo) step3Chassis() {
	bold("3. Register the chassis: vpcflow sets up br-vpc on each and adds its VXLAN port")
	for i, name := range chassisNames {
		d.ctl("chassis", "add", name, "--ovsdb", d.ch[name].OVS.DBEndpoint(), "--bridge", bridge, "--tunnel-ip", tunnelIP(i))
	}
	// Wait until every br-vpc has connected and its VXLAN port exists.
	d.eventually("three chassis bridges connected", 20*time.Second, func() error {
		sw, err := d.api.Switches(d.ctx)
		if err != nil {
			return err
		}
		n := 0
		for _, s := range sw {
			if s.Bridge == bridge {
				n++
			}
		}
		if n != len(chassisNames) {
			return fmt.Errorf("%d of %d connected", n, len(chassisNames))
		}
		return nil
	})
	for _, name := range chassisNames {
		_, err := d.ch[name].OVS.Ofport(d.ctx, tunnelPort)
		d.must(err)
	}
	d.ctl("chassis", "list")
	d.ctl("switches")
	d.run("node1", d.vsctlArgv("node1", "--columns=type,options,ofport", "list", "interface", tunnelPort)...)
	d.run("node1", d.vsctlArgv("node1", "get-controller", bridge)...)
	// OVS learns a remote tunnel IP's MAC by ARP and drops the packet that
	// triggered it: resolve all pairs now so the first ping is not lost.
	d.must(d.ul.ResolveTunnelNeighbors(d.ctx))
}

func (d *demo) plug(v vmSpec, chassis string) {
	ctx := d.ctx
	c := d.ch[chassis]
	vm := d.nodes[v.name]
	_, err := d.lab.LinkToOVS(ctx, vm, "ens8", v.mac, c.Node, c.OVS, c.Bridge, v.port, true)
	d.must(err)
	d.run(v.name, "ip", "link", "set", "ens8", "mtu", vmMTU)
	for _, argv := range [][]string{
		{"ip", "addr", "add", v.ip + "/24", "dev", "ens8"},
		{"ip", "route", "add", "default", "via", "10.10.10.1"},
	} {
		_, err := d.exec(vm, argv...)
		d.must(err)
	}
}

func (d *demo) step4VMs() {
	ctx := d.ctx
	bold("4. Three VMs, one per chassis, each with a Linux bridge and a container behind it")
	say("   VXLAN adds 50 bytes (outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8) to every packet")
	say("   and the underlay carries 1500: the VMs' NICs get MTU 1450, as in a cloud, so that a")
	say("   full-size VM packet still fits the underlay once wrapped (docs/pipeline.md, \"MTU\").")
	for _, v := range vms {
		vm, err := d.lab.AddNode(v.name)
		d.must(err)
		d.nodes[v.name] = vm
		d.must(vm.AddLinuxBridge(ctx, v.bridge, v.bridgeCIDR))
		d.must(vm.EnableIPForward())
		ctr, err := d.lab.AddContainer(ctx, vm, v.bridge, v.container, "eth0", v.ctrIP+"/24", v.ctrGW)
		d.must(err)
		d.nodes[v.container] = ctr
		d.plug(v, v.chassis)
		say("   %s on %s: ens8 %s/24 (%s) = %s port %s; bridge %s %s; container %s at %s",
			v.name, v.chassis, v.ip, v.mac, bridge, v.port, v.bridge, v.bridgeCIDR, v.container, v.ctrIP)
	}
	say("")
	say("   Register the VPC, its vSwitch, and per VM a host on its chassis and its container subnet.")
	say("   (The MAC comes from the port's external_ids:attached-mac, as libvirt sets it.)")
	d.ctl("vpc", "create", "vpc-a")
	d.ctl("vswitch", "create", "--vpc", "vpc-a", "vsw-a", "--cidr", "10.10.10.0/24", "--gateway", "10.10.10.1")
	for _, v := range vms {
		d.addHost(v, v.chassis)
	}
}

func (d *demo) addHost(v vmSpec, chassis string) {
	d.ctl("host", "add", "--vpc", "vpc-a", v.name, "--vswitch", "vsw-a", "--ip", v.ip, "--chassis", chassis, "--interface", v.port)
	d.ctl("subnet", "add", "--vpc", "vpc-a", v.subnet, "--host", v.name)
}

func (d *demo) ping(from, to string, count int) {
	out := d.run(from, "ping", "-n", "-c", fmt.Sprint(count), "-i", "0.2", "-W", "2", to)
	if !strings.Contains(out, "ttl=62") {
		d.must(fmt.Errorf("ping %s from %s: no reply with ttl=62", to, from))
	}
}

func (d *demo) step5Traffic() {
	bold("5. Container to container across chassis: ttl=62 (one hop in each VM, none in the fabric)")
	capture, err := d.ul.Capture(d.ctx, "udp port 4789")
	d.must(err)
	d.show("underlay", []string{"tcpdump", "-i", "any", "-Q", "in", "-nn", "-U", "-Z", "root", "-w", capture.File, "udp", "port", "4789"}, " &")
	d.ping("ctr1", vms[1].ctrIP, 2)
	d.ping("ctr2", vms[2].ctrIP, 2)
	d.ping("ctr3", vms[0].ctrIP, 2)
	// tcpdump hands packets over in blocks (TPACKET_V3) and loses the last
	// block when stopped: wait until the file holds all 12 (3 pairs × 2
	// pings × request and reply).
	d.eventually("the capture to hold the pings", 5*time.Second, func() error {
		out, err := d.exec(d.ul.Node, "tcpdump", "-r", capture.File, "-nn")
		if err != nil {
			return err
		}
		if n := strings.Count(out, "VXLAN"); n < 12 {
			return fmt.Errorf("%d VXLAN packets", n)
		}
		return nil
	})
	_, err = capture.Stop()
	d.must(err)

	say("")
	say("   On the wire: VXLAN between the tunnel IPs, VNI 1 (the VPC's id), the containers' packets inside")
	argv := []string{"tcpdump", "-r", capture.File, "-nn"}
	d.show("underlay", argv, "")
	out, err := d.exec(d.ul.Node, argv...)
	d.must(err)
	// The first packet of each direction (outer line, then the inner
	// packet tcpdump prints on the next line).
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	total, seen := 0, map[string]bool{}
	var shown []string
	for i, line := range lines {
		if !strings.Contains(line, "VXLAN") {
			continue
		}
		total++
		f := strings.Fields(line)
		dir := ""
		for k := range f {
			if f[k] == ">" && k > 0 && k+1 < len(f) {
				dir = ipOnly(f[k-1]) + ">" + ipOnly(f[k+1])
				break
			}
		}
		if seen[dir] {
			continue
		}
		seen[dir] = true
		shown = append(shown, dropTimestamp(line))
		if i+1 < len(lines) && !strings.Contains(lines[i+1], "VXLAN") {
			shown = append(shown, "    "+lines[i+1])
		}
	}
	if total == 0 {
		d.must(errors.New("no VXLAN packets on the underlay"))
	}
	for _, l := range shown {
		printf("%s\n", l)
	}
	say("… (%d VXLAN packets in all, the first of each direction shown)", total)

	say("")
	say("   A full-size packet for the 1450 MTU (1422 bytes of ICMP data + 28 of headers), don't-fragment:")
	out = d.run("vm1", "ping", "-n", "-c", "1", "-W", "2", "-M", "do", "-s", "1422", vms[1].ip)
	if !strings.Contains(out, "1 received") {
		d.must(errors.New("the 1450-byte ping did not come back"))
	}

	say("")
	say("   The VM's ARP table: every neighbour, the gateway included, at ee:ff:ff:ff:ff:ff")
	d.run("vm1", "ip", "neigh", "show", "dev", "ens8")

	say("")
	say("   The tunnel flows on node1: VXLAN accepted from the peers (table 0), routes into the tunnel")
	say("   (table 30) and delivery by VNI and MAC (table 40):")
	argv = d.ofctlArgv("node1", "dump-flows")
	d.show("node1", argv, " | grep -E 'tun_|"+tunnelPort+"'")
	out, err = d.exec(d.nodes["node1"], argv...)
	d.must(err)
	for _, line := range strings.Split(out, "\n") {
		if !strings.Contains(line, "tun_") && !strings.Contains(line, tunnelPort) {
			continue
		}
		printf("%s\n", line)
	}
}

func (d *demo) step6Move() {
	ctx := d.ctx
	v := vms[2]
	bold("6. Move vm3 from node3 to node2: its container's traffic follows")
	d.ctl("host", "delete", "--vpc", "vpc-a", v.name, "--cascade")
	say("   Its route entry went with it: ctr1 cannot reach ctr3 now.")
	_, _ = d.runMaybe("ctr1", "ping", "-n", "-c", "1", "-W", "1", v.ctrIP)
	if d.ctx.Err() != nil {
		d.must(d.ctx.Err())
	}
	say("   Unplug vm3's NIC from node3 and plug it into node2's br-vpc, as a live migration would:")
	d.run("node3", d.vsctlArgv("node3", "del-port", bridge, v.port)...)
	d.run("node3", "ip", "link", "del", v.port)
	d.plug(v, "node2")
	say("   (vm3's ens8 is now the peer of vnet3, a port of node2's br-vpc with external_ids:attached-mac)")
	d.addHost(v, "node2")
	// The host's flows go in once node2's OVSDB reports vnet3's ofport.
	d.eventually("route to 172.18.5.0/24 via node2 on node1", 10*time.Second, func() error {
		flows, err := d.ch["node1"].OVS.OfctlDumpFlows(ctx, bridge, "table=30")
		if err != nil {
			return err
		}
		for _, f := range flows {
			if strings.Contains(f, "nw_dst="+v.subnet) && strings.Contains(f, tunnelIP(1)+"->tun_dst") {
				return nil
			}
		}
		return errors.New("not yet")
	})
	d.ping("ctr1", v.ctrIP, 3)
	d.ctl("host", "list", "--vpc", "vpc-a")
	say("   node1 now tunnels vm3's subnet to node2 (%s):", tunnelIP(1))
	d.run("node1", d.ofctlArgv("node1", "dump-flows", "table=30,ip,nw_dst="+v.subnet)...)
}

func main() {
	bin := flag.String("bin", "bin/vpcflow", "the vpcflow binary")
	verbose := flag.Bool("v", false, "print every command the lab runs (to stderr)")
	flag.Parse()
	start := time.Now()
	fi, _ := os.Stdout.Stat()
	colors = os.Getenv("NO_COLOR") == "" && fi != nil && fi.Mode()&os.ModeCharDevice != 0

	binPath, err := filepath.Abs(*bin)
	if err == nil {
		_, err = os.Stat(binPath)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "chassisdemo: %v (run make build)\n", err)
		os.Exit(1)
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "chassisdemo: needs root (network namespaces, Open vSwitch)")
		os.Exit(1)
	}
	if _, err := exec.LookPath("tcpdump"); err != nil {
		fmt.Fprintln(os.Stderr, "chassisdemo: tcpdump is missing (apt-get install tcpdump)")
		os.Exit(1)
	}

	logs := &ring{live: *verbose}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Signals are caught before the lab exists, so that none can slip
	// between its creation and the handler.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)

	lab, err := netlab.NewStandalone("chassisdemo", netlab.WithLogf(logs.logf))
	if err != nil {
		fmt.Fprintf(os.Stderr, "chassisdemo: %v\n", err)
		os.Exit(1)
	}
	d := &demo{ctx: ctx, lab: lab, bin: binPath, nodes: map[string]*netlab.Node{}, ch: map[string]*netlab.Chassis{}}

	// On a signal: stop what runs, remove everything, exit 130. Further
	// signals are ignored until the cleanup is done (the channel is full).
	go func() {
		sig := <-sigs
		interrupted.Store(true)
		cancel()
		fmt.Fprintf(os.Stderr, "\nchassisdemo: caught %v: removing the lab's namespaces, OVS and vpcflow\n", sig)
		code := 130
		if err := lab.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "chassisdemo: %v\n", err)
			code = 1
		}
		fmt.Fprintf(os.Stderr, "chassisdemo: cleaned up (%s-*)\n", lab.ID())
		os.Exit(code)
	}()

	playErr := d.play()
	if interrupted.Load() {
		select {} // the signal handler cleans up and exits
	}
	if playErr != nil {
		fmt.Fprintf(os.Stderr, "\nchassisdemo: %v\n", playErr)
		fmt.Fprintf(os.Stderr, "--- last lab commands ---\n%s\n", logs.tail())
		if d.log != "" {
			if b, err := os.ReadFile(d.log); err == nil {
				fmt.Fprintf(os.Stderr, "--- tail of vpcflow.log ---\n%s\n", tail(string(b), 30))
			}
		}
	}

	bold("7. Cleanup: vpcflow, the three OVSes and every namespace of lab %s", lab.ID())
	closeErr := lab.Close()
	if interrupted.Load() {
		select {}
	}
	if closeErr != nil {
		fmt.Fprintf(os.Stderr, "chassisdemo: %v\n", closeErr)
	}
	out, _ := exec.Command("ip", "netns", "list").Output()
	left := 0
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, lab.ID()+"-") {
			left++
		}
	}
	printf("%s\n", style("36", "$ ip netns list | grep -c "+lab.ID()))
	printf("%d\n", left)
	if _, err := os.Stat(lab.Dir()); err == nil && os.Getenv(netlab.EnvKeepLab) != "1" {
		left++
		say("%s is still there", lab.Dir())
	}
	if playErr != nil || closeErr != nil || left > 0 {
		os.Exit(1)
	}
	say("\nDone in %v.", time.Since(start).Round(100*time.Millisecond))
}

// ipOnly strips the port from tcpdump's "a.b.c.d.port" (and a trailing colon).
func ipOnly(s string) string {
	s = strings.TrimSuffix(s, ":")
	if i := strings.LastIndex(s, "."); i > 0 && strings.Count(s, ".") == 4 {
		return s[:i]
	}
	return s
}

// dropTimestamp removes tcpdump's leading time of day.
func dropTimestamp(line string) string {
	if f := strings.SplitN(line, " ", 2); len(f) == 2 && strings.Count(f[0], ":") == 2 {
		return f[1]
	}
	return line
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
