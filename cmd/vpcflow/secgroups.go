package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/vpcflow/vpcflow/api"
	"github.com/vpcflow/vpcflow/topology"
)

// sg is `vpcflow sg …`: security groups, their rules and membership.
func (c *cli) sg(args []string) int {
	return c.group("sg", "manage security groups (stateful firewalls with Aliyun's rules), their rules and members", []subcommand{
		{"create", "create a security group in a VPC", c.sgCreate},
		{"list", "list a VPC's security groups", c.sgList},
		{"show", "show a group, its rules (with hits) and its members", c.sgShow},
		{"delete", "delete a group (--cascade: with its rules and the rules naming it)", c.sgDelete},
		{"rule", "add, list, change and delete a group's rules", func(a []string) int {
			return c.group("sg rule", "manage the rules of a security group", []subcommand{
				{"add", "add a rule", c.sgRuleAdd},
				{"list", "list a group's rules with their hits", c.sgRuleList},
				{"change", "change a rule (what is not given stays)", c.sgRuleChange},
				{"delete", "delete a rule", c.sgRuleDelete},
			}, a)
		}},
		{"assign", "put a host in exactly the given groups (none: in no group)", c.sgAssign},
	}, args)
}

func sgTable(w io.Writer, v any) {
	row(w, "NAME", "ID", "INDEX", "DESCRIPTION")
	for _, g := range asList[topology.SecurityGroup](v) {
		row(w, g.Name, g.ID, g.Index, g.Description)
	}
}

func ruleRow(w io.Writer, r topology.SecurityGroupRule, hits string) {
	peer := r.SecurityGroup
	if r.CIDR.IsValid() {
		peer = r.CIDR.String()
	} else {
		peer = "group " + peer
	}
	row(w, r.ID, r.Direction, r.Priority, r.Policy, r.Protocol, r.PortRange, peer, hits, r.Description)
}

var ruleHeader = []any{"ID", "DIRECTION", "PRIORITY", "POLICY", "PROTOCOL", "PORTS", "PEER", "HITS (PACKETS/BYTES)", "DESCRIPTION"}

func ruleTable(w io.Writer, v any) {
	row(w, ruleHeader...)
	switch x := v.(type) {
	case topology.SecurityGroupRule:
		ruleRow(w, x, "")
	case []topology.SecurityGroupRule:
		for _, r := range x {
			ruleRow(w, r, "")
		}
	case []api.SecurityGroupRule:
		for _, r := range x {
			ruleRow(w, r.SecurityGroupRule, hitsText(r))
		}
	}
}

func hitsText(r api.SecurityGroupRule) string {
	if r.Hits == nil {
		return ""
	}
	return fmt.Sprintf("%d/%d", r.Hits.Packets, r.Hits.Bytes)
}

func (c *cli) sgCreate(args []string) int {
	k := c.command("sg create", "--vpc VPC NAME [--description TEXT]",
		"Create a security group. Hosts join it with `vpcflow sg assign` (or PUT\n"+
			"…/hosts/NAME {\"security_groups\": [...]}); a host in no group is not filtered.\n"+
			"With no rule, a group accepts what its members send and denies what comes\n"+
			"in, except from members of a common group.",
		"vpcflow sg create --vpc vpc-a web --description \"front ends\"").withAPI()
	vpc := k.vpcFlag()
	desc := k.fs.String("description", "", "what the group is for")
	pos, code, ok := k.parse(args, "NAME")
	if !ok {
		return code
	}
	if code, ok := k.required("vpc"); !ok {
		return code
	}
	return k.call(func(ctx context.Context, cl *api.Client) (any, error) {
		return cl.CreateSecurityGroup(ctx, *vpc, api.SecurityGroupRequest{Name: pos[0], Description: *desc})
	}, sgTable)
}

func (c *cli) sgList(args []string) int {
	return c.listInVPC(args, "sg list", "List a VPC's security groups.", "vpcflow sg list --vpc vpc-a",
		func(ctx context.Context, cl *api.Client, vpc string, pg api.Page) (any, api.PageInfo, error) {
			return cl.ListSecurityGroupsPage(ctx, vpc, pg)
		}, sgTable)
}

// sgSummary is what `sg show` prints.
type sgSummary struct {
	topology.SecurityGroup
	Rules   []api.SecurityGroupRule `json:"rules"`
	Members []string                `json:"members"`
}

