package main

// serve's settings: every flag of `vpcflow serve` can also be set in a
// YAML configuration file (key = flag name) and by an environment
// variable (VPCFLOW_ + the flag name in capitals, "-" as "_"). The command
// line wins over the environment, which wins over the file.

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"github.com/vpcflow/vpcflow/aliyunapi"
	"github.com/vpcflow/vpcflow/ovsdb/endpoint"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"gopkg.in/yaml.v3"

	"github.com/vpcflow/vpcflow/controller"
	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/ha"
)

// defaultConfigFile is read when neither --config nor $VPCFLOW_CONFIG names
// a file; it may be missing.
const defaultConfigFile = "/etc/vpcflow/vpcflow.yaml"

// configEnv names the configuration file, like --config.
const configEnv = "VPCFLOW_CONFIG"

// maxRequestTimeout bounds --request-timeout: the REST server gives a
// request 2 minutes to take its answer.
const maxRequestTimeout = 110 * time.Second

// defaultDataDir is where the store is unless data-dir says otherwise.
const defaultDataDir = "/var/lib/vpcflow"

// serveOptions are the settings of `vpcflow serve`.
type serveOptions struct {
	OpenFlow     string
	Listen       string
	DataDir      string
	LogLevel     string
	LogFormat    string
	APITokenFile string
	OVSDB        stringList
	UnderlayMTU  int
	Advertise    string
	OFTLS        *tlsFlags
	OVSDBTLS     *tlsFlags
	Config       string
	Init         bool

	MaxHandshakes          int
	MaxHandshakesPerSource int
	HandshakeTimeout       time.Duration
	ListenMaxConns         int
	TLSReloadInterval      time.Duration
	AllowedHosts           stringList
	RequestTimeout         time.Duration
	PushTimeout            time.Duration
	DriftInterval          time.Duration
	DumpSliceFlows         int
	AllowFlush             bool
	OVSDBWait              time.Duration

	AliyunListen    string
	AliyunKeysFile  string
	AliyunServiceIP string

	Store       string
	StoreTLS    *tlsFlags
	ReplicaName string
	ElectionTTL time.Duration

	MetadataListen   string
	MetadataNetns    string
	MetadataHardened bool
	RegionID         string
}

// stringList is a repeatable string flag. Values from a later source (the
// environment after the file, the command line after both) replace the
// earlier ones instead of adding to them: see startSource.
type stringList struct {
	vals    []string
	replace bool
}

func (s *stringList) String() string {
	if s == nil {
		return ""
	}
	return strings.Join(s.vals, ",")
}

func (s *stringList) Set(v string) error {
	if s.replace {
		s.vals, s.replace = nil, false
	}
	s.vals = append(s.vals, v)
	return nil
}

// startSource makes the next Set replace the list.
func (s *stringList) startSource() { s.replace = true }

