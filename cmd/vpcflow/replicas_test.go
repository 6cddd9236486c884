package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

func TestParseStore(t *testing.T) {
	sp, err := parseStore("etcd://10.0.0.1:2379,10.0.0.2:2379,[::1]:32379/fabric-a/")
	if err != nil {
		t.Fatal(err)
	}
	if !sp.etcd || sp.prefix != "/fabric-a" || strings.Join(sp.urls(true), " ") != "https://10.0.0.1:2379 https://10.0.0.2:2379 https://[::1]:32379" {
		t.Errorf("parsed %+v / %v", sp, sp.urls(true))
	}
	if sp, _ := parseStore("etcd://h:2379"); sp.prefix != "/vpcflow" || sp.urls(false)[0] != "http://h:2379" {
		t.Errorf("default prefix: %+v", sp)
	}
	for _, bad := range []string{"h:2379", "bolt:///var/lib/vpcflow", "etcd://", "etcd://h", "etcd://h:0", "etcd://h:2379,bolt://x", "etcd://:2379"} {
		if _, err := parseStore(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// Bad replica configuration is refused before anything starts.
func TestServeConfigStore(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--store", "etcd://127.0.0.1:2379", "--data-dir", "/var/lib/x"}, "two kinds of store"},
		{[]string{"--store", "consul://127.0.0.1:8500"}, "unknown store kind"},
		{[]string{"--store", "etcd://127.0.0.1:2379", "--election-ttl", "1500ms"}, "whole seconds"},
		{[]string{"--store", "etcd://127.0.0.1:2379", "--store-tls-cert", "c.pem"}, "--store-tls"},
		{[]string{"--store-tls-ca", "ca.pem"}, "for an etcd --store"},
	} {
		lc, err := loadServeConfig(append([]string{"--config", "/dev/null"}, tc.args...), envMap(map[string]string{}))
		if err == nil {
			_, err = lc.resolve(zap.NewNop(), envMap(map[string]string{}))
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: want an error with %q, got %v", tc.args, tc.want, err)
		}
	}
}

// An unreachable etcd stops serve at start with a clear error, not a
// half-running controller.
func TestServeUnreachableEtcd(t *testing.T) {
	var stdout, stderr strings.Builder
	start := time.Now()
	code := runServe(context.Background(), []string{"--config", "/dev/null", "--store", "etcd://127.0.0.1:1",
		"--listen", "127.0.0.1:0", "--openflow", "127.0.0.1:0"}, &stdout, &stderr, envMap(map[string]string{}))
	if code == exitOK || !strings.Contains(stderr.String(), "etcd did not answer") {
		t.Fatalf("exit %d after %s:\n%s", code, time.Since(start), stderr.String())
	}
	if strings.Contains(stderr.String(), "vpcflow serving") {
		t.Errorf("listeners were opened before the store:\n%s", stderr.String())
	}
}
