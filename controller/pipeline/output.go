package pipeline

import (
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// Output is the last stage: it sends the packet out of the port an earlier
// stage wrote into reg2 (a VM's port or the VXLAN port). One flow serves
// every port, so stages can be put in before it without knowing ports.
type Output struct {
	table *Table
}

// outPort is the register that carries the output port.
const outPort = openflow.FieldReg2

// NewOutput declares the Output stage.
func NewOutput() *Output {
	return &Output{table: &Table{ID: 70, Name: "Output", Handles: IPv4,
		Why:  "send the packet out of the port earlier stages wrote into reg2",
		Miss: Miss{Actions: []openflow.Action{openflow.OutputReg(outPort, 0, 32)}}}}
}

// setOutPort is how a stage chooses the port a packet leaves by.
func setOutPort(port uint32) openflow.Action { return openflow.SetField(outPort, uint64(port)) }

func (o *Output) Name() string     { return "output" }
func (o *Output) Tables() []*Table { return []*Table{o.table} }
func (o *Output) Registers() []Register {
	return []Register{{Field: outPort, Lo: 0, Hi: 31, Name: "output port",
		Why: "the OpenFlow port the packet leaves by; written by L3Forwarding and TunnelDelivery"}}
}
func (o *Output) Cookies() []OwnerKind                          { return []OwnerKind{OwnerPipeline} }
func (o *Output) Drops() []DropReasonInfo                       { return nil }
func (o *Output) Flows(*Snapshot, Owner, *FlowSet)              {}
func (o *Output) Affected(*topology.State, topology.Op) []Owner { return nil }
