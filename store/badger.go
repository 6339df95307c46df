package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// formatMarker is written to a new store; a directory without it is not a
// Warren store.
const formatMarker = "warren-store-v1"

// Options configure a Badger store.
type Options struct {
	// MaxBatchOps and MaxBatchBytes close a group commit early.
	MaxBatchOps   int
	MaxBatchBytes int
	// ValueLogGCInterval is how often value-log GC runs (0: never).
	ValueLogGCInterval time.Duration
	// MappedBudget bounds the resident pages of Badger's memory-mapped
	// files, checked every TrimInterval (0: no bound). Past it the pages
	// are handed back to the kernel (Linux), so the broker's RSS does not
	// grow with the bytes on disk.
	MappedBudget int64
	TrimInterval time.Duration
	// Logger receives the store's log and Badger's warnings; nil discards.
	Logger *slog.Logger
}

// DefaultOptions returns options for a broker: batches of up to 10,000
// operations or 16 MiB, value-log GC every minute, at most 32 MiB of
// mapped files resident, checked five times a second.
func DefaultOptions() Options {
	return Options{MaxBatchOps: 10000, MaxBatchBytes: 16 << 20, ValueLogGCInterval: time.Minute,
		MappedBudget: 32 << 20, TrimInterval: 200 * time.Millisecond}
}

// Badger is the Store on Badger. One committer goroutine writes every
// pending operation as one batch and syncs once per batch.
type Badger struct {
	db   *badger.DB
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	cond    *sync.Cond
	pending []op
	closed  bool
	refs    map[uint64]int // remaining queue references of bodies stored for several queues
	maxID   uint64

	batches, ops atomic.Uint64
	stop         chan struct{}
	wg           sync.WaitGroup
}

// op is one pending write.
type op struct {
	key, value []byte // value nil: delete
	done       func(error)
	bulk       *bulkRemoval // instead of key: many deletes in one op
}

// bulkRemoval deletes many messages of a queue (purge, delete, a page-in)
// as one pending op, 8 bytes a message instead of an op and two keys each.
type bulkRemoval struct {
	queue string
	paged bool     // paged-out transient messages; else index entries
	ids   []uint64 // with bodyToo set: the body goes as well
}

// bodyToo marks, in a bulkRemoval's ids, a message whose body goes with
// its index entry.
const bodyToo = 1 << 63

// Stats counts the committer's work.
type Stats struct {
	Batches, Ops uint64
}

// Open opens (or creates) the store in dir.
func Open(dir string, opts Options) (*Badger, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	bo := badger.DefaultOptions(dir).
		WithSyncWrites(false).
		WithLogger(badgerLogger{log}).
		WithMemTableSize(8 << 20).
		WithNumMemtables(2).
		WithCompression(options.None). // keys and small values barely compress; bodies are the client's
		WithBlockCacheSize(0).         // only needed to cache decompressed blocks
		WithIndexCacheSize(16 << 20).
		WithValueThreshold(256).
		WithValueLogFileSize(64 << 20). // a drained backlog leaves at most one file behind
		WithNumCompactors(2).
		WithNumLevelZeroTables(4).
		WithNumLevelZeroTablesStall(8)
	db, err := badger.Open(bo)
	if err != nil {
		if strings.Contains(err.Error(), "Cannot acquire directory lock") {
			return nil, fmt.Errorf("data dir %s is in use by another Warren (lock held): %w", dir, err)
		}
		return nil, fmt.Errorf("open store in %s: %w", dir, err)
	}
	b := &Badger{db: db, opts: opts, log: log, refs: map[uint64]int{}, stop: make(chan struct{})}
	b.cond = sync.NewCond(&b.mu)
	if err := b.checkFormat(dir); err != nil {
		db.Close()
		return nil, err
	}
	if err := b.loadRefs(); err != nil {
		db.Close()
		return nil, err
	}
	if err := b.dropPaged(); err != nil {
		db.Close()
		return nil, err
	}
	b.wg.Add(1)
	go b.commitLoop()
	if opts.ValueLogGCInterval > 0 {
		b.wg.Add(1)
		go b.gcLoop()
	}
	if opts.MappedBudget > 0 && opts.TrimInterval > 0 {
		t, err := newMappedTrimmer(dir, opts.MappedBudget)
		if err != nil {
			b.Close()
			return nil, err
		}
		b.wg.Add(1)
		go b.trimLoop(t)
	}
	return b, nil
}

