package aliyunapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/vpcflow/vpcflow/controller"
	"github.com/vpcflow/vpcflow/controller/controllertest"
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

const (
	testAK     = "LTAItestkey"
	testSecret = "s3cr3t-value"
	testDPID   = 0x1
)

// gatedDatapath is an in-memory switch whose confirmations can be held
// back: while the gate is closed, Apply waits.
type gatedDatapath struct {
	*controllertest.Datapath
	mu   sync.Mutex
	gate chan struct{} // nil: open
	held atomic.Int32
}

func (g *gatedDatapath) hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gate == nil {
		g.gate = make(chan struct{})
	}
}

func (g *gatedDatapath) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gate != nil {
		close(g.gate)
		g.gate = nil
	}
}

func (g *gatedDatapath) ApplySeq(ctx context.Context, mods openflow.FlowMods) error {
	g.mu.Lock()
	gate := g.gate
	g.mu.Unlock()
	if gate != nil {
		g.held.Add(1)
		defer g.held.Add(-1)
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return g.Datapath.ApplySeq(ctx, mods)
}

// rig is the API over a real controller and store, with one in-memory
// switch connected.
type rig struct {
	t      *testing.T
	ctrl   *controller.Controller
	store  *topology.Store
	dp     *gatedDatapath
	srv    *Server
	http   *httptest.Server
	skewNs atomic.Int64 // shifts the server's clock
	keys   string
	seq    atomic.Int64
}

func newRig(t *testing.T) *rig {
	t.Helper()
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	st, err := topology.NewStore(context.Background(), topology.NewMemory(), log)
	if err != nil {
		t.Fatal(err)
	}
	ctrl := controller.New(log, st, controller.Options{PushTimeout: 10 * time.Second, Chassis: &controllertest.Chassis{}})
	r := &rig{t: t, ctrl: ctrl, store: st, dp: &gatedDatapath{Datapath: controllertest.NewDatapath(testDPID)}}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go ctrl.Serve(ctx, r.dp)
	deadline := time.Now().Add(10 * time.Second)
	for len(ctrl.Switches()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("switch not connected")
		}
		time.Sleep(time.Millisecond)
	}
	r.keys = filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(r.keys, []byte("# test keys\n"+testAK+" "+testSecret+"\nother other-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r.srv, err = New(log, ctrl, Options{KeysFile: r.keys, Now: func() time.Time { return time.Now().Add(time.Duration(r.skewNs.Load())) }})
	if err != nil {
		t.Fatal(err)
	}
	r.http = httptest.NewServer(r.srv)
	t.Cleanup(func() { r.http.Close(); r.srv.Close() })
	return r
}

// answer is a decoded response.
type answer struct {
	status int
	body   map[string]any
	raw    string
}

func (a answer) code() string { s, _ := a.body["Code"].(string); return s }

// str digs a string out of the body by path ("Vpcs.Vpc.0.VpcId").
func (a answer) get(path string) any {
	var cur any = a.body
	for _, part := range strings.Split(path, ".") {
		switch c := cur.(type) {
		case map[string]any:
			cur = c[part]
		case []any:
			var i int
			if _, err := fmt.Sscanf(part, "%d", &i); err != nil || i >= len(c) {
				return nil
			}
			cur = c[i]
		default:
			return nil
		}
	}
	return cur
}

func (a answer) str(path string) string { s, _ := a.get(path).(string); return s }

func (a answer) list(path string) []any { l, _ := a.get(path).([]any); return l }

// v1 sends a v1-signed GET (aliyungo's way) with the given parameters.
func (r *rig) v1(version, action string, p map[string]string) answer {
	return r.v1With(testAK, testSecret, version, action, p, nil)
}

func (r *rig) v1With(ak, secret, version, action string, p map[string]string, edit func(q map[string]string)) answer {
	r.t.Helper()
	q := map[string]string{"Action": action, "Version": version, "Format": "JSON", "AccessKeyId": ak,
		"SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0", "SignatureNonce": fmt.Sprintf("nonce-%d-%d", time.Now().UnixNano(), r.seq.Add(1)),
		"Timestamp": time.Now().UTC().Format("2006-01-02T15:04:05Z")}
	for k, v := range p {
		q[k] = v
	}
	if edit != nil {
		edit(q)
	}
	q["Signature"] = SignV1("GET", secret, q)
	vals := url.Values{}
	for k, v := range q {
		vals.Set(k, v)
	}
	return r.do(http.MethodGet, "/?"+vals.Encode(), nil, nil)
}

// acs3 sends an ACS3-signed POST with the parameters in the query (the
// current SDK's way); edit may change the request after signing.
func (r *rig) acs3(action string, p map[string]string, edit func(*http.Request)) answer {
	r.t.Helper()
	vals := url.Values{}
	for k, v := range p {
		vals.Set(k, v)
	}
	req, err := http.NewRequest(http.MethodPost, r.http.URL+"/?"+vals.Encode(), nil)
	if err != nil {
		r.t.Fatal(err)
	}
	sum := sha256.Sum256(nil)
	req.Header.Set("x-acs-action", action)
	req.Header.Set("x-acs-version", VersionVPC)
	req.Header.Set("x-acs-date", time.Now().UTC().Format("2006-01-02T15:04:05Z"))
	req.Header.Set("x-acs-signature-nonce", fmt.Sprintf("n%d-%d", time.Now().UnixNano(), r.seq.Add(1)))
	req.Header.Set("x-acs-content-sha256", hex.EncodeToString(sum[:]))
	signed := []string{"host", "x-acs-action", "x-acs-content-sha256", "x-acs-date", "x-acs-signature-nonce", "x-acs-version"}
	sts, _ := acs3StringToSign(req, req.URL.Host, p, signed, hex.EncodeToString(sum[:]))
	req.Header.Set("Authorization", AlgorithmACS3+" Credential="+testAK+",SignedHeaders="+strings.Join(signed, ";")+",Signature="+acs3Signature(testSecret, sts))
	if edit != nil {
		edit(req)
	}
	return r.send(req)
}

func (r *rig) do(method, target string, body io.Reader, hdr map[string]string) answer {
	r.t.Helper()
	req, err := http.NewRequest(method, r.http.URL+target, body)
	if err != nil {
		r.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return r.send(req)
}

func (r *rig) send(req *http.Request) answer {
	r.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, raw: string(b)}
	if err := json.Unmarshal(b, &a.body); err != nil {
		r.t.Fatalf("answer is not JSON (%d): %s", resp.StatusCode, b)
	}
	if a.str("RequestId") == "" {
		r.t.Fatalf("answer without RequestId: %s", b)
	}
	return a
}

// ok fails unless the answer is a 200.
func (a answer) ok(t *testing.T) answer {
	t.Helper()
	if a.status != http.StatusOK {
		t.Fatalf("want 200, got %d: %s", a.status, a.raw)
	}
	return a
}

// refused fails unless the answer is the error code with the status.
func (a answer) refused(t *testing.T, status int, code string) answer {
	t.Helper()
	if a.status != status || a.code() != code {
		t.Fatalf("want %d %s, got %d: %s", status, code, a.status, a.raw)
	}
	for _, f := range []string{"RequestId", "HostId", "Code", "Message", "Recommend"} {
		if _, ok := a.body[f]; !ok {
			t.Fatalf("error envelope lacks %s: %s", f, a.raw)
		}
	}
	return a
}

// host registers a host over the backend, as the REST API would.
func (r *rig) host(vpc, vswitch, name, ip, mac string, port uint32) topology.Host {
	r.t.Helper()
	m, err := topology.ParseMAC(mac)
	if err != nil {
		r.t.Fatal(err)
	}
	out, err := r.ctrl.Apply(context.Background(), []topology.Op{topology.Create(&topology.Host{VPC: vpc, Name: name, VSwitch: vswitch,
		IP: mustAddr(ip), MAC: m, DPID: testDPID, OFPort: port})})
	if err != nil {
		r.t.Fatal(err)
	}
	return *out[0].Host()
}
