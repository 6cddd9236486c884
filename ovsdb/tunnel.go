package ovsdb

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/ovsdb/vswitchd"
)

// TunnelType is the interface type of the port EnsureTunnelPort manages.
const TunnelType = "vxlan"

// tunnelOptions are the tunnel port's options: a flow-based VXLAN port,
// whose remote endpoint and VNI the OpenFlow actions set per packet
// (set_field:IP->tun_dst, set_field:VNI->tun_id) and whose received
// packets carry them in tun_src and tun_id.
func tunnelOptions() map[string]string {
	return map[string]string{"remote_ip": "flow", "key": "flow"}
}

// EnsureTunnelPort makes sure bridge has a port named port with one
// interface of the same name, of type vxlan, with exactly the options
// remote_ip=flow and key=flow, in one OVSDB transaction:
//
//   - missing: the port and its interface are created;
//   - there with another type or other options (or other interfaces):
//     those are corrected, keeping the rows (and so the ofport) when it can;
//   - already right: nothing is sent.
//
// Other ports and interfaces are not touched. It is an error if the bridge
// does not exist, or if port (or an interface of that name) belongs to
// another bridge or another port: OVS names are unique per database, so
// it would have to be taken away from there. A new port's ofport is
// assigned by ovs-vswitchd afterwards; EnsureTunnelPort does not wait. An
// ssl: endpoint needs WithTLS among conn.
func EnsureTunnelPort(ctx context.Context, log *zap.Logger, endpoint, bridge, port string, conn ...ConnOption) error {
	if log == nil {
		log = zap.NewNop()
	}
	log = log.With(zap.String("ovsdb", endpoint), zap.String("bridge", bridge), zap.String("port", port))
	fail := func(err error) error {
		return fmt.Errorf("ensuring tunnel port %q on bridge %q: %w", port, bridge, err)
	}
	if bridge == "" {
		return fail(errors.New("empty bridge name"))
	}
	if port == "" {
		return fail(errors.New("empty port name"))
	}
	ep, err := ParseEndpoint(endpoint)
	if err != nil {
		return fail(err)
	}
	c, err := connectForTunnel(ctx, log, ep, applyConnOptions(conn))
	if err != nil {
		return fail(err)
	}
	defer c.Close()

	ops, err := tunnelOps(ctx, c, bridge, port, nil)
	if err != nil {
		return fail(fmt.Errorf("on %s: %w", ep, err))
	}
	if len(ops) == 0 {
		log.Debug("tunnel port already set up")
		return nil
	}
	res, err := c.Transact(ctx, ops...)
	if err != nil {
		return fail(fmt.Errorf("on %s: transact: %w", ep, err))
	}
	if opErrs, err := ovsdb.CheckOperationResults(res, ops); err != nil {
		details := make([]string, 0, len(opErrs))
		for _, e := range opErrs {
			details = append(details, e.Error())
		}
		return fail(fmt.Errorf("on %s: %w: %s", ep, err, strings.Join(details, "; ")))
	}
	log.Info("tunnel port set up", zap.String("type", TunnelType), zap.Int("operations", len(ops)))
	return nil
}

// connectForTunnel connects and dumps the columns EnsureTunnelPort reads.
func connectForTunnel(ctx context.Context, log *zap.Logger, ep Endpoint, co connOptions) (client.Client, error) {
	dbModel, err := databaseModel(&vswitchd.Bridge{}, &vswitchd.Port{}, &vswitchd.Interface{})
	if err != nil {
		return nil, err
	}
	c, err := newClient(log, ep, dbModel, co)
	if err != nil {
		return nil, err
	}
	if err := c.Connect(ctx); err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", ep, err)
	}
	br, p, iface := &vswitchd.Bridge{}, &vswitchd.Port{}, &vswitchd.Interface{}
	mon := c.NewMonitor(
		client.WithTable(br, &br.Name, &br.Ports),
		client.WithTable(p, &p.Name, &p.Interfaces),
		client.WithTable(iface, &iface.Name, &iface.Type, &iface.Options),
	)
	if _, err := c.Monitor(ctx, mon); err != nil {
		c.Close()
		return nil, fmt.Errorf("reading Bridge/Port/Interface from %s: %w", ep, err)
	}
	return c, nil
}

