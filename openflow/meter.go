package openflow

import (
	"context"
	"errors"
	"fmt"
	"time"

	ofp13 "github.com/contiv/libOpenflow/openflow13"
)

// Meters (OpenFlow 1.3 OFPT_METER_MOD, OFPMP_METER, OFPMP_METER_CONFIG).
// OVS 3.1's userspace datapath implements them; a flow uses one with the
// Meter instruction, a controller action with Controller.MeterID.

// MeterAll stands for every meter in MeterStats and DumpMeters (OFPM_ALL).
const MeterAll uint32 = 0xffffffff

// MeterConfig is a meter with one drop band: packets above Rate (packets
// per second, or kilobits per second with KBPS) beyond a burst of Burst
// are dropped. Burst 0 means no burst allowance (OVS then uses the rate).
type MeterConfig struct {
	ID    uint32 // 1..0xffff0000
	Rate  uint32 // packets per second (kb/s with KBPS); must not be 0
	Burst uint32 // burst size in packets (kilobits with KBPS); 0: none
	KBPS  bool
}

// String describes the meter in ovs-ofctl add-meter syntax, as
// `ovs-ofctl -O OpenFlow13 dump-meters` prints it.
func (m MeterConfig) String() string {
	unit := "pktps"
	if m.KBPS {
		unit = "kbps"
	}
	s := fmt.Sprintf("meter=%d %s ", m.ID, unit)
	if m.Burst != 0 {
		s += "burst "
	}
	s += fmt.Sprintf("stats bands=\ntype=drop rate=%d", m.Rate)
	if m.Burst != 0 {
		s += fmt.Sprintf(" burst_size=%d", m.Burst)
	}
	return s
}

// MeterStats is a meter's counters as the switch reports them.
type MeterStats struct {
	ID        uint32
	FlowCount uint32 // flows that use the meter
	Packets   uint64 // packets that went through the meter
	Bytes     uint64
	Duration  time.Duration
	// Bands holds, for each band, the packets and bytes that exceeded it
	// (for a drop band: those dropped).
	Bands []MeterBandStats
}

// MeterBandStats counts what exceeded one band.
type MeterBandStats struct {
	Packets uint64
	Bytes   uint64
}

// Meter message constants.
const (
	typeMeterMod       = 29
	multipartMeter     = 9  // OFPMP_METER
	multipartMeterConf = 10 // OFPMP_METER_CONFIG
	meterFlagKBPS      = 1
	meterFlagPKTPS     = 2
	meterFlagBurst     = 4
	meterFlagStats     = 8
	meterBandDrop      = 1
	meterBandLen       = 16
	meterStatsLen      = 40 // ofp_meter_stats without band stats
	meterBandStatsLen  = 16
	meterConfigLen     = 8 // ofp_meter_config without bands
)

func (m MeterConfig) validate() error {
	if m.ID == 0 || m.ID > maxMeterID {
		return fmt.Errorf("meter id %d outside 1..%d", m.ID, uint32(maxMeterID))
	}
	if m.Rate == 0 {
		return fmt.Errorf("meter %d: rate 0", m.ID)
	}
	return nil
}

func (m MeterConfig) flags() uint16 {
	f := uint16(meterFlagStats)
	if m.KBPS {
		f |= meterFlagKBPS
	} else {
		f |= meterFlagPKTPS
	}
	if m.Burst != 0 {
		f |= meterFlagBurst
	}
	return f
}

// encodeMeterMod encodes an OFPT_METER_MOD with libOpenflow's MeterMod and
// MeterBandDrop, whose bytes are the OpenFlow 1.3 layout (checked against
// ovs-ofctl in TestMeterModPrintedByOVS).
func encodeMeterMod(xid uint32, command uint16, m MeterConfig) ([]byte, error) {
	mm := ofp13.NewMeterMod()
	mm.Header.Xid = xid
	mm.Command = command
	mm.MeterId = m.ID
	if command != ofp13.OFPMC_DELETE {
		mm.Flags = m.flags()
		band := &ofp13.MeterBandDrop{}
		band.Type = ofp13.OFPMBT13_DROP
		band.Length = meterBandLen
		band.Rate = m.Rate
		band.BurstSize = m.Burst
		mm.AddMeterBand(band)
	}
	b, err := mm.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("encode meter mod: %w", err)
	}
	return b, nil
}

