package topology

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// gatedBackend holds each commit until the test lets it go, and fails it
// when told to.
type gatedBackend struct {
	Backend
	entered chan struct{}
	release chan error // nil: commit; an error: refuse
}

func (b *gatedBackend) Commit(ctx context.Context, c Commit) error {
	b.entered <- struct{}{}
	if err := <-b.release; err != nil {
		return err
	}
	return b.Backend.Commit(ctx, c)
}

// TestApplyHoldsReadersThroughABigCommitOnly: while the backend commits,
// readers see the state as it was for a small change, and wait for a
// change of heldCommitOps ops or more (which is not undone and done
// again). Either change refused by the backend leaves the state, and the
// IDs it hands out next, as they were.
func TestApplyHoldsReadersThroughABigCommitOnly(t *testing.T) {
	hostsOf := func(from, n int) []Op {
		ops := make([]Op, n)
		for i := range ops {
			v := from + i
			ops[i] = createHost(Host{VPC: "v", Name: fmt.Sprintf("h%04d", v), VSwitch: "w",
				IP: ip(fmt.Sprintf("10.0.%d.%d", v/250, v%250+1)), MAC: mac(fmt.Sprintf("02:00:00:00:%02x:%02x", v>>8, v&0xff)), DPID: 1, OFPort: uint32(v + 1)})
		}
		return ops
	}
	for _, tc := range []struct {
		name string
		n    int
		held bool
	}{
		{"a small change", heldCommitOps - 1, false},
		{"a big change", heldCommitOps, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gb := &gatedBackend{Backend: NewMemory(), entered: make(chan struct{}), release: make(chan error)}
			s, err := NewStore(context.Background(), gb, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			go func() { <-gb.entered; gb.release <- nil }()
			mustApply(t, s, createVPC(VPC{Name: "v"}), createVSwitch(VSwitch{VPC: "v", Name: "w", CIDR: pfx("10.0.0.0/16")}))
			count := func() (n int) {
				s.Read(func(st *State) { n = len(st.Hosts("v")) })
				return n
			}
			// readDuringCommit applies ops, and reads while the backend
			// holds their commit; it says whether the read returned before
			// the commit was let go, and what it saw.
			readDuringCommit := func(ops []Op, commit error) (early bool, seen int, applyErr error) {
				done := make(chan error, 1)
				go func() {
					_, err := s.Apply(context.Background(), ops)
					done <- err
				}()
				select {
				case <-gb.entered:
				case err := <-done:
					t.Fatalf("Apply did not commit: %v", err)
				}
				read := make(chan int, 1)
				go func() { read <- count() }()
				select {
				case seen = <-read:
					early = true
				case <-time.After(200 * time.Millisecond):
				}
				gb.release <- commit
				if !early {
					seen = <-read
				}
				return early, seen, <-done
			}

			early, seen, err := readDuringCommit(hostsOf(0, tc.n), errors.New("disk full"))
			if err == nil {
				t.Fatal("a refused commit was not reported")
			}
			if early == tc.held {
				t.Errorf("refused: a reader returned during the commit: %v, want %v", early, !tc.held)
			}
			if seen != 0 || count() != 0 {
				t.Errorf("refused: a reader saw %d hosts, %d after: want 0", seen, count())
			}

			early, seen, err = readDuringCommit(hostsOf(0, tc.n), nil)
			if err != nil {
				t.Fatal(err)
			}
			if early == tc.held {
				t.Errorf("committed: a reader returned during the commit: %v, want %v", early, !tc.held)
			}
			if want := map[bool]int{false: 0, true: tc.n}[tc.held]; seen != want {
				t.Errorf("committed: a reader during the commit saw %d hosts, want %d", seen, want)
			}
			if count() != tc.n {
				t.Errorf("%d hosts after the commit, want %d", count(), tc.n)
			}
			// The refused change handed out no IDs: the first host is 1.
			s.Read(func(st *State) {
				if h, _ := st.Host("v", "h0000"); h.ID != 1 {
					t.Errorf("first host has ID %d after a refused change, want 1", h.ID)
				}
			})
		})
	}
}
