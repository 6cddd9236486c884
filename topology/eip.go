package topology

import (
	"encoding/json"
	"fmt"
	"net/netip"
)

// EIP is an elastic IP, as on Alibaba Cloud: a public address of an
// uplink, held by a VPC and bound 1:1 to one of its hosts (or to none,
// kept for later). A bound host sends from its EIP and is reached at it,
// every protocol and port; the EIP takes precedence over any SNAT entry
// for that host, both ways. A host with an EIP may not also be the
// target of a DNAT entry (as on Aliyun). Its two conntrack zones (CTZone,
// CTZone+1) are the store's, kept for its life (natzones.go).
type EIP struct {
	ID     uint32     `json:"id"`
	VPC    string     `json:"vpc"`
	Name   string     `json:"name"`
	IP     netip.Addr `json:"ip"`
	Uplink string     `json:"uplink"`
	Host   string     `json:"host,omitempty"`
	CTZone uint16     `json:"ct_zone"`
}

// Key is "VPC/NAME".
func (e *EIP) Key() string      { return vpcKey(e.VPC, e.Name) }
func (e *EIP) ObjectID() uint32 { return e.ID }
func (e *EIP) kind() kind       { return eipKind{} }
func (e *EIP) setID(id uint32)  { e.ID = id }
func (e *EIP) clone() Object    { c := *e; return &c }

// EIP is the op's object when it is an EIP, else nil.
func (op Op) EIP() *EIP { e, _ := op.Obj.(*EIP); return e }

// AliyunEIPPrefix is the prefix of EIPs' Alibaba Cloud IDs (allocation IDs).
const AliyunEIPPrefix = "eip"

// AliyunID is the EIP's Aliyun allocation ID.
func (e EIP) AliyunID() string { return AliyunID(AliyunEIPPrefix, e.ID) }

type eipJSON EIP

// MarshalJSON writes the EIP with aliyun_id (once it has an ID).
func (e EIP) MarshalJSON() ([]byte, error) {
	out := struct {
		eipJSON
		AliyunID string `json:"aliyun_id,omitempty"`
	}{eipJSON: eipJSON(e)}
	if e.ID != 0 {
		out.AliyunID = e.AliyunID()
	}
	return json.Marshal(out)
}

// eipKind declares EIPs: in a VPC, on an uplink, optionally bound to a host
// of the VPC (one EIP per host). Addresses are unique among every EIP's
// and NAT gateway's. An update binds, rebinds or unbinds it (host); the
// address and uplink stay.
type eipKind struct{}

func (eipKind) name() string                    { return "eip" }
func (eipKind) title() string                   { return "EIP" }
func (eipKind) plural() string                  { return "EIPs" }
func (eipKind) vpcOf(o Object) string           { return o.(*EIP).VPC }
func (eipKind) decode(b []byte) (Object, error) { return decodeJSON[EIP](b) }

func (eipKind) keyOf(o Object) (string, *Error) {
	e := o.(*EIP)
	return keyInVPC(e.VPC, e.Name)
}

func (eipKind) refs(o Object) []ref {
	e := o.(*EIP)
	out := []ref{vpcRef(e.VPC), {field: "uplink", to: uplinkKind{}, key: e.Uplink, what: func() string { return fmt.Sprintf("uplink %q", e.Uplink) }}}
	if e.Host != "" {
		out = append(out, ref{field: "host", to: hostKind{}, key: vpcKey(e.VPC, e.Host), what: func() string { return fmt.Sprintf("host %q in VPC %q", e.Host, e.VPC) }})
	}
	return out
}

func (eipKind) uniques(o Object) []unique {
	e := o.(*EIP)
	out := []unique{{index: "ip", field: "ip", value: e.IP.String(), taken: func(h Object) string {
		return fmt.Sprintf("%s is already EIP %q (VPC %q)", e.IP, h.(*EIP).Name, h.(*EIP).VPC)
	}}}
	if e.Host != "" {
		out = append(out, unique{index: "host", field: "host", value: vpcKey(e.VPC, e.Host), taken: func(h Object) string {
			return fmt.Sprintf("host %q already has EIP %q (%s)", e.Host, h.(*EIP).Name, h.(*EIP).IP)
		}})
	}
	return append(out, zoneUnique(e.CTZone, "EIP", e.Name, e.VPC)...)
}

