package topology

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// crashCopy copies the store's files in dir as a crash would leave them
// (the store stays open: nothing is checkpointed or closed) into a new
// directory; withWAL false leaves the write-ahead log out.
func crashCopy(t *testing.T, dir string, withWAL bool) string {
	t.Helper()
	to := t.TempDir()
	names := []string{DBFileName}
	if withWAL {
		names = append(names, WALFileName)
	}
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, n), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return to
}

func walOf(s *Store) *boltWAL { return &s.Backend().(*Bolt).wal }

// openLogging opens the store in dir with its quiet checkpoint put off,
// so that the log holds every change until the test checkpoints it.
func openLogging(t *testing.T, dir string) *Store {
	t.Helper()
	s := openStore(t, dir)
	b := s.Backend().(*Bolt)
	b.mu.Lock()
	b.wal.idle = time.Hour
	b.mu.Unlock()
	return s
}

// sameAfterOpen opens the store files in dir (a crash's copy) and fails
// the test unless they hold what want holds.
func sameAfterOpen(t *testing.T, dir string, want *Store, what string) {
	t.Helper()
	r := openStore(t, dir)
	defer r.Close()
	if got, w := dump(r), dump(want); got != w {
		t.Fatalf("%s:\n%s\nwant\n%s", what, got, w)
	}
}

// checkpointed makes s take a checkpoint the way a user can: a backup
// (which also retires the log's token).
func checkpointed(t *testing.T, s *Store) {
	t.Helper()
	if _, err := s.Backup(&bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
}

// logIn reads the write-ahead log in dir; putLog writes data as dir's
// log (a log beside a file it may not belong to).
func logIn(t *testing.T, dir string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, WALFileName))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func putLog(t *testing.T, dir string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, WALFileName), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// hostOf is the host a subnet points to, "" when there is no such subnet.
func hostOf(s *Store, vpc, name string) string {
	var h string
	s.Read(func(st *State) {
		if sub, ok := st.Subnet(vpc, name); ok {
			h = sub.Host
		}
	})
	return h
}

// A single change is durable once its record is in the log: a crash
// (the files copied while the store is open) loses none of them, though
// the bbolt file alone has none of them yet; Verify takes the pair.
func TestWALChangesSurviveACrash(t *testing.T) {
	dir := t.TempDir()
	s := openLogging(t, dir)
	defer s.Close()
	mustApply(t, s, seedOps()...)
	for i := range 20 {
		host := []string{"test1", "test2"}[i%2]
		mustApply(t, s, moveSubnet("vpc-a", "ten-99", host))
	}
	mustApply(t, s, createVPC(VPC{Name: "vpc-last"}))
	if w := walOf(s); w.recs != 22 {
		t.Fatalf("the log holds %d changes, want 22 (every change a record)", w.recs)
	}
	want := dump(s)

	fileOnly := openStore(t, crashCopy(t, dir, false))
	if got := dump(fileOnly); got == want {
		t.Fatal("the bbolt file alone holds every change: they did not go through the log")
	}
	fileOnly.Close()

	crashed := crashCopy(t, dir, true)
	if err := Verify(filepath.Join(crashed, DBFileName)); err != nil {
		t.Fatalf("Verify of a crashed store with its log: %v", err)
	}
	r := openStore(t, crashed)
	if got := dump(r); got != want {
		t.Fatalf("after the crash:\n%s\nwant\n%s", got, want)
	}
	if w := walOf(r); w.recs != 0 || w.size != int64(walHeaderLen) {
		t.Errorf("the log after replay: %d records, %d bytes; want it started over", w.recs, w.size)
	}
	// IDs handed out before the crash are never handed out again.
	out := mustApply(t, r, createVPC(VPC{Name: "vpc-next"}))
	if id := out[0].VPC().ID; id != 4 {
		t.Errorf("next VPC ID after the replay = %d, want 4", id)
	}
	r.Close()
	// Closed cleanly, the file is whole by itself.
	alone, with := openStore(t, crashCopy(t, crashed, false)), openStore(t, crashCopy(t, crashed, true))
	defer alone.Close()
	defer with.Close()
	if got, want := dump(alone), dump(with); got != want {
		t.Errorf("after Close the file alone differs from file and log:\n%s\n%s", got, want)
	}
}