func (c *cli) sgShow(args []string) int {
	return c.showInVPC(args, "sg show", "Show a security group: its rules with their hits, and its member hosts.",
		"vpcflow sg show --vpc vpc-a web",
		func(ctx context.Context, cl *api.Client, vpc, name string) (any, error) {
			g, err := cl.GetSecurityGroup(ctx, vpc, name)
			if err != nil {
				return nil, err
			}
			rules, err := cl.ListSecurityGroupRules(ctx, vpc, name)
			if err != nil {
				return nil, err
			}
			hosts, err := cl.ListHosts(ctx, vpc)
			if err != nil {
				return nil, err
			}
			s := sgSummary{SecurityGroup: g, Rules: rules, Members: []string{}}
			for _, h := range hosts {
				if slices.Contains(h.SecurityGroups, name) {
					s.Members = append(s.Members, fmt.Sprintf("%s (zone %d)", h.Name, h.CTZone))
				}
			}
			return s, nil
		}, func(w io.Writer, v any) {
			s := v.(sgSummary)
			fmt.Fprintf(w, "name:\t%s\nid:\t%d\nindex:\t%d\ndescription:\t%s\nmembers:\t%s\n\n", s.Name, s.ID, s.Index, s.Description, strings.Join(s.Members, ", "))
			ruleTable(w, s.Rules)
		})
}

func (c *cli) sgDelete(args []string) int {
	return c.cascadingDelete(args, cascadingDelete{
		name: "sg delete", usage: "--vpc VPC NAME [--cascade]", inVPC: true,
		desc: "Delete a security group. It must have no rules and no rule of another group\n" +
			"may name it, unless --cascade is given: then those rules are deleted with it.\n" +
			"A group with member hosts is never deleted: take them out first (sg assign).",
		example: "vpcflow sg delete --vpc vpc-a web\nvpcflow sg delete --vpc vpc-a web --cascade",
		takes:   "its rules and the rules of other groups that name it as their peer",
		done:    "deleted security group %s from VPC %s", doneCascade: ", with its rules",
		del: func(ctx context.Context, cl *api.Client, vpc, name string, cascade bool) error {
			return cl.DeleteSecurityGroup(ctx, vpc, name, api.Cascade(cascade))
		},
	})
}

// ruleFlags are a rule's flags, for add and change.
type ruleFlags struct {
	vpc, group, direction, policy, protocol, ports, cidr, peer, desc *string
	priority                                                         *int
}

func (k *command) ruleFlags(add bool) ruleFlags {
	f := ruleFlags{vpc: k.vpcFlag(), group: k.fs.String("group", "", "the security group (required)")}
	req := ""
	if add {
		req = " (required)"
	}
	f.direction = k.fs.String("direction", "", "ingress or egress"+req)
	f.policy = k.fs.String("policy", "", "accept or drop (default accept)")
	f.priority = k.fs.Int("priority", 0, "1..100, 1 first; at equal priority drop wins (default 1)")
	f.protocol = k.fs.String("protocol", "", "tcp, udp, icmp or all"+req)
	f.ports = k.fs.String("port-range", "", "destination ports start/end for tcp and udp (22/22, 8000/8080); -1/-1 for icmp and all")
	f.cidr = k.fs.String("cidr", "", "the peer: an IPv4 CIDR or address (0.0.0.0/0 for anywhere)")
	f.peer = k.fs.String("peer-group", "", "the peer: a security group of the same VPC (its members, as they come and go)")
	f.desc = k.fs.String("description", "", "what the rule is for")
	return f
}

func (f ruleFlags) request() api.SecurityGroupRuleRequest {
	return api.SecurityGroupRuleRequest{Direction: *f.direction, Policy: *f.policy, Priority: *f.priority, Protocol: *f.protocol,
		PortRange: *f.ports, CIDR: *f.cidr, SecurityGroup: *f.peer, Description: *f.desc}
}

func (c *cli) sgRuleAdd(args []string) int {
	k := c.command("sg rule add", "--vpc VPC --group GROUP --direction ingress|egress --protocol tcp|udp|icmp|all [--port-range START/END] (--cidr CIDR | --peer-group GROUP) [--policy accept|drop] [--priority 1..100]",
		"Add a rule to a security group, with Alibaba Cloud's semantics: rules are\n"+
			"evaluated by priority (1 first; at equal priority drop wins); when none\n"+
			"matches, ingress is denied (except between members of a common group) and\n"+
			"egress accepted. Replies of accepted connections always pass. A group holds\n"+
			"up to 200 rules.",
		"vpcflow sg rule add --vpc vpc-a --group web --direction ingress --protocol tcp --port-range 80/80 --cidr 0.0.0.0/0\n"+
			"vpcflow sg rule add --vpc vpc-a --group db --direction ingress --protocol tcp --port-range 5432/5432 --peer-group web\n"+
			"vpcflow sg rule add --vpc vpc-a --group web --direction egress --policy drop --priority 1 --protocol all --cidr 192.168.0.0/16").withAPI()
	f := k.ruleFlags(true)
	if _, code, ok := k.parse(args); !ok {
		return code
	}
	if code, ok := k.required("vpc", "group", "direction", "protocol"); !ok {
		return code
	}
	return k.call(func(ctx context.Context, cl *api.Client) (any, error) {
		return cl.CreateSecurityGroupRule(ctx, *f.vpc, *f.group, f.request())
	}, ruleTable)
}

