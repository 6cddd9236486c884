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

// SetupOptions says how SetupBridge prepares a bridge.
type SetupOptions struct {
	// Create creates the bridge (with its internal port, as ovs-vsctl
	// add-br does) when it is missing, with datapath_type DatapathType.
	Create bool
	// DatapathType is the bridge's datapath_type: "" leaves it as it is (or
	// the OVS default for a new bridge), "netdev" is the userspace datapath.
	DatapathType string
	// Controllers is the bridge's complete controller set, e.g.
	// "tcp:127.0.0.1:6653"; it replaces whatever set the bridge had, so
	// an empty list removes all controllers.
	Controllers []string
}

// Bridge settings vpcflow relies on.
const (
	disableInBandKey = "disable-in-band"
	disableInBandVal = "true"
	// ControllerMaxBackoff is the max_backoff, in milliseconds, of the
	// Controller rows SetupBridge manages: the longest ovs-vswitchd waits
	// between attempts to reach the controller. OVS's default, 8000,
	// leaves a switch without its controller for up to 8 s after a
	// controller restart; 1000 (the smallest value OVS accepts) brings it
	// back within about a second.
	ControllerMaxBackoff = 1000
)

// SetupBridge prepares one bridge for vpcflow in a single OVSDB transaction:
// protocols=[OpenFlow13], fail_mode=secure, other_config:disable-in-band=true
// (other other_config keys are kept), datapath_type if opts.DatapathType is
// set, and the controller set replaced by opts.Controllers, each Controller
// row with connection_mode=out-of-band and max_backoff=ControllerMaxBackoff.
// Controller rows whose target is still wanted are kept (and corrected),
// so a controller connection is not reset needlessly.
// It is idempotent: when the bridge is already set up it sends no
// transaction at all. It does not wait for ovs-vswitchd to apply the change.
// A missing bridge is an error unless opts.Create is set. An ssl: endpoint
// needs WithTLS among conn.
func SetupBridge(ctx context.Context, log *zap.Logger, endpoint, bridge string, opts SetupOptions, conn ...ConnOption) error {
	if log == nil {
		log = zap.NewNop()
	}
	log = log.With(zap.String("ovsdb", endpoint), zap.String("bridge", bridge))
	if err := validateSetup(bridge, opts); err != nil {
		return fmt.Errorf("setting up bridge %q: %w", bridge, err)
	}
	ep, err := ParseEndpoint(endpoint)
	if err != nil {
		return fmt.Errorf("setting up bridge %q: %w", bridge, err)
	}
	c, err := connectForSetup(ctx, log, ep, applyConnOptions(conn))
	if err != nil {
		return fmt.Errorf("setting up bridge %q: %w", bridge, err)
	}
	defer c.Close()

	ops, err := setupOps(ctx, c, bridge, opts, nil)
	if err != nil {
		return fmt.Errorf("setting up bridge %q on %s: %w", bridge, ep, err)
	}
	if len(ops) == 0 {
		log.Debug("bridge already set up")
		return nil
	}
	res, err := c.Transact(ctx, ops...)
	if err != nil {
		return fmt.Errorf("setting up bridge %q on %s: transact: %w", bridge, ep, err)
	}
	if opErrs, err := ovsdb.CheckOperationResults(res, ops); err != nil {
		details := make([]string, 0, len(opErrs))
		for _, e := range opErrs {
			details = append(details, e.Error())
		}
		return fmt.Errorf("setting up bridge %q on %s: %w: %s", bridge, ep, err, strings.Join(details, "; "))
	}
	log.Info("bridge set up", zap.Int("operations", len(ops)), zap.Strings("controllers", opts.Controllers))
	return nil
}

func validateSetup(bridge string, opts SetupOptions) error {
	if bridge == "" {
		return errors.New("empty bridge name")
	}
	for i, t := range opts.Controllers {
		method, rest, ok := strings.Cut(t, ":")
		if !ok || rest == "" || strings.ContainsAny(t, " \t\n") {
			return fmt.Errorf("controller %q: want METHOD:ADDRESS, e.g. tcp:127.0.0.1:6653", t)
		}
		switch method {
		case "tcp", "ssl", "unix", "ptcp", "pssl", "punix":
		default:
			return fmt.Errorf("controller %q: unknown method %q", t, method)
		}
		if slices.Contains(opts.Controllers[:i], t) {
			return fmt.Errorf("controller %q listed twice", t)
		}
	}
	return nil
}

// connectForSetup connects and dumps the tables SetupBridge reads.
func connectForSetup(ctx context.Context, log *zap.Logger, ep Endpoint, co connOptions) (client.Client, error) {
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
	ovs, br, ctl := &vswitchd.OpenvSwitch{}, &vswitchd.Bridge{}, &vswitchd.Controller{}
	mon := c.NewMonitor(
		client.WithTable(ovs, &ovs.Bridges),
		client.WithTable(br, &br.Name, &br.DatapathType, &br.Protocols, &br.FailMode,
			&br.OtherConfig, &br.Controller),
		client.WithTable(ctl, &ctl.Target, &ctl.ConnectionMode, &ctl.MaxBackoff),
	)
	if _, err := c.Monitor(ctx, mon); err != nil {
		c.Close()
		return nil, fmt.Errorf("reading Open_vSwitch/Bridge/Controller from %s: %w", ep, err)
	}
	return c, nil
}

