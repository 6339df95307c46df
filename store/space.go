package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Disk space. Badger writes its value log, memtable logs and tables
// through memory mappings of files it creates at their full size without
// allocating them (sparse): the value log at twice ValueLogFileSize, each
// memtable log at twice MemTableSize, each table at its size. On a full
// file system a write into such a mapping cannot fail with an error; the
// process dies of SIGBUS. So the store never lets its file system get
// that full:
//
//   - Effective free space is the file system's free space less the
//     unallocated parts (holes) of the store's files, which Badger will
//     fill without asking (spaceGuard.measure).
//   - The floor is what Badger may need beyond that without warning: a
//     new value-log file and two memtable logs (rotation), a table flushed
//     from a memtable, and room to compact the tables it has, plus slack.
//   - The committer measures every CheckBytes written (and at least every
//     CheckInterval), not on a timer alone: at tens of MB/s a file system
//     of tens of MB fills between two samples a second apart. Below the
//     floor, it refuses new messages (AddMessage and PageOut fail with
//     ErrNoSpace) and still writes removals, delivered marks and metadata,
//     so consumers can drain. The broker raises its disk alarm from the
//     same figures (Space, Options.OnSpace), earlier, so publishers are
//     blocked before refusals start.
//   - A ballast file (warren-reserve, allocated for real) keeps room for
//     an emergency: when the file system is full anyway (another process
//     filled it, or a crash left it so), the store deletes the ballast
//     before Badger opens, which lets Badger start and consumers drain;
//     it is written again once space is back.
//   - While space is low and messages are being removed, value-log GC
//     runs every few seconds instead of every minute, so that a drain
//     frees its space promptly.

// ErrNoSpace refuses a new message when the store's file system is below
// the floor it needs to keep running.
var ErrNoSpace = errors.New("the store's disk is full: new messages are refused until space is freed")

// ballastName is the ballast file in the data dir.
const ballastName = "warren-reserve"

// floorSlack is added to the floor for Badger's small files and rounding.
const floorSlack = 2 << 20

// Space is the store's view of its disk.
type Space struct {
	// Free is the file system's free space less the unallocated parts of
	// the store's files: what is left once Badger has filled them.
	Free int64
	// Floor is the free space the store keeps for itself; below it new
	// messages are refused.
	Floor int64
	// Refusing reports whether new messages are refused now.
	Refusing bool
}

// spaceGuard measures the store's disk and decides whether new messages
// may be written. The committer calls due and check; any goroutine may
// read the last figures.
type spaceGuard struct {
	dir          string
	vlogSize     int64
	memSize      int64
	checkBytes   int64
	interval     time.Duration
	ballastBytes int64
	onSpace      func(Space)
	log          interface{ Warn(string, ...any) }

	written   int64     // bytes submitted to Badger since the last measure (committer only)
	lastCheck time.Time // committer only

	free, floor atomic.Int64
	refusing    atomic.Bool
	measuredAt  atomic.Int64 // unix nanoseconds of the last measure
	measuring   atomic.Bool  // a caller of Badger.Space is measuring
	mu          sync.Mutex   // serialises measures and ballast changes
}

// newSpaceGuard returns a guard for dir with Badger's file sizes.
func newSpaceGuard(dir string, vlogSize, memSize int64, opts Options, log interface{ Warn(string, ...any) }) *spaceGuard {
	g := &spaceGuard{dir: dir, vlogSize: vlogSize, memSize: memSize, onSpace: opts.OnSpace, log: log,
		checkBytes: opts.SpaceCheckBytes, interval: opts.SpaceCheckInterval}
	if g.checkBytes <= 0 {
		g.checkBytes = max(vlogSize/4, 256<<10)
	}
	if g.interval <= 0 {
		g.interval = 100 * time.Millisecond
	}
	g.ballastBytes = 3*memSize + (1 << 20)
	return g
}

// staticFloor is the floor without the tables' share.
func (g *spaceGuard) staticFloor() int64 { return 2*g.vlogSize + 3*g.memSize + floorSlack }

