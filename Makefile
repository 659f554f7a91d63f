# streamscore — the two commands of the README's Quick start are `make demo` and `make test`.
# Everything they need (the ONNX Runtime library, Apache Kafka's jars) is installed into
# $(STREAMSCORE_CACHE), outside the repo, on first use.

SHELL := /bin/bash
GO ?= go
export STREAMSCORE_CACHE ?= $(HOME)/.cache/streamscore
# The test broker listens here, away from a Kafka you may run on 9092, and below Linux's
# ephemeral port range (32768-60999): a client socket's local port there can take a
# listener's port before a (re)starting broker binds it.
export KAFKA_PORT ?= 29092
# The 3-node cluster of the cluster fault tests: nodes on CLUSTER_PORT, +10, +20.
CLUSTER_PORT ?= 29192
# The test brokers compile with C1 only: on two cores shared by four brokers and the suite,
# C2's compiler threads cost more CPU than its faster code saves at the tests' rates, and a
# killed node restarts sooner (a single broker's start to ready: 3.3-4.1 s of CPU, not
# 5.7-6.2 s; the cluster tests' three brokers: 219 s, not 293 s). kafka.sh records the
# options, so a node a test restarts (start-node) runs with them too.
KAFKA_TEST_JVM_OPTS ?= -XX:TieredStopAtLevel=1
KAFKA_SINGLE := KAFKA_SECURE=1 KAFKA_JVM_OPTS='$(KAFKA_TEST_JVM_OPTS)' scripts/kafka.sh
KAFKA_CLUSTER := KAFKA_NODES=3 KAFKA_PORT=$(CLUSTER_PORT) KAFKA_JVM_OPTS='$(KAFKA_TEST_JVM_OPTS)' scripts/kafka.sh
ARGS ?=
FUZZTIME ?= 10s
# golangci-lint is pinned and installed into the tool cache by `make lint` when this exact
# version is missing there; a PATH copy of another version is never used.
GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT := $(STREAMSCORE_CACHE)/bin/golangci-lint-$(GOLANGCI_LINT_VERSION)
# helm, the same way: pinned, built from the Go module proxy into the tool cache when missing.
HELM_VERSION := v3.22.0
HELM := $(STREAMSCORE_CACHE)/bin/helm-$(HELM_VERSION)
CHART := deploy/helm/streamscore
# The chart rendered with every optional object on (ServiceMonitor, HTTP API, SASL, TLS),
# and with KEDA and the PodDisruptionBudget off.
CHART_ALL_ON := --set metrics.serviceMonitor.enabled=true --set http.port=8080 --set kafka.sasl.mechanism=scram-sha-512 --set kafka.tls.enabled=true
CHART_OFF := --set autoscaling.enabled=false --set podDisruptionBudget.enabled=false
KUBECHECK := $(GO) -C deploy/helm/kubecheck run .
# kubeconform, pinned and built like helm, validates the rendered manifests against the
# Kubernetes 1.37 JSON schemas that scripts/install-k8s-schemas.sh takes from PyPI (offline
# afterwards). KEDA's and the Prometheus Operator's CRDs have no schema there: kubecheck
# decodes those into copies of their Go types.
KUBECONFORM_VERSION := v0.8.0
KUBECONFORM := $(STREAMSCORE_CACHE)/bin/kubeconform-$(KUBECONFORM_VERSION)
K8S_SCHEMAS := $(STREAMSCORE_CACHE)/k8s-schemas-1.37.0
KUBECONFORM_RUN := $(KUBECONFORM) -strict -summary -skip ScaledObject,TriggerAuthentication,ServiceMonitor \
	-schema-location '$(K8S_SCHEMAS)/{{ .ResourceKind }}{{ .KindSuffix }}.json' -
# The Kubernetes version the chart is rendered for: that of kubecheck's k8s.io/api (v0.37).
# A helm built by `go install` lacks the release build's version stamp and would assume 1.20.
CHART_KUBE := --kube-version 1.37.0

.PHONY: all build demo test unit fuzz onnxruntime kafka-start kafka-stop bench lint rules chart k8s-schemas promtool compose-check clean

all: build

onnxruntime:
	@scripts/install-onnxruntime.sh

build: onnxruntime
	$(GO) build -o bin/streamscore ./cmd/streamscore
	$(GO) build -o bin/streamscore-bench ./cmd/streamscore-bench

