package broker

import (
	"errors"
	"time"
)

// Delivered marks. A persistent message of a durable queue that is
// delivered (to be acked) for the first time gets a mark in the store, so
// that after a crash it comes back flagged redelivered: its consumer may
// have seen it. The mark must be on disk before the client can see the
// delivery, or a crash in between brings back as new a message a client
// already processed. It is kept cheap by batching:
//
//   - the consumer hands the mark to the store's committer in the same
//     outbox critical section that appends the delivery, and notes in the
//     outbox where the first such delivery starts (markAt), so the mark
//     is submitted before the writer can take the delivery;
//   - the writer, taking a burst with such deliveries, writes what comes
//     before the first of them at once (replies, consume-ok), asks the
//     committer for one sync, which covers every mark of the burst (and
//     joins the group commit of whatever else is pending), and writes the
//     rest when it is done.
//
// So a burst of deliveries waits for one group commit, not one per
// message; the writer goes on collecting the next burst meanwhile. And a
// message delivered while its own write still waits for the committer (a
// consumer keeping up with its publishers) needs no wait at all: the
// store sets the flag in the entry it is about to write
// (store.Badger.MarkDelivered), so message and mark reach the disk
// together. A
// basic.get waits for the sync before it replies. When the store fails
// the sync, the burst is not written: the connection is dropped and its
// unacked deliveries return to their queues.

// markedConsumer is a Consumer that can run a delivered mark as it sends
// a delivery (the channel's consumer does).
type markedConsumer interface {
	// DeliverMarked is Deliver, calling mark once it is sure to send the
	// delivery, before the connection's writer can take it; mark reports
	// whether the writer must sync the store before writing it.
	DeliverMarked(e QueueEntry, redelivered bool, mark func() bool) bool
}

// markSyncTimeout bounds the writer's wait for the store to sync the
// marks of a burst.
const markSyncTimeout = 10 * time.Second

// errMarksNotStored ends a connection whose deliveries' marks could not be
// stored.
var errMarksNotStored = errors.New("delivered marks could not be stored")

// writeBurst writes what the outbox holds, first waiting for the store to
// sync the delivered marks of deliveries among it.
func (c *conn) writeBurst() error {
	bufs, markAt := c.out.takeMarked()
	if markAt >= 0 {
		if markAt > 0 {
			if err := c.write(bufs[:markAt]); err != nil {
				return err
			}
			bufs = bufs[markAt:]
		}
		if err := c.syncMarks(); err != nil {
			c.log.Error("not sending deliveries whose delivered marks were not stored; closing the connection", "err", err)
			c.nc.Close() // the reader sees the error and tears down; unacked deliveries are requeued
			c.wake()
			return errMarksNotStored
		}
	}
	return c.write(bufs)
}

// syncMarks waits until the store has synced everything submitted so far,
// the delivered marks of the burst being written among it.
func (c *conn) syncMarks() error {
	done := make(chan error, 1)
	c.srv.store.Sync(func(err error) { done <- err })
	t := time.NewTimer(markSyncTimeout)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return errors.New("the store did not sync within " + markSyncTimeout.String())
	}
}
