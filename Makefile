# wactl — build, run and test. `make test` is exactly what CI runs.
GO       ?= go
# go.mod names the toolchain with the standard-library fixes wactl needs;
# machines whose go.env says GOTOOLCHAIN=local would refuse it, so let the go
# command fetch it through the module proxy.
export GOTOOLCHAIN = auto
PKG      := github.com/wactl/wactl
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
DATE     ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS  := -s -w \
	-X $(PKG)/internal/buildinfo.Version=$(VERSION) \
	-X $(PKG)/internal/buildinfo.Commit=$(COMMIT) \
	-X $(PKG)/internal/buildinfo.Date=$(DATE)
# What `make run` runs: the main job on the embedded default.
ARGS     ?= serve
TESTFLAGS ?= -count=1 -timeout 40m
FUZZTIME ?= 20s

.PHONY: build run test test-race lint bench fuzz vuln clean notices package

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/wactl ./cmd/wactl

run: build
	./bin/wactl $(ARGS)

# Unit, integration (Firestore emulator, fake WhatsApp server, child
# processes, tmux) and systemd unit tests, after the lint checks; then the
# same tests under the race detector; then govulncheck (make vuln).
test: lint
	$(GO) test $(TESTFLAGS) ./...
	@$(MAKE) --no-print-directory test-race
	@$(MAKE) --no-print-directory vuln

# Every package under -race. -short trims the long forms (CI has 90 min in
# all; docs/races.md lists the races left in whatsmeow and their exclusions).
RACEFLAGS ?= -race -short -count=1 -timeout 45m
test-race:
	$(GO) test $(RACEFLAGS) ./...

lint:
	@bash .ci/no-binaries
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem -timeout 60m ./...

# Short runs of every fuzzer (go test -fuzz takes one target at a time).
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# THIRD_PARTY_NOTICES.md from the modules linked into bin/wactl.
notices:
	bash tools/notices.sh

# govulncheck against a database built from golang.org/x/vulndb, fetched
# through the module proxy (tools/vulndb.sh; docs/security.md).
GOVULNCHECK ?= golang.org/x/vuln/cmd/govulncheck@v1.9.0
vuln:
	@db=$$(bash tools/vulndb.sh) && echo "vulnerability database: $$db" && \
	$(GO) run $(GOVULNCHECK) -db "file://$$db" ./...

# dist/wactl_<version>-1_amd64.deb (nfpm) and a tarball with the static
# binary for other distributions (tools/package.sh; docs/install.md).
package:
	bash tools/package.sh

clean:
	rm -rf bin dist
