package broker

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/warrenmq/warren/store"
)

// newIDServer starts a server (no listener) on st with the given node id
// (0: the store's).
func newIDServer(t *testing.T, st Store, node uint16) *Server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.NodeID = node
	cfg.AlarmInterval = 0
	s, err := New(cfg, st)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	return s
}

func closeServer(t *testing.T, s *Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
}

// takeIDs calls next on n goroutines, each per times, and returns the ids.
func takeIDs(n, per int, next func() uint64) []uint64 {
	out := make([][]uint64, n)
	var wg sync.WaitGroup
	for g := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				out[g] = append(out[g], next())
			}
		}()
	}
	wg.Wait()
	var all []uint64
	for _, ids := range out {
		all = append(all, ids...)
	}
	return all
}

func TestMessageIDsOfTwoNodesNeverCollide(t *testing.T) {
	a := newIDServer(t, store.NewMemory(), 1)
	defer closeServer(t, a)
	b := newIDServer(t, store.NewMemory(), 2)
	defer closeServer(t, b)
	seen := map[uint64]uint16{}
	for _, s := range []*Server{a, b} {
		for _, id := range takeIDs(4, 5000, s.newMessageID) {
			if other, dup := seen[id]; dup {
				t.Fatalf("id %#x made by node %d and node %d", id, other, s.NodeID())
			}
			seen[id] = s.NodeID()
			if store.NodeOf(id) != s.NodeID() || id&pagedBit != 0 {
				t.Fatalf("node %d made id %#x", s.NodeID(), id)
			}
		}
	}
}

func TestRestartedServerContinuesAboveItsIDs(t *testing.T) {
	dir := t.TempDir()
	open := func() *store.Badger {
		st, err := store.Open(dir, store.DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		return st
	}

	s := newIDServer(t, open(), 0)
	node := s.NodeID()
	if store.CheckNodeID(node) != nil {
		t.Fatalf("node id %d", node)
	}
	var last uint64
	for i := 0; i < 100; i++ {
		last = s.newMessageID()
	}
	closeServer(t, s) // no message was stored: only the mark remembers the ids

	s = newIDServer(t, open(), 0)
	if s.NodeID() != node {
		t.Fatalf("node id %d after restart, was %d", s.NodeID(), node)
	}
	if id := s.newMessageID(); id <= last || store.NodeOf(id) != node {
		t.Fatalf("after restart id %#x, last before %#x", id, last)
	}
	closeServer(t, s)

	// An id of the node's in the store above its mark (the mark lost, say)
	// is not handed out again either.
	st := open()
	mark, err := st.IDMark(node)
	if err != nil {
		t.Fatal(err)
	}
	high := store.MessageID(node, mark+1000)
	done := make(chan error, 1)
	st.AddMessage(high, []byte("m"), 1, []string{"q"}, func(err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	s = newIDServer(t, st, 0)
	if id := s.newMessageID(); id <= high {
		t.Fatalf("id %#x at or below the stored %#x", id, high)
	}
	closeServer(t, s)

	// Config.NodeID replaces the node id, and the data dir keeps it.
	other := node%store.MaxNodeID + 1
	s = newIDServer(t, open(), other)
	if s.NodeID() != other || store.NodeOf(s.newMessageID()) != other {
		t.Fatalf("node id %d with Config.NodeID %d", s.NodeID(), other)
	}
	closeServer(t, s)
	s = newIDServer(t, open(), 0)
	if s.NodeID() != other {
		t.Fatalf("node id %d after restart, want %d kept", s.NodeID(), other)
	}
	closeServer(t, s)
}

func TestIDMarkStaysAheadOfEveryID(t *testing.T) {
	st := store.NewMemory()
	defer st.Close()
	var a msgIDs
	const lease = 16
	if err := a.init(st, 5, lease, nil); err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]bool{}
	var mu sync.Mutex
	takeIDs(8, 500, func() uint64 {
		id := a.next()
		mark, err := st.IDMark(5)
		if err != nil || store.CounterOf(id) > mark {
			t.Errorf("id %#x handed out with the mark at %d (%v)", id, mark, err)
		}
		mu.Lock()
		defer mu.Unlock()
		if seen[id] {
			t.Errorf("id %#x handed out twice", id)
		}
		seen[id] = true
		return id
	})
}

func TestIDsNeverReachThePagedBit(t *testing.T) {
	const lease = 4
	st := store.NewMemory()
	defer st.Close()
	node := uint16(store.MaxNodeID)
	if err := st.SetIDMark(node, store.MaxCounter-3); err != nil {
		t.Fatal(err)
	}
	var a msgIDs
	if err := a.init(st, node, lease, nil); err == nil {
		t.Fatal("init accepted a counter less than a lease from its end")
	}
	if err := st.SetIDMark(node, store.MaxCounter-10); err != nil {
		t.Fatal(err)
	}
	a = msgIDs{}
	if err := a.init(st, node, lease, nil); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		id := a.next()
		if id&pagedBit != 0 || store.NodeOf(id) != node {
			t.Fatalf("id %#x", id)
		}
		if tok := id | pagedBit; tok == id || tok&^pagedBit != id {
			t.Fatalf("paged token %#x of id %#x", tok, id)
		}
	}
	defer func() {
		if recover() == nil {
			t.Fatal("an id past the counter's end was handed out")
		}
	}()
	a.next()
}
