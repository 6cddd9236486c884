package topology

// The bbolt store's write-ahead log: vpcflow.db-wal beside the file (named
// as SQLite names its own). bbolt makes a commit durable with two
// fdatasyncs, its pages and then its meta page; a change through the log
// needs one. A small change is appended to the log and synced, and reaches
// the bbolt file at the next checkpoint, one bbolt transaction with every
// change of the log in order: a second after the last change, when the
// log is full, when a big change comes (written straight into the file,
// in the same transaction as the log's changes before it), at Load,
// Backup and Close, and at open (which replays what a crash left in the
// log). etcd keeps its data the same way:
// a log synced per entry in front of a bbolt file committed in batches.
//
// The log is a 16-byte header, walMagic and the token of the checkpoint
// it follows, then one record per change:
//
//	length  u32   bytes of the payload
//	crc     u32   CRC-32C of seq and payload
//	seq     u64   the change's number: the checkpoint's + 1, + 2, …
//	payload       the records (uvarint count, then each: kind, key and
//	              value, each a uvarint length and its bytes; a value's
//	              length is stored + 1, 0 for a delete), then the last IDs
//	              (uvarint count, then each: kind, uvarint ID)
//
// A checkpoint writes a fresh random token and its own number into the
// bbolt file's meta bucket (wal/token, wal/seq) in the same transaction as
// the changes, then starts the log over under that token. So at open the
// log's changes numbered above the file's are the ones to replay, and they
// must be under the file's token: a log beside a file it does not follow
// (the file replaced by another) is refused, not replayed onto it.
//
// A record a crash cut short fails its CRC (or its length runs past the
// end); the log is read up to it. Its change was never acknowledged: a
// change returns only once its record is synced, and the next is written
// only after that.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"slices"
)

const (
	walSuffix    = "-wal"
	walMagic     = "vpcfwal1"
	walHeaderLen = len(walMagic) + walTokenLen
	walTokenLen  = 8
	walRecHead   = 16 // length, crc, seq
	metaWALToken = "wal/token"
	metaWALSeq   = "wal/seq"
	// walMaxRecord: a change whose record would be larger goes straight
	// into the bbolt file (a bulk load: written once, not twice; bbolt's
	// two fdatasyncs are nothing next to its pages).
	walMaxRecord = 64 << 10
	// walMaxSize: the log is checkpointed before it grows past this
	// (~6,000 single changes; replaying it at open takes milliseconds).
	walMaxSize = 4 << 20
)

var walCRC = crc32.MakeTable(crc32.Castagnoli)

// walRecord is one change read from the log.
type walRecord struct {
	seq    uint64
	commit Commit
}

// walRecordSize is at most the size of c's record: a change too big for
// the log is told without encoding it.
func walRecordSize(c Commit) int {
	n := walRecHead + 2*binary.MaxVarintLen64
	for _, r := range c.Records {
		n += 3*binary.MaxVarintLen64 + len(r.Kind) + len(r.Key) + len(r.Value)
	}
	for k := range c.LastIDs {
		n += 2*binary.MaxVarintLen64 + len(k)
	}
	return n
}

// appendWALHeader appends the log's header for the checkpoint token.
func appendWALHeader(b []byte, token [walTokenLen]byte) []byte {
	return append(append(b, walMagic...), token[:]...)
}

// appendWALRecord appends c as change number seq.
func appendWALRecord(b []byte, seq uint64, c Commit) []byte {
	start := len(b)
	b = append(b, make([]byte, walRecHead)...)
	b = appendWALPayload(b, c)
	head := b[start : start+walRecHead]
	binary.BigEndian.PutUint32(head[0:4], uint32(len(b)-start-walRecHead))
	binary.BigEndian.PutUint64(head[8:16], seq)
	binary.BigEndian.PutUint32(head[4:8], crc32.Checksum(b[start+8:], walCRC))
	return b
}

// appendWALPayload appends c's records and last IDs (these by kind name:
// the same change is the same bytes).
func appendWALPayload(b []byte, c Commit) []byte {
	b = binary.AppendUvarint(b, uint64(len(c.Records)))
	for _, r := range c.Records {
		b = appendWALBytes(b, r.Kind)
		b = appendWALBytes(b, r.Key)
		if r.Value == nil {
			b = binary.AppendUvarint(b, 0)
		} else {
			b = binary.AppendUvarint(b, uint64(len(r.Value))+1)
			b = append(b, r.Value...)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(c.LastIDs)))
	for _, k := range slices.Sorted(maps.Keys(c.LastIDs)) {
		b = appendWALBytes(b, k)
		b = binary.AppendUvarint(b, uint64(c.LastIDs[k]))
	}
	return b
}