// setupOps returns the operations that bring bridge to the state SetupBridge
// promises, computed against c's cache; none when it is there already.
// What they change is noted in rec, when not nil.
func setupOps(ctx context.Context, c client.Client, bridge string, opts SetupOptions, rec *changeRecord) ([]ovsdb.Operation, error) {
	var found []*vswitchd.Bridge
	err := c.WhereCache(func(b *vswitchd.Bridge) bool { return b.Name == bridge }).List(ctx, &found)
	if err != nil {
		return nil, fmt.Errorf("looking up bridge: %w", err)
	}
	switch {
	case len(found) > 1:
		return nil, fmt.Errorf("%d bridges named %q", len(found), bridge)
	case len(found) == 0 && !opts.Create:
		return nil, errors.New("bridge does not exist (and SetupOptions.Create is false)")
	case len(found) == 0:
		return createBridgeOps(ctx, c, bridge, opts, "")
	}
	return updateBridgeOps(ctx, c, found[0], opts, rec)
}

func protocols13() []vswitchd.BridgeProtocols {
	return []vswitchd.BridgeProtocols{vswitchd.BridgeProtocolsOpenflow13}
}

// createBridgeOps inserts the bridge, its internal port and interface (named
// like the bridge, as ovs-vsctl add-br does), its controllers, and adds the
// bridge to the Open_vSwitch root row. A tunnelPort other than "" is
// inserted too, as EnsureTunnelPort would create it.
func createBridgeOps(ctx context.Context, c client.Client, bridge string, opts SetupOptions, tunnelPort string) ([]ovsdb.Operation, error) {
	var roots []*vswitchd.OpenvSwitch
	if err := c.WhereCache(func(*vswitchd.OpenvSwitch) bool { return true }).List(ctx, &roots); err != nil {
		return nil, fmt.Errorf("looking up the Open_vSwitch row: %w", err)
	}
	if len(roots) != 1 {
		return nil, fmt.Errorf("creating bridge %q: want exactly one Open_vSwitch row, found %d (was the database initialised with ovs-vsctl init?)", bridge, len(roots))
	}

	var ops []ovsdb.Operation
	ctlUUIDs := make([]string, 0, len(opts.Controllers))
	for i, target := range opts.Controllers {
		ctl := newController(fmt.Sprintf("vpcflow_ctl%d", i), target)
		op, err := c.Create(ctl)
		if err != nil {
			return nil, fmt.Errorf("controller %q: %w", target, err)
		}
		ops = append(ops, op...)
		ctlUUIDs = append(ctlUUIDs, ctl.UUID)
	}

	iface := &vswitchd.Interface{UUID: "vpcflow_iface", Name: bridge, Type: "internal"}
	port := &vswitchd.Port{UUID: "vpcflow_port", Name: bridge, Interfaces: []string{iface.UUID}}
	ports := []string{port.UUID}
	if tunnelPort != "" {
		tops, tunnelUUID, err := insertTunnelPortOps(c, tunnelPort)
		if err != nil {
			return nil, err
		}
		ops = append(ops, tops...)
		ports = append(ports, tunnelUUID)
	}
	failMode := vswitchd.BridgeFailModeSecure
	br := &vswitchd.Bridge{
		UUID:         bridgeUUIDName,
		Name:         bridge,
		DatapathType: opts.DatapathType,
		Protocols:    protocols13(),
		FailMode:     &failMode,
		OtherConfig:  map[string]string{disableInBandKey: disableInBandVal},
		Controller:   ctlUUIDs,
		Ports:        ports,
	}
	for _, m := range []model.Model{iface, port, br} {
		op, err := c.Create(m)
		if err != nil {
			return nil, fmt.Errorf("insert %T: %w", m, err)
		}
		ops = append(ops, op...)
	}
	root := roots[0]
	op, err := c.Where(root).Mutate(root, model.Mutation{
		Field:   &root.Bridges,
		Mutator: ovsdb.MutateOperationInsert,
		Value:   []string{br.UUID},
	})
	if err != nil {
		return nil, fmt.Errorf("adding bridge to Open_vSwitch: %w", err)
	}
	return append(ops, op...), nil
}

func newController(uuid, target string) *vswitchd.Controller {
	mode := vswitchd.ControllerConnectionModeOutOfBand
	backoff := ControllerMaxBackoff
	return &vswitchd.Controller{UUID: uuid, Target: target, ConnectionMode: &mode, MaxBackoff: &backoff}
}

