package controller

import (
	"github.com/vpcflow/vpcflow/ovsdb"
	"github.com/vpcflow/vpcflow/topology"
)

// portKey names the OVS interface a host is attached to: the OVSDB
// endpoint of its chassis ("" for a bridge+interface host, which may be on
// any --ovsdb server), the bridge and the interface.
type portKey struct {
	endpoint, bridge, iface string
}

// portIndex finds the hosts waiting on, or attached to, an interface, so a
// port event recomputes only the hosts whose port changed instead of
// walking every host.
type portIndex struct {
	hosts map[portKey]map[uint32]ownerKey
	keyOf map[uint32]portKey
}

func newPortIndex() *portIndex {
	return &portIndex{hosts: map[portKey]map[uint32]ownerKey{}, keyOf: map[uint32]portKey{}}
}

// portKeyOf is where host h is attached by name; false for hosts attached
// by dpid+ofport, which no port event can change.
func portKeyOf(st *topology.State, h topology.Host) (portKey, bool) {
	switch {
	case h.Chassis != "":
		ch, ok := st.Chassis(h.Chassis)
		if !ok {
			return portKey{}, false
		}
		return portKey{endpoint: ch.OVSDB, bridge: ch.Bridge, iface: h.Interface}, true
	case h.Bridge != "":
		return portKey{bridge: h.Bridge, iface: h.Interface}, true
	}
	return portKey{}, false
}

// set records host o at k (ok) or forgets it.
func (p *portIndex) set(o ownerKey, k portKey, ok bool) {
	if old, had := p.keyOf[o.id]; had {
		delete(p.hosts[old], o.id)
		if len(p.hosts[old]) == 0 {
			delete(p.hosts, old)
		}
		delete(p.keyOf, o.id)
	}
	if !ok {
		return
	}
	if p.hosts[k] == nil {
		p.hosts[k] = map[uint32]ownerKey{}
	}
	p.hosts[k][o.id] = o
	p.keyOf[o.id] = k
}

// lookup lists the hosts at k.
func (p *portIndex) lookup(k portKey) []ownerKey {
	out := make([]ownerKey, 0, len(p.hosts[k]))
	for _, o := range p.hosts[k] {
		out = append(out, o)
	}
	return out
}

// bridgePort is an interface on a bridge.
type bridgePort struct {
	bridge, iface string
}

// changedPorts lists the interfaces whose ofport differs between two port
// maps of one OVSDB; a bridge that appeared, disappeared or changed dpid
// changes all of its interfaces.
func changedPorts(old, now []ovsdb.Bridge) []bridgePort {
	byName := func(bs []ovsdb.Bridge) map[string]ovsdb.Bridge {
		m := make(map[string]ovsdb.Bridge, len(bs))
		for _, b := range bs {
			m[b.Name] = b
		}
		return m
	}
	o, n := byName(old), byName(now)
	var out []bridgePort
	all := func(b ovsdb.Bridge) {
		for name := range b.Ports {
			out = append(out, bridgePort{b.Name, name})
		}
	}
	for name, nb := range n {
		ob, ok := o[name]
		if !ok || ob.DPID != nb.DPID {
			all(nb)
			if ok {
				all(ob)
			}
			continue
		}
		for iface, np := range nb.Ports {
			if op, ok := ob.Ports[iface]; !ok || op.OFPort != np.OFPort {
				out = append(out, bridgePort{name, iface})
			}
		}
		for iface := range ob.Ports {
			if _, ok := nb.Ports[iface]; !ok {
				out = append(out, bridgePort{name, iface})
			}
		}
	}
	for name, ob := range o {
		if _, ok := n[name]; !ok {
			all(ob)
		}
	}
	return out
}
