package queue

import (
	"fmt"
	"testing"
	"time"

	"github.com/warrenmq/warren/amqp"
)

// gatedPager is a memPager whose PageIn reports that it started and then
// waits for release (a value or its close) before reading, as a slow disk
// would.
type gatedPager struct {
	*memPager
	started chan struct{} // one value per PageIn call
	release chan struct{}
}

func newGatedPager() *gatedPager {
	return &gatedPager{memPager: newMemPager(), started: make(chan struct{}, 64), release: make(chan struct{})}
}

func (p *gatedPager) PageIn(tokens []uint64, fn func(int, *Message, bool)) {
	p.started <- struct{}{}
	<-p.release
	p.memPager.PageIn(tokens, fn)
}

// waitStarted waits for the next PageIn call to start.
func (p *gatedPager) waitStarted(t *testing.T) {
	t.Helper()
	select {
	case <-p.started:
	case <-time.After(5 * time.Second):
		t.Fatal("no page-in started within 5s")
	}
}

// within runs fn and fails the test when it does not return within 5s: fn
// must not wait for the blocked page-in.
func within(t *testing.T, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s blocked behind the page-in", what)
	}
}

func newGatedQueue(t *testing.T, cfg Config, maxMessages int) (*Queue, *gatedPager) {
	t.Helper()
	q := New(cfg, Hooks{})
	p := newGatedPager()
	q.EnablePaging(Paging{Pager: p, MaxMessages: maxMessages})
	t.Cleanup(func() {
		select {
		case <-p.release:
		default:
			close(p.release) // let a page-in still blocked finish
		}
		q.Delete()
	})
	return q, p
}

// readInProgress returns the read in progress of level p, for a test to
// wait until its result is installed or dropped.
func (q *Queue) readInProgress(p int) *pageRead {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.ready.levels[p].reading
}

func waitRead(t *testing.T, rd *pageRead) {
	t.Helper()
	select {
	case <-rd.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the page-in did not finish within 5s")
	}
}

func getOne(t *testing.T, q *Queue, noAck bool) *Entry {
	t.Helper()
	e, _, ok := q.Get(noAck)
	if !ok {
		t.Fatal("get: queue empty")
	}
	return e
}