// serveFlagSet defines the flags of serve on a new FlagSet.
func serveFlagSet() (*flag.FlagSet, *serveOptions) {
	o := &serveOptions{}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.Config, "config", defaultConfigFile, "YAML configuration file (also $"+configEnv+"); keys are these flags' names, e.g. data-dir: /var/lib/vpcflow. A missing default file is no error")
	fs.StringVar(&o.OpenFlow, "openflow", ":6653", "OpenFlow listen address (switches connect here)")
	fs.StringVar(&o.Listen, "listen", "127.0.0.1:8080", "REST API listen address")
	fs.StringVar(&o.DataDir, "data-dir", defaultDataDir, "directory of the on-disk store; it must hold one (vpcflow init) unless --init is given")
	fs.BoolVar(&o.Init, "init", false, "create an empty store in --data-dir if there is none (without it a missing store is an error, exit status 3)")
	fs.StringVar(&o.LogLevel, "log-level", "info", "log level: debug, info, warn, error (SIGHUP applies a new one)")
	fs.StringVar(&o.LogFormat, "log-format", "console", "log format: console or json (under systemd both go to the journal with their priority)")
	fs.StringVar(&o.APITokenFile, "api-token-file", "", "file holding the bearer token the REST API requires (default: $"+tokenEnv+"; none: no access control; SIGHUP re-reads it)")
	fs.Var(&o.OVSDB, "ovsdb", "OVSDB server to learn ports from, unix:PATH, tcp:HOST:PORT or ssl:HOST:PORT (repeatable; a list in the file, comma-separated in $VPCFLOW_OVSDB)")
	fs.IntVar(&o.UnderlayMTU, "underlay-mtu", 1500, "MTU of the network between chassis; VM packets over this minus 50 (VXLAN) are answered with ICMP fragmentation-needed")
	fs.StringVar(&o.Advertise, "advertise", "", "OpenFlow target that chassis bridges are pointed at, e.g. tcp:192.168.100.254:6653, or every replica's, comma-separated (needed for chassis that name none)")
	fs.IntVar(&o.MaxHandshakes, "openflow-max-handshakes", 0, "most OpenFlow connections in their handshake at once; more are closed at once (0: a quarter of the open-file limit, at most 256)")
	fs.IntVar(&o.MaxHandshakesPerSource, "openflow-max-handshakes-per-source", 32, "most OpenFlow connections in their handshake from one address")
	fs.DurationVar(&o.HandshakeTimeout, "openflow-handshake-timeout", 10*time.Second, "time a switch has for HELLO and FEATURES (and TLS) before it is dropped")
	fs.IntVar(&o.ListenMaxConns, "listen-max-conns", 0, "most open REST connections; at the cap the longest-idle one is closed (0: a quarter of the open-file limit, at most 512)")
	fs.Var(&o.AllowedHosts, "allowed-hosts", "names (and addresses) the REST API answers to in the Host header (and accepts in Origin), against DNS rebinding; \"*\" for any (repeatable; a list in the file, comma-separated in $VPCFLOW_ALLOWED_HOSTS; default: localhost, 127.0.0.1, ::1, the machine's host name and --listen's host; the address a request came in on is always accepted)")
	fs.DurationVar(&o.RequestTimeout, "request-timeout", 20*time.Second, "longest a REST request may take, waiting for switches included: a change stored but not confirmed by then is answered 202 (a client may ask for less with X-Request-Timeout)")
	fs.DurationVar(&o.PushTimeout, "push-timeout", controller.DefaultPushTimeout, "longest a switch may take to confirm a change, plus 0.1ms for each of its flow-mods (a VPC of 100,000 hosts deleted: +65s a bridge); a switch that does not is disconnected and reconciled when it reconnects")
	fs.StringVar(&o.AliyunListen, "aliyun-listen", "", "listen address of Alibaba Cloud's VPC/ECS OpenAPI over the same topology, e.g. 127.0.0.1:8090 (docs/aliyun-api.md; needs --aliyun-keys-file; none: not served)")
	fs.StringVar(&o.AliyunKeysFile, "aliyun-keys-file", "", "file of the access keys the Aliyun API accepts, a line \"ACCESS_KEY_ID ACCESS_KEY_SECRET\" each (re-read when it changes)")
	fs.StringVar(&o.AliyunServiceIP, "aliyun-service-ip", pipeline.DefaultAliyunServiceIP.String(), "address at which VMs reach the Aliyun API on TCP 80, routed by the fabric like Aliyun's internal endpoints (100.100.0.0/16): steered through the bridges' vpcflow-meta ports to a listener on port 8090 of the --metadata-listen host, in --metadata-netns; in effect when --aliyun-listen and --metadata-listen are both set; none: not served to VMs")
	fs.DurationVar(&o.TLSReloadInterval, "tls-reload-interval", 10*time.Second, "how often the TLS certificate, key and CA files are checked for changes and re-read (0: only on SIGHUP)")
	fs.DurationVar(&o.OVSDBWait, "ovsdb-wait", 30*time.Second, "how long a connecting switch waits for every OVSDB's first port map before it is reconciled with what is known (the flows of an OVSDB that has not answered are kept)")
	fs.DurationVar(&o.DriftInterval, "drift-interval", controller.DefaultDriftInterval, "how often each connected switch's flows are checked against what vpcflow wants and hand edits repaired (0: never, only when it reconnects)")
	fs.IntVar(&o.DumpSliceFlows, "dump-slice-flows", controller.DefaultDumpSliceFlows, "most flows asked of a switch in one request from one table by drift checks and the flow statistics: a bigger table is read a slice by cookie at a time, a drift check reading one slice per check (lower: a change waits less behind a check; higher: a flow edited in place is found sooner)")
	fs.BoolVar(&o.AllowFlush, "allow-flush", false, "let vpcflow delete a switch's flows of objects its store does not know even when that is most of them (an empty or wrong store is otherwise held back from wiping the fabric)")
	fs.StringVar(&o.MetadataListen, "metadata-listen", "", "address of the instance metadata service that VMs reach at 100.100.100.200, e.g. 169.254.169.254:80, behind the bridges' vpcflow-meta port (docs/pipeline.md, \"Metadata\"); empty: none")
	fs.StringVar(&o.MetadataNetns, "metadata-netns", "", "network namespace (ip netns name or path) to serve --metadata-listen in: the one holding the far end of the vpcflow-meta ports")
	fs.BoolVar(&o.MetadataHardened, "metadata-hardened", false, "metadata service in hardened mode: every request needs a token (PUT /latest/api/token)")
	fs.StringVar(&o.RegionID, "region-id", aliyunapi.DefaultRegion, "region the metadata service and the Aliyun API report (one zone: REGION-a)")
	o.OFTLS = addTLSFlags(fs, "openflow",
		"PEM certificate vpcflow presents to switches; with --openflow-tls-key and --openflow-tls-ca the OpenFlow listener speaks only TLS (switch target ssl:HOST:PORT)",
		"PEM CA certificate(s) a switch's certificate must be signed by (switches without one are refused)")
	fs.StringVar(&o.Store, "store", "", "shared store of several vpcflow replicas: etcd://HOST:PORT[,HOST:PORT…][/PREFIX] (prefix default /vpcflow; docs/replicas.md); empty: the bbolt store in --data-dir")
	fs.StringVar(&o.ReplicaName, "replica-name", "", "this replica's name in the leader election (default: host name/--openflow)")
	fs.DurationVar(&o.ElectionTTL, "election-ttl", ha.DefaultTTL, "etcd session TTL of the leader election (whole seconds): a dead leader is replaced after about this long")
	o.StoreTLS = addTLSFlags(fs, "store",
		"PEM client certificate vpcflow presents to etcd (with --store-tls-key and --store-tls-ca: https endpoints)",
		"PEM CA certificate(s) etcd's certificate must be signed by")
	o.OVSDBTLS = addTLSFlags(fs, "ovsdb",
		"PEM client certificate vpcflow presents to ssl: OVSDB servers (--ovsdb and chassis)",
		"PEM CA certificate(s) an ssl: OVSDB server's certificate must be signed by (and name the endpoint's host)")
	return fs, o
}

