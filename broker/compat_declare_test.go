package broker_test

import (
	"testing"

	rmq "github.com/rabbitmq/amqp091-go"
)

// Declarations and bindings as RabbitMQ runs them (issue 15, items 8-13).
// Each test runs against Warren and RabbitMQ.

// TestCRAndLFAreStrippedFromDeclaredNames: queue.declare, exchange.declare,
// the binds and unbinds and the deletes drop every CR and LF from the
// queue and exchange names they are given (RabbitMQ's strip_cr_lf);
// basic.publish, basic.get, basic.consume and queue.purge take names as
// they are.
func TestCRAndLFAreStrippedFromDeclaredNames(t *testing.T) {
	onBothBrokers(t, func(t *testing.T, b *compatBroker) {
		ch := b.channel()
		q, x, x2 := b.unique("crlf-q"), b.unique("crlf-x"), b.unique("crlf-x2")
		b.cleanupQueue(q)
		b.cleanupExchange(x)
		b.cleanupExchange(x2)
		st, err := ch.QueueDeclare(q+"\r\n", false, false, false, false, nil)
		must(t, err)
		if st.Name != q {
			t.Fatalf("declare-ok names %q, want %q", st.Name, q)
		}
		_, err = ch.QueueDeclarePassive("\n"+q[:3]+"\r"+q[3:], false, false, false, false, nil)
		must(t, err)
		must(t, ch.ExchangeDeclare(x+"\n", "fanout", false, false, false, false, nil))
		must(t, ch.ExchangeDeclarePassive(x, "fanout", false, false, false, false, nil))
		must(t, ch.ExchangeDeclare(x2, "fanout", false, false, false, false, nil))
		must(t, ch.QueueBind(q+"\n", "", x+"\r", false, nil))
		must(t, ch.ExchangeBind(x2+"\n", "", x+"\n", false, nil))
		must(t, ch.ExchangeUnbind(x2+"\n", "", x+"\n", false, nil))
		publish(t, ch, x, "", text("routed"))
		if body, ok := getBody(t, ch, q); !ok || body != "routed" {
			t.Fatalf("through the exchange declared as %q: got %q, %v", x+"\n", body, ok)
		}
		must(t, ch.QueueUnbind(q+"\n", "", x+"\n", nil))
		publish(t, ch, x, "", text("unbound"))
		if body, ok := getBody(t, ch, q); ok {
			t.Fatalf("after the unbind the queue got %q", body)
		}

		// Publish, get, consume and purge do not strip.
		for what, do := range map[string]func(ch *rmq.Channel) error{
			"basic.get": func(ch *rmq.Channel) error { _, _, err := ch.Get(q+"\n", true); return err },
			"basic.consume": func(ch *rmq.Channel) error {
				_, err := ch.Consume(q+"\n", "", true, false, false, false, nil)
				return err
			},
			"queue.purge": func(ch *rmq.Channel) error { _, err := ch.QueuePurge(q+"\n", false); return err },
		} {
			if err := do(b.channel()); err == nil {
				t.Errorf("%s of %q found the queue", what, q+"\n")
			} else {
				expectCode(t, err, 404)
			}
		}
		pch := b.channel()
		expectChannelClosed(t, pch, 404, func() { publish(t, pch, x+"\n", "", text("lost")) })

		_, err = ch.QueueDelete(q+"\n", false, false, false)
		must(t, err)
		if _, err := b.channel().QueueDeclarePassive(q, false, false, false, false, nil); err == nil {
			t.Fatalf("queue.delete of %q left %q", q+"\n", q)
		}
		must(t, ch.ExchangeDelete(x+"\r\n", false, false))
		if err := b.channel().ExchangeDeclarePassive(x, "fanout", false, false, false, false, nil); err == nil {
			t.Fatalf("exchange.delete of %q left %q", x+"\r\n", x)
		}
	})
}

