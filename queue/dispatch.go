package queue

// The internal mechanics of a queue: entries, delivery to consumers, limits
// and expiry. Everything here runs with q.mu held.

// newEntry makes the entry for m, next in the queue's order.
func (q *Queue) newEntry(m *Message, deadline int64) *Entry {
	q.seq++
	e := &Entry{msg: m, queue: q, seq: q.seq, expiresAt: deadline}
	if q.cfg.MaxPriority > 0 {
		e.priority = min(m.Properties.Priority, q.cfg.MaxPriority)
	}
	return e
}

// deadline is when m expires if enqueued now: now plus the lower of the
// queue's x-message-ttl and m's expiration property, or noDeadline.
func (q *Queue) deadline(m *Message, now int64) int64 {
	ttl := q.messageTTL
	if exp := m.Properties.Expiration; exp != "" {
		if ms, ok := parseExpirationMillis(exp); ok {
			if d := ms * 1e6; ttl < 0 || d < ttl {
				ttl = d
			}
		}
	}
	if ttl < 0 {
		return noDeadline
	}
	return now + ttl
}

// offer hands e, which is not in the ready store, to the consumers that can
// receive, in order, until one takes it. It reports whether one did.
func (q *Queue) offer(e *Entry, fx *effects) bool {
	for {
		cs := q.consumers.next()
		if cs == nil {
			return false
		}
		if cs.c.Deliver(e, e.redelivered.Load()) {
			q.consumers.served(cs)
			q.delivered(e, cs, fx)
			return true
		}
		q.consumers.block(cs)
	}
}

// dispatch delivers ready entries, head first, while a consumer can receive.
func (q *Queue) dispatch(fx *effects) {
	if q.consumers.linked == 0 || q.ready.len() == 0 {
		return
	}
	var now int64
	if q.ready.expiring > 0 {
		now = q.now()
	}
	for q.ready.len() > 0 {
		cs := q.consumers.next()
		if cs == nil {
			break
		}
		// A message that expired while it waited behind one with a later
		// deadline is at the head now: it goes, it is not delivered (as
		// RabbitMQ drops expired heads after every fetch).
		q.expireHeads(now, fx)
		e := q.ready.peek()
		if e == nil {
			break // the head is being read back: its pageIn dispatches
		}
		if !cs.c.Deliver(e, e.redelivered.Load()) {
			q.consumers.block(cs)
			continue
		}
		q.ready.pop()
		q.consumers.served(cs)
		q.delivered(e, cs, fx)
	}
	if q.ready.expiring > 0 {
		q.armTTL(now) // the new heads may be due earlier
	}
}

// delivered records that cs took e.
func (q *Queue) delivered(e *Entry, cs *consumerState, fx *effects) {
	e.deliveryCount.Add(1)
	if cs.opts.NoAck {
		e.state = entryDone
		q.removed(fx, e.msg)
		return
	}
	e.state = entryUnacked
	q.unacked.pushBack(e)
}

// takeUnacked removes e from the unacked list and marks it done, if it is an
// unacked entry of this queue.
func (q *Queue) takeUnacked(e *Entry) bool {
	if e == nil || e.queue != q || e.state != entryUnacked {
		return false
	}
	q.unacked.remove(e)
	e.state = entryDone
	return true
}

// fits reports whether m can be added to the ready messages within
// x-max-length and x-max-length-bytes.
func (q *Queue) fits(m *Message) bool {
	if q.cfg.MaxLength >= 0 && int64(q.ready.len())+1 > q.cfg.MaxLength {
		return false
	}
	if q.cfg.MaxLengthBytes >= 0 && q.ready.bytes+int64(m.Size()) > q.cfg.MaxLengthBytes {
		return false
	}
	return true
}

// dropHeadOverflow drops entries from the head, dead-lettering them with
// reason "maxlen", until the ready messages are within both limits.
func (q *Queue) dropHeadOverflow(fx *effects) {
	for q.ready.len() > 0 &&
		((q.cfg.MaxLength >= 0 && int64(q.ready.len()) > q.cfg.MaxLength) ||
			(q.cfg.MaxLengthBytes >= 0 && q.ready.bytes > q.cfg.MaxLengthBytes)) {
		e := q.ready.pop()
		if e == nil {
			break // the head is being read back: its pageIn drops it
		}
		e.state = entryDone
		q.deadLettered(fx, e.msg, ReasonMaxLen)
	}
}

// expireHeads removes the expired entries at the heads of the ready store,
// dead-lettering them with reason "expired".
func (q *Queue) expireHeads(now int64, fx *effects) {
	q.ready.expireHeads(now, func(e *Entry) {
		e.state = entryDone
		q.deadLettered(fx, e.msg, ReasonExpired)
	})
}
