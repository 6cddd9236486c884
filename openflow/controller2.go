package openflow

import (
	"encoding/hex"
	"strconv"
	"strings"
)

// The controller action with options is Nicira's NXAST_CONTROLLER2, a list
// of properties. libOpenflow (v0.0.0-20210609050114) has no encoder for it:
// its DecodeNxAction knows the subtype (37) but maps it to no type, and
// there is no NXActionController2, so vpcflow writes it itself, property
// for property as OVS 3.1's encode_CONTROLLER does.

// ControllerReason is the packet-in reason a controller action reports.
type ControllerReason uint8

// Reasons. The zero value is OVS's default.
const (
	ControllerReasonAction     ControllerReason = iota // reason=action (the default, not printed)
	ControllerReasonNoMatch                            // reason=no_match
	ControllerReasonInvalidTTL                         // reason=invalid_ttl
)

// wire is the ofp_packet_in_reason value.
func (r ControllerReason) wire() uint8 {
	switch r {
	case ControllerReasonNoMatch:
		return PacketInNoMatch
	case ControllerReasonInvalidTTL:
		return PacketInInvalidTTL
	default:
		return PacketInAction
	}
}

// Controller describes a controller action with options:
// controller(reason=…,userdata=…,pause,meter_id=…). The packet-in it
// causes carries Userdata (PacketIn.Userdata); the switch sends the whole
// packet (max_len 65535).
type Controller struct {
	Reason   ControllerReason
	Userdata []byte // at most MaxUserdata bytes
	// Pause stops the pipeline: the packet-in carries a continuation that
	// Switch.Resume sends back to carry on where the pipeline stopped.
	Pause bool
	// MeterID rate-limits the packet-ins through that meter (0: none).
	MeterID uint32
}

// MaxUserdata bounds Controller.Userdata.
const MaxUserdata = 4096

// NXAST_CONTROLLER2 and its properties.
const (
	nxastController2    = 37
	nxController2Len    = 16 // header, subtype, 6 zero bytes
	nxac2MaxLen         = 0
	nxac2ControllerID   = 1
	nxac2Reason         = 2
	nxac2Userdata       = 3
	nxac2Pause          = 4
	nxac2MeterID        = 5
	controllerNoMeterID = 0 // NX_CTLR_NO_METER
)

// ControllerWith builds the controller action c describes, e.g.
// ControllerWith(Controller{Userdata: []byte{1, 2, 3}, MeterID: 4}) is
// controller(userdata=01.02.03,meter_id=4). Without options it is
// ToController() (CONTROLLER:65535), as OVS prints both the same.
func ControllerWith(c Controller) Action {
	if c.Reason == ControllerReasonAction && len(c.Userdata) == 0 && !c.Pause && c.MeterID == controllerNoMeterID {
		return ToController()
	}
	if c.Reason > ControllerReasonInvalidTTL {
		return invalidAction("controller: unknown reason %d", c.Reason)
	}
	if len(c.Userdata) > MaxUserdata {
		return invalidAction("controller: %d bytes of userdata, more than %d", len(c.Userdata), MaxUserdata)
	}
	return Action{Type: ActController2, ext: string(buildController2(c))}
}

// Controller returns the options of a controller action (zero options for
// ToController); ok is false for other actions.
func (a Action) Controller() (c Controller, ok bool) {
	switch a.Type {
	case ActController:
		return Controller{}, true
	case ActController2:
		c, err := parseController2([]byte(a.ext))
		return c, err == nil
	}
	return Controller{}, false
}

// appendProp appends an ofpprop (type, length, value) padded to 8 bytes.
func appendProp(b []byte, typ uint16, value []byte) []byte {
	start := len(b)
	b = appendU16(b, typ)
	b = appendU16(b, uint16(4+len(value)))
	b = append(b, value...)
	return pad8(b, start)
}

