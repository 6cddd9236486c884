package topology

// Checking the store's file before bbolt opens it, and keeping bbolt's
// panics (and faults on a short mmap) from ending the process: bbolt
// trusts its file, so a truncated or overwritten vpcflow.db could crash
// vpcflow or, worse, be taken for an empty store.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// ErrNoStore means there is no store where one was expected: the data
// directory or its vpcflow.db does not exist (never initialised, or a
// mistyped directory). Create one explicitly (vpcflow init).
var ErrNoStore = errors.New("no vpcflow store")

// ErrCorrupt means the store's file cannot be trusted: not a bbolt file,
// truncated, damaged, or not written by vpcflow.
var ErrCorrupt = errors.New("the vpcflow store is damaged")

// OpenOption changes how Open opens a store.
type OpenOption func(*openOptions)

type openOptions struct {
	existing bool
}

// Existing makes Open refuse to create anything: a missing data
// directory or store file is ErrNoStore. Without it Open creates both.
func Existing() OpenOption { return func(o *openOptions) { o.existing = true } }

// bbolt's on-disk meta page (bbolt 1.4, file format version 2): a 16-byte
// page header, then magic, version, page size, flags, the root bucket
// (root page, sequence), the freelist page, the high-water page id, the
// transaction id and an FNV-64a checksum of what precedes it.
const (
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	boltPageHeader = 16
	boltMetaLen    = 64
	boltMinPages   = 4 // two meta pages, a freelist and a root leaf
)

type boltMeta struct {
	pageSize uint32
	pgid     uint64 // pages in use: the file must hold at least this many
	txid     uint64
}

// parseMeta reads the meta page at b (a whole page or more).
func parseMeta(b []byte) (boltMeta, error) {
	if len(b) < boltPageHeader+boltMetaLen {
		return boltMeta{}, errors.New("too short for a bbolt meta page")
	}
	m := b[boltPageHeader : boltPageHeader+boltMetaLen]
	le := binary.LittleEndian
	if le.Uint32(m[0:]) != boltMagic {
		return boltMeta{}, errors.New("no bbolt magic number")
	}
	if v := le.Uint32(m[4:]); v != boltVersion {
		return boltMeta{}, fmt.Errorf("bbolt file format %d, want %d", v, boltVersion)
	}
	h := fnv.New64a()
	_, _ = h.Write(m[:56])
	if h.Sum64() != le.Uint64(m[56:]) {
		return boltMeta{}, errors.New("meta page checksum mismatch")
	}
	return boltMeta{pageSize: le.Uint32(m[8:]), pgid: le.Uint64(m[40:]), txid: le.Uint64(m[48:])}, nil
}

// CheckFile checks that path is a whole bbolt file before it is opened:
// it exists, is a regular file, starts with a valid meta page, and is as
// long as its newest valid meta page says. A missing file is ErrNoStore;
// anything else wrong is ErrCorrupt, with what is wrong.
func CheckFile(path string) error {
	_, err := checkFile(path)
	return err
}

// InUse checks the store file as CheckFile does and says how many of its
// bytes its last transaction uses: bbolt grows the file ahead of what it
// holds (16 MB steps for a store mapped as vpcflow maps it).
func InUse(path string) (int64, error) {
	return checkFile(path)
}