// notInFile says which flags only the command line (or their own
// variable) may set.
func notInFile(name string) bool { return name == "config" }

// envName is the environment variable of a flag.
func envName(flagName string) string {
	return "VPCFLOW_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// settingError is a bad setting, naming the key and where it was set.
type settingError struct {
	key    string // flag name
	origin string // "command line", "$VPCFLOW_X", "FILE:LINE"
	err    error
}

func (e *settingError) Error() string {
	switch {
	case e.origin == "" || e.origin == "command line":
		return fmt.Sprintf("--%s: %v", e.key, e.err)
	case strings.HasPrefix(e.origin, "$"):
		return fmt.Sprintf("%s (--%s): %v", e.origin, e.key, e.err)
	default:
		return fmt.Sprintf("%s: key %q: %v", e.origin, e.key, e.err)
	}
}

func (e *settingError) Unwrap() error { return e.err }

// loadedConfig is the result of reading every source.
type loadedConfig struct {
	opts   *serveOptions
	fs     *flag.FlagSet
	file   string            // the configuration file read, "" if none
	origin map[string]string // flag name → where its value came from
}

// originOf says where a flag's value came from ("default" when unset).
func (c *loadedConfig) originOf(name string) string {
	if o, ok := c.origin[name]; ok {
		return o
	}
	return "default"
}

// fail wraps err as a settingError for key, with its origin.
func (c *loadedConfig) fail(key string, err error) error {
	return &settingError{key: key, origin: c.originOf(key), err: err}
}

// errHelp is returned by loadServeConfig for -h/--help.
var errHelp = errors.New("help requested")

// loadServeConfig reads serve's settings: defaults, then the configuration
// file, then VPCFLOW_* variables, then args. A file named by --config or
// $VPCFLOW_CONFIG must exist; the default one may be missing.
func loadServeConfig(args []string, getenv func(string) string) (*loadedConfig, error) {
	// First pass: the command line alone, for --config and to reject
	// unknown flags before reading anything.
	probe, popts := serveFlagSet()
	if err := probe.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, errHelp
		}
		return nil, err
	}
	if probe.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", probe.Arg(0))
	}
	cliSet := map[string]bool{}
	probe.Visit(func(f *flag.Flag) { cliSet[f.Name] = true })
	file, explicit := popts.Config, cliSet["config"]
	if !explicit {
		if v := getenv(configEnv); v != "" {
			file, explicit = v, true
		}
	}

	fs, opts := serveFlagSet()
	c := &loadedConfig{opts: opts, fs: fs, origin: map[string]string{}}
	if file != "" {
		entries, err := readConfigFile(file)
		switch {
		case errors.Is(err, os.ErrNotExist) && !explicit:
			// No default file: fine.
		case err != nil:
			return nil, err
		default:
			c.file = file
			if err := c.applyFile(file, entries); err != nil {
				return nil, err
			}
		}
	}
	if err := c.applyEnv(getenv); err != nil {
		return nil, err
	}
	opts.OVSDB.startSource()
	opts.AllowedHosts.startSource()
	if err := fs.Parse(args); err != nil { // cannot fail: probe parsed the same
		return nil, err
	}
	for n := range cliSet {
		c.origin[n] = "command line"
	}
	opts.Config = file
	return c, nil
}

