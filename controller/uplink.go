package controller

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// Uplinks (pipeline/nat.go): vpcflow answers ARP for the public addresses
// it owns in the datapath, and learns the uplink router's MAC itself: it
// asks for it by ARP from each uplink's switch (every second while it is
// unknown, every UplinkARPRefresh once it is), and the router's ARP
// packets (its replies, and its gratuitous ARP) come back punted
// (ServiceUplinkARP). A MAC that differs from the stored one is stored —
// as an update of the uplink, so the flows that send to the router follow
// and a restarted vpcflow forwards at once with the MAC it knew.

// UplinkARPRefresh is how often the router of a resolved uplink is asked
// again (a changed MAC is learned from its answer or from its gratuitous
// ARP, whichever comes first).
const UplinkARPRefresh = 30 * time.Second

// uplinkState is what the ARP loops and the learning share.
type uplinkState struct {
	mu sync.Mutex
	// asked is when each uplink's router was last asked.
	asked map[uint32]time.Time
	// storing is the MAC being stored per uplink (one update at a time).
	storing map[uint32]string
}

func newUplinkState() *uplinkState {
	return &uplinkState{asked: map[uint32]time.Time{}, storing: map[uint32]string{}}
}

// placedUplink is an uplink resolved to its port.
type placedUplink struct {
	u  topology.Uplink
	at pipeline.Attachment
	// from is the address the ARP request is sent from: the lowest public
	// address on the uplink (invalid when it has none: nothing to ask for).
	from netip.Addr
}

// uplinksOn lists the uplinks on switch dpid, resolved. Caller must not
// hold c.mu.
func (c *Controller) uplinksOn(dpid uint64) []placedUplink {
	var out []placedUplink
	c.mu.Lock()
	defer c.mu.Unlock()
	c.store.Read(func(st *topology.State) {
		pm := portMap{bridges: c.bridges, st: st, pins: c.pins}
		for _, u := range st.AllUplinks() {
			at, ok := pm.Attachment(u.AsHost())
			if !ok || at.DPID != dpid {
				continue
			}
			p := placedUplink{u: u, at: at}
			if addrs := st.PublicAddrs(u.Name); len(addrs) > 0 {
				p.from = addrs[0].IP
			}
			out = append(out, p)
		}
	})
	return out
}

// uplinkARPLoop asks the routers of the uplinks on sc's switch for their
// MAC until ctx ends: once the switch is reconciled (the flow that punts
// the answer is there), every second while a MAC is unknown, every
// UplinkARPRefresh once it is known.
func (c *Controller) uplinkARPLoop(ctx context.Context, sc *switchConn) {
	sender, ok := sc.dp.(packetSender)
	if !ok {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !sc.isReconciled() || !c.IsLeader() {
			continue // a replica that follows sends nothing (replicas.go)
		}
		now := time.Now()
		for _, p := range c.uplinksOn(sc.dp.DPID()) {
			if !p.from.IsValid() {
				continue
			}
			c.uplinks.mu.Lock()
			due := len(p.u.RouterMAC) == 0 || now.Sub(c.uplinks.asked[p.u.ID]) >= UplinkARPRefresh
			if due {
				c.uplinks.asked[p.u.ID] = now
			}
			c.uplinks.mu.Unlock()
			if !due {
				continue
			}
			frame := ARPRequest(p.u.MAC.HW(), p.from, p.u.Gateway)
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			err := sender.PacketOut(pctx, openflow.PortController, []openflow.Action{openflow.Output(p.at.OFPort)}, frame)
			cancel()
			if err != nil && ctx.Err() == nil {
				c.log.Debug("asking the uplink router for its MAC", zap.String("uplink", p.u.Name), zap.Error(err))
			}
		}
	}
}

// uplinkARPIn learns the router's MAC from an ARP packet punted from an
// uplink: it must come in by the uplink's port, from the router's address.
func (c *Controller) uplinkARPIn(sw packetSender, pi openflow.PacketIn) {
	spa, sha, err := ParseARPSender(pi.Data)
	if err != nil {
		c.log.Debug("uplink ARP ignored", zap.Error(err))
		return
	}
	for _, p := range c.uplinksOn(sw.DPID()) {
		if p.at.OFPort != pi.InPort || p.u.Gateway != spa {
			continue
		}
		if bytes.Equal(p.u.RouterMAC, sha) {
			return
		}
		c.storeRouterMAC(p.u, sha)
		return
	}
}

