package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/vpcflow/vpcflow/api"
	"github.com/vpcflow/vpcflow/controller"
	"github.com/vpcflow/vpcflow/topology"
)

func chassisTable(w io.Writer, v any) {
	row(w, "NAME", "ID", "OVSDB", "BRIDGE", "TUNNEL_IP", "CONTROLLER")
	for _, x := range asList[topology.Chassis](v) {
		row(w, x.Name, x.ID, x.OVSDB, x.Bridge, x.TunnelIP, x.Controller)
	}
}

func (c *cli) chassisAdd(args []string) int {
	k := c.command("chassis add", "NAME --ovsdb unix:PATH|tcp:HOST:PORT|ssl:HOST:PORT --bridge BRIDGE --tunnel-ip IP [--controller tcp:HOST:PORT|ssl:HOST:PORT]",
		"Register a chassis: a physical host running its own Open vSwitch. vpcflow\n"+
			"connects to its OVSDB, sets the bridge up for itself (OpenFlow13,\n"+
			"fail_mode=secure, out-of-band controller) with a flow-based VXLAN port\n"+
			"("+topology.TunnelPortName+"), and carries VM traffic to other chassis in VXLAN\n"+
			"from and to --tunnel-ip. A chassis it cannot configure is refused. Hosts\n"+
			"are then attached with `host add --chassis NAME --interface IFACE`.\n"+
			"TLS: it is vpcflow serve that connects to the chassis, so an ssl: --ovsdb\n"+
			"uses serve's --ovsdb-tls-cert/-key/-ca (its certificate must name the host),\n"+
			"and an ssl: --controller needs the chassis's own keys (ovs-vsctl set-ssl\n"+
			"KEY CERT CACERT) and serve's --openflow-tls-*; this command takes no\n"+
			"certificates itself.",
		"vpcflow chassis add node1 --ovsdb tcp:192.168.100.11:6640 --bridge br-vpc --tunnel-ip 192.168.100.11 --controller tcp:192.168.100.254:6653\n"+
			"vpcflow chassis add node2 --ovsdb tcp:192.168.100.12:6640 --bridge br-vpc --tunnel-ip 192.168.100.12").withAPI()
	ovsdbEP := k.fs.String("ovsdb", "", "the chassis's OVSDB server: unix:/PATH/db.sock, tcp:HOST:PORT or ssl:HOST:PORT (required;\nssl: with serve's --ovsdb-tls-*)")
	bridge := k.fs.String("bridge", "", "the chassis's OVS bridge the VMs are on (required; it must exist)")
	tunnelIP := k.fs.String("tunnel-ip", "", "the chassis's IPv4 VXLAN endpoint on the underlay (required)")
	ctl := k.fs.String("controller", "", "OpenFlow target the bridge connects to: tcp:HOST:PORT, ssl:HOST:PORT or unix:PATH;\nseveral comma-separated for replicas (default: the --advertise target(s) of vpcflow serve)")
	pos, code, ok := k.parse(args, "NAME")
	if !ok {
		return code
	}
	if code, ok := k.required("ovsdb", "bridge", "tunnel-ip"); !ok {
		return code
	}
	req := api.ChassisRequest{Name: pos[0], OVSDB: *ovsdbEP, Bridge: *bridge, TunnelIP: *tunnelIP, Controller: *ctl}
	return k.call(func(ctx context.Context, cl *api.Client) (any, error) {
		return cl.CreateChassis(ctx, req)
	}, chassisTable)
}

func (c *cli) chassisList(args []string) int {
	k := c.command("chassis list", "[--limit N [--page-token TOKEN]]", "List the chassis, by name.", "vpcflow chassis list\nvpcflow chassis list -o json\nvpcflow chassis list --limit 100").withAPI()
	pg := k.pageFlags()
	if _, code, ok := k.parse(args); !ok {
		return code
	}
	return k.callPage(pg, func(ctx context.Context, cl *api.Client, pg api.Page) (any, api.PageInfo, error) {
		return cl.ListChassisPage(ctx, pg)
	}, chassisTable)
}

// chassisSummary is what `chassis show` prints.
type chassisSummary struct {
	topology.Chassis
	// Hosts are the hosts attached to the chassis, as VPC/NAME.
	Hosts []string `json:"hosts"`
	// Status is what is actually there (from the controller).
	Status *controller.ChassisStatus `json:"status,omitempty"`
}

