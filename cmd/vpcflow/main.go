// Command vpcflow is the vpcflow controller (`vpcflow serve`) and its
// command-line client: every other subcommand talks to a running
// controller's REST API, except `bridge setup`, which talks to OVSDB.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the command ran and failed (API error, OVSDB error…)
	exitUsage = 2 // bad command line
	// 3 and 4: see exitNoStore and exitBadStore.
	// exitUnconfirmed: the change is stored, but not every switch
	// confirmed it (the API's 202).
	exitUnconfirmed = 5
)

// defaultAPI is the API URL when neither --api nor VPCFLOW_API is set.
const defaultAPI = "http://127.0.0.1:8080"

// tokenEnv holds the REST API's bearer token, for `serve` and the client
// commands alike.
const tokenEnv = "VPCFLOW_API_TOKEN"

const mainUsage = `usage: vpcflow [--api URL] [--api-token TOKEN] [--timeout DUR] COMMAND [ARGS] [FLAGS]

vpcflow is an OpenFlow controller that makes Open vSwitch bridges behave
like an Alibaba Cloud VPC vSwitch: register hosts (VM NICs) and subnets
(route entries) and the fabric answers every ARP with ee:ff:ff:ff:ff:ff
and routes by destination prefix.

Commands:
  serve       run the controller (OpenFlow listener, OVSDB monitor, REST API)
  init        create an empty store (serve never creates one unless given --init)
  store       check the store's file (store check)
  backup      save a consistent copy of a running vpcflow's store
  restore     bring a running fabric back to a backup, changing only what differs
              (--offline: put it in place of the store, vpcflow serve stopped)
  bridge      prepare an OVS bridge for vpcflow (bridge setup)
  vpc         create, list, show and delete VPCs
  vswitch     create, list, show and delete vSwitches
  host        add, update, list, show and delete hosts
  chassis     add, list, show and delete chassis (hosts with their own OVS, joined by VXLAN)
  subnet      add, move, list, show and delete subnets (route entries)
  dhcp-options  create, update, list, show and delete a VPC's DHCP options set
  sg          security groups: create, list, show, delete; their rules; assign hosts
  uplink      add, update, list, show and delete uplinks (the way out to an outside network)
  nat         a VPC's NAT gateway (nat gateway) and its SNAT and DNAT entries (nat snat, nat dnat)
  eip         elastic IPs: create, bind, unbind, list, show, delete
  switches    list the switches connected to the controller
  switch-cert which TLS certificate each switch's dpid is bound to: list, show, pin, unbind
  flows       dump the flows installed on a switch
  drops       show the packets the pipeline dropped, by reason
  trace       simulate a packet through the pipeline, in VPC terms
  config      check serve's configuration file (config check)
  version     print the version, commit, Go version and store schema

Global flags:
  --api URL          REST API of a running vpcflow (default $VPCFLOW_API or ` + defaultAPI + `)
  --api-token TOKEN  bearer token for an API started with a token (default $VPCFLOW_API_TOKEN;
                     prefer the variable: a flag is visible to other users in ps)
  --timeout DUR      timeout of each API request, above 0 (default 30s)
The global flags may also follow the command (vpcflow vpc list --timeout 5s);
there they win. Every API command lists them in its --help.

Exit status: 0 done; 1 failed (API error, unreachable API…); 2 bad command
line; 3 no store, 4 damaged store (serve, init, store check); 5 the change
is stored but not every switch confirmed it within --timeout (each switch
and why is printed on stderr; it gets the change when it catches up or
reconnects).

Example (the seed scenario):
  vpcflow serve --ovsdb unix:/var/run/openvswitch/db.sock &
  vpcflow bridge setup br-test --ovsdb unix:/var/run/openvswitch/db.sock --controller tcp:127.0.0.1:6653
  vpcflow vpc create vpc-a --cidr 10.0.0.0/8
  vpcflow vswitch create --vpc vpc-a vsw-a --cidr 10.10.10.0/24 --gateway 10.10.10.1
  vpcflow host add --vpc vpc-a test1 --vswitch vsw-a --ip 10.10.10.11 --bridge br-test --interface vnet1
  vpcflow subnet add --vpc vpc-a 172.18.1.0/24 --host test1

Run 'vpcflow COMMAND --help' for a command's usage and flags.
`