// A record a crash cut short is left out (its change was never
// acknowledged), and everything before it is replayed.
func TestWALTornTailIsLeftOut(t *testing.T) {
	dir := t.TempDir()
	s := openLogging(t, dir)
	defer s.Close()
	mustApply(t, s, seedOps()...)
	mustApply(t, s, moveSubnet("vpc-a", "ten-99", "test1"))
	mustApply(t, s, createVPC(VPC{Name: "vpc-last"}))
	// The last bytes of the log missing, or there but never written
	// (zeros: the file's size grew, its data did not reach the disk).
	for _, tc := range []struct {
		n     int
		zeros bool
	}{{1, false}, {9, false}, {17, false}, {1, true}, {40, true}} {
		t.Run(fmt.Sprintf("cut=%d,zeros=%v", tc.n, tc.zeros), func(t *testing.T) {
			crashed := crashCopy(t, dir, true)
			p := filepath.Join(crashed, WALFileName)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if tc.zeros {
				clear(b[len(b)-tc.n:])
			} else {
				b = b[:len(b)-tc.n]
			}
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
			r := openStore(t, crashed)
			defer r.Close()
			r.Read(func(st *State) {
				if _, ok := st.VPC("vpc-last"); ok {
					t.Error("the cut change was replayed")
				}
			})
			if h := hostOf(r, "vpc-a", "ten-99"); h != "test1" {
				t.Errorf("the change before the cut one: ten-99 → %q, want test1", h)
			}
		})
	}
}

// A log beside a file it does not follow (the file replaced by an older
// copy) is refused with the way out, by Verify and by Open, and not
// replayed.
func TestWALRefusesAFileItDoesNotFollow(t *testing.T) {
	dir := t.TempDir()
	s := openLogging(t, dir)
	defer s.Close()
	mustApply(t, s, seedOps()...)
	// The file as of a checkpoint (a backup takes one), then another
	// checkpoint, then a change in the log.
	checkpointed(t, s)
	older := crashCopy(t, dir, false)
	checkpointed(t, s)
	mustApply(t, s, moveSubnet("vpc-a", "ten-99", "test1"))
	wal := logIn(t, dir)
	putLog(t, older, wal)
	path := filepath.Join(older, DBFileName)
	if err := Verify(path); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "Move "+path+walSuffix+" away") {
		t.Errorf("Verify: %v, want ErrCorrupt naming the log", err)
	}
	if _, err := Open(context.Background(), older, nil, Existing()); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "do not follow") {
		t.Fatalf("Open: %v, want ErrCorrupt", err)
	}
	// Another store's log, numbered as this file's next changes (the same
	// history in another directory): its token tells them apart.
	other := t.TempDir()
	o := openLogging(t, other)
	mustApply(t, o, seedOps()...)
	for range 2 {
		checkpointed(t, o)
	}
	theirs := crashCopy(t, other, false)
	if ow, mw := walOf(o), walOf(s); ow.seq+1 != mw.seq {
		t.Fatalf("this store's log starts at change %d, the other file is at %d: the case needs them one apart", mw.seq, ow.seq)
	}
	o.Close()
	putLog(t, theirs, wal)
	if _, err := Open(context.Background(), theirs, nil, Existing()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open with another store's log numbered as its own: %v, want ErrCorrupt", err)
	}
	// Moved away, the file opens as it was.
	if err := os.Rename(filepath.Join(older, WALFileName), filepath.Join(older, "moved")); err != nil {
		t.Fatal(err)
	}
	r := openStore(t, older)
	defer r.Close()
	if h := hostOf(r, "vpc-a", "ten-99"); h != "test2" {
		t.Errorf("ten-99 → %q in the older file, want test2", h)
	}
}

// A backup holds the log's changes, and a log never follows a backup:
// restored in place of the file, it is not replayed onto it.
func TestWALBackupTakesTheLogAndRetiresIt(t *testing.T) {
	dir := t.TempDir()
	s := openLogging(t, dir)
	defer s.Close()
	mustApply(t, s, seedOps()...)
	mustApply(t, s, moveSubnet("vpc-a", "ten-99", "test1"))
	var buf bytes.Buffer
	if _, err := s.Backup(&buf); err != nil {
		t.Fatal(err)
	}
	mustApply(t, s, createVPC(VPC{Name: "vpc-after"}))
	crashed := crashCopy(t, dir, true)
	if err := os.WriteFile(filepath.Join(crashed, DBFileName), buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), crashed, nil, Existing()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("the backup with the live log: %v, want ErrCorrupt (not replayed)", err)
	}
	if err := os.Remove(filepath.Join(crashed, WALFileName)); err != nil {
		t.Fatal(err)
	}
	r := openStore(t, crashed)
	defer r.Close()
	if h := hostOf(r, "vpc-a", "ten-99"); h != "test1" {
		t.Errorf("the backup lost a change of the log: ten-99 → %q", h)
	}
	r.Read(func(st *State) {
		if _, ok := st.VPC("vpc-after"); ok {
			t.Error("the backup holds a change made after it")
		}
	})
}

