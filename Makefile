# vpcflow — see README.md.
#
#   make demo          the seed scenario end to end, narrated (root; installs OVS if missing)
#   make test          unit + end-to-end tests against real Open vSwitch (root; installs what is missing),
#                      then e2e/aliyun (its own module: Aliyun's SDKs and flannel against vpcflow)
#   make demo-chassis  one VPC over three OVS chassis in VXLAN, narrated (root)
#   make bench         performance next to ovs-ofctl (root; BENCH_N picks sizes), replicas' failover times
#   make install       binary, systemd unit, default config, vpcflow user (root; DESTDIR/PREFIX honoured)
#   make deb           Debian package in dist/ (nfpm, a Go tool of this module)

SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
GO ?= go
BIN := bin/vpcflow
# Version stamped into the binary and the package: the nearest tag, else
# 0.0.0 with the commit count and hash (Debian needs a leading digit).
GIT_DESCRIBE := $(shell git describe --tags --always --dirty 2>/dev/null || echo unknown)
COMMIT := $(shell git rev-parse HEAD 2>/dev/null || echo unknown)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)
VERSION ?= $(shell git describe --tags --match 'v[0-9]*' 2>/dev/null | sed 's/^v//' | grep . || echo 0.0.0+git$$(git rev-list --count HEAD 2>/dev/null || echo 0).$$(git rev-parse --short HEAD 2>/dev/null || echo unknown))
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
GOARCH ?= $(shell $(GO) env GOARCH)
DEB := dist/vpcflow_$(VERSION)_$(GOARCH).deb
PREFIX ?= /usr/local
DESTDIR ?=
# Debian packages the e2e tests and the demo need.
DEB_PACKAGES := openvswitch-switch iproute2 ethtool iputils-ping tcpdump curl procps chromium isc-dhcp-client udhcpc etcd-server etcd-client nftables
DEB_COMMANDS := ovs-vswitchd ovsdb-server ovs-vsctl ovs-ofctl ip ethtool ping tcpdump curl pgrep chromium dhclient udhcpc etcd etcdctl nft

.PHONY: all build deps test unit lint demo demo-chassis bench clean install uninstall deb package-test

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/vpcflow

# Install the Debian packages only when a command is missing (CI starts bare).
deps:
	@missing=""; for c in $(DEB_COMMANDS); do command -v $$c >/dev/null 2>&1 || missing="$$missing $$c"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages (missing:$$missing)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEB_PACKAGES) >/dev/null; \
	fi

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags pprof ./cmd/vpcflow

# Unit tests only (no root, no OVS needed; OVS-backed tests skip).
unit:
	$(GO) test -race ./...

# Everything: unit tests with -race, and the tests that drive real Open vSwitch
# in private network namespaces (VPCFLOW_E2E=1 makes them fail, not skip,
# when something they need is missing).
test: deps lint build
	VPCFLOW_E2E=1 $(GO) test -race -count=1 -timeout 45m ./...
	cd e2e/aliyun && $(GO) vet ./... && VPCFLOW_E2E=1 $(GO) test -race -count=1 -timeout 20m ./...
	$(MAKE) --no-print-directory package-test

# The Debian package tested in a sandbox: a throw-away copy of this machine
# (an overlay of its root file system, PID, mount and network namespaces of
# its own) where the .deb is installed (dpkg -i, the unit's ExecStart started
# as systemd would, smoke test, dpkg -r, dpkg --purge), a schema 2 store is
# upgraded and the seed scenario pings through an online backup and restore,
# and `make install` is run. Nothing changes on this machine. It needs root,
# and a machine without a vpcflow package or user of its own (the sandbox
# starts as a copy of it); elsewhere it says why it skipped.
package-test: deb
	@if [ "$$(id -u)" != 0 ]; then echo "package-test: skipped (not root)"; \
	elif dpkg -s vpcflow >/dev/null 2>&1 || getent passwd vpcflow >/dev/null || [ -e /etc/vpcflow ] || [ -e /var/lib/vpcflow ]; then \
		echo "package-test: skipped (this machine has its own vpcflow package, user or directories)"; \
	else VPCFLOW_PACKAGE_TEST=$(CURDIR)/$(DEB) $(GO) test -count=1 -timeout 10m -run 'TestDebianPackage|TestMakeInstall|TestPackageUpgradeBackupRestore' -v ./packaging/ ; fi

# The Debian package: dist/vpcflow_VERSION_ARCH.deb.
deb: build
	@mkdir -p dist
	VPCFLOW_VERSION=$(VERSION) GOARCH=$(GOARCH) $(GO) tool nfpm package --config packaging/nfpm.yaml --packager deb --target $(DEB)

# Binary to $(PREFIX)/bin, unit to /etc/systemd/system, default config to
# /etc/vpcflow (kept if present), then the vpcflow user, /var/lib/vpcflow and
# the store, and the unit enabled and started where systemd runs. With
# DESTDIR only the files are staged.
install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/vpcflow
	install -d $(DESTDIR)/etc/systemd/system $(DESTDIR)/etc/vpcflow
	sed 's|/usr/bin/vpcflow|$(PREFIX)/bin/vpcflow|g' packaging/vpcflow.service > $(DESTDIR)/etc/systemd/system/vpcflow.service
	[ -e $(DESTDIR)/etc/vpcflow/vpcflow.yaml ] || install -m 0640 packaging/vpcflow.yaml $(DESTDIR)/etc/vpcflow/vpcflow.yaml
	@if [ -z "$(DESTDIR)" ]; then VPCFLOW_BIN=$(PREFIX)/bin/vpcflow sh packaging/scripts/postinst configure; fi

# Undo make install; the store (/var/lib/vpcflow), /etc/vpcflow and the
# vpcflow user stay.
uninstall:
	-[ -d /run/systemd/system ] && systemctl disable --now vpcflow.service
	rm -f $(DESTDIR)$(PREFIX)/bin/vpcflow $(DESTDIR)/etc/systemd/system/vpcflow.service
	-[ -d /run/systemd/system ] && systemctl daemon-reload

demo: deps build
	./scripts/demo.sh

# One VPC over three chassis (namespaces with their own OVS) joined by VXLAN
# on an underlay, narrated like `make demo`, then cleaned up (root).
demo-chassis: deps build
	$(GO) run ./e2e/cmd/chassisdemo --bin $(BIN)

# Performance (docs/performance.md): vpcflow on a private OVS side by side
# with ovs-ofctl for N hosts (BENCH_N=1000,10000,50000,100000 by default; root),
# then the controller's Go benchmarks. Targets are printed, never asserted.
# BENCH_FLAGS passes flags to bench/vpcbench (e.g. -markdown, -ops 500).
bench: deps build
	$(GO) build -o bin/vpcbench ./bench/vpcbench
	./bin/vpcbench -bin $(BIN) $(BENCH_FLAGS)
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 500ms -count=1 -timeout 15m ./controller/ ./openflow/
	@echo "replicas over etcd (docs/replicas.md): failover times and flow-mods"
	set -o pipefail; VPCFLOW_E2E=1 $(GO) test -count=1 -timeout 15m -run '^TestReplicas$$' -v ./e2e/ 2>&1 | grep -E 'FAILOVER|^(--- |ok|FAIL)'

clean:
	rm -rf bin dist
