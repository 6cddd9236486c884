package ovsdb

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/ovsdb/vswitchd"
)

// ChassisOptions says how PrepareChassisBridge prepares a chassis bridge:
// the bridge settings of SetupBridge and the tunnel port of
// EnsureTunnelPort.
type ChassisOptions struct {
	SetupOptions
	// TunnelPort is the name of the flow-based VXLAN port, e.g.
	// "vpcflow-vxlan". It may not be the bridge's own name.
	TunnelPort string
}

// ErrBridgeChanged is returned (wrapped) by PrepareChassisBridge when the
// rows it read changed before its transaction committed: nothing was
// changed, and calling it again computes the change afresh.
var ErrBridgeChanged = errors.New("the bridge changed while it was being prepared (edited by someone else at the same time); nothing was changed")

// changeRecord is what a prepare transaction changes in rows that existed
// before it, so that ChassisUndo restores exactly those.
type changeRecord struct {
	// bridgeColumns are the Bridge columns set as a whole: protocols,
	// fail_mode, datapath_type, controller.
	bridgeColumns []string
	// disableInBand: other_config:disable-in-band was set.
	disableInBand bool
	// controllerRows are kept Controller rows whose connection_mode and
	// max_backoff were set.
	controllerRows []string
	// tunnelCreated: the tunnel port and interface were inserted.
	tunnelCreated bool
	// tunnelPort is the UUID of the tunnel port that existed already.
	tunnelPort string
	// tunnelIface is the UUID of the existing tunnel interface whose type
	// and options were set.
	tunnelIface string
	// tunnelPortInterfaces: the existing tunnel port's interfaces were
	// replaced.
	tunnelPortInterfaces bool
}

// ChassisUndo restores what one PrepareChassisBridge changed: the rows it
// touched get back the values they had before (rows it inserted go, rows
// it made OVSDB delete come back with their UUIDs). It holds no
// connection; Run connects again. A nil *ChassisUndo does nothing.
type ChassisUndo struct {
	log    *zap.Logger
	ep     Endpoint
	conn   connOptions
	name   string // the bridge's name, for messages
	change bool

	// createdBridge is the UUID of the bridge Prepare inserted ("" if it
	// existed).
	createdBridge string
	// For an existing bridge: the rows as they were.
	bridge      *vswitchd.Bridge
	controllers map[string]*vswitchd.Controller
	port        *vswitchd.Port                 // the tunnel port, if it existed
	ifaces      map[string]*vswitchd.Interface // its interfaces
	rec         changeRecord
	// insertedPort is the UUID of the tunnel port Prepare inserted into
	// the existing bridge.
	insertedPort string
}

// Changed reports whether PrepareChassisBridge changed anything (a bridge
// that was already prepared needs no transaction, and no undo).
func (u *ChassisUndo) Changed() bool { return u != nil && u.change }

// PrepareChassisBridge prepares a chassis bridge in ONE OVSDB transaction,
// all or nothing: what SetupBridge does (protocols=[OpenFlow13],
// fail_mode=secure, other_config:disable-in-band=true, the controller set
// with connection_mode=out-of-band and max_backoff=ControllerMaxBackoff,
// datapath_type and creation as opts.SetupOptions says) and what
// EnsureTunnelPort does (the flow-based VXLAN port opts.TunnelPort).
//
// Everything is computed against the current rows and validated before
// anything is sent: a missing bridge (without Create), a tunnel port name
// taken by another bridge or port, a bad controller target: an error, and
// nothing sent. The transaction starts with "wait" operations on the rows
// it read, so a concurrent edit makes it fail as a whole (ErrBridgeChanged)
// instead of mixing. Being one transaction, ovs-vswitchd never sees a half
// state: no moment with fail_mode changed but the controller not yet set
// (which would flush the bridge's flows once more), nor with the controller
// set but no tunnel port.
//
// It returns what is needed to undo the change (ChassisUndo.Run), for a
// caller whose next step (storing the chassis) fails. A bridge that is
// already prepared is not touched: the undo then does nothing. An ssl:
// endpoint needs WithTLS among conn.
func PrepareChassisBridge(ctx context.Context, log *zap.Logger, endpoint, bridge string, opts ChassisOptions, conn ...ConnOption) (*ChassisUndo, error) {
	return prepareChassisBridge(ctx, log, endpoint, bridge, opts, nil, conn...)
}

