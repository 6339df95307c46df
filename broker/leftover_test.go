package broker_test

import (
	"errors"
	"sync/atomic"
	"testing"

	rmq "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/broker/brokertest"
)

// failingDeleteStore loses removals of messages and fails DeleteQueue
// while fail is set, as a full or failing disk would (a commit that
// fails loses the removals in it).
type failingDeleteStore struct {
	broker.Store
	fail *atomic.Bool
}

func (s failingDeleteStore) DeleteQueue(queue string) error {
	if s.fail.Load() {
		return errors.New("injected: the disk refused the delete")
	}
	return s.Store.DeleteQueue(queue)
}

func (s failingDeleteStore) RemoveMessage(queue string, id uint64) {
	if !s.fail.Load() {
		s.Store.RemoveMessage(queue, id)
	}
}

func (s failingDeleteStore) RemoveMessages(queue string, ids []uint64) {
	if !s.fail.Load() {
		s.Store.RemoveMessages(queue, ids)
	}
}

// TestRedeclaredQueueNeverSeesTheMessagesOfItsNamesake: when removing a
// deleted queue's messages from the store fails, a queue declared again
// under its name starts empty, and stays empty across a restart: the old
// messages are never restored into it.
func TestRedeclaredQueueNeverSeesTheMessagesOfItsNamesake(t *testing.T) {
	var fail atomic.Bool
	b := brokertest.Start(t, brokertest.WithStore(func(st broker.Store) broker.Store {
		return failingDeleteStore{Store: st, fail: &fail}
	}))
	ch := openChannel(t, dial(t, b.URL))
	must(t, ch.Confirm(false))
	_, err := ch.QueueDeclare("reborn", true, false, false, false, nil)
	must(t, err)
	confirms := ch.NotifyPublish(make(chan rmq.Confirmation, 10))
	for i := 0; i < 10; i++ {
		publish(t, ch, "", "reborn", rmq.Publishing{DeliveryMode: rmq.Persistent, Body: []byte("old")})
		if c := <-confirms; !c.Ack {
			t.Fatal("nacked")
		}
	}
	fail.Store(true)
	_, err = ch.QueueDelete("reborn", false, false, false)
	must(t, err)
	fail.Store(false)
	q, err := ch.QueueDeclare("reborn", true, false, false, false, nil)
	must(t, err)
	if q.Messages != 0 {
		t.Fatalf("the new queue has %d messages", q.Messages)
	}
	publish(t, ch, "", "reborn", rmq.Publishing{DeliveryMode: rmq.Persistent, Body: []byte("new")})
	if c := <-confirms; !c.Ack {
		t.Fatal("nacked")
	}
	b.Restart()
	ch = openChannel(t, dial(t, b.URL))
	if got := drainBodies(t, ch, "reborn"); len(got) != 1 || got[0] != "new" {
		t.Fatalf("after the restart the queue holds %q, want only the new message", got)
	}
}