func (eipKind) check(o, old Object) *Error {
	e := o.(*EIP)
	if err := ValidateName("vpc", e.VPC); err != nil {
		return err
	}
	if err := ValidateName("name", e.Name); err != nil {
		return err
	}
	if old != nil {
		was := old.(*EIP)
		if !e.IP.IsValid() {
			e.IP = was.IP
		}
		if e.IP != was.IP {
			return Invalid("ip", "the address of EIP %q cannot be changed (%s → %s); delete and re-create it", e.Name, was.IP, e.IP)
		}
		if e.Uplink == "" {
			e.Uplink = was.Uplink
		}
		if e.Uplink != was.Uplink {
			return Invalid("uplink", "the uplink of EIP %q cannot be changed; delete and re-create it", e.Name)
		}
		e.CTZone = was.CTZone
	}
	if err := validateIPv4("ip", e.IP); err != nil {
		return err
	}
	if err := ValidateName("uplink", e.Uplink); err != nil {
		return err
	}
	if e.Host != "" {
		if err := ValidateName("host", e.Host); err != nil {
			return err
		}
	}
	return checkZone(e.CTZone)
}

// validate: the address is on the uplink and no NAT gateway's; the host is
// no DNAT entry's target; the zones are assigned.
func (eipKind) validate(st *State, o, _ Object) *Error {
	e := o.(*EIP)
	u, _ := st.Uplink(e.Uplink)
	if err := checkPublicAddr(st, "ip", u, e.IP); err != nil {
		return err
	}
	for _, g := range st.AllNATGateways() {
		if g.HasIP(e.IP) {
			return Conflict("ip", "%s is already an address of NAT gateway %q (VPC %q)", e.IP, g.Name, g.VPC)
		}
	}
	if e.Host != "" {
		h, _ := st.Host(e.VPC, e.Host)
		for _, d := range st.DNATEntries(e.VPC) {
			if d.InternalIP == h.IP {
				return Conflict("host", "host %q (%s) is the target of DNAT entry %q; a host with an EIP cannot be one (delete the entry first)", h.Name, h.IP, d.Name)
			}
		}
	}
	z, err := assignNATZone(st, e.CTZone, "ip")
	if err != nil {
		return err
	}
	e.CTZone = z
	return nil
}

// ---- accessors ----

// EIPs lists a VPC's EIPs, sorted by name.
func (st *State) EIPs(vpc string) []EIP { return childrenAs[EIP](st, vpcKind{}, vpc, eipKind{}) }

// EIP returns one EIP.
func (st *State) EIP(vpc, name string) (EIP, bool) {
	return getAs[EIP](st, eipKind{}, vpcKey(vpc, name))
}

// EIPByID returns the EIP with an ID.
func (st *State) EIPByID(id uint32) (EIP, bool) { return getAsByID[EIP](st, eipKind{}, id) }

// EIPOfHost returns the EIP bound to a host, if any.
func (st *State) EIPOfHost(vpc, host string) (EIP, bool) {
	o, ok := st.holder(eipKind{}, "host", vpcKey(vpc, host))
	if !ok {
		return EIP{}, false
	}
	return *(o.clone().(*EIP)), true
}

// AllEIPs lists the EIPs of every VPC, sorted by VPC then name.
func (st *State) AllEIPs() []EIP {
	return allAs(st, eipKind{}, func(a, b *EIP) bool {
		if a.VPC != b.VPC {
			return a.VPC < b.VPC
		}
		return a.Name < b.Name
	})
}

// EIPsOnUplink lists the EIPs on an uplink, by key.
func (st *State) EIPsOnUplink(uplink string) []EIP {
	return childrenAs[EIP](st, uplinkKind{}, uplink, eipKind{})
}

func (e *EIP) keyParts() (vpc, name string) { return e.VPC, e.Name }
