package api

import (
	"context"
	"net/http"

	"github.com/vpcflow/vpcflow/topology"
)

// SwitchCertificateRequest is the body of POST /v1/switch-certificates:
// pin the TLS certificate a switch must present for its dpid, before it
// first connects. DPID is 16 hex digits (ovs-vsctl get Bridge BR
// datapath_id); SHA256 is the certificate's fingerprint, 64 hex digits
// with or without colons (openssl x509 -in cert.pem -noout -fingerprint
// -sha256).
type SwitchCertificateRequest struct {
	DPID   string `json:"dpid"`
	SHA256 string `json:"sha256"`
}

// switchCertificateResource: /v1/switch-certificates[/{dpid}]. vpcflow
// creates a binding itself when a dpid first connects over TLS; a POST
// pins one before that; a DELETE unbinds a dpid so that a switch given a
// new certificate is let in (and bound to it) on its next connection.
func switchCertificateResource() resource {
	return resource{
		path: "/v1/switch-certificates", item: "dpid",
		list: func(st *topology.State, _ map[string]string) any { return nonNil(st.SwitchCertificates()) },
		checkItem: func(v map[string]string) *requestError {
			if _, err := topology.ParseDPID(v["dpid"]); err != nil {
				return badRequest("dpid", "%v", err)
			}
			return nil
		},
		get: func(st *topology.State, v map[string]string) (any, bool) {
			d, _ := topology.ParseDPID(v["dpid"]) // checkItem parsed it
			x, ok := st.SwitchCertificate(d)
			return x, ok
		},
		what: func(v map[string]string) string { return "no TLS certificate is bound to dpid " + quote(v["dpid"]) },
		create: func(s *server, data []byte, _ map[string]string) (topology.Object, *requestError) {
			var req SwitchCertificateRequest
			if err := s.decodeObject(data, &req); err != nil {
				return nil, err
			}
			if req.DPID == "" {
				return nil, badRequest("dpid", "required: the switch's datapath id (16 hex digits, as ovs-vsctl get Bridge BR datapath_id prints it)")
			}
			c := topology.SwitchCertificateRef(req.DPID)
			c.SHA256, c.Source = req.SHA256, topology.CertificatePinned
			return c, nil
		},
		ref: func(v map[string]string) topology.Object { return topology.SwitchCertificateRef(v["dpid"]) },
		location: func(o topology.Object) string {
			return location("switch-certificates", o.(*topology.SwitchCertificate).Key())
		},
	}
}

// PinSwitchCertificate binds a dpid to a certificate before its switch
// connects.
func (c *Client) PinSwitchCertificate(ctx context.Context, req SwitchCertificateRequest) (topology.SwitchCertificate, error) {
	var out topology.SwitchCertificate
	err := c.do(ctx, http.MethodPost, path("switch-certificates"), req, &out)
	return out, err
}

// ListSwitchCertificates lists every dpid's certificate binding.
func (c *Client) ListSwitchCertificates(ctx context.Context) ([]topology.SwitchCertificate, error) {
	out, _, err := c.ListSwitchCertificatesPage(ctx, Page{})
	return out, err
}

// ListSwitchCertificatesPage lists one page of the bindings, by dpid, and
// the page's PageInfo.
func (c *Client) ListSwitchCertificatesPage(ctx context.Context, pg Page) ([]topology.SwitchCertificate, PageInfo, error) {
	var out []topology.SwitchCertificate
	info, err := c.listPage(ctx, path("switch-certificates"), pg, &out)
	return out, info, err
}

// SwitchCertificate returns the binding of one dpid.
func (c *Client) SwitchCertificate(ctx context.Context, dpid string) (topology.SwitchCertificate, error) {
	var out topology.SwitchCertificate
	err := c.do(ctx, http.MethodGet, path("switch-certificates", dpid), nil, &out)
	return out, err
}

// UnbindSwitchCertificate deletes a dpid's binding: the next certificate
// that connects with the dpid is bound to it.
func (c *Client) UnbindSwitchCertificate(ctx context.Context, dpid string) error {
	return c.do(ctx, http.MethodDelete, path("switch-certificates", dpid), nil, nil)
}
