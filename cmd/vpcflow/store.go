package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/topology"
)

// Exit codes of serve, init and store check about the store.
const (
	exitNoStore  = 3 // no store where one was expected (never initialised, mistyped --data-dir)
	exitBadStore = 4 // the store's file is damaged, foreign or from a newer vpcflow
)

// storeExitCode maps a store error to its exit code.
func storeExitCode(err error) int {
	switch {
	case errors.Is(err, topology.ErrNoStore):
		return exitNoStore
	case errors.Is(err, topology.ErrCorrupt), errors.Is(err, topology.ErrVersion):
		return exitBadStore
	}
	return exitError
}

// verifyInternal is the hidden `vpcflow store` verb that verifies a store
// in-process (and may crash on a damaged one): verifyStoreChild runs it.
const verifyInternal = "verify-in-this-process"

// verifyInProcess is `vpcflow store verify-in-this-process FILE`.
func (c *cli) verifyInProcess(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(c.stderr, "error: want the store file")
		return exitUsage
	}
	if err := topology.Verify(args[0]); err != nil {
		fmt.Fprintf(c.stderr, "error: %v\n", err)
		return storeExitCode(err)
	}
	return exitOK
}

// verifyStoreChild checks the store file in a child process (`vpcflow
// store verify-in-this-process`): bbolt panics on some damage in a goroutine of its own,
// which would end vpcflow serve itself. When this is not the vpcflow
// binary (a test binary), it checks in-process.
func verifyStoreChild(ctx context.Context, dataDir string) error {
	return verifyStoreFile(ctx, filepath.Join(dataDir, topology.DBFileName))
}

// verifyStoreFile is verifyStoreChild for any store file (a backup).
func verifyStoreFile(ctx context.Context, path string) error {
	exe, err := os.Executable()
	if err != nil || strings.HasSuffix(exe, ".test") {
		return topology.Verify(path)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "store", verifyInternal, path)
	cmd.Env = append(os.Environ(), configEnv+"=/dev/null")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if err == nil {
		return nil
	}
	msg := strings.TrimSpace(out.String())
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		switch ee.ExitCode() {
		case exitNoStore:
			return fmt.Errorf("%w: %s", topology.ErrNoStore, strings.TrimPrefix(firstLine(msg), "error: "))
		case exitBadStore:
			return fmt.Errorf("%w: %s", topology.ErrCorrupt, strings.TrimPrefix(firstLine(msg), "error: "))
		case exitError:
			return fmt.Errorf("checking the store: %s", strings.TrimPrefix(firstLine(msg), "error: "))
		}
	}
	// bbolt crashed the check: the file is damaged.
	return fmt.Errorf("%w: %s: bbolt failed reading it: %s", topology.ErrCorrupt, path, panicLine(msg))
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// panicLine picks "panic: …" or "fatal error: …" out of a crash's output.
func panicLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "panic: ") || strings.HasPrefix(l, "fatal error: ") || strings.HasPrefix(l, "unexpected fault") {
			return l
		}
	}
	return firstLine(s)
}

// openServeStore opens serve's store: an existing one (checked first in a child
// process), or with init one it creates when missing.
func openServeStore(ctx context.Context, log *zap.Logger, dataDir string, init bool) (*topology.Store, error) {
	_, statErr := os.Stat(filepath.Join(dataDir, topology.DBFileName))
	if statErr == nil {
		if err := verifyStoreChild(ctx, dataDir); err != nil {
			return nil, err
		}
	}
	if init {
		if statErr != nil {
			log.Info("creating a new, empty store (--init)", zap.String("data_dir", dataDir))
		}
		return topology.Open(ctx, dataDir, log.Named("store"))
	}
	return topology.Open(ctx, dataDir, log.Named("store"), topology.Existing())
}

