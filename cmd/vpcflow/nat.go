package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/vpcflow/vpcflow/api"
	"github.com/vpcflow/vpcflow/topology"
)

// uplink is `vpcflow uplink …`; nat is `vpcflow nat gateway|snat|dnat …`;
// eip is `vpcflow eip …`: the way out of the fabric (docs/nat.md).
func (c *cli) uplink(args []string) int {
	return c.group("uplink", "manage uplinks: a bridge's interface toward the outside network, where NAT gateways and EIPs leave", []subcommand{
		{"add", "register an uplink", c.uplinkAdd},
		{"update", "change an uplink's router, MAC or router MAC", c.uplinkUpdate},
		{"list", "list the uplinks", c.uplinkList},
		{"show", "show an uplink and the public addresses vpcflow owns on it", c.uplinkShow},
		{"delete", "delete an uplink (--cascade: with its NAT gateways, their entries and its EIPs)", c.uplinkDelete},
	}, args)
}

func (c *cli) nat(args []string) int {
	return c.group("nat", "manage a VPC's NAT gateway and its SNAT and DNAT entries (Aliyun's NAT gateway)", []subcommand{
		{"gateway", "create, update, list, show and delete the VPC's NAT gateway", func(a []string) int {
			return c.group("nat gateway", "manage a VPC's NAT gateway (one per VPC) and its public addresses", []subcommand{
				{"create", "create the VPC's NAT gateway on an uplink", c.natGatewayCreate},
				{"update", "replace its public addresses", c.natGatewayUpdate},
				{"list", "list a VPC's NAT gateway", c.natGatewayList},
				{"show", "show the NAT gateway with its entries", c.natGatewayShow},
				{"delete", "delete it (--cascade: with its entries)", c.natGatewayDelete},
			}, a)
		}},
		{"snat", "add, list and delete SNAT entries (hosts out through the gateway)", func(a []string) int {
			return c.group("nat snat", "manage SNAT entries: a scope (vSwitch, host or CIDR) leaves from public addresses", []subcommand{
				{"add", "add an SNAT entry", c.snatAdd},
				{"list", "list a VPC's SNAT entries", c.snatList},
				{"delete", "delete an SNAT entry", c.snatDelete},
			}, a)
		}},
		{"dnat", "add, list and delete DNAT entries (a public address and port to a private one)", func(a []string) int {
			return c.group("nat dnat", "manage DNAT entries: a public address, protocol and port (range) to a private address and port", []subcommand{
				{"add", "add a DNAT entry", c.dnatAdd},
				{"list", "list a VPC's DNAT entries", c.dnatList},
				{"delete", "delete a DNAT entry", c.dnatDelete},
			}, a)
		}},
	}, args)
}

func (c *cli) eip(args []string) int {
	return c.group("eip", "manage elastic IPs: a public address bound 1:1 to a host", []subcommand{
		{"create", "allocate an EIP to a VPC (and bind it)", c.eipCreate},
		{"bind", "bind an EIP to a host", c.eipBind},
		{"unbind", "unbind an EIP from its host", c.eipUnbind},
		{"list", "list a VPC's EIPs", c.eipList},
		{"show", "show one EIP", c.eipShow},
		{"delete", "release an EIP", c.eipDelete},
	}, args)
}

// commaList splits a comma-separated flag value ("" is none).
func commaList(s string) []string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	var out []string
	for _, x := range strings.Split(s, ",") {
		out = append(out, strings.TrimSpace(x))
	}
	return out
}

func uplinkTable(w io.Writer, v any) {
	row(w, "NAME", "ID", "ATTACHED", "CIDR", "GATEWAY", "MAC", "ROUTER_MAC")
	one := func(u topology.Uplink) {
		row(w, u.Name, u.ID, attachment(u.AsHost()), u.CIDR, u.Gateway, u.MAC, u.RouterMAC)
	}
	switch x := v.(type) {
	case api.UplinkDetail:
		one(x.Uplink)
		fmt.Fprintln(w)
		row(w, "ADDRESS", "VPC", "OWNER")
		for _, a := range x.Addresses {
			owner := "NAT gateway " + a.NATGateway
			if a.EIP != "" {
				owner = "EIP " + a.EIP
			}
			row(w, a.IP, a.VPC, owner)
		}
	default:
		for _, u := range asList[topology.Uplink](v) {
			one(u)
		}
	}
}

