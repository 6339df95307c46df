package meta

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/warrenmq/warren/amqp"
)

// Log orders metadata operations. The single-node log is Local; a cluster
// implements the same interface over a replicated log.
type Log interface {
	// Propose checks op against the state, makes it durable (or
	// replicated) and applies it. It returns when op is applied on this
	// node: nil, or the check's error (an *amqp.Error with RabbitMQ's code
	// and text), or why it could not be made durable.
	Propose(ctx context.Context, op Op) error
	// View calls fn with the current state, which fn must neither change
	// nor keep.
	View(fn func(*State))
	// CatchUp returns once this node has applied every op that the log
	// had committed when it was called, anywhere: a read after it sees
	// every change another node has confirmed. A reader calls it when a
	// lookup missed, before answering "not found". It fails when the log
	// cannot tell (no leader, ctx done). Local's returns at once.
	CatchUp(ctx context.Context) error
}

// Applier is told, in log order, the changes each applied op made, so
// that the running broker can follow them (create and delete its queues
// and exchanges, bind, apply policies, drop connections of deleted users).
type Applier interface {
	Apply(changes []Change)
}

// Store is the durable storage Local keeps its log and snapshot in.
type Store interface {
	PutMeta(kind, key string, value []byte) error
	DeleteMetaKeys(kind string, keys []string) error
	ListMeta(kind string, fn func(key string, value []byte) error) error
}

// Store record kinds of Local.
const (
	kindLog      = "metalog"  // key: the entry's index, 8 bytes big-endian; value: AppendChanges
	kindSnapshot = "metasnap" // key "current"; value: the index it covers (8 bytes) and Snapshot(durable only)
)

// DefaultSnapshotEvery is how many log entries Local writes before it
// folds them into a new snapshot.
const DefaultSnapshotEvery = 4096

// Local is the single-node log. Proposals are serialised: each is checked,
// applied to the state, written to the store as one record holding its
// durable changes (so that after a crash it is there whole or not at all),
// and handed to the applier. Only the log's own locks are held while the
// store syncs, never a lock of the broker's; readers of the state (View)
// wait until the change is durable and applied.
type Local struct {
	store         Store
	applier       Applier
	snapshotEvery int

	turn chan struct{} // a token: held by the proposal in progress

	mu    sync.RWMutex // guards state
	state *State

	next          uint64 // index of the next log entry; under turn
	sinceSnapshot int    // entries since the last snapshot; under turn
	fresh         bool
}

