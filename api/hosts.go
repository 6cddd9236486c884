package api

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/vpcflow/vpcflow/topology"
)

// HostRequest is the body (or an array element) of
// POST /v1/vpcs/{vpc}/hosts. Give exactly one of Bridge+Interface,
// Chassis+Interface or DPID+OFPort. MAC may be left out when OVSDB (the
// chassis's, for Chassis+Interface) knows the interface's
// external_ids:attached-mac. On the wire, dpid may also be a JSON number.
//
// The same body is the PUT /v1/vpcs/{vpc}/hosts/{name} that changes a
// host's MAC or attachment: what it leaves out stays as it is (give the
// whole new attachment when changing it); the IP and vSwitch cannot
// change; the host keeps its ID and its route entries.
type HostRequest struct {
	VPC     string `json:"vpc,omitempty"`
	Name    string `json:"name"`
	VSwitch string `json:"vswitch"`
	IP      string `json:"ip"`
	MAC     string `json:"mac,omitempty"`
	Bridge  string `json:"bridge,omitempty"`
	// OVSDB names the --ovsdb server of Bridge; needed when several have
	// a bridge of that name (filled in by the server otherwise).
	OVSDB     string `json:"ovsdb,omitempty"`
	Chassis   string `json:"chassis,omitempty"`
	Interface string `json:"interface,omitempty"`
	DPID      string `json:"dpid,omitempty"`
	OFPort    uint32 `json:"ofport,omitempty"`
	// SecurityGroups are the groups the host joins (at most 5); left out
	// of a PUT they stay as they are (SetHostSecurityGroups sets them).
	SecurityGroups []string `json:"security_groups,omitempty"`
}

// hostBody is HostRequest as the server reads it (dpid may be a number).
type hostBody struct {
	VPC       string    `json:"vpc"`
	Name      string    `json:"name"`
	VSwitch   string    `json:"vswitch"`
	IP        string    `json:"ip"`
	MAC       string    `json:"mac"`
	Bridge    string    `json:"bridge"`
	OVSDB     string    `json:"ovsdb"`
	Chassis   string    `json:"chassis"`
	Interface string    `json:"interface"`
	DPID      dpidValue `json:"dpid"`
	OFPort    uint32    `json:"ofport"`
	// SecurityGroups: nil (left out) keeps a host's groups on a PUT; []
	// takes it out of every group.
	SecurityGroups *[]string `json:"security_groups"`
}

// hostResource: /v1/vpcs/{vpc}/hosts[/{name}]; POST takes an object or an
// array, PUT changes a host's MAC or attachment.
func hostResource() resource {
	return resource{
		path: "/v1/vpcs/{vpc}/hosts", item: "name", inVPC: true, batch: true,
		// ?vswitch: its hosts (the vSwitch's own index); ?q: in the name,
		// IP or MAC.
		filters: []string{"q", "vswitch"},
		page: func(st *topology.State, v map[string]string, f listFilter, p pageQuery) (any, int, string, error) {
			if f.vswitch != "" {
				if _, ok := st.VSwitch(v["vpc"], f.vswitch); !ok {
					return nil, 0, "", notFound("vswitch", "vSwitch %s does not exist in VPC %q", quote(f.vswitch), v["vpc"])
				}
			}
			pg := selectPage(p, func(yield func(*topology.Host) bool) { st.EachHost(v["vpc"], f.vswitch, yield) },
				matcher(f, func(m *textMatch, h *topology.Host) bool {
					return m.in(h.Name) || m.inBytes(h.IP.AppendTo(m.buf)) || m.inBytes(h.MAC.AppendTo(m.buf))
				}),
				func(h *topology.Host) string { return h.Name })
			return copyPage(pg, (*topology.Host).Clone), pg.total, pg.last, nil
		},
		get: func(st *topology.State, v map[string]string) (any, bool) {
			x, ok := st.Host(v["vpc"], v["name"])
			return x, ok
		},
		what: inVPCWhat("host"),
		view: func(s *server, v any) any {
			var hosts []topology.Host
			switch x := v.(type) {
			case topology.Host:
				hosts = []topology.Host{x}
			case []topology.Host:
				hosts = x
			default:
				return v
			}
			at := s.b.HostAttachments(hosts)
			out := make([]HostInfo, len(hosts))
			for i, h := range hosts {
				out[i] = HostInfo{Host: h}
				if i < len(at) {
					out[i].Attachment = at[i]
				}
			}
			if _, one := v.(topology.Host); one {
				return out[0]
			}
			return out
		},
		create: func(s *server, data []byte, v map[string]string) (topology.Object, *requestError) {
			var req hostBody
			if err := s.decodeObject(data, &req); err != nil {
				return nil, err
			}
			h, err := req.toHost(v["vpc"], s.lookupMAC)
			if err != nil {
				return nil, err
			}
			return &h, nil
		},
		update: func(s *server, data []byte, v map[string]string) (topology.Object, *requestError) {
			var req hostBody
			if err := s.decodeObject(data, &req); err != nil {
				return nil, err
			}
			if req.Name != "" && req.Name != v["name"] {
				return nil, badRequest("name", "a host cannot be renamed (the body says %q but the URL says %q)", req.Name, v["name"])
			}
			req.Name = v["name"]
			h, err := req.toHost(v["vpc"], s.lookupMAC)
			if err != nil {
				return nil, err
			}
			return &h, nil
		},
		ref: func(v map[string]string) topology.Object { return &topology.Host{VPC: v["vpc"], Name: v["name"]} },
		location: func(o topology.Object) string {
			h := o.(*topology.Host)
			return location("vpcs", h.VPC, "hosts", h.Name)
		},
	}
}