// cli is one invocation of the command line.
type cli struct {
	ctx     context.Context
	stdout  io.Writer
	stderr  io.Writer
	api     string        // global --api
	token   string        // global --api-token
	timeout time.Duration // global --timeout
	getenv  func(string) string
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runEnv(ctx, args, stdout, stderr, os.Getenv)
}

// runEnv is run with the environment passed in, for tests.
func runEnv(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	c := &cli{ctx: ctx, stdout: stdout, stderr: stderr, getenv: getenv}
	fs := flag.NewFlagSet("vpcflow", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	apiDefault := getenv("VPCFLOW_API")
	if apiDefault == "" {
		apiDefault = defaultAPI
	}
	fs.StringVar(&c.api, "api", apiDefault, "REST API URL")
	fs.StringVar(&c.token, "api-token", getenv(tokenEnv), "REST API bearer token")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "API request timeout")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, mainUsage)
			return exitOK
		}
		fmt.Fprintf(stderr, "error: %v\n\n%s", err, mainUsage)
		return exitUsage
	}
	if c.timeout <= 0 {
		fmt.Fprintf(stderr, "error: --timeout %s: want a duration above 0, such as 10s\n", c.timeout)
		return exitUsage
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fmt.Fprint(stderr, mainUsage)
		return exitUsage
	}
	cmd, cargs := rest[0], rest[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, cargs, stdout, stderr, getenv)
	case "bridge":
		return c.group("bridge", "prepare Open vSwitch bridges for vpcflow", []subcommand{
			{"setup", "set a bridge up for vpcflow (OpenFlow13, fail_mode=secure, out-of-band controller)", c.bridgeSetup},
		}, cargs)
	case "vpc":
		return c.group("vpc", "manage VPCs", []subcommand{
			{"create", "create a VPC", c.vpcCreate},
			{"list", "list VPCs", c.vpcList},
			{"show", "show one VPC", c.vpcShow},
			{"delete", "delete a VPC (--cascade: with everything in it)", c.vpcDelete},
		}, cargs)
	case "vswitch":
		return c.group("vswitch", "manage the vSwitches of a VPC", []subcommand{
			{"create", "create a vSwitch", c.vswitchCreate},
			{"list", "list a VPC's vSwitches", c.vswitchList},
			{"show", "show one vSwitch", c.vswitchShow},
			{"delete", "delete a vSwitch (--cascade: with its hosts and their subnets)", c.vswitchDelete},
		}, cargs)
	case "chassis":
		return c.group("chassis", "manage chassis (physical hosts with their own Open vSwitch, joined by VXLAN)", []subcommand{
			{"add", "register a chassis (its bridge is set up with a VXLAN port)", c.chassisAdd},
			{"list", "list the chassis", c.chassisList},
			{"show", "show one chassis and the hosts on it", c.chassisShow},
			{"delete", "delete a chassis (--cascade: with its hosts and their subnets)", c.chassisDelete},
		}, cargs)
	case "host":
		return c.group("host", "manage the hosts (VM NICs) of a VPC", []subcommand{
			{"add", "register a host", c.hostAdd},
			{"update", "change a host's MAC or attachment (it keeps its id and route entries)", c.hostUpdate},
			{"list", "list a VPC's hosts", c.hostList},
			{"show", "show one host", c.hostShow},
			{"delete", "delete a host (--cascade: with the subnets routed to it)", c.hostDelete},
		}, cargs)
	case "subnet":
		return c.group("subnet", "manage the subnets (route entries) of a VPC", []subcommand{
			{"add", "add a route entry: CIDR via a host", c.subnetAdd},
			{"move", "point a route entry at another host", c.subnetMove},
			{"list", "list a VPC's route entries", c.subnetList},
			{"show", "show one route entry", c.subnetShow},
			{"delete", "delete a route entry", c.subnetDelete},
		}, cargs)
	case "dhcp-options":
		return c.group("dhcp-options", "manage a VPC's DHCP options set (domain, DNS servers, lease, static routes)", []subcommand{
			{"create", "create the VPC's DHCP options set", c.dhcpOptionsCreate},
			{"update", "replace its values", c.dhcpOptionsUpdate},
			{"list", "list a VPC's DHCP options set", c.dhcpOptionsList},
			{"show", "show one DHCP options set", c.dhcpOptionsShow},
			{"delete", "delete a DHCP options set", c.dhcpOptionsDelete},
		}, cargs)
	case "sg":
		return c.sg(cargs)
	case "uplink":
		return c.uplink(cargs)
	case "nat":
		return c.nat(cargs)
	case "eip":
		return c.eip(cargs)
	case "config":
		return c.group("config", "check vpcflow serve's configuration", []subcommand{
			{"check", "check a configuration file (and VPCFLOW_* variables) without starting anything", c.configCheck},
		}, cargs)
	case "version":
		return c.version(cargs)
	case "init":
		return c.initStore(cargs)
	case "backup":
		return c.backup(cargs)
	case "restore":
		return c.restore(cargs)
	case "store":
		if len(cargs) > 0 && cargs[0] == verifyInternal {
			return c.verifyInProcess(cargs[1:])
		}
		return c.group("store", "check the on-disk store", []subcommand{
			{"check", "check the store's file without changing it", c.storeCheck},
		}, cargs)
	case "switches":
		return c.switches(cargs)
	case "switch-cert":
		return c.switchCert(cargs)
	case "flows":
		return c.flows(cargs)
	case "drops":
		return c.drops(cargs)
	case "trace":
		return c.trace(cargs)
	case "help":
		if len(cargs) > 0 {
			return runEnv(ctx, append(cargs, "--help"), stdout, stderr, getenv)
		}
		fmt.Fprint(stdout, mainUsage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "error: unknown command %q\n\n%s", cmd, mainUsage)
		return exitUsage
	}
}

