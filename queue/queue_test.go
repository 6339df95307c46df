package queue

import (
	"errors"
	"testing"

	"github.com/warrenmq/warren/amqp"
)

func TestGetReturnsMessagesInPublishOrder(t *testing.T) {
	q := newTestQueue(t, DefaultConfig("q"), nil)
	publishN(t, q, "a", "b", "c")
	e, remaining, ok := q.Get(false)
	if !ok || string(e.Message().Body) != "a" || remaining != 2 {
		t.Fatalf("Get = %v %d %v, want a, 2 remaining", e, remaining, ok)
	}
	wantBodies(t, "rest", getBodies(t, q), []string{"b", "c"})
	if ready, unacked, _ := q.Counts(); ready != 0 || unacked != 1 {
		t.Fatalf("Counts = %d ready %d unacked, want 0 1", ready, unacked)
	}
}

func TestConsumerReceivesInPublishOrder(t *testing.T) {
	q := newTestQueue(t, DefaultConfig("q"), nil)
	publishN(t, q, "a", "b")
	c := newConsumer("c", -1)
	if err := q.AddConsumer(c, ConsumerOptions{}); err != nil {
		t.Fatal(err)
	}
	publishN(t, q, "c", "d")
	wantBodies(t, "delivered", c.bodies(), []string{"a", "b", "c", "d"})
	if ready, unacked, consumers := q.Counts(); ready != 0 || unacked != 4 || consumers != 1 {
		t.Fatalf("Counts = %d %d %d, want 0 4 1", ready, unacked, consumers)
	}
}

