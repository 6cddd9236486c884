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

// hostRef names the host attached at a port.
type hostRef struct {
	id        uint32
	vpc, name string
}

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

// PacketIn handles packets the pipeline sends to the controller. The only
// ones it sends are frames too big for the VXLAN underlay (TunnelEgress):
// they are answered, as a router would, with ICMP fragmentation-needed from
// the sender's vSwitch gateway, so the sender's path-MTU discovery shrinks
// its packets, and counted as too_big drops.
func (c *Controller) PacketIn(sw *openflow.Switch, pi openflow.PacketIn) {
	ck := pipeline.ParseCookie(pi.Cookie)
	c.observer().PacketIn(c.packetInReason(ck))
	if !ck.Ours || ck.Reason != pipeline.DropTooBig {
		c.log.Debug("unexpected packet-in ignored", zap.String("dpid", dpidString(sw.DPID())),
			zap.Uint64("cookie", pi.Cookie), zap.Uint8("table", pi.TableID))
		return
	}
	dpid := sw.DPID()
	c.mu.Lock()
	ref, ok := c.hostAt[pipeline.Attachment{DPID: dpid, OFPort: pi.InPort}]
	c.mu.Unlock()
	if !c.tooBig.count(dpid, ref.id, time.Now()) || !ok {
		return
	}
	var (
		h   topology.Host
		vsw topology.VSwitch
		hok bool
	)
	c.store.Read(func(st *topology.State) {
		h, hok = st.Host(ref.vpc, ref.name)
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