## demo: score simulated transactions end to end on an embedded broker (ARGS='--events 20000 --json')
demo: build
	./bin/streamscore demo $(ARGS)

## test: the whole suite in two tiers, each split into processes that run side by side.
##   fast tier:        go test -race ./...   units, kfake, in-memory sources; no broker.
##   integration tier: go test -tags integration, without -race, on the packages with
##                     integration-tagged tests: real Apache Kafka, subprocesses, faults,
##                     the cluster, lifecycle. The race detector there would only slow
##                     the harness: the binaries under test never ran with it, and every
##                     package's code runs under -race in the fast tier. It starts as soon
##                     as the brokers are ready, beside the fast tier:
##                     its tests mostly wait on Kafka, subprocesses, rebalances and
##                     failovers. internal/drivers' test binary is built once and run as
##                     several processes by -test.run groups (DRIVERS_GROUPS, CLUSTER_TESTS),
##                     the rest of its tests (every test no group names, so a new test
##                     always runs) in one more; the other packages in another.
##   fuzz:             make fuzz, after the fast tier, beside the integration tier.
##   lint:             make lint, from the start beside everything else (under nice): on a
##                     fresh machine it first builds golangci-lint, helm and kubeconform,
##                     which then overlaps the tests instead of delaying them.
## The fast tier and fuzz run under nice: they only need CPU, while the integration tests
## wait on brokers and subprocesses (a cluster node restarting, a rebalance) that should
## get it first.
## Every background process's output is in bin/test-<name>.log, printed at the end; any
## failure fails make test. The brokers this target installs, starts and always stops: one
## with a SASL_SSL listener (KAFKA_SECURE=1) for most tests, and a 3-node cluster for the
## cluster fault tests. KAFKA_SECURE and KAFKA_NODES go only to kafka.sh, never to the
## tests, so the private broker TestIntegrationBrokerRestart starts is a plain single node.
test: onnxruntime
	@mkdir -p bin/test; rm -f bin/test-report.txt bin/test-timing.txt bin/test-*.log bin/test-*.rc
	@set -o pipefail; rc=0; start=$$(date +%s); \
	trap '$(MAKE) --no-print-directory kafka-stop; scripts/registry.sh stop' EXIT; \
	$(MAKE) --no-print-directory kafka-start > bin/kafka-start.log 2>&1 & brokers=$$!; \
	scripts/registry.sh start > bin/registry-start.log 2>&1 & registry=$$!; \
	{ nice -n 10 $(MAKE) --no-print-directory lint > bin/test-lint.log 2>&1; echo "$$? $$(date +%s)" > bin/test-lint.rc; } & lint=$$!; \
	$(GO) test -c -tags integration -o bin/test/drivers-integration.test ./internal/drivers > bin/test-build.log 2>&1 & build=$$!; \
	echo "== fast tier: go test -race ./... (the integration tier starts beside it once the brokers are ready) =="; \
	nice -n 10 $(GO) test -race -count=1 -timeout 20m ./... & fasttier=$$!; \
	if ! wait $$brokers; then cat bin/kafka-start.log; echo "the test brokers did not start"; wait $$build; wait $$fasttier; wait $$lint; exit 1; fi; \
	ready=$$(date +%s); echo "brokers ready after $$((ready - start)) s" | tee -a bin/test-timing.txt; \
	if ! wait $$registry; then cat bin/registry-start.log; echo "the schema registry did not start"; wait $$build; wait $$fasttier; wait $$lint; exit 1; fi; \
	eval "$$(scripts/registry.sh env)"; \
	eval "$$($(KAFKA_SINGLE) env)"; \
	eval "$$($(KAFKA_CLUSTER) env | sed -e 's/_TEST_BROKERS=/_TEST_CLUSTER_BROKERS=/' -e 's/_TEST_KAFKA_/_TEST_CLUSTER_/' -e '/_TEST_SECURE\|_TEST_TLS\|_TEST_SASL/d')"; \
	export STREAMSCORE_TEST_REPORT=$(CURDIR)/bin/test-report.txt; \
	bg() { local name=$$1; shift; { "$$@" > bin/test-$$name.log 2>&1; echo "$$? $$(date +%s)" > bin/test-$$name.rc; } & }; \
	drivers() ( cd internal/drivers && ../../bin/test/drivers-integration.test -test.count=1 -test.timeout=30m $(DRIVERS_FLAGS) "$$@" && echo "ok internal/drivers $$*" ); \
	collect() { wait $$2; local r=1 end; read -r r end < bin/test-$$1.rc || true; end=$${end:-$$(date +%s)}; \
	  echo "== $$1: $$3 =="; cat bin/test-$$1.log; \
	  echo "integration, $$1: $$((end - ready)) s since the brokers were ready (rc $$r)" | tee -a bin/test-timing.txt; \
	  [ "$$r" = 0 ] || rc=$$r; }; \
	groups=""; \
	if wait $$build; then \
	  bg cluster drivers -test.run '$(CLUSTER_TESTS)'; groups="$$groups cluster:$$!"; \
	  i=0; for g in $(foreach g,$(DRIVERS_GROUPS),'$(g)'); do i=$$((i + 1)); \
	    bg drivers-$$i drivers -test.run "$$g"; groups="$$groups drivers-$$i:$$!"; done; \
	  bg drivers-rest drivers -test.skip '$(CLUSTER_TESTS)|$(subst $(space),|,$(strip $(DRIVERS_GROUPS)))'; groups="$$groups drivers-rest:$$!"; \
	else cat bin/test-build.log; echo "the integration test binary of internal/drivers did not build"; rc=1; fi; \
	bg others $(GO) test -tags integration -count=1 -timeout 30m $(filter-out ./internal/drivers,$(INTEGRATION_PKGS)); groups="$$groups others:$$!"; \
	frc=0; wait $$fasttier || frc=$$?; [ "$$frc" = 0 ] || rc=$$frc; \
	fast=$$(date +%s); echo "fast tier: $$((fast - start)) s (rc $$frc)" | tee -a bin/test-timing.txt; \
	echo "== fuzz targets (make fuzz, beside the integration tier) =="; \
	frc=0; nice -n 10 $(MAKE) --no-print-directory fuzz || frc=$$?; [ "$$frc" = 0 ] || rc=$$frc; \
	fuzzed=$$(date +%s); echo "fuzz: $$((fuzzed - fast)) s (rc $$frc)" | tee -a bin/test-timing.txt; \
	for g in $$groups; do name=$${g%%:*}; case $$name in \
	  cluster) what="go test -tags integration -run '$(CLUSTER_TESTS)' ./internal/drivers, on the 3-node cluster";; \
	  others) what="go test -tags integration $(filter-out ./internal/drivers,$(INTEGRATION_PKGS))";; \
	  *) what="internal/drivers' integration tests, single broker";; esac; \
	  collect $$name $${g#*:} "$$what"; done; \
	wait $$lint; lrc=1; read -r lrc lend < bin/test-lint.rc || true; \
	echo "== lint (make lint, beside everything from the start) =="; cat bin/test-lint.log; [ "$$lrc" = 0 ] || rc=$$lrc; \
	echo "lint: $$(( $${lend:-$$(date +%s)} - start)) s (rc $$lrc)" | tee -a bin/test-timing.txt; \
	echo "== integration results (bin/test-report.txt) =="; cat bin/test-report.txt 2>/dev/null; \
	end=$$(date +%s); echo "make test in all: $$((end - start)) s" | tee -a bin/test-timing.txt; \
	exit $$rc

# The packages with integration tests: files tagged //go:build integration, or tests that
# pick Apache Kafka over the embedded broker by testenv.Integration. The integration tier
# runs only these, and the fast-only files there say //go:build !integration.
# The tests on the 3-node cluster: they wait on broker failovers more than they compute, so
# they run in a process of their own from the moment the brokers are ready.
CLUSTER_TESTS := ^(TestIntegrationClusterFaults|TestIntegrationClusterFaultsExactlyOnce|TestIntegrationStartWithABrokerDown|TestIntegrationSoak)$$
# internal/drivers' single-broker integration tests in groups, one process each beside the
# others, balanced by the per-test times of `go test -json` (CONTRIBUTING.md, Tests); the
# tests no group names run in one more process. A group's tests run one after the other,
# its waitBound tests in parallel after them. Space-separated -test.run patterns.
DRIVERS_GROUPS := ^(TestIntegrationSIGKILLLosesNothing|TestIntegrationLiveScoring|TestIntegrationTwoInstancesShareTheGroup|TestIntegrationRestartResumesFromCommittedOffsets|TestIntegrationSecure|TestIntegrationAlertReasons)$$ \
	^(TestIntegrationExactlyOnceUnderSIGKILL|TestIntegrationDrift|TestIntegrationDriftGauges|TestIntegrationLookupsLiveEqualsBackfillAndExport)$$ \
	^(TestIntegrationModelLifecycle|TestIntegrationLiveEqualsBackfillAndExport|TestIntegrationExperimentIsStickyAcrossKillAndReplay)$$ \
	^(TestIntegrationForeignClients|TestIntegrationBrokerRestart|TestIntegrationDistributedBackfillUnderSIGKILL)$$
# Extra flags for those processes, e.g. DRIVERS_FLAGS=-test.v for each test's time in their logs.
DRIVERS_FLAGS ?=
empty :=
space := $(empty) $(empty)
INTEGRATION_PKGS = $(sort $(patsubst %/,./%,$(dir $(shell grep -rlE --include='*_test.go' '^//go:build integration|testenv\.Integration' cmd internal pipeline scorer topics))))

## lint: golangci-lint (.golangci.yml) over the whole tree with the integration tag (the
## config's build-tags), then again without it (a copy of the config without build-tags, for
## the fast tier's //go:build !integration files) on LINT_FAST_PKGS; the alert rules (make
## rules) and the Helm chart (make chart)
lint: $(GOLANGCI_LINT) rules chart
	$(GOLANGCI_LINT) run ./...
	@mkdir -p bin; sed '/^  build-tags:/,/^    - integration/d' .golangci.yml > bin/golangci-fast.yml
	$(GOLANGCI_LINT) run --config bin/golangci-fast.yml $(LINT_FAST_PKGS)

# The packages that build differently without the integration tag: a file of theirs names
# it, or asks testenv.Integration (a constant of either tier). Every other package builds
# the same files either way, so the first pass has linted it as the fast tier builds it.
LINT_FAST_PKGS = $(sort $(patsubst %/,./%,$(dir $(shell grep -rlE --include='*.go' '^//go:build.*integration|testenv\.Integration' cmd internal pipeline scorer topics))))

## chart: helm lint, then helm template in three configurations, each manifest decoded
## strictly into its Go type by deploy/helm/kubecheck (offline: no schema download), and
## the rendered streamscore.yaml validated by `streamscore config check`
chart: $(HELM) $(KUBECONFORM) k8s-schemas
	$(HELM) lint --strict $(CHART_KUBE) $(CHART)
	$(HELM) lint --strict $(CHART_KUBE) $(CHART) $(CHART_ALL_ON)
	$(GO) -C deploy/helm/kubecheck vet ./...
	$(GO) -C deploy/helm/kubecheck test -count=1 ./...
	set -o pipefail; $(HELM) template streamscore $(CHART_KUBE) $(CHART) | $(KUBECHECK)
	set -o pipefail; $(HELM) template streamscore $(CHART_KUBE) $(CHART) $(CHART_ALL_ON) | $(KUBECHECK) -configmaps $(CURDIR)/bin/chart
	$(GO) run ./cmd/streamscore config check --config bin/chart/streamscore.yaml >/dev/null
	set -o pipefail; $(HELM) template streamscore $(CHART_KUBE) $(CHART) $(CHART_OFF) | $(KUBECHECK)
	set -o pipefail; $(HELM) template streamscore $(CHART_KUBE) $(CHART) | $(KUBECONFORM_RUN)
	set -o pipefail; $(HELM) template streamscore $(CHART_KUBE) $(CHART) $(CHART_ALL_ON) | $(KUBECONFORM_RUN)
	set -o pipefail; $(HELM) template streamscore $(CHART_KUBE) $(CHART) $(CHART_OFF) | $(KUBECONFORM_RUN)

k8s-schemas:
	@scripts/install-k8s-schemas.sh

## rules: promtool checks the Prometheus alert rules and runs their unit tests (deploy/rules)
rules: promtool
	promtool check rules deploy/rules/streamscore.rules.yml
	cd deploy/rules && promtool test rules streamscore.rules.test.yml

# promtool comes with Debian's prometheus package; CI runs as root on a fresh machine.
promtool:
	@command -v promtool >/dev/null || { \
		echo "promtool missing: installing Debian's prometheus package"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus; }
	@command -v promtool >/dev/null || { echo "promtool still missing: install the prometheus package"; exit 1; }

# The versioned file name makes a version bump reinstall; GOBIN puts the binary in the cache.
$(GOLANGCI_LINT):
	@mkdir -p $(STREAMSCORE_CACHE)/bin
	GOBIN=$(STREAMSCORE_CACHE)/bin $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	mv $(STREAMSCORE_CACHE)/bin/golangci-lint $@

$(HELM):
	@mkdir -p $(STREAMSCORE_CACHE)/bin
	GOBIN=$(STREAMSCORE_CACHE)/bin $(GO) install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
	mv $(STREAMSCORE_CACHE)/bin/helm $@

$(KUBECONFORM):
	@mkdir -p $(STREAMSCORE_CACHE)/bin
	GOBIN=$(STREAMSCORE_CACHE)/bin $(GO) install github.com/yannh/kubeconform/cmd/kubeconform@$(KUBECONFORM_VERSION)
	mv $(STREAMSCORE_CACHE)/bin/kubeconform $@

## unit: the fast tier, no broker needed (the integration tier is built only with
## -tags integration: make test runs it on Apache Kafka)
unit: onnxruntime
	$(GO) test -race -count=1 ./...

## fuzz: each fuzz target for FUZZTIME (the decoder with feature extraction; the prediction encoder)
fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzDecode$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=2s ./pipeline
	$(GO) test -run='^$$' -fuzz='^FuzzPredictionRoundTrip$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=2s ./pipeline

## kafka-start / kafka-stop: the test brokers of `make test` (both start in parallel)
# make test starts them beside lint: a loaded 2-core machine may take more than kafka.sh's
# 120 s (240 s for the cluster) to answer, so the deadline, which only catches a broker that
# never starts, is 300 s unless KAFKA_START_TIMEOUT says otherwise.
kafka-start:
	@rc=0; export KAFKA_START_TIMEOUT=$${KAFKA_START_TIMEOUT:-300}; $(KAFKA_SINGLE) start & s=$$!; $(KAFKA_CLUSTER) start & c=$$!; \
	wait $$s || rc=1; wait $$c || rc=1; \
	if [ $$rc != 0 ]; then $(MAKE) --no-print-directory kafka-stop; exit 1; fi

kafka-stop:
	@$(KAFKA_SINGLE) stop & s=$$!; $(KAFKA_CLUSTER) stop & c=$$!; wait $$s; wait $$c

## bench: hot-path micro-benchmarks, then `streamscore-bench` (table, bin/bench/results.json,
## bin/bench/latency.png, bin/bench/catchup-cpu.pb.gz; 5 runs of each latency load against
## the Kafka floor) and the catch-up/backfill/RSS benchmarks, on a real broker
bench: build
	$(GO) test -run='^$$' -bench=. -benchmem ./scorer ./scorer/treeshap ./pipeline ./pipeline/wireformat
	@scripts/kafka.sh start
	@scripts/registry.sh start
	@eval "$$(scripts/registry.sh env)"; rc=0; ./bin/streamscore-bench --bin bin/streamscore --brokers 127.0.0.1:$(KAFKA_PORT) --repeats 5 --out bin/bench || rc=$$?; \
	if [ $$rc = 0 ]; then STREAMSCORE_TEST_BROKERS=127.0.0.1:$(KAFKA_PORT) $(GO) test -tags integration -run='^$$' -bench='CatchUpVsBackfill|PeakRSS|CatchUpAvroVsJSON' -benchtime=1x -count=3 ./internal/drivers || rc=$$?; fi; \
	if [ $$rc = 0 ]; then STREAMSCORE_TEST_BROKERS=127.0.0.1:$(KAFKA_PORT) STREAMSCORE_API_BENCH_SECONDS=5 $(GO) test -tags integration -run='^$$' -bench='^BenchmarkAPILatency$$' -benchtime=1x ./internal/drivers || rc=$$?; fi; \
	scripts/kafka.sh stop; scripts/registry.sh stop; exit $$rc

compose-check:
	docker compose config -q

clean:
	rm -rf bin
