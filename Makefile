# fieldcol: build, run and test the collector distributions.
# Quick start on a fresh Debian machine with Go: `make run` and `make test`.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

GO          ?= go
TOOLS       := .tools
OCB         := $(TOOLS)/builder
GOLANGCI    := $(TOOLS)/golangci-lint
MDATAGEN    := $(TOOLS)/mdatagen
NFPM        := $(TOOLS)/nfpm

# Everything a distribution is built from: a change to any component rebuilds it.
GO_SOURCES := $(shell find . -path ./_build -prune -o -path ./.tools -prune -o -path ./tools -prune -o \
                -path ./e2e -prune -o -path ./bench -prune -o -path ./dashboards -prune -o -path ./alerts -prune -o \
                \( -name '*.go' ! -name '*_test.go' -print \)) go.mod go.sum

EDGE_CONFIG ?= distributions/edge/config.yaml
TEST_TIMEOUT ?= 40m

.PHONY: build run test unit e2e soak bench lint fmt generate tools deps-test tools-stores validate dashboards rules-test drills dist dist-test image image-test footprint clean

build: bin/fieldcol bin/fieldcol-edge bin/fieldcol-gateway

# Every Go tool is built by this one rule, on demand, from a tools module of its own
# (tools/NAME/go.mod names it in a `tool` directive), so no tool enters the main module's
# graph and the versions are pinned in that go.mod. .tools/NAME is rebuilt only when a file
# of tools/NAME changed: a cold build of all of them takes about 15 minutes on 2 cores, and
# make test pays it once per machine. nice: the cores are shared with other builds and tests.
.SECONDEXPANSION:
$(TOOLS)/%: tools/%/go.mod $$(wildcard tools/$$*/*)
	@mkdir -p $(TOOLS)
	cd tools/$* && CGO_ENABLED=0 nice -n 10 $(GO) build -trimpath -o $(CURDIR)/$@.tmp tool
	mv $@.tmp $@

tools: $(patsubst tools/%/go.mod,$(TOOLS)/%,$(wildcard tools/*/go.mod))

# The dashboards' type check (dashboards/schema_test.go): Grafana's own types
# (@grafana/schema) and typescript at the versions of tools/dashboard-check's committed
# package-lock.json, installed with npm ci into .tools/ (node and npm from Debian when missing).
DASHBOARD_CHECK := $(TOOLS)/dashboard-check/.installed
$(DASHBOARD_CHECK): tools/dashboard-check/package.json tools/dashboard-check/package-lock.json
	scripts/ensure-debs.sh
	rm -rf $(TOOLS)/dashboard-check && mkdir -p $(TOOLS)/dashboard-check
	cp tools/dashboard-check/package.json tools/dashboard-check/package-lock.json $(TOOLS)/dashboard-check/
	cd $(TOOLS)/dashboard-check && npm ci --ignore-scripts --no-audit --no-fund
	touch $@

# ocb generates the distribution's main module under _build/<name>; custom components come
# from this repository through the manifest's replace, and the main is wired to
# cmd/fieldcolmain without editing generated code (see scripts/ocb-build.sh).
define ocb_build
	OCB=$(OCB) scripts/ocb-build.sh $(1) $(2) bin/$(2)
endef

bin/fieldcol: builder-config.yaml $(GO_SOURCES) | $(OCB)
	$(call ocb_build,builder-config.yaml,fieldcol)

bin/fieldcol-edge: distributions/edge/manifest.yaml $(GO_SOURCES) | $(OCB)
	$(call ocb_build,distributions/edge/manifest.yaml,fieldcol-edge)

bin/fieldcol-gateway: distributions/gateway/manifest.yaml $(GO_SOURCES) | $(OCB)
	$(call ocb_build,distributions/gateway/manifest.yaml,fieldcol-gateway)

# Runs the full distribution with the edge config on the simulated plant, in the
# foreground; Ctrl-C stops it. State (latched alarms, the disk queue) goes to .run/; the command API's
# token is FIELDCOL_API_TOKEN, generated and printed when unset.
run: bin/fieldcol
	@mkdir -p .run
	@if [ -z "$${FIELDCOL_API_TOKEN:-}" ]; then \
	  FIELDCOL_API_TOKEN=$$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'); export FIELDCOL_API_TOKEN; \
	  echo "command API token (FIELDCOL_API_TOKEN): $$FIELDCOL_API_TOKEN"; \
	fi; \
	FIELDCOL_LATCH_FILE=$${FIELDCOL_LATCH_FILE:-$(CURDIR)/.run/latches.json} \
	FIELDCOL_DISKQUEUE_DIR=$${FIELDCOL_DISKQUEUE_DIR:-$(CURDIR)/.run/diskqueue} \
	exec bin/fieldcol --config $(EDGE_CONFIG)

# Release builds into dist/: fieldcol-edge linux/amd64, arm64, arm (GOARM=7), fieldcol-gateway
# amd64 and arm64, version stamped (VERSION=...), the three fieldcol-edge .debs, SHA256SUMS.
dist: bin/fieldcol-edge bin/fieldcol-gateway $(NFPM)
	scripts/dist.sh

# What the packaging e2e tests use: the edge for amd64, arm64 and armv7 and the amd64 .deb.
dist-test: bin/fieldcol-edge $(NFPM)
	scripts/dist.sh --test

# The fieldcol-gateway OCI image, built without a container runtime (scripts/image.sh,
# tools/ociimage): a linux/amd64 + linux/arm64 image index with CycloneDX SBOMs attached, as an
# OCI layout in dist/image/oci and one archive, dist/image/fieldcol-gateway-VERSION.oci.tar.
# Push with `crane push --index dist/image/oci REGISTRY/fieldcol-gateway:TAG` (docs/gateway.md).
image: bin/fieldcol-gateway $(TOOLS)/ociimage $(TOOLS)/cyclonedx-gomod
	scripts/dist.sh --gateway
	scripts/image.sh

