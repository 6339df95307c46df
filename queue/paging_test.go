package queue

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/warrenmq/warren/amqp"
)

// memPager keeps paged-out messages in a map, as the broker's store would.
type memPager struct {
	mu        sync.Mutex
	next      uint64
	msgs      map[uint64]*Message
	delivered map[uint64]bool // tokens to read back as redelivered
	missing   map[uint64]bool // tokens PageIn cannot read
	outs, ins int
	discarded int
}

func newMemPager() *memPager {
	return &memPager{msgs: map[uint64]*Message{}, delivered: map[uint64]bool{}, missing: map[uint64]bool{}}
}

func (p *memPager) PageOut(m *Message, _ bool) (uint64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.next++
	p.msgs[p.next] = m
	p.outs++
	return p.next, true
}

func (p *memPager) PageIn(tokens []uint64, fn func(int, *Message, bool)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, t := range tokens {
		m, ok := p.msgs[t]
		if !ok || p.missing[t] {
			continue
		}
		delete(p.msgs, t)
		p.ins++
		fn(i, m, p.delivered[t])
	}
}

func (p *memPager) Discard(tokens []uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, t := range tokens {
		delete(p.msgs, t)
		p.discarded++
	}
}

func (p *memPager) held() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.msgs)
}

func newPagedQueue(t *testing.T, cfg Config, r *recorder, maxMessages int, maxBytes int64) (*Queue, *memPager) {
	t.Helper()
	q := newTestQueue(t, cfg, r)
	p := newMemPager()
	q.EnablePaging(Paging{Pager: p, MaxMessages: maxMessages, MaxBytes: maxBytes})
	return q, p
}

func TestPagingKeepsMemoryBoundedAndOrder(t *testing.T) {
	q, p := newPagedQueue(t, DefaultConfig("q"), nil, 100, 0)
	bodies := seqBodies("m", 5000)
	publishN(t, q, bodies...)
	if got := q.PagedOut(); got != 4900 {
		t.Fatalf("paged out = %d, want 4900", got)
	}
	if ready, _, _ := q.Counts(); ready != 5000 {
		t.Fatalf("ready = %d, want 5000", ready)
	}
	want := int64(0)
	for _, b := range bodies {
		want += int64(len(b))
	}
	if got := q.ReadyBytes(); got != want {
		t.Fatalf("ready bytes = %d, want %d", got, want)
	}
	wantBodies(t, "drained", getBodies(t, q), bodies)
	if q.PagedOut() != 0 || p.held() != 0 || q.ReadyBytes() != 0 {
		t.Fatalf("after drain: paged %d, pager holds %d, bytes %d", q.PagedOut(), p.held(), q.ReadyBytes())
	}
	if p.outs != 4900 || p.ins != 4900 {
		t.Fatalf("pager saw %d out, %d in; want 4900 each", p.outs, p.ins)
	}
}

func TestPagingByBytes(t *testing.T) {
	q, _ := newPagedQueue(t, DefaultConfig("q"), nil, 0, 1000)
	body := string(make([]byte, 100))
	for i := 0; i < 50; i++ {
		publishN(t, q, body)
	}
	if got := q.PagedOut(); got != 40 {
		t.Fatalf("paged out = %d, want 40 (10 x 100 B fit in 1000 B)", got)
	}
}

func TestPagingDeliversToConsumersInOrder(t *testing.T) {
	q, _ := newPagedQueue(t, DefaultConfig("q"), nil, 10, 0)
	bodies := seqBodies("m", 1000)
	publishN(t, q, bodies...)
	c := newConsumer("c", -1)
	c.notify = make(chan *Entry, len(bodies))
	if err := q.AddConsumer(c, ConsumerOptions{NoAck: true}); err != nil {
		t.Fatal(err)
	}
	waitDeliveries(t, c, len(bodies))
	wantBodies(t, "delivered", c.bodies(), bodies)
}

// waitDeliveries waits until c (with a notify channel) has received n
// deliveries: those past the memory bound arrive from page-in goroutines.
func waitDeliveries(t *testing.T, c *testConsumer, n int) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for i := 0; i < n; i++ {
		select {
		case <-c.notify:
		case <-timeout:
			t.Fatalf("%d of %d deliveries within 10s", i, n)
		}
	}
}

func TestPagingWithRequeueKeepsOriginalPositions(t *testing.T) {
	q, _ := newPagedQueue(t, DefaultConfig("q"), nil, 5, 0)
	bodies := seqBodies("m", 50)
	publishN(t, q, bodies...)
	var taken []*Entry
	for i := 0; i < 8; i++ { // past the first page-in
		e, _, ok := q.Get(false)
		if !ok {
			t.Fatal("get failed")
		}
		taken = append(taken, e)
	}
	q.Requeue(taken[3:])
	q.Ack(taken[:3])
	wantBodies(t, "after requeue", getBodies(t, q), bodies[3:])
}

