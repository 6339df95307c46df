package store

import (
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
	"syscall"
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
	// ValueLogFileSize and MemTableSize are Badger's; 0 sizes them for
	// the data dir's file system (ValueLogFileSize a 32nd of it between 1
	// and 64 MiB, MemTableSize a 64th between 1 and 8 MiB), so that what
	// Badger preallocates fits a small disk (space.go).
	ValueLogFileSize int64
	MemTableSize     int64
	// OnSpace, if set, is told the store's disk figures each time the
	// committer measures them (space.go); it runs on the committer and
	// must not block.
	OnSpace func(Space)
	// SpaceCheckBytes and SpaceCheckInterval: the committer measures the
	// disk after this many bytes written, or this much time (0: a quarter
	// of a value-log file; 100 ms).
	SpaceCheckBytes    int64
	SpaceCheckInterval time.Duration
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
	refs    map[uint64]int         // remaining queue references of bodies stored for several queues
	adds    map[uint64]*pendingAdd // messages whose AddMessage the committer has not taken yet
	space   *spaceGuard
	gcKick  chan struct{} // asks the GC loop for a pass now (space is low and messages went)
	nodeID  atomic.Uint32

	batches, ops atomic.Uint64
	refusedMsgs  atomic.Uint64 // messages refused for want of disk space
	// removedSinceGC counts removal ops written since a low-space GC pass
	// last reclaimed something.
	removedSinceGC atomic.Int64
	refusing       bool // the committer refused new messages last time (committer only)
	stop           chan struct{}
	wg             sync.WaitGroup
}

