package netlab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ---- owner record ----

// writeOwner records "<pid> <starttime>" of this process in the lab dir, so
// that SweepStale can tell a dead lab from a live one (the start time guards
// against PID reuse).
func writeOwner(dir, name string) error {
	st, err := readProcStat(os.Getpid())
	if err != nil {
		return fmt.Errorf("read own start time: %w", err)
	}
	content := fmt.Sprintf("%d %d\n%s\n", os.Getpid(), st.startTime, name)
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(content), 0o644); err != nil {
		return fmt.Errorf("write lab owner: %w", err)
	}
	return nil
}

// ownerAlive reads a lab dir's owner record. ok is false if there is none.
func ownerAlive(dir string) (alive, ok bool) {
	b, err := os.ReadFile(filepath.Join(dir, ownerFile))
	if err != nil {
		return false, false
	}
	first, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(first)
	if len(f) != 2 {
		return false, false
	}
	pid, err1 := strconv.Atoi(f[0])
	start, err2 := strconv.ParseUint(f[1], 10, 64)
	if err1 != nil || err2 != nil {
		return false, false
	}
	st, err := readProcStat(pid)
	if err != nil {
		return false, true
	}
	return st.startTime == start && st.state != "Z", true
}

// ---- stale lab sweeper ----

// SweepStale removes what dead labs left behind: for every namespace named
// "vfXXXXXX-*" whose lab dir (BaseDir()/vfXXXXXX) records an owner process
// that no longer exists, it kills the processes inside the lab's
// namespaces, deletes them and removes the lab dir (unless it was kept with
// VPCFLOW_KEEP_LAB). Namespaces without an owner record are never touched,
// nor are labs whose owner is alive. It returns the lab ids it swept.
func SweepStale(logf func(format string, args ...any)) ([]string, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	all, err := listNetns()
	if err != nil {
		return nil, err
	}
	byLab := map[string][]string{}
	for _, ns := range all {
		if m := labNSRe.FindStringSubmatch(ns); m != nil {
			byLab[m[1]] = append(byLab[m[1]], ns)
		}
	}
	// Lab dirs without namespaces (owner died between netns deletion and
	// rm -rf) are swept too.
	base := BaseDir()
	if entries, err := os.ReadDir(base); err == nil {
		for _, e := range entries {
			if labIDRe.MatchString(e.Name()) {
				if _, seen := byLab[e.Name()]; !seen {
					byLab[e.Name()] = nil
				}
			}
		}
	}
	var swept []string
	var errs []error
	for id, names := range byLab {
		dir := filepath.Join(base, id)
		alive, ok := ownerAlive(dir)
		if !ok || alive {
			continue
		}
		_, keepErr := os.Stat(filepath.Join(dir, keepFile))
		kept := keepErr == nil
		if kept && len(names) == 0 {
			continue // a kept lab dir: left for a human to read
		}
		logf("netlab: sweeping stale lab %s (owner dead): namespaces %v", id, names)
		if err := killNetnsProcs(names, logf); err != nil {
			errs = append(errs, fmt.Errorf("stale lab %s: %w", id, err))
		}
		for _, ns := range names {
			if err := deleteNetns(ns); err != nil {
				errs = append(errs, fmt.Errorf("stale lab %s: %w", id, err))
			}
		}
		if !kept {
			if err := os.RemoveAll(dir); err != nil {
				errs = append(errs, fmt.Errorf("stale lab %s: %w", id, err))
			}
		}
		swept = append(swept, id)
	}
	return swept, errors.Join(errs...)
}