// controllerUpToDate reports whether a Controller row has the settings
// SetupBridge gives the rows it manages.
func controllerUpToDate(ctl *vswitchd.Controller) bool {
	return ctl.ConnectionMode != nil && *ctl.ConnectionMode == vswitchd.ControllerConnectionModeOutOfBand &&
		ctl.MaxBackoff != nil && *ctl.MaxBackoff == ControllerMaxBackoff
}

// updateBridgeOps brings an existing bridge to the wanted state, touching
// only what differs, and notes what it changes in rec (when not nil).
func updateBridgeOps(ctx context.Context, c client.Client, cur *vswitchd.Bridge, opts SetupOptions, rec *changeRecord) ([]ovsdb.Operation, error) {
	if rec == nil {
		rec = &changeRecord{}
	}
	var ops []ovsdb.Operation

	// Controllers: keep a row per wanted target (first match), fixing its
	// connection_mode and max_backoff if needed; create rows for the
	// missing targets.
	curCtls := make([]*vswitchd.Controller, 0, len(cur.Controller))
	for _, u := range cur.Controller {
		ctl := &vswitchd.Controller{UUID: u}
		if err := c.Get(ctx, ctl); err != nil {
			return nil, fmt.Errorf("reading controller %s: %w", u, err)
		}
		curCtls = append(curCtls, ctl)
	}
	wantCtls := make([]string, 0, len(opts.Controllers))
	for i, target := range opts.Controllers {
		idx := slices.IndexFunc(curCtls, func(ctl *vswitchd.Controller) bool { return ctl != nil && ctl.Target == target })
		if idx < 0 {
			ctl := newController(fmt.Sprintf("vpcflow_ctl%d", i), target)
			op, err := c.Create(ctl)
			if err != nil {
				return nil, fmt.Errorf("controller %q: %w", target, err)
			}
			ops = append(ops, op...)
			wantCtls = append(wantCtls, ctl.UUID)
			continue
		}
		ctl := curCtls[idx]
		curCtls[idx] = nil // one row per target
		wantCtls = append(wantCtls, ctl.UUID)
		if !controllerUpToDate(ctl) {
			rec.controllerRows = append(rec.controllerRows, ctl.UUID)
			upd := newController(ctl.UUID, target)
			op, err := c.Where(upd).Update(upd, &upd.ConnectionMode, &upd.MaxBackoff)
			if err != nil {
				return nil, fmt.Errorf("controller %q connection_mode and max_backoff: %w", target, err)
			}
			ops = append(ops, op...)
		}
	}

	// Bridge columns, set as a whole where vpcflow owns the value.
	want := &vswitchd.Bridge{UUID: cur.UUID}
	var fields []any
	if !sameSet(cur.Protocols, protocols13()) {
		want.Protocols = protocols13()
		fields = append(fields, &want.Protocols)
	}
	if cur.FailMode == nil || *cur.FailMode != vswitchd.BridgeFailModeSecure {
		fm := vswitchd.BridgeFailModeSecure
		want.FailMode = &fm
		fields = append(fields, &want.FailMode)
	}
	if opts.DatapathType != "" && cur.DatapathType != opts.DatapathType {
		want.DatapathType = opts.DatapathType
		fields = append(fields, &want.DatapathType)
	}
	if !sameSet(cur.Controller, wantCtls) {
		want.Controller = wantCtls
		fields = append(fields, &want.Controller)
	}
	for _, f := range fields {
		switch f {
		case &want.Protocols:
			rec.bridgeColumns = append(rec.bridgeColumns, "protocols")
		case &want.FailMode:
			rec.bridgeColumns = append(rec.bridgeColumns, "fail_mode")
		case &want.DatapathType:
			rec.bridgeColumns = append(rec.bridgeColumns, "datapath_type")
		case &want.Controller:
			rec.bridgeColumns = append(rec.bridgeColumns, "controller")
		}
	}
	if len(fields) > 0 {
		op, err := c.Where(want).Update(want, fields...)
		if err != nil {
			return nil, fmt.Errorf("updating bridge columns: %w", err)
		}
		ops = append(ops, op...)
	}

	// other_config is shared with other users: replace just our key, so a
	// concurrent change to another key is not lost.
	if cur.OtherConfig[disableInBandKey] != disableInBandVal {
		rec.disableInBand = true
		op, err := c.Where(want).Mutate(want,
			model.Mutation{Field: &want.OtherConfig, Mutator: ovsdb.MutateOperationDelete, Value: []string{disableInBandKey}},
			model.Mutation{Field: &want.OtherConfig, Mutator: ovsdb.MutateOperationInsert, Value: map[string]string{disableInBandKey: disableInBandVal}},
		)
		if err != nil {
			return nil, fmt.Errorf("setting other_config:%s: %w", disableInBandKey, err)
		}
		ops = append(ops, op...)
	}
	return ops, nil
}

func sameSet[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	seen := make(map[T]int, len(a))
	for _, x := range a {
		seen[x]++
	}
	for _, x := range b {
		if seen[x] == 0 {
			return false
		}
		seen[x]--
	}
	return true
}
