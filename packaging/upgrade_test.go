package packaging

import (
	"bufio"
	"bytes"
	"fmt"
	"github.com/vpcflow/vpcflow/topology"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// seedScript builds the seed scenario's two VMs inside the sandbox (as
// scripts/demo.sh does): network namespaces test1/test2 with ens8 on
// br-test (vnet1, vnet3), a Linux bridge and a container namespace behind
// each; br-test is made by vpcflow bridge setup and pointed at vpcflow.
const seedScript = `set -e
vm() { # name port ip mac bridge bridge_cidr container container_ip gw
	ip netns add $1; ip netns add $7
	ip netns exec $1 ip link set lo up; ip netns exec $7 ip link set lo up
	ip link add $2 type veth peer name ens8 netns $1
	ip netns exec $1 ip link set ens8 address $4
	ip link set $2 up
	ip netns exec $1 ip link set ens8 up
	ethtool -K $2 tx off >/dev/null
	ip netns exec $1 ethtool -K ens8 tx off >/dev/null
	ovs-vsctl add-port br-test $2 -- set interface $2 external_ids:attached-mac=$4
	ip netns exec $1 ip addr add $3/24 dev ens8
	ip netns exec $1 ip route add default via 10.10.10.1
	ip netns exec $1 sysctl -qw net.ipv4.ip_forward=1
	ip netns exec $1 ip link add $5 type bridge
	ip netns exec $1 ip addr add $6 dev $5
	ip netns exec $1 ip link set $5 up
	ip netns exec $1 ip link add veth0 type veth peer name eth0 netns $7
	ip netns exec $1 ip link set veth0 master $5 up
	ip netns exec $7 ip addr add $8 dev eth0
	ip netns exec $7 ip link set eth0 up
	ip netns exec $7 ip route add default via $9
	ip netns exec $7 ethtool -K eth0 tx off >/dev/null
}
/usr/bin/vpcflow bridge setup br-test --create --datapath-type netdev --controller tcp:127.0.0.1:6653 >/dev/null
vm test1 vnet1 10.10.10.11 52:58:00:98:c0:81 vpc1 172.18.1.1/24 testns1 172.18.1.3/24 172.18.1.1
vm test2 vnet3 10.10.10.12 52:58:00:98:c0:92 vpc2 172.18.3.1/24 testns2 172.18.3.4/24 172.18.3.1
`

// TestPackageUpgradeBackupRestore: the package installed in a clean
// sandbox where the previous vpcflow left its user and its store (schema
// 2, the seed scenario, written by the last vpcflow before schema 3:
// testdata/schema2-seed.db, made by testdata/make-schema2-store.sh)
// upgrades the store in place, keeping it as vpcflow.db.schema2.bak; the
// unit's ExecStart serves the same fabric and the seed's containers ping
// (ttl=62). With a ping running throughout, 0 lost: an online backup;
// changes after it; an online restore, which sends only the flow-mods that
// differ and leaves the flows of unchanged objects alone (their durations
// run on); then vpcflow stopped, an --offline restore, and a restart that
// changes no flow.
func TestPackageUpgradeBackupRestore(t *testing.T) {
	deb := packageUnderTest(t)
	if got := storeSchema(t, "testdata/schema2-seed.db"); got != "2" {
		t.Fatalf("testdata/schema2-seed.db has schema %q, want 2", got)
	}
	sb := newSandbox(t)
	sb.checkClean(t)

	// What the previous package leaves after dpkg -r: its system user
	// and its store.
	sb.sh(t, "groupadd", "--system", "vpcflow")
	sb.sh(t, "useradd", "--system", "--gid", "vpcflow", "--home-dir", "/var/lib/vpcflow", "--no-create-home",
		"--shell", "/usr/sbin/nologin", "--comment", "vpcflow controller", "vpcflow")
	sb.sh(t, "install", "-d", "-o", "vpcflow", "-g", "vpcflow", "-m", "0750", "/var/lib/vpcflow")
	sb.install(t, "testdata/schema2-seed.db", "/var/lib/vpcflow/vpcflow.db", 0o600)
	sb.sh(t, "chown", "vpcflow:vpcflow", "/var/lib/vpcflow/vpcflow.db")
	sb.install(t, deb, "/tmp/vpcflow.deb", 0o644)

	// The upgrade: postinst's vpcflow init (as vpcflow) finds the schema
	// 2 store, copies it and upgrades it.
	out := sb.sh(t, "dpkg", "-i", "/tmp/vpcflow.deb")
	t.Logf("dpkg -i:\n%s", out)
	if !strings.Contains(out, "store /var/lib/vpcflow/vpcflow.db exists already (1 VPCs, 1 vSwitches, 2 hosts, 2 subnets); upgraded to schema "+topology.SchemaVersion+" (the store as it was: /var/lib/vpcflow/vpcflow.db.schema2.bak)") {
		t.Errorf("postinst did not report the upgrade:\n%s", out)
	}
	if got := storeSchema(t, sb.path("/var/lib/vpcflow/vpcflow.db")); got != topology.SchemaVersion {
		t.Errorf("the store has schema %q after the upgrade, want %s", got, topology.SchemaVersion)
	}
	bak := sb.path("/var/lib/vpcflow/vpcflow.db.schema2.bak")
	if got := storeSchema(t, bak); got != "2" {
		t.Errorf("vpcflow.db.schema2.bak has schema %q, want 2", got)
	}
	if a, b := storeRecords(t, bak), storeRecords(t, "testdata/schema2-seed.db"); a != b {
		t.Errorf("vpcflow.db.schema2.bak is not the store as it was:\n%s\nwant\n%s", a, b)
	}
	sb.checkOwner(t, "/var/lib/vpcflow/vpcflow.db", "vpcflow", "vpcflow", 0o600)
	sb.checkOwner(t, "/var/lib/vpcflow/vpcflow.db.schema2.bak", "vpcflow", "vpcflow", 0o600)

	sb.startOVS(t)
	sb.sh(t, "bash", "-c", seedScript)
	unit := readUnit(t, sb.path("/lib/systemd/system/vpcflow.service"))
	svc := sb.startService(t, unit)
	svc.waitNotify(t, "READY=1", 30*time.Second)
	// The hosts as the previous vpcflow stored them, IDs included.
	if hosts := sb.sh(t, "/usr/bin/vpcflow", "host", "list", "--vpc", "vpc-seed", "-o", "json"); !strings.Contains(hosts, `"i-vf00000000000000001"`) ||
		!strings.Contains(hosts, `"i-vf00000000000000002"`) {
		t.Errorf("hosts after the upgrade:\n%s", hosts)
	}
	waitPing(t, sb, svc, "testns1", "172.18.3.4")
	if out := sb.sh(t, "ip", "netns", "exec", "testns1", "ping", "-c", "1", "-W", "2", "172.18.3.4"); !strings.Contains(out, "ttl=62") {
		t.Errorf("container to container: want ttl=62:\n%s", out)
	}

	// The README's trace.
	if out := sb.sh(t, "/usr/bin/vpcflow", "trace", "--vpc", "vpc-seed", "--from", "test1", "172.18.3.4"); !strings.Contains(out, "delivered to host vpc-seed/test2") {
		t.Errorf("vpcflow trace:\n%s", out)
	}

	// A ping from container to container from now on, to the end.
	pinger := sb.startPing(t, "testns1", "172.18.3.4")

	sb.sh(t, "mkdir", "-p", "/var/backups")
	if out := sb.sh(t, "/usr/bin/vpcflow", "backup", "/var/backups/vpcflow-seed.db"); !strings.Contains(out, "saved /var/backups/vpcflow-seed.db") {
		t.Errorf("backup: %s", out)
	}
	atBackup := sb.flows(t)
	backupTime := time.Now()

	// Changes after the backup, none on the ping's path: a third host
	// (its port is not there), a route entry to test2, another VPC.
	sb.sh(t, "/usr/bin/vpcflow", "host", "add", "--vpc", "vpc-seed", "test3", "--vswitch", "vsw-a", "--ip", "10.10.10.13",
		"--mac", "52:58:00:98:c0:a3", "--bridge", "br-test", "--interface", "vnet5")
	sb.sh(t, "/usr/bin/vpcflow", "subnet", "add", "--vpc", "vpc-seed", "172.18.9.0/24", "--host", "test2")
	sb.sh(t, "/usr/bin/vpcflow", "vpc", "create", "vpc-other")
	changed := sb.flows(t)
	want := minimalMods(changed, atBackup)
	if want == 0 {
		t.Fatal("the changes after the backup changed no flow on br-test")
	}
	time.Sleep(2 * time.Second) // so that a flow re-added by the restore would show in its duration

	// Online restore.
	out = sb.sh(t, "/usr/bin/vpcflow", "restore", "/var/backups/vpcflow-seed.db")
	t.Logf("vpcflow restore:\n%s", out)
	if !strings.Contains(out, fmt.Sprintf("restored /var/backups/vpcflow-seed.db: 0 created, 0 updated, 3 deleted, 6 unchanged; %d flow-mods to 1 switch", want)) {
		t.Errorf("online restore: want 3 deletes, 6 unchanged and the %d flow-mods that differ:\n%s", want, out)
	}
	after := sb.flows(t)
	if minimalMods(after, atBackup) != 0 {
		t.Errorf("after the online restore br-test holds\n%s\nwant, as at the backup,\n%s", flowText(after), flowText(atBackup))
	}
	untouched(t, sb.flowAges(t), atBackup, changed, time.Since(backupTime))

	// Offline: vpcflow stopped (the flows stay in OVS), the backup put in
	// place, vpcflow started again reconciles and changes nothing.
	sb.sh(t, "/usr/bin/vpcflow", "vpc", "create", "vpc-late")
	svc.stop(t)
	out = sb.sh(t, "/usr/bin/vpcflow", "restore", "--offline", "/var/backups/vpcflow-seed.db")
	if !strings.Contains(out, "restored /var/lib/vpcflow/vpcflow.db from /var/backups/vpcflow-seed.db") {
		t.Errorf("offline restore: %s", out)
	}
	svc = sb.startService(t, unit)
	svc.waitNotify(t, "READY=1", 30*time.Second)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(sb.sh(t, "/usr/bin/vpcflow", "switches"), "br-test") {
		if time.Now().After(deadline) {
			t.Fatalf("br-test did not come back:\n%s", svc.log())
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second) // its reconciliation
	if vpcs := sb.sh(t, "/usr/bin/vpcflow", "vpc", "list"); strings.Contains(vpcs, "vpc-late") || !strings.Contains(vpcs, "vpc-seed") {
		t.Errorf("after the offline restore:\n%s", vpcs)
	}
	if after := sb.flows(t); minimalMods(after, atBackup) != 0 {
		t.Errorf("after the offline restore br-test holds\n%s\nwant\n%s", flowText(after), flowText(atBackup))
	}
	untouched(t, sb.flowAges(t), atBackup, changed, time.Since(backupTime))
	sb.checkOwner(t, "/var/lib/vpcflow/vpcflow.db", "vpcflow", "vpcflow", 0o600)
	if !sb.exists("/var/lib/vpcflow/vpcflow.db.before-restore") {
		t.Error("the offline restore did not keep the store it replaced")
	}

	sent, lost := pinger.stop(t)
	t.Logf("ping throughout: %d sent, lost %v", sent, lost)
	if sent < 50 || len(lost) > 0 {
		t.Errorf("the seed's ping across upgrade, backup and both restores: %d sent, lost icmp_seq %v", sent, lost)
	}
	svc.stop(t)
}

// storeSchema reads a store file's schema version (bbolt, read-only).
func storeSchema(t *testing.T, path string) string {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer db.Close()
	var v string
	_ = db.View(func(tx *bolt.Tx) error {
		if m := tx.Bucket([]byte("meta")); m != nil {
			v = string(m.Get([]byte("schema")))
		}
		return nil
	})
	return v
}

// storeRecords lists every key and value of a store file, sorted.
func storeRecords(t *testing.T, path string) string {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer db.Close()
	var lines []string
	_ = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			return b.ForEach(func(k, v []byte) error {
				lines = append(lines, fmt.Sprintf("%s/%s=%q", name, k, v))
				return nil
			})
		})
	})
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// waitPing waits until a container reaches an address (the flows are in).
func waitPing(t *testing.T, sb *sandbox, svc *service, ns, dst string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := sb.command("ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "1", dst).Run(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never reached %s:\n%s\nflows:\n%s", ns, dst, svc.log(), flowText(sb.flows(t)))
		}
	}
}

