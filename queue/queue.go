package queue

import (
	"sync"
	"time"
)

// PublishResult is the outcome of Publish.
type PublishResult uint8

// Publish results.
const (
	// Accepted: the message was enqueued or delivered.
	Accepted PublishResult = iota
	// Rejected: the queue is full and its overflow is reject-publish or
	// reject-publish-dlx (the broker nacks in confirm mode).
	Rejected
	// Dropped: the queue was deleted; the message was not taken.
	Dropped
)

// String names the result.
func (r PublishResult) String() string {
	switch r {
	case Accepted:
		return "accepted"
	case Rejected:
		return "rejected"
	}
	return "dropped"
}

// Queue is one queue. All its methods are safe for concurrent use.
type Queue struct {
	cfg   Config // immutable after New
	hooks Hooks  // immutable after New
	epoch time.Time

	removedPool sync.Pool // *[]*Message batches for the Removed hook

	// Derived from cfg in New.
	messageTTL     int64 // nanoseconds, or -1
	expiresNanos   int64 // x-expires in nanoseconds, or 0
	hasLengthLimit bool

	mu        sync.Mutex // guards everything below
	ready     readyStore
	unacked   entryList
	consumers consumerSet
	seq       uint64
	deleted   bool

	ttlTimer    *time.Timer // message TTL, created on first use
	ttlArmedFor int64       // deadline the TTL timer is set for, or noDeadline

	expiryTimer  *time.Timer // x-expires
	expiryArmed  bool
	lastUsed     int64 // last use, on the queue's clock
	expiredFired bool
}

// New returns a queue with the given configuration and hooks. A queue with
// x-expires starts its expiry timer now.
func New(cfg Config, hooks Hooks) *Queue {
	q := &Queue{
		cfg:            cfg,
		hooks:          hooks,
		epoch:          time.Now(),
		consumers:      newConsumerSet(cfg.SingleActiveConsumer),
		ttlArmedFor:    noDeadline,
		messageTTL:     -1,
		hasLengthLimit: cfg.hasLengthLimit(),
	}
	q.ready = newReadyStore(q, cfg.MaxPriority)
	q.removedPool.New = func() any {
		s := make([]*Message, 0, 8)
		return &s
	}
	if cfg.MessageTTL >= 0 {
		q.messageTTL = int64(cfg.MessageTTL)
	}
	if cfg.Expires > 0 {
		q.expiresNanos = int64(cfg.Expires)
		q.expiryArmed = true
		q.expiryTimer = time.AfterFunc(cfg.Expires, q.onExpiryTimer)
	}
	return q
}

// Name returns the queue's name.
func (q *Queue) Name() string { return q.cfg.Name }

// Config returns the queue's configuration.
func (q *Queue) Config() Config {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.cfg
}

// now is the time on the queue's monotonic clock, in nanoseconds.
func (q *Queue) now() int64 { return int64(time.Since(q.epoch)) }

// Publish enqueues m at the back (of its priority level when the queue has
// x-max-priority), applies max-length with the queue's overflow mode and
// message TTL, and delivers to a consumer that has credit. It returns
// Rejected when the overflow mode is reject-publish or reject-publish-dlx and
// the message does not fit (reject-publish-dlx also dead-letters it), and
// Dropped when the queue was deleted.
func (q *Queue) Publish(m *Message) PublishResult {
	if m == nil {
		return Dropped
	}
	var fx effects
	q.mu.Lock()
	res := q.publishLocked(m, &fx)
	q.mu.Unlock()
	fx.run(q)
	return res
}

func (q *Queue) publishLocked(m *Message, fx *effects) PublishResult {
	if q.deleted {
		return Dropped
	}
	now, deadline := int64(0), int64(noDeadline)
	if q.ready.expiring > 0 || q.messageTTL >= 0 || m.Properties.Expiration != "" {
		now = q.now()
		deadline = q.deadline(m, now)
		q.expireHeads(now, fx)
	}
	if q.hasLengthLimit && q.cfg.Overflow != DropHead && !q.fits(m) {
		if q.cfg.Overflow == RejectPublishDLX && q.cfg.HasDeadLetterExchange && q.hooks.DeadLetter != nil {
			fx.dead = append(fx.dead, DeadLetter{Message: m, Reason: ReasonMaxLen})
		}
		return Rejected
	}
	e := q.newEntry(m, deadline)
	// An empty queue makes the new entry the head. (dispatch leaves no
	// ready entry behind while a consumer can receive, unless the head is
	// being read back: the queue is not empty then.)
	if q.consumers.linked > 0 && q.ready.len() == 0 && q.offer(e, fx) {
		return Accepted
	}
	q.ready.push(e)
	if q.hasLengthLimit && q.cfg.Overflow == DropHead {
		q.dropHeadOverflow(fx)
	}
	if q.ready.expiring > 0 { // then now was read above
		q.expireHeads(now, fx) // a TTL of 0 expires at once when undelivered
		q.armTTL(now)          // the head may have changed
	}
	return Accepted
}