func (c *loadedConfig) applyFile(file string, entries []configEntry) error {
	seen := map[string]int{}
	for _, e := range entries {
		where := fmt.Sprintf("%s:%d", file, e.line)
		f := c.fs.Lookup(e.key)
		if f == nil || notInFile(e.key) {
			return &settingError{key: e.key, origin: where, err: unknownKeyError(c.fs, e.key)}
		}
		if prev, dup := seen[e.key]; dup {
			return &settingError{key: e.key, origin: where, err: fmt.Errorf("set twice (first on line %d)", prev)}
		}
		seen[e.key] = e.line
		_, repeatable := f.Value.(*stringList)
		if len(e.values) != 1 && !repeatable {
			return &settingError{key: e.key, origin: where, err: errors.New("takes one value, not a list")}
		}
		if l, ok := f.Value.(*stringList); ok {
			l.startSource()
		}
		for _, v := range e.values {
			if err := c.fs.Set(e.key, v); err != nil {
				return &settingError{key: e.key, origin: where, err: fmt.Errorf("invalid value %q: %w", v, valueError(f, err))}
			}
		}
		c.origin[e.key] = where
	}
	return nil
}

func (c *loadedConfig) applyEnv(getenv func(string) string) error {
	var err error
	c.fs.VisitAll(func(f *flag.Flag) {
		if err != nil || notInFile(f.Name) {
			return
		}
		name := envName(f.Name)
		v := getenv(name)
		if v == "" {
			return
		}
		vals := []string{v}
		if l, ok := f.Value.(*stringList); ok {
			l.startSource()
			vals = strings.Split(v, ",")
		}
		for _, x := range vals {
			if e := c.fs.Set(f.Name, strings.TrimSpace(x)); e != nil {
				err = &settingError{key: f.Name, origin: "$" + name, err: fmt.Errorf("invalid value %q: %w", x, valueError(f, e))}
				return
			}
		}
		c.origin[f.Name] = "$" + name
	})
	return err
}

// valueError says what a flag's value must look like when the flag
// package's own error ("parse error") says nothing.
func valueError(f *flag.Flag, err error) error {
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return err
	}
	switch g.Get().(type) {
	case int, int64, uint, uint64:
		return errors.New("want a whole number")
	case bool:
		return errors.New("want true or false")
	case time.Duration:
		return errors.New("want a duration such as 10s or 1m30s")
	}
	return err
}

// unknownKeyError says a key is not a setting, suggesting the one meant.
func unknownKeyError(fs *flag.FlagSet, key string) error {
	norm := func(s string) string {
		return strings.ToLower(strings.NewReplacer("_", "", "-", "", " ", "").Replace(s))
	}
	var suggestion string
	fs.VisitAll(func(f *flag.Flag) {
		if !notInFile(f.Name) && norm(f.Name) == norm(key) {
			suggestion = f.Name
		}
	})
	if suggestion != "" {
		return fmt.Errorf("unknown key (did you mean %q?)", suggestion)
	}
	return errors.New("unknown key (the keys are the names of serve's flags: vpcflow serve --help)")
}

// configEntry is one key of a configuration file.
type configEntry struct {
	key    string
	values []string
	line   int
}