// A change too big for the log goes straight into the file, in the same
// transaction as the log's changes before it (in order: the last write
// of an object wins); a full log is checkpointed. Either way a crash
// loses nothing.
func TestWALBigChangeAndFullLogGoToTheFile(t *testing.T) {
	dir := t.TempDir()
	s := openLogging(t, dir)
	defer s.Close()
	mustApply(t, s, seedOps()...)
	for _, h := range []string{"test1", "test2", "test1", "test2"} {
		mustApply(t, s, moveSubnet("vpc-a", "ten-99", h))
	}
	var big []Op
	for i := range 600 {
		big = append(big, createVPC(VPC{Name: fmt.Sprintf("vpc-big-%03d-%s", i, strings.Repeat("x", 50))}))
	}
	mustApply(t, s, big...)
	if w := walOf(s); w.recs != 0 {
		t.Fatalf("the log holds %d changes after a big one, want 0 (checkpointed with it)", w.recs)
	}
	sameAfterOpen(t, crashCopy(t, dir, false), s, "the file alone after the big change")
	// Another big one with the log empty is written as it is (no new
	// checkpoint); the log's next changes follow it.
	token := walOf(s).token
	var more []Op
	for i := range 600 {
		more = append(more, createVPC(VPC{Name: fmt.Sprintf("vpc-more-%03d-%s", i, strings.Repeat("y", 50))}))
	}
	mustApply(t, s, more...)
	if w := walOf(s); w.recs != 0 || w.token != token {
		t.Errorf("a big change with the log empty: %d changes in the log, token changed %v; want it written straight, without a checkpoint of its own", w.recs, w.token != token)
	}
	mustApply(t, s, moveSubnet("vpc-a", "ten-99", "test1"))
	sameAfterOpen(t, crashCopy(t, dir, true), s, "after a crash, a big change written with the log empty, then a logged one")

	const max = 2048
	walOf(s).max = max
	checkpoints, most := 0, 0
	for i := range 40 {
		before := walOf(s).recs
		mustApply(t, s, moveSubnet("vpc-a", "ten-99", []string{"test2", "test1"}[i%2]))
		fi, err := os.Stat(filepath.Join(dir, WALFileName))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > max {
			t.Fatalf("the log grew to %d bytes, past its %d", fi.Size(), max)
		}
		if recs := walOf(s).recs; recs <= before {
			checkpoints++
		} else {
			most = recs
		}
	}
	if checkpoints < 2 || most < 3 {
		t.Errorf("40 changes into a log of %d bytes: %d checkpoints, at most %d changes logged; want several of each", max, checkpoints, most)
	}
	sameAfterOpen(t, crashCopy(t, dir, true), s, "after a crash with a full log")
}

// FuzzReadWAL: any bytes read as a log never panic, and the records read
// are the ones written: written again under the same header they read
// back the same.
func FuzzReadWAL(f *testing.F) {
	var token [walTokenLen]byte
	copy(token[:], "01234567")
	log := appendWALHeader(nil, token)
	log = appendWALRecord(log, 7, Commit{
		Records: []Record{{Kind: "vpc", Key: "vpc-a", Value: []byte(`{"id":1}`)}, {Kind: "host", Key: "vpc-a/h"}},
		LastIDs: map[string]uint32{"vpc": 1, "host": 9},
	})
	log = appendWALRecord(log, 8, Commit{Records: []Record{{Kind: "vpc", Key: "vpc-b", Value: []byte{}}}})
	f.Add(log)
	f.Add(log[:len(log)-3])
	f.Add(appendWALHeader(nil, token))
	f.Add([]byte("vpcf"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, recs, whole, err := readWAL(data)
		if err != nil {
			return
		}
		if whole > len(data) {
			t.Fatalf("whole %d > %d bytes", whole, len(data))
		}
		if tok == nil {
			if len(recs) > 0 {
				t.Fatal("records without a header")
			}
			return
		}
		again := appendWALHeader(nil, [walTokenLen]byte(tok))
		for _, r := range recs {
			again = appendWALRecord(again, r.seq, r.commit)
		}
		tok2, recs2, whole2, err := readWAL(again)
		if err != nil || !bytes.Equal(tok, tok2) || whole2 != len(again) || fmt.Sprint(recs) != fmt.Sprint(recs2) {
			t.Fatalf("written again, the log reads back differently: %v %d/%d\n%v\n%v", err, whole2, len(again), recs, recs2)
		}
	})
}

