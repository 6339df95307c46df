package store

import (
	"fmt"
	"testing"
)

func TestBulkRemovalKeepsSharedBodies(t *testing.T) {
	stores(t, func(t *testing.T, open func() Store) {
		s := open()
		for i := uint64(1); i <= 4; i++ {
			addSync(t, s, i, fmt.Sprint("m", i), "q1")
		}
		addSync(t, s, 5, "shared", "q1", "q2")
		s.RemoveMessages("q1", []uint64{1, 2, 5})
		syncStore(t, s)
		s = open()
		if got := scan(t, s, "q1", 0); len(got) != 2 || got[0].id != 3 || got[1].id != 4 {
			t.Fatalf("q1 after bulk removal: %+v", got)
		}
		if got := scan(t, s, "q2", 0); len(got) != 1 || got[0].data != "shared" {
			t.Fatalf("q2 lost the shared message: %+v", got)
		}
		s.RemoveMessages("q2", []uint64{5})
		syncStore(t, s)
		if got := scan(t, s, "q2", 0); len(got) != 0 {
			t.Fatalf("q2 still has %+v", got)
		}
	})
}

func TestPagedMessagesReadBackAndGoAtReopen(t *testing.T) {
	stores(t, func(t *testing.T, open func() Store) {
		s := open()
		s.PageOut("q", 7, []byte("seven"))
		s.PageOut("q", 8, []byte("eight"))
		s.PageOut("q", 9, []byte("nine"))
		addSync(t, s, 10, "stored", "q")
		var got []string
		keys := []MessageKey{{ID: 7, Paged: true}, {ID: 10}, {ID: 8, Paged: true}, {ID: 9, Paged: true}}
		read := func() {
			got = got[:0]
			if err := s.ReadMessages("q", keys, func(i int, data []byte, _ bool) {
				got = append(got, fmt.Sprint(i, ":", string(data)))
			}); err != nil {
				t.Fatal(err)
			}
		}
		read() // the paged writes may still be pending: ReadMessages waits for them
		if fmt.Sprint(got) != "[0:seven 1:stored 2:eight 3:nine]" {
			t.Fatalf("read back %v", got)
		}
		s.RemovePaged("q", []uint64{8})
		syncStore(t, s)
		read()
		if fmt.Sprint(got) != "[0:seven 1:stored 3:nine]" {
			t.Fatalf("after removing 8: %v", got)
		}
		if _, ok := s.(*Badger); !ok {
			return // the memory store has no restart
		}
		s = open()
		read()
		if fmt.Sprint(got) != "[1:stored]" {
			t.Fatalf("after reopen: %v (paged messages must not survive)", got)
		}
	})
}
