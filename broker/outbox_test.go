package broker

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/warrenmq/warren/amqp"
)

// readFrames decodes everything bufs hold.
func readFrames(t *testing.T, bufs [][]byte) []amqp.Frame {
	t.Helper()
	fr := amqp.NewFrameReader(bytes.NewReader(bytes.Join(bufs, nil)), 1<<20)
	var out []amqp.Frame
	for {
		f, err := fr.ReadFrame()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("read frame %d: %v", len(out), err)
		}
		f.Payload = append([]byte(nil), f.Payload...)
		out = append(out, f)
	}
}

func TestOutboxSendsLargeBodiesWithoutCopying(t *testing.T) {
	const frameMax = 4096
	o := newOutbox(frameMax)
	small := []byte("small body")
	large := bytes.Repeat([]byte("0123456789"), zeroCopyBody/10+1) // just over the threshold
	deliver := &amqp.BasicDeliver{ConsumerTag: "c", DeliveryTag: 1, RoutingKey: "q"}
	o.content(1, deliver, &amqp.Properties{}, small)
	o.content(1, deliver, &amqp.Properties{}, large)
	o.method(1, &amqp.BasicAck{DeliveryTag: 7})

	bufs := o.take()
	total := 0
	referenced := false
	for _, b := range bufs {
		total += len(b)
		if len(b) > 0 && &b[0] == &large[0] {
			referenced = true
		}
	}
	if !referenced {
		t.Fatal("the large body was copied into the buffer")
	}
	if p := o.pending(); p != 0 {
		t.Fatalf("pending after take = %d", p)
	}

	frames := readFrames(t, bufs)
	var bodies [][]byte
	var cur []byte
	for _, f := range frames {
		switch f.Type {
		case amqp.FrameMethod:
			if cur != nil {
				bodies = append(bodies, cur)
			}
			cur = []byte{}
		case amqp.FrameBody:
			if len(f.Payload)+8 > frameMax {
				t.Fatalf("body frame of %d bytes exceeds frame-max", len(f.Payload))
			}
			cur = append(cur, f.Payload...)
		}
	}
	bodies = append(bodies, cur)
	if len(bodies) != 3 || !bytes.Equal(bodies[0], small) || !bytes.Equal(bodies[1], large) || len(bodies[2]) != 0 {
		t.Fatalf("decoded %d messages, bodies of %d, %d bytes", len(bodies), len(bodies[0]), len(bodies[1]))
	}
	if total < len(large) {
		t.Fatalf("wrote %d bytes", total)
	}

	// The buffers are reused: a second burst decodes on its own.
	o.content(2, deliver, &amqp.Properties{}, large)
	if p := o.pending(); p < len(large) {
		t.Fatalf("pending = %d, want at least the body's %d", p, len(large))
	}
	if n := len(readFrames(t, o.take())); n != 2+(len(large)+frameMax-9)/(frameMax-8) {
		t.Fatalf("second burst has %d frames", n)
	}
}
