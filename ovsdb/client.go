package ovsdb

import (
	"errors"
	"fmt"

	"github.com/go-logr/logr"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/ovsdb/vswitchd"
)

// ErrSSLUnsupported is returned for ssl: endpoints until TLS configuration
// (private key, certificate, CA) is plumbed through.
var ErrSSLUnsupported = errors.New("ssl: OVSDB endpoints are not supported yet")

// databaseModel is the client-side model for the given subset of the
// Open_vSwitch database's tables. Keeping only the tables we use keeps
// libovsdb from validating and caching the rest.
func databaseModel(models ...model.Model) (model.ClientDBModel, error) {
	tables := make(map[string]model.Model, len(models))
	for _, m := range models {
		switch m.(type) {
		case *vswitchd.OpenvSwitch:
			tables[vswitchd.OpenvSwitchTable] = m
		case *vswitchd.Bridge:
			tables[vswitchd.BridgeTable] = m
		case *vswitchd.Port:
			tables[vswitchd.PortTable] = m
		case *vswitchd.Interface:
			tables[vswitchd.InterfaceTable] = m
		case *vswitchd.Controller:
			tables[vswitchd.ControllerTable] = m
		default:
			return model.ClientDBModel{}, fmt.Errorf("ovsdb: model %T is not one vpcflow uses", m)
		}
	}
	dbModel, err := model.NewClientDBModel("Open_vSwitch", tables)
	if err != nil {
		return model.ClientDBModel{}, fmt.Errorf("building Open_vSwitch client model: %w", err)
	}
	return dbModel, nil
}

// newClient builds (but does not connect) a libovsdb client for ep. It never
// enables libovsdb's own reconnect logic: that path panics when its backoff
// gives up and keeps retrying after Close, so Monitor reconnects itself with
// a fresh client (and a fresh cache) instead.
func newClient(log *zap.Logger, ep Endpoint, dbModel model.ClientDBModel) (client.Client, error) {
	if ep.Network == NetworkSSL {
		return nil, fmt.Errorf("%s: %w", ep, ErrSSLUnsupported)
	}
	l := logr.New(&zapSink{log: log.Named("libovsdb")})
	c, err := client.NewOVSDBClient(dbModel,
		client.WithEndpoint(libovsdbAddress(ep)),
		client.WithLogger(&l),
	)
	if err != nil {
		return nil, fmt.Errorf("creating OVSDB client for %s: %w", ep, err)
	}
	return c, nil
}

// zapSink adapts zap to the logr.LogSink that libovsdb logs through. libovsdb
// logs routine events at V(2)..V(5), which all map to zap's debug level; its
// errors (cache inconsistencies, failed echos) map to warnings, since each is
// handled (Monitor reconnects) rather than fatal.
type zapSink struct {
	log *zap.Logger
}

var _ logr.LogSink = (*zapSink)(nil)

func (s *zapSink) Init(logr.RuntimeInfo) {}

func (s *zapSink) Enabled(int) bool { return s.log.Core().Enabled(zap.DebugLevel) }

func (s *zapSink) Info(level int, msg string, kv ...any) {
	s.log.Debug(msg, append(fields(kv), zap.Int("v", level))...)
}

func (s *zapSink) Error(err error, msg string, kv ...any) {
	s.log.Warn(msg, append(fields(kv), zap.Error(err))...)
}

func (s *zapSink) WithValues(kv ...any) logr.LogSink {
	return &zapSink{log: s.log.With(fields(kv)...)}
}

func (s *zapSink) WithName(name string) logr.LogSink {
	return &zapSink{log: s.log.Named(name)}
}

func fields(kv []any) []zap.Field {
	out := make([]zap.Field, 0, len(kv)/2+1)
	for i := 0; i+1 < len(kv); i += 2 {
		key, ok := kv[i].(string)
		if !ok {
			key = fmt.Sprint(kv[i])
		}
		out = append(out, zap.Any(key, kv[i+1]))
	}
	if len(kv)%2 == 1 {
		out = append(out, zap.Any("!BADKEY", kv[len(kv)-1]))
	}
	return out
}
