package topology

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// DHCPOptions is a VPC's DHCP options set, Aliyun's resource of that name:
// what vpcflow's DHCP server gives every VM of the VPC besides its own
// address, mask, gateway and MTU. A VPC has at most one.
type DHCPOptions struct {
	ID   uint32 `json:"id"`
	VPC  string `json:"vpc"`
	Name string `json:"name"`
	// DomainName is option 15 (and the search domain).
	DomainName string `json:"domain_name,omitempty"`
	// DNSServers are option 6: at most 4, as on Aliyun.
	DNSServers []netip.Addr `json:"dns_servers,omitempty"`
	// LeaseTime is the lease in seconds (option 51); 0 means
	// DefaultLeaseTime.
	LeaseTime uint32 `json:"lease_time,omitempty"`
	// StaticRoutes are given as classless static routes (option 121,
	// RFC 3442) together with the default route via the vSwitch gateway;
	// a route whose next hop is not inside the VM's vSwitch is left out
	// of that VM's answer.
	StaticRoutes []StaticRoute `json:"static_routes,omitempty"`
}

// StaticRoute is one classless static route of a DHCP options set.
type StaticRoute struct {
	CIDR    netip.Prefix `json:"cidr"`
	NextHop netip.Addr   `json:"next_hop"`
}

// DHCP options set limits.
const (
	MaxDNSServers     = 4
	MaxStaticRoutes   = 16
	MaxDomainNameLen  = 253
	DefaultLeaseTime  = 24 * 60 * 60        // seconds, Aliyun's default (24h)
	MinLeaseTime      = 60                  // seconds; Aliyun's minimum is 24h, shorter leases are for tests
	MaxLeaseTime      = 3650 * 24 * 60 * 60 // seconds, Aliyun's maximum (3650d)
	maxLeaseTimeHuman = "3650 days"
)

// Lease is the options set's lease time, the default when unset.
func (d *DHCPOptions) Lease() time.Duration {
	if d == nil || d.LeaseTime == 0 {
		return DefaultLeaseTime * time.Second
	}
	return time.Duration(d.LeaseTime) * time.Second
}

// Key is "VPC/NAME".
func (d *DHCPOptions) Key() string      { return vpcKey(d.VPC, d.Name) }
func (d *DHCPOptions) ObjectID() uint32 { return d.ID }
func (d *DHCPOptions) kind() kind       { return dhcpOptionsKind{} }
func (d *DHCPOptions) setID(id uint32)  { d.ID = id }
func (d *DHCPOptions) clone() Object {
	c := *d
	c.DNSServers = append([]netip.Addr(nil), d.DNSServers...)
	c.StaticRoutes = append([]StaticRoute(nil), d.StaticRoutes...)
	return &c
}

// DHCPOptions is the op's object when it is a DHCP options set, else nil.
func (op Op) DHCPOptions() *DHCPOptions { d, _ := op.Obj.(*DHCPOptions); return d }

// dhcpOptionsKind declares DHCP options sets: in a VPC, one per VPC,
// updatable in place (a VM gets the new values when it renews).
type dhcpOptionsKind struct{}

func (dhcpOptionsKind) name() string                    { return "dhcp_options" }
func (dhcpOptionsKind) title() string                   { return "DHCP options set" }
func (dhcpOptionsKind) plural() string                  { return "DHCP options sets" }
func (dhcpOptionsKind) vpcOf(o Object) string           { return o.(*DHCPOptions).VPC }
func (dhcpOptionsKind) decode(b []byte) (Object, error) { return decodeJSON[DHCPOptions](b) }

func (dhcpOptionsKind) keyOf(o Object) (string, *Error) {
	d := o.(*DHCPOptions)
	return keyInVPC(d.VPC, d.Name)
}

func (dhcpOptionsKind) refs(o Object) []ref { return []ref{vpcRef(o.(*DHCPOptions).VPC)} }

func (dhcpOptionsKind) uniques(o Object) []unique {
	d := o.(*DHCPOptions)
	return []unique{{index: "vpc", field: "vpc", value: d.VPC,
		taken: func(h Object) string {
			return fmt.Sprintf("VPC %q already has a DHCP options set: %q (update or delete it)", d.VPC, h.(*DHCPOptions).Name)
		}}}
}

