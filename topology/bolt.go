package topology

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"
)

// On-disk layout of the bbolt backend: one file DIR/vpcflow.db with a
// bucket per object kind (named as the kind: vpc, vswitch, host, subnet,
// chassis), keyed by Object.Key, JSON values, and a meta bucket holding the
// schema version, the last ID of each kind and the last checkpoint of the
// write-ahead log beside the file (DIR/vpcflow.db-wal, wal.go).
//
// Schema history: 1 had no chassis bucket; 2 adds it (and hosts may carry
// "chassis"); 3 adds security groups, their rules and DHCP options sets
// (and hosts may carry "security_groups", "ct_zone", "ovsdb"); 4 adds
// uplinks, NAT gateways, SNAT and DNAT entries and EIPs. An older
// store is backed up (vpcflow.db.schemaN.bak) and upgraded in place when
// it is opened, and an older vpcflow then refuses it rather than misread
// it.
const (
	// DBFileName is the store's file inside its directory.
	DBFileName = "vpcflow.db"
	// WALFileName is its write-ahead log beside it (wal.go).
	WALFileName = DBFileName + walSuffix
	// SchemaVersion is the on-disk layout version this code writes. It
	// also reads (and upgrades) version 1.
	SchemaVersion = "4"
	schemaV1      = "1"
	schemaV2      = "2"
	schemaV3      = "3"

	bucketMeta  = "meta"
	metaSchema  = "schema"
	metaLastID  = "last_id/" // + kind name
	openTimeout = 5 * time.Second
	// initialMmapSize holds the store of ~300,000 hosts with their route
	// entries before bbolt remaps (doubling) as the file grows.
	initialMmapSize = 256 << 20
	dirPerm         = 0o700
	dbFilePerm      = 0o600
)

// Bolt is the default Backend: an embedded bbolt file on this machine.
type Bolt struct {
	path string
	db   *bolt.DB
	// mu serializes commits, checkpoints and Close over the write-ahead
	// log (wal.go).
	mu  sync.Mutex
	wal boltWAL
	log *zap.Logger
}

// OpenBolt opens DIR/vpcflow.db. It creates the directory and the store
// when they are missing, unless Existing() is given: then a missing
// directory or file is ErrNoStore. A file that is not a whole vpcflow
// store (truncated, random bytes, damaged pages bbolt trips over) is
// ErrCorrupt, never a panic. A schema 1 store is copied to
// vpcflow.db.schema1.bak (schema 2, 3: .schema2.bak, .schema3.bak) before
// it is upgraded.
func OpenBolt(ctx context.Context, dir string, log *zap.Logger, opts ...OpenOption) (*Bolt, error) {
	var oo openOptions
	for _, o := range opts {
		o(&oo)
	}
	if log == nil {
		log = zap.NewNop()
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open topology store: %w", err)
	}
	path := filepath.Join(dir, DBFileName)
	if oo.existing {
		if err := checkDir(dir); err != nil {
			return nil, fmt.Errorf("open topology store: %w", err)
		}
	} else if err := os.MkdirAll(dir, dirPerm); err != nil {
		return nil, fmt.Errorf("open topology store: create directory: %w", err)
	}
	if err := CheckFile(path); err != nil && (oo.existing || !errors.Is(err, ErrNoStore)) {
		if errors.Is(err, ErrNoStore) {
			err = fmt.Errorf("%w (create it with `vpcflow init` or `vpcflow serve --init`)", err)
		}
		return nil, fmt.Errorf("open topology store: %w", err)
	}
	var db *bolt.DB
	err := guard(path, func() error {
		var err error
		db, err = bolt.Open(path, dbFilePerm, &bolt.Options{
			Timeout: openTimeout,
			// As etcd does: the freelist is not written on every commit (it grows
			// with the file and made large stores slow to commit) but rebuilt
			// on open; what is committed is as durable as before.
			NoFreelistSync: true,
			FreelistType:   bolt.FreelistMapType,
			// Address space for the file to grow into without remapping:
			// each remap copied every node of the committing transaction
			// out of the old map and blocked readers (7 % of the heap a
			// 1,000-host bulk load allocated, issue 17). Only the pages
			// read take memory; etcd reserves 10 GiB the same way.
			InitialMmapSize: initialMmapSize,
		})
		return err
	})
	if err != nil {
		switch {
		case errors.Is(err, bolt.ErrTimeout):
			return nil, fmt.Errorf("open topology store %s: file is locked (is another vpcflow running?): %w", path, err)
		case errors.Is(err, ErrCorrupt):
			return nil, fmt.Errorf("open topology store: %w", err)
		case errors.Is(err, bolt.ErrInvalid), errors.Is(err, bolt.ErrChecksum), errors.Is(err, bolt.ErrVersionMismatch):
			return nil, fmt.Errorf("open topology store: %w: %s: %v", ErrCorrupt, path, err)
		}
		return nil, fmt.Errorf("open topology store %s: %w", path, err)
	}
	schema, err := readSchema(path, db)
	if err == nil && oo.existing && schema == "" {
		err = fmt.Errorf("%w: %s is a bbolt file but was never initialised by vpcflow (no schema version; `vpcflow init` initialises it)", ErrCorrupt, path)
	}
	if err == nil && (schema == schemaV1 || schema == schemaV2 || schema == schemaV3) {
		backup := path + ".schema" + schema + ".bak"
		err = guard(path, func() error {
			return db.View(func(tx *bolt.Tx) error { return tx.CopyFile(backup, dbFilePerm) })
		})
		if err != nil {
			err = fmt.Errorf("backing the schema %s store up to %s before upgrading it: %w", schema, backup, err)
		} else {
			log.Info("topology store backed up before its upgrade", zap.String("backup", backup))
		}
	}
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open topology store: %w", err)
	}
	var from string
	err = guard(path, func() error {
		var err error
		from, err = initBuckets(db)
		return err
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open topology store %s: %w", path, err)
	}
	if from != "" {
		log.Info("topology store upgraded", zap.String("path", path),
			zap.String("from_schema", from), zap.String("to_schema", SchemaVersion))
	}
	b := &Bolt{path: path, db: db, log: log}
	if err := b.openWAL(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open topology store: %w", err)
	}
	return b, nil
}