// buildController2 encodes the properties in OVS's order, leaving out the
// defaults as OVS does.
func buildController2(c Controller) []byte {
	b := appendU16(nil, actTypeExperimenter)
	b = appendU16(b, 0) // length, set below
	b = appendU32(b, nxExperimenter)
	b = appendU16(b, nxastController2)
	b = append(b, 0, 0, 0, 0, 0, 0)
	if c.Reason != ControllerReasonAction {
		b = appendProp(b, nxac2Reason, []byte{c.Reason.wire()})
	}
	if len(c.Userdata) > 0 {
		b = appendProp(b, nxac2Userdata, c.Userdata)
	}
	if c.Pause {
		b = appendProp(b, nxac2Pause, nil)
	}
	if c.MeterID != controllerNoMeterID {
		b = appendProp(b, nxac2MeterID, appendU32(nil, c.MeterID))
	}
	be.PutUint16(b[2:], uint16(len(b)))
	return b
}

// parseController2 parses a whole NXAST_CONTROLLER2 action. Properties
// vpcflow does not set (a max_len other than 65535, a controller id) or
// does not know make it fail.
func parseController2(a []byte) (Controller, error) {
	if len(a) < nxController2Len || int(be.Uint16(a[2:])) != len(a) || be.Uint16(a[8:]) != nxastController2 || !allZero(a[10:16]) {
		return Controller{}, errUnsupported
	}
	var c Controller
	seen := map[uint16]bool{}
	for p := a[nxController2Len:]; len(p) > 0; {
		if len(p) < 4 {
			return Controller{}, errUnsupported
		}
		typ, l := be.Uint16(p), int(be.Uint16(p[2:]))
		padded := (l + 7) &^ 7
		if l < 4 || padded > len(p) || seen[typ] || !allZero(p[l:padded]) {
			return Controller{}, errUnsupported
		}
		seen[typ] = true
		v := p[4:l]
		switch typ {
		case nxac2MaxLen:
			if len(v) != 2 || be.Uint16(v) != maxLenNoBuffer {
				return Controller{}, errUnsupported
			}
		case nxac2ControllerID:
			if len(v) != 2 || be.Uint16(v) != 0 {
				return Controller{}, errUnsupported
			}
		case nxac2Reason:
			if len(v) != 1 {
				return Controller{}, errUnsupported
			}
			switch v[0] {
			case PacketInAction:
				c.Reason = ControllerReasonAction
			case PacketInNoMatch:
				c.Reason = ControllerReasonNoMatch
			case PacketInInvalidTTL:
				c.Reason = ControllerReasonInvalidTTL
			default:
				return Controller{}, errUnsupported
			}
		case nxac2Userdata:
			if len(v) == 0 || len(v) > MaxUserdata {
				return Controller{}, errUnsupported
			}
			c.Userdata = append([]byte(nil), v...)
		case nxac2Pause:
			if len(v) != 0 {
				return Controller{}, errUnsupported
			}
			c.Pause = true
		case nxac2MeterID:
			if len(v) != 4 {
				return Controller{}, errUnsupported
			}
			c.MeterID = be.Uint32(v)
		default:
			return Controller{}, errUnsupported
		}
		p = p[padded:]
	}
	return c, nil
}

// decodeController2 turns a switch's NXAST_CONTROLLER2 bytes into the
// action vpcflow would build for them.
func decodeController2(a []byte) (Action, bool) {
	c, err := parseController2(a)
	if err != nil {
		return Action{}, false
	}
	// Without options this is ToController(): OVS prints both as
	// CONTROLLER:65535.
	act := ControllerWith(c)
	return act, act.Type != actInvalid
}

// formatController2 prints canonical controller2 bytes as ovs-ofctl does.
func formatController2(ext string) string {
	c, err := parseController2([]byte(ext))
	if err != nil {
		return "controller(?)"
	}
	var parts []string
	switch c.Reason {
	case ControllerReasonNoMatch:
		parts = append(parts, "reason=no_match")
	case ControllerReasonInvalidTTL:
		parts = append(parts, "reason=invalid_ttl")
	}
	if len(c.Userdata) > 0 {
		h := hex.EncodeToString(c.Userdata)
		var b strings.Builder
		for i := 0; i < len(h); i += 2 {
			if i > 0 {
				b.WriteByte('.')
			}
			b.WriteString(h[i : i+2])
		}
		parts = append(parts, "userdata="+b.String())
	}
	if c.Pause {
		parts = append(parts, "pause")
	}
	if c.MeterID != controllerNoMeterID {
		parts = append(parts, "meter_id="+strconv.FormatUint(uint64(c.MeterID), 10))
	}
	return "controller(" + strings.Join(parts, ",") + ")"
}
