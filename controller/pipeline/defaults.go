package pipeline

import "github.com/vpcflow/vpcflow/openflow"

// DatapathFlower is a Feature with flows on every datapath besides its
// tables' misses, the same on all of them (the DHCP feature counts DHCP
// from unregistered sources in the first table). They are defaults:
// owned by the pipeline, installed on every switch, never removed.
type DatapathFlower interface {
	// DatapathFlows adds the flows; the datapath given to FlowSet.On is
	// ignored.
	DatapathFlows(out *FlowSet)
}

// datapathFlows are every feature's DatapathFlows, in pipeline order.
func (p *Pipeline) datapathFlows() []openflow.Flow {
	var out []openflow.Flow
	for _, f := range p.features {
		out = append(out, p.DatapathFlowsOf(f)...)
	}
	return out
}

// DatapathFlowsOf are feature f's flows on every datapath (none unless
// it is a DatapathFlower).
func (p *Pipeline) DatapathFlowsOf(f Feature) []openflow.Flow {
	df, ok := f.(DatapathFlower)
	if !ok {
		return nil
	}
	set := &FlowSet{p: p, feature: f}
	df.DatapathFlows(set)
	out := make([]openflow.Flow, len(set.flows))
	for i, pf := range set.flows {
		out[i] = pf.Flow
	}
	return out
}