// readSchema returns the store's schema version, "" for a bbolt file
// vpcflow never initialised.
func readSchema(path string, db *bolt.DB) (string, error) {
	var v string
	err := guard(path, func() error {
		return db.View(func(tx *bolt.Tx) error {
			if meta := tx.Bucket([]byte(bucketMeta)); meta != nil {
				v = string(meta.Get([]byte(metaSchema)))
			}
			return nil
		})
	})
	return v, err
}

// Path is the bbolt file.
func (b *Bolt) Path() string { return b.path }

func (b *Bolt) String() string { return "bbolt " + b.path }

// Close checkpoints the write-ahead log into the file and closes both: a
// store closed cleanly is whole in its file.
func (b *Bolt) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.wal.closed {
		return nil
	}
	if b.wal.quiet != nil {
		b.wal.quiet.Stop()
	}
	var err error
	if b.wal.recs > 0 {
		err = b.checkpoint(nil)
	}
	b.wal.closed = true
	return errors.Join(err, b.wal.f.Close(), b.db.Close())
}

// DropMappedPages takes the pages of the memory map that commits read
// (the tree's branches they walk) out of resident memory again, as
// loading does: with the map reserved up front (initialMmapSize) nothing
// else ever drops them, and a bulk load of 100,000 hosts left ~3.5 MiB
// (35 bytes a host) resident.
func (b *Bolt) DropMappedPages() {
	_ = b.db.View(func(tx *bolt.Tx) error {
		dropMappedPages(b.db, tx)
		return nil
	})
}

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
		case string(v) == schemaV1, string(v) == schemaV2, string(v) == schemaV3:
			// Version 1 had no chassis bucket, version 2 no security group,
			// rule or DHCP options buckets, version 3 none for the NAT
			// kinds; creating them below is the
			// whole upgrade. An older vpcflow refuses the upgraded store
			// rather than load it without the kinds it does not know (and
			// silently drop the filtering of security groups).
			upgradedFrom = string(v)
		case string(v) != SchemaVersion:
			return fmt.Errorf("the store has schema version %q, written by a newer vpcflow; this one reads schema %q, %q, %q and %q: run the newer vpcflow, or restore a backup", v, schemaV1, schemaV2, schemaV3, SchemaVersion)
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

// Load reads every bucket, after a checkpoint of the write-ahead log's
// changes into them.
func (b *Bolt) Load(ctx context.Context) (Snapshot, error) {
	snap := Snapshot{LastIDs: map[string]uint32{}}
	if err := ctx.Err(); err != nil {
		return snap, err
	}
	if err := b.checkpointLogged(); err != nil {
		return Snapshot{}, fmt.Errorf("read %s: %w", b.path, err)
	}
	err := guard(b.path, func() error {
		return b.db.View(func(tx *bolt.Tx) error {
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
			dropMappedPages(b.db, tx)
			return nil
		})
	})
	if err != nil {
		return Snapshot{}, fmt.Errorf("read %s: %w", b.path, err)
	}
	return snap, nil
}

// Commit writes records and counters, all or nothing, durable when it
// returns: a small change as a record of the write-ahead log (one
// fdatasync), a big one straight into the file (bbolt's transaction, with
// the log's changes before it).
func (b *Bolt) Commit(ctx context.Context, c Commit) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	w := &b.wal
	if w.closed {
		return ErrClosed
	}
	if n := walRecordSize(c); w.stale == nil && n <= walMaxRecord && w.size+int64(n) <= w.max {
		return b.appendWAL(c)
	}
	return b.checkpoint(&c)
}

// Backup writes a consistent copy of the bbolt file to w while it stays in
// use (one read transaction: changes committed after it started are not
// in the copy). The copy is a store Open can open. The write-ahead log's
// changes are checkpointed into the file first, and its token is retired
// after the copy: a log never follows a backup (restoring one must not
// replay the changes made after it).
func (b *Bolt) Backup(w io.Writer) (int64, error) {
	if err := b.checkpointLogged(); err != nil {
		return 0, fmt.Errorf("backup of %s: %w", b.path, err)
	}
	var n int64
	err := b.db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("backup of %s: %w", b.path, err)
	}
	b.mu.Lock()
	err = b.checkpoint(nil)
	b.mu.Unlock()
	if err != nil {
		return n, fmt.Errorf("backup of %s: retire its checkpoint: %w", b.path, err)
	}
	return n, nil
}
