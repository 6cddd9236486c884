package main

import (
	"strings"
	"testing"

	"github.com/vpcflow/vpcflow/api"
)

// The global flags work after the command too (and win there), are listed
// in every API command's --help, and --timeout must be above 0.
func TestGlobalFlagsAfterCommand(t *testing.T) {
	url := newAPIWith(t, api.Options{Token: "s3cret"})
	env := map[string]string{} // no $VPCFLOW_API, no token in the environment

	// --api and --api-token after the command.
	r := runCLIEnv(t, env, "vpc", "create", "vpc-a", "--api", url, "--api-token", "s3cret")
	if r.code != 0 {
		t.Fatalf("vpc create with flags after it: %d %s", r.code, r.stderr)
	}
	r = runCLIEnv(t, env, "--api-token", "wrong", "vpc", "list", "--api", url, "--api-token", "s3cret", "--timeout", "5s")
	if r.code != 0 || !strings.Contains(r.stdout, "vpc-a") {
		t.Errorf("the flag after the command must win: %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = runCLIEnv(t, env, "--api-token", "s3cret", "vpc", "list", "--api", url)
	if r.code != 0 {
		t.Errorf("global token before the command: %d %q", r.code, r.stderr)
	}
	r = runCLIEnv(t, env, "vpc", "list", "--api", url)
	if r.code != 1 || !strings.Contains(r.stderr, "missing or invalid bearer token") {
		t.Errorf("no token: %d %q", r.code, r.stderr)
	}
	// --timeout after the command is the one used: 1ns cannot succeed.
	r = runCLIEnv(t, env, "vpc", "list", "--api", url, "--api-token", "s3cret", "--timeout", "1ns")
	if r.code != 1 || !strings.Contains(r.stderr, "Timeout") && !strings.Contains(r.stderr, "deadline") {
		t.Errorf("--timeout 1ns after the command: %d %q", r.code, r.stderr)
	}
	// Zero and negative timeouts are refused, before or after.
	for _, args := range [][]string{
		{"vpc", "list", "--api", url, "--timeout", "0"},
		{"vpc", "list", "--api", url, "--timeout=-5s"},
		{"--timeout", "0s", "vpc", "list", "--api", url},
		{"--timeout=-1m", "switches"},
		{"bridge", "setup", "br0", "--controller", "tcp:127.0.0.1:6653", "--timeout", "0"},
	} {
		r := runCLIEnv(t, env, args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, "want a duration above 0") {
			t.Errorf("%v: exit %d %q; want 2 and a message", args, r.code, r.stderr)
		}
	}
	// Every API command lists the global flags in its --help, and the help
	// never shows the token.
	env["VPCFLOW_API_TOKEN"] = "do-not-print-me"
	for _, cmd := range [][]string{{"vpc", "list"}, {"vpc", "create"}, {"host", "add"}, {"host", "update"}, {"subnet", "move"}, {"chassis", "delete"},
		{"switches"}, {"flows"}, {"drops"}, {"vswitch", "show"}} {
		r := runCLIEnv(t, env, append(cmd, "--help")...)
		for _, f := range []string{"-api string", "-api-token string", "-timeout duration"} {
			if !strings.Contains(r.stdout, f) {
				t.Errorf("%v --help lacks %s:\n%s", cmd, f, r.stdout)
			}
		}
		if strings.Contains(r.stdout, "do-not-print-me") {
			t.Errorf("%v --help shows the token", cmd)
		}
	}
}
