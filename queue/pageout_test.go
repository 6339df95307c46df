package queue

import (
	"sync/atomic"
	"testing"
)

// choosyPager is a memPager that keeps messages in memory (refuses to page
// them out unless forced) until allow is set, as the broker's pager does
// with transient messages until memory is short.
type choosyPager struct {
	*memPager
	allow atomic.Bool
}

func (p *choosyPager) PageOut(m *Message, force bool) (uint64, bool) {
	if !force && !p.allow.Load() {
		return 0, false
	}
	return p.memPager.PageOut(m, force)
}

func newChoosyQueue(t *testing.T, maxMessages int) (*Queue, *choosyPager) {
	t.Helper()
	q := newTestQueue(t, DefaultConfig("q"), nil)
	p := &choosyPager{memPager: newMemPager()}
	q.EnablePaging(Paging{Pager: p, MaxMessages: maxMessages})
	return q, p
}

// TestPageOutExcessPagesWhatIsAlreadyInMemory: messages let into memory
// while the pager kept them there leave it once it agrees, newest first,
// and come back in order.
func TestPageOutExcessPagesWhatIsAlreadyInMemory(t *testing.T) {
	q, p := newChoosyQueue(t, 100)
	bodies := seqBodies("m", 1000)
	publishN(t, q, bodies...)
	if got := q.PagedOut(); got != 0 {
		t.Fatalf("paged out %d while the pager refused", got)
	}
	if got := q.PageOutExcess(100); got != 0 {
		t.Fatalf("PageOutExcess paged %d while the pager refused", got)
	}
	p.allow.Store(true)
	if got := q.PageOutExcess(100); got != 900 {
		t.Fatalf("PageOutExcess paged %d, want 900", got)
	}
	if got := q.PagedOut(); got != 900 {
		t.Fatalf("paged out = %d, want 900", got)
	}
	publishN(t, q, "after")
	wantBodies(t, "drained", getBodies(t, q), append(bodies, "after"))
}

// TestPageOutExcessKeepsRequeuedMessagesInPlace: requeued messages are
// paged out too, in their original places and still flagged redelivered;
// unacked deliveries count against what stays in memory.
func TestPageOutExcessKeepsRequeuedMessagesInPlace(t *testing.T) {
	q, p := newChoosyQueue(t, 1000)
	p.allow.Store(true)
	bodies := seqBodies("m", 50)
	publishN(t, q, bodies...)
	var got []*Entry
	for i := 0; i < 20; i++ {
		e, _, ok := q.Get(false)
		if !ok {
			t.Fatal("empty")
		}
		got = append(got, e)
	}
	q.Requeue(got[:15]) // m0..m14 back in place; m15..m19 stay unacked
	if n := q.PageOutExcess(10); n != 45-5 {
		t.Fatalf("PageOutExcess paged %d, want 40 (45 ready, 10 kept less 5 unacked)", n)
	}
	var order []string
	for {
		e, _, ok := q.Get(true)
		if !ok {
			break
		}
		b := string(e.Message().Body)
		order = append(order, b)
		if wantRedelivered := len(order) <= 15; e.Redelivered() != wantRedelivered {
			t.Fatalf("%s redelivered=%v, want %v", b, e.Redelivered(), wantRedelivered)
		}
	}
	wantBodies(t, "drained", order, append(append([]string{}, bodies[:15]...), bodies[20:]...))
}

// TestUnackedDeliveriesCountAgainstTheBound: with deliveries unacked, new
// publishes page out sooner.
func TestUnackedDeliveriesCountAgainstTheBound(t *testing.T) {
	q, p := newChoosyQueue(t, 10)
	p.allow.Store(true)
	publishN(t, q, seqBodies("a", 8)...)
	for i := 0; i < 8; i++ {
		if _, _, ok := q.Get(false); !ok {
			t.Fatal("empty")
		}
	}
	publishN(t, q, seqBodies("b", 10)...)
	if got := q.PagedOut(); got != 8 {
		t.Fatalf("paged out = %d, want 8 (8 unacked + 2 ready fill the bound of 10)", got)
	}
}
