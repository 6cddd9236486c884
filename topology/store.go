package topology

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"
)

// On-disk layout: one bbolt file DIR/vpcflow.db with a bucket per object
// kind, keyed "vpc" (VPCs), "name" (chassis) or "vpc/name" (everything
// else), JSON values, and a meta bucket holding the schema version and the
// last ID of each kind.
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

// ErrClosed is returned by Apply and Check after Close.
var ErrClosed = errors.New("topology store is closed")

// Store keeps the topology in memory, with indexes, and on disk in bbolt.
// Every change is validated in memory, written in one fsynced bbolt
// transaction, and only then made visible to readers.
type Store struct {
	log  *zap.Logger
	path string

	// wmu serializes writers (Apply, Check, Close).
	wmu sync.Mutex
	// mu guards st and db: readers hold it shared, writers exclusively
	// from validation to the end of the disk write.
	mu sync.RWMutex
	st *State
	db *bolt.DB
}

// Open opens the store in dir and loads it into memory. It creates the
// directory and the store when they are missing, unless Existing() is
// given: then a missing directory or file is ErrNoStore. A file that is
// not a whole vpcflow store (truncated, random bytes, damaged pages bbolt
// trips over) is ErrCorrupt, never a panic. A schema 1 store is copied to
// vpcflow.db.schema1.bak before it is upgraded.
func Open(ctx context.Context, dir string, log *zap.Logger, opts ...OpenOption) (*Store, error) {
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
	start := time.Now()
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
	if err == nil && schema == schemaV1 {
		backup := path + ".schema1.bak"
		err = guard(path, func() error {
			return db.View(func(tx *bolt.Tx) error { return tx.CopyFile(backup, dbFilePerm) })
		})
		if err != nil {
			err = fmt.Errorf("backing the schema 1 store up to %s before upgrading it: %w", backup, err)
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
	var st *State
	err = guard(path, func() error {
		var err error
		st, err = load(db)
		return err
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open topology store %s: %w", path, err)
	}
	nv, nw, nh, ns := st.Counts()
	log.Info("topology store opened", zap.String("path", path),
		zap.Int("vpcs", nv), zap.Int("vswitches", nw), zap.Int("hosts", nh), zap.Int("subnets", ns),
		zap.Int("chassis", len(st.chassis)), zap.Duration("took", time.Since(start)))
	return &Store{log: log, path: path, st: st, db: db}, nil
}

// Path is the store's bbolt file.
func (s *Store) Path() string { return s.path }

// Close closes the on-disk store. Read keeps working on the last state;
// Apply fails with ErrClosed.
func (s *Store) Close() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return nil
	}
	err := s.db.Close()
	s.db = nil
	if err != nil {
		return fmt.Errorf("close topology store %s: %w", s.path, err)
	}
	return nil
}

// Read runs fn with the current state under a read lock. fn must not keep
// st (or call Apply) after it returns.
func (s *Store) Read(fn func(st *State)) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	fn(s.st)
}

// Apply validates ops in order, each seeing the ones before it, then writes
// them all in one bbolt transaction and publishes them; all or nothing.
// It returns the ops resolved: IDs and defaults filled in, deletes carrying
// the whole object, Old set (as a pointer of the object's type) on updates
// and deletes. A delete with Cascade is followed in the result by the
// deletes of everything it took with it (subnets, then hosts, then
// vSwitches, each sorted by name; a chassis takes the hosts attached to it
// and their subnets, sorted by VPC and name), so the result may be longer
// than ops.
// A rejected change is a *Error; inside a batch of more than one op its
// Field is prefixed with "[i]." (the op's index).
//
// Readers wait while Apply validates and writes (one fsync for a single
// op); they never see a change that is not on disk.
func (s *Store) Apply(ctx context.Context, ops []Op) ([]Op, error) {
	if len(ops) == 0 {
		return []Op{}, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("apply %d changes: %w", len(ops), err)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return nil, ErrClosed
	}
	start := time.Now()
	saved := s.st.lastID
	out, done, err := s.st.do(ops)
	undo := func() {
		s.st.undo(done)
		s.st.lastID = saved
	}
	if err != nil {
		undo()
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		undo()
		return nil, fmt.Errorf("apply %d changes: %w", len(ops), err)
	}
	if err := s.persist(out, s.st.lastID); err != nil {
		undo()
		return nil, fmt.Errorf("apply %d changes: %w", len(ops), err)
	}
	s.log.Debug("topology changed", zap.Int("ops", len(out)), zap.Duration("took", time.Since(start)))
	return out, nil
}

// Check validates ops exactly as Apply would and returns them resolved,
// without storing anything. IDs in the result are the ones Apply would
// hand out if nothing else changed first.
func (s *Store) Check(ctx context.Context, ops []Op) ([]Op, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("check %d changes: %w", len(ops), err)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return nil, ErrClosed
	}
	saved := s.st.lastID
	out, done, err := s.st.do(ops)
	s.st.undo(done)
	s.st.lastID = saved
	if err != nil {
		return nil, err
	}
	return out, nil
}

