package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/e2e/netlab"
)

// proxyToPhys listens on 127.0.0.1 of the test's own namespace and
// forwards every connection to vpcflow's REST address inside the phys
// namespace, so a browser started by the test reaches /ui.
func (f *fabric) proxyToPhys() string {
	f.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(f.t, err)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
	)
	f.t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close() // the browser may keep them open
		}
		mu.Unlock()
		wg.Wait()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				up, err := f.phys.Dial(ctx, "tcp", restAddr)
				cancel()
				if err != nil {
					return
				}
				defer up.Close()
				mu.Lock()
				conns[up] = true
				mu.Unlock()
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
				go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
				<-done
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// browser starts headless Chromium (Debian's chromium).
func browser(t *testing.T) context.Context {
	t.Helper()
	netlab.Require(t, netlab.NeedBinary("chromium"))
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath("chromium"), chromedp.WindowSize(1500, 1100), chromedp.NoSandbox,
		chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	// Start the browser now, so its time does not count against a wait.
	must(t, chromedp.Do(ctx))
	t.Cleanup(cancel2)
	ctx, cancel3 := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancel3)
	return ctx
}

// textOf reads the text of the element sel selects in one step (the page
// re-renders its tables every few seconds, so a node found by one call
// may be gone by the next).
func textOf(ctx context.Context, sel string) (string, error) {
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	b, _ := json.Marshal(sel)
	text, err := chromedp.Run(qctx, chromedp.Evaluate[*string](fmt.Sprintf(`(e => e ? e.innerText : null)(document.querySelector(%s))`, b)))
	if err != nil {
		return "", err
	}
	if text == nil {
		return "", fmt.Errorf("nothing matches %s", sel)
	}
	return *text, nil
}

// waitText waits until the text of sel contains want.
func waitText(ctx context.Context, sel, want string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	var text string
	for {
		got, err := textOf(ctx, sel)
		text = got
		if err == nil && strings.Contains(text, want) {
			return text, nil
		}
		if time.Now().After(deadline) {
			return text, fmt.Errorf("%s never showed %q (it shows %q, %v)", sel, want, text, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestUITopologyPage loads /ui in headless Chromium against vpcflow
// running the seed scenario: the VPC, its vSwitch and hosts (up), the
// route entries, the switch; live counters that move with real traffic;
// a host and a route entry added over REST appear without a reload; a
// trace drawn from the form. The screenshot is saved in the lab
// directory (and in $VPCFLOW_UI_SCREENSHOT when set).
func TestUITopologyPage(t *testing.T) {
	ctx := browser(t)
	s := newSeed(t)
	base := s.proxyToPhys()
	must(t, chromedp.Do(ctx, chromedp.Navigate(base+"/ui/"),
		chromedp.WaitVisible(chromedp.CSS(`tr.host[data-host="test2"]`))))
	page := func(sel string) string {
		t.Helper()
		text, err := textOf(ctx, sel)
		must(t, err)
		return text
	}
	vpc := page(`details.vpc[data-vpc="vpc-seed"]`)
	for _, want := range []string{"VPC vpc-seed", "vSwitch vsw-a", "10.10.10.0/24", "gateway 10.10.10.1",
		"test1", "10.10.10.11", "52:58:00:98:c0:81", "br-test/vnet1", "172.18.3.0/24", "host test2"} {
		if !strings.Contains(vpc, want) {
			t.Errorf("the VPC's box does not show %q:\n%s", want, vpc)
		}
	}
	if st := page(`tr.host[data-host="test1"] td:last-child`); st != "up" {
		t.Errorf("test1 is %q, want up", st)
	}
	if sw := page(`#switches tbody`); !strings.Contains(sw, fmt.Sprintf("%016x", s.dpid)) || !strings.Contains(sw, "br-test") {
		t.Errorf("switches: %q", sw)
	}

	// Live counters: real traffic shows up without a reload.
	ping(t, s.vm1.container, "172.18.3.4", 5)
	if _, err := waitText(ctx, `#counters tr[data-key="vpc-seed/vsw-a"] td.fwd`, "10", 10*time.Second); err != nil {
		t.Error(err)
	}
	pingNone(t, s.vm1.node, 3, "10.10.10.99")
	if _, err := waitText(ctx, `#counters tr[data-key="vpc-seed/vsw-a"]`, "no_route 3", 10*time.Second); err != nil {
		t.Error(err)
	}

	// A change over REST appears by itself: a host (not plugged: down)
	// and a route entry to it.
	s.rest("POST", "/v1/vpcs/vpc-seed/hosts", map[string]any{"name": "test3", "vswitch": "vsw-a", "ip": "10.10.10.13",
		"mac": "52:58:00:98:c0:a3", "bridge": "br-test", "interface": "vnet5"}, 201)
	s.rest("POST", "/v1/vpcs/vpc-seed/subnets", map[string]any{"cidr": "172.18.5.0/24", "host": "test3"}, 201)
	if _, err := waitText(ctx, `tr.host[data-host="test3"]`, "down", 10*time.Second); err != nil {
		t.Error(err)
	}
	if _, err := waitText(ctx, `tr.route[data-route="172.18.5.0-24"]`, "host test3", 10*time.Second); err != nil {
		t.Error(err)
	}

	// A trace from the form.
	must(t, chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(`#t-from`), "test1"),
		chromedp.SetValue(chromedp.CSS(`#t-dst`), "172.18.3.4"),
		chromedp.SetValue(chromedp.CSS(`#t-src`), "172.18.1.3"),
		chromedp.Click(chromedp.CSS(`#t-installed`)),
		chromedp.Click(chromedp.CSS(`#t-go`)),
		chromedp.WaitVisible(chromedp.CSS(`.verdict[data-verdict="delivered"]`))))
	tr := page(`#trace-result`)
	for _, want := range []string{"delivered to host vpc-seed/test2", "Classifier", "SpoofGuard", "L3Forwarding",
		"route entry vpc-seed/172.18.3.0-24", "eth_dst := 52:58:00:98:c0:92", "no drift"} {
		if !strings.Contains(tr, want) {
			t.Errorf("the trace does not show %q:\n%s", want, tr)
		}
	}
	steps, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#trace-result .step").length`))
	must(t, err)
	// A delivered IPv4 packet walks every in-line IPv4 table of the pipeline.
	want := 0
	for _, tb := range pipeline.Default().Tables() {
		if !tb.Entry && tb.Handles&pipeline.IPv4 != 0 {
			want++
		}
	}
	if steps != want {
		t.Errorf("the trace draws %d tables, want %d", steps, want)
	}

	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	must(t, err)
	file := filepath.Join(s.lab.Dir(), "ui.png")
	must(t, os.WriteFile(file, png, 0o644))
	if dst := os.Getenv("VPCFLOW_UI_SCREENSHOT"); dst != "" {
		must(t, os.WriteFile(dst, png, 0o644))
		file = dst
	}
	t.Logf("screenshot (%d bytes): %s", len(png), file)
	if t.Failed() {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if html, err := chromedp.Run(qctx, chromedp.OuterHTML(chromedp.CSS("main"))); err == nil {
			t.Logf("page:\n%s", tail(html, 200))
		}
	}
}
