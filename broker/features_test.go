package broker_test

import (
	"os"
	"strings"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"
)

// Queue features end to end over AMQP, asserting RabbitMQ's outcomes.

// compareURLEnv names an environment variable: when set to an AMQP URL (a
// real RabbitMQ, e.g. amqp://guest:guest@127.0.0.1:5672/) the tests of this
// file run against that broker instead, to check that what they expect is
// what RabbitMQ does.
const compareURLEnv = "WARREN_COMPARE_AMQP_URL"

// featureFixture is a fixture whose declared queues are deleted at the end
// of the test when it runs against an external broker.
type featureFixture struct {
	*fixture
	external bool
}

// newFeatureFixture starts a broker, or connects to the one named by
// compareURLEnv (then f.b is nil).
func newFeatureFixture(t *testing.T) *featureFixture {
	t.Helper()
	url := os.Getenv(compareURLEnv)
	if url == "" {
		return &featureFixture{fixture: newFixture(t)}
	}
	return &featureFixture{fixture: &fixture{t: t, conn: dial(t, url)}, external: true}
}

// declare declares a transient named queue.
func (f *featureFixture) declare(ch *rmq.Channel, name string, args rmq.Table) {
	f.t.Helper()
	if _, err := ch.QueueDeclare(name, false, false, false, false, args); err != nil {
		f.t.Fatalf("declare %s: %v", name, err)
	}
	if f.external {
		f.t.Cleanup(func() {
			if _, err := f.ch().QueueDelete(name, false, false, false); err != nil {
				f.t.Errorf("delete %s: %v", name, err)
			}
		})
	}
}

// queueGone reports whether no queue is called name (a passive declare on a
// channel of its own gets 404).
func (f *featureFixture) queueGone(name string) bool {
	f.t.Helper()
	_, err := f.ch().QueueDeclarePassive(name, false, false, false, false, nil)
	if err == nil {
		return false
	}
	expectCode(f.t, err, 404)
	return true
}

// eventually polls cond until it holds, failing after 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10 s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func consume(t *testing.T, ch *rmq.Channel, q string, autoAck bool) <-chan rmq.Delivery {
	t.Helper()
	ds, err := ch.Consume(q, "", autoAck, false, false, false, nil)
	if err != nil {
		t.Fatalf("consume %s: %v", q, err)
	}
	return ds
}

// deaths returns a delivery's x-death entries.
func deaths(t *testing.T, d rmq.Delivery) []rmq.Table {
	t.Helper()
	raw, ok := d.Headers["x-death"].([]any)
	if !ok {
		t.Fatalf("no x-death header in %v", d.Headers)
	}
	out := make([]rmq.Table, len(raw))
	for i, x := range raw {
		out[i] = x.(rmq.Table)
	}
	return out
}

func TestPerMessageTTLLowerWinsAndInvalidExpiration(t *testing.T) {
	f := newFeatureFixture(t)
	ch := f.ch()
	f.declare(ch, "dead", nil)
	f.declare(ch, "ttl", rmq.Table{"x-message-ttl": int32(60000), "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dead"})
	ds := consume(t, ch, "dead", true)
	publish(t, ch, "", "ttl", rmq.Publishing{Body: []byte("short"), Expiration: "0"})
	d := receive(t, ds)
	x := deaths(t, d)
	if string(d.Body) != "short" || x[0]["reason"] != "expired" || x[0]["original-expiration"] != "0" || d.Expiration != "" {
		t.Fatalf("dead-lettered %q, x-death %v, expiration %q", d.Body, x, d.Expiration)
	}
	if n, _ := ch.QueueDeclarePassive("ttl", false, false, false, false, nil); n.Messages != 0 {
		t.Fatalf("ttl queue holds %d", n.Messages)
	}
	expectChannelClosed(t, ch, 406, func() { publish(t, ch, "", "ttl", rmq.Publishing{Body: []byte("x"), Expiration: "soon"}) })
}

