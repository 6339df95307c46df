package amqp

import (
	"bytes"
	"testing"
)

func BenchmarkDecodePublish(b *testing.B) {
	payload := AppendMethod(nil, &BasicPublish{Exchange: "amq.direct", RoutingKey: "some.routing.key"})
	var d MethodDecoder
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := d.Decode(payload); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadPublishFrames(b *testing.B) {
	var one []byte
	one = AppendMethodFrame(one, 1, &BasicPublish{RoutingKey: "q"})
	one = AppendHeaderFrame(one, 1, ClassBasic, 16, &Properties{DeliveryMode: 1})
	one = AppendBodyFrames(one, 1, make([]byte, 16), 131072)
	stream := bytes.Repeat(one, 1000)
	r := bytes.NewReader(stream)
	fr := NewFrameReader(r, 64<<10)
	var d MethodDecoder
	var h ContentHeader
	b.ReportAllocs()
	b.SetBytes(int64(len(one)))
	for i := 0; i < b.N; i++ {
		if i%1000 == 0 {
			r.Reset(stream)
		}
		for j := 0; j < 3; j++ {
			f, err := fr.ReadFrame()
			if err != nil {
				b.Fatal(err)
			}
			switch f.Type {
			case FrameMethod:
				d.Decode(f.Payload)
			case FrameHeader:
				h.Decode(f.Payload)
			}
		}
	}
}

func BenchmarkAppendDeliver(b *testing.B) {
	body := make([]byte, 16)
	props := &Properties{ContentType: "text/plain", DeliveryMode: 2}
	m := &BasicDeliver{ConsumerTag: "amq.ctag-abc", Exchange: "", RoutingKey: "queue"}
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		m.DeliveryTag = uint64(i)
		buf = AppendMethodFrame(buf[:0], 1, m)
		buf = AppendHeaderFrame(buf, 1, ClassBasic, uint64(len(body)), props)
		buf = AppendBodyFrames(buf, 1, body, 131072)
	}
}

func BenchmarkDecodeContentHeader(b *testing.B) {
	payload := AppendHeaderFrame(nil, 1, ClassBasic, 16, &Properties{DeliveryMode: 2, Priority: 1})[7:]
	payload = payload[:len(payload)-1]
	var h ContentHeader
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := h.Decode(payload); err != nil {
			b.Fatal(err)
		}
	}
}
