package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vpcflow/vpcflow/e2e/netlab"
)

// The fabric's own services, proven with Debian's own DHCP clients
// (isc-dhcp-client's dhclient, busybox's udhcpc) in the seed topology's
// VM namespaces: the VMs are plugged in without any address and get
// everything by DHCP.

// udhcpcScript records every event udhcpc reports, with what it was
// given, and configures the interface as the stock script would (address,
// MTU, default route) without touching the host's resolv.conf.
// The event is logged once the interface is configured, so that a test
// waiting for it (and then stopping the client) never catches the script
// half-way: stopped between the address and the default route, a VM kept
// its address and lost its route.
const udhcpcScript = `#!/bin/sh
case "$1" in
deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
bound|renew)
	ip addr replace "$ip/$mask" dev "$interface"
	[ -n "$mtu" ] && ip link set "$interface" mtu "$mtu"
	ip route replace default via "${router%% *}" dev "$interface" ;;
esac
echo "$1 ip=$ip mask=$mask router=$router mtu=$mtu dns=$dns domain=$domain staticroutes=$staticroutes lease=$lease serverid=$serverid" >> "$DHCP_LOG"
exit 0
`

// dhclientScript does the same for dhclient (isc-dhcp-client): it prints
// what dhclient gives it and configures address, MTU and route.
const dhclientScript = `#!/bin/sh
case "$reason" in
PREINIT) ip link set "$interface" up ;;
BOUND|RENEW|REBIND|REBOOT)
	ip addr replace "$new_ip_address/$new_subnet_mask" dev "$interface"
	[ -n "$new_interface_mtu" ] && ip link set "$interface" mtu "$new_interface_mtu"
	ip route replace default via "${new_routers%% *}" dev "$interface" ;;
esac
echo "$reason ip=$new_ip_address mask=$new_subnet_mask router=$new_routers mtu=$new_interface_mtu dns=$new_domain_name_servers domain=$new_domain_name rfc3442=$new_rfc3442_classless_static_routes lease=$new_dhcp_lease_time" >> "$DHCP_LOG"
exit 0
`

// dhclientConf asks for every option vpcflow gives.
const dhclientConf = `option rfc3442-classless-static-routes code 121 = array of unsigned integer 8;
request subnet-mask, routers, domain-name, domain-name-servers, interface-mtu, rfc3442-classless-static-routes, host-name, dhcp-lease-time;
timeout 20;
retry 1;
`

// dhcpClient is a DHCP client running in a VM namespace.
type dhcpClient struct {
	proc *netlab.Process
	log  string // what the script recorded
}

func writeExec(t *testing.T, path, body string) {
	t.Helper()
	must(t, os.WriteFile(path, []byte(body), 0o755))
}

// startUdhcpc runs udhcpc on the VM's ens8 in the foreground (it stays
// and renews), with the recording script.
func (f *fabric) startUdhcpc(v *vm, name string) *dhcpClient {
	f.t.Helper()
	dir := f.lab.Dir()
	script := filepath.Join(dir, name+"-udhcpc.sh")
	log := filepath.Join(dir, name+"-dhcp-events.log")
	writeExec(f.t, script, strings.ReplaceAll(udhcpcScript, "$DHCP_LOG", log))
	p, err := v.node.Start(testCtx(f.t), "", "udhcpc", "-f", "-i", "ens8", "-s", script,
		"-t", "10", "-T", "1", "-O", "mtu", "-O", "staticroutes", "-O", "domain", "-O", "dns")
	must(f.t, err)
	f.t.Cleanup(func() { _ = p.Stop() })
	return &dhcpClient{proc: p, log: log}
}

// startDhclient runs dhclient on the VM's ens8 in the foreground.
func (f *fabric) startDhclient(v *vm, name string) *dhcpClient {
	f.t.Helper()
	dir := f.lab.Dir()
	script := filepath.Join(dir, name+"-dhclient.sh")
	log := filepath.Join(dir, name+"-dhcp-events.log")
	// dhclient gives its script a clean environment: the log path is
	// written into it.
	writeExec(f.t, script, strings.ReplaceAll(dhclientScript, "$DHCP_LOG", log))
	conf := filepath.Join(dir, name+"-dhclient.conf")
	must(f.t, os.WriteFile(conf, []byte(dhclientConf), 0o644))
	p, err := v.node.Start(testCtx(f.t), "", "dhclient", "-d", "-v", "-sf", script, "-cf", conf,
		"-lf", filepath.Join(dir, name+"-dhclient.leases"), "-pf", filepath.Join(dir, name+"-dhclient.pid"), "ens8")
	must(f.t, err)
	f.t.Cleanup(func() { _ = p.Stop() })
	return &dhcpClient{proc: p, log: log}
}

