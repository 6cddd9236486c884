package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/vpcflow/vpcflow/api"
	"github.com/vpcflow/vpcflow/topology"
)

// ---- tables ----

func vpcTable(w io.Writer, v any) {
	row(w, "NAME", "ID", "CIDR", "DEC_TTL")
	for _, x := range asList[topology.VPC](v) {
		cidr := ""
		if x.CIDR.IsValid() {
			cidr = x.CIDR.String()
		}
		row(w, x.Name, x.ID, cidr, x.DecTTL)
	}
}

func vswitchTable(w io.Writer, v any) {
	views := asList[api.VSwitchView](v)
	if views == nil {
		// As created (POST answers the vSwitch as stored).
		row(w, "NAME", "ID", "CIDR", "GATEWAY")
		for _, x := range asList[topology.VSwitch](v) {
			row(w, x.Name, x.ID, x.CIDR, x.Gateway)
		}
		return
	}
	row(w, "NAME", "ID", "CIDR", "GATEWAY", "HOSTS")
	for _, x := range views {
		row(w, x.Name, x.ID, x.CIDR, x.Gateway, x.HostCount)
	}
}

// hostTable prints hosts; those read back with GET (api.HostInfo) also
// show where they are attached now, and why not when they are not.
func hostTable(w io.Writer, v any) {
	hosts := asList[api.HostInfo](v)
	if hosts == nil {
		row(w, "NAME", "ID", "VSWITCH", "IP", "MAC", "ATTACHMENT")
		for _, x := range asList[topology.Host](v) {
			row(w, x.Name, x.ID, x.VSwitch, x.IP, x.MAC, attachment(x))
		}
		return
	}
	row(w, "NAME", "ID", "VSWITCH", "IP", "MAC", "ATTACHMENT", "STATE", "DETAIL")
	for _, x := range hosts {
		row(w, x.Name, x.ID, x.VSwitch, x.IP, x.MAC, attachment(x.Host), x.Attachment.State, x.Attachment.Detail)
	}
}

func attachment(h topology.Host) string {
	if h.Bridge != "" {
		return h.Bridge + "/" + h.Interface
	}
	if h.Chassis != "" {
		return "chassis=" + h.Chassis + ",interface=" + h.Interface
	}
	return fmt.Sprintf("dpid=%s,ofport=%d", h.DPID, h.OFPort)
}

func subnetTable(w io.Writer, v any) {
	row(w, "NAME", "ID", "CIDR", "HOST")
	for _, x := range asList[topology.Subnet](v) {
		row(w, x.Name, x.ID, x.CIDR, x.Host)
	}
}

// asList accepts one T or a []T.
func asList[T any](v any) []T {
	switch x := v.(type) {
	case T:
		return []T{x}
	case []T:
		return x
	}
	return nil
}

// ---- vpc ----

func (c *cli) vpcCreate(args []string) int {
	k := c.command("vpc create", "NAME [--cidr CIDR] [--dec-ttl]",
		"Create a VPC. --cidr optionally bounds its vSwitches; --dec-ttl makes the\nfabric decrement the TTL of routed packets.",
		"vpcflow vpc create vpc-a --cidr 10.0.0.0/8").withAPI()
	cidr := k.fs.String("cidr", "", "IPv4 CIDR that contains all the VPC's vSwitches (optional)")
	decTTL := k.fs.Bool("dec-ttl", false, "decrement the TTL of routed packets")
	pos, code, ok := k.parse(args, "NAME")
	if !ok {
		return code
	}
	return k.call(func(ctx context.Context, cl *api.Client) (any, error) {
		return cl.CreateVPC(ctx, api.VPCRequest{Name: pos[0], CIDR: *cidr, DecTTL: *decTTL})
	}, vpcTable)
}

func (c *cli) vpcList(args []string) int {
	k := c.command("vpc list", "[--limit N [--page-token TOKEN]]", "List the VPCs, by name.", "vpcflow vpc list\nvpcflow vpc list -o json\nvpcflow vpc list --limit 100").withAPI()
	pg := k.pageFlags()
	if _, code, ok := k.parse(args); !ok {
		return code
	}
	return k.callPage(pg, func(ctx context.Context, cl *api.Client, pg api.Page) (any, api.PageInfo, error) {
		return cl.ListVPCsPage(ctx, pg)
	}, vpcTable)
}

