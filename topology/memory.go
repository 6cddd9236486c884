package topology

import (
	"context"
	"sync"
)

// Memory is a Backend that keeps nothing durable: for tools that compute
// what vpcflow would do with a topology (the benchmark's reference flows)
// and for tests that are not about persistence.
type Memory struct {
	mu      sync.Mutex
	records map[[2]string][]byte
	lastIDs map[string]uint32
}

// NewMemory returns an empty in-memory backend.
func NewMemory() *Memory {
	return &Memory{records: map[[2]string][]byte{}, lastIDs: map[string]uint32{}}
}

func (m *Memory) String() string { return "memory" }

// Load returns what was committed.
func (m *Memory) Load(context.Context) (Snapshot, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	snap := Snapshot{LastIDs: copyIDs(m.lastIDs)}
	for k, v := range m.records {
		snap.Records = append(snap.Records, Record{Kind: k[0], Key: k[1], Value: v})
	}
	return snap, nil
}

// Commit applies a change.
func (m *Memory) Commit(_ context.Context, c Commit) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range c.Records {
		if r.Value == nil {
			delete(m.records, [2]string{r.Kind, r.Key})
		} else {
			m.records[[2]string{r.Kind, r.Key}] = r.Value
		}
	}
	m.lastIDs = copyIDs(c.LastIDs)
	return nil
}

// Close does nothing.
func (m *Memory) Close() error { return nil }
