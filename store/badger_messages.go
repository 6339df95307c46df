package store

import (
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// pendingAdd is a message whose AddMessage ops wait for the committer:
// until it takes them, MarkDelivered sets the delivered flag in the entry
// about to be written instead of writing the entry again.
type pendingAdd struct {
	queues []string
	values [][]byte // each queue's entry value, as in queues
}

// AddMessage stores a body once and an index entry per queue.
func (b *Badger) AddMessage(id uint64, data []byte, size int, queues []string, done func(error)) {
	ops := make([]op, 0, 1+len(queues))
	ops = append(ops, op{key: bodyKey(id), value: data, add: id, newMsg: true})
	pa := &pendingAdd{queues: queues, values: make([][]byte, len(queues))}
	for i, q := range queues {
		pa.values[i] = indexValue(false, size)
		ops = append(ops, op{key: indexKey(q, id), value: pa.values[i], newMsg: true, cont: true})
	}
	ops[len(ops)-1].done = done
	b.mu.Lock()
	if len(queues) > 1 {
		b.refs[id] = len(queues)
	}
	if !b.closed {
		b.adds[id] = pa
	}
	b.mu.Unlock()
	b.submit(ops...)
}

// RemoveMessage drops queue's index entry for id and the body with the last entry.
func (b *Badger) RemoveMessage(queue string, id uint64) {
	b.mu.Lock()
	last := b.releaseLocked(id)
	b.mu.Unlock()
	if last {
		b.submit(op{key: indexKey(queue, id)}, op{key: bodyKey(id)})
	} else {
		b.submit(op{key: indexKey(queue, id)})
	}
}

// releaseLocked drops one queue's reference to id's body and reports
// whether it was the last.
func (b *Badger) releaseLocked(id uint64) bool {
	n, shared := b.refs[id]
	if !shared {
		return true
	}
	if n > 1 {
		b.refs[id] = n - 1
		return false
	}
	delete(b.refs, id)
	return true
}

// RemoveMessages drops queue's index entries for ids (and each body with
// its last entry) as one pending operation. The store keeps ids.
func (b *Badger) RemoveMessages(queue string, ids []uint64) {
	if len(ids) == 0 {
		return
	}
	b.mu.Lock()
	for i, id := range ids {
		if b.releaseLocked(id) {
			ids[i] = id | bodyToo
		}
	}
	b.mu.Unlock()
	b.submit(op{bulk: &bulkRemoval{queue: queue, ids: ids}})
}

// MarkDelivered sets the delivered flag of queue's entry for id. While
// the message's AddMessage still waits for the committer, the flag is set
// in the entry it will write, and MarkDelivered reports that nothing need
// be waited for: the message and its flag reach the disk together, and a
// crash before that loses the (unconfirmed) message itself. Otherwise it
// writes the entry again and reports true: the mark is durable after the
// next Sync.
func (b *Badger) MarkDelivered(queue string, id uint64, size int) bool {
	b.mu.Lock()
	if pa := b.adds[id]; pa != nil {
		for i, q := range pa.queues {
			if q == queue {
				pa.values[i][0] = 1
				b.mu.Unlock()
				return false
			}
		}
	}
	b.mu.Unlock()
	b.submit(op{key: indexKey(queue, id), value: indexValue(true, size)})
	return true
}

// PageOut writes a transient message a queue moved out of memory. Paged
// messages are dropped when the store opens: they never survive a restart.
func (b *Badger) PageOut(queue string, id uint64, data []byte) {
	b.submit(op{key: pagedKey(queue, id), value: data})
}

// RemovePaged drops paged-out transient messages. The store keeps ids.
func (b *Badger) RemovePaged(queue string, ids []uint64) {
	if len(ids) > 0 {
		b.submit(op{bulk: &bulkRemoval{queue: queue, paged: true, ids: ids}})
	}
}

// ReadMessages reads messages of queue by key and calls fn, in the order of
// keys, for each one found. A key not found at first (its write may still
// be pending) is looked up again after a sync; one still missing is
// skipped.
func (b *Badger) ReadMessages(queue string, keys []MessageKey, fn func(i int, data []byte, delivered bool)) error {
	type found struct {
		data      []byte
		delivered bool
		ok        bool
	}
	res := make([]found, len(keys))
	read := func() (missing int, err error) {
		err = b.db.View(func(txn *badger.Txn) error {
			for i, k := range keys {
				if res[i].ok {
					continue
				}
				data, delivered, ok, err := readMessage(txn, queue, k)
				if err != nil {
					return err
				}
				if !ok {
					missing++
					continue
				}
				res[i] = found{data, delivered, true}
			}
			return nil
		})
		return missing, err
	}
	missing, err := read()
	if err == nil && missing > 0 {
		if err = b.syncWait(); err == nil {
			_, err = read()
		}
	}
	if err != nil {
		return fmt.Errorf("read messages of %q: %w", queue, err)
	}
	for i := range res {
		if res[i].ok {
			fn(i, res[i].data, res[i].delivered)
		}
	}
	return nil
}

// readMessage reads one message: a paged one from its own key, a stored
// one from its index entry (for the delivered flag) and its body.
func readMessage(txn *badger.Txn, queue string, k MessageKey) (data []byte, delivered, ok bool, err error) {
	if k.Paged {
		data, ok, err = getValue(txn, pagedKey(queue, k.ID))
		return data, false, ok, err
	}
	entry, ok, err := getValue(txn, indexKey(queue, k.ID))
	if !ok || err != nil {
		return nil, false, false, err
	}
	delivered, _ = parseIndexValue(entry)
	data, ok, err = getValue(txn, bodyKey(k.ID))
	return data, delivered, ok, err
}

// getValue returns a copy of key's value; ok is false when it is missing.
func getValue(txn *badger.Txn, key []byte) (value []byte, ok bool, err error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	value, err = item.ValueCopy(nil)
	return value, err == nil, err
}

// ScanQueueIndex calls fn for each message of queue, in id order, with its
// body size and delivered flag, without reading bodies.
func (b *Badger) ScanQueueIndex(queue string, fn func(id uint64, size int, delivered bool) error) error {
	prefix := indexPrefix(queue)
	return b.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: false, Prefix: prefix})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			q, id, ok := parseIndexKey(it.Item().Key())
			if !ok || q != queue {
				continue
			}
			var size int
			var delivered bool
			if err := it.Item().Value(func(v []byte) error {
				delivered, size = parseIndexValue(v)
				return nil
			}); err != nil {
				return fmt.Errorf("read entry %d of %q: %w", id, queue, err)
			}
			if err := fn(id, size, delivered); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeleteQueue removes every entry of queue and the bodies only it held.
