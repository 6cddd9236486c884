package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vpcflow/vpcflow/e2e/netlab"
	"github.com/vpcflow/vpcflow/topology"
)

// The outside world of the NAT tests: the uplink's router "rtr"
// (203.0.113.1 on the uplink, 198.51.100.1 on an MTU-1400 link) and the
// "internet" namespace "inet" behind it (198.51.100.10) with an HTTP
// server and a client. inet advertises a TCP MSS of 1460 in spite of its
// 1400 link, so a VM's full-size TCP segments meet the 1400 hop and only
// get through once the router's "fragmentation needed" has reached the
// VM — through the NAT.
const (
	publicCIDR = "203.0.113.0/24"
	routerIP   = "203.0.113.1"
	routerMAC  = "52:54:00:aa:00:01"
	inetIP     = "198.51.100.10"
	snatIP     = "203.0.113.10" // the NAT gateway's, SNAT for vsw-a
	dnatIP     = "203.0.113.12" // the NAT gateway's, DNAT entries
	eipIP      = "203.0.113.20" // test2's EIP
)

// webServer is an HTTP server in a namespace that remembers who called it.
type webServer struct {
	name string
	mu   sync.Mutex
	seen []string // remote addresses, host:port
}

func (w *webServer) remotes() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.seen...)
}

// lastFrom is the address the last request came from.
func (w *webServer) lastFrom() string {
	s := w.remotes()
	if len(s) == 0 {
		return ""
	}
	h, _, _ := net.SplitHostPort(s[len(s)-1])
	return h
}

