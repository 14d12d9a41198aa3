# nodebake. `make image` builds the default image into out/; `make test`
# runs every test. Both install what they need first (ci/deps.sh).
SHELL := /bin/sh
GO ?= go
export GOTOOLCHAIN := local
export GOFLAGS := -mod=mod

PROFILE ?= profiles/default.yaml
BIN := bin

.PHONY: all deps build image test test-long fuzz unit e2e bench vet clean capi-fixtures
all: build

deps:
	@./ci/deps.sh

build:
	$(GO) build -trimpath -o $(BIN)/imagebuild ./cmd/imagebuild

image: deps build
	$(BIN)/imagebuild build -p $(PROFILE)

# Every test: the unit tests, then the end-to-end tests that build the
# test images and boot them under QEMU, the cluster among them (README:
# the figures; on 2026-12-03 a fresh 2-core host reached its first VM 31
# minutes into a cold run). The timeout is a backstop under CI's 90
# minutes. The race detector watches every test, the unit tests and the
# end-to-end harness's goroutines (the programs they start are built
# without it). Each fuzz target then runs a fixed number of executions
# (about a minute in all; ci/fuzz.sh says why a count and not a duration).
test: deps vet
	$(GO) test -race -count=1 -timeout 85m ./...
	./ci/fuzz.sh 1

# The fuzz targets, longer: make fuzz FUZZSCALE=100 (each target 100
# times make test's executions).
FUZZSCALE ?= 40
fuzz:
	./ci/fuzz.sh $(FUZZSCALE)

# The end-to-end tests that do not fit make test's budget (README: Tests
# and benchmarks): a control plane under TCG with kubeadm's default
# timeouts, whose init the agent finishes if they run out (about 16
# minutes), power cuts at five points of two first boots (about 30), and
# both control-plane joins, Cluster API's and firstboot render's
# --certificate-key one, each as the second control plane of a cluster of
# its own; the cluster with two workers from one Cluster API join; and
# the trixie image, booted twice.
test-long: deps vet
	NODEBAKE_LONG=1 $(GO) test -count=1 -timeout 120m -v -run '^TestLong' ./internal/e2e/

unit: vet
	$(GO) test -count=1 -short ./...

vet:
	$(GO) vet ./...

# Benchmarks print their figures; they assert nothing about speed. The
# kit benchmark builds the whole kit, programs and images, from empty caches
# (about 25 minutes); the boot benchmark boots a plain image, then a control
# plane and a worker to Ready (about 15 minutes under TCG). One package at a
# time (-p 1): the kit's build would take the CPU from the VMs.
bench: deps
	$(GO) test -p 1 -count=1 -run '^$$' -bench . -benchtime 1x -timeout 120m ./internal/e2e/ ./internal/kit/

# The Cluster API user data the tests read, from Cluster API's own
# generator (ci/capigen, its own module): a control-plane init, a worker
# join and a control-plane join of one test cluster, for the default
# profile's Kubernetes version. Made anew, with new keys, on each run.
CAPI_FIXTURES := internal/capi/testdata
capi-fixtures:
	cd ci/capigen && $(GO) run . -out $(CURDIR)/$(CAPI_FIXTURES) \
		-kubernetes-version $$(sed -n 's/^ *kubernetesVersion: *//p' $(CURDIR)/profiles/default.yaml)

clean:
	rm -rf $(BIN) out
