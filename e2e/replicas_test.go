package e2e

// Replicas (issue 14): a three-member etcd cluster and three vpcflow
// replicas on the loopback of the OVS node, br-test listing all three as
// controllers, the seed scenario on it, and a 10 ms ping and a TCP stream
// between the containers through every fault. Each fault reports a line
//
//	FAILOVER <name>: … failover=Xms flow_mods=N …
//
// (also printed by `make bench`).

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vpcflow/vpcflow/e2e/netlab"
	"github.com/vpcflow/vpcflow/internal/etcdtest"
)

const replicaTTL = 2 * time.Second

type replicaProc struct {
	name    string
	rest    string // 127.0.0.1:808N
	of      string // 127.0.0.1:665N
	etcdIP  string // the loopback address it reaches etcd at (cut off by nft)
	proc    *netlab.Process
	logPath string
	starts  int
}

type replicaLab struct {
	t        *testing.T // the running (sub)test
	root     *testing.T // the test the lab lives as long as
	f        *fabric
	members  []etcdtest.Member
	etcd     []*netlab.Process
	replicas []*replicaProc
	dpid     uint64
	vm1, vm2 *vm
}

func newReplicaLab(t *testing.T) *replicaLab {
	netlab.Require(t, netlab.NeedLab, netlab.NeedBinary("etcd"), netlab.NeedBinary("etcdctl"), netlab.NeedBinary("nft"))
	ctx := testCtx(t)
	lab := netlab.New(t)
	phys, err := lab.AddNode("phys")
	must(t, err)
	ovs, err := phys.StartOVS(ctx)
	must(t, err)
	f := &fabric{t: t, lab: lab, phys: phys, ovs: ovs, http: phys.HTTPClient()}
	r := &replicaLab{t: t, root: t, f: f}

	// etcd: three members, clients served on every loopback address.
	for i, p := range []int{2379, 22379, 32379} {
		r.members = append(r.members, etcdtest.Member{Name: fmt.Sprintf("etcd%d", i+1), Host: "127.0.0.1", ClientListen: "0.0.0.0",
			ClientPort: p, PeerPort: []int{12380, 22380, 32380}[i], Dir: filepath.Join(lab.Dir(), "etcd", fmt.Sprintf("etcd%d", i+1))})
	}
	r.etcd = make([]*netlab.Process, len(r.members))
	for i := range r.members {
		r.startEtcd(i)
	}
	r.waitEtcd(30 * time.Second)

	for i := 0; i < 3; i++ {
		r.replicas = append(r.replicas, &replicaProc{name: fmt.Sprintf("r%d", i+1),
			rest: fmt.Sprintf("127.0.0.1:%d", 8080+i), of: fmt.Sprintf("127.0.0.1:%d", 6653+i),
			etcdIP: fmt.Sprintf("127.0.0.%d", 11+i)})
	}
	for i, rp := range r.replicas {
		r.start(rp)
		if i == 0 {
			r.waitLeader(nil, 20*time.Second) // r1 leads: the test is predictable
		}
	}

	// br-test lists the three replicas (vpcflow bridge setup).
	must(t, ovs.AddBridge(ctx, "br-test"))
	var targets []string
	for _, rp := range r.replicas {
		targets = append(targets, "tcp:"+rp.of)
	}
	out, err := phys.Cmd(ctx, vpcflowBin, "bridge", "setup", "br-test", "--ovsdb", ovs.DBEndpoint(), "--controller", strings.Join(targets, ","))
	if err != nil {
		t.Fatalf("bridge setup: %v\n%s", err, out)
	}
	r.dpid, err = ovs.DPID(ctx, "br-test")
	must(t, err)

	// The seed, registered through a follower.
	r.vm1, r.vm2 = f.addVM(seedVM1), f.addVM(seedVM2)
	f.plugVM(r.vm1, seedVM1, "br-test")
	f.plugVM(r.vm2, seedVM2, "br-test")
	api := r.replicas[1]
	r.rest(api, "POST", "/v1/vpcs", map[string]any{"name": "vpc-seed"}, 201, 202)
	r.rest(api, "POST", "/v1/vpcs/vpc-seed/vswitches", map[string]any{"name": "vsw-a", "cidr": "10.10.10.0/24", "gateway": "10.10.10.1"}, 201, 202)
	for _, v := range []vmSpec{seedVM1, seedVM2} {
		r.rest(api, "POST", "/v1/vpcs/vpc-seed/hosts", map[string]any{"name": v.name, "vswitch": "vsw-a",
			"ip": v.ip, "mac": v.mac, "bridge": "br-test", "interface": v.port}, 201, 202)
		r.rest(api, "POST", "/v1/vpcs/vpc-seed/subnets", map[string]any{"cidr": strings.Replace(v.bridgeCIDR, ".1/24", ".0/24", 1), "host": v.name}, 201, 202)
	}
	f.eventually("the seed pings through the replicas' flows", 30*time.Second, func() error {
		_, err := r.vm1.container.Cmd(ctx, "ping", "-n", "-c", "1", "-W", "1", "172.18.3.4")
		return err
	})
	// The registration went through a follower, which answers once the
	// change is stored: wait until the leader's table stops changing.
	prev := r.table()
	f.eventually("br-test's table settled", 30*time.Second, func() error {
		time.Sleep(time.Second)
		cur := r.table()
		defer func() { prev = cur }()
		return sameLines(prev, cur)
	})
	ping(t, r.vm1.container, "172.18.3.4", 3)
	r.oneMaster("after setup")
	return r
}

