package broker_test

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/broker/brokertest"
)

// BenchmarkPublishToDeliver measures one message's trip through the
// broker: amqp091-go publishes 16-byte messages and a consumer on another
// connection receives them (auto-ack).
func BenchmarkPublishToDeliver(b *testing.B) {
	br := brokertest.Start(b)
	pc, err := rmq.Dial(br.URL)
	if err != nil {
		b.Fatal(err)
	}
	defer pc.Close()
	cc, err := rmq.Dial(br.URL)
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	pch, err := pc.Channel()
	if err != nil {
		b.Fatal(err)
	}
	cch, err := cc.Channel()
	if err != nil {
		b.Fatal(err)
	}
	q, err := cch.QueueDeclare("", false, false, true, false, nil)
	if err != nil {
		b.Fatal(err)
	}
	ds, err := cch.Consume(q.Name, "", true, false, false, false, nil)
	if err != nil {
		b.Fatal(err)
	}
	body := make([]byte, 16)
	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		for i := 0; i < b.N; i++ {
			if err := pch.PublishWithContext(context.Background(), "", q.Name, false, false, rmq.Publishing{Body: body}); err != nil {
				b.Error(err)
				return
			}
		}
	}()
	for i := 0; i < b.N; i++ {
		<-ds
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkRawPublishDeliverAck measures the broker's own cost per
// message with clients that allocate nothing per message: one raw
// connection writes pre-encoded 16-byte publishes, another consumes them
// (prefetch 1000) and acks each delivery on its own, so allocs/op is the
// broker's publish, deliver and ack path.
func BenchmarkRawPublishDeliverAck(b *testing.B) {
	br := brokertest.Start(b)
	pub := dialRaw(b, br.Addr, 131072, 0, 0)
	sub := dialRaw(b, br.Addr, 131072, 0, 0)
	for _, r := range []*rawClient{pub, sub} {
		r.writeRaw(amqp.AppendMethodFrame(nil, 1, &amqp.ChannelOpen{}))
		r.expectMethod(1)
	}
	const queueName = "bench.ack"
	for _, m := range []amqp.Method{
		&amqp.QueueDeclare{Queue: queueName},
		&amqp.BasicQos{PrefetchCount: 1000},
		&amqp.BasicConsume{Queue: queueName, ConsumerTag: "bench"},
	} {
		sub.writeRaw(amqp.AppendMethodFrame(nil, 1, m))
		sub.expectMethod(1)
	}
	const batch = 64
	body := make([]byte, 16)
	var frames []byte
	for range batch {
		frames = amqp.AppendMethodFrame(frames, 1, &amqp.BasicPublish{RoutingKey: queueName})
		frames = amqp.AppendHeaderFrame(frames, 1, amqp.ClassBasic, uint64(len(body)), &amqp.Properties{})
		frames = amqp.AppendBodyFrames(frames, 1, body, 131072)
	}
	perMessage := len(frames) / batch
	ack := amqp.AppendMethodFrame(nil, 1, &amqp.BasicAck{DeliveryTag: 1})
	const tagAt = 11 // frame header (7) + class and method ids (4)
	acks := make([]byte, 0, 1000*len(ack))
	sub.nc.SetDeadline(time.Time{})

	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		for sent := 0; sent < b.N; sent += batch {
			n := min(batch, b.N-sent)
			if _, err := pub.nc.Write(frames[:n*perMessage]); err != nil {
				b.Error(err)
				return
			}
		}
	}()
	for tag := uint64(0); tag < uint64(b.N); {
		f, err := sub.fr.ReadFrame()
		if err != nil {
			b.Fatal(err)
		}
		if f.Type == amqp.FrameBody {
			tag++
			acks = append(acks, ack...)
			binary.BigEndian.PutUint64(acks[len(acks)-len(ack)+tagAt:], tag)
		}
		if len(acks) > 0 && (sub.fr.Buffered() == 0 || len(acks) == cap(acks)) {
			sub.writeRaw(acks)
			acks = acks[:0]
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
