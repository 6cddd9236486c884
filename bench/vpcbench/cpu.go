package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// loadCPU is the CPU time each process spent during a bulk load: on a
// two-core machine the controller, ovs-vswitchd and the client share the
// cores, and what each took says where a load's time goes.
type loadCPU struct {
	Loader   time.Duration // vpcflow, or the ovs-ofctl processes
	Vswitchd time.Duration // the ovs-vswitchd the flows went into
	Client   time.Duration // the bench's own REST client (vpcflow's load only)
}

// cpuMeter reads the CPU time of a running process (its threads' run
// time, /proc/PID/task/*/schedstat, in ns: the ticks of /proc/PID/stat are
// 10 ms, the size of a whole 1,000-host load's share), of the bench
// itself and of its children that ended (getrusage).
type cpuMeter struct {
	pids            []int
	start           []time.Duration
	self, children0 time.Duration
}

func startCPU(pids ...int) *cpuMeter {
	m := &cpuMeter{pids: pids, start: make([]time.Duration, len(pids))}
	for i, p := range pids {
		m.start[i] = runTime(p)
	}
	m.self, m.children0 = rusage(syscall.RUSAGE_SELF), rusage(syscall.RUSAGE_CHILDREN)
	return m
}

// stop returns the CPU time each pid spent since startCPU, the bench's
// own, and that of the children that ended meanwhile.
func (m *cpuMeter) stop() (pids []time.Duration, self, children time.Duration) {
	pids = make([]time.Duration, len(m.pids))
	for i, p := range m.pids {
		pids[i] = runTime(p) - m.start[i]
	}
	return pids, rusage(syscall.RUSAGE_SELF) - m.self, rusage(syscall.RUSAGE_CHILDREN) - m.children0
}

// runTime is the CPU time pid's threads have run (0 if it cannot be read).
func runTime(pid int) time.Duration {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil {
		return 0
	}
	var sum time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue // a thread that ended meanwhile
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			continue
		}
		ns, _ := strconv.ParseInt(f[0], 10, 64)
		sum += time.Duration(ns)
	}
	return sum
}

func rusage(who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
