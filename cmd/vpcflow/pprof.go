//go:build pprof

// The profiling build (`go build -tags pprof ./cmd/vpcflow`), for
// bench/vpcbench -profile and docs/performance.md, "Profiling the live
// controller"; the plain binary has none of this. With VPCFLOW_PPROF=ADDR
// it serves, on ADDR:
//
//	/debug/pprof/...                    net/http/pprof
//	/debug/cpuprofile/start?file=F      start a CPU profile into F
//	/debug/cpuprofile/stop              stop it
//	/debug/heapfile?file=F[&gc=1]       a heap profile into F (after a GC)
//	/debug/memfile?file=F               the runtime's memory classes into F
//	                                    (runtime/metrics, bytes: what the Go
//	                                    heap, stacks and runtime metadata
//	                                    hold, next to the process's RSS and
//	                                    its split by mapping from smaps)
//
// and with VPCFLOW_CPUPROFILE=F it profiles CPU from process start (the
// store load and first flow computation happen before anything listens)
// until /debug/cpuprofile/stop.

package main

import (
	"fmt"
	"net/http"
	_ "net/http/pprof" // registers /debug/pprof on http.DefaultServeMux
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
)

func init() {
	var mu sync.Mutex
	var cpu *os.File
	startCPU := func(file string) error {
		mu.Lock()
		defer mu.Unlock()
		if cpu != nil {
			return fmt.Errorf("a CPU profile is already running into %s", cpu.Name())
		}
		f, err := os.Create(file)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
		cpu = f
		return nil
	}
	stopCPU := func() error {
		mu.Lock()
		defer mu.Unlock()
		if cpu == nil {
			return nil
		}
		pprof.StopCPUProfile()
		err := cpu.Close()
		cpu = nil
		return err
	}
	if f := os.Getenv("VPCFLOW_CPUPROFILE"); f != "" {
		if err := startCPU(f); err != nil {
			fmt.Fprintf(os.Stderr, "VPCFLOW_CPUPROFILE: %v\n", err)
		}
	}
	addr := os.Getenv("VPCFLOW_PPROF")
	if addr == "" {
		return
	}
	reply := func(w http.ResponseWriter, err error, ok string) {
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, ok)
	}
	http.HandleFunc("/debug/cpuprofile/start", func(w http.ResponseWriter, r *http.Request) {
		reply(w, startCPU(r.URL.Query().Get("file")), "started")
	})
	http.HandleFunc("/debug/cpuprofile/stop", func(w http.ResponseWriter, r *http.Request) {
		reply(w, stopCPU(), "stopped")
	})
	http.HandleFunc("/debug/heapfile", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("gc") == "1" {
			runtime.GC()
		}
		f, err := os.Create(r.URL.Query().Get("file"))
		if err == nil {
			err = pprof.Lookup("heap").WriteTo(f, 0)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		reply(w, err, fmt.Sprintf("heap in use %.1f MiB", float64(ms.HeapInuse)/(1<<20)))
	})
	http.HandleFunc("/debug/memfile", func(w http.ResponseWriter, r *http.Request) {
		err := os.WriteFile(r.URL.Query().Get("file"), []byte(memClasses()), 0o644)
		reply(w, err, "")
	})
	go func() {
		if err := http.ListenAndServe(addr, nil); err != nil {
			fmt.Fprintf(os.Stderr, "VPCFLOW_PPROF %s: %v\n", addr, err)
		}
	}()
}

// memClasses is every /memory/classes/ metric and the live heap, one
// "NAME BYTES" line each, with VmRSS, RssAnon and RssFile from
// /proc/self/status.
func memClasses() string {
	var s []metrics.Sample
	for _, d := range metrics.All() {
		if strings.HasPrefix(d.Name, "/memory/classes/") || d.Name == "/gc/heap/live:bytes" {
			s = append(s, metrics.Sample{Name: d.Name})
		}
	}
	metrics.Read(s)
	sort.Slice(s, func(i, j int) bool { return s[i].Name < s[j].Name })
	var b strings.Builder
	for _, x := range s {
		if x.Value.Kind() == metrics.KindUint64 {
			fmt.Fprintf(&b, "%s %d\n", x.Name, x.Value.Uint64())
		}
	}
	if st, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(st), "\n") {
			f := strings.Fields(line)
			if len(f) == 3 && (f[0] == "VmRSS:" || f[0] == "RssAnon:" || f[0] == "RssFile:") {
				kb, _ := strconv.ParseUint(f[1], 10, 64)
				fmt.Fprintf(&b, "%s %d\n", strings.TrimSuffix(f[0], ":"), kb*1024)
			}
		}
	}
	b.WriteString(rssByMapping())
	return b.String()
}

// rssByMapping is the process's RSS by what is mapped, from
// /proc/self/smaps: one "rss/NAME BYTES" line per file (its base name:
// the binary, the store's bbolt file) and per kind of anonymous memory
// ("rss/anon", "rss/[stack]", ...), largest first. It splits RssFile
// into the binary's pages and the store's map.
func rssByMapping() string {
	raw, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return ""
	}
	by := map[string]uint64{}
	name := ""
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":"):
			// a mapping's header: range perms offset dev inode [path]
			name = "anon"
			if len(f) >= 6 {
				name = f[5]
				if !strings.HasPrefix(name, "[") {
					name = name[strings.LastIndex(name, "/")+1:]
				}
			}
		case len(f) == 3 && f[0] == "Rss:":
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			by[name] += kb * 1024
		}
	}
	names := make([]string, 0, len(by))
	for n := range by {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return by[names[i]] > by[names[j]] })
	var b strings.Builder
	for _, n := range names {
		if by[n] > 0 {
			fmt.Fprintf(&b, "rss/%s %d\n", n, by[n])
		}
	}
	return b.String()
}
