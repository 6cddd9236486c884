package e2e

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vpcflow/vpcflow/controller"
)

// impostor is a peer that speaks just enough OpenFlow 1.3 to complete the
// handshake with a chosen dpid, then records what it is sent.
type impostor struct {
	nc    net.Conn
	br    *bufio.Reader
	types []uint8 // message types received after the handshake
}

func readOF(r io.Reader) (typ uint8, xid uint32, body []byte, err error) {
	var h [8]byte
	if _, err = io.ReadFull(r, h[:]); err != nil {
		return 0, 0, nil, err
	}
	n := int(binary.BigEndian.Uint16(h[2:]))
	if n < 8 {
		return 0, 0, nil, fmt.Errorf("bad length %d", n)
	}
	body = make([]byte, n-8)
	_, err = io.ReadFull(r, body)
	return h[1], binary.BigEndian.Uint32(h[4:]), body, err
}

func ofMessage(typ uint8, xid uint32, body []byte) []byte {
	b := make([]byte, 8+len(body))
	b[0], b[1] = 4, typ
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	binary.BigEndian.PutUint32(b[4:], xid)
	copy(b[8:], body)
	return b
}

// claimDPID connects from the fabric's namespace to vpcflow's OpenFlow
// listener and completes the handshake as dpid.
func (f *fabric) claimDPID(dpid uint64) *impostor {
	f.t.Helper()
	nc, err := f.phys.Dial(testCtx(f.t), "tcp", "127.0.0.1:6653")
	must(f.t, err)
	f.t.Cleanup(func() { nc.Close() })
	im := &impostor{nc: nc, br: bufio.NewReader(nc)}
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = nc.Write(ofMessage(0, 1, []byte{0, 1, 0, 8, 0, 0, 0, 0x10})) // HELLO, version bitmap 1.3
	must(f.t, err)
	for {
		typ, xid, _, err := readOF(im.br)
		must(f.t, err)
		if typ == 5 { // FEATURES_REQUEST
			body := make([]byte, 24)
			binary.BigEndian.PutUint64(body, dpid)
			body[12] = 254
			_, err = nc.Write(ofMessage(6, xid, body))
			must(f.t, err)
			return im
		}
	}
}

// untilClosed reads until the server closes the connection (or timeout)
// and reports whether it did.
func (im *impostor) untilClosed(timeout time.Duration) bool {
	_ = im.nc.SetDeadline(time.Now().Add(timeout))
	for {
		typ, xid, _, err := readOF(im.br)
		if err != nil {
			var ne net.Error
			return !(errorsAs(err, &ne) && ne.Timeout())
		}
		im.types = append(im.types, typ)
		if typ == 2 { // echo request: answer, as a live switch would
			_, _ = im.nc.Write(ofMessage(3, xid, nil))
		}
	}
}

// TestImpostorCannotTakeOverDPID (issue 10.2): while br-test is connected,
// a peer that claims br-test's dpid is closed right after its handshake,
// is sent nothing (no flow, no request), and br-test stays connected with
// its flows untouched; the conflict is logged. Again and again.
func TestImpostorCannotTakeOverDPID(t *testing.T) {
	s := newSeed(t)
	ping(t, s.vm1.container, "172.18.3.4", 1)
	var before []controller.SwitchInfo
	must(t, json.Unmarshal(s.rest("GET", "/v1/switches", nil, 200), &before))
	flows := s.durations("br-test")
	start := time.Now()
	for i := 0; i < 3; i++ {
		im := s.claimDPID(s.dpid)
		if !im.untilClosed(10 * time.Second) {
			t.Fatalf("impostor %d not closed", i)
		}
		if len(im.types) != 0 {
			t.Errorf("impostor %d was sent message types %v after its handshake", i, im.types)
		}
	}
	var after []controller.SwitchInfo
	must(t, json.Unmarshal(s.rest("GET", "/v1/switches", nil, 200), &after))
	if len(after) != 1 || len(before) != 1 || after[0].Remote != before[0].Remote || !after[0].ConnectedSince.Equal(before[0].ConnectedSince) {
		t.Errorf("switches before %+v, after %+v: br-test was displaced", before, after)
	}
	s.assertNotReinstalled("br-test", flows, time.Since(start))
	ping(t, s.vm1.container, "172.18.3.4", 1)
	if n := strings.Count(s.controllerLog(), "refused a connection claiming the datapath id"); n == 0 {
		t.Error("the conflict is not in the log")
	}
}

// TestEmptyStoreKeepsFabric (issue 10.3): vpcflow restarted on an empty
// store (another --data-dir) finds br-test full of its flows: it deletes
// none (and says so), traffic goes on; POST /v1/switches/{dpid}/flush then
// deletes them on request.
func TestEmptyStoreKeepsFabric(t *testing.T) {
	s := newSeed(t)
	ping(t, s.vm1.container, "172.18.3.4", 1)
	n := s.flowCount("br-test")
	flows := s.durations("br-test")
	start := time.Now()
	must(t, s.ctrl.Kill())
	s.dataDir = filepath.Join(s.lab.Dir(), "another-data-dir")
	s.startController()
	s.waitSwitch(s.dpid)
	if _, added, deleted := s.reconcileCounts(); added != 0 || deleted != 0 {
		t.Errorf("reconcile on an empty store: added %d, deleted %d", added, deleted)
	}
	s.assertNotReinstalled("br-test", flows, time.Since(start))
	ping(t, s.vm1.container, "172.18.3.4", 1)
	log := s.controllerLog()
	if !strings.Contains(log, "NOT deleting flows of objects the store does not know") {
		t.Errorf("no explanation in the log:\n%s", tail(log, 20))
	}
	var res controller.ReconcileResult
	must(t, json.Unmarshal(s.rest("POST", fmt.Sprintf("/v1/switches/%016x/flush", s.dpid), nil, 200), &res))
	left := s.flowCount("br-test")
	t.Logf("br-test: %d flows; flush deleted %d, %d left (the pipeline's defaults)", n, res.Deleted, left)
	if res.Deleted == 0 || left != n-res.Deleted {
		t.Errorf("flush result %+v, %d flows left of %d", res, left, n)
	}
	pingFails(t, s.vm1.container, "172.18.3.4")
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }
