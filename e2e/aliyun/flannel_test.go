package aliyun

// Unmodified flanneld (v0.19.2, backend ali-vpc through aliyungo) in each
// VM of the seed scenario, programming the container routes through
// vpcflow's Aliyun API, against real Open vSwitch.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"

	"github.com/vpcflow/vpcflow/e2e/netlab"
)

const (
	// Inside the lab's "physical host" namespace, where vpcflow runs.
	physREST   = "127.0.0.1:8080"
	physAliyun = "127.0.0.1:8090"
	physOF     = "127.0.0.1:6653"
	// Inside each VM: the Aliyun API at its service address in the
	// fabric (vpcflow's --aliyun-service-ip default, steered through the
	// bridge's vpcflow-meta port to the API listener in the metadata
	// namespace); the metadata service is at 100.100.100.200, aliyungo's
	// default, so flanneld needs no METADATA_ENDPOINT. etcd is flannel's,
	// not the cloud's: forwarded on the VM's loopback (see vmEtcdForward).
	vmAliyun = "100.100.80.1"
	vmEtcd   = "127.0.0.1:2379"
)

// binaries are built once per test binary run, each when a test first
// needs it.
var binaries struct {
	mu    sync.Mutex
	dir   string
	built map[string]string
}

// buildBinary builds "vpcflow" (in its own module, as make builds it) or
// "flanneld" (in this one: a tool of go.mod) and returns its path.
func buildBinary(t *testing.T, name string) string {
	t.Helper()
	binaries.mu.Lock()
	defer binaries.mu.Unlock()
	if p, ok := binaries.built[name]; ok {
		return p
	}
	if binaries.dir == "" {
		dir, err := os.MkdirTemp("", "vpcflow-aliyun-e2e-")
		if err != nil {
			t.Fatal(err)
		}
		binaries.dir, binaries.built = dir, map[string]string{}
	}
	src := map[string]struct{ dir, pkg string }{"vpcflow": {"../..", "./cmd/vpcflow"}, "flanneld": {".", "github.com/flannel-io/flannel"}}[name]
	if src.pkg == "" {
		t.Fatalf("no binary %q", name)
	}
	out := filepath.Join(binaries.dir, name)
	cmd := exec.Command("go", "build", "-o", out, src.pkg)
	cmd.Dir = src.dir
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", src.pkg, err, b)
	}
	binaries.built[name] = out
	return out
}

func buildBinaries(t *testing.T) (vpcflowBin, flanneldBin string) {
	t.Helper()
	return buildBinary(t, "vpcflow"), buildBinary(t, "flanneld")
}

func TestMain(m *testing.M) {
	netlab.InstallSignalHandler()
	code := m.Run()
	if err := netlab.CloseAll(); err != nil {
		fmt.Fprintf(os.Stderr, "netlab: %v\n", err)
	}
	if binaries.dir != "" {
		os.RemoveAll(binaries.dir)
	}
	os.Exit(code)
}

type vmSpec struct {
	name, port, ip, mac     string
	bridge, subnet, gateway string // the container bridge, as flannel's lease gives it
	container, ctrIP        string
}

// The seed scenario of DESIGN.md: VM1 owns 172.18.1.0/24, VM2 172.18.3.0/24.
var seedVMs = []vmSpec{
	{name: "test1", port: "vnet1", ip: "10.10.10.11", mac: "52:58:00:98:c0:81", bridge: "vpc1", subnet: "172.18.1.0/24", gateway: "172.18.1.1",
		container: "testns1", ctrIP: "172.18.1.3"},
	{name: "test2", port: "vnet3", ip: "10.10.10.12", mac: "52:58:00:98:c0:92", bridge: "vpc2", subnet: "172.18.3.0/24", gateway: "172.18.3.1",
		container: "testns2", ctrIP: "172.18.3.4"},
}