// vpcSummary is what `vpc show` prints.
type vpcSummary struct {
	topology.VPC
	VSwitches int `json:"vswitches"`
	Hosts     int `json:"hosts"`
	Subnets   int `json:"subnets"`
}

// MarshalJSON writes the VPC's fields and the counts (the MarshalJSON of
// the embedded VPC, promoted, would write the VPC alone).
func (s vpcSummary) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(s.VPC)
	if err != nil {
		return nil, err
	}
	m := map[string]json.RawMessage{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for k, n := range map[string]int{"vswitches": s.VSwitches, "hosts": s.Hosts, "subnets": s.Subnets} {
		m[k] = json.RawMessage(strconv.Itoa(n))
	}
	return json.Marshal(m)
}

func (c *cli) vpcShow(args []string) int {
	k := c.command("vpc show", "NAME", "Show a VPC and how many vSwitches, hosts and subnets it has.", "vpcflow vpc show vpc-a").withAPI()
	pos, code, ok := k.parse(args, "NAME")
	if !ok {
		return code
	}
	return k.call(func(ctx context.Context, cl *api.Client) (any, error) {
		v, err := cl.GetVPC(ctx, pos[0])
		if err != nil {
			return nil, err
		}
		ws, err := cl.ListVSwitches(ctx, v.Name)
		if err != nil {
			return nil, err
		}
		hs, err := cl.ListHosts(ctx, v.Name)
		if err != nil {
			return nil, err
		}
		ss, err := cl.ListSubnets(ctx, v.Name)
		if err != nil {
			return nil, err
		}
		return vpcSummary{VPC: v, VSwitches: len(ws), Hosts: len(hs), Subnets: len(ss)}, nil
	}, func(w io.Writer, v any) {
		s := v.(vpcSummary)
		cidr := "-"
		if s.CIDR.IsValid() {
			cidr = s.CIDR.String()
		}
		fmt.Fprintf(w, "name:\t%s\nid:\t%d\ncidr:\t%s\ndec_ttl:\t%t\nvswitches:\t%d\nhosts:\t%d\nsubnets:\t%d\n",
			s.Name, s.ID, cidr, s.DecTTL, s.VSwitches, s.Hosts, s.Subnets)
	})
}

func (c *cli) vpcDelete(args []string) int {
	return c.cascadingDelete(args, cascadingDelete{
		name: "vpc delete", usage: "NAME [--cascade]",
		desc:    "Delete a VPC. It must be empty (delete its subnets, hosts and vSwitches first),\nunless --cascade is given: then they are deleted with it, in one change.",
		example: "vpcflow vpc delete vpc-a\nvpcflow vpc delete vpc-a --cascade",
		takes:   "its subnets, hosts and vSwitches",
		done:    "deleted VPC %s", doneCascade: " and all its vSwitches, hosts and subnets",
		del: func(ctx context.Context, cl *api.Client, _, name string, cascade bool) error {
			return cl.DeleteVPC(ctx, name, api.Cascade(cascade))
		},
	})
}

// cascadeHint rewrites the API's advice in a 409 for the command line.
func cascadeHint(err error) error {
	var ae *api.Error
	if errors.As(err, &ae) && ae.Status == http.StatusConflict && strings.Contains(ae.Msg, "?cascade=true") {
		c := *ae
		c.Msg = strings.ReplaceAll(c.Msg, "use ?cascade=true", "use --cascade")
		return &c
	}
	return err
}

// ---- vswitch ----

// vpcFlag adds the required --vpc flag.
func (k *command) vpcFlag() *string {
	return k.fs.String("vpc", "", "the VPC (required)")
}

func (c *cli) vswitchCreate(args []string) int {
	k := c.command("vswitch create", "--vpc VPC NAME --cidr CIDR [--gateway IP]",
		"Create a vSwitch: an IPv4 subnet (/16 to /29) of the VPC that hosts attach to.\nThe gateway defaults to the broadcast address minus 2, as on Aliyun.",
		"vpcflow vswitch create --vpc vpc-a vsw-a --cidr 10.10.10.0/24 --gateway 10.10.10.1").withAPI()
	vpc := k.vpcFlag()
	cidr := k.fs.String("cidr", "", "IPv4 CIDR of the vSwitch (required)")
	gw := k.fs.String("gateway", "", "gateway address (default: broadcast − 2)")
	pos, code, ok := k.parse(args, "NAME")
	if !ok {
		return code
	}
	if code, ok := k.required("vpc", "cidr"); !ok {
		return code
	}
	return k.call(func(ctx context.Context, cl *api.Client) (any, error) {
		return cl.CreateVSwitch(ctx, *vpc, api.VSwitchRequest{Name: pos[0], CIDR: *cidr, Gateway: *gw})
	}, vswitchTable)
}