// readConfigFile parses a YAML mapping of flag names to scalars (or, for
// repeatable flags, lists of scalars). An empty file (or one of comments
// only) sets nothing.
func readConfigFile(path string) ([]configEntry, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("configuration file: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("configuration file %s: %w", path, err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("configuration file %s: line %d: want a mapping of settings (key: value), got a %s", path, root.Line, kindName(root.Kind))
	}
	var out []configEntry
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		where := fmt.Sprintf("%s:%d", path, k.Line)
		if k.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("configuration file %s: line %d: a key must be a plain name", path, k.Line)
		}
		e := configEntry{key: k.Value, line: k.Line}
		switch v.Kind {
		case yaml.ScalarNode:
			if v.Tag == "!!null" {
				return nil, &settingError{key: k.Value, origin: where, err: errors.New("has no value (remove the key to take the default)")}
			}
			e.values = []string{v.Value}
		case yaml.SequenceNode:
			for _, item := range v.Content {
				if item.Kind != yaml.ScalarNode || item.Tag == "!!null" {
					return nil, &settingError{key: k.Value, origin: where, err: fmt.Errorf("line %d: a list item must be a plain value", item.Line)}
				}
				e.values = append(e.values, item.Value)
			}
		default:
			return nil, &settingError{key: k.Value, origin: where, err: fmt.Errorf("want a value, got a %s", kindName(v.Kind))}
		}
		out = append(out, e)
	}
	return out, nil
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return "value"
	case yaml.AliasNode:
		return "alias"
	default:
		return "document"
	}
}

