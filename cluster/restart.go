package cluster

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/hashicorp/raft"

	"github.com/warrenmq/warren/broker/meta"
)

// A restart works around hashicorp/raft v1.8.0's committed-log restore:
// with RestoreCommittedLogs, NewRaft applies the entries up to the
// stored commit index and then rebuilds the cluster configuration only
// from the entries after them, so configuration entries among the
// replayed ones are lost. A node whose known-committed tail holds the
// membership changes (every node of a young cluster) came back with an
// empty configuration: it never campaigned, it listed no members, and a
// whole cluster restarted that way never elected a leader.
//
// foldCommittedTail prevents it before NewRaft runs: when configuration
// entries lie between the latest snapshot and the commit index, it
// replays that tail onto the snapshot's state in a scratch state machine
// and writes the result as a new snapshot at the commit index, carrying
// the configuration as of that index. NewRaft then restores that
// snapshot (state and configuration), has nothing committed left to
// replay, and scans the entries after it for configuration as usual.

// foldCommittedTail folds the committed entries after the latest
// snapshot into a new one when they hold a configuration change; it
// reports whether it wrote one.
func foldCommittedTail(store *raftStore, snaps raft.SnapshotStore, trans raft.Transport, log *slog.Logger) (bool, error) {
	commit, err := store.GetCommitIndex()
	if err != nil || commit == 0 {
		return false, err
	}
	var snapIndex uint64
	var snapConf raft.Configuration
	var snapConfIndex uint64
	list, err := snaps.List()
	if err != nil {
		return false, fmt.Errorf("list raft snapshots: %w", err)
	}
	if len(list) > 0 {
		snapIndex, snapConf, snapConfIndex = list[0].Index, list[0].Configuration, list[0].ConfigurationIndex
	}
	if commit <= snapIndex {
		return false, nil
	}
	var tail []*raft.Log
	conf, confIndex, confInTail := snapConf, snapConfIndex, false
	for i := snapIndex + 1; i <= commit; i++ {
		l := new(raft.Log)
		if err := store.GetLog(i, l); err != nil {
			// A log that starts after the snapshot's index (compacted
			// by another snapshot raft took) leaves nothing to fold.
			log.Debug("no committed tail to fold", "index", i, "err", err)
			return false, nil
		}
		switch l.Type {
		case raft.LogConfiguration:
			conf, confIndex, confInTail = raft.DecodeConfiguration(l.Data), l.Index, true
		case raft.LogCommand:
			tail = append(tail, l)
		}
	}
	if !confInTail {
		return false, nil
	}
	var last raft.Log
	if err := store.GetLog(commit, &last); err != nil {
		return false, fmt.Errorf("read raft entry %d: %w", commit, err)
	}

	scratch := newFSM(discardChanges{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if len(list) > 0 {
		_, rc, err := snaps.Open(list[0].ID)
		if err != nil {
			return false, fmt.Errorf("open raft snapshot %s: %w", list[0].ID, err)
		}
		if err := scratch.Restore(rc); err != nil {
			return false, err
		}
	}
	for _, l := range tail {
		scratch.Apply(l)
	}
	snap, err := scratch.Snapshot()
	if err != nil {
		return false, err
	}
	sink, err := snaps.Create(raft.SnapshotVersionMax, commit, last.Term, conf, confIndex, trans)
	if err != nil {
		return false, fmt.Errorf("create raft snapshot at %d: %w", commit, err)
	}
	if err := snap.Persist(sink); err != nil {
		return false, err
	}
	log.Info("committed log tail folded into a snapshot, keeping its membership changes", "index", commit, "from", snapIndex, "members", len(conf.Servers))
	return true, nil
}

// discardChanges is the applier of a scratch state machine.
type discardChanges struct{}

// Apply implements meta.Applier.
func (discardChanges) Apply([]meta.Change) {}
