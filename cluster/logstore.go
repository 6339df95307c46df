package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/hashicorp/raft"
)

// raftStore is raft's log store and stable store on Badger, in a database
// of its own under <datadir>/raft, written with synced commits.
//
// Why Badger rather than hashicorp/raft-boltdb: Badger is already the
// broker's storage engine (one engine to build, tune and operate, no new
// dependency), and this store also implements raft.CommitTrackingLogStore,
// which raft-boltdb does not: with it a restarted node replays the entries
// it knew committed before NewRaft returns, so it serves its metadata
// (users, vhosts, queues) at once, even before it reaches a leader.
//
// Keys: 'l' + index (8 bytes, big-endian) for log entries; 's' + key for
// the stable store; "c" for the commit index, written in the same
// transaction as the entries that follow its staging.
type raftStore struct {
	db *badger.DB

	mu     sync.Mutex
	staged uint64 // commit index staged for the next StoreLogs
}

const (
	prefixLog    = 'l'
	prefixStable = 's'
)

var keyCommit = []byte("c")

// openRaftStore opens (or creates) the store in dir.
func openRaftStore(dir string, log *slog.Logger) (*raftStore, error) {
	opts := badger.DefaultOptions(dir).
		WithSyncWrites(true).
		WithLogger(badgerLogger{log}).
		WithMemTableSize(4 << 20).
		WithNumMemtables(2).
		WithCompression(options.None).
		WithBlockCacheSize(0).
		WithIndexCacheSize(4 << 20).
		WithValueThreshold(1 << 10). // big ops (a definitions import) go to the value log
		WithValueLogFileSize(64 << 20).
		WithNumCompactors(2).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(4)
	db, err := badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open raft store in %s: %w", dir, err)
	}
	return &raftStore{db: db}, nil
}

// Close closes the database.
func (s *raftStore) Close() error { return s.db.Close() }

func logKey(index uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixLog}, index)
}

// FirstIndex implements raft.LogStore.
func (s *raftStore) FirstIndex() (uint64, error) { return s.edgeIndex(false) }

// LastIndex implements raft.LogStore.
func (s *raftStore) LastIndex() (uint64, error) { return s.edgeIndex(true) }

// edgeIndex returns the first (or last) index in the log, 0 when empty.
func (s *raftStore) edgeIndex(last bool) (uint64, error) {
	var idx uint64
	err := s.db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.PrefetchValues = false
		opts.Reverse = last
		opts.Prefix = []byte{prefixLog}
		it := txn.NewIterator(opts)
		defer it.Close()
		if last {
			it.Seek([]byte{prefixLog, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
		} else {
			it.Seek([]byte{prefixLog})
		}
		if it.Valid() {
			idx = binary.BigEndian.Uint64(it.Item().Key()[1:])
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("raft store: %w", err)
	}
	return idx, nil
}

// GetLog implements raft.LogStore.
func (s *raftStore) GetLog(index uint64, l *raft.Log) error {
	return s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(logKey(index))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return raft.ErrLogNotFound
		}
		if err != nil {
			return fmt.Errorf("raft store: read entry %d: %w", index, err)
		}
		return item.Value(func(v []byte) error {
			if err := decodeLog(v, l); err != nil {
				return fmt.Errorf("raft store: entry %d: %w", index, err)
			}
			l.Index = index
			return nil
		})
	})
}

