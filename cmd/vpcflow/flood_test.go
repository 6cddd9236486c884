package main

// Connection floods against the real binary (issue 10, item 1): vpcflow
// runs under `prlimit --nofile=256` in a lab namespace with a real Open
// vSwitch bridge connected to it; thousands of idle connections that say
// HELLO (OpenFlow) or send half a request (REST) arrive from loopback.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vpcflow/vpcflow/e2e/netlab"
)

// floodLab is one vpcflow under a lowered file limit with one bridge.
type floodLab struct {
	t       *testing.T
	lab     *netlab.Lab
	phys    *netlab.Node
	ovs     *netlab.OVS
	proc    *netlab.Process
	logPath string
	http    *http.Client
	dpid    string
}

const (
	floodOF   = "127.0.0.1:6653"
	floodREST = "127.0.0.1:8080"
)

func newFloodLab(t *testing.T, nofile int, extra ...string) *floodLab {
	t.Helper()
	ctx := context.Background()
	lab := netlab.New(t)
	phys, err := lab.AddNode("phys")
	if err != nil {
		t.Fatal(err)
	}
	ovs, err := phys.StartOVS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f := &floodLab{t: t, lab: lab, phys: phys, ovs: ovs, http: phys.HTTPClient(),
		logPath: filepath.Join(lab.Dir(), "vpcflow.log")}
	f.http.Timeout = 5 * time.Second
	args := append([]string{"prlimit", fmt.Sprintf("--nofile=%d:%d", nofile, nofile), "--", vpcflowBinary(t), "serve",
		"--config", "/dev/null", "--data-dir", filepath.Join(lab.Dir(), "data"), "--init",
		"--openflow", floodOF, "--listen", floodREST, "--ovsdb", ovs.DBEndpoint(),
		"--openflow-handshake-timeout", "2s"}, extra...)
	f.proc, err = phys.Start(ctx, f.logPath, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = f.proc.Stop()
		if t.Failed() {
			t.Logf("vpcflow log (tail):\n%s", tail(f.log(), 60))
		}
	})
	f.eventually("REST up", 15*time.Second, func() error { _, err := f.get("/healthz"); return err })
	if err := ovs.AddBridge(ctx, "br0"); err != nil {
		t.Fatal(err)
	}
	if err := ovs.SetController(ctx, "br0", "tcp:"+floodOF); err != nil {
		t.Fatal(err)
	}
	dpid, err := ovs.DPID(ctx, "br0")
	if err != nil {
		t.Fatal(err)
	}
	f.dpid = fmt.Sprintf("%016x", dpid)
	f.eventually("br0 connected", 15*time.Second, func() error {
		_, err := f.since()
		return err
	})
	return f
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (f *floodLab) log() string {
	b, _ := os.ReadFile(f.logPath)
	return string(b)
}

