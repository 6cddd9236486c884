package pipeline

import (
	"fmt"
	"strings"
)

// Reference is the pipeline's reference in Markdown — every table, register,
// cookie kind and drop reason, from the declarations themselves.
// docs/pipeline.md carries it between markers; TestDocsMatchDeclarations
// keeps them equal (go test ./controller/pipeline -update rewrites it).
func (p *Pipeline) Reference() string {
	var b strings.Builder
	b.WriteString("### Tables\n\n")
	b.WriteString("| table | name | feature | handles | in line | on a miss | what it does |\n|---|---|---|---|---|---|---|\n")
	for _, t := range p.tables {
		inline := "yes"
		if t.Entry {
			inline = "no (entered by a jump)"
		}
		miss := "drop: " + p.dropName(t.Miss.Drop)
		switch {
		case t.Miss.Actions != nil:
			var acts []string
			for _, a := range t.Miss.Actions {
				acts = append(acts, "`"+a.String()+"`")
			}
			miss = strings.Join(acts, ", ")
		case t.Miss.Continue:
			next, _ := p.next(t, t.Handles)
			miss = fmt.Sprintf("go on to %d", next.ID)
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s | %s |\n", t.ID, t.Name, p.owner[t].Name(), t.Handles, inline, miss, t.Why)
	}
	b.WriteString("\n### Registers\n\n| field | holds | feature | why |\n|---|---|---|---|\n")
	for _, f := range p.features {
		for _, r := range f.Registers() {
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", r, r.Name, f.Name(), r.Why)
		}
	}
	b.WriteString("\n### Cookie owner kinds\n\n| kind | owner | used by |\n|---|---|---|\n")
	for _, k := range OwnerKinds() {
		var users []string
		for _, f := range p.features {
			for _, c := range f.Cookies() {
				if c == k {
					users = append(users, f.Name())
				}
			}
		}
		fmt.Fprintf(&b, "| %d | %s | %s |\n", k, k, strings.Join(users, ", "))
	}
	b.WriteString("\n### Meters\n\nEvery switch holds these meters (one drop band each); every flow that sends a packet to vpcflow goes through one (`controller(userdata=76.SERVICE,meter_id=ID)`).\n\n| meter | name | feature | service (userdata) | rate | burst | why |\n|---|---|---|---|---|---|---|\n")
	for _, m := range p.meters {
		fmt.Fprintf(&b, "| %d | %s | %s | %s (`%02x.%02x`) | %d packets/s | %d packets | %s |\n", m.ID, m.Name, p.meterOwner[m].Name(), m.Service, userdataMagic, uint8(m.Service), m.Rate, m.Burst, m.Why)
	}
	b.WriteString("\n### Drop reasons\n\n| reason | name | declared by | why |\n|---|---|---|---|\n")
	for _, d := range p.drops {
		fmt.Fprintf(&b, "| %d | `%s` | %s | %s |\n", d.Reason, d.Name, p.declarer(d.Reason), d.Why)
	}
	return b.String()
}

func (p *Pipeline) dropName(r DropReason) string {
	for _, d := range p.drops {
		if d.Reason == r {
			return "`" + d.Name + "`"
		}
	}
	return "none"
}

func (p *Pipeline) declarer(r DropReason) string {
	if r == puntDrop.Reason && len(p.meters) > 0 {
		return "pipeline"
	}
	for _, f := range p.features {
		for _, d := range f.Drops() {
			if d.Reason == r {
				return f.Name()
			}
		}
	}
	return ""
}
