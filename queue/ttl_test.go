package queue

import (
	"testing"
	"time"

	"github.com/warrenmq/warren/amqp"
)

// promptly is how late a TTL expiry may be reported: generous for -race on
// a loaded two-core machine, far below a second.
const promptly = 250 * time.Millisecond

func ttlQueue(t *testing.T, ttl time.Duration, r *recorder) *Queue {
	t.Helper()
	cfg := DefaultConfig("q")
	cfg.MessageTTL = ttl
	cfg.HasDeadLetterExchange = true
	return newTestQueue(t, cfg, r)
}

func TestQueueTTLExpiresPromptlyAndDeadLetters(t *testing.T) {
	r := newRecorder()
	q := ttlQueue(t, 30*time.Millisecond, r)
	start := time.Now()
	publishN(t, q, "a", "b")
	for _, want := range []string{"a", "b"} {
		d := r.waitDead(t, time.Second)
		if string(d.Message.Body) != want || d.Reason != ReasonExpired {
			t.Fatalf("dead letter = %s:%s, want %s:expired", d.Message.Body, d.Reason, want)
		}
	}
	elapsed := time.Since(start)
	if elapsed < 30*time.Millisecond || elapsed > 30*time.Millisecond+promptly {
		t.Fatalf("expired after %v, want about 30ms", elapsed)
	}
	if ready, _, _ := q.Counts(); ready != 0 {
		t.Fatalf("ready = %d after expiry", ready)
	}
	wantBodies(t, "removed", r.removedBodies(), []string{"a", "b"})
}

func TestLowerOfQueueAndMessageTTLWins(t *testing.T) {
	tests := []struct {
		name       string
		queueTTL   time.Duration
		expiration string
		wantMin    time.Duration
	}{
		{"message lower", time.Hour, "20", 20 * time.Millisecond},
		{"queue lower", 20 * time.Millisecond, "3600000", 20 * time.Millisecond},
		{"message only", -1, "20", 20 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRecorder()
			q := ttlQueue(t, tt.queueTTL, r)
			start := time.Now()
			q.Publish(msgWith("a", amqp.Properties{Expiration: tt.expiration}))
			d := r.waitDead(t, 5*time.Second)
			if elapsed := time.Since(start); elapsed < tt.wantMin || elapsed > tt.wantMin+promptly {
				t.Fatalf("expired after %v, want about %v", elapsed, tt.wantMin)
			}
			if d.Reason != ReasonExpired {
				t.Fatalf("reason = %q", d.Reason)
			}
		})
	}
}

func TestExpiredMessagesAreNotReturnedByGet(t *testing.T) {
	q := ttlQueue(t, time.Millisecond, nil) // no hooks: only the Get path expires
	publishN(t, q, "a")
	time.Sleep(3 * time.Millisecond) // the TTL must elapse: a duration, not an event
	if e, _, ok := q.Get(true); ok {
		t.Fatalf("Get returned expired message %s", e.Message().Body)
	}
}

func TestZeroTTLDeliversOnlyToAConsumerThatCanTakeIt(t *testing.T) {
	r := newRecorder()
	q := ttlQueue(t, 0, r)
	publishN(t, q, "nobody")
	if d := r.waitDead(t, time.Second); string(d.Message.Body) != "nobody" {
		t.Fatalf("dead letter %s, want nobody", d.Message.Body)
	}
	c := newConsumer("c", 1)
	q.AddConsumer(c, ConsumerOptions{})
	publishN(t, q, "taken", "no-credit")
	wantBodies(t, "delivered", c.bodies(), []string{"taken"})
	if d := r.waitDead(t, time.Second); string(d.Message.Body) != "no-credit" {
		t.Fatalf("dead letter %s, want no-credit", d.Message.Body)
	}
	if ready, _, _ := q.Counts(); ready != 0 {
		t.Fatalf("ready = %d", ready)
	}
}

