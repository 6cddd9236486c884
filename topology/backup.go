package topology

import (
	"fmt"
	"io"
)

// Backup writes a consistent copy of the store to w while the store stays
// in use, in the backend's own format (for the default bbolt backend, a
// bbolt file Open can open).
func (s *Store) Backup(w io.Writer) (int64, error) {
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return 0, ErrClosed
	}
	b, ok := s.backend.(interface {
		Backup(io.Writer) (int64, error)
	})
	if !ok {
		return 0, fmt.Errorf("backup: the %s backend has no backup of its own", s.backend)
	}
	return b.Backup(w)
}
