package broker_test

import (
	"sort"
	"testing"

	rmq "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/amqp"
)

func TestExchangeDeclareErrors(t *testing.T) {
	f := newFixture(t)
	setup := f.ch()
	must(t, setup.ExchangeDeclare("x.direct", "direct", false, false, false, false, nil))

	cases := []struct {
		name string
		do   func(ch *rmq.Channel) error
		code uint16
	}{
		{"inequivalent type", func(ch *rmq.Channel) error {
			return ch.ExchangeDeclare("x.direct", "fanout", false, false, false, false, nil)
		}, amqp.PreconditionFailed},
		{"inequivalent durable", func(ch *rmq.Channel) error {
			return ch.ExchangeDeclare("x.direct", "direct", true, false, false, false, nil)
		}, amqp.PreconditionFailed},
		{"passive missing", func(ch *rmq.Channel) error {
			return ch.ExchangeDeclarePassive("nope", "direct", false, false, false, false, nil)
		}, amqp.NotFound},
		{"amq. prefix", func(ch *rmq.Channel) error {
			return ch.ExchangeDeclare("amq.mine", "direct", false, false, false, false, nil)
		}, amqp.AccessRefused},
		{"delete amq.direct", func(ch *rmq.Channel) error {
			return ch.ExchangeDelete("amq.direct", false, false)
		}, amqp.AccessRefused},
		{"delete default", func(ch *rmq.Channel) error {
			return ch.ExchangeDelete("", false, false)
		}, amqp.AccessRefused},
		{"bind queue to default exchange", func(ch *rmq.Channel) error {
			q := declareQueue(t, ch, nil)
			return ch.QueueBind(q, "k", "", false, nil)
		}, amqp.AccessRefused},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ch := f.ch()
			expectCode(t, tc.do(ch), tc.code)
		})
	}
}

func TestPublishToMissingExchangeClosesChannel(t *testing.T) {
	f := newFixture(t)
	ch := f.ch()
	expectChannelClosed(t, ch, amqp.NotFound, func() { publish(t, ch, "nope", "k", text("x")) })
}

func TestUnknownExchangeTypeClosesConnection(t *testing.T) {
	f := newFixture(t)
	ch := f.ch()
	expectCode(t, ch.ExchangeDeclare("x", "no-such-type", false, false, false, false, nil), amqp.CommandInvalid)
	if !f.conn.IsClosed() {
		<-f.conn.NotifyClose(make(chan *rmq.Error, 1))
	}
}

func TestPredeclaredExchangesExist(t *testing.T) {
	f := newFixture(t)
	ch := f.ch()
	for _, x := range []struct{ name, kind string }{
		{"amq.direct", "direct"}, {"amq.fanout", "fanout"}, {"amq.topic", "topic"},
		{"amq.headers", "headers"}, {"amq.match", "headers"},
	} {
		must(t, ch.ExchangeDeclarePassive(x.name, x.kind, true, false, false, false, nil))
		// Redeclaring a predeclared exchange equivalently is allowed.
		must(t, ch.ExchangeDeclare(x.name, x.kind, true, false, false, false, nil))
	}
}

func TestExchangeDeleteIfUnusedAndMissing(t *testing.T) {
	f := newFixture(t)
	ch := f.ch()
	must(t, ch.ExchangeDeclare("used", "fanout", false, false, false, false, nil))
	q := declareQueue(t, ch, nil)
	must(t, ch.QueueBind(q, "", "used", false, nil))
	expectCode(t, ch.ExchangeDelete("used", true, false), amqp.PreconditionFailed)
	ch = f.ch()
	must(t, ch.ExchangeDelete("used", false, false))
	must(t, ch.ExchangeDelete("never-existed", false, false))
	expectCode(t, ch.ExchangeDeclarePassive("used", "fanout", false, false, false, false, nil), amqp.NotFound)
}

func TestInternalExchangeRefusesPublish(t *testing.T) {
	f := newFixture(t)
	ch := f.ch()
	must(t, ch.ExchangeDeclare("internal", "fanout", false, false, true, false, nil))
	expectChannelClosed(t, ch, amqp.AccessRefused, func() { publish(t, ch, "internal", "", text("x")) })
}

func TestAutoDeleteExchangeGoesWithLastBinding(t *testing.T) {
	f := newFixture(t)
	ch := f.ch()
	must(t, ch.ExchangeDeclare("ad", "direct", false, true, false, false, nil))
	q := declareQueue(t, ch, nil)
	must(t, ch.QueueBind(q, "a", "ad", false, nil))
	must(t, ch.QueueBind(q, "b", "ad", false, nil))
	must(t, ch.QueueUnbind(q, "a", "ad", nil))
	must(t, ch.ExchangeDeclarePassive("ad", "direct", false, true, false, false, nil))
	must(t, ch.QueueUnbind(q, "b", "ad", nil))
	expectCode(t, ch.ExchangeDeclarePassive("ad", "direct", false, true, false, false, nil), amqp.NotFound)
}