func (r *replicaLab) startEtcd(i int) {
	m := r.members[i]
	p, err := r.f.phys.Start(context.Background(), filepath.Join(r.f.lab.Dir(), m.Name+".log"), etcdtest.Args(m, r.members)...)
	must(r.t, err)
	r.etcd[i] = p
}

// etcdctl runs etcdctl against the whole cluster in the OVS node.
func (r *replicaLab) etcdctl(ctx context.Context, args ...string) (string, error) {
	var eps []string
	for _, m := range r.members {
		eps = append(eps, m.ClientURL())
	}
	return r.f.phys.Cmd(ctx, append([]string{"env", "ETCDCTL_API=3", "etcdctl", "--dial-timeout=1s", "--command-timeout=2s", "--endpoints=" + strings.Join(eps, ",")}, args...)...)
}

func (r *replicaLab) waitEtcd(timeout time.Duration) {
	r.f.eventually("etcd cluster healthy", timeout, func() error {
		_, err := r.etcdctl(testCtx(r.t), "put", "/e2e/health", "ok")
		return err
	})
}

// etcdLeader is the index of etcd's raft leader.
func (r *replicaLab) etcdLeader() int {
	out, err := r.etcdctl(testCtx(r.t), "endpoint", "status", "-w", "json")
	must(r.t, err)
	var st []struct {
		Endpoint string
		Status   struct {
			Header struct {
				MemberID uint64 `json:"member_id"`
			} `json:"header"`
			Leader uint64 `json:"leader"`
		}
	}
	must(r.t, json.Unmarshal([]byte(out[strings.Index(out, "["):]), &st))
	for _, s := range st {
		if s.Status.Header.MemberID == s.Status.Leader {
			for i, m := range r.members {
				if s.Endpoint == m.ClientURL() {
					return i
				}
			}
		}
	}
	r.t.Fatalf("no etcd leader in %s", out)
	return -1
}

