package pipeline

import (
	"fmt"
	"sort"

	"github.com/vpcflow/vpcflow/openflow"
)

// Controller-bound ("punted") packets. Every flow that sends a packet to
// vpcflow does it through FlowBuilder.Punt: a controller action whose
// userdata names the service that handles the packet and whose meter
// (declared by the feature, next to its tables) rate-limits it on the
// switch. Meters are switch state like flows: vpcflow installs the
// declared meters when it reconciles a switch, before any flow that uses
// them, and the switch keeps them across reconnects.

// Service names the handler of a punted packet; it is the controller
// action's userdata (with a magic byte), so the packet-in says which
// feature sent it whatever table or cookie it came from.
type Service uint8

// Services.
const (
	ServiceTooBig Service = 1 // a frame too big for the VXLAN underlay (tunnel)
	ServiceDHCP   Service = 2 // a DHCP request from a VM (dhcp)
)

func (s Service) String() string {
	switch s {
	case ServiceTooBig:
		return "too_big"
	case ServiceDHCP:
		return "dhcp"
	case ServiceTrace:
		return "trace"
	case ServiceUplinkARP:
		return "uplink_arp"
	}
	return fmt.Sprintf("service%d", uint8(s))
}

// userdataMagic starts the userdata of every vpcflow controller action.
const userdataMagic = 0x76 // 'v'

// Userdata is the controller action's userdata for service s.
func (s Service) Userdata() []byte { return []byte{userdataMagic, byte(s)} }

// ServiceOf reads the service out of a packet-in's userdata.
func ServiceOf(userdata []byte) (Service, bool) {
	if len(userdata) != 2 || userdata[0] != userdataMagic || userdata[1] == 0 {
		return 0, false
	}
	return Service(userdata[1]), true
}

// Meter is an OpenFlow meter a feature declares for the packets it punts:
// one drop band of Rate packets per second with a burst of Burst packets,
// per switch. Meter ids are vpcflow's on every switch.
type Meter struct {
	ID      uint32
	Name    string
	Service Service // the service whose punts go through it
	Rate    uint32  // packets per second
	Burst   uint32  // packets
	Why     string
}

// Config is the meter as a switch holds it.
func (m *Meter) Config() openflow.MeterConfig {
	return openflow.MeterConfig{ID: m.ID, Rate: m.Rate, Burst: m.Burst}
}

// Metered is a Feature that punts packets: it declares its meters.
type Metered interface {
	Meters() []*Meter
}

// DropPuntLimited: a punted packet that its meter (on the switch) or the
// controller's per-source budget dropped; counted by vpcflow from meter
// stats and its own budget.
const DropPuntLimited DropReason = 16

// puntDrop is the reason the pipeline itself declares once any feature
// punts.
var puntDrop = DropReasonInfo{DropPuntLimited, "punt_limited",
	"a packet for vpcflow (DHCP, too big, uplink router ARP, a live trace's) over its meter's rate on the switch or its source's budget in vpcflow (counted by vpcflow)"}

// checkMeters collects the features' meters: ids and services unique,
// rates not zero.
func (p *Pipeline) checkMeters() error {
	ids := map[uint32]string{}
	services := map[Service]string{}
	for _, f := range p.features {
		mf, ok := f.(Metered)
		if !ok {
			continue
		}
		for _, m := range mf.Meters() {
			if m.ID == 0 || m.ID > 0xffff0000 {
				return fmt.Errorf("pipeline: meter %q of %s: id %d outside 1..0xffff0000", m.Name, f.Name(), m.ID)
			}
			if m.Rate == 0 {
				return fmt.Errorf("pipeline: meter %q of %s: rate 0", m.Name, f.Name())
			}
			if other, dup := ids[m.ID]; dup {
				return fmt.Errorf("pipeline: meter %d (%s) of %s is already declared by %s", m.ID, m.Name, f.Name(), other)
			}
			if other, dup := services[m.Service]; dup {
				return fmt.Errorf("pipeline: service %s of %s already has a meter, from %s", m.Service, f.Name(), other)
			}
			ids[m.ID], services[m.Service] = f.Name(), f.Name()
			p.meters = append(p.meters, m)
			p.meterOwner[m] = f
		}
	}
	sort.Slice(p.meters, func(i, j int) bool { return p.meters[i].ID < p.meters[j].ID })
	return nil
}

// Meters lists every declared meter, by id: what every switch holds.
func (p *Pipeline) Meters() []*Meter { return p.meters }

// MeterConfigs are the meters every switch holds, as switch configuration.
func (p *Pipeline) MeterConfigs() []openflow.MeterConfig {
	out := make([]openflow.MeterConfig, len(p.meters))
	for i, m := range p.meters {
		out[i] = m.Config()
	}
	return out
}

// MeterOf is the meter of service s.
func (p *Pipeline) MeterOf(s Service) (*Meter, bool) {
	for _, m := range p.meters {
		if m.Service == s {
			return m, true
		}
	}
	return nil, false
}

// Punt ends the flow by sending the packet to vpcflow through meter m, a
// meter of the feature adding the flow: controller(userdata=service,
// meter_id=m).
func (b *FlowBuilder) Punt(m *Meter) {
	if b.set.p.meterOwner[m] != b.set.feature {
		panic(fmt.Sprintf("pipeline: %s punts through meter %q, which it did not declare", b.set.feature.Name(), m.Name))
	}
	b.add(append(b.actions, openflow.ControllerWith(openflow.Controller{Userdata: m.Service.Userdata(), MeterID: m.ID})))
}
