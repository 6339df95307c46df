//go:build linux

package store

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// madvPageout is Linux's MADV_PAGEOUT (5.4+): reclaim the pages of a range
// (writing dirty file pages back first). Unlike MADV_DONTNEED it never
// discards data, so advising a range that was unmapped and reused in the
// meantime is harmless.
const madvPageout = 21

// mappedTrimmer keeps the resident pages of the store's memory-mapped files
// (Badger maps its value log, tables and memtable logs) within a budget:
// the kernel would otherwise keep every page written or read resident and
// count it in the broker's RSS, so that a backlog of gigabytes on disk
// looked like gigabytes of memory.
type mappedTrimmer struct {
	dir    string // absolute, with a trailing separator
	budget int64  // bytes of RssFile tolerated before trimming
}

func newMappedTrimmer(dir string, budget int64) (*mappedTrimmer, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("resolve data dir %s: %w", dir, err)
	}
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		return nil, fmt.Errorf("resolve data dir %s: %w", dir, err)
	}
	return &mappedTrimmer{dir: abs + string(filepath.Separator), budget: budget}, nil
}

// trim pages out the store's mappings when the process's file-backed RSS
// is over budget. It returns how many bytes of mappings it advised.
func (t *mappedTrimmer) trim() (int64, error) {
	rss, err := rssFile()
	if err != nil || rss <= t.budget {
		return 0, err
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0, fmt.Errorf("read /proc/self/maps: %w", err)
	}
	var advised int64
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		start, end, path, ok := parseMapsLine(sc.Bytes())
		if !ok || !bytes.HasPrefix(path, []byte(t.dir)) {
			continue
		}
		if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, start, end-start, madvPageout); errno != 0 {
			if errno == syscall.EINVAL {
				return advised, fmt.Errorf("madvise(MADV_PAGEOUT) is not supported by this kernel: %w", errno)
			}
			continue // unmapped meanwhile (ENOMEM): nothing to trim
		}
		advised += int64(end - start)
	}
	return advised, nil
}

// parseMapsLine reads "start-end perms offset dev inode path" from a line
// of /proc/self/maps.
func parseMapsLine(line []byte) (start, end uintptr, path []byte, ok bool) {
	fields := bytes.Fields(line)
	if len(fields) < 6 {
		return 0, 0, nil, false
	}
	lo, hi, found := bytes.Cut(fields[0], []byte("-"))
	if !found {
		return 0, 0, nil, false
	}
	s, err1 := strconv.ParseUint(string(lo), 16, 64)
	e, err2 := strconv.ParseUint(string(hi), 16, 64)
	if err1 != nil || err2 != nil || e <= s {
		return 0, 0, nil, false
	}
	return uintptr(s), uintptr(e), fields[5], true
}

// rssFile returns the process's file-backed resident memory (RssFile of
// /proc/self/status) in bytes.
func rssFile() (int64, error) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("read /proc/self/status: %w", err)
	}
	for _, line := range bytes.Split(status, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("RssFile:")); ok {
			f := bytes.Fields(v)
			if len(f) == 0 {
				break
			}
			kb, err := strconv.ParseInt(string(f[0]), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse RssFile %q: %w", v, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no RssFile in /proc/self/status")
}