// TestRedeclareIgnoresArgumentsRabbitMQDoesNotCompare: an exchange or a
// queue redeclared with other unknown ("nonsense") arguments, or without
// them, is equivalent; only the arguments RabbitMQ compares (for
// exchanges alternate-exchange, for queues the x- arguments it knows)
// must match.
func TestRedeclareIgnoresArgumentsRabbitMQDoesNotCompare(t *testing.T) {
	onBothBrokers(t, func(t *testing.T, b *compatBroker) {
		ch := b.channel()
		x, q := b.unique("nonsense-x"), b.unique("nonsense-q")
		b.cleanupExchange(x)
		b.cleanupQueue(q)
		must(t, ch.ExchangeDeclare(x, "direct", false, false, false, false, rmq.Table{"nonsense": "a", "x-nonsense": int32(1)}))
		must(t, ch.ExchangeDeclare(x, "direct", false, false, false, false, rmq.Table{"nonsense": "b", "x-nonsense": "2"}))
		must(t, ch.ExchangeDeclare(x, "direct", false, false, false, false, nil))
		_, err := ch.QueueDeclare(q, false, false, false, false, rmq.Table{"nonsense": "a", "x-nonsense": int32(1)})
		must(t, err)
		_, err = ch.QueueDeclare(q, false, false, false, false, rmq.Table{"nonsense": "b", "x-nonsense": "2"})
		must(t, err)
		_, err = ch.QueueDeclare(q, false, false, false, false, nil)
		must(t, err)
		excl := b.unique("nonsense-excl")
		_, err = ch.QueueDeclare(excl, false, false, true, false, rmq.Table{"nonsense": "a"})
		must(t, err)
		_, err = ch.QueueDeclare(excl, false, false, true, false, rmq.Table{"nonsense": "b"})
		must(t, err)

		// The arguments RabbitMQ compares still must match.
		_, err = b.channel().QueueDeclare(q, false, false, false, false, rmq.Table{"x-max-length": int32(5)})
		expectCode(t, err, 406)
		err = b.channel().ExchangeDeclare(x, "direct", false, false, false, false, rmq.Table{"alternate-exchange": "elsewhere"})
		expectCode(t, err, 406)
	})
}

// TestEmptyQueueNameMeansTheChannelsLastDeclaredQueue: queue.bind,
// queue.unbind, basic.consume, basic.get, queue.purge and queue.delete
// given no queue name act on the channel's last declared queue, and a
// bind or unbind given neither a queue name nor a routing key uses that
// queue's name as the key (RabbitMQ's shortcut). A passive queue.declare
// takes the empty name as it is.
func TestEmptyQueueNameMeansTheChannelsLastDeclaredQueue(t *testing.T) {
	onBothBrokers(t, func(t *testing.T, b *compatBroker) {
		fresh := b.channel()
		expectCode(t, fresh.QueueBind("", "", "amq.direct", false, nil), 404)

		ch := b.channel()
		q := b.queue(ch, "last", nil)
		must(t, ch.QueueBind("", "", "amq.direct", false, nil))
		must(t, ch.QueueBind("", "k", "amq.direct", false, nil))
		publish(t, ch, "amq.direct", q, text("by the queue's name"))
		publish(t, ch, "amq.direct", "k", text("by k"))
		if got := drainBodies(t, ch, ""); len(got) != 2 || got[0] != "by the queue's name" || got[1] != "by k" {
			t.Fatalf("basic.get of the last declared queue: %v", got)
		}
		must(t, ch.QueueUnbind("", "", "amq.direct", nil))
		publish(t, ch, "amq.direct", q, text("unbound"))
		publish(t, ch, "amq.direct", "k", text("still bound"))
		roundTrip(t, ch)
		if n, err := ch.QueuePurge("", false); err != nil || n != 1 {
			t.Fatalf("purge of the last declared queue: %d, %v; want 1", n, err)
		}
		ds, err := ch.Consume("", "", true, false, false, false, nil)
		must(t, err)
		publish(t, ch, "", q, text("consumed"))
		if d := receive(t, ds); string(d.Body) != "consumed" {
			t.Fatalf("consumer of the last declared queue got %q", d.Body)
		}
		other := b.channel()
		b.queue(other, "last-other", nil)
		_, err = other.QueueDeclarePassive("", false, false, false, false, nil)
		expectCode(t, err, 404)
		_, err = ch.QueueDelete("", false, false, false)
		must(t, err)
		_, err = b.channel().QueueDeclarePassive(q, false, false, false, false, nil)
		expectCode(t, err, 404)
	})
}

