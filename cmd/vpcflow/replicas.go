package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/vpcflow/vpcflow/controller"
	"github.com/vpcflow/vpcflow/ha"
	"github.com/vpcflow/vpcflow/topology"
)

// Replicas: `serve --store etcd://HOST:PORT[,HOST:PORT…][/PREFIX]` keeps
// the topology in etcd, where several vpcflow processes share it; they
// elect a leader (package ha) and only the leader writes to switches
// (controller/replicas.go).

// storeSpec is what --store says.
type storeSpec struct {
	etcd      bool
	endpoints []string // host:port
	prefix    string
}

// parseStore reads --store: "" is the bbolt store in --data-dir.
func parseStore(s string) (storeSpec, error) {
	if s == "" {
		return storeSpec{}, nil
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return storeSpec{}, fmt.Errorf("%q: want etcd://HOST:PORT[,HOST:PORT…][/PREFIX] (leave it out for the bbolt store in --data-dir)", s)
	}
	if scheme != "etcd" {
		return storeSpec{}, fmt.Errorf("%q: unknown store kind %q: want etcd://… (the bbolt store is --data-dir, without --store)", s, scheme)
	}
	hosts, prefix, _ := strings.Cut(rest, "/")
	sp := storeSpec{etcd: true, prefix: "/" + strings.Trim(prefix, "/")}
	if sp.prefix == "/" {
		sp.prefix = topology.DefaultEtcdPrefix
	}
	for _, h := range strings.Split(hosts, ",") {
		h = strings.TrimSpace(h)
		if strings.Contains(h, "://") {
			return storeSpec{}, fmt.Errorf("%q: one kind of store only: %q is not HOST:PORT", s, h)
		}
		host, port, err := net.SplitHostPort(h)
		if err != nil || host == "" {
			return storeSpec{}, fmt.Errorf("%q: %q: want HOST:PORT", s, h)
		}
		if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
			return storeSpec{}, fmt.Errorf("%q: %q: bad port", s, h)
		}
		sp.endpoints = append(sp.endpoints, h)
	}
	return sp, nil
}

// urls are the etcd client URLs: https when TLS is configured.
func (sp storeSpec) urls(tlsOn bool) []string {
	scheme := "http://"
	if tlsOn {
		scheme = "https://"
	}
	out := make([]string, len(sp.endpoints))
	for i, e := range sp.endpoints {
		out[i] = scheme + e
	}
	return out
}

// replicaName is --replica-name, or this machine's host name with the
// OpenFlow listen address.
func replicaName(name, ofAddr string) string {
	if name != "" {
		return name
	}
	h, err := os.Hostname()
	if err != nil {
		h = "vpcflow"
	}
	return h + "/" + ofAddr
}

// sharedStore is a store in etcd with this replica's elector.
type sharedStore struct {
	etcd    *topology.Etcd
	elector *ha.Elector
}

// openEtcdStore opens the store in etcd; the errors say what is wrong
// (unreachable, none there, another version) before anything runs.
func openEtcdStore(ctx context.Context, log *zap.Logger, sp storeSpec, tlsCfg *tls.Config, init bool, name string, ttl time.Duration) (*topology.Store, *sharedStore, error) {
	b, err := topology.OpenEtcd(ctx, topology.EtcdOptions{Endpoints: sp.urls(tlsCfg != nil), Prefix: sp.prefix, TLS: tlsCfg, Init: init}, log.Named("store"))
	if err != nil {
		return nil, nil, err
	}
	st, err := topology.NewStore(ctx, b, log.Named("store"))
	if err != nil {
		_ = b.Close()
		return nil, nil, err
	}
	el := ha.New(ha.Config{Client: b.Client(), Prefix: b.Prefix(), Name: name, TTL: ttl, Log: log.Named("election")})
	return st, &sharedStore{etcd: b, elector: el}, nil
}

// run follows the other replicas' changes and takes part in the election
// until ctx ends; a store this vpcflow can no longer read is an error.
func (s *sharedStore) run(ctx context.Context, wg *sync.WaitGroup, errc chan<- error, store *topology.Store, ctrl *controller.Controller) {
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := store.Follow(ctx); err != nil && ctx.Err() == nil {
			errc <- err
		}
	}()
	go func() {
		defer wg.Done()
		err := s.elector.Run(ctx, func(r ha.Role) {
			ctrl.SetRole(controller.Role{Leader: r.Leader, Generation: r.Generation, LeaderName: r.LeaderName})
		})
		if err != nil && !errors.Is(err, context.Canceled) && ctx.Err() == nil {
			errc <- fmt.Errorf("election: %w", err)
		}
	}()
}