// storeRouterMAC stores a newly learned router MAC as an update of the
// uplink, in the background (Apply waits for the switches, among them the
// one whose packet-in this is); one update per uplink at a time.
func (c *Controller) storeRouterMAC(u topology.Uplink, mac net.HardwareAddr) {
	c.uplinks.mu.Lock()
	if c.uplinks.storing[u.ID] == mac.String() {
		c.uplinks.mu.Unlock()
		return
	}
	c.uplinks.storing[u.ID] = mac.String()
	c.uplinks.mu.Unlock()
	go func() {
		defer func() {
			c.uplinks.mu.Lock()
			delete(c.uplinks.storing, u.ID)
			c.uplinks.mu.Unlock()
		}()
		ctx, cancel := context.WithTimeout(context.Background(), c.opts.PushTimeout)
		defer cancel()
		_, err := c.Apply(ctx, []topology.Op{topology.Update(&topology.Uplink{Name: u.Name, Gateway: u.Gateway, RouterMAC: topology.MAC(mac)})})
		var unconfirmed *UnconfirmedError
		switch {
		case err == nil:
			c.log.Info("uplink router MAC learned", zap.String("uplink", u.Name), zap.Stringer("router", u.Gateway),
				zap.String("mac", mac.String()), zap.String("was", u.RouterMAC.String()))
		case errors.As(err, &unconfirmed):
			c.log.Warn("uplink router MAC stored, not every switch confirmed it", zap.String("uplink", u.Name), zap.Error(err))
		default:
			c.log.Warn("storing the uplink router's MAC", zap.String("uplink", u.Name), zap.Error(err))
		}
	}()
}

// uplinkOwners are the uplinks (and what depends on where they are) whose
// interface is among ports changed on endpoint. Caller holds c.mu and is
// inside store.Read.
func (c *Controller) uplinkOwners(st *topology.State, endpoint string, changed []bridgePort) []pipeline.Owner {
	var out []pipeline.Owner
	for _, u := range st.AllUplinks() {
		k, named := portKeyOf(st, u.AsHost())
		if !named || k.endpoint != "" && k.endpoint != endpoint {
			continue
		}
		for _, p := range changed {
			if p.bridge == k.bridge && p.iface == k.iface {
				o := pipeline.Owner{Kind: pipeline.OwnerUplink, ID: u.ID}
				out = append(append(out, o), c.pipe.Dependents(st, o)...)
				break
			}
		}
	}
	return out
}

// ARPRequest is the broadcast ARP request "who has target? tell from"
// sent from mac.
func ARPRequest(mac net.HardwareAddr, from, target netip.Addr) []byte {
	b := make([]byte, 42)
	copy(b[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(b[6:12], mac)
	binary.BigEndian.PutUint16(b[12:14], 0x0806)
	arp := b[14:]
	binary.BigEndian.PutUint16(arp[0:2], 1)      // Ethernet
	binary.BigEndian.PutUint16(arp[2:4], 0x0800) // IPv4
	arp[4], arp[5] = 6, 4
	binary.BigEndian.PutUint16(arp[6:8], 1) // request
	copy(arp[8:14], mac)
	f, t := from.As4(), target.As4()
	copy(arp[14:18], f[:])
	copy(arp[24:28], t[:])
	return b
}

// ParseARPSender reads the sender (protocol and hardware address) of an
// Ethernet ARP packet for IPv4.
func ParseARPSender(frame []byte) (netip.Addr, net.HardwareAddr, error) {
	if len(frame) < 42 {
		return netip.Addr{}, nil, fmt.Errorf("frame of %d bytes is too short for ARP", len(frame))
	}
	if et := binary.BigEndian.Uint16(frame[12:14]); et != 0x0806 {
		return netip.Addr{}, nil, fmt.Errorf("ether type %#04x is not ARP", et)
	}
	arp := frame[14:]
	if binary.BigEndian.Uint16(arp[0:2]) != 1 || binary.BigEndian.Uint16(arp[2:4]) != 0x0800 || arp[4] != 6 || arp[5] != 4 {
		return netip.Addr{}, nil, errors.New("not an Ethernet/IPv4 ARP packet")
	}
	sha := net.HardwareAddr(append([]byte(nil), arp[8:14]...))
	if sha[0]&1 != 0 || bytes.Equal(sha, make([]byte, 6)) {
		return netip.Addr{}, nil, fmt.Errorf("sender MAC %s is not a unicast address", sha)
	}
	return netip.AddrFrom4([4]byte(arp[14:18])), sha, nil
}