// Restore enqueues a message recovered from the store at the back, with its
// redelivered flag, without applying max-length (used at start-up). Message
// TTL counts from now.
func (q *Queue) Restore(m *Message, redelivered bool) {
	if m == nil {
		return
	}
	var fx effects
	q.mu.Lock()
	if !q.deleted {
		now := q.now()
		e := q.newEntry(m, q.deadline(m, now))
		e.redelivered.Store(redelivered)
		q.ready.push(e)
		q.expireHeads(now, &fx)
		q.dispatch(&fx)
		q.armTTL(now)
	}
	q.mu.Unlock()
	fx.run(q)
}

// EnablePaging bounds the ready messages the queue keeps in memory; past
// the bound they go to p.Pager. Call it before the queue is used.
func (q *Queue) EnablePaging(p Paging) {
	q.mu.Lock()
	q.ready.paging = p
	q.mu.Unlock()
}

// RestorePaged appends a message recovered from the store without reading
// it: the queue keeps token and size and reads the message back through
// its Pager when it comes near the head (paging must be enabled). Its TTL
// counts from then, and so does max-length: nothing is dropped at restore.
func (q *Queue) RestorePaged(token uint64, size int64) {
	q.mu.Lock()
	if !q.deleted && q.ready.paging.Pager != nil {
		q.ready.addPaged(0, token, size, unknownDeadline)
	}
	q.mu.Unlock()
}

// ArmAfterRestore starts delivery and the TTL timer once RestorePaged
// calls are done.
func (q *Queue) ArmAfterRestore() {
	var fx effects
	q.mu.Lock()
	if !q.deleted {
		now := q.now()
		q.expireHeads(now, &fx)
		q.dispatch(&fx)
		q.armTTL(now)
	}
	q.mu.Unlock()
	fx.run(q)
}

// PagedOut is the number of ready messages currently out of memory.
func (q *Queue) PagedOut() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.ready.pagedCount
}

// AddConsumer registers c. It fails with ErrExclusiveConsumer when the queue
// has an exclusive consumer, or when opts.Exclusive is asked while the queue
// has consumers or uses single active consumer; with ErrQueueDeleted,
// ErrConsumerExists or ErrInvalidConsumer. The new consumer is offered ready
// messages at once (it may refuse them until it is ready, and be kicked).
func (q *Queue) AddConsumer(c Consumer, opts ConsumerOptions) error {
	var fx effects
	q.mu.Lock()
	if q.deleted {
		q.mu.Unlock()
		return ErrQueueDeleted
	}
	if _, err := q.consumers.add(c, opts); err != nil {
		q.mu.Unlock()
		return err
	}
	q.dispatch(&fx)
	q.mu.Unlock()
	fx.run(q)
	return nil
}

// RemoveConsumer unregisters c. It requeues nothing: the unacked entries
// belong to the channel, which calls Requeue. With single active consumer
// the next waiting consumer becomes active. When the last consumer of an
// auto-delete queue goes, the Unused hook fires; with x-expires, the expiry
// countdown starts again.
func (q *Queue) RemoveConsumer(c Consumer) {
	var fx effects
	q.mu.Lock()
	cs := q.consumers.lookup(c)
	if cs == nil || q.deleted {
		q.mu.Unlock()
		return
	}
	if promoted := q.consumers.remove(cs); promoted != nil {
		q.dispatch(&fx)
	}
	if q.consumers.len() == 0 {
		fx.unused = q.cfg.AutoDelete
		q.touchLocked()
	}
	q.mu.Unlock()
	fx.run(q)
}

// Kick tells the queue that c may have credit again: it is offered ready
// messages again (and so are the other consumers that can receive).
func (q *Queue) Kick(c Consumer) {
	var fx effects
	q.mu.Lock()
	if cs := q.consumers.lookup(c); cs != nil && !q.deleted {
		q.consumers.unblock(cs)
		q.dispatch(&fx)
	}
	q.mu.Unlock()
	fx.run(q)
}

// Get takes the next ready message (basic.get). With noAck the entry is
// settled at once; otherwise it is unacked until Ack, Requeue or Reject.
// remaining is the ready count after taking it. It resets the x-expires
// countdown. When the next message is being read back from the Pager, Get
// waits for it (without holding the queue's lock).
func (q *Queue) Get(noAck bool) (e *Entry, remaining int, ok bool) {
	var fx effects
	q.mu.Lock()
	q.touchLocked()
	var now int64
	for {
		if q.deleted {
			q.mu.Unlock()
			fx.run(q)
			return nil, 0, false
		}
		if q.ready.expiring > 0 {
			now = q.now()
			q.expireHeads(now, &fx)
		}
		var rd *pageRead
		if e, rd = q.ready.popOrWait(); rd == nil {
			break
		}
		q.mu.Unlock()
		<-rd.done
		q.mu.Lock()
	}
	if e != nil {
		e.deliveryCount.Add(1)
		if noAck {
			e.state = entryDone
			q.removed(&fx, e.msg)
		} else {
			e.state = entryUnacked
			q.unacked.pushBack(e)
		}
	}
	if q.ready.expiring > 0 {
		q.armTTL(now) // the new head may be due earlier
	}
	remaining = q.ready.len()
	q.mu.Unlock()
	fx.run(q)
	return e, remaining, e != nil
}

