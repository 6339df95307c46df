package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// stores runs a test against a Badger store and an in-memory one.
func stores(t *testing.T, fn func(t *testing.T, open func() Store)) {
	t.Run("badger", func(t *testing.T) {
		dir := t.TempDir()
		var cur *Badger
		open := func() Store {
			if cur != nil {
				cur.Close()
			}
			b, err := Open(dir, DefaultOptions())
			if err != nil {
				t.Fatal(err)
			}
			cur = b
			return b
		}
		t.Cleanup(func() {
			if cur != nil {
				cur.Close()
			}
		})
		fn(t, open)
	})
	t.Run("memory", func(t *testing.T) {
		m := NewMemory()
		t.Cleanup(func() { m.Close() })
		fn(t, func() Store { return m }) // "reopening" keeps the same memory
	})
}

// addSync adds a message and waits for its commit.
func addSync(t *testing.T, s Store, id uint64, data string, queues ...string) {
	t.Helper()
	done := make(chan error, 1)
	s.AddMessage(id, []byte(data), len(data), queues, func(err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatalf("add %d: %v", id, err)
	}
}

func syncStore(t *testing.T, s Store) {
	t.Helper()
	done := make(chan error, 1)
	s.Sync(func(err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

type rec struct {
	id        uint64
	data      string
	delivered bool
}

func scan(t *testing.T, s Store, queue string, from uint64) []rec {
	t.Helper()
	var out []rec
	err := s.ScanQueue(queue, from, func(id uint64, data []byte, delivered bool) (bool, error) {
		out = append(out, rec{id, string(data), delivered})
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestMetadataSurvivesReopen(t *testing.T) {
	stores(t, func(t *testing.T, open func() Store) {
		s := open()
		for _, k := range []string{"b", "a", "c"} {
			if err := s.PutMeta("queue", k, []byte("v-"+k)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.PutMeta("exchange", "a", []byte("other kind")); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteMeta("queue", "c"); err != nil {
			t.Fatal(err)
		}
		s = open()
		var got []string
		err := s.ListMeta("queue", func(k string, v []byte) error {
			got = append(got, k+"="+string(v))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(got, ",") != "a=v-a,b=v-b" {
			t.Fatalf("queue records: %v", got)
		}
	})
}

func TestMessagesScanRemoveAndDelivered(t *testing.T) {
	stores(t, func(t *testing.T, open func() Store) {
		s := open()
		for i := uint64(1); i <= 5; i++ {
			addSync(t, s, i, fmt.Sprint("m", i), "q1")
		}
		addSync(t, s, 6, "shared", "q1", "q2")
		s.RemoveMessage("q1", 2)
		s.MarkDelivered("q1", 3, 0)
		syncStore(t, s)
		s = open()
		got := scan(t, s, "q1", 0)
		if len(got) != 5 || got[0].id != 1 || got[1].id != 3 || !got[1].delivered || got[0].delivered || got[4].data != "shared" {
			t.Fatalf("q1 after reopen: %+v", got)
		}
		if from := scan(t, s, "q1", 4); len(from) != 3 || from[0].id != 4 {
			t.Fatalf("scan from 4: %+v", from)
		}
		if id, err := s.MaxMessageID(0); err != nil || id != 6 {
			t.Fatalf("max id %d, %v", id, err)
		}
		// The shared body stays until both queues let go of it.
		s.RemoveMessage("q1", 6)
		syncStore(t, s)
		if got := scan(t, s, "q2", 0); len(got) != 1 || got[0].data != "shared" {
			t.Fatalf("q2 lost the shared message: %+v", got)
		}
		s.RemoveMessage("q2", 6)
		syncStore(t, s)
		if got := scan(t, s, "q2", 0); len(got) != 0 {
			t.Fatalf("q2 still has %+v", got)
		}
		qs, err := s.Queues()
		if err != nil {
			t.Fatal(err)
		}
		if qs["q1"].Messages != 4 || qs["q2"].Messages != 0 {
			t.Fatalf("counts %+v", qs)
		}
		if err := s.DeleteQueue("q1"); err != nil {
			t.Fatal(err)
		}
		if got := scan(t, s, "q1", 0); len(got) != 0 {
			t.Fatalf("deleted queue still has %+v", got)
		}
	})
}

func TestConcurrentAddsAreGroupCommitted(t *testing.T) {
	b, err := Open(t.TempDir(), DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var wg sync.WaitGroup
	const writers, each = 8, 500
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			done := make(chan error, each)
			for i := 0; i < each; i++ {
				b.AddMessage(uint64(w*each+i+1), []byte("body"), 4, []string{"q"}, func(err error) { done <- err })
			}
			for i := 0; i < each; i++ {
				if err := <-done; err != nil {
					t.Error(err)
				}
			}
		}(w)
	}
	wg.Wait()
	st := b.Stats()
	if st.Batches >= st.Ops {
		t.Fatalf("%d batches for %d operations: nothing was grouped", st.Batches, st.Ops)
	}
	if got := len(scan(t, b, "q", 0)); got != writers*each {
		t.Fatalf("%d messages stored, want %d", got, writers*each)
	}
	t.Logf("%d operations in %d group commits", st.Ops, st.Batches)
}

func TestSecondOpenFailsClearly(t *testing.T) {
	dir := t.TempDir()
	b, err := Open(dir, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, err = Open(dir, DefaultOptions())
	if err == nil || !strings.Contains(err.Error(), "in use by another Warren") {
		t.Fatalf("second open: %v", err)
	}
}

func TestForeignDirectoryIsRefused(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a store"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir, DefaultOptions())
	if err == nil || !strings.Contains(err.Error(), "no Warren store") {
		t.Fatalf("open of a foreign dir: %v", err)
	}
}

func TestClosedStoreFailsSubmissions(t *testing.T) {
	b, err := Open(t.TempDir(), DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	done := make(chan error, 1)
	b.AddMessage(1, []byte("x"), 1, []string{"q"}, func(err error) { done <- err })
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("add after close: %v", err)
	}
}

// TestMarkDeliveredRightAfterAdd: a delivered mark that comes while the
// message's own write still waits for the committer is set in that write
// (MarkDelivered reports nothing to sync); one that comes later is
// written again. Either way the flag is on disk after a sync, for the
// queue it was given and not for the message's other queue.
func TestMarkDeliveredRightAfterAdd(t *testing.T) {
	stores(t, func(t *testing.T, open func() Store) {
		s := open()
		const n = 2000
		inPlace := 0
		for i := uint64(1); i <= n; i++ {
			s.AddMessage(i, []byte("m"), 1, []string{"a", "b"}, nil)
			if !s.MarkDelivered("a", i, 1) {
				inPlace++
			}
		}
		syncStore(t, s)
		t.Logf("%d of %d marks set in the pending write", inPlace, n)
		s = open()
		for q, want := range map[string]bool{"a": true, "b": false} {
			got := scan(t, s, q, 0)
			if len(got) != n {
				t.Fatalf("%s holds %d messages, want %d", q, len(got), n)
			}
			for _, r := range got {
				if r.delivered != want {
					t.Fatalf("%s: message %d delivered=%v, want %v", q, r.id, r.delivered, want)
				}
			}
		}
	})
}
