// Package queue is one AMQP queue of the Warren broker: the ready messages in
// order (and by priority), the deliveries awaiting acknowledgement, the
// consumers with their credit, round-robin and consumer priorities, single
// active consumer, message TTL, max-length with its overflow modes,
// dead-lettering (as hooks) and queue expiry.
//
// A Queue knows nothing of sockets or the wire codec. Its owner (the broker)
// publishes Messages into it, registers Consumers, and settles the Entries the
// consumers were given. What the queue does that the owner must act upon
// (messages leaving for good, dead letters, auto-delete, expiry) is reported
// through Hooks, always called without the queue's lock held.
//
// Delivery is push-based and inline: Publish, Kick, Requeue and AddConsumer
// offer ready messages to consumers under the queue's mutex, so Consumer.Deliver
// must not block and must not call back into the queue. There is no goroutine
// per queue, message or consumer; time-based work (message TTL, x-expires)
// runs on time.AfterFunc timers, one of each per queue at most. Reading
// paged-out messages back runs on a short-lived goroutine per batch, without
// the queue's lock (paging.go).
//
// The package also holds the pure functions around a queue's semantics that
// follow RabbitMQ 3.x: ParseArguments (queue.declare x-arguments),
// ParseConsumeArguments, ParseExpiration (the per-message expiration
// property), DeadLetterCopy and DeadLetterCycle (x-death headers), and the
// store encoding of a Message.
package queue