// checkDir refuses a non-empty directory that holds no Badger database.
func checkDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) || (err == nil && len(ents) == 0) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read data dir %s: %w", dir, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "MANIFEST")); err != nil {
		return fmt.Errorf("data dir %s is not empty and holds no Warren store (no MANIFEST); refusing to use it", dir)
	}
	return nil
}

// checkFormat writes the marker into a new store and checks it in an old one.
func (b *Badger) checkFormat(dir string) error {
	var marker []byte
	empty := true
	err := b.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: false})
		defer it.Close()
		it.Rewind()
		empty = !it.Valid()
		item, err := txn.Get(keyFormat)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		marker, err = item.ValueCopy(nil)
		return err
	})
	if err != nil {
		return fmt.Errorf("read store format in %s: %w", dir, err)
	}
	switch {
	case marker != nil && string(marker) == formatMarker:
		return nil
	case marker != nil:
		return fmt.Errorf("data dir %s holds store format %q, this Warren reads %q", dir, marker, formatMarker)
	case !empty:
		return fmt.Errorf("data dir %s holds a Badger database that is not a Warren store", dir)
	}
	return b.db.Update(func(txn *badger.Txn) error { return txn.Set(keyFormat, []byte(formatMarker)) })
}

// Key scheme (see doc.go).
var (
	keyFormat = []byte("f")
)

const (
	prefixMeta  = 'M'
	prefixBody  = 'b'
	prefixIndex = 'q'
	prefixPaged = 'p'
)

func metaKey(kind, key string) []byte {
	k := make([]byte, 0, 2+len(kind)+len(key))
	k = append(k, prefixMeta)
	k = append(k, kind...)
	k = append(k, 0)
	return append(k, key...)
}

func bodyKey(id uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixBody}, id)
}

// indexPrefix is q, the queue name's length (2 bytes) and the name.
func indexPrefix(queue string) []byte { return queuePrefix(prefixIndex, queue) }

func indexKey(queue string, id uint64) []byte {
	return binary.BigEndian.AppendUint64(indexPrefix(queue), id)
}

// pagedKey is the key of a paged-out transient message: p, the queue
// name's length and the name, and the id.
func pagedKey(queue string, id uint64) []byte {
	return binary.BigEndian.AppendUint64(queuePrefix(prefixPaged, queue), id)
}

func queuePrefix(prefix byte, queue string) []byte {
	k := make([]byte, 0, 3+len(queue)+8)
	k = append(k, prefix)
	k = binary.BigEndian.AppendUint16(k, uint16(len(queue)))
	return append(k, queue...)
}

// indexValue is an index entry's value: the delivered flag (0 or 1) and
// the message's body size as a uvarint.
func indexValue(delivered bool, size int) []byte {
	v := make([]byte, 1, 1+binary.MaxVarintLen64)
	if delivered {
		v[0] = 1
	}
	return binary.AppendUvarint(v, uint64(size))
}

// parseIndexValue reads an index entry's value. Entries written before
// sizes were recorded have size 0.
func parseIndexValue(v []byte) (delivered bool, size int) {
	if len(v) == 0 {
		return false, 0
	}
	n, _ := binary.Uvarint(v[1:])
	return v[0] == 1, int(n)
}

// parseIndexKey splits an index key into queue and id.
func parseIndexKey(k []byte) (string, uint64, bool) {
	if len(k) < 3 || k[0] != prefixIndex {
		return "", 0, false
	}
	n := int(binary.BigEndian.Uint16(k[1:]))
	if len(k) != 3+n+8 {
		return "", 0, false
	}
	return string(k[3 : 3+n]), binary.BigEndian.Uint64(k[3+n:]), true
}