func TestZeroPerMessageExpirationExpiresWhenUndelivered(t *testing.T) {
	r := newRecorder()
	q := ttlQueue(t, -1, r)
	q.Publish(msgWith("a", amqp.Properties{Expiration: "0"}))
	if d := r.waitDead(t, time.Second); string(d.Message.Body) != "a" || d.Reason != ReasonExpired {
		t.Fatalf("dead letter %s:%s", d.Message.Body, d.Reason)
	}
}

func TestOnlyHeadExpires(t *testing.T) {
	r := newRecorder()
	q := ttlQueue(t, -1, r)
	q.Publish(msgWith("long", amqp.Properties{Expiration: "200"}))
	q.Publish(msgWith("short", amqp.Properties{Expiration: "10"}))
	start := time.Now()
	first := r.waitDead(t, 2*time.Second)
	second := r.waitDead(t, 2*time.Second)
	if string(first.Message.Body) != "long" || string(second.Message.Body) != "short" {
		t.Fatalf("expiry order %s, %s; want long then short", first.Message.Body, second.Message.Body)
	}
	if elapsed := time.Since(start); elapsed < 190*time.Millisecond {
		t.Fatalf("short expired after %v: it must wait behind the head", elapsed)
	}
}

func TestRequeuedMessageKeepsItsDeadline(t *testing.T) {
	r := newRecorder()
	q := ttlQueue(t, 50*time.Millisecond, r)
	start := time.Now()
	publishN(t, q, "a")
	e, _, _ := q.Get(false)
	q.Requeue([]*Entry{e})
	d := r.waitDead(t, time.Second)
	if elapsed := time.Since(start); string(d.Message.Body) != "a" || elapsed > 50*time.Millisecond+promptly {
		t.Fatalf("dead letter %s after %v", d.Message.Body, elapsed)
	}
}

func TestUnackedMessagesDoNotExpire(t *testing.T) {
	r := newRecorder()
	q := ttlQueue(t, 5*time.Millisecond, r)
	c := newConsumer("c", -1)
	q.AddConsumer(c, ConsumerOptions{})
	publishN(t, q, "a", "b")
	// The next publish after the TTL passed runs the expiry path; nothing
	// is ready, so nothing may be dead-lettered.
	time.Sleep(10 * time.Millisecond) // the TTL must elapse: a duration, not an event
	publishN(t, q, "c")
	if got := r.deadLetters(); len(got) != 0 {
		t.Fatalf("dead letters %q for delivered messages", got)
	}
	if _, unacked, _ := q.Counts(); unacked != 3 {
		t.Fatalf("unacked = %d, want 3", unacked)
	}
}

func TestTTLInPriorityQueueExpiresEachLevelHead(t *testing.T) {
	r := newRecorder()
	cfg := DefaultConfig("q")
	cfg.MaxPriority = 3
	cfg.HasDeadLetterExchange = true
	q := newTestQueue(t, cfg, r)
	q.Publish(msgWith("high-long", amqp.Properties{Priority: 3, Expiration: "100000"}))
	q.Publish(msgWith("low-short", amqp.Properties{Priority: 1, Expiration: "10"}))
	if d := r.waitDead(t, time.Second); string(d.Message.Body) != "low-short" {
		t.Fatalf("dead letter %s, want low-short", d.Message.Body)
	}
}

func TestExpiresFiresAfterIdleAndNotWhileConsumed(t *testing.T) {
	r := newRecorder()
	cfg := DefaultConfig("q")
	cfg.Expires = 40 * time.Millisecond
	q := newTestQueue(t, cfg, r)
	c := newConsumer("c", -1)
	q.AddConsumer(c, ConsumerOptions{})
	select {
	case <-r.expired:
		t.Fatal("expired while it had a consumer")
	case <-time.After(100 * time.Millisecond):
	}
	start := time.Now()
	q.RemoveConsumer(c)
	select {
	case <-r.expired:
	case <-time.After(2 * time.Second):
		t.Fatal("Expired did not fire")
	}
	if elapsed := time.Since(start); elapsed < 40*time.Millisecond {
		t.Fatalf("expired %v after the last consumer left, want >= 40ms", elapsed)
	}
	select {
	case <-r.expired:
		t.Fatal("Expired fired twice")
	case <-time.After(80 * time.Millisecond):
	}
}

