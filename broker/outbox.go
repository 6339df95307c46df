package broker

import (
	"sync"

	"github.com/warrenmq/warren/amqp"
)

// outbox collects a connection's outgoing frames. Producers (the reader
// goroutine, queues delivering to consumers, the store's committer releasing
// confirms) append encoded frames under mu; the writer goroutine swaps the
// buffer out and writes it with one syscall per burst.
type outbox struct {
	mu       sync.Mutex
	buf      []byte
	spare    []byte
	frameMax uint32
	closed   bool
	signal   chan struct{} // capacity 1: "there is something to write"
}

// maxIdleOutbox is the largest buffer an outbox keeps for reuse.
const maxIdleOutbox = 4 << 20

func newOutbox(frameMax uint32) *outbox {
	return &outbox{frameMax: frameMax, signal: make(chan struct{}, 1)}
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
	o.buf = amqp.AppendBodyFrames(o.buf, channel, body, o.frameMax)
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

// take swaps out the pending bytes for the writer. The returned slice is
// owned by the writer until the next take.
func (o *outbox) take() []byte {
	o.mu.Lock()
	out := o.buf
	if cap(o.spare) > maxIdleOutbox {
		o.spare = nil // let a burst's large buffer go
	}
	o.buf = o.spare[:0]
	o.spare = out
	o.mu.Unlock()
	return out
}

// pending returns the number of bytes waiting to be written.
func (o *outbox) pending() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.buf)
}

// close drops whatever is pending and refuses further frames.
func (o *outbox) close() {
	o.mu.Lock()
	o.closed = true
	o.buf, o.spare = nil, nil
	o.mu.Unlock()
	o.notify()
}