// do prepares and performs each op in turn, so later ops see earlier ones.
// The resolved ops share nothing with the state (mutate stores copies).
// out is the result: each op resolved, a cascading delete followed by the
// deletes of its dependents. done is what was performed, in the order it
// was performed (a cascade's dependents before the op itself); do returns
// it also when an op fails, and the caller undoes it (and restores lastID)
// unless it keeps the change.
func (st *State) do(ops []Op) (out, done []Op, err error) {
	out = make([]Op, 0, len(ops))
	done = make([]Op, 0, len(ops))
	for i, op := range ops {
		r, e := st.prepare(op)
		if e != nil {
			return out, done, inBatch(e, i, len(ops))
		}
		var deps []Op
		if r.Kind == OpDelete && r.Cascade {
			deps = st.dependents(r)
		}
		for _, d := range deps {
			st.mutate(d)
			done = append(done, d)
		}
		st.mutate(r)
		done = append(done, r)
		out = append(out, r)
		out = append(out, deps...)
	}
	return out, done, nil
}

// undo reverts performed ops, newest first.
func (st *State) undo(done []Op) {
	for i := len(done) - 1; i >= 0; i-- {
		st.mutate(inverse(done[i]))
	}
}

// inBatch prefixes an error's field with the op's index in a batch.
func inBatch(e *Error, i, n int) *Error {
	if n <= 1 {
		return e
	}
	c := *e
	if c.Field == "" {
		c.Field = fmt.Sprintf("[%d]", i)
	} else {
		c.Field = fmt.Sprintf("[%d].%s", i, c.Field)
	}
	return &c
}

// ---- persistence ----