func (c *cli) uplinkAdd(args []string) int {
	k := c.command("uplink add", "NAME (--bridge BRIDGE | --chassis CHASSIS) --interface IFACE --cidr CIDR --gateway IP [--mac MAC] [--router-mac MAC]",
		"Register an uplink: an interface of a bridge (or of a chassis's bridge, or\n"+
			"--dpid/--ofport) toward the outside network. --cidr is the public prefix on\n"+
			"that link, --gateway the next-hop router. vpcflow answers ARP there for the\n"+
			"public addresses it owns (NAT gateways', EIPs') with --mac (default derived\n"+
			"from the name), and learns the router's MAC by ARP; until it knows it,\n"+
			"nothing leaves (dropped as uplink_unresolved). VMs on other chassis reach\n"+
			"an uplink on a chassis through VXLAN.",
		"vpcflow uplink add up1 --bridge br-test --interface eth-up --cidr 203.0.113.0/24 --gateway 203.0.113.1\n"+
			"vpcflow uplink add up1 --chassis node3 --interface eth1 --cidr 203.0.113.0/24 --gateway 203.0.113.1").withAPI()
	f := uplinkFlags(k, true)
	pos, code, ok := k.parse(args, "NAME")
	if !ok {
		return code
	}
	if code, ok := k.required("cidr", "gateway"); !ok {
		return code
	}
	req := f.request()
	req.Name = pos[0]
	return k.call(func(ctx context.Context, cl *api.Client) (any, error) { return cl.CreateUplink(ctx, req) }, uplinkTable)
}

type uplinkFlagSet struct {
	bridge, ovsdb, chassis, iface, dpid, cidr, gateway, mac, routerMAC *string
	ofport                                                             *uint
}

func uplinkFlags(k *command, add bool) uplinkFlagSet {
	f := uplinkFlagSet{gateway: k.fs.String("gateway", "", "the next-hop router's address, inside --cidr"),
		mac: k.fs.String("mac", "", "the uplink's own MAC (ARP answers, source of what leaves)"), dpid: new(string), ofport: new(uint),
		routerMAC: k.fs.String("router-mac", "", "the router's MAC (normally learned by ARP)")}
	empty := ""
	f.bridge, f.ovsdb, f.chassis, f.iface, f.cidr = &empty, &empty, &empty, &empty, &empty
	if add {
		f.bridge = k.fs.String("bridge", "", "the bridge the interface is on")
		f.ovsdb = k.fs.String("ovsdb", "", "the --ovsdb server of --bridge, when several have one of that name")
		f.chassis = k.fs.String("chassis", "", "the chassis whose bridge the interface is on")
		f.iface = k.fs.String("interface", "", "the OVS interface toward the outside network")
		f.dpid = k.fs.String("dpid", "", "instead of a bridge or chassis: the datapath id…")
		f.ofport = k.fs.Uint("ofport", 0, "…and the OpenFlow port")
		f.cidr = k.fs.String("cidr", "", "the public prefix on the link (NAT gateway and EIP addresses come from it)")
	}
	return f
}

func (f uplinkFlagSet) request() api.UplinkRequest {
	return api.UplinkRequest{Bridge: *f.bridge, OVSDB: *f.ovsdb, Chassis: *f.chassis, Interface: *f.iface, DPID: *f.dpid,
		OFPort: uint32(*f.ofport), CIDR: *f.cidr, Gateway: *f.gateway, MAC: *f.mac, RouterMAC: *f.routerMAC}
}

func (c *cli) uplinkUpdate(args []string) int {
	k := c.command("uplink update", "NAME [--gateway IP] [--mac MAC] [--router-mac MAC]",
		"Change an uplink's router, its own MAC or the router's MAC (a new router\n"+
			"forgets the learned MAC and vpcflow asks again); what is not given stays.",
		"vpcflow uplink update up1 --gateway 203.0.113.254").withAPI()
	f := uplinkFlags(k, false)
	pos, code, ok := k.parse(args, "NAME")
	if !ok {
		return code
	}
	return k.call(func(ctx context.Context, cl *api.Client) (any, error) {
		return cl.UpdateUplink(ctx, pos[0], f.request())
	}, uplinkTable)
}

func (c *cli) uplinkList(args []string) int {
	k := c.command("uplink list", "[--limit N [--page-token TOKEN]]", "List the uplinks, by name.", "vpcflow uplink list").withAPI()
	pg := k.pageFlags()
	if _, code, ok := k.parse(args); !ok {
		return code
	}
	return k.callPage(pg, func(ctx context.Context, cl *api.Client, pg api.Page) (any, api.PageInfo, error) {
		return cl.ListUplinksPage(ctx, pg)
	}, uplinkTable)
}

