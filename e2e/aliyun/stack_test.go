package aliyun

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/vpcflow/vpcflow/aliyunapi"
	"github.com/vpcflow/vpcflow/api"
	"github.com/vpcflow/vpcflow/controller"
	"github.com/vpcflow/vpcflow/controller/controllertest"
	"github.com/vpcflow/vpcflow/openflow"
	"github.com/vpcflow/vpcflow/topology"
)

// Access keys of the in-process stack.
const (
	testAK     = "LTAI5tVpcflowTestKey"
	testSecret = "vpcflow-test-secret-0123456789"
	testRegion = "cn-hangzhou"
	testDPID   = 0x42
)

// heldSwitch is an in-memory switch whose confirmations can be held back,
// to see route entries Pending.
type heldSwitch struct {
	*controllertest.Datapath
	mu   sync.Mutex
	gate chan struct{}
}

func (h *heldSwitch) hold() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gate == nil {
		h.gate = make(chan struct{})
	}
}

func (h *heldSwitch) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gate != nil {
		close(h.gate)
		h.gate = nil
	}
}

func (h *heldSwitch) ApplySeq(ctx context.Context, mods openflow.FlowMods) error {
	h.mu.Lock()
	gate := h.gate
	h.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return h.Datapath.ApplySeq(ctx, mods)
}

// stack is vpcflow in-process as `vpcflow serve` wires it: one store, one
// controller, the REST API and the Aliyun API over the controller, and an
// in-memory switch connected.
type stack struct {
	t      *testing.T
	ctrl   *controller.Controller
	sw     *heldSwitch
	rest   string // base URL
	aliyun string // host:port
}

func newStack(t *testing.T) *stack {
	t.Helper()
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	st, err := topology.NewStore(context.Background(), topology.NewMemory(), log)
	if err != nil {
		t.Fatal(err)
	}
	ctrl := controller.New(log, st, controller.Options{PushTimeout: 20 * time.Second, Chassis: &controllertest.Chassis{}})
	s := &stack{t: t, ctrl: ctrl, sw: &heldSwitch{Datapath: controllertest.NewDatapath(testDPID)}}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go ctrl.Serve(ctx, s.sw)
	for deadline := time.Now().Add(10 * time.Second); len(ctrl.Switches()) == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("in-memory switch not connected")
		}
	}
	keys := filepath.Join(t.TempDir(), "aliyun-keys")
	if err := os.WriteFile(keys, []byte(testAK+" "+testSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ali, err := aliyunapi.New(log.Named("aliyun"), ctrl, aliyunapi.Options{KeysFile: keys})
	if err != nil {
		t.Fatal(err)
	}
	aliSrv := httptest.NewServer(ali)
	restSrv := httptest.NewServer(api.NewServer(log.Named("api"), ctrl, api.Options{}))
	t.Cleanup(func() { aliSrv.Close(); restSrv.Close(); ali.Close() })
	s.rest = restSrv.URL
	s.aliyun = strings.TrimPrefix(aliSrv.URL, "http://")
	return s
}

// restJSON does a REST call and decodes the answer.
func (s *stack) restJSON(method, path, body string, want int) map[string]any {
	s.t.Helper()
	req, err := http.NewRequest(method, s.rest+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		s.t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, b)
	}
	var m map[string]any
	if len(b) > 0 && b[0] == '{' {
		if err := json.Unmarshal(b, &m); err != nil {
			s.t.Fatal(err)
		}
	}
	return m
}

// addHost registers a host over REST on the in-memory switch.
func (s *stack) addHost(vpc, vswitch, name, ip, mac string, port int) {
	s.t.Helper()
	s.restJSON("POST", "/v1/vpcs/"+vpc+"/hosts", fmt.Sprintf(`{"name":%q,"vswitch":%q,"ip":%q,"mac":%q,"dpid":"%016x","ofport":%d}`,
		name, vswitch, ip, mac, testDPID, port), 201)
}

func eventually(t *testing.T, what string, limit time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, limit, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
