# vpcflow — see README.md.
#
#   make demo          the seed scenario end to end, narrated (root; installs OVS if missing)
#   make test          unit + end-to-end tests against real Open vSwitch (root; installs what is missing)
#   make demo-chassis  one VPC over three OVS chassis in VXLAN, narrated (root)
#   make bench         performance next to ovs-ofctl (root; BENCH_N picks sizes)

SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
GO ?= go
BIN := bin/vpcflow
# Debian packages the e2e tests and the demo need.
DEB_PACKAGES := openvswitch-switch iproute2 ethtool iputils-ping tcpdump curl procps
DEB_COMMANDS := ovs-vswitchd ovsdb-server ovs-vsctl ovs-ofctl ip ethtool ping tcpdump curl pgrep

.PHONY: all build deps test unit lint demo demo-chassis bench clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/vpcflow

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

# Unit tests only (no root, no OVS needed; OVS-backed tests skip).
unit:
	$(GO) test -race ./...

# Everything: unit tests with -race, and the tests that drive real Open vSwitch
# in private network namespaces (VPCFLOW_E2E=1 makes them fail, not skip,
# when something they need is missing).
test: deps lint build
	VPCFLOW_E2E=1 $(GO) test -race -count=1 -timeout 45m ./...

demo: deps build
	./scripts/demo.sh

# One VPC over three chassis (namespaces with their own OVS) joined by VXLAN
# on an underlay, narrated like `make demo`, then cleaned up (root).
demo-chassis: deps build
	$(GO) run ./e2e/cmd/chassisdemo --bin $(BIN)

# Performance (docs/performance.md): vpcflow on a private OVS side by side
# with ovs-ofctl for N hosts (BENCH_N=1000,10000,50000 by default; root),
# then the controller's Go benchmarks. Targets are printed, never asserted.
# BENCH_FLAGS passes flags to bench/vpcbench (e.g. -markdown, -ops 500).
bench: deps build
	$(GO) build -o bin/vpcbench ./bench/vpcbench
	./bin/vpcbench -bin $(BIN) $(BENCH_FLAGS)
	$(GO) test -run '^$$' -bench . -benchmem -count=1 -timeout 15m ./controller/ ./openflow/

clean:
	rm -rf bin
