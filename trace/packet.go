package trace

import (
	"github.com/vpcflow/vpcflow/openflow"
)

// Packet is the state of a packet as the pipeline sees it: every match
// field (absent ones are 0, as in OVS), the frame's length, and the
// registers and metadata the pipeline writes.
type Packet struct {
	f   [64]uint64
	Len int // frame bytes, Ethernet header included
}

// Get is the value of field f.
func (p *Packet) Get(f openflow.Field) uint64 {
	if int(f) >= len(p.f) {
		return 0
	}
	return p.f[f]
}

// Set writes field f.
func (p *Packet) Set(f openflow.Field, v uint64) {
	if int(f) < len(p.f) {
		p.f[f] = v & fullMask(f)
	}
}

// setBits writes nbits bits of f from bit ofs.
func (p *Packet) setBits(f openflow.Field, ofs, nbits uint8, v uint64) {
	mask := bitMask(nbits) << ofs
	p.Set(f, p.Get(f)&^mask|(v<<ofs)&mask)
}

func (p *Packet) getBits(f openflow.Field, ofs, nbits uint8) uint64 {
	return p.Get(f) >> ofs & bitMask(nbits)
}

func bitMask(nbits uint8) uint64 {
	if nbits >= 64 {
		return ^uint64(0)
	}
	return 1<<nbits - 1
}

// resetPipelineFields clears what does not survive leaving a switch:
// metadata, registers, connection tracking and the ingress port.
func (p *Packet) resetPipelineFields() {
	for _, f := range []openflow.Field{openflow.FieldMetadata, openflow.FieldInPort, openflow.FieldCTState,
		openflow.FieldCTZone, openflow.FieldCTMark, openflow.FieldCTLabel, openflow.FieldConjID} {
		p.Set(f, 0)
	}
	for i := range 8 {
		p.Set(openflow.Reg(i), 0)
	}
}
