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

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/chromedp"

	"github.com/vpcflow/vpcflow/controller/pipeline"
	"github.com/vpcflow/vpcflow/e2e/netlab"
	"github.com/vpcflow/vpcflow/topology"
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

// evalJS runs a JavaScript expression in the page in one step and
// returns its value.
func evalJS[T any](ctx context.Context, expr string) (T, error) {
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return chromedp.Run(qctx, chromedp.Evaluate[T](expr))
}

// waitJS waits until a JavaScript expression gives want.
func waitJS(ctx context.Context, what, expr, want string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		got, err := evalJS[string](ctx, expr)
		if err == nil && got == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %q, want %q (%v)", what, got, want, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// uiPaging checks the paging of a vSwitch of more than a page of hosts
// and the filter, both done by the server: vsw-big with big000…big119
// (not plugged) shows page 1 of 3, next and prev walk the pages by
// token, the filter box narrows the list through ?q (the count shown is
// the server's X-Total-Count), and the trace form offers hosts found by
// what is typed. No request of the page asks for a whole host list.
func uiPaging(t *testing.T, ctx context.Context, s *seed) {
	t.Helper()
	s.rest("POST", "/v1/vpcs/vpc-seed/vswitches", map[string]any{"name": "vsw-big", "cidr": "10.10.20.0/24"}, 201)
	hosts := make([]map[string]any, 120)
	for i := range hosts {
		hosts[i] = map[string]any{"name": fmt.Sprintf("big%03d", i), "vswitch": "vsw-big", "ip": fmt.Sprintf("10.10.20.%d", 10+i),
			"mac": fmt.Sprintf("52:58:00:20:00:%02x", i), "bridge": "br-test", "interface": fmt.Sprintf("vbig%d", i)}
	}
	s.rest("POST", "/v1/vpcs/vpc-seed/hosts", hosts, 201)
	_, err := evalJS[bool](ctx, `performance.setResourceTimingBufferSize(100000), performance.clearResourceTimings(), true`)
	must(t, err)

	const big = `.vswitch[data-vswitch="vsw-big"]`
	bigJS, _ := json.Marshal(big)
	// The names of the rows shown, "first…last (count)".
	rows := fmt.Sprintf(`(() => { const r = [...document.querySelectorAll(%s + " tr.host")].map((e) => e.dataset.host);
		return r.length ? r[0] + "…" + r[r.length - 1] + " (" + r.length + ")" : "none"; })()`, bigJS)
	pagerText := fmt.Sprintf(`(e => e ? e.innerText.split("\n")[0].replace(/\s*‹.*/, "").trim() : "no pager")(document.querySelector(%s + " .pager"))`, bigJS)
	click := func(dir string) {
		t.Helper()
		_, err := evalJS[bool](ctx, fmt.Sprintf(`document.querySelector(%s + ' button[data-dir="%s"]').click(), true`, bigJS, dir))
		must(t, err)
	}
	for _, step := range []struct {
		do           string
		pager, shown string
	}{
		{"", "page 1 of 3", "big000…big049 (50)"},
		{"next", "page 2 of 3", "big050…big099 (50)"},
		{"next", "page 3 of 3", "big100…big119 (20)"},
		{"prev", "page 2 of 3", "big050…big099 (50)"},
		{"prev", "page 1 of 3", "big000…big049 (50)"},
	} {
		if step.do != "" {
			click(step.do)
		}
		if err := waitJS(ctx, "pager after "+step.do, pagerText, step.pager, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		if err := waitJS(ctx, "rows on "+step.pager, rows, step.shown, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := waitText(ctx, big, "120 hosts", 10*time.Second); err != nil {
		t.Error(err)
	}
	if _, err := waitText(ctx, `details.vpc[data-vpc="vpc-seed"] > summary`, "123 hosts · 3 route entries", 10*time.Second); err != nil {
		t.Error(err)
	}
	if down, err := textOf(ctx, big+` tr.host[data-host="big000"] td:last-child`); err != nil || down != "down" {
		t.Errorf("big000 is %q (%v), want down", down, err)
	}

	// The filter, typed: the server's count, its page, no pager.
	must(t, chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(`#filter`), "BIG11")))
	if _, err := waitText(ctx, big, "10 matching hosts", 10*time.Second); err != nil {
		t.Error(err)
	}
	if err := waitJS(ctx, "rows filtered", rows, "big110…big119 (10)", 10*time.Second); err != nil {
		t.Error(err)
	}
	if p, _ := evalJS[string](ctx, pagerText); p != "no pager" {
		t.Errorf("10 hosts, and a pager: %q", p)
	}
	if _, err := waitText(ctx, `.vswitch[data-vswitch="vsw-a"]`, "0 matching hosts", 10*time.Second); err != nil {
		t.Error(err)
	}
	if _, err := waitText(ctx, `details.vpc[data-vpc="vpc-seed"] > summary`, "123 hosts", 10*time.Second); err != nil {
		t.Error(err) // the VPC's counts stay whole
	}
	// Through the server: the page asked for ?q, and never for a whole list.
	asked, err := evalJS[[]string](ctx, `performance.getEntriesByType("resource").map((e) => e.name).filter((u) => /\/v1\/vpcs\/[^/]+\/(hosts|subnets)/.test(u))`)
	must(t, err)
	var filtered bool
	for _, u := range asked {
		if strings.Contains(u, "vswitch=vsw-big") && strings.Contains(u, "q=BIG11") {
			filtered = true
		}
		if !strings.Contains(u, "limit=") {
			t.Errorf("the page asked for a whole list: %s", u)
		}
	}
	if !filtered {
		t.Errorf("no request asked the server for vsw-big's hosts with q=BIG11: %q", asked)
	}

	// Cleared: page 1 of 3 again.
	_, err = evalJS[bool](ctx, `(e => (e.value = "", e.dispatchEvent(new Event("input")), true))(document.querySelector("#filter"))`)
	must(t, err)
	if err := waitJS(ctx, "pager after clearing the filter", pagerText, "page 1 of 3", 10*time.Second); err != nil {
		t.Error(err)
	}

	// The trace form offers at most a page of hosts, those that match.
	_, err = evalJS[bool](ctx, `(e => (e.value = "big11", e.dispatchEvent(new Event("input")), true))(document.querySelector("#t-from"))`)
	must(t, err)
	if err := waitJS(ctx, "trace form's hosts", `[...document.querySelectorAll("#t-hosts option")].map((o) => o.value).join(",")`,
		"big110,big111,big112,big113,big114,big115,big116,big117,big118,big119", 10*time.Second); err != nil {
		t.Error(err)
	}
}

// uiClosedVSwitch checks the host count of a closed vSwitch: vsw-a
// (test1, test2, test3), closed by the user, still says how many hosts
// it has, and follows a host added over REST and the filter box, from
// the server's X-Total-Count of a page of one (its host list is not
// fetched while it is closed, so a count kept from when it was open
// would stay at 3).
func uiClosedVSwitch(t *testing.T, ctx context.Context, s *seed) {
	t.Helper()
	const vswA = `.vswitch[data-vswitch="vsw-a"]`
	selJS, _ := json.Marshal(vswA)
	// Closed by the user (again, until a redraw shows it closed: a redraw
	// between the click and its toggle event would lose it).
	if err := waitJS(ctx, "vsw-a closed", fmt.Sprintf(`(e => { if (!e) return "none"; if (e.open) e.open = false;
		return e.querySelector("table.hosts") ? "open" : "closed"; })(document.querySelector(%s))`, selJS), "closed", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := waitText(ctx, vswA+" > summary", "3 hosts", 10*time.Second); err != nil {
		t.Error(err)
	}
	s.rest("POST", "/v1/vpcs/vpc-seed/hosts", map[string]any{"name": "test4", "vswitch": "vsw-a", "ip": "10.10.10.14",
		"mac": "52:58:00:98:c0:a4", "bridge": "br-test", "interface": "vnet6"}, 201)
	if _, err := waitText(ctx, vswA+" > summary", "4 hosts", 10*time.Second); err != nil {
		t.Error(err)
	}
	must(t, chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(`#filter`), "test4")))
	if _, err := waitText(ctx, vswA+" > summary", "1 matching hosts", 10*time.Second); err != nil {
		t.Error(err)
	}
	if open, _ := evalJS[bool](ctx, fmt.Sprintf(`!!document.querySelector(%s + " table.hosts")`, selJS)); open {
		t.Error("vsw-a shows its hosts while closed")
	}
	// A page of one, filtered.
	asked, err := evalJS[[]string](ctx, `performance.getEntriesByType("resource").map((e) => e.name).filter((u) => /\/v1\/vpcs\/[^/]+\/hosts/.test(u))`)
	must(t, err)
	var counted bool
	for _, u := range asked {
		if strings.Contains(u, "vswitch=vsw-a&limit=1&q=test4") {
			counted = true
		}
	}
	if !counted {
		t.Errorf("no request asked the server for closed vsw-a's count with limit=1&q=test4: %q", asked)
	}
	_, err = evalJS[bool](ctx, `(e => (e.value = "", e.dispatchEvent(new Event("input")), true))(document.querySelector("#filter"))`)
	must(t, err)
}

// uiManyClosedVSwitches checks the host counts of a VPC of 41 vSwitches,
// all closed (more than 8): the 41st, past the 32 whose count a filtered
// page asks for one by one, says how many hosts it has, from the vSwitch
// list's host_count, and no page of its hosts is asked for.
func uiManyClosedVSwitches(t *testing.T, ctx context.Context, s *seed) {
	t.Helper()
	s.rest("POST", "/v1/vpcs", map[string]any{"name": "vpc-many"}, 201)
	for i := range 41 {
		s.rest("POST", "/v1/vpcs/vpc-many/vswitches", map[string]any{"name": fmt.Sprintf("many-%02d", i), "cidr": fmt.Sprintf("10.60.%d.0/24", i)}, 201)
	}
	var hosts []map[string]any
	for i := range 2 {
		hosts = append(hosts, map[string]any{"name": fmt.Sprintf("many-vm%d", i), "vswitch": "many-40", "ip": fmt.Sprintf("10.60.40.%d", 10+i),
			"mac": fmt.Sprintf("02:00:00:00:60:%02x", i), "dpid": topology.DPID(s.dpid).String(), "ofport": 4000 + i})
	}
	s.rest("POST", "/v1/vpcs/vpc-many/hosts", hosts, 201)
	defer s.rest("DELETE", "/v1/vpcs/vpc-many?cascade=true", nil, 204)
	const sel = `.vpc[data-vpc="vpc-many"] .vswitch[data-vswitch="many-40"] > summary`
	if _, err := waitText(ctx, sel, "2 hosts", 15*time.Second); err != nil {
		t.Error(err)
	}
	if _, err := waitText(ctx, `.vpc[data-vpc="vpc-many"] .vswitch[data-vswitch="many-39"] > summary`, "0 hosts", 5*time.Second); err != nil {
		t.Error(err)
	}
	asked, err := evalJS[[]string](ctx, `performance.getEntriesByType("resource").map((e) => e.name).filter((u) => /\/v1\/vpcs\/vpc-many\/hosts\?vswitch=/.test(u))`)
	must(t, err)
	if len(asked) > 0 {
		t.Errorf("the page asked for closed vSwitches' hosts one by one: %d requests, the first %q", len(asked), asked[0])
	}
}

// uiDeletedDuringRefresh deletes a vSwitch in the middle of a refresh of
// the page: the browser's request for its hosts is held (Chromium's Fetch
// domain) until the vSwitch is deleted over REST, then let go to the
// server, which answers 404. The page leaves the vSwitch out and never
// shows an error (it showed "error: vswitch: … does not exist" until the
// next refresh, with the vSwitch still drawn).
func uiDeletedDuringRefresh(t *testing.T, ctx context.Context, s *seed) {
	t.Helper()
	s.rest("POST", "/v1/vpcs/vpc-seed/vswitches", map[string]any{"name": "vsw-gone", "cidr": "10.10.30.0/24"}, 201)
	const sel = `.vswitch[data-vswitch="vsw-gone"]`
	if _, err := waitText(ctx, sel+" > summary", "vSwitch vsw-gone", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	deleted := make(chan int, 1)
	var once sync.Once
	must(t, chromedp.Listen(ctx, func(ev any) {
		e, ok := ev.(*fetch.EventRequestPaused)
		if !ok {
			return
		}
		go func() {
			once.Do(func() {
				code, _, err := s.do("DELETE", "/v1/vpcs/vpc-seed/vswitches/vsw-gone", nil)
				if err != nil {
					code = -1
				}
				deleted <- code
			})
			_, _ = chromedp.Call(ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: e.RequestID})
		}()
	}))
	_, err := chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{{URLPattern: "*vswitch=vsw-gone*"}}})
	must(t, err)
	defer func() { _, _ = chromedp.Call(ctx, fetch.Disable, cdp.Empty{}) }()
	select {
	case code := <-deleted:
		if code != 204 {
			t.Fatalf("DELETE vsw-gone while the page's request was held: %d", code)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the page never asked for vsw-gone's hosts")
	}
	// Until the vSwitch is off the page, and a while after: no error.
	deadline := time.Now().Add(10 * time.Second)
	var off time.Time
	for {
		st, err := evalJS[string](ctx, `document.querySelector("#status").innerText + "|" + !!document.querySelector(`+"`"+sel+"`"+`)`)
		must(t, err)
		if strings.HasPrefix(st, "error") {
			t.Fatalf("the page shows an error for a vSwitch deleted during its refresh: %q", st)
		}
		if strings.HasSuffix(st, "|false") && off.IsZero() {
			off = time.Now()
		}
		if !off.IsZero() && time.Since(off) > 4*time.Second {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("vsw-gone is still on the page (%q)", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(s.controllerLog(), `"path": "/v1/vpcs/vpc-seed/hosts", "status": 404`) {
		t.Errorf("the held request was not answered 404 (the vSwitch was gone before it reached the server?)")
	}
}

// TestUITopologyPage loads /ui in headless Chromium against vpcflow
// running the seed scenario: the VPC, its vSwitch and hosts (up), the
// route entries, the switch; live counters that move with real traffic;
// a host and a route entry added over REST appear without a reload; a
// trace drawn from the form; paging and the filter (uiPaging); a closed
// vSwitch's host count (uiClosedVSwitch). The screenshot is saved in the
// lab directory (and in $VPCFLOW_UI_SCREENSHOT when set).
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

	uiPaging(t, ctx, s)
	uiClosedVSwitch(t, ctx, s)
	uiManyClosedVSwitches(t, ctx, s)
	uiDeletedDuringRefresh(t, ctx, s)

	if t.Failed() {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if html, err := chromedp.Run(qctx, chromedp.OuterHTML(chromedp.CSS("main"))); err == nil {
			t.Logf("page:\n%s", tail(html, 200))
		}
	}
}
