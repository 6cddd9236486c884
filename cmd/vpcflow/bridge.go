package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/vpcflow/vpcflow/ovsdb"
)

// defaultOVSDB is the system Open vSwitch database socket.
const defaultOVSDB = "unix:/var/run/openvswitch/db.sock"

// repeated is a flag that may be given several times.
type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ",") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

func (c *cli) bridgeSetup(args []string) int {
	k := c.command("bridge setup", "BRIDGE [--ovsdb unix:PATH|tcp:HOST:PORT|ssl:HOST:PORT [--ovsdb-tls-cert F --ovsdb-tls-key F --ovsdb-tls-ca F]] --controller tcp:IP:6653|ssl:IP:6653 [--create] [--datapath-type netdev]",
		"Prepare an OVS bridge for vpcflow in one OVSDB transaction: protocols=OpenFlow13,\n"+
			"fail_mode=secure, other_config:disable-in-band=true, and the controller set\n"+
			"replaced by --controller (out-of-band; several for replicas). Idempotent. Talks to OVSDB directly,\n"+
			"not to the vpcflow API. An ssl: --ovsdb needs --ovsdb-tls-cert/-key/-ca (the\n"+
			"client certificate shown to ovsdb-server and the CA that signed its\n"+
			"certificate). An ssl: --controller needs the switch's own keys\n"+
			"(ovs-vsctl set-ssl KEY CERT CACERT, CACERT being the CA of vpcflow's\n"+
			"--openflow-tls-cert).",
		"vpcflow bridge setup br-test --ovsdb unix:/var/run/openvswitch/db.sock --controller tcp:127.0.0.1:6653\n"+
			"vpcflow bridge setup br-test --create --datapath-type netdev --controller tcp:127.0.0.1:6653\n"+
			"vpcflow bridge setup br-test --controller tcp:10.0.0.1:6653,tcp:10.0.0.2:6653,tcp:10.0.0.3:6653   # three replicas\n"+
			"vpcflow bridge setup br-vpc --ovsdb ssl:192.0.2.11:6640 --ovsdb-tls-cert cert.pem --ovsdb-tls-key key.pem --ovsdb-tls-ca ca.pem --controller ssl:192.0.2.254:6653")
	endpoint := k.fs.String("ovsdb", defaultOVSDB, "OVSDB server: unix:PATH, tcp:HOST:PORT or ssl:HOST:PORT")
	tlsf := addTLSFlags(k.fs, "ovsdb",
		"PEM client certificate shown to an ssl: --ovsdb (with --ovsdb-tls-key and --ovsdb-tls-ca)",
		"PEM CA certificate(s) the ssl: OVSDB server's certificate must be signed by (and name its host)")
	var controllers repeated
	k.fs.Var(&controllers, "controller", "controller target, e.g. tcp:127.0.0.1:6653 (repeatable, or comma-separated: every replica of an etcd --store; required)")
	create := k.fs.Bool("create", false, "create the bridge if it does not exist")
	dpType := k.fs.String("datapath-type", "", `datapath_type, e.g. "netdev" for the userspace datapath (default: leave as is)`)
	timeout := k.fs.Duration("timeout", 10*time.Second, "give up after this long")
	verbose := k.fs.Bool("v", false, "log what is done")
	pos, code, ok := k.parse(args, "BRIDGE")
	if !ok {
		return code
	}
	if *timeout <= 0 {
		return k.usageError("--timeout %s: want a duration above 0, such as 10s", *timeout)
	}
	// Replicas: one bridge lists every vpcflow replica (repeated
	// --controller, or one comma-separated list).
	var targets []string
	for _, c := range controllers {
		for _, t := range strings.Split(c, ",") {
			if t = strings.TrimSpace(t); t != "" {
				targets = append(targets, t)
			}
		}
	}
	controllers = targets
	if len(controllers) == 0 {
		return k.usageError("--controller is required (e.g. --controller tcp:127.0.0.1:6653)")
	}
	level := zapcore.WarnLevel
	if *verbose {
		level = zapcore.InfoLevel
	}
	enc := zap.NewDevelopmentEncoderConfig()
	log := zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.AddSync(c.stderr), level))
	defer func() { _ = log.Sync() }()

	tlsCfg, err := ovsdbTLSConfig(tlsf)
	if err == nil {
		err = checkOVSDBTLS([]string{*endpoint}, tlsCfg, tlsf)
	}
	if err != nil {
		return k.usageError("%v", err)
	}
	var conn []ovsdb.ConnOption
	if tlsCfg != nil {
		conn = append(conn, ovsdb.WithTLS(tlsCfg))
	}
	ctx, cancel := context.WithTimeout(c.ctx, *timeout)
	defer cancel()
	err = ovsdb.SetupBridge(ctx, log, *endpoint, pos[0], ovsdb.SetupOptions{
		Create:       *create,
		DatapathType: *dpType,
		Controllers:  controllers,
	}, conn...)
	if err != nil {
		return k.fail(err)
	}
	fmt.Fprintf(c.stdout, "bridge %s is set up for vpcflow: OpenFlow13, fail_mode=secure, out-of-band controller %s\n",
		pos[0], strings.Join(controllers, ", "))
	return exitOK
}
