package topology

import (
	"context"
	"fmt"
	"io"
	"os"
)

// Backup writes a consistent copy of the store to w while the store stays
// in use: for the default bbolt backend a copy of its file, taken in one
// read transaction; for a backend without a backup of its own (etcd) its
// content as of one revision (Load), written into a fresh bbolt store
// file. Either way the result is a store file Open (and `vpcflow
// restore`) takes.
func (s *Store) Backup(w io.Writer) (int64, error) {
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return 0, ErrClosed
	}
	if b, ok := s.backend.(interface {
		Backup(io.Writer) (int64, error)
	}); ok {
		return b.Backup(w)
	}
	return backupAsBolt(context.Background(), s.backend, w)
}

// backupAsBolt writes src's content into a bbolt store file in a private
// temporary directory and copies that file to w.
func backupAsBolt(ctx context.Context, src Backend, w io.Writer) (int64, error) {
	snap, err := src.Load(ctx)
	if err != nil {
		return 0, fmt.Errorf("backup of %s: %w", src, err)
	}
	dir, err := os.MkdirTemp("", "vpcflow-backup-")
	if err != nil {
		return 0, fmt.Errorf("backup of %s: %w", src, err)
	}
	defer os.RemoveAll(dir)
	b, err := OpenBolt(ctx, dir, nil)
	if err != nil {
		return 0, fmt.Errorf("backup of %s: %w", src, err)
	}
	defer b.Close()
	if err := b.Commit(ctx, Commit{Records: snap.Records, LastIDs: snap.LastIDs}); err != nil {
		return 0, fmt.Errorf("backup of %s: %w", src, err)
	}
	return b.Backup(w)
}