// tunnelOps returns the operations that give bridge the tunnel port,
// computed against c's cache; none when it is right already. What they
// change is noted in rec, when not nil.
func tunnelOps(ctx context.Context, c client.Client, bridge, port string, rec *changeRecord) ([]ovsdb.Operation, error) {
	if rec == nil {
		rec = &changeRecord{}
	}
	var bridges []*vswitchd.Bridge
	if err := c.WhereCache(func(*vswitchd.Bridge) bool { return true }).List(ctx, &bridges); err != nil {
		return nil, fmt.Errorf("listing bridges: %w", err)
	}
	var br *vswitchd.Bridge
	owner := map[string]string{} // port UUID → bridge name
	for _, b := range bridges {
		if b.Name == bridge {
			br = b
		}
		for _, u := range b.Ports {
			owner[u] = b.Name
		}
	}
	if br == nil {
		return nil, fmt.Errorf("bridge %q does not exist", bridge)
	}

	var ports []*vswitchd.Port
	if err := c.WhereCache(func(p *vswitchd.Port) bool { return p.Name == port }).List(ctx, &ports); err != nil {
		return nil, fmt.Errorf("looking up port: %w", err)
	}
	var ifaces []*vswitchd.Interface
	if err := c.WhereCache(func(i *vswitchd.Interface) bool { return i.Name == port }).List(ctx, &ifaces); err != nil {
		return nil, fmt.Errorf("looking up interface: %w", err)
	}
	var iface *vswitchd.Interface
	if len(ifaces) > 0 {
		iface = ifaces[0]
	}

	switch {
	case len(ports) == 0:
		if iface != nil {
			return nil, fmt.Errorf("interface %q already exists on another port; remove it first", port)
		}
		rec.tunnelCreated = true
		return createTunnelPortOps(c, br, port)
	case owner[ports[0].UUID] != bridge:
		if other := owner[ports[0].UUID]; other != "" {
			return nil, fmt.Errorf("port %q already exists on bridge %q; remove it there first", port, other)
		}
		// A Port row no bridge refers to is garbage ovsdb-server removes;
		// it cannot be seen here, but be safe.
		return nil, fmt.Errorf("port %q exists but is on no bridge", port)
	}
	p := ports[0]
	rec.tunnelPort = p.UUID

	var ops []ovsdb.Operation
	if iface != nil && !slices.Contains(p.Interfaces, iface.UUID) {
		return nil, fmt.Errorf("interface %q belongs to another port than %q; remove it first", port, port)
	}
	if iface == nil {
		// Port named right, but without an interface of that name: give it
		// one, replacing what it had.
		iface = &vswitchd.Interface{UUID: "vpcflow_tunnel_iface", Name: port, Type: TunnelType, Options: tunnelOptions()}
		op, err := c.Create(iface)
		if err != nil {
			return nil, fmt.Errorf("insert interface: %w", err)
		}
		ops = append(ops, op...)
	} else if iface.Type != TunnelType || !maps.Equal(iface.Options, tunnelOptions()) {
		rec.tunnelIface = iface.UUID
		upd := &vswitchd.Interface{UUID: iface.UUID, Type: TunnelType, Options: tunnelOptions()}
		op, err := c.Where(upd).Update(upd, &upd.Type, &upd.Options)
		if err != nil {
			return nil, fmt.Errorf("update interface type and options: %w", err)
		}
		ops = append(ops, op...)
	}
	if len(p.Interfaces) != 1 || p.Interfaces[0] != iface.UUID {
		rec.tunnelPortInterfaces = true
		// A bond, or a port whose interface had another name: it keeps
		// only the tunnel interface (the others are garbage-collected).
		upd := &vswitchd.Port{UUID: p.UUID, Interfaces: []string{iface.UUID}}
		op, err := c.Where(upd).Update(upd, &upd.Interfaces)
		if err != nil {
			return nil, fmt.Errorf("update port interfaces: %w", err)
		}
		ops = append(ops, op...)
	}
	return ops, nil
}

// createTunnelPortOps inserts the interface and the port and adds the port
// to the bridge (a mutation, so concurrent port changes are not lost).
func createTunnelPortOps(c client.Client, br *vswitchd.Bridge, port string) ([]ovsdb.Operation, error) {
	ops, portUUID, err := insertTunnelPortOps(c, port)
	if err != nil {
		return nil, err
	}
	b := &vswitchd.Bridge{UUID: br.UUID}
	op, err := c.Where(b).Mutate(b, model.Mutation{
		Field:   &b.Ports,
		Mutator: ovsdb.MutateOperationInsert,
		Value:   []string{portUUID},
	})
	if err != nil {
		return nil, fmt.Errorf("adding port to bridge: %w", err)
	}
	return append(ops, op...), nil
}

// tunnelPortUUIDName is the named UUID of the tunnel port a transaction
// inserts.
const tunnelPortUUIDName = "vpcflow_tunnel_port"

// insertTunnelPortOps inserts the tunnel interface and its port, and
// returns the port's named UUID for the bridge to refer to.
func insertTunnelPortOps(c client.Client, port string) ([]ovsdb.Operation, string, error) {
	iface := &vswitchd.Interface{UUID: "vpcflow_tunnel_iface", Name: port, Type: TunnelType, Options: tunnelOptions()}
	p := &vswitchd.Port{UUID: tunnelPortUUIDName, Name: port, Interfaces: []string{iface.UUID}}
	var ops []ovsdb.Operation
	for _, m := range []model.Model{iface, p} {
		op, err := c.Create(m)
		if err != nil {
			return nil, "", fmt.Errorf("insert %T: %w", m, err)
		}
		ops = append(ops, op...)
	}
	return ops, p.UUID, nil
}
