package topology

// The bbolt backend's side of the write-ahead log (wal.go has its format):
// appending a change, checkpoints, and replay at open.

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"
)

// boltWAL is the log's state; Bolt.mu guards it.
type boltWAL struct {
	path string
	f    *os.File
	// size is the bytes of the log written and synced: the header and
	// whole records. recs is how many records that is.
	size int64
	recs int
	// seq is the last change's number, in the log or in the file; token
	// the last checkpoint's.
	seq   uint64
	token [walTokenLen]byte
	// max is walMaxSize (tests make it smaller).
	max int64
	// stale is set when the log could not be started over after a
	// checkpoint: changes go straight into the file until it can.
	stale error
	buf   []byte
	// quiet checkpoints the log once no change came for idle
	// (walIdleCheckpoint; tests make it shorter): the file is current a
	// moment after a burst of changes, and a crash leaves only the
	// changes of that moment to replay. closed stops it.
	quiet  *time.Timer
	idle   time.Duration
	closed bool
}

// walIdleCheckpoint is how long the log waits for a next change before
// it is checkpointed: longer than the gaps within a burst of single
// changes (~1 ms), so that a checkpoint's own syncs never sit among them.
const walIdleCheckpoint = time.Second

// openWAL opens the log beside the bbolt file, replays into the file the
// changes a crash left in it, and starts it over.
func (b *Bolt) openWAL() (err error) {
	w := &b.wal
	w.path, w.max, w.idle = b.path+walSuffix, walMaxSize, walIdleCheckpoint
	_, statErr := os.Stat(w.path)
	f, err := os.OpenFile(w.path, os.O_RDWR|os.O_CREATE, dbFilePerm)
	if err != nil {
		return fmt.Errorf("open write-ahead log: %w", err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
		}
	}()
	if errors.Is(statErr, os.ErrNotExist) {
		// A new file: its name must be durable before anything in it
		// counts.
		if err := syncDir(filepath.Dir(w.path)); err != nil {
			return fmt.Errorf("create write-ahead log %s: %w", w.path, err)
		}
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return fmt.Errorf("read write-ahead log %s: %w", w.path, err)
	}
	var replay []walRecord
	var whole int
	err = b.db.View(func(tx *bolt.Tx) error {
		var err error
		replay, whole, w.seq, err = walToReplay(w.path, data, tx.Bucket([]byte(bucketMeta)))
		return err
	})
	if err != nil {
		return err
	}
	if whole < len(data) {
		b.log.Warn("the write-ahead log ends in a change a crash cut short (never acknowledged): left out",
			zap.String("path", w.path), zap.Int("offset", whole), zap.Int("bytes", len(data)-whole))
	}
	if len(replay) > 0 {
		b.log.Info("replaying the changes of the write-ahead log into the store file",
			zap.String("path", w.path), zap.Int("changes", len(replay)),
			zap.Uint64("first", replay[0].seq), zap.Uint64("last", replay[len(replay)-1].seq))
		w.seq = replay[len(replay)-1].seq
	}
	w.f = f
	if err := b.checkpointWith(replay, nil); err != nil {
		return err
	}
	return w.stale // the log could not be started over: not opened
}

// appendWAL makes c durable as the log's next record (one fdatasync).
func (b *Bolt) appendWAL(c Commit) error {
	w := &b.wal
	rec := appendWALRecord(w.buf[:0], w.seq+1, c)
	w.buf = rec[:0]
	_, err := w.f.WriteAt(rec, w.size)
	if err == nil {
		err = fdatasync(w.f)
	}
	if err == nil {
		w.size += int64(len(rec))
		w.recs++
		w.seq++
		if w.quiet == nil {
			w.quiet = time.AfterFunc(w.idle, b.checkpointQuiet)
		} else {
			w.quiet.Reset(w.idle)
		}
		return nil
	}
	err = fmt.Errorf("write %s: %w", w.path, err)
	// The record may be in the log, whole: it must never be replayed,
	// since this change fails. Cut it off; failing that, retire the
	// log's token (a checkpoint), so that an open leaves it out.
	if terr := w.f.Truncate(w.size); terr == nil {
		if terr = w.f.Sync(); terr == nil {
			return err
		}
	}
	if cerr := b.checkpoint(nil); cerr != nil {
		return errors.Join(err, cerr)
	}
	return err
}

// checkpointQuiet is the checkpoint after a quiet moment (boltWAL.quiet).
func (b *Bolt) checkpointQuiet() {
	if err := b.checkpointLogged(); err != nil {
		// The changes stay in the log, durable; the next checkpoint
		// tries again.
		b.log.Warn("checkpoint of the write-ahead log failed", zap.String("path", b.wal.path), zap.Error(err))
	}
}

// checkpointLogged checkpoints the log's changes, if it holds any.
func (b *Bolt) checkpointLogged() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.wal.recs == 0 || b.wal.closed {
		return nil
	}
	return b.checkpoint(nil)
}