// FuzzWALPayload: any payload decodes or is refused without a panic, and
// one that decodes is the change written: written again it reads back the
// same.
func FuzzWALPayload(f *testing.F) {
	f.Add(appendWALPayload(nil, Commit{
		Records: []Record{{Kind: "vpc", Key: "vpc-a", Value: []byte(`{"id":1}`)}, {Kind: "host", Key: "vpc-a/h"}},
		LastIDs: map[string]uint32{"vpc": 1, "host": 9},
	}))
	f.Add(appendWALPayload(nil, Commit{Records: []Record{{Kind: "vpc", Key: "k", Value: []byte{}}}}))
	f.Add([]byte{0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, p []byte) {
		c, ok := decodeWALPayload(p)
		if !ok {
			return
		}
		again := appendWALPayload(nil, c)
		c2, ok := decodeWALPayload(again)
		if !ok || fmt.Sprint(c) != fmt.Sprint(c2) {
			t.Fatalf("written again, the change reads back differently (%v):\n%v\n%v", ok, c, c2)
		}
	})
}

// A moment after the last change the log is checkpointed by itself: the
// file alone is current, and the log is empty.
func TestWALCheckpointsWhenQuiet(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	defer s.Close()
	b := s.Backend().(*Bolt)
	b.mu.Lock()
	b.wal.idle = 50 * time.Millisecond
	b.mu.Unlock()
	mustApply(t, s, seedOps()...)
	mustApply(t, s, moveSubnet("vpc-a", "ten-99", "test1"))
	deadline := time.Now().Add(10 * time.Second)
	for {
		b.mu.Lock()
		recs := b.wal.recs
		b.mu.Unlock()
		if recs == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log still holds %d changes 10 s after the last one", recs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	sameAfterOpen(t, crashCopy(t, dir, false), s, "the file alone after a quiet moment")
}

// A log whose header never reached the disk (zeros, as a crash right after
// a checkpoint can leave on some file systems) holds nothing; one that is
// not a log at all is refused.
func TestWALHeaderNeverWrittenOrForeign(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	mustApply(t, s, seedOps()...)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, content string
		ok            bool
	}{
		{"zeros", strings.Repeat("\x00", walHeaderLen), true},
		{"part of a zero header", "\x00\x00\x00", true},
		{"part of the magic", walMagic[:5], true},
		{"foreign", "this is not a write-ahead log", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := crashCopy(t, dir, false)
			putLog(t, c, []byte(tc.content))
			r, err := Open(context.Background(), c, nil, Existing())
			if !tc.ok {
				if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "not a vpcflow write-ahead log") {
					t.Fatalf("Open: %v, want ErrCorrupt", err)
				}
				if verr := Verify(filepath.Join(c, DBFileName)); !errors.Is(verr, ErrCorrupt) {
					t.Errorf("Verify: %v, want ErrCorrupt", verr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer r.Close()
			if h := hostOf(r, "vpc-a", "ten-99"); h != "test2" {
				t.Errorf("ten-99 → %q, want the seed's test2", h)
			}
		})
	}
}

// A crash between a checkpoint's transaction and the log's start-over
// leaves the old log beside the new file: its changes are in the file
// (numbered at or below it), so an open leaves them out and opens.
func TestWALCheckpointedLogIsLeftOut(t *testing.T) {
	dir := t.TempDir()
	s := openLogging(t, dir)
	defer s.Close()
	mustApply(t, s, seedOps()...)
	mustApply(t, s, moveSubnet("vpc-a", "ten-99", "test1"))
	oldLog := logIn(t, dir)
	checkpointed(t, s)
	crashed := crashCopy(t, dir, false)
	putLog(t, crashed, oldLog)
	if len(logIn(t, crashed)) <= walHeaderLen {
		t.Fatal("the old log beside the file holds no change: the case needs its changes there")
	}
	if err := Verify(filepath.Join(crashed, DBFileName)); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	sameAfterOpen(t, crashed, s, "after a crash right after a checkpoint")
}
