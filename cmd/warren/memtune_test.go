package main

import (
	"runtime"
	"testing"
)

func TestGCTunerLimitIsFloorOrLiveHeapPlusHeadroom(t *testing.T) {
	runtime.GC() // the live-heap metric is as of the last collection
	keep := make([]byte, 64<<20)
	runtime.GC()
	high := newGCTuner(1<<40, 0.25).limit()
	if high != 1<<40 {
		t.Fatalf("limit with a 1 TiB floor = %d", high)
	}
	low := newGCTuner(1, 0.25).limit()
	if low < 80<<20 { // 1.25 x at least the 64 MiB kept alive
		t.Fatalf("limit above a tiny floor = %d bytes, want at least 1.25 x the live heap", low)
	}
	runtime.KeepAlive(keep)
}