// events is what the client's script recorded so far.
func (c *dhcpClient) events() string {
	b, _ := os.ReadFile(c.log)
	return string(b)
}

// waitEvent waits until the script recorded a line starting with one of
// events (bound, renew, BOUND, …) at least n times, and returns the last.
func (f *fabric) waitEvent(c *dhcpClient, n int, events ...string) string {
	f.t.Helper()
	var last string
	f.eventually(fmt.Sprintf("DHCP client event %v (#%d)", events, n), 30*time.Second, func() error {
		count := 0
		for _, l := range strings.Split(c.events(), "\n") {
			for _, e := range events {
				if strings.HasPrefix(l, e+" ") {
					count++
					last = l
				}
			}
		}
		if count < n {
			return fmt.Errorf("%d of %d so far; recorded:\n%s", count, n, c.events())
		}
		return nil
	})
	return last
}

// plugBare connects a VM's ens8 to br-test without configuring anything:
// DHCP does that.
func (f *fabric) plugBare(v *vm, s vmSpec) int {
	f.t.Helper()
	port, err := f.lab.LinkToOVS(testCtx(f.t), v.node, "ens8", s.mac, f.phys, f.ovs, "br-test", s.port, true)
	must(f.t, err)
	return port
}

// dropsOf reads /v1/drops: per host and per switch counters by name.
func (f *fabric) dropsOf() (hosts map[string]map[string]uint64, switches map[string]uint64) {
	f.t.Helper()
	var report struct {
		Switches []struct {
			Drops map[string]uint64 `json:"drops"`
		} `json:"switches"`
		Hosts []struct {
			Name  string            `json:"name"`
			Drops map[string]uint64 `json:"drops"`
		} `json:"hosts"`
	}
	must(f.t, json.Unmarshal(f.rest("GET", "/v1/drops", nil, 200), &report))
	hosts, switches = map[string]map[string]uint64{}, map[string]uint64{}
	for _, h := range report.Hosts {
		hosts[h.Name] = h.Drops
	}
	for _, s := range report.Switches {
		for k, v := range s.Drops {
			switches[k] += v
		}
	}
	return hosts, switches
}

