package api

import (
	"context"
	"net/http"

	"github.com/vpcflow/vpcflow/controller"
	"github.com/vpcflow/vpcflow/topology"
)

// ChassisRequest is the body of POST /v1/chassis: a physical host's Open
// vSwitch that vpcflow configures and tunnels to. OVSDB is unix:/PATH or
// tcp:HOST:PORT; TunnelIP is the chassis's unicast IPv4 VXLAN endpoint;
// Controller (optional) is the OpenFlow target its bridge is pointed at,
// tcp:HOST:PORT, ssl:HOST:PORT or unix:PATH (default: vpcflow serve's
// --advertise).
type ChassisRequest struct {
	Name       string `json:"name"`
	OVSDB      string `json:"ovsdb"`
	Bridge     string `json:"bridge"`
	TunnelIP   string `json:"tunnel_ip"`
	Controller string `json:"controller,omitempty"`
}

// chassisResource: /v1/chassis[/{name}]. The backend configures a
// chassis's bridge before storing it; one it cannot reach is refused (400
// on "ovsdb"). A delete with ?cascade=true takes the hosts attached to it
// and their route entries too.
func chassisResource() resource {
	return resource{
		path: "/v1/chassis", item: "name",
		list: func(st *topology.State, _ map[string]string) any { return nonNil(st.AllChassis()) },
		get: func(st *topology.State, v map[string]string) (any, bool) {
			x, ok := st.Chassis(v["name"])
			return x, ok
		},
		view: func(s *server, v any) any {
			ch, one := v.(topology.Chassis)
			if !one {
				return v // the list: the chassis as stored
			}
			d := ChassisDetail{Chassis: ch}
			if cs, ok := s.b.(chassisStatuser); ok {
				if st, ok := cs.ChassisStatus(ch.Name); ok {
					d.Status = &st
				}
			}
			return d
		},
		what: func(v map[string]string) string { return "chassis " + quote(v["name"]) + " does not exist" },
		create: func(s *server, data []byte, _ map[string]string) (topology.Object, *requestError) {
			var req ChassisRequest
			if err := s.decodeObject(data, &req); err != nil {
				return nil, err
			}
			a, err := parseAddrAs("tunnel_ip", req.TunnelIP, "192.168.100.11")
			if err != nil {
				return nil, err
			}
			return &topology.Chassis{Name: req.Name, OVSDB: req.OVSDB, Bridge: req.Bridge, TunnelIP: a, Controller: req.Controller}, nil
		},
		ref:      func(v map[string]string) topology.Object { return &topology.Chassis{Name: v["name"]} },
		location: func(o topology.Object) string { return location("chassis", o.(*topology.Chassis).Name) },
	}
}

// ChassisDetail is the answer of GET /v1/chassis/{name}: the chassis and,
// where the backend knows it, what is actually there (OVSDB connection,
// bridge, switch, controllers, tunnel port, drift and repairs, underlay
// MTU).
type ChassisDetail struct {
	topology.Chassis
	Status *controller.ChassisStatus `json:"status,omitempty"`
}

// chassisStatuser is a backend that knows what is actually there for a
// chassis (the controller does).
type chassisStatuser interface {
	ChassisStatus(name string) (controller.ChassisStatus, bool)
}

// CreateChassis registers a chassis. The server configures its bridge
// (controller, VXLAN port) before storing it.
func (c *Client) CreateChassis(ctx context.Context, req ChassisRequest) (topology.Chassis, error) {
	var ch topology.Chassis
	err := c.do(ctx, http.MethodPost, path("chassis"), req, &ch)
	return ch, err
}

// ListChassis lists every chassis.
func (c *Client) ListChassis(ctx context.Context) ([]topology.Chassis, error) {
	out, _, err := c.ListChassisPage(ctx, Page{})
	return out, err
}

// ListChassisPage lists one page of the chassis, by name, and the page's
// PageInfo (the next page's token and how many items match).
func (c *Client) ListChassisPage(ctx context.Context, pg Page) ([]topology.Chassis, PageInfo, error) {
	var out []topology.Chassis
	info, err := c.listPage(ctx, path("chassis"), pg, &out)
	return out, info, err
}

// Chassis returns one chassis.
func (c *Client) Chassis(ctx context.Context, name string) (topology.Chassis, error) {
	d, err := c.ChassisDetail(ctx, name)
	return d.Chassis, err
}

// ChassisDetail returns one chassis with what is actually there.
func (c *Client) ChassisDetail(ctx context.Context, name string) (ChassisDetail, error) {
	var d ChassisDetail
	err := c.do(ctx, http.MethodGet, path("chassis", name), nil, &d)
	return d, err
}

// DeleteChassis deletes a chassis no host is attached to, or with
// Cascade(true) the hosts attached to it and their subnets too.
func (c *Client) DeleteChassis(ctx context.Context, name string, opts ...DeleteOption) error {
	return c.do(ctx, http.MethodDelete, withQuery(path("chassis", name), opts), nil, nil)
}
