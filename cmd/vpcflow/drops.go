package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/vpcflow/vpcflow/api"
	"github.com/vpcflow/vpcflow/controller"
	"github.com/vpcflow/vpcflow/controller/pipeline"
)

func (c *cli) drops(args []string) int {
	k := c.command("drops", "[--vpc VPC]",
		"Show the packets the pipeline dropped, by reason (see docs/pipeline.md): one\n"+
			"table per connected switch, all hosts together, and one per host with the\n"+
			"drops charged to it (what it sent with a spoofed source, ARP requests for\n"+
			"its own address). --vpc limits the host table to one VPC.",
		"vpcflow drops\nvpcflow drops --vpc vpc-a\nvpcflow drops -o json").withAPI()
	vpc := k.fs.String("vpc", "", "show only the hosts of this VPC")
	if _, code, ok := k.parse(args); !ok {
		return code
	}
	return k.call(func(ctx context.Context, cl *api.Client) (any, error) {
		if *vpc != "" {
			// A misspelt VPC is an error, not an empty table.
			if _, err := cl.GetVPC(ctx, *vpc); err != nil {
				return nil, err
			}
		}
		rep, err := cl.Drops(ctx)
		if err != nil {
			return nil, err
		}
		return filterDrops(rep, *vpc), nil
	}, dropsTable)
}

// filterDrops keeps the hosts of vpc (all when ""), and sorts switches by
// dpid and hosts by VPC and name, for the table and -o json alike.
func filterDrops(rep controller.DropReport, vpc string) controller.DropReport {
	sws := append([]controller.SwitchDrops{}, rep.Switches...)
	sort.Slice(sws, func(i, j int) bool { return sws[i].DPID < sws[j].DPID })
	hosts := []controller.HostDrops{}
	for _, h := range rep.Hosts {
		if vpc == "" || h.VPC == vpc {
			hosts = append(hosts, h)
		}
	}
	sort.Slice(hosts, func(i, j int) bool {
		if hosts[i].VPC != hosts[j].VPC {
			return hosts[i].VPC < hosts[j].VPC
		}
		return hosts[i].Name < hosts[j].Name
	})
	return controller.DropReport{Switches: sws, Hosts: hosts}
}

// dropsTable prints the switch table and the host table, separated by an
// empty line so that each is aligned on its own.
func dropsTable(w io.Writer, v any) {
	rep := v.(controller.DropReport)
	sws, hosts := rep.Switches, rep.Hosts
	// One column per drop reason the pipeline declares, in its order.
	reasons := pipeline.Default().DropReasons()
	var counters []any
	for _, r := range reasons {
		counters = append(counters, strings.ToUpper(r.Name))
	}
	values := func(d controller.DropCounters) []any {
		out := make([]any, len(reasons))
		for i, r := range reasons {
			out[i] = d[r.Name]
		}
		return out
	}
	row(w, append([]any{"DPID", "BRIDGE"}, counters...)...)
	for _, s := range sws {
		row(w, append([]any{s.DPID, s.Bridge}, values(s.Drops)...)...)
	}
	fmt.Fprintln(w)
	row(w, append([]any{"VPC", "HOST", "DPID"}, counters...)...)
	for _, h := range hosts {
		row(w, append([]any{h.VPC, h.Name, h.DPID}, values(h.Drops)...)...)
	}
}
