package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// backupPath is the REST path of an online backup (api.Options.Backup).
const backupPath = "/v1/backup"

// backup is `vpcflow backup FILE`.
func (c *cli) backup(args []string) int {
	k := c.command("backup", "FILE",
		"Save a consistent copy of a running vpcflow's store to FILE (online: one read\n"+
			"transaction of the store, served at GET "+backupPath+"). The copy is checked\n"+
			"before it is kept. Restore it with `vpcflow restore`.",
		"vpcflow backup /var/backups/vpcflow-$(date +%F).db").withAPI()
	pos, code, ok := k.parse(args, "FILE")
	if !ok {
		return code
	}
	file := pos[0]
	ctx, cancel := context.WithTimeout(c.ctx, max(k.c.timeout, time.Minute))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(*k.api, "/")+backupPath, nil)
	if err != nil {
		return k.fail(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return k.fail(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return k.fail(fmt.Errorf("GET %s: %s: %s", backupPath, resp.Status, strings.TrimSpace(string(b))))
	}
	tmp := file + ".partial"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return k.fail(err)
	}
	n, err := io.Copy(f, resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = verifyStoreFile(c.ctx, tmp)
	}
	if err == nil {
		err = os.Rename(tmp, file)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return k.fail(fmt.Errorf("backup to %s: %w", file, err))
	}
	fmt.Fprintf(c.stdout, "saved %s (%d bytes)\n", file, n)
	return exitOK
}

func checkDirExists(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("data directory %s is not a directory", dir)
	}
	return nil
}

// copyFile copies src to dst (mode 0600), fsynced.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copying %s to %s: %w", src, dst, err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
