# OpenVPC. `make demo` and `make test` are the two commands of the README;
# both install what they need (as root on Debian 12).
GO      ?= go
export PATH := $(PATH):/usr/local/go/bin
BIN     := bin/openvpc
PKGS    := ./...

.PHONY: all deps build demo test unit vet fuzz bench clean

all: build

deps:
	bash scripts/install-deps.sh

build:
	$(GO) build -o $(BIN) ./cmd/openvpc

demo: deps build
	./$(BIN) demo -f examples/demo.yaml

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet $(PKGS)

# Unit and lab (real OVS, netns) tests. Lab tests need root.
test: deps vet build
	$(GO) test -count=1 -timeout 40m $(PKGS)
	$(GO) test -run '^$$' -fuzz FuzzDecodeValidate -fuzztime 20s ./api

unit:
	$(GO) test -count=1 -short ./model/... ./pipelines/... ./ofrules

bench: deps build
	bash scripts/bench.sh

clean:
	rm -rf bin
