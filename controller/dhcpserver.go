package controller

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/controller/dhcp"
	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// dhcpIn answers a DHCP request the DHCP feature punted. The VM is the
// host attached at the port the request came in by — the flow that sent
// it matched that port and the host's MAC, and its cookie names the host —
// never what the request claims: an answer only ever carries the
// registered address, and goes straight back out of that port.
func (c *Controller) dhcpIn(sw packetSender, pi openflow.PacketIn, src source) {
	ck := pipeline.ParseCookie(pi.Cookie)
	c.mu.Lock()
	id, ok := c.hostAt.get(pipeline.Attachment{DPID: src.dpid, OFPort: src.port})
	c.mu.Unlock()
	if !ok || !ck.Ours || ck.Owner != pipeline.OwnerHost || ck.ID != id {
		// The host moved or went since the flow was installed.
		c.punts.count(pipeline.DropDHCPUnregistered, src)
		return
	}
	var (
		cfg   dhcp.Config
		h     topology.Host
		found bool
	)
	c.store.Read(func(st *topology.State) { h, cfg, found = c.dhcpConfig(st, id) })
	if !found {
		c.punts.count(pipeline.DropDHCPUnregistered, src)
		return
	}
	log := c.log.With(zap.String("vpc", h.VPC), zap.String("host", h.Name))
	req, err := dhcp.Decode(pi.Data)
	if err != nil {
		c.punts.count(pipeline.DropDHCPBad, src)
		log.Debug("DHCP request dropped", zap.Error(err))
		return
	}
	ans := dhcp.Respond(req, cfg)
	if ans.Type == 0 {
		c.punts.count(pipeline.DropDHCPBad, src)
		log.Debug("DHCP request not answered", zap.String("type", dhcp.TypeName(req.Type)), zap.String("why", ans.Why))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := sw.PacketOut(ctx, openflow.PortController, []openflow.Action{openflow.Output(src.port)}, ans.Frame); err != nil {
		log.Warn("sending DHCP answer", zap.String("dpid", dpidString(src.dpid)), zap.Error(err))
		return
	}
	fields := []zap.Field{zap.String("request", dhcp.TypeName(req.Type)), zap.String("answer", dhcp.TypeName(ans.Type)),
		zap.Stringer("ip", cfg.IP), zap.Uint16("mtu", cfg.MTU)}
	if ans.Why != "" {
		fields = append(fields, zap.String("why", ans.Why))
	}
	log.Info("DHCP answered", fields...)
}

// dhcpConfig is what host id gets by DHCP: its registered address in its
// vSwitch, the gateway as router and server, the MTU, and the VPC's DHCP
// options set.
func (c *Controller) dhcpConfig(st *topology.State, id uint32) (topology.Host, dhcp.Config, bool) {
	h, ok := st.HostByID(id)
	if !ok {
		return h, dhcp.Config{}, false
	}
	vsw, ok := st.VSwitch(h.VPC, h.VSwitch)
	if !ok {
		return h, dhcp.Config{}, false
	}
	cfg := dhcp.Config{
		ServerMAC: topology.GatewayMAC, ServerIP: vsw.Gateway, ClientMAC: h.MAC.HW(),
		IP: h.IP, Prefix: vsw.CIDR.Bits(), MTU: DHCPMTU(st, h, c.opts.UnderlayMTU), Hostname: h.Name,
	}
	opts, has := st.DHCPOptionsOf(h.VPC)
	cfg.Lease = opts.Lease()
	if has {
		cfg.DNS, cfg.Domain = opts.DNSServers, opts.DomainName
		for _, r := range opts.StaticRoutes {
			if vsw.CIDR.Contains(r.NextHop) {
				cfg.Routes = append(cfg.Routes, dhcp.Route{Dst: r.CIDR, NextHop: r.NextHop})
			}
		}
	}
	return h, cfg, true
}

// DHCPMTU is the MTU a VM gets by DHCP: what fits a VXLAN frame over the
// underlay (1450 over 1500) when its VPC spans chassis, else 1500.
func DHCPMTU(st *topology.State, h topology.Host, underlayMTU int) uint16 {
	const ethernet = 1500
	if h.Chassis == "" {
		return ethernet
	}
	chassis := map[string]bool{}
	for _, o := range st.Hosts(h.VPC) {
		if o.Chassis != "" {
			chassis[o.Chassis] = true
		}
	}
	if len(chassis) < 2 {
		return ethernet
	}
	return uint16(min(ethernet, pipeline.TunnelMTU(underlayMTU)))
}
