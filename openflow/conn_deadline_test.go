package openflow

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"go.uber.org/zap"
)

// laggyCtx reports a deadline earlier than the moment it is actually done:
// it stands for a context whose timer fires a little after its deadline
// (as timers do on a busy machine), exaggerated so the test is
// deterministic.
type laggyCtx struct {
	context.Context
	deadline time.Time
}

func (c laggyCtx) Deadline() (time.Time, bool) { return c.deadline, true }

// TestSendReportsContextErrorNotIOTimeout pins issue 9 item 8: a write
// that the context ends must fail with the context's error, never with the
// socket's "i/o timeout", even when the socket deadline would pass before
// the context's timer fires.
func TestSendReportsContextErrorNotIOTimeout(t *testing.T) {
	ours, peer := net.Pipe() // synchronous: a write blocks until the peer reads
	defer peer.Close()
	c := newConn(ours, zap.NewNop(), ServerOptions{}.withDefaults())
	defer c.close(errors.New("test over"))

	base, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	ctx := laggyCtx{Context: base, deadline: time.Now().Add(30 * time.Millisecond)}
	start := time.Now()
	err := c.send(ctx, func(w *msgWriter) { w.put(make([]byte, 1024)) })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("send to a peer that does not read: %v, want context.DeadlineExceeded", err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("send returned a socket timeout: %v", err)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("send gave up after %v, before the context was done", d)
	}
	if !c.isClosed() {
		t.Error("a write aborted half way must close the connection")
	}
}
