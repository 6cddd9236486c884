package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// Defaults < file < environment < command line, for scalars and for the
// repeatable --ovsdb (a later source replaces the list, it does not add).
func TestServeConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "vpcflow.yaml", `# comment
data-dir: /from/file
listen: 127.0.0.1:1111
log-level: warn
underlay-mtu: 9000
ovsdb:
  - unix:/file/a.sock
  - tcp:192.0.2.1:6640
`)
	cases := []struct {
		name   string
		env    map[string]string
		args   []string
		want   map[string]string // flag → value
		origin map[string]string // flag → origin
	}{
		{name: "file only", env: map[string]string{},
			want:   map[string]string{"data-dir": "/from/file", "listen": "127.0.0.1:1111", "log-level": "warn", "underlay-mtu": "9000", "ovsdb": "unix:/file/a.sock,tcp:192.0.2.1:6640", "openflow": ":6653"},
			origin: map[string]string{"data-dir": file + ":2", "ovsdb": file + ":6", "openflow": "default"}},
		{name: "env over file", env: map[string]string{"VPCFLOW_DATA_DIR": "/from/env", "VPCFLOW_OVSDB": "unix:/env.sock, tcp:192.0.2.2:6640", "VPCFLOW_UNDERLAY_MTU": "1600"},
			want:   map[string]string{"data-dir": "/from/env", "ovsdb": "unix:/env.sock,tcp:192.0.2.2:6640", "underlay-mtu": "1600", "listen": "127.0.0.1:1111"},
			origin: map[string]string{"data-dir": "$VPCFLOW_DATA_DIR", "ovsdb": "$VPCFLOW_OVSDB", "listen": file + ":3"}},
		{name: "flags over env and file", env: map[string]string{"VPCFLOW_DATA_DIR": "/from/env", "VPCFLOW_OVSDB": "unix:/env.sock"},
			args:   []string{"--data-dir", "/from/flag", "--ovsdb", "unix:/flag.sock", "--log-level=debug"},
			want:   map[string]string{"data-dir": "/from/flag", "ovsdb": "unix:/flag.sock", "log-level": "debug", "underlay-mtu": "9000"},
			origin: map[string]string{"data-dir": "command line", "ovsdb": "command line", "log-level": "command line"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.env[configEnv] = file
			lc, err := loadServeConfig(tc.args, envMap(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.want {
				if got := lc.fs.Lookup(k).Value.String(); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			for k, v := range tc.origin {
				if got := lc.originOf(k); got != v {
					t.Errorf("%s comes from %q, want %q", k, got, v)
				}
			}
			if lc.file != file {
				t.Errorf("file %q, want %q", lc.file, file)
			}
		})
	}
}

// Every mistake names the key and where it is; unknown keys are errors.
func TestServeConfigErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, content string
		env           map[string]string
		want          string
	}{
		{"unknown key", "data-dir: /x\ndata_dir: /y\n", nil, `:2: key "data_dir": unknown key (did you mean "data-dir"?)`},
		{"unknown key no suggestion", "listen: 127.0.0.1:1\nbogus: 1\n", nil, `:2: key "bogus": unknown key (the keys are the names of serve's flags`},
		{"config in the file", "config: /etc/other.yaml\n", nil, `:1: key "config": unknown key`},
		{"bad int", "underlay-mtu: lots\n", nil, `:1: key "underlay-mtu": invalid value "lots": want a whole number`},
		{"list for a scalar", "listen:\n  - a\n  - b\n", nil, `:1: key "listen": takes one value, not a list`},
		{"no value", "data-dir:\n", nil, `:1: key "data-dir": has no value`},
		{"mapping value", "data-dir:\n  a: b\n", nil, `:1: key "data-dir": want a value, got a mapping`},
		{"twice", "listen: a\nlisten: b\n", nil, `:2: key "listen": set twice (first on line 1)`},
		{"not a mapping", "- a\n- b\n", nil, `want a mapping of settings (key: value), got a list`},
		{"not yaml", "data-dir: [unclosed\n", nil, `configuration file`},
		{"bad env", "", map[string]string{"VPCFLOW_UNDERLAY_MTU": "x"}, `$VPCFLOW_UNDERLAY_MTU (--underlay-mtu): invalid value "x"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := writeFile(t, dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml", tc.content)
			env := map[string]string{configEnv: file}
			for k, v := range tc.env {
				env[k] = v
			}
			_, err := loadServeConfig(nil, envMap(env))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want …%s", err, tc.want)
			}
		})
	}

	// A file named explicitly must exist; the default one may be missing.
	if _, err := loadServeConfig([]string{"--config", filepath.Join(dir, "missing.yaml")}, envMap(nil)); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing --config file: %v", err)
	}
	if _, err := loadServeConfig(nil, envMap(map[string]string{configEnv: filepath.Join(dir, "missing.yaml")})); err == nil {
		t.Error("missing $VPCFLOW_CONFIG file accepted")
	}
	lc, err := loadServeConfig([]string{"--config", writeFile(t, dir, "comments.yaml", "# nothing set\n\n")}, envMap(nil))
	if err != nil || lc.opts.Listen != "127.0.0.1:8080" {
		t.Errorf("a file of comments: %v, listen %q", err, lc.opts.Listen)
	}
	if _, err := loadServeConfig([]string{"--bogus"}, envMap(nil)); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("unknown flag: %v", err)
	}
}

// Semantic checks (after parsing) name the key and its origin as well, and
// serve refuses to start with exit status 2.
func TestServeConfigResolveErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	cases := []struct {
		name, content string
		want          string
	}{
		{"mtu range", "underlay-mtu: 100\n", `:1: key "underlay-mtu": 100: want between 626 and 65535`},
		{"log level", "log-level: loud\n", `:1: key "log-level": want debug, info, warn or error, got "loud"`},
		{"log format", "log-format: xml\n", `:1: key "log-format": want console or json, got "xml"`},
		{"token file", "api-token-file: " + missing + "\n", `:1: key "api-token-file": --api-token-file: open ` + missing},
		{"tls triple", "openflow-tls-cert: " + missing + "\n", `:1: key "openflow-tls-cert": --openflow-tls-cert, --openflow-tls-key and --openflow-tls-ca go together`},
		{"advertise", "advertise: tcp:192.0.2.1:6653,ptcp:6653\n", `:1: key "advertise": invalid controller target "ptcp:6653": ptcp: is a passive`},
		{"advertise twice", "advertise: tcp:192.0.2.1:6653,tcp:192.0.2.1:6653\n", `:1: key "advertise": controller target "tcp:192.0.2.1:6653" given twice`},
		{"ssl ovsdb", "ovsdb: [ssl:127.0.0.1:6640]\n", `:1: key "ovsdb": --ovsdb ssl:127.0.0.1:6640: an ssl: endpoint needs`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := writeFile(t, dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml", tc.content)
			data := filepath.Join(t.TempDir(), "data")
			var errb bytes.Buffer
			code := runServe(context.Background(), []string{"--config", file, "--data-dir", data, "--openflow", "127.0.0.1:0", "--listen", "127.0.0.1:0"},
				&bytes.Buffer{}, &errb, envMap(nil))
			if code != exitUsage || !strings.Contains(errb.String(), file+tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, errb.String(), file+tc.want)
			}
			if _, err := os.Stat(data); !os.IsNotExist(err) {
				t.Errorf("the store was opened despite the bad setting: %v", err)
			}
			// config check says the same, exit 1.
			r := runCLIEnv(t, map[string]string{configEnv: file}, "config", "check")
			if r.code != exitError || !strings.Contains(r.stderr, file+tc.want) {
				t.Errorf("config check: exit %d, stderr %q; want 1 and %q", r.code, r.stderr, file+tc.want)
			}
		})
	}
}

// `vpcflow config check` prints every setting with its origin.
func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "vpcflow.yaml", "data-dir: /var/lib/vpcflow\novsdb:\n  - unix:/var/run/openvswitch/db.sock\n")
	r := runCLIEnv(t, map[string]string{"VPCFLOW_LOG_LEVEL": "debug"}, "config", "check", "--config", file, "--listen", "127.0.0.1:9999")
	if r.code != exitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	flat := strings.Join(strings.Fields(r.stdout), " ")
	for _, want := range []string{
		"data-dir /var/lib/vpcflow " + file + ":1",
		"ovsdb unix:/var/run/openvswitch/db.sock " + file + ":2",
		"log-level debug $VPCFLOW_LOG_LEVEL",
		"listen 127.0.0.1:9999 command line",
		"openflow :6653 default",
		"configuration OK: " + file,
	} {
		if !strings.Contains(flat, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	// The package's default configuration is valid.
	r = runCLIEnv(t, nil, "config", "check", "--config", "../../packaging/vpcflow.yaml")
	if r.code != exitOK {
		t.Errorf("packaging/vpcflow.yaml: exit %d: %s", r.code, r.stderr)
	}
	// Every serve flag but --config is a key of the file and has a variable.
	fs, _ := serveFlagSet()
	var help bytes.Buffer
	printServeUsage(&help)
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == "config" {
			return
		}
		content := f.Name + ": " + f.DefValue + "\n"
		if f.DefValue == "" {
			content = f.Name + ": x\n"
		}
		_, err := readConfigFile(writeFile(t, dir, "one.yaml", content))
		if err != nil {
			t.Errorf("key %s: %v", f.Name, err)
		}
		lc, err := loadServeConfig(nil, envMap(map[string]string{configEnv: filepath.Join(dir, "one.yaml"), envName(f.Name): "envvalue"}))
		if err == nil && lc.originOf(f.Name) != "$"+envName(f.Name) {
			t.Errorf("%s: origin %q, want $%s", f.Name, lc.originOf(f.Name), envName(f.Name))
		}
	})
	for _, s := range []string{"VPCFLOW_DATA_DIR", "SIGHUP", "config check", defaultConfigFile} {
		if !strings.Contains(help.String(), s) {
			t.Errorf("serve --help does not mention %s", s)
		}
	}
}