// toHost converts a host body; lookupMAC finds the MAC of the host's
// interface (by bridge or by chassis) when the body has none.
func (req *hostBody) toHost(vpc string, lookupMAC func(h topology.Host) (topology.MAC, *requestError)) (topology.Host, *requestError) {
	if err := checkVPC(vpc, req.VPC); err != nil {
		return topology.Host{}, err
	}
	a, err := parseAddr("ip", req.IP)
	if err != nil {
		return topology.Host{}, err
	}
	h := topology.Host{
		VPC: vpc, Name: req.Name, VSwitch: req.VSwitch, IP: a,
		Bridge: req.Bridge, OVSDB: req.OVSDB, Chassis: req.Chassis, Interface: req.Interface, DPID: req.DPID.dpid, OFPort: req.OFPort,
	}
	if req.SecurityGroups != nil {
		h.SecurityGroups = append([]string{}, *req.SecurityGroups...)
	}
	if req.DPID.set && req.DPID.dpid == 0 {
		return topology.Host{}, badRequest("dpid", "0 is not a usable datapath id")
	}
	switch {
	case req.MAC != "":
		m, perr := topology.ParseMAC(req.MAC)
		if perr != nil {
			return topology.Host{}, badRequest("mac", "%s is not a valid MAC: want six bytes like 52:58:00:98:c0:81", quote(req.MAC))
		}
		h.MAC = m
	case (req.Bridge != "") != (req.Chassis != "") && req.Interface != "":
		// Attached by name: ask OVSDB. Anything else without a MAC is left
		// to validation, which names what is wrong.
		m, rerr := lookupMAC(h)
		if rerr != nil {
			return topology.Host{}, rerr
		}
		h.MAC = m
	}
	return h, nil
}

