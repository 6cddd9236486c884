package topology

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"
)

// On-disk layout of the bbolt backend: one file DIR/vpcflow.db with a
// bucket per object kind (named as the kind: vpc, vswitch, host, subnet,
// chassis), keyed by Object.Key, JSON values, and a meta bucket holding the
// schema version and the last ID of each kind.
//
// Schema history: 1 had no chassis bucket; 2 adds it (and hosts may carry
// "chassis"). A version 1 store is upgraded in place when it is opened, and
// an older vpcflow then refuses it rather than misread chassis hosts.
const (
	// DBFileName is the store's file inside its directory.
	DBFileName = "vpcflow.db"
	// SchemaVersion is the on-disk layout version this code writes. It
	// also reads (and upgrades) version 1.
	SchemaVersion = "2"
	schemaV1      = "1"

	bucketMeta  = "meta"
	metaSchema  = "schema"
	metaLastID  = "last_id/" // + kind name
	openTimeout = 5 * time.Second
	dirPerm     = 0o700
	dbFilePerm  = 0o600
)

// Bolt is the default Backend: an embedded bbolt file on this machine.
type Bolt struct {
	path string
	db   *bolt.DB
}

// OpenBolt opens (creating if needed) DIR/vpcflow.db.
func OpenBolt(ctx context.Context, dir string, log *zap.Logger) (*Bolt, error) {
	if log == nil {
		log = zap.NewNop()
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open topology store: %w", err)
	}
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return nil, fmt.Errorf("open topology store: create directory: %w", err)
	}
	path := filepath.Join(dir, DBFileName)
	db, err := bolt.Open(path, dbFilePerm, &bolt.Options{
		Timeout: openTimeout,
		// As etcd does: the freelist is not written on every commit (it grows
		// with the file and made large stores slow to commit) but rebuilt
		// on open; what is committed is as durable as before.
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("open topology store %s: file is locked (is another vpcflow running?): %w", path, err)
		}
		return nil, fmt.Errorf("open topology store %s: %w", path, err)
	}
	from, err := initBuckets(db)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open topology store %s: %w", path, err)
	}
	if from != "" {
		log.Info("topology store upgraded", zap.String("path", path),
			zap.String("from_schema", from), zap.String("to_schema", SchemaVersion))
	}
	return &Bolt{path: path, db: db}, nil
}

// Path is the bbolt file.
func (b *Bolt) Path() string { return b.path }

func (b *Bolt) String() string { return "bbolt " + b.path }

// Close closes the file.
func (b *Bolt) Close() error { return b.db.Close() }

// initBuckets creates the buckets a new store needs, and upgrades an older
// schema. It returns the schema version it upgraded from, if it did.
func initBuckets(db *bolt.DB) (upgradedFrom string, err error) {
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists([]byte(bucketMeta))
		if err != nil {
			return fmt.Errorf("create bucket %s: %w", bucketMeta, err)
		}
		switch v := meta.Get([]byte(metaSchema)); {
		case v == nil:
			// A new store.
		case string(v) == schemaV1:
			// Version 1 had no chassis bucket; creating it below is the
			// whole upgrade.
			upgradedFrom = schemaV1
		case string(v) != SchemaVersion:
			return fmt.Errorf("schema version %q is not supported (this vpcflow reads %q and %q)", v, schemaV1, SchemaVersion)
		}
		for _, k := range KindNames() {
			if _, err := tx.CreateBucketIfNotExists([]byte(k)); err != nil {
				return fmt.Errorf("create bucket %s: %w", k, err)
			}
		}
		if string(meta.Get([]byte(metaSchema))) != SchemaVersion {
			if err := meta.Put([]byte(metaSchema), []byte(SchemaVersion)); err != nil {
				return fmt.Errorf("write schema version: %w", err)
			}
		}
		return nil
	})
	return upgradedFrom, err
}

// Load reads every bucket.
func (b *Bolt) Load(ctx context.Context) (Snapshot, error) {
	snap := Snapshot{LastIDs: map[string]uint32{}}
	if err := ctx.Err(); err != nil {
		return snap, err
	}
	err := b.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket([]byte(bucketMeta))
		for _, k := range KindNames() {
			if v := meta.Get([]byte(metaLastID + k)); v != nil {
				if len(v) != 4 {
					return fmt.Errorf("meta %s%s: want 4 bytes, have %d", metaLastID, k, len(v))
				}
				snap.LastIDs[k] = binary.BigEndian.Uint32(v)
			}
			err := tx.Bucket([]byte(k)).ForEach(func(key, val []byte) error {
				snap.Records = append(snap.Records, Record{Kind: k, Key: string(key), Value: append([]byte(nil), val...)})
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Snapshot{}, fmt.Errorf("read %s: %w", b.path, err)
	}
	return snap, nil
}

// Commit writes records and counters in one fsynced transaction.
func (b *Bolt) Commit(ctx context.Context, c Commit) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := b.db.Update(func(tx *bolt.Tx) error {
		for _, r := range c.Records {
			bk := tx.Bucket([]byte(r.Kind))
			if bk == nil {
				return fmt.Errorf("no bucket for kind %q", r.Kind)
			}
			var err error
			if r.Value == nil {
				err = bk.Delete([]byte(r.Key))
			} else {
				err = bk.Put([]byte(r.Key), r.Value)
			}
			if err != nil {
				return fmt.Errorf("write %s %s: %w", r.Kind, r.Key, err)
			}
		}
		meta := tx.Bucket([]byte(bucketMeta))
		for _, k := range KindNames() {
			var v [4]byte
			binary.BigEndian.PutUint32(v[:], c.LastIDs[k])
			if err := meta.Put([]byte(metaLastID+k), v[:]); err != nil {
				return fmt.Errorf("write %s counter: %w", k, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("write %s: %w", b.path, err)
	}
	return nil
}
