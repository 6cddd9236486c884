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
	k := c.command("bridge setup", "BRIDGE [--ovsdb unix:PATH|tcp:HOST:PORT] --controller tcp:IP:6653 [--create] [--datapath-type netdev]",
		"Prepare an OVS bridge for vpcflow in one OVSDB transaction: protocols=OpenFlow13,\n"+
			"fail_mode=secure, other_config:disable-in-band=true, and the controller set\n"+
			"replaced by --controller (out-of-band). Idempotent. Talks to OVSDB directly,\n"+
			"not to the vpcflow API.",
		"vpcflow bridge setup br-test --ovsdb unix:/var/run/openvswitch/db.sock --controller tcp:127.0.0.1:6653\n"+
			"vpcflow bridge setup br-test --create --datapath-type netdev --controller tcp:127.0.0.1:6653")
	endpoint := k.fs.String("ovsdb", defaultOVSDB, "OVSDB server: unix:PATH, tcp:HOST:PORT or ssl:HOST:PORT")
	var controllers repeated
	k.fs.Var(&controllers, "controller", "controller target, e.g. tcp:127.0.0.1:6653 (repeatable; required)")
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

	ctx, cancel := context.WithTimeout(c.ctx, *timeout)
	defer cancel()
	err := ovsdb.SetupBridge(ctx, log, *endpoint, pos[0], ovsdb.SetupOptions{
		Create:       *create,
		DatapathType: *dpType,
		Controllers:  controllers,
	})
	if err != nil {
		return k.fail(err)
	}
	fmt.Fprintf(c.stdout, "bridge %s is set up for vpcflow: OpenFlow13, fail_mode=secure, out-of-band controller %s\n",
		pos[0], strings.Join(controllers, ", "))
	return exitOK
}