func TestQueueTTLExpiresPromptlyToDLX(t *testing.T) {
	f := newFeatureFixture(t)
	ch := f.ch()
	f.declare(ch, "dead", nil)
	f.declare(ch, "delay", rmq.Table{"x-message-ttl": int32(50), "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dead"})
	ds := consume(t, ch, "dead", true)
	sent := time.Now()
	publish(t, ch, "", "delay", text("later"))
	d := receive(t, ds) // nobody touches "delay": its timer expires the message
	late := time.Since(sent) - 50*time.Millisecond
	t.Logf("dead-lettered %v after the deadline", late)
	if late < 0 || late > 100*time.Millisecond {
		t.Errorf("the expired message arrived %v after its deadline, want within tens of milliseconds after it", late)
	}
	x := deaths(t, d)
	if x[0]["queue"] != "delay" || x[0]["reason"] != "expired" || x[0]["count"] != int64(1) || x[0]["exchange"] != "" {
		t.Fatalf("x-death = %v", x)
	}
	if keys, _ := x[0]["routing-keys"].([]any); len(keys) != 1 || keys[0] != "delay" {
		t.Fatalf("routing-keys = %v", x[0]["routing-keys"])
	}
	if _, ok := x[0]["time"].(time.Time); !ok {
		t.Fatalf("time = %T", x[0]["time"])
	}
	if d.Headers["x-first-death-queue"] != "delay" || d.Headers["x-first-death-reason"] != "expired" || d.Headers["x-first-death-exchange"] != "" {
		t.Fatalf("x-first-death-* = %v", d.Headers)
	}
}

func TestQueueExpiresWhenUnused(t *testing.T) {
	f := newFeatureFixture(t)
	ch := f.ch()
	f.declare(ch, "short-lived", rmq.Table{"x-expires": int32(50)})
	if f.external {
		// A passive declare counts as use and restarts the expiry timer,
		// so RabbitMQ is only asked after more than x-expires of quiet.
		eventually(t, "the unused queue is deleted", func() bool {
			time.Sleep(200 * time.Millisecond)
			return f.queueGone("short-lived")
		})
		return
	}
	eventually(t, "the unused queue is deleted", func() bool { return f.b.Server.Vhost("/").Queue("short-lived") == nil })
	if !f.queueGone("short-lived") {
		t.Fatal("passive declare finds the expired queue")
	}
}

func TestQueueWithAConsumerDoesNotExpire(t *testing.T) {
	f := newFixture(t)
	ch := f.ch()
	_, err := ch.QueueDeclare("watched", false, false, false, false, rmq.Table{"x-expires": int32(50)})
	must(t, err)
	_, err = ch.Consume("watched", "w", false, false, false, false, nil)
	must(t, err)
	time.Sleep(200 * time.Millisecond) // asserting that nothing happens: four x-expires pass
	if f.b.Server.Vhost("/").Queue("watched") == nil {
		t.Fatal("a queue with a consumer expired")
	}
	must(t, ch.Cancel("w", false))
	eventually(t, "the queue to expire once unused", func() bool { return f.b.Server.Vhost("/").Queue("watched") == nil })
}

func TestDeadLetterOnRejectAndNack(t *testing.T) {
	f := newFeatureFixture(t)
	ch := f.ch()
	must(t, ch.ExchangeDeclare("dlx", "direct", false, false, false, false, nil))
	f.declare(ch, "rejected", nil)
	must(t, ch.QueueBind("rejected", "failed", "dlx", false, nil))
	f.declare(ch, "work", rmq.Table{"x-dead-letter-exchange": "dlx", "x-dead-letter-routing-key": "failed"})
	dead := consume(t, openChannel(t, f.conn), "rejected", true)
	work := consume(t, ch, "work", false)

	publish(t, ch, "", "work", text("one"))
	must(t, receive(t, work).Reject(false))
	d := receive(t, dead)
	x := deaths(t, d)
	if string(d.Body) != "one" || len(x) != 1 || x[0]["reason"] != "rejected" || x[0]["queue"] != "work" || d.RoutingKey != "failed" || d.Exchange != "dlx" {
		t.Fatalf("reject: %q via %s/%s x-death %v", d.Body, d.Exchange, d.RoutingKey, x)
	}
	publish(t, ch, "", "work", text("two"))
	must(t, receive(t, work).Nack(false, false))
	if d := receive(t, dead); string(d.Body) != "two" || deaths(t, d)[0]["reason"] != "rejected" {
		t.Fatalf("nack: %q %v", d.Body, d.Headers)
	}
	// requeue=true does not dead-letter.
	publish(t, ch, "", "work", text("three"))
	must(t, receive(t, work).Nack(false, true))
	if d := receive(t, work); string(d.Body) != "three" || !d.Redelivered {
		t.Fatalf("requeued delivery: %q redelivered=%v", d.Body, d.Redelivered)
	}
}

