package broker

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/queue"
)

// consumer is a basic.consume subscription. Its Deliver runs under the
// queue's lock, from whichever goroutine made the queue dispatch.
type consumer struct {
	ch        *channel
	tag       string
	q         QueueHandle
	noAck     bool
	exclusive bool
	prefetch  int // per-consumer limit (0: none)

	unacked int         // guarded by ch.mu
	started bool        // guarded by ch.mu: consume-ok was sent, deliveries may follow
	blocked atomic.Bool // refused a delivery for lack of credit; needs a kick
}

// Deliver implements Consumer.
func (c *consumer) Deliver(e QueueEntry, redelivered bool) bool {
	ch := c.ch
	ch.mu.Lock()
	if ch.closed || !c.started || !c.hasCreditLocked() {
		ch.mu.Unlock()
		c.blocked.Store(true)
		return false
	}
	ch.nextTag++
	tag := ch.nextTag
	if !c.noAck {
		ch.unacked.push(unackedDelivery{tag: tag, queue: c.q, entry: e, consumer: c})
		c.unacked++
	}
	ch.lastServed = c
	m := e.Message()
	ch.deliver = amqp.BasicDeliver{ConsumerTag: c.tag, DeliveryTag: tag, Redelivered: redelivered, Exchange: m.Exchange, RoutingKey: m.RoutingKey}
	o := ch.c.out
	o.mu.Lock()
	o.appendContentLocked(ch.id, &ch.deliver, &m.Properties, m.Body)
	o.mu.Unlock()
	ch.mu.Unlock()
	o.notify()
	ch.countDelivery(false, c.noAck, redelivered)
	return true
}

// hasCreditLocked reports whether the consumer may take one more delivery
// (per-consumer and channel-wide prefetch, and the outbox's fill). The
// caller holds ch.mu. As in RabbitMQ, the channel-wide limit binds no-ack
// consumers too (while the channel's unacked deliveries reach it, they
// get nothing, though theirs do not count), and the per-consumer limit
// binds only consumers that ack.
func (c *consumer) hasCreditLocked() bool {
	ch := c.ch
	if ch.globalPrefetch > 0 && ch.unacked.len() >= ch.globalPrefetch {
		ch.globalBlocked = true
		return false
	}
	if c.noAck {
		return !ch.c.outboxFull()
	}
	return c.prefetch == 0 || c.unacked < c.prefetch
}

// kick lets the queue offer deliveries again if the consumer was refused.
func (c *consumer) kick() {
	if c.blocked.Swap(false) {
		c.q.Kick(c)
	}
}

// detach removes the consumer from its queue (channel closing or cancel).
func (c *consumer) detach() {
	c.q.RemoveConsumer(c)
}

// QueueDeleted implements Consumer: the consumer goes away, and clients
// that announced consumer_cancel_notify are told.
func (c *consumer) QueueDeleted() {
	ch := c.ch
	ch.mu.Lock()
	if ch.consumers[c.tag] != c {
		ch.mu.Unlock()
		return
	}
	ch.removeConsumer(c.tag)
	ch.mu.Unlock()
	if ch.c.announces("consumer_cancel_notify") {
		ch.sendIfOpen(&amqp.BasicCancel{ConsumerTag: c.tag, NoWait: true})
	}
}

// outboxLimit is how many bytes may wait in a connection's outbox before
// no-ack consumers stop receiving until the writer catches up.
const outboxLimit = 4 << 20

// outboxFull reports whether the connection has enough queued to write.
// The caller may hold ch.mu but not out.mu.
func (c *conn) outboxFull() bool {
	if c.out.pending() < outboxLimit {
		return false
	}
	c.outboxWasFull.Store(true)
	return true
}

// afterWrite runs on the writer goroutine after each write: if no-ack
// consumers were held back by a full outbox, let them go on.
func (c *conn) afterWrite() {
	if !c.outboxWasFull.Load() || c.out.pending() >= outboxLimit {
		return
	}
	c.outboxWasFull.Store(false)
	go c.kickConsumers() // not on the writer: dispatch may refill the outbox
}

// kickConsumers kicks every consumer of every channel.
func (c *conn) kickConsumers() {
	for _, ch := range c.channelList() {
		ch.mu.Lock()
		cs := ch.consumerList()
		ch.mu.Unlock()
		for _, cs := range cs {
			cs.kick()
		}
	}
}

func (ch *channel) onQos(m *amqp.BasicQos) error {
	if m.PrefetchSize != 0 {
		return amqp.Errorf(amqp.NotImplemented, "prefetch_size!=0 (%d)", m.PrefetchSize)
	}
	if m.Global {
		ch.mu.Lock()
		ch.globalPrefetch = int(m.PrefetchCount)
		cs := ch.consumersInTurn()
		ch.mu.Unlock()
		for _, c := range cs {
			c.kick()
		}
	} else {
		ch.prefetch = int(m.PrefetchCount)
		ch.mu.Lock()
		ch.prefetchInfo = ch.prefetch
		ch.mu.Unlock()
	}
	ch.send(&amqp.BasicQosOk{})
	return nil
}

