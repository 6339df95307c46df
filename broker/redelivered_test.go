package broker_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/broker/brokertest"
)

// heldMarkStore holds MarkDelivered writes, and every Sync submitted after
// one, while held is set, as a slow disk would; Crash drops what it holds,
// as a kill -9 would drop an unfinished commit.
type heldMarkStore struct {
	broker.Store
	mu    sync.Mutex
	held  bool
	marks int
	syncs []func(error)
}

func (s *heldMarkStore) MarkDelivered(queue string, id uint64, size int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held {
		s.marks++
		return true
	}
	return s.Store.MarkDelivered(queue, id, size)
}

func (s *heldMarkStore) Sync(done func(error)) {
	s.mu.Lock()
	if s.held && s.marks > 0 {
		s.syncs = append(s.syncs, done)
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	s.Store.Sync(done)
}

// crash drops the held marks and fails the syncs waiting for them.
func (s *heldMarkStore) crash() {
	s.mu.Lock()
	syncs := s.syncs
	s.syncs, s.marks, s.held = nil, 0, false
	s.mu.Unlock()
	for _, done := range syncs {
		done(errors.New("injected: the broker died before this commit"))
	}
}

// TestDeliveredBeforeACrashComesBackRedelivered: a delivery reaches the
// client only once the store has its delivered mark, so a message a
// client saw before a crash is flagged redelivered after it, whatever
// moment the crash picked. The store here holds the marks back as a
// slow disk would; the crash drops them.
func TestDeliveredBeforeACrashComesBackRedelivered(t *testing.T) {
	var st *heldMarkStore
	b := brokertest.Start(t, brokertest.WithStore(func(s broker.Store) broker.Store {
		st = &heldMarkStore{Store: s}
		return st
	}))
	ch := openChannel(t, dial(t, b.URL))
	_, err := ch.QueueDeclare("marked", true, false, false, false, nil)
	must(t, err)
	must(t, ch.Confirm(false))
	confirms := ch.NotifyPublish(make(chan rmq.Confirmation, 4))
	for _, body := range []string{"consumed", "got"} {
		publish(t, ch, "", "marked", rmq.Publishing{DeliveryMode: rmq.Persistent, Body: []byte(body)})
		if c := <-confirms; !c.Ack {
			t.Fatal("nacked")
		}
	}

	st.mu.Lock()
	st.held = true
	st.mu.Unlock()
	cch := openChannel(t, dial(t, b.URL))
	must(t, cch.Qos(1, 0, false))
	ds, err := cch.Consume("marked", "", false, false, false, false, nil)
	must(t, err)
	seen := map[string]bool{}
	select {
	case d := <-ds:
		seen[string(d.Body)] = true
	case <-time.After(500 * time.Millisecond):
	}
	got := make(chan string, 1)
	go func() { // basic.get of the other message, on another connection
		gch := openChannel(t, dial(t, b.URL))
		d, ok, err := gch.Get("marked", false)
		if err == nil && ok {
			got <- string(d.Body)
		}
	}()
	select {
	case body := <-got:
		seen[body] = true
	case <-time.After(500 * time.Millisecond):
	}
	t.Logf("seen by clients before the crash: %v", seen)
	st.crash()
	b.Restart()

	ch = openChannel(t, dial(t, b.URL))
	for {
		d, ok, err := ch.Get("marked", true)
		must(t, err)
		if !ok {
			break
		}
		if seen[string(d.Body)] && !d.Redelivered {
			t.Errorf("%q reached a client before the crash but came back with redelivered=false", d.Body)
		}
	}
}