// OpenLocal loads the state from st (its snapshot, then the entries after
// it) and hands it to applier as one list of puts, in dependency order;
// restart recovery thus takes the same path as any change.
func OpenLocal(st Store, applier Applier, snapshotEvery int) (*Local, error) {
	if snapshotEvery <= 0 {
		snapshotEvery = DefaultSnapshotEvery
	}
	l := &Local{store: st, applier: applier, snapshotEvery: snapshotEvery, turn: make(chan struct{}, 1)}
	var snapIndex uint64
	var snap []byte
	found := false
	err := st.ListMeta(kindSnapshot, func(key string, value []byte) error {
		if key != "current" || len(value) < 8 {
			return fmt.Errorf("bad metadata snapshot record %q", key)
		}
		snapIndex, snap, found = binary.BigEndian.Uint64(value), value[8:], true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read metadata snapshot: %w", err)
	}
	if l.state, err = Restore(snap); err != nil {
		return nil, err
	}
	l.next = snapIndex + 1
	err = st.ListMeta(kindLog, func(key string, value []byte) error {
		if len(key) != 8 {
			return fmt.Errorf("bad metadata log key %x", key)
		}
		index := binary.BigEndian.Uint64([]byte(key))
		found = true
		if index <= snapIndex {
			return nil // folded into the snapshot; its removal was interrupted
		}
		cs, err := DecodeChanges(value)
		if err != nil {
			return fmt.Errorf("metadata log entry %d: %w", index, err)
		}
		if err := l.state.Replay(cs); err != nil {
			return fmt.Errorf("metadata log entry %d: %w", index, err)
		}
		l.next = index + 1
		l.sinceSnapshot++
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read metadata log: %w", err)
	}
	l.fresh = !found
	var puts []Change
	l.state.Each(func(r Record) { puts = append(puts, Change{Record: r, Durable: true}) })
	applier.Apply(puts)
	return l, nil
}

// Fresh reports whether the store held no metadata at all when the log
// opened (a new data dir).
func (l *Local) Fresh() bool { return l.fresh }

// View implements Log.
func (l *Local) View(fn func(*State)) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	fn(l.state)
}

// CatchUp implements Log: a single node is always caught up.
func (l *Local) CatchUp(context.Context) error { return nil }

// Propose implements Log.
func (l *Local) Propose(ctx context.Context, op Op) error {
	select {
	case l.turn <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-l.turn }()

	// Readers of the state (View) wait while it runs ahead of the store
	// and of the broker: what they see is durable and applied, so a node
	// that answers from it (State.Answer) never answers ahead of the
	// broker. Only metadata reads wait; no broker lock is held here.
	l.mu.Lock()
	if err := l.state.Check(op); err != nil {
		l.mu.Unlock()
		return err
	}
	cs := l.state.Apply(op)
	if err := l.write(cs); err != nil {
		l.state.Undo(cs)
		l.mu.Unlock()
		return amqp.Errorf(amqp.InternalError, "could not store %s: %v", op, err)
	}
	if len(cs) > 0 {
		l.applier.Apply(cs)
	}
	l.mu.Unlock()
	if l.sinceSnapshot >= l.snapshotEvery {
		if err := l.snapshot(); err != nil {
			return fmt.Errorf("%s was applied, but the metadata snapshot failed: %w", op, err)
		}
	}
	return nil
}

// write logs the durable part of cs as one entry.
func (l *Local) write(cs []Change) error {
	var durable []Change
	for _, c := range cs {
		if c.Durable {
			durable = append(durable, c)
		}
	}
	if len(durable) == 0 {
		return nil
	}
	if err := l.store.PutMeta(kindLog, indexKey(l.next), AppendChanges(nil, durable)); err != nil {
		return err
	}
	l.next++
	l.sinceSnapshot++
	return nil
}

// snapshot writes the durable state as the snapshot covering every entry
// so far, then removes those entries.
func (l *Local) snapshot() error {
	l.mu.RLock()
	snap := Snapshot(l.state, true)
	l.mu.RUnlock()
	last := l.next - 1
	value := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(snap)), last)
	if err := l.store.PutMeta(kindSnapshot, "current", append(value, snap...)); err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	l.sinceSnapshot = 0
	var old []string
	if err := l.store.ListMeta(kindLog, func(key string, _ []byte) error {
		if len(key) == 8 && binary.BigEndian.Uint64([]byte(key)) <= last {
			old = append(old, key)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("list folded log entries: %w", err)
	}
	if err := l.store.DeleteMetaKeys(kindLog, old); err != nil {
		return fmt.Errorf("remove folded log entries: %w", err)
	}
	return nil
}

// InstallSnapshot replaces the whole state with the one snap (from
// Snapshot) encodes: the store keeps it as the new snapshot, covering
// every entry so far, and the applier gets the changes from the old state
// to the new one (Diff). A node that joins or returns catches up this way.
func (l *Local) InstallSnapshot(ctx context.Context, snap []byte) error {
	next, err := Restore(snap)
	if err != nil {
		return err
	}
	select {
	case l.turn <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-l.turn }()
	l.mu.Lock()
	cs := Diff(l.state, next)
	prev := l.state
	l.state = next
	l.mu.Unlock()
	if err := l.snapshot(); err != nil {
		l.mu.Lock()
		l.state = prev
		l.mu.Unlock()
		return fmt.Errorf("install snapshot: %w", err)
	}
	l.applier.Apply(cs)
	return nil
}

// Snapshot writes a snapshot now (tests, and a clean shutdown).
func (l *Local) Snapshot() error {
	l.turn <- struct{}{}
	defer func() { <-l.turn }()
	return l.snapshot()
}

func indexKey(i uint64) string {
	return string(binary.BigEndian.AppendUint64(nil, i))
}
