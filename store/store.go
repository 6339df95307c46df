package store

import "errors"

// Store is durable state: metadata records and the messages of durable
// queues. Badger and Memory implement it.
type Store interface {
	// PutMeta and DeleteMeta change a metadata record (kind "vhost",
	// "user", "queue", ...); they are durable when they return.
	PutMeta(kind, key string, value []byte) error
	DeleteMeta(kind, key string) error
	// ListMeta calls fn for every record of kind, in key order.
	ListMeta(kind string, fn func(key string, value []byte) error) error

	// AddMessage stores a message body once with one index entry per
	// queue; done runs (on the committer, without blocking) once the
	// group commit that holds it is on disk.
	AddMessage(id uint64, data []byte, queues []string, done func(error))
	// RemoveMessage drops queue's entry for id; the body goes with the
	// last entry. Batched into the next commit.
	RemoveMessage(queue string, id uint64)
	// MarkDelivered records a delivery so the message comes back
	// redelivered after a crash. Batched.
	MarkDelivered(queue string, id uint64)
	// DeleteQueue drops every entry of queue; synced when it returns.
	DeleteQueue(queue string) error
	// Sync calls done once everything submitted before it is on disk.
	Sync(done func(error))
	// ScanQueue calls fn for each message of queue with id >= from, in id
	// order, until fn returns false or an error.
	ScanQueue(queue string, from uint64, fn func(id uint64, data []byte, delivered bool) (bool, error)) error
	// Queues returns each queue's message count and bytes.
	Queues() (map[string]QueueStats, error)
	// MaxMessageID is the largest message id ever stored.
	MaxMessageID() uint64
	Close() error
}

// QueueStats counts a queue's stored messages.
type QueueStats struct {
	Messages int64
	Bytes    int64
}

// ErrClosed is returned for work submitted after Close.
var ErrClosed = errors.New("store is closed")
