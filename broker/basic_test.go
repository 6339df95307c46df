package broker_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"reflect"
	"strings"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/broker/brokertest"
)

func TestRoundRobinAmongConsumers(t *testing.T) {
	f := newFixture(t)
	ch := f.ch()
	q := declareQueue(t, ch, nil)
	var subs []<-chan rmq.Delivery
	for i := 0; i < 3; i++ {
		ds, err := ch.Consume(q, fmt.Sprintf("c%d", i), true, false, false, false, nil)
		must(t, err)
		subs = append(subs, ds)
	}
	for i := 0; i < 6; i++ {
		publish(t, ch, "", q, text(fmt.Sprint(i)))
	}
	for i := 0; i < 6; i++ {
		d := receive(t, subs[i%3])
		if string(d.Body) != fmt.Sprint(i) {
			t.Fatalf("consumer %d got %q, want %d", i%3, d.Body, i)
		}
	}
}

func TestGetAndGetEmptyWithMessageCount(t *testing.T) {
	f := newFixture(t)
	ch := f.ch()
	q := declareQueue(t, ch, nil)
	_, ok, err := ch.Get(q, true)
	must(t, err)
	if ok {
		t.Fatal("get on an empty queue returned a message")
	}
	for i := 0; i < 3; i++ {
		publish(t, ch, "", q, text(fmt.Sprint(i)))
	}
	roundTrip(t, ch)
	for i := 0; i < 3; i++ {
		d, ok, err := ch.Get(q, false)
		must(t, err)
		if !ok || string(d.Body) != fmt.Sprint(i) || d.MessageCount != uint32(2-i) {
			t.Fatalf("get %d: ok=%v body=%q count=%d", i, ok, d.Body, d.MessageCount)
		}
		must(t, d.Ack(false))
	}
}

func TestAckErrors(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		name string
		do   func(ch *rmq.Channel, d rmq.Delivery)
	}{
		{"unknown tag", func(ch *rmq.Channel, d rmq.Delivery) { ch.Ack(d.DeliveryTag+100, false) }},
		{"double ack", func(ch *rmq.Channel, d rmq.Delivery) { d.Ack(false); d.Ack(false) }},
		{"reject after ack", func(ch *rmq.Channel, d rmq.Delivery) { d.Ack(false); d.Reject(true) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ch := f.ch()
			q := declareQueue(t, ch, nil)
			publish(t, ch, "", q, text("x"))
			roundTrip(t, ch)
			d, ok, err := ch.Get(q, false)
			if err != nil || !ok {
				t.Fatalf("get: %v %v", ok, err)
			}
			expectChannelClosed(t, ch, amqp.PreconditionFailed, func() { tc.do(ch, d) })
		})
	}
}

func TestRequeueGoesBackToOriginalPositionRedelivered(t *testing.T) {
	f := newFixture(t)
	ch := f.ch()
	q := declareQueue(t, ch, nil)
	for i := 0; i < 4; i++ {
		publish(t, ch, "", q, text(fmt.Sprint(i)))
	}
	roundTrip(t, ch)
	var ds []rmq.Delivery
	for i := 0; i < 2; i++ {
		d, _, err := ch.Get(q, false)
		must(t, err)
		ds = append(ds, d)
	}
	must(t, ds[1].Nack(false, true))
	must(t, ds[0].Reject(true))
	for i := 0; i < 4; i++ {
		d, ok, err := ch.Get(q, true)
		must(t, err)
		if !ok || string(d.Body) != fmt.Sprint(i) {
			t.Fatalf("position %d: got %q", i, d.Body)
		}
		if want := i < 2; d.Redelivered != want {
			t.Fatalf("message %d redelivered=%v, want %v", i, d.Redelivered, want)
		}
	}
}

