# pcheck: a process monitor for Linux (drop-in for ProcessSaver's pcheck/padmin).
#   make run    start pcheck on the bundled demo (kill the demo server, watch it come back)
#   make test   every test, with the race detector
#   make chaos  the fault-injection suite (CHAOS_TIME, default 10m)
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

.PHONY: all build test run bench fuzz lint install uninstall clean

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

# Unit and end-to-end tests (the e2e tests build the binaries themselves).
test:
	$(GO) test -race -count=1 -timeout 15m ./...

# make run [DEMO_PORT=8080] [DEMO_DIR=.run]: the demo (testdata/demo/run.sh).
DEMO_DIR    ?= .run
DEMO_PORT   ?= 8080
DEMO_ENV     = DEMO_DIR='$(DEMO_DIR)' DEMO_PORT='$(DEMO_PORT)' BIN='$(BIN)'
run: build
	@$(DEMO_ENV) ./testdata/demo/run.sh

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# The fault-injection suite: the real pcheck over 22 targets under random,
# seeded faults for CHAOS_TIME (CHAOS_SEED repeats a run); non-zero on any
# invariant violation; rewrites docs/reliability.md. Run as root for the
# full-state-filesystem fault (a tmpfs it mounts).
CHAOS_TIME  ?= 10m
CHAOS_SEED  ?=
.PHONY: chaos
chaos:
	$(GO) build -o $(BIN)/chaos ./bench/chaos
	CHAOS_TIME=$(CHAOS_TIME) CHAOS_SEED=$(CHAOS_SEED) $(BIN)/chaos

# pcheck against monit and supervisord on the same targets (installs both
# from Debian when missing; about 25 minutes); rewrites docs/benchmarks.md.
.PHONY: bench-compare
bench-compare:
	./bench/compare/run.sh

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzLoad -fuzztime $(FUZZTIME) ./parser

