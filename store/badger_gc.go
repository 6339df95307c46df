package store

import (
	"errors"
	"path/filepath"
	"time"

	"github.com/dgraph-io/badger/v4"
)

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
	var lastKick time.Time
	var again <-chan time.Time // a kick that came too soon after the last pass
	for {
		select {
		case <-b.stop:
			return
		case <-b.gcKick:
			// Space is low and messages went: reclaim now, at most
			// every kickEvery.
			if wait := kickEvery - time.Since(lastKick); wait > 0 {
				if again == nil {
					again = time.After(wait)
				}
				continue
			}
			lastKick, again = time.Now(), nil
			b.lowSpaceGC()
			deep = b.ops.Load()
			continue
		case <-again:
			lastKick, again = time.Now(), nil
			b.lowSpaceGC()
			deep = b.ops.Load()
			continue
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

// lowSpaceGC is a GC pass asked for because space is low: once it
// reclaims something, removals written before it no longer call for
// another.
func (b *Badger) lowSpaceGC() {
	before := b.removedSinceGC.Load()
	if b.RunGC() > 0 {
		b.removedSinceGC.Add(-before)
	}
}

// kickEvery is the shortest time between GC passes asked for because
// space is low.
const kickEvery = 2 * time.Second

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
// collected; a restart starts a new one. It returns how many value-log
// files it rewrote or deleted.
func (b *Badger) RunGC() int {
	if n := b.rewriteValueLog(); n > 0 {
		return n
	}
	vlogs, err := filepath.Glob(filepath.Join(b.db.Opts().ValueDir, "*.vlog"))
	if err != nil || len(vlogs) < 2 {
		return 0
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
		return 0
	}
	if err := b.db.Flatten(1); err != nil {
		b.log.Warn("value log GC: flatten", "err", err)
		return 0
	}
	return b.rewriteValueLog()
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