// prepareChassisBridge is PrepareChassisBridge with a hook called between
// computing the transaction and sending it (tests change the database
// there).
func prepareChassisBridge(ctx context.Context, log *zap.Logger, endpoint, bridge string, opts ChassisOptions, beforeTransact func(), conn ...ConnOption) (*ChassisUndo, error) {
	if log == nil {
		log = zap.NewNop()
	}
	log = log.With(zap.String("ovsdb", endpoint), zap.String("bridge", bridge))
	fail := func(err error) (*ChassisUndo, error) {
		return nil, fmt.Errorf("preparing chassis bridge %q: %w", bridge, err)
	}
	if err := validateSetup(bridge, opts.SetupOptions); err != nil {
		return fail(err)
	}
	switch {
	case opts.TunnelPort == "":
		return fail(errors.New("empty tunnel port name"))
	case opts.TunnelPort == bridge:
		return fail(fmt.Errorf("tunnel port %q is the bridge's own (internal) port", opts.TunnelPort))
	}
	ep, err := ParseEndpoint(endpoint)
	if err != nil {
		return fail(err)
	}
	co := applyConnOptions(conn)
	c, err := connectForPrepare(ctx, log, ep, co)
	if err != nil {
		return fail(err)
	}
	defer c.Close()

	u := &ChassisUndo{log: log, ep: ep, conn: co, name: bridge}
	ops, err := u.plan(ctx, c, bridge, opts)
	if err != nil {
		return fail(fmt.Errorf("on %s: %w", ep, err))
	}
	if !u.change {
		log.Debug("chassis bridge already prepared")
		return u, nil
	}
	if beforeTransact != nil {
		beforeTransact()
	}
	res, err := transact(ctx, c, ops)
	if err != nil {
		return fail(fmt.Errorf("on %s: %w", ep, err))
	}
	if u.bridge == nil {
		u.createdBridge = insertedUUID(ops, res, bridgeUUIDName)
	}
	if u.rec.tunnelCreated {
		u.insertedPort = insertedUUID(ops, res, tunnelPortUUIDName)
	}
	log.Info("chassis bridge prepared", zap.Int("operations", len(ops)), zap.Bool("created", u.bridge == nil),
		zap.Strings("controllers", opts.Controllers), zap.String("tunnel_port", opts.TunnelPort))
	return u, nil
}

// bridgeUUIDName is the named UUID of a bridge createBridgeOps inserts.
const bridgeUUIDName = "vpcflow_bridge"

// connectForPrepare connects and dumps what PrepareChassisBridge reads and
// what its undo may have to re-create: whole Controller and Interface rows.
func connectForPrepare(ctx context.Context, log *zap.Logger, ep Endpoint, co connOptions) (client.Client, error) {
	dbModel, err := databaseModel(&vswitchd.OpenvSwitch{}, &vswitchd.Bridge{}, &vswitchd.Port{},
		&vswitchd.Interface{}, &vswitchd.Controller{})
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
	ovs, br, p := &vswitchd.OpenvSwitch{}, &vswitchd.Bridge{}, &vswitchd.Port{}
	mon := c.NewMonitor(
		client.WithTable(ovs, &ovs.Bridges),
		client.WithTable(br, &br.Name, &br.DatapathType, &br.Protocols, &br.FailMode,
			&br.OtherConfig, &br.Controller, &br.Ports),
		client.WithTable(p, &p.Name, &p.Interfaces),
		client.WithTable(&vswitchd.Interface{}),
		client.WithTable(&vswitchd.Controller{}),
	)
	if _, err := c.Monitor(ctx, mon); err != nil {
		c.Close()
		return nil, fmt.Errorf("reading Open_vSwitch/Bridge/Port/Interface/Controller from %s: %w", ep, err)
	}
	return c, nil
}

