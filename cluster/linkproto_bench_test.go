package cluster

import (
	"testing"

	"github.com/warrenmq/warren/queue"
)

// benchMessage is scenario (a)'s message encoded as the link carries it.
func benchMessage(b *testing.B) []byte {
	m := &queue.Message{RoutingKey: "warren-perf-queue-0123456789", Body: make([]byte, 16)}
	m.Properties.DeliveryMode = 1
	data, err := m.AppendBinary(nil)
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// BenchmarkLinkDecodeCopying decodes as the link did before: a copy of
// each string and of the body.
func BenchmarkLinkDecodeCopying(b *testing.B) {
	data := benchMessage(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := queue.UnmarshalMessage(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLinkDecode decodes as the link does: one allocation.
func BenchmarkLinkDecode(b *testing.B) {
	data := benchMessage(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeMessage(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLinkNames reads a publish's vhost and queue name.
func BenchmarkLinkNames(b *testing.B) {
	frame := appendString(appendString(nil, "/"), "warren-perf-queue-0123456789")
	var c nameCache
	b.ReportAllocs()
	for b.Loop() {
		fr := &frameReader{b: frame}
		c.names(fr)
	}
}
