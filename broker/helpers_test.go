package broker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/broker/brokertest"
)

// fixture is a broker with one client connection.
type fixture struct {
	t    *testing.T
	b    *brokertest.Broker
	conn *rmq.Connection
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	b := brokertest.Start(t)
	return &fixture{t: t, b: b, conn: dial(t, b.URL)}
}

// ch opens a channel on the fixture's connection.
func (f *fixture) ch() *rmq.Channel {
	f.t.Helper()
	return openChannel(f.t, f.conn)
}

func openChannel(t *testing.T, c *rmq.Connection) *rmq.Channel {
	t.Helper()
	ch, err := c.Channel()
	if err != nil {
		t.Fatalf("open channel: %v", err)
	}
	return ch
}

// expectCode fails unless err is an AMQP error with code.
func expectCode(t *testing.T, err error, code uint16) *rmq.Error {
	t.Helper()
	var ae *rmq.Error
	if !errors.As(err, &ae) {
		t.Fatalf("error = %v, want AMQP code %d", err, code)
	}
	if ae.Code != int(code) {
		t.Fatalf("error code = %d (%s), want %d", ae.Code, ae.Reason, code)
	}
	return ae
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// declareQueue declares a transient queue with a generated name.
func declareQueue(t *testing.T, ch *rmq.Channel, args rmq.Table) string {
	t.Helper()
	q, err := ch.QueueDeclare("", false, false, false, false, args)
	if err != nil {
		t.Fatalf("declare queue: %v", err)
	}
	return q.Name
}

func publish(t *testing.T, ch *rmq.Channel, exchange, key string, msg rmq.Publishing) {
	t.Helper()
	if err := ch.PublishWithContext(context.Background(), exchange, key, false, false, msg); err != nil {
		t.Fatalf("publish: %v", err)
	}
}

func text(s string) rmq.Publishing { return rmq.Publishing{Body: []byte(s)} }

// receive waits for the next delivery.
func receive(t *testing.T, ds <-chan rmq.Delivery) rmq.Delivery {
	t.Helper()
	select {
	case d, ok := <-ds:
		if !ok {
			t.Fatal("delivery channel closed")
		}
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery within 10 s")
	}
	return rmq.Delivery{}
}

// getBody basic.gets one message and returns its body ("" and false when empty).
func getBody(t *testing.T, ch *rmq.Channel, q string) (string, bool) {
	t.Helper()
	d, ok, err := ch.Get(q, true)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	return string(d.Body), ok
}

// drainBodies gets every ready message of q.
func drainBodies(t *testing.T, ch *rmq.Channel, q string) []string {
	t.Helper()
	var out []string
	for {
		b, ok := getBody(t, ch, q)
		if !ok {
			return out
		}
		out = append(out, b)
	}
}

// roundTrip makes a synchronous call on ch so that everything sent before it was processed.
func roundTrip(t *testing.T, ch *rmq.Channel) {
	t.Helper()
	if err := ch.ExchangeDeclarePassive("amq.direct", "direct", true, false, false, false, nil); err != nil {
		t.Fatalf("round trip: %v", err)
	}
}

// expectChannelClosed runs do (typically an asynchronous publish) and waits
// for the server to close ch with code.
func expectChannelClosed(t *testing.T, ch *rmq.Channel, code uint16, do func()) {
	t.Helper()
	closed := ch.NotifyClose(make(chan *rmq.Error, 1))
	do()
	select {
	case err := <-closed:
		if err == nil || err.Code != int(code) {
			t.Fatalf("channel closed with %v, want code %d", err, code)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("channel not closed with %d", code)
	}
}
