package controllertest

import (
	"context"
	"sync"

	"github.com/vpcflow/vpcflow/topology"
)

// Chassis is a controller.ChassisConfigurer for tests about validation,
// storage and flows: it configures nothing and records what it was asked.
// What configuring a real chassis does is tested against OVS in ovsdb/
// and e2e/.
type Chassis struct {
	mu     sync.Mutex
	setups []string
	undone []string
	// Err, when set, refuses every setup.
	Err error
}

// Setup records the chassis.
func (c *Chassis) Setup(_ context.Context, ch topology.Chassis, _ []string) (func(context.Context) error, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.Err != nil {
		return nil, c.Err
	}
	c.setups = append(c.setups, ch.Name)
	return func(context.Context) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.undone = append(c.undone, ch.Name)
		return nil
	}, nil
}

// Setups lists the chassis set up, and those undone, in order.
func (c *Chassis) Setups() (setup, undone []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.setups...), append([]string(nil), c.undone...)
}
