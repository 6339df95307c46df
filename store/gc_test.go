package store

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// vlogBytes is the disk space the value-log files in dir take.
func vlogBytes(t *testing.T, dir string) int64 {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.vlog"))
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, f := range files {
		info, err := os.Stat(f)
		if err != nil {
			continue // removed by GC meanwhile
		}
		total += info.Sys().(*syscall.Stat_t).Blocks * 512
	}
	return total
}

// TestValueLogGCReclaimsDrainedBodies fills more than one value-log file
// with bodies, removes them all as a drained queue does, and checks that
// RunGC gives the space back: at once for the files the store no longer
// writes to, and after a reopen (which starts a new file) for the rest.
func TestValueLogGCReclaimsDrainedBodies(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: writes 150 MiB")
	}
	dir := t.TempDir()
	opts := DefaultOptions()
	opts.ValueLogGCInterval = 0 // RunGC is called by the test
	b, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { b.Close() }()
	const n, size = 150_000, 1024 // more than one 128 MiB value-log file
	body := make([]byte, size)
	queues := []string{"q"}
	for id := uint64(1); id <= n; id++ {
		b.AddMessage(id, body, size, queues, nil)
	}
	syncStore(t, b)
	full := vlogBytes(t, dir)
	if full < n*size {
		t.Fatalf("value log holds %d bytes after writing %d bodies of %d B", full, n, size)
	}
	for id := uint64(1); id <= n; id++ {
		b.RemoveMessage("q", id)
	}
	syncStore(t, b)

	b.RunGC()
	afterGC := vlogBytes(t, dir)
	t.Logf("value log: %d MiB written, %d MiB after the drain and RunGC", full>>20, afterGC>>20)
	if limit := full - 100<<20; afterGC > limit {
		t.Errorf("RunGC left %d MiB of value log after every body was removed (%d MiB written); want at most %d MiB: only the file being written may stay",
			afterGC>>20, full>>20, limit>>20)
	}

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if b, err = Open(dir, opts); err != nil {
		t.Fatal(err)
	}
	b.RunGC()
	reopened := vlogBytes(t, dir)
	t.Logf("value log after a reopen and RunGC: %d KiB", reopened>>10)
	if reopened > 1<<20 {
		t.Errorf("after a reopen and RunGC %d KiB of value log are left; want under 1 MiB", reopened>>10)
	}
	if got := countQueue(t, b, "q"); got != 0 {
		t.Errorf("queue has %d messages after GC, want 0", got)
	}
}

// countQueue counts the stored messages of queue.
func countQueue(t *testing.T, b *Badger, queue string) int {
	t.Helper()
	n := 0
	if err := b.ScanQueueIndex(queue, func(uint64, int, bool) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}
