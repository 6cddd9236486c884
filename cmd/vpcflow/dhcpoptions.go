package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/vpcflow/vpcflow/api"
	"github.com/vpcflow/vpcflow/topology"
)

// `vpcflow dhcp-options …`: a VPC's DHCP options set.

func dhcpOptionsTable(w io.Writer, v any) {
	row(w, "NAME", "ID", "DOMAIN", "DNS_SERVERS", "LEASE_S", "STATIC_ROUTES")
	for _, x := range asList[topology.DHCPOptions](v) {
		var dns, routes []string
		for _, a := range x.DNSServers {
			dns = append(dns, a.String())
		}
		for _, r := range x.StaticRoutes {
			routes = append(routes, r.CIDR.String()+"="+r.NextHop.String())
		}
		row(w, x.Name, x.ID, dashIfEmpty(x.DomainName), dashIfEmpty(strings.Join(dns, ",")),
			int64(x.Lease().Seconds()), dashIfEmpty(strings.Join(routes, ",")))
	}
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// dhcpOptionsFlags are the values of a create or update.
type dhcpOptionsFlags struct {
	domain, dns, routes *string
	lease               *uint
}

func (k *command) dhcpOptionsFlags() dhcpOptionsFlags {
	return dhcpOptionsFlags{
		domain: k.fs.String("domain", "", "domain name (option 15)"),
		dns:    k.fs.String("dns", "", "DNS servers, comma-separated, at most 4 (option 6)"),
		lease:  k.fs.Uint("lease", 0, "lease time in seconds (default 86400)"),
		routes: k.fs.String("routes", "", "classless static routes (option 121), comma-separated CIDR=NEXTHOP"),
	}
}

func (f dhcpOptionsFlags) request(name string) (api.DHCPOptionsRequest, error) {
	req := api.DHCPOptionsRequest{Name: name, DomainName: *f.domain, LeaseTime: uint32(*f.lease)}
	if uint(req.LeaseTime) != *f.lease {
		return req, fmt.Errorf("--lease %d: too large", *f.lease)
	}
	for _, s := range splitList(*f.dns) {
		req.DNSServers = append(req.DNSServers, s)
	}
	for _, s := range splitList(*f.routes) {
		cidr, nh, ok := strings.Cut(s, "=")
		if !ok {
			return req, fmt.Errorf("--routes: %q is not CIDR=NEXTHOP", s)
		}
		req.StaticRoutes = append(req.StaticRoutes, api.StaticRouteRequest{CIDR: cidr, NextHop: nh})
	}
	return req, nil
}

func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

func (c *cli) dhcpOptionsCreate(args []string) int {
	k := c.command("dhcp-options create", "--vpc VPC NAME [--domain D] [--dns IP,…] [--lease SECONDS] [--routes CIDR=NEXTHOP,…]",
		"Create the VPC's DHCP options set (a VPC has at most one): what vpcflow's DHCP\nserver gives every VM of the VPC besides its address, mask, gateway and MTU.",
		"vpcflow dhcp-options create --vpc vpc-a dopt-a --domain corp.example --dns 100.100.2.136,100.100.2.138").withAPI()
	vpc := k.vpcFlag()
	f := k.dhcpOptionsFlags()
	pos, code, ok := k.parse(args, "NAME")
	if !ok {
		return code
	}
	if code, ok := k.required("vpc"); !ok {
		return code
	}
	req, err := f.request(pos[0])
	if err != nil {
		return k.usageError("%v", err)
	}
	return k.call(func(ctx context.Context, cl *api.Client) (any, error) {
		return cl.CreateDHCPOptions(ctx, *vpc, req)
	}, dhcpOptionsTable)
}

func (c *cli) dhcpOptionsUpdate(args []string) int {
	k := c.command("dhcp-options update", "--vpc VPC NAME [--domain D] [--dns IP,…] [--lease SECONDS] [--routes CIDR=NEXTHOP,…]",
		"Replace a DHCP options set's values (a flag left out is cleared). VMs get the\nnew values when they renew.",
		"vpcflow dhcp-options update --vpc vpc-a dopt-a --dns 10.0.0.53").withAPI()
	vpc := k.vpcFlag()
	f := k.dhcpOptionsFlags()
	pos, code, ok := k.parse(args, "NAME")
	if !ok {
		return code
	}
	if code, ok := k.required("vpc"); !ok {
		return code
	}
	req, err := f.request("")
	if err != nil {
		return k.usageError("%v", err)
	}
	return k.call(func(ctx context.Context, cl *api.Client) (any, error) {
		return cl.UpdateDHCPOptions(ctx, *vpc, pos[0], req)
	}, dhcpOptionsTable)
}

func (c *cli) dhcpOptionsList(args []string) int {
	return c.listInVPC(args, "dhcp-options list", "List a VPC's DHCP options set.", "vpcflow dhcp-options list --vpc vpc-a",
		func(ctx context.Context, cl *api.Client, vpc string, pg api.Page) (any, api.PageInfo, error) {
			return cl.ListDHCPOptionsPage(ctx, vpc, pg)
		}, dhcpOptionsTable)
}

func (c *cli) dhcpOptionsShow(args []string) int {
	return c.showInVPC(args, "dhcp-options show", "Show a DHCP options set.", "vpcflow dhcp-options show --vpc vpc-a dopt-a",
		func(ctx context.Context, cl *api.Client, vpc, name string) (any, error) {
			return cl.GetDHCPOptions(ctx, vpc, name)
		}, dhcpOptionsTable)
}

func (c *cli) dhcpOptionsDelete(args []string) int {
	return c.deleteInVPC(args, "dhcp-options delete", "Delete a DHCP options set: VMs then get no DNS servers or domain\nwhen they renew.",
		"vpcflow dhcp-options delete --vpc vpc-a dopt-a", "deleted DHCP options set %s from VPC %s", (*api.Client).DeleteDHCPOptions)
}