// lastCommandAtOrBelow returns the index of the last LogCommand entry at
// or below index, or found=false when the log holds none there (they are
// all in the snapshot, or there never was one).
func (s *raftStore) lastCommandAtOrBelow(index uint64) (idx uint64, found bool, err error) {
	err = s.db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.PrefetchValues = false
		opts.Reverse = true
		opts.Prefix = []byte{prefixLog}
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Seek(logKey(index)); it.Valid(); it.Next() {
			var typ raft.LogType
			if err := it.Item().Value(func(v []byte) error {
				if len(v) == 0 {
					return errors.New("empty entry")
				}
				typ = raft.LogType(v[0])
				return nil
			}); err != nil {
				return err
			}
			if typ == raft.LogCommand {
				idx, found = binary.BigEndian.Uint64(it.Item().Key()[1:]), true
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return 0, false, fmt.Errorf("raft store: %w", err)
	}
	return idx, found, nil
}

// StoreLog implements raft.LogStore.
func (s *raftStore) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

// StoreLogs implements raft.LogStore: the entries and the staged commit
// index in one synced transaction (several if they do not fit in one; a
// crash between them leaves a shorter log, which raft repairs).
func (s *raftStore) StoreLogs(logs []*raft.Log) error {
	s.mu.Lock()
	staged := s.staged
	s.mu.Unlock()
	txn := s.db.NewTransaction(true)
	defer func() { txn.Discard() }()
	var buf []byte
	for i, l := range logs {
		buf = encodeLog(buf[:0], l)
		e := badger.NewEntry(logKey(l.Index), append([]byte(nil), buf...))
		if i == len(logs)-1 && staged > 0 {
			if err := setOrCommit(&txn, s.db, badger.NewEntry(keyCommit, binary.BigEndian.AppendUint64(nil, staged))); err != nil {
				return err
			}
		}
		if err := setOrCommit(&txn, s.db, e); err != nil {
			return err
		}
	}
	if err := txn.Commit(); err != nil {
		return fmt.Errorf("raft store: write entries: %w", err)
	}
	return nil
}

// setOrCommit sets e in *txn; when the transaction is full it commits it
// and goes on in a new one.
func setOrCommit(txn **badger.Txn, db *badger.DB, e *badger.Entry) error {
	return doOrCommit(txn, db, func(t *badger.Txn) error { return t.SetEntry(e) })
}

// doOrCommit runs do on *txn; when the transaction is full it commits it
// and runs do again in a new one.
func doOrCommit(txn **badger.Txn, db *badger.DB, do func(*badger.Txn) error) error {
	err := do(*txn)
	if errors.Is(err, badger.ErrTxnTooBig) {
		if err := (*txn).Commit(); err != nil {
			return fmt.Errorf("raft store: commit: %w", err)
		}
		*txn = db.NewTransaction(true)
		err = do(*txn)
	}
	if err != nil {
		return fmt.Errorf("raft store: %w", err)
	}
	return nil
}

// DeleteRange implements raft.LogStore.
func (s *raftStore) DeleteRange(lo, hi uint64) error {
	txn := s.db.NewTransaction(true)
	defer func() { txn.Discard() }()
	var keys [][]byte
	err := s.db.View(func(rt *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.PrefetchValues = false
		opts.Prefix = []byte{prefixLog}
		it := rt.NewIterator(opts)
		defer it.Close()
		for it.Seek(logKey(lo)); it.Valid(); it.Next() {
			if binary.BigEndian.Uint64(it.Item().Key()[1:]) > hi {
				break
			}
			keys = append(keys, it.Item().KeyCopy(nil))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("raft store: list entries %d-%d: %w", lo, hi, err)
	}
	for _, k := range keys {
		if err := doOrCommit(&txn, s.db, func(t *badger.Txn) error { return t.Delete(k) }); err != nil {
			return err
		}
	}
	if err := txn.Commit(); err != nil {
		return fmt.Errorf("raft store: delete entries %d-%d: %w", lo, hi, err)
	}
	// Compaction leaves the big entries' values behind in the value log.
	if err := s.db.RunValueLogGC(0.5); err != nil && !errors.Is(err, badger.ErrNoRewrite) && !errors.Is(err, badger.ErrRejected) {
		return fmt.Errorf("raft store: value log gc: %w", err)
	}
	return nil
}

// StageCommitIndex implements raft.CommitTrackingLogStore.
func (s *raftStore) StageCommitIndex(idx uint64) error {
	s.mu.Lock()
	s.staged = idx
	s.mu.Unlock()
	return nil
}

// GetCommitIndex implements raft.CommitTrackingLogStore.
func (s *raftStore) GetCommitIndex() (uint64, error) {
	v, err := s.get(keyCommit)
	if err != nil || len(v) != 8 {
		return 0, err
	}
	c := binary.BigEndian.Uint64(v)
	last, err := s.LastIndex()
	if err != nil {
		return 0, err
	}
	return min(c, last), nil
}

// Set implements raft.StableStore.
func (s *raftStore) Set(key, val []byte) error {
	err := s.db.Update(func(txn *badger.Txn) error {
		return txn.Set(append([]byte{prefixStable}, key...), append([]byte(nil), val...))
	})
	if err != nil {
		return fmt.Errorf("raft store: set %s: %w", key, err)
	}
	return nil
}

// Get implements raft.StableStore.
func (s *raftStore) Get(key []byte) ([]byte, error) {
	return s.get(append([]byte{prefixStable}, key...))
}

func (s *raftStore) get(key []byte) ([]byte, error) {
	var v []byte
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		v, err = item.ValueCopy(nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("raft store: get %q: %w", key, err)
	}
	return v, nil
}

// SetUint64 implements raft.StableStore.
func (s *raftStore) SetUint64(key []byte, val uint64) error {
	return s.Set(key, binary.BigEndian.AppendUint64(nil, val))
}

// GetUint64 implements raft.StableStore.
func (s *raftStore) GetUint64(key []byte) (uint64, error) {
	v, err := s.Get(key)
	if err != nil || len(v) == 0 {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("raft store: %s holds %d bytes, not a uint64", key, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// encodeLog appends an entry (all but its index, which is the key):
// type, term, appended-at (Unix ns), data, extensions.
func encodeLog(buf []byte, l *raft.Log) []byte {
	buf = append(buf, byte(l.Type))
	buf = binary.AppendUvarint(buf, l.Term)
	var at int64
	if !l.AppendedAt.IsZero() {
		at = l.AppendedAt.UnixNano()
	}
	buf = binary.AppendVarint(buf, at)
	buf = binary.AppendUvarint(buf, uint64(len(l.Data)))
	buf = append(buf, l.Data...)
	buf = binary.AppendUvarint(buf, uint64(len(l.Extensions)))
	return append(buf, l.Extensions...)
}

// decodeLog decodes what encodeLog wrote into l, copying the bytes.
func decodeLog(b []byte, l *raft.Log) error {
	if len(b) == 0 {
		return io.ErrUnexpectedEOF
	}
	l.Type = raft.LogType(b[0])
	b = b[1:]
	var n int
	if l.Term, n = binary.Uvarint(b); n <= 0 {
		return errors.New("bad term")
	}
	b = b[n:]
	at, n := binary.Varint(b)
	if n <= 0 {
		return errors.New("bad time")
	}
	b = b[n:]
	l.AppendedAt = time.Time{}
	if at != 0 {
		l.AppendedAt = time.Unix(0, at)
	}
	var err error
	if l.Data, b, err = decodeBytes(b); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	if l.Extensions, _, err = decodeBytes(b); err != nil {
		return fmt.Errorf("extensions: %w", err)
	}
	return nil
}

// decodeBytes reads a uvarint length and that many bytes (copied; nil
// when empty).
func decodeBytes(b []byte) (v, rest []byte, err error) {
	size, n := binary.Uvarint(b)
	if n <= 0 || uint64(len(b)-n) < size {
		return nil, nil, io.ErrUnexpectedEOF
	}
	b = b[n:]
	if size > 0 {
		v = append([]byte(nil), b[:size]...)
	}
	return v, b[size:], nil
}

// badgerLogger sends Badger's log to slog: warnings and errors as such,
// the rest (routine compaction chatter) at debug.
type badgerLogger struct{ log *slog.Logger }

func (l badgerLogger) Errorf(f string, a ...any) {
	l.log.Error(fmt.Sprintf(f, a...), "component", "raft-store")
}
func (l badgerLogger) Warningf(f string, a ...any) {
	l.log.Warn(fmt.Sprintf(f, a...), "component", "raft-store")
}
func (l badgerLogger) Infof(f string, a ...any) {
	l.log.Debug(fmt.Sprintf(f, a...), "component", "raft-store")
}
func (l badgerLogger) Debugf(f string, a ...any) {
	l.log.Debug(fmt.Sprintf(f, a...), "component", "raft-store")
}
