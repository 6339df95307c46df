package broker_test

import (
	"context"
	"net"
	"runtime"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/broker/brokertest"
)

// blockedPublisher connects to b, publishes until the memory alarm (which
// the caller raised) blocks the connection, and returns the client and
// its socket.
func blockedPublisher(t *testing.T, b *brokertest.Broker) (*rmq.Connection, net.Conn) {
	t.Helper()
	var nc net.Conn
	c, err := rmq.DialConfig(b.URL, rmq.Config{Dial: func(network, addr string) (net.Conn, error) {
		conn, err := net.DialTimeout(network, addr, 5*time.Second)
		nc = conn
		return conn, err
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	blocked := c.NotifyBlocked(make(chan rmq.Blocking, 4))
	ch := openChannel(t, c)
	q := declareQueue(t, ch, nil)
	publish(t, ch, "", q, text("the publish that blocks"))
	select {
	case bl := <-blocked:
		if !bl.Active {
			t.Fatalf("blocking = %+v", bl)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no connection.blocked")
	}
	// More publishes wait unread in the broker's socket buffer.
	for i := 0; i < 100; i++ {
		publish(t, ch, "", q, text("unread"))
	}
	return c, nc
}

// TestShutdownDuringMemoryAlarmCompletes: with publishers blocked by the
// memory alarm, closing the server wakes their readers, closes them with
// 320 CONNECTION_FORCED, finishes within a bound and releases the data
// dir (a new broker opens it).
func TestShutdownDuringMemoryAlarmCompletes(t *testing.T) {
	b := brokertest.Start(t, brokertest.WithConfig(func(c *broker.Config) { c.AlarmInterval = 0 }))
	b.Server.SetMemoryLimit(1)
	var clients []*rmq.Connection
	for i := 0; i < 3; i++ {
		c, _ := blockedPublisher(t, b)
		clients = append(clients, c)
	}
	closed := clients[0].NotifyClose(make(chan *rmq.Error, 1))
	stopped := make(chan struct{})
	start := time.Now()
	go func() {
		b.Stop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(15 * time.Second):
		t.Fatal("the broker did not stop within 15 s with publishers blocked by the memory alarm")
	}
	t.Logf("stopped in %v", time.Since(start).Round(time.Millisecond))
	select {
	case err := <-closed:
		if err == nil || err.Code != 320 {
			t.Errorf("the blocked client was closed with %v, want 320", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("the blocked client was not told the connection closed")
	}
	b.Restart() // fails if the store's lock is still held
}

// TestDisconnectOfBlockedClientFreesItsConnection: a blocked publisher
// whose socket goes away (with publishes still unread in the broker's
// buffer) is torn down within a bound, its goroutines with it.
func TestDisconnectOfBlockedClientFreesItsConnection(t *testing.T) {
	b := brokertest.Start(t, brokertest.WithConfig(func(c *broker.Config) { c.AlarmInterval = 0 }))
	b.Server.SetMemoryLimit(1)
	before := runtime.NumGoroutine()
	var socks []net.Conn
	for i := 0; i < 4; i++ {
		_, nc := blockedPublisher(t, b)
		socks = append(socks, nc)
	}
	if n := b.Server.ConnectionCount(); n != 4 {
		t.Fatalf("connections = %d, want 4", n)
	}
	for _, nc := range socks {
		nc.Close() // no connection.close: the broker does not read while blocked
	}
	deadline := time.Now().Add(10 * time.Second)
	for b.Server.ConnectionCount() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d blocked connections still held 10 s after their clients went", b.Server.ConnectionCount())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Each client had a reader and a writer on the broker and goroutines
	// of its own; they all go.
	deadline = time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+2 {
		if time.Now().After(deadline) {
			t.Fatalf("goroutines: %d before the clients, %d after they went", before, runtime.NumGoroutine())
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.Server.SetMemoryLimit(0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := dial(t, b.URL)
	ch := openChannel(t, c)
	q := declareQueue(t, ch, nil)
	must(t, ch.PublishWithContext(ctx, "", q, false, false, text("after")))
	roundTrip(t, ch)
}
