package main

import (
	"context"
	"fmt"

	"github.com/vpcflow/vpcflow/controller/engine"
	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// byPort resolves hosts attached by dpid+ofport, as the bench attaches
// them (no OVSDB needed).
type byPort struct{}

func (byPort) Attachment(h topology.Host) (pipeline.Attachment, bool) {
	return pipeline.Attachment{DPID: uint64(h.DPID), OFPort: h.OFPort}, h.DPID != 0 && h.OFPort != 0
}

// referenceTables computes, with vpcflow's own pipeline and engine, the
// table vpcflow wants on each dpid for the given topology objects (as the
// REST API returned them).
func referenceTables(vpc topology.VPC, vsws []topology.VSwitch, hosts []topology.Host, subnets []topology.Subnet) (map[uint64][]openflow.Flow, error) {
	ctx := context.Background()
	st, err := topology.NewStore(ctx, topology.NewMemory(), nil)
	if err != nil {
		return nil, err
	}
	// The objects as the REST API returned them, IDs and all (so the
	// cookies are the same).
	objs := []topology.Object{&vpc}
	for i := range vsws {
		objs = append(objs, &vsws[i])
	}
	for i := range hosts {
		objs = append(objs, &hosts[i])
	}
	for i := range subnets {
		objs = append(objs, &subnets[i])
	}
	if err := st.Restore(ctx, objs); err != nil {
		return nil, fmt.Errorf("reference topology: %w", err)
	}
	e := engine.New(pipeline.Default())
	st.Read(func(s *topology.State) {
		e.Update(&pipeline.Snapshot{Topo: s, Ports: byPort{}, Chassis: map[string]pipeline.ChassisPlace{}, UnderlayMTU: 1500},
			pipeline.AllOwners(s))
	})
	out := map[uint64][]openflow.Flow{}
	for _, h := range hosts {
		if _, ok := out[uint64(h.DPID)]; !ok {
			out[uint64(h.DPID)] = engine.Sorted(e.Desired(uint64(h.DPID)))
		}
	}
	return out, nil
}
