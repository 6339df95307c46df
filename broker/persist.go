package broker

import (
	"fmt"

	"github.com/warrenmq/warren/queue"
	"github.com/warrenmq/warren/store"
)

// Store is the durable state the broker needs (store.Badger and
// store.Memory implement it): the metadata log's records and the messages
// of durable queues.
type Store interface {
	PutMeta(kind, key string, value []byte) error
	DeleteMeta(kind, key string) error
	DeleteMetaKeys(kind string, keys []string) error
	ListMeta(kind string, fn func(key string, value []byte) error) error
	AddMessage(id uint64, data []byte, size int, queues []string, done func(error))
	RemoveMessage(queue string, id uint64)
	RemoveMessages(queue string, ids []uint64)
	MarkDelivered(queue string, id uint64, size int) bool
	DeleteQueue(queue string) error
	Sync(done func(error))
	ScanQueue(queue string, from uint64, fn func(id uint64, data []byte, delivered bool) (bool, error)) error
	ScanQueueIndex(queue string, fn func(id uint64, size int, delivered bool) error) error
	ReadMessages(queue string, keys []store.MessageKey, fn func(i int, data []byte, delivered bool)) error
	PageOut(queue string, id uint64, data []byte)
	RemovePaged(queue string, ids []uint64)
	Queues() (map[string]store.QueueStats, error)
	idStore
	Close() error
}

// isDurable reports whether q stores persistent messages.
func (q *localQueue) isDurable() bool { return q.durable }

// persistMessage hands a persistent message for the durable queues of this
// node to the store's group committer, as one record; outcome (if any)
// waits for the commit.
func (s *Server) persistMessage(msg *queue.Message, queues []QueueHandle, outcome *publishOutcome) {
	if !msg.Persistent() {
		return
	}
	var keys []string
	for _, h := range queues {
		if q, ok := h.(*localQueue); ok && q.isDurable() {
			keys = append(keys, q.storeKey)
		}
	}
	if len(keys) == 0 {
		return
	}
	data, err := msg.MarshalBinary()
	if err != nil {
		s.log.Error("encode message", "err", err)
		if outcome != nil {
			outcome.nack.Store(true)
		}
		return
	}
	if outcome != nil {
		outcome.pending.Add(1)
	}
	s.store.AddMessage(msg.ID, data, msg.Size(), keys, func(err error) {
		if err != nil {
			s.log.Error("storing a message failed", "id", msg.ID, "err", err)
		}
		if outcome != nil {
			if err != nil {
				outcome.nack.Store(true)
			}
			outcome.done()
		}
	})
}

// syncStore waits until everything handed to the store so far is on disk.
func (s *Server) syncStore() error {
	done := make(chan error, 1)
	s.store.Sync(func(err error) { done <- err })
	if err := <-done; err != nil {
		return fmt.Errorf("sync the store: %w", err)
	}
	return nil
}

// unpersistRejected removes a message a durable queue refused.
func (s *Server) unpersistRejected(q *localQueue, msg *queue.Message) {
	if msg.Persistent() && q.isDurable() {
		s.store.RemoveMessage(q.storeKey, msg.ID)
	}
}

// markDelivered records a first delivery of a persistent message; it
// reports whether the mark is durable only after a store sync.
func (s *Server) markDelivered(q *localQueue, msg *queue.Message) bool {
	if msg.Persistent() && q.isDurable() {
		return s.store.MarkDelivered(q.storeKey, msg.ID, msg.Size())
	}
	return false
}

// removed deletes from the store the persistent messages that left q.
func (s *Server) removed(q *localQueue, msgs []*queue.Message) {
	if !q.isDurable() {
		return
	}
	for _, m := range msgs {
		if m.Persistent() {
			s.store.RemoveMessage(q.storeKey, m.ID)
		}
	}
}

// restoreMessages gives q the messages the store holds for it. Without
// priorities only the index is read (ids, sizes): the queue reads messages
// back as they near its head, so a restart with millions of messages is
// quick. A priority queue needs each message's priority, so its messages
// are read in full (and paged out again past the queue's memory bound).
func (s *Server) restoreMessages(q *localQueue) (int, error) {
	n := 0
	var err error
	if q.queue.Config().MaxPriority == 0 {
		err = s.store.ScanQueueIndex(q.storeKey, func(id uint64, size int, _ bool) error {
			q.queue.RestorePaged(id, int64(size))
			n++
			return nil
		})
	} else {
		err = s.store.ScanQueue(q.storeKey, 0, func(id uint64, data []byte, delivered bool) (bool, error) {
			msg, err := queue.UnmarshalMessage(data)
			if err != nil {
				return false, fmt.Errorf("decode message %d: %w", id, err)
			}
			msg.ID = id
			q.queue.Restore(msg, delivered)
			n++
			return true, nil
		})
	}
	q.queue.ArmAfterRestore()
	return n, err
}