func (r *replicaLab) start(rp *replicaProc) {
	rp.starts++
	rp.logPath = filepath.Join(r.f.lab.Dir(), fmt.Sprintf("vpcflow-%s-%d.log", rp.name, rp.starts))
	var eps []string
	for _, m := range r.members {
		eps = append(eps, fmt.Sprintf("%s:%d", rp.etcdIP, m.ClientPort))
	}
	args := []string{vpcflowBin, "serve", "--init", "--store", "etcd://" + strings.Join(eps, ","),
		"--replica-name", rp.name, "--election-ttl", replicaTTL.String(),
		"--listen", rp.rest, "--openflow", rp.of, "--ovsdb", r.f.ovs.DBEndpoint(), "--log-level", "debug"}
	p, err := r.f.phys.Start(context.Background(), rp.logPath, args...)
	must(r.t, err)
	rp.proc = p
	logPath := rp.logPath
	r.root.Cleanup(func() {
		_ = p.Signal(syscall.SIGCONT)
		_ = p.Stop()
		if r.root.Failed() {
			r.root.Logf("replica %s log %s:\n%s", rp.name, logPath, tail(readFile(logPath), 60))
		}
	})
	r.f.eventually(rp.name+" REST API up", 20*time.Second, func() error {
		_, _, err := r.do(rp, "GET", "/healthz", nil)
		return err
	})
}

func (r *replicaLab) log(rp *replicaProc) string { return readFile(rp.logPath) }

