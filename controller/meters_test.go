package controller

import (
	"context"
	"errors"
	"testing"

	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/controller/controllertest"
	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/openflow"
)

// TestMetersInstalledAndKept: a switch that connects gets the pipeline's
// meters; a reconnect with them in place sends no meter-mod; a meter
// changed by hand is modified back (never deleted: that would delete the
// flows that use it), a deleted one added back, and a foreign meter is
// left alone.
func TestMetersInstalledAndKept(t *testing.T) {
	r := newRig(t, Options{})
	want := pipeline.Default().MeterConfigs()
	if len(want) == 0 {
		t.Fatal("the pipeline declares no meter")
	}
	dp := controllertest.NewDatapath(1)
	r.connect(dp)
	if got := dp.Meters(); !sameMeters(got, want) {
		t.Fatalf("switch holds meters %v, want %v", got, want)
	}
	r.disconnect(1)
	before := dp.MeterMods()
	r.connect(dp)
	if n := dp.MeterMods() - before; n != 0 {
		t.Fatalf("reconnect sent %d meter-mods, want 0", n)
	}

	r.disconnect(1)
	changed := want[0]
	changed.Rate *= 10
	dp.PutMeter(changed)
	foreign := openflow.MeterConfig{ID: 4242, Rate: 5}
	dp.PutMeter(foreign)
	before = dp.MeterMods()
	r.connect(dp)
	if n := dp.MeterMods() - before; n != 1 {
		t.Errorf("repair sent %d meter-mods, want 1 (modify)", n)
	}
	got := dp.Meters()
	if !sameMeters(got, append(append([]openflow.MeterConfig{}, want...), foreign)) {
		t.Errorf("after repair the switch holds %v, want the pipeline's and the foreign one", got)
	}

	r.disconnect(1)
	dp.DeleteMeter(want[0].ID)
	r.connect(dp)
	if got := dp.Meters(); !sameMeters(got, append(append([]openflow.MeterConfig{}, want...), foreign)) {
		t.Errorf("deleted meter not restored: %v", got)
	}
}

// TestMeterFailureFailsReconciliation: a switch that refuses a meter is
// not listed as reconciled and is disconnected, like one refusing flows.
func TestMeterFailureFailsReconciliation(t *testing.T) {
	dp := controllertest.NewDatapath(1)
	dp.FailApply(errors.New("refused"))
	_, _, err := reconcileMeters(context.Background(), dp, pipeline.Default(), zap.NewNop())
	if err == nil {
		t.Fatal("reconcileMeters succeeded on a switch that refuses meter-mods")
	}
}

func sameMeters(a, b []openflow.MeterConfig) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[uint32]openflow.MeterConfig{}
	for _, x := range a {
		m[x.ID] = x
	}
	for _, y := range b {
		if m[y.ID] != y {
			return false
		}
	}
	return true
}
