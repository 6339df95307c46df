package main

import (
	"context"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// gcTuner keeps the Go runtime's soft memory limit at the larger of a
// floor and the live heap plus a headroom. Below the floor the collector
// runs as with GOGC=100 (a small broker pays nothing); above it, garbage
// may grow by the headroom fraction of the live heap only, so a broker
// holding a large backlog does not carry as much garbage as live data.
// The limit follows the live heap up, so a large working set never makes
// the collector run back to back.
type gcTuner struct {
	floor    int64   // bytes
	headroom float64 // fraction of the live heap
	sample   []metrics.Sample
}

func newGCTuner(floor int64, headroom float64) *gcTuner {
	return &gcTuner{floor: floor, headroom: headroom,
		sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
}

// limit returns the memory limit for the current live heap.
func (t *gcTuner) limit() int64 {
	metrics.Read(t.sample)
	live := int64(0)
	if t.sample[0].Value.Kind() == metrics.KindUint64 {
		live = int64(min(t.sample[0].Value.Uint64(), math.MaxInt64/2))
	}
	return max(t.floor, live+int64(float64(live)*t.headroom))
}

// run adjusts the limit every interval until ctx ends. It does nothing
// when GOMEMLIMIT is set: the operator's limit wins.
func (t *gcTuner) run(ctx context.Context, interval time.Duration, log *slog.Logger) {
	if _, set := os.LookupEnv("GOMEMLIMIT"); set || t.floor <= 0 {
		return
	}
	debug.SetMemoryLimit(t.limit())
	log.Debug("gc memory limit tuning", "floor", t.floor, "headroom", t.headroom)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			debug.SetMemoryLimit(t.limit())
		}
	}
}
