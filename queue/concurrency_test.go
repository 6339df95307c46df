package queue

import (
	"fmt"
	"sync"
	"testing"
)

// ackingConsumer hands its deliveries to a goroutine that acks them and
// kicks it again, as a channel does.
type ackingConsumer struct {
	mu      sync.Mutex
	credit  int
	blocked bool
	out     chan *Entry
}

func (c *ackingConsumer) Deliver(e *Entry, _ bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.credit == 0 {
		c.blocked = true
		return false
	}
	c.credit--
	c.out <- e // buffered to the credit: never blocks
	return true
}

// settle returns one credit and reports whether the queue must be kicked.
func (c *ackingConsumer) settle() (kick bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.credit++
	kick, c.blocked = c.blocked, false
	return kick
}

func TestConcurrentPublishersAndAckingConsumers(t *testing.T) {
	const (
		publishers = 4
		perPub     = 2000
		consumers  = 3
		prefetch   = 10
	)
	var mu sync.Mutex
	removed := map[string]int{}
	q := New(DefaultConfig("q"), Hooks{Removed: func(_ *Queue, msgs []*Message) {
		mu.Lock()
		for _, m := range msgs {
			removed[string(m.Body)]++
		}
		mu.Unlock()
	}})
	defer q.Delete()

	var acked sync.WaitGroup
	acked.Add(publishers * perPub)
	var workers sync.WaitGroup
	done := make(chan struct{})
	for i := 0; i < consumers; i++ {
		c := &ackingConsumer{credit: prefetch, out: make(chan *Entry, prefetch)}
		if err := q.AddConsumer(c, ConsumerOptions{Priority: i % 2}); err != nil {
			t.Fatal(err)
		}
		workers.Add(1)
		go func() {
			defer workers.Done()
			for {
				select {
				case e := <-c.out:
					if i%2 == 0 && e.DeliveryCount() == 1 && len(e.Message().Body)%3 == 0 {
						q.Requeue([]*Entry{e}) // some go around again
					} else {
						q.Ack([]*Entry{e})
						acked.Done()
					}
					if c.settle() {
						q.Kick(c)
					}
				case <-done:
					return
				}
			}
		}()
	}
	var pubs sync.WaitGroup
	for p := 0; p < publishers; p++ {
		pubs.Add(1)
		go func() {
			defer pubs.Done()
			for i := 0; i < perPub; i++ {
				q.Publish(msg(fmt.Sprintf("p%d-%d", p, i)))
				if i%100 == 0 {
					q.Counts()
					q.ReadyBytes()
				}
			}
		}()
	}
	pubs.Wait()
	acked.Wait()
	close(done)
	workers.Wait()

	if ready, unacked, _ := q.Counts(); ready != 0 || unacked != 0 {
		t.Fatalf("Counts = %d ready %d unacked, want 0 0", ready, unacked)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(removed) != publishers*perPub {
		t.Fatalf("%d distinct messages removed, want %d", len(removed), publishers*perPub)
	}
	for body, n := range removed {
		if n != 1 {
			t.Fatalf("message %s removed %d times", body, n)
		}
	}
}
