package queue

import (
	"math"
	"sync/atomic"
)

// noDeadline is the expiresAt of an entry without TTL.
const noDeadline = math.MaxInt64

// entryState is where an entry is in its life in the queue.
type entryState uint8

const (
	entryReady   entryState = iota // waiting in the ready store
	entryUnacked                   // delivered, awaiting ack, reject or requeue
	entryDone                      // gone: acked, rejected, expired, dropped, purged or deleted
)

// Entry is one message's place in one queue. Deliveries carry it and the
// owner hands it back to settle it (Ack, Requeue, Reject). Its methods are
// safe to call from any goroutine.
type Entry struct {
	msg   *Message
	queue *Queue

	prev, next *Entry // the queue's unacked list, while unacked

	seq       uint64 // per-queue publish order; the original position for requeue
	expiresAt int64  // deadline on the queue's clock, or noDeadline

	// Written under the queue's mutex; atomic so that the accessors need
	// not take it (they may be called from inside Consumer.Deliver).
	deliveryCount atomic.Uint32
	redelivered   atomic.Bool

	priority uint8      // level in the ready store
	state    entryState // guarded by the queue's mutex
}

// Message returns the entry's message.
func (e *Entry) Message() *Message { return e.msg }

// Queue returns the queue the entry belongs to.
func (e *Entry) Queue() *Queue { return e.queue }

// Redelivered reports whether the message was delivered before: requeued,
// or restored as delivered.
func (e *Entry) Redelivered() bool { return e.redelivered.Load() }

// DeliveryCount is the number of times the message was handed to a
// consumer or to Get from this queue since it was published or restored.
func (e *Entry) DeliveryCount() int { return int(e.deliveryCount.Load()) }

// entryList is an intrusive doubly linked list of entries (the unacked ones),
// O(1) to add and remove without allocating.
type entryList struct {
	head, tail *Entry
	len        int
}

func (l *entryList) pushBack(e *Entry) {
	e.prev, e.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = e
	} else {
		l.head = e
	}
	l.tail = e
	l.len++
}

func (l *entryList) remove(e *Entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		l.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		l.tail = e.prev
	}
	e.prev, e.next = nil, nil
	l.len--
}