// TestDHCPSeed registers the seed scenario with a DHCP options set and
// plugs its VMs in bare: dhclient (VM1) and udhcpc (VM2) get the
// registered address, the gateway, MTU 1500, the DNS servers, domain and
// classless routes; the seed ping (ttl=62) then works. After a controller
// restart udhcpc's renewal is answered. A forged DHCP server on a VM port
// is dropped and counted, an unregistered VM gets nothing and its attempts
// are counted, and the switch holds the pipeline's meters.
func TestDHCPSeed(t *testing.T) {
	f := newFabric(t)
	dpid := f.addBridge("br-test")
	vm1, vm2 := f.addVM(seedVM1), f.addVM(seedVM2)
	f.plugBare(vm1, seedVM1)
	f.plugBare(vm2, seedVM2)
	f.rest("POST", "/v1/vpcs", map[string]any{"name": "vpc-seed"}, 201)
	f.rest("POST", "/v1/vpcs/vpc-seed/vswitches", map[string]any{"name": "vsw-a", "cidr": "10.10.10.0/24", "gateway": "10.10.10.1"}, 201)
	for _, v := range []vmSpec{seedVM1, seedVM2} {
		f.rest("POST", "/v1/vpcs/vpc-seed/hosts", map[string]any{"name": v.name, "vswitch": "vsw-a",
			"ip": v.ip, "mac": v.mac, "bridge": "br-test", "interface": v.port}, 201)
		f.rest("POST", "/v1/vpcs/vpc-seed/subnets",
			map[string]any{"cidr": strings.TrimSuffix(v.bridgeCIDR, ".1/24") + ".0/24", "host": v.name}, 201)
	}
	f.rest("POST", "/v1/vpcs/vpc-seed/dhcp-options", map[string]any{"name": "dopt-seed", "domain_name": "seed.example",
		"dns_servers": []string{"100.100.2.136", "100.100.2.138"}, "lease_time": 3600,
		"static_routes": []map[string]string{{"cidr": "192.168.50.0/24", "next_hop": "10.10.10.12"}}}, 201)

	// The meters are on the switch before any DHCP.
	meters, err := f.ovs.Ofctl(testCtx(t), "br-test", "dump-meters")
	must(t, err)
	for _, want := range []string{"meter=1 pktps burst stats bands=\ntype=drop rate=200 burst_size=200", "meter=2 pktps burst stats bands=\ntype=drop rate=100 burst_size=200"} {
		if !strings.Contains(meters, want) {
			t.Errorf("br-test meters lack %q:\n%s", want, meters)
		}
	}

	c1 := f.startDhclient(vm1, "test1")
	c2 := f.startUdhcpc(vm2, "test2")
	got1 := f.waitEvent(c1, 1, "BOUND")
	got2 := f.waitEvent(c2, 1, "bound")
	t.Logf("dhclient in test1: %s", got1)
	t.Logf("udhcpc in test2: %s", got2)
	for _, c := range []struct{ got, want string }{
		{got1, "ip=10.10.10.11 mask=255.255.255.0 router=10.10.10.1 mtu=1500 dns=100.100.2.136 100.100.2.138 domain=seed.example rfc3442=0 10 10 10 1 24 192 168 50 10 10 10 12 lease=3600"},
		{got2, "ip=10.10.10.12 mask=24 router=10.10.10.1 mtu=1500 dns=100.100.2.136 100.100.2.138 domain=seed.example staticroutes=0.0.0.0/0 10.10.10.1 192.168.50.0/24 10.10.10.12 lease=3600 serverid=10.10.10.1"},
	} {
		if !strings.Contains(c.got, c.want) && !sameFieldsIgnoringOrder(c.got, c.want) {
			t.Errorf("DHCP gave\n  %s\nwant\n  %s", c.got, c.want)
		}
	}
	for _, v := range []*vm{vm1, vm2} {
		addr := v.node.MustCmd(t, "ip", "-4", "-o", "addr", "show", "dev", "ens8")
		if !strings.Contains(addr, v.ip+"/24") {
			t.Errorf("%s ens8: %s", v.node.Name(), addr)
		}
		if link := v.node.MustCmd(t, "ip", "link", "show", "ens8"); !strings.Contains(link, "mtu 1500") {
			t.Errorf("%s ens8 MTU: %s", v.node.Name(), link)
		}
		if r := v.node.MustCmd(t, "ip", "route", "show", "default"); !strings.Contains(r, "via 10.10.10.1") {
			t.Errorf("%s default route: %s", v.node.Name(), r)
		}
	}
	out := ping(t, vm1.container, "172.18.3.4", 3)
	if !strings.Contains(out, "ttl=62") {
		t.Fatalf("seed ping after DHCP: want ttl=62:\n%s", out)
	}
	ping(t, vm2.container, "172.18.1.3", 2)

	// A renewal after a controller restart: udhcpc renews (unicast to the
	// server) on SIGUSR1, the restarted controller answers from the store.
	must(t, f.ctrl.Stop())
	f.startController()
	f.waitSwitch(dpid)
	must(t, syscall.Kill(c2.proc.Pid, syscall.SIGUSR1))
	renewed := f.waitEvent(c2, 1, "renew")
	if !strings.Contains(renewed, "ip=10.10.10.12 ") {
		t.Errorf("renewal after restart gave: %s", renewed)
	}
	t.Logf("udhcpc renewal after the controller restart: %s", renewed)
	logb, err := os.ReadFile(f.logPath)
	must(t, err)
	if !regexp.MustCompile(`DHCP answered.*"host": "test2".*"request": "REQUEST", "answer": "ACK"`).Match(logb) {
		t.Errorf("restarted controller did not log the ACK of test2's renewal:\n%s", tail(string(logb), 30))
	}
	if !regexp.MustCompile(`switch reconciled.*"added": 0, "deleted": 0.*"meters_added": 0, "meters_modified": 0`).Match(logb) {
		t.Errorf("restart reconciliation changed flows or meters:\n%s", tail(string(logb), 30))
	}

	// A forged DHCP server on VM2's port: its offer never reaches VM1.
	must(t, c1.proc.Stop())
	must(t, c2.proc.Stop())
	ln, err := vm1.node.ListenPacket("udp4", "0.0.0.0:68")
	must(t, err)
	defer ln.Close()
	send := func() {
		must(t, vm2.node.Do(func() error {
			conn, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.ParseIP("10.10.10.12"), Port: 67}, &net.UDPAddr{IP: net.ParseIP("10.10.10.11"), Port: 68})
			if err != nil {
				return err
			}
			defer conn.Close()
			for i := 0; i < 5; i++ {
				if _, err := conn.Write([]byte("forged DHCPOFFER")); err != nil {
					return err
				}
			}
			return nil
		}))
	}
	send()
	_ = ln.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, from, err := ln.ReadFrom(make([]byte, 1500)); err == nil {
		t.Errorf("VM1 received %d bytes from a forged DHCP server at %s", n, from)
	}
	hosts, _ := f.dropsOf()
	if hosts["test2"]["dhcp_forged_server"] < 5 {
		t.Errorf("dhcp_forged_server of test2 = %d, want ≥ 5 (drops %v)", hosts["test2"]["dhcp_forged_server"], hosts["test2"])
	}

	// An unregistered VM on the bridge gets nothing; its attempts count.
	vm3 := f.addVM(vmSpec{name: "test3"})
	f.plugBare(vm3, vmSpec{name: "test3", port: "vnet5", mac: "52:58:00:98:c0:a3"})
	out, err = vm3.node.Cmd(testCtx(t), "udhcpc", "-n", "-q", "-f", "-i", "ens8", "-t", "3", "-T", "1", "-s", "/bin/true")
	if err == nil {
		t.Errorf("an unregistered VM got a lease:\n%s", out)
	}
	_, sw := f.dropsOf()
	if sw["dhcp_unregistered"] < 3 {
		t.Errorf("dhcp_unregistered = %d, want ≥ 3 (switch drops %v)", sw["dhcp_unregistered"], sw)
	}
	t.Logf("switch drops: dhcp_unregistered=%d punt_limited=%d dhcp_bad=%d", sw["dhcp_unregistered"], sw["punt_limited"], sw["dhcp_bad"])
}

