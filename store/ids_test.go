package store

import (
	"testing"

	"github.com/dgraph-io/badger/v4"
)

func TestMessageIDLayoutLeavesBit63Free(t *testing.T) {
	for _, tc := range []struct {
		node    uint16
		counter uint64
	}{{1, 1}, {MaxNodeID, MaxCounter}, {0, 6}, {0x800, 1 << 40}} {
		id := MessageID(tc.node, tc.counter)
		if id&(1<<63) != 0 || id > MaxID {
			t.Errorf("MessageID(%d, %d) = %#x sets bit 63", tc.node, tc.counter, id)
		}
		if NodeOf(id) != tc.node || CounterOf(id) != tc.counter {
			t.Errorf("MessageID(%d, %d) = %#x splits into %d, %d", tc.node, tc.counter, id, NodeOf(id), CounterOf(id))
		}
	}
	if MessageID(MaxNodeID, MaxCounter) != MaxID {
		t.Errorf("the largest id is %#x, want %#x", MessageID(MaxNodeID, MaxCounter), uint64(MaxID))
	}
	// The ids of a node all sort above those of lower nodes.
	if MessageID(1, MaxCounter) >= MessageID(2, 0) {
		t.Error("node ranges overlap")
	}
}

func TestNodeIDIsDrawnOnceAndKept(t *testing.T) {
	stores(t, func(t *testing.T, open func() Store) {
		s := open()
		id := s.NodeID()
		if CheckNodeID(id) != nil {
			t.Fatalf("node id %d out of range", id)
		}
		if s = open(); s.NodeID() != id {
			t.Fatalf("node id %d after reopen, was %d", s.NodeID(), id)
		}
		for _, bad := range []uint16{0, MaxNodeID + 1} {
			if err := s.SetNodeID(bad); err == nil {
				t.Errorf("SetNodeID(%d) accepted", bad)
			}
		}
		if err := s.SetNodeID(77); err != nil {
			t.Fatal(err)
		}
		if s = open(); s.NodeID() != 77 {
			t.Fatalf("node id %d after SetNodeID(77) and reopen", s.NodeID())
		}
	})
}

func TestStoreWithoutNodeIDGetsOne(t *testing.T) {
	// A data dir written before node ids existed.
	dir := t.TempDir()
	b, err := Open(dir, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if err := b.db.Update(func(txn *badger.Txn) error { return txn.Delete(keyNode) }); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if b, err = Open(dir, DefaultOptions()); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if CheckNodeID(b.NodeID()) != nil {
		t.Fatalf("node id %d", b.NodeID())
	}
}

func TestIDMarksArePerNodeAndDurable(t *testing.T) {
	stores(t, func(t *testing.T, open func() Store) {
		s := open()
		if m, err := s.IDMark(3); err != nil || m != 0 {
			t.Fatalf("mark of a new store = %d, %v", m, err)
		}
		if err := s.SetIDMark(3, 1<<40); err != nil {
			t.Fatal(err)
		}
		if err := s.SetIDMark(4, 5); err != nil {
			t.Fatal(err)
		}
		s = open()
		for node, want := range map[uint16]uint64{3: 1 << 40, 4: 5, 5: 0} {
			if m, err := s.IDMark(node); err != nil || m != want {
				t.Errorf("mark of node %d = %d, %v; want %d", node, m, err, want)
			}
		}
	})
}

func TestMaxMessageIDIsPerNode(t *testing.T) {
	stores(t, func(t *testing.T, open func() Store) {
		s := open()
		addSync(t, s, MessageID(1, 10), "a", "q")
		addSync(t, s, MessageID(1, 11), "b", "q")
		addSync(t, s, MessageID(2, 3), "c", "q")
		addSync(t, s, MessageID(MaxNodeID, MaxCounter), "d", "q")
		s = open()
		for node, want := range map[uint16]uint64{
			0: 0, 1: MessageID(1, 11), 2: MessageID(2, 3), 3: 0, MaxNodeID: MaxID,
		} {
			if id, err := s.MaxMessageID(node); err != nil || id != want {
				t.Errorf("MaxMessageID(%d) = %#x, %v; want %#x", node, id, err, want)
			}
		}
	})
}
