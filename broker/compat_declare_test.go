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
