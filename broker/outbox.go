package broker

import (
	"net"
	"sync"

	"github.com/warrenmq/warren/amqp"
)

// outbox collects a connection's outgoing frames. Producers (the reader
// goroutine, queues delivering to consumers, the store's committer releasing
// confirms) append encoded frames under mu; the writer goroutine swaps them
// out and writes them with one syscall per burst. Bodies of zeroCopyBody
// bytes or more are not copied: the pending bytes are then a list of
// segments (encoded frames, body slices) written with writev.
type outbox struct {
	mu       sync.Mutex
	buf      []byte      // encoded frames
	cut      int         // start of buf's part not yet in segs
	segs     net.Buffers // pending pieces before buf[cut:]
	segLen   int         // bytes in segs
	spare    []byte
	spareSeg net.Buffers
	frameMax uint32
	closed   bool
	// markAt is, when a pending delivery's delivered mark was handed to
	// the store, the index in segs where the first such delivery starts
	// (the bytes before it are cut into segs); -1 otherwise. The writer
	// writes the segments before it at once and the rest after syncing
	// the store (deliverymark.go).
	markAt int
	signal chan struct{} // capacity 1: "there is something to write"
}

// maxIdleOutbox is the largest buffer an outbox keeps for reuse.
const maxIdleOutbox = 4 << 20

// zeroCopyBody is the body size from which deliveries reference the
// message's body instead of copying it into the buffer.
const zeroCopyBody = 64 << 10

func newOutbox(frameMax uint32) *outbox {
	return &outbox{frameMax: frameMax, signal: make(chan struct{}, 1), markAt: -1}
}

func (o *outbox) notify() {
	select {
	case o.signal <- struct{}{}:
	default:
	}
}

// method appends one method frame.
func (o *outbox) method(channel uint16, m amqp.Method) {
	o.mu.Lock()
	if !o.closed {
		o.buf = amqp.AppendMethodFrame(o.buf, channel, m)
	}
	o.mu.Unlock()
	o.notify()
}

// content appends a method with content: the method, header and body frames.
// The caller holds o.mu.
func (o *outbox) appendContentLocked(channel uint16, m amqp.Method, props *amqp.Properties, body []byte) {
	if o.closed {
		return
	}
	o.buf = amqp.AppendMethodFrame(o.buf, channel, m)
	o.buf = amqp.AppendHeaderFrame(o.buf, channel, amqp.ClassBasic, uint64(len(body)), props)
	if len(body) < zeroCopyBody {
		o.buf = amqp.AppendBodyFrames(o.buf, channel, body, o.frameMax)
		return
	}
	chunk := amqp.BodyChunk(o.frameMax, len(body))
	for len(body) > 0 {
		n := min(chunk, len(body))
		o.buf = amqp.AppendFrameHeader(o.buf, amqp.FrameBody, channel, n)
		o.cutLocked()
		o.segs = append(o.segs, body[:n:n])
		o.segLen += n
		o.buf = append(o.buf, amqp.FrameEnd)
		body = body[n:]
	}
}

// cutLocked ends the current run of encoded frames as a segment.
func (o *outbox) cutLocked() {
	if n := len(o.buf); n > o.cut {
		o.segs = append(o.segs, o.buf[o.cut:n:n])
		o.segLen += n - o.cut
		o.cut = n
	}
}

// content appends a method with content and wakes the writer.
func (o *outbox) content(channel uint16, m amqp.Method, props *amqp.Properties, body []byte) {
	o.mu.Lock()
	o.appendContentLocked(channel, m, props, body)
	o.mu.Unlock()
	o.notify()
}

// raw appends bytes as they are (the protocol header, heartbeats).
func (o *outbox) raw(b []byte) {
	o.mu.Lock()
	if !o.closed {
		o.buf = append(o.buf, b...)
	}
	o.mu.Unlock()
	o.notify()
}

// take swaps out the pending bytes for the writer. The returned buffers
// are owned by the writer until the next take.
func (o *outbox) take() net.Buffers {
	bufs, _ := o.takeMarked()
	return bufs
}

// markLocked notes that the delivery about to be appended has its
// delivered mark in the store's hands. The caller holds o.mu.
func (o *outbox) markLocked() {
	if o.markAt < 0 {
		o.cutLocked()
		o.markAt = len(o.segs)
	}
}

// takeMarked is take, and returns the index of the first buffer that
// must wait until the store has synced the delivered marks, or -1.
func (o *outbox) takeMarked() (net.Buffers, int) {
	o.mu.Lock()
	markAt := o.markAt
	o.markAt = -1
	o.cutLocked()
	out := o.segs
	if cap(o.spare) > maxIdleOutbox {
		o.spare = nil // let a burst's large buffer go
	}
	o.spare, o.buf = o.buf, o.spare[:0]
	clear(o.spareSeg) // drop references to bodies already written
	o.spareSeg, o.segs = o.segs, o.spareSeg[:0]
	o.cut, o.segLen = 0, 0
	o.mu.Unlock()
	return out, markAt
}

// pending returns the number of bytes waiting to be written.
func (o *outbox) pending() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.segLen + len(o.buf) - o.cut
}

// close drops whatever is pending and refuses further frames.
func (o *outbox) close() {
	o.mu.Lock()
	o.closed = true
	o.buf, o.spare, o.segs, o.spareSeg = nil, nil, nil, nil
	o.cut, o.segLen, o.markAt = 0, 0, -1
	o.mu.Unlock()
	o.notify()
}