// flowKey is a flow as ovs-ofctl prints it without its statistics, minus
// the cookie-less prefix: table, priority and match, the key OVS replaces
// by.
var statsRE = regexp.MustCompile(`\s*(duration|n_packets|n_bytes|idle_age|hard_age)=[^,\s]+,?`)

// flows is br-test's table: key (table, priority, match) → the whole flow
// without statistics.
func (sb *sandbox) flows(t *testing.T) map[string]string {
	t.Helper()
	out := sb.sh(t, "ovs-ofctl", "-O", "OpenFlow13", "--no-stats", "dump-flows", "br-test")
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "OFPST_") {
			continue
		}
		m[flowKeyOf(l)] = l
	}
	return m
}

// flowAges is br-test's table: key → how long the flow has been there.
func (sb *sandbox) flowAges(t *testing.T) map[string]time.Duration {
	t.Helper()
	out := sb.sh(t, "ovs-ofctl", "-O", "OpenFlow13", "dump-flows", "br-test")
	durRE := regexp.MustCompile(`duration=([0-9.]+)s`)
	m := map[string]time.Duration{}
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		d := durRE.FindStringSubmatch(l)
		if d == nil {
			continue
		}
		secs, _ := strconv.ParseFloat(d[1], 64)
		m[flowKeyOf(statsRE.ReplaceAllString(l, ""))] = time.Duration(secs * float64(time.Second))
	}
	return m
}

