package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/aliyunapi"
	"github.com/vpcflow/vpcflow/controller/pipeline"
)

// aliyunAPI is the Aliyun OpenAPI listener of serve (--aliyun-listen).
type aliyunAPI struct {
	api  *aliyunapi.Server
	http *http.Server
}

// aliyunFabric is where the Aliyun API is also served to the VMs: the
// listener behind the bridges' metadata ports that pipeline.AliyunService
// steers the service address to.
type aliyunFabric struct {
	ServiceIP netip.Addr // what VMs ask (TCP 80); zero: not served to VMs
	Listen    string     // host:port of the listener, in Netns
	Netns     string     // the metadata server's network namespace
}

// aliyunFabricOf is where the API is served to the VMs for these
// settings: at serviceIP (--aliyun-service-ip) when both the API
// (--aliyun-listen) and the metadata service (--metadata-listen, whose
// host and namespace the listener shares, on pipeline.AliyunServerPort)
// are served; the zero value otherwise.
func aliyunFabricOf(aliyunListen, serviceIP string, meta metadataConfig) (aliyunFabric, error) {
	ip, err := aliyunServiceIP(serviceIP)
	if err != nil || !ip.IsValid() || aliyunListen == "" || meta.Listen == "" {
		return aliyunFabric{}, err
	}
	host, _, err := net.SplitHostPort(meta.Listen)
	if err != nil {
		return aliyunFabric{}, fmt.Errorf("metadata-listen %q: %w", meta.Listen, err)
	}
	return aliyunFabric{ServiceIP: ip, Listen: net.JoinHostPort(host, strconv.Itoa(pipeline.AliyunServerPort)), Netns: meta.Netns}, nil
}

// aliyunServiceIP parses --aliyun-service-ip: an IPv4 address VMs can
// be steered from, or "none"/"" (the zero Addr).
func aliyunServiceIP(s string) (netip.Addr, error) {
	if s == "" || s == "none" {
		return netip.Addr{}, nil
	}
	ip, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		return netip.Addr{}, fmt.Errorf("%q: want an IPv4 address (Aliyun's internal endpoints are in %s) or none", s, pipeline.AliyunServiceRange)
	case !ip.Is4():
		return netip.Addr{}, fmt.Errorf("%s: want an IPv4 address", ip)
	case ip == pipeline.MetadataServiceIP:
		return netip.Addr{}, fmt.Errorf("%s is the metadata service's address", ip)
	case ip.IsLoopback() || ip.IsMulticast() || ip.IsUnspecified() || ip.IsLinkLocalUnicast() || ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return netip.Addr{}, fmt.Errorf("%s: want a unicast address VMs can send to, as in %s", ip, pipeline.AliyunServiceRange)
	}
	return ip, nil
}

// startAliyunAPI serves the Aliyun API on addr over b, with opts (the
// access keys file, the region), and to the VMs on fabric.Listen (inside fabric.Netns)
// when fabric.ServiceIP is set — one server, so both share keys, nonces
// and pending route entries — until ctx ends (then it shuts down; wg
// counts its goroutines); nothing when addr is "". A failure of the
// server is sent to errc (without blocking).
func startAliyunAPI(ctx context.Context, log *zap.Logger, b aliyunapi.Backend, addr string, opts aliyunapi.Options, fabric aliyunFabric, wg *sync.WaitGroup, errc chan<- error) error {
	if addr == "" {
		return nil
	}
	api, err := aliyunapi.New(log, b, opts)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		api.Close()
		return fmt.Errorf("listening for the Aliyun API on %s: %w", addr, err)
	}
	lns := []net.Listener{ln}
	if fabric.ServiceIP.IsValid() {
		fln, err := listenIn(fabric.Netns, fabric.Listen)
		if err != nil {
			ln.Close()
			api.Close()
			return fmt.Errorf("listening for the Aliyun API of the VMs (%s:80) on %s (netns %q): %w", fabric.ServiceIP, fabric.Listen, fabric.Netns, err)
		}
		lns = append(lns, fln)
		log.Info("Aliyun API serving the VMs", zap.Stringer("service_ip", fabric.ServiceIP), zap.String("listen", fln.Addr().String()),
			zap.String("netns", fabric.Netns))
	}
	a := &aliyunAPI{api: api, http: &http.Server{
		Handler:           api,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          zap.NewStdLog(log.Named("http")),
	}}
	log.Info("Aliyun API serving", zap.String("listen", ln.Addr().String()), zap.String("keys_file", opts.KeysFile), zap.String("region", opts.Region))
	wg.Add(len(lns) + 1)
	for _, ln := range lns {
		go func() {
			defer wg.Done()
			if err := a.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && ctx.Err() == nil {
				select {
				case errc <- fmt.Errorf("aliyun API server on %s: %w", ln.Addr(), err):
				default:
				}
			}
		}()
	}
	go func() {
		defer wg.Done()
		<-ctx.Done()
		a.shutdown()
	}()
	return nil
}

// shutdown stops the listener and the route entry changes still waiting
// for switches (they are stored; switches get them when they reconcile).
func (a *aliyunAPI) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = a.http.Shutdown(ctx)
	a.api.Close()
}
