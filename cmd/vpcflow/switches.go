package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/vpcflow/vpcflow/api"
	"github.com/vpcflow/vpcflow/controller"
	"github.com/vpcflow/vpcflow/topology"
)

func (c *cli) switches(args []string) int {
	k := c.command("switches", "[--limit N [--page-token TOKEN]]",
		"List the switches connected to the controller (and reconciled), by dpid, with\n"+
			"their OVSDB ports. CERT starts the SHA-256 of the TLS certificate a switch\n"+
			"connected with (-o json has it whole; - over plain TCP). OVSDB says whether an OVSDB vpcflow watches reports a\n"+
			"bridge with the switch's datapath id: a switch connected over OpenFlow but\n"+
			"\"not resolved\" cannot have hosts attached by bridge or chassis found on it\n"+
			"(check serve's --ovsdb, or the chassis's OVSDB; GET /readyz says more).",
		"vpcflow switches\nvpcflow switches -o json").withAPI()
	pg := k.pageFlags()
	if _, code, ok := k.parse(args); !ok {
		return code
	}
	return k.callPage(pg, func(ctx context.Context, cl *api.Client, pg api.Page) (any, api.PageInfo, error) {
		return cl.SwitchesPage(ctx, pg)
	}, func(w io.Writer, v any) {
		sws := v.([]api.SwitchView)
		sort.Slice(sws, func(i, j int) bool { return sws[i].DPID < sws[j].DPID })
		row(w, "DPID", "BRIDGE", "OVSDB", "REMOTE", "SINCE", "CERT", "PORTS")
		for _, s := range sws {
			since := ""
			if !s.ConnectedSince.IsZero() {
				since = s.ConnectedSince.UTC().Format(time.RFC3339)
			}
			resolved := "resolved"
			if !s.OVSDBResolved {
				resolved = "not resolved"
			}
			row(w, s.DPID, s.Bridge, resolved, s.Remote, since, shortCert(s.CertificateSHA256), portList(s.Ports))
		}
	})
}

// shortCert is the first 16 hex digits of a TLS certificate's SHA-256,
// as `vpcflow switch-cert list` starts it ("" over plain TCP; -o json has
// all 64).
func shortCert(sha256 string) string {
	if len(sha256) > 16 {
		return sha256[:16]
	}
	return sha256
}

// portList prints ports as "vnet1:1,vnet3:3", in port number order.
func portList(ports []controller.PortInfo) string {
	ps := append([]controller.PortInfo(nil), ports...)
	sort.Slice(ps, func(i, j int) bool { return ps[i].OFPort < ps[j].OFPort })
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = fmt.Sprintf("%s:%d", p.Name, p.OFPort)
	}
	return strings.Join(parts, ",")
}

func (c *cli) flows(args []string) int {
	k := c.command("flows", "DPID [--no-stats] [--limit N [--page-token TOKEN]]",
		"Dump the flows installed on a switch, one per line as ovs-ofctl dump-flows\nprints them, sorted by table and priority. DPID is 16 hex digits (as\n`vpcflow switches` shows it) or 0x….",
		"vpcflow flows 0000000000000001\nvpcflow flows 0x1 --no-stats").withAPI()
	noStats := k.fs.Bool("no-stats", false, "leave out n_packets and n_bytes (for diffing)")
	pg := k.pageFlags()
	pos, code, ok := k.parse(args, "DPID")
	if !ok {
		return code
	}
	dpid, err := topology.ParseDPID(pos[0])
	if err != nil {
		return k.usageError("%v", err)
	}
	return k.callPage(pg, func(ctx context.Context, cl *api.Client, pg api.Page) (any, api.PageInfo, error) {
		return cl.FlowsPage(ctx, dpid, pg)
	}, func(w io.Writer, v any) {
		fs := v.([]controller.FlowEntry)
		sort.SliceStable(fs, func(i, j int) bool {
			if fs[i].Table != fs[j].Table {
				return fs[i].Table < fs[j].Table
			}
			if fs[i].Priority != fs[j].Priority {
				return fs[i].Priority > fs[j].Priority
			}
			return fs[i].Match < fs[j].Match
		})
		for _, f := range fs {
			fmt.Fprintln(w, flowLine(f, !*noStats))
		}
	})
}

// flowLine formats a flow as ovs-ofctl dump-flows does:
// " cookie=0x1, table=0, n_packets=5, n_bytes=420, priority=100,in_port=1 actions=drop".
func flowLine(f controller.FlowEntry, stats bool) string {
	var b strings.Builder
	cookie := f.Cookie
	if cookie == "" {
		cookie = "0x0"
	}
	fmt.Fprintf(&b, " cookie=%s, table=%d, ", cookie, f.Table)
	if stats {
		fmt.Fprintf(&b, "n_packets=%d, n_bytes=%d, ", f.Packets, f.Bytes)
	}
	fmt.Fprintf(&b, "priority=%d", f.Priority)
	if f.Match != "" {
		b.WriteString("," + f.Match)
	}
	actions := f.Actions
	if actions == "" {
		actions = "drop"
	}
	b.WriteString(" actions=" + actions)
	return b.String()
}
