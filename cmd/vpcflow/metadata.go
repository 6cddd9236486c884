package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/vpcflow/vpcflow/aliyunapi"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/vpcflow/vpcflow/controller"
	"github.com/vpcflow/vpcflow/controller/metadata"
	"github.com/vpcflow/vpcflow/controller/pipeline"
)

// metadataConfig is the metadata service's part of serve's settings.
type metadataConfig struct {
	Listen   string // host:port, "" for no service
	Netns    string // network namespace (ip netns name or path) to listen in
	Hardened bool
	Region   string
}

// startMetadata serves the instance metadata service (controller/metadata)
// on cfg.Listen, inside cfg.Netns when given: the namespace that holds the
// far end of the bridges' metadata port. It stops with ctx.
func startMetadata(ctx context.Context, wg *sync.WaitGroup, errc chan<- error, log *zap.Logger, ctrl *controller.Controller, cfg metadataConfig) error {
	if cfg.Listen == "" {
		return nil
	}
	h, err := metadata.New(log, func(a netip.Addr) (metadata.Instance, bool) {
		id, ok := pipeline.MetadataHostOf(a)
		if !ok {
			return metadata.Instance{}, false
		}
		mi, ok := ctrl.MetadataInstance(id)
		if !ok {
			return metadata.Instance{}, false
		}
		// The Aliyun API's one zone of the region, so that what a VM
		// reads here is what the API knows (DescribeVSwitches by
		// ZoneId, CreateVSwitch in "my" zone).
		zone := aliyunapi.ZoneOf(cfg.Region)
		return metadata.Instance{
			// Aliyun's IDs, as the Aliyun API (--aliyun-listen) names
			// the same objects: clients read who they are here and ask
			// the API about it.
			InstanceID: mi.Host.AliyunID(), PrivateIPv4: mi.Host.IP.String(), MAC: mi.Host.MAC.String(),
			VPCID: mi.VPC.AliyunID(), VSwitchID: mi.VSwitch.AliyunID(), VSwitchCIDR: mi.VSwitch.CIDR.String(),
			RegionID: cfg.Region, ZoneID: zone, Hostname: mi.Host.Name,
		}, true
	}, metadata.Options{Hardened: cfg.Hardened})
	if err != nil {
		return err
	}
	ln, err := listenIn(cfg.Netns, cfg.Listen)
	if err != nil {
		return fmt.Errorf("metadata service on %s (netns %q): %w", cfg.Listen, cfg.Netns, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 10 * time.Second, IdleTimeout: 30 * time.Second, MaxHeaderBytes: 8 << 10,
		ErrorLog: zap.NewStdLog(log.Named("http"))}
	log.Info("metadata service serving", zap.String("listen", ln.Addr().String()), zap.String("netns", cfg.Netns),
		zap.Bool("hardened", cfg.Hardened))
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("metadata server: %w", err)
		}
	}()
	go func() {
		defer wg.Done()
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	return nil
}

// listenIn opens a TCP listener in network namespace netns ("" for
// vpcflow's own): the socket stays in the namespace it was made in, so
// only the thread that makes it needs to enter it. That thread is never
// given back to Go's scheduler.
func listenIn(netns, addr string) (net.Listener, error) {
	if netns == "" {
		return net.Listen("tcp", addr)
	}
	path := netns
	if !filepath.IsAbs(path) {
		path = filepath.Join("/var/run/netns", netns)
	}
	type result struct {
		ln  net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // not unlocked: the thread exits with the goroutine
		f, err := os.Open(path)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("setns %s: %w", path, err)}
			return
		}
		ln, err := net.Listen("tcp", addr)
		ch <- result{ln, err}
	}()
	r := <-ch
	return r.ln, r.err
}
