# vpcflow — see README.md.
#
#   make demo   the seed scenario end to end, narrated (root; installs OVS if missing)
#   make test   unit + end-to-end tests against real Open vSwitch (root; installs what is missing)

SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
GO ?= go
BIN := bin/vpcflow
# Debian packages the e2e tests and the demo need.
DEB_PACKAGES := openvswitch-switch iproute2 ethtool iputils-ping tcpdump curl procps
DEB_COMMANDS := ovs-vswitchd ovsdb-server ovs-vsctl ovs-ofctl ip ethtool ping tcpdump curl pgrep

.PHONY: all build deps test unit e2e lint demo bench clean

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

clean:
	rm -rf bin