// TestFlannelAliVPCSeed: the seed scenario with flanneld in each VM.
// vpcflow knows the VPC, the vSwitch and the two VMs (registered over
// REST, as an operator does); flannel, configured in etcd with backend
// ali-vpc, leases each VM its container subnet and creates the route
// entry "subnet → this instance" through the Aliyun API (ECS API
// 2014-05-26, signature v1, as aliyungo speaks it), after learning who it
// is from the instance metadata. flanneld writes its subnet file only
// once every route entry is Available; the containers then ping each
// other across the fabric with ttl=62.
//
// The cloud's internal endpoints are the fabric's own: flanneld reads
// who it is (region-id, instance-id, vpc-id) from vpcflow's metadata
// service at 100.100.100.200 (its default endpoint) and calls the Aliyun
// API at the service address 100.100.80.1 (ECS_ENDPOINT, as on Aliyun it
// is pointed at the region's VPC endpoint), both routed by the bridge
// through its vpcflow-meta port to vpcflow's listeners in the metadata
// namespace. Only etcd, flannel's own store, is forwarded on each VM's
// loopback (127.0.0.1:2379) to an etcd the test embeds.
func TestFlannelAliVPCSeed(t *testing.T) {
	lab := netlab.New(t)
	vpcflowBin, flanneldBin := buildBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	phys, err := lab.AddNode("phys")
	must(t, err)
	ovs, err := phys.StartOVS(ctx)
	must(t, err)
	keys := filepath.Join(lab.Dir(), "aliyun-keys")
	must(t, os.WriteFile(keys, []byte(testAK+" "+testSecret+"\n"), 0o600))
	cfgFile := filepath.Join(lab.Dir(), "vpcflow.yaml")
	must(t, os.WriteFile(cfgFile, nil, 0o600))
	// br-test with its metadata port: the namespace behind it holds the
	// metadata server's address, where vpcflow opens the metadata and the
	// VMs' Aliyun API listeners (docs/pipeline.md, "Metadata").
	must(t, ovs.AddBridge(ctx, "br-test"))
	meta, err := lab.AddNode("meta")
	must(t, err)
	_, err = lab.LinkToOVS(ctx, meta, "meta0", "02:00:00:00:00:fe", phys, ovs, "br-test", "vpcflow-meta", true)
	must(t, err)
	meta.MustCmd(t, "ip", "addr", "add", "169.254.169.254/32", "dev", "meta0")
	meta.MustCmd(t, "ip", "route", "add", "100.64.0.0/10", "dev", "meta0")
	logPath := filepath.Join(lab.Dir(), "vpcflow.log")
	ctrl, err := phys.Start(context.Background(), logPath, vpcflowBin, "serve", "--init", "--config", cfgFile,
		"--data-dir", filepath.Join(lab.Dir(), "data"), "--listen", physREST, "--openflow", physOF, "--ovsdb", ovs.DBEndpoint(),
		"--aliyun-listen", physAliyun, "--aliyun-keys-file", keys, "--aliyun-service-ip", vmAliyun,
		"--metadata-listen", "169.254.169.254:80", "--metadata-netns", meta.NetNS(), "--region-id", testRegion)
	must(t, err)
	t.Cleanup(func() {
		_ = ctrl.Stop()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("vpcflow log:\n%s", lastLines(string(b), 60))
		}
	})
	restc := phys.HTTPClient()
	rest := restIn(t, phys)
	eventually(t, "vpcflow REST up", 20*time.Second, func() error {
		resp, err := restc.Get("http://" + physREST + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err
	})

	// The fabric: br-test, the two VMs on it, registered over REST.
	must(t, ovs.SetController(ctx, "br-test", "tcp:"+physOF))
	rest("POST", "/v1/vpcs", `{"name":"vpc-seed"}`, 201)
	rest("POST", "/v1/vpcs/vpc-seed/vswitches", `{"name":"vsw-a","cidr":"10.10.10.0/24","gateway":"10.10.10.1"}`, 201)
	vms := make([]*netlab.Node, len(seedVMs))
	for i, s := range seedVMs {
		vms[i], err = lab.AddNode(s.name)
		must(t, err)
		_, err = lab.LinkToOVS(ctx, vms[i], "ens8", s.mac, phys, ovs, "br-test", s.port, true)
		must(t, err)
		vms[i].MustCmd(t, "ip", "addr", "add", s.ip+"/24", "dev", "ens8")
		vms[i].MustCmd(t, "ip", "route", "add", "default", "via", "10.10.10.1")
		vms[i].MustCmd(t, "sysctl", "-qw", "net.ipv4.ip_forward=1")
		rest("POST", "/v1/vpcs/vpc-seed/hosts", fmt.Sprintf(`{"name":%q,"vswitch":"vsw-a","ip":%q,"mac":%q,"bridge":"br-test","interface":%q}`,
			s.name, s.ip, s.mac, s.port), 201)
	}
	vpcID := rest("GET", "/v1/vpcs/vpc-seed", "", 200)["aliyun_id"].(string)

	// etcd for flannel's leases, with flannel's network configuration.
	// flannel v0.19.2 talks to etcd only over TLS with a client
	// certificate ("can't connect to etcd: no cert file found").
	pki := newPKI(t, filepath.Join(lab.Dir(), "pki"))
	etcdURL := startEtcd(t, lab.Dir(), pki)
	clientTLS, err := pki.clientTLS()
	must(t, err)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{etcdURL}, DialTimeout: 5 * time.Second, TLS: clientTLS})
	must(t, err)
	defer cli.Close()
	_, err = cli.Put(ctx, "/coreos.com/network/config", `{"Network":"172.18.0.0/16","SubnetLen":24,"Backend":{"Type":"ali-vpc"}}`)
	must(t, err)

	// flanneld in each VM, one after the other (as nodes join a cluster;
	// Aliyun refuses a route entry while another is Pending).
	startFlanneld := func(i int, logName string) *netlab.Process {
		t.Helper()
		s := seedVMs[i]
		// flanneld renews the lease of its subnet file: the seed's subnets.
		subnetFile := filepath.Join(lab.Dir(), s.name+"-subnet.env")
		must(t, os.WriteFile(subnetFile, []byte("FLANNEL_NETWORK=172.18.0.0/16\nFLANNEL_SUBNET="+s.gateway+"/24\n"), 0o644))
		flog := filepath.Join(lab.Dir(), logName)
		p, err := vms[i].Start(context.Background(), flog, "env", "-u", "METADATA_ENDPOINT", "ECS_ENDPOINT=http://"+vmAliyun,
			"ACCESS_KEY_ID="+testAK, "ACCESS_KEY_SECRET="+testSecret, flanneldBin,
			"--etcd-endpoints=https://"+vmEtcd, "--etcd-certfile="+pki.clientCert, "--etcd-keyfile="+pki.clientKey, "--etcd-cafile="+pki.ca,
			"--iface=ens8", "--subnet-file="+subnetFile, "--ip-masq=false", "--iptables-forward-rules=false", "-v=2")
		must(t, err)
		t.Cleanup(func() {
			_ = p.Stop()
			if t.Failed() {
				b, _ := os.ReadFile(flog)
				t.Logf("flanneld in %s (%s):\n%s", s.name, logName, lastLines(string(b), 40))
			}
		})
		// flanneld writes FLANNEL_MTU into the subnet file only after its
		// backend registered the network: every route entry Available.
		eventually(t, "flanneld in "+s.name+" registered its subnet", 90*time.Second, func() error {
			select {
			case <-p.Done():
				return fmt.Errorf("flanneld exited")
			default:
			}
			b, _ := os.ReadFile(subnetFile)
			if !strings.Contains(string(b), "FLANNEL_MTU=") {
				return fmt.Errorf("subnet file: %q", b)
			}
			if !strings.Contains(string(b), "FLANNEL_SUBNET="+s.gateway+"/24") {
				t.Fatalf("flannel leased another subnet than the seed's %s:\n%s", s.subnet, b)
			}
			return nil
		})
		return p
	}
	procs := make([]*netlab.Process, len(seedVMs))
	for i, s := range seedVMs {
		instanceID := rest("GET", "/v1/vpcs/vpc-seed/hosts/"+s.name, "", 200)["aliyun_id"].(string)
		// What flanneld will read: the fabric's metadata service knows
		// the VM by its port and names it as the Aliyun API does.
		for key, want := range map[string]string{"region-id": testRegion, "instance-id": instanceID, "vpc-id": vpcID} {
			var got string
			eventually(t, s.name+" reads its "+key+" at 100.100.100.200", 20*time.Second, func() error {
				out, err := vms[i].Cmd(ctx, "curl", "-sS", "-f", "-m", "5", "http://100.100.100.200/latest/meta-data/"+key)
				got = strings.TrimSpace(out)
				return err
			})
			if got != want {
				t.Fatalf("%s: metadata %s = %q, want %q", s.name, key, got, want)
			}
		}
		vmEtcdForward(t, vms[i], etcdURL)
		procs[i] = startFlanneld(i, s.name+"-flanneld.log")
		// The route entry is a subnet of vpcflow's, next hop this VM.
		subs := rest("GET", "/v1/vpcs/vpc-seed/subnets/"+strings.ReplaceAll(s.subnet, "/", "-"), "", 200)
		if subs["host"] != s.name || subs["cidr"] != s.subnet {
			t.Fatalf("vpcflow's subnet for %s: %v", s.name, subs)
		}
		t.Logf("flanneld in %s: route entry %s %s → %s (%s)", s.name, subs["aliyun_id"], s.subnet, instanceID, s.name)
		// flanneld called the API through the fabric: vpcflow got its
		// CreateRouteEntry from this VM's link address (100.64.0.0 + host id).
		hostID := uint32(rest("GET", "/v1/vpcs/vpc-seed/hosts/"+s.name, "", 200)["id"].(float64))
		link := netip.AddrFrom4([4]byte{100, 64 + byte(hostID>>16), byte(hostID >> 8), byte(hostID)})
		b, err := os.ReadFile(logPath)
		must(t, err)
		if !regexp.MustCompile(`aliyun API request\s.*"action": ?"CreateRouteEntry".*"remote": ?"` + regexp.QuoteMeta(link.String()) + `:`).Match(b) {
			t.Errorf("no CreateRouteEntry from %s (%s's link address) in vpcflow's log:\n%s", link, s.name, lastLines(string(b), 30))
		}
	}

	// The containers, on the bridge of the leased subnet.
	ctrs := make([]*netlab.Node, len(seedVMs))
	for i, s := range seedVMs {
		must(t, vms[i].AddLinuxBridge(ctx, s.bridge, s.gateway+"/24"))
		ctrs[i], err = lab.AddContainer(ctx, vms[i], s.bridge, s.container, "eth0", s.ctrIP+"/24", s.gateway)
		must(t, err)
	}
	out := pingOK(t, ctrs[0], seedVMs[1].ctrIP)
	if !strings.Contains(out, "ttl=62") {
		t.Fatalf("want ttl=62 (one hop in each VM, none in the fabric):\n%s", out)
	}
	t.Logf("testns1 → %s:\n%s", seedVMs[1].ctrIP, out)
	pingOK(t, ctrs[1], seedVMs[0].ctrIP)

	// A restarted flanneld finds its entry Available and keeps it
	// (flannel's "Keep target entry"); the traffic goes on.
	before := rest("GET", "/v1/vpcs/vpc-seed/subnets/172.18.1.0-24", "", 200)["id"]
	must(t, procs[0].Stop())
	startFlanneld(0, "test1-flanneld-restarted.log")
	flog, err := os.ReadFile(filepath.Join(lab.Dir(), "test1-flanneld-restarted.log"))
	must(t, err)
	if !strings.Contains(string(flog), "Keep target entry") || !strings.Contains(string(flog), "CIDR=172.18.1.0/24") {
		t.Errorf("restarted flanneld did not keep its route entry:\n%s", lastLines(string(flog), 20))
	}
	if after := rest("GET", "/v1/vpcs/vpc-seed/subnets/172.18.1.0-24", "", 200)["id"]; after != before {
		t.Errorf("route entry replaced: id %v → %v", before, after)
	}
	pingOK(t, ctrs[0], seedVMs[1].ctrIP)
}