func deleteNetns(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", "netns", "delete", name).CombinedOutput()
	if err != nil {
		if _, statErr := os.Stat(netnsPath(name)); os.IsNotExist(statErr) {
			return nil
		}
		return fmt.Errorf("ip netns delete %s: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// ---- reaper ----

// reaperScript runs in its own session with stdin a pipe whose only writer
// is the lab's owner. "done" means the owner cleaned up; EOF without it
// means the owner died, so the reaper does the cleanup: SIGKILL every
// process in the lab's namespaces, delete them, remove the dir.
const reaperScript = `trap '' INT TERM HUP
IFS= read -r line
[ "$line" = done ] && exit 0
echo "owner of lab $1 is gone: cleaning up"
nss=$(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$1-")
for ns in $nss; do
	for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
done
for ns in $nss; do ip netns delete "$ns"; done
[ -e "$2/keep" ] || rm -rf "$2"
`

type reaper struct {
	w    *os.File
	cmd  *exec.Cmd
	done chan struct{}
}

func startReaper(id, dir string) (*reaper, error) {
	r, w, err := os.Pipe() // O_CLOEXEC: no other child inherits the write end
	if err != nil {
		return nil, fmt.Errorf("reaper pipe: %w", err)
	}
	defer r.Close()
	logf, err := os.OpenFile(filepath.Join(dir, "reaper.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("reaper log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command("/bin/sh", "-c", reaperScript, "netlab-reaper-"+id, id, dir)
	cmd.Stdin = r
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, fmt.Errorf("start reaper: %w", err)
	}
	rp := &reaper{w: w, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(rp.done)
	}()
	return rp, nil
}

// dismiss tells the reaper that the owner cleaned up, and waits for it.
func (r *reaper) dismiss() error {
	_, werr := r.w.Write([]byte("done\n"))
	cerr := r.w.Close()
	select {
	case <-r.done:
	case <-time.After(stopGrace):
		return fmt.Errorf("reaper pid %d did not exit", r.cmd.Process.Pid)
	}
	if werr != nil {
		return fmt.Errorf("dismiss reaper: %w", werr)
	}
	if cerr != nil {
		return fmt.Errorf("dismiss reaper: %w", cerr)
	}
	return nil
}

// ---- registry of open labs and the signal handler ----

var (
	registryMu   sync.Mutex
	registry     = map[*Lab]struct{}{}
	shuttingDown bool // a signal arrived: no new labs
	sigOnce      sync.Once
)

func register(l *Lab) error {
	registryMu.Lock()
	defer registryMu.Unlock()
	if shuttingDown {
		return errors.New("the process is shutting down on a signal")
	}
	registry[l] = struct{}{}
	return nil
}

func unregister(l *Lab) {
	registryMu.Lock()
	delete(registry, l)
	registryMu.Unlock()
}

// CloseAll closes every lab this process has open and returns the errors.
func CloseAll() error {
	registryMu.Lock()
	labs := make([]*Lab, 0, len(registry))
	for l := range registry {
		labs = append(labs, l)
	}
	registryMu.Unlock()
	var errs []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, l := range labs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.Close(); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// InstallSignalHandler makes SIGINT and SIGTERM close every open lab of this
// process and then re-deliver the signal with its default action (so the
// process still dies of it). Idempotent. New calls it; tools using
// NewStandalone may call it or handle signals themselves and call Close.
func InstallSignalHandler() {
	sigOnce.Do(func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
		go func() {
			sig := <-ch
			fmt.Fprintf(os.Stderr, "netlab: caught %v: closing open labs\n", sig)
			registryMu.Lock()
			shuttingDown = true
			for l := range registry {
				l.setLogStderr() // the test may be over: no t.Logf
			}
			registryMu.Unlock()
			done := make(chan error, 1)
			go func() { done <- CloseAll() }()
			select {
			case err := <-done:
				if err != nil {
					fmt.Fprintf(os.Stderr, "netlab: %v\n", err)
				}
			case <-time.After(30 * time.Second):
				fmt.Fprintln(os.Stderr, "netlab: cleanup timed out; the labs' reapers finish it")
			}
			signal.Reset(syscall.SIGINT, syscall.SIGTERM)
			_ = syscall.Kill(os.Getpid(), sig.(syscall.Signal))
			// Still here: the signal was ignored when we started (a
			// background job of a non-interactive shell). Exit anyway,
			// the labs are gone.
			time.Sleep(100 * time.Millisecond)
			os.Exit(128 + int(sig.(syscall.Signal)))
		}()
	})
}

// Main is a TestMain helper: it installs the signal handler, sweeps stale
// labs, runs the tests and closes any lab still open before exiting.
//
//	func TestMain(m *testing.M) { netlab.Main(m) }
func Main(m *testing.M) {
	InstallSignalHandler()
	if Available() == nil {
		sweepOnce.Do(func() {
			if _, err := SweepStale(nil); err != nil {
				fmt.Fprintf(os.Stderr, "netlab: sweeping stale labs: %v\n", err)
			}
		})
	}
	code := m.Run()
	if err := CloseAll(); err != nil {
		fmt.Fprintf(os.Stderr, "netlab: %v\n", err)
	}
	os.Exit(code)
}
