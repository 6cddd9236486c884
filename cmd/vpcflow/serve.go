package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/vpcflow/vpcflow/api"
	"github.com/vpcflow/vpcflow/controller"
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

const serveUsage = `usage: vpcflow serve [flags]

Run the controller: accept OpenFlow 1.3 connections from Open vSwitch,
serve the REST API, watch OVSDB for ports, and keep every switch's flow
tables equal to the registered VPCs, vSwitches, hosts and subnets.

The REST API is open to anyone who can reach --listen, unless a token is
given with --api-token-file or $VPCFLOW_API_TOKEN (the file wins when both
are set): then every request but GET/HEAD /healthz must carry
"Authorization: Bearer TOKEN" (the CLI sends $VPCFLOW_API_TOKEN or
--api-token).

Example:
  vpcflow serve --ovsdb unix:/var/run/openvswitch/db.sock --data-dir /var/lib/vpcflow
  ovs-vsctl set-controller br-test tcp:127.0.0.1:6653   # or: vpcflow bridge setup br-test ...
  vpcflow serve --listen 0.0.0.0:8080 --api-token-file /etc/vpcflow/api-token

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

// runServe is the `vpcflow serve` command; getenv reads the environment.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ofAddr := fs.String("openflow", ":6653", "OpenFlow listen address (switches connect here)")
	restAddr := fs.String("listen", "127.0.0.1:8080", "REST API listen address")
	dataDir := fs.String("data-dir", "./vpcflow-data", "directory of the embedded on-disk store")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	logFormat := fs.String("log-format", "console", "log format: console or json")
	tokenFile := fs.String("api-token-file", "", "file holding the bearer token the REST API requires (default: $"+tokenEnv+"; none: no access control)")
	var endpoints stringList
	fs.Var(&endpoints, "ovsdb", "OVSDB server to learn ports from, unix:PATH, tcp:HOST:PORT or ssl:HOST:PORT (repeatable)")
	underlayMTU := fs.Int("underlay-mtu", 1500, "MTU of the network between chassis; VM packets over this minus 50 (VXLAN) are answered with ICMP fragmentation-needed")
	advertise := fs.String("advertise", "", "OpenFlow target that chassis bridges are pointed at, e.g. tcp:192.168.100.254:6653 (needed for chassis that name none)")
	ofTLSFlags := addTLSFlags(fs, "openflow",
		"PEM certificate vpcflow presents to switches; with --openflow-tls-key and --openflow-tls-ca the OpenFlow listener speaks only TLS (switch target ssl:HOST:PORT)",
		"PEM CA certificate(s) a switch's certificate must be signed by (switches without one are refused)")
	ovsdbTLSFlags := addTLSFlags(fs, "ovsdb",
		"PEM client certificate vpcflow presents to ssl: OVSDB servers (--ovsdb and chassis)",
		"PEM CA certificate(s) an ssl: OVSDB server's certificate must be signed by (and name the endpoint's host)")
	fs.Usage = func() {
		fmt.Fprint(stderr, serveUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "serve: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	log, err := newLogger(*logLevel, *logFormat, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "serve: %v\n", err)
		return 2
	}
	defer func() { _ = log.Sync() }()
	token, err := apiToken(log, *tokenFile, getenv)
	if err != nil {
		fmt.Fprintf(stderr, "serve: %v\n", err)
		return 2
	}
	ofTLS, err := openflowTLSConfig(ofTLSFlags)
	if err != nil {
		fmt.Fprintf(stderr, "serve: %v\n", err)
		return 2
	}
	ovsdbTLS, err := ovsdbTLSConfig(ovsdbTLSFlags)
	if err == nil {
		err = checkOVSDBTLS(endpoints, ovsdbTLS, ovsdbTLSFlags)
	}
	if err != nil {
		fmt.Fprintf(stderr, "serve: %v\n", err)
		return 2
	}

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cfg := serveConfig{
		OpenFlowAddr: *ofAddr, OpenFlowTLS: ofTLS, RESTAddr: *restAddr, DataDir: *dataDir, APIToken: token,
		Controller: controller.Options{OVSDBEndpoints: endpoints, Advertise: *advertise, UnderlayMTU: *underlayMTU,
			OVSDBTLS: ovsdbTLS},
	}
	if *underlayMTU < 576+50 || *underlayMTU > 65535 {
		fmt.Fprintf(stderr, "serve: --underlay-mtu %d: want between %d and 65535\n", *underlayMTU, 576+50)
		return 2
	}
	if err := serve(ctx, log, cfg); err != nil {
		log.Error("vpcflow stopped", zap.Error(err))
		return 1
	}
	return 0
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

	// OpenFlowTLS, when set, makes the OpenFlow listener TLS-only.
	OpenFlowTLS *tls.Config
}

func serve(ctx context.Context, log *zap.Logger, cfg serveConfig) error {
	ofAddr, restAddr, dataDir, apiToken := cfg.OpenFlowAddr, cfg.RESTAddr, cfg.DataDir, cfg.APIToken
	endpoints := cfg.Controller.OVSDBEndpoints
	store, err := topology.Open(ctx, dataDir, log.Named("store"))
	if err != nil {
		return fmt.Errorf("opening store in %s: %w", dataDir, err)
	}
	defer store.Close()

	ctrl := controller.New(log.Named("controller"), store, cfg.Controller)

	describeTLS(log, "OpenFlow", cfg.OpenFlowTLS)
	describeTLS(log, "OVSDB", cfg.Controller.OVSDBTLS)
	ofLn, err := listenOpenFlow(log.Named("openflow"), ofAddr, cfg.OpenFlowTLS)
	if err != nil {
		return err
	}
	restLn, err := net.Listen("tcp", restAddr)
	if err != nil {
		ofLn.Close()
		return fmt.Errorf("listening for REST on %s: %w", restAddr, err)
	}
	log.Info("vpcflow serving", zap.String("openflow", ofLn.Addr().String()),
		zap.String("rest", restLn.Addr().String()), zap.String("data_dir", dataDir),
		zap.Strings("ovsdb", endpoints), zap.Bool("api_token", apiToken != ""),
		zap.Bool("openflow_tls", cfg.OpenFlowTLS != nil), zap.Bool("ovsdb_tls", cfg.Controller.OVSDBTLS != nil))

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 2+len(endpoints))

	// The controller runs the OVSDB monitors: the --ovsdb ones and one per
	// registered chassis.
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := ctrl.Run(ctx); err != nil && ctx.Err() == nil {
			errc <- fmt.Errorf("controller: %w", err)
		}
	}()

	ofServer := openflow.NewServer(log.Named("openflow"), ctrl, openflow.ServerOptions{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := ofServer.Serve(ctx, ofLn); err != nil && ctx.Err() == nil {
			errc <- fmt.Errorf("openflow server: %w", err)
		}
	}()

	httpServer := &http.Server{
		Handler:           api.NewServer(log.Named("api"), ctrl, api.Options{Token: apiToken}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := httpServer.Serve(restLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("rest server: %w", err)
		}
	}()

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case runErr = <-errc:
	}
	cancel()
	shutCtx, shutCancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer shutCancel()
	_ = httpServer.Shutdown(shutCtx)
	ofLn.Close()
	wg.Wait()
	return runErr
}

func newLogger(level, format string, w io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
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
		return nil, fmt.Errorf("--log-format: want console or json, got %q", format)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(w), lvl)), nil
}