func checkFile(path string) (int64, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("%w: %s does not exist", ErrNoStore, path)
	}
	if err != nil {
		return 0, fmt.Errorf("store %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("%w: %s is not a regular file (%s)", ErrCorrupt, path, fi.Mode().Type())
	}
	if fi.Size() == 0 {
		return 0, fmt.Errorf("%w: %s is empty (0 bytes): truncated, or never written", ErrCorrupt, path)
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("store %s: %w", path, err)
	}
	defer f.Close()
	head := make([]byte, min(fi.Size(), 64<<10))
	if _, err := io.ReadFull(f, head); err != nil {
		return 0, fmt.Errorf("store %s: reading its header: %w", path, err)
	}
	m0, err0 := parseMeta(head)
	if err0 != nil && (len(head) < boltPageHeader+4 || binary.LittleEndian.Uint32(head[boltPageHeader:]) != boltMagic) {
		return 0, fmt.Errorf("%w: %s is not a bbolt file (%v): not a vpcflow store", ErrCorrupt, path, err0)
	}
	// The second meta page sits one page in: the page size comes from the
	// first meta page if it is valid, else the usual 4 KiB.
	ps := int64(4096)
	if err0 == nil {
		ps = int64(m0.pageSize)
	}
	var m1 boltMeta
	err1 := errors.New("file shorter than two pages")
	if int64(len(head)) >= ps+boltPageHeader+boltMetaLen {
		m1, err1 = parseMeta(head[ps:])
	}
	var m boltMeta
	switch {
	case err0 != nil && err1 != nil:
		return 0, fmt.Errorf("%w: %s: both bbolt meta pages are invalid (%v; %v)", ErrCorrupt, path, err0, err1)
	case err0 == nil && (err1 != nil || m0.txid >= m1.txid):
		m = m0
	default:
		m = m1
	}
	if m.pageSize < 512 || m.pageSize > 1<<20 || m.pageSize&(m.pageSize-1) != 0 {
		return 0, fmt.Errorf("%w: %s: implausible page size %d", ErrCorrupt, path, m.pageSize)
	}
	if m.pgid < boltMinPages {
		return 0, fmt.Errorf("%w: %s: meta page claims %d pages", ErrCorrupt, path, m.pgid)
	}
	want := int64(m.pgid) * int64(m.pageSize)
	if fi.Size() < want {
		return 0, fmt.Errorf("%w: %s is truncated: %d bytes, its last transaction needs %d", ErrCorrupt, path, fi.Size(), want)
	}
	return want, nil
}

// guard runs fn, turning a panic — and, with SetPanicOnFault, a fault on
// bbolt's memory map (a file shorter than its pages) — into ErrCorrupt.
func guard(path string, fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %s: reading it failed: %v", ErrCorrupt, path, p)
		}
	}()
	return fn()
}

// checkDir reports a missing data directory as ErrNoStore.
func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		abs, _ := filepath.Abs(dir)
		return fmt.Errorf("%w: the data directory %s does not exist (a mistyped --data-dir? create the store with `vpcflow init` or `vpcflow serve --init`)", ErrNoStore, abs)
	}
	if err != nil {
		return fmt.Errorf("data directory %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("data directory %s is not a directory", dir)
	}
	return nil
}

// Verify checks a store without changing it: CheckFile, then every page
// reachable in bbolt (tx.Check, read-only), then vpcflow's schema key,
// then that its write-ahead log (path + "-wal"), if any, follows it.
// bbolt reports some damage by panicking in a goroutine of its own, which
// no recover can catch, so a caller that must survive any file runs Verify
// in a process of its own (`vpcflow store check`, which `vpcflow serve`
// runs before opening its store).
func Verify(path string) error {
	if err := CheckFile(path); err != nil {
		return err
	}
	return guard(path, func() error {
		db, err := bolt.Open(path, dbFilePerm, &bolt.Options{ReadOnly: true, Timeout: openTimeout})
		if errors.Is(err, bolt.ErrTimeout) {
			return fmt.Errorf("store %s is locked (is a vpcflow running on it?): %w", path, err)
		}
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
		}
		defer db.Close()
		return db.View(func(tx *bolt.Tx) error {
			var problems []string
			for err := range tx.Check() {
				problems = append(problems, err.Error())
			}
			if len(problems) > 0 {
				more := ""
				if len(problems) > 3 {
					more = fmt.Sprintf(" (and %d more)", len(problems)-3)
					problems = problems[:3]
				}
				return fmt.Errorf("%w: %s: %s%s", ErrCorrupt, path, strings.Join(problems, "; "), more)
			}
			meta := tx.Bucket([]byte(bucketMeta))
			if meta == nil || meta.Get([]byte(metaSchema)) == nil {
				return fmt.Errorf("%w: %s is a bbolt file but not a vpcflow store (no schema version)", ErrCorrupt, path)
			}
			return verifyWAL(path, meta)
		})
	})
}