// plan computes the prepare transaction against c's cache and records in u
// what undoing it takes. u.change is false when there is nothing to do.
func (u *ChassisUndo) plan(ctx context.Context, c client.Client, bridge string, opts ChassisOptions) ([]ovsdb.Operation, error) {
	var found []*vswitchd.Bridge
	if err := c.WhereCache(func(b *vswitchd.Bridge) bool { return b.Name == bridge }).List(ctx, &found); err != nil {
		return nil, fmt.Errorf("looking up bridge: %w", err)
	}
	switch {
	case len(found) > 1:
		return nil, fmt.Errorf("%d bridges named %q", len(found), bridge)
	case len(found) == 0 && !opts.Create:
		return nil, errors.New("bridge does not exist (and Create is false)")
	case len(found) == 0:
		if err := tunnelNameFree(ctx, c, opts.TunnelPort); err != nil {
			return nil, err
		}
		ops, err := createBridgeOps(ctx, c, bridge, opts.SetupOptions, opts.TunnelPort)
		if err != nil {
			return nil, err
		}
		u.change = true
		return ops, nil
	}
	cur := found[0]
	setup, err := updateBridgeOps(ctx, c, cur, opts.SetupOptions, &u.rec)
	if err != nil {
		return nil, err
	}
	tunnel, err := tunnelOps(ctx, c, bridge, opts.TunnelPort, &u.rec)
	if err != nil {
		return nil, fmt.Errorf("tunnel port %q: %w", opts.TunnelPort, err)
	}
	if len(setup)+len(tunnel) == 0 {
		return nil, nil
	}
	u.change = true

	// The rows as they are, for the undo.
	u.bridge = cloneBridgeRow(cur)
	u.controllers = map[string]*vswitchd.Controller{}
	for _, id := range cur.Controller {
		ctl := &vswitchd.Controller{UUID: id}
		if err := c.Get(ctx, ctl); err != nil {
			return nil, fmt.Errorf("reading controller %s: %w", id, err)
		}
		u.controllers[id] = ctl
	}
	var waits []ovsdb.Operation
	zero := 0
	op, err := c.Where(cur).Wait(ovsdb.WaitConditionEqual, &zero, cur,
		&cur.Protocols, &cur.FailMode, &cur.DatapathType, &cur.Controller, &cur.OtherConfig, &cur.Ports)
	if err != nil {
		return nil, fmt.Errorf("wait on bridge: %w", err)
	}
	waits = append(waits, op...)
	for _, id := range u.rec.controllerRows {
		ctl := u.controllers[id]
		op, err := c.Where(ctl).Wait(ovsdb.WaitConditionEqual, &zero, ctl, &ctl.ConnectionMode, &ctl.MaxBackoff)
		if err != nil {
			return nil, fmt.Errorf("wait on controller %q: %w", ctl.Target, err)
		}
		waits = append(waits, op...)
	}
	if u.rec.tunnelPort != "" {
		p := &vswitchd.Port{UUID: u.rec.tunnelPort}
		if err := c.Get(ctx, p); err != nil {
			return nil, fmt.Errorf("reading tunnel port: %w", err)
		}
		u.port = p
		u.ifaces = map[string]*vswitchd.Interface{}
		for _, id := range p.Interfaces {
			i := &vswitchd.Interface{UUID: id}
			if err := c.Get(ctx, i); err != nil {
				return nil, fmt.Errorf("reading interface %s: %w", id, err)
			}
			u.ifaces[id] = i
		}
		op, err := c.Where(p).Wait(ovsdb.WaitConditionEqual, &zero, p, &p.Interfaces)
		if err != nil {
			return nil, fmt.Errorf("wait on tunnel port: %w", err)
		}
		waits = append(waits, op...)
		if i := u.ifaces[u.rec.tunnelIface]; i != nil {
			op, err := c.Where(i).Wait(ovsdb.WaitConditionEqual, &zero, i, &i.Type, &i.Options)
			if err != nil {
				return nil, fmt.Errorf("wait on tunnel interface: %w", err)
			}
			waits = append(waits, op...)
		}
	}
	return slices.Concat(waits, setup, tunnel), nil
}