func wantBody(t *testing.T, e *Entry, want string) {
	t.Helper()
	if got := string(e.Message().Body); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestPageInRunsWithoutTheQueueLock(t *testing.T) {
	q, p := newGatedQueue(t, DefaultConfig("q"), 10)
	other := newTestQueue(t, DefaultConfig("other"), nil)
	bodies := seqBodies("m", 300)
	publishN(t, q, bodies...) // m0..m9 in memory, the rest paged out
	wantBody(t, getOne(t, q, true), "m0")
	p.waitStarted(t) // memory is low: m10.. are being read, and the read is stuck

	within(t, "get and requeue of messages in memory", func() {
		e := getOne(t, q, false)
		wantBody(t, e, "m1")
		q.Requeue([]*Entry{e})
		if e = getOne(t, q, true); string(e.Message().Body) != "m1" || !e.Redelivered() {
			t.Errorf("after requeue got %q (redelivered %v), want m1 redelivered", e.Message().Body, e.Redelivered())
		}
		for _, want := range []string{"m2", "m3", "m4"} {
			wantBody(t, getOne(t, q, true), want)
		}
	})
	later := seqBodies("n", 10)
	within(t, "publish", func() { publishN(t, q, later...) })
	c := newConsumer("c", 5)
	c.notify = make(chan *Entry, 400)
	within(t, "a consumer's deliveries", func() {
		if err := q.AddConsumer(c, ConsumerOptions{}); err != nil {
			t.Error(err)
		}
	})
	wantBodies(t, "delivered while the read is stuck", c.bodies(), bodies[5:10])
	within(t, "counts", func() {
		if ready, unacked, _ := q.Counts(); ready != 300-10+10 || unacked != 5 {
			t.Errorf("counts: ready %d, unacked %d; want 300, 5", ready, unacked)
		}
	})
	within(t, "another queue", func() {
		publishN(t, other, "x")
		wantBody(t, getOne(t, other, true), "x")
	})

	// The next message is being read: Get waits for it, without the lock.
	got := make(chan *Entry, 1)
	go func() {
		e, _, _ := q.Get(true)
		got <- e
	}()
	close(p.release)
	select {
	case e := <-got:
		if e == nil {
			t.Fatal("get after the read: queue empty")
		}
		wantBody(t, e, "m10")
	case <-time.After(5 * time.Second):
		t.Fatal("get did not return after the read finished")
	}

	q.Ack(c.take())
	c.grant(400)
	q.Kick(c)
	want := append(append([]string(nil), bodies[11:]...), later...)
	waitDeliveries(t, c, 5+len(want)) // the 5 delivered before, still in notify
	wantBodies(t, "delivered after the read", c.bodies(), want)
	q.Ack(c.take())
	if ready, unacked, _ := q.Counts(); ready != 0 || unacked != 0 || q.ReadyBytes() != 0 || q.PagedOut() != 0 || p.held() != 0 {
		t.Fatalf("after drain: ready %d, unacked %d, bytes %d, paged %d, pager holds %d",
			ready, unacked, q.ReadyBytes(), q.PagedOut(), p.held())
	}
}

func TestPurgeDuringPageInDropsTheRead(t *testing.T) {
	q, p := newGatedQueue(t, DefaultConfig("q"), 10)
	publishN(t, q, seqBodies("m", 300)...)
	wantBody(t, getOne(t, q, true), "m0")
	p.waitStarted(t)
	rd := q.readInProgress(0)
	if rd == nil {
		t.Fatal("no read in progress")
	}
	var n int
	within(t, "purge", func() { n = q.Purge() })
	if n != 299 {
		t.Fatalf("purge = %d, want 299", n)
	}
	if p.discarded != 290 || p.held() != 0 {
		t.Fatalf("purge discarded %d, pager holds %d; want 290 (the read's included), 0", p.discarded, p.held())
	}
	// The level has nothing paged out any more: new messages do not wait
	// behind the cancelled read.
	after := seqBodies("a", 30)
	within(t, "publish after purge", func() { publishN(t, q, after...) })
	close(p.release)
	waitRead(t, rd)
	wantBodies(t, "after purge", getBodies(t, q), after)
	if ready, _, _ := q.Counts(); ready != 0 || q.ReadyBytes() != 0 || q.PagedOut() != 0 {
		t.Fatalf("after drain: ready %d, bytes %d, paged %d", ready, q.ReadyBytes(), q.PagedOut())
	}
}

func TestDeleteDuringPageIn(t *testing.T) {
	q, p := newGatedQueue(t, DefaultConfig("q"), 10)
	publishN(t, q, seqBodies("m", 300)...)
	wantBody(t, getOne(t, q, true), "m0")
	p.waitStarted(t)
	rd := q.readInProgress(0)
	// A Get waiting for the read returns empty once the queue is deleted.
	got := make(chan bool, 1)
	for i := 0; i < 9; i++ {
		getOne(t, q, true)
	}
	go func() {
		_, _, ok := q.Get(true)
		got <- ok
	}()
	var n int
	within(t, "delete", func() { _, n = q.Delete() })
	if n != 290 {
		t.Fatalf("delete reported %d messages, want 290", n)
	}
	close(p.release)
	waitRead(t, rd)
	select {
	case ok := <-got:
		if ok {
			t.Fatal("get returned a message of a deleted queue")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("get still waiting after delete")
	}
	if p.held() != 0 || q.Publish(msg("late")) != Dropped {
		t.Fatalf("after delete: pager holds %d", p.held())
	}
}

func TestPageInOfALevelLetsHigherPrioritiesThrough(t *testing.T) {
	cfg := DefaultConfig("q")
	cfg.MaxPriority = 5
	q, p := newGatedQueue(t, cfg, 10)
	bodies := seqBodies("low", 100)
	publishN(t, q, bodies...) // priority 0
	wantBody(t, getOne(t, q, true), "low0")
	p.waitStarted(t)
	for i := 1; i < 10; i++ {
		wantBody(t, getOne(t, q, true), bodies[i])
	}
	within(t, "a higher priority publish and get", func() {
		if q.Publish(msgWith("high", amqp.Properties{Priority: 5})) != Accepted {
			t.Error("publish refused")
		}
		wantBody(t, getOne(t, q, true), "high")
	})
	close(p.release)
	wantBodies(t, "the low level after the read", getBodies(t, q), bodies[10:])
}

func TestPageInKeepsOrderUnderConcurrentUse(t *testing.T) {
	// A publisher races a consumer with a small prefetch that acks and
	// kicks as a channel does, on a queue that keeps 20 messages in memory:
	// deliveries come from Publish, Kick and page-in goroutines, and every
	// message arrives once, in order.
	q := New(DefaultConfig("q"), Hooks{})
	defer q.Delete()
	p := newMemPager()
	q.EnablePaging(Paging{Pager: p, MaxMessages: 20})
	const n, prefetch = 5000, 10
	c := &ackingConsumer{credit: prefetch, out: make(chan *Entry, prefetch)}
	if err := q.AddConsumer(c, ConsumerOptions{}); err != nil {
		t.Fatal(err)
	}
	go func() {
		for i := 0; i < n; i++ {
			q.Publish(msg(fmt.Sprint("m", i)))
		}
	}()
	got := make([]string, 0, n)
	timeout := time.After(20 * time.Second)
	for len(got) < n {
		select {
		case e := <-c.out:
			got = append(got, string(e.Message().Body))
			q.Ack([]*Entry{e})
			if c.settle() {
				q.Kick(c)
			}
		case <-timeout:
			t.Fatalf("%d of %d messages within 20s", len(got), n)
		}
	}
	wantBodies(t, "delivered", got, seqBodies("m", n))
	t.Logf("paged out %d, read back %d", p.outs, p.ins)
}