func (dhcpOptionsKind) check(o, _ Object) *Error {
	d := o.(*DHCPOptions)
	if err := ValidateName("vpc", d.VPC); err != nil {
		return err
	}
	if err := ValidateName("name", d.Name); err != nil {
		return err
	}
	if d.DomainName != "" {
		if err := ValidateDomainName("domain_name", d.DomainName); err != nil {
			return err
		}
	}
	if len(d.DNSServers) > MaxDNSServers {
		return Invalid("dns_servers", "%d servers: at most %d", len(d.DNSServers), MaxDNSServers)
	}
	seen := map[netip.Addr]bool{}
	for i, a := range d.DNSServers {
		field := fmt.Sprintf("dns_servers[%d]", i)
		if err := validateIPv4(field, a); err != nil {
			return err
		}
		if !a.IsGlobalUnicast() && !a.IsPrivate() {
			return Invalid(field, "%s is not a unicast address", a)
		}
		if seen[a] {
			return Invalid(field, "%s is listed twice", a)
		}
		seen[a] = true
	}
	if d.LeaseTime != 0 && (d.LeaseTime < MinLeaseTime || d.LeaseTime > MaxLeaseTime) {
		return Invalid("lease_time", "%d seconds: between %d seconds and %s", d.LeaseTime, MinLeaseTime, maxLeaseTimeHuman)
	}
	if len(d.StaticRoutes) > MaxStaticRoutes {
		return Invalid("static_routes", "%d routes: at most %d", len(d.StaticRoutes), MaxStaticRoutes)
	}
	dst := map[netip.Prefix]bool{}
	for i, r := range d.StaticRoutes {
		field := fmt.Sprintf("static_routes[%d]", i)
		if err := ValidatePrefix(field+".cidr", r.CIDR, 1, 32); err != nil {
			return err
		}
		if err := validateIPv4(field+".next_hop", r.NextHop); err != nil {
			return err
		}
		if !r.NextHop.IsGlobalUnicast() && !r.NextHop.IsPrivate() {
			return Invalid(field+".next_hop", "%s is not a unicast address", r.NextHop)
		}
		if dst[r.CIDR] {
			return Invalid(field+".cidr", "%s is listed twice", r.CIDR)
		}
		dst[r.CIDR] = true
	}
	return nil
}

func (dhcpOptionsKind) validate(*State, Object, Object) *Error { return nil }

// ValidateDomainName checks a DNS domain name: dot-separated labels of
// letters, digits and hyphens (not at either end), each at most 63
// characters, at most 253 in all; a trailing dot is allowed.
func ValidateDomainName(field, name string) *Error {
	n := strings.TrimSuffix(name, ".")
	if n == "" || len(n) > MaxDomainNameLen {
		return Invalid(field, "%s is not a domain name: 1 to %d characters", quote(name), MaxDomainNameLen)
	}
	for _, label := range strings.Split(n, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return Invalid(field, "%s is not a domain name: labels of 1 to 63 letters, digits and '-', not starting or ending with '-'", quote(name))
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return Invalid(field, "%s is not a domain name: %q is not allowed", quote(name), c)
			}
		}
	}
	return nil
}

// ---- accessors ----

// DHCPOptionsSets lists a VPC's DHCP options sets (at most one), sorted
// by name.
func (st *State) DHCPOptionsSets(vpc string) []DHCPOptions {
	return childrenAs[DHCPOptions](st, vpcKind{}, vpc, dhcpOptionsKind{})
}

// DHCPOptionsSet returns one DHCP options set.
func (st *State) DHCPOptionsSet(vpc, name string) (DHCPOptions, bool) {
	return getAs[DHCPOptions](st, dhcpOptionsKind{}, vpcKey(vpc, name))
}

// DHCPOptionsOf returns the DHCP options set of a VPC, if it has one.
func (st *State) DHCPOptionsOf(vpc string) (DHCPOptions, bool) {
	sets := st.DHCPOptionsSets(vpc)
	if len(sets) == 0 {
		return DHCPOptions{}, false
	}
	return sets[0], true
}

func (d *DHCPOptions) keyParts() (vpc, name string) { return d.VPC, d.Name }
