package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/aliyunapi"
)

// aliyunAPI is the Aliyun OpenAPI listener of serve (--aliyun-listen).
type aliyunAPI struct {
	api  *aliyunapi.Server
	http *http.Server
}

// startAliyunAPI serves the Aliyun API on addr over b, with the access
// keys of keysFile, until ctx ends (then it shuts down; wg counts its
// goroutines); nothing when addr is "". A failure of the server is sent
// to errc (without blocking).
func startAliyunAPI(ctx context.Context, log *zap.Logger, b aliyunapi.Backend, addr, keysFile string, wg *sync.WaitGroup, errc chan<- error) error {
	if addr == "" {
		return nil
	}
	api, err := aliyunapi.New(log, b, aliyunapi.Options{KeysFile: keysFile})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		api.Close()
		return fmt.Errorf("listening for the Aliyun API on %s: %w", addr, err)
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
	log.Info("Aliyun API serving", zap.String("listen", ln.Addr().String()), zap.String("keys_file", keysFile))
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := a.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && ctx.Err() == nil {
			select {
			case errc <- fmt.Errorf("aliyun API server: %w", err):
			default:
			}
		}
	}()
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
