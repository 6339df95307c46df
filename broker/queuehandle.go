package broker

import "github.com/warrenmq/warren/queue"

// QueueHandle is a queue as routing, channels and management reach it:
// a queue of this node (localQueue) or, in a cluster, one whose home is
// another node (RemoteQueue, from Config.Remote). Its methods are safe
// for concurrent use.
type QueueHandle interface {
	// Name returns the queue's name.
	Name() string
	// Info describes the queue: its declaration, exclusive owner, policy
	// and counts.
	Info() QueueInfo
	// Counts returns the numbers of ready messages, of unacked deliveries
	// and of consumers.
	Counts() (ready, unacked, consumers int)
	// MessageStats returns the queue's message counters.
	MessageStats() MessageStats

	// Publish enqueues a message routed to the queue. It returns Rejected
	// when the queue is full and refuses it (x-overflow reject-publish),
	// and Dropped when the queue was deleted; either way the queue keeps
	// nothing of it.
	Publish(m *queue.Message) queue.PublishResult
	// Get takes the next ready message (basic.get). With noAck it is
	// settled at once; otherwise it stays unacked until Settle. remaining
	// is the ready count after taking it.
	Get(noAck bool) (e QueueEntry, remaining int, ok bool)
	// Settle acks, requeues or rejects entries this queue delivered;
	// entries that are not unacked deliveries of this queue are ignored.
	Settle(how Settlement, entries []QueueEntry)
	// Purge drops the ready messages (not the unacked ones) and returns
	// how many there were.
	Purge() int
	// Delete closes a queue that left its vhost: its messages go, and its
	// consumers are told (Consumer.QueueDeleted). It returns how many
	// ready messages it held; deleting again returns 0.
	Delete() int

	// AddConsumer registers c, which must be comparable (a pointer), with
	// the basic.consume options. The consumer is offered ready messages
	// at once; it may refuse them until it is ready, and be kicked.
	AddConsumer(c Consumer, opts queue.ConsumerOptions) error
	// RemoveConsumer unregisters c. Its unacked deliveries stay with its
	// channel, which settles them.
	RemoveConsumer(c Consumer)
	// Kick tells the queue that c, which refused a delivery, may have
	// credit again.
	Kick(c Consumer)
}

// QueueEntry is one message a queue handle delivered, to a consumer or to
// Get: the handle's own record of the delivery, which a channel keeps while
// the delivery is unacked and hands back to the same handle's Settle. A
// local queue's entries are its *queue.Entry.
type QueueEntry interface {
	// Message returns the delivered message.
	Message() *queue.Message
	// Redelivered reports whether the message was delivered before.
	Redelivered() bool
}

// Consumer receives deliveries from a queue handle: a channel's
// basic.consume.
type Consumer interface {
	// Deliver offers the consumer one message. A local queue calls it
	// with its lock held, so it must not block and must not call back into
	// the queue. It returns false when the consumer has no credit now;
	// the queue then offers it nothing more until Kick.
	Deliver(e QueueEntry, redelivered bool) bool
	// QueueDeleted tells the consumer that its queue was deleted; it is
	// no longer registered.
	QueueDeleted()
}

// Settlement is what a client does with delivered messages.
type Settlement uint8

// Settlements.
const (
	// SettleAck (basic.ack): the messages leave the queue.
	SettleAck Settlement = iota
	// SettleRequeue (basic.nack or basic.reject with requeue, basic.recover,
	// a closed channel): the messages are ready again, flagged redelivered.
	SettleRequeue
	// SettleReject (basic.nack or basic.reject without requeue): the
	// messages leave the queue, dead-lettered if it has a dead-letter
	// exchange.
	SettleReject
)