func (f *floodLab) eventually(what string, limit time.Duration, fn func() error) {
	f.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%s: not within %s: %v", what, limit, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (f *floodLab) get(path string) ([]byte, error) {
	resp, err := f.http.Get("http://" + floodREST + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != 200 {
		err = fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return b, err
}

func (f *floodLab) post(path, body string) error {
	resp, err := f.http.Post("http://"+floodREST+path, "application/json", strings.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 201 {
		return fmt.Errorf("POST %s: %d %s", path, resp.StatusCode, b)
	}
	return nil
}

// since is when br0 connected, per GET /v1/switches.
func (f *floodLab) since() (string, error) {
	b, err := f.get("/v1/switches")
	if err != nil {
		return "", err
	}
	var sws []struct {
		DPID  string `json:"dpid"`
		Since string `json:"connected_since"`
	}
	if err := json.Unmarshal(b, &sws); err != nil {
		return "", err
	}
	for _, s := range sws {
		if s.DPID == f.dpid {
			return s.Since, nil
		}
	}
	return "", fmt.Errorf("br0 (%s) not connected: %s", f.dpid, b)
}

// flood opens n idle connections to addr from inside the lab, each sending
// first, and keeps them open until stop is closed.
func (f *floodLab) flood(addr string, n int, first []byte, stop <-chan struct{}) (opened func() int) {
	var mu sync.Mutex
	var conns []net.Conn
	count := 0
	go func() {
		for i := 0; i < n; i++ {
			select {
			case <-stop:
				i = n
				continue
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			c, err := f.phys.Dial(ctx, "tcp", addr)
			cancel()
			if err != nil {
				continue
			}
			_, _ = c.Write(first)
			mu.Lock()
			conns = append(conns, c)
			count++
			mu.Unlock()
		}
		<-stop
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	return func() int { mu.Lock(); defer mu.Unlock(); return count }
}

var (
	ofHello     = []byte{0x04, 0, 0, 8, 0, 0, 0, 1}
	halfRequest = []byte("GET /v1/vpcs HTTP/1.1\r\nHost: 127.0.0.1\r\n")
)

// TestConnectionFlood: with the handshake and connection caps at their
// automatic values (a quarter of the 256 file descriptors), 3,000
// HELLO-and-wait OpenFlow connections and 600 half-sent REST requests
// never stop the controller: the connected bridge stays connected (the
// same connected_since), and a REST read and a REST change succeed every
// 200ms throughout.
func TestConnectionFlood(t *testing.T) {
	f := newFloodLab(t, 256)
	before, err := f.since()
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	ofOpened := f.flood(floodOF, 3000, ofHello, stop)
	restOpened := f.flood(floodREST, 600, halfRequest, stop)
	start := time.Now()
	var slowest time.Duration
	checks := 0
	for i := 0; time.Since(start) < 8*time.Second; i++ {
		t0 := time.Now()
		s, err := f.since()
		if err != nil {
			t.Fatalf("%.1fs into the flood (%d OpenFlow, %d REST connections): %v", time.Since(start).Seconds(), ofOpened(), restOpened(), err)
		}
		if s != before {
			t.Fatalf("br0 reconnected during the flood: connected_since %s, was %s", s, before)
		}
		if err := f.post("/v1/vpcs", fmt.Sprintf(`{"name":"vpc-%d"}`, i)); err != nil {
			t.Fatalf("%.1fs into the flood: %v", time.Since(start).Seconds(), err)
		}
		slowest = max(slowest, time.Since(t0))
		checks++
		if f.proc.Exited() {
			t.Fatal("vpcflow exited during the flood")
		}
		time.Sleep(200 * time.Millisecond)
	}
	close(stop)
	t.Logf("flood: %d OpenFlow and %d REST idle connections opened; %d checks, slowest %s", ofOpened(), restOpened(), checks, slowest)
	if ofOpened() < 2000 || restOpened() < 300 {
		t.Errorf("the flood was too small to mean anything: %d OpenFlow, %d REST", ofOpened(), restOpened())
	}
	log := f.log()
	for _, want := range []string{"switch connection refused", "REST connection limit reached: closed the longest-waiting idle connection"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if strings.Contains(log, "too many open files") {
		t.Errorf("the caps let the file descriptors run out:\n%s", grepLines(log, "too many open files"))
	}
	if got, err := f.ovs.Vsctl(context.Background(), "get", "Controller", "br0", "is_connected"); err != nil || strings.TrimSpace(got) != "true" {
		t.Errorf("OVS says br0's controller is_connected=%q (%v)", got, err)
	}
}

// TestAcceptExhaustion: with the caps lifted, the same flood makes accept
// fail with EMFILE. vpcflow backs off and retries instead of exiting (it
// used to end with "accept4: too many open files"), the connected bridge
// stays connected, and once the idle handshakes time out (2s) the REST API
// answers again.
func TestAcceptExhaustion(t *testing.T) {
	f := newFloodLab(t, 256, "--openflow-max-handshakes", "100000", "--openflow-max-handshakes-per-source", "100000")
	before, err := f.since()
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	opened := f.flood(floodOF, 1500, ofHello, stop)
	f.eventually("accept failing with EMFILE", 20*time.Second, func() error {
		if !strings.Contains(f.log(), "too many open files") {
			return fmt.Errorf("not yet (%d connections)", opened())
		}
		return nil
	})
	time.Sleep(3 * time.Second) // exhausted for a while
	close(stop)
	if f.proc.Exited() {
		t.Fatalf("vpcflow exited: %v", f.proc.Wait())
	}
	log := f.log()
	if !strings.Contains(log, "accepting a switch connection failed; retrying") {
		t.Errorf("no back-off message:\n%s", grepLines(log, "too many open files"))
	}
	f.eventually("REST back after the flood", 15*time.Second, func() error {
		_, err := f.get("/healthz")
		return err
	})
	s, err := f.since()
	if err != nil {
		t.Fatal(err)
	}
	if s != before {
		t.Errorf("br0 reconnected: connected_since %s, was %s", s, before)
	}
	if err := f.post("/v1/vpcs", `{"name":"after"}`); err != nil {
		t.Error(err)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
			if len(out) == 5 {
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