// lookupMAC finds the MAC of a host's interface in OVSDB: the
// --ovsdb servers' for bridge+interface, the chassis's for
// chassis+interface.
func (s *server) lookupMAC(h topology.Host) (topology.MAC, *requestError) {
	if h.Chassis != "" {
		if hw, ok := s.b.ChassisInterfaceMAC(h.Chassis, h.Interface); ok && len(hw) > 0 {
			return topology.MAC(hw), nil
		}
		exists := false
		s.b.Read(func(st *topology.State) { _, exists = st.Chassis(h.Chassis) })
		if !exists {
			return nil, &requestError{status: http.StatusNotFound, field: "chassis", msg: fmt.Sprintf("chassis %s does not exist", quote(h.Chassis))}
		}
		return nil, badRequest("mac", "required: the OVSDB of chassis %s has no external_ids:attached-mac for interface %s on its bridge", quote(h.Chassis), quote(h.Interface))
	}
	if h.OVSDB != "" {
		if at, ok := s.b.(interfaceMACAt); ok {
			if hw, ok := at.InterfaceMACAt(h.OVSDB, h.Bridge, h.Interface); ok && len(hw) > 0 {
				return topology.MAC(hw), nil
			}
		}
		return nil, badRequest("mac", "required: OVSDB %s has no external_ids:attached-mac for %s/%s", h.OVSDB, h.Bridge, h.Interface)
	}
	if bc, ok := s.b.(bridgeCandidates); ok {
		if cands := bc.BridgeCandidates(h.Bridge); len(cands) > 1 {
			return nil, badRequest("ovsdb", "bridge %s is on %d OVSDB servers (%s): name the one the host is on with \"ovsdb\" (or attach the host by chassis)",
				quote(h.Bridge), len(cands), strings.Join(cands, ", "))
		}
	}
	if hw, ok := s.b.InterfaceMAC(h.Bridge, h.Interface); ok && len(hw) > 0 {
		return topology.MAC(hw), nil
	}
	return nil, badRequest("mac", "required: OVSDB has no external_ids:attached-mac for %s/%s", h.Bridge, h.Interface)
}

// interfaceMACAt is a backend that looks an interface's MAC up on one
// OVSDB server (the controller).
type interfaceMACAt interface {
	InterfaceMACAt(endpoint, bridge, iface string) (net.HardwareAddr, bool)
}

// bridgeCandidates is a backend that knows which OVSDB servers have a
// bridge of a given name (the controller).
type bridgeCandidates interface {
	BridgeCandidates(bridge string) []string
}

// CreateHost registers one host.
func (c *Client) CreateHost(ctx context.Context, vpc string, req HostRequest) (topology.Host, error) {
	var h topology.Host
	err := c.do(ctx, http.MethodPost, path("vpcs", vpc, "hosts"), req, &h)
	return h, err
}

// CreateHosts registers several hosts, all or none.
func (c *Client) CreateHosts(ctx context.Context, vpc string, reqs []HostRequest) ([]topology.Host, error) {
	var out []topology.Host
	err := c.do(ctx, http.MethodPost, path("vpcs", vpc, "hosts"), nonNil(reqs), &out)
	return out, err
}

// ListHosts lists a VPC's hosts.
func (c *Client) ListHosts(ctx context.Context, vpc string) ([]topology.Host, error) {
	var out []topology.Host
	err := c.do(ctx, http.MethodGet, path("vpcs", vpc, "hosts"), nil, &out)
	return out, err
}

// ListHostsPage lists one page of a VPC's hosts, by name, with where each
// is attached now, and the page's PageInfo (the next page's token and how
// many items match).
func (c *Client) ListHostsPage(ctx context.Context, vpc string, pg Page) ([]HostInfo, PageInfo, error) {
	var out []HostInfo
	info, err := c.listPage(ctx, path("vpcs", vpc, "hosts"), pg, &out)
	return out, info, err
}

// GetHost returns one host.
func (c *Client) GetHost(ctx context.Context, vpc, name string) (topology.Host, error) {
	h, err := c.GetHostInfo(ctx, vpc, name)
	return h.Host, err
}

// GetHostInfo returns one host and where it is attached now.
func (c *Client) GetHostInfo(ctx context.Context, vpc, name string) (HostInfo, error) {
	var h HostInfo
	err := c.do(ctx, http.MethodGet, path("vpcs", vpc, "hosts", name), nil, &h)
	return h, err
}

// DeleteHost deletes a host that is no subnet's next hop, or with
// Cascade(true) the subnets it is the next hop of too.
func (c *Client) DeleteHost(ctx context.Context, vpc, name string, opts ...DeleteOption) error {
	return c.do(ctx, http.MethodDelete, withQuery(path("vpcs", vpc, "hosts", name), opts), nil, nil)
}

// UpdateHost changes a host's MAC or attachment (PUT); what req leaves out
// stays as it is.
func (c *Client) UpdateHost(ctx context.Context, vpc, name string, req HostRequest) (topology.Host, error) {
	var h topology.Host
	err := c.do(ctx, http.MethodPut, path("vpcs", vpc, "hosts", name), req, &h)
	return h, err
}