func (c *cli) sgRuleList(args []string) int {
	k := c.command("sg rule list", "--vpc VPC --group GROUP",
		"List a security group's rules with the packets and bytes each matched on the\nconnected switches.",
		"vpcflow sg rule list --vpc vpc-a --group web").withAPI()
	vpc := k.vpcFlag()
	group := k.fs.String("group", "", "the security group (required)")
	if _, code, ok := k.parse(args); !ok {
		return code
	}
	if code, ok := k.required("vpc", "group"); !ok {
		return code
	}
	return k.call(func(ctx context.Context, cl *api.Client) (any, error) {
		return cl.ListSecurityGroupRules(ctx, *vpc, *group)
	}, ruleTable)
}

func ruleIDArg(k *command, s string) (uint32, int, bool) {
	id, err := strconv.ParseUint(s, 10, 32)
	if err != nil || id == 0 {
		return 0, k.usageError("rule id %q: want a number from 1 (see sg rule list)", s), false
	}
	return uint32(id), exitOK, true
}

func (c *cli) sgRuleChange(args []string) int {
	k := c.command("sg rule change", "--vpc VPC --group GROUP ID [--policy …] [--priority …] [--protocol …] [--port-range …] [--cidr … | --peer-group …] [--description …]",
		"Change a rule; what is not given stays as it is (the direction cannot change).\n"+
			"Live connections the changed rule no longer allows are cut at once; those it\n"+
			"still allows go on.",
		"vpcflow sg rule change --vpc vpc-a --group web 3 --policy drop").withAPI()
	f := k.ruleFlags(false)
	pos, code, ok := k.parse(args, "ID")
	if !ok {
		return code
	}
	if code, ok := k.required("vpc", "group"); !ok {
		return code
	}
	id, code, ok := ruleIDArg(k, pos[0])
	if !ok {
		return code
	}
	return k.call(func(ctx context.Context, cl *api.Client) (any, error) {
		return cl.UpdateSecurityGroupRule(ctx, *f.vpc, *f.group, id, f.request())
	}, ruleTable)
}

func (c *cli) sgRuleDelete(args []string) int {
	k := c.command("sg rule delete", "--vpc VPC --group GROUP ID", "Delete a rule.", "vpcflow sg rule delete --vpc vpc-a --group web 3").withAPI()
	vpc := k.vpcFlag()
	group := k.fs.String("group", "", "the security group (required)")
	pos, code, ok := k.parse(args, "ID")
	if !ok {
		return code
	}
	if code, ok := k.required("vpc", "group"); !ok {
		return code
	}
	id, code, ok := ruleIDArg(k, pos[0])
	if !ok {
		return code
	}
	return k.message(func(ctx context.Context, cl *api.Client) error {
		return cl.DeleteSecurityGroupRule(ctx, *vpc, *group, id)
	}, "deleted rule %d of security group %s", id, *group)
}

func (c *cli) sgAssign(args []string) int {
	k := c.command("sg assign", "--vpc VPC HOST [GROUP...]",
		"Put a host in exactly the given security groups (at most 5), or in none, which\n"+
			"leaves it unfiltered. A filtered host gets a conntrack zone of its own, kept\n"+
			"while it is in any group.",
		"vpcflow sg assign --vpc vpc-a test1 web db\nvpcflow sg assign --vpc vpc-a test1").withAPI()
	vpc := k.vpcFlag()
	if wantsHelp(args) {
		k.usage(k.c.stdout)
		return exitOK
	}
	pos, err := parseInterspersed(k.fs, args)
	if err != nil {
		return k.usageError("%v", err)
	}
	if len(pos) == 0 {
		return k.usageError("missing HOST")
	}
	if _, code, ok := k.parse(append([]string{}, pos[:1]...), "HOST"); !ok {
		return code
	}
	if code, ok := k.required("vpc"); !ok {
		return code
	}
	return k.call(func(ctx context.Context, cl *api.Client) (any, error) {
		return cl.SetHostSecurityGroups(ctx, *vpc, pos[0], pos[1:])
	}, func(w io.Writer, v any) {
		h := v.(topology.Host)
		row(w, "HOST", "GROUPS", "CT_ZONE")
		zone := "-"
		if h.CTZone != 0 {
			zone = strconv.Itoa(int(h.CTZone))
		}
		row(w, h.Name, strings.Join(h.SecurityGroups, ","), zone)
	})
}
