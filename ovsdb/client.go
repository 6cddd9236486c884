package ovsdb

import (
	"crypto/tls"
	"errors"
	"fmt"

	"github.com/go-logr/logr"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/ovsdb/vswitchd"
)

// ErrTLSRequired is returned for an ssl: endpoint when no TLS configuration
// was given (see WithTLS).
var ErrTLSRequired = errors.New("an ssl: OVSDB endpoint needs a TLS configuration: a client certificate and key, and the CA that signed the server's certificate")

// ConnOption tunes how Monitor, SetupBridge and EnsureTunnelPort connect to
// an OVSDB server.
type ConnOption func(*connOptions)

type connOptions struct {
	tls *tls.Config
}

// WithTLS sets the TLS configuration used for ssl: endpoints: the client
// certificate vpcflow presents (ovsdb-server, configured with --ca-cert,
// requires one) and the RootCAs that ovsdb-server's certificate is checked
// against. The server's certificate must be valid for the endpoint's host
// (an IP SAN for ssl:192.0.2.1:6640) unless cfg.ServerName says
// otherwise. unix: and tcp: endpoints ignore it; nil means none. cfg is
// cloned, so later changes to it have no effect.
func WithTLS(cfg *tls.Config) ConnOption {
	return func(o *connOptions) {
		if cfg == nil {
			o.tls = nil
			return
		}
		o.tls = cfg.Clone()
	}
}

func applyConnOptions(opts []ConnOption) connOptions {
	var o connOptions
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	return o
}

// checkUsable reports an endpoint that can never be connected to with
// these options: ssl: without a TLS configuration.
func (o connOptions) checkUsable(ep Endpoint) error {
	if ep.Network == NetworkSSL && o.tls == nil {
		return fmt.Errorf("%s: %w", ep, ErrTLSRequired)
	}
	return nil
}

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
func newClient(log *zap.Logger, ep Endpoint, dbModel model.ClientDBModel, co connOptions) (client.Client, error) {
	if err := co.checkUsable(ep); err != nil {
		return nil, err
	}
	l := logr.New(&zapSink{log: log.Named("libovsdb")})
	opts := []client.Option{client.WithEndpoint(libovsdbAddress(ep)), client.WithLogger(&l)}
	if ep.Network == NetworkSSL {
		// libovsdb dials with tls.Dialer, which checks the server's
		// certificate against the endpoint's host unless ServerName is set.
		opts = append(opts, client.WithTLSConfig(co.tls))
	}
	c, err := client.NewOVSDBClient(dbModel, opts...)
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
