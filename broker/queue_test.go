package broker_test

import (
	"strings"
	"testing"

	rmq "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/amqp"
)

func TestQueueDeclareServerNamedAndCounts(t *testing.T) {
	f := newFixture(t)
	ch := f.ch()
	q, err := ch.QueueDeclare("", false, false, false, false, nil)
	must(t, err)
	if !strings.HasPrefix(q.Name, "amq.gen-") {
		t.Fatalf("server-named queue %q lacks amq.gen- prefix", q.Name)
	}
	publish(t, ch, "", q.Name, text("1"))
	publish(t, ch, "", q.Name, text("2"))
	roundTrip(t, ch)
	// As RabbitMQ: a server-named queue is checked passively; declaring
	// it by name is refused for its reserved prefix.
	_, err = openChannel(t, f.conn).QueueDeclare(q.Name, false, false, false, false, nil)
	expectCode(t, err, amqp.AccessRefused)
	q2, err := ch.QueueDeclarePassive(q.Name, false, false, false, false, nil)
	must(t, err)
	if q2.Messages != 2 || q2.Consumers != 0 {
		t.Fatalf("declare-ok counts = %d messages, %d consumers; want 2, 0", q2.Messages, q2.Consumers)
	}
	if _, err := ch.Consume(q.Name, "", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	q3, err := ch.QueueDeclarePassive(q.Name, false, false, false, false, nil)
	must(t, err)
	if q3.Consumers != 1 {
		t.Fatalf("consumers = %d, want 1", q3.Consumers)
	}
}

func TestQueueDeclareErrors(t *testing.T) {
	f := newFixture(t)
	setup := f.ch()
	_, err := setup.QueueDeclare("durable-q", true, false, false, false, nil)
	must(t, err)
	t.Cleanup(func() { f.ch().QueueDelete("durable-q", false, false, false) })
	cases := []struct {
		name string
		do   func(ch *rmq.Channel) error
		code uint16
	}{
		{"passive missing", func(ch *rmq.Channel) error {
			_, err := ch.QueueDeclarePassive("missing", false, false, false, false, nil)
			return err
		}, amqp.NotFound},
		{"amq. prefix", func(ch *rmq.Channel) error {
			_, err := ch.QueueDeclare("amq.mine", false, false, false, false, nil)
			return err
		}, amqp.AccessRefused},
		{"inequivalent durable", func(ch *rmq.Channel) error {
			_, err := ch.QueueDeclare("durable-q", false, false, false, false, nil)
			return err
		}, amqp.PreconditionFailed},
		{"inequivalent argument", func(ch *rmq.Channel) error {
			_, err := ch.QueueDeclare("durable-q", true, false, false, false, rmq.Table{"x-max-length": int32(5)})
			return err
		}, amqp.PreconditionFailed},
		{"bind to missing exchange", func(ch *rmq.Channel) error {
			return ch.QueueBind("durable-q", "k", "missing-x", false, nil)
		}, amqp.NotFound},
		{"bind missing queue", func(ch *rmq.Channel) error {
			return ch.QueueBind("missing-q", "k", "amq.direct", false, nil)
		}, amqp.NotFound},
		{"unbind from the default exchange", func(ch *rmq.Channel) error {
			return ch.QueueUnbind("durable-q", "durable-q", "", nil)
		}, amqp.AccessRefused},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expectCode(t, tc.do(f.ch()), tc.code)
		})
	}
	// Unbinding a binding that does not exist, between objects that do, is fine.
	must(t, f.ch().QueueUnbind("durable-q", "never-bound", "amq.direct", nil))
}

func TestExclusiveQueueIsLockedAndGoesWithItsConnection(t *testing.T) {
	f := newFixture(t)
	owner := f.ch()
	_, err := owner.QueueDeclare("excl", false, false, true, false, nil)
	must(t, err)

	other := dial(t, f.b.URL)
	for name, do := range map[string]func(ch *rmq.Channel) error{
		"declare": func(ch *rmq.Channel) error {
			_, err := ch.QueueDeclare("excl", false, false, true, false, nil)
			return err
		},
		"consume": func(ch *rmq.Channel) error {
			_, err := ch.Consume("excl", "", false, false, false, false, nil)
			return err
		},
		"delete": func(ch *rmq.Channel) error { _, err := ch.QueueDelete("excl", false, false, false); return err },
		"purge":  func(ch *rmq.Channel) error { _, err := ch.QueuePurge("excl", false); return err },
	} {
		t.Run(name, func(t *testing.T) {
			expectCode(t, do(openChannel(t, other)), amqp.ResourceLocked)
		})
	}
	must(t, f.conn.Close())
	ch := openChannel(t, other)
	_, err = ch.QueueDeclarePassive("excl", false, false, true, false, nil)
	expectCode(t, err, amqp.NotFound)
}

func TestAutoDeleteQueue(t *testing.T) {
	f := newFixture(t)
	ch := f.ch()
	_, err := ch.QueueDeclare("ad-never", false, true, false, false, nil)
	must(t, err)
	_, err = ch.QueueDeclare("ad-used", false, true, false, false, nil)
	must(t, err)
	_, err = ch.Consume("ad-used", "c1", false, false, false, false, nil)
	must(t, err)
	_, err = ch.Consume("ad-used", "c2", false, false, false, false, nil)
	must(t, err)
	must(t, ch.Cancel("c1", false))
	_, err = ch.QueueDeclarePassive("ad-used", false, true, false, false, nil)
	must(t, err)
	must(t, ch.Cancel("c2", false))
	_, err = ch.QueueDeclarePassive("ad-used", false, true, false, false, nil)
	expectCode(t, err, amqp.NotFound)
	ch = f.ch()
	_, err = ch.QueueDeclarePassive("ad-never", false, true, false, false, nil)
	must(t, err)
}

func TestPurgeAndDelete(t *testing.T) {
	f := newFixture(t)
	ch := f.ch()
	q := declareQueue(t, ch, nil)
	for i := 0; i < 3; i++ {
		publish(t, ch, "", q, text("m"))
	}
	roundTrip(t, ch)
	n, err := ch.QueuePurge(q, false)
	must(t, err)
	if n != 3 {
		t.Fatalf("purged %d, want 3", n)
	}
	publish(t, ch, "", q, text("m"))
	roundTrip(t, ch)
	_, err = ch.QueueDelete(q, false, true, false)
	expectCode(t, err, amqp.PreconditionFailed)

	ch = f.ch()
	_, err = ch.Consume(q, "", false, false, false, false, nil)
	must(t, err)
	_, err = f.ch().QueueDelete(q, true, false, false)
	expectCode(t, err, amqp.PreconditionFailed)

	n, err = f.ch().QueueDelete(q, false, false, false)
	must(t, err)
	if n != 0 && n != 1 {
		t.Fatalf("delete-ok message count %d", n)
	}
	n, err = f.ch().QueueDelete("never-existed", false, false, false)
	must(t, err)
	if n != 0 {
		t.Fatalf("deleting a missing queue reported %d messages", n)
	}
}

func TestEmptyQueueNameMeansLastDeclared(t *testing.T) {
	f := newFixture(t)
	ch := f.ch()
	q := declareQueue(t, ch, nil)
	must(t, ch.QueueBind("", "k", "amq.direct", false, nil))
	publish(t, ch, "amq.direct", "k", text("via last"))
	roundTrip(t, ch)
	if got := drainBodies(t, ch, q); len(got) != 1 {
		t.Fatalf("got %v", got)
	}
}