func TestDeadLetterOnMaxLengthDropHead(t *testing.T) {
	f := newFeatureFixture(t)
	ch := f.ch()
	f.declare(ch, "overflowed", nil)
	f.declare(ch, "bounded", rmq.Table{"x-max-length": int32(2), "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "overflowed"})
	publishN(t, ch, "bounded", "a", "b", "c")
	if got := drainBodies(t, ch, "bounded"); strings.Join(got, "") != "bc" {
		t.Fatalf("bounded keeps %v", got)
	}
	d, ok, err := ch.Get("overflowed", true)
	if err != nil || !ok || string(d.Body) != "a" || deaths(t, d)[0]["reason"] != "maxlen" {
		t.Fatalf("dropped head: %q %v %v", d.Body, ok, err)
	}
	f.declare(ch, "bytes", rmq.Table{"x-max-length-bytes": int32(5)})
	publishN(t, ch, "bytes", "aaa", "bbb", "cc")
	if got := drainBodies(t, ch, "bytes"); strings.Join(got, ",") != "bbb,cc" {
		t.Fatalf("max-length-bytes keeps %v", got)
	}
}

func TestRejectPublishNacksAndRejectPublishDLX(t *testing.T) {
	f := newFeatureFixture(t)
	ch := f.ch()
	f.declare(ch, "dead", nil)
	f.declare(ch, "full", rmq.Table{"x-max-length": int32(1), "x-overflow": "reject-publish"})
	f.declare(ch, "full-dlx", rmq.Table{"x-max-length": int32(1), "x-overflow": "reject-publish-dlx", "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dead"})
	must(t, ch.Confirm(false))
	confirms := ch.NotifyPublish(make(chan rmq.Confirmation, 4))
	for _, q := range []string{"full", "full", "full-dlx", "full-dlx"} {
		publish(t, ch, "", q, text(q))
	}
	acks := []bool{(<-confirms).Ack, (<-confirms).Ack, (<-confirms).Ack, (<-confirms).Ack}
	if !acks[0] || acks[1] || !acks[2] || acks[3] {
		t.Fatalf("confirms = %v, want ack, nack, ack, nack", acks)
	}
	if got := drainBodies(t, ch, "full"); len(got) != 1 {
		t.Fatalf("full holds %v", got)
	}
	d, ok, err := ch.Get("dead", true)
	if err != nil || !ok || string(d.Body) != "full-dlx" || deaths(t, d)[0]["reason"] != "maxlen" {
		t.Fatalf("reject-publish-dlx dead-lettered %q %v %v", d.Body, ok, err)
	}
	if _, ok, _ := ch.Get("dead", true); ok {
		t.Fatal("reject-publish dead-lettered too")
	}
}

// TestRetryWithDelay runs the usual retry pattern: the work queue
// dead-letters rejected messages into a delay queue whose TTL dead-letters
// them back. After three rounds x-death counts 3 for each queue.
func TestRetryWithDelay(t *testing.T) {
	f := newFeatureFixture(t)
	ch := f.ch()
	f.declare(ch, "work", rmq.Table{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "retry"})
	f.declare(ch, "retry", rmq.Table{"x-message-ttl": int32(20), "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "work"})
	work := consume(t, ch, "work", false)
	publish(t, ch, "", "work", text("job"))
	var d rmq.Delivery
	for round := 0; round < 3; round++ {
		d = receive(t, work)
		must(t, d.Reject(false))
	}
	d = receive(t, work)
	x := deaths(t, d)
	if len(x) != 2 {
		t.Fatalf("x-death has %d entries: %v", len(x), x)
	}
	// Newest first: the expiry from "retry" brought it back last.
	if x[0]["queue"] != "retry" || x[0]["reason"] != "expired" || x[0]["count"] != int64(3) {
		t.Fatalf("x-death[0] = %v", x[0])
	}
	if x[1]["queue"] != "work" || x[1]["reason"] != "rejected" || x[1]["count"] != int64(3) {
		t.Fatalf("x-death[1] = %v", x[1])
	}
	if d.Headers["x-first-death-queue"] != "work" || d.Headers["x-first-death-reason"] != "rejected" {
		t.Fatalf("x-first-death = %v", d.Headers)
	}
	must(t, d.Ack(false))
}

func TestDeadLetterCycleWithoutRejectionIsDropped(t *testing.T) {
	f := newFeatureFixture(t)
	ch := f.ch()
	// Each queue expires into the other: the second expiry closes a cycle
	// with no rejection, and RabbitMQ drops the message.
	f.declare(ch, "ping", rmq.Table{"x-message-ttl": int32(0), "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "pong"})
	f.declare(ch, "pong", rmq.Table{"x-message-ttl": int32(0), "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "ping"})
	f.declare(ch, "tap", nil)
	must(t, ch.ExchangeDeclare("in", "fanout", false, false, false, false, nil))
	must(t, ch.QueueBind("ping", "", "in", false, nil))
	must(t, ch.QueueBind("tap", "", "in", false, nil))
	publish(t, ch, "in", "", text("loop"))
	roundTrip(t, ch)
	if _, ok := getBody(t, ch, "tap"); !ok {
		t.Fatal("the tap queue got nothing")
	}
	// Both queues end empty: the cycle was cut, not spinning forever.
	deadline := time.Now().Add(10 * time.Second)
	for {
		p, _ := ch.QueueDeclarePassive("ping", false, false, false, false, nil)
		q, _ := ch.QueueDeclarePassive("pong", false, false, false, false, nil)
		if p.Messages == 0 && q.Messages == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ping %d, pong %d messages", p.Messages, q.Messages)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestTTLWithMaxLength(t *testing.T) {
	f := newFeatureFixture(t)
	ch := f.ch()
	f.declare(ch, "dead", nil)
	f.declare(ch, "both", rmq.Table{"x-max-length": int32(2), "x-message-ttl": int32(100), "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dead"})
	publishN(t, ch, "both", "1", "2", "3")
	ds := consume(t, ch, "dead", true)
	reasons := map[string]string{}
	for range 3 {
		d := receive(t, ds)
		reasons[string(d.Body)] = deaths(t, d)[0]["reason"].(string)
	}
	if reasons["1"] != "maxlen" || reasons["2"] != "expired" || reasons["3"] != "expired" {
		t.Fatalf("reasons = %v, want 1 maxlen, 2 and 3 expired", reasons)
	}
}

func TestPriorities(t *testing.T) {
	f := newFeatureFixture(t)
	ch := f.ch()
	f.declare(ch, "prio", rmq.Table{"x-max-priority": int32(5)})
	for _, m := range []struct {
		body string
		prio uint8
	}{{"low-1", 1}, {"high-1", 5}, {"none", 0}, {"over", 9}, {"high-2", 5}, {"low-2", 1}} {
		publish(t, ch, "", "prio", rmq.Publishing{Body: []byte(m.body), Priority: m.prio})
	}
	roundTrip(t, ch)
	// 9 is capped at 5 and keeps its FIFO place among the 5s.
	want := "high-1,over,high-2,low-1,low-2,none"
	if got := strings.Join(drainBodies(t, ch, "prio"), ","); got != want {
		t.Fatalf("order = %s, want %s", got, want)
	}
	f.declare(ch, "plain", nil)
	publish(t, ch, "", "plain", rmq.Publishing{Body: []byte("a"), Priority: 1})
	publish(t, ch, "", "plain", rmq.Publishing{Body: []byte("b"), Priority: 9})
	roundTrip(t, ch)
	if got := strings.Join(drainBodies(t, ch, "plain"), ","); got != "a,b" {
		t.Fatalf("a queue without x-max-priority reordered: %s", got)
	}
}

func TestPriorityWithPrefetchOne(t *testing.T) {
	f := newFeatureFixture(t)
	ch := f.ch()
	f.declare(ch, "prio", rmq.Table{"x-max-priority": int32(10)})
	must(t, ch.Qos(1, 0, false))
	ds := consume(t, ch, "prio", false)
	publish(t, ch, "", "prio", rmq.Publishing{Body: []byte("first"), Priority: 1})
	first := receive(t, ds) // holds the only credit
	for i, p := range []uint8{2, 8, 5} {
		publish(t, ch, "", "prio", rmq.Publishing{Body: []byte{'0' + byte(i)}, Priority: p})
	}
	roundTrip(t, openChannel(t, f.conn))
	if string(first.Body) != "first" {
		t.Fatalf("first = %q", first.Body)
	}
	var got []string
	must(t, first.Ack(false))
	for range 3 {
		d := receive(t, ds)
		got = append(got, string(d.Body))
		must(t, d.Ack(false))
	}
	if strings.Join(got, "") != "120" {
		t.Fatalf("with prefetch 1 the order is %v, want priorities 8, 5, 2", got)
	}
}

func TestConsumerPriority(t *testing.T) {
	f := newFeatureFixture(t)
	ch := f.ch()
	f.declare(ch, "shared", nil)
	low, high := openChannel(t, f.conn), openChannel(t, f.conn)
	must(t, high.Qos(2, 0, false))
	lowDs, err := low.Consume("shared", "low", false, false, false, false, rmq.Table{"x-priority": int32(1)})
	must(t, err)
	highDs, err := high.Consume("shared", "high", false, false, false, false, rmq.Table{"x-priority": int32(10)})
	must(t, err)
	publishN(t, ch, "shared", "1", "2", "3")
	h1, h2 := receive(t, highDs), receive(t, highDs)
	l := receive(t, lowDs) // the high one is full: the low one gets the rest
	if string(h1.Body) != "1" || string(h2.Body) != "2" || string(l.Body) != "3" {
		t.Fatalf("high got %q %q, low got %q", h1.Body, h2.Body, l.Body)
	}
}

func TestSingleActiveConsumerFailover(t *testing.T) {
	f := newFeatureFixture(t)
	ch := f.ch()
	f.declare(ch, "sac", rmq.Table{"x-single-active-consumer": true})
	first, second := openChannel(t, f.conn), openChannel(t, f.conn)
	ds1 := consume(t, first, "sac", false)
	ds2 := consume(t, second, "sac", false)
	publishN(t, ch, "sac", "a", "b")
	a, b := receive(t, ds1), receive(t, ds1)
	if string(a.Body) != "a" || string(b.Body) != "b" {
		t.Fatalf("active consumer got %q %q", a.Body, b.Body)
	}
	select {
	case d := <-ds2:
		t.Fatalf("the standby consumer got %q", d.Body)
	case <-time.After(50 * time.Millisecond): // asserting that nothing arrives
	}
	must(t, a.Ack(false))
	must(t, first.Close()) // b was unacked: it goes to the new active consumer
	d := receive(t, ds2)
	if string(d.Body) != "b" || !d.Redelivered {
		t.Fatalf("after failover: %q redelivered=%v", d.Body, d.Redelivered)
	}
	publishN(t, ch, "sac", "c")
	if d := receive(t, ds2); string(d.Body) != "c" {
		t.Fatalf("new active consumer got %q", d.Body)
	}
}

// TestQueueArgumentValidation checks each refused argument's reply text,
// taken verbatim from RabbitMQ 3.10.8 (the queue is named 'v').
func TestQueueArgumentValidation(t *testing.T) {
	f := newFeatureFixture(t)
	const prefix = "PRECONDITION_FAILED - invalid arg "
	for _, c := range []struct {
		args rmq.Table
		text string
	}{
		{rmq.Table{"x-message-ttl": int32(-1)}, prefix + "'x-message-ttl' for queue 'v' in vhost '/': {value_negative,-1}"},
		{rmq.Table{"x-message-ttl": "10"}, prefix + "'x-message-ttl' for queue 'v' in vhost '/': \"expected integer, got longstr\""},
		{rmq.Table{"x-expires": int32(0)}, prefix + "'x-expires' for queue 'v' in vhost '/': {value_zero,0}"},
		{rmq.Table{"x-expires": int32(-5)}, prefix + "'x-expires' for queue 'v' in vhost '/': {value_negative,-5}"},
		{rmq.Table{"x-expires": "x"}, prefix + "'x-expires' for queue 'v' in vhost '/': \"expected integer, got longstr\""},
		{rmq.Table{"x-max-length": int32(-2)}, prefix + "'x-max-length' for queue 'v' in vhost '/': {value_negative,-2}"},
		{rmq.Table{"x-max-length": "3"}, prefix + "'x-max-length' for queue 'v' in vhost '/': \"expected integer, got longstr\""},
		{rmq.Table{"x-max-length-bytes": int32(-2)}, prefix + "'x-max-length-bytes' for queue 'v' in vhost '/': {value_negative,-2}"},
		{rmq.Table{"x-max-length-bytes": true}, prefix + "'x-max-length-bytes' for queue 'v' in vhost '/': \"expected integer, got bool\""},
		{rmq.Table{"x-overflow": "sideways"}, prefix + "'x-overflow' for queue 'v' in vhost '/': invalid_overflow"},
		{rmq.Table{"x-overflow": int32(1)}, prefix + "'x-overflow' for queue 'v' in vhost '/': {unacceptable_type,signedint}"},
		{rmq.Table{"x-max-priority": int32(-1)}, prefix + "'x-max-priority' for queue 'v' in vhost '/': {value_negative,-1}"},
		{rmq.Table{"x-max-priority": int32(256)}, prefix + "'x-max-priority' for queue 'v' in vhost '/': {max_value_exceeded,256}"},
		{rmq.Table{"x-max-priority": "5"}, prefix + "'x-max-priority' for queue 'v' in vhost '/': \"expected integer, got longstr\""},
		{rmq.Table{"x-dead-letter-exchange": int32(1)}, "PRECONDITION_FAILED - invalid type 'signedint' for arg 'x-dead-letter-exchange' in queue 'v' in vhost '/'"},
		{rmq.Table{"x-dead-letter-routing-key": "k"}, prefix + "'x-dead-letter-routing-key' for queue 'v' in vhost '/': routing_key_but_no_dlx_defined"},
		{rmq.Table{"x-single-active-consumer": "yes"}, prefix + "'x-single-active-consumer' for queue 'v' in vhost '/': {unacceptable_type,longstr}"},
		{rmq.Table{"x-single-active-consumer": int32(1)}, prefix + "'x-single-active-consumer' for queue 'v' in vhost '/': {unacceptable_type,signedint}"},
		{rmq.Table{"x-queue-type": "weird"}, prefix + "'x-queue-type' for queue 'v' in vhost '/': \"unsupported queue type 'weird'\""},
	} {
		f.expectDeclareRefused(c.args, c.text)
	}
	if !f.external {
		// RabbitMQ has quorum and stream queues (durable only); Warren
		// refuses them plainly.
		for _, kind := range []string{"quorum", "stream"} {
			f.expectDeclareRefused(rmq.Table{"x-queue-type": kind}, prefix+"'x-queue-type' for queue 'v' in vhost '/': \"unsupported queue type '"+kind+"'\"")
		}
	}
	ch := openChannel(t, f.conn)
	f.declare(ch, "classic", rmq.Table{"x-queue-type": "classic", "x-custom": "ignored", "x-message-ttl": int64(5000000000)})
	if !f.queueGone("v") {
		t.Fatal("a refused declare created the queue")
	}
}

// expectDeclareRefused declares the queue 'v' with args and expects 406 with text.
func (f *featureFixture) expectDeclareRefused(args rmq.Table, text string) {
	f.t.Helper()
	_, err := f.ch().QueueDeclare("v", false, false, false, false, args)
	if e := expectCode(f.t, err, 406); e.Reason != text {
		f.t.Errorf("args %v:\n got %s\nwant %s", args, e.Reason, text)
	}
}

// TestInvalidExpirationClosesChannel checks basic.publish's expiration
// property texts, verbatim from RabbitMQ 3.10.8.
func TestInvalidExpirationClosesChannel(t *testing.T) {
	f := newFeatureFixture(t)
	for _, c := range []struct{ expiration, text string }{
		{"soon", "PRECONDITION_FAILED - invalid expiration 'soon': no_integer"},
		{"-1", "PRECONDITION_FAILED - invalid expiration '-1': {value_negative,-1}"},
		{"1.5", "PRECONDITION_FAILED - invalid expiration '1.5': {leftover_string,\".5\"}"},
		{" 10", "PRECONDITION_FAILED - invalid expiration ' 10': no_integer"},
		{"99999999999999", "PRECONDITION_FAILED - invalid expiration '99999999999999': {value_too_large,99999999999999}"},
	} {
		ch := openChannel(t, f.conn)
		closed := ch.NotifyClose(make(chan *rmq.Error, 1))
		publish(t, ch, "", "nowhere", rmq.Publishing{Body: []byte("x"), Expiration: c.expiration})
		select {
		case e := <-closed:
			if e == nil || e.Code != 406 || e.Reason != c.text {
				t.Errorf("expiration %q: closed with %v, want 406 %s", c.expiration, e, c.text)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("expiration %q: channel not closed", c.expiration)
		}
	}
}