func (b *Badger) DeleteQueue(queue string) error {
	if err := b.syncWait(); err != nil {
		return err
	}
	var ids []uint64
	prefix := indexPrefix(queue)
	err := b.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: false, Prefix: prefix})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if q, id, ok := parseIndexKey(it.Item().Key()); ok && q == queue {
				ids = append(ids, id)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("scan queue %q: %w", queue, err)
	}
	b.RemoveMessages(queue, ids)
	return b.syncWait()
}

// Sync calls done once everything submitted before it is on disk.
func (b *Badger) Sync(done func(error)) { b.submit(op{done: done}) }

// ScanQueue calls fn for each message of queue with id >= from, in id order.
func (b *Badger) ScanQueue(queue string, from uint64, fn func(id uint64, data []byte, delivered bool) (bool, error)) error {
	prefix := indexPrefix(queue)
	return b.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, PrefetchSize: 64, Prefix: prefix})
		defer it.Close()
		for it.Seek(indexKey(queue, from)); it.Valid(); it.Next() {
			q, id, ok := parseIndexKey(it.Item().Key())
			if !ok || q != queue {
				continue
			}
			flags, err := it.Item().ValueCopy(nil)
			if err != nil {
				return fmt.Errorf("read entry %d of %q: %w", id, queue, err)
			}
			data, ok, err := getValue(txn, bodyKey(id))
			if err != nil {
				return fmt.Errorf("read body %d of %q: %w", id, queue, err)
			}
			if !ok {
				continue // an entry whose body a removal already took: nothing to recover
			}
			delivered, _ := parseIndexValue(flags)
			more, err := fn(id, data, delivered)
			if err != nil || !more {
				return err
			}
		}
		return nil
	})
}

// Queues returns each queue's message count and body bytes.
func (b *Badger) Queues() (map[string]QueueStats, error) {
	out := map[string]QueueStats{}
	err := b.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: false, Prefix: []byte{prefixIndex}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			q, id, ok := parseIndexKey(it.Item().Key())
			if !ok {
				continue
			}
			s := out[q]
			s.Messages++
			if err := it.Item().Value(func(v []byte) error {
				_, size := parseIndexValue(v)
				s.Bytes += int64(size)
				return nil
			}); err != nil {
				return fmt.Errorf("read entry %d of %q: %w", id, q, err)
			}
			out[q] = s
		}
		return nil
	})
	return out, err
}