func TestRoutingByExchangeType(t *testing.T) {
	f := newFixture(t)
	ch := f.ch()
	must(t, ch.ExchangeDeclare("t", "topic", false, false, false, false, nil))
	must(t, ch.ExchangeDeclare("h", "headers", false, false, false, false, nil))
	must(t, ch.ExchangeDeclare("f", "fanout", false, false, false, false, nil))
	star := declareQueue(t, ch, nil)
	hash := declareQueue(t, ch, nil)
	all := declareQueue(t, ch, nil)
	any := declareQueue(t, ch, nil)
	fan1, fan2 := declareQueue(t, ch, nil), declareQueue(t, ch, nil)
	must(t, ch.QueueBind(star, "a.*.c", "t", false, nil))
	must(t, ch.QueueBind(hash, "a.#", "t", false, nil))
	must(t, ch.QueueBind(all, "", "h", false, rmq.Table{"x-match": "all", "k1": "v1", "k2": int32(2)}))
	must(t, ch.QueueBind(any, "", "h", false, rmq.Table{"x-match": "any", "k1": "v1", "k2": int32(2)}))
	must(t, ch.QueueBind(fan1, "ignored", "f", false, nil))
	must(t, ch.QueueBind(fan2, "", "f", false, nil))

	publish(t, ch, "t", "a.b.c", text("abc"))
	publish(t, ch, "t", "a", text("a"))
	publish(t, ch, "t", "a.b.b.c", text("abbc"))
	publish(t, ch, "t", "b.b.c", text("none"))
	publish(t, ch, "h", "", rmq.Publishing{Headers: rmq.Table{"k1": "v1", "k2": int32(2)}, Body: []byte("both")})
	publish(t, ch, "h", "", rmq.Publishing{Headers: rmq.Table{"k1": "v1"}, Body: []byte("one")})
	publish(t, ch, "f", "whatever", text("fan"))

	check := func(q string, want ...string) {
		t.Helper()
		got := drainBodies(t, ch, q)
		if len(got) != len(want) {
			t.Fatalf("queue got %v, want %v", got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("queue got %v, want %v", got, want)
			}
		}
	}
	check(star, "abc")
	check(hash, "abc", "a", "abbc")
	check(all, "both")
	check(any, "both", "one")
	check(fan1, "fan")
	check(fan2, "fan")
}

func TestExchangeToExchangeCycleDeliversOnce(t *testing.T) {
	f := newFixture(t)
	ch := f.ch()
	must(t, ch.ExchangeDeclare("e1", "fanout", false, false, false, false, nil))
	must(t, ch.ExchangeDeclare("e2", "fanout", false, false, false, false, nil))
	must(t, ch.ExchangeBind("e2", "", "e1", false, nil))
	must(t, ch.ExchangeBind("e1", "", "e2", false, nil))
	q := declareQueue(t, ch, nil)
	must(t, ch.QueueBind(q, "", "e1", false, nil))
	must(t, ch.QueueBind(q, "", "e2", false, nil))
	publish(t, ch, "e1", "", text("once"))
	roundTrip(t, ch)
	if got := drainBodies(t, ch, q); len(got) != 1 {
		t.Fatalf("got %v, want one copy", got)
	}
	must(t, ch.ExchangeUnbind("e2", "", "e1", false, nil))
}

func TestAlternateExchangeTakesUnroutable(t *testing.T) {
	f := newFixture(t)
	ch := f.ch()
	must(t, ch.ExchangeDeclare("ae", "fanout", false, false, false, false, nil))
	must(t, ch.ExchangeDeclare("main", "direct", false, false, false, false, rmq.Table{"alternate-exchange": "ae"}))
	routed, unrouted := declareQueue(t, ch, nil), declareQueue(t, ch, nil)
	must(t, ch.QueueBind(routed, "k", "main", false, nil))
	must(t, ch.QueueBind(unrouted, "", "ae", false, nil))
	publish(t, ch, "main", "k", text("routed"))
	publish(t, ch, "main", "other", text("unrouted"))
	roundTrip(t, ch)
	if got := drainBodies(t, ch, routed); len(got) != 1 || got[0] != "routed" {
		t.Fatalf("routed queue: %v", got)
	}
	if got := drainBodies(t, ch, unrouted); len(got) != 1 || got[0] != "unrouted" {
		t.Fatalf("alternate queue: %v", got)
	}
}

func TestCCAndBCCRouteAndBCCIsStripped(t *testing.T) {
	f := newFixture(t)
	ch := f.ch()
	q1, q2, q3 := declareQueue(t, ch, nil), declareQueue(t, ch, nil), declareQueue(t, ch, nil)
	publish(t, ch, "", q1, rmq.Publishing{
		Headers: rmq.Table{"CC": []interface{}{q2}, "BCC": []interface{}{q3}},
		Body:    []byte("m"),
	})
	roundTrip(t, ch)
	var seen []string
	for _, q := range []string{q1, q2, q3} {
		d, ok, err := ch.Get(q, true)
		must(t, err)
		if !ok {
			t.Fatalf("queue %s got nothing", q)
		}
		if _, has := d.Headers["BCC"]; has {
			t.Errorf("queue %s: BCC header was delivered", q)
		}
		if _, has := d.Headers["CC"]; !has {
			t.Errorf("queue %s: CC header missing", q)
		}
		seen = append(seen, q)
	}
	sort.Strings(seen)
}
