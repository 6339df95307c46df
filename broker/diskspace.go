package broker

import (
	"sync/atomic"
	"time"

	"github.com/warrenmq/warren/store"
)

// The disk alarm. With a store that measures its own disk (store.Badger:
// free space less what its preallocated files will take, and a floor it
// keeps for itself, store/space.go), the alarm is raised when the free
// space falls below DiskFreeLimit above that floor, and it is evaluated
// each time the store measures (every few MB written), not only on the
// alarm timer: publishers are blocked well before the store starts to
// refuse messages at its floor. While it refuses, a persistent message
// for a durable queue is refused at once, before any queue takes it: a
// publisher in confirm mode gets basic.nack; the refusals are logged once
// per burst. Removals, acks and delivered marks go on, so consumers drain.

// spaceReporter is a store that measures its disk.
type spaceReporter interface {
	Space() store.Space
}

// spaceNotifier is a store that reports each measure of its disk.
type spaceNotifier interface {
	SetOnSpace(func(store.Space))
}

// diskState is the broker's side of the store's disk figures.
type diskState struct {
	refusedSince atomic.Uint64 // persistent messages refused in the current burst
	refusedTotal atomic.Uint64
	lastRefusal  atomic.Int64 // unix nanoseconds of the last refusal
}

// watchStoreSpace asks the store, if it can, to report its disk figures
// to the alarm as it measures them.
func (s *Server) watchStoreSpace() {
	if n, ok := s.store.(spaceNotifier); ok {
		n.SetOnSpace(s.onStoreSpace)
	}
}

// onStoreSpace raises or clears the disk alarm from the store's figures.
// It runs on the store's committer: it only sets the alarm and logs.
func (s *Server) onStoreSpace(sp store.Space) {
	limit := int64(s.alarms.diskLimit.Load())
	low := sp.Free < limit+sp.Floor
	if s.alarms.set("disk", low) {
		s.log.Warn("disk alarm", "set", low, "free", sp.Free, "floor", sp.Floor, "limit", limit)
	}
	if !sp.Refusing {
		if n := s.disk.refusedSince.Swap(0); n > 0 {
			s.log.Info("persistent messages are accepted again", "refused", n)
		}
	}
}

// storeSpace returns the store's disk figures, if it measures them.
func (s *Server) storeSpace() (store.Space, bool) {
	if r, ok := s.store.(spaceReporter); ok {
		if sp := r.Space(); sp.Floor > 0 {
			return sp, true
		}
	}
	return store.Space{}, false
}

// refusesPersistent reports whether a persistent message for queues must
// be refused because the store's disk is below its floor (a transient
// message, or one for no durable queue, never is). It logs the first
// refusal of a burst.
func (s *Server) refusesPersistent(msg interface{ Persistent() bool }, queues []QueueHandle) bool {
	if !msg.Persistent() {
		return false
	}
	sp, ok := s.storeSpace()
	if !ok || !sp.Refusing {
		return false
	}
	durable := false
	for _, h := range queues {
		if q, ok := h.(*localQueue); ok && q.isDurable() {
			durable = true
			break
		}
	}
	if !durable {
		return false
	}
	s.disk.refusedTotal.Add(1)
	s.disk.lastRefusal.Store(time.Now().UnixNano())
	if s.disk.refusedSince.Add(1) == 1 {
		s.log.Error("the store's disk is full: refusing persistent messages (publishers in confirm mode get basic.nack) until space is freed",
			"free", sp.Free, "floor", sp.Floor)
	}
	return true
}

// RefusedPersistent is how many persistent messages were refused for want
// of disk space since the server started.
func (s *Server) RefusedPersistent() uint64 { return s.disk.refusedTotal.Load() }