// sameFieldsIgnoringOrder compares two "k=v k=v" lines as sets of fields
// (clients print lists in their own order).
func sameFieldsIgnoringOrder(a, b string) bool {
	fa, fb := strings.Fields(a), strings.Fields(b)
	if len(fa) < len(fb) {
		return false
	}
	set := map[string]bool{}
	for _, x := range fa {
		set[x] = true
	}
	for _, y := range fb {
		if !set[y] {
			return false
		}
	}
	return true
}

// TestGatewayPing: every VM of a vSwitch pings its gateway and gets the
// answer from the gateway MAC with TTL 64, in the datapath: it goes on
// with the controller stopped. An address of the vSwitch that no VM holds
// does not answer.
func TestGatewayPing(t *testing.T) {
	s := newSeed(t)
	for _, v := range []*vm{s.vm1, s.vm2} {
		out := ping(t, v.node, "10.10.10.1", 3)
		if !strings.Contains(out, "ttl=64") {
			t.Errorf("gateway answer from %s without ttl=64:\n%s", v.node.Name(), out)
		}
		if got := neighMAC(t, v.node, "10.10.10.1"); got != "ee:ff:ff:ff:ff:ff" {
			t.Errorf("%s: gateway at %s", v.node.Name(), got)
		}
	}
	pingFails(t, s.vm1.node, "10.10.10.5")
	pingFails(t, s.vm1.node, "10.10.10.254")
	// The answer needs no controller.
	must(t, s.ctrl.Stop())
	ping(t, s.vm1.node, "10.10.10.1", 2)
	lines, err := s.ovs.OfctlDumpFlows(testCtx(t), "br-test", "table=15")
	must(t, err)
	answered := false
	for _, l := range lines {
		if strings.Contains(l, "icmp_type=8") && !strings.Contains(l, "n_packets=0,") {
			answered = true
		}
	}
	if !answered {
		t.Errorf("no echo request counted by the GatewayPing flow:\n%s", strings.Join(lines, "\n"))
	}
}
