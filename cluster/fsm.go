package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/hashicorp/raft"

	"github.com/warrenmq/warren/broker/meta"
)

// fsm is raft's state machine: the metadata as a meta.State. Every node
// applies the same ops in the same order, so each op's check gives the
// same answer everywhere; that answer (nil or the *amqp.Error RabbitMQ
// gives) is the apply's response, which reaches the proposer.
//
// applied is the index of the last command entry applied (raft hands the
// FSM only commands; no-ops, barriers and configuration entries never
// reach it), or the command index a restored snapshot covers. Catch-up
// and forwarded proposals wait on it.
type fsm struct {
	applier meta.Applier
	log     *slog.Logger

	mu      sync.RWMutex
	state   *meta.State
	applied uint64
	changed chan struct{} // closed and replaced whenever applied moves
}

func newFSM(applier meta.Applier, log *slog.Logger) *fsm {
	return &fsm{applier: applier, log: log, state: meta.NewState(), changed: make(chan struct{})}
}

// Apply implements raft.FSM: decode the op, check it, apply it, and hand
// its changes to the broker. A refused op changes nothing and its error
// is the response.
func (f *fsm) Apply(l *raft.Log) any {
	var resp error
	var cs []meta.Change
	op, err := meta.DecodeOp(l.Data)
	f.mu.Lock()
	switch {
	case err != nil:
		// Every node fails the same way: the op is refused everywhere.
		resp = fmt.Errorf("decode metadata op at index %d: %w", l.Index, err)
	default:
		if resp = f.state.Check(op); resp == nil {
			cs = f.state.Apply(op)
		}
	}
	// Readers (View) see the state only once the broker follows it.
	if len(cs) > 0 {
		f.applier.Apply(cs)
	}
	f.mu.Unlock()
	if err != nil {
		f.log.Error("undecodable metadata op in the raft log", "index", l.Index, "err", err)
	}
	f.setApplied(l.Index)
	if resp != nil {
		return resp
	}
	return nil
}

func (f *fsm) setApplied(index uint64) {
	f.mu.Lock()
	f.applied = index
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

// appliedIndex returns the index of the last command applied.
func (f *fsm) appliedIndex() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.applied
}

// waitApplied returns once the command at index (or a later one) is
// applied here, or when ctx ends.
func (f *fsm) waitApplied(ctx context.Context, index uint64) error {
	for {
		f.mu.RLock()
		applied, changed := f.applied, f.changed
		f.mu.RUnlock()
		if applied >= index {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("wait for metadata entry %d (applied %d): %w", index, applied, ctx.Err())
		}
	}
}

// view calls fn with the state under the read lock.
func (f *fsm) view(fn func(*meta.State)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn(f.state)
}

// snapshotMagic starts every snapshot: a format version.
const snapshotMagic = "WRNmeta1"

// Snapshot implements raft.FSM: the whole state (transient objects too,
// every node holds them), encoded now, written by Persist.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return &fsmSnapshot{applied: f.applied, data: meta.Snapshot(f.state, false)}, nil
}

// Restore implements raft.FSM: the snapshot's state replaces this node's,
// and the broker gets the difference (meta.Diff), as when a node returns.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("read metadata snapshot: %w", err)
	}
	if len(b) < len(snapshotMagic)+8 || string(b[:len(snapshotMagic)]) != snapshotMagic {
		return errors.New("not a Warren metadata snapshot")
	}
	applied := binary.BigEndian.Uint64(b[len(snapshotMagic):])
	next, err := meta.Restore(b[len(snapshotMagic)+8:])
	if err != nil {
		return fmt.Errorf("restore metadata snapshot: %w", err)
	}
	f.mu.Lock()
	cs := meta.Diff(f.state, next)
	f.state = next
	if len(cs) > 0 {
		f.applier.Apply(cs)
	}
	f.mu.Unlock()
	f.setApplied(applied)
	f.log.Info("metadata restored from a snapshot", "index", applied, "changes", len(cs))
	return nil
}

// fsmSnapshot is one snapshot, written to raft's snapshot store.
type fsmSnapshot struct {
	applied uint64
	data    []byte
}

// Persist implements raft.FSMSnapshot.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	hdr := binary.BigEndian.AppendUint64([]byte(snapshotMagic), s.applied)
	if _, err := sink.Write(hdr); err != nil {
		sink.Cancel()
		return fmt.Errorf("write metadata snapshot: %w", err)
	}
	if _, err := sink.Write(s.data); err != nil {
		sink.Cancel()
		return fmt.Errorf("write metadata snapshot: %w", err)
	}
	return sink.Close()
}

// Release implements raft.FSMSnapshot.
func (s *fsmSnapshot) Release() {}