func (c *cli) uplinkShow(args []string) int {
	k := c.command("uplink show", "NAME", "Show an uplink and the public addresses vpcflow answers ARP for on it.", "vpcflow uplink show up1").withAPI()
	pos, code, ok := k.parse(args, "NAME")
	if !ok {
		return code
	}
	return k.call(func(ctx context.Context, cl *api.Client) (any, error) { return cl.GetUplink(ctx, pos[0]) }, uplinkTable)
}

func (c *cli) uplinkDelete(args []string) int {
	return c.cascadingDelete(args, cascadingDelete{
		name: "uplink delete", usage: "NAME [--cascade]",
		desc:    "Delete an uplink. NAT gateways and EIPs on it must go first, unless --cascade\nis given: then they go with it.",
		example: "vpcflow uplink delete up1", takes: "its NAT gateways (with their entries) and EIPs",
		done: "deleted uplink %s", doneCascade: ", with its NAT gateways and EIPs",
		del: func(ctx context.Context, cl *api.Client, _, name string, cascade bool) error {
			return cl.DeleteUplink(ctx, name, api.Cascade(cascade))
		},
	})
}

func natGatewayTable(w io.Writer, v any) {
	row(w, "NAME", "ID", "UPLINK", "IPS", "CT_ZONES", "ALIYUN_ID")
	for _, g := range asList[topology.NATGateway](v) {
		ips := make([]string, len(g.IPs))
		for i, a := range g.IPs {
			ips[i] = a.String()
		}
		row(w, g.Name, g.ID, g.Uplink, strings.Join(ips, ","), fmt.Sprintf("%d,%d", g.CTZone, topology.DNATZone(g.CTZone)), g.AliyunID())
	}
}

func (c *cli) natGatewayCreate(args []string) int {
	k := c.command("nat gateway create", "--vpc VPC NAME --uplink UPLINK --ips IP[,IP…]",
		"Create the VPC's NAT gateway (a VPC has one) on an uplink, with public\n"+
			"addresses from the uplink's prefix (up to 20). Hosts go out through it by\n"+
			"SNAT entries (nat snat add) and are reached through it by DNAT entries\n"+
			"(nat dnat add).",
		"vpcflow nat gateway create --vpc vpc-a ngw --uplink up1 --ips 203.0.113.10,203.0.113.11").withAPI()
	vpc := k.vpcFlag()
	uplink := k.fs.String("uplink", "", "the uplink (required)")
	ips := k.fs.String("ips", "", "public addresses, comma-separated (required)")
	pos, code, ok := k.parse(args, "NAME")
	if !ok {
		return code
	}
	if code, ok := k.required("vpc", "uplink", "ips"); !ok {
		return code
	}
	return k.call(func(ctx context.Context, cl *api.Client) (any, error) {
		return cl.CreateNATGateway(ctx, *vpc, api.NATGatewayRequest{Name: pos[0], Uplink: *uplink, IPs: commaList(*ips)})
	}, natGatewayTable)
}

func (c *cli) natGatewayUpdate(args []string) int {
	k := c.command("nat gateway update", "--vpc VPC NAME --ips IP[,IP…]",
		"Replace the NAT gateway's public addresses (an address an entry uses must stay).",
		"vpcflow nat gateway update --vpc vpc-a ngw --ips 203.0.113.10,203.0.113.11,203.0.113.12").withAPI()
	vpc := k.vpcFlag()
	ips := k.fs.String("ips", "", "public addresses, comma-separated (required)")
	pos, code, ok := k.parse(args, "NAME")
	if !ok {
		return code
	}
	if code, ok := k.required("vpc", "ips"); !ok {
		return code
	}
	return k.call(func(ctx context.Context, cl *api.Client) (any, error) {
		return cl.UpdateNATGateway(ctx, *vpc, pos[0], commaList(*ips))
	}, natGatewayTable)
}

func (c *cli) natGatewayList(args []string) int {
	return c.listInVPC(args, "nat gateway list", "List a VPC's NAT gateway.", "vpcflow nat gateway list --vpc vpc-a",
		func(ctx context.Context, cl *api.Client, vpc string, pg api.Page) (any, api.PageInfo, error) {
			return cl.ListNATGatewaysPage(ctx, vpc, pg)
		}, natGatewayTable)
}

// natSummary is what `nat gateway show` prints.
type natSummary struct {
	topology.NATGateway
	SNAT []topology.SNATEntry `json:"snat_entries"`
	DNAT []topology.DNATEntry `json:"dnat_entries"`
}

func (c *cli) natGatewayShow(args []string) int {
	return c.showInVPC(args, "nat gateway show", "Show the NAT gateway with its SNAT and DNAT entries.", "vpcflow nat gateway show --vpc vpc-a ngw",
		func(ctx context.Context, cl *api.Client, vpc, name string) (any, error) {
			g, err := cl.GetNATGateway(ctx, vpc, name)
			if err != nil {
				return nil, err
			}
			s := natSummary{NATGateway: g, SNAT: []topology.SNATEntry{}, DNAT: []topology.DNATEntry{}}
			sn, err := cl.ListSNATEntries(ctx, vpc)
			if err != nil {
				return nil, err
			}
			for _, e := range sn {
				if e.NATGateway == name {
					s.SNAT = append(s.SNAT, e)
				}
			}
			dn, err := cl.ListDNATEntries(ctx, vpc)
			if err != nil {
				return nil, err
			}
			for _, e := range dn {
				if e.NATGateway == name {
					s.DNAT = append(s.DNAT, e)
				}
			}
			return s, nil
		}, func(w io.Writer, v any) {
			s := v.(natSummary)
			natGatewayTable(w, s.NATGateway)
			fmt.Fprintln(w)
			snatTable(w, s.SNAT)
			fmt.Fprintln(w)
			dnatTable(w, s.DNAT)
		})
}

func (c *cli) natGatewayDelete(args []string) int {
	return c.cascadingDelete(args, cascadingDelete{
		name: "nat gateway delete", usage: "--vpc VPC NAME [--cascade]", inVPC: true,
		desc:    "Delete the VPC's NAT gateway. Its entries must go first, unless --cascade is given.",
		example: "vpcflow nat gateway delete --vpc vpc-a ngw --cascade", takes: "its SNAT and DNAT entries",
		done: "deleted NAT gateway %s from VPC %s", doneCascade: ", with its entries",
		del: func(ctx context.Context, cl *api.Client, vpc, name string, cascade bool) error {
			return cl.DeleteNATGateway(ctx, vpc, name, api.Cascade(cascade))
		},
	})
}

func snatTable(w io.Writer, v any) {
	row(w, "NAME", "ID", "SCOPE", "SNAT_IPS", "ALIYUN_ID")
	for _, e := range asList[topology.SNATEntry](v) {
		scope := "cidr " + e.SourceCIDR.String()
		switch {
		case e.VSwitch != "":
			scope = "vswitch " + e.VSwitch
		case e.Host != "":
			scope = "host " + e.Host
		}
		ips := make([]string, len(e.SNATIPs))
		for i, a := range e.SNATIPs {
			ips[i] = a.String()
		}
		row(w, e.Name, e.ID, scope, strings.Join(ips, ","), e.AliyunID())
	}
}

func (c *cli) snatAdd(args []string) int {
	k := c.command("nat snat add", "--vpc VPC (--vswitch VSW | --host HOST | --source-cidr CIDR) --snat-ips IP[,IP…] [--name NAME] [--gateway NGW]",
		"Let a scope of the VPC out through its NAT gateway: connections from a\n"+
			"vSwitch, a host, or a source CIDR (0.0.0.0/0: the whole VPC) leave from\n"+
			"--snat-ips (consecutive addresses of the gateway; with several, one per\n"+
			"connection by hash). The most specific scope wins; a host's EIP wins over\n"+
			"every entry. What happens when the ports run out: docs/nat.md.",
		"vpcflow nat snat add --vpc vpc-a --vswitch vsw-a --snat-ips 203.0.113.10\n"+
			"vpcflow nat snat add --vpc vpc-a --source-cidr 0.0.0.0/0 --snat-ips 203.0.113.10,203.0.113.11").withAPI()
	vpc := k.vpcFlag()
	vsw := k.fs.String("vswitch", "", "scope: a vSwitch of the VPC")
	host := k.fs.String("host", "", "scope: a host of the VPC")
	cidr := k.fs.String("source-cidr", "", "scope: a source CIDR (0.0.0.0/0 for the whole VPC)")
	ips := k.fs.String("snat-ips", "", "public addresses of the gateway, comma-separated (required)")
	name := k.fs.String("name", "", "the entry's name (default: from its scope)")
	gw := k.fs.String("gateway", "", "the NAT gateway (default: the VPC's)")
	if _, code, ok := k.parse(args); !ok {
		return code
	}
	if code, ok := k.required("vpc", "snat-ips"); !ok {
		return code
	}
	return k.call(func(ctx context.Context, cl *api.Client) (any, error) {
		return cl.CreateSNATEntry(ctx, *vpc, api.SNATEntryRequest{Name: *name, NATGateway: *gw, VSwitch: *vsw, Host: *host, SourceCIDR: *cidr, SNATIPs: commaList(*ips)})
	}, snatTable)
}

