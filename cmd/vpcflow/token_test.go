package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/vpcflow/vpcflow/api"
)

func TestTokenCLI(t *testing.T) {
	const tok = "cli-s3cret"
	url := newAPIWith(t, api.Options{Token: tok})
	hint := "Set $VPCFLOW_API_TOKEN (or the global --api-token) to the token `vpcflow serve` was started with.\n"

	// No token: 401, with the way out.
	r := runCLIEnv(t, map[string]string{"VPCFLOW_API": url}, "vpc", "list")
	if r.code != 1 || r.stderr != "error: missing or invalid bearer token\n"+hint || r.stdout != "" {
		t.Fatalf("without a token: %d %q %q", r.code, r.stdout, r.stderr)
	}
	// From the environment.
	env := map[string]string{"VPCFLOW_API": url, "VPCFLOW_API_TOKEN": tok}
	if r := runCLIEnv(t, env, "vpc", "create", "vpc-a"); r.code != 0 {
		t.Fatalf("token from the environment: %d %q", r.code, r.stderr)
	}
	// From the global flag, which wins over the environment.
	if r := runCLIEnv(t, map[string]string{"VPCFLOW_API": url}, "--api-token", tok, "vpc", "list"); r.code != 0 || !strings.Contains(r.stdout, "vpc-a") {
		t.Fatalf("token from --api-token: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := runCLIEnv(t, env, "--api-token=wrong", "vpc", "delete", "vpc-a"); r.code != 1 || !strings.HasPrefix(r.stderr, "error: missing or invalid bearer token\n") {
		t.Fatalf("--api-token overrides the environment: %d %q", r.code, r.stderr)
	}
	// Every client command sends it.
	for _, args := range [][]string{{"switches"}, {"drops"}, {"vpc", "show", "vpc-a"}, {"flows", "1"}} {
		r := runCLIEnv(t, env, args...)
		if strings.Contains(r.stderr, "bearer token") {
			t.Fatalf("%v did not send the token: %q", args, r.stderr)
		}
	}
	// Help never prints the token.
	for _, args := range [][]string{{"--help"}, {"vpc", "list", "--help"}, {"drops", "--help"}} {
		if r := runCLIEnv(t, env, args...); r.code != 0 || strings.Contains(r.stdout+r.stderr, tok) {
			t.Fatalf("%v: %d, shows the token: %q", args, r.code, r.stdout)
		}
	}
}

func TestAPIToken(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := file("good", "  file-token\n", 0o600)
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == tokenEnv {
				return v
			}
			return ""
		}
	}
	cases := []struct {
		name, file, env, want, err string
	}{
		{name: "none"},
		{name: "file", file: good, want: "file-token"},
		{name: "env", env: " env-token\n", want: "env-token"},
		{name: "file wins over env", file: good, env: "env-token", want: "file-token"},
		{name: "empty file", file: file("empty", "", 0o600), err: "is empty: put the API token in it"},
		{name: "blank file", file: file("blank", " \n\t\n", 0o600), err: "is empty"},
		{name: "missing file", file: filepath.Join(dir, "nope"), err: "--api-token-file: open"},
		{name: "blank env", env: "   ", err: "$VPCFLOW_API_TOKEN is set but holds only whitespace"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := apiToken(zap.NewNop(), c.file, env(c.env))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("got %q, %v; want error ~%q", got, err, c.err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("got %q, %v; want %q", got, err, c.want)
			}
		})
	}
	core, logs := observer.New(zap.WarnLevel)
	open := file("open", "tok", 0o644)
	if err := os.Chmod(open, 0o644); err != nil { // whatever the umask
		t.Fatal(err)
	}
	if _, err := apiToken(zap.New(core), open, env("")); err != nil {
		t.Fatal(err)
	}
	if logs.FilterMessage("the API token file can be read by other users; chmod 600 it").Len() != 1 {
		t.Fatalf("no warning for a world-readable token file: %v", logs.All())
	}
	if _, err := apiToken(zap.New(core), good, env("")); err != nil || logs.Len() != 1 {
		t.Fatalf("warning for a private token file: %v %v", err, logs.All())
	}
}

// lockedBuffer is a bytes.Buffer safe for the logger's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestServeWithToken runs `vpcflow serve --api-token-file` (no switch, no
// OVSDB) and talks to it with the CLI.
func TestServeWithToken(t *testing.T) {
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokFile, []byte("serve-s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// An empty token file is refused before anything starts.
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var errb bytes.Buffer
	code := runServe(context.Background(), []string{"--api-token-file", empty, "--data-dir", filepath.Join(dir, "data0")}, &bytes.Buffer{}, &errb, func(string) string { return "" })
	if code != 2 || !strings.Contains(errb.String(), "serve: --api-token-file "+empty+" is empty") {
		t.Fatalf("empty token file: exit %d %q", code, errb.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "data0")); !os.IsNotExist(err) {
		t.Fatalf("the store was opened despite the bad token: %v", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rest := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &lockedBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- runServe(ctx, []string{"--openflow", "127.0.0.1:0", "--listen", rest, "--data-dir", filepath.Join(dir, "data"), "--init",
			"--api-token-file", tokFile, "--log-level", "warn"}, &bytes.Buffer{}, logs,
			func(k string) string {
				if k == tokenEnv {
					return "env-token-loses"
				}
				return ""
			})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("serve exited %d: %s", code, logs.String())
			}
		case <-time.After(10 * time.Second):
			t.Error("serve did not stop")
		}
	})
	url := "http://" + rest
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url + "/healthz") // open without a token
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not come up: %v\n%s", err, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	if r := runCLIEnv(t, map[string]string{"VPCFLOW_API": url}, "vpc", "list"); r.code != 1 || !strings.Contains(r.stderr, "missing or invalid bearer token") {
		t.Fatalf("no token: %d %q", r.code, r.stderr)
	}
	if r := runCLIEnv(t, map[string]string{"VPCFLOW_API": url, tokenEnv: "env-token-loses"}, "vpc", "list"); r.code != 1 {
		t.Fatalf("the environment's token was used although --api-token-file was given: %d %q", r.code, r.stderr)
	}
	env := map[string]string{"VPCFLOW_API": url, tokenEnv: "serve-s3cret"}
	if r := runCLIEnv(t, env, "vpc", "create", "vpc-a"); r.code != 0 {
		t.Fatalf("with the token: %d %q", r.code, r.stderr)
	}
	if r := runCLIEnv(t, env, "vpc", "delete", "vpc-a", "--cascade"); r.code != 0 {
		t.Fatalf("with the token: %d %q", r.code, r.stderr)
	}
}