// loadRefs rebuilds the reference counts of bodies shared by several
// queues and finds the largest id. It collects every entry's id (8 bytes
// each, not a map entry: a backlog of millions stays cheap), sorts them
// and counts the runs.
func (b *Badger) loadRefs() error {
	var ids []uint64
	err := b.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: false, Prefix: []byte{prefixIndex}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if _, id, ok := parseIndexKey(it.Item().Key()); ok {
				ids = append(ids, id)
			}
		}
		rit := txn.NewIterator(badger.IteratorOptions{PrefetchValues: false, Prefix: []byte{prefixBody}, Reverse: true})
		defer rit.Close()
		rit.Seek(append([]byte{prefixBody}, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff))
		if rit.Valid() {
			b.maxID = binary.BigEndian.Uint64(rit.Item().Key()[1:])
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("scan store index: %w", err)
	}
	slices.Sort(ids)
	for i := 0; i < len(ids); {
		j := i + 1
		for j < len(ids) && ids[j] == ids[i] {
			j++
		}
		if j-i > 1 {
			b.refs[ids[i]] = j - i
		}
		i = j
	}
	return nil
}

// dropPaged deletes the paged-out transient messages a previous run left.
func (b *Badger) dropPaged() error {
	var any bool
	err := b.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: false, Prefix: []byte{prefixPaged}})
		defer it.Close()
		it.Rewind()
		any = it.Valid()
		return nil
	})
	if err == nil && any {
		err = b.db.DropPrefix([]byte{prefixPaged})
	}
	if err != nil {
		return fmt.Errorf("drop paged-out transient messages: %w", err)
	}
	return nil
}

// submit queues operations for the committer.
func (b *Badger) submit(ops ...op) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		for _, o := range ops {
			if o.done != nil {
				o.done(ErrClosed)
			}
		}
		return
	}
	b.pending = append(b.pending, ops...)
	b.mu.Unlock()
	b.cond.Signal()
}

// commitLoop is the group committer: it writes whatever is pending as one
// batch, syncs once, then runs the batch's callbacks.
func (b *Badger) commitLoop() {
	defer b.wg.Done()
	var batch []op
	for {
		b.mu.Lock()
		for len(b.pending) == 0 && !b.closed {
			b.cond.Wait()
		}
		if len(b.pending) == 0 && b.closed {
			b.mu.Unlock()
			return
		}
		n, size := 0, 0
		for n < len(b.pending) && n < b.opts.MaxBatchOps && size < b.opts.MaxBatchBytes {
			size += len(b.pending[n].key) + len(b.pending[n].value)
			if bulk := b.pending[n].bulk; bulk != nil {
				size += 32 * len(bulk.ids)
			}
			n++
		}
		batch = append(batch[:0], b.pending[:n]...)
		rest := copy(b.pending, b.pending[n:])
		clear(b.pending[rest:])
		b.pending = b.pending[:rest]
		b.mu.Unlock()

		err := b.write(batch)
		b.batches.Add(1)
		b.ops.Add(uint64(len(batch)))
		if err != nil {
			b.log.Error("store commit failed", "ops", len(batch), "err", err)
		}
		for i := range batch {
			if batch[i].done != nil {
				batch[i].done(err)
			}
		}
		clear(batch)
	}
}

// write applies a batch and syncs it to disk.
func (b *Badger) write(batch []op) error {
	wb := b.db.NewWriteBatch()
	defer wb.Cancel()
	for _, o := range batch {
		if o.key == nil && o.bulk == nil {
			continue // a sync marker
		}
		var err error
		switch {
		case o.bulk != nil:
			err = writeBulk(wb, o.bulk)
		case o.value == nil:
			err = wb.Delete(o.key)
		default:
			err = wb.Set(o.key, o.value)
		}
		if err != nil {
			return fmt.Errorf("batch write: %w", err)
		}
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("batch flush: %w", err)
	}
	if err := b.db.Sync(); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	return nil
}

// writeBulk adds a bulk removal's deletes to wb.
func writeBulk(wb *badger.WriteBatch, r *bulkRemoval) error {
	for _, id := range r.ids {
		if r.paged {
			if err := wb.Delete(pagedKey(r.queue, id)); err != nil {
				return err
			}
			continue
		}
		if err := wb.Delete(indexKey(r.queue, id&^bodyToo)); err != nil {
			return err
		}
		if id&bodyToo != 0 {
			if err := wb.Delete(bodyKey(id &^ bodyToo)); err != nil {
				return err
			}
		}
	}
	return nil
}