func TestPagingWithPrioritiesKeepsPriorityOrder(t *testing.T) {
	cfg := DefaultConfig("q")
	cfg.MaxPriority = 3
	q, _ := newPagedQueue(t, cfg, nil, 4, 0)
	var want [4][]string
	for i := 0; i < 40; i++ {
		prio := uint8(i % 4)
		b := fmt.Sprintf("p%d-%d", prio, i)
		want[prio] = append(want[prio], b)
		if q.Publish(msgWith(b, amqp.Properties{Priority: prio})) != Accepted {
			t.Fatal("publish refused")
		}
	}
	if q.PagedOut() == 0 {
		t.Fatal("nothing paged out")
	}
	var all []string
	for p := 3; p >= 0; p-- {
		all = append(all, want[p]...)
	}
	wantBodies(t, "by priority", getBodies(t, q), all)
}

func TestPurgeAndDeleteDiscardPagedMessages(t *testing.T) {
	r := newRecorder()
	q, p := newPagedQueue(t, DefaultConfig("q"), r, 10, 0)
	publishN(t, q, seqBodies("m", 100)...)
	if n := q.Purge(); n != 100 {
		t.Fatalf("purge = %d, want 100", n)
	}
	if p.discarded != 90 || p.held() != 0 || len(r.removedBodies()) != 10 {
		t.Fatalf("purge: discarded %d, pager holds %d, removed %d", p.discarded, p.held(), len(r.removedBodies()))
	}
	publishN(t, q, seqBodies("n", 30)...)
	if _, n := q.Delete(); n != 30 {
		t.Fatalf("delete reported %d messages, want 30", n)
	}
	if p.held() != 0 {
		t.Fatalf("pager still holds %d after delete", p.held())
	}
}

func TestPagingKeepsTTLDeadlines(t *testing.T) {
	r := newRecorder()
	cfg := DefaultConfig("q")
	cfg.MessageTTL = 50 * time.Millisecond
	cfg.HasDeadLetterExchange = true
	q, _ := newPagedQueue(t, cfg, r, 2, 0)
	publishN(t, q, seqBodies("m", 20)...)
	start := time.Now()
	for i := 0; i < 20; i++ {
		d := r.waitDead(t, 5*time.Second)
		if d.Reason != ReasonExpired {
			t.Fatalf("reason %q, want expired", d.Reason)
		}
	}
	// Read back late, paged messages would live a full TTL after their
	// page-in; they keep the deadline set at publish.
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("expiry took %v", el)
	}
	if ready, _, _ := q.Counts(); ready != 0 {
		t.Fatalf("ready = %d after expiry", ready)
	}
}

func TestPagingDropHeadOverflow(t *testing.T) {
	r := newRecorder()
	cfg := DefaultConfig("q")
	cfg.MaxLength = 30
	q, _ := newPagedQueue(t, cfg, r, 5, 0)
	bodies := seqBodies("m", 100)
	publishN(t, q, bodies...)
	wantBodies(t, "kept", getBodies(t, q), bodies[70:])
}

func TestRestorePagedReadsBackWithRedeliveredFlag(t *testing.T) {
	q, p := newPagedQueue(t, DefaultConfig("q"), nil, 10, 0)
	for i := 0; i < 300; i++ {
		m := msg(fmt.Sprint("r", i))
		tok, _ := p.PageOut(m, true)
		p.delivered[tok] = i%2 == 0
		q.RestorePaged(tok, int64(m.Size()))
	}
	q.ArmAfterRestore()
	if ready, _, _ := q.Counts(); ready != 300 {
		t.Fatalf("ready = %d, want 300", ready)
	}
	for i := 0; i < 300; i++ {
		e, _, ok := q.Get(true)
		if !ok {
			t.Fatalf("get %d failed", i)
		}
		if got, want := string(e.Message().Body), fmt.Sprint("r", i); got != want {
			t.Fatalf("message %d = %q, want %q", i, got, want)
		}
		if e.Redelivered() != (i%2 == 0) {
			t.Fatalf("message %d redelivered = %v", i, e.Redelivered())
		}
	}
}

func TestPagingSkipsMessagesThePagerLost(t *testing.T) {
	q, p := newPagedQueue(t, DefaultConfig("q"), nil, 1, 0)
	publishN(t, q, "a", "b", "c", "d")
	p.missing[2] = true // "c"
	wantBodies(t, "read back", getBodies(t, q), []string{"a", "b", "d"})
	if ready, _, _ := q.Counts(); ready != 0 || q.ReadyBytes() != 0 {
		t.Fatalf("ready %d, bytes %d after drain", ready, q.ReadyBytes())
	}
}

func BenchmarkPagedPublishGet(b *testing.B) {
	q := New(DefaultConfig("q"), Hooks{})
	q.EnablePaging(Paging{Pager: newMemPager(), MaxMessages: 1000})
	m := msg("0123456789abcdef")
	for i := 0; i < 5000; i++ {
		q.Publish(m)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		q.Publish(m)
		q.Get(true)
	}
}
