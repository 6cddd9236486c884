package controller

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// icmpLimit is how many ICMP errors one switch may be sent per second,
// as routers rate-limit them (RFC 1812 4.3.2.8).
const icmpLimit = 100

// tooBigState counts frames too big for the tunnel, per host and per
// switch, and rate-limits the ICMP answers per switch.
type tooBigState struct {
	mu       sync.Mutex
	byHost   map[uint32]uint64
	bySwitch map[uint64]uint64
	window   map[uint64]time.Time
	sent     map[uint64]int
}

func newTooBigState() *tooBigState {
	return &tooBigState{byHost: map[uint32]uint64{}, bySwitch: map[uint64]uint64{},
		window: map[uint64]time.Time{}, sent: map[uint64]int{}}
}

// count records one too-big frame and reports whether an ICMP answer is
// still within the switch's rate.
func (s *tooBigState) count(dpid uint64, host uint32, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bySwitch[dpid]++
	if host != 0 {
		s.byHost[host]++
	}
	if now.Sub(s.window[dpid]) >= time.Second {
		s.window[dpid], s.sent[dpid] = now, 0
	}
	if s.sent[dpid] >= icmpLimit {
		return false
	}
	s.sent[dpid]++
	return true
}

func (s *tooBigState) snapshot() (byHost map[uint32]uint64, bySwitch map[uint64]uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	byHost, bySwitch = map[uint32]uint64{}, map[uint64]uint64{}
	for k, v := range s.byHost {
		byHost[k] = v
	}
	for k, v := range s.bySwitch {
		bySwitch[k] = v
	}
	return byHost, bySwitch
}

// packetSender is what a punt handler needs of the switch a packet came
// from; *openflow.Switch implements it.
type packetSender interface {
	DPID() uint64
	PacketOut(ctx context.Context, inPort uint32, actions []openflow.Action, data []byte) error
}

// PacketIn handles packets the pipeline punts to vpcflow
// (pipeline/punt.go): the controller action's userdata names the service.
// A packet over its source's budget (punts.go) is counted and dropped
// before anything else is done for it.
func (c *Controller) PacketIn(sw *openflow.Switch, pi openflow.PacketIn) { c.punt(sw, pi) }

func (c *Controller) punt(sw packetSender, pi openflow.PacketIn) {
	if c.replicated() && !c.IsLeader() {
		return // the leader answers (a follower's connection is EQUAL until it is SLAVE)
	}
	c.observer().PacketIn(c.packetInReason(pipeline.ParseCookie(pi.Cookie)))
	svc, ok := pipeline.ServiceOf(pi.Userdata)
	if !ok {
		// A too-big flow of a vpcflow from before services (plain
		// controller action) until the switch is reconciled.
		if ck := pipeline.ParseCookie(pi.Cookie); ck.Ours && ck.Reason == pipeline.DropTooBig {
			svc, ok = pipeline.ServiceTooBig, true
		}
	}
	if !ok {
		c.log.Debug("unexpected packet-in ignored", zap.String("dpid", dpidString(sw.DPID())),
			zap.Uint64("cookie", pi.Cookie), zap.Uint8("table", pi.TableID), zap.Binary("userdata", pi.Userdata))
		return
	}
	src := source{dpid: sw.DPID(), port: pi.InPort}
	if !c.punts.allow(src, time.Now()) {
		return
	}
	switch svc {
	case pipeline.ServiceTooBig:
		c.tooBigIn(sw, pi)
	case pipeline.ServiceDHCP:
		c.dhcpIn(sw, pi, src)
	case pipeline.ServiceTrace:
		c.liveIn(sw, pi)
	case pipeline.ServiceUplinkARP:
		c.uplinkARPIn(sw, pi)
	}
}

// tooBigIn answers a frame too big for the VXLAN underlay (TunnelTooBig),
// as a router would, with ICMP fragmentation-needed from the sender's
// vSwitch gateway, so the sender's path-MTU discovery shrinks its
// packets, and counts it as a too_big drop.
func (c *Controller) tooBigIn(sw packetSender, pi openflow.PacketIn) {
	dpid := sw.DPID()
	c.mu.Lock()
	id, ok := c.hostAt.get(pipeline.Attachment{DPID: dpid, OFPort: pi.InPort})
	c.mu.Unlock()
	if !c.tooBig.count(dpid, id, time.Now()) || !ok {
		return
	}
	var (
		h   topology.Host
		vsw topology.VSwitch
		hok bool
	)
	c.store.Read(func(st *topology.State) {
		h, hok = st.HostByID(id)
		if hok {
			vsw, hok = st.VSwitch(h.VPC, h.VSwitch)
		}
	})
	if !hok {
		return
	}
	reply, err := FragNeededReply(pi.Data, vsw.Gateway, topology.GatewayMAC, h.MAC.HW(), uint16(pipeline.TunnelMTU(c.opts.UnderlayMTU)))
	if err != nil {
		if !errors.Is(err, errNoICMP) {
			c.log.Debug("too-big frame not answered", zap.Error(err))
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := sw.PacketOut(ctx, openflow.PortController, []openflow.Action{openflow.Output(pi.InPort)}, reply); err != nil {
		c.log.Warn("sending ICMP fragmentation-needed", zap.String("dpid", dpidString(dpid)), zap.Error(err))
	}
}
