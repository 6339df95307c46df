package exchange

import (
	"fmt"
	"testing"

	"github.com/warrenmq/warren/amqp"
)

// topicBindings binds n queues with keys like "region.3.service.17.*" and
// some wildcards, as an application with many consumers would.
func topicBindings(n int) *Exchange {
	e := New("t", Topic, false, false, false, nil)
	for i := 0; i < n; i++ {
		key := fmt.Sprintf("region.%d.service.%d.*", i%50, i)
		switch i % 10 {
		case 0:
			key = fmt.Sprintf("region.%d.#", i%50)
		case 1:
			key = fmt.Sprintf("*.%d.service.#", i%50)
		}
		e.Bind(Binding{Destination: Destination{Name: fmt.Sprintf("q%d", i)}, Key: key})
	}
	return e
}

func BenchmarkTopicRoute10kBindings(b *testing.B) {
	e := topicBindings(10000)
	out := make([]Destination, 0, 1024)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out = e.Route("region.7.service.4507.event", nil, out[:0])
	}
	if len(out) == 0 {
		b.Fatal("no route")
	}
}

func BenchmarkTopicBind10k(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		topicBindings(10000)
	}
}

func BenchmarkDirectRoute(b *testing.B) {
	e := New("d", Direct, false, false, false, nil)
	for i := 0; i < 10000; i++ {
		e.Bind(Binding{Destination: Destination{Name: fmt.Sprintf("q%d", i)}, Key: fmt.Sprintf("key-%d", i)})
	}
	out := make([]Destination, 0, 8)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out = e.Route("key-4242", nil, out[:0])
	}
}

func BenchmarkDirectBind10k(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		e := New("d", Direct, false, false, false, nil)
		for j := 0; j < 10000; j++ {
			e.Bind(Binding{Destination: Destination{Name: fmt.Sprintf("q%d", j)}, Key: fmt.Sprintf("key-%d", j)})
		}
	}
}

func BenchmarkFanoutRoute(b *testing.B) {
	e := New("f", Fanout, false, false, false, nil)
	for i := 0; i < 10; i++ {
		e.Bind(Binding{Destination: Destination{Name: fmt.Sprintf("q%d", i)}})
	}
	out := make([]Destination, 0, 16)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out = e.Route("", nil, out[:0])
	}
}

func BenchmarkHeadersRoute(b *testing.B) {
	e := New("h", Headers, false, false, false, nil)
	for i := 0; i < 100; i++ {
		e.Bind(Binding{Destination: Destination{Name: fmt.Sprintf("q%d", i)},
			Args: amqp.Table{"x-match": "all", "type": fmt.Sprintf("t%d", i%10), "region": "eu"}})
	}
	headers := amqp.Table{"type": "t3", "region": "eu", "other": int32(1)}
	out := make([]Destination, 0, 16)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out = e.Route("", headers, out[:0])
	}
}