func (c *cli) vswitchList(args []string) int {
	return c.listInVPC(args, "vswitch list", "List a VPC's vSwitches, by name.", "vpcflow vswitch list --vpc vpc-a",
		func(ctx context.Context, cl *api.Client, vpc string, pg api.Page) (any, api.PageInfo, error) {
			return cl.ListVSwitchesPage(ctx, vpc, pg)
		}, vswitchTable)
}

func (c *cli) vswitchShow(args []string) int {
	return c.showInVPC(args, "vswitch show", "Show one vSwitch.", "vpcflow vswitch show --vpc vpc-a vsw-a",
		func(ctx context.Context, cl *api.Client, vpc, name string) (any, error) {
			return cl.GetVSwitch(ctx, vpc, name)
		}, vswitchTable)
}

func (c *cli) vswitchDelete(args []string) int {
	return c.cascadingDelete(args, cascadingDelete{
		name: "vswitch delete", usage: "--vpc VPC NAME [--cascade]", inVPC: true,
		desc:    "Delete a vSwitch. It must have no hosts, unless --cascade is given: then its\nhosts and the subnets routed to them are deleted with it, in one change.",
		example: "vpcflow vswitch delete --vpc vpc-a vsw-a\nvpcflow vswitch delete --vpc vpc-a vsw-a --cascade",
		takes:   "its hosts and the subnets routed to them",
		done:    "deleted vSwitch %s from VPC %s", doneCascade: ", with its hosts and their subnets",
		del: func(ctx context.Context, cl *api.Client, vpc, name string, cascade bool) error {
			return cl.DeleteVSwitch(ctx, vpc, name, api.Cascade(cascade))
		},
	})
}

// ---- host ----

func (c *cli) hostAdd(args []string) int {
	k := c.command("host add", "--vpc VPC NAME --vswitch VSWITCH --ip IP [--mac MAC] (--bridge BRIDGE --interface IFACE | --chassis CHASSIS --interface IFACE | --dpid DPID --ofport PORT)",
		"Register a host (a VM's NIC) in a vSwitch. Attach it by OVS bridge and interface\n"+
			"(the controller finds the port through its --ovsdb servers), by chassis and\n"+
			"interface (through that chassis's OVSDB, on its bridge), or by datapath id and\n"+
			"port. Attached by interface, the MAC defaults to the interface's\n"+
			"external_ids:attached-mac.",
		"vpcflow host add --vpc vpc-a test1 --vswitch vsw-a --ip 10.10.10.11 --bridge br-test --interface vnet1\n"+
			"vpcflow host add --vpc vpc-a vm1 --vswitch vsw-a --ip 10.10.10.21 --chassis node1 --interface vnet1\n"+
			"vpcflow host add test2 --vpc vpc-a --vswitch vsw-a --ip 10.10.10.12 --mac 52:58:00:98:c0:92 --dpid 0x1 --ofport 3").withAPI()
	vpc := k.vpcFlag()
	vsw := k.fs.String("vswitch", "", "the vSwitch the host is in (required)")
	ip := k.fs.String("ip", "", "the host's IPv4 address in the vSwitch (required)")
	mac := k.fs.String("mac", "", "the host's MAC (default: the interface's external_ids:attached-mac)")
	bridge := k.fs.String("bridge", "", "OVS bridge the host's interface is on, with --interface")
	ovsdbEP := k.fs.String("ovsdb", "", "the --ovsdb server of --bridge, when several have a bridge of that name")
	chassis := k.fs.String("chassis", "", "chassis the host's interface is on (see vpcflow chassis list), with --interface")
	iface := k.fs.String("interface", "", "OVS interface of the host, e.g. vnet1")
	dpid := k.fs.String("dpid", "", "datapath id (16 hex digits or 0x…), with --ofport")
	ofport := k.fs.Uint64("ofport", 0, "OpenFlow port number, with --dpid")
	pos, code, ok := k.parse(args, "NAME")
	if !ok {
		return code
	}
	if code, ok := k.required("vpc", "vswitch", "ip"); !ok {
		return code
	}
	if *ofport > math.MaxUint32 {
		return k.usageError("--ofport %d is out of range", *ofport)
	}
	req := api.HostRequest{Name: pos[0], VSwitch: *vsw, IP: *ip, MAC: *mac, Bridge: *bridge, OVSDB: *ovsdbEP, Chassis: *chassis, Interface: *iface, DPID: *dpid, OFPort: uint32(*ofport)}
	return k.call(func(ctx context.Context, cl *api.Client) (any, error) {
		return cl.CreateHost(ctx, *vpc, req)
	}, hostTable)
}