// TestHeadersBindingWithInvalidXMatchIsRefused: a binding from a headers
// exchange takes x-match all, any, all-with-x or any-with-x (or none);
// another string or a value of another type is 406 PRECONDITION_FAILED,
// for queue.bind and exchange.bind, to shared and exclusive queues alike.
// Unbinding such arguments succeeds, as any unbind of nothing does.
func TestHeadersBindingWithInvalidXMatchIsRefused(t *testing.T) {
	onBothBrokers(t, func(t *testing.T, b *compatBroker) {
		conn := b.dial()
		ch := openChannel(t, conn)
		q := b.queue(ch, "xmatch", nil)
		excl, err := ch.QueueDeclare("", false, false, true, false, nil)
		must(t, err)
		x := b.exchange(ch, "xmatch", "fanout")
		for _, v := range []any{"all", "any", "all-with-x", "any-with-x"} {
			must(t, ch.QueueBind(q, "", "amq.headers", false, rmq.Table{"x-match": v, "k": "v"}))
		}
		must(t, ch.QueueBind(q, "", "amq.headers", false, rmq.Table{"k": "v"}))
		for _, v := range []any{"foo", "ALL", int32(1), nil, []byte("any")} {
			args := rmq.Table{"x-match": v, "k": "v"}
			err := openChannel(t, conn).QueueBind(q, "", "amq.headers", false, args)
			t.Logf("x-match %#v: %s", v, expectCode(t, err, 406).Reason)
			expectCode(t, openChannel(t, conn).QueueBind(excl.Name, "", "amq.headers", false, args), 406)
			expectCode(t, openChannel(t, conn).ExchangeBind(x, "", "amq.headers", false, args), 406)
			must(t, ch.QueueUnbind(q, "", "amq.headers", args))
		}
		// Other exchange types do not look at x-match.
		must(t, ch.QueueBind(q, "", x, false, rmq.Table{"x-match": "foo"}))
	})
}

// TestUnbindOfMissingEndsSucceeds: queue.unbind and exchange.unbind of a
// binding whose queue, source or destination exchange does not exist
// remove nothing and succeed; only the default exchange is refused.
func TestUnbindOfMissingEndsSucceeds(t *testing.T) {
	onBothBrokers(t, func(t *testing.T, b *compatBroker) {
		ch := b.channel()
		q := b.queue(ch, "unbind", nil)
		x := b.exchange(ch, "unbind", "direct")
		missingQ, missingX := b.unique("missing-q"), b.unique("missing-x")
		must(t, ch.QueueUnbind(missingQ, "k", x, nil))
		must(t, ch.QueueUnbind(q, "k", missingX, nil))
		must(t, ch.QueueUnbind(missingQ, "k", missingX, nil))
		must(t, ch.ExchangeUnbind(missingX, "k", x, false, nil))
		must(t, ch.ExchangeUnbind(x, "k", missingX, false, nil))
		expectCode(t, b.channel().QueueUnbind(missingQ, missingQ, "", nil), 403)
		// A bind still wants both ends.
		expectCode(t, b.channel().QueueBind(missingQ, "k", x, false, nil), 404)
	})
}

// TestDeclareOfALiveReplyToAddressSucceeds: an RPC server may check that
// its requester is still there by declaring (passively or not) the
// direct reply-to address it was given: declare-ok with no messages and
// one consumer while the requester consumes replies, 404 once it is gone
// and for addresses nobody was given.
func TestDeclareOfALiveReplyToAddressSucceeds(t *testing.T) {
	onBothBrokers(t, func(t *testing.T, b *compatBroker) {
		server := b.channel()
		requests := b.queue(server, "rpc", nil)
		reqs := consume(t, server, requests, true)
		client := b.channel()
		_, err := client.Consume("amq.rabbitmq.reply-to", "", true, false, false, false, nil)
		must(t, err)
		publish(t, client, "", requests, rmq.Publishing{ReplyTo: "amq.rabbitmq.reply-to", Body: []byte("ping")})
		addr := receive(t, reqs).ReplyTo

		st, err := server.QueueDeclarePassive(addr, false, false, false, false, nil)
		must(t, err)
		if st.Name != addr || st.Messages != 0 || st.Consumers != 1 {
			t.Fatalf("passive declare of the reply-to address: %+v, want %s with 0 messages, 1 consumer", st, addr)
		}
		st, err = server.QueueDeclare(addr, true, false, true, false, nil)
		must(t, err)
		if st.Name != addr || st.Consumers != 1 {
			t.Fatalf("declare of the reply-to address: %+v", st)
		}
		_, err = b.channel().QueueDeclarePassive("amq.rabbitmq.reply-to.nobody", false, false, false, false, nil)
		expectCode(t, err, 404)
		_, _, err = b.channel().Get(addr, true)
		expectCode(t, err, 404) // it is no queue

		must(t, client.Close())
		_, err = server.QueueDeclarePassive(addr, false, false, false, false, nil)
		expectCode(t, err, 404)
	})
}
