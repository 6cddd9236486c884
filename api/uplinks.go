package api

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/vpcflow/vpcflow/topology"
)

// UplinkRequest is the body of POST /v1/uplinks: a bridge's external
// interface toward the outside network, attached like a host (bridge +
// interface, chassis + interface, or dpid + ofport); CIDR is the public
// prefix on that link and Gateway the next-hop router on it. MAC (the
// uplink's own; default derived from the name) and RouterMAC (normally
// learned by ARP) are optional. PUT /v1/uplinks/{name} changes Gateway,
// MAC or RouterMAC; what it leaves out stays.
type UplinkRequest struct {
	Name      string `json:"name,omitempty"`
	Chassis   string `json:"chassis,omitempty"`
	Bridge    string `json:"bridge,omitempty"`
	OVSDB     string `json:"ovsdb,omitempty"`
	Interface string `json:"interface,omitempty"`
	DPID      string `json:"dpid,omitempty"`
	OFPort    uint32 `json:"ofport,omitempty"`
	CIDR      string `json:"cidr,omitempty"`
	Gateway   string `json:"gateway,omitempty"`
	MAC       string `json:"mac,omitempty"`
	RouterMAC string `json:"router_mac,omitempty"`
}

// uplinkBody is UplinkRequest as the server reads it (dpid may be a number).
type uplinkBody struct {
	Name      string    `json:"name"`
	Chassis   string    `json:"chassis"`
	Bridge    string    `json:"bridge"`
	OVSDB     string    `json:"ovsdb"`
	Interface string    `json:"interface"`
	DPID      dpidValue `json:"dpid"`
	OFPort    uint32    `json:"ofport"`
	CIDR      string    `json:"cidr"`
	Gateway   string    `json:"gateway"`
	MAC       string    `json:"mac"`
	RouterMAC string    `json:"router_mac"`
}

// UplinkDetail is an uplink as GET /v1/uplinks/{name} shows it: with the
// public addresses vpcflow owns on it (NAT gateways' and EIPs').
type UplinkDetail struct {
	topology.Uplink
	Addresses []UplinkAddress `json:"addresses"`
}

// UplinkAddress is one public address on an uplink and its owner.
type UplinkAddress struct {
	IP         string `json:"ip"`
	VPC        string `json:"vpc"`
	NATGateway string `json:"nat_gateway,omitempty"`
	EIP        string `json:"eip,omitempty"`
}

// MarshalJSON writes the uplink's fields and its addresses.
func (d UplinkDetail) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(d.Uplink)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	m["addresses"] = nonNil(d.Addresses)
	return json.Marshal(m)
}

func (req *uplinkBody) toUplink(name string) (*topology.Uplink, *requestError) {
	u := &topology.Uplink{Name: name, Chassis: req.Chassis, Bridge: req.Bridge, OVSDB: req.OVSDB, Interface: req.Interface,
		DPID: req.DPID.dpid, OFPort: req.OFPort}
	if req.DPID.set && req.DPID.dpid == 0 {
		return nil, badRequest("dpid", "0 is not a usable datapath id")
	}
	var err *requestError
	if u.CIDR, err = parsePrefix("cidr", req.CIDR); err != nil {
		return nil, err
	}
	if u.Gateway, err = parseAddrAs("gateway", req.Gateway, "203.0.113.1"); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		field, v string
		dst      *topology.MAC
	}{{"mac", req.MAC, &u.MAC}, {"router_mac", req.RouterMAC, &u.RouterMAC}} {
		if f.v == "" {
			continue
		}
		m, perr := topology.ParseMAC(f.v)
		if perr != nil {
			return nil, badRequest(f.field, "%s is not a valid MAC: want six bytes like 52:54:00:12:34:56", quote(f.v))
		}
		*f.dst = m
	}
	return u, nil
}

// uplinkResource: /v1/uplinks[/{name}].
func uplinkResource() resource {
	return resource{
		path: "/v1/uplinks", item: "name",
		list: func(st *topology.State, _ map[string]string) any { return nonNil(st.AllUplinks()) },
		get: func(st *topology.State, v map[string]string) (any, bool) {
			u, ok := st.Uplink(v["name"])
			if !ok {
				return nil, false
			}
			d := UplinkDetail{Uplink: u, Addresses: []UplinkAddress{}}
			for _, a := range st.PublicAddrs(u.Name) {
				d.Addresses = append(d.Addresses, UplinkAddress{IP: a.IP.String(), VPC: a.VPC, NATGateway: a.NATGateway, EIP: a.EIP})
			}
			return d, true
		},
		what: func(v map[string]string) string { return "uplink " + quote(v["name"]) + " does not exist" },
		create: func(s *server, data []byte, _ map[string]string) (topology.Object, *requestError) {
			var req uplinkBody
			if err := s.decodeObject(data, &req); err != nil {
				return nil, err
			}
			return req.toUplink(req.Name)
		},
		update: func(s *server, data []byte, v map[string]string) (topology.Object, *requestError) {
			var req uplinkBody
			if err := s.decodeObject(data, &req); err != nil {
				return nil, err
			}
			if req.Name != "" && req.Name != v["name"] {
				return nil, badRequest("name", "an uplink cannot be renamed (the body says %q but the URL says %q)", req.Name, v["name"])
			}
			return req.toUplink(v["name"])
		},
		ref:      func(v map[string]string) topology.Object { return &topology.Uplink{Name: v["name"]} },
		location: func(o topology.Object) string { return location("uplinks", o.(*topology.Uplink).Name) },
	}
}

// CreateUplink registers an uplink.
func (c *Client) CreateUplink(ctx context.Context, req UplinkRequest) (topology.Uplink, error) {
	var u topology.Uplink
	err := c.do(ctx, http.MethodPost, path("uplinks"), req, &u)
	return u, err
}

// UpdateUplink changes an uplink's router, MAC or router MAC.
func (c *Client) UpdateUplink(ctx context.Context, name string, req UplinkRequest) (topology.Uplink, error) {
	var u topology.Uplink
	err := c.do(ctx, http.MethodPut, path("uplinks", name), req, &u)
	return u, err
}

// ListUplinks lists every uplink.
func (c *Client) ListUplinks(ctx context.Context) ([]topology.Uplink, error) {
	out, _, err := c.ListUplinksPage(ctx, Page{})
	return out, err
}

// ListUplinksPage lists one page of the uplinks, by name, and the page's
// PageInfo (the next page's token and how many items match).
func (c *Client) ListUplinksPage(ctx context.Context, pg Page) ([]topology.Uplink, PageInfo, error) {
	var out []topology.Uplink
	info, err := c.listPage(ctx, path("uplinks"), pg, &out)
	return out, info, err
}

// GetUplink returns one uplink with its public addresses.
func (c *Client) GetUplink(ctx context.Context, name string) (UplinkDetail, error) {
	var d struct {
		topology.Uplink
		Addresses []UplinkAddress `json:"addresses"`
	}
	err := c.do(ctx, http.MethodGet, path("uplinks", name), nil, &d)
	return UplinkDetail{Uplink: d.Uplink, Addresses: d.Addresses}, err
}

// DeleteUplink deletes an uplink nothing uses, or with Cascade(true) its
// NAT gateways (with their entries) and EIPs too.
func (c *Client) DeleteUplink(ctx context.Context, name string, opts ...DeleteOption) error {
	return c.do(ctx, http.MethodDelete, withQuery(path("uplinks", name), opts), nil, nil)
}
