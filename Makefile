# Berth's developer commands. `make test` is what CI runs (.ci/run).

GO ?= go
# Fuzz budgets are execution counts, not durations: Go 1.26's fuzz
# coordinator can fail a wall-clock -fuzztime spuriously at the deadline
# ("context deadline exceeded", golang/go#75804, fixed in Go 1.27).
# Each count is about 5-15 s of fuzzing on a 2-core machine.
FUZZ_SCALE ?= 1
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: test deps vet unit fuzz generate bench build

## test: install test dependencies, then vet, unit + end-to-end tests (race detector on), and short fuzz runs
test: deps vet unit fuzz

## deps: from Debian, the AWS CLI v2 and skopeo the end-to-end tests drive, and the distribution registry (a test peer and the benchmark's)
deps:
	@if [ ! -x /usr/bin/aws ] || [ ! -x /usr/bin/docker-registry ] || [ ! -x /usr/bin/skopeo ]; then \
		echo "installing awscli, docker-registry and skopeo from Debian"; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq awscli docker-registry skopeo >/dev/null; \
	fi
	@/usr/bin/aws --version

vet:
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 -timeout 15m ./...
	# the load balancer again without the race detector: only such builds make raw system calls (internal/lb/rawio.go)
	$(GO) test -count=1 -timeout 5m ./internal/lb

## fuzz: each fuzz target briefly (go runs one target per package per call); FUZZ_SCALE=10 for longer
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDispatch$$' -fuzztime $$((300000 * $(FUZZ_SCALE)))x ./internal/awsmodel
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeQuery$$' -fuzztime $$((150000 * $(FUZZ_SCALE)))x ./internal/awsmodel
	$(GO) test -run '^$$' -fuzz '^FuzzHandlers$$' -fuzztime $$((10000 * $(FUZZ_SCALE)))x ./internal/api/ecs
	$(GO) test -run '^$$' -fuzz '^FuzzHandlers$$' -fuzztime $$((10000 * $(FUZZ_SCALE)))x ./internal/api/ecr
	$(GO) test -run '^$$' -fuzz '^FuzzHandlers$$' -fuzztime $$((10000 * $(FUZZ_SCALE)))x ./internal/api/elbv2
	$(GO) test -run '^$$' -fuzz '^FuzzParseAuthorization$$' -fuzztime $$((400000 * $(FUZZ_SCALE)))x ./internal/api/sigv4
	$(GO) test -run '^$$' -fuzz '^FuzzParsePresigned$$' -fuzztime $$((400000 * $(FUZZ_SCALE)))x ./internal/api/sigv4
	$(GO) test -run '^$$' -fuzz '^FuzzParseExpression$$' -fuzztime $$((300000 * $(FUZZ_SCALE)))x ./internal/scheduler
	$(GO) test -run '^$$' -fuzz '^FuzzAgentProtocol$$' -fuzztime $$((30000 * $(FUZZ_SCALE)))x ./internal/api/agent
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $$((20000 * $(FUZZ_SCALE)))x ./internal/registry
	$(GO) test -run '^$$' -fuzz '^FuzzReadRequest$$' -fuzztime $$((100000 * $(FUZZ_SCALE)))x ./internal/lb
	$(GO) test -run '^$$' -fuzz '^FuzzResponseHead$$' -fuzztime $$((100000 * $(FUZZ_SCALE)))x ./internal/lb

## generate: regenerate API types from ../shared/aws-models
generate:
	$(GO) generate ./internal/awsmodel

## bench: the benchmarks recorded in docs/benchmarks.md (bench/lb needs Debian's wrk and nginx)
bench:
	$(GO) run ./bench/taskdefs
	$(GO) run ./bench/runtask
	$(GO) run ./bench/services
	$(GO) run ./bench/registry
	$(GO) run ./bench/lb -backend nginx
	$(GO) run ./bench/lb
	$(GO) test -run '^$$' -bench . -benchtime 2s ./internal/store/bolt
	$(GO) test -run '^$$' -bench '^BenchmarkPlace$$' ./internal/scheduler
	$(GO) test -run '^$$' -bench '^BenchmarkLoadBalancersSync$$' ./internal/controller

build:
	$(GO) build -o bin/berth ./cmd/berth