func TestRoundRobinOverThreeConsumers(t *testing.T) {
	q := newTestQueue(t, DefaultConfig("q"), nil)
	cs := []*testConsumer{newConsumer("c0", -1), newConsumer("c1", -1), newConsumer("c2", -1)}
	for _, c := range cs {
		if err := q.AddConsumer(c, ConsumerOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	publishN(t, q, seqBodies("m", 9)...)
	wantBodies(t, "c0", cs[0].bodies(), []string{"m0", "m3", "m6"})
	wantBodies(t, "c1", cs[1].bodies(), []string{"m1", "m4", "m7"})
	wantBodies(t, "c2", cs[2].bodies(), []string{"m2", "m5", "m8"})
}

func TestBlockedConsumerIsSkippedUntilKicked(t *testing.T) {
	q := newTestQueue(t, DefaultConfig("q"), nil)
	a, b := newConsumer("a", 1), newConsumer("b", -1)
	q.AddConsumer(a, ConsumerOptions{})
	q.AddConsumer(b, ConsumerOptions{})
	publishN(t, q, seqBodies("m", 5)...)
	wantBodies(t, "a", a.bodies(), []string{"m0"})
	wantBodies(t, "b", b.bodies(), []string{"m1", "m2", "m3", "m4"})

	a.grant(2)
	publishN(t, q, "x") // a is blocked until kicked: b gets it
	wantBodies(t, "b after grant", b.bodies(), []string{"m1", "m2", "m3", "m4", "x"})
	q.Kick(a)
	publishN(t, q, "y", "z", "w")
	// a rejoins at the back of the round-robin: after b.
	wantBodies(t, "a after kick", a.bodies(), []string{"m0", "z"})
	wantBodies(t, "b after kick", b.bodies(), []string{"m1", "m2", "m3", "m4", "x", "y", "w"})
}

func TestKickDeliversBacklogToConsumerWithNewCredit(t *testing.T) {
	q := newTestQueue(t, DefaultConfig("q"), nil)
	c := newConsumer("c", 0)
	q.AddConsumer(c, ConsumerOptions{})
	publishN(t, q, "a", "b", "c")
	if len(c.bodies()) != 0 {
		t.Fatalf("consumer without credit got %q", c.bodies())
	}
	c.grant(2)
	q.Kick(c)
	wantBodies(t, "after kick", c.bodies(), []string{"a", "b"})
	if ready, unacked, _ := q.Counts(); ready != 1 || unacked != 2 {
		t.Fatalf("Counts = %d %d, want 1 2", ready, unacked)
	}
	q.Ack(c.take())
	c.grant(1)
	q.Kick(c)
	wantBodies(t, "after second kick", c.bodies(), []string{"c"})
}

func TestRequeueRestoresOriginalPositionAndMarksRedelivered(t *testing.T) {
	q := newTestQueue(t, DefaultConfig("q"), nil)
	publishN(t, q, "a", "b", "c", "d")
	a, _, _ := q.Get(false)
	b, _, _ := q.Get(false)
	c, _, _ := q.Get(false)
	q.Requeue([]*Entry{c, a}) // in any order
	cons := newConsumer("x", -1)
	q.AddConsumer(cons, ConsumerOptions{})
	wantBodies(t, "delivered", cons.bodies(), []string{"a", "c", "d"})
	wantRedelivered := []bool{true, true, false}
	for i, r := range cons.redeliver {
		if r != wantRedelivered[i] || cons.got[i].Redelivered() != wantRedelivered[i] {
			t.Fatalf("delivery %d redelivered = %v, want %v", i, r, wantRedelivered[i])
		}
	}
	// Requeue of b (unacked since the Get) goes before the others still ready.
	q.RemoveConsumer(cons)
	q.Requeue(cons.take())
	q.Requeue([]*Entry{b})
	wantBodies(t, "after second requeue", getBodies(t, q), []string{"a", "b", "c", "d"})
}

func TestSettlingIgnoresForeignAndSettledEntries(t *testing.T) {
	r := newRecorder()
	q := newTestQueue(t, DefaultConfig("q"), r)
	other := newTestQueue(t, DefaultConfig("other"), nil)
	publishN(t, q, "a")
	publishN(t, other, "x")
	e, _, _ := q.Get(false)
	x, _, _ := other.Get(false)
	q.Ack([]*Entry{x, nil})
	q.Ack([]*Entry{e})
	q.Ack([]*Entry{e})
	q.Requeue([]*Entry{e})
	q.Reject([]*Entry{e})
	wantBodies(t, "removed", r.removedBodies(), []string{"a"})
	if ready, unacked, _ := q.Counts(); ready != 0 || unacked != 0 {
		t.Fatalf("Counts = %d %d, want 0 0", ready, unacked)
	}
	if _, unacked, _ := other.Counts(); unacked != 1 {
		t.Fatalf("other queue unacked = %d, want 1", unacked)
	}
}

func TestPriorityQueueServesHighestFirstAndCapsAtMax(t *testing.T) {
	cfg := DefaultConfig("q")
	cfg.MaxPriority = 5
	q := newTestQueue(t, cfg, nil)
	for _, p := range []struct {
		body string
		prio uint8
	}{{"p0a", 0}, {"p9", 9}, {"p3a", 3}, {"p5", 5}, {"p3b", 3}, {"p0b", 0}, {"p200", 200}} {
		q.Publish(msgWith(p.body, amqp.Properties{Priority: p.prio}))
	}
	// 9 and 200 are capped to 5 and keep their order within level 5.
	wantBodies(t, "order", getBodies(t, q), []string{"p9", "p5", "p200", "p3a", "p3b", "p0a", "p0b"})
}

func TestPriorityIgnoredWithoutMaxPriority(t *testing.T) {
	q := newTestQueue(t, DefaultConfig("q"), nil)
	q.Publish(msgWith("low", amqp.Properties{Priority: 0}))
	q.Publish(msgWith("high", amqp.Properties{Priority: 9}))
	wantBodies(t, "order", getBodies(t, q), []string{"low", "high"})
}

func TestRequeueInPriorityQueueReturnsToItsLevel(t *testing.T) {
	cfg := DefaultConfig("q")
	cfg.MaxPriority = 2
	q := newTestQueue(t, cfg, nil)
	q.Publish(msgWith("h1", amqp.Properties{Priority: 2}))
	q.Publish(msgWith("l1", amqp.Properties{Priority: 1}))
	q.Publish(msgWith("h2", amqp.Properties{Priority: 2}))
	h1, _, _ := q.Get(false)
	q.Requeue([]*Entry{h1})
	wantBodies(t, "order", getBodies(t, q), []string{"h1", "h2", "l1"})
}

func TestConsumerPriorityServesHigherUntilBlocked(t *testing.T) {
	q := newTestQueue(t, DefaultConfig("q"), nil)
	low1, low2 := newConsumer("low1", -1), newConsumer("low2", -1)
	high := newConsumer("high", 2)
	q.AddConsumer(low1, ConsumerOptions{Priority: 0})
	q.AddConsumer(high, ConsumerOptions{Priority: 10})
	q.AddConsumer(low2, ConsumerOptions{Priority: 0})
	publishN(t, q, seqBodies("m", 6)...)
	wantBodies(t, "high", high.bodies(), []string{"m0", "m1"})
	wantBodies(t, "low1", low1.bodies(), []string{"m2", "m4"})
	wantBodies(t, "low2", low2.bodies(), []string{"m3", "m5"})
	high.grant(1)
	q.Kick(high)
	publishN(t, q, "h")
	wantBodies(t, "high after kick", high.bodies(), []string{"m0", "m1", "h"})
	q.RemoveConsumer(high)
	publishN(t, q, "n")
	wantBodies(t, "low1 after high left", low1.bodies(), []string{"m2", "m4", "n"})
}

func TestNegativeConsumerPriorityIsServedLast(t *testing.T) {
	q := newTestQueue(t, DefaultConfig("q"), nil)
	neg, zero := newConsumer("neg", -1), newConsumer("zero", 1)
	q.AddConsumer(neg, ConsumerOptions{Priority: -5})
	q.AddConsumer(zero, ConsumerOptions{})
	publishN(t, q, "a", "b")
	wantBodies(t, "zero", zero.bodies(), []string{"a"})
	wantBodies(t, "neg", neg.bodies(), []string{"b"})
}

func TestSingleActiveConsumerFailsOverInRegistrationOrder(t *testing.T) {
	cfg := DefaultConfig("q")
	cfg.SingleActiveConsumer = true
	q := newTestQueue(t, cfg, nil)
	first, second, third := newConsumer("1", -1), newConsumer("2", -1), newConsumer("3", -1)
	for _, c := range []*testConsumer{first, second, third} {
		if err := q.AddConsumer(c, ConsumerOptions{Priority: 0}); err != nil {
			t.Fatal(err)
		}
	}
	publishN(t, q, "a", "b")
	wantBodies(t, "first", first.bodies(), []string{"a", "b"})
	if len(second.bodies())+len(third.bodies()) != 0 {
		t.Fatal("a waiting consumer received a message")
	}
	// The channel of the active consumer closes: it is removed and its
	// unacked messages requeued; the next consumer takes over, in order.
	q.RemoveConsumer(first)
	q.Requeue(first.take())
	wantBodies(t, "second", second.bodies(), []string{"a", "b"})
	if !second.redeliver[0] {
		t.Fatal("failover delivery not marked redelivered")
	}
	publishN(t, q, "c")
	wantBodies(t, "second after publish", second.bodies(), []string{"a", "b", "c"})
	q.RemoveConsumer(third) // a waiting consumer leaves: nothing changes
	publishN(t, q, "d")
	wantBodies(t, "second after third left", second.bodies(), []string{"a", "b", "c", "d"})
	if got := q.ConsumerCount(); got != 1 {
		t.Fatalf("ConsumerCount = %d, want 1", got)
	}
}

func TestSingleActiveConsumerBlockedDoesNotFallBackToWaiting(t *testing.T) {
	cfg := DefaultConfig("q")
	cfg.SingleActiveConsumer = true
	q := newTestQueue(t, cfg, nil)
	active, waiting := newConsumer("a", 1), newConsumer("w", -1)
	q.AddConsumer(active, ConsumerOptions{})
	q.AddConsumer(waiting, ConsumerOptions{})
	publishN(t, q, "a", "b")
	wantBodies(t, "active", active.bodies(), []string{"a"})
	wantBodies(t, "waiting", waiting.bodies(), nil)
	if ready, _, _ := q.Counts(); ready != 1 {
		t.Fatalf("ready = %d, want 1", ready)
	}
}

func TestExclusiveConsumerRules(t *testing.T) {
	tests := []struct {
		name   string
		single bool
		first  *ConsumerOptions
		second ConsumerOptions
		want   error
	}{
		{"exclusive on empty queue", false, nil, ConsumerOptions{Exclusive: true}, nil},
		{"second after exclusive", false, &ConsumerOptions{Exclusive: true}, ConsumerOptions{}, ErrExclusiveConsumer},
		{"exclusive after other", false, &ConsumerOptions{}, ConsumerOptions{Exclusive: true}, ErrExclusiveConsumer},
		{"shared after shared", false, &ConsumerOptions{}, ConsumerOptions{}, nil},
		{"exclusive on single-active-consumer queue", true, nil, ConsumerOptions{Exclusive: true}, ErrExclusiveConsumer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig("q")
			cfg.SingleActiveConsumer = tt.single
			q := newTestQueue(t, cfg, nil)
			if tt.first != nil {
				if err := q.AddConsumer(newConsumer("first", -1), *tt.first); err != nil {
					t.Fatal(err)
				}
			}
			if err := q.AddConsumer(newConsumer("second", -1), tt.second); !errors.Is(err, tt.want) {
				t.Fatalf("AddConsumer = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestExclusiveConsumerLeavingFreesTheQueue(t *testing.T) {
	q := newTestQueue(t, DefaultConfig("q"), nil)
	ex := newConsumer("ex", -1)
	q.AddConsumer(ex, ConsumerOptions{Exclusive: true})
	q.RemoveConsumer(ex)
	if err := q.AddConsumer(newConsumer("other", -1), ConsumerOptions{}); err != nil {
		t.Fatalf("AddConsumer after exclusive left = %v", err)
	}
}

func TestAddConsumerRefusesInvalidDuplicateAndDeleted(t *testing.T) {
	q := newTestQueue(t, DefaultConfig("q"), nil)
	c := newConsumer("c", -1)
	if err := q.AddConsumer(nil, ConsumerOptions{}); !errors.Is(err, ErrInvalidConsumer) {
		t.Fatalf("nil consumer: %v", err)
	}
	if err := q.AddConsumer(funcConsumer(nil), ConsumerOptions{}); !errors.Is(err, ErrInvalidConsumer) {
		t.Fatalf("non-comparable consumer: %v", err)
	}
	q.Kick(funcConsumer(nil))           // must not panic
	q.RemoveConsumer(funcConsumer(nil)) // must not panic
	q.AddConsumer(c, ConsumerOptions{})
	if err := q.AddConsumer(c, ConsumerOptions{}); !errors.Is(err, ErrConsumerExists) {
		t.Fatalf("duplicate: %v", err)
	}
	q.Delete()
	if err := q.AddConsumer(newConsumer("late", -1), ConsumerOptions{}); !errors.Is(err, ErrQueueDeleted) {
		t.Fatalf("after delete: %v", err)
	}
}

// funcConsumer is a Consumer whose values are not comparable.
type funcConsumer func(*Entry, bool) bool

func (f funcConsumer) Deliver(e *Entry, r bool) bool { return f(e, r) }

func TestNoAckDeliveriesAreSettledAtOnce(t *testing.T) {
	r := newRecorder()
	q := newTestQueue(t, DefaultConfig("q"), r)
	c := newConsumer("c", -1)
	q.AddConsumer(c, ConsumerOptions{NoAck: true})
	publishN(t, q, "a", "b")
	wantBodies(t, "removed", r.removedBodies(), []string{"a", "b"})
	if _, unacked, _ := q.Counts(); unacked != 0 {
		t.Fatalf("unacked = %d, want 0", unacked)
	}
	q.Ack(c.take()) // no-op
	wantBodies(t, "removed after ack", r.removedBodies(), []string{"a", "b"})
}

func TestNoAckGetRemovesMessage(t *testing.T) {
	r := newRecorder()
	q := newTestQueue(t, DefaultConfig("q"), r)
	publishN(t, q, "a")
	if _, remaining, ok := q.Get(true); !ok || remaining != 0 {
		t.Fatalf("Get = %d %v", remaining, ok)
	}
	wantBodies(t, "removed", r.removedBodies(), []string{"a"})
	if _, _, ok := q.Get(true); ok {
		t.Fatal("Get on empty queue returned a message")
	}
}

func TestRejectDeadLettersOnlyWithDLX(t *testing.T) {
	for _, hasDLX := range []bool{false, true} {
		r := newRecorder()
		cfg := DefaultConfig("q")
		cfg.HasDeadLetterExchange = hasDLX
		q := newTestQueue(t, cfg, r)
		publishN(t, q, "a")
		e, _, _ := q.Get(false)
		q.Reject([]*Entry{e})
		var want []string
		if hasDLX {
			want = []string{"a:rejected"}
		}
		wantBodies(t, "dead letters", r.deadLetters(), want)
		wantBodies(t, "removed", r.removedBodies(), []string{"a"})
	}
}

func TestPurgeDropsReadyButNotUnacked(t *testing.T) {
	r := newRecorder()
	cfg := DefaultConfig("q")
	cfg.HasDeadLetterExchange = true
	q := newTestQueue(t, cfg, r)
	publishN(t, q, "a", "b", "c")
	e, _, _ := q.Get(false)
	if n := q.Purge(); n != 2 {
		t.Fatalf("Purge = %d, want 2", n)
	}
	wantBodies(t, "removed", r.removedBodies(), []string{"b", "c"})
	wantBodies(t, "dead letters", r.deadLetters(), nil)
	if ready, unacked, _ := q.Counts(); ready != 0 || unacked != 1 || q.ReadyBytes() != 0 {
		t.Fatalf("Counts = %d %d bytes %d, want 0 1 0", ready, unacked, q.ReadyBytes())
	}
	q.Ack([]*Entry{e})
	wantBodies(t, "removed after ack", r.removedBodies(), []string{"b", "c", "a"})
}

func TestDeleteReturnsConsumersAndCountAndRemovesEverything(t *testing.T) {
	r := newRecorder()
	cfg := DefaultConfig("q")
	cfg.AutoDelete = true
	cfg.Expires = 1 << 40 // armed, must be stopped
	q := newTestQueue(t, cfg, r)
	c1, c2 := newConsumer("c1", 1), newConsumer("c2", 0)
	q.AddConsumer(c1, ConsumerOptions{})
	q.AddConsumer(c2, ConsumerOptions{})
	publishN(t, q, "a", "b", "c")
	consumers, n := q.Delete()
	if n != 2 || len(consumers) != 2 || consumers[0] != Consumer(c1) || consumers[1] != Consumer(c2) {
		t.Fatalf("Delete = %v, %d; want [c1 c2], 2", consumers, n)
	}
	got := r.removedBodies()
	if len(got) != 3 {
		t.Fatalf("removed = %q, want all three", got)
	}
	if !q.IsDeleted() {
		t.Fatal("IsDeleted = false")
	}
	if res := q.Publish(msg("late")); res != Dropped {
		t.Fatalf("Publish after delete = %v, want dropped", res)
	}
	if _, _, ok := q.Get(false); ok {
		t.Fatal("Get after delete returned a message")
	}
	q.Ack(c1.take()) // already removed: no second Removed
	if len(r.removedBodies()) != 3 {
		t.Fatalf("removed after late ack = %q", r.removedBodies())
	}
	if again, n := q.Delete(); again != nil || n != 0 {
		t.Fatalf("second Delete = %v %d", again, n)
	}
	select {
	case <-r.unused:
		t.Fatal("Unused fired on Delete")
	default:
	}
}

func TestAutoDeleteUnusedFiresWhenLastConsumerLeaves(t *testing.T) {
	r := newRecorder()
	cfg := DefaultConfig("q")
	cfg.AutoDelete = true
	q := newTestQueue(t, cfg, r)
	publishN(t, q, "a")
	q.Get(true)
	q.Purge()
	select {
	case <-r.unused:
		t.Fatal("Unused fired for a never-consumed queue")
	default:
	}
	a, b := newConsumer("a", -1), newConsumer("b", -1)
	q.AddConsumer(a, ConsumerOptions{})
	q.AddConsumer(b, ConsumerOptions{})
	q.RemoveConsumer(a)
	select {
	case <-r.unused:
		t.Fatal("Unused fired while a consumer remains")
	default:
	}
	q.RemoveConsumer(b)
	select {
	case <-r.unused:
	default:
		t.Fatal("Unused did not fire when the last consumer left")
	}
}

func TestUnusedDoesNotFireForDurableNonAutoDeleteQueue(t *testing.T) {
	r := newRecorder()
	q := newTestQueue(t, DefaultConfig("q"), r)
	c := newConsumer("c", -1)
	q.AddConsumer(c, ConsumerOptions{})
	q.RemoveConsumer(c)
	select {
	case <-r.unused:
		t.Fatal("Unused fired for a queue that is not auto-delete")
	default:
	}
}

func TestRestoreKeepsRedeliveredFlagAndIgnoresLimits(t *testing.T) {
	cfg := DefaultConfig("q")
	cfg.MaxLength = 1
	cfg.Overflow = RejectPublish
	q := newTestQueue(t, cfg, nil)
	q.Restore(msg("a"), true)
	q.Restore(msg("b"), false)
	c := newConsumer("c", -1)
	q.AddConsumer(c, ConsumerOptions{})
	wantBodies(t, "delivered", c.bodies(), []string{"a", "b"})
	if !c.redeliver[0] || c.redeliver[1] {
		t.Fatalf("redelivered flags = %v, want [true false]", c.redeliver)
	}
	if got := c.got[0].DeliveryCount(); got != 1 {
		t.Fatalf("DeliveryCount = %d, want 1", got)
	}
}

func TestEntryAccessors(t *testing.T) {
	q := newTestQueue(t, DefaultConfig("q"), nil)
	m := msg("a")
	q.Publish(m)
	e, _, _ := q.Get(false)
	if e.Message() != m || e.Queue() != q || e.Redelivered() || q.Name() != "q" || q.Config().Name != "q" {
		t.Fatal("accessors do not return what was published")
	}
}
