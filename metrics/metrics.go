// Package metrics is vpcflow's Prometheus instrumentation: its own
// registry (never the global one), hooks the OpenFlow connection layer
// (openflow.Observer), the runtime (controller.Observer) and the REST API
// (api.Options.Observer) call, and a Collector that reads the switches'
// flow statistics at scrape time and names them in VPC terms.
//
// Every name is vpcflow_… in base units (seconds, bytes). No label holds
// an IP address, a MAC or a cookie: flows are summed by VPC, vSwitch and
// drop reason, switches are named by dpid, and REST requests by route
// template ("/v1/vpcs/{vpc}/hosts"), so the number of series grows with
// the number of VPCs and vSwitches, never with hosts or packets.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/openflow"
)

// Metrics holds vpcflow's registry and the instruments the hooks update.
type Metrics struct {
	reg *prometheus.Registry

	switches      prometheus.Gauge
	connections   prometheus.Counter
	disconnects   prometheus.Counter
	handshakeFail prometheus.Counter
	echoRTT       prometheus.Histogram
	messages      *prometheus.CounterVec
	ofErrors      *prometheus.CounterVec

	flowOps      *prometheus.CounterVec
	pushDuration prometheus.Histogram
	pushFailures prometheus.Counter
	reconcile    *prometheus.HistogramVec
	packetIns    *prometheus.CounterVec

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
}

// New builds the registry with the Go and process collectors and every
// instrument vpcflow updates. Register the scrape-time collector with
// Register(NewFlowCollector(…)).
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := factory{m.reg}
	m.switches = f.gauge("vpcflow_openflow_switches_connected", "OpenFlow switches connected now (handshake done).")
	m.connections = f.counter("vpcflow_openflow_connections_total", "OpenFlow switch connections that finished their handshake.")
	m.disconnects = f.counter("vpcflow_openflow_disconnections_total", "OpenFlow switch connections that closed after their handshake.")
	m.handshakeFail = f.counter("vpcflow_openflow_handshake_failures_total", "OpenFlow connections that closed before their handshake finished.")
	m.echoRTT = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "vpcflow_openflow_echo_rtt_seconds",
		Help:    "Round trip of the keepalive echo requests to the switches.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 4, 9)})
	m.reg.MustRegister(m.echoRTT)
	m.messages = f.counterVec("vpcflow_openflow_messages_total", "OpenFlow messages by direction (in: from switches, out: to them) and type.", "direction", "type")
	for _, k := range openflow.MessageKinds() {
		m.messages.WithLabelValues("in", k)
		m.messages.WithLabelValues("out", k)
	}
	m.ofErrors = f.counterVec("vpcflow_openflow_errors_total", "OFPT_ERROR messages from switches, by error type.", "type")
	m.flowOps = f.counterVec("vpcflow_flow_ops_total", "Flow-mods confirmed by switches, by operation (add: add or replace, delete: strict delete).", "op")
	m.flowOps.WithLabelValues("add")
	m.flowOps.WithLabelValues("delete")
	m.pushDuration = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "vpcflow_flow_push_duration_seconds",
		Help:    "Time from sending a batch of flow-mods to the switch's confirmation.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10)})
	m.reg.MustRegister(m.pushDuration)
	m.pushFailures = f.counter("vpcflow_flow_push_failures_total", "Batches of flow-mods a switch refused or did not confirm in time.")
	m.reconcile = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "vpcflow_reconcile_duration_seconds",
		Help:    "Full reconciliations of a switch (dump, diff, apply), by result.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}, []string{"result"})
	m.reg.MustRegister(m.reconcile)
	m.packetIns = f.counterVec("vpcflow_packet_ins_total", "Packet-ins the controller handled, by the reason the pipeline sent them.", "reason")
	m.httpRequests = f.counterVec("vpcflow_http_requests_total", "REST requests by route template, method and status code.", "route", "method", "code")
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "vpcflow_http_request_duration_seconds",
		Help:    "REST request latency by route template and method.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10)}, []string{"route", "method"})
	m.reg.MustRegister(m.httpDuration)
	return m
}

// Registry is the registry the metrics live in.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Register adds a collector (e.g. the FlowCollector) to the registry.
func (m *Metrics) Register(c prometheus.Collector) error { return m.reg.Register(c) }

// Handler serves the registry in the Prometheus text format (GET /metrics).
func (m *Metrics) Handler(log *zap.Logger) http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      zap.NewStdLog(log),
		ErrorHandling: promhttp.ContinueOnError,
	})
}

type factory struct{ reg *prometheus.Registry }

func (f factory) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	f.reg.MustRegister(g)
	return g
}

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	f.reg.MustRegister(c)
	return c
}

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	f.reg.MustRegister(c)
	return c
}

// ---- openflow.Observer ----

// OpenFlow is the hook for openflow.ServerOptions.Observer.
func (m *Metrics) OpenFlow() openflow.Observer { return ofObserver{m} }

type ofObserver struct{ m *Metrics }

func (o ofObserver) SwitchConnected(uint64) {
	o.m.switches.Inc()
	o.m.connections.Inc()
}

func (o ofObserver) SwitchDisconnected(uint64) {
	o.m.switches.Dec()
	o.m.disconnects.Inc()
}

func (o ofObserver) HandshakeFailed() { o.m.handshakeFail.Inc() }

func (o ofObserver) Messages(in bool, kind string, n int) {
	dir := "out"
	if in {
		dir = "in"
	}
	o.m.messages.WithLabelValues(dir, kind).Add(float64(n))
}

func (o ofObserver) Error(t string)            { o.m.ofErrors.WithLabelValues(t).Inc() }
func (o ofObserver) EchoRTT(rtt time.Duration) { o.m.echoRTT.Observe(rtt.Seconds()) }

// ---- controller.Observer ----

// Controller is the hook for controller.Options.Observer.
func (m *Metrics) Controller() ControllerObserver { return ControllerObserver{m} }

// ControllerObserver implements controller.Observer.
type ControllerObserver struct{ m *Metrics }

// FlowMods counts confirmed flow-mods and times the push.
func (o ControllerObserver) FlowMods(_ uint64, adds, deletes int, d time.Duration, err error) {
	if err != nil {
		o.m.pushFailures.Inc()
		return
	}
	o.m.flowOps.WithLabelValues("add").Add(float64(adds))
	o.m.flowOps.WithLabelValues("delete").Add(float64(deletes))
	o.m.pushDuration.Observe(d.Seconds())
}

// Reconciled times a reconciliation.
func (o ControllerObserver) Reconciled(_ uint64, d time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	o.m.reconcile.WithLabelValues(result).Observe(d.Seconds())
}

// PacketIn counts a handled packet-in.
func (o ControllerObserver) PacketIn(reason string) { o.m.packetIns.WithLabelValues(reason).Inc() }

// ---- REST ----

// Request records one REST request (the hook for api.Options.Observer).
func (m *Metrics) Request(route, method string, code int, d time.Duration) {
	m.httpRequests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
	m.httpDuration.WithLabelValues(route, method).Observe(d.Seconds())
}
