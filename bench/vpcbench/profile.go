package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// profiler drives a profiling build of vpcflow (`go build -tags pprof
// ./cmd/vpcflow`, cmd/vpcflow/pprof.go; docs/performance.md, "Profiling
// the live controller"): one that, with VPCFLOW_PPROF=ADDR, serves
// net/http/pprof plus /debug/cpuprofile/start?file=F,
// /debug/cpuprofile/stop, /debug/heapfile?file=F and /debug/memfile?file=F,
// and with VPCFLOW_CPUPROFILE=F profiles from process start. With -profile
// unset every method is a no-op, and the plain bin/vpcflow needs none of
// this.
type profiler struct {
	dir  string // "" = off
	n    int
	addr string
	hc   *http.Client
}

const pprofAddr = "127.0.0.1:6060"

func newProfiler(dir string, n int) (*profiler, error) {
	if dir == "" {
		return &profiler{}, nil
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	os.Setenv("VPCFLOW_PPROF", pprofAddr)
	return &profiler{dir: dir, n: n, addr: pprofAddr}, nil
}

func (p *profiler) file(name, ext string) string {
	return filepath.Join(p.dir, fmt.Sprintf("n%d-%s.%s", p.n, name, ext))
}

// fromStart makes the next controller start profile CPU from its first
// instruction (store load and flow computation happen before it listens).
func (p *profiler) fromStart(name string) {
	if p.dir != "" {
		os.Setenv("VPCFLOW_CPUPROFILE", p.file(name, "cpu.pprof"))
	}
}

func (p *profiler) get(ctx context.Context, e *env, path string, q url.Values) {
	if p.dir == "" {
		return
	}
	os.Unsetenv("VPCFLOW_CPUPROFILE")
	if p.hc == nil {
		p.hc = e.phys.HTTPClient()
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.addr+path+"?"+q.Encode(), nil)
	resp, err := p.hc.Do(req)
	if err != nil {
		fmt.Fprintf(os.Stderr, "   profile %s: %v\n", path, err)
		return
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if s := strings.TrimSpace(string(b)); s != "" && s != "started" && s != "stopped" {
		fmt.Fprintf(os.Stderr, "   profile %s: %s\n", path, s)
	}
}

func (p *profiler) start(ctx context.Context, e *env, name string) {
	p.get(ctx, e, "/debug/cpuprofile/start", url.Values{"file": {p.file(name, "cpu.pprof")}})
}

func (p *profiler) stop(ctx context.Context, e *env) {
	p.get(ctx, e, "/debug/cpuprofile/stop", nil)
}

// mem writes the runtime's memory classes and the process's RSS as they
// are (no GC): what the Go heap, stacks and runtime metadata hold of it.
func (p *profiler) mem(ctx context.Context, e *env, name string) {
	p.get(ctx, e, "/debug/memfile", url.Values{"file": {p.file(name, "mem.txt")}})
}

// heap writes a heap profile after a GC (and prints the heap size).
func (p *profiler) heap(ctx context.Context, e *env, name string) {
	p.get(ctx, e, "/debug/heapfile", url.Values{"file": {p.file(name, "heap.pprof")}, "gc": {"1"}})
}
