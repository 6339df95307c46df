package queue

// Hooks let the owner react to what the queue does. Every hook is optional
// and is called without the queue's lock held, from the goroutine of the
// call that caused it (a publisher, a consumer's channel, or a timer), so
// hooks of one queue may run concurrently. A hook may call into the queue.
type Hooks struct {
	// DeadLetter receives messages dead-lettered: rejected without
	// requeue, expired by TTL, or dropped or refused by max-length
	// (drop-head, reject-publish-dlx). Called only when the queue has a
	// dead-letter exchange. Queue.DeadLetterMessage builds the copy to
	// republish.
	DeadLetter func(q *Queue, dead []DeadLetter)
	// Unused fires for an auto-delete queue when its last consumer goes
	// (never for a queue that never had one). The owner deletes the queue.
	Unused func(q *Queue)
	// Expired fires once when x-expires elapsed with no consumer, no Get
	// and no Touch. The owner deletes the queue.
	Expired func(q *Queue)
	// Removed receives messages that left the queue for good: acked,
	// rejected, expired, dropped, purged, deleted with the queue, or
	// delivered to a no-ack consumer or by a no-ack Get. The broker uses it
	// to delete persistent messages from the store. A publish the queue
	// refused (PublishResult Rejected) never entered it and is not
	// reported. msgs is only valid during the call: the queue reuses it.
	Removed func(q *Queue, msgs []*Message)
}

// maxPooledRemoved is the largest Removed batch buffer kept for reuse.
const maxPooledRemoved = 1024

// effects collects, under the queue's lock, the hook calls to make once it
// is released.
type effects struct {
	removed *[]*Message // from the queue's pool, taken on first use
	dead    []DeadLetter
	unused  bool
	expired bool
}

// removed records that m left the queue for good.
func (q *Queue) removed(fx *effects, m *Message) {
	if q.hooks.Removed == nil {
		return
	}
	if fx.removed == nil {
		fx.removed = q.removedPool.Get().(*[]*Message)
	}
	*fx.removed = append(*fx.removed, m)
}

// deadLettered records that m is dead-lettered (if the queue has a DLX) and
// that it left the queue.
func (q *Queue) deadLettered(fx *effects, m *Message, reason string) {
	if q.cfg.HasDeadLetterExchange && q.hooks.DeadLetter != nil {
		fx.dead = append(fx.dead, DeadLetter{Message: m, Reason: reason})
	}
	q.removed(fx, m)
}

// run calls the hooks collected in fx. The caller has released the lock.
func (fx *effects) run(q *Queue) {
	if len(fx.dead) > 0 {
		q.hooks.DeadLetter(q, fx.dead)
	}
	if fx.removed != nil {
		if msgs := *fx.removed; len(msgs) > 0 {
			q.hooks.Removed(q, msgs)
			clear(msgs)
		}
		if cap(*fx.removed) <= maxPooledRemoved {
			*fx.removed = (*fx.removed)[:0]
			q.removedPool.Put(fx.removed)
		}
		fx.removed = nil
	}
	if fx.unused && q.hooks.Unused != nil {
		q.hooks.Unused(q)
	}
	if fx.expired && q.hooks.Expired != nil {
		q.hooks.Expired(q)
	}
}
