package openflow

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/vpcflow/vpcflow/e2e/netlab"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// ovsLab is a netlab lab whose node "phys" runs a private Open vSwitch;
// the controller under test listens inside that node, so nothing of the
// test (bridges, their tap devices, ports, sockets) touches the host's
// namespace. Tests that need it are skipped without root or OVS, and fail
// then with VPCFLOW_E2E=1 (netlab.Require).
type ovsLab struct {
	lab  *netlab.Lab
	phys *netlab.Node
	ovs  *netlab.OVS
}

func newOVSLab(t *testing.T, ctx context.Context) *ovsLab {
	t.Helper()
	lab := netlab.New(t)
	phys, err := lab.AddNode("phys")
	if err != nil {
		t.Fatal(err)
	}
	o, err := phys.StartOVS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return &ovsLab{lab: lab, phys: phys, ovs: o}
}

// addBridge adds a userspace, OpenFlow 1.3-only, secure-fail-mode bridge
// with datapath id dpid and no controller yet.
func (l *ovsLab) addBridge(t *testing.T, ctx context.Context, br string, dpid uint64) {
	t.Helper()
	if err := l.ovs.AddBridge(ctx, br); err != nil {
		t.Fatal(err)
	}
	if _, err := l.ovs.Vsctl(ctx, "set", "bridge", br, fmt.Sprintf("other_config:datapath-id=%016x", dpid)); err != nil {
		t.Fatal(err)
	}
}

// startServer runs a controller on 127.0.0.1:0 inside the OVS node until
// the test ends.
func (l *ovsLab) startServer(t *testing.T, h Handler, opts ServerOptions) string {
	t.Helper()
	ln, err := l.phys.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := startServerOn(t, ln, h, opts)
	return addr
}

// setController points br at the controller at addr (out of band), with
// more Controller columns (e.g. "inactivity_probe=1000") if given.
func (l *ovsLab) setController(t *testing.T, ctx context.Context, br, addr string, extra ...string) {
	t.Helper()
	if err := l.ovs.SetController(ctx, br, "tcp:"+addr); err != nil {
		t.Fatal(err)
	}
	if len(extra) > 0 {
		if _, err := l.ovs.Vsctl(ctx, append([]string{"set", "controller", br}, extra...)...); err != nil {
			t.Fatal(err)
		}
	}
}

// ofctl runs ovs-ofctl -O OpenFlow13 SUBCOMMAND <br's mgmt socket> ARGS.
func (l *ovsLab) ofctl(ctx context.Context, br string, args ...string) (string, error) {
	return l.ovs.Ofctl(ctx, br, args...)
}

// recorder is a test Handler that reports lifecycle events on channels.
type recorder struct {
	mu           sync.Mutex
	connected    chan *Switch
	disconnected chan *Switch
	active       map[uint64]*Switch
}

func newRecorder() *recorder {
	return &recorder{
		connected:    make(chan *Switch, 64),
		disconnected: make(chan *Switch, 64),
		active:       map[uint64]*Switch{},
	}
}

func (r *recorder) SwitchConnected(ctx context.Context, sw *Switch) {
	r.mu.Lock()
	r.active[sw.DPID()] = sw
	r.mu.Unlock()
	r.connected <- sw
}

func (r *recorder) SwitchDisconnected(sw *Switch) {
	r.mu.Lock()
	if r.active[sw.DPID()] == sw {
		delete(r.active, sw.DPID())
	}
	r.mu.Unlock()
	r.disconnected <- sw
}

func (r *recorder) waitConnected(t *testing.T, dpid uint64, timeout time.Duration) *Switch {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case sw := <-r.connected:
			if sw.DPID() == dpid {
				return sw
			}
		case <-deadline:
			t.Fatalf("switch %016x did not connect within %v", dpid, timeout)
			return nil
		}
	}
}

func (r *recorder) waitDisconnected(t *testing.T, sw *Switch, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case d := <-r.disconnected:
			if d == sw {
				return
			}
		case <-deadline:
			t.Fatalf("%s not reported disconnected within %v", sw, timeout)
		}
	}
}

// startServer runs a Server on 127.0.0.1:0 until the test ends.
func startServer(t *testing.T, h Handler, opts ServerOptions) (addr string, log *zap.Logger) {
	t.Helper()
	return startServerOn(t, mustListen(t), h, opts)
}

// startServerOn runs a Server on ln (e.g. a listener opened in a netlab
// node) until the test ends.
func startServerOn(t *testing.T, ln net.Listener, h Handler, opts ServerOptions) (addr string, log *zap.Logger) {
	t.Helper()
	log = testLogger(t)
	return serveUntilEnd(t, NewServer(log, h, opts), ln), log
}

// serveUntilEnd runs srv on ln until the test ends, and returns ln's
// address.
func serveUntilEnd(t *testing.T, srv *Server, ln net.Listener) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, net.ErrClosed) {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return within 10s of cancel")
		}
	})
	return ln.Addr().String()
}

func mustListen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// testLogger logs to the test at info level (debug with VPCFLOW_DEBUG=1).
func testLogger(t *testing.T) *zap.Logger {
	lvl := zap.InfoLevel
	if os.Getenv("VPCFLOW_DEBUG") == "1" {
		lvl = zap.DebugLevel
	}
	return zaptest.NewLogger(t, zaptest.Level(lvl))
}

// askedParts is a PartQueue that records which parts were asked for, so a
// test can give the next part only once the sender asked for it.
type askedParts struct {
	*PartQueue[FlowMods]
	asked chan int // each i given to Part, in order
}

func newAskedParts() askedParts {
	return askedParts{NewPartQueue[FlowMods](), make(chan int, 64)}
}

func (p askedParts) Part(ctx context.Context, i int) (FlowMods, bool, error) {
	select {
	case p.asked <- i:
	default: // a sender that asks again and again: the first asks suffice
	}
	return p.PartQueue.Part(ctx, i)
}

// waitAsked waits until part i was asked for.
func (p askedParts) waitAsked(t *testing.T, i int) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case j := <-p.asked:
			if j >= i {
				return
			}
		case <-deadline:
			t.Fatalf("part %d was never asked for (the sender waits for all parts?)", i)
		}
	}
}
