package broker_test

import (
	"context"
	"testing"

	rmq "github.com/rabbitmq/amqp091-go"

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
