package cluster

import (
	"errors"
	"io"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/warrenmq/warren/amqp"
)

func openTestStore(t *testing.T, dir string) *raftStore {
	t.Helper()
	s, err := openRaftStore(dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRaftStoreLog checks the log store: entries round-trip, first and
// last indexes follow appends and deletions, the commit index is written
// with the next entries and never passes the last one, and the last
// command below an index skips no-ops and configuration entries.
func TestRaftStoreLog(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir)
	if first, _ := s.FirstIndex(); first != 0 {
		t.Fatalf("empty store: first index %d", first)
	}
	at := time.Unix(1700000000, 123)
	var logs []*raft.Log
	for i := uint64(1); i <= 10; i++ {
		typ := raft.LogCommand
		if i%4 == 0 {
			typ = raft.LogNoop
		}
		logs = append(logs, &raft.Log{Index: i, Term: 2, Type: typ, Data: []byte{byte(i)}, AppendedAt: at})
	}
	logs[8].Type = raft.LogConfiguration
	logs[8].Extensions = []byte("ext")
	if err := s.StageCommitIndex(7); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	var got raft.Log
	if err := s.GetLog(9, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&got, logs[8]) {
		t.Fatalf("entry 9 = %+v, want %+v", got, *logs[8])
	}
	if err := s.GetLog(11, &got); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("missing entry: %v", err)
	}
	for _, tc := range []struct {
		at   uint64
		want uint64
		ok   bool
	}{{10, 10, true}, {9, 7, true}, {8, 7, true}, {4, 3, true}, {100, 10, true}} {
		idx, ok, err := s.lastCommandAtOrBelow(tc.at)
		if err != nil || idx != tc.want || ok != tc.ok {
			t.Errorf("last command at or below %d = %d %v %v, want %d", tc.at, idx, ok, err, tc.want)
		}
	}
	if err := s.DeleteRange(1, 3); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.lastCommandAtOrBelow(3); ok {
		t.Fatal("found a command among deleted entries")
	}
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	if first != 4 || last != 10 {
		t.Fatalf("after deleting 1-3: first %d last %d", first, last)
	}
	must(t, s.SetUint64([]byte("CurrentTerm"), 2))
	must(t, s.Set([]byte("LastVoteCand"), []byte("node-1")))
	must(t, s.Close())

	s = openTestStore(t, dir)
	defer s.Close()
	if c, err := s.GetCommitIndex(); err != nil || c != 7 {
		t.Fatalf("commit index after reopen = %d %v, want 7", c, err)
	}
	if term, err := s.GetUint64([]byte("CurrentTerm")); err != nil || term != 2 {
		t.Fatalf("term = %d %v", term, err)
	}
	if v, err := s.Get([]byte("LastVoteCand")); err != nil || string(v) != "node-1" {
		t.Fatalf("vote = %q %v", v, err)
	}
	if v, err := s.Get([]byte("nothing")); err != nil || len(v) != 0 {
		t.Fatalf("missing key = %q %v", v, err)
	}
	// A staged commit index beyond the log is clamped to its end.
	must(t, s.DeleteRange(9, 10))
	must(t, s.StageCommitIndex(50))
	must(t, s.StoreLog(&raft.Log{Index: 9, Term: 3, Type: raft.LogCommand}))
	if c, _ := s.GetCommitIndex(); c != 9 {
		t.Fatalf("commit index = %d, want the last index 9", c)
	}
}

// TestReplyCodec round-trips inter-node replies: an *amqp.Error keeps
// its code, text, class and method; other errors keep their text.
func TestReplyCodec(t *testing.T) {
	for _, r := range []reply{
		{status: statusOK, index: 42},
		{status: statusOK, index: 1 << 40, err: &amqp.Error{Code: 406, Text: "PRECONDITION_FAILED - inequivalent arg 'durable'", ClassID: 50, MethodID: 10}},
		{status: statusFailed, err: errors.New("leadership lost")},
		{status: statusNotLeader},
	} {
		got, err := decodeReply(encodeReply(nil, r))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Errorf("round trip of %+v gave %+v", r, got)
		}
	}
	if _, err := decodeReply([]byte{0, 1, 1, 0}); err == nil {
		t.Error("a truncated reply decoded")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
