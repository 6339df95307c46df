package store

import (
	"fmt"
	"math/rand/v2"
)

// Message ids are the keys of messages in the store, and the nodes of a
// cluster forward messages to each other's queues, so an id must be unique
// across nodes, not only within one. It is made of
//
//	bit 63       always 0, left to the users of ids for a flag (the broker
//	             marks the tokens of paged-out copies with it, RemoveMessages
//	             marks the ids whose body goes)
//	bits 62..51  the id of the node that made it (NodeIDBits): 1..MaxNodeID;
//	             0 for the ids of stores written before node ids existed
//	bits 50..0   that node's counter (CounterBits)
//
// The split: 51 counter bits are 2.25e15 ids, enough for 7.1 years of a
// sustained 10 million messages a second on one node (71 years at one
// million, far above what a node publishes), and the broker restores its
// counter so that no id is handed out twice. 12 node bits give 4095 node
// ids: enough for any cluster, and few enough ways for ids drawn at random
// to collide that the cluster rarely has to assign another (two nodes: 1 in
// 4095; five: 0.24%). Within one node ids grow, so a queue holding only
// that node's messages lists them in publish order.
const (
	NodeIDBits  = 12
	CounterBits = 63 - NodeIDBits
	MaxNodeID   = 1<<NodeIDBits - 1
	MaxCounter  = 1<<CounterBits - 1
	// MaxID is the largest message id: bit 63 is never set.
	MaxID = 1<<63 - 1
)

// MessageID is the id of node's message number counter (counter is cut to
// CounterBits).
func MessageID(node uint16, counter uint64) uint64 {
	return (uint64(node)&MaxNodeID)<<CounterBits | counter&MaxCounter
}

// NodeOf is the node part of id.
func NodeOf(id uint64) uint16 { return uint16((id >> CounterBits) & MaxNodeID) }

// CounterOf is the counter part of id.
func CounterOf(id uint64) uint64 { return id & MaxCounter }

// CheckNodeID reports whether id can be a node's id.
func CheckNodeID(id uint16) error {
	if id == 0 || id > MaxNodeID {
		return fmt.Errorf("node id %d is out of range 1..%d", id, MaxNodeID)
	}
	return nil
}

// randomNodeID draws the node id of a new store.
func randomNodeID() uint16 { return uint16(rand.IntN(MaxNodeID)) + 1 }