func (c *cli) snatList(args []string) int {
	return c.listInVPC(args, "nat snat list", "List a VPC's SNAT entries.", "vpcflow nat snat list --vpc vpc-a",
		func(ctx context.Context, cl *api.Client, vpc string, pg api.Page) (any, api.PageInfo, error) {
			return cl.ListSNATEntriesPage(ctx, vpc, pg)
		}, snatTable)
}

func (c *cli) snatDelete(args []string) int {
	return c.deleteInVPC(args, "nat snat delete", "Delete an SNAT entry.", "vpcflow nat snat delete --vpc vpc-a snat-vswitch-vsw-a",
		"deleted SNAT entry %s from VPC %s", (*api.Client).DeleteSNATEntry)
}

func dnatTable(w io.Writer, v any) {
	row(w, "NAME", "ID", "PROTOCOL", "EXTERNAL", "INTERNAL", "ALIYUN_ID")
	for _, e := range asList[topology.DNATEntry](v) {
		row(w, e.Name, e.ID, e.Protocol, e.ExternalIP.String()+":"+e.ExternalPort, e.InternalIP.String()+":"+e.InternalPort, e.AliyunID())
	}
}

func (c *cli) dnatAdd(args []string) int {
	k := c.command("nat dnat add", "--vpc VPC --external-ip IP --protocol tcp|udp|any [--external-port PORT[/END]] --internal-ip IP [--internal-port PORT[/END]] [--name NAME] [--gateway NGW]",
		"Forward a public address of the NAT gateway to a private address: tcp or\n"+
			"udp to --external-port (80, or a range 8000/8010) go to --internal-port (a\n"+
			"range of the same size, port for port); --protocol any maps the whole\n"+
			"address (and the target then sends from it too). The public side and the\n"+
			"private side are each unique; a gateway holds at most 100 entries. VMs of\n"+
			"the VPC reach the public address too (hairpin).",
		"vpcflow nat dnat add --vpc vpc-a --external-ip 203.0.113.12 --protocol tcp --external-port 8080 --internal-ip 10.10.10.11 --internal-port 80\n"+
			"vpcflow nat dnat add --vpc vpc-a --external-ip 203.0.113.12 --protocol udp --external-port 30000/30099 --internal-ip 10.10.10.12 --internal-port 30000/30099").withAPI()
	vpc := k.vpcFlag()
	ext := k.fs.String("external-ip", "", "the public address, one of the gateway's (required)")
	proto := k.fs.String("protocol", "", "tcp, udp or any (required)")
	extPort := k.fs.String("external-port", "", "the public port or range (tcp, udp)")
	in := k.fs.String("internal-ip", "", "the private address (required)")
	inPort := k.fs.String("internal-port", "", "the private port or range, the same size (tcp, udp)")
	name := k.fs.String("name", "", "the entry's name (default: dnat-PROTOCOL-IP-PORT)")
	gw := k.fs.String("gateway", "", "the NAT gateway (default: the VPC's)")
	if _, code, ok := k.parse(args); !ok {
		return code
	}
	if code, ok := k.required("vpc", "external-ip", "protocol", "internal-ip"); !ok {
		return code
	}
	return k.call(func(ctx context.Context, cl *api.Client) (any, error) {
		return cl.CreateDNATEntry(ctx, *vpc, api.DNATEntryRequest{Name: *name, NATGateway: *gw, ExternalIP: *ext, Protocol: *proto,
			ExternalPort: *extPort, InternalIP: *in, InternalPort: *inPort})
	}, dnatTable)
}

func (c *cli) dnatList(args []string) int {
	return c.listInVPC(args, "nat dnat list", "List a VPC's DNAT entries.", "vpcflow nat dnat list --vpc vpc-a",
		func(ctx context.Context, cl *api.Client, vpc string, pg api.Page) (any, api.PageInfo, error) {
			return cl.ListDNATEntriesPage(ctx, vpc, pg)
		}, dnatTable)
}