// storeCheck is `vpcflow store check`.
func (c *cli) storeCheck(args []string) int {
	k := c.command("store check", "[--data-dir DIR] [--config FILE]",
		"Check the store without changing it: the file is whole (not truncated), every\n"+
			"bbolt page is consistent, it is a vpcflow store of a schema this vpcflow\n"+
			"reads, and its write-ahead log (vpcflow.db-wal) follows it. vpcflow serve runs\n"+
			"this (in a process of its own) before opening its store. Exit status 3: no\n"+
			"store there; 4: damaged or foreign; 1: other errors (locked by a running\n"+
			"vpcflow…).",
		"vpcflow store check --data-dir /var/lib/vpcflow")
	dataDir := k.fs.String("data-dir", "", "directory of the store (default: data-dir of the configuration, else "+defaultDataDir+")")
	config := k.fs.String("config", "", "configuration file to take data-dir from (default as serve)")
	if _, code, ok := k.parse(args); !ok {
		return code
	}
	dir, code := c.resolveDataDir(*dataDir, *config)
	if code != exitOK {
		return code
	}
	path := filepath.Join(dir, topology.DBFileName)
	if err := topology.CheckFile(path); err != nil { // a missing file: no child needed
		fmt.Fprintf(c.stderr, "error: %v\n", err)
		return storeExitCode(err)
	}
	if err := verifyStoreChild(c.ctx, dir); err != nil {
		fmt.Fprintf(c.stderr, "error: %v\n", err)
		return storeExitCode(err)
	}
	fi, _ := os.Stat(path)
	// bbolt grows the file ahead of its pages: say both.
	used, _ := topology.InUse(path)
	fmt.Fprintf(c.stdout, "store %s: ok (%d bytes in use, file %d bytes)\n", path, used, fi.Size())
	return exitOK
}

// resolveDataDir is --data-dir if given, else the data-dir serve would use
// (configuration file, $VPCFLOW_DATA_DIR, default).
func (c *cli) resolveDataDir(flagDir, config string) (string, int) {
	if flagDir != "" {
		return flagDir, exitOK
	}
	var args []string
	if config != "" {
		args = []string{"--config", config}
	}
	lc, err := loadServeConfig(args, c.getenv)
	if err != nil {
		fmt.Fprintf(c.stderr, "error: %v\n", err)
		return "", exitUsage
	}
	return lc.opts.DataDir, exitOK
}

// initStore is `vpcflow init`.
func (c *cli) initStore(args []string) int {
	k := c.command("init", "[--data-dir DIR] [--config FILE]",
		"Create an empty store (the directory too, mode 0700, if missing). vpcflow serve\n"+
			"never creates a store by itself (unless given --init): a missing or mistyped\n"+
			"--data-dir must not look like an empty fabric. An existing store is checked\n"+
			"and left as it is (exit 0), or upgraded if its schema is older (a copy of it\n"+
			"kept as vpcflow.db.schemaN.bak first).",
		"vpcflow init --data-dir /var/lib/vpcflow\nvpcflow init --config /etc/vpcflow/vpcflow.yaml")
	dataDir := k.fs.String("data-dir", "", "directory of the store (default: data-dir of the configuration, else "+defaultDataDir+")")
	config := k.fs.String("config", "", "configuration file to take data-dir from (default as serve)")
	if _, code, ok := k.parse(args); !ok {
		return code
	}
	dir, code := c.resolveDataDir(*dataDir, *config)
	if code != exitOK {
		return code
	}
	path := filepath.Join(dir, topology.DBFileName)
	existed := false
	if _, err := os.Stat(path); err == nil {
		existed = true
		if err := verifyStoreChild(c.ctx, dir); err != nil {
			fmt.Fprintf(c.stderr, "error: %v\n", err)
			return storeExitCode(err)
		}
	}
	baks, _ := filepath.Glob(path + ".schema*.bak")
	st, err := topology.Open(c.ctx, dir, nil)
	if err != nil {
		fmt.Fprintf(c.stderr, "error: %v\n", err)
		return storeExitCode(err)
	}
	// An older schema was upgraded on open, after a copy of the store
	// was taken (a backup file that was not there before).
	upgraded := ""
	if after, _ := filepath.Glob(path + ".schema*.bak"); len(after) > len(baks) {
		for _, b := range after {
			if !slices.Contains(baks, b) {
				upgraded = b
			}
		}
	}
	var nv, nw, nh, ns int
	st.Read(func(s *topology.State) { nv, nw, nh, ns = s.Counts() })
	if err := st.Close(); err != nil {
		fmt.Fprintf(c.stderr, "error: %v\n", err)
		return exitError
	}
	if existed && upgraded != "" {
		fmt.Fprintf(c.stdout, "store %s exists already (%d VPCs, %d vSwitches, %d hosts, %d subnets); upgraded to schema %s (the store as it was: %s)\n",
			path, nv, nw, nh, ns, topology.SchemaVersion, upgraded)
		return exitOK
	}
	if existed {
		fmt.Fprintf(c.stdout, "store %s exists already (%d VPCs, %d vSwitches, %d hosts, %d subnets); left as it is\n", path, nv, nw, nh, ns)
		return exitOK
	}
	fmt.Fprintf(c.stdout, "created an empty store %s (schema %s)\n", path, topology.SchemaVersion)
	return exitOK
}