func TestTouchAndGetPostponeExpiry(t *testing.T) {
	r := newRecorder()
	cfg := DefaultConfig("q")
	cfg.Expires = 60 * time.Millisecond
	q := newTestQueue(t, cfg, r)
	start := time.Now()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < 6; i++ {
		<-tick.C
		if i%2 == 0 {
			q.Touch()
		} else {
			q.Get(false)
		}
	}
	select {
	case <-r.expired:
		t.Fatalf("expired after %v despite use every 20ms", time.Since(start))
	default:
	}
	select {
	case <-r.expired:
	case <-time.After(2 * time.Second):
		t.Fatal("Expired did not fire once unused")
	}
}

func TestNewHeadWithEarlierDeadlineExpiresPromptly(t *testing.T) {
	tests := []struct {
		name   string
		expose func(q *Queue)
	}{
		{"after get", func(q *Queue) { q.Get(false) }},
		{"after delivery", func(q *Queue) { q.AddConsumer(newConsumer("c", 1), ConsumerOptions{}) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRecorder()
			q := ttlQueue(t, -1, r)
			start := time.Now()
			q.Publish(msgWith("long", amqp.Properties{Expiration: "100000"}))
			q.Publish(msgWith("short", amqp.Properties{Expiration: "20"}))
			tt.expose(q)
			d := r.waitDead(t, 5*time.Second)
			if elapsed := time.Since(start); string(d.Message.Body) != "short" || elapsed > 20*time.Millisecond+promptly {
				t.Fatalf("dead letter %s after %v, want short after about 20ms", d.Message.Body, elapsed)
			}
		})
	}
}

func TestDropHeadExposingEarlierDeadlineExpiresPromptly(t *testing.T) {
	r := newRecorder()
	cfg := DefaultConfig("q")
	cfg.MaxLength = 2
	cfg.HasDeadLetterExchange = true
	q := newTestQueue(t, cfg, r)
	start := time.Now()
	q.Publish(msgWith("long", amqp.Properties{Expiration: "100000"}))
	q.Publish(msgWith("short", amqp.Properties{Expiration: "20"}))
	q.Publish(msg("third")) // drops "long" from the head
	if d := r.waitDead(t, time.Second); string(d.Message.Body) != "long" || d.Reason != ReasonMaxLen {
		t.Fatalf("first dead letter %s:%s, want long:maxlen", d.Message.Body, d.Reason)
	}
	d := r.waitDead(t, 5*time.Second)
	if elapsed := time.Since(start); string(d.Message.Body) != "short" || elapsed > 20*time.Millisecond+promptly {
		t.Fatalf("dead letter %s after %v, want short after about 20ms", d.Message.Body, elapsed)
	}
}

func TestEntryThatExpiredBehindTheHeadIsNotDelivered(t *testing.T) {
	r := newRecorder()
	q := ttlQueue(t, -1, r)
	q.Publish(msgWith("a", amqp.Properties{Expiration: "60000"}))
	q.Publish(msgWith("b", amqp.Properties{Expiration: "1"}))
	q.Publish(msgWith("c", amqp.Properties{Expiration: "60000"}))
	time.Sleep(5 * time.Millisecond) // b's TTL must elapse behind a: a duration, not an event
	c := newConsumer("c", -1)
	q.AddConsumer(c, ConsumerOptions{NoAck: true})
	wantBodies(t, "delivered", c.bodies(), []string{"a", "c"})
	wantBodies(t, "dead-lettered", r.deadLetters(), []string{"b:expired"})
}
