package broker

import (
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Resource alarms: when the broker's memory passes the high watermark or
// the data directory's free disk falls below the limit, connections that
// publish are blocked (connection.blocked to clients that announced the
// capability) and their sockets are not read until the alarm clears.
// Consumers keep draining.

// alarms tracks the resource alarms.
type alarms struct {
	memoryLimit atomic.Uint64 // bytes; 0: no limit
	diskLimit   atomic.Uint64 // free bytes required; 0: no limit

	mu      sync.Mutex
	active  map[string]bool // "memory", "disk"
	cleared chan struct{}   // closed when no alarm is active
}

func (a *alarms) init(memoryLimit, diskLimit uint64) {
	a.memoryLimit.Store(memoryLimit)
	a.diskLimit.Store(diskLimit)
	a.active = map[string]bool{}
	a.cleared = make(chan struct{})
	close(a.cleared)
}

// set raises or clears one alarm; it reports whether the state changed.
func (a *alarms) set(name string, on bool) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.active[name] == on {
		return false
	}
	wasClear := len(a.active) == 0
	if on {
		a.active[name] = true
		if wasClear {
			a.cleared = make(chan struct{})
		}
	} else {
		delete(a.active, name)
		if len(a.active) == 0 {
			close(a.cleared)
		}
	}
	return true
}

// blocked returns the active alarms' reason and a channel closed when they
// clear; ok is false when no alarm is active.
func (a *alarms) blocked() (reason string, cleared <-chan struct{}, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.active) == 0 {
		return "", nil, false
	}
	reason = "low on memory"
	if a.active["disk"] {
		reason = "low on disk"
	}
	return reason, a.cleared, true
}

// Alarms returns the names of the active alarms ("memory", "disk").
func (s *Server) Alarms() []string {
	s.alarms.mu.Lock()
	defer s.alarms.mu.Unlock()
	var out []string
	for _, n := range []string{"memory", "disk"} {
		if s.alarms.active[n] {
			out = append(out, n)
		}
	}
	return out
}

// SetMemoryLimit changes the memory high watermark in bytes (0: none) and
// re-evaluates the alarm at once.
func (s *Server) SetMemoryLimit(bytes uint64) {
	s.alarms.memoryLimit.Store(bytes)
	s.checkAlarms()
}

// setMemoryPressure records whether used bytes are past the paging ratio
// of the memory limit (never without a limit; always with a ratio of 0).
func (s *Server) setMemoryPressure(used, limit uint64) {
	s.memoryPressure.Store(s.cfg.PagingRatio <= 0 || (limit > 0 && float64(used) > s.cfg.PagingRatio*float64(limit)))
}

// checkAlarms samples memory and disk and raises or clears the alarms.
func (s *Server) checkAlarms() {
	s.checkMemory()
	if sp, ok := s.storeSpace(); ok {
		s.onStoreSpace(sp)
	} else if limit := s.alarms.diskLimit.Load(); limit > 0 && s.cfg.DataDir != "" {
		var st syscall.Statfs_t
		if err := syscall.Statfs(s.cfg.DataDir, &st); err == nil {
			free := st.Bavail * uint64(st.Bsize)
			if s.alarms.set("disk", free < limit) {
				s.log.Warn("disk alarm", "set", free < limit, "free", free, "limit", limit)
			}
		}
	}
}

// monitorAlarms samples the resources every interval until the server closes.
func (s *Server) monitorAlarms(interval time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			s.checkAlarms()
		}
	}
}

// totalMemory returns the machine's RAM in bytes (0 if unknown).
func totalMemory() uint64 {
	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err != nil {
		return 0
	}
	return uint64(si.Totalram) * uint64(si.Unit)
}

// Resources are the figures the resource alarms watch.
type Resources struct {
	MemoryUsed, MemoryLimit uint64
	DiskFree, DiskFreeLimit uint64 // DiskFree is 0 when unknown
}

// Resources samples memory and disk now.
func (s *Server) Resources() Resources {
	r := Resources{MemoryUsed: memoryInUse(), MemoryLimit: s.alarms.memoryLimit.Load(), DiskFreeLimit: s.alarms.diskLimit.Load()}
	if s.cfg.DataDir != "" {
		var st syscall.Statfs_t
		if err := syscall.Statfs(s.cfg.DataDir, &st); err == nil {
			r.DiskFree = st.Bavail * uint64(st.Bsize)
		}
	}
	return r
}
