package cluster

import (
	"io"
	"log/slog"
	"net"
	"testing"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/queue"
)

// testLink returns a link whose peer end is discarded, not started: frames
// are handled by calling handle, and what it sends stays in its buffer.
func testLink(t testing.TB) *link {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	ls := newLinks("self", slog.New(slog.NewTextHandler(io.Discard, nil)), func(string) (string, bool) { return "", false })
	return newLink(ls, "peer", a, nil)
}

// sentFrames splits what a link has buffered into frame bodies.
func sentFrames(t testing.TB, l *link) [][]byte {
	t.Helper()
	l.wmu.Lock()
	buf := append([]byte(nil), l.wbuf...)
	l.wbuf = l.wbuf[:0]
	l.wmu.Unlock()
	var out [][]byte
	for len(buf) > 0 {
		body, err := readFrameInto(bytesReader(buf), nil)
		if err != nil {
			t.Fatalf("the link buffered a malformed frame: %v", err)
		}
		out = append(out, body)
		buf = buf[4+len(body):]
	}
	return out
}

type sliceReader struct{ b []byte }

func (r *sliceReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

func bytesReader(b []byte) io.Reader { return &sliceReader{b: b} }

// TestLinkRepliesWithoutAServer: a node whose broker is not attached yet
// answers every request (the queue is not here, a publish is rejected),
// and settles deliveries for consumers it does not know back to the home.
func TestLinkRepliesWithoutAServer(t *testing.T) {
	l := testLink(t)
	m := &queue.Message{Exchange: "x", RoutingKey: "k", Body: []byte("hello")}
	var encErr error
	msg := appendMessage(nil, m, &encErr)
	if encErr != nil {
		t.Fatal(encErr)
	}
	q := appendString(appendString(nil, "/"), "q")
	frames := [][]byte{
		append(append(append([]byte{framePublish}, appendUvarint(nil, 7)...), q...), msg...),
		append(append(append([]byte{frameConsume}, appendUvarint(appendUvarint(nil, 8), 1)...), q...), 0, 0, 10),
		append(append([]byte{frameGet}, appendUvarint(nil, 9)...), append(q, 1)...),
		append(append([]byte{framePurge}, appendUvarint(nil, 10)...), q...),
		append(append([]byte{frameInfo}, appendUvarint(nil, 11)...), append(q, 0)...),
		append(append([]byte{frameDeliver}, appendUvarint(appendUvarint(nil, 99), 5)...), append([]byte{0}, msg...)...),
	}
	for i, f := range frames {
		if err := l.handle(f); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
	sent := sentFrames(t, l)
	if len(sent) != len(frames) {
		t.Fatalf("%d frames sent for %d requests", len(sent), len(frames))
	}
	for i, want := range []uint64{7, 8, 9, 10, 11} {
		fr := &frameReader{b: sent[i][1:]}
		if sent[i][0] != frameReply || fr.uvarint() != want {
			t.Fatalf("answer %d: %v", i, sent[i])
		}
		err := fr.status()
		if i == 0 {
			if err != nil || queue.PublishResult(fr.byte()) != queue.Rejected {
				t.Errorf("publish answer: %v", sent[i])
			}
		} else if err == nil {
			t.Errorf("answer %d is not an error: %v", i, sent[i])
		}
	}
	fr := &frameReader{b: sent[5][1:]}
	if sent[5][0] != frameSettle || broker.Settlement(fr.byte()) != broker.SettleRequeue || fr.uvarint() != 1 || fr.uvarint() != 5 || fr.done() != nil {
		t.Errorf("a delivery for an unknown consumer was not requeued: %v", sent[5])
	}
}

// TestAppendMessageRoundTrips: messages of every size class (the length
// is fixed up in place after the message is encoded) decode back.
func TestAppendMessageRoundTrips(t *testing.T) {
	for _, size := range []int{0, 1, 100, 127, 128, 16383, 16384, 1 << 20} {
		m := &queue.Message{ID: 42, Exchange: "e", RoutingKey: "r", Body: make([]byte, size)}
		var err error
		b := appendMessage([]byte{0xAA}, m, &err)
		if err != nil {
			t.Fatal(err)
		}
		fr := &frameReader{b: b[1:]}
		data := fr.bytes()
		if fr.done() != nil {
			t.Fatalf("size %d: bad framing", size)
		}
		got, err := queue.UnmarshalMessage(data)
		if err != nil || len(got.Body) != size || got.ID != 42 || got.RoutingKey != "r" {
			t.Fatalf("size %d: %+v, %v", size, got, err)
		}
	}
}

// FuzzLinkFrame: no frame makes the link panic; every frame is handled or
// refused with an error.
func FuzzLinkFrame(f *testing.F) {
	q := appendString(appendString(nil, "/"), "q")
	for _, kind := range []byte{frameReply, framePublish, frameConsume, frameCancel, frameCredit, frameSettle,
		frameDeliver, frameCancelled, frameGet, framePurge, frameInfo, 99} {
		f.Add(append([]byte{kind, 1}, q...))
	}
	f.Add([]byte{frameSettle, 0, 200, 1})
	f.Add([]byte{frameReply, 1, 1, 0, 1, 0, 2, 0, 3, 1, 'x'})
	f.Fuzz(func(t *testing.T, body []byte) {
		l := testLink(t)
		_ = l.handle(body)
	})
}
