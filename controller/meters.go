package controller

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/openflow"
)

// reconcileMeters makes dp hold the meters the pipeline declares (every
// switch holds the same ones): it reads what the switch has, adds what is
// missing and modifies what differs. Meters vpcflow does not declare are
// left alone, and a meter is never deleted and re-added: deleting a meter
// deletes every flow that uses it. It runs before a reconciliation's
// flows, which use the meters. It returns how many meters it added and
// modified.
func reconcileMeters(ctx context.Context, dp Datapath, pipe *pipeline.Pipeline, log *zap.Logger) (added, modified int, err error) {
	want := pipe.MeterConfigs()
	if len(want) == 0 {
		return 0, 0, nil
	}
	have, err := dumpMeters(ctx, dp, want)
	if err != nil {
		return 0, 0, err
	}
	for _, m := range want {
		cur, ok := have[m.ID]
		switch {
		case !ok:
			if err := dp.AddMeter(ctx, m); err != nil {
				return added, modified, fmt.Errorf("adding meter %d: %w", m.ID, err)
			}
			added++
		case cur != m:
			log.Info("meter differs from the pipeline's; modifying it", zap.Uint32("meter", m.ID),
				zap.String("found", cur.String()), zap.String("want", m.String()))
			if err := dp.ModifyMeter(ctx, m); err != nil {
				return added, modified, fmt.Errorf("modifying meter %d: %w", m.ID, err)
			}
			modified++
		}
	}
	return added, modified, nil
}

// dumpMeters reads the switch's meters by id. When the switch holds a
// meter vpcflow cannot read (several bands, say, set by hand), the whole
// dump fails; the declared meters are then read one by one, and one that
// cannot be read is reported as different so that it is modified.
func dumpMeters(ctx context.Context, dp Datapath, want []openflow.MeterConfig) (map[uint32]openflow.MeterConfig, error) {
	have := map[uint32]openflow.MeterConfig{}
	all, err := dp.DumpMeters(ctx, openflow.MeterAll)
	if err == nil {
		for _, m := range all {
			have[m.ID] = m
		}
		return have, nil
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("reading meters: %w", err)
	}
	for _, m := range want {
		one, err := dp.DumpMeters(ctx, m.ID)
		switch {
		case err != nil && ctx.Err() != nil:
			return nil, fmt.Errorf("reading meter %d: %w", m.ID, err)
		case err != nil:
			have[m.ID] = openflow.MeterConfig{ID: m.ID} // unreadable: modify it
		case len(one) == 1:
			have[m.ID] = one[0]
		}
	}
	return have, nil
}
