package broker_test

import (
	"fmt"
	"testing"

	rmq "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/broker/brokertest"
	"github.com/warrenmq/warren/queue"
)

// smallPaging keeps 50 ready messages of a queue in memory and pages
// transient ones out without waiting for memory pressure.
func smallPaging(c *broker.Config) {
	c.QueuePaging = queue.Paging{MaxMessages: 50}
	c.PagingRatio = 0
}

// publishConfirmed publishes n messages to the default exchange with
// confirms, on a channel of its own, and waits for every ack.
func publishConfirmed(t *testing.T, conn *rmq.Connection, queueName string, n int, mode uint8) {
	t.Helper()
	ch := openChannel(t, conn)
	defer ch.Close()
	must(t, ch.Confirm(false))
	confirms := ch.NotifyPublish(make(chan rmq.Confirmation, n))
	for i := 0; i < n; i++ {
		publish(t, ch, "", queueName, rmq.Publishing{DeliveryMode: mode, Body: []byte(fmt.Sprint("m", i))})
	}
	for i := 0; i < n; i++ {
		if c := <-confirms; !c.Ack {
			t.Fatalf("publish %d nacked", c.DeliveryTag)
		}
	}
}

func pagedOut(t *testing.T, b *brokertest.Broker, name string) int {
	t.Helper()
	q := b.Server.Vhost("/").Queue(name)
	if q == nil {
		t.Fatalf("no queue %q", name)
	}
	return q.Info().PagedOut
}

func wantSequence(t *testing.T, got []string, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("got %d messages, want %d", len(got), n)
	}
	for i, b := range got {
		if want := fmt.Sprint("m", i); b != want {
			t.Fatalf("message %d = %q, want %q", i, b, want)
		}
	}
}

func TestLongQueuesPageOutAndDeliverInOrder(t *testing.T) {
	for _, tc := range []struct {
		name    string
		durable bool
		mode    uint8
	}{
		{"persistent in a durable queue", true, 2},
		{"transient in a durable queue", true, 1},
		{"transient queue", false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := brokertest.Start(t, brokertest.WithConfig(smallPaging))
			conn := dial(t, b.URL)
			ch := openChannel(t, conn)
			_, err := ch.QueueDeclare("long", tc.durable, false, false, false, nil)
			must(t, err)
			publishConfirmed(t, conn, "long", 1000, tc.mode)
			if got := pagedOut(t, b, "long"); got != 950 {
				t.Fatalf("paged out = %d, want 950", got)
			}
			q, err := ch.QueueDeclarePassive("long", tc.durable, false, false, false, nil)
			must(t, err)
			if q.Messages != 1000 {
				t.Fatalf("declare-ok counts %d messages, want 1000", q.Messages)
			}
			must(t, ch.Qos(100, 0, false))
			ds, err := ch.Consume("long", "", false, false, false, false, nil)
			must(t, err)
			var got []string
			for len(got) < 1000 {
				d := receive(t, ds)
				got = append(got, string(d.Body))
				if d.Redelivered {
					t.Fatalf("%q redelivered", d.Body)
				}
				must(t, d.Ack(false))
			}
			wantSequence(t, got, 1000)
			if n := pagedOut(t, b, "long"); n != 0 {
				t.Fatalf("paged out after drain = %d", n)
			}
		})
	}
}

func TestPagedMessagesSurviveRestartOnlyWhenPersistent(t *testing.T) {
	b := brokertest.Start(t, brokertest.WithConfig(smallPaging))
	conn := dial(t, b.URL)
	ch := openChannel(t, conn)
	_, err := ch.QueueDeclare("durable", true, false, false, false, nil)
	must(t, err)
	publishConfirmed(t, conn, "durable", 500, 2)
	publishConfirmed(t, conn, "durable", 100, 1) // paged out to disk, but transient
	// Deliver the first 10 without acking: they come back redelivered.
	must(t, ch.Qos(10, 0, false))
	ds, err := ch.Consume("durable", "c", false, false, false, false, nil)
	must(t, err)
	for i := 0; i < 10; i++ {
		receive(t, ds)
	}
	b.Restart()

	ch = openChannel(t, dial(t, b.URL))
	q, err := ch.QueueDeclarePassive("durable", true, false, false, false, nil)
	must(t, err)
	if q.Messages != 500 {
		t.Fatalf("after restart the queue has %d messages, want the 500 persistent ones", q.Messages)
	}
	for i := 0; i < 500; i++ {
		d, ok, err := ch.Get("durable", true)
		must(t, err)
		if !ok {
			t.Fatalf("get %d: empty", i)
		}
		if want := fmt.Sprint("m", i); string(d.Body) != want {
			t.Fatalf("message %d = %q, want %q", i, d.Body, want)
		}
		if d.Redelivered != (i < 10) {
			t.Fatalf("message %d redelivered = %v", i, d.Redelivered)
		}
	}
	if _, ok, _ := ch.Get("durable", true); ok {
		t.Fatal("a transient message survived the restart")
	}
}

func TestPurgeAndDeleteOfPagedQueuesFreeTheStore(t *testing.T) {
	b := brokertest.Start(t, brokertest.WithConfig(smallPaging))
	conn := dial(t, b.URL)
	ch := openChannel(t, conn)
	_, err := ch.QueueDeclare("p", true, false, false, false, nil)
	must(t, err)
	publishConfirmed(t, conn, "p", 300, 2)
	publishConfirmed(t, conn, "p", 300, 1)
	n, err := ch.QueuePurge("p", false)
	must(t, err)
	if n != 600 {
		t.Fatalf("purged %d, want 600", n)
	}
	publishConfirmed(t, conn, "p", 300, 2)
	_, err = ch.QueueDelete("p", false, false, false)
	must(t, err)
	b.Restart()
	ch = openChannel(t, dial(t, b.URL))
	_, err = ch.QueueDeclare("p", true, false, false, false, nil)
	must(t, err)
	if _, ok, _ := ch.Get("p", true); ok {
		t.Fatal("a purged or deleted message came back")
	}
}

func TestTransientBacklogStaysInMemoryWithoutMemoryPressure(t *testing.T) {
	b := brokertest.Start(t, brokertest.WithConfig(func(c *broker.Config) {
		c.QueuePaging = queue.Paging{MaxMessages: 50} // PagingRatio stays 0.5 of a high watermark far away
	}))
	conn := dial(t, b.URL)
	ch := openChannel(t, conn)
	_, err := ch.QueueDeclare("transient", false, false, false, false, nil)
	must(t, err)
	_, err = ch.QueueDeclare("durable", true, false, false, false, nil)
	must(t, err)
	publishConfirmed(t, conn, "transient", 500, 1)
	publishConfirmed(t, conn, "durable", 500, 2)
	if n := pagedOut(t, b, "transient"); n != 0 {
		t.Fatalf("%d transient messages paged out without memory pressure", n)
	}
	// Persistent messages of a durable queue are on disk already: they
	// leave memory at the bound regardless.
	if n := pagedOut(t, b, "durable"); n != 450 {
		t.Fatalf("durable queue paged out %d, want 450", n)
	}
}
