package store

import (
	"sort"
	"strings"
	"sync"
)

// Memory is an in-memory Store with the same semantics as Badger, for
// fast tests. Done callbacks run on a separate goroutine, in submission order.
type Memory struct {
	mu       sync.Mutex
	meta     map[string][]byte // kind + "\x00" + key
	bodies   map[uint64][]byte
	refs     map[uint64]int
	queues   map[string]map[uint64]bool   // queue -> id -> delivered
	sizes    map[uint64]int               // body sizes of stored messages
	paged    map[string]map[uint64][]byte // queue -> id -> paged-out transient message
	nodeID   uint16
	marks    map[uint16]uint64 // node -> message counter mark
	callback chan func()
	closed   bool
	done     chan struct{}
}

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	m := &Memory{
		meta:     map[string][]byte{},
		bodies:   map[uint64][]byte{},
		refs:     map[uint64]int{},
		queues:   map[string]map[uint64]bool{},
		sizes:    map[uint64]int{},
		paged:    map[string]map[uint64][]byte{},
		nodeID:   randomNodeID(),
		marks:    map[uint16]uint64{},
		callback: make(chan func(), 1024),
		done:     make(chan struct{}),
	}
	go m.runCallbacks()
	return m
}

func (m *Memory) runCallbacks() {
	defer close(m.done)
	for fn := range m.callback {
		fn()
	}
}

// PutMeta stores a metadata record.
func (m *Memory) PutMeta(kind, key string, value []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.meta[kind+"\x00"+key] = append([]byte{}, value...)
	return nil
}

// DeleteMeta removes a metadata record.
func (m *Memory) DeleteMeta(kind, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.meta, kind+"\x00"+key)
	return nil
}

// DeleteMetaKeys removes metadata records of kind.
func (m *Memory) DeleteMetaKeys(kind string, keys []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range keys {
		delete(m.meta, kind+"\x00"+k)
	}
	return nil
}

// ListMeta calls fn for every record of kind in key order.
func (m *Memory) ListMeta(kind string, fn func(key string, value []byte) error) error {
	m.mu.Lock()
	prefix := kind + "\x00"
	var keys []string
	for k := range m.meta {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	vals := make([][]byte, len(keys))
	for i, k := range keys {
		vals[i] = m.meta[k]
	}
	m.mu.Unlock()
	for i, k := range keys {
		if err := fn(strings.TrimPrefix(k, prefix), vals[i]); err != nil {
			return err
		}
	}
	return nil
}

// AddMessage stores a message for queues; done runs afterwards.
func (m *Memory) AddMessage(id uint64, data []byte, size int, queues []string, done func(error)) {
	m.mu.Lock()
	m.bodies[id] = append([]byte{}, data...)
	m.sizes[id] = size
	m.refs[id] += len(queues)
	for _, q := range queues {
		if m.queues[q] == nil {
			m.queues[q] = map[uint64]bool{}
		}
		m.queues[q][id] = false
	}
	m.mu.Unlock()
	m.after(done)
}

func (m *Memory) after(done func(error)) {
	if done == nil {
		return
	}
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed {
		done(ErrClosed)
		return
	}
	m.callback <- func() { done(nil) }
}

// RemoveMessage removes queue's reference to id.
func (m *Memory) RemoveMessage(queue string, id uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.removeLocked(queue, id)
}

func (m *Memory) removeLocked(queue string, id uint64) {
	q := m.queues[queue]
	if _, ok := q[id]; !ok {
		return
	}
	delete(q, id)
	if m.refs[id]--; m.refs[id] <= 0 {
		delete(m.refs, id)
		delete(m.bodies, id)
		delete(m.sizes, id)
	}
}

// MarkDelivered records a delivery of id from queue; there is nothing to
// wait for.
func (m *Memory) MarkDelivered(queue string, id uint64, _ int) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.queues[queue][id]; ok {
		m.queues[queue][id] = true
	}
	return false
}

// DeleteQueue removes every message reference of queue.
func (m *Memory) DeleteQueue(queue string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id := range m.queues[queue] {
		m.removeLocked(queue, id)
	}
	delete(m.queues, queue)
	return nil
}

// Sync calls done after everything submitted before it.
func (m *Memory) Sync(done func(error)) { m.after(done) }

