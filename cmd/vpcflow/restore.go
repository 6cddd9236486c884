package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/vpcflow/vpcflow/api"
	"github.com/vpcflow/vpcflow/topology"
)

// restorePath is the REST path of an online restore (api.Options.Restorer).
const restorePath = "/v1/restore"

// restore is `vpcflow restore FILE`: online through the running
// vpcflow's API, or, with --offline, in place of the store file.
func (c *cli) restore(args []string) int {
	k := c.command("restore", "FILE [--dry-run] | --offline FILE [--data-dir DIR] [--config FILE]",
		"Bring the fabric back to a backup (`vpcflow backup`).\n\n"+
			"Online (the default): the running vpcflow (--api) is sent the backup's objects\n"+
			"and applies only what differs, in one change: objects created since the backup\n"+
			"are deleted, changed ones put back, deleted ones re-created with their IDs, in\n"+
			"dependency order; each switch gets only the flows that differ, in one bundle,\n"+
			"and the flows of unchanged objects are not touched. --dry-run lists the changes\n"+
			"and makes none. A backup of an older store schema is upgraded first (on a copy).\n\n"+
			"--offline, with vpcflow serve stopped (the store is locked while it runs): the\n"+
			"backup is put in place of the store file of --data-dir (or the configuration's\n"+
			"data-dir); the store it replaces is kept as vpcflow.db.before-restore. Started\n"+
			"again, vpcflow reconciles every switch by diff. --data-dir or --config imply\n"+
			"--offline.",
		"vpcflow restore /var/backups/vpcflow-2026-12-01.db --dry-run\n"+
			"vpcflow restore /var/backups/vpcflow-2026-12-01.db\n"+
			"systemctl stop vpcflow && vpcflow restore --offline /var/backups/vpcflow-2026-12-01.db && systemctl start vpcflow").withAPI()
	offline := k.fs.Bool("offline", false, "replace the store file, with vpcflow serve stopped, instead of restoring through the API")
	dryRun := k.fs.Bool("dry-run", false, "online: list what would change, change nothing")
	dataDir := k.fs.String("data-dir", "", "--offline: directory of the store (default: data-dir of the configuration, else "+defaultDataDir+")")
	config := k.fs.String("config", "", "--offline: configuration file to take data-dir from (default as serve)")
	pos, code, ok := k.parse(args, "FILE")
	if !ok {
		return code
	}
	if *dataDir != "" || *config != "" {
		*offline = true
	}
	if *offline && *dryRun {
		return k.usageError("--dry-run is for an online restore, not with --offline")
	}
	if *offline {
		return c.restoreOffline(pos[0], *dataDir, *config)
	}
	return c.restoreOnline(k, pos[0], *dryRun)
}

// restoreOnline reads the backup (a copy of it: an older schema is
// upgraded on open) and posts its content to the running vpcflow.
func (c *cli) restoreOnline(k *command, src string, dryRun bool) int {
	if err := verifyStoreFile(c.ctx, src); err != nil {
		fmt.Fprintf(c.stderr, "error: backup %s: %v\n", src, err)
		return storeExitCode(err)
	}
	snap, err := readBackup(c.ctx, src)
	if err != nil {
		fmt.Fprintf(c.stderr, "error: backup %s: %v\n", src, err)
		return storeExitCode(err)
	}
	req := api.RestoreRequest{Records: make([]api.RestoreRecord, 0, len(snap.Records)), LastIDs: snap.LastIDs}
	for _, r := range snap.Records {
		req.Records = append(req.Records, api.RestoreRecord{Kind: r.Kind, Key: r.Key, Value: r.Value})
	}
	body, err := json.Marshal(req)
	if err != nil {
		return k.fail(err)
	}
	u := strings.TrimRight(*k.api, "/") + restorePath
	if dryRun {
		u += "?dry_run=true"
	}
	ctx, cancel := context.WithTimeout(c.ctx, k.c.timeout)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return k.fail(err)
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set(api.TimeoutHeader, (k.c.timeout * 9 / 10).String())
	if c.token != "" {
		hr.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		return k.fail(err)
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return k.fail(fmt.Errorf("POST %s: reading the answer: %w", restorePath, err))
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusAccepted {
		var eb struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(rb))
		if json.Unmarshal(rb, &eb) == nil && eb.Error != "" {
			msg = eb.Error
		}
		fmt.Fprintf(c.stderr, "error: POST %s: %s: %s\n", restorePath, resp.Status, msg)
		if resp.StatusCode == http.StatusUnauthorized {
			fmt.Fprintf(c.stderr, "Set $%s (or the global --api-token) to the token `vpcflow serve` was started with.\n", tokenEnv)
		}
		return exitError
	}
	var out api.RestoreResponse
	if err := json.Unmarshal(rb, &out); err != nil {
		return k.fail(fmt.Errorf("POST %s: %w", restorePath, err))
	}
	if *k.output == "json" {
		_, _ = c.stdout.Write(rb)
	} else {
		verb := "restored"
		if out.DryRun {
			verb = "would restore"
		}
		fmt.Fprintf(c.stdout, "%s %s: %d created, %d updated, %d deleted, %d unchanged", verb, src, out.Created, out.Updated, out.Deleted, out.Unchanged)
		if !out.DryRun {
			sw := "switches"
			if out.Switches == 1 {
				sw = "switch"
			}
			fmt.Fprintf(c.stdout, "; %d flow-mods to %d %s", out.FlowMods, out.Switches, sw)
		}
		fmt.Fprintln(c.stdout)
		if len(out.Changes) > 0 {
			tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "OP\tKIND\tKEY\tID")
			for _, ch := range out.Changes {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", ch.Op, ch.Kind, ch.Key, ch.ID)
			}
			_ = tw.Flush()
		}
	}
	if resp.StatusCode == http.StatusAccepted {
		fmt.Fprintf(c.stderr, "warning: %s\n", out.Message)
		return exitUnconfirmed
	}
	return exitOK
}

