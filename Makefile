# Warren's build. `make run` starts a broker with defaults; `make test` runs every test.
GO      ?= go
BIN     := bin
GOFLAGS ?=

.PHONY: all build run run-cluster stop-cluster test vet unit soak bench bench-backlog clean

all: build

build:
	$(GO) build $(GOFLAGS) -o $(BIN)/ ./cmd/...

run: build
	./$(BIN)/warren

# Three nodes of one cluster on loopback, in the background: AMQP on
# 5672/5673/5674, management on 15672/15673/15674, gossip on
# 25672/25682/25692 (inter-node traffic on the next port), data in
# ./data/node{1,2,3}, logs in ./data/node{1,2,3}.log. `make stop-cluster`
# stops them (SIGTERM). WARREN_PORT_OFFSET=N shifts every port by N.
run-cluster: build
	./scripts/local-cluster.sh start

stop-cluster:
	./scripts/local-cluster.sh stop

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1)
	$(GO) vet ./...

unit:
	$(GO) test -race -timeout 8m ./...

# Every test: vet, the Go tests (which include the pika, rabbitmq-c and
# amqp091-go suite compatibility tests when those tools are installed).
test: vet unit

# Issue 14's soak: ten minutes of publishers, consumers, memory and disk
# alarms coming and going and a kill -9 of the broker every minute, on a
# loop-mounted ext4 data dir (needs root); checks that every confirmed
# message was delivered and that RSS and open files come back, and prints
# the figures. Not part of `make test`.
soak:
	WARREN_SOAK=10m $(GO) test -run TestSoak -count=1 -timeout 30m -v ./cmd/warren/

# Warren against RabbitMQ (when rabbitmq-server is installed), side by side,
# and Warren's cluster scenario (three nodes on loopback; alone:
# bin/warren-perf matrix --no-rabbitmq --scenarios cluster); writes
# docs/BENCHMARKS.md. Not part of `make test`.
bench: build
	./$(BIN)/warren-perf matrix --warren $(BIN)/warren --out docs/BENCHMARKS.md

# Issue 4's backlog figures: 2,000,000 persistent 1 KiB messages into one
# queue, restart, drain, disk reclaimed; replaces the backlog section of
# docs/BENCHMARKS.md. Takes about ten minutes. Not part of `make test`.
bench-backlog: build
	./$(BIN)/warren-perf backlog --warren $(BIN)/warren --out docs/BENCHMARKS.md

clean:
	rm -rf $(BIN)