// ScanQueue calls fn for each message of queue with an id >= from, in id order.
func (m *Memory) ScanQueue(queue string, from uint64, fn func(id uint64, data []byte, delivered bool) (bool, error)) error {
	m.mu.Lock()
	type rec struct {
		id        uint64
		data      []byte
		delivered bool
	}
	var recs []rec
	for id, d := range m.queues[queue] {
		if id >= from {
			recs = append(recs, rec{id, m.bodies[id], d})
		}
	}
	m.mu.Unlock()
	sort.Slice(recs, func(i, j int) bool { return recs[i].id < recs[j].id })
	for _, r := range recs {
		more, err := fn(r.id, r.data, r.delivered)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// ScanQueueIndex calls fn for each message of queue in id order with its
// body size and delivered flag.
func (m *Memory) ScanQueueIndex(queue string, fn func(id uint64, size int, delivered bool) error) error {
	m.mu.Lock()
	type rec struct {
		id        uint64
		size      int
		delivered bool
	}
	recs := make([]rec, 0, len(m.queues[queue]))
	for id, d := range m.queues[queue] {
		recs = append(recs, rec{id, m.sizes[id], d})
	}
	m.mu.Unlock()
	sort.Slice(recs, func(i, j int) bool { return recs[i].id < recs[j].id })
	for _, r := range recs {
		if err := fn(r.id, r.size, r.delivered); err != nil {
			return err
		}
	}
	return nil
}

// ReadMessages calls fn, in the order of keys, for each message found.
func (m *Memory) ReadMessages(queue string, keys []MessageKey, fn func(i int, data []byte, delivered bool)) error {
	for i, k := range keys {
		m.mu.Lock()
		var data []byte
		var delivered, ok bool
		if k.Paged {
			data, ok = m.paged[queue][k.ID]
		} else if delivered, ok = m.queues[queue][k.ID]; ok {
			data = m.bodies[k.ID]
		}
		m.mu.Unlock()
		if ok {
			fn(i, data, delivered)
		}
	}
	return nil
}

// PageOut keeps a paged-out transient message.
func (m *Memory) PageOut(queue string, id uint64, data []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.paged[queue] == nil {
		m.paged[queue] = map[uint64][]byte{}
	}
	m.paged[queue][id] = append([]byte{}, data...)
}

// RemovePaged drops paged-out transient messages.
func (m *Memory) RemovePaged(queue string, ids []uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range ids {
		delete(m.paged[queue], id)
	}
	if len(m.paged[queue]) == 0 {
		delete(m.paged, queue)
	}
}

// RemoveMessages removes queue's references to ids.
func (m *Memory) RemoveMessages(queue string, ids []uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range ids {
		m.removeLocked(queue, id)
	}
}

// PagedCount is the number of paged-out transient messages held (for tests).
func (m *Memory) PagedCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, q := range m.paged {
		n += len(q)
	}
	return n
}

// Queues returns the message count and bytes of every queue.
func (m *Memory) Queues() (map[string]QueueStats, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]QueueStats{}
	for q, ids := range m.queues {
		var s QueueStats
		for id := range ids {
			s.Messages++
			s.Bytes += int64(m.sizes[id])
		}
		out[q] = s
	}
	return out, nil
}

// MaxMessageID returns the largest id of node among the stored messages.
func (m *Memory) MaxMessageID(node uint16) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var maxID uint64
	for id := range m.bodies {
		if NodeOf(id) == node {
			maxID = max(maxID, id)
		}
	}
	return maxID, nil
}

// NodeID returns the store's node id, drawn at random by NewMemory.
func (m *Memory) NodeID() uint16 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.nodeID
}

// SetNodeID replaces the store's node id.
func (m *Memory) SetNodeID(id uint16) error {
	if err := CheckNodeID(id); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nodeID = id
	return nil
}

// IDMark returns node's message counter mark, or 0.
func (m *Memory) IDMark(node uint16) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.marks[node], nil
}

// SetIDMark records node's message counter mark.
func (m *Memory) SetIDMark(node uint16, mark uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.marks[node] = mark
	return nil
}

// Close stops the callback goroutine.
func (m *Memory) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.mu.Unlock()
	close(m.callback)
	<-m.done
	return nil
}
