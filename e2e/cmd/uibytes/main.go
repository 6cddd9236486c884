// Command uibytes measures what the topology page (/ui) fetches from the
// REST API for a VPC of many hosts in one vSwitch: it starts a vpcflow
// (the binary given, on loopback, with a store of its own and no switch),
// registers the VPC (hosts attached by dpid and port, one route entry
// each), opens /ui in headless Chromium and sums the bytes of the API's
// responses as Chromium received them: the first load, and every request
// over a span that covers a big VPC's 30 s refresh. It removes what it
// made.
//
//	go run ./e2e/cmd/uibytes --bin bin/vpcflow --hosts 10000
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

func main() {
	bin := flag.String("bin", "bin/vpcflow", "the vpcflow binary to measure")
	hosts := flag.Int("hosts", 10000, "hosts in the one vSwitch (and as many route entries)")
	span := flag.Duration("span", 35*time.Second, "how long to watch the page after it loaded")
	shot := flag.String("screenshot", "", "save a screenshot of the page here (PNG)")
	flag.Parse()
	if err := run(*bin, *hosts, *span, *shot); err != nil {
		fmt.Fprintln(os.Stderr, "uibytes:", err)
		os.Exit(1)
	}
}

func run(bin string, n int, span time.Duration, shot string) error {
	dir, err := os.MkdirTemp("", "uibytes-")
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	rest, err := freePort()
	if err != nil {
		return err
	}
	of, err := freePort()
	if err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(dir, "vpcflow.log"))
	if err != nil {
		return fmt.Errorf("log file: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "serve", "--init", "--listen", rest, "--openflow", of, "--data-dir", filepath.Join(dir, "data"), "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	base := "http://" + rest
	if err := waitUp(base); err != nil {
		return err
	}
	start := time.Now()
	if err := register(base, n); err != nil {
		return err
	}
	fmt.Printf("registered 1 VPC, 1 vSwitch, %d hosts and %d route entries in %s\n", n, n, time.Since(start).Round(time.Millisecond))
	return watch(base, span, shot)
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func waitUp(base string) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("vpcflow did not answer on %s: %w", base, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func post(base, path string, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	resp, err := http.Post(base+path, "application/json", bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("POST %s: %d %s", path, resp.StatusCode, out)
	}
	return nil
}

// register creates vpc-big with vSwitch vsw-big (10.0.0.0/16, the
// largest vSwitch CIDR) and n hosts in it, each with a route entry.
func register(base string, n int) error {
	if n > 65000 {
		return errors.New("at most 65,000 hosts (one /16 vSwitch)")
	}
	if err := post(base, "/v1/vpcs", map[string]any{"name": "vpc-big"}); err != nil {
		return err
	}
	if err := post(base, "/v1/vpcs/vpc-big/vswitches", map[string]any{"name": "vsw-big", "cidr": "10.0.0.0/16"}); err != nil {
		return err
	}
	const batch = 5000
	for from := 0; from < n; from += batch {
		var hs, ss []map[string]any
		for i := from; i < min(n, from+batch); i++ {
			ip := netip.AddrFrom4([4]byte{10, 0, byte((i + 10) >> 8), byte(i + 10)})
			name := fmt.Sprintf("host%05d", i)
			hs = append(hs, map[string]any{"name": name, "vswitch": "vsw-big", "ip": ip.String(),
				"mac": fmt.Sprintf("02:00:00:00:%02x:%02x", byte(i>>8), byte(i)), "dpid": "0000000000000001", "ofport": 10 + i})
			ss = append(ss, map[string]any{"cidr": fmt.Sprintf("172.%d.%d.0/24", 16+i/256, i%256), "host": name})
		}
		if err := post(base, "/v1/vpcs/vpc-big/hosts", hs); err != nil {
			return err
		}
		if err := post(base, "/v1/vpcs/vpc-big/subnets", ss); err != nil {
			return err
		}
	}
	return nil
}

// watch opens /ui and counts the bytes of the API's responses (and of
// /metrics, apart) as Chromium received them.
func watch(base string, span time.Duration, shot string) error {
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath("chromium"), chromedp.NoSandbox, chromedp.WindowSize(1500, 1100),
		chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel2 := chromedp.NewContext(actx)
	defer cancel2()
	ctx, cancel3 := context.WithTimeout(ctx, span+2*time.Minute)
	defer cancel3()

	type req struct {
		url   string
		bytes float64
		at    time.Time
	}
	var (
		mu   sync.Mutex
		urls = map[network.RequestID]string{}
		done []req
	)
	if err := chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			urls[e.RequestID] = e.Request.URL
		case *network.EventLoadingFinished:
			done = append(done, req{urls[e.RequestID], e.EncodedDataLength, time.Now()})
		}
	}); err != nil {
		return fmt.Errorf("start chromium: %w", err)
	}
	t0 := time.Now()
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/ui/"),
		chromedp.WaitVisible(chromedp.CSS(`tr.host[data-host="host00000"]`))); err != nil {
		return fmt.Errorf("load /ui: %w", err)
	}
	loaded := time.Now()
	// Let the first load's requests finish.
	time.Sleep(time.Second)
	mu.Lock()
	first := append([]req(nil), done...)
	mu.Unlock()
	time.Sleep(span)
	mu.Lock()
	all := append([]req(nil), done...)
	mu.Unlock()

	sum := func(rs []req) (api, metrics float64, nAPI int, biggest []req) {
		for _, r := range rs {
			switch {
			case strings.Contains(r.url, "/v1/"):
				api += r.bytes
				nAPI++
				biggest = append(biggest, r)
			case strings.HasSuffix(r.url, "/metrics"):
				metrics += r.bytes
			}
		}
		sort.Slice(biggest, func(i, j int) bool { return biggest[i].bytes > biggest[j].bytes })
		return api, metrics, nAPI, biggest[:min(len(biggest), 5)]
	}
	api, _, nAPI, big := sum(first)
	fmt.Printf("first load (%s to the first host row): %d API requests, %.0f bytes\n", loaded.Sub(t0).Round(time.Millisecond), nAPI, api)
	for _, r := range big {
		fmt.Printf("  %9.0f  %s\n", r.bytes, strings.TrimPrefix(r.url, base))
	}
	api2, metrics2, nAPI2, _ := sum(all)
	fmt.Printf("over %s after the load: %d API requests, %.0f bytes (/metrics apart: %.0f)\n",
		span, nAPI2-nAPI, api2-api, metrics2)
	if heap, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`performance.memory ? performance.memory.usedJSHeapSize : 0`)); err == nil && heap > 0 {
		fmt.Printf("page's JS heap: %.1f MB\n", heap/1e6)
	}
	if shot != "" {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			return fmt.Errorf("screenshot: %w", err)
		}
		if err := os.WriteFile(shot, png, 0o644); err != nil {
			return fmt.Errorf("screenshot: %w", err)
		}
	}
	return nil
}
