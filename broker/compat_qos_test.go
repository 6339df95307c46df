package broker_test

import (
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"
)

// Flow control with basic.qos as RabbitMQ runs it (issue 15, items 6, 7).
// Each test runs against Warren and RabbitMQ.

// quiet is how long a test waits to assert that no delivery arrives.
const quiet = 300 * time.Millisecond

// expectNoDelivery fails if a delivery arrives on ds within quiet.
func expectNoDelivery(t *testing.T, what string, ds <-chan rmq.Delivery) {
	t.Helper()
	select {
	case d := <-ds:
		t.Fatalf("%s: got a delivery of %q from %s", what, d.Body, d.RoutingKey)
	case <-time.After(quiet):
	}
}

// mergeDeliveries forwards the deliveries of several consumers to one
// channel, for as long as they deliver: a test reads them all from it.
func mergeDeliveries(dss ...<-chan rmq.Delivery) <-chan rmq.Delivery {
	out := make(chan rmq.Delivery, 1000)
	for _, ds := range dss {
		go func() {
			for d := range ds {
				out <- d
			}
		}()
	}
	return out
}

// fill publishes n messages to q through the default exchange and waits
// until the queue holds them.
func fill(t *testing.T, ch *rmq.Channel, q string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		publish(t, ch, "", q, text(q))
	}
	eventually(t, "the messages to be enqueued", func() bool {
		st, err := ch.QueueDeclarePassive(q, false, false, false, false, nil)
		must(t, err)
		return st.Messages == n
	})
}

// TestChannelPrefetchHoldsBackNoAckConsumers: a channel-wide limit
// (basic.qos global) counts the channel's unacked deliveries and binds
// every consumer on it, no-ack consumers too: while the limit is reached
// they receive nothing.
func TestChannelPrefetchHoldsBackNoAckConsumers(t *testing.T) {
	onBothBrokers(t, func(t *testing.T, b *compatBroker) {
		setup := b.channel()
		manual := b.queue(setup, "manual", nil)
		auto := b.queue(setup, "noack", nil)
		fill(t, setup, manual, 1)
		fill(t, setup, auto, 1)

		ch := b.channel()
		must(t, ch.Qos(1, 0, true))
		held := receive(t, consume(t, ch, manual, false))
		noAck := consume(t, ch, auto, true)
		expectNoDelivery(t, "a no-ack consumer while the channel's limit is reached", noAck)
		must(t, held.Ack(false))
		if d := receive(t, noAck); string(d.Body) != auto {
			t.Fatalf("no-ack consumer got %q", d.Body)
		}
	})
}

// TestChannelPrefetchServesQueuesInTurn: one channel with a channel-wide
// limit of 1 consumes from three queues of 100 messages, acking one
// delivery at a time: the credit each ack frees goes to the queues in
// turn, so after 99 acks every queue has had messages consumed, and no
// more than one delivery is ever unacked.
func TestChannelPrefetchServesQueuesInTurn(t *testing.T) {
	onBothBrokers(t, func(t *testing.T, b *compatBroker) {
		setup := b.channel()
		var queues []string
		for i := 0; i < 3; i++ {
			q := b.queue(setup, "fair", nil)
			fill(t, setup, q, 100)
			queues = append(queues, q)
		}
		ch := b.channel()
		must(t, ch.Qos(1, 0, true))
		var dss []<-chan rmq.Delivery
		for _, q := range queues {
			dss = append(dss, consume(t, ch, q, false))
		}
		ds := mergeDeliveries(dss...)
		got := map[string]int{}
		for i := 0; i < 99; i++ {
			d := receive(t, ds)
			got[d.RoutingKey]++
			must(t, d.Ack(false))
		}
		t.Logf("after 99 acks: %v", got)
		for _, q := range queues {
			if got[q] == 0 {
				t.Errorf("queue %s had nothing consumed after 99 acks: %v", q, got)
			}
		}
		receive(t, ds) // the credit of the 99th ack
		expectNoDelivery(t, "a second unacked delivery under a channel limit of 1", ds)
	})
}

// TestPerConsumerAndChannelPrefetchChangedWhileConsuming: per-consumer
// limits (basic.qos global=false, taken by the consumers declared after
// it) and the channel-wide limit apply together, each changed while the
// consumers are active: unacked deliveries never exceed either limit,
// and a raised or lifted limit lets deliveries resume.
func TestPerConsumerAndChannelPrefetchChangedWhileConsuming(t *testing.T) {
	onBothBrokers(t, func(t *testing.T, b *compatBroker) {
		setup := b.channel()
		q1 := b.queue(setup, "limit2", nil)
		q2 := b.queue(setup, "limit3", nil)
		fill(t, setup, q1, 20)
		fill(t, setup, q2, 20)

		ch := b.channel()
		must(t, ch.Qos(2, 0, false))
		c1 := consume(t, ch, q1, false)
		must(t, ch.Qos(3, 0, false))
		c2 := consume(t, ch, q2, false)
		ds := mergeDeliveries(c1, c2)
		var held1, held2 []rmq.Delivery
		// take receives until n1 and n2 deliveries of q1 and q2 are held.
		take := func(n1, n2 int) {
			t.Helper()
			for len(held1) < n1 || len(held2) < n2 {
				switch d := receive(t, ds); d.RoutingKey {
				case q1:
					held1 = append(held1, d)
				case q2:
					held2 = append(held2, d)
				}
			}
			if len(held1) != n1 || len(held2) != n2 {
				t.Fatalf("unacked per consumer %d and %d, want %d and %d", len(held1), len(held2), n1, n2)
			}
		}
		take(2, 3)
		expectNoDelivery(t, "per-consumer limits 2 and 3 reached", ds)

		// A new per-consumer limit leaves the existing consumers' alone.
		must(t, ch.Qos(10, 0, false))
		must(t, held1[0].Ack(false))
		held1 = held1[1:]
		take(2, 3)
		expectNoDelivery(t, "the first consumer keeps its limit of 2", ds)

		// A channel limit below the unacked count holds everything back
		// until enough is acked.
		must(t, ch.Qos(4, 0, true))
		must(t, held2[0].Ack(false))
		held2 = held2[1:]
		expectNoDelivery(t, "4 unacked under a channel limit of 4", ds)
		must(t, held1[0].Ack(false))
		held1 = held1[1:]
		d := receive(t, ds)
		t.Logf("the freed credit went to %s", d.RoutingKey)
		expectNoDelivery(t, "the channel limit of 4 reached again", ds)
		must(t, d.Ack(false))

		// Lifting the channel limit fills the consumers' own limits.
		must(t, ch.Qos(0, 0, true))
		take(2, 3)
		expectNoDelivery(t, "per-consumer limits reached after the channel limit went", ds)
	})
}
