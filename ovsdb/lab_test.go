package ovsdb

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/vpcflow/vpcflow/e2e/netlab"
)

// Tests run against real Open vSwitch through e2e/netlab: a private
// ovsdb-server (and ovs-vswitchd where ofports and datapath ids matter) in
// a network namespace of the test's own, removed when the test ends. They
// are skipped where that cannot run, and fail instead with VPCFLOW_E2E=1.

// testOVS is a netlab OVS bound to its test, for short ovs-vsctl calls.
type testOVS struct {
	*netlab.OVS
	t        *testing.T
	endpoint string // unix:… of ovsdb-server
}

// startOVSDB runs ovsdb-server alone: nothing assigns ofports or dpids.
func startOVSDB(t *testing.T) *testOVS {
	t.Helper()
	return bindOVS(t, netlab.NewOVS(t, netlab.WithoutVswitchd()))
}

// startOVS runs ovsdb-server and ovs-vswitchd.
func startOVS(t *testing.T) *testOVS {
	t.Helper()
	return bindOVS(t, netlab.NewOVS(t))
}

func bindOVS(t *testing.T, o *netlab.OVS) *testOVS {
	return &testOVS{OVS: o, t: t, endpoint: o.DBEndpoint()}
}

// vsctl runs ovs-vsctl and returns its trimmed output; an error fails the
// test.
func (o *testOVS) vsctl(args ...string) string {
	o.t.Helper()
	return o.MustVsctl(o.t, args...)
}

func testLogger(t *testing.T) *zap.Logger {
	return zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// withTimeout is a context that ends after d or with the test.
func withTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func dpidHex(d uint64) string { return fmt.Sprintf("%016x", d) }

func itoa(i int) string { return strconv.Itoa(i) }
