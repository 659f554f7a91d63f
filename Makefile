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
KAFKA_SINGLE := KAFKA_SECURE=1 scripts/kafka.sh
KAFKA_CLUSTER := KAFKA_NODES=3 KAFKA_PORT=$(CLUSTER_PORT) scripts/kafka.sh
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

## test: the whole suite in two tiers, and the fuzz targets briefly beside the single-broker tests.
##   fast tier:        go test -race ./...   units, kfake, in-memory sources; no broker. It
##                     runs while the brokers start (JVM start-up is mostly waiting).
##   integration tier: go test -tags integration, without -race, on the packages with
##                     integration-tagged tests: real Apache Kafka, subprocesses, faults,
##                     the cluster, lifecycle. The race detector there would only slow
##                     the harness: the binaries under test never ran with it, and every
##                     package's code runs under -race in the fast tier. The cluster tests
##                     (CLUSTER_TESTS: broker kills, the fault soak) mostly wait out
##                     failovers: they run in a process of their own from the moment the
##                     brokers are ready, beside the fast tier and the single-broker tests.
## The brokers this target installs, starts and always stops: one with a SASL_SSL listener
## (KAFKA_SECURE=1) for most tests, and a 3-node cluster for the cluster fault tests.
## KAFKA_SECURE and KAFKA_NODES go only to kafka.sh, never to `go test`, so the private
## broker TestIntegrationBrokerRestart starts is a plain single node.
test: lint onnxruntime
	@mkdir -p bin; rm -f bin/test-report.txt bin/test-timing.txt bin/test-cluster.* bin/test-fuzz.*
	@set -o pipefail; rc=0; start=$$(date +%s); \
	trap '$(MAKE) --no-print-directory kafka-stop; scripts/registry.sh stop' EXIT; \
	$(MAKE) --no-print-directory kafka-start > bin/kafka-start.log 2>&1 & brokers=$$!; \
	scripts/registry.sh start > bin/registry-start.log 2>&1 & registry=$$!; \
	echo "== fast tier: go test -race ./... (the brokers start meanwhile) =="; \
	$(GO) test -race -count=1 -timeout 20m ./... & fasttier=$$!; \
	if ! wait $$brokers; then cat bin/kafka-start.log; echo "the test brokers did not start"; wait $$fasttier; exit 1; fi; \
	ready=$$(date +%s); echo "brokers ready after $$((ready - start)) s" | tee -a bin/test-timing.txt; \
	if ! wait $$registry; then cat bin/registry-start.log; echo "the schema registry did not start"; wait $$fasttier; exit 1; fi; \
	eval "$$(scripts/registry.sh env)"; \
	eval "$$($(KAFKA_SINGLE) env)"; \
	eval "$$($(KAFKA_CLUSTER) env | sed -e 's/_TEST_BROKERS=/_TEST_CLUSTER_BROKERS=/' -e 's/_TEST_KAFKA_/_TEST_CLUSTER_/' -e '/_TEST_SECURE\|_TEST_TLS\|_TEST_SASL/d')"; \
	export STREAMSCORE_TEST_REPORT=$(CURDIR)/bin/test-report.txt; \
	{ $(GO) test -tags integration -count=1 -timeout 30m -run '$(CLUSTER_TESTS)' ./internal/drivers > bin/test-cluster.log 2>&1; \
	  echo $$? > bin/test-cluster.rc; } & cluster=$$!; \
	wait $$fasttier || rc=$$?; \
	fast=$$(date +%s); echo "fast tier: $$((fast - start)) s (rc $$rc)" | tee -a bin/test-timing.txt; \
	{ $(MAKE) --no-print-directory fuzz > bin/test-fuzz.log 2>&1; echo $$? > bin/test-fuzz.rc; } & fuzzing=$$!; \
	echo "== integration tier on the single broker: go test -tags integration $(INTEGRATION_PKGS); the cluster tests and the fuzz targets in the background =="; \
	$(GO) test -tags integration -count=1 -timeout 30m -skip '$(CLUSTER_TESTS)' $(INTEGRATION_PKGS) || rc=$$?; \
	single=$$(date +%s); echo "integration tier, single broker: $$((single - fast)) s (rc $$rc)" | tee -a bin/test-timing.txt; \
	wait $$fuzzing; frc=$$(cat bin/test-fuzz.rc 2>/dev/null || echo 1); \
	echo "== fuzz targets (make fuzz, beside the single-broker tests) =="; cat bin/test-fuzz.log; [ "$$frc" = 0 ] || rc=$$frc; \
	wait $$cluster; crc=$$(cat bin/test-cluster.rc 2>/dev/null || echo 1); \
	echo "== integration tier on the 3-node cluster: go test -tags integration -run '$(CLUSTER_TESTS)' ./internal/drivers (since the brokers were ready) =="; \
	cat bin/test-cluster.log; [ "$$crc" = 0 ] || rc=$$crc; \
	integ=$$(date +%s); echo "integration tier, cluster: $$((integ - ready)) s (rc $$crc)" | tee -a bin/test-timing.txt; \
	echo "== integration results (bin/test-report.txt) =="; cat bin/test-report.txt 2>/dev/null; \
	end=$$(date +%s); echo "make test after lint: $$((end - start)) s" | tee -a bin/test-timing.txt; \
	exit $$rc