func (c *cli) chassisShow(args []string) int {
	k := c.command("chassis show", "NAME", "Show a chassis and the hosts attached to it (in every VPC).", "vpcflow chassis show node1").withAPI()
	pos, code, ok := k.parse(args, "NAME")
	if !ok {
		return code
	}
	return k.call(func(ctx context.Context, cl *api.Client) (any, error) {
		d, err := cl.ChassisDetail(ctx, pos[0])
		if err != nil {
			return nil, err
		}
		ch := d.Chassis
		vpcs, err := cl.ListVPCs(ctx)
		if err != nil {
			return nil, err
		}
		hosts := []string{}
		for _, v := range vpcs {
			hs, err := cl.ListHosts(ctx, v.Name)
			if err != nil {
				return nil, err
			}
			for _, h := range hs {
				if h.Chassis == ch.Name {
					hosts = append(hosts, v.Name+"/"+h.Name)
				}
			}
		}
		return chassisSummary{Chassis: ch, Hosts: hosts, Status: d.Status}, nil
	}, func(w io.Writer, v any) {
		s := v.(chassisSummary)
		ctl := s.Controller
		if ctl == "" {
			ctl = "- (vpcflow serve --advertise)"
		}
		hosts := "-"
		if len(s.Hosts) > 0 {
			hosts = strings.Join(s.Hosts, ", ")
		}
		fmt.Fprintf(w, "name:\t%s\nid:\t%d\novsdb:\t%s\nbridge:\t%s\ntunnel_ip:\t%s\ncontroller:\t%s\ntunnel port:\t%s\nhosts:\t%s\n",
			s.Name, s.ID, s.OVSDB, s.Bridge, s.TunnelIP, ctl, topology.TunnelPortName, hosts)
		if s.Status != nil {
			printChassisStatus(w, s.Status)
		}
	})
}

func (c *cli) chassisDelete(args []string) int {
	return c.cascadingDelete(args, cascadingDelete{
		name: "chassis delete", usage: "NAME [--cascade]",
		desc: "Delete a chassis. No host may be attached to it, unless --cascade is given:\n" +
			"then its hosts (in every VPC) and the subnets routed to them are deleted\n" +
			"with it, in one change. The chassis's bridge and VXLAN port are left as\n" +
			"they are.",
		example: "vpcflow chassis delete node1\nvpcflow chassis delete node1 --cascade",
		takes:   "the hosts attached to it and the subnets routed to them",
		done:    "deleted chassis %s", doneCascade: ", with its hosts and their subnets",
		del: func(ctx context.Context, cl *api.Client, _, name string, cascade bool) error {
			return cl.DeleteChassis(ctx, name, api.Cascade(cascade))
		},
	})
}

// printChassisStatus prints what is actually there for a chassis, as
// `chassis show` lines.
func printChassisStatus(w io.Writer, st *controller.ChassisStatus) {
	yesNo := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	ovsdbState := st.OVSDB
	if !st.OVSDBSince.IsZero() {
		ovsdbState += " since " + st.OVSDBSince.UTC().Format(time.RFC3339)
	}
	if st.OVSDBError != "" {
		ovsdbState += " (" + st.OVSDBError + ")"
	}
	fmt.Fprintf(w, "ovsdb state:\t%s\n", ovsdbState)
	switch {
	case !st.Bridge:
		fmt.Fprintf(w, "bridge found:\tno\n")
	default:
		fmt.Fprintf(w, "bridge found:\tyes, dpid %s\n", st.DPID)
	}
	fmt.Fprintf(w, "switch connected:\t%s\n", yesNo(st.SwitchConnected))
	ctls := "-"
	if len(st.Controllers) > 0 {
		ctls = strings.Join(st.Controllers, ", ")
	}
	fmt.Fprintf(w, "controller set:\t%s (bridge controllers: %s)\n", yesNo(st.ControllerSet), ctls)
	switch tp := st.TunnelPort; {
	case tp == nil:
		fmt.Fprintf(w, "tunnel port ok:\tno (missing)\n")
	case !tp.FlowBased:
		fmt.Fprintf(w, "tunnel port ok:\tno (type %q, not flow-based)\n", tp.Type)
	default:
		fmt.Fprintf(w, "tunnel port ok:\tyes, ofport %d\n", tp.OFPort)
	}
	drift := "none"
	if len(st.Drift) > 0 {
		drift = strings.Join(st.Drift, "; ") + " (being repaired)"
	}
	fmt.Fprintf(w, "drift:\t%s\n", drift)
	repairs := fmt.Sprint(st.Repairs)
	if st.Repairs > 0 {
		repairs += fmt.Sprintf(", last %s: %s", st.LastRepair.UTC().Format(time.RFC3339), strings.Join(st.LastDrift, "; "))
	}
	if st.RepairError != "" {
		repairs += " (failing: " + st.RepairError + ")"
	}
	fmt.Fprintf(w, "repairs:\t%s\n", repairs)
	mtu := "unknown (no uplink interface seen in its OVSDB)"
	if st.UnderlayMTU > 0 {
		mtu = fmt.Sprintf("%d (%s)", st.UnderlayMTU, st.UnderlayInterface)
	}
	fmt.Fprintf(w, "underlay mtu:\t%s, --underlay-mtu %d\n", mtu, st.ConfiguredMTU)
	if st.MTUWarning != "" {
		fmt.Fprintf(w, "WARNING:\t%s\n", st.MTUWarning)
	}
}