func (r *replicaLab) do(rp *replicaProc, method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequest(method, "http://"+rp.rest+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.f.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func (r *replicaLab) rest(rp *replicaProc, method, path string, body any, want ...int) []byte {
	r.t.Helper()
	code, b, err := r.do(rp, method, path, body)
	if err != nil {
		r.t.Fatalf("%s %s %s: %v", rp.name, method, path, err)
	}
	for _, w := range want {
		if code == w {
			return b
		}
	}
	r.t.Fatalf("%s %s %s: status %d, want %v: %s", rp.name, method, path, code, want, b)
	return nil
}

var (
	roleLineRE   = regexp.MustCompile(`(?m)^(\S+)\s+\S+\s+controller\s+this replica (leads|no longer leads|follows)`)
	stepDownRE   = regexp.MustCompile(`(?m)^(\S+)\s+\S+\s+controller\s+stepping down`)
	reconciledTS = regexp.MustCompile(`(?m)^(\S+)\s+\S+\s+controller\s+switch reconciled.*"installed": (\d+), "added": (\d+), "deleted": (\d+)`)
	pushedRE     = regexp.MustCompile(`(?m)^(\S+)\s+\S+\s+controller\s+flows pushed.*"changes": (\d+)`)
)

func logTime(s string) time.Time {
	t, _ := time.Parse("2006-01-02T15:04:05.000Z0700", s)
	return t
}

// leads reports whether rp's last role line says it leads.
func (r *replicaLab) leads(rp *replicaProc) bool {
	if rp.proc == nil || rp.proc.Exited() {
		return false
	}
	lg := r.log(rp)
	ms := roleLineRE.FindAllStringSubmatch(lg, -1)
	if len(ms) == 0 || ms[len(ms)-1][2] != "leads" {
		return false
	}
	last := logTime(ms[len(ms)-1][1])
	for _, s := range stepDownRE.FindAllStringSubmatch(lg, -1) {
		if !logTime(s[1]).Before(last) {
			return false
		}
	}
	return true
}

// waitLeader waits until a replica other than not leads and has
// reconciled br-test after since (zero: any time), and returns it with
// when its reconciliation ended (by its log) and its counts.
func (r *replicaLab) waitLeader(not *replicaProc, timeout time.Duration) *replicaProc {
	var found *replicaProc
	r.f.eventually("a new leader", timeout, func() error {
		for _, rp := range r.replicas {
			if rp != not && r.leads(rp) {
				found = rp
				return nil
			}
		}
		return fmt.Errorf("none leads")
	})
	return found
}

// reconciledAfter waits for rp's first "switch reconciled" after t0.
func (r *replicaLab) reconciledAfter(rp *replicaProc, t0 time.Time, timeout time.Duration) (at time.Time, added, deleted int) {
	r.f.eventually(rp.name+" reconciled br-test", timeout, func() error {
		for _, m := range reconciledTS.FindAllStringSubmatch(r.log(rp), -1) {
			if ts := logTime(m[1]); ts.After(t0) {
				at = ts
				added, _ = strconv.Atoi(m[3])
				deleted, _ = strconv.Atoi(m[4])
				return nil
			}
		}
		return fmt.Errorf("not yet")
	})
	return at, added, deleted
}

// flowModsSince counts the flow-mods rp sent after t0: its reconciliations
// and its pushes, by its log.
func (r *replicaLab) flowModsSince(rp *replicaProc, t0 time.Time) int {
	n := 0
	lg := r.log(rp)
	for _, m := range reconciledTS.FindAllStringSubmatch(lg, -1) {
		if logTime(m[1]).After(t0) {
			a, _ := strconv.Atoi(m[3])
			d, _ := strconv.Atoi(m[4])
			n += a + d
		}
	}
	for _, m := range pushedRE.FindAllStringSubmatch(lg, -1) {
		if logTime(m[1]).After(t0) {
			c, _ := strconv.Atoi(m[2])
			n += c
		}
	}
	return n
}

// roles are br-test's controllers' roles as OVS reports them (target →
// role; connected ones only).
func (r *replicaLab) roles() map[string]string {
	out, err := r.f.ovs.Vsctl(testCtx(r.t), "--format=json", "--columns=target,role,is_connected", "list", "controller")
	must(r.t, err)
	var tbl struct {
		Data [][]any `json:"data"`
	}
	must(r.t, json.Unmarshal([]byte(out), &tbl))
	roles := map[string]string{}
	for _, row := range tbl.Data {
		target, _ := row[0].(string)
		role, _ := row[1].(string)
		if c, _ := row[2].(bool); c {
			roles[target] = role
		}
	}
	return roles
}

// oneMaster waits until OVS shows exactly one master on br-test (OVS
// writes roles into its database every few seconds), and returns it.
func (r *replicaLab) oneMaster(when string) *replicaProc {
	r.t.Helper()
	var master *replicaProc
	var last map[string]string
	r.f.eventually("exactly one master on br-test "+when, 20*time.Second, func() error {
		last = r.roles()
		var ms []string
		for target, role := range last {
			if role == "master" {
				ms = append(ms, target)
			}
		}
		if len(ms) != 1 {
			return fmt.Errorf("masters %v (roles %v)", ms, last)
		}
		for _, rp := range r.replicas {
			if "tcp:"+rp.of == ms[0] {
				master = rp
			}
		}
		if master == nil || !r.leads(master) {
			return fmt.Errorf("master %s is not the leader (roles %v)", ms[0], last)
		}
		return nil
	})
	r.t.Logf("roles %s: %v", when, last)
	return master
}

// table is br-test's flows without statistics, sorted.
func (r *replicaLab) table() []string {
	lines, err := r.f.ovs.OfctlDumpFlows(testCtx(r.t), "br-test", "--no-stats")
	must(r.t, err)
	sort.Strings(lines)
	return lines
}

func sameLines(a, b []string) error {
	if strings.Join(a, "\n") == strings.Join(b, "\n") {
		return nil
	}
	return fmt.Errorf("tables differ (%d vs %d flows)", len(a), len(b))
}

func (r *replicaLab) probe(port int) *trafficProbe {
	ping(r.t, r.vm1.container, "172.18.3.4", 2)
	p := startProbe(r.t, r.vm1.container, r.vm2.container, "172.18.3.4", port)
	p.rawDir = r.f.lab.Dir()
	return p
}

func (r *replicaLab) followers(of *replicaProc) []*replicaProc {
	var out []*replicaProc
	for _, rp := range r.replicas {
		if rp != of && rp.proc != nil && !rp.proc.Exited() {
			out = append(out, rp)
		}
	}
	return out
}

// routeFlows counts br-test's flows for a destination prefix.
func (r *replicaLab) routeFlows(prefix string) int {
	n := 0
	for _, l := range r.table() {
		if strings.Contains(l, "nw_dst="+prefix) {
			n++
		}
	}
	return n
}

func TestReplicas(t *testing.T) {
	r := newReplicaLab(t)
	f := r.f

	t.Run("kill-9-leader", func(t *testing.T) {
		r.t, r.f.t = t, t
		leader := r.oneMaster("before")
		before, ages := r.table(), f.durations("br-test")
		p := r.probe(5301)
		start := time.Now()
		time.Sleep(300 * time.Millisecond)
		kill := time.Now()
		must(t, leader.proc.Kill())
		next := r.waitLeader(leader, 10*replicaTTL)
		at, added, deleted := r.reconciledAfter(next, kill, 20*time.Second)
		failover := at.Sub(kill)
		time.Sleep(500 * time.Millisecond)
		res := p.Stop()
		mods := r.flowModsSince(next, kill)
		res.report(t, "replica-leader-kill", kill, failover, "kill -9 → new leader reconciled",
			fmt.Sprintf("new leader %s, reconcile added=%d deleted=%d", next.name, added, deleted))
		t.Logf("FAILOVER kill-9-leader: failover=%s flow_mods=%d ping_lost=%d (session TTL %s)", ms(failover), mods, res.PingLost, replicaTTL)
		res.expectNoLoss(t, "across the leader's kill -9")
		if res.TCPErr != nil {
			t.Errorf("TCP stream broke: %v", res.TCPErr)
		}
		if mods != 0 {
			t.Errorf("the new leader sent %d flow-mods, want 0", mods)
		}
		if err := sameLines(before, r.table()); err != nil {
			t.Error(err)
		}
		f.assertNotReinstalled("br-test", ages, time.Since(start)-time.Second)
		if failover > 4*replicaTTL {
			t.Errorf("failover took %s, want about the session TTL (%s)", failover, replicaTTL)
		}
		r.oneMaster("after the kill")
		r.start(leader) // back as a follower
	})

	t.Run("rest-through-follower-during-failover", func(t *testing.T) {
		r.t, r.f.t = t, t
		leader := r.oneMaster("before")
		p := r.probe(5302)
		kill := time.Now()
		must(t, leader.proc.Kill())
		// During the failover: through a follower, before anyone leads.
		fol := r.followers(leader)[0]
		// A follower answers once the leader's flows are on the switch
		// (it watches them over its own connection): here the next
		// leader's, after it reconciled; 202 if that took longer than
		// the push timeout.
		code, body, err := r.do(fol, "POST", "/v1/vpcs/vpc-seed/subnets", map[string]any{"cidr": "172.18.9.0/24", "host": "test2"})
		duringStored := time.Since(kill)
		switch {
		case err != nil || (code != 201 && code != 202):
			t.Fatalf("write through follower %s during the failover: %d %s %v", fol.name, code, body, err)
		case code == 201 && r.routeFlows("172.18.9.0/24") == 0:
			t.Fatalf("follower %s answered 201 during the failover but br-test has no flow for the route", fol.name)
		}
		next := r.waitLeader(leader, 10*replicaTTL)
		at, _, _ := r.reconciledAfter(next, kill, 20*time.Second)
		// After: through the follower of the new leader.
		var after *replicaProc
		for _, rp := range r.followers(leader) {
			if rp != next {
				after = rp
			}
		}
		r.rest(after, "POST", "/v1/vpcs/vpc-seed/subnets", map[string]any{"cidr": "172.18.10.0/24", "host": "test1"}, 201)
		if n := r.routeFlows("172.18.10.0/24"); n == 0 {
			t.Fatalf("follower %s answered 201 before the leader's flows for the route were on br-test", after.name)
		}
		f.eventually("both changes on br-test", 20*time.Second, func() error {
			if a, b := r.routeFlows("172.18.9.0/24"), r.routeFlows("172.18.10.0/24"); a == 0 || b == 0 {
				return fmt.Errorf("route flows %d and %d", a, b)
			}
			return nil
		})
		res := p.Stop()
		mods := r.flowModsSince(next, kill)
		t.Logf("FAILOVER rest-during-failover: failover=%s flow_mods=%d (through follower %s: %d %s after the kill, and after through %s) ping_lost=%d",
			ms(at.Sub(kill)), mods, fol.name, code, ms(duringStored), after.name, res.PingLost)
		res.expectNoLoss(t, "across the failover with changes")
		r.start(leader)
	})

	t.Run("sigstop-leader", func(t *testing.T) {
		r.t, r.f.t = t, t
		leader := r.oneMaster("before")
		p := r.probe(5303)
		stop := time.Now()
		must(t, leader.proc.Signal(syscall.SIGSTOP))
		next := r.waitLeader(leader, 10*replicaTTL)
		at, _, _ := r.reconciledAfter(next, stop, 20*time.Second)
		// A change while the old leader sleeps: it must never undo it.
		r.rest(next, "POST", "/v1/vpcs/vpc-seed/subnets", map[string]any{"cidr": "172.18.11.0/24", "host": "test2"}, 201)
		time.Sleep(replicaTTL)
		tableBefore := r.table()
		cont := time.Now()
		must(t, leader.proc.Signal(syscall.SIGCONT))
		f.eventually("the resumed leader knows it no longer leads", 15*time.Second, func() error {
			if r.leads(leader) {
				return fmt.Errorf("%s still says it leads", leader.name)
			}
			return nil
		})
		time.Sleep(2 * time.Second)
		res := p.Stop()
		zombieMods := r.flowModsSince(leader, cont)
		master := r.oneMaster("after SIGCONT")
		t.Logf("FAILOVER sigstop-leader: failover=%s flow_mods_by_resumed=%d master=%s ping_lost=%d",
			ms(at.Sub(stop)), zombieMods, master.name, res.PingLost)
		if master == leader {
			t.Errorf("the resumed leader is master again")
		}
		if zombieMods != 0 {
			t.Errorf("the resumed leader wrote %d flow-mods", zombieMods)
		}
		if err := sameLines(tableBefore, r.table()); err != nil {
			t.Errorf("br-test changed after SIGCONT: %v", err)
		}
		res.expectNoLoss(t, "across SIGSTOP/SIGCONT of the leader")
	})

	t.Run("cut-off-from-etcd", func(t *testing.T) {
		r.t, r.f.t = t, t
		leader := r.oneMaster("before")
		p := r.probe(5304)
		ctx := testCtx(t)
		rule := "ip daddr " + leader.etcdIP + " drop"
		nft := func(args ...string) {
			out, err := f.phys.Cmd(ctx, append([]string{"nft"}, args...)...)
			if err != nil {
				t.Fatalf("nft %v: %v\n%s", args, err, out)
			}
		}
		nft("add", "table", "inet", "e2e")
		nft("add", "chain", "inet", "e2e", "in", "{ type filter hook input priority 0; }")
		nft("add", "chain", "inet", "e2e", "out", "{ type filter hook output priority 0; }")
		cut := time.Now()
		nft("add", "rule", "inet", "e2e", "in", rule)
		nft("add", "rule", "inet", "e2e", "out", rule)
		f.eventually("the cut-off leader stops leading", 6*replicaTTL+10*time.Second, func() error {
			if r.leads(leader) {
				return fmt.Errorf("still leads")
			}
			return nil
		})
		stepped := time.Since(cut)
		next := r.waitLeader(leader, 10*replicaTTL)
		at, _, _ := r.reconciledAfter(next, cut, 20*time.Second)
		r.rest(next, "POST", "/v1/vpcs/vpc-seed/subnets", map[string]any{"cidr": "172.18.12.0/24", "host": "test1"}, 201)
		time.Sleep(time.Second)
		cutMods := r.flowModsSince(leader, cut)
		master := r.oneMaster("with " + leader.name + " cut off")
		res := p.Stop()
		t.Logf("FAILOVER cut-off-from-etcd: stopped_leading=%s failover=%s flow_mods_by_cut_off=%d master=%s ping_lost=%d",
			ms(stepped), ms(at.Sub(cut)), cutMods, master.name, res.PingLost)
		if cutMods != 0 {
			t.Errorf("the cut-off replica wrote %d flow-mods", cutMods)
		}
		if master == leader {
			t.Error("the cut-off replica is still master")
		}
		res.expectNoLoss(t, "while a replica was cut off from etcd")
		nft("delete", "table", "inet", "e2e")
		healed := time.Now()
		f.eventually(leader.name+" follows again", 30*time.Second, func() error {
			for _, m := range roleLineRE.FindAllStringSubmatch(r.log(leader), -1) {
				if m[2] == "follows" && logTime(m[1]).After(healed) {
					return nil
				}
			}
			return fmt.Errorf("not yet")
		})
	})

	t.Run("etcd-member-and-leader-kill", func(t *testing.T) {
		r.t, r.f.t = t, t
		master := r.oneMaster("before")
		p := r.probe(5305)
		// A member that is not etcd's leader: nothing notices.
		lead := r.etcdLeader()
		other := (lead + 1) % len(r.members)
		must(t, r.etcd[other].Kill())
		t0 := time.Now()
		r.rest(r.followers(master)[0], "POST", "/v1/vpcs/vpc-seed/subnets", map[string]any{"cidr": "172.18.13.0/24", "host": "test2"}, 201)
		memberWrite := time.Since(t0)
		r.startEtcd(other)
		r.waitEtcd(30 * time.Second)
		// etcd's leader: raft elects another; writes wait for it.
		lead = r.etcdLeader()
		kill := time.Now()
		must(t, r.etcd[lead].Kill())
		var firstOK time.Duration
		f.eventually("a write through vpcflow after etcd's leader died", 30*time.Second, func() error {
			code, b, err := r.do(r.followers(master)[0], "POST", "/v1/vpcs/vpc-seed/subnets", map[string]any{"cidr": "172.18.14.0/24", "host": "test1"})
			if err != nil || (code != 201 && code != 409) {
				return fmt.Errorf("%d %s %v", code, b, err)
			}
			firstOK = time.Since(kill)
			return nil
		})
		time.Sleep(replicaTTL)
		after := r.oneMaster("after etcd's leader died")
		r.startEtcd(lead)
		r.waitEtcd(30 * time.Second)
		res := p.Stop()
		t.Logf("FAILOVER etcd-member-kill: write_through_follower=%s; etcd-leader-kill: first_write_after=%s vpcflow_leader %s→%s ping_lost=%d",
			ms(memberWrite), ms(firstOK), master.name, after.name, res.PingLost)
		res.expectNoLoss(t, "across etcd member and leader kills")
	})

	t.Run("ovs-vswitchd-restart", func(t *testing.T) {
		r.t, r.f.t = t, t
		r.oneMaster("before")
		want := r.table()
		restart := time.Now()
		must(t, f.ovs.RestartVswitchd(testCtx(t)))
		var back time.Duration
		f.eventually("br-test's flows back", 30*time.Second, func() error {
			if err := sameLines(want, r.table()); err != nil {
				return err
			}
			back = time.Since(restart)
			return nil
		})
		master := r.oneMaster("after ovs-vswitchd restart")
		ping(t, r.vm1.container, "172.18.3.4", 3)
		t.Logf("FAILOVER ovs-vswitchd-restart: flows_back=%s master=%s flows=%d", ms(back), master.name, len(want))
	})
}