func TestRejectWithoutRequeueDrops(t *testing.T) {
	f := newFixture(t)
	ch := f.ch()
	q := declareQueue(t, ch, nil)
	publish(t, ch, "", q, text("x"))
	roundTrip(t, ch)
	d, _, err := ch.Get(q, false)
	must(t, err)
	must(t, d.Reject(false))
	if got := drainBodies(t, ch, q); len(got) != 0 {
		t.Fatalf("rejected message came back: %v", got)
	}
}

func TestMultipleAckAndNack(t *testing.T) {
	f := newFixture(t)
	ch := f.ch()
	q := declareQueue(t, ch, nil)
	for i := 0; i < 6; i++ {
		publish(t, ch, "", q, text(fmt.Sprint(i)))
	}
	roundTrip(t, ch)
	var last rmq.Delivery
	for i := 0; i < 6; i++ {
		last, _, _ = ch.Get(q, false)
		if i == 2 {
			must(t, last.Ack(true)) // acks 0..2
		}
	}
	must(t, last.Nack(true, true)) // requeues 3..5
	got := drainBodies(t, ch, q)
	if !reflect.DeepEqual(got, []string{"3", "4", "5"}) {
		t.Fatalf("after multiple ack/nack: %v", got)
	}
}

func TestUnackedAreRequeuedWhenChannelCloses(t *testing.T) {
	f := newFixture(t)
	ch := f.ch()
	q := declareQueue(t, ch, nil)
	publish(t, ch, "", q, text("a"))
	publish(t, ch, "", q, text("b"))
	roundTrip(t, ch)
	c2 := f.ch()
	ds, err := c2.Consume(q, "", false, false, false, false, nil)
	must(t, err)
	receive(t, ds)
	receive(t, ds)
	must(t, c2.Close())
	d, ok, err := ch.Get(q, true)
	must(t, err)
	if !ok || string(d.Body) != "a" || !d.Redelivered {
		t.Fatalf("after close: ok=%v body=%q redelivered=%v", ok, d.Body, d.Redelivered)
	}
}

func TestUnackedAreRequeuedWhenConnectionCloses(t *testing.T) {
	f := newFixture(t)
	ch := f.ch()
	q := declareQueue(t, ch, nil)
	publishN(t, ch, q, "a", "b")
	c2 := dial(t, f.b.URL)
	ds, err := openChannel(t, c2).Consume(q, "", false, false, false, false, nil)
	must(t, err)
	receive(t, ds)
	receive(t, ds)
	must(t, c2.Close())
	got := drainBodies(t, ch, q)
	if strings.Join(got, ",") != "a,b" {
		t.Fatalf("after the connection closed the queue holds %v, want [a b]", got)
	}
}

func TestRecoverRequeues(t *testing.T) {
	f := newFixture(t)
	ch := f.ch()
	q := declareQueue(t, ch, nil)
	publish(t, ch, "", q, text("a"))
	ds, err := ch.Consume(q, "", false, false, false, false, nil)
	must(t, err)
	first := receive(t, ds)
	if first.Redelivered {
		t.Fatal("first delivery flagged redelivered")
	}
	must(t, ch.Recover(true))
	again := receive(t, ds)
	if !again.Redelivered || string(again.Body) != "a" {
		t.Fatalf("recovered delivery: %q redelivered=%v", again.Body, again.Redelivered)
	}
}

func TestPrefetchLimitsUnacked(t *testing.T) {
	for _, global := range []bool{false, true} {
		t.Run(fmt.Sprintf("global=%v", global), func(t *testing.T) {
			f := newFixture(t)
			ch := f.ch()
			q := declareQueue(t, ch, nil)
			for i := 0; i < 5; i++ {
				publish(t, ch, "", q, text(fmt.Sprint(i)))
			}
			roundTrip(t, ch)
			must(t, ch.Qos(2, 0, global))
			ds, err := ch.Consume(q, "", false, false, false, false, nil)
			must(t, err)
			a, b := receive(t, ds), receive(t, ds)
			select {
			case d := <-ds:
				t.Fatalf("third delivery %q beyond prefetch 2", d.Body)
			case <-time.After(200 * time.Millisecond): // absence of an event: a bounded wait is the only way
			}
			must(t, a.Ack(false))
			c := receive(t, ds)
			if string(c.Body) != "2" {
				t.Fatalf("after ack got %q, want 2", c.Body)
			}
			_ = b
		})
	}
}