// readBackup loads a backup file's content from a private copy of it (so
// that an older schema can be upgraded without touching the backup).
func readBackup(ctx context.Context, src string) (topology.Snapshot, error) {
	tmp, err := os.MkdirTemp("", "vpcflow-restore-")
	if err != nil {
		return topology.Snapshot{}, err
	}
	defer os.RemoveAll(tmp)
	if err := copyFile(src, filepath.Join(tmp, topology.DBFileName)); err != nil {
		return topology.Snapshot{}, err
	}
	b, err := topology.OpenBolt(ctx, tmp, nil, topology.Existing())
	if err != nil {
		return topology.Snapshot{}, err
	}
	defer b.Close()
	return b.Load(ctx)
}

// restoreOffline puts a backup in place of the store file.
func (c *cli) restoreOffline(src, dataDir, config string) int {
	dir, code := c.resolveDataDir(dataDir, config)
	if code != exitOK {
		return code
	}
	if err := verifyStoreFile(c.ctx, src); err != nil {
		fmt.Fprintf(c.stderr, "error: backup %s: %v\n", src, err)
		return storeExitCode(err)
	}
	if err := checkDirExists(dir); err != nil {
		fmt.Fprintf(c.stderr, "error: %v\n", err)
		return exitNoStore
	}
	dst := filepath.Join(dir, topology.DBFileName)
	// The restored file gets the owner of the store it replaces (else of
	// the directory): root restoring vpcflow's store must not leave a
	// file vpcflow cannot open.
	owner, err := os.Stat(dir)
	if err != nil {
		fmt.Fprintf(c.stderr, "error: %v\n", err)
		return exitNoStore
	}
	// Refuse while a vpcflow holds the store: opening it would wait for
	// the lock and time out.
	if fi, err := os.Stat(dst); err == nil {
		owner = fi
		st, err := topology.Open(c.ctx, dir, nil, topology.Existing())
		if err != nil && !errors.Is(err, topology.ErrCorrupt) {
			fmt.Fprintf(c.stderr, "error: %v\n", err)
			if strings.Contains(err.Error(), "is locked") {
				fmt.Fprintf(c.stderr, "vpcflow serve is running: restore online (without --offline), or stop it first.\n")
			}
			return storeExitCode(err)
		}
		if st != nil {
			_ = st.Close()
		}
		if err := os.Rename(dst, dst+".before-restore"); err != nil {
			fmt.Fprintf(c.stderr, "error: %v\n", err)
			return exitError
		}
	}
	// The write-ahead log goes with the file it follows: replayed onto the
	// backup, its changes would undo the restore (an open refuses it).
	wal := filepath.Join(dir, topology.WALFileName)
	if err := os.Rename(wal, wal+".before-restore"); err != nil && !errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(c.stderr, "error: %v\n", err)
		return exitError
	}
	if err := copyFile(src, dst); err != nil {
		fmt.Fprintf(c.stderr, "error: %v\n", err)
		return exitError
	}
	if st, ok := owner.Sys().(*syscall.Stat_t); ok && os.Geteuid() == 0 {
		if err := os.Chown(dst, int(st.Uid), int(st.Gid)); err != nil {
			fmt.Fprintf(c.stderr, "error: %v\n", err)
			return exitError
		}
	}
	fmt.Fprintf(c.stdout, "restored %s from %s (the previous store is %s.before-restore)\n", dst, src, dst)
	return exitOK
}