// vmEtcdForward forwards etcd, flannel's store (the test's, outside the
// lab), on the VM's loopback.
func vmEtcdForward(t *testing.T, vm *netlab.Node, etcdURL string) {
	t.Helper()
	etcdAddr := strings.TrimPrefix(etcdURL, "https://")
	forward(t, vm, vmEtcd, func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", etcdAddr)
	})
}

// forward accepts on addr inside vm and copies each connection to one
// made by dial.
func forward(t *testing.T, vm *netlab.Node, addr string, dial func(context.Context) (net.Conn, error)) {
	t.Helper()
	ln, err := vm.Listen("tcp", addr)
	must(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				up, err := dial(ctx)
				cancel()
				if err != nil {
					return
				}
				defer up.Close()
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
				go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
				<-done
			}()
		}
	}()
}

// startEtcd runs an embedded etcd on free loopback ports, clients over
// TLS with certificates of pki, and returns its client URL.
func startEtcd(t *testing.T, dir string, pki *pki) string {
	t.Helper()
	free := func(scheme string) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		must(t, err)
		defer ln.Close()
		return scheme + "://" + ln.Addr().String()
	}
	cfg := embed.NewConfig()
	cfg.Dir = filepath.Join(dir, "etcd")
	cfg.LogLevel = "error"
	cfg.ClientTLSInfo = transport.TLSInfo{CertFile: pki.serverCert, KeyFile: pki.serverKey, TrustedCAFile: pki.ca, ClientCertAuth: true}
	client, peer := free("https"), free("http")
	cu, err := url.Parse(client)
	must(t, err)
	pu, err := url.Parse(peer)
	must(t, err)
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	cfg.InitialCluster = cfg.Name + "=" + peer
	e, err := embed.StartEtcd(cfg)
	must(t, err)
	t.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		t.Fatal("embedded etcd not ready")
	}
	return client
}

func pingOK(t *testing.T, n *netlab.Node, dst string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := n.Cmd(ctx, "ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", dst)
	if err != nil || !strings.Contains(out, "3 received") {
		t.Fatalf("ping %s from %s: %v\n%s", dst, n.Name(), err, out)
	}
	return out
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
