package broker

import (
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Memory pressure. Memory is sampled every memWatchInterval (runtime
// metrics, which stop nothing), so that pressure (past the paging ratio
// of the watermark) and the memory alarm are noticed within milliseconds
// of a burst, not up to an alarm interval late: from then on publishes
// page out at each queue's bound as they arrive. And what is already in
// memory goes too: while there is pressure a background pager asks every
// queue to page out its ready messages past pressureKeep (unacked
// deliveries counting against it, requeued messages included,
// queue.PageOutExcess), then hands the freed memory back to the OS, so a
// broker with publishers blocked by the memory alarm and no consumer gets
// below the watermark and unblocks them, as RabbitMQ does by paging its
// queues to disk.

const (
	// memWatchInterval is how often memory is sampled.
	memWatchInterval = 10 * time.Millisecond
	// pageOutEvery is the shortest time between two background passes.
	pageOutEvery = 100 * time.Millisecond
	// pressureKeep is how many ready messages (less unacked deliveries)
	// a queue keeps in memory under pressure.
	pressureKeep = 512
	// releaseEvery is the shortest time between two hand-backs of freed
	// memory to the OS.
	releaseEvery = time.Second
)

// memorySamples are the runtime metrics memoryInUse reads.
var memorySamples = []string{"/memory/classes/total:bytes", "/memory/classes/heap/released:bytes"}

// memoryInUse returns the memory the Go runtime holds from the OS (what it
// mapped less what it released).
func memoryInUse() uint64 {
	s := []metrics.Sample{{Name: memorySamples[0]}, {Name: memorySamples[1]}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 || s[1].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64() - s[1].Value.Uint64()
}

// checkMemory samples memory, sets the pressure flag and raises or clears
// the memory alarm; it reports whether there is pressure.
func (s *Server) checkMemory() bool {
	limit := s.alarms.memoryLimit.Load()
	var used uint64
	if limit > 0 {
		used = memoryInUse()
	}
	s.setMemoryPressure(used, limit)
	if limit > 0 {
		if s.alarms.set("memory", used > limit) {
			s.log.Warn("memory alarm", "set", used > limit, "used", used, "limit", limit)
		}
	} else if s.alarms.set("memory", false) {
		s.log.Warn("memory alarm", "set", false)
	}
	// The background pager runs past the paging ratio of the watermark
	// (half of it with a ratio of 0, which pages at the queues' bounds
	// whatever the memory).
	ratio := s.cfg.PagingRatio
	if ratio <= 0 {
		ratio = 0.5
	}
	pressure := limit > 0 && float64(used) > ratio*float64(limit)
	if pressure {
		select {
		case s.pageKick <- struct{}{}:
		default:
		}
	}
	return pressure
}

// watchMemory samples memory every memWatchInterval until stop closes.
func (s *Server) watchMemory(stop <-chan struct{}) {
	t := time.NewTicker(memWatchInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			s.checkMemory()
		}
	}
}

// pageUnderPressure runs the background pager until stop closes: a pass
// when kicked (there is pressure), at most every pageOutEvery.
func (s *Server) pageUnderPressure(stop <-chan struct{}) {
	var lastRelease time.Time
	for {
		select {
		case <-stop:
			return
		case <-s.pageKick:
		}
		start := time.Now()
		n := s.pageOutPass()
		if n > 0 {
			s.pagedUnderPressure.Add(uint64(n))
			// The copies written for transient messages are garbage once
			// the store has them.
			if err := s.syncStore(); err != nil {
				s.log.Warn("paging out under memory pressure: store sync", "err", err)
			}
			s.log.Debug("paged out under memory pressure", "messages", n, "took", time.Since(start))
		}
		// Give the memory back, or the garbage may wait for a collection
		// that nothing triggers while publishers are blocked.
		if time.Since(lastRelease) >= releaseEvery {
			debug.FreeOSMemory()
			lastRelease = time.Now()
			s.checkMemory()
		}
		select {
		case <-stop:
			return
		case <-time.After(pageOutEvery - time.Since(start)):
		}
	}
}

// pageOutPass asks every queue of this node to page out what it holds in
// memory past pressureKeep and returns how many messages went.
func (s *Server) pageOutPass() int {
	n := 0
	for _, v := range s.Vhosts() {
		for _, q := range v.localQueues() {
			n += q.queue.PageOutExcess(pressureKeep)
		}
	}
	return n
}

// PagedUnderPressure is how many messages the background pager moved out
// of memory since the server started.
func (s *Server) PagedUnderPressure() uint64 { return s.pagedUnderPressure.Load() }
