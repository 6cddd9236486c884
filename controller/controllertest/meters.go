package controllertest

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/vpcflow/vpcflow/openflow"
)

// meter is one meter of the in-memory switch, with counters a test sets.
type meter struct {
	cfg     openflow.MeterConfig
	packets uint64 // through the meter
	dropped uint64 // over its band
	added   time.Time
}

// meterMods counts meter-mods (add, modify, delete) the switch applied.
func (d *Datapath) countMeterMod() { d.meterMods++ }

// DumpMeters returns meter id's configuration, or every meter's with
// openflow.MeterAll, as OVS does (an unknown id gives nothing).
func (d *Datapath) DumpMeters(ctx context.Context, id uint32) ([]openflow.MeterConfig, error) {
	if err := d.wait(ctx); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []openflow.MeterConfig
	for mid, m := range d.meters {
		if id == openflow.MeterAll || id == mid {
			out = append(out, m.cfg)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// AddMeter creates a meter; it fails if it exists, as on OVS.
func (d *Datapath) AddMeter(ctx context.Context, m openflow.MeterConfig) error {
	if err := d.wait(ctx); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failWith != nil {
		return d.failWith
	}
	if m.ID == 0 || m.Rate == 0 {
		return fmt.Errorf("add meter %d: invalid (rate %d)", m.ID, m.Rate)
	}
	if _, ok := d.meters[m.ID]; ok {
		return fmt.Errorf("add meter %d: OFPMMFC_METER_EXISTS", m.ID)
	}
	d.meters[m.ID] = &meter{cfg: m, added: time.Now()}
	d.countMeterMod()
	return nil
}

// ModifyMeter changes an existing meter, keeping its counters.
func (d *Datapath) ModifyMeter(ctx context.Context, m openflow.MeterConfig) error {
	if err := d.wait(ctx); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failWith != nil {
		return d.failWith
	}
	old, ok := d.meters[m.ID]
	if !ok {
		return fmt.Errorf("modify meter %d: OFPMMFC_UNKNOWN_METER", m.ID)
	}
	old.cfg = m
	d.countMeterMod()
	return nil
}

// DeleteMeter removes a meter as an operator's `ovs-ofctl del-meter`
// would: with the flows whose meter instruction uses it (OVS 3.1 keeps
// flows whose controller action names it).
func (d *Datapath) DeleteMeter(id uint32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.meters, id)
	for k, in := range d.table {
		for _, a := range in.flow.Actions {
			if a.Type == openflow.ActMeter && uint32(a.Value) == id {
				delete(d.table, k)
				break
			}
		}
	}
}

// PutMeter sets a meter as an operator would by hand (ovs-ofctl
// add-meter or mod-meter), without counting a meter-mod.
func (d *Datapath) PutMeter(m openflow.MeterConfig) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.meters[m.ID] = &meter{cfg: m, added: time.Now()}
}

// CountMeter sets a meter's counters, as traffic would: packets that went
// through it and those its band dropped.
func (d *Datapath) CountMeter(id uint32, packets, dropped uint64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	m, ok := d.meters[id]
	if ok {
		m.packets, m.dropped = packets, dropped
	}
	return ok
}

// MeterStats returns meter id's counters, or every meter's with MeterAll.
func (d *Datapath) MeterStats(ctx context.Context, id uint32) ([]openflow.MeterStats, error) {
	if err := d.wait(ctx); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []openflow.MeterStats
	for mid, m := range d.meters {
		if id != openflow.MeterAll && id != mid {
			continue
		}
		out = append(out, openflow.MeterStats{ID: mid, Packets: m.packets, Bytes: m.packets * 100,
			Duration: time.Since(m.added), Bands: []openflow.MeterBandStats{{Packets: m.dropped, Bytes: m.dropped * 100}}})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Meters is the switch's meters, by id.
func (d *Datapath) Meters() []openflow.MeterConfig {
	out, _ := d.DumpMeters(context.Background(), openflow.MeterAll)
	return out
}

// MeterMods is how many meter-mods the switch applied so far.
func (d *Datapath) MeterMods() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.meterMods
}