// flowKeyOf is "table=N, priority=P,MATCH" of a flow line without stats.
func flowKeyOf(l string) string {
	var table, prio, match string
	fields := strings.SplitN(l, " actions=", 2)
	for _, f := range strings.Split(strings.ReplaceAll(fields[0], ", ", ","), ",") {
		f = strings.TrimSpace(f)
		switch {
		case strings.HasPrefix(f, "cookie="), f == "":
		case strings.HasPrefix(f, "table="):
			table = f
		case strings.HasPrefix(f, "priority="):
			prio = f
		default:
			match += f + ","
		}
	}
	if table == "" {
		table = "table=0"
	}
	if prio == "" {
		prio = "priority=32768"
	}
	return table + " " + prio + " " + strings.TrimSuffix(match, ",")
}

// minimalMods is the fewest flow-mods that turn table a into table b.
func minimalMods(a, b map[string]string) int {
	n := 0
	for k := range a {
		if _, ok := b[k]; !ok {
			n++
		}
	}
	for k, fb := range b {
		if fa, ok := a[k]; !ok || fa != fb {
			n++
		}
	}
	return n
}

func flowText(m map[string]string) string {
	var l []string
	for _, f := range m {
		l = append(l, f)
	}
	sort.Strings(l)
	return strings.Join(l, "\n")
}

