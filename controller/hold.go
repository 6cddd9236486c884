package controller

import (
	"fmt"
	"sort"
	"strings"

	"github.com/vpcflow/vpcflow/controller/engine"
	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// A reconciliation (or a drift check) deletes the flows vpcflow does not
// want. Two kinds of them are kept instead, because not wanting them is
// not the same as knowing they are wrong:
//
//   - unknown is not absent: the flows of objects whose OVSDB has not been
//     seen yet (down since vpcflow started, a TLS error, ...) cannot be
//     computed, so they are left as they are until it answers;
//   - a store that knows far fewer objects than a switch has flows for (an
//     empty or truncated store, a mistyped --data-dir) would wipe the
//     fabric: the flows of objects the store does not know are kept, unless
//     vpcflow was started with --allow-flush or the switch is flushed on
//     request (POST /v1/switches/{dpid}/flush).

// holdPolicy decides which deletes of a diff are held back.
type holdPolicy struct {
	// unknown are the owners whose OVSDB has not been seen: their flows are
	// never deleted.
	unknown map[pipeline.Owner]bool
	// unknownSwitch: the switch is on no known OVSDB while one is not
	// known yet; it may be on that one, so none of vpcflow's flows on it
	// are deleted (not even those of known objects: where they belong on
	// it, e.g. its tunnel port, is what that OVSDB would say).
	unknownSwitch bool
	// read reads the topology (whether the store knows an object).
	read func(func(st *topology.State))
	// flush turns the guard against a much smaller store off.
	flush bool
}

// held counts what a filter kept.
type held struct {
	// Unknown flows belong to objects whose OVSDB is not known yet.
	Unknown int
	// Guarded flows belong to objects the store does not know, kept
	// because the store knows fewer than half of the objects the switch
	// has flows for.
	Guarded int
	// Owners is how many objects (vpcflow cookies other than the
	// pipeline's) the installed flows belong to, Missing how many of them
	// the store does not know.
	Owners, Missing int
	// Examples names a few of the objects whose flows were guarded.
	Examples []string
}

func (h held) total() int { return h.Unknown + h.Guarded }

// guardMinMissing is the fewest unknown objects that trigger the guard:
// one object deleted while its switch was away is an ordinary change.
const guardMinMissing = 2

// filter removes from changes the deletes p holds back; installed is what
// the changes were computed against (for the guard's proportions).
func (p *holdPolicy) filter(changes []engine.FlowChange, installed []openflow.Flow) ([]engine.FlowChange, held) {
	if p == nil {
		return changes, held{}
	}
	owners := installedOwners{}
	for i := range installed {
		owners.add(installed[i].Cookie)
	}
	return p.filterOwners(changes, owners)
}

// installedOwners are the objects a switch's flows belong to (by their
// cookies), gathered as its dump goes by; the value is filled in by
// filterOwners (missing from the store).
type installedOwners map[pipeline.Owner]bool

func (o installedOwners) add(cookie uint64) {
	ck := pipeline.ParseCookie(cookie)
	if !ck.Ours || ck.Owner == pipeline.OwnerPipeline {
		return
	}
	o[pipeline.Owner{Kind: ck.Owner, ID: ck.ID}] = false
}

// filterOwners is filter with the installed flows' owners gathered.
func (p *holdPolicy) filterOwners(changes []engine.FlowChange, owners installedOwners) ([]engine.FlowChange, held) {
	var h held
	if p == nil {
		return changes, h
	}
	// Which of the installed flows' owners does the store not know?
	p.read(func(st *topology.State) {
		for o := range owners {
			owners[o] = !ownerExists(st, o)
		}
	})
	h.Owners = len(owners)
	var missing []pipeline.Owner
	for o, m := range owners {
		if m {
			missing = append(missing, o)
		}
	}
	h.Missing = len(missing)
	guard := !p.flush && h.Missing >= guardMinMissing && 2*h.Missing > h.Owners
	if len(p.unknown) == 0 && !p.unknownSwitch && !guard {
		return changes, h
	}
	out := changes[:0:0]
	for _, ch := range changes {
		if ch.Delete {
			ck := pipeline.ParseCookie(ch.Flow.Cookie)
			o := pipeline.Owner{Kind: ck.Owner, ID: ck.ID}
			if ck.Ours && (p.unknownSwitch || p.unknown[o]) {
				h.Unknown++
				continue
			}
			if guard && ck.Ours && owners[o] {
				h.Guarded++
				continue
			}
		}
		out = append(out, ch)
	}
	if h.Guarded > 0 {
		sort.Slice(missing, func(i, j int) bool {
			if missing[i].Kind != missing[j].Kind {
				return missing[i].Kind < missing[j].Kind
			}
			return missing[i].ID < missing[j].ID
		})
		for i, o := range missing {
			if i == 5 {
				h.Examples = append(h.Examples, fmt.Sprintf("… %d more", len(missing)-5))
				break
			}
			h.Examples = append(h.Examples, o.String())
		}
	}
	return out, h
}

// ownerExists reports whether the object an owner stands for is in st.
func ownerExists(st *topology.State, o pipeline.Owner) bool {
	var ok bool
	switch o.Kind {
	case pipeline.OwnerHost:
		_, ok = st.HostByID(o.ID)
	case pipeline.OwnerSubnet:
		_, ok = st.SubnetByID(o.ID)
	case pipeline.OwnerChassis:
		_, ok = st.ChassisByID(o.ID)
	case pipeline.OwnerVSwitch:
		_, ok = st.VSwitchByID(o.ID)
	default:
		// A kind this vpcflow does not know (a newer version's): not ours
		// to judge.
		ok = true
	}
	return ok
}

// describe is the log text of what was held.
func (h held) describe() string {
	var parts []string
	if h.Unknown > 0 {
		parts = append(parts, fmt.Sprintf("%d flows of objects whose OVSDB has not answered yet", h.Unknown))
	}
	if h.Guarded > 0 {
		parts = append(parts, fmt.Sprintf("%d flows of %d objects the store does not know (%s), out of %d objects the switch has flows for",
			h.Guarded, h.Missing, strings.Join(h.Examples, ", "), h.Owners))
	}
	return strings.Join(parts, "; ")
}

// holdPolicy is the policy for a diff computed now. Caller holds c.mu
// and is inside store.Read (st).
func (c *Controller) holdPolicyFor(st *topology.State, dpid uint64, flush bool) *holdPolicy {
	p := &holdPolicy{unknown: c.unknownOwners(st), read: c.store.Read, flush: flush || c.opts.AllowFlush}
	if len(p.unknown) > 0 || c.anyEndpointUnknown(st) {
		p.unknownSwitch = !c.dpidKnown(dpid)
	}
	return p
}

// anyEndpointUnknown reports whether an OVSDB vpcflow needs has not been
// seen yet. Caller holds c.mu and is inside store.Read.
func (c *Controller) anyEndpointUnknown(st *topology.State) bool {
	for ep := range c.wantEndpoints {
		if !c.endpointKnown(ep) {
			return true
		}
	}
	for _, ch := range st.AllChassis() {
		if !c.endpointKnown(ch.OVSDB) {
			return true
		}
	}
	return false
}

// dpidKnown reports whether a bridge of a known OVSDB has dpid. Caller
// holds c.mu.
func (c *Controller) dpidKnown(dpid uint64) bool {
	for _, bs := range c.bridges {
		for _, b := range bs {
			if b.DPID == dpid {
				return true
			}
		}
	}
	return false
}

// endpointKnown reports whether an OVSDB's port map has been seen. Caller
// holds c.mu.
func (c *Controller) endpointKnown(ep string) bool {
	_, ok := c.bridges[ep]
	return ok
}

// unknownOwners are the owners whose flows cannot be computed because the
// OVSDB that says where they are has not answered since vpcflow started:
// the hosts on it (chassis hosts of a chassis whose OVSDB is unknown,
// bridge hosts of an unknown --ovsdb server, or whose bridge is on no
// known server while one is unknown), with their vSwitches and the route
// entries through them, and the chassis themselves. Caller holds c.mu and
// is inside store.Read.
func (c *Controller) unknownOwners(st *topology.State) map[pipeline.Owner]bool {
	var unknownEPs []string
	for ep := range c.wantEndpoints {
		if !c.endpointKnown(ep) {
			unknownEPs = append(unknownEPs, ep)
		}
	}
	for _, ch := range st.AllChassis() {
		if !c.endpointKnown(ch.OVSDB) {
			unknownEPs = append(unknownEPs, ch.OVSDB)
		}
	}
	if len(unknownEPs) == 0 {
		return nil
	}
	out := map[pipeline.Owner]bool{}
	for _, ch := range st.AllChassis() {
		if !c.endpointKnown(ch.OVSDB) {
			out[pipeline.Owner{Kind: pipeline.OwnerChassis, ID: ch.ID}] = true
		}
	}
	anyServerUnknown := false
	for _, ep := range c.opts.OVSDBEndpoints {
		anyServerUnknown = anyServerUnknown || !c.endpointKnown(ep)
	}
	pm := portMap{bridges: c.bridges, st: st, pins: c.pins}
	for _, h := range st.AllHosts() {
		unknown := false
		switch {
		case h.Chassis != "":
			ch, ok := st.Chassis(h.Chassis)
			unknown = ok && !c.endpointKnown(ch.OVSDB)
		case h.Bridge != "" && h.OVSDB != "":
			unknown = !c.endpointKnown(h.OVSDB)
		case h.Bridge != "":
			_, found := pm.bridgeEndpoint(h)
			unknown = anyServerUnknown && !found && len(pm.candidates(h.Bridge)) == 0
		}
		if !unknown {
			continue
		}
		out[pipeline.Owner{Kind: pipeline.OwnerHost, ID: h.ID}] = true
		if w, ok := st.VSwitch(h.VPC, h.VSwitch); ok {
			out[pipeline.Owner{Kind: pipeline.OwnerVSwitch, ID: w.ID}] = true
		}
		for _, s := range st.SubnetsOfHost(h.VPC, h.Name) {
			out[pipeline.Owner{Kind: pipeline.OwnerSubnet, ID: s.ID}] = true
		}
	}
	return out
}