// subcommand is one verb of a command group.
type subcommand struct {
	name, summary string
	run           func(args []string) int
}

// group dispatches `vpcflow NAME VERB ...`.
func (c *cli) group(name, summary string, subs []subcommand, args []string) int {
	usage := func(w io.Writer) {
		fmt.Fprintf(w, "usage: vpcflow %s COMMAND [ARGS] [FLAGS]\n\nvpcflow %s: %s.\n\nCommands:\n", name, name, summary)
		width := 0
		for _, s := range subs {
			width = max(width, len(s.name))
		}
		for _, s := range subs {
			fmt.Fprintf(w, "  %-*s  %s\n", width, s.name, s.summary)
		}
		fmt.Fprintf(w, "\nRun 'vpcflow %s COMMAND --help' for a command's usage, flags and an example.\n", name)
	}
	if len(args) == 0 {
		usage(c.stderr)
		return exitUsage
	}
	if isHelp(args[0]) || args[0] == "help" {
		usage(c.stdout)
		return exitOK
	}
	for _, s := range subs {
		if s.name == args[0] {
			return s.run(args[1:])
		}
	}
	fmt.Fprintf(c.stderr, "error: unknown command %q\n\n", name+" "+args[0])
	usage(c.stderr)
	return exitUsage
}

func isHelp(a string) bool { return a == "-h" || a == "-help" || a == "--help" }

// wantsHelp says whether args ask for help (before any "--").
func wantsHelp(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if isHelp(a) {
			return true
		}
	}
	return false
}

// parseInterspersed parses flags wherever they are among args (users
// type `vpcflow host add test1 --vpc v ...`) and returns the positional
// arguments. Everything after "--" is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		f := fs.Lookup(name)
		if f == nil || isBoolFlag(f) {
			continue
		}
		if i+1 < len(args) {
			flags = append(flags, args[i+1])
			i++
		}
	}
	if err := fs.Parse(flags); err != nil {
		return nil, err
	}
	return pos, nil
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}
