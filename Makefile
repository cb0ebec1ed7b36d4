# pcheck: a process monitor for Linux (drop-in for ProcessSaver's pcheck/padmin).
#   make run    start pcheck on the bundled demo (kill the demo server, watch it come back)
#   make test   every test, with the race detector
SHELL       := /bin/bash
export PATH := /usr/local/go/bin:$(HOME)/go/bin:$(PATH)
GO          ?= go
PREFIX      ?= /usr/local
DESTDIR     ?=
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -X main.version=$(VERSION)
BIN         := bin
FUZZTIME    ?= 30s
STATICCHECK := $(shell $(GO) env GOPATH)/bin/staticcheck

.PHONY: all build test run bench fuzz lint install clean

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

# Unit and end-to-end tests (the e2e tests build the binaries themselves).
test:
	$(GO) test -race -count=1 -timeout 15m ./...

run: build
	./testdata/demo/run.sh

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzLoad -fuzztime $(FUZZTIME) ./parser

$(STATICCHECK):
	$(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2

lint: $(STATICCHECK)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

install: build
	install -d $(DESTDIR)$(PREFIX)/sbin
	install -m 0755 $(BIN)/pcheck $(BIN)/padmin $(DESTDIR)$(PREFIX)/sbin/

clean:
	rm -rf $(BIN) .run