// op is one pending write.
type op struct {
	key, value []byte // value nil: delete
	done       func(error)
	bulk       *bulkRemoval // instead of key: many deletes in one op
	add        uint64       // on the first op of an AddMessage: the message's id (MarkDelivered)
	newMsg     bool         // an op of an AddMessage: refused when the disk is below the floor
	cont       bool         // continues the op before it: one batch takes both
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
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir %s: %w", dir, err)
	}
	vlogSize, memSize, err := fileSizes(dir, opts)
	if err != nil {
		return nil, err
	}
	space := newSpaceGuard(dir, vlogSize, memSize, opts, log)
	if s, err := space.measure(); err != nil {
		return nil, err
	} else if s.Refusing {
		// Badger could die of SIGBUS writing its new memtable log: give
		// it the ballast's room, so that consumers can drain.
		released, err := space.releaseBallast()
		if err != nil {
			return nil, err
		}
		log.Warn("the store's disk is below its floor at start; new messages will be refused until space is freed",
			"free", s.Free, "floor", s.Floor, "ballast_released", released)
	}
	bo := badger.DefaultOptions(dir).
		WithSyncWrites(false).
		WithLogger(badgerLogger{log}).
		WithMemTableSize(memSize).
		WithNumMemtables(2).
		WithCompression(options.None). // keys and small values barely compress; bodies are the client's
		WithBlockCacheSize(0).         // only needed to cache decompressed blocks
		WithIndexCacheSize(16 << 20).
		WithValueThreshold(256).
		WithValueLogFileSize(vlogSize). // a drained backlog leaves at most one file behind
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
	if opts.MaxBatchBytes > int(vlogSize) {
		opts.MaxBatchBytes = int(vlogSize) // a batch fits what the space checks allow for
	}
	b := &Badger{db: db, opts: opts, log: log, refs: map[uint64]int{}, adds: map[uint64]*pendingAdd{},
		space: space, gcKick: make(chan struct{}, 1), stop: make(chan struct{})}
	b.cond = sync.NewCond(&b.mu)
	if err := b.checkFormat(dir); err != nil {
		db.Close()
		return nil, err
	}
	if err := b.loadNodeID(dir); err != nil {
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

// fileSizes returns Badger's value-log file and memtable sizes: opts', or
// sized for the file system of dir.
func fileSizes(dir string, opts Options) (vlog, mem int64, err error) {
	vlog, mem = opts.ValueLogFileSize, opts.MemTableSize
	if vlog > 0 && mem > 0 {
		return vlog, mem, nil
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	total := int64(st.Blocks) * int64(st.Bsize)
	if vlog <= 0 {
		vlog = min(max(total/32, 1<<20), 64<<20) &^ (1<<20 - 1)
	}
	if mem <= 0 {
		mem = min(max(total/64, 1<<20), 8<<20) &^ (1<<20 - 1)
	}
	return vlog, mem, nil
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

// loadRefs rebuilds the reference counts of bodies shared by several
// queues. It collects every entry's id (8 bytes
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
		for n < len(b.pending) && (n < b.opts.MaxBatchOps && size < b.opts.MaxBatchBytes || b.pending[n].cont) {
			size += len(b.pending[n].key) + len(b.pending[n].value)
			if bulk := b.pending[n].bulk; bulk != nil {
				size += 32 * len(bulk.ids)
			}
			if id := b.pending[n].add; id != 0 {
				delete(b.adds, id) // its entries are the committer's now
			}
			n++
		}
		batch = append(batch[:0], b.pending[:n]...)
		rest := copy(b.pending, b.pending[n:])
		clear(b.pending[rest:])
		b.pending = b.pending[:rest]
		b.mu.Unlock()

		refused := 0
		if !b.space.admit(int64(size)) {
			batch, refused = b.refuseNewMessages(batch)
		}
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
		b.afterBatch(batch, refused)
		clear(batch)
	}
}

// refuseNewMessages takes the ops of AddMessage out of a batch, failing
// them with ErrNoSpace, and returns the rest and how many messages it
// refused.
func (b *Badger) refuseNewMessages(batch []op) ([]op, int) {
	kept, refused := batch[:0], 0
	for _, o := range batch {
		if !o.newMsg {
			kept = append(kept, o)
			continue
		}
		if o.add != 0 {
			refused++
		}
		if o.done != nil {
			o.done(ErrNoSpace)
		}
	}
	clear(batch[len(kept):])
	return kept, refused
}

// afterBatch looks after the disk once a batch is written: it logs
// refusals, keeps the ballast and asks for value-log GC while space is
// low and messages are being removed.
func (b *Badger) afterBatch(batch []op, refused int) {
	s := b.space.space()
	if refused > 0 {
		b.refusedMsgs.Add(uint64(refused))
		if !b.refusing {
			b.refusing = true
			b.log.Error("the store's disk is below its floor: refusing new messages", "free", s.Free, "floor", s.Floor)
		}
	} else if b.refusing && !s.Refusing {
		b.refusing = false
		b.log.Info("the store's disk is above its floor again: accepting new messages", "refused", b.refusedMsgs.Load())
	}
	if err := b.space.keepBallast(s); err != nil {
		b.log.Warn("disk ballast", "err", err)
	}
	for _, o := range batch {
		if o.bulk != nil || (o.value == nil && o.key != nil) {
			b.removedSinceGC.Add(1)
		}
	}
	if b.removedSinceGC.Load() > 0 && s.Free < 2*s.Floor {
		select {
		case b.gcKick <- struct{}{}:
		default:
		}
	}
}

// RefusedMessages is how many messages were refused for want of disk
// space since the store opened.
func (b *Badger) RefusedMessages() uint64 { return b.refusedMsgs.Load() }

// write applies a batch and syncs it to disk. A batch of sync markers
// alone writes nothing and needs no fsync: the batches before it, which
// hold everything submitted before the markers, are on disk already.
func (b *Badger) write(batch []op) error {
	writes := false
	for i := range batch {
		if batch[i].key != nil || batch[i].bulk != nil {
			writes = true
			break
		}
	}
	if !writes {
		return nil
	}
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

// DeleteMetaKeys removes metadata records of kind durably, as one
// submission to the committer (a large one may span commits).
func (b *Badger) DeleteMetaKeys(kind string, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	ops := make([]op, len(keys))
	for i, k := range keys {
		ops[i] = op{key: metaKey(kind, k)}
	}
	ch := make(chan error, 1)
	ops[len(ops)-1].done = func(err error) { ch <- err }
	b.submit(ops...)
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

// Stats returns the committer's counters.
func (b *Badger) Stats() Stats {
	return Stats{Batches: b.batches.Load(), Ops: b.ops.Load()}
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