// Ack settles entries: they leave the queue for good (Removed hook).
// Entries that are not unacked entries of this queue are ignored.
func (q *Queue) Ack(entries []*Entry) {
	var fx effects
	q.mu.Lock()
	for _, e := range entries {
		if q.takeUnacked(e) {
			q.removed(&fx, e.msg)
		}
	}
	q.mu.Unlock()
	fx.run(q)
}

// Reject removes entries for good, dead-lettering them with reason
// "rejected" when the queue has a dead-letter exchange. Entries that are not
// unacked entries of this queue are ignored.
func (q *Queue) Reject(entries []*Entry) {
	var fx effects
	q.mu.Lock()
	for _, e := range entries {
		if q.takeUnacked(e) {
			q.deadLettered(&fx, e.msg, ReasonRejected)
		}
	}
	q.mu.Unlock()
	fx.run(q)
}

// Requeue puts unacked entries back to their original position among the
// ready ones, marked redelivered, and delivers again. They keep their TTL
// deadline; drop-head max-length applies. Entries that are not unacked
// entries of this queue are ignored.
func (q *Queue) Requeue(entries []*Entry) {
	var fx effects
	q.mu.Lock()
	n := 0
	for _, e := range entries {
		if q.takeUnacked(e) {
			e.state = entryReady
			e.redelivered.Store(true)
			q.ready.pushRequeued(e)
			n++
		}
	}
	if n > 0 {
		if q.hasLengthLimit && q.cfg.Overflow == DropHead {
			q.dropHeadOverflow(&fx)
		}
		q.dispatch(&fx)
		if q.ready.expiring > 0 {
			q.armTTL(q.now())
		}
	}
	q.mu.Unlock()
	fx.run(q)
}

// Purge drops the ready messages (not the unacked ones) and returns how
// many; they go to the Removed hook, not to the dead-letter exchange.
func (q *Queue) Purge() int {
	var fx effects
	q.mu.Lock()
	n := q.ready.len()
	q.discard(q.ready.drain(func(e *Entry) {
		e.state = entryDone
		q.removed(&fx, e.msg)
	}))
	q.mu.Unlock()
	fx.run(q)
	return n
}

// Delete closes the queue: its ready and unacked messages go to the Removed
// hook, its timers stop, and later calls do nothing (Publish returns
// Dropped, Get returns !ok, AddConsumer fails). It returns the consumers it
// had, so that the broker can cancel them, and the number of ready messages.
// Deleting twice returns nothing the second time.
func (q *Queue) Delete() (consumers []Consumer, messages int) {
	var fx effects
	q.mu.Lock()
	if q.deleted {
		q.mu.Unlock()
		return nil, 0
	}
	q.deleted = true
	consumers = q.consumers.clear()
	messages = q.ready.len()
	q.discard(q.ready.drain(func(e *Entry) {
		e.state = entryDone
		q.removed(&fx, e.msg)
	}))
	for e := q.unacked.head; e != nil; e = q.unacked.head {
		q.unacked.remove(e)
		e.state = entryDone
		q.removed(&fx, e.msg)
	}
	if q.ttlTimer != nil {
		q.ttlTimer.Stop()
	}
	if q.expiryTimer != nil {
		q.expiryTimer.Stop()
	}
	q.mu.Unlock()
	fx.run(q)
	return consumers, messages
}

// discard hands the tokens of paged-out messages that left the queue to
// the Pager.
func (q *Queue) discard(tokens []uint64) {
	if len(tokens) > 0 {
		q.ready.paging.Pager.Discard(tokens)
	}
}

// Touch marks the queue as used (queue.declare of an existing queue,
// basic.get): the x-expires countdown starts again.
func (q *Queue) Touch() {
	q.mu.Lock()
	q.touchLocked()
	q.mu.Unlock()
}

// Counts returns the number of ready messages, of unacked deliveries and of
// consumers (including waiting single-active-consumer ones).
func (q *Queue) Counts() (ready, unacked, consumers int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.ready.len(), q.unacked.len, q.consumers.len()
}

// ReadyBytes is the total body size of the ready messages.
func (q *Queue) ReadyBytes() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.ready.bytes
}

// ConsumerCount is the number of consumers.
func (q *Queue) ConsumerCount() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.consumers.len()
}

// IsDeleted reports whether Delete was called.
func (q *Queue) IsDeleted() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.deleted
}
