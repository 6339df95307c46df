package main

import (
	"testing"
	"time"
)

func TestDecileRatesDivideEachTenthByItsDuration(t *testing.T) {
	marks := make([]time.Duration, 10)
	for k := range marks {
		marks[k] = time.Duration(k+1) * time.Second // one second per tenth
	}
	marks[9] = 11 * time.Second // the last tenth took two
	got := decileRates(marks, 1000)
	for k := 0; k < 9; k++ {
		if got[k] != 100 {
			t.Errorf("tenth %d: %.1f msg/s, want 100", k+1, got[k])
		}
	}
	if got[9] != 50 {
		t.Errorf("last tenth: %.1f msg/s, want 50", got[9])
	}
	if r := decileRates(marks[:3], 1000); len(r) != 3 {
		t.Errorf("an unfinished phase gives %d rates for 3 marks", len(r))
	}
}

func TestTenthsCountEveryMessageOnce(t *testing.T) {
	for _, n := range []int{10, 15, 999, 2_000_000} {
		sum := 0
		for k := 0; k < 10; k++ {
			sum += tenthCount(n, k)
		}
		if sum != n {
			t.Errorf("tenths of %d add up to %d", n, sum)
		}
	}
	tt := &tenths{n: 15, start: time.Now()}
	for i := 1; i <= 15; i++ {
		tt.update(i)
	}
	if len(tt.marks) != 10 {
		t.Fatalf("%d marks after all 15 messages, want 10", len(tt.marks))
	}
	tt = &tenths{n: 100, start: time.Now()}
	tt.update(35) // a jump crosses three tenths at once
	if len(tt.marks) != 3 {
		t.Errorf("%d marks at 35 of 100, want 3", len(tt.marks))
	}
}

func TestDecilePeaksTakeTheLargestSampleOfEachTenth(t *testing.T) {
	marks := []time.Duration{2 * time.Second, 4 * time.Second}
	samples := []memSample{
		{vmRSS: 10, at: time.Second}, {vmRSS: 30, at: 2 * time.Second},
		{vmRSS: 20, at: 3 * time.Second}, {vmRSS: 99, at: 5 * time.Second},
	}
	got := decilePeaks(marks, samples)
	if got[0] != 30 || got[1] != 20 {
		t.Errorf("peaks %v, want [30 20]", got)
	}
}

func TestParseStatusMem(t *testing.T) {
	status := "Name:\twarren\nVmPeak:\t  999 kB\nVmRSS:\t  153600 kB\nRssAnon:\t  102400 kB\nRssFile:\t   51200 kB\nRssShmem:\t 0 kB\n"
	m, err := parseStatusMem(status)
	if err != nil {
		t.Fatal(err)
	}
	if m.vmRSS != 153600 || m.rssAnon != 102400 || m.rssFile != 51200 {
		t.Errorf("parsed %+v", m)
	}
	if _, err := parseStatusMem("Name:\twarren\n"); err == nil {
		t.Error("a status without VmRSS parsed")
	}
}

func TestBacklogFlags(t *testing.T) {
	c, err := parseBacklog(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.messages != 2_000_000 || c.size != 1024 || c.confirm != 1000 || c.reclaimWait != 5*time.Minute {
		t.Errorf("defaults %+v", c)
	}
	for _, args := range [][]string{{"-n", "5"}, {"-s", "4"}, {"-x", "0"}, {"--reclaim-ratio", "0.5"}} {
		if _, err := parseBacklog(args); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

func TestReclaimGoalIsARatioWithAFloor(t *testing.T) {
	for _, tc := range []struct {
		before int64
		ratio  float64
		want   int64
	}{
		{28 << 10, 1.2, 92 << 10},            // an empty store: the 64 KiB slack wins
		{100 << 20, 1.2, 120 << 20},          // a real baseline: the ratio wins
		{1 << 20, 1.0, 1<<20 + reclaimSlack}, // ratio 1 still allows the slack
	} {
		if got := reclaimGoal(tc.before, tc.ratio); got != tc.want {
			t.Errorf("reclaimGoal(%d, %v) = %d, want %d", tc.before, tc.ratio, got, tc.want)
		}
	}
}
