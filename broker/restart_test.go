package broker_test

import (
	"testing"

	rmq "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/amqp"
)

func TestRestartKeepsDurableTopologyOnly(t *testing.T) {
	f := newFixture(t)
	ch := f.ch()
	must(t, ch.ExchangeDeclare("d-x", "topic", true, false, false, false, rmq.Table{"alternate-exchange": "d-ae"}))
	must(t, ch.ExchangeDeclare("d-ae", "fanout", true, false, false, false, nil))
	must(t, ch.ExchangeDeclare("t-x", "direct", false, false, false, false, nil))
	_, err := ch.QueueDeclare("d-q", true, false, false, false, rmq.Table{"x-max-length": int32(100)})
	must(t, err)
	_, err = ch.QueueDeclare("t-q", false, false, false, false, nil)
	must(t, err)
	_, err = ch.QueueDeclare("x-q", true, false, true, false, nil)
	must(t, err)
	must(t, ch.QueueBind("d-q", "a.#", "d-x", false, nil))
	must(t, ch.ExchangeBind("d-ae", "", "d-x", false, nil))

	f.b.Restart()
	ch = openChannel(t, dial(t, f.b.URL))
	must(t, ch.ExchangeDeclarePassive("d-x", "topic", true, false, false, false, nil))
	must(t, ch.ExchangeDeclarePassive("d-ae", "fanout", true, false, false, false, nil))
	// Arguments survive with their types: an equivalent redeclare succeeds.
	_, err = ch.QueueDeclare("d-q", true, false, false, false, rmq.Table{"x-max-length": int32(100)})
	must(t, err)
	must(t, ch.ExchangeDeclare("d-x", "topic", true, false, false, false, rmq.Table{"alternate-exchange": "d-ae"}))
	// Bindings survive: a message routes through the restored bindings.
	publish(t, ch, "d-x", "a.b", text("routed"))
	roundTrip(t, ch)
	if got := drainBodies(t, ch, "d-q"); len(got) != 1 {
		t.Fatalf("d-q got %v after restart", got)
	}
	for name, check := range map[string]func(*rmq.Channel) error{
		"transient exchange": func(c *rmq.Channel) error {
			return c.ExchangeDeclarePassive("t-x", "direct", false, false, false, false, nil)
		},
		"transient queue": func(c *rmq.Channel) error {
			_, err := c.QueueDeclarePassive("t-q", false, false, false, false, nil)
			return err
		},
		"exclusive queue": func(c *rmq.Channel) error {
			_, err := c.QueueDeclarePassive("x-q", true, false, true, false, nil)
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			expectCode(t, check(openChannel(t, dial(t, f.b.URL))), amqp.NotFound)
		})
	}
}

func TestRestartKeepsPersistentMessagesOfDurableQueues(t *testing.T) {
	f := newFixture(t)
	ch := f.ch()
	for _, q := range []string{"dq1", "dq2"} {
		_, err := ch.QueueDeclare(q, true, false, false, false, nil)
		must(t, err)
		must(t, ch.QueueBind(q, "", "amq.fanout", false, nil))
	}
	_, err := ch.QueueDeclare("tq", false, false, false, false, nil)
	must(t, err)
	must(t, ch.Confirm(false))
	confirms := ch.NotifyPublish(make(chan rmq.Confirmation, 16))
	publish(t, ch, "", "dq1", rmq.Publishing{DeliveryMode: 2, Body: []byte("persistent")})
	publish(t, ch, "", "dq1", rmq.Publishing{DeliveryMode: 1, Body: []byte("transient")})
	publish(t, ch, "", "tq", rmq.Publishing{DeliveryMode: 2, Body: []byte("in a transient queue")})
	publish(t, ch, "amq.fanout", "", rmq.Publishing{DeliveryMode: 2, Body: []byte("both")})
	publish(t, ch, "", "dq2", rmq.Publishing{DeliveryMode: 2, Body: []byte("acked")})
	for i := 0; i < 5; i++ {
		if c := <-confirms; !c.Ack {
			t.Fatalf("publish %d nacked", c.DeliveryTag)
		}
	}
	// Deliver two messages of dq1 without acking; ack the first of dq2.
	d, ok, err := ch.Get("dq2", false)
	if err != nil || !ok || string(d.Body) != "both" {
		t.Fatalf("get dq2: %q %v %v", d.Body, ok, err)
	}
	must(t, d.Ack(false))
	c2 := f.ch()
	unacked, ok, err := c2.Get("dq1", false)
	if err != nil || !ok || string(unacked.Body) != "persistent" {
		t.Fatalf("get dq1: %q %v %v", unacked.Body, ok, err)
	}

	f.b.Restart()
	ch = openChannel(t, dial(t, f.b.URL))
	type msg struct {
		body        string
		redelivered bool
	}
	get := func(q string) []msg {
		var out []msg
		for {
			d, ok, err := ch.Get(q, true)
			must(t, err)
			if !ok {
				return out
			}
			out = append(out, msg{string(d.Body), d.Redelivered})
		}
	}
	if got := get("dq1"); len(got) != 2 || got[0] != (msg{"persistent", true}) || got[1] != (msg{"both", false}) {
		t.Fatalf("dq1 after restart: %+v", got)
	}
	if got := get("dq2"); len(got) != 1 || got[0] != (msg{"acked", false}) {
		t.Fatalf("dq2 after restart: %+v", got)
	}
}
