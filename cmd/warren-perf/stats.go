package main

import (
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// counters are the run's totals, updated with atomics on the hot path.
type counters struct {
	published atomic.Uint64
	confirmed atomic.Uint64
	consumed  atomic.Uint64

	// When draining a prefilled queue: the deliveries that empty it, the
	// channel closed by the one that does, and the times of the first
	// and the last delivery (Unix nanoseconds).
	target  uint64
	drained chan struct{}
	first   atomic.Int64
	last    atomic.Int64
}

// consume counts one delivery.
func (c *counters) consume() {
	n := c.consumed.Add(1)
	if c.target == 0 {
		return
	}
	now := time.Now().UnixNano()
	if n == 1 {
		c.first.Store(now)
	}
	if n == c.target {
		c.last.Store(now)
		close(c.drained)
	}
}

// drainRate is the deliveries per second between the first and the last
// delivery of a drain, or 0 when the queue was not drained.
func (c *counters) drainRate() float64 {
	first, last := c.first.Load(), c.last.Load()
	if last <= first || c.target < 2 {
		return 0
	}
	return float64(c.target-1) / time.Duration(last-first).Seconds()
}

// reservoir keeps a bounded uniform sample of latencies for one interval.
type reservoir struct {
	mu      sync.Mutex
	samples []time.Duration
	seen    int
	rng     *rand.Rand
}

// reservoirSize bounds the latency samples kept per interval.
const reservoirSize = 4096

func newReservoir() *reservoir {
	return &reservoir{samples: make([]time.Duration, 0, reservoirSize), rng: rand.New(rand.NewPCG(1, 2))}
}

// add records one latency (Algorithm R).
func (r *reservoir) add(d time.Duration) {
	r.mu.Lock()
	r.seen++
	if len(r.samples) < reservoirSize {
		r.samples = append(r.samples, d)
	} else if i := r.rng.IntN(r.seen); i < reservoirSize {
		r.samples[i] = d
	}
	r.mu.Unlock()
}

// take returns the interval's samples, sorted, and starts a new interval.
func (r *reservoir) take() []time.Duration {
	r.mu.Lock()
	out := slices.Clone(r.samples)
	r.samples = r.samples[:0]
	r.seen = 0
	r.mu.Unlock()
	slices.Sort(out)
	return out
}

// percentile returns the p-th percentile (0..100) of sorted samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}

// rate is events per second between two counts.
func rate(before, after uint64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(after-before) / d.Seconds()
}

func sortDurations(d []time.Duration) { slices.Sort(d) }
