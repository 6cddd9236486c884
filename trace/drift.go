package trace

import (
	"fmt"
	"strings"

	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// Compare sets desired.Installed and desired.Drift: where the walk on the
// installed flows (installedTables gives each switch's dumped tables)
// took another flow than the walk on the desired ones, or ended
// differently.
func Compare(desired, installed *Result, installedTables func(dpid uint64) (Tables, error)) {
	desired.Installed = installed
	var drift []Drift
	for i, dh := range desired.Hops {
		var ih *Hop
		if i < len(installed.Hops) && installed.Hops[i].DPID == dh.DPID {
			ih = &installed.Hops[i]
		}
		tables, _ := installedTables(uint64(dh.DPID))
		for j, ds := range dh.Steps {
			var is *Step
			if ih != nil && j < len(ih.Steps) {
				is = &ih.Steps[j]
			}
			if is != nil && is.matched == ds.matched && (!ds.matched || (is.key == ds.key && is.flow.SameContent(&ds.flow))) {
				continue
			}
			drift = append(drift, stepDrift(dh.DPID, ds, is, tables)...)
			break // the walks part here
		}
		if ih == nil {
			break
		}
	}
	if desired.Verdict != installed.Verdict || desired.DeliveredTo != installed.DeliveredTo || desired.Reason != installed.Reason {
		drift = append(drift, Drift{Kind: "verdict", Desired: desired.Summary, Installed: installed.Summary})
	}
	desired.Drift = drift
}

// stepDrift explains why the installed walk left the desired one at ds.
func stepDrift(dpid topology.DPID, ds Step, is *Step, tables Tables) []Drift {
	var out []Drift
	if ds.matched {
		d := Drift{DPID: dpid, Table: ds.Table, Desired: ds.Flow}
		var inst openflow.Flow
		ok := false
		if tables != nil {
			inst, ok = tables.Get(ds.key)
		}
		switch {
		case !ok:
			d.Kind = "missing"
		case !inst.SameContent(&ds.flow):
			d.Kind, d.Installed = "modified", inst.String()
		}
		if d.Kind != "" {
			out = append(out, d)
		}
	}
	if is != nil && is.matched && (!ds.matched || is.key != ds.key) {
		out = append(out, Drift{DPID: dpid, Kind: "unexpected", Table: is.Table, Installed: is.Flow})
	}
	if len(out) == 0 {
		out = append(out, Drift{DPID: dpid, Kind: "modified", Table: ds.Table, Desired: ds.Flow, Installed: stepFlow(is)})
	}
	return out
}

func stepFlow(s *Step) string {
	if s == nil {
		return ""
	}
	return s.Flow
}

// Text renders the trace for people: the verdict first, then each switch
// and each table with the object and rewrites, then any drift.
func (r *Result) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n", r.Summary)
	r.writeHops(&b)
	if r.Installed != nil {
		if len(r.Drift) == 0 {
			fmt.Fprintf(&b, "\ninstalled flows: same path, same verdict (no drift)\n")
		} else {
			fmt.Fprintf(&b, "\nDRIFT: the flows installed in the switches differ on this path:\n")
			for _, d := range r.Drift {
				switch d.Kind {
				case "verdict":
					fmt.Fprintf(&b, "  verdict: desired %q, installed %q\n", d.Desired, d.Installed)
				default:
					fmt.Fprintf(&b, "  %s on %s table %d:", d.Kind, d.DPID, d.Table)
					if d.Desired != "" {
						fmt.Fprintf(&b, "\n    desired:   %s", d.Desired)
					}
					if d.Installed != "" {
						fmt.Fprintf(&b, "\n    installed: %s", d.Installed)
					}
					b.WriteByte('\n')
				}
			}
			fmt.Fprintf(&b, "\non the installed flows: %s\n", r.Installed.Summary)
			r.Installed.writeHops(&b)
		}
	}
	if r.Live != nil {
		r.Live.write(&b)
	}
	return b.String()
}

func (r *Result) writeHops(b *strings.Builder) {
	for _, h := range r.Hops {
		where := "switch " + h.DPID.String()
		if h.Chassis != "" {
			where = "chassis " + h.Chassis + " (" + h.DPID.String() + ")"
		}
		fmt.Fprintf(b, "\n%s, in_port %d (%s):\n", where, h.InPort, h.From)
		for _, s := range h.Steps {
			fmt.Fprintf(b, "  %2d %-14s [%s] %s\n", s.Table, s.TableName, s.Feature, s.Object)
			if s.Flow != "" {
				fmt.Fprintf(b, "       %s\n", s.Flow)
			}
			for _, rw := range s.Rewrites {
				fmt.Fprintf(b, "       → %s\n", rw)
			}
			if s.Drop != "" {
				fmt.Fprintf(b, "       ✗ drop: %s\n", s.Drop)
			}
		}
		fmt.Fprintf(b, "  out: %s\n", h.Out)
	}
}
