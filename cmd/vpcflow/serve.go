package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"github.com/vpcflow/vpcflow/aliyunapi"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/buffer"
	"go.uber.org/zap/zapcore"

	"github.com/vpcflow/vpcflow/api"
	"github.com/vpcflow/vpcflow/controller"
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
	"github.com/vpcflow/vpcflow/ui"
)

const serveUsage = `usage: vpcflow serve [flags]

Run the controller: accept OpenFlow 1.3 connections from Open vSwitch,
serve the REST API, watch OVSDB for ports, and keep every switch's flow
tables equal to the registered VPCs, vSwitches, hosts and subnets.

The REST API is open to anyone who can reach --listen, unless a token is
given with --api-token-file or $VPCFLOW_API_TOKEN (the file wins when both
are set): then every request but GET/HEAD /healthz and /readyz must carry
"Authorization: Bearer TOKEN" (the CLI sends $VPCFLOW_API_TOKEN or
--api-token). Against web pages that would drive it from a browser, it
answers only to the names in --allowed-hosts (Host and Origin), takes
writes only as Content-Type: application/json, and answers no CORS
preflight. /healthz says the process answers; /readyz (503 with reasons)
whether the store, every OVSDB and every connected switch are ready.

Example:
  vpcflow serve --ovsdb unix:/var/run/openvswitch/db.sock --data-dir /var/lib/vpcflow
  ovs-vsctl set-controller br-test tcp:127.0.0.1:6653   # or: vpcflow bridge setup br-test ...
  vpcflow serve --listen 0.0.0.0:8080 --api-token-file /etc/vpcflow/api-token

Replicas: with --store etcd://HOST:PORT[,HOST:PORT…][/PREFIX] the topology
lives in etcd and several vpcflow processes share it; they elect a leader
and only it writes flows (bridges list every replica: vpcflow bridge setup
BR --controller tcp:A:6653,tcp:B:6653,tcp:C:6653). See docs/replicas.md.
  vpcflow serve --init --store etcd://10.0.0.1:2379,10.0.0.2:2379,10.0.0.3:2379 --openflow 10.0.0.1:6653

TLS: with --openflow-tls-cert/-key/-ca the OpenFlow listener accepts only
TLS from switches whose certificate the CA signed (on the switch:
ovs-vsctl set-ssl KEY CERT CACERT; ovs-vsctl set-controller br ssl:IP:6653).
With --ovsdb-tls-cert/-key/-ca, ssl:HOST:PORT OVSDB endpoints (--ovsdb and
chassis) can be used (ovsdb-server --remote=pssl:6640 --private-key=...
--certificate=... --ca-cert=...).
  vpcflow serve --openflow-tls-cert vpcflow-cert.pem --openflow-tls-key vpcflow-key.pem --openflow-tls-ca ca.pem \
      --ovsdb ssl:192.0.2.11:6640 --ovsdb-tls-cert vpcflow-cert.pem --ovsdb-tls-key vpcflow-key.pem --ovsdb-tls-ca ca.pem

Flags:
`

const serveUsageTail = `
Configuration: every flag can also be set in the YAML file --config
(default ` + defaultConfigFile + `, which may be missing; or $` + configEnv + `), as
"NAME: VALUE" with the flag's name (a list for --ovsdb), and by the variable
VPCFLOW_NAME (capitals, "-" as "_": VPCFLOW_DATA_DIR, VPCFLOW_OVSDB=a,b).
The command line wins over the environment, which wins over the file.
Unknown keys are errors; 'vpcflow config check' checks a file.

Signals: SIGHUP re-reads the configuration and applies the log level, the
API token file and the TLS certificates and CAs at once (connected switches
stay connected); other changed settings are logged as needing a restart.
SIGINT and SIGTERM stop vpcflow.

systemd: with Type=notify vpcflow reports ready once its store is open and
its listeners are up, pings WatchdogSec= while its store answers, and
writes log lines with the journal's priority prefixes.
`

