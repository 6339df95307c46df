package queue

import "testing"

// creditConsumer always has credit and keeps the last delivery for the
// benchmark to ack.
type creditConsumer struct{ last *Entry }

func (c *creditConsumer) Deliver(e *Entry, _ bool) bool {
	c.last = e
	return true
}

func BenchmarkPublishDeliverAck(b *testing.B) {
	q := New(DefaultConfig("bench"), Hooks{Removed: func(*Queue, []*Message) {}})
	defer q.Delete()
	c := &creditConsumer{}
	if err := q.AddConsumer(c, ConsumerOptions{}); err != nil {
		b.Fatal(err)
	}
	m := &Message{Body: make([]byte, 64)}
	batch := make([]*Entry, 1)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		q.Publish(m)
		batch[0] = c.last
		q.Ack(batch)
	}
}

func BenchmarkPublishNoConsumerThenGet(b *testing.B) {
	q := New(DefaultConfig("bench"), Hooks{Removed: func(*Queue, []*Message) {}})
	defer q.Delete()
	m := &Message{Body: make([]byte, 64)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		q.Publish(m)
	}
	for i := 0; i < b.N; i++ {
		if _, _, ok := q.Get(true); !ok {
			b.Fatal("queue ran dry")
		}
	}
}

func BenchmarkPublishNoConsumer(b *testing.B) {
	q := New(DefaultConfig("bench"), Hooks{})
	defer q.Delete()
	m := &Message{Body: make([]byte, 64)}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		q.Publish(m)
	}
}

func BenchmarkPublishWithTTLDeliverAck(b *testing.B) {
	cfg := DefaultConfig("bench")
	cfg.MessageTTL = 60_000_000_000
	q := New(cfg, Hooks{Removed: func(*Queue, []*Message) {}})
	defer q.Delete()
	c := &creditConsumer{}
	q.AddConsumer(c, ConsumerOptions{})
	m := &Message{Body: make([]byte, 64)}
	batch := make([]*Entry, 1)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		q.Publish(m)
		batch[0] = c.last
		q.Ack(batch)
	}
}

func BenchmarkRoundRobinThreeConsumers(b *testing.B) {
	q := New(DefaultConfig("bench"), Hooks{})
	defer q.Delete()
	cs := []*creditConsumer{{}, {}, {}}
	for _, c := range cs {
		q.AddConsumer(c, ConsumerOptions{})
	}
	m := &Message{Body: make([]byte, 64)}
	batch := make([]*Entry, 1)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		q.Publish(m)
		batch[0] = cs[i%3].last
		q.Ack(batch)
	}
}

func BenchmarkMessageMarshal(b *testing.B) {
	m := fullMessage()
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		var err error
		if buf, err = m.AppendBinary(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMessageUnmarshal(b *testing.B) {
	data, err := fullMessage().MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := UnmarshalMessage(data); err != nil {
			b.Fatal(err)
		}
	}
}
