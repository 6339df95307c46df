package broker_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/store"
)

// gatedStore holds back the commit callbacks of messages until release is
// closed, as if their fsync had not finished.
type gatedStore struct {
	*store.Memory
	release chan struct{}
}

func (g gatedStore) AddMessage(id uint64, data []byte, size int, queues []string, done func(error)) {
	g.Memory.AddMessage(id, data, size, queues, func(err error) {
		go func() {
			<-g.release
			done(err)
		}()
	})
}

func TestPersistentConfirmWaitsForTheCommit(t *testing.T) {
	st := gatedStore{Memory: store.NewMemory(), release: make(chan struct{})}
	cfg := broker.DefaultConfig()
	srv, err := broker.New(cfg, st)
	must(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
		<-served
	})

	ch := openChannel(t, dial(t, fmt.Sprintf("amqp://guest:guest@%s/", ln.Addr())))
	_, err = ch.QueueDeclare("durable", true, false, false, false, nil)
	must(t, err)
	must(t, ch.Confirm(false))
	confirms := ch.NotifyPublish(make(chan rmq.Confirmation, 1))
	publish(t, ch, "", "durable", rmq.Publishing{DeliveryMode: 2, Body: []byte("p")})
	// Absence cannot be waited for as an event: give a confirm that does
	// not wait for the commit ample time to arrive.
	select {
	case c := <-confirms:
		t.Fatalf("confirm %+v arrived before the commit", c)
	case <-time.After(200 * time.Millisecond):
	}
	close(st.release)
	select {
	case c := <-confirms:
		if !c.Ack || c.DeliveryTag != 1 {
			t.Fatalf("confirm = %+v", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no confirm after the commit")
	}
}
