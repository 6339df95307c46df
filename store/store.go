package store

import "errors"

// Store is durable state: metadata records and the messages of durable
// queues. Badger and Memory implement it.
type Store interface {
	// PutMeta and DeleteMeta change a metadata record (kind "vhost",
	// "user", "queue", ...); they are durable when they return.
	PutMeta(kind, key string, value []byte) error
	DeleteMeta(kind, key string) error
	// DeleteMetaKeys removes many records of kind; durable when it
	// returns. Records of a large call may go in more than one commit.
	DeleteMetaKeys(kind string, keys []string) error
	// ListMeta calls fn for every record of kind, in key order.
	ListMeta(kind string, fn func(key string, value []byte) error) error

	// AddMessage stores a message body once with one index entry per
	// queue; done runs (on the committer, without blocking) once the
	// group commit that holds it is on disk.
	// size is the message's body size, kept in each index entry so that
	// a restart knows a queue's bytes without reading bodies.
	AddMessage(id uint64, data []byte, size int, queues []string, done func(error))
	// RemoveMessage drops queue's entry for id; the body goes with the
	// last entry. Batched into the next commit.
	RemoveMessage(queue string, id uint64)
	// RemoveMessages is RemoveMessage for many ids of one queue, as one
	// pending operation; the store keeps ids.
	RemoveMessages(queue string, ids []uint64)
	// MarkDelivered records a delivery so the message comes back
	// redelivered after a crash. Batched: it reports whether the mark is
	// durable only after the next Sync (false: it reaches the disk with
	// the message itself, or is durable already).
	MarkDelivered(queue string, id uint64, size int) bool
	// DeleteQueue drops every entry of queue; synced when it returns.
	DeleteQueue(queue string) error
	// Sync calls done once everything submitted before it is on disk.
	Sync(done func(error))
	// ScanQueue calls fn for each message of queue with id >= from, in id
	// order, until fn returns false or an error.
	ScanQueue(queue string, from uint64, fn func(id uint64, data []byte, delivered bool) (bool, error)) error
	// ScanQueueIndex calls fn for each message of queue, in id order, with
	// its body size and delivered flag, without reading bodies.
	ScanQueueIndex(queue string, fn func(id uint64, size int, delivered bool) error) error
	// ReadMessages reads messages of queue by key and calls fn, in the
	// order of keys, for each one found (i indexes keys). A message whose
	// write is still pending is waited for.
	ReadMessages(queue string, keys []MessageKey, fn func(i int, data []byte, delivered bool)) error
	// PageOut writes a transient message that a queue moved out of memory,
	// for ReadMessages with Paged set; RemovePaged drops such messages (it
	// keeps ids). Paged-out messages never survive a restart. Batched.
	PageOut(queue string, id uint64, data []byte)
	RemovePaged(queue string, ids []uint64)
	// Queues returns each queue's message count and bytes.
	Queues() (map[string]QueueStats, error)
	// MaxMessageID is the largest id made by node (ids.go) among the
	// messages stored, or 0; writes still pending are waited for.
	MaxMessageID(node uint16) (uint64, error)
	// NodeID is the id of the node the store belongs to: drawn at random
	// (1..MaxNodeID) when the store was created, and kept in it.
	NodeID() uint16
	// SetNodeID gives the store another node id (a cluster that finds two
	// nodes with the same one assigns another); durable when it returns.
	SetNodeID(id uint16) error
	// IDMark is the mark last set for node's message counter, or 0.
	IDMark(node uint16) (uint64, error)
	// SetIDMark records node's counter mark; durable when it returns. The
	// broker keeps it ahead of the counters it hands out, so that a
	// restart never hands one out again.
	SetIDMark(node uint16, mark uint64) error
	Close() error
}

// MessageKey names a message of a queue for ReadMessages: a stored one
// (AddMessage) or, with Paged, a paged-out transient one (PageOut).
type MessageKey struct {
	ID    uint64
	Paged bool
}

// QueueStats counts a queue's stored messages.
type QueueStats struct {
	Messages int64
	Bytes    int64
}

// ErrClosed is returned for work submitted after Close.
var ErrClosed = errors.New("store is closed")
