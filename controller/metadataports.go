package controller

import (
	"bytes"

	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/ovsdb"
	"github.com/vpcflow/vpcflow/topology"
)

// metadataPorts finds every bridge's metadata port (pipeline.MetadataPortName
// with an ofport and an external_ids:attached-mac, the MAC of the server's
// interface behind it), by dpid.
func metadataPorts(bridges map[string][]ovsdb.Bridge) map[uint64]pipeline.MetadataPort {
	out := map[uint64]pipeline.MetadataPort{}
	for _, bs := range bridges {
		for _, b := range bs {
			p, ok := b.Ports[pipeline.MetadataPortName]
			if b.DPID == 0 || !ok || p.OFPort <= 0 || len(p.AttachedMAC) != 6 {
				continue
			}
			out[b.DPID] = pipeline.MetadataPort{OFPort: uint32(p.OFPort), MAC: p.AttachedMAC}
		}
	}
	return out
}

func sameMetadataPorts(a, b map[uint64]pipeline.MetadataPort) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w.OFPort != v.OFPort || !bytes.Equal(w.MAC, v.MAC) {
			return false
		}
	}
	return true
}

// MetadataInstance is what the metadata service answers a VM.
type MetadataInstance struct {
	Host    topology.Host
	VPC     topology.VPC
	VSwitch topology.VSwitch
	Chassis string // "" for a host on a bridge of vpcflow's own OVSDB
}

// MetadataInstance is the host whose requests come from link address a
// (pipeline.MetadataLinkAddr), if it exists and is attached to a bridge
// with a metadata port: the VM is known by the port its requests came in
// by.
func (c *Controller) MetadataInstance(id uint32) (MetadataInstance, bool) {
	c.mu.Lock()
	at, attached := c.attached.Get(id)
	_, served := metadataPorts(c.bridges)[at.DPID]
	c.mu.Unlock()
	if !attached || !served {
		return MetadataInstance{}, false
	}
	var out MetadataInstance
	ok := false
	c.store.Read(func(st *topology.State) {
		h, found := st.HostByID(id)
		if !found {
			return
		}
		v, found := st.VPC(h.VPC)
		if !found {
			return
		}
		w, found := st.VSwitch(h.VPC, h.VSwitch)
		if !found {
			return
		}
		out, ok = MetadataInstance{Host: h, VPC: v, VSwitch: w, Chassis: h.Chassis}, true
	})
	return out, ok
}
