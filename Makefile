# nfslockfs — build, test, benchmark.
GO        ?= go
BIN       := bin
FUZZTIME  ?= 10s
BENCHTIME ?= 1s
BENCHCOUNT ?= 6
DURATION  ?= 10m
SOAKTIMEOUT ?= 24h
# staticcheck 2026.2.2, the newest release; checked with Go 1.26.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
# gofmt of the toolchain that builds, so formatting follows the same Go.
GOFMT     ?= $(shell $(GO) env GOROOT)/bin/gofmt

.PHONY: all build lint test fuzz bench demo soak clean

all: build

## build: every binary into bin/
build:
	$(GO) build -o $(BIN)/ ./cmd/...

## lint: gofmt, go.mod/go.sum tidy, staticcheck; prints what to fix and fails on any finding
lint:
	@unformatted=$$($(GOFMT) -l .); \
	if [ -n "$$unformatted" ]; then echo "gofmt -l: run gofmt -w on:"; echo "$$unformatted"; exit 1; fi
	$(GO) mod tidy -diff
	$(GO) run $(STATICCHECK) ./...

## test: vet, the race-enabled test suite, and a short fuzz run of the record parser
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 30m ./...
	$(MAKE) fuzz

## fuzz: fuzz the holder-record parser for FUZZTIME
fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzParseRecord -fuzztime=$(FUZZTIME) ./nfslock/

## demo: mount nfslockfs over a temporary directory and show two processes contending (needs root or fusermount)
demo: build
	scripts/demo.sh $(BIN)

## bench: the side-by-side benchmarks (peers installed from Debian; needs root); rewrites docs/benchmarks.txt, the tables of docs/benchmarks.md and docs/benchmarks.png
bench: build
	GO=$(GO) BIN=$(BIN) BENCHTIME=$(BENCHTIME) BENCHCOUNT=$(BENCHCOUNT) bash bench/run.sh

## soak: cluster mutual exclusion and crash chaos for DURATION (half each); prints cycles, kills and violations
soak:
	NFSLOCKFS_SOAK=$(DURATION) NFSLOCKFS_REQUIRE_FUSE=1 $(GO) test -race -count=1 -v -run '^TestClusterSoak$$' -timeout $(SOAKTIMEOUT) ./integration/

clean:
	rm -rf $(BIN)