// tunnelNameFree checks that no port or interface is named name: OVS names
// are unique per database.
func tunnelNameFree(ctx context.Context, c client.Client, name string) error {
	var ports []*vswitchd.Port
	if err := c.WhereCache(func(p *vswitchd.Port) bool { return p.Name == name }).List(ctx, &ports); err != nil {
		return fmt.Errorf("looking up port: %w", err)
	}
	if len(ports) > 0 {
		var bridges []*vswitchd.Bridge
		if err := c.WhereCache(func(b *vswitchd.Bridge) bool { return slices.Contains(b.Ports, ports[0].UUID) }).List(ctx, &bridges); err != nil {
			return fmt.Errorf("looking up bridges: %w", err)
		}
		if len(bridges) > 0 {
			return fmt.Errorf("tunnel port %q: port %q already exists on bridge %q; remove it there first", name, name, bridges[0].Name)
		}
		return fmt.Errorf("tunnel port %q: port %q already exists", name, name)
	}
	var ifaces []*vswitchd.Interface
	if err := c.WhereCache(func(i *vswitchd.Interface) bool { return i.Name == name }).List(ctx, &ifaces); err != nil {
		return fmt.Errorf("looking up interface: %w", err)
	}
	if len(ifaces) > 0 {
		return fmt.Errorf("tunnel port %q: interface %q already exists on another port; remove it first", name, name)
	}
	return nil
}

// transact sends ops and turns failed operations into one error;
// a failed "wait" is ErrBridgeChanged.
func transact(ctx context.Context, c client.Client, ops []ovsdb.Operation) ([]ovsdb.OperationResult, error) {
	res, err := c.Transact(ctx, ops...)
	if err != nil {
		return nil, fmt.Errorf("transact: %w", err)
	}
	opErrs, err := ovsdb.CheckOperationResults(res, ops)
	if err == nil {
		return res, nil
	}
	details := make([]string, 0, len(opErrs))
	for _, e := range opErrs {
		if op := e.Operation(); op != nil && op.Op == ovsdb.OperationWait {
			return nil, fmt.Errorf("%w (%s on %s)", ErrBridgeChanged, e.Error(), op.Table)
		}
		details = append(details, e.Error())
	}
	return nil, fmt.Errorf("%w: %s", err, strings.Join(details, "; "))
}

// insertedUUID is the real UUID of the row an insert with that named UUID
// created.
func insertedUUID(ops []ovsdb.Operation, res []ovsdb.OperationResult, name string) string {
	for i, op := range ops {
		if op.Op == ovsdb.OperationInsert && op.UUIDName == name && i < len(res) {
			return res[i].UUID.GoUUID
		}
	}
	return ""
}

func cloneBridgeRow(b *vswitchd.Bridge) *vswitchd.Bridge {
	c := *b
	c.Controller = slices.Clone(b.Controller)
	c.Protocols = slices.Clone(b.Protocols)
	c.Ports = slices.Clone(b.Ports)
	if b.FailMode != nil {
		fm := *b.FailMode
		c.FailMode = &fm
	}
	c.OtherConfig = make(map[string]string, len(b.OtherConfig))
	for k, v := range b.OtherConfig {
		c.OtherConfig[k] = v
	}
	return &c
}

// Run undoes the change in one transaction: the bridge columns, the
// other_config key, the Controller rows and the tunnel port get back what
// they had; rows Prepare inserted are dropped (OVSDB deletes them with
// their last reference), and rows its change made OVSDB delete (controllers
// no longer wanted, a bond's extra interfaces) are inserted again with
// their UUIDs and configuration (vswitchd refills their status columns).
// A bridge Prepare created is deleted. It changes only what Prepare
// changed, so an unrelated edit made since stays. A bridge deleted since is
// an error. OpenFlow flows are not restored: setting the controller
// flushed them already. Run is safe to call on a nil or unchanged undo
// (nothing happens) and a second time (nothing left to do).
func (u *ChassisUndo) Run(ctx context.Context) error {
	if !u.Changed() {
		return nil
	}
	fail := func(err error) error {
		return fmt.Errorf("undoing the preparation of chassis bridge %q on %s: %w", u.name, u.ep, err)
	}
	c, err := connectForPrepare(ctx, u.log, u.ep, u.conn)
	if err != nil {
		return fail(err)
	}
	defer c.Close()
	ops, err := u.undoOps(ctx, c)
	if err != nil {
		return fail(err)
	}
	if len(ops) == 0 {
		u.log.Debug("chassis bridge: nothing left to undo")
		return nil
	}
	if _, err := transact(ctx, c, ops); err != nil {
		return fail(err)
	}
	u.log.Info("chassis bridge preparation undone", zap.Int("operations", len(ops)))
	return nil
}