func appendWALBytes[T string | []byte](b []byte, s T) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// errWALForeign: the log's header is not vpcflow's.
var errWALForeign = errors.New("not a vpcflow write-ahead log (no vpcfwal1 header)")

// readWAL reads a log: the token of its header and its records, up to the
// first one that is not whole or not numbered one after the one before.
// whole is how many bytes of data those are (header included): the rest
// is what a crash cut short. An empty log, or a header a crash cut short,
// has no token and no records.
func readWAL(data []byte) (token []byte, recs []walRecord, whole int, err error) {
	if allZero(data[:min(len(data), walHeaderLen)]) {
		// Empty, or a header whose bytes never reached the disk (zeros):
		// records are written only once the header is synced.
		return nil, nil, 0, nil
	}
	if len(data) < walHeaderLen {
		if !bytes.HasPrefix([]byte(walMagic), data[:min(len(data), len(walMagic))]) {
			return nil, nil, 0, errWALForeign
		}
		return nil, nil, 0, nil
	}
	if string(data[:len(walMagic)]) != walMagic {
		return nil, nil, 0, errWALForeign
	}
	token = data[len(walMagic):walHeaderLen]
	off := walHeaderLen
	for len(data)-off >= walRecHead {
		head := data[off : off+walRecHead]
		n := int(binary.BigEndian.Uint32(head[0:4]))
		if n > len(data)-off-walRecHead {
			break
		}
		rec := data[off+8 : off+walRecHead+n]
		if crc32.Checksum(rec, walCRC) != binary.BigEndian.Uint32(head[4:8]) {
			break
		}
		seq := binary.BigEndian.Uint64(head[8:16])
		if len(recs) > 0 && seq != recs[len(recs)-1].seq+1 {
			break
		}
		c, ok := decodeWALPayload(rec[8:])
		if !ok {
			break
		}
		recs = append(recs, walRecord{seq: seq, commit: c})
		off += walRecHead + n
	}
	return token, recs, off, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// decodeWALPayload decodes a record's payload; ok is false for one that
// does not decode whole (a CRC collision at worst: records are written by
// appendWALRecord only).
func decodeWALPayload(p []byte) (c Commit, ok bool) {
	d := walDecoder{p: p}
	nrec := d.uvarint()
	if nrec > uint64(len(p)) {
		return Commit{}, false
	}
	c.Records = make([]Record, 0, nrec)
	for range nrec {
		r := Record{Kind: string(d.bytes()), Key: string(d.bytes())}
		if v := d.uvarint(); v > 0 {
			r.Value = bytes.Clone(d.take(v - 1))
			if r.Value == nil {
				r.Value = []byte{}
			}
		}
		if d.bad {
			return Commit{}, false
		}
		c.Records = append(c.Records, r)
	}
	nid := d.uvarint()
	if nid > uint64(len(p)) {
		return Commit{}, false
	}
	c.LastIDs = make(map[string]uint32, nid)
	for range nid {
		k := string(d.bytes())
		id := d.uvarint()
		if _, dup := c.LastIDs[k]; dup || id > 1<<32-1 {
			d.bad = true
		}
		c.LastIDs[k] = uint32(id)
	}
	return c, !d.bad && len(d.p) == 0
}

// walDecoder reads a payload; bad is set at the first thing that does not
// fit, and every read after it returns nothing.
type walDecoder struct {
	p   []byte
	bad bool
}

func (d *walDecoder) uvarint() uint64 {
	if d.bad {
		return 0
	}
	v, n := binary.Uvarint(d.p)
	if n <= 0 {
		d.bad = true
		return 0
	}
	d.p = d.p[n:]
	return v
}

func (d *walDecoder) take(n uint64) []byte {
	if d.bad || n > uint64(len(d.p)) {
		d.bad = true
		return nil
	}
	b := d.p[:n]
	d.p = d.p[n:]
	return b
}

func (d *walDecoder) bytes() []byte { return d.take(d.uvarint()) }

// walFollows checks that the log's records (read with readWAL) follow the
// bbolt file's last checkpoint (token, seq), and returns those to replay:
// the ones numbered above it. Records at or below it are in the file
// already (a crash before the log was started over).
func walFollows(walPath string, walToken []byte, recs []walRecord, token []byte, seq uint64) ([]walRecord, error) {
	i := 0
	for i < len(recs) && recs[i].seq <= seq {
		i++
	}
	replay := recs[i:]
	if len(replay) == 0 {
		return nil, nil
	}
	if !bytes.Equal(walToken, token) || replay[0].seq != seq+1 {
		return nil, fmt.Errorf("%w: %s holds changes %d to %d that do not follow the store file (its last checkpoint is change %d): the file was replaced? Move %s away to open the file as it is, without them",
			ErrCorrupt, walPath, replay[0].seq, replay[len(replay)-1].seq, seq, walPath)
	}
	return replay, nil
}