# What the packaging e2e tier checks: the same image for linux/amd64 only, from bin/ (no cross
# build), in dist/image-test/.
image-test: bin/fieldcol-gateway $(TOOLS)/ociimage $(TOOLS)/cyclonedx-gomod
	scripts/image.sh --test

# Sizes of every binary, RSS idle and under 1,000 OTLP points/s, CPU share (docs/footprint.md).
footprint: dist
	scripts/footprint.sh

validate: build
	for c in distributions/edge/config.yaml distributions/gateway/config.yaml distributions/gateway/sampler.yaml; do \
	  FIELDCOL_API_TOKEN=validate bin/fieldcol validate --config $$c; done
	FIELDCOL_GATEWAY_TOKEN=validate bin/fieldcol validate --config distributions/gateway/lb.yaml

# Debian packages the tests use, the S3 server of the backup tests (versitygw), nfpm of the
# packaging tests, and Sloth, the SLO rule generator the sloburn and alerts tests compare with.
deps-test: $(TOOLS)/versitygw $(NFPM) $(DASHBOARD_CHECK) $(TOOLS)/sloth
	scripts/ensure-debs.sh
	scripts/ensure-backup-tools.sh
	scripts/ensure-packaging-tools.sh

# The trace, log and chart tools the gateway tier's tests use (Jaeger v2, VictoriaLogs, helm,
# k8sdecode), each from its own tools module into .tools/, rebuilt only when its module changes.
tools-stores: $(TOOLS)/victoria-logs $(TOOLS)/helm $(TOOLS)/k8sdecode $(TOOLS)/jaeger

# Unit, component and end-to-end tests. The e2e tests run after the others, alone, against
# the binaries built here once.
test: deps-test tools-stores build dist-test image-test unit e2e

unit:
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) $$($(GO) list ./... | grep -v -e /e2e -e /bench/looptiming)

# The e2e tiers (e2e/edge, gateway, drills, packaging) run one after the other (-p 1), each
# alone on the machine as the one e2e package did. bench/looptiming's short form runs the
# built edge next to cyclictest: after the e2e tiers, not beside them, so that neither loads
# the machine under the other.
e2e: deps-test tools-stores build dist-test image-test
	FIELDCOL_E2E_NO_BUILD=1 $(GO) test -p 1 -count=1 -timeout $(TEST_TIMEOUT) ./e2e/...
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./bench/looptiming/

# Longer crash, outage and fuzz runs than make test affords; the e2e tiers and looptiming
# after the rest, in the order make e2e runs them. Every fuzz target then runs for
# FIELDCOL_FUZZTIME (default 20s) on its own (scripts/fuzz-soak.sh). dist/ gets the arm64
# .deb too: e2e/systemd runs it in an arm64 Debian under qemu-user-static.
soak: deps-test tools-stores build $(NFPM)
	DIST_DEBS="amd64 arm64" scripts/dist.sh --test
	FIELDCOL_SOAK=1 $(GO) test -count=1 -timeout 3h $$($(GO) list ./... | grep -v -e /e2e -e /bench/looptiming)
	GO=$(GO) scripts/fuzz-soak.sh
	FIELDCOL_SOAK=1 FIELDCOL_E2E_NO_BUILD=1 $(GO) test -p 1 -count=1 -timeout 3h ./e2e/...
	FIELDCOL_SOAK=1 $(GO) test -count=1 -timeout 3h ./bench/looptiming/

# bench/looptiming runs the built edge next to cyclictest (rt-tests, installed when missing);
# FIELDCOL_BENCH_DURATION (default 60s) is the measured time of each policy. The e2e tiers
# have no benchmarks: FIELDCOL_E2E_NO_BUILD keeps their TestMain from building for nothing.
bench: bin/fieldcol-edge
	scripts/ensure-debs.sh
	FIELDCOL_E2E_NO_BUILD=1 $(GO) test -run '^$$' -bench . -benchmem -count 1 ./...

# gofmt; go.mod and go.sum tidy (a direct dependency marked // indirect, a missing or a stale
# one fails); nothing that make generate would change (the whole work tree is compared with
# git after generating, so run it on committed work); go vet, golangci-lint.
lint: $(GOLANGCI) generate
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) mod tidy -diff
	@git diff --exit-code --stat || { echo "make generate changed the files above: commit what it generates"; exit 1; }
	@out=$$(git ls-files --others --exclude-standard); if [ -n "$$out" ]; then echo "untracked files (generated and not committed?):"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GOLANGCI) run ./...

# Every //go:generate of the module: mdatagen for each component's metadata.yaml (the
# internal/metadata packages and documentation.md), alerts/contract from those files, and
# the dashboards' JSON.
generate: $(MDATAGEN)
	$(GO) generate ./...

# The resilience plan's chaos drills at full length (docs/drills.md): one DRILL line of
# figures each. A short form of four of them runs in make test.
drills: deps-test build
	@mkdir -p .run
	FIELDCOL_DRILLS=1 FIELDCOL_E2E_NO_BUILD=1 $(GO) test -count=1 -timeout 30m -run '^TestDrill' -v ./e2e/drills/ 2>&1 | tee .run/drills.log
	@grep '^DRILL' .run/drills.log

# Regenerates the committed Grafana dashboards from the Go generator (dashboards/).
dashboards:
	$(GO) generate ./dashboards

# promtool and amtool checks of alerts/, dashboard drift and the contract checks.
rules-test: deps-test
	$(GO) test -count=1 ./alerts/... ./dashboards/...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin _build