$(STATICCHECK):
	$(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2

lint: $(STATICCHECK)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

# make install [DESTDIR=/tmp/stage] [PREFIX=/usr/local] [INITSCRIPT=yes]
#   $(PREFIX)/sbin                          pcheck, padmin, stripped
#   $(PREFIX)/share/doc/pcheck              README.md, docs/*.md (under docs/, as README links them)
#   $(PREFIX)/share/bash-completion/completions/padmin, $(PREFIX)/share/zsh/site-functions/_padmin
#   $(UNITDIR)                              pcheck@.service, ExecStart set to $(PREFIX)/sbin/pcheck
#                                           (default $(PREFIX)/lib/systemd/system: /usr/lib/... or /usr/local/lib/...)
#   $(PREFIX)/share/pcheck/rc               pcheck.init, runlist.sample, pcheck.default
#   /etc/default/pcheck                     the settings of the init script (pcheck.default, every
#                                           line commented out), unless the file is there already
#   $(PREFIX)/share/pcheck/templates        one directory per product
#   $(PREFIX)/share/pcheck/prometheus       pcheck-rules.yml, the alert rules (docs/metrics.md)
#   $(PREFIX)/share/man/man8, man5          pcheck.8, padmin.8, pfile.5, carrying $(VERSION)
#   /etc/pcheck                             created, empty
#   /usr/lib/ocf/resource.d/pcheck/pcheck   the OCF resource agent ocf:pcheck:pcheck
#                                           (Pacemaker's fixed OCF root, whatever PREFIX)
#   /etc/init.d/pcheck                      only with INITSCRIPT=yes: on a systemd host the
#                                           sysv generator would turn it into a second pcheck
#                                           service running the runlist beside pcheck@ units.
UNITDIR     ?= $(PREFIX)/lib/systemd/system
INITSCRIPT  ?= no
# The product's commands among those with sources under cmd/ (not demos).
COMMANDS    = $(sort $(filter pcheck padmin,$(notdir $(patsubst %/,%,$(dir $(wildcard cmd/*/*.go))))))
TEMPLATES   = $(notdir $(patsubst %/,%,$(dir $(wildcard templates/*/*.pfile))))
# rc files name /usr/sbin/pcheck and padmin; the installed copies name the installed binaries.
RCSED       = sed -e 's|/usr/sbin/pcheck|$(PREFIX)/sbin/pcheck|g' -e 's|/usr/sbin/padmin|$(PREFIX)/sbin/padmin|g'
# The man pages' .TH names the version installed.
MANSED      = sed -e '/^\.TH /s/"pcheck [^"]*"/"pcheck $(VERSION)"/'
DOCDIR      = $(PREFIX)/share/doc/pcheck
BASHCOMPDIR = $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR  = $(PREFIX)/share/zsh/site-functions
MANPAGES    = $(notdir $(wildcard docs/man/*.[58]))
DOCS        = $(notdir $(wildcard docs/*.md))

install: build
	install -d $(DESTDIR)$(PREFIX)/sbin
	install -m 0755 -s $(addprefix $(BIN)/,$(COMMANDS)) $(DESTDIR)$(PREFIX)/sbin/
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(PREFIX)/share/pcheck/rc
	$(RCSED) rc/pcheck@.service > $(DESTDIR)$(UNITDIR)/pcheck@.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/pcheck@.service
	$(RCSED) rc/pcheck.init > $(DESTDIR)$(PREFIX)/share/pcheck/rc/pcheck.init
	chmod 0755 $(DESTDIR)$(PREFIX)/share/pcheck/rc/pcheck.init
	install -m 0644 rc/runlist.sample $(DESTDIR)$(PREFIX)/share/pcheck/rc/
	$(RCSED) rc/pcheck.default > $(DESTDIR)$(PREFIX)/share/pcheck/rc/pcheck.default
	chmod 0644 $(DESTDIR)$(PREFIX)/share/pcheck/rc/pcheck.default
	install -d $(DESTDIR)/etc/default
	[ -e $(DESTDIR)/etc/default/pcheck ] || install -m 0644 $(DESTDIR)$(PREFIX)/share/pcheck/rc/pcheck.default $(DESTDIR)/etc/default/pcheck
	install -d $(DESTDIR)$(DOCDIR)/docs $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR)
	install -m 0644 README.md $(DESTDIR)$(DOCDIR)/
	install -m 0644 $(addprefix docs/,$(DOCS)) $(DESTDIR)$(DOCDIR)/docs/
	install -m 0644 rc/completion/padmin.bash $(DESTDIR)$(BASHCOMPDIR)/padmin
	install -m 0644 rc/completion/_padmin $(DESTDIR)$(ZSHCOMPDIR)/_padmin
	install -d $(DESTDIR)$(PREFIX)/share/pcheck/prometheus
	install -m 0644 rc/prometheus/pcheck-rules.yml $(DESTDIR)$(PREFIX)/share/pcheck/prometheus/
	set -e; for t in $(sort $(TEMPLATES)); do \
		install -d $(DESTDIR)$(PREFIX)/share/pcheck/templates/$$t; \
		install -m 0644 templates/$$t/*.pfile templates/$$t/README.md $(DESTDIR)$(PREFIX)/share/pcheck/templates/$$t/; \
		install -m 0755 templates/$$t/*.sh $(DESTDIR)$(PREFIX)/share/pcheck/templates/$$t/; \
	done
	install -d $(DESTDIR)$(PREFIX)/share/man/man8 $(DESTDIR)$(PREFIX)/share/man/man5
	set -e; for m in $(MANPAGES); do \
		$(MANSED) docs/man/$$m > $(DESTDIR)$(PREFIX)/share/man/man$${m##*.}/$$m; \
		chmod 0644 $(DESTDIR)$(PREFIX)/share/man/man$${m##*.}/$$m; \
	done
	install -d -m 0755 $(DESTDIR)/etc/pcheck
	install -d $(DESTDIR)/usr/lib/ocf/resource.d/pcheck
	$(RCSED) rc/ocf/pcheck > $(DESTDIR)/usr/lib/ocf/resource.d/pcheck/pcheck
	chmod 0755 $(DESTDIR)/usr/lib/ocf/resource.d/pcheck/pcheck
ifeq ($(INITSCRIPT),yes)
	install -d $(DESTDIR)/etc/init.d
	$(RCSED) rc/pcheck.init > $(DESTDIR)/etc/init.d/pcheck
	chmod 0755 $(DESTDIR)/etc/init.d/pcheck
endif

# make uninstall [DESTDIR=...] [PREFIX=...]: removes what make install put
# there, file by file, and then each of its directories that is left empty.
# /etc/default/pcheck goes only when it is still the sample, and /etc/pcheck
# only when empty: an operator's settings, pfiles and files of their own
# (under share/pcheck too) stay.
SHAREFILES  = rc/pcheck.init rc/runlist.sample rc/pcheck.default prometheus/pcheck-rules.yml \
	$(wildcard $(foreach t,$(TEMPLATES),templates/$(t)/*.pfile templates/$(t)/README.md templates/$(t)/*.sh))
SHAREDIRS   = $(addprefix templates/,$(TEMPLATES)) templates rc prometheus .
uninstall:
	rm -f $(addprefix $(DESTDIR)$(PREFIX)/sbin/,$(COMMANDS))
	rm -f $(DESTDIR)$(UNITDIR)/pcheck@.service
	rm -f $(foreach m,$(MANPAGES),$(DESTDIR)$(PREFIX)/share/man/man$(subst .,,$(suffix $(m)))/$(m))
	rm -f $(DESTDIR)$(BASHCOMPDIR)/padmin $(DESTDIR)$(ZSHCOMPDIR)/_padmin
	rm -f $(DESTDIR)/usr/lib/ocf/resource.d/pcheck/pcheck
	-rmdir $(DESTDIR)/usr/lib/ocf/resource.d/pcheck 2>/dev/null
	if [ -f $(DESTDIR)/etc/default/pcheck ] && $(RCSED) rc/pcheck.default | cmp -s - $(DESTDIR)/etc/default/pcheck; then \
		rm -f $(DESTDIR)/etc/default/pcheck; \
	fi
	if [ -f $(DESTDIR)/etc/init.d/pcheck ] && $(RCSED) rc/pcheck.init | cmp -s - $(DESTDIR)/etc/init.d/pcheck; then \
		rm -f $(DESTDIR)/etc/init.d/pcheck; \
	fi
	rm -f $(addprefix $(DESTDIR)$(PREFIX)/share/pcheck/,$(SHAREFILES))
	rm -f $(DESTDIR)$(DOCDIR)/README.md $(addprefix $(DESTDIR)$(DOCDIR)/docs/,$(DOCS))
	for d in $(addprefix $(DESTDIR)$(PREFIX)/share/pcheck/,$(SHAREDIRS)) $(DESTDIR)$(DOCDIR)/docs $(DESTDIR)$(DOCDIR) $(DESTDIR)/etc/pcheck; do \
		[ ! -d "$$d" ] || rmdir "$$d" 2>/dev/null || echo "make uninstall: $$d is not empty; left it"; \
	done

# clean also stops the demo server make run started. It removes the files
# make build and make run made, by name, and their directories when empty:
# never a whole directory, as BIN and DEMO_DIR may be ones the operator chose.
BUILT       = $(sort $(notdir $(patsubst %/,%,$(dir $(wildcard cmd/*/*.go)))))
clean:
	@$(DEMO_ENV) ./testdata/demo/run.sh clean
	rm -f $(addprefix $(BIN)/,$(BUILT))
	@if [ -d $(BIN) ] && ! rmdir $(BIN) 2>/dev/null; then \
		echo "make clean: $(BIN) holds files make build did not make; left them there"; \
	fi
