package broker

import (
	"sync"

	"github.com/warrenmq/warren/amqp"
)

// confirmTracker numbers a channel's publishes in confirm mode and sends
// basic.ack/nack in order once they resolve. Resolutions may arrive out of
// order (a transient message resolves at once, a persistent one after its
// group commit); runs of resolved publishes at the front are confirmed with
// one multiple=true ack.
type confirmTracker struct {
	ch *channel

	mu      sync.Mutex
	nextSeq uint64
	base    uint64 // sequence number of states[0]
	states  []confirmState
	closed  bool // the channel closed: nothing more goes out
}

type confirmState uint8

const (
	confirmPending confirmState = iota
	confirmAck
	confirmNack
)

func newConfirmTracker(ch *channel) *confirmTracker {
	return &confirmTracker{ch: ch, base: 1}
}

// next returns the sequence number of the next publish.
func (t *confirmTracker) next() uint64 {
	t.mu.Lock()
	t.nextSeq++
	t.states = append(t.states, confirmPending)
	seq := t.nextSeq
	t.mu.Unlock()
	return seq
}

// resolve records the outcome of seq and sends what can be confirmed.
func (t *confirmTracker) resolve(seq uint64, ack bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.markLocked(seq, ack)
	t.emitLocked()
}

// mark records the outcome of seq without sending; the reader goroutine
// marks a burst of publishes and flushes once (see conn.flushConfirms).
func (t *confirmTracker) mark(seq uint64, ack bool) {
	t.mu.Lock()
	t.markLocked(seq, ack)
	t.mu.Unlock()
}

// flush sends what can be confirmed.
func (t *confirmTracker) flush() {
	t.mu.Lock()
	t.emitLocked()
	t.mu.Unlock()
}

// close sends what can be confirmed and stops the tracker: the channel
// is closing, and once its close-ok is out nothing may follow on its
// number (a client may reopen it at once). Publishes resolved later are
// not confirmed, as in RabbitMQ.
func (t *confirmTracker) close() {
	t.mu.Lock()
	t.emitLocked()
	t.closed = true
	t.states = nil
	t.mu.Unlock()
}

func (t *confirmTracker) markLocked(seq uint64, ack bool) {
	i := seq - t.base
	if seq < t.base || i >= uint64(len(t.states)) {
		return
	}
	if ack {
		t.states[i] = confirmAck
	} else {
		t.states[i] = confirmNack
	}
}

// emitLocked sends acks and nacks for the resolved run at the front: one
// frame per run of equal outcomes, multiple=true when it covers several.
func (t *confirmTracker) emitLocked() {
	if t.closed {
		return
	}
	n := 0
	for n < len(t.states) && t.states[n] != confirmPending {
		n++
	}
	if n == 0 {
		return
	}
	o := t.ch.c.out
	o.mu.Lock()
	for start := 0; start < n; {
		end := start
		for end+1 < n && t.states[end+1] == t.states[start] {
			end++
		}
		tag := t.base + uint64(end)
		multiple := end > start
		if !o.closed {
			if t.states[start] == confirmAck {
				o.buf = amqp.AppendMethodFrame(o.buf, t.ch.id, &amqp.BasicAck{DeliveryTag: tag, Multiple: multiple})
			} else {
				o.buf = amqp.AppendMethodFrame(o.buf, t.ch.id, &amqp.BasicNack{DeliveryTag: tag, Multiple: multiple})
			}
		}
		start = end + 1
	}
	o.mu.Unlock()
	o.notify()
	t.base += uint64(n)
	t.states = t.states[n:]
	if len(t.states) == 0 {
		t.states = t.states[:0:0] // release the backing array once drained
	}
}

func (ch *channel) onConfirmSelect(m *amqp.ConfirmSelect) error {
	if ch.tx != nil {
		return amqp.Errorf(amqp.PreconditionFailed, "cannot switch from tx to confirm mode")
	}
	if ch.confirms == nil {
		ch.confirms = newConfirmTracker(ch)
		ch.mu.Lock()
		ch.confirmInfo = true
		ch.mu.Unlock()
	}
	if !m.Nowait {
		ch.send(&amqp.ConfirmSelectOk{})
	}
	return nil
}