func (c *cli) hostUpdate(args []string) int {
	k := c.command("host update", "--vpc VPC NAME [--mac MAC] [(--bridge BRIDGE | --chassis CHASSIS) --interface IFACE | --dpid DPID --ofport PORT]",
		"Change a host's MAC or attachment (a VM whose NIC moved to another interface,\n"+
			"bridge, chassis or port). The host keeps its id, IP, vSwitch and route\n"+
			"entries; what is not given stays as it is. A new attachment is given whole\n"+
			"(bridge+interface, chassis+interface or dpid+ofport); attached by interface\n"+
			"without --mac, the MAC is the interface's external_ids:attached-mac if\n"+
			"OVSDB has one. The IP and vSwitch cannot change: delete and re-add the host.",
		"vpcflow host update --vpc vpc-a test1 --bridge br-test --interface vnet5\n"+
			"vpcflow host update --vpc vpc-a test1 --mac 52:58:00:98:c0:99\n"+
			"vpcflow host update test2 --vpc vpc-a --dpid 0x1 --ofport 7").withAPI()
	vpc := k.vpcFlag()
	mac := k.fs.String("mac", "", "the host's new MAC")
	bridge := k.fs.String("bridge", "", "OVS bridge the host's interface is now on, with --interface")
	chassis := k.fs.String("chassis", "", "chassis the host's interface is now on, with --interface")
	iface := k.fs.String("interface", "", "the host's OVS interface, with --bridge or --chassis")
	dpid := k.fs.String("dpid", "", "datapath id (16 hex digits or 0x…), with --ofport")
	ofport := k.fs.Uint64("ofport", 0, "OpenFlow port number, with --dpid")
	pos, code, ok := k.parse(args, "NAME")
	if !ok {
		return code
	}
	if code, ok := k.required("vpc"); !ok {
		return code
	}
	if *ofport > math.MaxUint32 {
		return k.usageError("--ofport %d is out of range", *ofport)
	}
	if *mac == "" && *bridge == "" && *chassis == "" && *iface == "" && *dpid == "" && *ofport == 0 {
		return k.usageError("nothing to change: give --mac, or a new attachment (--bridge/--chassis with --interface, or --dpid with --ofport)")
	}
	req := api.HostRequest{Name: pos[0], MAC: *mac, Bridge: *bridge, Chassis: *chassis, Interface: *iface, DPID: *dpid, OFPort: uint32(*ofport)}
	return k.call(func(ctx context.Context, cl *api.Client) (any, error) {
		return cl.UpdateHost(ctx, *vpc, pos[0], req)
	}, hostTable)
}

func (c *cli) hostList(args []string) int {
	return c.listInVPC(args, "host list", "List a VPC's hosts, by name, with where each is attached now (STATE:\n"+
		"attached, port not found, or bridge not connected; DETAIL says why).", "vpcflow host list --vpc vpc-a",
		func(ctx context.Context, cl *api.Client, vpc string, pg api.Page) (any, api.PageInfo, error) {
			return cl.ListHostsPage(ctx, vpc, pg)
		}, hostTable, "vswitch", "q")
}

func (c *cli) hostShow(args []string) int {
	return c.showInVPC(args, "host show", "Show one host and where it is attached now (STATE: attached, port not\n"+
		"found, or bridge not connected; DETAIL says why).", "vpcflow host show --vpc vpc-a test1",
		func(ctx context.Context, cl *api.Client, vpc, name string) (any, error) {
			return cl.GetHostInfo(ctx, vpc, name)
		}, hostTable)
}