// runServe is the `vpcflow serve` command; getenv reads the environment.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	lc, err := loadServeConfig(args, getenv)
	if errors.Is(err, errHelp) {
		printServeUsage(stderr)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "serve: %v\nRun 'vpcflow serve --help' for usage.\n", err)
		return exitUsage
	}
	lvl, err := lc.logLevel()
	if err != nil {
		fmt.Fprintf(stderr, "serve: %v\n", err)
		return exitUsage
	}
	level := zap.NewAtomicLevelAt(lvl)
	log, err := newLogger(level, lc.opts.LogFormat, stderr, journalStream(stderr, getenv))
	if err != nil {
		fmt.Fprintf(stderr, "serve: %v\n", lc.fail("log-format", err))
		return exitUsage
	}
	defer func() { _ = log.Sync() }()
	rs, err := lc.resolve(log, getenv)
	if err != nil {
		fmt.Fprintf(stderr, "serve: %v\n", err)
		return exitUsage
	}

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cfg := serveConfig{
		OpenFlowAddr: rs.opts.OpenFlow, RESTAddr: rs.opts.Listen, DataDir: rs.opts.DataDir, APIToken: rs.token,
		AllowedHosts: rs.opts.AllowedHosts.vals, RequestTimeout: rs.opts.RequestTimeout,
		Controller: controller.Options{OVSDBEndpoints: rs.opts.OVSDB.vals, Advertise: rs.opts.Advertise, UnderlayMTU: rs.opts.UnderlayMTU,
			DriftInterval: driftInterval(rs.opts.DriftInterval), DumpSliceFlows: rs.opts.DumpSliceFlows, AllowFlush: rs.opts.AllowFlush, PortsWait: rs.opts.OVSDBWait,
			PushTimeout: rs.opts.PushTimeout},
		ofTLS: rs.ofTLS, ovsdbTLS: rs.ovsdbTLS,
		level:      level,
		configFile: lc.file,
		reload: func(log *zap.Logger) (*resolvedConfig, error) {
			lc, err := loadServeConfig(args, getenv)
			if err != nil {
				return nil, err
			}
			return lc.resolve(log, getenv)
		},
		current:           rs,
		init:              rs.opts.Init,
		tlsReloadInterval: rs.opts.TLSReloadInterval,
		metadata: metadataConfig{Listen: rs.opts.MetadataListen, Netns: rs.opts.MetadataNetns,
			Hardened: rs.opts.MetadataHardened, Region: rs.opts.RegionID},
		openflowOptions: openflow.ServerOptions{
			HandshakeTimeout:       rs.opts.HandshakeTimeout,
			MaxHandshakes:          cmp.Or(rs.opts.MaxHandshakes, autoLimit(8, 256)),
			MaxHandshakesPerSource: rs.opts.MaxHandshakesPerSource,
		},
		restMaxConns: cmp.Or(rs.opts.ListenMaxConns, autoLimit(8, 512)),
		notifier:     newNotifier(getenv),
		watchdog:     watchdogInterval(getenv),
	}
	if rs.ofTLS != nil {
		cfg.OpenFlowTLS = rs.ofTLS.serverConfig()
	}
	cfg.aliyunAddr, cfg.aliyunKeys, cfg.aliyunRegion = rs.opts.AliyunListen, rs.opts.AliyunKeysFile, rs.opts.RegionID
	if cfg.aliyunFabric, err = aliyunFabricOf(rs.opts.AliyunListen, rs.opts.AliyunServiceIP, cfg.metadata); err != nil {
		fmt.Fprintf(stderr, "serve: --aliyun-service-ip: %v\n", err)
		return exitUsage
	}
	cfg.Controller.AliyunServiceIP = cfg.aliyunFabric.ServiceIP
	cfg.store, cfg.storeTLS = rs.store, rs.storeTLS
	cfg.replicaName, cfg.electionTTL = replicaName(rs.opts.ReplicaName, rs.opts.OpenFlow), rs.opts.ElectionTTL
	if rs.ovsdbTLS != nil {
		cfg.Controller.OVSDBTLS = rs.ovsdbTLS.clientConfig()
	}
	if err := serve(ctx, log, cfg); err != nil {
		log.Error("vpcflow stopped", zap.Error(err))
		return storeExitCode(err)
	}
	return exitOK
}