func TestPrefetchSizeNotSupported(t *testing.T) {
	f := newFixture(t)
	ch := f.ch()
	expectCode(t, ch.Qos(1, 1024, false), amqp.NotImplemented)
}

func TestConsumeErrors(t *testing.T) {
	f := newFixture(t)
	setup := f.ch()
	q := declareQueue(t, setup, nil)
	_, err := setup.Consume(q, "taken", false, false, false, false, nil)
	must(t, err)

	t.Run("duplicate tag closes the connection", func(t *testing.T) {
		c := dial(t, f.b.URL)
		ch := openChannel(t, c)
		_, err := ch.Consume(q, "dup", false, false, false, false, nil)
		must(t, err)
		_, err = ch.Consume(q, "dup", false, false, false, false, nil)
		expectCode(t, err, amqp.NotAllowed)
	})
	t.Run("exclusive consume on a queue with consumers", func(t *testing.T) {
		_, err := f.ch().Consume(q, "", false, true, false, false, nil)
		expectCode(t, err, amqp.AccessRefused)
	})
	t.Run("consume from a missing queue", func(t *testing.T) {
		_, err := f.ch().Consume("missing", "", false, false, false, false, nil)
		expectCode(t, err, amqp.NotFound)
	})
}

func TestServerGeneratedConsumerTag(t *testing.T) {
	b := brokertest.Start(t)
	r := dialRaw(t, b.Addr, 131072, 0, 0)
	r.writeRaw(amqp.AppendMethodFrame(nil, 1, &amqp.ChannelOpen{}))
	r.expectMethod(1)
	r.writeRaw(amqp.AppendMethodFrame(nil, 1, &amqp.QueueDeclare{Queue: "tagged"}))
	r.expectMethod(1)
	r.writeRaw(amqp.AppendMethodFrame(nil, 1, &amqp.BasicConsume{Queue: "tagged"}))
	ok, isOk := r.expectMethod(1).(*amqp.BasicConsumeOk)
	if !isOk || !strings.HasPrefix(ok.ConsumerTag, "amq.ctag-") {
		t.Fatalf("consume-ok = %+v, want a server-generated amq.ctag- tag", ok)
	}
}