// checkpoint writes the log's changes, then c (nil: none), into the bbolt
// file in one transaction, and starts the log over.
func (b *Bolt) checkpoint(c *Commit) error {
	recs, err := b.logged()
	if err != nil {
		return err
	}
	return b.checkpointWith(recs, c)
}

// logged reads back the log's records: what was written and synced of it.
func (b *Bolt) logged() ([]walRecord, error) {
	w := &b.wal
	if w.recs == 0 {
		return nil, nil
	}
	data := make([]byte, w.size)
	if _, err := w.f.ReadAt(data, 0); err != nil {
		return nil, fmt.Errorf("read back %s: %w", w.path, err)
	}
	token, recs, _, err := readWAL(data)
	if err == nil && (string(token) != string(w.token[:]) || len(recs) != w.recs || recs[len(recs)-1].seq != w.seq) {
		err = fmt.Errorf("holds %d changes, %d were written", len(recs), w.recs)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: read back %s: %v", ErrCorrupt, w.path, err)
	}
	return recs, nil
}

// checkpointWith writes recs, then c (nil: none), into the bbolt file with
// a new token and a number of its own, then starts the log over. If the
// transaction fails nothing changed; if only the start-over fails, the
// changes are in the file (the old log's are numbered at or below the
// file's: an open leaves them out) and the next changes go straight into
// the file until a checkpoint starts the log over.
//
// A change written straight into the file while the log is empty and
// sound (a bulk load's requests) is only that: the log's next changes
// follow it as they follow the checkpoint, and neither the token nor the
// log's sync is paid. A checkpoint asked for by itself (c nil: at open,
// to retire a token, after a failed append) always takes a new token.
func (b *Bolt) checkpointWith(recs []walRecord, c *Commit) error {
	w := &b.wal
	checkpoint := len(recs) > 0 || c == nil || w.stale != nil
	var token [walTokenLen]byte
	seq := w.seq + 1
	if checkpoint {
		if _, err := rand.Read(token[:]); err != nil {
			return fmt.Errorf("checkpoint token: %w", err)
		}
	}
	err := b.db.Update(func(tx *bolt.Tx) error {
		for _, r := range recs {
			if err := putCommit(tx, r.commit); err != nil {
				return err
			}
		}
		if c != nil {
			if err := putCommit(tx, *c); err != nil {
				return err
			}
		}
		if !checkpoint {
			return nil
		}
		meta := tx.Bucket([]byte(bucketMeta))
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], seq)
		if err := meta.Put([]byte(metaWALSeq), v[:]); err != nil {
			return fmt.Errorf("write checkpoint number: %w", err)
		}
		if err := meta.Put([]byte(metaWALToken), token[:]); err != nil {
			return fmt.Errorf("write checkpoint token: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("write %s: %w", b.path, err)
	}
	if !checkpoint {
		return nil
	}
	w.seq, w.token = seq, token
	w.stale = nil
	if err := w.startOver(); err != nil {
		w.stale = fmt.Errorf("start the write-ahead log %s over: %w", w.path, err)
	}
	return nil
}

// startOver empties the log and writes its header for the current token.
func (w *boltWAL) startOver() error {
	w.recs, w.size = 0, 0
	if err := w.f.Truncate(0); err != nil {
		return err
	}
	hdr := appendWALHeader(nil, w.token)
	if _, err := w.f.WriteAt(hdr, 0); err != nil {
		return err
	}
	if err := w.f.Sync(); err != nil {
		return err
	}
	w.size = int64(len(hdr))
	return nil
}

// putCommit writes one change's records and counters in tx.
func putCommit(tx *bolt.Tx, c Commit) error {
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
}

// syncDir makes the directory's entries durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// verifyWAL checks, read-only, that the write-ahead log beside the store
// file at path (if there is one) follows the file's last checkpoint
// (meta: the file's meta bucket), as an open would.
func verifyWAL(path string, meta *bolt.Bucket) error {
	data, err := os.ReadFile(path + walSuffix)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read write-ahead log: %w", err)
	}
	_, _, _, err = walToReplay(path+walSuffix, data, meta)
	return err
}

// walToReplay reads the log at walPath (its bytes: data) against the
// file's last checkpoint in meta: the changes to replay (walFollows),
// how many bytes of data are whole records (readWAL), and the
// checkpoint's number.
func walToReplay(walPath string, data []byte, meta *bolt.Bucket) (replay []walRecord, whole int, seq uint64, err error) {
	walToken, recs, whole, err := readWAL(data)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("%w: %s: %v", ErrCorrupt, walPath, err)
	}
	if v := meta.Get([]byte(metaWALSeq)); len(v) == 8 {
		seq = binary.BigEndian.Uint64(v)
	}
	replay, err = walFollows(walPath, walToken, recs, meta.Get([]byte(metaWALToken)), seq)
	return replay, whole, seq, err
}
