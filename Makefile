# mcptap's checks. .ci/run calls `make ci`; each target also runs on its own.
# Tool versions are pinned here and nowhere else.

STATICCHECK_VERSION := v0.8.2
GO ?= go

.PHONY: ci fmt-check vet staticcheck test test-short bench build fuzz

ci: fmt-check vet staticcheck test

build:
	$(GO) build -o mcptap ./cmd/mcptap

# gofmt over the tracked Go files; fails listing the files it would change.
fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

staticcheck:
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

# The README's test command: every test, with the race detector.
test:
	$(GO) test -race -count=1 ./...

# The pure, fast packages only (no browser, lab or proxy binary): for quick edits.
test-short:
	$(GO) test -count=1 -short . ./oauth/... ./har ./redact ./report ./tui ./internal/...

# Benchmarks print ratios measured within one run; no pass/fail thresholds.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x ./...

# Every fuzz target for FUZZTIME each, with a short minimisation so the time
# goes to exploring (the default minimisation can eat a whole short run).
# `go test` (and so `make test`) already runs each target's seed corpus and
# the failures kept in testdata/fuzz.
FUZZTIME ?= 20s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 1s $$pkg || exit 1; \
	  done; \
	done
