package topology

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"

	"github.com/vpcflow/vpcflow/ovsdb/endpoint"
)

// Chassis is a physical host running its own Open vSwitch. vpcflow
// connects to its OVSDB, configures Bridge for itself (as `bridge setup`
// does) with one flow-based VXLAN port, and carries VM traffic between
// chassis in VXLAN with the VPC's id as VNI and TunnelIP as the endpoint.
type Chassis struct {
	ID       uint32     `json:"id"`
	Name     string     `json:"name"`
	OVSDB    string     `json:"ovsdb"`
	Bridge   string     `json:"bridge"`
	TunnelIP netip.Addr `json:"tunnel_ip"`
	// Controller is the OpenFlow target the chassis's bridge is pointed at
	// (e.g. tcp:192.168.100.254:6653), or several separated by commas (every
	// replica's, the bridge connecting to all); empty means the one(s)
	// vpcflow serve was started with (--advertise).
	Controller string `json:"controller,omitempty"`
}

// TunnelPortName is the flow-based VXLAN port vpcflow creates on every
// chassis bridge (options:remote_ip=flow, options:key=flow).
const TunnelPortName = "vpcflow-vxlan"

// Key is the chassis's name.
func (c *Chassis) Key() string      { return c.Name }
func (c *Chassis) ObjectID() uint32 { return c.ID }
func (c *Chassis) kind() kind       { return chassisKind{} }
func (c *Chassis) setID(id uint32)  { c.ID = id }
func (c *Chassis) clone() Object    { x := *c; return &x }

// Chassis is the op's object when it is a chassis, else nil.
func (op Op) Chassis() *Chassis { c, _ := op.Obj.(*Chassis); return c }

// chassisKind declares chassis: global; tunnel IPs and OVSDB endpoints are
// unique (one Open vSwitch hosts one chassis). Hosts attached by chassis+interface refer to their chassis.
type chassisKind struct{}

func (chassisKind) name() string                    { return "chassis" }
func (chassisKind) title() string                   { return "chassis" }
func (chassisKind) plural() string                  { return "chassis" }
func (chassisKind) vpcOf(Object) string             { return "" }
func (chassisKind) decode(b []byte) (Object, error) { return decodeJSON[Chassis](b) }
func (chassisKind) refs(Object) []ref               { return nil }

func (chassisKind) validate(*State, Object, Object) *Error { return nil }

func (chassisKind) keyOf(o Object) (string, *Error) {
	c := o.(*Chassis)
	return c.Name, ValidateName("name", c.Name)
}

func (chassisKind) check(o, old Object) *Error {
	if old != nil {
		return Invalid("", "a chassis cannot be updated; delete and re-create it")
	}
	return validateChassis(o.(*Chassis))
}

func (chassisKind) uniques(o Object) []unique {
	c := o.(*Chassis)
	return []unique{
		{index: "tunnel_ip", field: "tunnel_ip", value: c.TunnelIP.String(), taken: func(h Object) string {
			return fmt.Sprintf("%s is already the tunnel IP of chassis %q", c.TunnelIP, h.(*Chassis).Name)
		}},
		// One Open vSwitch hosts one chassis: its flow-based VXLAN port
		// (TunnelPortName) is unique in the OVSDB, and so is the UDP port
		// its tunnels listen on.
		{index: "ovsdb", field: "ovsdb", value: c.OVSDB, taken: func(h Object) string {
			other := h.(*Chassis)
			return fmt.Sprintf("%s already hosts chassis %q (bridge %s): one Open vSwitch hosts one chassis, as its VXLAN port %s is unique there",
				c.OVSDB, other.Name, quote(other.Bridge), TunnelPortName)
		}},
	}
}

// Chassis returns the named chassis.
func (st *State) Chassis(name string) (Chassis, bool) { return getAs[Chassis](st, chassisKind{}, name) }

// ChassisByID returns the chassis with an ID.
func (st *State) ChassisByID(id uint32) (Chassis, bool) {
	return getAsByID[Chassis](st, chassisKind{}, id)
}

// AllChassis lists every chassis, sorted by name.
func (st *State) AllChassis() []Chassis {
	return allAs(st, chassisKind{}, func(a, b *Chassis) bool { return a.Name < b.Name })
}

// validateChassis checks a chassis on its own and writes its OVSDB endpoint
// and controller target in canonical form (so that "tcp:192.0.2.1" and
// "tcp:192.0.2.1:6640" are recognised as the same server).
func validateChassis(c *Chassis) *Error {
	if err := ValidateName("name", c.Name); err != nil {
		return err
	}
	ep, err := ValidateOVSDB("ovsdb", c.OVSDB)
	if err != nil {
		return err
	}
	c.OVSDB = ep
	if err := validateIfaceName("bridge", c.Bridge); err != nil {
		return err
	}
	if err := ValidateTunnelIP("tunnel_ip", c.TunnelIP); err != nil {
		return err
	}
	if c.Controller != "" {
		ts, perr := endpoint.ParseControllers(c.Controller)
		if perr != nil {
			return Invalid("controller", "%v", perr)
		}
		c.Controller = strings.Join(ts, ",")
	}
	return nil
}

// ValidateOVSDB checks an OVSDB endpoint that vpcflow is to remember and
// connect to later: unix:ABSOLUTE_PATH, tcp:HOST[:PORT] or ssl:HOST[:PORT]
// (port 6640 by default). It returns the endpoint in canonical form
// ("tcp:HOST:PORT", a clean socket path). A relative socket path is
// refused, since it would depend on the directory vpcflow happens to run
// in. Whether vpcflow has the TLS keys an ssl: endpoint needs is not the
// topology's business: connecting tells (vpcflow serve --ovsdb-tls-*).
func ValidateOVSDB(field, s string) (string, *Error) {
	if s == "" {
		return "", Invalid(field, "required: unix:/PATH/db.sock, tcp:HOST:PORT or ssl:HOST:PORT")
	}
	if rest, ok := strings.CutPrefix(s, endpoint.NetworkUnix+":"); ok && rest != "" && !filepath.IsAbs(rest) {
		return "", Invalid(field, "%s: the socket path must be absolute", quote(s))
	}
	ep, err := endpoint.Parse(s)
	if err != nil {
		return "", Invalid(field, "%v", err)
	}
	return ep.String(), nil
}

// ValidateTunnelIP checks a VXLAN tunnel endpoint address: a unicast IPv4
// address another machine can send to (not 0.0.0.0, loopback, multicast,
// broadcast or the reserved 240.0.0.0/4).
func ValidateTunnelIP(field string, a netip.Addr) *Error {
	if !a.IsValid() {
		return Invalid(field, "required")
	}
	if !a.Is4() {
		return Invalid(field, "%s must be IPv4 (VXLAN over IPv6 is not supported)", a)
	}
	switch {
	case a.IsUnspecified():
		return Invalid(field, "%s is the unspecified address; give the chassis's underlay address", a)
	case a.IsLoopback():
		return Invalid(field, "%s is a loopback address; other chassis cannot reach it", a)
	case a.IsMulticast():
		return Invalid(field, "%s is a multicast address; a tunnel endpoint must be unicast", a)
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return Invalid(field, "%s is the broadcast address; a tunnel endpoint must be unicast", a)
	case netip.MustParsePrefix("240.0.0.0/4").Contains(a):
		return Invalid(field, "%s is in the reserved range 240.0.0.0/4", a)
	}
	return nil
}