// measure reads the file system's free space and the store's files and
// updates the figures.
func (g *spaceGuard) measure() (Space, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var st syscall.Statfs_t
	if err := syscall.Statfs(g.dir, &st); err != nil {
		return Space{}, fmt.Errorf("statfs %s: %w", g.dir, err)
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	ents, err := os.ReadDir(g.dir)
	if err != nil {
		return Space{}, fmt.Errorf("read data dir %s: %w", g.dir, err)
	}
	var holes, tables int64
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		if sys, ok := info.Sys().(*syscall.Stat_t); ok {
			if alloc := sys.Blocks * 512; info.Size() > alloc {
				holes += info.Size() - alloc
			}
		}
		if strings.HasSuffix(e.Name(), ".sst") {
			tables += info.Size()
		}
	}
	s := Space{Free: free - holes, Floor: g.staticFloor() + tables}
	s.Refusing = s.Free < s.Floor
	g.free.Store(s.Free)
	g.floor.Store(s.Floor)
	g.refusing.Store(s.Refusing)
	g.measuredAt.Store(time.Now().UnixNano())
	return s, nil
}

// space returns the last figures.
func (g *spaceGuard) space() Space {
	return Space{Free: g.free.Load(), Floor: g.floor.Load(), Refusing: g.refusing.Load()}
}

// admit is called by the committer before it writes a batch of bytes:
// it measures when enough was written or enough time passed, and
// reports whether new messages may be written. A batch is refused when
// it could take the store below its floor.
func (g *spaceGuard) admit(bytes int64) bool {
	g.written += bytes
	if g.written >= g.checkBytes || time.Since(g.lastCheck) >= g.interval {
		g.written = bytes
		g.lastCheck = time.Now()
		s, err := g.measure()
		g.mu.Lock()
		onSpace := g.onSpace
		g.mu.Unlock()
		if err != nil {
			g.log.Warn("measuring the store's disk failed", "err", err)
		} else if onSpace != nil {
			onSpace(s)
		}
	}
	return g.free.Load()-g.written >= g.floor.Load()
}

// ballastPath is the ballast file's path.
func (g *spaceGuard) ballastPath() string { return filepath.Join(g.dir, ballastName) }

// releaseBallast deletes the ballast file; it reports whether there was one.
func (g *spaceGuard) releaseBallast() (bool, error) {
	err := os.Remove(g.ballastPath())
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("delete the disk ballast: %w", err)
	}
	return true, nil
}

// keepBallast writes the ballast file when it is missing and there is
// room for it well above the floor, and deletes it when the free space is
// nearly gone (below the ballast's size, far under the floor where new
// messages stop: something else filled the disk): that room lets Badger
// go on so consumers can drain.
func (g *spaceGuard) keepBallast(s Space) error {
	_, err := os.Stat(g.ballastPath())
	present := err == nil
	switch {
	case present && s.Free < g.ballastBytes:
		if _, err := g.releaseBallast(); err != nil {
			return err
		}
		g.log.Warn("the store's disk is below its floor: released the disk ballast", "free", s.Free, "floor", s.Floor, "released", g.ballastBytes)
	case !present && s.Free >= s.Floor+3*g.ballastBytes:
		return allocateFile(g.ballastPath(), g.ballastBytes)
	}
	return nil
}

// refusingStale is how old the figures may be while new messages are
// refused before Space measures again.
const refusingStale = 5 * time.Millisecond

// Space returns the store's disk figures: as last measured by the
// committer, or measured now when that is older than the check interval
// (the store is idle, and other processes or GC may have changed them),
// or than refusingStale while new messages are refused.
func (b *Badger) Space() Space {
	g := b.space
	stale := g.interval
	if g.refusing.Load() {
		stale = refusingStale // notice freed space at once
	}
	if time.Since(time.Unix(0, g.measuredAt.Load())) > stale && g.measuring.CompareAndSwap(false, true) {
		// One caller measures; the others use the figures they have.
		_, err := g.measure()
		g.measuring.Store(false)
		if err != nil {
			b.log.Warn("measuring the store's disk failed", "err", err)
		}
	}
	return g.space()
}

// SetOnSpace sets the function told the store's disk figures each time
// the committer measures them (it replaces Options.OnSpace); it runs on
// the committer and must not block.
func (b *Badger) SetOnSpace(fn func(Space)) {
	b.space.mu.Lock()
	b.space.onSpace = fn
	b.space.mu.Unlock()
}
