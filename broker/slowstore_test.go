package broker_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/broker/brokertest"
)

// stallingStore is a store whose metadata commits stall: while stalled,
// each write of the metadata log waits until released (a disk whose fsync
// takes as long as the test wants). Message operations are untouched.
type stallingStore struct {
	broker.Store
	stalled atomic.Bool
	entered chan struct{} // a metadata write started to wait
	release chan struct{} // closed to let waiting writes through
}

func (s *stallingStore) wait() {
	if !s.stalled.Load() {
		return
	}
	select {
	case s.entered <- struct{}{}:
	default:
	}
	<-s.release
}

func (s *stallingStore) PutMeta(kind, key string, value []byte) error {
	s.wait()
	return s.Store.PutMeta(kind, key, value)
}

func (s *stallingStore) DeleteMetaKeys(kind string, keys []string) error {
	s.wait()
	return s.Store.DeleteMetaKeys(kind, keys)
}

// TestSlowMetadataCommitBlocksNoOtherClient stalls the store's metadata
// commits while a durable queue is declared, and shows that everything
// that is not a metadata change goes on meanwhile: publishing to and
// consuming from other queues, basic.get, new connections, passive
// declares and exclusive queues (which are not metadata). The declare
// completes once the commit does. (Other metadata changes, shared queue
// declares included, wait their turn in the log.)
func TestSlowMetadataCommitBlocksNoOtherClient(t *testing.T) {
	slow := &stallingStore{entered: make(chan struct{}, 1), release: make(chan struct{})}
	b := brokertest.Start(t, brokertest.WithStore(func(st broker.Store) broker.Store {
		slow.Store = st
		return slow
	}))
	conn := dial(t, b.URL)
	ch := openChannel(t, conn)
	other := declareQueue(t, ch, nil)
	getQ := declareQueue(t, ch, nil)
	_, err := ch.QueueDeclare("durable.before", true, false, false, false, nil)
	must(t, err)
	deliveries, err := openChannel(t, conn).Consume(other, "", true, false, false, false, nil)
	must(t, err)

	slow.stalled.Store(true)
	declared := make(chan error, 1)
	go func() {
		c := dial(t, b.URL)
		_, err := openChannel(t, c).QueueDeclare("durable.slow", true, false, false, false, nil)
		declared <- err
	}()
	select {
	case <-slow.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the durable declare never reached the store")
	}
	start := time.Now()

	// Publish and consume on another queue.
	const n = 2000
	for i := range n {
		publish(t, ch, "", other, rmq.Publishing{Body: []byte(fmt.Sprint(i))})
	}
	for i := range n {
		select {
		case d := <-deliveries:
			if string(d.Body) != fmt.Sprint(i) {
				t.Fatalf("delivery %d has body %q", i, d.Body)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("delivery %d of %d did not come while the declare waited", i, n)
		}
	}
	// basic.get on another queue.
	publish(t, ch, "", getQ, rmq.Publishing{Body: []byte("got")})
	if body, ok := getBody(t, ch, getQ); !ok || body != "got" {
		t.Fatalf("basic.get gave %q, %v", body, ok)
	}
	// A new connection, a passive declare and an exclusive queue.
	c2 := dial(t, b.URL)
	ch2 := openChannel(t, c2)
	if _, err := ch2.QueueDeclarePassive("durable.before", true, false, false, false, nil); err != nil {
		t.Fatalf("passive declare while a declare waits: %v", err)
	}
	excl, err := ch2.QueueDeclare("", false, true, true, false, nil)
	must(t, err)
	must(t, ch2.QueueBind(excl.Name, "k", "amq.direct", false, nil))
	must(t, ch2.PublishWithContext(context.Background(), "amq.direct", "k", false, false, rmq.Publishing{Body: []byte("x")}))
	if body, ok := getBody(t, ch2, excl.Name); !ok || body != "x" {
		t.Fatalf("exclusive queue gave %q, %v", body, ok)
	}
	elapsed := time.Since(start)

	select {
	case err := <-declared:
		t.Fatalf("the durable declare returned (%v) before its commit", err)
	default:
	}
	t.Logf("while one durable declare waited on the store: %d messages published and consumed, a get, a new connection, a passive declare and an exclusive queue in %v", n, elapsed)
	close(slow.release)
	select {
	case err := <-declared:
		must(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the durable declare did not complete after its commit")
	}
	slow.stalled.Store(false)
	if _, err := ch2.QueueDeclarePassive("durable.slow", true, false, false, false, nil); err != nil {
		t.Fatalf("the declared queue is missing: %v", err)
	}
}