// AddMeter creates meter m; it fails if the meter exists.
func (s *Switch) AddMeter(ctx context.Context, m MeterConfig) error {
	return s.meterMod(ctx, ofp13.OFPMC_ADD, m)
}

// ModifyMeter changes an existing meter's rate and burst.
func (s *Switch) ModifyMeter(ctx context.Context, m MeterConfig) error {
	return s.meterMod(ctx, ofp13.OFPMC_MODIFY, m)
}

// DeleteMeter removes meter id (MeterAll: every meter), and the flows
// that use it, as OpenFlow says. Deleting a meter that does not exist is
// not an error.
func (s *Switch) DeleteMeter(ctx context.Context, id uint32) error {
	if id == 0 || id > maxMeterID && id != MeterAll {
		return fmt.Errorf("%s: delete meter: id %d", s, id)
	}
	return s.meterMod(ctx, ofp13.OFPMC_DELETE, MeterConfig{ID: id})
}

// meterMod sends one meter mod followed by a barrier and returns the
// switch's error for it, if any (errors arrive before the barrier reply).
func (s *Switch) meterMod(ctx context.Context, command uint16, m MeterConfig) error {
	what := map[uint16]string{ofp13.OFPMC_ADD: "add", ofp13.OFPMC_MODIFY: "modify", ofp13.OFPMC_DELETE: "delete"}[command]
	if command != ofp13.OFPMC_DELETE {
		if err := m.validate(); err != nil {
			return fmt.Errorf("%s: %s meter: %w", s, what, err)
		}
	}
	c := s.c
	base := c.nextXIDs(2)
	modXID, barrierXID := base, base+1
	msg, err := encodeMeterMod(modXID, command, m)
	if err != nil {
		return fmt.Errorf("%s: %s meter %d: %w", s, what, m.ID, err)
	}
	wMod := c.register(modXID, false)
	defer c.unregister(modXID)
	wBarrier := c.register(barrierXID, false)
	err = c.send(ctx, func(mw *msgWriter) {
		mw.put(msg)
		mw.buf = appendHeader(mw.buf[:0], typeBarrierRequest, barrierXID)
		setLength(mw.buf, 0)
		mw.put(mw.buf)
	})
	if err != nil {
		c.unregister(barrierXID)
		return fmt.Errorf("%s: %s meter %d: %w", s, what, m.ID, err)
	}
	r, err := c.wait(ctx, barrierXID, wBarrier)
	if err != nil {
		return fmt.Errorf("%s: %s meter %d: waiting for barrier: %w", s, what, m.ID, err)
	}
	if r.err != nil {
		return fmt.Errorf("%s: %s meter %d: barrier: %w", s, what, m.ID, r.err)
	}
	select {
	case r := <-wMod.ch:
		if r.err != nil {
			return fmt.Errorf("%s: %s meter %d: %w", s, what, m.ID, r.err)
		}
	default:
	}
	return nil
}

// appendMeterRequest appends an OFPMP_METER or OFPMP_METER_CONFIG request
// for meter id.
func appendMeterRequest(b []byte, xid uint32, kind uint16, id uint32) []byte {
	start := len(b)
	b = appendHeader(b, typeMultipartReq, xid)
	b = appendU16(b, kind)
	b = appendU16(b, 0) // flags
	b = appendU32(b, 0) // pad
	b = appendU32(b, id)
	b = appendU32(b, 0) // pad
	setLength(b, start)
	return b
}

// MeterStats returns the counters of meter id, or of every meter with
// MeterAll. A meter that does not exist gives an error.
func (s *Switch) MeterStats(ctx context.Context, id uint32) ([]MeterStats, error) {
	parts, err := s.multipart(ctx, "meter stats", func(b []byte, xid uint32) []byte {
		return appendMeterRequest(b, xid, multipartMeter, id)
	})
	if err != nil {
		return nil, err
	}
	var out []MeterStats
	for i, p := range parts {
		st, err := DecodeMeterStats(p)
		if err != nil {
			return nil, fmt.Errorf("%s: meter stats: reply part %d: %w", s, i, err)
		}
		out = append(out, st...)
	}
	return out, nil
}