// syncWait submits a sync marker and waits for it.
func (b *Badger) syncWait() error {
	ch := make(chan error, 1)
	b.Sync(func(err error) { ch <- err })
	return <-ch
}

// PutMeta stores a metadata record durably.
func (b *Badger) PutMeta(kind, key string, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	ch := make(chan error, 1)
	b.submit(op{key: metaKey(kind, key), value: append([]byte{}, value...), done: func(err error) { ch <- err }})
	return <-ch
}

// DeleteMeta removes a metadata record durably.
func (b *Badger) DeleteMeta(kind, key string) error {
	ch := make(chan error, 1)
	b.submit(op{key: metaKey(kind, key), done: func(err error) { ch <- err }})
	return <-ch
}

// ListMeta calls fn for every record of kind in key order.
func (b *Badger) ListMeta(kind string, fn func(key string, value []byte) error) error {
	prefix := metaKey(kind, "")
	return b.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, Prefix: prefix})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return fmt.Errorf("read %s record: %w", kind, err)
			}
			if err := fn(string(it.Item().Key()[len(prefix):]), v); err != nil {
				return err
			}
		}
		return nil
	})
}

// AddMessage stores a body once and an index entry per queue.
func (b *Badger) AddMessage(id uint64, data []byte, size int, queues []string, done func(error)) {
	ops := make([]op, 0, 1+len(queues))
	ops = append(ops, op{key: bodyKey(id), value: data})
	v := indexValue(false, size)
	for _, q := range queues {
		ops = append(ops, op{key: indexKey(q, id), value: v})
	}
	ops[len(ops)-1].done = done
	b.mu.Lock()
	if len(queues) > 1 {
		b.refs[id] = len(queues)
	}
	b.maxID = max(b.maxID, id)
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

// MarkDelivered sets the delivered flag of queue's entry for id.
func (b *Badger) MarkDelivered(queue string, id uint64, size int) {
	b.submit(op{key: indexKey(queue, id), value: indexValue(true, size)})
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
		item, err := txn.Get(pagedKey(queue, k.ID))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil, false, false, nil
		}
		if err != nil {
			return nil, false, false, err
		}
		data, err = item.ValueCopy(nil)
		return data, false, err == nil, err
	}
	entry, err := txn.Get(indexKey(queue, k.ID))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, false, false, nil
	}
	if err != nil {
		return nil, false, false, err
	}
	if err := entry.Value(func(v []byte) error {
		delivered, _ = parseIndexValue(v)
		return nil
	}); err != nil {
		return nil, false, false, err
	}
	body, err := txn.Get(bodyKey(k.ID))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, false, false, nil
	}
	if err != nil {
		return nil, false, false, err
	}
	data, err = body.ValueCopy(nil)
	return data, delivered, err == nil, err
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
			body, err := txn.Get(bodyKey(id))
			if errors.Is(err, badger.ErrKeyNotFound) {
				continue // an entry whose body a removal already took: nothing to recover
			}
			if err != nil {
				return fmt.Errorf("read body %d of %q: %w", id, queue, err)
			}
			data, err := body.ValueCopy(nil)
			if err != nil {
				return fmt.Errorf("read body %d of %q: %w", id, queue, err)
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

// MaxMessageID returns the largest id ever stored.
func (b *Badger) MaxMessageID() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.maxID
}

// Stats returns the committer's counters.
func (b *Badger) Stats() Stats {
	return Stats{Batches: b.batches.Load(), Ops: b.ops.Load()}
}

// gcLoop runs value-log GC periodically until Close. While the store is
// busy it only rewrites the value-log files Badger already knows to be
// mostly garbage; once a whole interval passes with little written (a
// backlog was drained, say), it runs RunGC, which first makes Badger
// find the garbage, and then not again until something more was written.
func (b *Badger) gcLoop() {
	defer b.wg.Done()
	// quietOps is how many operations an interval may commit and still
	// count as quiet: RunGC blocks the committer while it flushes the
	// memtables, and its compactions compete with writes.
	const quietOps = 1000
	t := time.NewTicker(b.opts.ValueLogGCInterval)
	defer t.Stop()
	last, deep := b.ops.Load(), ^uint64(0)
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
		ops := b.ops.Load()
		if ops-last < quietOps && ops != deep {
			b.RunGC()
			deep = ops
		} else {
			b.rewriteValueLog()
		}
		last = ops
	}
}