# The packages with integration tests: files tagged //go:build integration, or tests that
# pick Apache Kafka over the embedded broker by testenv.Integration. The integration tier
# runs only these, and the fast-only files there say //go:build !integration.
# The tests on the 3-node cluster: they wait on broker failovers more than they compute, so
# they run beside the fast tier and the single-broker tests, in a process of their own.
CLUSTER_TESTS := ^(TestIntegrationClusterFaults|TestIntegrationClusterFaultsExactlyOnce|TestIntegrationStartWithABrokerDown|TestIntegrationSoak)$$
INTEGRATION_PKGS = $(sort $(patsubst %/,./%,$(dir $(shell grep -rlE --include='*_test.go' '^//go:build integration|testenv\.Integration' cmd internal pipeline scorer topics))))

## lint: golangci-lint (.golangci.yml) over the whole tree, twice: with the integration tag
## (the config's build-tags) and without it (a copy of the config without build-tags, for
## the fast tier's //go:build !integration files); the alert rules (make rules) and the
## Helm chart (make chart)
lint: $(GOLANGCI_LINT) rules chart
	$(GOLANGCI_LINT) run ./...
	@mkdir -p bin; sed '/^  build-tags:/,/^    - integration/d' .golangci.yml > bin/golangci-fast.yml
	$(GOLANGCI_LINT) run --config bin/golangci-fast.yml ./...

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
kafka-start:
	@rc=0; $(KAFKA_SINGLE) start & s=$$!; $(KAFKA_CLUSTER) start & c=$$!; \
	wait $$s || rc=1; wait $$c || rc=1; \
	if [ $$rc != 0 ]; then $(MAKE) --no-print-directory kafka-stop; exit 1; fi

kafka-stop:
	@$(KAFKA_SINGLE) stop & s=$$!; $(KAFKA_CLUSTER) stop & c=$$!; wait $$s; wait $$c

## bench: hot-path micro-benchmarks, then `streamscore-bench` (table, bin/bench/results.json,
## bin/bench/latency.png) and the catch-up/backfill/RSS benchmarks, on a real broker
bench: build
	$(GO) test -run='^$$' -bench=. -benchmem ./scorer ./pipeline ./pipeline/wireformat
	@scripts/kafka.sh start
	@scripts/registry.sh start
	@eval "$$(scripts/registry.sh env)"; rc=0; ./bin/streamscore-bench --bin bin/streamscore --brokers 127.0.0.1:$(KAFKA_PORT) --out bin/bench || rc=$$?; \
	if [ $$rc = 0 ]; then STREAMSCORE_TEST_BROKERS=127.0.0.1:$(KAFKA_PORT) $(GO) test -tags integration -run='^$$' -bench='CatchUpVsBackfill|PeakRSS|CatchUpAvroVsJSON' -benchtime=1x -count=3 ./internal/drivers || rc=$$?; fi; \
	if [ $$rc = 0 ]; then STREAMSCORE_TEST_BROKERS=127.0.0.1:$(KAFKA_PORT) STREAMSCORE_API_BENCH_SECONDS=5 $(GO) test -tags integration -run='^$$' -bench='^BenchmarkAPILatency$$' -benchtime=1x ./internal/drivers || rc=$$?; fi; \
	scripts/kafka.sh stop; scripts/registry.sh stop; exit $$rc

compose-check:
	docker compose config -q

clean:
	rm -rf bin
