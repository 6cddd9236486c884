package main

import (
	"context"
	"io"

	"github.com/vpcflow/vpcflow/api"
	"github.com/vpcflow/vpcflow/topology"
)

// The switch-cert commands: which TLS certificate each dpid is bound to
// (GET/POST/DELETE /v1/switch-certificates).

func switchCertTable(w io.Writer, v any) {
	row(w, "DPID", "SHA256", "SOURCE", "REMOTE")
	for _, x := range asList[topology.SwitchCertificate](v) {
		row(w, x.DPID, x.SHA256, x.Source, x.Remote)
	}
}

func (c *cli) switchCert(args []string) int {
	return c.group("switch-cert", "which TLS certificate each datapath id is bound to (switches connecting over TLS)", []subcommand{
		{"list", "list the bindings", c.switchCertList},
		{"show", "show one dpid's binding", c.switchCertShow},
		{"pin", "bind a dpid to a certificate before its switch first connects", c.switchCertPin},
		{"unbind", "delete a dpid's binding (a switch given a new certificate)", c.switchCertUnbind},
	}, args)
}

func (c *cli) switchCertList(args []string) int {
	k := c.command("switch-cert list", "[--limit N [--page-token TOKEN]]",
		"List which TLS certificate (SHA-256) each datapath id is bound to, by dpid.\n"+
			"Over TLS the first certificate that connects with a dpid is bound to it\n"+
			"(source first-use) unless one was pinned; a switch presenting another\n"+
			"certificate for that dpid is refused, also after a restart.",
		"vpcflow switch-cert list\nvpcflow switch-cert list -o json").withAPI()
	pg := k.pageFlags()
	if _, code, ok := k.parse(args); !ok {
		return code
	}
	return k.callPage(pg, func(ctx context.Context, cl *api.Client, pg api.Page) (any, api.PageInfo, error) {
		return cl.ListSwitchCertificatesPage(ctx, pg)
	}, switchCertTable)
}

func (c *cli) switchCertShow(args []string) int {
	k := c.command("switch-cert show", "DPID", "Show the TLS certificate a datapath id is bound to.",
		"vpcflow switch-cert show 0000a2b3c4d5e6f7").withAPI()
	pos, code, ok := k.parse(args, "DPID")
	if !ok {
		return code
	}
	return k.call(func(ctx context.Context, cl *api.Client) (any, error) {
		return cl.SwitchCertificate(ctx, pos[0])
	}, switchCertTable)
}

func (c *cli) switchCertPin(args []string) int {
	k := c.command("switch-cert pin", "DPID --sha256 FINGERPRINT",
		"Bind a datapath id to the certificate its switch must present over TLS,\n"+
			"before the switch first connects (else the first certificate that connects\n"+
			"with the dpid is bound). FINGERPRINT is the certificate's SHA-256: 64 hex\n"+
			"digits, colons allowed, as openssl prints it. Refused if the dpid is bound\n"+
			"already: unbind it first.",
		"vpcflow switch-cert pin 0000a2b3c4d5e6f7 --sha256 \"$(openssl x509 -in ovs-cert.pem -noout -fingerprint -sha256)\"").withAPI()
	sum := k.fs.String("sha256", "", "the certificate's SHA-256 (openssl x509 -in CERT -noout -fingerprint -sha256) (required)")
	pos, code, ok := k.parse(args, "DPID")
	if !ok {
		return code
	}
	if code, ok := k.required("sha256"); !ok {
		return code
	}
	return k.call(func(ctx context.Context, cl *api.Client) (any, error) {
		return cl.PinSwitchCertificate(ctx, api.SwitchCertificateRequest{DPID: pos[0], SHA256: *sum})
	}, switchCertTable)
}

func (c *cli) switchCertUnbind(args []string) int {
	k := c.command("switch-cert unbind", "DPID",
		"Delete a datapath id's certificate binding, for a switch given a new\n"+
			"certificate: the next certificate that connects with the dpid is bound to\n"+
			"it. A switch connected now stays connected.",
		"vpcflow switch-cert unbind 0000a2b3c4d5e6f7").withAPI()
	pos, code, ok := k.parse(args, "DPID")
	if !ok {
		return code
	}
	return k.message(func(ctx context.Context, cl *api.Client) error {
		return cl.UnbindSwitchCertificate(ctx, pos[0])
	}, "unbound dpid %s from its certificate", pos[0])
}
