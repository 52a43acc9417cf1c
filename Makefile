# proxynow — build, run and test. `make help` lists the targets.
GO      ?= go
BIN     ?= bin/proxynow
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
FUZZTIME ?= 15s

.PHONY: help build run test cross bench fuzz lint

help:
	@echo "build  build $(BIN)"
	@echo "run    build and run on example.hcl"
	@echo "test   vet, the cross-builds, then every test with the race detector"
	@echo "cross  build (no tests) for Windows, macOS and Linux on arm64"
	@echo "bench  Go benchmarks of the hot paths"
	@echo "fuzz   a short run of each fuzz target (FUZZTIME=$(FUZZTIME))"
	@echo "lint   gofmt check and vet"

build:
	$(GO) build -trimpath -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/proxynow

run: build
	./$(BIN) run -config example.hcl

test:
	$(GO) vet ./...
	$(MAKE) --no-print-directory cross
	$(GO) test -race -count=1 -timeout 20m ./...

# The other systems' builds, so that code that only builds on Linux (a raw
# descriptor taken as an int, a Linux-only syscall) is caught here; their
# fallbacks are the files tagged !linux. integration/bench is Linux only.
# darwin/arm64 stands for the other Unix systems too (FreeBSD built as
# well when this was written); linux/arm64 for the other architectures
# (linux/386 needs x/sys's syscall numbers: package syscall lacks some).
# The tests are vetted there too; integration's are Linux only (they run
# the tools .ci/run installs) and say so with a build constraint.
cross:
	GOOS=windows GOARCH=amd64 $(GO) build ./...
	GOOS=windows GOARCH=amd64 $(GO) vet ./...
	GOOS=darwin GOARCH=arm64 $(GO) build ./...
	GOOS=darwin GOARCH=arm64 $(GO) vet ./...
	GOOS=linux GOARCH=arm64 $(GO) build ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./config
	$(GO) test -run '^$$' -fuzz '^FuzzParseRecords$$' -fuzztime $(FUZZTIME) ./tlsmux
	$(GO) test -run '^$$' -fuzz '^FuzzGuard$$' -fuzztime $(FUZZTIME) ./l7
	$(GO) test -run '^$$' -fuzz '^FuzzH1Server$$' -fuzztime $(FUZZTIME) ./l7
	$(GO) test -run '^$$' -fuzz '^FuzzH1Diff$$' -fuzztime $(FUZZTIME) ./l7
	$(GO) test -run '^$$' -fuzz '^FuzzResponseHead$$' -fuzztime $(FUZZTIME) ./l7
	$(GO) test -run '^$$' -fuzz '^FuzzTrafficXFFAt$$' -fuzztime $(FUZZTIME) ./l7/middleware
	$(GO) test -run '^$$' -fuzz '^FuzzCollector$$' -fuzztime $(FUZZTIME) ./quic
	$(GO) test -run '^$$' -fuzz '^FuzzDemux$$' -fuzztime $(FUZZTIME) ./quic

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Side-by-side comparison with nginx (stream) and HAProxy on this machine:
# every scenario, every installed peer, a Markdown table on stdout and the
# raw figures in bin/bench-compare.json. Peers that are not installed are
# skipped (Debian: nginx libnginx-mod-stream haproxy). BENCHFLAGS passes
# more flags, e.g. BENCHFLAGS="-rounds 5 -pprof /tmp/prof".
BENCHFLAGS ?=
.PHONY: bench-compare
bench-compare:
	@mkdir -p bin
	$(GO) run ./integration/bench -json bin/bench-compare.json $(BENCHFLAGS)