func (c *cli) hostDelete(args []string) int {
	return c.cascadingDelete(args, cascadingDelete{
		name: "host delete", usage: "--vpc VPC NAME [--cascade]", inVPC: true,
		desc:    "Delete a host. It must not be the next hop of any subnet, unless --cascade is\ngiven: then those subnets are deleted with it, in one change.",
		example: "vpcflow host delete --vpc vpc-a test1\nvpcflow host delete --vpc vpc-a test1 --cascade",
		takes:   "the subnets (route entries) whose next hop it is",
		done:    "deleted host %s from VPC %s", doneCascade: ", with its subnets",
		del: func(ctx context.Context, cl *api.Client, vpc, name string, cascade bool) error {
			return cl.DeleteHost(ctx, vpc, name, api.Cascade(cascade))
		},
	})
}

// ---- subnet ----

func (c *cli) subnetAdd(args []string) int {
	k := c.command("subnet add", "--vpc VPC CIDR --host HOST [--name NAME]",
		"Add a subnet (a VPC route entry): packets to CIDR go to HOST. As on Aliyun, the\nCIDR may not equal or sit inside a vSwitch CIDR (it may contain one, e.g.\n0.0.0.0/0). The name defaults to the CIDR with '/' written as '-'.",
		"vpcflow subnet add --vpc vpc-a 172.18.1.0/24 --host test1").withAPI()
	vpc := k.vpcFlag()
	host := k.fs.String("host", "", "the next-hop host (required)")
	name := k.fs.String("name", "", "name of the route entry (default: CIDR with '-' for '/')")
	pos, code, ok := k.parse(args, "CIDR")
	if !ok {
		return code
	}
	if code, ok := k.required("vpc", "host"); !ok {
		return code
	}
	return k.call(func(ctx context.Context, cl *api.Client) (any, error) {
		return cl.CreateSubnet(ctx, *vpc, api.SubnetRequest{Name: *name, CIDR: pos[0], Host: *host})
	}, subnetTable)
}

func (c *cli) subnetMove(args []string) int {
	k := c.command("subnet move", "--vpc VPC NAME --host HOST", "Point a route entry at another next-hop host.",
		"vpcflow subnet move --vpc vpc-a 172.18.1.0-24 --host test2").withAPI()
	vpc := k.vpcFlag()
	host := k.fs.String("host", "", "the new next-hop host (required)")
	pos, code, ok := k.parse(args, "NAME")
	if !ok {
		return code
	}
	if code, ok := k.required("vpc", "host"); !ok {
		return code
	}
	return k.call(func(ctx context.Context, cl *api.Client) (any, error) {
		return cl.MoveSubnet(ctx, *vpc, pos[0], *host)
	}, subnetTable)
}

func (c *cli) subnetList(args []string) int {
	return c.listInVPC(args, "subnet list", "List a VPC's subnets (route entries), by name.", "vpcflow subnet list --vpc vpc-a",
		func(ctx context.Context, cl *api.Client, vpc string, pg api.Page) (any, api.PageInfo, error) {
			return cl.ListSubnetsPage(ctx, vpc, pg)
		}, subnetTable, "host", "q")
}

func (c *cli) subnetShow(args []string) int {
	return c.showInVPC(args, "subnet show", "Show one subnet (route entry).", "vpcflow subnet show --vpc vpc-a 172.18.1.0-24",
		func(ctx context.Context, cl *api.Client, vpc, name string) (any, error) {
			return cl.GetSubnet(ctx, vpc, name)
		}, subnetTable)
}

func (c *cli) subnetDelete(args []string) int {
	return c.deleteInVPC(args, "subnet delete", "Delete a subnet (route entry).", "vpcflow subnet delete --vpc vpc-a 172.18.1.0-24",
		"deleted subnet %s from VPC %s", (*api.Client).DeleteSubnet)
}

// ---- shared shapes ----