// DumpMeters returns the configuration of meter id, or of every meter with
// MeterAll. Meters vpcflow cannot express (several bands, DSCP remark)
// come back with an error naming them.
func (s *Switch) DumpMeters(ctx context.Context, id uint32) ([]MeterConfig, error) {
	parts, err := s.multipart(ctx, "meter config", func(b []byte, xid uint32) []byte {
		return appendMeterRequest(b, xid, multipartMeterConf, id)
	})
	if err != nil {
		return nil, err
	}
	var out []MeterConfig
	for i, p := range parts {
		mc, err := DecodeMeterConfigs(p)
		if err != nil {
			return nil, fmt.Errorf("%s: meter config: reply part %d: %w", s, i, err)
		}
		out = append(out, mc...)
	}
	return out, nil
}

// multipart sends a multipart request and returns the bodies of its reply
// parts.
func (s *Switch) multipart(ctx context.Context, what string, enc func(b []byte, xid uint32) []byte) ([][]byte, error) {
	r, err := s.c.request(ctx, true, enc)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", s, what, err)
	}
	if r.err != nil {
		return nil, fmt.Errorf("%s: %s: %w", s, what, r.err)
	}
	return r.parts, nil
}

// DecodeMeterStats parses the body of an OFPMP_METER reply part.
func DecodeMeterStats(body []byte) ([]MeterStats, error) {
	var out []MeterStats
	for off := 0; off < len(body); {
		rest := body[off:]
		if len(rest) < meterStatsLen {
			return out, fmt.Errorf("meter stats at offset %d: %w (%d bytes left)", off, errTruncated, len(rest))
		}
		length := int(be.Uint16(rest[4:]))
		if length < meterStatsLen || length > len(rest) || (length-meterStatsLen)%meterBandStatsLen != 0 {
			return out, fmt.Errorf("meter stats at offset %d: bad length %d (%d bytes left)", off, length, len(rest))
		}
		e := rest[:length]
		st := MeterStats{
			ID:        be.Uint32(e),
			FlowCount: be.Uint32(e[12:]),
			Packets:   be.Uint64(e[16:]),
			Bytes:     be.Uint64(e[24:]),
			Duration:  time.Duration(be.Uint32(e[32:]))*time.Second + time.Duration(be.Uint32(e[36:])),
		}
		for b := e[meterStatsLen:]; len(b) > 0; b = b[meterBandStatsLen:] {
			st.Bands = append(st.Bands, MeterBandStats{Packets: be.Uint64(b), Bytes: be.Uint64(b[8:])})
		}
		out = append(out, st)
		off += length
	}
	return out, nil
}

var errMeterForm = errors.New("meter vpcflow cannot express")

// DecodeMeterConfigs parses the body of an OFPMP_METER_CONFIG reply part.
// A meter that is not one drop band (the only form MeterConfig has) fails.
func DecodeMeterConfigs(body []byte) ([]MeterConfig, error) {
	var out []MeterConfig
	for off := 0; off < len(body); {
		rest := body[off:]
		if len(rest) < meterConfigLen {
			return out, fmt.Errorf("meter config at offset %d: %w (%d bytes left)", off, errTruncated, len(rest))
		}
		length := int(be.Uint16(rest))
		if length < meterConfigLen || length > len(rest) {
			return out, fmt.Errorf("meter config at offset %d: bad length %d (%d bytes left)", off, length, len(rest))
		}
		e := rest[:length]
		flags, id := be.Uint16(e[2:]), be.Uint32(e[4:])
		bands := e[meterConfigLen:]
		if len(bands) != meterBandLen || be.Uint16(bands) != meterBandDrop || be.Uint16(bands[2:]) != meterBandLen ||
			flags&^(meterFlagKBPS|meterFlagPKTPS|meterFlagBurst|meterFlagStats) != 0 ||
			flags&(meterFlagKBPS|meterFlagPKTPS) == 0 || flags&(meterFlagKBPS|meterFlagPKTPS) == meterFlagKBPS|meterFlagPKTPS {
			return out, fmt.Errorf("meter %d (flags 0x%x, %d bytes of bands): %w", id, flags, len(bands), errMeterForm)
		}
		m := MeterConfig{ID: id, Rate: be.Uint32(bands[4:]), KBPS: flags&meterFlagKBPS != 0}
		if flags&meterFlagBurst != 0 {
			m.Burst = be.Uint32(bands[8:])
		}
		out = append(out, m)
		off += length
	}
	return out, nil
}