func (c *cli) dnatDelete(args []string) int {
	return c.deleteInVPC(args, "nat dnat delete", "Delete a DNAT entry.", "vpcflow nat dnat delete --vpc vpc-a dnat-tcp-203.0.113.12-8080",
		"deleted DNAT entry %s from VPC %s", (*api.Client).DeleteDNATEntry)
}

func eipTable(w io.Writer, v any) {
	row(w, "NAME", "ID", "IP", "UPLINK", "HOST", "CT_ZONES", "ALIYUN_ID")
	for _, e := range asList[topology.EIP](v) {
		row(w, e.Name, e.ID, e.IP, e.Uplink, e.Host, fmt.Sprintf("%d,%d", e.CTZone, topology.DNATZone(e.CTZone)), e.AliyunID())
	}
}

func (c *cli) eipCreate(args []string) int {
	k := c.command("eip create", "--vpc VPC NAME --ip IP --uplink UPLINK [--host HOST]",
		"Allocate an elastic IP (an address of the uplink's prefix) to the VPC, bound\n"+
			"to --host if given. A bound host sends from its EIP and is reached at it,\n"+
			"every protocol and port; the EIP wins over SNAT entries for it. A host that\n"+
			"is a DNAT entry's target cannot have one.",
		"vpcflow eip create --vpc vpc-a eip1 --ip 203.0.113.20 --uplink up1 --host test2").withAPI()
	vpc := k.vpcFlag()
	ip := k.fs.String("ip", "", "the public address (required)")
	uplink := k.fs.String("uplink", "", "the uplink (required)")
	host := k.fs.String("host", "", "the host to bind it to")
	pos, code, ok := k.parse(args, "NAME")
	if !ok {
		return code
	}
	if code, ok := k.required("vpc", "ip", "uplink"); !ok {
		return code
	}
	req := api.EIPRequest{Name: pos[0], IP: *ip, Uplink: *uplink}
	if *host != "" {
		req.Host = host
	}
	return k.call(func(ctx context.Context, cl *api.Client) (any, error) { return cl.CreateEIP(ctx, *vpc, req) }, eipTable)
}

func (c *cli) eipBind(args []string) int {
	k := c.command("eip bind", "--vpc VPC NAME --host HOST", "Bind an EIP to a host (moving it from the one it was bound to).",
		"vpcflow eip bind --vpc vpc-a eip1 --host test1").withAPI()
	vpc := k.vpcFlag()
	host := k.fs.String("host", "", "the host (required)")
	pos, code, ok := k.parse(args, "NAME")
	if !ok {
		return code
	}
	if code, ok := k.required("vpc", "host"); !ok {
		return code
	}
	return k.call(func(ctx context.Context, cl *api.Client) (any, error) { return cl.BindEIP(ctx, *vpc, pos[0], *host) }, eipTable)
}

func (c *cli) eipUnbind(args []string) int {
	return c.showInVPC(args, "eip unbind", "Unbind an EIP: the VPC keeps it; its host leaves by SNAT entries again.",
		"vpcflow eip unbind --vpc vpc-a eip1",
		func(ctx context.Context, cl *api.Client, vpc, name string) (any, error) {
			return cl.BindEIP(ctx, vpc, name, "")
		}, eipTable)
}

func (c *cli) eipList(args []string) int {
	return c.listInVPC(args, "eip list", "List a VPC's EIPs.", "vpcflow eip list --vpc vpc-a",
		func(ctx context.Context, cl *api.Client, vpc string, pg api.Page) (any, api.PageInfo, error) {
			return cl.ListEIPsPage(ctx, vpc, pg)
		}, eipTable)
}

func (c *cli) eipShow(args []string) int {
	return c.showInVPC(args, "eip show", "Show one EIP.", "vpcflow eip show --vpc vpc-a eip1",
		func(ctx context.Context, cl *api.Client, vpc, name string) (any, error) {
			return cl.GetEIP(ctx, vpc, name)
		}, eipTable)
}

func (c *cli) eipDelete(args []string) int {
	return c.deleteInVPC(args, "eip delete", "Release an EIP.", "vpcflow eip delete --vpc vpc-a eip1",
		"released EIP %s of VPC %s", (*api.Client).DeleteEIP)
}