// driftInterval is --drift-interval as controller.Options wants it (0:
// never, which the controller spells negative).
func driftInterval(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

func printServeUsage(w io.Writer) {
	fs, _ := serveFlagSet()
	fmt.Fprint(w, serveUsage)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fmt.Fprint(w, serveUsageTail)
}

// apiToken returns the REST API's bearer token: the content of file if
// given, else $VPCFLOW_API_TOKEN, with surrounding whitespace trimmed; ""
// when neither is set. A token that is empty after trimming is refused.
func apiToken(log *zap.Logger, file string, getenv func(string) string) (string, error) {
	if file == "" {
		v := getenv(tokenEnv)
		if v == "" {
			return "", nil
		}
		tok := strings.TrimSpace(v)
		if tok == "" {
			return "", fmt.Errorf("$%s is set but holds only whitespace: set it to the API token, or unset it to run without one", tokenEnv)
		}
		return tok, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("--api-token-file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("--api-token-file %s is empty: put the API token in it", file)
	}
	if fi, err := os.Stat(file); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("the API token file can be read by other users; chmod 600 it",
			zap.String("file", file), zap.String("mode", fi.Mode().Perm().String()))
	}
	return tok, nil
}

// serveConfig is everything `vpcflow serve` was asked to do.
type serveConfig struct {
	OpenFlowAddr string
	RESTAddr     string
	DataDir      string
	APIToken     string
	Controller   controller.Options
	// AllowedHosts are the REST API's Host names (nil: the defaults, see
	// api.DefaultAllowedHosts); RequestTimeout bounds each request (0:
	// api.DefaultRequestTimeout).
	AllowedHosts   []string
	RequestTimeout time.Duration

	// OpenFlowTLS, when set, makes the OpenFlow listener TLS-only.
	OpenFlowTLS *tls.Config

	ofTLS, ovsdbTLS *certReloader // the material behind the TLS configurations
	level           zap.AtomicLevel
	configFile      string
	// reload reads every source again (SIGHUP); current is what runs.
	reload   func(log *zap.Logger) (*resolvedConfig, error)
	current  *resolvedConfig
	notifier *notifier     // systemd, when started by it with Type=notify
	watchdog time.Duration // systemd's WatchdogSec, 0 for none

	openflowOptions openflow.ServerOptions // handshake caps and timeout
	restMaxConns    int                    // REST connection cap
	init            bool                   // create the store if missing
	// tlsReloadInterval is how often certificate files are checked for
	// changes (0: only on SIGHUP).
	tlsReloadInterval time.Duration
	// aliyunAddr serves the Aliyun API (aliyun.go) with the keys of
	// aliyunKeys; "" for none. aliyunRegion is the region it reports
	// when a request names none (--region-id, as the metadata service).
	aliyunAddr, aliyunKeys, aliyunRegion string
	aliyunFabric                         aliyunFabric   // the Aliyun API as the VMs reach it (aliyun.go)
	metadata                             metadataConfig // the instance metadata service (metadata.go)
	// store is --store: etcd for replicas (replicas.go), else bbolt in
	// DataDir.
	store       storeSpec
	storeTLS    *tls.Config
	replicaName string
	electionTTL time.Duration
}

func serve(ctx context.Context, log *zap.Logger, cfg serveConfig) error {
	ofAddr, restAddr, dataDir, apiToken := cfg.OpenFlowAddr, cfg.RESTAddr, cfg.DataDir, cfg.APIToken
	endpoints := cfg.Controller.OVSDBEndpoints
	var store *topology.Store
	var shared *sharedStore
	var err error
	if cfg.store.etcd {
		store, shared, err = openEtcdStore(ctx, log, cfg.store, cfg.storeTLS, cfg.init, cfg.replicaName, cfg.electionTTL)
		if err != nil {
			return fmt.Errorf("opening the store in etcd: %w", err)
		}
		cfg.Controller.Leadership = shared.elector
		dataDir = store.Backend().String()
	} else if store, err = openServeStore(ctx, log, dataDir, cfg.init); err != nil {
		return fmt.Errorf("opening store in %s: %w", dataDir, err)
	}
	defer store.Close()

	obs := newObservability(log.Named("metrics"), &cfg)
	ctrl := controller.New(log.Named("controller"), store, cfg.Controller)
	obs.attach(ctrl)

	cfg.ofTLS.describe(log, "OpenFlow", "OpenFlow TLS enabled")
	cfg.ovsdbTLS.describe(log, "OVSDB", "OVSDB TLS enabled")
	ofLn, err := listenOpenFlow(log.Named("openflow"), ofAddr, cfg.OpenFlowTLS)
	if err != nil {
		return err
	}
	if tl, ok := ofLn.(*tlsListener); ok && cfg.ofTLS != nil {
		tl.presented = func() string {
			if leaf := cfg.ofTLS.material().leaf(); leaf != nil {
				return fmt.Sprintf("(%s, issued by %s)", leaf.Subject, leaf.Issuer)
			}
			return ""
		}
	}
	restTCP, err := net.Listen("tcp", restAddr)
	if err != nil {
		ofLn.Close()
		return fmt.Errorf("listening for REST on %s: %w", restAddr, err)
	}
	restLn := newConnLimiter(restTCP, max(cfg.restMaxConns, 1), log.Named("api"))
	log.Info("vpcflow serving", zap.String("openflow", ofLn.Addr().String()),
		zap.String("rest", restLn.Addr().String()), zap.String("data_dir", dataDir),
		zap.Strings("ovsdb", endpoints), zap.Bool("api_token", apiToken != ""),
		zap.Bool("openflow_tls", cfg.OpenFlowTLS != nil), zap.Bool("ovsdb_tls", cfg.Controller.OVSDBTLS != nil),
		zap.String("config", cfg.configFile), zap.String("version", versionString()),
		zap.Int("openflow_max_handshakes", cfg.openflowOptions.MaxHandshakes), zap.Int("rest_max_conns", cfg.restMaxConns),
		zap.Uint64("open_file_limit", fileLimit()))

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 5+len(endpoints))

	// The controller runs the OVSDB monitors: the --ovsdb ones and one per
	// registered chassis.
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := ctrl.Run(ctx); err != nil && ctx.Err() == nil {
			errc <- fmt.Errorf("controller: %w", err)
		}
	}()

	if shared != nil {
		log.Info("replica of a shared store: only the elected leader writes to switches",
			zap.String("replica", cfg.replicaName), zap.Stringer("store", store.Backend()), zap.Duration("election_ttl", cfg.electionTTL))
		shared.run(ctx, &wg, errc, store, ctrl)
	}

	ofServer := openflow.NewServer(log.Named("openflow"), ctrl, cfg.openflowOptions)
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := ofServer.Serve(ctx, ofLn); err != nil && ctx.Err() == nil {
			errc <- fmt.Errorf("openflow server: %w", err)
		}
	}()

	// The API handler is swapped whole when SIGHUP brings a new token.
	allowedHosts := cfg.AllowedHosts
	if allowedHosts == nil {
		allowedHosts = api.DefaultAllowedHosts(restAddr)
	}
	apiOpts := func(token string) api.Options {
		return api.Options{Token: token, AllowedHosts: allowedHosts, RequestTimeout: cfg.RequestTimeout,
			Backup: store, Restorer: ctrl}
	}
	newAPI := func(token string) http.Handler {
		return api.NewServer(log.Named("api"), ctrl, obs.apiOptions(apiOpts(token)))
	}
	var handler atomic.Pointer[http.Handler]
	h := newAPI(apiToken)
	handler.Store(&h)
	uiPage := ui.Handler()
	httpServer := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if ui.Serves(r.URL.Path) {
				uiPage.ServeHTTP(w, r)
				return
			}
			(*handler.Load()).ServeHTTP(w, r)
		}),
		// Slow and idle clients: 10s for the headers, 30s for the whole
		// request, 2m to take the answer, 60s idle between requests.
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ConnState:         restLn.connState,
		ErrorLog:          zap.NewStdLog(log.Named("http")),
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := httpServer.Serve(restLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("rest server: %w", err)
		}
	}()

	if err := startAliyunAPI(ctx, log.Named("aliyun"), ctrl, cfg.aliyunAddr, aliyunapi.Options{KeysFile: cfg.aliyunKeys, Region: cfg.aliyunRegion}, cfg.aliyunFabric, &wg, errc); err != nil {
		cancel()
		_ = httpServer.Close()
		ofLn.Close()
		wg.Wait()
		return err
	}
	if err := startMetadata(ctx, &wg, errc, log.Named("metadata"), ctrl, cfg.metadata); err != nil {
		cancel()
		_ = httpServer.Close()
		ofLn.Close()
		wg.Wait()
		return err
	}

	// Ready: the store is open and both listeners accept.
	if err := cfg.notifier.notify("READY=1", "STATUS=serving OpenFlow on "+ofLn.Addr().String()+", REST on "+restLn.Addr().String()); err != nil {
		log.Warn("telling systemd vpcflow is ready failed", zap.Error(err))
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		runWatchdog(ctx, log, cfg.notifier, cfg.watchdog, func() { store.Read(func(*topology.State) {}) })
	}()

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	live := &liveConfig{log: log, cfg: &cfg, current: cfg.current, failedStamp: map[string]string{}, setToken: func(tok string) {
		h := newAPI(tok)
		handler.Store(&h)
	}}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				_ = cfg.notifier.notify("RELOADING=1")
				live.reload()
				_ = cfg.notifier.notify("READY=1", "STATUS=configuration reloaded")
			}
		}
	}()

	if cfg.tlsReloadInterval > 0 && (cfg.ofTLS != nil || cfg.ovsdbTLS != nil) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(cfg.tlsReloadInterval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					live.reloadChangedTLS()
				}
			}
		}()
	}

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case runErr = <-errc:
	}
	_ = cfg.notifier.notify("STOPPING=1")
	cancel()
	shutCtx, shutCancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer shutCancel()
	_ = httpServer.Shutdown(shutCtx)
	ofLn.Close()
	wg.Wait()
	return runErr
}

// newLogger is a zap logger writing to w; journal adds syslog priority
// prefixes for systemd's journal.
func newLogger(level zap.AtomicLevel, format string, w io.Writer, journal bool) (*zap.Logger, error) {
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	switch format {
	case "console":
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	case "json":
		enc = zapcore.NewJSONEncoder(encCfg)
	default:
		return nil, fmt.Errorf("want console or json, got %q", format)
	}
	if journal {
		enc = journalEncoder{Encoder: enc, pool: buffer.NewPool()}
	}
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(w), level)), nil
}
