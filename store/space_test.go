package store

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/warrenmq/warren/internal/testfs"
)

// TestFullDiskRefusesMessagesInsteadOfDying fills a 48 MiB file system
// with 4 KiB messages: the store refuses them with ErrNoSpace at its
// floor (Badger died of SIGBUS before); removing them and collecting
// frees the space, and new messages are taken again. Then, with the disk
// filled by another file, the store opens (its ballast gives Badger
// room) and its messages can still be removed.
func TestFullDiskRefusesMessagesInsteadOfDying(t *testing.T) {
	fs := testfs.Small(t, 48<<20)
	dir := filepath.Join(fs, "data")
	b, err := Open(dir, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if b != nil {
			b.Close()
		}
	}()
	body := make([]byte, 4096)
	var stored []uint64
	refused := false
	for id := uint64(1); id <= 20000 && !refused; id++ { // 80 MB would not fit
		done := make(chan error, 1)
		b.AddMessage(id, body, len(body), []string{"q"}, func(err error) { done <- err })
		switch err := <-done; {
		case err == nil:
			stored = append(stored, id)
		case errors.Is(err, ErrNoSpace):
			refused = true
		default:
			t.Fatalf("add %d: %v", id, err)
		}
	}
	s := b.Space()
	t.Logf("stored %d messages of 4 KiB; then refused; free %d, floor %d", len(stored), s.Free, s.Floor)
	if !refused {
		t.Fatal("the store never refused a message")
	}
	if !s.Refusing || s.Free < 0 {
		t.Fatalf("space after the refusal: %+v", s)
	}

	// Restart on a disk that something else filled.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	filler := testfs.Fill(t, fs)
	reopened, err := Open(dir, DefaultOptions())
	if err != nil {
		b = nil
		t.Fatalf("open on a full disk: %v", err)
	}
	b = reopened
	b.RemoveMessages("q", append([]uint64(nil), stored...))
	syncStore(t, b)
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	// The drain's space comes back: GC runs while space is low.
	deadline := time.Now().Add(20 * time.Second)
	for b.Space().Refusing || b.Space().Free < 2*b.Space().Floor {
		if time.Now().After(deadline) {
			t.Fatalf("space did not come back after the drain: %+v", b.Space())
		}
		b.Sync(func(error) {})
		time.Sleep(50 * time.Millisecond)
	}
	addSync(t, b, 1<<20, "after the drain", "q")
	n := 0
	if err := b.ScanQueueIndex("q", func(uint64, int, bool) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("q holds %d messages after the drain and one add, want 1", n)
	}
}
