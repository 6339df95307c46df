// Package brokertest starts Warren brokers for tests: in-process, on a
// random loopback port, with a temporary data directory.
package brokertest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/store"
)

// Broker is a running test broker.
type Broker struct {
	// URL is the AMQP URL with guest credentials, e.g. amqp://guest:guest@127.0.0.1:40000/.
	URL string
	// Addr is the listener's host:port.
	Addr string
	// Server is the broker itself.
	Server *broker.Server
	// DataDir is the store's directory.
	DataDir string

	cfg       broker.Config
	wrapStore func(broker.Store) broker.Store
	tb        testing.TB
	served    chan error
}

// Option changes the test broker's configuration or store.
type Option func(*Broker)

// WithConfig applies fn to the configuration before start.
func WithConfig(fn func(*broker.Config)) Option { return func(b *Broker) { fn(&b.cfg) } }

// WithStore wraps the broker's store (on every start) with wrap, e.g. to
// delay or fail its writes.
func WithStore(wrap func(broker.Store) broker.Store) Option {
	return func(b *Broker) { b.wrapStore = wrap }
}

// Start starts a broker on 127.0.0.1:0 with a Badger store in a temporary
// directory; it is closed when the test ends.
func Start(tb testing.TB, opts ...Option) *Broker {
	tb.Helper()
	cfg := broker.DefaultConfig()
	cfg.AMQPListen = "127.0.0.1:0"
	cfg.DataDir = tb.TempDir()
	if os.Getenv("WARREN_TEST_LOG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	b := &Broker{cfg: cfg, tb: tb}
	for _, o := range opts {
		o(b)
	}
	b.DataDir = b.cfg.DataDir
	b.start()
	tb.Cleanup(func() { b.Stop() })
	return b
}

func (b *Broker) start() {
	b.tb.Helper()
	sopts := store.DefaultOptions()
	sopts.Logger = b.cfg.Logger
	st, err := store.Open(b.cfg.DataDir, sopts)
	if err != nil {
		b.tb.Fatalf("open store: %v", err)
	}
	var bst broker.Store = st
	if b.wrapStore != nil {
		bst = b.wrapStore(st)
	}
	srv, err := broker.New(b.cfg, bst)
	if err != nil {
		st.Close()
		b.tb.Fatalf("start broker: %v", err)
	}
	ln, err := net.Listen("tcp", b.cfg.AMQPListen)
	if err != nil {
		b.tb.Fatalf("listen: %v", err)
	}
	b.Server = srv
	b.Addr = ln.Addr().String()
	b.cfg.AMQPListen = b.Addr // a restart reuses the port
	b.URL = fmt.Sprintf("amqp://guest:guest@%s/", b.Addr)
	b.served = make(chan error, 1)
	go func() { b.served <- srv.Serve(ln) }()
}

// Stop closes the broker (idempotent).
func (b *Broker) Stop() {
	if b.Server == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Server.Close(ctx); err != nil {
		b.tb.Errorf("close broker: %v", err)
	}
	if err := <-b.served; err != nil {
		b.tb.Errorf("serve: %v", err)
	}
	b.Server = nil
}

// Restart stops the broker and starts it again on the same port and data directory.
func (b *Broker) Restart() {
	b.tb.Helper()
	b.Stop()
	b.start()
}