func (ch *channel) onConsume(m *amqp.BasicConsume) error {
	if m.Queue == replyToQueue {
		return ch.consumeReplyTo(m)
	}
	name, err := ch.queueName(m.Queue)
	if err != nil {
		return err
	}
	if err := ch.c.check(AccessRead, "queue", name); err != nil {
		return err
	}
	q, err := ch.lookupQueue(name)
	if err != nil {
		return err
	}
	priority, err := queue.ParseConsumeArguments(ch.vhost().name, name, m.Arguments)
	if err != nil {
		return err
	}
	tag := m.ConsumerTag
	if tag == "" {
		tag = serverName("amq.ctag-")
	}
	ch.mu.Lock()
	if _, dup := ch.consumers[tag]; dup {
		ch.mu.Unlock()
		return amqp.Errorf(amqp.NotAllowed, "attempt to reuse consumer tag '%s'", tag)
	}
	c := &consumer{ch: ch, tag: tag, q: q, noAck: m.NoAck, exclusive: m.Exclusive, prefetch: ch.prefetch}
	ch.addConsumer(c)
	ch.mu.Unlock()
	if err := q.AddConsumer(c, queue.ConsumerOptions{NoAck: m.NoAck, Exclusive: m.Exclusive, Priority: priority, Prefetch: c.prefetch}); err != nil {
		ch.dropConsumer(tag)
		var ae *amqp.Error
		switch {
		case errors.As(err, &ae): // a queue on another node: its node's answer
			return ae
		case errors.Is(err, queue.ErrExclusiveConsumer):
			return amqp.Errorf(amqp.AccessRefused, "queue '%s' in vhost '%s' in exclusive use", name, ch.vhost().name)
		case errors.Is(err, queue.ErrQueueDeleted):
			return ch.vhost().notFoundQueue(name)
		}
		return fmt.Errorf("add consumer to queue %q: %w", name, err)
	}
	// consume-ok goes out before the first delivery: until started is set,
	// the queue's offers are refused and the kick below resumes them.
	if !m.NoWait {
		ch.send(&amqp.BasicConsumeOk{ConsumerTag: tag})
	}
	ch.mu.Lock()
	c.started = true
	ch.mu.Unlock()
	c.blocked.Store(true)
	c.kick()
	return nil
}

func (ch *channel) dropConsumer(tag string) {
	ch.mu.Lock()
	ch.removeConsumer(tag)
	ch.mu.Unlock()
}

func (ch *channel) onCancel(m *amqp.BasicCancel) error {
	if ch.cancelReplyTo(m.ConsumerTag) {
		if !m.NoWait {
			ch.send(&amqp.BasicCancelOk{ConsumerTag: m.ConsumerTag})
		}
		return nil
	}
	ch.mu.Lock()
	c := ch.removeConsumer(m.ConsumerTag)
	ch.mu.Unlock()
	if c != nil {
		c.detach()
	}
	if !m.NoWait {
		ch.send(&amqp.BasicCancelOk{ConsumerTag: m.ConsumerTag})
	}
	return nil
}

func (ch *channel) onGet(m *amqp.BasicGet) error {
	name, err := ch.queueName(m.Queue)
	if err != nil {
		return err
	}
	if err := ch.c.check(AccessRead, "queue", name); err != nil {
		return err
	}
	q, err := ch.lookupQueue(name)
	if err != nil {
		return err
	}
	e, remaining, ok := q.Get(m.NoAck)
	if !ok {
		ch.send(&amqp.BasicGetEmpty{})
		return nil
	}
	msg := e.Message()
	ch.mu.Lock()
	ch.nextTag++
	tag := ch.nextTag
	if !m.NoAck {
		ch.unacked.push(unackedDelivery{tag: tag, queue: q, entry: e})
	}
	ch.getOk = amqp.BasicGetOk{DeliveryTag: tag, Redelivered: e.Redelivered(), Exchange: msg.Exchange, RoutingKey: msg.RoutingKey, MessageCount: uint32(remaining)}
	o := ch.c.out
	o.mu.Lock()
	o.appendContentLocked(ch.id, &ch.getOk, &msg.Properties, msg.Body)
	o.mu.Unlock()
	ch.mu.Unlock()
	o.notify()
	ch.countDelivery(true, m.NoAck, e.Redelivered())
	return nil
}

// settle acks, requeues or rejects the deliveries up to tag.
func (ch *channel) settle(tag uint64, multiple bool, how Settlement) error {
	ch.mu.Lock()
	ds, ok := ch.unacked.take(tag, multiple, ch.scratch[:0])
	if !ok {
		ch.mu.Unlock()
		return amqp.Errorf(amqp.PreconditionFailed, "unknown delivery tag %d", tag)
	}
	for _, d := range ds {
		if d.consumer != nil {
			d.consumer.unacked--
		}
	}
	// Credit freed under the channel's limit goes to the consumers in
	// turn; otherwise only the consumers of the settled deliveries have
	// more.
	var kick []*consumer
	if ch.globalBlocked {
		ch.globalBlocked = false
		kick = ch.consumersInTurn()
	}
	ch.mu.Unlock()
	if ch.tx != nil {
		ch.tx.settle(ds, how)
		ch.scratch = ds[:0]
		return nil
	}
	ch.apply(ds, how)
	if kick == nil {
		for _, d := range ds {
			if d.consumer != nil {
				d.consumer.kick()
			}
		}
	}
	for _, c := range kick {
		c.kick()
	}
	clear(ds)
	ch.scratch = ds[:0]
	return nil
}

// apply settles deliveries with their queues.
func (ch *channel) apply(ds []unackedDelivery, how Settlement) {
	if how == SettleAck {
		ch.stats.Add(StatAck, uint64(len(ds)))
	}
	ch.entries = settleByQueue(ds, ch.entries, how)
}

func (ch *channel) onRecover(requeue, reply bool) error {
	if !requeue {
		return amqp.Errorf(amqp.NotImplemented, "requeue=false")
	}
	ch.mu.Lock()
	ds := ch.unacked.drain(nil)
	for _, d := range ds {
		if d.consumer != nil {
			d.consumer.unacked--
		}
	}
	cs := ch.consumerList()
	ch.mu.Unlock()
	ch.apply(ds, SettleRequeue)
	for _, c := range cs {
		c.kick()
	}
	if reply {
		ch.send(&amqp.BasicRecoverOk{})
	}
	return nil
}