// settings lists every setting with its value and origin, sorted by name,
// for `vpcflow config check`.
func (c *loadedConfig) settings() [][3]string {
	var out [][3]string
	c.fs.VisitAll(func(f *flag.Flag) {
		if f.Name == "config" {
			return
		}
		v := f.Value.String()
		if strings.HasSuffix(f.Name, "-token") {
			v = "(hidden)"
		}
		out = append(out, [3]string{f.Name, v, c.originOf(f.Name)})
	})
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

// resolvedConfig is a loaded configuration checked and ready to run:
// files read, certificates loaded.
type resolvedConfig struct {
	lc       *loadedConfig
	opts     *serveOptions
	level    zapcore.Level
	token    string
	ofTLS    *certReloader // nil: plain TCP
	ovsdbTLS *certReloader // nil: no ssl: OVSDB
	store    storeSpec     // --store
	storeTLS *tls.Config   // nil: plain http to etcd
}

// wrap names the first of keys that was not set on the command line (or
// left at its default) in err, so that a mistake in the file or the
// environment says where it is.
func (c *loadedConfig) wrap(err error, keys ...string) error {
	if err == nil {
		return nil
	}
	for _, k := range keys {
		if o := c.originOf(k); o != "default" && o != "command line" {
			return &settingError{key: k, origin: o, err: err}
		}
	}
	return err
}

func (c *loadedConfig) logLevel() (zapcore.Level, error) {
	lvl, err := zapcore.ParseLevel(c.opts.LogLevel)
	if err != nil {
		return 0, c.fail("log-level", fmt.Errorf("want debug, info, warn or error, got %q", c.opts.LogLevel))
	}
	return lvl, nil
}

// resolve checks every setting and reads the files they name.
func (c *loadedConfig) resolve(log *zap.Logger, getenv func(string) string) (*resolvedConfig, error) {
	o := c.opts
	r := &resolvedConfig{lc: c, opts: o}
	var err error
	if r.level, err = c.logLevel(); err != nil {
		return nil, err
	}
	if o.LogFormat != "console" && o.LogFormat != "json" {
		return nil, c.fail("log-format", fmt.Errorf("want console or json, got %q", o.LogFormat))
	}
	if o.Advertise != "" {
		targets, err := endpoint.ParseControllers(o.Advertise)
		if err != nil {
			return nil, c.fail("advertise", err)
		}
		o.Advertise = strings.Join(targets, ",")
	}
	if o.UnderlayMTU < 576+50 || o.UnderlayMTU > 65535 {
		return nil, c.fail("underlay-mtu", fmt.Errorf("%d: want between %d and 65535", o.UnderlayMTU, 576+50))
	}
	for _, k := range []struct {
		name string
		v    int
	}{{"openflow-max-handshakes", o.MaxHandshakes}, {"openflow-max-handshakes-per-source", o.MaxHandshakesPerSource}, {"listen-max-conns", o.ListenMaxConns}} {
		if k.v < 0 {
			return nil, c.fail(k.name, fmt.Errorf("%d: want 0 (automatic) or more", k.v))
		}
	}
	if o.TLSReloadInterval < 0 {
		return nil, c.fail("tls-reload-interval", fmt.Errorf("%s: want 0 (off) or more", o.TLSReloadInterval))
	}
	if o.OVSDBWait <= 0 {
		return nil, c.fail("ovsdb-wait", fmt.Errorf("%s: want a positive duration", o.OVSDBWait))
	}
	if o.DriftInterval < 0 || (o.DriftInterval > 0 && o.DriftInterval < 100*time.Millisecond) {
		return nil, c.fail("drift-interval", fmt.Errorf("%s: want 0 (off) or at least 100ms", o.DriftInterval))
	}
	if o.DumpSliceFlows < 1 {
		return nil, c.fail("dump-slice-flows", fmt.Errorf("%d: want 1 or more", o.DumpSliceFlows))
	}
	if o.PushTimeout < 10*time.Millisecond {
		return nil, c.fail("push-timeout", fmt.Errorf("%s: want at least 10ms", o.PushTimeout))
	}
	if o.RequestTimeout <= 0 || o.RequestTimeout > maxRequestTimeout {
		return nil, c.fail("request-timeout", fmt.Errorf("%s: want a duration above 0 and at most %s", o.RequestTimeout, maxRequestTimeout))
	}
	for _, h := range o.AllowedHosts.vals {
		if strings.TrimSpace(h) == "" || strings.ContainsAny(h, "/ \t") {
			return nil, c.fail("allowed-hosts", fmt.Errorf("%q: want a host name, an address or *", h))
		}
	}
	if o.HandshakeTimeout <= 0 {
		return nil, c.fail("openflow-handshake-timeout", fmt.Errorf("%s: want a positive duration", o.HandshakeTimeout))
	}
	if o.AliyunListen != "" && o.AliyunKeysFile == "" {
		return nil, c.fail("aliyun-listen", fmt.Errorf("needs --aliyun-keys-file: the Aliyun API verifies every request against the access keys of that file and would refuse all without them"))
	}
	if _, err := aliyunServiceIP(o.AliyunServiceIP); err != nil {
		return nil, c.fail("aliyun-service-ip", err)
	}
	if r.token, err = apiToken(log, o.APITokenFile, getenv); err != nil {
		return nil, c.wrap(err, "api-token-file")
	}
	tlsKeys := func(p string) []string { return []string{p + "-tls-cert", p + "-tls-key", p + "-tls-ca"} }
	if r.ofTLS, err = newCertReloader(o.OFTLS); err != nil {
		return nil, c.wrap(err, tlsKeys("openflow")...)
	}
	if r.ovsdbTLS, err = newCertReloader(o.OVSDBTLS); err != nil {
		return nil, c.wrap(err, tlsKeys("ovsdb")...)
	}
	var dbCfg *tls.Config
	if r.ovsdbTLS != nil {
		dbCfg = r.ovsdbTLS.clientConfig()
	}
	if err := checkOVSDBTLS(o.OVSDB.vals, dbCfg, o.OVSDBTLS); err != nil {
		return nil, c.wrap(err, "ovsdb")
	}
	if r.store, err = parseStore(o.Store); err != nil {
		return nil, c.fail("store", err)
	}
	if r.store.etcd {
		if c.originOf("data-dir") != "default" {
			return nil, c.fail("store", fmt.Errorf("%s and --data-dir %s name two kinds of store: the replicas' store is in etcd; leave --data-dir out (or --store, for the bbolt store of one machine)", o.Store, o.DataDir))
		}
		if o.ElectionTTL < time.Second || o.ElectionTTL%time.Second != 0 {
			return nil, c.fail("election-ttl", fmt.Errorf("%s: want whole seconds, at least 1s", o.ElectionTTL))
		}
		if r.storeTLS, err = ovsdbTLSConfig(o.StoreTLS); err != nil {
			return nil, c.wrap(err, tlsKeys("store")...)
		}
	} else if *o.StoreTLS.cert != "" || *o.StoreTLS.key != "" || *o.StoreTLS.cas != "" {
		return nil, c.fail("store-tls-cert", errors.New("the --store-tls-* flags are for an etcd --store"))
	}
	return r, nil
}
