package controller

import (
	"fmt"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/topology"
)

// A bridge+interface host is found through the --ovsdb servers. A bridge
// name that several of them have is ambiguous: such a host must name its
// server ("ovsdb"), or be attached by chassis. A host created while
// exactly one server has the bridge is given that server for good, so its
// attachment never moves to another server's bridge of the same name
// (say when that one reconnects, or gets the name later).

// resolveBridgeHosts fills in the OVSDB of bridge+interface hosts being
// created or re-attached without one, when exactly one known server has
// their bridge, and refuses them when several have it.
func (c *Controller) resolveBridgeHosts(ops []topology.Op) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	pm := portMap{bridges: c.bridges}
	for i, op := range ops {
		h := op.Host()
		if h == nil || (op.Kind != topology.OpCreate && op.Kind != topology.OpUpdate) || h.Bridge == "" || h.Chassis != "" {
			continue
		}
		if h.OVSDB != "" {
			ep, err := topology.ValidateOVSDB("ovsdb", h.OVSDB)
			if err != nil {
				continue // the store says what is wrong with it
			}
			if !slices.Contains(c.opts.OVSDBEndpoints, ep) {
				e := topology.Invalid("ovsdb", "%s is not one of the OVSDB servers vpcflow watches (vpcflow serve --ovsdb: %s)",
					ep, strings.Join(c.opts.OVSDBEndpoints, ", "))
				if len(c.opts.OVSDBEndpoints) == 0 {
					e = topology.Invalid("ovsdb", "%s: vpcflow serve was started without --ovsdb", ep)
				}
				if len(ops) > 1 {
					e.Field = fmt.Sprintf("[%d].%s", i, e.Field)
				}
				return e
			}
			continue
		}
		cands := pm.candidates(h.Bridge)
		switch len(cands) {
		case 0:
			// Not there yet (it may be created later): found when it is,
			// on whichever server is then the only one to have it.
		case 1:
			h.OVSDB = cands[0]
		default:
			e := topology.Invalid("ovsdb", "bridge %q is on %d OVSDB servers (%s): name the one the host is on with \"ovsdb\" (or attach the host by chassis)",
				h.Bridge, len(cands), strings.Join(cands, ", "))
			if len(ops) > 1 {
				e.Field = fmt.Sprintf("[%d].%s", i, e.Field)
			}
			return e
		}
	}
	return nil
}

// pinBridgeHost records where a bridge host without an OVSDB of its own
// was found, and warns (once per set of candidates) when it cannot be
// found because its bridge name is ambiguous. Caller holds c.mu.
func (c *Controller) pinBridgeHost(snap *pipeline.Snapshot, h topology.Host) {
	if h.Bridge == "" || h.OVSDB != "" {
		delete(c.pins, h.ID)
		delete(c.ambiguous, h.ID)
		return
	}
	pm, ok := snap.Ports.(portMap)
	if !ok {
		return
	}
	if ep, ok := pm.bridgeEndpoint(h); ok {
		c.pins[h.ID] = ep
		delete(c.ambiguous, h.ID)
		return
	}
	cands := pm.candidates(h.Bridge)
	if len(cands) < 2 {
		return
	}
	key := strings.Join(cands, ", ")
	if c.ambiguous[h.ID] == key {
		return
	}
	c.ambiguous[h.ID] = key
	c.log.Warn("host not attached: its bridge name is on several OVSDB servers; give the host the one it is on (PUT with \"ovsdb\")",
		zap.String("vpc", h.VPC), zap.String("host", h.Name), zap.String("bridge", h.Bridge), zap.Strings("ovsdb", cands))
}