// bucketName is the bucket of a kind: vpc, vswitch, host, subnet or
// chassis.
func bucketName(k objKind) []byte { return []byte(k.String()) }

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
			return fmt.Errorf("the store has schema version %q, written by a newer vpcflow; this one reads schema %q and %q: run the newer vpcflow, or restore a backup", v, schemaV1, SchemaVersion)
		}
		for k := objKind(0); k < numKinds; k++ {
			if _, err := tx.CreateBucketIfNotExists(bucketName(k)); err != nil {
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

// load reads the whole store into a fresh State.
func load(db *bolt.DB) (*State, error) {
	st := newState()
	err := db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket([]byte(bucketMeta))
		for k := objKind(0); k < numKinds; k++ {
			if v := meta.Get([]byte(metaLastID + k.String())); v != nil {
				if len(v) != 4 {
					return fmt.Errorf("meta %s%s: want 4 bytes, have %d", metaLastID, k, len(v))
				}
				st.lastID[k] = binary.BigEndian.Uint32(v)
			}
		}
		// Parents before children.
		for _, k := range loadOrder() {
			err := tx.Bucket(bucketName(k)).ForEach(func(key, val []byte) error {
				id, err := st.loadOne(k, string(key), val)
				if err != nil {
					return fmt.Errorf("%s %q: %w", k, key, err)
				}
				if id > st.lastID[k] {
					st.lastID[k] = id
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	return st, nil
}

// loadOne decodes one stored object and inserts it, checking that it is
// under the right key and that what it refers to was loaded.
func (st *State) loadOne(k objKind, key string, val []byte) (uint32, error) {
	parent := func(vpc string) (*vpcState, error) {
		v, ok := st.vpcs[vpc]
		if !ok {
			return nil, fmt.Errorf("refers to missing VPC %q", vpc)
		}
		return v, nil
	}
	switch k {
	case kindVPC:
		var v VPC
		if err := json.Unmarshal(val, &v); err != nil {
			return 0, fmt.Errorf("decode: %w", err)
		}
		if key != v.Name {
			return 0, fmt.Errorf("stored under the wrong key (name %q)", v.Name)
		}
		st.insertVPC(v)
		return v.ID, nil
	case kindVSwitch:
		var w VSwitch
		if err := json.Unmarshal(val, &w); err != nil {
			return 0, fmt.Errorf("decode: %w", err)
		}
		if key != objKey(w.VPC, w.Name) {
			return 0, fmt.Errorf("stored under the wrong key (%s/%s)", w.VPC, w.Name)
		}
		if _, err := parent(w.VPC); err != nil {
			return 0, err
		}
		st.insertVSwitch(w)
		return w.ID, nil
	case kindHost:
		var h Host
		if err := json.Unmarshal(val, &h); err != nil {
			return 0, fmt.Errorf("decode: %w", err)
		}
		if key != objKey(h.VPC, h.Name) {
			return 0, fmt.Errorf("stored under the wrong key (%s/%s)", h.VPC, h.Name)
		}
		v, err := parent(h.VPC)
		if err != nil {
			return 0, err
		}
		if _, ok := v.vswitches[h.VSwitch]; !ok {
			return 0, fmt.Errorf("refers to missing vSwitch %q", h.VSwitch)
		}
		if other, ok := v.hostByIP[h.IP]; ok {
			return 0, fmt.Errorf("has the IP %s of host %q", h.IP, other)
		}
		if err := validateAttachment(&h); err != nil {
			return 0, fmt.Errorf("invalid attachment: %w", err)
		}
		var taken hostRef
		var ok bool
		switch {
		case h.Bridge != "":
			taken, ok = st.byIface[ifaceKey{h.Bridge, h.Interface}]
		case h.Chassis != "":
			if _, found := st.chassis[h.Chassis]; !found {
				return 0, fmt.Errorf("refers to missing chassis %q", h.Chassis)
			}
			taken, ok = st.byChassisIface[chassisIfaceKey{h.Chassis, h.Interface}]
		default:
			taken, ok = st.byOFPort[ofportKey{h.DPID, h.OFPort}]
		}
		if ok {
			return 0, fmt.Errorf("has the attachment of host %s/%s", taken.vpc, taken.name)
		}
		st.insertHost(h)
		return h.ID, nil
	case kindChassis:
		var c Chassis
		if err := json.Unmarshal(val, &c); err != nil {
			return 0, fmt.Errorf("decode: %w", err)
		}
		if key != c.Name {
			return 0, fmt.Errorf("stored under the wrong key (name %q)", c.Name)
		}
		if other, ok := st.chassisByTunnelIP[c.TunnelIP]; ok || !c.TunnelIP.Is4() {
			return 0, fmt.Errorf("has an invalid or duplicate tunnel IP %s (chassis %q)", c.TunnelIP, other)
		}
		if other, ok := st.chassisByBridge[chassisBridgeKey{c.OVSDB, c.Bridge}]; ok {
			return 0, fmt.Errorf("has the OVSDB bridge %s on %s of chassis %q", c.Bridge, c.OVSDB, other)
		}
		st.insertChassis(c)
		return c.ID, nil
	default:
		var s Subnet
		if err := json.Unmarshal(val, &s); err != nil {
			return 0, fmt.Errorf("decode: %w", err)
		}
		if key != objKey(s.VPC, s.Name) {
			return 0, fmt.Errorf("stored under the wrong key (%s/%s)", s.VPC, s.Name)
		}
		v, err := parent(s.VPC)
		if err != nil {
			return 0, err
		}
		if _, ok := v.hosts[s.Host]; !ok {
			return 0, fmt.Errorf("refers to missing host %q", s.Host)
		}
		if other, ok := v.subnetByCIDR[s.CIDR]; ok || !s.CIDR.IsValid() || !s.CIDR.Addr().Is4() || s.CIDR != s.CIDR.Masked() {
			return 0, fmt.Errorf("has an invalid or duplicate CIDR %s (subnet %q)", s.CIDR, other)
		}
		st.insertSubnet(s)
		return s.ID, nil
	}
}

func objKey(vpc, name string) string { return vpc + "/" + name }

// target is where an op lands on disk: bucket, key and value.
func target(op Op) (objKind, string, any) {
	switch {
	case op.VPC != nil:
		return kindVPC, op.VPC.Name, op.VPC
	case op.VSwitch != nil:
		return kindVSwitch, objKey(op.VSwitch.VPC, op.VSwitch.Name), op.VSwitch
	case op.Host != nil:
		return kindHost, objKey(op.Host.VPC, op.Host.Name), op.Host
	case op.Chassis != nil:
		return kindChassis, op.Chassis.Name, op.Chassis
	default:
		return kindSubnet, objKey(op.Subnet.VPC, op.Subnet.Name), op.Subnet
	}
}

// persist writes resolved ops and the ID counters in one transaction.
// Ops are folded into their final value per key first, and keys written in
// sorted order, which is what bbolt is fastest at.
func (s *Store) persist(ops []Op, last [numKinds]uint32) error {
	var pending [numKinds]map[string][]byte // nil value: delete
	for k := range pending {
		pending[k] = map[string][]byte{}
	}
	for _, op := range ops {
		k, key, obj := target(op)
		if op.Kind == OpDelete {
			pending[k][key] = nil
			continue
		}
		b, err := json.Marshal(obj)
		if err != nil {
			return fmt.Errorf("encode %s %s: %w", k, key, err)
		}
		pending[k][key] = b
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		for k := objKind(0); k < numKinds; k++ {
			if len(pending[k]) == 0 {
				continue
			}
			b := tx.Bucket(bucketName(k))
			keys := make([]string, 0, len(pending[k]))
			for key := range pending[k] {
				keys = append(keys, key)
			}
			sort.Strings(keys)
			for _, key := range keys {
				val := pending[k][key]
				var err error
				if val == nil {
					err = b.Delete([]byte(key))
				} else {
					err = b.Put([]byte(key), val)
				}
				if err != nil {
					return fmt.Errorf("write %s %s: %w", k, key, err)
				}
			}
		}
		meta := tx.Bucket([]byte(bucketMeta))
		for k := objKind(0); k < numKinds; k++ {
			var v [4]byte
			binary.BigEndian.PutUint32(v[:], last[k])
			if err := meta.Put([]byte(metaLastID+k.String()), v[:]); err != nil {
				return fmt.Errorf("write %s counter: %w", k, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("write %s: %w", s.path, err)
	}
	return nil
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