// trimLoop keeps the store's mapped files within their resident budget
// until Close.
func (b *Badger) trimLoop(t *mappedTrimmer) {
	defer b.wg.Done()
	tick := time.NewTicker(b.opts.TrimInterval)
	defer tick.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-tick.C:
		}
		if _, err := t.trim(); err != nil {
			b.log.Warn("trimming the store's mapped files failed; stopping", "err", err)
			return
		}
	}
}

// RunGC reclaims the value-log space of removed messages.
//
// Badger rewrites (or, when nothing in it is live, deletes) a value-log
// file only once its discard statistics say that at least half of it is
// garbage, and those statistics come only from compactions that drop the
// older versions of deleted keys. After a backlog is drained, its deletes
// sit in the memtables and in the upper levels of the LSM tree, above the
// body entries they shadow, and no compaction is due: RunValueLogGC alone
// finds nothing to rewrite and the disk stays full. So when a plain pass
// rewrites nothing and there is more than the value-log file being written
// to, RunGC flushes the memtables (on the committer goroutine, so that no
// commit runs meanwhile), flattens the tree into one level, which drops
// deleted keys together with the versions they shadow and records what
// that frees, and runs GC again. The file being written to is never
// collected; a restart starts a new one.
func (b *Badger) RunGC() {
	if b.rewriteValueLog() > 0 {
		return
	}
	vlogs, err := filepath.Glob(filepath.Join(b.db.Opts().ValueDir, "*.vlog"))
	if err != nil || len(vlogs) < 2 {
		return
	}
	// DropPrefix is Badger's only public way to flush the memtables; it
	// needs a key under the prefix, so one is written and dropped. Writes
	// fail while it runs, hence the committer callback.
	flushed := make(chan error, 1)
	b.Sync(func(err error) {
		if err == nil {
			err = b.db.Update(func(txn *badger.Txn) error { return txn.Set(keyGCFlush, nil) })
		}
		if err == nil {
			err = b.db.DropPrefix(keyGCFlush)
		}
		flushed <- err
	})
	if err := <-flushed; err != nil {
		if !errors.Is(err, ErrClosed) {
			b.log.Warn("value log GC: flush memtables", "err", err)
		}
		return
	}
	if err := b.db.Flatten(1); err != nil {
		b.log.Warn("value log GC: flatten", "err", err)
		return
	}
	b.rewriteValueLog()
}

// keyGCFlush is written and dropped by RunGC to flush the memtables; it
// is never stored.
var keyGCFlush = []byte("g")

// rewriteValueLog runs Badger's value-log GC until it finds nothing to
// rewrite and returns how many files it rewrote.
func (b *Badger) rewriteValueLog() int {
	for i := 0; i < 100; i++ {
		if err := b.db.RunValueLogGC(0.5); err != nil {
			if !errors.Is(err, badger.ErrNoRewrite) && !errors.Is(err, badger.ErrRejected) {
				b.log.Warn("value log GC failed", "err", err)
			}
			return i
		}
	}
	return 100
}

// Close finishes pending commits and closes the database.
func (b *Badger) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.mu.Unlock()
	b.cond.Broadcast()
	close(b.stop)
	b.wg.Wait()
	if err := b.db.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// badgerLogger passes Badger's warnings and errors to slog.
type badgerLogger struct{ log *slog.Logger }

func (l badgerLogger) Errorf(f string, a ...any) {
	l.log.Error("badger: " + strings.TrimSpace(fmt.Sprintf(f, a...)))
}
func (l badgerLogger) Warningf(f string, a ...any) {
	l.log.Warn("badger: " + strings.TrimSpace(fmt.Sprintf(f, a...)))
}
func (badgerLogger) Infof(string, ...any)  {}
func (badgerLogger) Debugf(string, ...any) {}
