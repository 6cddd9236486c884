package topology

import (
	"net/netip"
	"path/filepath"
	"sort"
	"strings"

	"github.com/vpcflow/vpcflow/ovsdb/endpoint"
)

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
		t, perr := endpoint.ParseController(c.Controller)
		if perr != nil {
			return Invalid("controller", "%v", perr)
		}
		c.Controller = t
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

func (st *State) prepareCreateChassis(c Chassis) (Op, *Error) {
	if err := validateChassis(&c); err != nil {
		return Op{}, err
	}
	if _, ok := st.chassis[c.Name]; ok {
		return Op{}, Conflict("name", "chassis %q already exists", c.Name)
	}
	if other, ok := st.chassisByTunnelIP[c.TunnelIP]; ok {
		return Op{}, Conflict("tunnel_ip", "%s is already the tunnel IP of chassis %q", c.TunnelIP, other)
	}
	if other, ok := st.chassisByBridge[chassisBridgeKey{c.OVSDB, c.Bridge}]; ok {
		return Op{}, Conflict("bridge", "bridge %s on %s is already chassis %q", quote(c.Bridge), c.OVSDB, other)
	}
	id, err := st.nextID(kindChassis)
	if err != nil {
		return Op{}, err
	}
	c.ID = id
	return Op{Kind: OpCreate, Chassis: &c}, nil
}

func (st *State) prepareDeleteChassis(name string, cascade bool) (Op, *Error) {
	c, ok := st.chassis[name]
	if !ok {
		return Op{}, NotFound("name", "chassis %s does not exist", quote(name))
	}
	if hs := st.hostsByChassis[name]; !cascade && len(hs) > 0 {
		refs := sortedRefs(hs)
		names := make([]string, len(refs))
		for i, r := range refs {
			names[i] = objKey(r.vpc, r.name)
		}
		return Op{}, Conflict("name", "chassis %q still has %d host(s) attached: %s; delete them first %s", name, len(hs), describeNames(names, 3), cascadeHint)
	}
	old := c
	return Op{Kind: OpDelete, Chassis: &c, Old: &old}, nil
}

// chassisDependents returns what a cascading chassis delete takes with it:
// the subnets routed to its hosts, then the hosts, each sorted by VPC and
// name.
func (st *State) chassisDependents(name string) []Op {
	refs := sortedRefs(st.hostsByChassis[name])
	var subnets []Op
	hosts := make([]Op, 0, len(refs))
	for _, r := range refs {
		v := st.vpcs[r.vpc]
		for _, sn := range sortedKeys(v.subnetsByHost[r.name]) {
			s := v.subnets[sn]
			old := s
			subnets = append(subnets, Op{Kind: OpDelete, Subnet: &s, Old: &old})
		}
		h := cloneHost(v.hosts[r.name])
		old := cloneHost(h)
		hosts = append(hosts, Op{Kind: OpDelete, Host: &h, Old: &old})
	}
	sort.SliceStable(subnets, func(i, j int) bool {
		a, b := subnets[i].Subnet, subnets[j].Subnet
		if a.VPC != b.VPC {
			return a.VPC < b.VPC
		}
		return a.Name < b.Name
	})
	return append(subnets, hosts...)
}
