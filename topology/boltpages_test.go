package topology

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
)

// mappedRSS is the resident size, in bytes, of this process's mappings of
// path (/proc/self/smaps).
func mappedRSS(t *testing.T, path string) (rss int64, found bool) {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skipf("no smaps: %v", err)
	}
	defer f.Close()
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			in = len(fields) >= 6 && fields[len(fields)-1] == path
			found = found || in
			continue
		}
		if in && len(fields) == 3 && fields[0] == "Rss:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				t.Fatalf("smaps line %q: %v", line, err)
			}
			rss += kb << 10
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rss, found
}

// TestOpenLeavesTheMapOutOfMemory: opening a store reads every page of
// the bbolt file (the load, and bbolt's freelist rebuild), but once it is
// in memory the file's pages leave the process's resident set (issue 17:
// 104 MiB of RSS at 100,000 hosts). The store still reads and writes.
func TestOpenLeavesTheMapOutOfMemory(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	mustApply(t, s, seedOps()...)
	ops := []Op{createVSwitch(VSwitch{VPC: "vpc-a", Name: "vsw-bulk", CIDR: pfx("10.1.0.0/16")})}
	for i := range 20000 {
		ops = append(ops, createHost(Host{VPC: "vpc-a", Name: fmt.Sprintf("bulk-%d", i), VSwitch: "vsw-bulk",
			IP: netip.AddrFrom4([4]byte{10, 1, byte((i + 300) >> 8), byte(i + 300)}), MAC: MAC{0x02, 0, 0, 0, byte(i >> 8), byte(i)},
			DPID: 7, OFPort: uint32(1000 + i)}))
	}
	mustApply(t, s, ops...)
	path := s.Backend().(*Bolt).Path()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// What the store's pages take (the file is longer: bbolt grows it
	// ahead).
	used, err := InUse(path)
	if err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir)
	defer s.Close()
	rss, found := mappedRSS(t, path)
	if !found {
		t.Fatalf("%s is not mapped", path)
	}
	t.Logf("%d KiB in use, resident after open %d KiB", used>>10, rss>>10)
	if rss > used/10 {
		t.Errorf("after open %d KiB of the %d KiB in use are resident, want at most a tenth", rss>>10, used>>10)
	}
	s.Read(func(st *State) {
		if _, ok := st.Host("vpc-a", "bulk-19999"); !ok {
			t.Fatal("bulk-19999 not loaded")
		}
	})
	mustApply(t, s, deleteHost("vpc-a", "bulk-0"))
}

// TestReleaseMappedAfterCommits: commits read pages of the map (the
// branches they walk) and, with the map reserved up front, nothing else
// takes them out of resident memory; ReleaseMapped does (the controller
// calls it when it hands its free heap back), and the store goes on.
func TestReleaseMappedAfterCommits(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	mustApply(t, s, seedOps()...)
	mustApply(t, s, createVSwitch(VSwitch{VPC: "vpc-a", Name: "vsw-bulk", CIDR: pfx("10.1.0.0/16")}))
	for b := range 20 {
		var ops []Op
		for j := range 1000 {
			i := b*1000 + j
			ops = append(ops, createHost(Host{VPC: "vpc-a", Name: fmt.Sprintf("bulk-%d", i), VSwitch: "vsw-bulk",
				IP: netip.AddrFrom4([4]byte{10, 1, byte((i + 300) >> 8), byte(i + 300)}), MAC: MAC{0x02, 0, 0, 0, byte(i >> 8), byte(i)},
				DPID: 7, OFPort: uint32(1000 + i)}))
		}
		mustApply(t, s, ops...)
	}
	path := s.Backend().(*Bolt).Path()
	before, found := mappedRSS(t, path)
	if !found {
		t.Fatalf("%s is not mapped", path)
	}
	s.ReleaseMapped()
	after, _ := mappedRSS(t, path)
	t.Logf("resident after 20 commits %d KiB, after ReleaseMapped %d KiB", before>>10, after>>10)
	if before < 256<<10 {
		t.Fatalf("20 commits of 1,000 hosts left only %d KiB resident: the test proves nothing", before>>10)
	}
	if after > before/10 {
		t.Errorf("after ReleaseMapped %d KiB of %d KiB stay resident", after>>10, before>>10)
	}
	mustApply(t, s, deleteHost("vpc-a", "bulk-0"))
}