// exists reports whether a row with m's UUID is in c's cache.
func exists(ctx context.Context, c client.Client, m model.Model) (bool, error) {
	err := c.Get(ctx, m)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, client.ErrNotFound):
		return false, nil
	default:
		return false, err
	}
}

func (u *ChassisUndo) undoOps(ctx context.Context, c client.Client) ([]ovsdb.Operation, error) {
	if u.createdBridge != "" {
		ok, err := exists(ctx, c, &vswitchd.Bridge{UUID: u.createdBridge})
		if err != nil || !ok {
			return nil, err // gone already: nothing to undo
		}
		var roots []*vswitchd.OpenvSwitch
		if err := c.WhereCache(func(*vswitchd.OpenvSwitch) bool { return true }).List(ctx, &roots); err != nil {
			return nil, fmt.Errorf("looking up the Open_vSwitch row: %w", err)
		}
		var ops []ovsdb.Operation
		for _, root := range roots {
			op, err := c.Where(root).Mutate(root, model.Mutation{
				Field: &root.Bridges, Mutator: ovsdb.MutateOperationDelete, Value: []string{u.createdBridge},
			})
			if err != nil {
				return nil, fmt.Errorf("removing bridge: %w", err)
			}
			ops = append(ops, op...)
		}
		return ops, nil
	}

	before := u.bridge
	now := &vswitchd.Bridge{UUID: before.UUID}
	if ok, err := exists(ctx, c, now); err != nil {
		return nil, fmt.Errorf("reading bridge: %w", err)
	} else if !ok {
		return nil, errors.New("the bridge was deleted since it was prepared: nothing to restore")
	}
	var ops []ovsdb.Operation
	add := func(op []ovsdb.Operation, err error) error {
		if err != nil {
			return err
		}
		ops = append(ops, op...)
		return nil
	}

	// Controller rows: those OVSDB deleted come back (when the set is
	// restored), those updated get their values back.
	if slices.Contains(u.rec.bridgeColumns, "controller") {
		for _, id := range before.Controller {
			ok, err := exists(ctx, c, &vswitchd.Controller{UUID: id})
			if err != nil {
				return nil, fmt.Errorf("reading controller %s: %w", id, err)
			}
			if ok {
				continue
			}
			row := *u.controllers[id]
			row.IsConnected, row.Role, row.Status = false, nil, nil // vswitchd's to fill
			if err := add(c.Create(&row)); err != nil {
				return nil, fmt.Errorf("re-inserting controller %q: %w", row.Target, err)
			}
		}
	}
	for _, id := range u.rec.controllerRows {
		ok, err := exists(ctx, c, &vswitchd.Controller{UUID: id})
		if err != nil {
			return nil, fmt.Errorf("reading controller %s: %w", id, err)
		}
		if !ok {
			continue // re-inserted above with its old values, or gone for good
		}
		old := u.controllers[id]
		upd := &vswitchd.Controller{UUID: id, ConnectionMode: old.ConnectionMode, MaxBackoff: old.MaxBackoff}
		if err := add(c.Where(upd).Update(upd, &upd.ConnectionMode, &upd.MaxBackoff)); err != nil {
			return nil, fmt.Errorf("restoring controller %q: %w", old.Target, err)
		}
	}

	// Bridge columns set as a whole.
	upd := &vswitchd.Bridge{UUID: before.UUID}
	var fields []any
	for _, col := range u.rec.bridgeColumns {
		switch col {
		case "protocols":
			upd.Protocols = before.Protocols
			fields = append(fields, &upd.Protocols)
		case "fail_mode":
			upd.FailMode = before.FailMode
			fields = append(fields, &upd.FailMode)
		case "datapath_type":
			upd.DatapathType = before.DatapathType
			fields = append(fields, &upd.DatapathType)
		case "controller":
			upd.Controller = before.Controller
			fields = append(fields, &upd.Controller)
		}
	}
	if len(fields) > 0 {
		if err := add(c.Where(upd).Update(upd, fields...)); err != nil {
			return nil, fmt.Errorf("restoring bridge columns: %w", err)
		}
	}
	if u.rec.disableInBand {
		muts := []model.Mutation{{Field: &upd.OtherConfig, Mutator: ovsdb.MutateOperationDelete, Value: []string{disableInBandKey}}}
		if v, ok := before.OtherConfig[disableInBandKey]; ok {
			muts = append(muts, model.Mutation{Field: &upd.OtherConfig, Mutator: ovsdb.MutateOperationInsert, Value: map[string]string{disableInBandKey: v}})
		}
		if err := add(c.Where(upd).Mutate(upd, muts...)); err != nil {
			return nil, fmt.Errorf("restoring other_config:%s: %w", disableInBandKey, err)
		}
	}

	// The tunnel port.
	if u.insertedPort != "" {
		if err := add(c.Where(upd).Mutate(upd, model.Mutation{
			Field: &upd.Ports, Mutator: ovsdb.MutateOperationDelete, Value: []string{u.insertedPort},
		})); err != nil {
			return nil, fmt.Errorf("removing the tunnel port: %w", err)
		}
	}
	if u.port != nil {
		if ok, err := exists(ctx, c, &vswitchd.Port{UUID: u.port.UUID}); err != nil {
			return nil, fmt.Errorf("reading tunnel port: %w", err)
		} else if !ok {
			return ops, nil // deleted since: nothing of it to restore
		}
		if u.rec.tunnelPortInterfaces {
			for _, id := range u.port.Interfaces {
				ok, err := exists(ctx, c, &vswitchd.Interface{UUID: id})
				if err != nil {
					return nil, fmt.Errorf("reading interface %s: %w", id, err)
				}
				if ok {
					continue
				}
				row := configOnly(u.ifaces[id])
				if err := add(c.Create(row)); err != nil {
					return nil, fmt.Errorf("re-inserting interface %q: %w", row.Name, err)
				}
			}
			p := &vswitchd.Port{UUID: u.port.UUID, Interfaces: u.port.Interfaces}
			if err := add(c.Where(p).Update(p, &p.Interfaces)); err != nil {
				return nil, fmt.Errorf("restoring the tunnel port's interfaces: %w", err)
			}
		}
		if id := u.rec.tunnelIface; id != "" {
			if ok, err := exists(ctx, c, &vswitchd.Interface{UUID: id}); err != nil {
				return nil, fmt.Errorf("reading interface %s: %w", id, err)
			} else if ok {
				old := u.ifaces[id]
				i := &vswitchd.Interface{UUID: id, Type: old.Type, Options: old.Options}
				if err := add(c.Where(i).Update(i, &i.Type, &i.Options)); err != nil {
					return nil, fmt.Errorf("restoring interface %q: %w", old.Name, err)
				}
			}
		}
	}
	return ops, nil
}

// configOnly is a copy of an Interface row without the columns
// ovs-vswitchd writes (its status), for inserting it again.
func configOnly(in *vswitchd.Interface) *vswitchd.Interface {
	return &vswitchd.Interface{
		UUID:                      in.UUID,
		BFD:                       in.BFD,
		CFMMpid:                   in.CFMMpid,
		ExternalIDs:               in.ExternalIDs,
		IngressPolicingBurst:      in.IngressPolicingBurst,
		IngressPolicingKpktsBurst: in.IngressPolicingKpktsBurst,
		IngressPolicingKpktsRate:  in.IngressPolicingKpktsRate,
		IngressPolicingRate:       in.IngressPolicingRate,
		LLDP:                      in.LLDP,
		MAC:                       in.MAC,
		MTURequest:                in.MTURequest,
		Name:                      in.Name,
		OfportRequest:             in.OfportRequest,
		Options:                   in.Options,
		OtherConfig:               in.OtherConfig,
		Type:                      in.Type,
	}
}
