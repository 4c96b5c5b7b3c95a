# nfslockfs — build, test, benchmark.
GO        ?= go
BIN       := bin
FUZZTIME  ?= 10s
BENCHTIME ?= 1s
BENCHCOUNT ?= 5

.PHONY: all build test fuzz bench demo clean

all: build

## build: every binary into bin/
build:
	$(GO) build -o $(BIN)/ ./cmd/...

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

## bench: the Go benchmarks, BENCHCOUNT runs each
bench:
	$(GO) test -run='^$$' -bench=. -benchtime=$(BENCHTIME) -count=$(BENCHCOUNT) ./nfslock/ ./fusefs/

clean:
	rm -rf $(BIN)
