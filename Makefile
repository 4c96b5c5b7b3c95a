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
# Packages that work on Linux only: every file says //go:build linux, so that
# elsewhere they fail to build with "build constraints exclude all Go files".
LINUX_ONLY := ./nfslock ./fusefs ./metrics ./cmd/nfslock ./cmd/nfslockfs

# Tools, run through the Go module proxy at pinned versions.
NFPM      := $(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.48.0
MD2MAN    := $(GO) run github.com/cpuguy83/go-md2man/v2@v2.0.7
PKG       := $(BIN)/package
# Package version: the latest v* tag, else 0.0.0~gitDATE.COMMIT.
PKG_VERSION ?= $(shell v=$$(git describe --tags --match 'v[0-9]*' 2>/dev/null) && echo "$${v\#v}" | tr - + || \
	TZ=UTC git log -1 --date=format-local:%Y%m%d%H%M%S --format=0.0.0~git%cd.%h)
PKG_ARCH  ?= $(shell $(GO) env GOARCH)
# Every timestamp in a package is the last commit's: rebuilding the same
# commit gives the same bytes.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct)

.PHONY: all build lint test fuzz bench demo soak man package clean

all: build

## build: every binary into bin/
build:
	$(GO) build -o $(BIN)/ ./cmd/...

## lint: gofmt, //go:build linux on Linux-only packages, go.mod/go.sum tidy, staticcheck; prints what to fix and fails on any finding
lint:
	@unformatted=$$($(GOFMT) -l .); \
	if [ -n "$$unformatted" ]; then echo "gofmt -l: run gofmt -w on:"; echo "$$unformatted"; exit 1; fi
	@untagged=$$(GOOS=darwin $(GO) list -e -f '{{range .GoFiles}}{{$$.Dir}}/{{.}} {{end}}{{range .TestGoFiles}}{{$$.Dir}}/{{.}} {{end}}{{range .XTestGoFiles}}{{$$.Dir}}/{{.}} {{end}}' $(LINUX_ONLY)); \
	if [ -n "$$untagged" ]; then echo "files of Linux-only packages without //go:build linux:"; echo "$$untagged" | tr ' ' '\n'; exit 1; fi
	$(GO) mod tidy -diff
	$(GO) run $(STATICCHECK) ./...

## test: vet, the race-enabled test suite (one package at a time, see docs/testing.md), the scenarios on real NFS (in a QEMU guest; skipped without its tools), and a short fuzz run of the record parser
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -p 1 -timeout 30m -skip '^TestRealNFS$$' ./...
	$(GO) test -race -count=1 -timeout 25m -v -run '^TestRealNFS$$' ./integration/
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

## soak: cluster mutual exclusion, crash chaos, readers-writers and their chaos for DURATION (a quarter each); prints cycles, kills and violations
soak:
	NFSLOCKFS_SOAK=$(DURATION) NFSLOCKFS_REQUIRE_FUSE=1 $(GO) test -race -count=1 -v -run '^TestClusterSoak$$' -timeout $(SOAKTIMEOUT) ./integration/

## man: render the man pages nfslock(1) and nfslockfs(8) from docs/man/*.md into $(PKG)/root/man/
man:
	mkdir -p $(PKG)/root/man
	for page in docs/man/*.md; do \
		name=$$(basename $$page .md); \
		$(MD2MAN) -in $$page -out $(PKG)/root/man/$$name && gzip -n -9 -f $(PKG)/root/man/$$name || exit 1; \
	done

## package: .deb and .rpm (binaries, mount.nfslockfs, man pages, systemd units) into $(PKG)/, reproducibly
package: man
	CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=true -o $(PKG)/root/ ./cmd/...
	mkdir -p $(PKG)/root/systemd $(PKG)/root/doc
	cp contrib/systemd/* $(PKG)/root/systemd/
	cp README.md docs/operations.md $(PKG)/root/doc/
	for format in deb rpm; do \
		(cd $(PKG)/root && PKG_VERSION='$(PKG_VERSION)' PKG_ARCH='$(PKG_ARCH)' SOURCE_DATE_EPOCH='$(SOURCE_DATE_EPOCH)' \
			$(NFPM) package --config $(CURDIR)/packaging/nfpm.yaml --packager $$format --target ..) || exit 1; \
	done
	cd $(PKG) && sha256sum *.deb *.rpm

clean:
	rm -rf $(BIN)