// listInVPC is a "<kind> list --vpc VPC [--limit N [--page-token T]]"
// command.
func (c *cli) listInVPC(args []string, name, desc, example string,
	list func(ctx context.Context, cl *api.Client, vpc string, pg api.Page) (any, api.PageInfo, error), table func(io.Writer, any), filters ...string) int {
	usage, examples := "--vpc VPC", example+"\n"+example+" --limit 100"
	for _, f := range filters {
		switch f {
		case "vswitch":
			usage += " [--vswitch NAME]"
			examples += "\n" + example + " --vswitch vsw-a"
		case "host":
			usage += " [--host NAME]"
			examples += "\n" + example + " --host test1"
		case "q":
			usage += " [--filter TEXT]"
			examples += "\n" + example + " --filter 10.10.10.1"
		}
	}
	k := c.command(name, usage+" [--limit N [--page-token TOKEN]]", desc, examples).withAPI()
	vpc := k.vpcFlag()
	pg := k.pageFlags()
	for _, f := range filters {
		switch f {
		case "vswitch":
			k.fs.StringVar(&pg.VSwitch, "vswitch", "", "only this vSwitch's hosts")
		case "host":
			k.fs.StringVar(&pg.Host, "host", "", "only the route entries whose next hop is this host")
		case "q":
			k.fs.StringVar(&pg.Query, "filter", "", "only those whose name or address contains TEXT (any case; hosts: name, IP, MAC; route entries: name, CIDR, next hop)")
		}
	}
	if _, code, ok := k.parse(args); !ok {
		return code
	}
	if code, ok := k.required("vpc"); !ok {
		return code
	}
	return k.callPage(pg, func(ctx context.Context, cl *api.Client, pg api.Page) (any, api.PageInfo, error) {
		return list(ctx, cl, *vpc, pg)
	}, table)
}

// nameInVPC parses the arguments of a "<kind> VERB --vpc VPC NAME"
// command; when !ok, code is the exit code (usage or help printed).
func (c *cli) nameInVPC(args []string, name, desc, example string) (k *command, vpc, obj string, code int, ok bool) {
	k = c.command(name, "--vpc VPC NAME", desc, example).withAPI()
	vpcFlag := k.vpcFlag()
	pos, code, ok := k.parse(args, "NAME")
	if !ok {
		return k, "", "", code, false
	}
	if code, ok := k.required("vpc"); !ok {
		return k, "", "", code, false
	}
	return k, *vpcFlag, pos[0], 0, true
}

// showInVPC is a "<kind> show --vpc VPC NAME" command (or any that
// prints the object it gets back).
func (c *cli) showInVPC(args []string, name, desc, example string,
	get func(ctx context.Context, cl *api.Client, vpc, name string) (any, error), table func(io.Writer, any)) int {
	k, vpc, obj, code, ok := c.nameInVPC(args, name, desc, example)
	if !ok {
		return code
	}
	return k.call(func(ctx context.Context, cl *api.Client) (any, error) { return get(ctx, cl, vpc, obj) }, table)
}

// deleteInVPC is a "<kind> delete --vpc VPC NAME" command for an object
// nothing depends on; done is the success message, given NAME and VPC;
// del is the client's method ((*api.Client).DeleteEIP).
func (c *cli) deleteInVPC(args []string, name, desc, example, done string,
	del func(cl *api.Client, ctx context.Context, vpc, name string) error) int {
	k, vpc, obj, code, ok := c.nameInVPC(args, name, desc, example)
	if !ok {
		return code
	}
	return k.message(func(ctx context.Context, cl *api.Client) error { return del(cl, ctx, vpc, obj) }, done, obj, vpc)
}

// cascadingDelete describes a "<kind> delete [--vpc VPC] NAME [--cascade]"
// command: refused by the API while the object is in use, unless --cascade
// takes its dependents along in the same change.
type cascadingDelete struct {
	name, usage, desc, example string
	inVPC                      bool   // the object lives in a VPC (--vpc)
	takes                      string // what --cascade deletes too, for --help
	done, doneCascade          string // the success message (NAME[, VPC]) and its cascade suffix
	del                        func(ctx context.Context, cl *api.Client, vpc, name string, cascade bool) error
}

func (c *cli) cascadingDelete(args []string, d cascadingDelete) int {
	k := c.command(d.name, d.usage, d.desc, d.example).withAPI()
	var vpc *string
	if d.inVPC {
		vpc = k.vpcFlag()
	}
	cascade := k.fs.Bool("cascade", false, "also delete "+d.takes)
	pos, code, ok := k.parse(args, "NAME")
	if !ok {
		return code
	}
	msg, msgArgs := d.done, []any{pos[0]}
	if d.inVPC {
		if code, ok := k.required("vpc"); !ok {
			return code
		}
		msgArgs = append(msgArgs, *vpc)
	} else {
		vpc = new(string)
	}
	if *cascade {
		msg += d.doneCascade
	}
	return k.message(func(ctx context.Context, cl *api.Client) error {
		return cascadeHint(d.del(ctx, cl, *vpc, pos[0], *cascade))
	}, msg, msgArgs...)
}