// untouched checks that every flow of table that the changes after the
// backup left as it was (in changed too) was installed before age ago: no
// flow-mod re-added it since.
func untouched(t *testing.T, ages map[string]time.Duration, table, changed map[string]string, age time.Duration) {
	t.Helper()
	for k := range table {
		if changed[k] != table[k] {
			continue
		}
		d, ok := ages[k]
		if !ok {
			t.Errorf("flow %s is missing", k)
			continue
		}
		if d+time.Second < age {
			t.Errorf("flow %s was re-added %s ago, after the backup (%s ago)", table[k], d, age)
		}
	}
}

// pinger is a ping running inside the sandbox.
type pinger struct {
	cmd *exec.Cmd
	out *bytes.Buffer
}

func (sb *sandbox) startPing(t *testing.T, ns, dst string) *pinger {
	t.Helper()
	p := &pinger{cmd: sb.command("ip", "netns", "exec", ns, "ping", "-n", "-i", "0.05", dst), out: &bytes.Buffer{}}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
	})
	return p
}

// stop interrupts the ping and returns how many it sent and which
// sequence numbers got no answer (the last one may still have been on
// its way and is not counted).
func (p *pinger) stop(t *testing.T) (sent int, lost []int) {
	t.Helper()
	// nsenter forks the ping (ip netns exec execs it).
	pid := firstChild(p.cmd.Process.Pid)
	if pid == 0 {
		t.Fatalf("ping is not running:\n%s", p.out.String())
	}
	if err := syscall.Kill(pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
	got := map[int]bool{}
	seqRE := regexp.MustCompile(`icmp_seq=(\d+) ttl=`)
	sumRE := regexp.MustCompile(`(\d+) packets transmitted`)
	sc := bufio.NewScanner(bytes.NewReader(p.out.Bytes()))
	for sc.Scan() {
		if m := seqRE.FindStringSubmatch(sc.Text()); m != nil {
			n, _ := strconv.Atoi(m[1])
			got[n] = true
		}
		if m := sumRE.FindStringSubmatch(sc.Text()); m != nil {
			sent, _ = strconv.Atoi(m[1])
		}
	}
	if sent == 0 {
		t.Fatalf("no ping summary:\n%s", p.out.String())
	}
	for i := 1; i < sent; i++ {
		if !got[i] {
			lost = append(lost, i)
		}
	}
	return sent, lost
}
