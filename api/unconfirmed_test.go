package api

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// TestUnconfirmedIs202: a change stored but refused by a switch, or not
// confirmed within the request's timeout, is answered 202 with what was
// stored and which switches did not confirm it and why: never 500, and
// never later than the timeout.
func TestUnconfirmedIs202(t *testing.T) {
	e := newSwitchEnv(t, Options{RequestTimeout: 400 * time.Millisecond})
	e.seed()

	// The switch refuses the bundle: 202, and the change is stored.
	e.dp.FailApply(errors.New("OFPBRC_EPERM: barrier refused"))
	r := e.must(202, "POST", "/v1/vpcs/vpc-a/subnets", `{"cidr":"172.18.9.0/24","host":"test1"}`)
	ab := decode[struct {
		Message     string          `json:"message"`
		Object      topology.Subnet `json:"object"`
		Unconfirmed []struct {
			DPID   string `json:"dpid"`
			Bridge string `json:"bridge"`
			Reason string `json:"reason"`
		} `json:"unconfirmed"`
	}](t, r)
	if ab.Object.Name != "172.18.9.0-24" || ab.Object.ID == 0 || len(ab.Unconfirmed) != 1 ||
		ab.Unconfirmed[0].DPID != "0000000000000001" || ab.Unconfirmed[0].Bridge != "br-test" ||
		!strings.Contains(ab.Unconfirmed[0].Reason, "barrier refused") || !strings.Contains(ab.Message, "change stored") {
		t.Fatalf("202 body %s", r.body)
	}
	if got := r.header.Get("Location"); got != "/v1/vpcs/vpc-a/subnets/172.18.9.0-24" {
		t.Fatalf("Location %q", got)
	}
	e.must(200, "GET", "/v1/vpcs/vpc-a/subnets/172.18.9.0-24", "")
	<-e.dp.Closed() // disconnected to resync

	// A switch that stopped answering: every kind of change is answered
	// 202 when the request's timeout ends, well before the switch's own
	// push timeout (2s).
	e = newSwitchEnv(t, Options{RequestTimeout: 400 * time.Millisecond})
	e.seed()
	e.dp.Hang(true)
	for _, c := range []struct{ method, path, body, want string }{
		{"POST", "/v1/vpcs/vpc-a/subnets", `{"cidr":"172.18.9.0/24","host":"test1"}`, `"object":{"id":3,`},
		{"POST", "/v1/vpcs/vpc-a/subnets", `[{"cidr":"172.18.10.0/24","host":"test1"},{"cidr":"172.18.11.0/24","host":"test2"}]`, `"objects":[{"id":4,`},
		{"PUT", "/v1/vpcs/vpc-a/subnets/172.18.9.0-24", `{"host":"test2"}`, `"host":"test2"`},
		{"PUT", "/v1/vpcs/vpc-a/hosts/test2", `{"mac":"52:58:00:98:c0:99"}`, `"mac":"52:58:00:98:c0:99"`},
		{"DELETE", "/v1/vpcs/vpc-a/subnets/172.18.10.0-24", ``, `"unconfirmed":[{"dpid":"0000000000000001"`},
	} {
		start := time.Now()
		r := e.must(202, c.method, c.path, c.body)
		took := time.Since(start)
		if took > 1500*time.Millisecond {
			t.Fatalf("%s %s answered after %s: the request timeout is 400ms", c.method, c.path, took)
		}
		// Once its push timeout (2s) has passed, the switch is
		// disconnected to be reconciled, and that is the reason.
		if !strings.Contains(string(r.body), c.want) || (!strings.Contains(string(r.body), "no confirmation before the request's deadline") &&
			!strings.Contains(string(r.body), "switch disconnected before confirming")) {
			t.Fatalf("%s %s: %s", c.method, c.path, r.body)
		}
	}
	if got := e.names("subnets", "vpc-a"); got != "172.18.1.0-24,172.18.11.0-24,172.18.3.0-24,172.18.9.0-24" {
		t.Fatalf("subnets stored: %s", got)
	}

	// The client may ask for less than the server's timeout.
	e2 := newSwitchEnv(t, Options{RequestTimeout: time.Minute})
	e2.seed()
	e2.dp.Hang(true)
	req, _ := http.NewRequest("POST", e2.srv.URL+"/v1/vpcs/vpc-a/subnets", strings.NewReader(`{"cidr":"172.18.9.0/24","host":"test1"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(TimeoutHeader, "0.3")
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 202 || time.Since(start) > 1500*time.Millisecond {
		t.Fatalf("X-Request-Timeout 0.3: %d after %s", resp.StatusCode, time.Since(start))
	}
	for _, bad := range []string{"soon", "-1s", "0"} {
		req, _ := http.NewRequest("GET", e2.srv.URL+"/v1/vpcs", nil)
		req.Header.Set(TimeoutHeader, bad)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Fatalf("X-Request-Timeout %q: %d", bad, resp.StatusCode)
		}
	}

	// The Go client returns what was stored, with *UnconfirmedError.
	c, err := NewClient(e2.srv.URL, nil, WithRequestTimeout(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.CreateSubnet(context.Background(), "vpc-a", SubnetRequest{CIDR: "172.18.20.0/24", Host: "test1"})
	var ue *UnconfirmedError
	if !errors.As(err, &ue) || len(ue.Switches) != 1 || ue.Switches[0].DPID != 1 || s.Name != "172.18.20.0-24" || s.ID == 0 {
		t.Fatalf("CreateSubnet: %+v %v", s, err)
	}
	ss, err := c.CreateSubnets(context.Background(), "vpc-a", []SubnetRequest{{CIDR: "172.18.21.0/24", Host: "test1"}})
	if !errors.As(err, &ue) || len(ss) != 1 || ss[0].Name != "172.18.21.0-24" {
		t.Fatalf("CreateSubnets: %+v %v", ss, err)
	}
	if err := c.DeleteSubnet(context.Background(), "vpc-a", "172.18.21.0-24"); !errors.As(err, &ue) {
		t.Fatalf("DeleteSubnet: %v", err)
	}
}

// stuckSwitch is a real OpenFlow peer over loopback TCP that does the
// handshake and answers echo requests (so the connection stays up) but
// never answers anything else: the flow dump that reconciles it never
// comes back.
type stuckSwitch struct {
	nc   net.Conn
	seen chan uint8 // types of the messages it got after the handshake
}

func ofMsg(typ uint8, xid uint32, body []byte) []byte {
	b := make([]byte, 8+len(body))
	b[0], b[1] = 4, typ
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	binary.BigEndian.PutUint32(b[4:], xid)
	copy(b[8:], body)
	return b
}

func readOFMsg(r io.Reader) (typ uint8, xid uint32, body []byte, err error) {
	var h [8]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, 0, nil, err
	}
	n := int(binary.BigEndian.Uint16(h[2:]))
	if n < 8 {
		return 0, 0, nil, errors.New("short OpenFlow message")
	}
	body = make([]byte, n-8)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, 0, nil, err
	}
	return h[1], binary.BigEndian.Uint32(h[4:]), body, nil
}

func dialStuckSwitch(t *testing.T, addr string, dpid uint64) *stuckSwitch {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	s := &stuckSwitch{nc: nc, seen: make(chan uint8, 1024)}
	if _, err := nc.Write(ofMsg(0, 1, nil)); err != nil { // HELLO
		t.Fatal(err)
	}
	go func() {
		for {
			typ, xid, body, err := readOFMsg(nc)
			if err != nil {
				close(s.seen)
				return
			}
			switch typ {
			case 5: // FEATURES_REQUEST
				reply := make([]byte, 24)
				binary.BigEndian.PutUint64(reply, dpid)
				reply[12] = 254 // n_tables
				_, _ = nc.Write(ofMsg(6, xid, reply))
			case 2: // ECHO_REQUEST
				_, _ = nc.Write(ofMsg(3, xid, body))
			case 0: // HELLO
			default:
				select {
				case s.seen <- typ:
				default:
				}
			}
		}
	}()
	return s
}

// TestStuckSwitchOverOpenFlow: a switch that answers echo but never its
// flow dump (the reconciliation after it connects never ends) must not
// make a change hang: the change is answered 202 at the request's
// timeout; a flow dump of it is answered 504 at the timeout; /readyz says
// it is not reconciled.
func TestStuckSwitchOverOpenFlow(t *testing.T) {
	c, st := newController(t)
	e := &testEnv{t: t, store: st, ctrl: c}
	e.serve(c, Options{RequestTimeout: 700 * time.Millisecond})
	e.seed()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ofs := openflow.NewServer(zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), c.Controller, openflow.ServerOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = ofs.Serve(ctx, ln)
	}()
	t.Cleanup(func() {
		cancel()
		<-served
	})
	sw := dialStuckSwitch(t, ln.Addr().String(), 1)
	// Wait for the flow dump (multipart request) it will never answer.
	deadline := time.After(10 * time.Second)
	for got := false; !got; {
		select {
		case typ, ok := <-sw.seen:
			if !ok {
				t.Fatal("controller closed the connection")
			}
			got = typ == 18 // OFPT_MULTIPART_REQUEST
		case <-deadline:
			t.Fatal("no flow dump requested")
		}
	}

	start := time.Now()
	r := e.must(202, "POST", "/v1/vpcs/vpc-a/subnets", `{"cidr":"172.18.9.0/24","host":"test1"}`)
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("answered after %s; the request timeout is 700ms", took)
	}
	if !strings.Contains(string(r.body), `"dpid":"0000000000000001","bridge":"br-test","reason":"no confirmation before the request's deadline`) {
		t.Fatalf("202 body %s", r.body)
	}
	start = time.Now()
	e.must(504, "GET", "/v1/switches/0000000000000001/flows", "")
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("flow dump answered after %s", took)
	}
	r = e.do("GET", "/readyz", "")
	if r.status != 503 || !strings.Contains(string(r.body), "switch 0000000000000001 (from 127.0.0.1:") ||
		!strings.Contains(string(r.body), "is connected but its flows are not reconciled yet") {
		t.Fatalf("readyz %d %s", r.status, r.body)
	}
	// The echo kept it connected all along.
	select {
	case _, ok := <-sw.seen:
		if !ok {
			t.Fatal("the stuck switch was disconnected")
		}
	default:
	}
}