// serveWeb serves, on addr inside n: GET / (who is asking), GET
// /slow?ms=D&kb=K (K KiB over about D ms), POST / (counts the body).
func serveWeb(t *testing.T, n *netlab.Node, addr string) *webServer {
	t.Helper()
	ln, err := n.Listen("tcp", addr)
	must(t, err)
	w := &webServer{name: n.Name() + " " + addr}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(rw http.ResponseWriter, r *http.Request) {
		w.mu.Lock()
		w.seen = append(w.seen, r.RemoteAddr)
		w.mu.Unlock()
		t.Logf("%s: %s %s from %s", w.name, r.Method, r.URL, r.RemoteAddr)
		if r.Method == http.MethodPost {
			n, _ := io.Copy(io.Discard, r.Body)
			fmt.Fprintf(rw, "received %d\n", n)
			return
		}
		fmt.Fprintf(rw, "hello from %s; you are %s\n", w.name, r.RemoteAddr)
	})
	mux.HandleFunc("/slow", func(rw http.ResponseWriter, r *http.Request) {
		w.mu.Lock()
		w.seen = append(w.seen, r.RemoteAddr)
		w.mu.Unlock()
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		kb, _ := strconv.Atoi(r.URL.Query().Get("kb"))
		rw.Header().Set("Content-Length", strconv.Itoa(kb*1024))
		chunk := make([]byte, 1024)
		step := time.Duration(ms) * time.Millisecond / time.Duration(max(kb, 1))
		for i := 0; i < kb; i++ {
			if _, err := rw.Write(chunk); err != nil {
				return
			}
			rw.(http.Flusher).Flush()
			time.Sleep(step)
		}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return w
}

// curl runs curl in n and returns its output (stdout; the test fails on
// an error unless allowFail).
func curl(t *testing.T, n *netlab.Node, args ...string) (string, error) {
	t.Helper()
	return n.Cmd(testCtx(t), append([]string{"curl", "-sS", "--connect-timeout", "5", "--max-time", "30"}, args...)...)
}

func mustCurl(t *testing.T, n *netlab.Node, args ...string) string {
	t.Helper()
	out, err := curl(t, n, args...)
	if err != nil {
		t.Fatalf("curl %s in %s: %v\n%s", strings.Join(args, " "), n.Name(), err, out)
	}
	return out
}

// natLab is the seed-like fabric on one bridge with the outside world
// behind an uplink.
type natLab struct {
	*fabric
	rtr, inet *netlab.Node
	vms       map[string]*vm
	web       *webServer // inet's
}

var (
	natVM1 = vmSpec{name: "test1", port: "vnet1", ip: "10.10.10.11", mac: "52:58:00:98:c0:81"}
	natVM2 = vmSpec{name: "test2", port: "vnet3", ip: "10.10.10.12", mac: "52:58:00:98:c0:92"}
	natVM3 = vmSpec{name: "test3", port: "vnet5", ip: "10.10.10.13", mac: "52:58:00:98:c0:93"}
)

// addOutside builds rtr and inet; rtr's uplink side is linked by link.
func addOutside(t *testing.T, lab *netlab.Lab, link func(rtr *netlab.Node)) (rtr, inet *netlab.Node) {
	t.Helper()
	ctx := testCtx(t)
	rtr, err := lab.AddNode("rtr")
	must(t, err)
	inet, err = lab.AddNode("inet")
	must(t, err)
	link(rtr)
	must(t, rtr.AddAddr(ctx, "eth0", routerIP+"/24"))
	must(t, rtr.EnableIPForward())
	must(t, lab.LinkNodes(ctx, rtr, "eth1", inet, "eth0"))
	for _, n := range []*netlab.Node{rtr, inet} {
		n.MustCmd(t, "ip", "link", "set", map[*netlab.Node]string{rtr: "eth1", inet: "eth0"}[n], "mtu", "1400")
	}
	must(t, rtr.AddAddr(ctx, "eth1", "198.51.100.1/24"))
	must(t, inet.AddAddr(ctx, "eth0", inetIP+"/24"))
	// The internet knows the public prefix through the router, and says
	// MSS 1460 whatever its own link is.
	inet.MustCmd(t, "ip", "route", "add", publicCIDR, "via", "198.51.100.1", "advmss", "1460")
	return rtr, inet
}

func newNATLab(t *testing.T) *natLab {
	t.Helper()
	f := newFabric(t)
	f.addBridge("br-test")
	l := &natLab{fabric: f, vms: map[string]*vm{}}
	ctx := testCtx(t)
	l.rtr, l.inet = addOutside(t, f.lab, func(rtr *netlab.Node) {
		_, err := f.lab.LinkToOVS(ctx, rtr, "eth0", routerMAC, f.phys, f.ovs, "br-test", "eth-up", false)
		must(t, err)
	})
	f.rest("POST", "/v1/vpcs", map[string]any{"name": "vpc-a"}, 201)
	f.rest("POST", "/v1/vpcs/vpc-a/vswitches", map[string]any{"name": "vsw-a", "cidr": "10.10.10.0/24", "gateway": "10.10.10.1"}, 201)
	for _, s := range []vmSpec{natVM1, natVM2, natVM3} {
		v := f.addVM(s)
		f.plugVM(v, s, "br-test")
		f.rest("POST", "/v1/vpcs/vpc-a/hosts", map[string]any{"name": s.name, "vswitch": "vsw-a", "ip": s.ip,
			"bridge": "br-test", "interface": s.port}, 201)
		l.vms[s.name] = v
	}
	f.rest("POST", "/v1/uplinks", map[string]any{"name": "up1", "bridge": "br-test", "interface": "eth-up",
		"cidr": publicCIDR, "gateway": routerIP}, 201)
	f.rest("POST", "/v1/vpcs/vpc-a/nat-gateways", map[string]any{"name": "ngw", "uplink": "up1",
		"ips": []string{snatIP, "203.0.113.11", dnatIP}}, 201)
	f.rest("POST", "/v1/vpcs/vpc-a/snat-entries", map[string]any{"vswitch": "vsw-a", "snat_ips": []string{snatIP}}, 201)
	f.rest("POST", "/v1/vpcs/vpc-a/eips", map[string]any{"name": "eip2", "ip": eipIP, "uplink": "up1", "host": "test2"}, 201)
	f.rest("POST", "/v1/vpcs/vpc-a/dnat-entries", []map[string]any{
		{"name": "web", "external_ip": dnatIP, "protocol": "tcp", "external_port": "8080", "internal_ip": natVM1.ip, "internal_port": "80"},
		{"name": "shifted", "external_ip": dnatIP, "protocol": "tcp", "external_port": "9000/9002", "internal_ip": natVM1.ip, "internal_port": "9100/9102"},
		{"name": "kept", "external_ip": dnatIP, "protocol": "tcp", "external_port": "7000/7004", "internal_ip": natVM1.ip, "internal_port": "7000/7004"},
	}, 201)
	l.waitRouterMAC("up1")
	l.web = serveWeb(t, l.inet, inetIP+":80")
	return l
}

// waitRouterMAC waits until vpcflow has learned the router's MAC by ARP.
func (f *fabric) waitRouterMAC(uplink string) {
	f.t.Helper()
	f.eventually("the router's MAC learned", 15*time.Second, func() error {
		var u struct {
			RouterMAC string `json:"router_mac"`
		}
		code, b, err := f.do("GET", "/v1/uplinks/"+uplink, nil)
		if err != nil || code != 200 {
			return fmt.Errorf("%d %s %v", code, b, err)
		}
		if err := json.Unmarshal(b, &u); err != nil {
			return err
		}
		if u.RouterMAC != routerMAC {
			return fmt.Errorf("router_mac %q", u.RouterMAC)
		}
		return nil
	})
}

// dropCount is vpcflow's counter of reason on every switch.
func (f *fabric) dropCount(reason string) uint64 {
	f.t.Helper()
	var rep struct {
		Switches []struct {
			Drops map[string]uint64 `json:"drops"`
		} `json:"switches"`
	}
	must(f.t, json.Unmarshal(f.rest("GET", "/v1/drops", nil, 200), &rep))
	var n uint64
	for _, s := range rep.Switches {
		n += s.Drops[reason]
	}
	return n
}

// TestNATToTheInternet: SNAT, EIP and DNAT (ports, port ranges) with an
// outside world behind an uplink, hairpin to a VM's own EIP and to a DNAT
// address, path-MTU discovery through the NAT, a controller restart in
// the middle of a long download, and two VPCs with the same addresses
// going out from different public addresses.
func TestNATToTheInternet(t *testing.T) {
	l := newNATLab(t)
	test1, test2, test3 := l.vms["test1"].node, l.vms["test2"].node, l.vms["test3"].node
	// The VMs' servers: test1 is the DNAT target (80, 9100-9102,
	// 7000-7004), test2 has the EIP (80).
	web1 := serveWeb(t, test1, natVM1.ip+":80")
	shifted := map[int]*webServer{}
	for p := 9100; p <= 9102; p++ {
		shifted[p] = serveWeb(t, test1, fmt.Sprintf("%s:%d", natVM1.ip, p))
	}
	kept := serveWeb(t, test1, natVM1.ip+":7003")
	web2 := serveWeb(t, test2, natVM2.ip+":80")

	t.Run("ARP for the public addresses, from the uplink's MAC", func(t *testing.T) {
		out := l.rtr.MustCmd(t, "ping", "-n", "-c", "1", "-W", "1", eipIP) // learns the neighbour (the ping itself is DNATed to test2)
		t.Log(out)
		mac := strings.TrimSpace(l.rtr.MustCmd(t, "sh", "-c", "ip neigh show "+eipIP+" dev eth0 | awk '{print $3}'"))
		var u struct {
			MAC string `json:"mac"`
		}
		must(t, json.Unmarshal(l.rest("GET", "/v1/uplinks/up1", nil, 200), &u))
		if mac != u.MAC {
			t.Fatalf("the router sees %s at %q, want the uplink's MAC %s", eipIP, mac, u.MAC)
		}
		// An address vpcflow does not own is not answered.
		_, _ = l.rtr.Cmd(testCtx(t), "ping", "-n", "-c", "1", "-W", "1", "203.0.113.99")
		if neigh := l.rtr.MustCmd(t, "ip", "neigh", "show", "203.0.113.99", "dev", "eth0"); strings.Contains(neigh, "lladdr") {
			t.Fatalf("203.0.113.99, which vpcflow does not own, was answered: %s", neigh)
		}
	})

	t.Run("SNAT: test1 and test3 reach the internet from the NAT address", func(t *testing.T) {
		for _, n := range []*netlab.Node{test1, test3} {
			out := mustCurl(t, n, "http://"+inetIP+"/")
			if from := l.web.lastFrom(); from != snatIP {
				t.Fatalf("the internet saw %s from %s, want %s (%s)", n.Name(), from, snatIP, out)
			}
		}
		ping(t, test1, inetIP, 3)
	})

	t.Run("SNAT scopes: a host's entry beats its vSwitch's; deleted, the vSwitch's applies again", func(t *testing.T) {
		l.rest("POST", "/v1/vpcs/vpc-a/snat-entries", map[string]any{"name": "only-test3", "host": "test3", "snat_ips": []string{"203.0.113.11"}}, 201)
		l.eventually("test3 out from 203.0.113.11", 5*time.Second, func() error {
			if out, err := curl(t, test3, "http://"+inetIP+"/"); err != nil {
				return fmt.Errorf("%v %s", err, out)
			}
			if from := l.web.lastFrom(); from != "203.0.113.11" {
				return fmt.Errorf("seen from %s", from)
			}
			return nil
		})
		mustCurl(t, test1, "http://"+inetIP+"/")
		if from := l.web.lastFrom(); from != snatIP {
			t.Fatalf("test1 (vSwitch entry only) seen from %s, want %s", from, snatIP)
		}
		l.rest("DELETE", "/v1/vpcs/vpc-a/snat-entries/only-test3", nil, 204)
		l.eventually("test3 out from the vSwitch's address again", 5*time.Second, func() error {
			if out, err := curl(t, test3, "http://"+inetIP+"/"); err != nil {
				return fmt.Errorf("%v %s", err, out)
			}
			if from := l.web.lastFrom(); from != snatIP {
				return fmt.Errorf("seen from %s", from)
			}
			return nil
		})
	})

	t.Run("ICMP port unreachable for a SNATed datagram reaches the VM", func(t *testing.T) {
		// Nothing listens on inet's UDP 9; its "port unreachable" is
		// about the NAT address and must come back translated, inner
		// header included, for the VM's socket to see ECONNREFUSED.
		script := `import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.connect(("` + inetIP + `", 9))
s.send(b"x")
try:
    s.recv(16)
    print("answered")
except ConnectionRefusedError:
    print("refused")
except socket.timeout:
    print("timeout")
`
		if out := strings.TrimSpace(test1.MustCmd(t, "python3", "-c", script)); out != "refused" {
			t.Fatalf("test1's UDP socket got %q, want refused (ICMP port unreachable translated back)", out)
		}
	})

	t.Run("ICMP port unreachable from a DNAT target reaches the outside client", func(t *testing.T) {
		// A UDP DNAT entry to test1:5000, where nothing listens: test1's
		// "port unreachable" must leave through the NAT translated (outer
		// source the public address, inner header the public side) for
		// inet's socket to see ECONNREFUSED.
		l.rest("POST", "/v1/vpcs/vpc-a/dnat-entries", map[string]any{"name": "udp-closed", "external_ip": dnatIP, "protocol": "udp",
			"external_port": "5000", "internal_ip": natVM1.ip, "internal_port": "5000"}, 201)
		defer l.rest("DELETE", "/v1/vpcs/vpc-a/dnat-entries/udp-closed", nil, 204)
		script := `import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.connect(("` + dnatIP + `", 5000))
s.send(b"x")
try:
    s.recv(16)
    print("answered")
except ConnectionRefusedError:
    print("refused")
except socket.timeout:
    print("timeout")
`
		if out := strings.TrimSpace(l.inet.MustCmd(t, "python3", "-c", script)); out != "refused" {
			t.Fatalf("inet's UDP socket got %q, want refused (test1's port unreachable translated back)", out)
		}
	})

	t.Run("EIP: test2 goes out from its EIP, and is reached at it", func(t *testing.T) {
		mustCurl(t, test2, "http://"+inetIP+"/")
		if from := l.web.lastFrom(); from != eipIP {
			t.Fatalf("the internet saw test2 from %s, want its EIP %s", from, eipIP)
		}
		out := mustCurl(t, l.inet, "http://"+eipIP+"/")
		if from := web2.lastFrom(); from != inetIP {
			t.Fatalf("test2 saw the internet client as %s, want %s (%s)", from, inetIP, out)
		}
		ping(t, l.inet, eipIP, 2)
	})

	t.Run("DNAT: a port, a shifted range and a kept range reach test1", func(t *testing.T) {
		mustCurl(t, l.inet, "http://"+dnatIP+":8080/")
		if from := web1.lastFrom(); from != inetIP {
			t.Fatalf("test1 saw %q, want %s", from, inetIP)
		}
		for ext := 9000; ext <= 9002; ext++ {
			mustCurl(t, l.inet, fmt.Sprintf("http://%s:%d/", dnatIP, ext))
			if from := shifted[ext+100].lastFrom(); from != inetIP {
				t.Fatalf("port %d did not reach test1:%d (%q)", ext, ext+100, from)
			}
		}
		mustCurl(t, l.inet, "http://"+dnatIP+":7003/")
		if from := kept.lastFrom(); from != inetIP {
			t.Fatalf("port 7003 did not reach test1:7003 (%q)", from)
		}
		// A port no entry maps, and the SNAT address, are closed.
		before := l.dropCount("nat_no_entry")
		if out, err := curl(t, l.inet, "--connect-timeout", "2", "http://"+dnatIP+":8081/"); err == nil {
			t.Fatalf("an unmapped port answered: %s", out)
		}
		if out, err := curl(t, l.inet, "--connect-timeout", "2", "http://"+snatIP+"/"); err == nil {
			t.Fatalf("the SNAT address answered: %s", out)
		}
		l.eventually("nat_no_entry counted", 5*time.Second, func() error {
			if n := l.dropCount("nat_no_entry"); n <= before {
				return fmt.Errorf("nat_no_entry %d", n)
			}
			return nil
		})
	})

	t.Run("hairpin: test2 to its own EIP, test2 and test3 to the DNAT address", func(t *testing.T) {
		out := mustCurl(t, test2, "http://"+eipIP+"/")
		if from := web2.lastFrom(); from != eipIP {
			t.Fatalf("test2 reaching its own EIP was seen from %s, want %s (%s)", from, eipIP, out)
		}
		mustCurl(t, test2, "http://"+dnatIP+":8080/")
		if from := web1.lastFrom(); from != eipIP {
			t.Fatalf("test2 reaching the DNAT address was seen from %s, want its EIP %s", from, eipIP)
		}
		mustCurl(t, test3, "http://"+dnatIP+":8080/")
		if from := web1.lastFrom(); from != snatIP {
			t.Fatalf("test3 reaching the DNAT address was seen from %s, want its SNAT address %s", from, snatIP)
		}
		// test1 to its own DNAT address: in and out of itself.
		mustCurl(t, test1, "http://"+dnatIP+":8080/")
		if from := web1.lastFrom(); from != snatIP {
			t.Fatalf("test1 reaching its own DNAT address was seen from %s, want %s", from, snatIP)
		}
	})

	t.Run("path MTU: fragmentation needed reaches the VM through the NAT, then TCP works", func(t *testing.T) {
		out, _ := test1.Cmd(testCtx(t), "ping", "-n", "-M", "do", "-s", "1472", "-c", "2", "-W", "2", inetIP)
		if !strings.Contains(out, "Frag needed and DF set (mtu = 1400)") && !strings.Contains(out, "mtu=1400") {
			t.Fatalf("no fragmentation-needed from the 1400 hop:\n%s", out)
		}
		t.Log(out)
		if rt := test1.MustCmd(t, "ip", "route", "get", inetIP); !strings.Contains(rt, "mtu 1400") {
			t.Fatalf("test1's route cache does not have the path MTU: %s", rt)
		}
		// A fresh VM (no cached MTU) uploads 2 MB: its full-size segments
		// only get through once the ICMP has come back through the NAT.
		if rt := test3.MustCmd(t, "ip", "route", "get", inetIP); strings.Contains(rt, "mtu") {
			t.Fatalf("test3 already has a path MTU: %s", rt)
		}
		test3.MustCmd(t, "sh", "-c", "head -c 2097152 /dev/zero > /tmp/"+l.lab.ID()+"-upload")
		got := mustCurl(t, test3, "--data-binary", "@/tmp/"+l.lab.ID()+"-upload", "http://"+inetIP+"/")
		test3.MustCmd(t, "rm", "-f", "/tmp/"+l.lab.ID()+"-upload")
		if strings.TrimSpace(got) != "received 2097152" {
			t.Fatalf("upload: %q", got)
		}
		if rt := test3.MustCmd(t, "ip", "route", "get", inetIP); !strings.Contains(rt, "mtu 1400") {
			t.Fatalf("test3 uploaded without learning the path MTU: %s", rt)
		}
	})

	t.Run("a controller restart in the middle of a long download", func(t *testing.T) {
		type res struct {
			out string
			err error
		}
		done := make(chan res, 1)
		start := time.Now()
		go func() {
			out, err := test1.Cmd(context.Background(), "curl", "-sS", "--max-time", "60", "-o", "/dev/null", "-w", "%{size_download}",
				"http://"+inetIP+"/slow?ms=12000&kb=4096")
			done <- res{out, err}
		}()
		time.Sleep(2 * time.Second)
		must(t, l.ctrl.Stop())
		time.Sleep(time.Second)
		l.startController()
		l.waitSwitch(mustDPID(t, l.fabric, "br-test"))
		r := <-done
		if r.err != nil || strings.TrimSpace(r.out) != "4194304" {
			t.Fatalf("download across the restart: %v, %q bytes", r.err, r.out)
		}
		t.Logf("4 MiB downloaded in %v across a controller restart", time.Since(start).Round(time.Millisecond))
		// The restarted controller knew the router's MAC from its store.
		if !strings.Contains(string(l.rest("GET", "/v1/uplinks/up1", nil, 200)), routerMAC) {
			t.Fatal("router MAC lost")
		}
	})

	t.Run("two VPCs with the same addresses leave from different public addresses", func(t *testing.T) {
		l.rest("POST", "/v1/vpcs", map[string]any{"name": "vpc-b"}, 201)
		l.rest("POST", "/v1/vpcs/vpc-b/vswitches", map[string]any{"name": "vsw-b", "cidr": "10.10.10.0/24", "gateway": "10.10.10.1"}, 201)
		s := vmSpec{name: "b1", port: "vnet9", ip: natVM1.ip, mac: "52:58:00:98:c0:b1"}
		b1 := l.addVM(s)
		l.plugVM(b1, s, "br-test")
		l.rest("POST", "/v1/vpcs/vpc-b/hosts", map[string]any{"name": "b1", "vswitch": "vsw-b", "ip": s.ip, "bridge": "br-test", "interface": s.port}, 201)
		l.rest("POST", "/v1/vpcs/vpc-b/nat-gateways", map[string]any{"name": "ngw-b", "uplink": "up1", "ips": []string{"203.0.113.30"}}, 201)
		l.rest("POST", "/v1/vpcs/vpc-b/snat-entries", map[string]any{"source_cidr": "0.0.0.0/0", "snat_ips": []string{"203.0.113.30"}}, 201)
		// The same private source address and port, at the same time.
		var wg sync.WaitGroup
		outs := make([]string, 2)
		errs := make([]error, 2)
		for i, n := range []*netlab.Node{test1, b1.node} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				outs[i], errs[i] = n.Cmd(testCtx(t), "curl", "-sS", "--max-time", "20", "--local-port", "40000", "http://"+inetIP+"/slow?ms=1500&kb=16")
			}()
		}
		wg.Wait()
		for i := range errs {
			if errs[i] != nil {
				t.Fatalf("curl %d: %v %s", i, errs[i], outs[i])
			}
		}
		seen := map[string]bool{}
		for _, r := range l.web.remotes()[len(l.web.remotes())-2:] {
			seen[r] = true
		}
		if !seen[snatIP+":40000"] || !seen["203.0.113.30:40000"] {
			t.Fatalf("the internet saw %v; want %s:40000 and 203.0.113.30:40000", l.web.remotes(), snatIP)
		}
		// The other VPC's EIP and DNAT address are not reached from vpc-b
		// as its own: b1 to test2's EIP leaves through vpc-b's gateway.
		mustCurl(t, b1.node, "http://"+eipIP+"/")
		if from := web2.lastFrom(); from != "203.0.113.30" {
			t.Fatalf("vpc-b's b1 reached vpc-a's EIP from %s, want its own public address 203.0.113.30", from)
		}
	})

	t.Run("SNAT port exhaustion: the ports of one address toward one destination run out", func(t *testing.T) {
		// test1 sends a UDP datagram from every source port 1024-65535 to
		// inet:5353; SNAT keeps each port, so 203.0.113.10 has none left
		// toward that destination. test3's datagram (same SNAT address)
		// is then dropped and counted; another destination port works.
		got := map[string]int{}
		var mu sync.Mutex
		for _, port := range []int{5353, 5354} {
			pc, err := l.inet.ListenPacket("udp", fmt.Sprintf("%s:%d", inetIP, port))
			must(t, err)
			defer pc.Close()
			go func() {
				buf := make([]byte, 64)
				for {
					n, from, err := pc.ReadFrom(buf)
					if err != nil {
						return
					}
					mu.Lock()
					got[fmt.Sprintf("%s %s %d", buf[:n], from.(*net.UDPAddr).IP, port)]++
					mu.Unlock()
				}
			}()
		}
		script := `import socket, time
for p in range(1024, 65536):
    if p % 256 == 0:
        time.sleep(0.005)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("", p))
    s.sendto(b"fill", ("` + inetIP + `", 5353))
    s.close()
`
		var gw struct {
			CTZone int `json:"ct_zone"`
		}
		must(t, json.Unmarshal(l.rest("GET", "/v1/vpcs/vpc-a/nat-gateways/ngw", nil, 200), &gw))
		taken := func() int {
			out, err := l.ovs.Appctl(testCtx(t), "dpctl/dump-conntrack", fmt.Sprintf("zone=%d", gw.CTZone))
			must(t, err)
			return strings.Count(out, "dport=5353)")
		}
		// Datagrams lost before conntrack (socket buffers) leave their
		// port free: send again until every port is held.
		for pass := 1; ; pass++ {
			start := time.Now()
			test1.MustCmd(t, "python3", "-c", script)
			n := taken()
			t.Logf("pass %d: 64512 datagrams sent in %v; %d ports of %s held toward %s:5353", pass, time.Since(start).Round(time.Millisecond), n, snatIP, inetIP)
			if n >= 64512 {
				break
			}
			if pass == 5 {
				t.Fatalf("only %d of 64512 ports held after 5 passes", n)
			}
		}
		before := l.dropCount("nat_exhausted")
		send := `import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("", 40001)); s.sendto(b"late", ("` + inetIP + `", %d))`
		test3.MustCmd(t, "python3", "-c", fmt.Sprintf(send, 5353))
		test3.MustCmd(t, "python3", "-c", fmt.Sprintf(send, 5354))
		l.eventually("nat_exhausted counted", 5*time.Second, func() error {
			if n := l.dropCount("nat_exhausted"); n <= before {
				return fmt.Errorf("nat_exhausted %d (was %d)", n, before)
			}
			return nil
		})
		l.eventually("the datagram to another port arrived", 5*time.Second, func() error {
			mu.Lock()
			defer mu.Unlock()
			if got["late "+snatIP+" 5354"] != 1 {
				return fmt.Errorf("received %v", got)
			}
			return nil
		})
		mu.Lock()
		late := got["late "+snatIP+" 5353"]
		mu.Unlock()
		if late != 0 {
			t.Fatalf("a datagram got through with every port taken")
		}
		if b, err := os.ReadFile(l.ovs.VswitchdLog()); err != nil || !strings.Contains(string(b), "Unable to NAT due to tuple space exhaustion") {
			t.Errorf("ovs-vswitchd did not log the exhaustion (%v)", err)
		}
		t.Logf("nat_exhausted: %d", l.dropCount("nat_exhausted")-before)
	})

	t.Run("security groups see the private destination of DNATed traffic", func(t *testing.T) {
		// test1 accepts tcp 80 only: the DNAT entry to test1:80 works,
		// the shifted range to test1:9100 is refused by the group.
		l.rest("POST", "/v1/vpcs/vpc-a/security-groups", map[string]any{"name": "web"}, 201)
		l.rest("POST", "/v1/vpcs/vpc-a/security-groups/web/rules", map[string]any{"direction": "ingress", "protocol": "tcp",
			"port_range": "80/80", "cidr": "0.0.0.0/0"}, 201)
		l.rest("PUT", "/v1/vpcs/vpc-a/hosts/test1", map[string]any{"security_groups": []string{"web"}}, 200)
		before := l.dropCount("security_group")
		l.eventually("tcp 9000 → test1:9100 refused by the group", 5*time.Second, func() error {
			if out, err := curl(t, l.inet, "--connect-timeout", "2", "http://"+dnatIP+":9000/"); err == nil {
				return fmt.Errorf("answered: %s", out)
			}
			return nil
		})
		mustCurl(t, l.inet, "http://"+dnatIP+":8080/")
		if from := web1.lastFrom(); from != inetIP {
			t.Fatalf("test1:80 saw %q, want %s", from, inetIP)
		}
		if n := l.dropCount("security_group"); n <= before {
			t.Fatalf("security_group drops %d, want more than %d", n, before)
		}
	})
}

func mustDPID(t *testing.T, f *fabric, bridge string) uint64 {
	t.Helper()
	dpid, err := f.ovs.DPID(testCtx(t), bridge)
	must(t, err)
	return dpid
}

// TestNATSecondChassis: the uplink, with the NAT gateway and the EIP on
// it, is on node1; VMs on node2 go out and are reached through it, over
// VXLAN: vm2 by SNAT and through a DNAT port, vm3 by its EIP; hairpins
// from node1 and from node2 to a VM on node2 (through node1 and back,
// leaving node1 by the tunnel port they came in by).
func TestNATSecondChassis(t *testing.T) {
	m := newMultiChassis(t, "node1", "node2")
	m.registerChassis("node1")
	m.registerChassis("node2")
	ctx := testCtx(t)
	must(t, m.underlay.ResolveTunnelNeighbors(ctx))
	_, inet := addOutside(t, m.lab, func(rtr *netlab.Node) {
		ch := m.chassis["node1"]
		_, err := m.lab.LinkToOVS(ctx, rtr, "eth0", routerMAC, ch.Node, ch.OVS, ch.Bridge, "eth-up", false)
		must(t, err)
	})
	m.rest("POST", "/v1/vpcs", map[string]any{"name": "vpc-a"}, 201)
	m.rest("POST", "/v1/vpcs/vpc-a/vswitches", map[string]any{"name": "vsw-a", "cidr": "10.10.10.0/24", "gateway": "10.10.10.1"}, 201)
	vms := map[string]*vm{}
	for _, p := range []struct {
		s       vmSpec
		chassis string
	}{{chVM1, "node1"}, {chVM2, "node2"}, {chVM3, "node2"}} {
		s := p.s
		s.bridgeCIDR = "" // no containers here
		v := m.addVM(s)
		m.plugVMOn(v, s, p.chassis)
		m.addHost("vpc-a", s, p.chassis)
		vms[s.name] = v
	}
	m.rest("POST", "/v1/uplinks", map[string]any{"name": "up1", "chassis": "node1", "interface": "eth-up",
		"cidr": publicCIDR, "gateway": routerIP}, 201)
	m.rest("POST", "/v1/vpcs/vpc-a/nat-gateways", map[string]any{"name": "ngw", "uplink": "up1", "ips": []string{snatIP, dnatIP}}, 201)
	m.rest("POST", "/v1/vpcs/vpc-a/snat-entries", map[string]any{"vswitch": "vsw-a", "snat_ips": []string{snatIP}}, 201)
	m.rest("POST", "/v1/vpcs/vpc-a/eips", map[string]any{"name": "eip3", "ip": eipIP, "uplink": "up1", "host": "vm3"}, 201)
	m.rest("POST", "/v1/vpcs/vpc-a/dnat-entries", map[string]any{"name": "web2", "external_ip": dnatIP, "protocol": "tcp",
		"external_port": "8080", "internal_ip": chVM2.ip, "internal_port": "80"}, 201)
	m.waitRouterMAC("up1")
	web := serveWeb(t, inet, inetIP+":80")
	web2 := serveWeb(t, vms["vm2"].node, chVM2.ip+":80")
	web3 := serveWeb(t, vms["vm3"].node, chVM3.ip+":80")

	t.Run("vm2 on node2 goes out by SNAT through node1", func(t *testing.T) {
		m.eventually("vm2 → the internet", 10*time.Second, func() error {
			out, err := curl(t, vms["vm2"].node, "--connect-timeout", "2", "http://"+inetIP+"/")
			if err != nil {
				return fmt.Errorf("%v %s", err, out)
			}
			return nil
		})
		if from := web.lastFrom(); from != snatIP {
			t.Fatalf("the internet saw vm2 from %s, want %s", from, snatIP)
		}
		ping(t, vms["vm2"].node, inetIP, 2)
	})
	t.Run("vm3 on node2 goes out from its EIP and is reached at it", func(t *testing.T) {
		mustCurl(t, vms["vm3"].node, "http://"+inetIP+"/")
		if from := web.lastFrom(); from != eipIP {
			t.Fatalf("the internet saw vm3 from %s, want its EIP %s", from, eipIP)
		}
		mustCurl(t, inet, "http://"+eipIP+"/")
		if from := web3.lastFrom(); from != inetIP {
			t.Fatalf("vm3 saw %q, want %s", from, inetIP)
		}
	})
	t.Run("the internet reaches vm2 on node2 through a DNAT port", func(t *testing.T) {
		mustCurl(t, inet, "http://"+dnatIP+":8080/")
		if from := web2.lastFrom(); from != inetIP {
			t.Fatalf("vm2 saw %q, want %s", from, inetIP)
		}
	})
	t.Run("hairpin across chassis: vm1 (node1) and vm2 (node2) to vm3's EIP, vm3 to vm2's DNAT port", func(t *testing.T) {
		mustCurl(t, vms["vm1"].node, "http://"+eipIP+"/")
		if from := web3.lastFrom(); from != snatIP {
			t.Fatalf("vm1 reaching vm3's EIP was seen from %s, want %s", from, snatIP)
		}
		mustCurl(t, vms["vm2"].node, "http://"+eipIP+"/")
		if from := web3.lastFrom(); from != snatIP {
			t.Fatalf("vm2 reaching vm3's EIP was seen from %s, want %s", from, snatIP)
		}
		// Both ends on node2, through node1: vm3 (with its EIP) to vm2's
		// DNAT port.
		mustCurl(t, vms["vm3"].node, "http://"+dnatIP+":8080/")
		if from := web2.lastFrom(); from != eipIP {
			t.Fatalf("vm3 reaching vm2's DNAT port was seen from %s, want vm3's EIP %s", from, eipIP)
		}
	})
	t.Run("node2's packets for the NAT crossed the underlay in VXLAN", func(t *testing.T) {
		out, err := m.chassis["node2"].OVS.Ofctl(ctx, "br-vpc", "dump-flows", "table=31")
		must(t, err)
		ways := 0
		for _, line := range strings.Split(out, "\n") {
			if !strings.Contains(line, topology.NATTunnelMACString+"->eth_dst") {
				continue
			}
			ways++
			if strings.Contains(line, "n_packets=0,") {
				t.Errorf("a way to the NAT on node1 carried nothing: %s", line)
			}
		}
		if ways != 2 { // the VPC's NAT gateway and vm3's EIP
			t.Fatalf("node2 has %d VXLAN ways to node1's NAT, want 2:\n%s", ways, out)
		}
	})
}
