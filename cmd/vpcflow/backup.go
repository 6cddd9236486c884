package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/topology"
)

// backupPath is the REST path of an online backup, served by serve itself
// next to the API.
const backupPath = "/v1/backup"

// tokenOK says whether r carries the API token, when there is one.
func tokenOK(tok string, r *http.Request) bool {
	if tok == "" {
		return true
	}
	scheme, got, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	want := sha256.Sum256([]byte(tok))
	have := sha256.Sum256([]byte(strings.TrimSpace(got)))
	return ok && strings.EqualFold(scheme, "Bearer") && subtle.ConstantTimeCompare(want[:], have[:]) == 1
}

// backupHandler streams a consistent copy of the store (GET, with the API
// token when there is one).
func backupHandler(log *zap.Logger, store *topology.Store, token func() string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeErr := func(code int, msg string) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
		}
		if !tokenOK(token(), r) {
			w.Header().Set("WWW-Authenticate", "Bearer")
			writeErr(http.StatusUnauthorized, "missing or invalid bearer token")
			return
		}
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			writeErr(http.StatusMethodNotAllowed, "method not allowed")
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="vpcflow.db"`)
		n, err := store.Backup(w)
		if err != nil {
			log.Error("backup failed", zap.Error(err), zap.Int64("bytes", n))
			return
		}
		log.Info("backup sent", zap.Int64("bytes", n), zap.String("remote", r.RemoteAddr))
	})
}

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
