package broker_test

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/broker/brokertest"
	"github.com/warrenmq/warren/store"
)

// failingListener fails its first accepts with an error, then accepts.
type failingListener struct {
	net.Listener
	fails atomic.Int32
	err   error
}

func (l *failingListener) Accept() (net.Conn, error) {
	if l.fails.Add(-1) >= 0 {
		return nil, l.err
	}
	return l.Listener.Accept()
}

// syncBuffer is a log destination safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestAcceptKeepsGoingAfterRunningOutOfDescriptors: accept failing with
// EMFILE and ENFILE (a flood of connections under a low fd limit) does
// not stop the listener; it backs off, logs the burst once, and accepts
// again when descriptors are free.  (cmd/warren's
// TestFloodOfConnectionsUnderALowFDLimit runs out of descriptors for real.)
func TestAcceptKeepsGoingAfterRunningOutOfDescriptors(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE} {
		t.Run(errno.Error(), func(t *testing.T) {
			var logs syncBuffer
			cfg := broker.DefaultConfig()
			cfg.DataDir = t.TempDir()
			cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			st, err := store.Open(cfg.DataDir, store.DefaultOptions())
			must(t, err)
			srv, err := broker.New(cfg, st)
			must(t, err)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			must(t, err)
			fl := &failingListener{Listener: ln, err: &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}}
			fl.fails.Store(6)
			served := make(chan error, 1)
			go func() { served <- srv.Serve(fl) }()
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				must(t, srv.Close(ctx))
				if err := <-served; err != nil {
					t.Errorf("the listener stopped: %v", err)
				}
			}()

			c, err := rmq.DialConfig("amqp://guest:guest@"+ln.Addr().String()+"/", rmq.Config{Dial: rmq.DefaultDial(5 * time.Second)})
			if err != nil {
				t.Fatalf("dial after the failed accepts: %v", err)
			}
			c.Close()
			out := logs.String()
			if n := strings.Count(out, "accepting connections failed"); n != 1 {
				t.Errorf("the burst was logged %d times, want once:\n%s", n, out)
			}
		})
	}
}

// TestMaxConnectionsRefusesCleanly: past Config.MaxConnections a new
// connection is closed at once (the client fails fast instead of waiting
// in the backlog), and once a connection goes a new one is accepted.
func TestMaxConnectionsRefusesCleanly(t *testing.T) {
	b := brokertest.Start(t, brokertest.WithConfig(func(c *broker.Config) { c.MaxConnections = 2 }))
	c1 := dial(t, b.URL)
	dial(t, b.URL)
	start := time.Now()
	cfg := rmq.Config{Dial: rmq.DefaultDial(5 * time.Second)}
	if c, err := rmq.DialConfig(b.URL, cfg); err == nil {
		c.Close()
		t.Fatal("a third connection was accepted past a limit of 2")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("the refusal took %v; it should be at once", d)
	}
	if n := b.Server.RefusedConnections(); n != 1 {
		t.Fatalf("refused connections = %d, want 1", n)
	}
	must(t, c1.Close())
	deadline := time.Now().Add(5 * time.Second)
	for b.Server.ConnectionCount() >= 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the closed connection is still counted: %d", b.Server.ConnectionCount())
		}
		time.Sleep(5 * time.Millisecond)
	}
	dial(t, b.URL)
}
