package e2e

import (
	"context"
	"encoding/json"

	"github.com/vpcflow/vpcflow/controller/engine"
	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// attachments resolves hosts from the ofports a test knows: by name for
// hosts attached by bridge+interface to the bridge under test, as given
// for hosts attached by dpid+ofport to it; every other host is elsewhere.
type attachments struct {
	dpid   uint64
	bridge string
	ports  map[string]uint32
}

func (a attachments) Attachment(h topology.Host) (pipeline.Attachment, bool) {
	switch {
	case h.Bridge == a.bridge:
		p, ok := a.ports[h.Name]
		return pipeline.Attachment{DPID: a.dpid, OFPort: p}, ok
	case h.Bridge == "" && h.Chassis == "" && uint64(h.DPID) == a.dpid:
		return pipeline.Attachment{DPID: a.dpid, OFPort: h.OFPort}, true
	}
	return pipeline.Attachment{}, false
}

// referenceTable computes, with vpcflow's own pipeline and engine over the
// objects the REST API returns (re-created in a store of its own in ID
// order, so IDs and cookies are the same), the table the bridge under
// test must hold.
func (f *fabric) referenceTable(at attachments) []openflow.Flow {
	f.t.Helper()
	return engine.Sorted(f.referenceEngine(at, map[string]pipeline.ChassisPlace{}, 1500).Desired(at.dpid))
}

// referenceTables is referenceTable for every datapath: the tables that
// ports and chassis places make of the objects the REST API returns, by
// dpid (a dpid with nothing of its own has the pipeline's defaults only;
// ask Desired for it).
func (f *fabric) referenceTables(ports pipeline.Ports, places map[string]pipeline.ChassisPlace, mtu int) map[uint64][]openflow.Flow {
	tables := map[uint64][]openflow.Flow{}
	e := f.referenceEngine(ports, places, mtu)
	for _, d := range e.dpids {
		tables[d] = engine.Sorted(e.Desired(d))
	}
	return tables
}

type referenceEngine struct {
	*engine.Engine
	dpids []uint64
}

func (f *fabric) referenceEngine(ports pipeline.Ports, places map[string]pipeline.ChassisPlace, mtu int) referenceEngine {
	t := f.t
	t.Helper()
	ctx := context.Background()
	st, err := topology.NewStore(ctx, topology.NewMemory(), nil)
	must(t, err)
	var vpcs []topology.VPC
	must(t, json.Unmarshal(f.rest("GET", "/v1/vpcs", nil, 200), &vpcs))
	var chassis []topology.Chassis
	must(t, json.Unmarshal(f.rest("GET", "/v1/chassis", nil, 200), &chassis))
	var vsws []topology.VSwitch
	var hosts []topology.Host
	var subnets []topology.Subnet
	var groups []topology.SecurityGroup
	var rules []topology.SecurityGroupRule
	for _, v := range vpcs {
		var g []topology.SecurityGroup
		must(t, json.Unmarshal(f.rest("GET", "/v1/vpcs/"+v.Name+"/security-groups", nil, 200), &g))
		groups = append(groups, g...)
		for _, x := range g {
			var r []topology.SecurityGroupRule
			must(t, json.Unmarshal(f.rest("GET", "/v1/vpcs/"+v.Name+"/security-groups/"+x.Name+"/rules", nil, 200), &r))
			rules = append(rules, r...)
		}
		var w []topology.VSwitch
		must(t, json.Unmarshal(f.rest("GET", "/v1/vpcs/"+v.Name+"/vswitches", nil, 200), &w))
		vsws = append(vsws, w...)
		var h []topology.Host
		must(t, json.Unmarshal(f.rest("GET", "/v1/vpcs/"+v.Name+"/hosts", nil, 200), &h))
		hosts = append(hosts, h...)
		var s []topology.Subnet
		must(t, json.Unmarshal(f.rest("GET", "/v1/vpcs/"+v.Name+"/subnets", nil, 200), &s))
		subnets = append(subnets, s...)
	}
	var objs []topology.Object
	for i := range chassis {
		objs = append(objs, &chassis[i])
	}
	for i := range vpcs {
		objs = append(objs, &vpcs[i])
	}
	for i := range vsws {
		objs = append(objs, &vsws[i])
	}
	for i := range groups {
		objs = append(objs, &groups[i])
	}
	for i := range rules {
		objs = append(objs, &rules[i])
	}
	for i := range hosts {
		objs = append(objs, &hosts[i])
	}
	for i := range subnets {
		objs = append(objs, &subnets[i])
	}
	must(t, st.Restore(ctx, objs))
	e := engine.New(pipeline.Default())
	var dpids []uint64
	st.Read(func(s *topology.State) {
		for dpid := range e.Update(&pipeline.Snapshot{Topo: s, Ports: ports, Chassis: places, UnderlayMTU: mtu}, pipeline.AllOwners(s)) {
			dpids = append(dpids, dpid)
		}
	})
	return referenceEngine{Engine: e, dpids: dpids}
}
