//go:build linux

package store

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"testing"
)

// residentIn sums the resident bytes of this process's mappings of files
// under t's directory, from /proc/self/smaps.
func residentIn(tb testing.TB, t *mappedTrimmer) int64 {
	tb.Helper()
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		tb.Fatal(err)
	}
	var total int64
	inDir := false
	sc := bufio.NewScanner(bytes.NewReader(smaps))
	for sc.Scan() {
		line := sc.Bytes()
		if _, _, path, ok := parseMapsLine(line); ok {
			inDir = bytes.HasPrefix(path, []byte(t.dir))
			continue
		}
		if v, ok := bytes.CutPrefix(line, []byte("Rss:")); ok && inDir {
			kb, err := strconv.ParseInt(string(bytes.Fields(v)[0]), 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			total += kb << 10
		}
	}
	return total
}

func TestTrimPagesOutTheStoresMappedFiles(t *testing.T) {
	dir := t.TempDir()
	opts := DefaultOptions()
	opts.MappedBudget = 0 // trimmed by hand below
	b, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	body := bytes.Repeat([]byte("x"), 1024)
	const n = 40000 // 40 MiB into the value log
	done := make(chan error, n)
	for i := 1; i <= n; i++ {
		b.AddMessage(uint64(i), body, len(body), []string{"q"}, func(err error) { done <- err })
	}
	for i := 0; i < n; i++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	tr, err := newMappedTrimmer(dir, 1)
	if err != nil {
		t.Fatal(err)
	}
	before := residentIn(t, tr)
	if before < 20<<20 {
		t.Fatalf("only %d bytes of the store's files resident after writing 40 MiB", before)
	}
	advised, err := tr.trim()
	if err != nil {
		t.Fatal(err)
	}
	after := residentIn(t, tr)
	t.Logf("resident %d KiB before, %d KiB after trimming (%d KiB advised)", before>>10, after>>10, advised>>10)
	// Pages written since the last writeback stay until the kernel has
	// flushed them (the next trims take them); under -race many do.
	if limit := before / 4; after > limit && !(raceDetector && after < before) {
		t.Fatalf("resident %d bytes after trimming, %d before", after, before)
	}
	// The data is intact: every message reads back.
	keys := []MessageKey{{ID: 1}, {ID: n / 2}, {ID: n}}
	found := 0
	if err := b.ReadMessages("q", keys, func(_ int, data []byte, _ bool) {
		if bytes.Equal(data, body) {
			found++
		}
	}); err != nil {
		t.Fatal(err)
	}
	if found != len(keys) {
		t.Fatalf("read back %d of %d messages after trimming", found, len(keys))
	}
}

func TestParseMapsLine(t *testing.T) {
	for _, tc := range []struct {
		line       string
		start, end uintptr
		path       string
		ok         bool
	}{
		{"7f00a000-7f00c000 rw-s 00000000 fe:00 123 /data/000001.vlog", 0x7f00a000, 0x7f00c000, "/data/000001.vlog", true},
		{"7f00a000-7f00c000 rw-p 00000000 00:00 0", 0, 0, "", false},
		{"garbage", 0, 0, "", false},
		{"zz-7f00c000 rw-s 00000000 fe:00 123 /x", 0, 0, "", false},
	} {
		s, e, p, ok := parseMapsLine([]byte(tc.line))
		if ok != tc.ok || s != tc.start || e != tc.end || string(p) != tc.path {
			t.Errorf("parseMapsLine(%q) = %x %x %q %v", tc.line, s, e, p, ok)
		}
	}
}
