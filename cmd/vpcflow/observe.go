package main

import (
	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/api"
	"github.com/vpcflow/vpcflow/controller"
	"github.com/vpcflow/vpcflow/metrics"
)

// observability is what `vpcflow serve` adds for operators: Prometheus
// metrics at /metrics, packet traces at POST /v1/trace.
type observability struct {
	log     *zap.Logger
	metrics *metrics.Metrics
	ctrl    *controller.Controller
}

// newObservability builds the metrics registry and hooks it into the
// configuration of the controller and of the OpenFlow server.
func newObservability(log *zap.Logger, cfg *serveConfig) *observability {
	o := &observability{log: log, metrics: metrics.New()}
	cfg.Controller.Observer = o.metrics.Controller()
	cfg.openflowOptions.Observer = o.metrics.OpenFlow()
	return o
}

// attach registers what reads the controller at scrape time.
func (o *observability) attach(ctrl *controller.Controller) {
	o.ctrl = ctrl
	if err := o.metrics.Register(metrics.NewFlowCollector(ctrl, o.log, metrics.FlowOptions{})); err != nil {
		o.log.Error("registering the flow collector", zap.Error(err))
	}
	if err := o.metrics.Register(metrics.NewDriftCollector(ctrl.Drift)); err != nil {
		o.log.Error("registering the drift collector", zap.Error(err))
	}
}

// apiOptions adds the API's hooks to opts.
func (o *observability) apiOptions(opts api.Options) api.Options {
	opts.Observer = o.metrics
	opts.Metrics = o.metrics.Handler(o.log)
	opts.Tracer = o.ctrl
	return opts
}
