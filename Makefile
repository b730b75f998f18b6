# espx build, test and benchmark entry points. `make test` is what CI runs.
GO       ?= go
PKGS     ?= ./...
# How long each fuzz target runs in `make test` and in `make fuzz`. The
# brief run counts executions instead of seconds: Go 1.26's fuzz coordinator
# can fail a time-bounded run with "context deadline exceeded" on a loaded
# machine (go.dev/issue/75804, fixed in Go 1.27).
FUZZTIME_TEST ?= 100000x
FUZZTIME      ?= 2m
BENCHTIME     ?= 1s
BENCHCOUNT    ?= 6
# Fuzz targets as package:FuzzName pairs. The slow ones (a few thousand
# executions a second: each runs IKE exchanges) get fewer in `make test`.
FUZZ_TARGETS = ./crypto:FuzzOpen ./crypto:FuzzSKOpen ./dataplane:FuzzDecap ./dataplane:FuzzReplay ./control:FuzzDecode ./control:FuzzReceive ./spd:FuzzLookup ./dataplane:FuzzWorker
FUZZ_SLOW_TARGETS = ./control:FuzzAuthenticated
FUZZTIME_SLOW_TEST ?= 10000x

.PHONY: all build test test-go lint deps demo fuzz fuzz-brief fuzz-run bench clean

all: build

build:
	$(GO) build $(PKGS)

# test installs what the tests need, lints, runs every test with the race
# detector, then runs each fuzz target briefly.
test: deps lint test-go fuzz-brief

deps:
	@./.ci/deps

# demo brings up an on-demand tunnel between two espx gateways in network
# namespaces, pings through it, shows SAs and counters, and cleans up.
demo: deps
	@./deploy/demo.sh

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)

# The allocation tests run again without -race, which defeats sync.Pool.
test-go:
	$(GO) test -race -count=1 -timeout 15m $(PKGS)
	$(GO) test -count=1 -run 'Allocs' $(PKGS)

fuzz-brief:
	@$(MAKE) --no-print-directory fuzz-run TARGETS="$(FUZZ_TARGETS)" FUZZTIME=$(FUZZTIME_TEST)
	@$(MAKE) --no-print-directory fuzz-run TARGETS="$(FUZZ_SLOW_TARGETS)" FUZZTIME=$(FUZZTIME_SLOW_TEST)

fuzz:
	@$(MAKE) --no-print-directory fuzz-run TARGETS="$(FUZZ_TARGETS) $(FUZZ_SLOW_TARGETS)"

fuzz-run:
	@set -e; for t in $(TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$pkg $$name for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -count $(BENCHCOUNT) ./crypto ./dataplane ./spd ./afxdp

clean:
	$(GO) clean -testcache
