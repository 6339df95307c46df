package broker

import (
	"sync"
	"sync/atomic"

	"github.com/warrenmq/warren/queue"
)

// localQueue is a queue of this node: the queue itself plus what the
// broker keeps with it (its exclusive owner, store key, counters and
// policy). It is the QueueHandle of every queue of a standalone broker;
// in a cluster, of the queues whose home is this node.
// The vhost and the metadata log create and drop it; routing, channels
// and management use it through QueueHandle.
type localQueue struct {
	queue    *queue.Queue
	vhost    *Vhost
	owner    *conn // exclusive owner, nil otherwise
	storeKey string
	durable  bool // durable and not exclusive: keeps persistent messages on disk
	stats    Counters
	policy   atomic.Pointer[string] // name of the policy applied, "" for none

	consumers sync.Map // Consumer -> *localConsumer
}

var _ QueueHandle = (*localQueue)(nil)

// Name implements QueueHandle.
func (q *localQueue) Name() string { return q.queue.Name() }

// Info implements QueueHandle.
func (q *localQueue) Info() QueueInfo {
	cfg := q.queue.Config()
	ready, unacked, consumers := q.queue.Counts()
	info := QueueInfo{
		Vhost: q.vhost.name, Name: cfg.Name, Durable: cfg.Durable, AutoDelete: cfg.AutoDelete,
		Exclusive: cfg.Exclusive, Arguments: cfg.Args, Ready: ready, Unacked: unacked,
		Consumers: consumers, ReadyBytes: q.queue.ReadyBytes(), PagedOut: q.queue.PagedOut(), Policy: q.policyName(),
		Node: q.vhost.srv.nodeName(),
	}
	if q.owner != nil {
		info.Owner = q.owner.name
	}
	return info
}

// Counts implements QueueHandle.
func (q *localQueue) Counts() (ready, unacked, consumers int) { return q.queue.Counts() }

// MessageStats implements QueueHandle.
func (q *localQueue) MessageStats() MessageStats { return q.stats.Snapshot() }

// Publish implements QueueHandle. A persistent message for a durable
// queue is in the store already (persistMessage, one record for every
// queue of this node it was routed to); when the queue does not take it,
// the queue's reference to that record goes.
func (q *localQueue) Publish(m *queue.Message) queue.PublishResult {
	res := q.queue.Publish(m)
	if res == queue.Accepted {
		q.stats.Inc(StatPublish)
	} else {
		q.vhost.srv.unpersistRejected(q, m)
	}
	return res
}

// Get implements QueueHandle. It resets the x-expires countdown.
func (q *localQueue) Get(noAck bool) (QueueEntry, int, bool) {
	e, remaining, ok := q.queue.Get(noAck)
	if !ok {
		return nil, remaining, false
	}
	q.delivered(e.Message(), true, noAck, e.Redelivered())
	return e, remaining, true
}

// maxPooledEntries is the largest settle batch buffer kept for reuse.
const maxPooledEntries = 4096

// Settle implements QueueHandle.
func (q *localQueue) Settle(how Settlement, entries []QueueEntry) {
	pool := &q.vhost.srv.entryBatches
	buf, _ := pool.Get().(*[]*queue.Entry)
	if buf == nil {
		buf = new([]*queue.Entry)
	}
	batch := (*buf)[:0]
	for _, e := range entries {
		if qe, ok := e.(*queue.Entry); ok {
			batch = append(batch, qe)
		}
	}
	switch how {
	case SettleAck:
		q.queue.Ack(batch)
		q.stats.Add(StatAck, uint64(len(batch)))
	case SettleRequeue:
		q.queue.Requeue(batch)
	default:
		q.queue.Reject(batch)
	}
	clear(batch)
	if cap(batch) <= maxPooledEntries {
		*buf = batch[:0]
		pool.Put(buf)
	}
}

// Touch resets the x-expires countdown (a declare from another node of
// the cluster counts as a use).
func (q *localQueue) Touch() { q.queue.Touch() }

// Purge implements QueueHandle.
func (q *localQueue) Purge() int { return q.queue.Purge() }

// Delete implements QueueHandle: the queue closes, the messages the store
// holds for it go, and its consumers are cancelled.
func (q *localQueue) Delete() int {
	consumers, n := q.queue.Delete()
	if q.durable {
		if err := q.vhost.srv.store.DeleteQueue(q.storeKey); err != nil {
			q.vhost.srv.log.Error("deleting a queue's messages failed", "queue", q.Name(), "err", err)
		}
	}
	for _, c := range consumers {
		if lc, ok := c.(*localConsumer); ok {
			q.consumers.Delete(lc.c)
			lc.c.QueueDeleted()
		}
	}
	return n
}

// AddConsumer implements QueueHandle.
func (q *localQueue) AddConsumer(c Consumer, opts queue.ConsumerOptions) error {
	lc := &localConsumer{q: q, c: c, noAck: opts.NoAck}
	if _, dup := q.consumers.LoadOrStore(c, lc); dup {
		return queue.ErrConsumerExists
	}
	if err := q.queue.AddConsumer(lc, opts); err != nil {
		q.consumers.Delete(c)
		return err
	}
	return nil
}

// RemoveConsumer implements QueueHandle.
func (q *localQueue) RemoveConsumer(c Consumer) {
	if lc, ok := q.consumers.LoadAndDelete(c); ok {
		q.queue.RemoveConsumer(lc.(*localConsumer))
	}
}

// Kick implements QueueHandle.
func (q *localQueue) Kick(c Consumer) {
	if lc, ok := q.consumers.Load(c); ok {
		q.queue.Kick(lc.(*localConsumer))
	}
}

// delivered counts a delivery (get: by basic.get) on the queue and
// records the first delivery of a stored message, so that a restart
// brings it back flagged redelivered.
func (q *localQueue) delivered(m *queue.Message, get, noAck, redelivered bool) {
	q.stats.Inc(deliveryStat(get, noAck))
	if redelivered {
		q.stats.Inc(StatRedeliver)
	} else if !noAck {
		q.vhost.srv.markDelivered(q, m)
	}
}

// localConsumer is a Consumer as a local queue knows it: the queue
// delivers to it, and it passes the delivery on and does the queue's
// bookkeeping for it.
type localConsumer struct {
	q     *localQueue
	c     Consumer
	noAck bool
}

// Deliver implements queue.Consumer. It runs with the queue's lock held.
func (lc *localConsumer) Deliver(e *queue.Entry, redelivered bool) bool {
	if !lc.c.Deliver(e, redelivered) {
		return false
	}
	lc.q.delivered(e.Message(), false, lc.noAck, redelivered)
	return true
}
