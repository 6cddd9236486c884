package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vpcflow/vpcflow/controller"
)

// DriftCollector exports what the controller's periodic drift checks
// found and repaired (controller/drift.go), read at scrape time: the same
// counters as GET /v1/drift, never counted twice.
type DriftCollector struct {
	report func() controller.DriftReport

	flows, checks, skipped, repairs, repaired, held, errors *prometheus.Desc
	installed                                               *prometheus.Desc
}

// NewDriftCollector reads report (Controller.Drift) at every scrape.
func NewDriftCollector(report func() controller.DriftReport) *DriftCollector {
	sw := []string{"dpid"}
	return &DriftCollector{
		report: report,
		flows: prometheus.NewDesc("vpcflow_drift_flows_total",
			"Flows the periodic drift check found differing from the desired table, by kind (missing, unexpected, modified).",
			[]string{"dpid", "kind"}, nil),
		checks:    prometheus.NewDesc("vpcflow_drift_checks_total", "Drift checks run to the end.", sw, nil),
		skipped:   prometheus.NewDesc("vpcflow_drift_checks_skipped_total", "Drift checks put off because changes were queued for the switch.", sw, nil),
		repairs:   prometheus.NewDesc("vpcflow_drift_repairs_total", "Drift checks that sent flow-mods to repair the switch.", sw, nil),
		repaired:  prometheus.NewDesc("vpcflow_drift_repaired_flows_total", "Flow-mods sent by drift repairs.", sw, nil),
		held:      prometheus.NewDesc("vpcflow_drift_held_flows", "Flows kept on purpose at the last check (a much smaller store, see --allow-flush).", sw, nil),
		errors:    prometheus.NewDesc("vpcflow_drift_check_errors_total", "Drift checks that could not read the switch.", sw, nil),
		installed: prometheus.NewDesc("vpcflow_drift_installed_flows", "Flows in each of vpcflow's tables at the last drift check.", []string{"dpid", "table"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *DriftCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.flows, c.checks, c.skipped, c.repairs, c.repaired, c.held, c.errors, c.installed} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *DriftCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.report().Switches {
		dpid := s.DPID.String()
		counter := func(d *prometheus.Desc, v uint64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append([]string{dpid}, labels...)...)
		}
		counter(c.flows, s.Missing, "missing")
		counter(c.flows, s.Unexpected, "unexpected")
		counter(c.flows, s.Modified, "modified")
		counter(c.checks, s.Checks)
		counter(c.skipped, s.Skipped)
		counter(c.repairs, s.Repairs)
		counter(c.repaired, s.RepairedFlows)
		counter(c.errors, s.Errors)
		ch <- prometheus.MustNewConstMetric(c.held, prometheus.GaugeValue, float64(s.Held), dpid)
		for table, n := range s.Installed {
			ch <- prometheus.MustNewConstMetric(c.installed, prometheus.GaugeValue, float64(n), dpid, strconv.Itoa(int(table)))
		}
	}
}