func TestConsumerCancelNotifyOnQueueDelete(t *testing.T) {
	f := newFixture(t)
	ch := f.ch()
	q := declareQueue(t, ch, nil)
	cancels := ch.NotifyCancel(make(chan string, 1))
	_, err := ch.Consume(q, "watcher", false, false, false, false, nil)
	must(t, err)
	_, err = f.ch().QueueDelete(q, false, false, false)
	must(t, err)
	select {
	case tag := <-cancels:
		if tag != "watcher" {
			t.Fatalf("cancelled %q", tag)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no basic.cancel after queue deletion")
	}
}

// TestNoCancelNotifyWithoutTheCapability: a client that did not announce
// consumer_cancel_notify gets no basic.cancel when its queue is deleted.
func TestNoCancelNotifyWithoutTheCapability(t *testing.T) {
	b := brokertest.Start(t)
	r := dialRaw(t, b.Addr, 131072, 0, 0) // announces authentication_failure_close only
	r.writeRaw(amqp.AppendMethodFrame(nil, 1, &amqp.ChannelOpen{}))
	r.expectMethod(1)
	r.writeRaw(amqp.AppendMethodFrame(nil, 1, &amqp.QueueDeclare{Queue: "doomed"}))
	r.expectMethod(1)
	r.writeRaw(amqp.AppendMethodFrame(nil, 1, &amqp.BasicConsume{Queue: "doomed", ConsumerTag: "c"}))
	r.expectMethod(1)
	c := dial(t, b.URL)
	_, err := openChannel(t, c).QueueDelete("doomed", false, false, false)
	must(t, err)
	r.writeRaw(amqp.AppendMethodFrame(nil, 1, &amqp.QueueDeclare{Queue: "after"}))
	if m := r.expectMethod(1); m.Name() != "queue.declare-ok" {
		t.Fatalf("got %s, want queue.declare-ok and no basic.cancel", m.Name())
	}
}

func TestMandatoryUnroutableIsReturnedThenConfirmed(t *testing.T) {
	f := newFixture(t)
	ch := f.ch()
	returns := ch.NotifyReturn(make(chan rmq.Return, 1))
	must(t, ch.Confirm(false))
	confirms := ch.NotifyPublish(make(chan rmq.Confirmation, 1))
	must(t, ch.PublishWithContext(context.Background(), "amq.direct", "nowhere", true, false, text("lost")))
	select {
	case r := <-returns:
		if r.ReplyCode != uint16(amqp.NoRoute) || r.ReplyText != "NO_ROUTE" || string(r.Body) != "lost" {
			t.Fatalf("return = %d %q %q", r.ReplyCode, r.ReplyText, r.Body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no basic.return")
	}
	select {
	case c := <-confirms:
		if !c.Ack || c.DeliveryTag != 1 {
			t.Fatalf("confirm = %+v", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no confirm for the unroutable message")
	}
}

func TestImmediateIsNotImplemented(t *testing.T) {
	f := newFixture(t)
	ch := f.ch()
	closed := f.conn.NotifyClose(make(chan *rmq.Error, 1))
	ch.PublishWithContext(context.Background(), "amq.direct", "k", false, true, text("x"))
	select {
	case err := <-closed:
		if err == nil || err.Code != int(amqp.NotImplemented) {
			t.Fatalf("close = %v, want 540", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("connection not closed")
	}
}

func TestUserIDMustMatch(t *testing.T) {
	f := newFixture(t)
	ch := f.ch()
	q := declareQueue(t, ch, nil)
	publish(t, ch, "", q, rmq.Publishing{UserId: "guest", Body: []byte("ok")})
	roundTrip(t, ch)
	expectChannelClosed(t, ch, amqp.PreconditionFailed, func() {
		publish(t, ch, "", q, rmq.Publishing{UserId: "mallory", Body: []byte("forged")})
	})
}

func TestDirectReplyTo(t *testing.T) {
	f := newFixture(t)
	client := f.ch()
	server := f.ch()
	rpc := declareQueue(t, server, nil)
	requests, err := server.Consume(rpc, "", true, false, false, false, nil)
	must(t, err)
	replies, err := client.Consume("amq.rabbitmq.reply-to", "", true, false, false, false, nil)
	must(t, err)
	publish(t, client, "", rpc, rmq.Publishing{ReplyTo: "amq.rabbitmq.reply-to", Body: []byte("ping")})
	req := receive(t, requests)
	if len(req.ReplyTo) <= len("amq.rabbitmq.reply-to.") || req.ReplyTo[:22] != "amq.rabbitmq.reply-to." {
		t.Fatalf("reply-to not rewritten: %q", req.ReplyTo)
	}
	publish(t, server, "", req.ReplyTo, text("pong"))
	if r := receive(t, replies); string(r.Body) != "pong" {
		t.Fatalf("reply %q", r.Body)
	}
	// Consuming replies with acks is refused.
	_, err = f.ch().Consume("amq.rabbitmq.reply-to", "", false, false, false, false, nil)
	expectCode(t, err, amqp.PreconditionFailed)
}

func TestLargeBodyAndAllPropertiesRoundTrip(t *testing.T) {
	f := newFixture(t)
	ch := f.ch()
	q := declareQueue(t, ch, nil)
	body := bytes.Repeat([]byte("0123456789abcdef"), (3<<20)/16+7) // spans many frames
	ts := time.Unix(1700000000, 0)
	sent := rmq.Publishing{
		ContentType: "application/json", ContentEncoding: "gzip", DeliveryMode: 2, Priority: 7,
		CorrelationId: "corr", ReplyTo: "reply", Expiration: "60000", MessageId: "mid", Timestamp: ts,
		Type: "type", UserId: "guest", AppId: "app",
		Headers: rmq.Table{
			"bool": true, "int8": int8(-8), "uint8": uint8(8), "int16": int16(-16), "uint16": uint16(16),
			"int32": int32(-32), "uint32": uint32(32), "int64": int64(-64), "float32": float32(1.5),
			"float64": 2.25, "decimal": rmq.Decimal{Scale: 2, Value: 12345}, "string": "s",
			"bytes": []byte{1, 2, 3}, "array": []interface{}{"a", int32(1), true}, "time": ts,
			"table": rmq.Table{"nested": "yes"}, "void": nil,
		},
		Body: body,
	}
	publish(t, ch, "", q, sent)
	roundTrip(t, ch)
	d, ok, err := ch.Get(q, true)
	must(t, err)
	if !ok {
		t.Fatal("no message")
	}
	if !bytes.Equal(d.Body, body) {
		t.Fatalf("body of %d bytes came back as %d bytes", len(body), len(d.Body))
	}
	got := rmq.Publishing{
		ContentType: d.ContentType, ContentEncoding: d.ContentEncoding, DeliveryMode: d.DeliveryMode,
		Priority: d.Priority, CorrelationId: d.CorrelationId, ReplyTo: d.ReplyTo, Expiration: d.Expiration,
		MessageId: d.MessageId, Timestamp: d.Timestamp, Type: d.Type, UserId: d.UserId, AppId: d.AppId,
		Headers: d.Headers, Body: d.Body,
	}
	if !reflect.DeepEqual(got, sent) {
		t.Fatalf("properties changed:\n got %+v\nwant %+v", got.Headers, sent.Headers)
	}
}

func TestChannelFlowOffIsNotImplemented(t *testing.T) {
	f := newFixture(t)
	ch := f.ch()
	must(t, ch.Flow(true))
	expectCode(t, ch.Flow(false), amqp.NotImplemented)
}

// TestBodiesUpTo128MiB publishes a body of exactly 128 MiB, which comes
// back whole from basic.get, and announces one byte more, which closes the
// channel with RabbitMQ's 406 while the connection stays usable. It speaks
// frames itself so that the client side holds no 128 MiB buffer.
func TestBodiesUpTo128MiB(t *testing.T) {
	const size = 128 << 20
	b := brokertest.Start(t)
	r := dialRaw(t, b.Addr, 131072, 0, 0)
	r.nc.SetDeadline(time.Now().Add(2 * time.Minute))
	r.writeRaw(amqp.AppendMethodFrame(nil, 1, &amqp.ChannelOpen{}))
	r.expectMethod(1)
	r.writeRaw(amqp.AppendMethodFrame(nil, 1, &amqp.QueueDeclare{Queue: "big"}))
	r.expectMethod(1)

	// Each body frame is a reused chunk stamped with its index, so that a
	// lost, repeated or reordered frame changes the checksum.
	chunk := make([]byte, 131072-8)
	for i := range chunk {
		chunk[i] = byte(i * 7)
	}
	sent := crc32.NewIEEE()
	publishHeader := func(bodySize uint64) {
		r.writeRaw(amqp.AppendMethodFrame(nil, 1, &amqp.BasicPublish{RoutingKey: "big"}))
		r.writeRaw(amqp.AppendHeaderFrame(nil, 1, amqp.ClassBasic, bodySize, &amqp.Properties{}))
	}
	publishHeader(size)
	var frame []byte
	for n, k := 0, uint64(0); n < size; k++ {
		part := chunk[:min(len(chunk), size-n)]
		binary.BigEndian.PutUint64(part, k)
		sent.Write(part)
		frame = amqp.AppendFrame(frame[:0], amqp.FrameBody, 1, part)
		r.writeRaw(frame)
		n += len(part)
	}

	r.writeRaw(amqp.AppendMethodFrame(nil, 1, &amqp.BasicGet{Queue: "big", NoAck: true}))
	if m, ok := r.expectMethod(1).(*amqp.BasicGetOk); !ok {
		t.Fatalf("basic.get answered %v, want get-ok", m)
	}
	hf, err := r.fr.ReadFrame()
	if err != nil || hf.Type != amqp.FrameHeader {
		t.Fatalf("content header: %v %v", hf.Type, err)
	}
	var hdr amqp.ContentHeader
	must(t, hdr.Decode(hf.Payload))
	if hdr.BodySize != size {
		t.Fatalf("body-size %d, want %d", hdr.BodySize, size)
	}
	got := crc32.NewIEEE()
	for n := 0; n < size; {
		f, err := r.fr.ReadFrame()
		if err != nil || f.Type != amqp.FrameBody {
			t.Fatalf("body frame after %d bytes: type %d, %v", n, f.Type, err)
		}
		got.Write(f.Payload)
		n += len(f.Payload)
	}
	if got.Sum32() != sent.Sum32() {
		t.Fatal("the 128 MiB body came back changed")
	}

	publishHeader(size + 1)
	cc, ok := r.expectMethod(1).(*amqp.ChannelClose)
	want := "PRECONDITION_FAILED - message size 134217729 is larger than configured max size 134217728"
	if !ok || cc.ReplyCode != amqp.PreconditionFailed || cc.ReplyText != want {
		t.Fatalf("oversized message: %+v, want channel.close 406 %s", cc, want)
	}
	// Body frames already in flight are dropped until close-ok; the
	// connection lives on.
	r.writeRaw(amqp.AppendFrame(nil, amqp.FrameBody, 1, chunk))
	r.writeRaw(amqp.AppendMethodFrame(nil, 1, &amqp.ChannelCloseOk{}))
	r.writeRaw(amqp.AppendMethodFrame(nil, 2, &amqp.ChannelOpen{}))
	r.expectMethod(2)
	r.writeRaw(amqp.AppendMethodFrame(nil, 2, &amqp.QueueDeclare{Queue: "big", Passive: true}))
	if ok, isOk := r.expectMethod(2).(*amqp.QueueDeclareOk); !isOk || ok.MessageCount != 0 {
		t.Fatalf("after the refused message: %+v", ok)
	}
}

func TestPublishErrorsNameBasicPublishAsTheFailingMethod(t *testing.T) {
	b := brokertest.Start(t)
	r := dialRaw(t, b.Addr, 131072, 0, 0)
	r.writeRaw(amqp.AppendMethodFrame(nil, 1, &amqp.ChannelOpen{}))
	r.expectMethod(1)
	r.writeRaw(amqp.AppendMethodFrame(nil, 1, &amqp.BasicPublish{Exchange: "missing", RoutingKey: "k"}))
	r.writeRaw(amqp.AppendHeaderFrame(nil, 1, amqp.ClassBasic, 1, &amqp.Properties{}))
	r.writeRaw(amqp.AppendFrame(nil, amqp.FrameBody, 1, []byte("x")))
	cc, ok := r.expectMethod(1).(*amqp.ChannelClose)
	if !ok || cc.ReplyCode != amqp.NotFound || cc.FailingClassID != 60 || cc.FailingMethodID != 40 {
		t.Fatalf("publish to a missing exchange: %+v, want channel.close 404 naming basic.publish (60, 40)", cc)
	}
}
