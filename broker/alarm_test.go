package broker_test

import (
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/broker/brokertest"
)

func TestMemoryAlarmBlocksPublishersAndClears(t *testing.T) {
	b := brokertest.Start(t, brokertest.WithConfig(func(c *broker.Config) { c.AlarmInterval = 0 }))
	pub := dial(t, b.URL)
	blocked := pub.NotifyBlocked(make(chan rmq.Blocking, 4))
	pch := openChannel(t, pub)
	q := declareQueue(t, pch, nil)
	consumer := openChannel(t, dial(t, b.URL))
	ds, err := consumer.Consume(q, "", true, false, false, false, nil)
	must(t, err)

	b.Server.SetMemoryLimit(1) // any broker is over one byte
	publish(t, pch, "", q, text("before the block was noticed"))
	select {
	case bl := <-blocked:
		if !bl.Active || bl.Reason != "low on memory" {
			t.Fatalf("blocking = %+v", bl)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no connection.blocked")
	}
	// Consumers keep draining while publishers are blocked.
	if d := receive(t, ds); string(d.Body) != "before the block was noticed" {
		t.Fatalf("got %q", d.Body)
	}
	if got := b.Server.Alarms(); len(got) != 1 || got[0] != "memory" {
		t.Fatalf("alarms = %v", got)
	}

	b.Server.SetMemoryLimit(0)
	select {
	case bl := <-blocked:
		if bl.Active {
			t.Fatalf("blocking = %+v, want unblocked", bl)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no connection.unblocked")
	}
	publish(t, pch, "", q, text("after"))
	if d := receive(t, ds); string(d.Body) != "after" {
		t.Fatalf("got %q", d.Body)
	}
}
